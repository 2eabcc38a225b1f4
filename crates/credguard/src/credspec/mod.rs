//! Credential specs (gMSA): made correct before they reach Windows.
//!
//! ccg.exe is the only real parser of credential specs and reports a bad one only as an
//! opaque event. This module reads specs from wherever people keep them, checks them with
//! diagnostics that say what to do, and writes new ones:
//! - [`model`]: the typed spec, which round-trips (unknown members and order kept,
//!   `PluginInput` opaque);
//! - [`read()`]: bytes to a [`SpecDocument`] (UTF-8 with or without BOM, UTF-16 with BOM,
//!   64 KiB at most, syntax errors with line and column), and its canonical form for HCS;
//! - [`lint()`]: the [`Diagnostic`]s, each with a stable [`Code`];
//! - [`source`]: the one parser of `--credspec` arguments (paths, `-`, `file://`, `raw://`,
//!   `registry://`, Kubernetes manifests, OCI bundle configs);
//! - [`generate`]: new specs, offline, as New-CredentialSpec writes them;
//! - [`plugins`]: the CCG plug-ins known by GUID; [`syntax`]: the shapes of SIDs, GUIDs and
//!   names; [`path`]: JSON paths and their lines.
//!
//! ```
//! use credguard::credspec::{read, Severity};
//! let doc = read(br#"{"CmsPlugins":["ActiveDirectory"]}"#)?;
//! let errors = doc.lint().into_iter().filter(|d| d.severity == Severity::Error).count();
//! assert!(errors > 0); // no DomainJoinConfig, no ActiveDirectoryConfig
//! # Ok::<(), credguard::credspec::ReadError>(())
//! ```

pub mod generate;
pub mod lint;
pub mod model;
mod open;
pub mod path;
mod plugin_input;
pub mod plugins;
pub mod read;
#[cfg(windows)]
pub mod registry;
pub mod source;
pub mod syntax;

pub use generate::{AdditionalAccount, GenerateError, Generated, HostAccount, NewSpec};
pub use lint::{Code, Diagnostic, Severity, lint};
pub use model::{CredentialSpec, ModelError, PluginInput};
pub use path::{JsonPath, LineMap};
pub use plugins::KnownPlugin;
pub use read::{Encoding, ReadError, SpecDocument, read};
pub use source::{
    GMSA_DISABLE_ANNOTATION, LoadedSpec, SourceError, SpecForm, SpecPolicy, SpecSource,
    default_credspec_dir, device_in_path, load, load_arg, load_from, parse_source, shown_arg,
};

/// Reads what a plain path on the command line names (an alive file, a plug-in input
/// file) the way a credential spec's plain PATH is read: whatever it names, process
/// substitution `<(...)` included, but opened non-blocking, so a FIFO nobody writes to
/// reads as empty instead of hanging, and at most `limit` + 1 bytes are read (more than
/// `limit` means too large; an endless device cannot exhaust memory).
///
/// # Errors
/// The path cannot be opened or read.
pub fn read_path_limited(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    open::read_path(path, limit)
}
