//! The Windows API credguard calls, behind a safe interface: computecore.dll loaded at run
//! time and its calls, the strings it returns, the registry, the process token, and the
//! security descriptors of the state directories.
//!
//! Every unsafe line of credguard is in this crate. The `credguard` library itself has
//! `#![forbid(unsafe_code)]` and uses only what is exported here, all of it safe: there is no
//! `pub unsafe fn`, and no raw pointer crosses the public interface.
//!
//! # Layout: raw declarations below, safe wrappers on top
//! - `abi` (private): the raw declarations windows-sys does not have: the opaque HCS handle
//!   types, the function-pointer signatures of `computecore.h`, and the table of those
//!   pointers resolved from the loaded DLL. Nothing outside this crate sees them.
//! - `wide`: `wide::WideCString`, the only way a string reaches Windows here
//!   (NUL-terminated UTF-16 with no NUL inside, by construction), and the copying-and-freeing
//!   of the strings Windows hands back.
//! - `computecore`: `computecore::Api` (the DLL, loaded once and never unloaded), its
//!   calls, `computecore::ComputeSystem` and `computecore::Operation` handles that close
//!   themselves, result documents as owned `String`s (the HCS allocation is freed with
//!   `LocalFree` before the call returns, on every path).
//! - `registry`: `registry::RegKey`, read-only registry keys, their subkeys and their values
//!   (string values with `REG_EXPAND_SZ` expanded).
//! - `service`: `service::service_state`, an installed service's state (`vmcompute`), and
//!   `service::dispatch`, this process run as a service (the dispatcher's `extern` entry).
//! - `eventlog`: `eventlog::newest_events`, the newest events of a channel as XML.
//! - `security`: security descriptors from SDDL and of files, their owner and DACL read
//!   back as text SIDs (`S-1-5-18`), directories created with a descriptor, protected DACLs
//!   set, the SID of the current user.
//! - `path`: the final path of an open file.
//!
//! Handles (`computecore::ComputeSystem`, `computecore::Operation`,
//! `registry::RegKey`, the module inside `computecore::Api`, the token behind
//! `security::current_user_sid`) and the descriptors Windows allocates
//! (`security::SecurityDescriptor`) close or free themselves when dropped. Every unsafe
//! block carries a `// SAFETY:` comment listing the invariants it relies on.
//!
//! On other systems the crate is empty (so these names link nowhere in documentation built
//! there).
//!
//! # Feature `test-support`
//! Adds `computecore::local_frees_on_this_thread` (how many HCS result strings this thread
//! freed) and `security::as_stranger` (run a closure under a restricted token), for the tests
//! of the crates built on this one. It is off by default and is not for production builds.

// rustdoc on every public item (clippy -D warnings makes this an error).
#![warn(missing_docs)]
// The workspace denies `unsafe_code`; this crate is the one place allowed to call into
// Windows through raw pointers, which cannot be done without it.
#![allow(unsafe_code)]

#[cfg(windows)]
mod abi;
#[cfg(windows)]
pub mod computecore;
#[cfg(windows)]
pub mod eventlog;
#[cfg(windows)]
pub mod path;
#[cfg(windows)]
pub mod registry;
#[cfg(windows)]
pub mod security;
#[cfg(windows)]
pub mod service;
#[cfg(windows)]
pub mod wide;

/// The operating system's message for a Win32 error code, as an `io::Error`.
#[cfg(windows)]
#[must_use]
pub fn win32_error(code: u32) -> std::io::Error {
    std::io::Error::from_raw_os_error(i32::try_from(code).unwrap_or(i32::MAX))
}
