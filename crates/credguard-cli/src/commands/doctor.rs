//! `credguard doctor`: whether this Windows host is ready for gMSA containers.
//!
//! The library runs the checks (`credguard::doctor`); this prints each as ok / warning /
//! failed with what was seen and the next step, or as one JSON document
//! (`docs/schema/doctor.json`). Exit code: 0 when
//! nothing failed (warnings included), 1 when a check failed, 2 for an unreadable
//! `--credspec`, 8 off Windows.

use clap::Args;
use credguard::doctor::{self, DoctorError, DoctorOptions, Report, Status};

use crate::Context;
use crate::credspec_input::{CredspecDirArg, load};
use crate::exit::{CliError, Exit};
use crate::output::{count, emit};

pub const EXAMPLES: &str = "\
Examples:
  credguard doctor
  # also check the plug-in the spec names (its COMClasses registration, COM class and DLL)
  credguard doctor --credspec registry://webapp01
  # and show the CCG events of one container, with their meaning
  credguard doctor --credspec C:\\specs\\webapp01.json --container web-1
  credguard --output json doctor --credspec file://webapp01.json";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A credential spec whose plug-in (PluginGUID) to check: a path, `-`, file://NAME,
    /// raw://JSON or registry://NAME, as for every --credspec.
    #[arg(long, value_name = "SOURCE")]
    pub credspec: Option<String>,

    #[command(flatten)]
    pub dir: CredspecDirArg,

    /// A container id: show its recent events in the CCG event channel
    /// (Microsoft-Windows-Containers-CCG/Admin), with their meaning.
    #[arg(long, value_name = "ID")]
    pub container: Option<String>,
}

/// Off Windows: the library's error, exit 8 (printed as every error is: text on standard
/// error and, under `--output json`, the error document on standard output).
pub fn unavailable(error: DoctorError) -> Result<Exit, CliError> {
    Err(CliError::new(Exit::Unavailable, error))
}

pub fn run(ctx: &Context, args: &DoctorArgs) -> Result<Exit, CliError> {
    let mut options = DoctorOptions {
        container: args.container.clone(),
        ..DoctorOptions::default()
    };
    if let Some(source) = &args.credspec {
        let loaded = load(ctx, source, &args.dir)?;
        let spec = loaded
            .document
            .to_spec()
            .map_err(|e| CliError::new(Exit::Usage, e))?;
        options.spec_given = true;
        options.plugin_guid = spec.plugin_guid().map(str::to_owned);
    }
    let report = match doctor::check_this_host(&options) {
        Ok(report) => report,
        Err(e) => return unavailable(e),
    };
    if ctx.output.is_json() {
        emit(ctx.output, &report);
    } else {
        print_text(&report);
    }
    Ok(if report.any_failed() {
        Exit::CheckFailed
    } else {
        Exit::Ok
    })
}

fn print_text(report: &Report) {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        outln!("{:<7}  {:<width$}  {}", c.status.as_str(), c.name, c.detail);
        if let Some(next) = &c.next_step {
            outln!("{:<7}  {:<width$}  next: {next}", "", "");
        }
    }
    if let Some(container) = &report.container
        && !report.events.is_empty()
    {
        outln!();
        outln!("CCG events of the container {container} (newest first):");
        for e in &report.events {
            let level = match e.level {
                Some(1) => "critical",
                Some(2) => "error",
                Some(3) => "warning",
                Some(4 | 0) => "information",
                _ => "event",
            };
            outln!(
                "  {}  event {} ({level}): {}",
                e.time.as_deref().unwrap_or("(no time)"),
                e.event_id,
                e.meaning
            );
        }
    }
    let s = report.summary;
    outln!();
    outln!(
        "doctor: {} ok, {}, {} failed{}",
        s.ok,
        count(s.warnings, "warning", "warnings"),
        s.failed,
        if report.checks.iter().any(|c| c.status == Status::Failed) {
            ": gMSA containers will fail on this host until the failed checks are fixed"
        } else {
            ""
        }
    );
}
