//! `credguard agent`: the node agent, which removes orphaned CCG instances for as long as it
//! runs (the loop is `credguard_agent::agent`; this parses flags, opens the sources and the
//! client, turns SIGTERM/SIGINT, Ctrl-C/Ctrl-Break/close and the Windows service stop into
//! its shutdown, and prints a summary on exit). `agent service install|uninstall` registers
//! it as a Windows service.
//!
//! Output: the agent's record is its log (standard error, `--log-format json` for JSON
//! lines; the default level is `info` so every removal is logged). On exit it prints one
//! summary on standard output: a line, or under `--output json`/`jsonl` one document
//! (`docs/schema/agent.json`), as every command prints one.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand};
use credguard::lifecycle::AsyncCcgClient;
use credguard_agent::agent::{self, AgentOptions, Summary};
use credguard_agent::source::{AliveSource, SourceOptions, SourceSpec};

use crate::Context;
use crate::documents::{AgentDoc, AgentServiceDoc};
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, count, emit};

pub const EXAMPLES: &str = "\
Examples:
  # containerd's default socket, every namespace; metrics on port 9464
  credguard agent --alive-from containerd --metrics-listen 127.0.0.1:9464
  # two sources (the live set is their union), the k8s.io namespace only
  credguard agent --alive-from containerd:/run/containerd/containerd.sock --alive-from cri \\
      --namespace k8s.io --interval 1m --grace 5m --source-timeout 30s
  # as a Windows service (installed as credguard-agent, started by the SCM)
  credguard agent service install --alive-from containerd
  credguard agent service uninstall";

pub const SERVICE_EXAMPLES: &str = "\
Examples:
  credguard agent service install --alive-from containerd --metrics-listen 127.0.0.1:9464
  credguard agent service uninstall";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Install or uninstall the agent as a Windows service (`credguard-agent`, automatic
    /// start, LocalSystem). Windows only (exit 8 elsewhere).
    #[command(subcommand, after_help = SERVICE_EXAMPLES)]
    Service(ServiceCommand),
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register the service with these agent flags (it runs `credguard agent FLAGS
    /// --service`), and start it.
    #[command(after_help = SERVICE_EXAMPLES)]
    Install(RunArgs),
    /// Stop the service (as its stop control: the agent shuts down gracefully) and remove it.
    #[command(after_help = SERVICE_EXAMPLES)]
    Uninstall,
}

/// The agent's flags (also what `agent service install` registers).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Where the live set comes from: `containerd` or `containerd:ADDRESS` (containerd's
    /// containers service; deletions are watched), `cri` or `cri:ENDPOINT` (the CRI
    /// RuntimeService). Default address: `\\.\pipe\containerd-containerd` on Windows,
    /// `/run/containerd/containerd.sock` elsewhere. Repeat for several; the live set is their
    /// union, and a round in which any source fails removes nothing.
    #[arg(long = "alive-from", value_name = "SOURCE", required = true, value_parser = checked_source)]
    pub alive_from: Vec<String>,

    /// A containerd namespace to list (repeatable); every namespace when none is given. For
    /// containerd sources only.
    #[arg(long, value_name = "NS")]
    pub namespace: Vec<String>,

    /// Time between rounds (500ms, 30s, 2m, 1h: a whole number and a unit). A deletion
    /// reported by containerd starts a round at once as well.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = credguard_agent::parse_duration)]
    pub interval: Duration,

    /// How long an instance credguard did not create (foreign, e.g. made by hcsshim) must be
    /// missing from the live set before it is removed: it goes once two listings at least
    /// this far apart both missed its container.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = credguard_agent::parse_duration)]
    pub grace: Duration,

    /// How long each source may take to answer one listing; a source that takes longer
    /// fails the round (nothing is removed in it).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = credguard_agent::parse_duration)]
    pub source_timeout: Duration,

    /// Serve Prometheus metrics at `/metrics` and health at `/healthz` on this address
    /// (`127.0.0.1:9464`; `0.0.0.0:9464` for every interface).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Run under the Windows service control manager (what `agent service install`
    /// registers; not for a console). Windows only.
    #[arg(long)]
    pub service: bool,
}

/// An `--alive-from` value, checked by credguard-agent's parser and kept as given (the
/// service registers it as given).
fn checked_source(value: &str) -> Result<String, String> {
    value
        .parse::<SourceSpec>()
        .map(|_| value.to_owned())
        .map_err(|e| e.to_string())
}

/// A duration as the flags take it back.
#[cfg_attr(not(windows), allow(dead_code))]
fn duration_arg(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl RunArgs {
    /// The flags as the service runs them (`agent FLAGS --service`).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub fn service_arguments(&self) -> Vec<String> {
        let mut args = vec!["agent".to_owned()];
        for source in &self.alive_from {
            args.extend(["--alive-from".to_owned(), source.clone()]);
        }
        for ns in &self.namespace {
            args.extend(["--namespace".to_owned(), ns.clone()]);
        }
        args.extend([
            "--interval".to_owned(),
            duration_arg(self.interval),
            "--grace".to_owned(),
            duration_arg(self.grace),
            "--source-timeout".to_owned(),
            duration_arg(self.source_timeout),
        ]);
        if let Some(addr) = self.metrics_listen {
            args.extend(["--metrics-listen".to_owned(), addr.to_string()]);
        }
        args.push("--service".to_owned());
        args
    }
}

/// The sources of `--alive-from` (credguard-agent's).
fn open_sources(args: &RunArgs) -> Result<Vec<Box<dyn AliveSource>>, CliError> {
    let specs: Vec<SourceSpec> = args
        .alive_from
        .iter()
        .map(|v| {
            v.parse::<SourceSpec>()
                .map_err(|e| CliError::usage(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    if !args.namespace.is_empty()
        && !specs
            .iter()
            .any(|s| matches!(s, SourceSpec::Containerd { .. }))
    {
        return Err(CliError::usage(
            "--namespace applies to containerd sources only; give --alive-from containerd[:ADDRESS]",
        ));
    }
    let options = SourceOptions {
        namespaces: args.namespace.clone(),
        timeout: args.source_timeout,
    };
    Ok(specs.iter().map(|s| s.open(&options)).collect())
}

pub fn run(ctx: &Context, args: AgentArgs) -> Result<Exit, CliError> {
    match args.command {
        Some(AgentCommand::Service(cmd)) => service_command(ctx, cmd),
        None if args.run.service => run_service(ctx, args.run),
        None => {
            let summary = run_console(ctx, &args.run)?;
            print_summary(ctx.output, summary);
            Ok(Exit::Ok)
        }
    }
}

fn print_summary(format: OutputFormat, s: Summary) {
    if format.is_json() {
        emit(
            format,
            &AgentDoc {
                rounds: s.rounds,
                failed_rounds: s.failed_rounds,
                removed: s.removed,
            },
        );
    } else {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        outln!(
            "agent stopped: {}, {} failed, {}",
            count(n(s.rounds), "round", "rounds"),
            s.failed_rounds,
            count(n(s.removed), "removal", "removals")
        );
    }
}

/// Builds what the agent needs; `shutdown` is made inside the runtime (signal handlers need
/// one), before the agent starts.
fn run_agent<S, F>(ctx: &Context, args: &RunArgs, shutdown: S) -> Result<Summary, CliError>
where
    S: FnOnce() -> Result<F, CliError>,
    F: Future<Output = ()>,
{
    let sources = open_sources(args)?;
    let client = AsyncCcgClient::new(ctx.client()?);
    // The sources time out on their own (with a message naming the address); the agent's
    // bound is a backstop.
    let options = AgentOptions::new(sources)
        .with_interval(args.interval)
        .with_grace(args.grace)
        .with_list_timeout(args.source_timeout * 2)
        .with_metrics_listen(args.metrics_listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::State, format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async {
        let shutdown = shutdown()?;
        let agent = agent::Agent::new(options, client)
            .await
            .map_err(|e| CliError::usage(e.to_string()))?;
        Ok(agent.run(shutdown).await)
    });
    // A round left running at shutdown is bounded by the HCS watchdog; the process does not
    // wait for it longer than this (the journal covers what it cuts short).
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

fn run_console(ctx: &Context, args: &RunArgs) -> Result<Summary, CliError> {
    run_agent(ctx, args, signals::shutdown)
}

/// The signals that stop the agent.
mod signals {
    use crate::exit::{CliError, Exit};

    fn failed(e: &std::io::Error) -> CliError {
        CliError::new(
            Exit::State,
            format!("cannot listen for shutdown signals: {e}"),
        )
    }

    /// SIGTERM or SIGINT.
    #[cfg(unix)]
    pub fn shutdown() -> Result<impl Future<Output = ()>, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| failed(&e))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| failed(&e))?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        })
    }

    /// Ctrl-C, Ctrl-Break, the console closed, the system shutting down.
    #[cfg(windows)]
    pub fn shutdown() -> Result<impl Future<Output = ()>, CliError> {
        use tokio::signal::windows;
        let mut c = windows::ctrl_c().map_err(|e| failed(&e))?;
        let mut brk = windows::ctrl_break().map_err(|e| failed(&e))?;
        let mut close = windows::ctrl_close().map_err(|e| failed(&e))?;
        let mut down = windows::ctrl_shutdown().map_err(|e| failed(&e))?;
        Ok(async move {
            tokio::select! {
                _ = c.recv() => tracing::info!("Ctrl-C: shutting down"),
                _ = brk.recv() => tracing::info!("Ctrl-Break: shutting down"),
                _ = close.recv() => tracing::info!("console closed: shutting down"),
                _ = down.recv() => tracing::info!("system shutdown: shutting down"),
            }
        })
    }
}

fn service_command(ctx: &Context, cmd: ServiceCommand) -> Result<Exit, CliError> {
    let (action, name) = match cmd {
        ServiceCommand::Install(args) => {
            open_sources(&args)?;
            windows_service::install(ctx, &args)?
        }
        ServiceCommand::Uninstall => windows_service::uninstall()?,
    };
    if ctx.output.is_json() {
        emit(
            ctx.output,
            &AgentServiceDoc {
                service: name.clone(),
                action: action.to_owned(),
            },
        );
    } else {
        outln!("service {name}: {action}");
    }
    Ok(Exit::Ok)
}

fn run_service(ctx: &Context, args: RunArgs) -> Result<Exit, CliError> {
    windows_service::run(ctx, args)
}

#[cfg(not(windows))]
mod windows_service {
    use super::RunArgs;
    use crate::Context;
    use crate::exit::{CliError, Exit};

    fn unavailable() -> CliError {
        CliError::new(
            Exit::Unavailable,
            format!(
                "Windows services need Windows; this is {}: run `agent` under the init system instead (systemd, a container)",
                std::env::consts::OS
            ),
        )
    }

    pub fn install(_: &Context, _: &RunArgs) -> Result<(&'static str, String), CliError> {
        Err(unavailable())
    }

    pub fn uninstall() -> Result<(&'static str, String), CliError> {
        Err(unavailable())
    }

    pub fn run(_: &Context, _: RunArgs) -> Result<Exit, CliError> {
        Err(unavailable())
    }
}

#[cfg(windows)]
#[path = "agent_service.rs"]
mod windows_service;

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::RunArgs;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        run: RunArgs,
    }

    /// What `agent service install` registers parses back to the same flags.
    #[test]
    fn service_arguments_parse_back_to_the_same_flags() {
        let args = Wrap::parse_from([
            "x",
            "--alive-from",
            "containerd",
            "--alive-from",
            "cri:/run/c.sock",
            "--namespace",
            "k8s.io",
            "--interval",
            "90s",
            "--grace",
            "500ms",
            "--source-timeout",
            "3s",
            "--metrics-listen",
            "127.0.0.1:9464",
        ])
        .run;
        let registered = args.service_arguments();
        assert_eq!(registered[0], "agent");
        assert_eq!(registered.last().unwrap(), "--service");
        let back = Wrap::parse_from(
            std::iter::once("x").chain(registered[1..].iter().map(String::as_str)),
        )
        .run;
        assert_eq!(back.alive_from, args.alive_from);
        assert_eq!(back.namespace, args.namespace);
        assert_eq!(back.interval, args.interval);
        assert_eq!(back.grace, args.grace);
        assert_eq!(back.source_timeout, args.source_timeout);
        assert_eq!(back.metrics_listen, args.metrics_listen);
        assert!(back.service);
    }
}
