//! How the CLI shows an error chain on one line (in JSON fields, warnings, report lines);
//! `exit::CliError::print` shows it as `error:` and `caused by:` lines.

pub use credguard_statefile::shown::chain_line;
