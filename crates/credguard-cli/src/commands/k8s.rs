//! `credguard k8s`: credential specs checked in Kubernetes. One module per subcommand
//! (`k8s_webhook`, ...); this is the group.

use crate::exit::{CliError, Exit};
use crate::output::OutputFormat;

pub const EXAMPLES: &str = "\
Examples:
  credguard k8s webhook --tls-cert /certs/tls.crt --tls-key /certs/tls.key";

#[derive(Debug, clap::Subcommand)]
pub enum K8sCommand {
    /// Serve the validating admission webhook (admission.k8s.io/v1 at /validate, /healthz)
    /// over TLS: denies GMSACredentialSpecs and Pods whose credential specs have lint errors,
    /// returns lint warnings as warnings. Runs until SIGTERM or SIGINT (exit 0).
    #[command(after_help = super::k8s_webhook::EXAMPLES)]
    Webhook(super::k8s_webhook::WebhookArgs),
}

/// Needs no backend and no state directory.
pub fn run(output: OutputFormat, command: &K8sCommand) -> Result<Exit, CliError> {
    match command {
        K8sCommand::Webhook(args) => super::k8s_webhook::run(output, args),
    }
}
