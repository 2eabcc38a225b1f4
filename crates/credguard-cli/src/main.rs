//! `credguard`: the operator's command line for Container Credential Guard instances.
//!
//! A thin layer over the `credguard` library: it parses arguments, opens the backend,
//! calls the library and prints the result as text or JSON. One module per command in
//! `commands/`.

#[macro_use]
mod output;

mod backend;
#[cfg(test)]
mod build_info_tests;
mod chain;
mod commands;
mod credspec_input;
mod documents;
mod exit;
#[cfg(test)]
mod help_examples;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::backend::BackendKind;
use crate::exit::{CliError, Exit};
use crate::logging::LogFormat;
use crate::output::OutputFormat;

/// Create, inspect and remove Container Credential Guard (gMSA) instances of Windows
/// containers through the Host Compute Service, without leaking them; check credential
/// specs before they reach Windows.
///
/// Exit codes: 0 success; 1 a check failed; 2 usage or bad input; 3 HCS failure;
/// 4 not found; 5 already exists (an instance, a utility VM, a file) or busy (another
/// process is creating or releasing it); 6 denied by policy; 7 local state error;
/// 8 backend unavailable, or a live-set source (--alive-from) could not be asked.
#[derive(Debug, Parser)]
#[command(
    name = "credguard",
    version = commands::version::LONG_VERSION,
    propagate_version = true,
    max_term_width = 100,
    after_help = EXAMPLES
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  credguard probe --credspec examples/credspecs/contoso_webapp01.json
  credguard instances add --id web-1 --credspec contoso_webapp01.json
  credguard instances list
  credguard --output json instances show web-1
  credguard instances remove web-1
  credguard reconcile --dry-run
  credguard credspec validate contoso_webapp01.json
  credguard doctor --credspec contoso_webapp01.json
  credguard explain 'winapi error #3489792023'
  credguard k8s check manifests/
  credguard --backend emulator --state-dir /tmp/credguard-try probe \\
      --credspec contoso_webapp01.json";

/// Options every command takes, listed under their own heading in every command's help.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Which HCS to talk to: `hcs` is the real one (Windows only), `emulator` the built-in
    /// emulator whose state lives under the state directory, `auto` picks `hcs` on Windows
    /// and `emulator` elsewhere.
    #[arg(
        long,
        global = true,
        env = "CREDGUARD_BACKEND",
        value_enum,
        default_value = "auto"
    )]
    pub backend: BackendKind,

    /// Directory of credguard's own state (the emulator's state, the journal). Default:
    /// `%ProgramData%\credguard` on Windows, `$XDG_STATE_HOME/credguard` or
    /// `~/.local/state/credguard` elsewhere. It must be private: a symbolic link, a
    /// directory owned by another user or writable by others is refused (exit 7).
    #[arg(long, global = true, env = "CREDGUARD_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How results are printed on standard output: `json` prints exactly one JSON document
    /// (an `{"error": ...}` document when the command fails before it has a result; schemas
    /// in docs/schema/), `jsonl` prints an array result one element a line; `k8s check`
    /// also takes `sarif` (SARIF 2.1.0).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,

    /// Log filter for standard error: a level (error, warn, info, debug, trace, off) or
    /// tracing filter directives TARGET=LEVEL, comma-separated (`warn,credguard=debug`);
    /// anything else is refused (exit 2). Overrides the CREDGUARD_LOG environment variable
    /// (read the same way); the default is `warn`.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = logging::parse_filter)]
    pub log_level: Option<String>,

    /// How log lines are written on standard error.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Show credential-spec plug-in secrets (`PluginInput`) in output instead of
    /// `<redacted>`. They never appear in logs.
    #[arg(long, global = true)]
    pub show_secrets: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, show and remove CCG instances.
    #[command(subcommand, after_help = commands::instances::EXAMPLES)]
    Instances(commands::instances::InstancesCommand),

    /// End-to-end check: create an instance under a generated id, verify it, remove it,
    /// verify it is gone; prints each step with its duration.
    #[command(after_help = commands::probe::EXAMPLES)]
    Probe(commands::probe::ProbeArgs),

    /// Inspect and drive the HCS emulator: call log, fault injection, reset, utility VMs.
    #[command(subcommand, after_help = commands::emulator::EXAMPLES)]
    Emulator(commands::emulator::EmulatorCommand),

    /// Finish what a crash interrupted: remove instances whose create or release was cut
    /// short, drop stale journal records, and (with --alive/--alive-file, or --alive-none)
    /// remove the instances of containers that are not running. Prints the plan, then what
    /// it did; each change is checked again under the record's lock just before it is made.
    #[command(after_help = commands::reconcile::EXAMPLES)]
    Reconcile(commands::reconcile::ReconcileArgs),

    /// The node agent: reconcile forever, with the live set asked of the container runtime
    /// (containerd, CRI): a round every --interval and at once after a container is deleted;
    /// credguard's own instances follow the journal's rules, foreign ones go after --grace;
    /// nothing is removed while a source fails. Exits 0 on SIGTERM/SIGINT (Ctrl-C, the
    /// Windows service stop). Also installs itself as a Windows service.
    #[command(after_help = commands::agent::EXAMPLES)]
    Agent(commands::agent::AgentArgs),

    /// Check, show and generate credential specs.
    #[command(subcommand, after_help = commands::credspec::EXAMPLES)]
    Credspec(commands::credspec::CredspecCommand),

    /// Check that this Windows host is ready for gMSA containers: the Containers feature,
    /// the vmcompute service, ccg.exe, the registration of a credential spec's CCG plug-in,
    /// the CCG event channel (and a container's events). Each check is ok, warning or failed,
    /// with the next step; exit 1 when one failed, 8 off Windows.
    #[command(after_help = commands::doctor::EXAMPLES)]
    Doctor(commands::doctor::DoctorArgs),

    /// Explain Windows status codes and CCG event ids: finds every code in the text (an
    /// error message as kubelet, containerd or Docker print it), decodes it (HRESULT,
    /// HRESULT_FROM_NT down to the NTSTATUS, HRESULT_FROM_WIN32 down to the Win32 error) and
    /// says what it means, its known causes in gMSA / CCG context and what to check next.
    /// Needs no backend.
    #[command(after_help = commands::explain::EXAMPLES)]
    Explain(commands::explain::ExplainArgs),

    /// Credential specs in Kubernetes: a ValidatingAdmissionPolicy generated from the linter
    /// (`policy`), an offline check of manifests for CI (`check`), an admission webhook
    /// (`webhook`). See docs/KUBERNETES.md for which to choose.
    #[command(subcommand, after_help = commands::k8s::EXAMPLES)]
    K8s(commands::k8s::K8sCommand),

    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on standard
    /// output.
    #[command(after_help = commands::completions::EXAMPLES)]
    Completions(commands::completions::CompletionsArgs),

    /// Print the manual (roff) on standard output, or write one page per command into a
    /// directory.
    #[command(after_help = commands::man::EXAMPLES)]
    Man(commands::man::ManArgs),

    /// Print the version, the git commit it was built from (`unknown` for a build outside
    /// a git repository) and the target.
    #[command(after_help = commands::version::EXAMPLES)]
    Version,
}

fn main() -> ExitCode {
    let (args, sarif) = sarif_output(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_exit(&e, OutputFormat::requested(args)),
    };
    let format = cli.global.output;
    // The agent logs every removal (info); other commands only warnings and errors.
    let default_level = if matches!(cli.command, Command::Agent(_)) {
        "info"
    } else {
        "warn"
    };
    if let Err(e) = logging::init(
        cli.global.log_level.as_deref(),
        cli.global.log_format,
        default_level,
    ) {
        output::print_error(format, &CliError::usage(e));
        return output::finish(Exit::Usage).into();
    }
    // The exit status is the command's own, whatever became of standard output: a reader
    // that went away (`| head -1`) loses the output, not the result.
    let code = match run(cli, sarif) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(format, &e);
            e.code
        }
    };
    output::finish(code).into()
}

/// Ends on what the argument parser said: help and version on standard output as clap
/// prints them; a usage error on standard error with every value it repeats shown as
/// credguard shows names (control and format characters escaped, very long lines cut),
/// exit 2. Nothing is written to a closed output, and the status stays clap's. Under
/// `--output json` (or `jsonl`) a usage error is also an error document on standard output:
/// its message is clap's first paragraph on one line, shown the same way.
fn usage_exit(e: &clap::Error, format: OutputFormat) -> ExitCode {
    let code = u8::try_from(e.exit_code()).unwrap_or(Exit::Usage as u8);
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::from(code);
    }
    let text = e.render().to_string();
    for line in text.trim_end().lines() {
        errln!("{}", credguard::credspec::syntax::shown_path(line));
    }
    if format.is_json() {
        // clap's first paragraph (`error: ...` and the lines that complete it), on one line.
        let paragraph: Vec<&str> = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let joined = paragraph.join(" ");
        let message = joined.strip_prefix("error: ").unwrap_or(&joined);
        output::emit(
            format,
            &documents::ErrorDoc {
                error: documents::ErrorBody {
                    message: credguard::credspec::syntax::shown_path(message),
                    chain: Vec::new(),
                    exit_code: code,
                },
            },
        );
    }
    ExitCode::from(code)
}

/// `--output sarif`, which only `k8s check` prints: taken out of the arguments (as
/// `--output json`, so errors are JSON documents) when the arguments name `k8s check`;
/// anywhere else it stays, and the parser refuses it as any unknown format.
fn sarif_output(mut args: Vec<std::ffi::OsString>) -> (Vec<std::ffi::OsString>, bool) {
    let words: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str().unwrap_or(""))
        .take_while(|a| *a != "--")
        .collect();
    if !words.windows(2).any(|w| w == ["k8s", "check"]) {
        return (args, false);
    }
    let mut sarif = false;
    let mut i = 1;
    while i < args.len() && args[i] != "--" {
        if args[i] == "--output=sarif" {
            args[i] = "--output=json".into();
            sarif = true;
        } else if args[i] == "--output" && args.get(i + 1).is_some_and(|v| v == "sarif") {
            args[i + 1] = "json".into();
            sarif = true;
        }
        i += 1;
    }
    (args, sarif)
}

fn run(cli: Cli, sarif: bool) -> Result<Exit, CliError> {
    if sarif
        && !matches!(
            cli.command,
            Command::K8s(commands::k8s::K8sCommand::Check(_))
        )
    {
        return Err(CliError::usage(
            "--output sarif is only for `k8s check`; use text, json or jsonl",
        ));
    }
    let command = match cli.command {
        // A script and a manual are not results: under JSON, stdout holds JSON only.
        Command::Completions(_) | Command::Man(_) if cli.global.output.is_json() => {
            return Err(CliError::usage(
                "`completions` and `man` print a shell script or a manual, not JSON: drop --output json",
            ));
        }
        // These need no state directory: they work before one can be found or opened.
        Command::Completions(args) => return commands::completions::run(Cli::command(), &args),
        Command::Man(args) => return commands::man::run(Cli::command(), &args),
        Command::Version => return commands::version::run(cli.global.output),
        Command::Explain(args) => return commands::explain::run(cli.global.output, &args),
        Command::K8s(cmd) => return commands::k8s::run(cli.global.output, sarif, cmd),
        command => command,
    };
    // Off Windows doctor has nothing to check: it says so before anything else is read.
    if let (Command::Doctor(_), Err(e)) = (&command, credguard::doctor::host_supported()) {
        return commands::doctor::unavailable(e);
    }
    let ctx = Context::new(cli.global)?;
    match command {
        Command::Instances(cmd) => commands::instances::run(&ctx, cmd),
        Command::Probe(args) => commands::probe::run(&ctx, &args),
        Command::Emulator(cmd) => commands::emulator::run(&ctx, cmd),
        Command::Reconcile(args) => commands::reconcile::run(&ctx, &args),
        Command::Agent(args) => commands::agent::run(&ctx, args),
        Command::Credspec(cmd) => commands::credspec::run(&ctx, cmd),
        Command::Doctor(args) => commands::doctor::run(&ctx, &args),
        // Returned above.
        Command::Completions(_)
        | Command::Man(_)
        | Command::Version
        | Command::Explain(_)
        | Command::K8s(_) => Ok(Exit::Ok),
    }
}

/// What every command needs from the global options.
#[derive(Debug, Clone)]
pub struct Context {
    pub backend: BackendKind,
    pub state_dir: PathBuf,
    pub output: OutputFormat,
    pub show_secrets: bool,
}

impl Context {
    fn new(g: GlobalArgs) -> Result<Self, CliError> {
        let state_dir = match g.state_dir {
            Some(d) if d.as_os_str().is_empty() => {
                return Err(CliError::usage("--state-dir is empty; give a directory"));
            }
            Some(d) => d,
            None => default_state_dir()?,
        };
        Ok(Context {
            backend: g.backend,
            state_dir,
            output: g.output,
            show_secrets: g.show_secrets,
        })
    }

    /// Opens the chosen HCS backend and a client over it, with the journal under the
    /// state directory.
    pub fn client(&self) -> Result<credguard::CcgClient, CliError> {
        backend::prepare_state_dir(&self.state_dir)?;
        backend::prepare_state_dir(&self.state_dir.join("journal"))?;
        let hcs = backend::open(self.backend, &self.state_dir, false)?;
        let journal = credguard::Journal::open(&self.journal_dir())
            .map_err(|e| CliError::new(Exit::State, e))?;
        Ok(credguard::CcgClient::new(hcs).with_journal(std::sync::Arc::new(journal)))
    }

    /// [`Context::client`] for commands that only read (`instances list`/`show`,
    /// `reconcile --dry-run`): nothing is created, locked, moved or written in the state
    /// directory, which may be read-only; a missing one reads as empty.
    pub fn client_read_only(&self) -> Result<credguard::CcgClient, CliError> {
        backend::check_state_dir(&self.state_dir)?;
        backend::check_state_dir(&self.state_dir.join("journal"))?;
        let hcs = backend::open(self.backend, &self.state_dir, true)?;
        let journal = credguard::Journal::open_read_only(&self.journal_dir())
            .map_err(|e| CliError::new(Exit::State, e))?;
        Ok(credguard::CcgClient::new(hcs).with_journal(std::sync::Arc::new(journal)))
    }

    /// Where the journal lives: `<state-dir>/journal/<backend>`, so records of emulated
    /// instances never meet the real HCS.
    pub fn journal_dir(&self) -> PathBuf {
        self.state_dir
            .join("journal")
            .join(self.backend.resolve().name())
    }
}

fn default_state_dir() -> Result<PathBuf, CliError> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = if cfg!(windows) {
        env("ProgramData").map(|p| p.join("credguard"))
    } else {
        env("XDG_STATE_HOME")
            .map(|p| p.join("credguard"))
            .or_else(|| env("HOME").map(|h| h.join(".local/state/credguard")))
    };
    dir.ok_or_else(|| {
        CliError::new(
            Exit::Usage,
            "cannot tell where to keep state (no XDG_STATE_HOME, HOME or ProgramData): give --state-dir",
        )
    })
}
