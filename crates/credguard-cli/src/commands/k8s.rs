//! `credguard k8s ...`: credential specs checked in Kubernetes, from the one linter.
//! `policy` prints a ValidatingAdmissionPolicy and its bindings, `check` checks manifests
//! offline, `webhook` serves the admission webhook (in `k8s_webhook`). The work is
//! `credguard_k8s`'s; this prints it. A new subcommand is a variant of
//! [`K8sCommand`] and an arm of [`run`].

use std::path::PathBuf;

use clap::{Args, Subcommand};
use credguard_k8s::check::{self, Report};
use credguard_k8s::policy::{self, PolicyOptions};

use crate::documents::{K8sCheckDoc, K8sPolicyDoc};
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, count, emit};

pub const EXAMPLES: &str = "\
Examples:
  credguard k8s policy | kubectl apply -f -
  credguard k8s check manifests/
  credguard --output sarif k8s check deploy/ > credguard.sarif
  credguard k8s webhook --tls-cert /certs/tls.crt --tls-key /certs/tls.key";

const POLICY_EXAMPLES: &str = "\
Examples:
  credguard k8s policy | kubectl apply -f -
  # try it first: every finding is a warning, nothing is denied
  credguard k8s policy --warn-only --name credspec-lint-trial
  # only the specs labelled for production
  credguard k8s policy --object-selector 'env=prod,team notin (legacy)'
  credguard --output json k8s policy";

const CHECK_EXAMPLES: &str = "\
Examples:
  credguard k8s check manifests/
  credguard k8s check credspecs.yaml rbac.yaml deployment.yaml
  credguard --output json k8s check deploy/
  # for code scanning in CI (GitHub: upload-sarif)
  credguard --output sarif k8s check deploy/ > credguard.sarif";

#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Print a ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.30+)
    /// and its binding that check GMSACredentialSpecs on CREATE and UPDATE with every lint
    /// code CEL can express (docs/KUBERNETES.md lists them): the errors in policy NAME, bound
    /// with Deny, the warnings in NAME-warnings, bound with Warn. Multi-document YAML; one
    /// `List` under --output json.
    #[command(after_help = POLICY_EXAMPLES)]
    Policy(PolicyArgs),
    /// Check Kubernetes manifests offline (YAML or JSON files, several documents, `List`s;
    /// directories are walked for *.yaml, *.yml, *.json without following symbolic links):
    /// GMSACredentialSpecs are linted as the API server would store them, and each workload's
    /// pod template (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) is
    /// checked for unknown spec names, RBAC `use` of the spec by its service account, inline
    /// contents, names on init containers and hostnames over 15 characters. Exit 0 clean
    /// (warnings allowed), 1 errors, 2 an input that cannot be read. --output sarif prints
    /// SARIF 2.1.0.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Serve the validating admission webhook (admission.k8s.io/v1 at /validate, /healthz)
    /// over TLS: denies GMSACredentialSpecs and Pods whose credential specs have lint errors,
    /// returns lint warnings as warnings. Runs until SIGTERM or SIGINT (exit 0).
    #[command(after_help = super::k8s_webhook::EXAMPLES)]
    Webhook(super::k8s_webhook::WebhookArgs),
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The name of the policy and binding of errors; the warnings' are NAME-warnings. A
    /// lowercase DNS subdomain name.
    #[arg(long, value_name = "NAME", default_value = policy::DEFAULT_NAME)]
    pub name: String,

    /// Bind the errors with Warn too: nothing is denied, every finding is a warning to the
    /// client (to try the policy out on a cluster).
    #[arg(long)]
    pub warn_only: bool,

    /// Check only the GMSACredentialSpecs whose labels match this label selector (the
    /// bindings' objectSelector): comma-separated `key=value`, `key!=value`,
    /// `key in (a,b)`, `key notin (a,b)`, `key`, `!key`.
    #[arg(long, value_name = "SELECTOR")]
    pub object_selector: Option<String>,

    /// Refused: GMSACredentialSpec is cluster-scoped, so the API server never applies a
    /// namespace selector to it (the policy would run on every spec anyway). Use
    /// --object-selector to choose specs by their labels.
    #[arg(long, value_name = "SELECTOR")]
    pub namespace_selector: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest files and directories.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

/// Needs no backend and no state directory. `sarif`: `--output sarif` was given (for
/// `check` only; main refuses it elsewhere).
pub fn run(output: OutputFormat, sarif: bool, cmd: K8sCommand) -> Result<Exit, CliError> {
    match cmd {
        K8sCommand::Policy(args) => run_policy(output, &args),
        K8sCommand::Check(args) => Ok(run_check(output, sarif, &args)),
        K8sCommand::Webhook(args) => super::k8s_webhook::run(output, &args),
    }
}

fn run_policy(output: OutputFormat, args: &PolicyArgs) -> Result<Exit, CliError> {
    let objects = policy::generate(&PolicyOptions {
        name: args.name.clone(),
        warn_only: args.warn_only,
        object_selector: args.object_selector.clone(),
        namespace_selector: args.namespace_selector.clone(),
    })
    .map_err(CliError::usage)?;
    if output.is_json() {
        emit(
            output,
            &K8sPolicyDoc {
                api_version: "v1".to_owned(),
                kind: "List".to_owned(),
                items: objects,
            },
        );
    } else {
        let yaml = policy::to_yaml(&objects).map_err(|e| CliError::new(Exit::Usage, e))?;
        crate::output::write_bytes(yaml.as_bytes());
    }
    Ok(Exit::Ok)
}

fn run_check(output: OutputFormat, sarif: bool, args: &CheckArgs) -> Exit {
    let report = check::check_paths(&args.paths);
    if sarif {
        emit(OutputFormat::Json, &check::sarif(&report));
    } else if output.is_json() {
        emit(output, &K8sCheckDoc::from(&report));
    } else {
        print_text(&report);
    }
    match report.exit_code() {
        0 => Exit::Ok,
        1 => Exit::CheckFailed,
        _ => Exit::Usage,
    }
}

fn print_text(report: &Report) {
    for u in &report.unreadable {
        outln!("{}: error: {}", u_loc(u), u.message);
    }
    for f in &report.findings {
        let container = f
            .container
            .as_deref()
            .map(|c| format!(" container {c}"))
            .unwrap_or_default();
        outln!(
            "{}:{}: {}[{}] {}{container}: {}",
            f.location.file,
            f.location.line,
            f.severity,
            f.rule,
            f.object,
            f.message
        );
        outln!("  hint: {}", f.hint);
    }
    outln!(
        "{} checked ({}): {}, {}{}",
        count(report.files.len(), "file", "files"),
        count(report.objects, "object", "objects"),
        count(report.errors, "error", "errors"),
        count(report.warnings, "warning", "warnings"),
        if report.unreadable.is_empty() {
            String::new()
        } else {
            format!(
                ", {}",
                count(
                    report.unreadable.len(),
                    "unreadable file",
                    "unreadable files"
                )
            )
        }
    );
}

fn u_loc(u: &check::Unreadable) -> String {
    match u.line {
        Some(l) => format!("{}:{l}", u.file),
        None => u.file.clone(),
    }
}
