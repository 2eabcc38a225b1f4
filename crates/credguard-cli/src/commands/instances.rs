//! `credguard instances add|list|show|remove`.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use credguard::lifecycle::reconcile::PlanItem;
use credguard::wire::{
    ContainerCredentialGuardInstance, ModificationRequest, ModifySettingRequest, to_wire,
};
use credguard::{Isolation, Removal, SpecRequest};

use crate::Context;
use crate::commands::reconcile::AliveArgs;
use crate::credspec_input::{CredspecDirArg, read_credspec_from};
use crate::documents::{
    AddDoc, DryRunDoc, EntryLeft, InstanceDoc, ListDoc, ListRow, PlannedCall, RemoveDoc,
    RemoveItem, RemoveResult,
};
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, emit, instance_json, print_instance_text, shown, text};

pub const EXAMPLES: &str = "\
Examples:
  credguard instances add --id web-1 --credspec contoso_webapp01.json
  credguard instances list
  credguard instances list --orphans --alive web-1
  credguard instances show web-1
  credguard instances remove web-1";

const ADD_EXAMPLES: &str = "\
Examples:
  # process isolation (LRPC)
  credguard instances add --id web-1 --credspec contoso_webapp01.json
  # Hyper-V isolation (HvSocket)
  credguard instances add --id web-2 --credspec - --isolation hyperv < spec.json
  # print the documents, send nothing
  credguard instances add --id web-3 --credspec file://contoso_webapp01.json --dry-run
  # hot-add the HvSocket entry
  credguard instances add --id web-4 --credspec spec.json --isolation hyperv --uvm uvm-1
  # spec and policy from the bundle
  credguard instances add --id web-5 --oci-bundle /run/bundles/web-5
  # a Kubernetes GMSACredentialSpec
  credguard instances add --id web-6 --credspec manifests.yaml#webapp1-credspec";

const LIST_EXAMPLES: &str = "\
Examples:
  # owner, state, age, what reconcile would do
  credguard instances list
  # what reconcile would remove if only these run
  credguard instances list --orphans --alive web-1 web-4
  credguard instances list --orphans --alive-file running.txt --include-foreign
  credguard --output json instances list";

const SHOW_EXAMPLES: &str = "\
Examples:
  credguard instances show web-1
  # the instance as HCS lists it
  credguard --output json instances show web-1
  # with PluginInput
  credguard --output json --show-secrets instances show web-1";

const REMOVE_EXAMPLES: &str = "\
Examples:
  credguard instances remove web-1
  # an id without an instance is reported, not an error
  credguard instances remove web-1 web-2 web-3
  credguard --output json instances remove web-1";

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    /// Create the CCG instance of a container and print it. The instance stays until
    /// `instances remove` (HCS keeps it until removed or vmcompute.exe restarts). An id that
    /// has an instance is refused (exit 5), and so is one whose journal record keeps an
    /// HvSocket entry of an earlier instance that its utility VM still refuses to remove.
    #[command(after_help = ADD_EXAMPLES)]
    Add(AddArgs),
    /// List every CCG instance HCS knows, with whether the journal owns it, its state and
    /// age, and what `reconcile` would do with it.
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Show the instance of one container id (exit 4 if there is none).
    #[command(after_help = SHOW_EXAMPLES)]
    Show {
        /// The container id.
        id: String,
    },
    /// Remove the instances of these container ids; ids without an instance are reported
    /// (`absent`), not treated as errors. Only the process whose RemoveInstance removed an
    /// instance reports `removed`; a concurrent one reports `absent`. An id whose create is
    /// in progress in a live process is refused (exit 5). An instance removed whose HvSocket
    /// entry could not be is reported `removed` with a warning, and exit 3; `reconcile`
    /// removes the entry later. An id with no instance whose HvSocket entry (left by such a
    /// removal) still cannot be removed is reported `absent` with a warning, and exit 3.
    /// JSON output names such an entry in `entry_left`.
    #[command(after_help = REMOVE_EXAMPLES)]
    Remove {
        /// The container ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only what `reconcile` (with the same --alive/--alive-file/--include-foreign) would
    /// remove or drop.
    #[arg(long)]
    pub orphans: bool,

    #[command(flatten)]
    pub alive: AliveArgs,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The container id the instance belongs to (1 to 256 printable characters).
    #[arg(long)]
    pub id: String,

    /// The credential spec: a path (a spec, a Kubernetes GMSACredentialSpec manifest as PATH
    /// or PATH#NAME, or an OCI bundle config.json), `-` for standard input, file://NAME
    /// (relative to --credspec-dir), raw://JSON, or registry://NAME (Windows).
    #[arg(
        long,
        value_name = "SOURCE",
        required_unless_present = "oci_bundle",
        conflicts_with = "oci_bundle"
    )]
    pub credspec: Option<String>,

    /// An OCI runtime bundle: the credential spec is its config.json's
    /// `windows.credentialSpec`, and its annotation `io.microsoft.container.wcow.gmsa.disable`
    /// = `true` refuses the spec ("operation denied", exit 6) before anything is sent (as it
    /// does for a config.json given to --credspec in any form).
    #[arg(long, value_name = "DIR")]
    pub oci_bundle: Option<PathBuf>,

    #[command(flatten)]
    pub dir: CredspecDirArg,

    /// Use the credential spec even if the linter finds errors in it (they are logged as
    /// warnings). Without this, a spec with lint errors is refused before anything is sent.
    #[arg(long)]
    pub no_lint: bool,

    /// The container's isolation: `process` (LRPC) or `hyperv` (HvSocket).
    #[arg(long, value_enum, default_value = "process")]
    pub isolation: Isolation,

    /// Hyper-V isolation: the utility VM to hot-add the instance's HvSocket service-table
    /// entry to (removed again on release).
    #[arg(long, value_name = "ID")]
    pub uvm: Option<String>,

    /// Apply the gMSA disable policy (as hcsshim's `io.microsoft.container.wcow.gmsa.disable`
    /// annotation does): refuse the credential spec with "operation denied", sending nothing.
    #[arg(long)]
    pub gmsa_disabled: bool,

    /// Send nothing: print the documents that would be sent, in order.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Context, cmd: InstancesCommand) -> Result<Exit, CliError> {
    match cmd {
        InstancesCommand::Add(args) => add(ctx, &args),
        InstancesCommand::List(args) => list(ctx, &args),
        InstancesCommand::Show { id } => show(ctx, &id),
        InstancesCommand::Remove { ids } => remove(ctx, &ids),
    }
}

fn add(ctx: &Context, args: &AddArgs) -> Result<Exit, CliError> {
    credguard::lifecycle::validate_container_id(&args.id)?;
    let denied = |reason: String| -> CliError {
        credguard::CcgError::Denied {
            container_id: credguard::text::ShownId::new(&args.id),
            reason,
        }
        .into()
    };
    if args.gmsa_disabled {
        return Err(denied("--gmsa-disabled".into()));
    }
    let source = match (&args.credspec, &args.oci_bundle) {
        (Some(source), _) => source.clone(),
        (None, Some(bundle)) => bundle.join("config.json").display().to_string(),
        (None, None) => {
            return Err(CliError::usage(
                "give --credspec SOURCE or --oci-bundle DIR",
            ));
        }
    };
    // The spec carries its source's policy (an OCI bundle's gMSA-disable annotation, however
    // the bundle was named); the library refuses what it denies.
    let loaded = read_credspec_from(ctx, &source, &args.dir, args.no_lint, &args.id)?;
    let isolation = args.isolation;
    if args.uvm.is_some() && isolation != Isolation::HyperV {
        return Err(CliError::usage("--uvm applies to --isolation hyperv only"));
    }
    if args.dry_run {
        let spec = loaded.document.canonical();
        return dry_run(ctx, &args.id, &spec, isolation, args.uvm.as_deref());
    }
    let client = ctx.client()?;
    let request = SpecRequest {
        container_id: &args.id,
        spec: &loaded,
        isolation,
        utility_vm: args.uvm.as_deref(),
    };
    let (instance, handle) = client.create_spec_request(&request)?;
    // The instance outlives this process by design; `instances remove` releases it.
    handle.detach();
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &AddDoc::Created(InstanceDoc {
                container_id: instance.id.clone(),
                instance: instance_json(&instance, ctx.show_secrets),
            }),
        ),
        OutputFormat::Text => {
            outln!(
                "created the CCG instance of container `{}`",
                text(&instance.id)
            );
            print_instance_text(&instance);
        }
    }
    Ok(Exit::Ok)
}

fn dry_run(
    ctx: &Context,
    id: &str,
    spec: &str,
    isolation: Isolation,
    uvm: Option<&str>,
) -> Result<Exit, CliError> {
    let query = credguard::CCG_QUERY.to_owned();
    let wire_err = |e| CliError::new(Exit::Usage, e);
    let add = to_wire(&ModificationRequest::add_instance(
        id,
        spec,
        isolation.transport(),
    ))
    .map_err(wire_err)?;
    let mut steps = vec![
        (
            "HcsGetServiceProperties",
            None,
            "refuse an id that already has an instance",
            query.clone(),
        ),
        ("HcsModifyServiceSettings", None, "AddInstance", add),
        (
            "HcsGetServiceProperties",
            None,
            "read the new instance",
            query,
        ),
    ];
    if let Some(vm) = uvm {
        // The ServiceId and the config come from HCS's answer: placeholders here.
        let placeholder = credguard::wire::HvSocketServiceConfig::default();
        let doc = to_wire(&ModifySettingRequest::hvsocket_update(
            "<ServiceId>",
            &placeholder,
        ))
        .map_err(wire_err)?;
        steps.push((
            "HcsModifyComputeSystem",
            Some(vm),
            "hot-add the HvSocket service-table entry (Settings: the instance's ServiceConfig)",
            doc,
        ));
    }
    let calls: Vec<PlannedCall> = steps
        .iter()
        .map(|(api, target, purpose, doc)| {
            let document = serde_json::from_str(doc).unwrap_or(serde_json::Value::Null);
            PlannedCall {
                api: (*api).to_owned(),
                target: target.map(str::to_owned),
                purpose: (*purpose).to_owned(),
                document: shown(document, ctx.show_secrets),
            }
        })
        .collect();
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &AddDoc::DryRun(DryRunDoc {
                dry_run: true,
                container_id: id.to_owned(),
                calls,
            }),
        ),
        OutputFormat::Text => {
            outln!("dry run: nothing is sent; these documents would be, in order:");
            for c in &calls {
                outln!("{} ({}):", c.api, c.purpose);
                outln!("  {}", c.document);
            }
        }
    }
    Ok(Exit::Ok)
}

fn list(ctx: &Context, args: &ListArgs) -> Result<Exit, CliError> {
    let opts = args.alive.options()?;
    let client = ctx.client_read_only()?;
    let instances = client.list()?;
    let plan = client.plan_reconcile(&opts)?;
    let by_id: HashMap<&str, &PlanItem> =
        plan.iter().map(|p| (p.container_id.as_str(), p)).collect();
    let orphan = |p: Option<&&PlanItem>| p.is_some_and(|p| p.action.is_change());
    // Instances HCS lists, then journal records whose instance is gone.
    let mut rows: Vec<(Option<&ContainerCredentialGuardInstance>, Option<&PlanItem>)> = instances
        .iter()
        .map(|i| (Some(i), by_id.get(i.id.as_str()).copied()))
        .collect();
    rows.extend(plan.iter().filter(|p| !p.listed).map(|p| (None, Some(p))));
    if args.orphans {
        rows.retain(|(_, p)| orphan(p.as_ref()));
    }
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &rows
                .iter()
                .map(|(inst, p)| ListRow {
                    container_id: inst.map_or_else(
                        || p.map_or_else(String::new, |p| p.container_id.clone()),
                        |i| i.id.clone(),
                    ),
                    listed: inst.is_some(),
                    owned: p.is_some_and(|p| p.owned),
                    state: p.and_then(|p| p.state),
                    age_ms: p.and_then(|p| p.age_ms),
                    utility_vm: p.and_then(|p| p.utility_vm.clone()),
                    service_id: p.and_then(|p| p.service_id.clone()),
                    reconcile: p.map(|p| p.action),
                    orphan: orphan(p.as_ref()),
                    instance: inst.map(|i| instance_json(i, ctx.show_secrets)),
                })
                .collect::<ListDoc>(),
        ),
        OutputFormat::Text => {
            if rows.is_empty() {
                outln!(
                    "{}",
                    if args.orphans {
                        "no orphans"
                    } else {
                        "no CCG instances"
                    }
                );
            } else {
                outln!(
                    "{:<40} {:<9} {:<8} {:<10} {:>8}  {:<24} {:<36} RECONCILE",
                    "CONTAINER ID",
                    "TRANSPORT",
                    "OWNER",
                    "STATE",
                    "AGE",
                    "RPC ENDPOINT",
                    "SERVICE ID"
                );
                for (inst, p) in &rows {
                    let cg = inst.and_then(|i| i.credential_guard.as_ref());
                    outln!(
                        "{:<40} {:<9} {:<8} {:<10} {:>8}  {:<24} {:<36} {}",
                        text(inst.map_or_else(
                            || p.map_or("", |p| p.container_id.as_str()),
                            |i| i.id.as_str()
                        )),
                        text(cg.map_or("-", |c| c.transport.as_str())),
                        if p.is_some_and(|p| p.owned) {
                            "journal"
                        } else {
                            "foreign"
                        },
                        p.and_then(|p| p.state)
                            .map_or(if inst.is_some() { "-" } else { "gone" }, |s| s.as_str()),
                        p.and_then(|p| p.age_ms).map_or_else(|| "-".to_owned(), age),
                        text(cg.map_or("-", |c| c.rpc_endpoint.as_str())),
                        text(
                            inst.and_then(|i| i.hv_socket_config.as_ref())
                                .map(|h| h.service_id.as_str())
                                .or_else(|| p.and_then(|p| p.service_id.as_deref()))
                                .unwrap_or("-"),
                        ),
                        p.map_or("keep_foreign", |p| p.action.as_str()),
                    );
                }
            }
        }
    }
    Ok(Exit::Ok)
}

/// A record's age for people: `42s`, `17m`, `3h`, `2d`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn show(ctx: &Context, id: &str) -> Result<Exit, CliError> {
    let client = ctx.client_read_only()?;
    let Some(instance) = client.get(id)? else {
        return Err(credguard::CcgError::NotFound {
            container_id: credguard::text::ShownId::new(id),
        }
        .into());
    };
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &InstanceDoc {
                container_id: instance.id.clone(),
                instance: instance_json(&instance, ctx.show_secrets),
            },
        ),
        OutputFormat::Text => print_instance_text(&instance),
    }
    Ok(Exit::Ok)
}

fn remove(ctx: &Context, ids: &[String]) -> Result<Exit, CliError> {
    // Check every id before touching anything.
    for id in ids {
        credguard::lifecycle::validate_container_id(id)?;
    }
    let client = ctx.client()?;
    let mut results: RemoveDoc = Vec::new();
    let mut failure: Option<CliError> = None;
    for id in ids {
        match client.remove(id) {
            Ok(outcome) => {
                let what = match outcome {
                    Removal::Removed => RemoveResult::Removed,
                    Removal::AlreadyAbsent => RemoveResult::Absent,
                };
                if !ctx.output.is_json() {
                    match outcome {
                        Removal::Removed => outln!("removed the CCG instance of `{id}`"),
                        Removal::AlreadyAbsent => {
                            outln!("`{id}` has no CCG instance (already absent)");
                        }
                    }
                }
                results.push(RemoveItem {
                    container_id: id.clone(),
                    result: what,
                    warning: None,
                    entry_left: None,
                    error: None,
                });
            }
            Err(e @ credguard::CcgError::HvSocketEntryLeft { .. }) => {
                // The instance is gone; only its HvSocket entry is left, for reconcile.
                if !ctx.output.is_json() {
                    outln!(
                        "removed the CCG instance of `{id}` (its HvSocket entry is left for `credguard reconcile`)"
                    );
                }
                results.push(RemoveItem {
                    container_id: id.clone(),
                    result: RemoveResult::Removed,
                    warning: Some(credguard::text::chain_line(&e)),
                    entry_left: EntryLeft::of(&e),
                    error: None,
                });
                let e = CliError::from(e);
                if failure.is_some() {
                    e.print();
                } else {
                    failure = Some(e);
                }
            }
            Err(
                e @ credguard::CcgError::HvSocketEntry {
                    step: credguard::lifecycle::Step::HvSocketRemove,
                    ..
                },
            ) => {
                // No instance; the HvSocket entry an earlier refused removal left is still
                // there, and the journal keeps it for reconcile.
                if !ctx.output.is_json() {
                    outln!(
                        "`{id}` has no CCG instance (already absent); its HvSocket entry is still left for `credguard reconcile`"
                    );
                }
                results.push(RemoveItem {
                    container_id: id.clone(),
                    result: RemoveResult::Absent,
                    warning: Some(credguard::text::chain_line(&e)),
                    entry_left: EntryLeft::of(&e),
                    error: None,
                });
                let e = CliError::from(e);
                if failure.is_some() {
                    e.print();
                } else {
                    failure = Some(e);
                }
            }
            Err(e) => {
                results.push(RemoveItem {
                    container_id: id.clone(),
                    result: RemoveResult::Failed,
                    warning: None,
                    entry_left: None,
                    error: Some(credguard::text::chain_line(&e)),
                });
                let e = CliError::from(e);
                if failure.is_some() {
                    // Only the first failure decides the exit code; the others are printed now.
                    e.print();
                } else {
                    failure = Some(e);
                }
            }
        }
    }
    if ctx.output.is_json() {
        emit(ctx.output, &results);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Exit::Ok),
    }
}
