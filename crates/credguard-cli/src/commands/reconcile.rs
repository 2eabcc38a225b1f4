//! `credguard reconcile`: finish what a crash interrupted and remove what nobody owns.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::chain::chain_line;
use clap::Args;
use credguard::ReconcileOptions;
use credguard::credspec::syntax::shown_path;
use credguard::lifecycle::reconcile::PlanItem;
use credguard::lifecycle::reconcile::parse_alive_list;

use crate::Context;
use crate::documents::{EntryLeft, ReconcileDoc, ReconcileResult};
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, count, emit, text};

pub const EXAMPLES: &str = "\
Examples:
  # print the plan, change nothing
  credguard reconcile --dry-run
  # finish what crashes interrupted
  credguard reconcile
  # also remove instances of containers not running
  credguard reconcile --alive web-1 web-4
  # and instances the journal does not know
  credguard reconcile --alive-file running.txt --include-foreign
  # no container runs: remove every active instance
  credguard reconcile --alive-none
  # ask containerd (every namespace) which containers exist
  credguard reconcile --alive-from containerd --dry-run
  # containerd at its Windows named pipe, one namespace, and the CRI
  credguard reconcile --alive-from containerd:npipe:////./pipe/containerd-containerd --namespace k8s.io --alive-from cri";

/// Which containers are really running, for deciding what is an orphan.
#[derive(Debug, Clone, Args)]
pub struct AliveArgs {
    /// Container ids that are really running; active instances of other containers are
    /// removed. Repeat the flag or give several ids. Each must be an id `instances add`
    /// accepts (an empty one is refused: use --alive-none to say that nothing runs).
    #[arg(long, value_name = "ID", num_args = 1.., conflicts_with = "alive_none")]
    pub alive: Vec<String>,

    /// A file of running container ids, one per line (`#` starts a comment; `-` reads
    /// standard input; at most 4 MiB). Combines with --alive. A file that names no id is
    /// refused (use --alive-none).
    #[arg(long, value_name = "FILE", conflicts_with = "alive_none")]
    pub alive_file: Option<PathBuf>,

    /// No container is running: every active instance is removed. The explicit way to
    /// say it, since an empty --alive or --alive-file is refused.
    #[arg(long)]
    pub alive_none: bool,

    /// Also remove instances the journal does not know (foreign ones), unless they are in
    /// the alive set. Without it, foreign instances are only reported.
    #[arg(long)]
    pub include_foreign: bool,
}

/// The most an alive set (`--alive-file`, or standard input) may hold: 4 MiB, tens of
/// thousands of container ids.
const MAX_ALIVE_BYTES: u64 = 4 << 20;

/// The text of an alive set read with [`MAX_ALIVE_BYTES`] + 1 as its limit.
fn alive_text(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.len() as u64 > MAX_ALIVE_BYTES {
        return Err("it is over 4 MiB; list the running containers only".to_owned());
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
}

impl AliveArgs {
    pub fn options(&self) -> Result<ReconcileOptions, CliError> {
        if self.alive_none {
            return Ok(ReconcileOptions::alive_none().include_foreign(self.include_foreign));
        }
        if self.alive.is_empty() && self.alive_file.is_none() {
            return Ok(ReconcileOptions::new().include_foreign(self.include_foreign));
        }
        let mut alive: BTreeSet<String> = BTreeSet::new();
        // The library checks every id (ReconcileOptions::with_alive, parse_alive_list); the
        // ids of --alive are checked on their own first, so the error names the flag.
        if !self.alive.is_empty() {
            ReconcileOptions::with_alive(self.alive.iter().cloned())
                .map_err(|e| CliError::usage(format!("--alive: {e}")))?;
        }
        alive.extend(self.alive.iter().cloned());
        if let Some(path) = &self.alive_file {
            let (name, text) = if path.as_os_str() == "-" {
                let mut bytes = Vec::new();
                let text = std::io::Read::read_to_end(
                    &mut std::io::Read::take(std::io::stdin(), MAX_ALIVE_BYTES + 1),
                    &mut bytes,
                )
                .map_err(|e| e.to_string())
                .and_then(|_| alive_text(bytes))
                .map_err(|e| {
                    CliError::usage(format!(
                        "cannot read the alive set from standard input: {e}"
                    ))
                })?;
                ("standard input".to_owned(), text)
            } else {
                if let Some(device) = credguard::credspec::device_in_path(path) {
                    return Err(CliError::usage(format!(
                        "the alive file `{}` is refused: {device} on Windows, not a file; give `-` to read standard input",
                        shown_path(&path.display().to_string())
                    )));
                }
                // Non-blocking open and a bounded read: a FIFO without a writer or an
                // endless device fails at once; `<(...)` still works.
                let text = credguard::credspec::read_path_limited(path, MAX_ALIVE_BYTES)
                    .map_err(|e| e.to_string())
                    .and_then(alive_text)
                    .map_err(|e| {
                        CliError::usage(format!(
                            "cannot read the alive file `{}`: {e}",
                            shown_path(&path.display().to_string())
                        ))
                    })?;
                (
                    format!("alive file `{}`", shown_path(&path.display().to_string())),
                    text,
                )
            };
            let ids =
                parse_alive_list(&text).map_err(|e| CliError::usage(format!("{name}: {e}")))?;
            if ids.is_empty() {
                return Err(CliError::usage(format!(
                    "the {name} names no container (it is empty or holds only blank lines and comments); that would remove every active instance: list the running containers, or give --alive-none if none runs"
                )));
            }
            alive.extend(ids);
        }
        ReconcileOptions::with_alive(alive)
            .map(|o| o.include_foreign(self.include_foreign))
            .map_err(CliError::from)
    }
}

/// Where the live set comes from when the container runtime is asked (`--alive-from`).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Ask the container runtime which containers exist (whatever their state): those are
    /// alive, and active instances of others are removed. SOURCE is `containerd` or
    /// `containerd:ADDRESS` (containerd's containers service; default address
    /// \\.\pipe\containerd-containerd on Windows, /run/containerd/containerd.sock
    /// elsewhere), or `cri` or `cri:ENDPOINT` (the Kubernetes CRI ListContainers; default
    /// containerd's address). ADDRESS may be a path, unix:///PATH, \\.\pipe\NAME or
    /// npipe:////./pipe/NAME. Repeat it: the live set is the union. If any source fails or
    /// times out, nothing is removed and the exit code is 8.
    #[arg(
        long,
        value_name = "SOURCE",
        value_parser = parse_source,
        conflicts_with_all = ["alive", "alive_file", "alive_none"]
    )]
    pub alive_from: Vec<credguard_agent::source::SourceSpec>,

    /// Only this containerd namespace (repeatable; default: every namespace). For
    /// containerd sources only.
    #[arg(long, value_name = "NS", requires = "alive_from")]
    pub namespace: Vec<String>,

    /// How long each source may take to answer (e.g. 500ms, 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = credguard_agent::parse_duration)]
    pub source_timeout: Duration,
}

fn parse_source(value: &str) -> Result<credguard_agent::source::SourceSpec, String> {
    value.parse().map_err(|e| format!("{e}"))
}

impl SourceArgs {
    /// The reconcile options of the live set the sources give, or `None` without
    /// --alive-from. One round: a current-thread runtime asks every source at once.
    pub fn options(&self, include_foreign: bool) -> Result<Option<ReconcileOptions>, CliError> {
        use credguard_agent::source::{self, SourceOptions, SourceSpec};
        if self.alive_from.is_empty() {
            return Ok(None);
        }
        if !self.namespace.is_empty()
            && !self
                .alive_from
                .iter()
                .any(|s| matches!(s, SourceSpec::Containerd { .. }))
        {
            return Err(CliError::usage(
                "--namespace applies to containerd sources only; give --alive-from containerd[:ADDRESS]"
                    .to_owned(),
            ));
        }
        let options = SourceOptions {
            namespaces: self.namespace.clone(),
            timeout: self.source_timeout,
        };
        let sources: Vec<_> = self.alive_from.iter().map(|s| s.open(&options)).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                CliError::new(Exit::State, format!("cannot start the async runtime: {e}"))
            })?;
        let live = runtime
            .block_on(source::live_set(&sources))
            .map_err(|e| CliError::new(Exit::Unavailable, e))?;
        source::reconcile_options(live)
            .map(|o| Some(o.include_foreign(include_foreign)))
            .map_err(CliError::from)
    }
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub alive: AliveArgs,

    #[command(flatten)]
    pub sources: SourceArgs,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Context, args: &ReconcileArgs) -> Result<Exit, CliError> {
    let opts = match args.sources.options(args.alive.include_foreign)? {
        Some(opts) => opts,
        None => args.alive.options()?,
    };
    let client = if args.dry_run {
        ctx.client_read_only()?
    } else {
        ctx.client()?
    };
    if args.dry_run {
        let plan = client.plan_reconcile(&opts)?;
        match ctx.output {
            OutputFormat::Json | OutputFormat::Jsonl => emit(
                ctx.output,
                &ReconcileDoc {
                    dry_run: true,
                    plan,
                    results: None,
                },
            ),
            OutputFormat::Text => {
                print_plan(&plan);
                outln!("dry run: nothing was changed");
            }
        }
        return Ok(Exit::Ok);
    }
    let done = client.reconcile(&opts)?;
    let plan: Vec<PlanItem> = done.iter().map(|d| d.item.clone()).collect();
    let failures = done.iter().filter(|d| d.result.is_err()).count();
    let changes = done
        .iter()
        .filter(|d| d.item.action.is_change() && d.result.is_ok())
        .count();
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &ReconcileDoc {
                dry_run: false,
                plan,
                results: Some(
                    done.iter()
                        .map(|d| ReconcileResult {
                            container_id: d.item.container_id.clone(),
                            action: d.item.action,
                            ok: d.result.is_ok(),
                            error: d.result.as_ref().err().map(|e| chain_line(e)),
                            entry_left: d.result.as_ref().err().and_then(EntryLeft::of),
                        })
                        .collect(),
                ),
            },
        ),
        OutputFormat::Text => {
            print_plan(&plan);
            for d in done.iter().filter(|d| d.item.action.is_change()) {
                match &d.result {
                    Ok(()) => outln!(
                        "done: {} {}",
                        d.item.action.as_str(),
                        text(&d.item.container_id)
                    ),
                    Err(e) => outln!(
                        "FAILED: {} {}: {}",
                        d.item.action.as_str(),
                        text(&d.item.container_id),
                        chain_line(e)
                    ),
                }
            }
            outln!(
                "reconcile: {}, {}",
                count(changes, "change", "changes"),
                count(failures, "failure", "failures")
            );
        }
    }
    // The first failure decides the exit code (all were printed above).
    match done.into_iter().find_map(|d| d.result.err()) {
        Some(e) => Err(CliError::from(e)),
        None => Ok(Exit::Ok),
    }
}

fn print_plan(plan: &[PlanItem]) {
    if plan.is_empty() {
        outln!("plan: nothing to do (no journal records, no instances)");
        return;
    }
    outln!("plan:");
    for p in plan {
        outln!(
            "  {:<18} {}  ({})",
            p.action.as_str(),
            text(&p.container_id),
            shown_path(&p.reason)
        );
    }
}
