//! Logging to stderr with `tracing`: a level or an env filter, text or JSON lines.

use std::io::IsTerminal;

use clap::ValueEnum;
use credguard::credspec::syntax::shown;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with span fields (container_id) included.
    Json,
}

/// Installs the global subscriber. `level` wins over `CREDGUARD_LOG`, which wins over the
/// default (`warn`).
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), String> {
    let filter = match level {
        Some(l) => {
            EnvFilter::try_new(l).map_err(|e| format!("invalid --log-level `{}`: {e}", shown(l)))?
        }
        None => match std::env::var("CREDGUARD_LOG") {
            Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v)
                .map_err(|e| format!("invalid CREDGUARD_LOG `{}`: {e}", shown(&v)))?,
            _ => EnvFilter::new("warn"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
