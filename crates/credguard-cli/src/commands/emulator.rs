//! `credguard emulator`: the HCS emulator's call log, fault injection, reset and utility VMs.
//!
//! These commands act on the emulator's state under the state directory, whatever
//! `--backend` says (they refuse `--backend hcs`, which has no emulator).

use clap::{Args, Subcommand};
use credguard::hcs::hresult::HResult;
use credguard_emulator::{Api, Emulator, Fault, FaultAction};

use crate::Context;
use crate::backend::{BackendKind, open_emulator, open_emulator_read_only};
use crate::documents::{
    CallDoc, FaultsCleared, InjectDoc, LogDoc, ResetDoc, ResetPart, UvmChange, UvmChangeDoc,
    UvmListDoc, UvmShowDoc,
};
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, count, emit, text};

pub const EXAMPLES: &str = "\
Examples:
  credguard emulator log --tail 5
  credguard emulator inject --api HcsModifyServiceSettings --operation AddInstance \\
      --hresult 0x8037011B
  credguard emulator reset --all
  credguard emulator uvm create uvm-1";

const LOG_EXAMPLES: &str = "\
Examples:
  # every call, one JSON object a line
  credguard emulator log
  # the last three calls
  credguard emulator log --tail 3
  # print, then empty the log
  credguard emulator log --clear";

const INJECT_EXAMPLES: &str = "\
Examples:
  credguard emulator inject --api HcsModifyServiceSettings --operation AddInstance \\
      --hresult 0x8037011B
  credguard emulator inject --api HcsModifyServiceSettings --operation AddInstance \\
      --hresult E_ACCESSDENIED \\
      --result '{\"Error\":-2147024891,\"ErrorMessage\":\"Access is denied.\"}'
  credguard emulator inject --api HcsModifyServiceSettings --operation RemoveInstance \\
      --apply-then-fail
  credguard emulator inject --api HcsGetServiceProperties --skip 1 \\
      --response '{\"Properties\":[]}'
  credguard emulator inject --api HcsGetServiceProperties --delay-ms 5000 --times 2
  credguard emulator inject --list
  credguard emulator inject --clear";

const RESET_EXAMPLES: &str = "\
Examples:
  # no instances, no utility VMs (as after a vmcompute.exe restart)
  credguard emulator reset
  # and no queued faults, an empty call log
  credguard emulator reset --all";

const UVM_EXAMPLES: &str = "\
Examples:
  credguard emulator uvm create uvm-1
  credguard emulator uvm list
  credguard emulator uvm show uvm-1
  credguard emulator uvm stop uvm-1
  credguard emulator uvm remove uvm-1";

const UVM_CREATE_EXAMPLES: &str = "\
Examples:
  credguard emulator uvm create uvm-1
  credguard instances add --id web-1 --credspec spec.json --isolation hyperv --uvm uvm-1";

const UVM_SHOW_EXAMPLES: &str = "\
Examples:
  credguard emulator uvm show uvm-1
  credguard --output json emulator uvm show uvm-1";

const UVM_LIST_EXAMPLES: &str = "\
Examples:
  credguard emulator uvm list
  credguard --output json emulator uvm list";

const UVM_REMOVE_EXAMPLES: &str = "\
Examples:
  # then removing web-1's HvSocket entry finds no VM
  credguard emulator uvm remove uvm-1";

const UVM_STOP_EXAMPLES: &str = "\
Examples:
  # then modifications of uvm-1 fail with 0xC0370110
  credguard emulator uvm stop uvm-1";

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Print the call log, one call a line:
    /// {"seq":N,"api":"HcsModifyServiceSettings","target":null,"document":{...},"hresult":"0x00000000"}
    /// (as text and with --output jsonl); --output json prints them as one JSON array.
    /// PluginInput is redacted unless --show-secrets.
    #[command(after_help = LOG_EXAMPLES)]
    Log(LogArgs),
    /// Queue a fault for the next matching calls, list the queue, or clear it.
    #[command(after_help = INJECT_EXAMPLES)]
    Inject(InjectArgs),
    /// Drop every CCG instance and utility VM, as a vmcompute.exe restart does. Queued
    /// faults and the call log stay unless --all.
    #[command(after_help = RESET_EXAMPLES)]
    Reset {
        /// Also clear the queued faults and the call log.
        #[arg(long)]
        all: bool,
    },
    /// Emulated utility VMs (for Hyper-V isolation).
    #[command(subcommand, after_help = UVM_EXAMPLES)]
    Uvm(UvmCommand),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the last N calls.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Clear the log after printing it.
    #[arg(long)]
    pub clear: bool,
}

#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The call to fault: HcsModifyServiceSettings, HcsGetServiceProperties or
    /// HcsModifyComputeSystem (the `Hcs` prefix is optional).
    #[arg(long, required_unless_present_any = ["clear", "list"])]
    pub api: Option<Api>,

    /// Only calls of this operation: AddInstance or RemoveInstance (service settings);
    /// Add, Update or Remove (compute-system modifications).
    #[arg(long)]
    pub operation: Option<String>,

    /// Fail with this HRESULT (hex like 0x8037011B, decimal, or a name like E_FAIL);
    /// without --apply-then-fail the call is not applied.
    #[arg(long)]
    pub hresult: Option<HResult>,

    /// The result document returned with the failure (any text: it need not parse).
    #[arg(long, value_name = "DOC")]
    pub result: Option<String>,

    /// Apply the call and succeed, but answer with this text instead of the real answer.
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["hresult", "result", "apply_then_fail"])]
    pub response: Option<String>,

    /// Apply the call, then report failure (with --hresult, default E_FAIL).
    #[arg(long)]
    pub apply_then_fail: bool,

    /// Delay the call by this many milliseconds (the emulator stays usable meanwhile).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay_ms: u64,

    /// How many matching calls the fault applies to.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub times: u32,

    /// Let this many matching calls pass before the fault applies (e.g. 1 to hit the query
    /// after AddInstance instead of the one before it).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip: u32,

    /// Drop every queued fault instead.
    #[arg(long, conflicts_with_all = ["api", "list"])]
    pub clear: bool,

    /// Print the queued faults instead.
    #[arg(long, conflicts_with = "api")]
    pub list: bool,
}

#[derive(Debug, Subcommand)]
pub enum UvmCommand {
    /// Create a utility VM with an empty HvSocket service table.
    #[command(after_help = UVM_CREATE_EXAMPLES)]
    Create {
        /// The utility VM's compute-system id.
        id: String,
    },
    /// Show a utility VM's HvSocket service table.
    #[command(after_help = UVM_SHOW_EXAMPLES)]
    Show {
        /// The utility VM's compute-system id.
        id: String,
    },
    /// List the utility VMs.
    #[command(after_help = UVM_LIST_EXAMPLES)]
    List,
    /// Remove a utility VM (as when it is gone); calls on it then fail with 0xC037010E.
    #[command(after_help = UVM_REMOVE_EXAMPLES)]
    Remove {
        /// The utility VM's compute-system id.
        id: String,
    },
    /// Stop a utility VM: it keeps its service table, but modifications of it then fail
    /// with 0xC0370110 (HCS_E_SYSTEM_ALREADY_STOPPED).
    #[command(after_help = UVM_STOP_EXAMPLES)]
    Stop {
        /// The utility VM's compute-system id.
        id: String,
    },
}

pub fn run(ctx: &Context, cmd: EmulatorCommand) -> Result<Exit, CliError> {
    if ctx.backend == BackendKind::Hcs {
        return Err(CliError::usage(
            "the emulator commands act on the emulator; --backend hcs has none (drop --backend or use --backend emulator)",
        ));
    }
    // Reading the call log, the queued faults or the utility VMs changes nothing, so it
    // works on a read-only state directory and creates nothing in a missing one.
    let read_only = match &cmd {
        EmulatorCommand::Log(args) => !args.clear,
        EmulatorCommand::Inject(args) => args.list,
        EmulatorCommand::Uvm(UvmCommand::List | UvmCommand::Show { .. }) => true,
        EmulatorCommand::Reset { .. } | EmulatorCommand::Uvm(_) => false,
    };
    let emu = if read_only {
        open_emulator_read_only(&ctx.state_dir)?
    } else {
        open_emulator(&ctx.state_dir)?
    };
    match cmd {
        EmulatorCommand::Log(args) => log(ctx, &emu, &args),
        EmulatorCommand::Inject(args) => inject(ctx, &emu, args),
        EmulatorCommand::Reset { all } => {
            emu.reset()?;
            let mut cleared = vec![ResetPart::CcgInstances, ResetPart::UtilityVms];
            if all {
                emu.clear_faults()?;
                emu.clear_calls()?;
                cleared.extend([ResetPart::Faults, ResetPart::CallLog]);
            }
            if ctx.output.is_json() {
                emit(ctx.output, &ResetDoc { cleared });
            } else {
                outln!(
                    "emulator reset: no CCG instances, no utility VMs{}",
                    if all {
                        ", no faults, empty call log"
                    } else {
                        ""
                    }
                );
            }
            Ok(Exit::Ok)
        }
        EmulatorCommand::Uvm(cmd) => uvm(ctx, &emu, cmd),
    }
}

fn log(ctx: &Context, emu: &Emulator, args: &LogArgs) -> Result<Exit, CliError> {
    let calls = emu.calls()?;
    let skip = args.tail.map_or(0, |n| calls.len().saturating_sub(n));
    let shown: LogDoc = calls[skip..]
        .iter()
        .map(|c| CallDoc::of(c, ctx.show_secrets))
        .collect();
    if ctx.output.is_json() {
        emit(ctx.output, &shown);
    } else {
        for call in &shown {
            outln!("{}", serde_json::to_string(call).unwrap_or_default());
        }
    }
    if args.clear {
        emu.clear_calls()?;
    }
    Ok(Exit::Ok)
}

fn inject(ctx: &Context, emu: &Emulator, args: InjectArgs) -> Result<Exit, CliError> {
    if args.clear {
        // Counted first: what the queue held when it was cleared, for the report.
        let cleared_faults = emu.faults()?.len();
        emu.clear_faults()?;
        if ctx.output.is_json() {
            emit(
                ctx.output,
                &InjectDoc::Cleared(FaultsCleared { cleared_faults }),
            );
        } else {
            outln!(
                "cleared {cleared_faults} queued fault{}",
                if cleared_faults == 1 { "" } else { "s" }
            );
        }
        return Ok(Exit::Ok);
    }
    if args.list {
        let faults = emu.faults()?;
        match ctx.output {
            OutputFormat::Json | OutputFormat::Jsonl => emit(ctx.output, &InjectDoc::List(faults)),
            OutputFormat::Text if faults.is_empty() => outln!("no queued faults"),
            OutputFormat::Text => {
                for f in &faults {
                    outln!("{}", serde_json::to_string(f).unwrap_or_default());
                }
            }
        }
        return Ok(Exit::Ok);
    }
    let Some(api) = args.api else {
        return Err(CliError::usage("--api is required to inject a fault"));
    };
    if let Some(op) = &args.operation {
        let allowed = api.operations();
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(op)) {
            return Err(CliError::usage(if allowed.is_empty() {
                format!("--operation does not apply to {api}: it has a single operation")
            } else {
                format!(
                    "--operation `{}` is not an operation of {api}; use one of {}",
                    credguard::text::ShownId::new(op),
                    allowed.join(", ")
                )
            }));
        }
    }
    if args.times == 0 {
        return Err(CliError::usage("--times must be at least 1"));
    }
    let action = if let Some(text) = args.response {
        FaultAction::Respond { text }
    } else if args.apply_then_fail {
        FaultAction::ApplyThenFail {
            hresult: args.hresult.unwrap_or(HResult::E_FAIL),
            result: args.result,
        }
    } else if args.hresult.is_some() || args.result.is_some() {
        FaultAction::Fail {
            hresult: args.hresult.unwrap_or(HResult::E_FAIL),
            result: args.result,
        }
    } else if args.delay_ms > 0 {
        FaultAction::None
    } else {
        return Err(CliError::usage(
            "say what the fault does: --hresult, --result, --response, --apply-then-fail or --delay-ms",
        ));
    };
    if let FaultAction::Fail { hresult, .. } | FaultAction::ApplyThenFail { hresult, .. } = &action
        && !hresult.is_failure()
    {
        return Err(CliError::usage(format!(
            "--hresult {hresult} is not a failure code (the high bit is clear); HCS reports failures with negative HRESULTs"
        )));
    }
    let mut fault = Fault::new(api, action)
        .times(args.times)
        .skip(args.skip)
        .delay_ms(args.delay_ms);
    fault.operation = args.operation;
    emu.inject(fault.clone())?;
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(ctx.output, &InjectDoc::Queued(fault)),
        OutputFormat::Text => outln!(
            "queued: {}",
            serde_json::to_string(&fault).unwrap_or_default()
        ),
    }
    Ok(Exit::Ok)
}

fn uvm(ctx: &Context, emu: &Emulator, cmd: UvmCommand) -> Result<Exit, CliError> {
    let changed = |id: String, action: UvmChange| {
        if ctx.output.is_json() {
            emit(
                ctx.output,
                &UvmChangeDoc {
                    utility_vm: id,
                    action,
                },
            );
        } else {
            let verb = match action {
                UvmChange::Created => "created",
                UvmChange::Removed => "removed",
                UvmChange::Stopped => "stopped",
            };
            outln!("{verb} utility VM `{}`", text(&id));
        }
    };
    match cmd {
        UvmCommand::Create { id } => {
            emu.create_uvm(&id)?;
            changed(id, UvmChange::Created);
        }
        UvmCommand::Remove { id } => {
            emu.remove_uvm(&id)?;
            changed(id, UvmChange::Removed);
        }
        UvmCommand::Stop { id } => {
            emu.stop_uvm(&id)?;
            changed(id, UvmChange::Stopped);
        }
        UvmCommand::List => {
            let ids: UvmListDoc = emu.uvm_ids()?;
            match ctx.output {
                OutputFormat::Json | OutputFormat::Jsonl => emit(ctx.output, &ids),
                OutputFormat::Text if ids.is_empty() => outln!("no utility VMs"),
                OutputFormat::Text => ids.iter().for_each(|i| outln!("{}", text(i))),
            }
        }
        UvmCommand::Show { id } => {
            let Some(vm) = emu.uvm(&id)? else {
                return Err(CliError::new(
                    Exit::NotFound,
                    format!(
                        "the emulator has no utility VM `{}`",
                        credguard::text::ShownId::new(&id)
                    ),
                ));
            };
            match ctx.output {
                OutputFormat::Json | OutputFormat::Jsonl => emit(
                    ctx.output,
                    &UvmShowDoc {
                        utility_vm: id.clone(),
                        stopped: vm.stopped,
                        service_table: vm
                            .service_table
                            .iter()
                            .map(|(sid, cfg)| {
                                (sid.clone(), serde_json::to_value(cfg).unwrap_or_default())
                            })
                            .collect(),
                    },
                ),
                OutputFormat::Text => {
                    outln!(
                        "utility VM `{}`{}: {}",
                        text(&id),
                        if vm.stopped { " (stopped)" } else { "" },
                        count(
                            vm.service_table.len(),
                            "HvSocket service-table entry",
                            "HvSocket service-table entries"
                        )
                    );
                    for (sid, cfg) in &vm.service_table {
                        outln!(
                            "  {}: {}",
                            text(sid),
                            serde_json::to_string(cfg).unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(Exit::Ok)
}
