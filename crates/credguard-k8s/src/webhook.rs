//! The validating admission webhook: [`crate::admission`] served over TLS.
//!
//! - `POST /validate`: an `admission.k8s.io/v1` AdmissionReview in, one out (200); a body that
//!   is not one is 400 with a JSON `{"error": "..."}`; a body over [`Limits::max_body_bytes`]
//!   (3 MiB by default, the API server's own request limit, so any object the server accepts
//!   fits) is 413; a body not received within [`Limits::body_read_timeout`] is 408.
//! - `GET /healthz`: 200 `ok` (for the kubelet's probes).
//! - Any other path is 404, another method 405 (with `Allow`).
//!
//! HTTP/1.1 with keep-alive, and HTTP/2 when the client offers it by ALPN (the API server
//! does). rustls with the ring provider; the certificate is reloaded when its files change
//! (see [`tls`]). A TLS handshake must finish within [`Limits::handshake_timeout`], an HTTP/1.1
//! request head within [`Limits::header_read_timeout`] (which also closes a keep-alive
//! connection idle that long), and at most [`Limits::max_connections`] connections are served
//! at once, so slow or idle clients cannot hold the server. [`Server::run`] stops accepting on
//! its shutdown future, lets the requests in flight finish (at most
//! [`Limits::drain_timeout`]) and returns.
//!
//! Logs (tracing): one line per review with uid, kind, operation, namespace/name, verdict and
//! lint codes; never an object's contents.

pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::admission;
use tls::ReloadingCert;

/// The path of the admission endpoint.
pub const VALIDATE_PATH: &str = "/validate";
/// The path of the health endpoint.
pub const HEALTHZ_PATH: &str = "/healthz";
/// The default body limit: 3 MiB, the API server's limit on a request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The server's limits. [`Limits::default`] is what the CLI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (413 above it).
    pub max_body_bytes: usize,
    /// Time for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time for an HTTP/1.1 request head, counted from when the connection is ready for one
    /// (so also the longest a keep-alive connection stays idle).
    pub header_read_timeout: Duration,
    /// Time for a request body, once its head is in (408 after it).
    pub body_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (`0.0.0.0:8443`).
    pub listen: SocketAddr,
    /// The PEM certificate chain (serving certificate first).
    pub tls_cert: PathBuf,
    /// The PEM private key.
    pub tls_key: PathBuf,
    /// The limits.
    pub limits: Limits,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The certificate or key file cannot be used.
    #[error("{}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}; choose a free address and port")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound webhook server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: Limits,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Loads the certificate and binds the address.
    ///
    /// # Errors
    /// [`WebhookError`] naming the file or address.
    pub async fn bind(config: &Config) -> Result<Server, WebhookError> {
        let certs = Arc::new(ReloadingCert::load(&config.tls_cert, &config.tls_key)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| WebhookError::Certificate {
                path: config.tls_cert.clone(),
                reason: format!("no TLS version to serve it with: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(certs);
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| WebhookError::Listen {
                    addr: config.listen,
                    source,
                })?;
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            limits: config.limits,
        })
    }

    /// The address bound (with the port chosen when `:0` was asked).
    ///
    /// # Errors
    /// The socket's address cannot be read.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains the connections in flight (at most
    /// [`Limits::drain_timeout`]).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            acceptor,
            limits,
        } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .keep_alive_interval(Duration::from_secs(30));
        let builder = Arc::new(builder);
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        tracing::info!(addr = ?listener.local_addr().ok(), "webhook serving");
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: back off a little, then go on.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let builder = Arc::clone(&builder);
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _slot = slot;
                let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let service = service_fn(move |req| handle(req, limits));
                let conn = builder.serve_connection(TokioIo::new(tls), service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!("webhook stopping: draining connections");
        if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "connections still open after {:?}; stopping anyway",
                limits.drain_timeout
            );
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C on Windows): what a pod's stop and a terminal send.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error_reply(status: StatusCode, message: &str) -> Reply {
    let body = serde_json::json!({ "error": message }).to_string();
    reply(status, "application/json", body)
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut r = error_reply(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed here; use {allow}"),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

async fn handle(req: Request<Incoming>, limits: Limits) -> Result<Reply, Infallible> {
    let reply = match (req.uri().path(), req.method()) {
        (HEALTHZ_PATH, &Method::GET | &Method::HEAD) => reply(StatusCode::OK, "text/plain", "ok\n"),
        (HEALTHZ_PATH, _) => method_not_allowed("GET, HEAD"),
        (VALIDATE_PATH, &Method::POST) => validate(req, limits).await,
        (VALIDATE_PATH, _) => method_not_allowed("POST"),
        _ => error_reply(
            StatusCode::NOT_FOUND,
            "no such path; admission reviews go to /validate",
        ),
    };
    Ok(reply)
}

fn too_large(limits: Limits) -> Reply {
    error_reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the body is over {} bytes, the limit of an AdmissionReview here",
            limits.max_body_bytes
        ),
    )
}

async fn validate(req: Request<Incoming>, limits: Limits) -> Reply {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large(limits);
    }
    let body = Limited::new(req.into_body(), limits.max_body_bytes);
    let body = match tokio::time::timeout(limits.body_read_timeout, body.collect()).await {
        Err(_) => {
            return error_reply(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {:?}",
                    limits.body_read_timeout
                ),
            );
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large(limits),
        Ok(Err(e)) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                &format!("the body could not be read: {e}"),
            );
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    match admission::review_bytes(&body) {
        Ok(verdict) => {
            let s = &verdict.summary;
            tracing::info!(
                uid = %s.uid,
                kind = %s.kind,
                operation = ?s.operation,
                object = %s.object,
                dry_run = s.dry_run,
                verdict = s.verdict,
                codes = %s.codes.join(","),
                "admission review"
            );
            match serde_json::to_vec(&verdict.review) {
                Ok(json) => reply(StatusCode::OK, "application/json", json),
                Err(e) => error_reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("the response could not be written: {e}"),
                ),
            }
        }
        Err(e) => {
            tracing::info!(error = %e, "malformed admission review");
            error_reply(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}
