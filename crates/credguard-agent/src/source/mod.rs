//! Where the live set comes from: the container runtime's own list of containers.
//!
//! Every source answers "which container ids does the runtime know?", whatever their task
//! state: a listed container may restart and keeps its instance. Sources that can also tell
//! when a container is deleted (containerd's events service) offer a watch.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

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
    /// restarts, until the receiver is dropped.
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
    /// The subscription broke; the source retries.
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
