//! The node agent: which containers are alive, asked of the container runtime itself, and
//! the CCG instances of the others removed (once, as `credguard reconcile --alive-from`, or
//! forever, as `credguard agent`).
//!
//! - [`source`]: where the live set comes from (containerd's containers service, the
//!   Kubernetes CRI), one [`source::AliveSource`] per `--alive-from`, and their union.
//! - [`agent`]: the loop of `credguard agent` (rounds on an interval and on deletions, the
//!   grace of foreign instances, shutdown) and its metrics server.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod source;
