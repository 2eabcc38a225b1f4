//! `credguard instances add|list|show|remove`.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use credguard::lifecycle::reconcile::PlanItem;
use credguard::wire::ContainerCredentialGuardInstance;
use credguard::{ContainerIds, Isolation, LoadedSpec, Plan, Removal, SpecRequest};

use crate::Context;
use crate::chain::chain_line;
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

    /// Send nothing: print the library's plan, after the same checks as a real add: the HCS
    /// calls in order with the documents they would send (`<ServiceId>` and empty Settings
    /// stand for what only HCS's answer holds).
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
    // Said in the flags' terms before the spec is read (the library refuses it too).
    if args.uvm.is_some() && args.isolation != Isolation::HyperV {
        return Err(CliError::usage("--uvm applies to --isolation hyperv only"));
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
    // The library checks the request (the id, --gmsa-disabled, the policy the spec's source
    // carries: an OCI bundle's gMSA-disable annotation, however the bundle was named) before
    // the spec is linted, and before anything is written or sent.
    let loaded = read_credspec_from(ctx, &source, &args.dir, args.no_lint, |spec| {
        request(args, spec).check()
    })?;
    if args.dry_run {
        // The request's plan needs no backend and no state directory: a dry run works
        // where HCS cannot be reached, and opens nothing.
        let plan = request(args, &loaded).plan()?;
        print_plan(ctx, &args.id, &plan);
        return Ok(Exit::Ok);
    }
    let client = ctx.client()?;
    let (instance, handle) = client.create_spec_request(&request(args, &loaded))?;
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

/// The library's request for `instances add`.
fn request<'a>(args: &'a AddArgs, spec: &'a LoadedSpec) -> SpecRequest<'a> {
    SpecRequest::new(&args.id, spec, args.isolation)
        .with_utility_vm(args.uvm.as_deref())
        .with_gmsa_disabled(args.gmsa_disabled.then_some("--gmsa-disabled"))
}

/// `--dry-run`: the calls the library's plan lists, in order, with their documents
/// (credential specs redacted unless --show-secrets). JSON: an array of
/// `{"api", "target", "purpose", "document", "from_answer"?}`.
fn print_plan(ctx: &Context, plan_id: &str, plan: &Plan) {
    let calls: Vec<serde_json::Value> = plan
        .calls
        .iter()
        .map(|call| {
            let mut v = serde_json::to_value(call).unwrap_or(serde_json::Value::Null);
            v["document"] = shown(v["document"].take(), ctx.show_secrets);
            v
        })
        .collect();
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &AddDoc::DryRun(DryRunDoc {
                dry_run: true,
                container_id: plan_id.to_owned(),
                calls: plan
                    .calls
                    .iter()
                    .zip(&calls)
                    .map(|(call, shown)| PlannedCall {
                        api: call.operation.api_name().to_owned(),
                        target: call.target.clone(),
                        purpose: call.purpose.to_owned(),
                        document: shown["document"].clone(),
                        from_answer: call.from_answer.iter().map(|s| (*s).to_owned()).collect(),
                    })
                    .collect(),
            }),
        ),
        OutputFormat::Text => {
            outln!("dry run: nothing is sent; these documents would be, in order:");
            for (call, shown) in plan.calls.iter().zip(&calls) {
                match &call.target {
                    Some(target) => outln!(
                        "{} on `{}` ({}):",
                        call.operation.api_name(),
                        text(target),
                        call.purpose
                    ),
                    None => outln!("{} ({}):", call.operation.api_name(), call.purpose),
                }
                outln!("  {}", shown["document"]);
                if !call.from_answer.is_empty() {
                    outln!(
                        "  (placeholders for what HCS's answer holds: {})",
                        call.from_answer.join(", ")
                    );
                }
            }
        }
    }
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
    let instance = client.get_existing(id)?;
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
    // Every id is checked before anything is opened or removed.
    let ids = ContainerIds::new(ids)?;
    let client = ctx.client()?;
    let outcomes = client.remove_each(&ids);
    let mut results: RemoveDoc = Vec::new();
    let mut failure: Option<CliError> = None;
    for (id, outcome) in ids.as_slice().iter().zip(outcomes) {
        let e = match outcome {
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
                continue;
            }
            Err(e) => e,
        };
        if e.entry_left().is_some() {
            // The instance is gone (removed now, or absent already); only its HvSocket entry
            // is left, and the journal keeps it for reconcile.
            let removed = e.instance_removed();
            if !ctx.output.is_json() {
                if removed {
                    outln!(
                        "removed the CCG instance of `{id}` (its HvSocket entry is left for `credguard reconcile`)"
                    );
                } else {
                    outln!(
                        "`{id}` has no CCG instance (already absent); its HvSocket entry is still left for `credguard reconcile`"
                    );
                }
            }
            results.push(RemoveItem {
                container_id: id.clone(),
                result: if removed {
                    RemoveResult::Removed
                } else {
                    RemoveResult::Absent
                },
                warning: Some(chain_line(&e)),
                entry_left: EntryLeft::of(&e),
                error: None,
            });
        } else {
            results.push(RemoveItem {
                container_id: id.clone(),
                result: RemoveResult::Failed,
                warning: None,
                entry_left: None,
                error: Some(chain_line(&e)),
            });
        }
        let e = CliError::from(e);
        if failure.is_some() {
            // Only the first failure decides the exit code; the others are printed now.
            e.print();
        } else {
            failure = Some(e);
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
