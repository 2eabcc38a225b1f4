//! `credguard reconcile`: finish what a crash interrupted and remove what nobody owns.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;
use credguard::ReconcileOptions;
use credguard::error::chain_line;
use credguard::reconcile::PlanItem;
use serde_json::json;

use crate::Context;
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, print_json};

/// Which containers are really running, for deciding what is an orphan.
#[derive(Debug, Clone, Args)]
pub struct AliveArgs {
    /// Container ids that are really running; active instances of other containers are
    /// removed. Repeat the flag or give several ids.
    #[arg(long, value_name = "ID", num_args = 1..)]
    pub alive: Vec<String>,

    /// A file of running container ids, one per line (`#` starts a comment; `-` reads
    /// standard input). Combines with --alive.
    #[arg(long, value_name = "FILE")]
    pub alive_file: Option<PathBuf>,

    /// Also remove instances the journal does not know (foreign ones), unless they are in
    /// the alive set. Without it, foreign instances are only reported.
    #[arg(long)]
    pub include_foreign: bool,
}

impl AliveArgs {
    pub fn options(&self) -> Result<ReconcileOptions, CliError> {
        let mut alive: Option<BTreeSet<String>> = None;
        if !self.alive.is_empty() {
            alive
                .get_or_insert_with(BTreeSet::new)
                .extend(self.alive.iter().cloned());
        }
        if let Some(path) = &self.alive_file {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| {
                    CliError::usage(format!(
                        "cannot read the alive set from standard input: {e}"
                    ))
                })?
            } else {
                std::fs::read_to_string(path).map_err(|e| {
                    CliError::usage(format!(
                        "cannot read the alive file `{}`: {e}",
                        path.display()
                    ))
                })?
            };
            let set = alive.get_or_insert_with(BTreeSet::new);
            for (n, line) in text.lines().enumerate() {
                let id = line.split('#').next().unwrap_or("").trim();
                if !id.is_empty() {
                    if let Some(problem) = credguard::input::id_problem(id) {
                        return Err(CliError::usage(format!(
                            "line {} of the alive file `{}` is not a container id: {problem}",
                            n + 1,
                            path.display()
                        )));
                    }
                    set.insert(id.to_owned());
                }
            }
        }
        // An id `instances add` would refuse names no container.
        for id in &self.alive {
            if let Some(problem) = credguard::input::id_problem(id) {
                return Err(CliError::usage(format!(
                    "--alive `{}` is not a container id: {problem}",
                    credguard::error::ShownId::new(id)
                )));
            }
        }
        Ok(ReconcileOptions {
            alive,
            include_foreign: self.include_foreign,
        })
    }
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub alive: AliveArgs,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Context, args: &ReconcileArgs) -> Result<Exit, CliError> {
    let opts = args.alive.options()?;
    let client = if args.dry_run {
        ctx.client_read_only()?
    } else {
        ctx.client()?
    };
    if args.dry_run {
        let plan = client.plan_reconcile(&opts)?;
        match ctx.output {
            OutputFormat::Json => print_json(&json!({"dry_run": true, "plan": plan})),
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
        OutputFormat::Json => print_json(&json!({
            "dry_run": false,
            "plan": plan,
            "results": done.iter().map(|d| json!({
                "container_id": d.item.container_id,
                "action": d.item.action,
                "ok": d.result.is_ok(),
                "error": d.result.as_ref().err().map(|e| chain_line(e)),
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Text => {
            print_plan(&plan);
            for d in done.iter().filter(|d| d.item.action.is_change()) {
                match &d.result {
                    Ok(()) => outln!("done: {} {}", d.item.action.as_str(), d.item.container_id),
                    Err(e) => outln!(
                        "FAILED: {} {}: {}",
                        d.item.action.as_str(),
                        d.item.container_id,
                        chain_line(e)
                    ),
                }
            }
            outln!("reconcile: {changes} changes, {failures} failures");
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
            p.container_id,
            p.reason
        );
    }
}
