//! Where the live set comes from: the container runtime's own list of containers.
//!
//! Every source answers "which container ids does the runtime know?", whatever their task
//! state: a listed container may restart and keeps its instance. Sources that can also tell
//! when a container is deleted (containerd's events service) offer a watch.
//!
//! - [`ContainerdSource`]: containerd's containers service, every namespace (or those given);
//!   watches container deletions through the events service.
//! - [`CriSource`]: the Kubernetes CRI `RuntimeService/ListContainers`, every state.
//! - [`SourceSpec`]: one `--alive-from` value read (`containerd[:ADDRESS]`, `cri[:ENDPOINT]`),
//!   and [`SourceSpec::open`] the source it names.
//! - [`live_set`]: the union of every source's list, or an error naming every source that
//!   failed (then the caller removes nothing).

mod containerd;
mod cri;

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use containerd::ContainerdSource;
pub use cri::CriSource;

use crate::api::Address;

/// What [`AliveSource::list`] returns: the ids the runtime lists, or why it could not.
pub type ListFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BTreeSet<String>, SourceError>> + Send + 'a>>;

/// One place the live set comes from (`--alive-from`).
pub trait AliveSource: Send + Sync + fmt::Debug {
    /// How the source is named in messages and metrics, e.g.
    /// `containerd:/run/containerd/containerd.sock`.
    fn name(&self) -> String;

    /// Every container id the runtime lists now (all namespaces the source covers).
    fn list(&self) -> ListFuture<'_>;

    /// Container deletions as the runtime reports them, or `None` when the source has no
    /// events (CRI). The source subscribes, and subscribes again after the runtime
    /// restarts, until the receiver is dropped. Must be called inside a tokio runtime.
    fn watch(&self) -> Option<tokio::sync::mpsc::Receiver<WatchEvent>> {
        None
    }
}

/// What a watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The subscription is (again) in place.
    Subscribed,
    /// The runtime deleted this container.
    Deleted {
        /// The container id.
        id: String,
    },
    /// The subscription broke (or could not be made); the source retries.
    Lost(SourceError),
}

/// Why a source gave no live set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct SourceError {
    /// The source, as [`AliveSource::name`] gives it.
    pub source_name: String,
    /// What went wrong, and what to check.
    pub reason: String,
}

/// The default time a source has to answer one listing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One `--alive-from` value: which runtime API, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `containerd[:ADDRESS]`: containerd's containers service.
    Containerd {
        /// The gRPC address; containerd's default when `None`.
        address: Option<Address>,
    },
    /// `cri[:ENDPOINT]`: the Kubernetes CRI runtime service.
    Cri {
        /// The CRI endpoint; containerd's default address when `None`.
        endpoint: Option<Address>,
    },
}

/// An `--alive-from` value that names no source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a live-set source: {reason}")]
pub struct SourceSpecError {
    /// The value as given.
    pub value: String,
    /// Why, and what is accepted.
    pub reason: String,
}

/// What the accepted forms are, for messages.
const ACCEPTED: &str = "use containerd, containerd:ADDRESS, cri or cri:ENDPOINT (ADDRESS: a \
     socket path, unix:///PATH, \\\\.\\pipe\\NAME or npipe:////./pipe/NAME)";

impl std::str::FromStr for SourceSpec {
    type Err = SourceSpecError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| SourceSpecError {
            value: value.to_owned(),
            reason,
        };
        let (kind, address) = match value.split_once(':') {
            Some((kind, address)) => (kind, Some(address)),
            None => (value, None),
        };
        let address = address
            .map(|text| Address::parse(text).map_err(|why| error(format!("{why}; {ACCEPTED}"))))
            .transpose()?;
        match kind {
            "containerd" => Ok(Self::Containerd { address }),
            "cri" => Ok(Self::Cri { endpoint: address }),
            "" => Err(error(format!("no source kind; {ACCEPTED}"))),
            other => Err(error(format!("unknown source kind {other:?}; {ACCEPTED}"))),
        }
    }
}

/// What every source of one run shares.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// containerd namespaces to list; every namespace when empty. CRI ignores it (the CRI
    /// runtime lists its own namespace, `k8s.io` for containerd).
    pub namespaces: Vec<String>,
    /// How long one listing may take before it fails.
    pub timeout: Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl SourceSpec {
    /// The source this value names.
    pub fn open(&self, options: &SourceOptions) -> Box<dyn AliveSource> {
        match self {
            Self::Containerd { address } => Box::new(
                ContainerdSource::new(address.clone().unwrap_or_else(Address::containerd_default))
                    .with_namespaces(options.namespaces.clone())
                    .with_timeout(options.timeout),
            ),
            Self::Cri { endpoint } => Box::new(
                CriSource::new(endpoint.clone().unwrap_or_else(Address::containerd_default))
                    .with_timeout(options.timeout),
            ),
        }
    }
}

/// Every source that failed in one [`live_set`] call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LiveSetError {
    /// One error per failing source, in the order the sources were given.
    pub failures: Vec<SourceError>,
}

impl fmt::Display for LiveSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failures.len();
        write!(
            f,
            "no live set, so nothing is removed: {n} source{} failed: ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, failure) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// The union of every source's list, asked of all sources at once; if any source fails,
/// an error naming every one that failed (the caller then removes nothing).
pub async fn live_set(sources: &[Box<dyn AliveSource>]) -> Result<BTreeSet<String>, LiveSetError> {
    let lists = join_all(sources.iter().map(|source| source.list())).await;
    let mut alive = BTreeSet::new();
    let mut failures = Vec::new();
    for list in lists {
        match list {
            Ok(ids) => alive.extend(ids),
            Err(error) => failures.push(error),
        }
    }
    if failures.is_empty() {
        Ok(alive)
    } else {
        Err(LiveSetError { failures })
    }
}

/// The reconcile options of a live set: the ids listed are alive; an empty list means no
/// container exists, so every active instance is an orphan.
///
/// # Errors
/// [`credguard::CcgError`] when the runtime listed an id credguard cannot take (the error
/// names it); then nothing is removed.
pub fn reconcile_options(
    live: BTreeSet<String>,
) -> Result<credguard::ReconcileOptions, credguard::CcgError> {
    if live.is_empty() {
        Ok(credguard::ReconcileOptions::alive_none())
    } else {
        credguard::ReconcileOptions::with_alive(live)
    }
}

/// Polls every future until all are done; results in the futures' order.
async fn join_all<T>(
    futures: impl Iterator<Item = Pin<Box<dyn Future<Output = T> + Send + '_>>>,
) -> Vec<T> {
    let mut pending: Vec<_> = futures.map(Some).collect();
    let mut results: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// The error of a source that did not answer within `timeout`.
pub(crate) fn timed_out(source_name: String, timeout: Duration, what: &str) -> SourceError {
    SourceError {
        source_name,
        reason: format!(
            "no answer within {timeout:?}; check that {what} is running and healthy, or allow \
             the source a longer timeout"
        ),
    }
}

/// The error of a source whose endpoint could not be opened.
pub(crate) fn unreachable(
    source_name: String,
    address: &Address,
    error: &std::io::Error,
    what: &str,
) -> SourceError {
    SourceError {
        source_name,
        reason: format!(
            "cannot connect to {address}: {error}; check that {what} is running, that it \
             listens on this address, and that this account may open it (root, or \
             Administrators on Windows)"
        ),
    }
}

/// The error of a call the runtime refused.
pub(crate) fn refused(source_name: String, call: &str, status: &tonic::Status) -> SourceError {
    let hint = match status.code() {
        tonic::Code::Unimplemented => {
            "; the endpoint does not serve this API (is it the right socket, and the API enabled?)"
        }
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
            "; this account may not ask it"
        }
        tonic::Code::Unavailable => "; the runtime is starting, stopping or overloaded",
        _ => "",
    };
    SourceError {
        source_name,
        reason: format!(
            "{call} failed: {:?}: {}{hint}",
            status.code(),
            status.message()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: &str) -> Result<SourceSpec, SourceSpecError> {
        value.parse()
    }

    #[test]
    fn alive_from_values_are_read_as_containerd_and_crictl_users_write_them() {
        assert_eq!(
            spec("containerd"),
            Ok(SourceSpec::Containerd { address: None })
        );
        assert_eq!(spec("cri"), Ok(SourceSpec::Cri { endpoint: None }));
        assert_eq!(
            spec("containerd:/tmp/c.sock"),
            Ok(SourceSpec::Containerd {
                address: Some(Address::Unix("/tmp/c.sock".into()))
            })
        );
        assert_eq!(
            spec("cri:unix:///run/containerd/containerd.sock"),
            Ok(SourceSpec::Cri {
                endpoint: Some(Address::Unix("/run/containerd/containerd.sock".into()))
            })
        );
        assert_eq!(
            spec(r"containerd:\\.\pipe\containerd-containerd"),
            Ok(SourceSpec::Containerd {
                address: Some(Address::Pipe(r"\\.\pipe\containerd-containerd".into()))
            })
        );
        assert_eq!(
            spec("cri:npipe:////./pipe/containerd-containerd"),
            Ok(SourceSpec::Cri {
                endpoint: Some(Address::Pipe(r"\\.\pipe\containerd-containerd".into()))
            })
        );
    }

    #[test]
    fn unknown_kinds_and_empty_addresses_are_refused_with_what_is_accepted() {
        for bad in [
            "docker",
            "crio:/x",
            ":/x",
            "containerd:",
            "cri:tcp://1.2.3.4:5",
        ] {
            let error = spec(bad).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(&format!("{bad:?}")), "{text}");
            assert!(text.contains("containerd:ADDRESS"), "{text}");
        }
        assert!(
            spec("docker")
                .unwrap_err()
                .reason
                .contains("unknown source kind \"docker\"")
        );
    }

    #[derive(Debug)]
    struct Fixed(&'static str, Result<&'static [&'static str], &'static str>);

    impl AliveSource for Fixed {
        fn name(&self) -> String {
            self.0.to_owned()
        }
        fn list(&self) -> ListFuture<'_> {
            let answer = self
                .1
                .map(|ids| ids.iter().map(|id| (*id).to_owned()).collect())
                .map_err(|reason| SourceError {
                    source_name: self.0.to_owned(),
                    reason: reason.to_owned(),
                });
            Box::pin(async move { answer })
        }
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn the_live_set_is_the_union_of_every_source() {
        let sources: Vec<Box<dyn AliveSource>> = vec![
            Box::new(Fixed("a", Ok(&["x", "y"]))),
            Box::new(Fixed("b", Ok(&["y", "z"]))),
        ];
        let alive = run(live_set(&sources)).unwrap();
        assert_eq!(alive, ["x", "y", "z"].map(String::from).into());
    }

    #[test]
    fn a_failing_source_fails_the_live_set_and_every_failure_is_named() {
        let sources: Vec<Box<dyn AliveSource>> = vec![
            Box::new(Fixed("a", Err("down"))),
            Box::new(Fixed("b", Ok(&["y"]))),
            Box::new(Fixed("c", Err("timed out"))),
        ];
        let error = run(live_set(&sources)).unwrap_err();
        assert_eq!(error.failures.len(), 2);
        let text = error.to_string();
        assert!(text.contains("nothing is removed"), "{text}");
        assert!(text.contains("a: down"), "{text}");
        assert!(text.contains("c: timed out"), "{text}");
    }

    #[test]
    fn an_unreachable_containerd_is_an_error_naming_the_source_and_the_address() {
        let dir = std::env::temp_dir().join(format!("credguard-no-such-{}", std::process::id()));
        let source = SourceSpec::Containerd {
            address: Some(Address::Unix(dir.join("containerd.sock"))),
        }
        .open(&SourceOptions::default());
        let error = run(source.list()).unwrap_err();
        assert_eq!(error.source_name, source.name());
        assert!(error.reason.contains("cannot connect to"), "{error}");
        assert!(error.reason.contains("containerd.sock"), "{error}");
    }
}
