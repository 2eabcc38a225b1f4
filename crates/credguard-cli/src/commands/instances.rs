//! `credguard instances add|list|show|remove`.

use clap::{Args, Subcommand, ValueEnum};
use credguard::schema::{ModificationRequest, to_wire};
use credguard::{Isolation, Removal};
use serde_json::json;

use crate::Context;
use crate::credspec_input::read_credspec;
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, instance_json, print_instance_text, print_json, shown};

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    /// Create the CCG instance of a container and print it. The instance stays until
    /// `instances remove` (HCS keeps it until removed or vmcompute.exe restarts).
    Add(AddArgs),
    /// List every CCG instance HCS knows.
    List,
    /// Show the instance of one container id (exit 4 if there is none).
    Show {
        /// The container id.
        id: String,
    },
    /// Remove the instances of these container ids; ids without an instance are reported,
    /// not treated as errors.
    Remove {
        /// The container ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// The isolation of the container, which decides the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationArg {
    /// Process isolation: transport LRPC.
    Process,
    /// Hyper-V isolation: transport HvSocket.
    Hyperv,
}

impl From<IsolationArg> for Isolation {
    fn from(i: IsolationArg) -> Self {
        match i {
            IsolationArg::Process => Isolation::Process,
            IsolationArg::Hyperv => Isolation::HyperV,
        }
    }
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The container id the instance belongs to (1 to 256 printable characters).
    #[arg(long)]
    pub id: String,

    /// The credential spec: a file path, or `-` for standard input.
    #[arg(long, value_name = "SOURCE")]
    pub credspec: String,

    /// The container's isolation: `process` (LRPC) or `hyperv` (HvSocket).
    #[arg(long, value_enum, default_value = "process")]
    pub isolation: IsolationArg,

    /// Send nothing: print the documents that would be sent, in order.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Context, cmd: InstancesCommand) -> Result<Exit, CliError> {
    match cmd {
        InstancesCommand::Add(args) => add(ctx, &args),
        InstancesCommand::List => list(ctx),
        InstancesCommand::Show { id } => show(ctx, &id),
        InstancesCommand::Remove { ids } => remove(ctx, &ids),
    }
}

fn add(ctx: &Context, args: &AddArgs) -> Result<Exit, CliError> {
    credguard::input::validate_container_id(&args.id)?;
    let spec = read_credspec(&args.credspec)?;
    let isolation = Isolation::from(args.isolation);
    if args.dry_run {
        return dry_run(ctx, &args.id, &spec, isolation);
    }
    let client = ctx.client()?;
    let (instance, handle) = client.create(&args.id, &spec, isolation)?;
    // The instance outlives this process by design; `instances remove` releases it.
    handle.detach();
    match ctx.output {
        OutputFormat::Json => print_json(&instance_json(&instance, ctx.show_secrets)),
        OutputFormat::Text => {
            println!("created the CCG instance of container `{}`", instance.id);
            print_instance_text(&instance);
        }
    }
    Ok(Exit::Ok)
}

fn dry_run(ctx: &Context, id: &str, spec: &str, isolation: Isolation) -> Result<Exit, CliError> {
    let query = credguard::lifecycle::CCG_QUERY;
    let add = to_wire(&ModificationRequest::add_instance(
        id,
        spec,
        isolation.transport(),
    ))
    .map_err(|e| CliError::new(Exit::Usage, e))?;
    let steps = [
        (
            "HcsGetServiceProperties",
            "refuse an id that already has an instance",
            query,
        ),
        ("HcsModifyServiceSettings", "AddInstance", add.as_str()),
        ("HcsGetServiceProperties", "read the new instance", query),
    ];
    let docs: Vec<_> = steps
        .iter()
        .map(|(api, purpose, doc)| {
            let document = serde_json::from_str(doc).unwrap_or(serde_json::Value::Null);
            json!({"api": api, "purpose": purpose, "document": shown(document, ctx.show_secrets)})
        })
        .collect();
    match ctx.output {
        OutputFormat::Json => print_json(&serde_json::Value::Array(docs)),
        OutputFormat::Text => {
            println!("dry run: nothing is sent; these documents would be, in order:");
            for d in &docs {
                println!(
                    "{} ({}):",
                    d["api"].as_str().unwrap_or(""),
                    d["purpose"].as_str().unwrap_or("")
                );
                println!("  {}", d["document"]);
            }
        }
    }
    Ok(Exit::Ok)
}

fn list(ctx: &Context) -> Result<Exit, CliError> {
    let instances = ctx.client()?.list()?;
    match ctx.output {
        OutputFormat::Json => print_json(&serde_json::Value::Array(
            instances
                .iter()
                .map(|i| instance_json(i, ctx.show_secrets))
                .collect(),
        )),
        OutputFormat::Text => {
            if instances.is_empty() {
                println!("no CCG instances");
            } else {
                println!(
                    "{:<40} {:<9} {:<24} SERVICE ID",
                    "CONTAINER ID", "TRANSPORT", "RPC ENDPOINT"
                );
                for i in &instances {
                    let cg = i.credential_guard.as_ref();
                    println!(
                        "{:<40} {:<9} {:<24} {}",
                        i.id,
                        cg.map_or("-", |c| c.transport.as_str()),
                        cg.map_or("-", |c| c.rpc_endpoint.as_str()),
                        i.hv_socket_config
                            .as_ref()
                            .map_or("-", |h| h.service_id.as_str()),
                    );
                }
            }
        }
    }
    Ok(Exit::Ok)
}

fn show(ctx: &Context, id: &str) -> Result<Exit, CliError> {
    let client = ctx.client()?;
    let Some(instance) = client.get(id)? else {
        return Err(credguard::CcgError::NotFound {
            container_id: credguard::error::ShownId::new(id),
        }
        .into());
    };
    match ctx.output {
        OutputFormat::Json => print_json(&instance_json(&instance, ctx.show_secrets)),
        OutputFormat::Text => print_instance_text(&instance),
    }
    Ok(Exit::Ok)
}

fn remove(ctx: &Context, ids: &[String]) -> Result<Exit, CliError> {
    // Check every id before touching anything.
    for id in ids {
        credguard::input::validate_container_id(id)?;
    }
    let client = ctx.client()?;
    let mut results = Vec::new();
    let mut failure: Option<CliError> = None;
    for id in ids {
        match client.remove(id) {
            Ok(outcome) => {
                let what = match outcome {
                    Removal::Removed => "removed",
                    Removal::AlreadyAbsent => "absent",
                };
                if ctx.output == OutputFormat::Text {
                    match outcome {
                        Removal::Removed => println!("removed the CCG instance of `{id}`"),
                        Removal::AlreadyAbsent => {
                            println!("`{id}` has no CCG instance (already absent)");
                        }
                    }
                }
                results.push(json!({"id": id, "result": what}));
            }
            Err(e) => {
                results.push(json!({"id": id, "result": "failed", "error": credguard::error::chain_line(&e)}));
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
    if ctx.output == OutputFormat::Json {
        print_json(&serde_json::Value::Array(results));
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Exit::Ok),
    }
}
