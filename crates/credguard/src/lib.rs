//! credguard: Container Credential Guard (gMSA) instances for Windows containers, created,
//! handed over, tracked and removed through the Host Compute Service without leaks.
//!
//! The layers, from the wire up (imports run one way only, downwards; `tests/layers.rs`
//! fails when a module imports a layer above it):
//! - [`text`] and [`redact`]: how values are shown in messages, and what is hidden before
//!   anything is shown; `input`: what makes an id or a spec unusable;
//! - [`wire`]: the HCS documents of the CCG flow, byte-compatible with hcsshim, the decoder
//!   of HCS's query answer, and the container documents an instance goes into;
//! - [`hcs`]: the service boundary ([`hcs::HcsService`]) every backend implements, its
//!   errors and status codes ([`hcs::hresult`]), and on Windows the real backend;
//! - `statefile` and [`journal`]: atomic, private, locked files, and the durable record of
//!   every instance;
//! - [`credspec`]: credential specs read from every source, linted with actionable
//!   diagnostics, and generated;
//! - [`explain`]: Windows status codes and CCG event ids found in an error message, decoded
//!   (HRESULT, NTSTATUS, Win32) and explained with their known causes and next steps;
//! - [`lifecycle`]: creating an instance and releasing it with rollback on every failure,
//!   the policy and input checks, their errors, and [`lifecycle::reconcile`], the clean-up
//!   after a crash.
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

// rustdoc on every public item (clippy -D warnings makes this an error).
#![warn(missing_docs)]
// Unsafe code lives only in the credguard-winapi crate (the Windows FFI, behind a safe API).
#![forbid(unsafe_code)]

pub mod credspec;
pub mod doctor;
pub mod explain;
pub mod hcs;
mod input;
pub mod journal;
pub mod lifecycle;
pub mod redact;
pub mod text;
pub mod wire;

pub use credspec::{GMSA_DISABLE_ANNOTATION, LoadedSpec, SpecPolicy};
pub use hcs::hresult::HResult;
pub use hcs::{HcsError, HcsService};
pub use journal::Journal;
pub use lifecycle::reconcile::ReconcileOptions;
pub use lifecycle::{
    CcgClient, CcgError, CcgResource, ContainerIds, CreateRequest, ErrorKind, Plan, PlannedCall,
    Remedy, Removal, SpecRequest, Step,
};
pub use wire::{CCG_QUERY, Isolation};

/// The Rust examples of the repository's README, compiled and run as doctests so that they
/// cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
