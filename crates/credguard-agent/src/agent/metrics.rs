//! The agent's metrics in Prometheus text exposition (format 0.0.4), and the tiny HTTP
//! server of `--metrics-listen`: `GET /metrics`, `GET /healthz`, 404 otherwise.
//!
//! Health: `/healthz` answers 200 `ok` while the agent's loop runs and is not stuck, i.e. its
//! last round (successful or failed) ended less than [`Metrics::stuck_after`] ago; 503 once
//! the loop has stopped (shutdown) or when no round has ended for that long (a round hung in
//! HCS, say). A source that is down does not make the agent unhealthy: its failed rounds are
//! counted in `credguard_agent_failed_rounds_total`, and restarting the agent would not help.
//! No metric carries a credential spec or anything from one: only container-id counts,
//! source names and reasons.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tracing::debug;

/// The counters and gauges, shared by the loop and the server.
#[derive(Debug)]
pub struct Metrics {
    state: Mutex<State>,
    stuck_after: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// (owner, state) -> instances, after the last successful round.
    instances: BTreeMap<(String, String), u64>,
    /// (reason, owner) -> removals.
    removals: BTreeMap<(String, String), u64>,
    rounds: u64,
    /// source -> failed rounds.
    failed: BTreeMap<String, u64>,
    last_success_unix: Option<f64>,
    last_round_end: Option<Instant>,
    started: Option<Instant>,
    stopped: bool,
}

impl Metrics {
    /// Empty metrics; the loop counts as stuck when no round ends for `stuck_after`.
    pub(crate) fn new(stuck_after: Duration) -> Self {
        Metrics {
            state: Mutex::new(State {
                started: Some(Instant::now()),
                ..State::default()
            }),
            stuck_after,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// After how long without a finished round the loop counts as stuck.
    #[must_use]
    pub fn stuck_after(&self) -> Duration {
        self.stuck_after
    }

    pub(crate) fn round_ok(&self, instances: BTreeMap<(String, String), u64>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.with(|s| {
            s.rounds += 1;
            s.instances = instances;
            s.last_success_unix = Some(now);
            s.last_round_end = Some(Instant::now());
        });
    }

    pub(crate) fn round_failed(&self, source: &str) {
        self.with(|s| {
            s.rounds += 1;
            *s.failed.entry(source.to_owned()).or_default() += 1;
            s.last_round_end = Some(Instant::now());
        });
    }

    pub(crate) fn removed(&self, reason: &str, owner: &str) {
        self.with(|s| {
            *s.removals
                .entry((reason.to_owned(), owner.to_owned()))
                .or_default() += 1;
        });
    }

    pub(crate) fn stopped(&self) {
        self.with(|s| s.stopped = true);
    }

    /// Whether `/healthz` answers 200 (see the module docs).
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.with(|s| {
            let since = s.last_round_end.or(s.started);
            !s.stopped && since.is_none_or(|t| t.elapsed() < self.stuck_after)
        })
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|s| {
            header(
                &mut out,
                "credguard_agent_instances",
                "CCG instances HCS listed after the last successful round, by owner (credguard: the journal knows it; foreign: it does not) and journal state (none for foreign ones).",
                "gauge",
            );
            for ((owner, state), n) in &s.instances {
                let _ = writeln!(
                    out,
                    "credguard_agent_instances{{owner=\"{}\",state=\"{}\"}} {n}",
                    escape(owner),
                    escape(state)
                );
            }
            header(
                &mut out,
                "credguard_agent_removals_total",
                "CCG instances (or stale journal records) removed by the agent, by reason (the reconcile action) and owner.",
                "counter",
            );
            for ((reason, owner), n) in &s.removals {
                let _ = writeln!(
                    out,
                    "credguard_agent_removals_total{{reason=\"{}\",owner=\"{}\"}} {n}",
                    escape(reason),
                    escape(owner)
                );
            }
            header(
                &mut out,
                "credguard_agent_rounds_total",
                "Rounds run, successful or failed.",
                "counter",
            );
            let _ = writeln!(out, "credguard_agent_rounds_total {}", s.rounds);
            header(
                &mut out,
                "credguard_agent_failed_rounds_total",
                "Rounds that removed nothing because a source (or HCS) failed, by source.",
                "counter",
            );
            for (source, n) in &s.failed {
                let _ = writeln!(
                    out,
                    "credguard_agent_failed_rounds_total{{source=\"{}\"}} {n}",
                    escape(source)
                );
            }
            header(
                &mut out,
                "credguard_agent_last_successful_round_timestamp_seconds",
                "When the last successful round ended, as a Unix timestamp (0: none yet).",
                "gauge",
            );
            let _ = writeln!(
                out,
                "credguard_agent_last_successful_round_timestamp_seconds {}",
                s.last_success_unix.unwrap_or(0.0)
            );
        });
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the exposition format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The most of a request head read; anything longer is answered 400.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped. One request per
/// connection (`Connection: close`).
pub(crate) async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &metrics).await {
                debug!(%peer, error = %e, "metrics request failed");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(false);
            }
        }
    })
    .await
    .unwrap_or(Ok(false))?;
    let line = String::from_utf8_lossy(&head);
    let mut words = line.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = match (complete, method, path) {
        (false, _, _) => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
        (true, "GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (true, "GET" | "HEAD", "/healthz") if metrics.healthy() => {
            ("200 OK", "text/plain", "ok\n".to_owned())
        }
        (true, "GET" | "HEAD", "/healthz") => (
            "503 Service Unavailable",
            "text/plain",
            "the agent's loop is stopped or stuck\n".to_owned(),
        ),
        (true, "GET" | "HEAD", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        (true, _, _) => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }
}
