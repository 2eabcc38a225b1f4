//! The node agent: which containers are alive, asked of the container runtime itself, and
//! the CCG instances of the others removed (once, as `credguard reconcile --alive-from`, or
//! forever, as `credguard agent`).
//!
//! - [`source`]: where the live set comes from (containerd's containers service, the
//!   Kubernetes CRI), one [`source::AliveSource`] per `--alive-from`, and their union.
//! - [`api`]: the gRPC clients of containerd and the CRI, generated at build time from the
//!   crate's own minimal `.proto` files by protox (a protobuf compiler in Rust), not taken
//!   from the `containerd-client` and `k8s-cri` crates, whose builds need a system `protoc`
//!   (see the module's docs).
//! - [`parse_duration`]: durations as the flags take them (`10s`, `2m`).
//! - `test_support` (feature `test-support`): a private containerd for tests.
//! - [`agent`]: the loop of `credguard agent` (rounds on an interval and on deletions, the
//!   grace of foreign instances, shutdown) and its metrics server.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod api;
mod duration;
pub mod source;

pub use duration::parse_duration;
#[cfg(feature = "test-support")]
pub mod test_support;
