//! Logging to stderr with `tracing`: a level or an env filter, text or JSON lines.

use std::io::IsTerminal;

use clap::ValueEnum;
use credguard::credspec::syntax::shown;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with span fields (container_id) included.
    Json,
}

/// Checks a log filter (`--log-level`, `CREDGUARD_LOG`): a level, or comma-separated
/// directives each of which is a level or TARGET=LEVEL, which tracing accepts. A bare word
/// that is not a level (`verbose`, `warning`) is refused although tracing would read it as a
/// target name: it would silently log nothing of what was asked.
pub fn parse_filter(value: &str) -> Result<String, String> {
    const LEVELS: &str = "error, warn, info, debug, trace or off";
    let is_level = |s: &str| s.trim().parse::<LevelFilter>().is_ok();
    if value.trim().is_empty() {
        return Err(format!("it is empty; give a level ({LEVELS})"));
    }
    for directive in value.split(',').map(str::trim) {
        if directive.is_empty() || is_level(directive) {
            continue;
        }
        match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() && is_level(level) => {}
            Some((_, level)) if !is_level(level) => {
                return Err(format!(
                    "`{}` in `{}` is not a level ({LEVELS})",
                    shown(level),
                    shown(directive)
                ));
            }
            _ => {
                return Err(format!(
                    "`{}` is neither a level ({LEVELS}) nor a directive TARGET=LEVEL (such as credguard=debug)",
                    shown(directive)
                ));
            }
        }
    }
    EnvFilter::try_new(value)
        .map(|_| value.to_owned())
        .map_err(|e| format!("not a tracing filter: {e}"))
}

/// Installs the global subscriber. `level` wins over `CREDGUARD_LOG`, which wins over the
/// command's `default` (`warn`; `info` for the agent).
pub fn init(level: Option<&str>, format: LogFormat, default: &str) -> Result<(), String> {
    let filter = match level {
        Some(l) => {
            EnvFilter::try_new(l).map_err(|e| format!("invalid --log-level `{}`: {e}", shown(l)))?
        }
        None => match std::env::var("CREDGUARD_LOG") {
            Ok(v) if !v.trim().is_empty() => parse_filter(&v)
                .and_then(|v| EnvFilter::try_new(&v).map_err(|e| e.to_string()))
                .map_err(|e| format!("invalid CREDGUARD_LOG `{}`: {e}", shown(&v)))?,
            _ => EnvFilter::new(default),
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
