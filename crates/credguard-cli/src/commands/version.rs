//! `credguard version`: the crate version, the commit it was built from and the target.

use crate::documents::VersionDoc;
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, emit};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `git rev-parse --short=12 HEAD` at build time, `CREDGUARD_BUILD_COMMIT` when set, or
/// `unknown` for a build outside a git repository (see `build.rs`).
pub const COMMIT: &str = env!("CREDGUARD_BUILD_COMMIT");

/// The target triple the binary was built for.
pub const TARGET: &str = env!("CREDGUARD_BUILD_TARGET");

/// What `--version` shows after the name: `0.1.0 (commit 0123456789ab, x86_64-unknown-linux-gnu)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CREDGUARD_BUILD_COMMIT"),
    ", ",
    env!("CREDGUARD_BUILD_TARGET"),
    ")"
);

pub const EXAMPLES: &str = "\
Examples:
  # credguard 0.1.0 (commit 0123456789ab, x86_64-pc-windows-msvc)
  credguard version
  # {\"version\":\"0.1.0\",\"commit\":\"0123456789ab\",\"target\":\"...\"}
  credguard --output json version";

/// Needs no state directory, so it works where nothing else can (no HOME, an unusable
/// state directory).
pub fn run(output: OutputFormat) -> Result<Exit, CliError> {
    match output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            output,
            &VersionDoc {
                version: VERSION.to_owned(),
                commit: COMMIT.to_owned(),
                target: TARGET.to_owned(),
            },
        ),
        OutputFormat::Text => outln!("credguard {LONG_VERSION}"),
    }
    Ok(Exit::Ok)
}
