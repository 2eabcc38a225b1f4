//! The node agent (`credguard agent`): reconciliation forever, with the live set asked of the
//! container runtime.
//!
//! A round runs every [`AgentOptions::interval`], and at once after a source reports a
//! container deleted ([`WatchEvent::Deleted`]; a burst of deletions while a round runs makes
//! one more round, not one each). A round:
//! 1. plans with what HCS lists and the journal holds now (its ids are the only ones the
//!    round may change: an instance created after the live set is listed is left for the
//!    next round, see [`ReconcileOptions::within`]);
//! 2. lists every source; the live set is their union. **If any source fails or does not
//!    answer within [`AgentOptions::list_timeout`], the round removes nothing**: it is
//!    counted as a failed round of that source, logged with the source and why, and the
//!    agent goes on (the next round tries again, so it resumes when the runtime is back);
//! 3. decides the foreign instances' grace (see below) and reconciles through the library
//!    ([`AsyncCcgClient::reconcile`], `include_foreign`): credguard's own records follow the
//!    journal's rules (an active instance whose container is not live is released; what a
//!    crash interrupted is finished; a record HCS no longer backs is dropped);
//! 4. logs each removal (`container_id`, `action`, `owner`, `reason`; never a credential
//!    spec) and updates the [`metrics`].
//!
//! **Foreign instances** (the journal does not know them: made by stock hcsshim, say) are
//! removed only after their container was missing from the live set in two listings at least
//! [`AgentOptions::grace`] apart. The agent keeps the time each foreign id was first missed
//! (in memory: a restarted agent starts the grace over); an id seen alive again, or no
//! longer listed by HCS, starts over. Ids still in grace are added to the alive set the
//! library gets, which protects them.
//!
//! **Shutdown**: when the `shutdown` future of [`Agent::run`] completes, no new round starts;
//! a round in progress is given up to [`SHUTDOWN_WAIT`] to finish, and is otherwise left
//! running on the blocking pool, where every HCS call is bounded and the journal covers
//! whatever is cut short (the next reconciliation finishes it). `run` then returns.

mod foreign;
pub mod metrics;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use credguard::ReconcileOptions;
use credguard::lifecycle::AsyncCcgClient;
use credguard::lifecycle::reconcile::{Action, Done};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use credguard_statefile::shown::chain_line as chain;

use crate::source::{AliveSource, WatchEvent};
use foreign::Grace;
use metrics::Metrics;

/// How often a round runs by default (`--interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// How long a foreign instance's container must be missing by default (`--grace`).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(120);
/// How long a source may take to list by default.
pub const DEFAULT_LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a round in progress is waited for at shutdown.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// What the agent runs with. [`AgentOptions::new`] takes the sources; the rest has defaults.
#[derive(Debug)]
#[non_exhaustive]
pub struct AgentOptions {
    /// Where the live set comes from (`--alive-from`, at least one); the live set is the
    /// union.
    pub sources: Vec<Box<dyn AliveSource>>,
    /// Time between rounds (more than zero).
    pub interval: Duration,
    /// How long a foreign instance's container must be missing before it is removed.
    pub grace: Duration,
    /// How long each source may take to list (more than zero).
    pub list_timeout: Duration,
    /// Where to serve `/metrics` and `/healthz`, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
}

impl AgentOptions {
    /// The defaults, with `sources`.
    #[must_use]
    pub fn new(sources: Vec<Box<dyn AliveSource>>) -> Self {
        AgentOptions {
            sources,
            interval: DEFAULT_INTERVAL,
            grace: DEFAULT_GRACE,
            list_timeout: DEFAULT_LIST_TIMEOUT,
            metrics_listen: None,
        }
    }

    /// Sets [`AgentOptions::interval`].
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`AgentOptions::grace`].
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets [`AgentOptions::list_timeout`].
    #[must_use]
    pub fn with_list_timeout(mut self, timeout: Duration) -> Self {
        self.list_timeout = timeout;
        self
    }

    /// Sets [`AgentOptions::metrics_listen`].
    #[must_use]
    pub fn with_metrics_listen(mut self, addr: impl Into<Option<SocketAddr>>) -> Self {
        self.metrics_listen = addr.into();
        self
    }
}

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No source was given.
    #[error("no live-set source: give at least one (containerd, cri)")]
    NoSource,
    /// A duration that must be more than zero is zero.
    #[error("{what} must be more than zero")]
    ZeroDuration {
        /// Which option.
        what: &'static str,
    },
    /// The metrics address cannot be listened on.
    #[error("cannot listen on {addr} for metrics: {source}; pick a free address and port")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Who made a removed instance: `credguard` (the journal knows it) or `foreign`.
fn owner(owned: bool) -> &'static str {
    if owned { "credguard" } else { "foreign" }
}

/// One change a round made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The container id.
    pub container_id: String,
    /// What was done (`remove_not_alive`, `remove_foreign`, ...).
    pub action: Action,
    /// `credguard` or `foreign`.
    pub owner: &'static str,
}

/// How a round ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoundOutcome {
    /// No round has ended yet.
    NotYet,
    /// The round listed every source and reconciled.
    Done {
        /// The changes made (failed steps are logged, not listed).
        removed: Vec<Removed>,
        /// Foreign instances still waiting out their grace.
        foreign_in_grace: usize,
    },
    /// Nothing was removed: a source (or HCS, or the journal, as `hcs`) failed.
    Failed {
        /// The source, as [`AliveSource::name`] names it.
        source: String,
        /// Why.
        reason: String,
    },
}

/// The last round, for observers ([`Agent::rounds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// Rounds ended so far (this one included).
    pub number: u64,
    /// When it ended (tokio's clock).
    pub at: Instant,
    /// How it ended.
    pub outcome: RoundOutcome,
}

/// What a run did, returned when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rounds ended.
    pub rounds: u64,
    /// Rounds that removed nothing because a source failed.
    pub failed_rounds: u64,
    /// Changes made (instances removed, stale records dropped).
    pub removed: u64,
}

/// The agent, ready to run: its metrics address (if any) is bound already.
#[derive(Debug)]
pub struct Agent {
    options: AgentOptions,
    client: AsyncCcgClient,
    metrics: Arc<Metrics>,
    listener: Option<TcpListener>,
    metrics_addr: Option<SocketAddr>,
    rounds: watch::Sender<RoundReport>,
    subscriptions: watch::Sender<u64>,
    grace: Grace,
    summary: Summary,
}

impl Agent {
    /// Checks the options and binds the metrics address.
    ///
    /// # Errors
    /// No source, a zero interval or list timeout, or a metrics address that cannot be
    /// listened on.
    pub async fn new(options: AgentOptions, client: AsyncCcgClient) -> Result<Self, AgentError> {
        if options.sources.is_empty() {
            return Err(AgentError::NoSource);
        }
        if options.interval.is_zero() {
            return Err(AgentError::ZeroDuration {
                what: "the interval",
            });
        }
        if options.list_timeout.is_zero() {
            return Err(AgentError::ZeroDuration {
                what: "the list timeout",
            });
        }
        let (listener, metrics_addr) = match options.metrics_listen {
            None => (None, None),
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| AgentError::Metrics { addr, source })?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| AgentError::Metrics { addr, source })?;
                (Some(listener), Some(bound))
            }
        };
        // Stuck: no round ended for three intervals and the longest a round may list.
        let stuck_after = options.interval * 3 + options.list_timeout * 2;
        let (rounds, _) = watch::channel(RoundReport {
            number: 0,
            at: Instant::now(),
            outcome: RoundOutcome::NotYet,
        });
        Ok(Agent {
            options,
            client,
            metrics: Arc::new(Metrics::new(stuck_after)),
            listener,
            metrics_addr,
            rounds,
            subscriptions: watch::Sender::new(0),
            grace: Grace::default(),
            summary: Summary::default(),
        })
    }

    /// The address `/metrics` is served on (the port chosen when `:0` was asked for).
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The metrics.
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The last round's report, updated as each round ends.
    #[must_use]
    pub fn rounds(&self) -> watch::Receiver<RoundReport> {
        self.rounds.subscribe()
    }

    /// How many times a source's watch reported [`WatchEvent::Subscribed`] so far (a test or
    /// an observer learns that deletions are now seen).
    #[must_use]
    pub fn subscriptions(&self) -> watch::Receiver<u64> {
        self.subscriptions.subscribe()
    }

    /// Runs rounds until `shutdown` completes (see the [module docs](self)).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Summary {
        tokio::pin!(shutdown);
        let mut tasks = JoinSet::new();
        if let Some(listener) = self.listener.take() {
            tasks.spawn(metrics::serve(listener, self.metrics.clone()));
        }
        let (wake, mut woken) = mpsc::channel::<String>(1);
        for source in &self.options.sources {
            if let Some(events) = source.watch() {
                tasks.spawn(forward(
                    source.name(),
                    events,
                    wake.clone(),
                    self.subscriptions.clone(),
                ));
            }
        }
        drop(wake);
        let mut ticker = tokio::time::interval(self.options.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        info!(
            sources = self.options.sources.len(),
            interval_s = self.options.interval.as_secs_f64(),
            grace_s = self.options.grace.as_secs_f64(),
            "agent started"
        );
        loop {
            let trigger = tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(id) = woken.recv() => format!("container {id} deleted"),
                _ = ticker.tick() => "interval".to_owned(),
            };
            debug!(trigger = %trigger, "round starting");
            let (outcome, stop) = {
                let round = self.round();
                tokio::pin!(round);
                tokio::select! {
                    biased;
                    outcome = &mut round => (Some(outcome), false),
                    () = &mut shutdown => {
                        info!("shutting down: waiting for the round in progress");
                        match tokio::time::timeout(SHUTDOWN_WAIT, &mut round).await {
                            Ok(outcome) => (Some(outcome), true),
                            Err(_) => {
                                warn!("shutting down with a round in progress: it goes on in the background, and the journal covers what it cuts short");
                                (None, true)
                            }
                        }
                    }
                }
            };
            if let Some(outcome) = outcome {
                self.ended(outcome);
            }
            if stop {
                break;
            }
        }
        self.metrics.stopped();
        tasks.abort_all();
        info!(
            rounds = self.summary.rounds,
            failed_rounds = self.summary.failed_rounds,
            removed = self.summary.removed,
            "agent stopped"
        );
        self.summary
    }

    fn ended(&mut self, outcome: RoundOutcome) {
        self.summary.rounds += 1;
        match &outcome {
            RoundOutcome::Failed { .. } => self.summary.failed_rounds += 1,
            RoundOutcome::Done { removed, .. } => self.summary.removed += removed.len() as u64,
            RoundOutcome::NotYet => {}
        }
        let number = self.summary.rounds;
        self.rounds.send_replace(RoundReport {
            number,
            at: Instant::now(),
            outcome,
        });
    }

    /// A failed round: counted, logged with the source and why, nothing removed.
    fn failed(&self, source: String, reason: String) -> RoundOutcome {
        warn!(source = %source, reason = %reason, "round failed: nothing is removed this round");
        self.metrics.round_failed(&source);
        RoundOutcome::Failed { source, reason }
    }

    async fn round(&mut self) -> RoundOutcome {
        // 1. What HCS and the journal hold before the live set is listed.
        let snapshot = match self.client.plan_reconcile(ReconcileOptions::new()).await {
            Ok(plan) => plan,
            Err(e) => return self.failed("hcs".to_owned(), chain(&e)),
        };
        let within: BTreeSet<String> = snapshot.iter().map(|p| p.container_id.clone()).collect();
        let foreign: BTreeSet<String> = snapshot
            .iter()
            .filter(|p| p.listed && !p.owned)
            .map(|p| p.container_id.clone())
            .collect();
        // 2. The live set: every source, or nothing is removed.
        let mut live = BTreeSet::new();
        for source in &self.options.sources {
            let timeout = self.options.list_timeout;
            match tokio::time::timeout(timeout, source.list()).await {
                Ok(Ok(ids)) => live.extend(ids),
                Ok(Err(e)) => return self.failed(source.name(), e.reason),
                Err(_) => {
                    return self.failed(
                        source.name(),
                        format!(
                            "no answer within {} s; is the runtime up?",
                            timeout.as_secs_f64()
                        ),
                    );
                }
            }
        }
        // 3. The grace of foreign instances: those still in it are protected.
        let verdict = self
            .grace
            .observe(&foreign, &live, Instant::now(), self.options.grace);
        let in_grace = verdict.in_grace.len();
        let mut alive = live;
        alive.extend(verdict.in_grace);
        let opts = if alive.is_empty() {
            ReconcileOptions::alive_none()
        } else {
            match ReconcileOptions::with_alive(alive) {
                Ok(opts) => opts,
                Err(e) => return self.failed("alive set".to_owned(), chain(&e)),
            }
        };
        let opts = opts.include_foreign(true).within(within);
        // 4. Reconcile, log, count.
        let done = match self.client.reconcile(opts).await {
            Ok(done) => done,
            Err(e) => return self.failed("hcs".to_owned(), chain(&e)),
        };
        let removed = self.account(&done);
        RoundOutcome::Done {
            removed,
            foreign_in_grace: in_grace,
        }
    }

    /// Logs and counts what reconciliation did; the instances gauge from what is left.
    fn account(&mut self, done: &[Done]) -> Vec<Removed> {
        let mut removed = Vec::new();
        let mut instances: BTreeMap<(String, String), u64> = BTreeMap::new();
        for d in done {
            let item = &d.item;
            let who = owner(item.owned);
            let mut gone = false;
            if item.action.is_change() {
                match &d.result {
                    Ok(()) => {
                        info!(
                            container_id = %item.container_id,
                            action = item.action.as_str(),
                            owner = who,
                            reason = %item.reason,
                            "agent removed"
                        );
                        self.metrics.removed(item.action.as_str(), who);
                        if item.action == Action::RemoveForeign {
                            self.grace.forget(&item.container_id);
                        }
                        gone = item.action != Action::DropStaleRecord;
                        removed.push(Removed {
                            container_id: item.container_id.clone(),
                            action: item.action,
                            owner: who,
                        });
                    }
                    Err(e) => warn!(
                        container_id = %item.container_id,
                        action = item.action.as_str(),
                        owner = who,
                        error = %chain(e),
                        "agent could not remove; the next round tries again"
                    ),
                }
            }
            if item.listed && !gone {
                let state = item.state.map_or("none", |s| s.as_str());
                *instances
                    .entry((who.to_owned(), state.to_owned()))
                    .or_default() += 1;
            }
        }
        self.metrics.round_ok(instances);
        removed
    }
}

/// Runs the agent until `shutdown` completes: [`Agent::new`], then [`Agent::run`].
///
/// # Errors
/// As [`Agent::new`].
pub async fn run(
    options: AgentOptions,
    client: AsyncCcgClient,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, AgentError> {
    Ok(Agent::new(options, client).await?.run(shutdown).await)
}

/// Passes a source's deletions on as wake-ups (a full channel means a round is due already:
/// the burst is coalesced) and logs its subscription's ups and downs.
async fn forward(
    name: String,
    mut events: mpsc::Receiver<WatchEvent>,
    wake: mpsc::Sender<String>,
    subscriptions: watch::Sender<u64>,
) {
    while let Some(event) = events.recv().await {
        match event {
            WatchEvent::Deleted { id } => {
                debug!(source = %name, container_id = %id, "container deleted");
                let _ = wake.try_send(id);
            }
            WatchEvent::Subscribed => {
                info!(source = %name, "subscribed to container events");
                subscriptions.send_modify(|n| *n += 1);
            }
            WatchEvent::Lost(e) => {
                warn!(source = %name, reason = %e.reason, "container events lost; the source subscribes again");
            }
        }
    }
}
