//! `credguard k8s webhook`: the validating admission webhook of [`credguard_k8s::webhook`],
//! served until SIGTERM or SIGINT. The library decides every verdict; this starts a tokio
//! runtime, binds, prints where it serves and waits.

use std::net::SocketAddr;
use std::path::PathBuf;

use credguard_k8s::webhook::{self, Config, DEFAULT_MAX_BODY_BYTES, Limits, Server, WebhookError};

use crate::exit::{CliError, Exit};
use crate::output::OutputFormat;

pub const EXAMPLES: &str = "\
Examples:
  credguard k8s webhook --tls-cert /certs/tls.crt --tls-key /certs/tls.key
  credguard --log-level info --log-format json k8s webhook --listen 0.0.0.0:8443 \\
      --tls-cert /certs/tls.crt --tls-key /certs/tls.key";

#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// The address and port to serve on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// The serving certificate in PEM, its chain after it (cert-manager's `tls.crt`). Read
    /// again on each TLS handshake when it changed: a renewed certificate is served without a
    /// restart, and a new pair that does not load leaves the old one serving (logged).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,

    /// The certificate's private key in PEM (PKCS#8, PKCS#1 or SEC1; cert-manager's
    /// `tls.key`). A key readable by every user is served but warned about.
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,

    /// The largest request body read, in bytes; larger ones get HTTP 413. The default, 3 MiB,
    /// is the API server's own request limit, so every object it accepts fits.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// Serves until SIGTERM or SIGINT, then drains the requests in flight and exits 0.
pub fn run(output: OutputFormat, args: &WebhookArgs) -> Result<Exit, CliError> {
    if output.is_json() {
        return Err(CliError::usage(
            "`k8s webhook` is a server: it prints no result document; drop --output json (for JSON logs use --log-format json)",
        ));
    }
    if args.max_body_bytes == 0 {
        return Err(CliError::usage(
            "--max-body-bytes is 0; give a positive size",
        ));
    }
    let config = Config {
        listen: args.listen,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            ..Limits::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                Exit::Unavailable,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    runtime.block_on(async {
        let server = Server::bind(&config).await.map_err(|e| {
            let code = match e {
                WebhookError::Listen { .. } => Exit::Unavailable,
                _ => Exit::Usage,
            };
            CliError::new(code, e)
        })?;
        let addr = server
            .local_addr()
            .map_err(|e| CliError::new(Exit::Unavailable, format!("cannot read the bound address: {e}")))?;
        errln!("serving admission reviews on https://{addr}/validate (health: /healthz); SIGTERM or Ctrl-C stops");
        server.run(webhook::shutdown_signal()).await;
        errln!("stopped");
        Ok(Exit::Ok)
    })
}
