//! The serving certificate: read from PEM files, checked as a pair, and read again when the
//! files change (cert-manager renews them in place; a Secret volume swaps them under
//! `..data`). Each TLS handshake reads the two files (a few KiB, little next to the
//! handshake's own signature) and reloads when they differ from the last pair read; a new pair that does not load (half written, a key
//! that does not match) keeps the old one serving and logs why, once per change.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::WebhookError;

/// The bytes of one version of the pair (`None`: unreadable). Compared whole, because a
/// rewrite within the file system's timestamp granularity leaves size and mtime unchanged.
type Contents = (Option<Vec<u8>>, Option<Vec<u8>>);

fn contents(cert_path: &Path, key_path: &Path) -> Contents {
    (fs::read(cert_path).ok(), fs::read(key_path).ok())
}

/// A certificate chain and key read from two PEM files, reloaded when they change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The contents of the pair last tried (loaded or not), so a broken pair is tried once.
    tried: Contents,
    current: Arc<CertifiedKey>,
}

impl ReloadingCert {
    /// Reads the pair; fails when it does not load (the server does not start without one).
    ///
    /// # Errors
    /// [`WebhookError::Certificate`] naming the file and what is wrong.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, WebhookError> {
        let tried = contents(cert_path, key_path);
        let current = Arc::new(load_pair(cert_path, key_path, &tried)?);
        warn_if_key_readable_by_others(key_path);
        Ok(ReloadingCert {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            state: Mutex::new(State { tried, current }),
        })
    }

    /// The pair to serve now: reloaded first when the files changed since the last look.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let now = contents(&self.cert_path, &self.key_path);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.tried != now {
            let loaded = load_pair(&self.cert_path, &self.key_path, &now);
            state.tried = now;
            match loaded {
                Ok(pair) => {
                    tracing::info!(
                        cert = %self.cert_path.display(),
                        key = %self.key_path.display(),
                        "webhook certificate reloaded"
                    );
                    warn_if_key_readable_by_others(&self.key_path);
                    state.current = Arc::new(pair);
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "the changed webhook certificate does not load; still serving the previous one"
                ),
            }
        }
        Arc::clone(&state.current)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn cert_error(path: &Path, reason: impl Into<String>) -> WebhookError {
    WebhookError::Certificate {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Reads and checks a certificate chain and its key.
fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    pair: &Contents,
) -> Result<CertifiedKey, WebhookError> {
    let unreadable = |path: &Path| match fs::read(path) {
        Err(e) => cert_error(path, format!("cannot be read: {e}")),
        Ok(_) => cert_error(path, "cannot be read (it changed while being read)"),
    };
    let cert_pem = pair.0.as_deref().ok_or_else(|| unreadable(cert_path))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(cert_path, format!("is not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error(
            cert_path,
            "holds no `CERTIFICATE` PEM block: give the serving certificate (tls.crt), then its chain",
        ));
    }
    let key_pem = pair.1.as_deref().ok_or_else(|| unreadable(key_path))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        cert_error(
            key_path,
            format!("holds no PKCS#8, PKCS#1 or SEC1 private key in PEM: {e}"),
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        cert_error(
            key_path,
            format!(
                "does not fit the certificate in {}: {e}; give the key the certificate was issued for",
                cert_path.display()
            ),
        )
    })
}

/// A private key others can read is a leak waiting to happen: warn (a Secret volume's
/// `defaultMode` decides it in a pod).
fn warn_if_key_readable_by_others(key_path: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = fs::metadata(key_path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o004 != 0 {
            tracing::warn!(
                key = %key_path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the webhook's TLS key is readable by every user; make it owner-only (a Secret volume's defaultMode: 0400)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = key_path;
}
