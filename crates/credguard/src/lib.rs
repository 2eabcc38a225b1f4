//! credguard: Container Credential Guard (gMSA) instances for Windows containers, created,
//! handed over, tracked and removed through the Host Compute Service without leaks.
//!
//! The layers, from the wire up:
//! - [`schema`]: the HCS documents of the CCG flow, byte-compatible with hcsshim;
//! - [`hcs`]: the service boundary ([`hcs::HcsService`]) every backend implements, and its
//!   errors; [`hresult`] for the status codes;
//! - [`lifecycle`]: creating an instance and releasing it, with rollback on every failure;
//! - [`journal`] and [`reconcile`]: a durable record of every instance, and the clean-up
//!   after a crash;
//! - [`container`]: placing an instance into the V2 (or V1) container documents;
//! - [`credspec`]: credential specs read from every source, linted with actionable
//!   diagnostics, and generated;
//! - [`input`] and [`redact`]: what is checked before anything is sent, and what is hidden
//!   before anything is shown; [`statefile`]: atomic, private, locked files;
//! - `windows` (on Windows only): the real backend over computecore.dll and `registry://`
//!   credential specs, calling Windows through the safe interface of the `credguard-winapi`
//!   crate (where all of credguard's unsafe code lives: this crate forbids it).
//!
//! ```no_run
//! use std::sync::Arc;
//! use credguard::{CcgClient, Isolation};
//! # fn backend() -> Arc<dyn credguard::hcs::HcsService> { unimplemented!() }
//! let client = CcgClient::new(backend());
//! let spec = std::fs::read_to_string("contoso_webapp01.json")?;
//! let (instance, mut handle) = client.create("my-container", &spec, Isolation::Process)?;
//! let state = instance.credential_guard; // goes into Container.ContainerCredentialGuard
//! // ... run the container ...
//! handle.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod container;
pub mod credspec;
pub mod error;
pub mod hcs;
pub mod hresult;
pub mod input;
pub mod journal;
pub mod lifecycle;
pub mod reconcile;
pub mod redact;
pub mod schema;
pub mod statefile;
mod watchdog;
#[cfg(windows)]
pub mod windows;

pub use error::{CcgError, ErrorKind, Step};
pub use hcs::{HcsError, HcsService};
pub use hresult::HResult;
pub use journal::Journal;
pub use lifecycle::{CcgClient, CcgResource, CreateRequest, Isolation, Removal, SpecRequest};
pub use reconcile::ReconcileOptions;
