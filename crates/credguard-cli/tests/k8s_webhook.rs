//! `credguard k8s webhook`: starts, serves over TLS, names the file it cannot use, and exits 0
//! on SIGTERM after draining.

mod common;

use common::{Env, p};

fn cert(
    env: &Env,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    rcgen::CertifiedKey<rcgen::KeyPair>,
) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = env.file("tls.crt", made.cert.pem().as_bytes());
    let key = env.file("tls.key", made.signing_key.serialize_pem().as_bytes());
    (cert, key, made)
}

/// Serving and stopping: SIGTERM is Unix's (the Windows suite runs the other tests).
#[cfg(unix)]
mod serving {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;

    use rustls_pki_types::ServerName;
    use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    use super::cert;
    use super::common::{self, Env, p};

    /// `GET /healthz` over TLS, trusting exactly `trusted`: the status line.
    fn healthz(addr: &str, trusted: &rcgen::Certificate) -> String {
        let mut roots = RootCertStore::empty();
        roots.add(trusted.der().clone()).unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let conn =
            ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
                .unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(common::DEADLINE)).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response);
        String::from_utf8_lossy(&response)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    }

    #[test]
    fn serves_healthz_over_tls_and_exits_0_on_sigterm() {
        let env = Env::new();
        let (cert, key, made) = cert(&env);
        let mut server = env.spawn(&[
            "--log-level",
            "info",
            "k8s",
            "webhook",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            p(&cert),
            "--tls-key",
            p(&key),
        ]);
        let mut addr = String::new();
        server.wait_until("the serving line", || {
            let err = server_stderr(&env);
            match err
                .split("https://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
            {
                Some(a) if err.contains("/validate") => {
                    addr = a.to_owned();
                    true
                }
                _ => false,
            }
        });
        assert_eq!(healthz(&addr, &made.cert), "HTTP/1.1 200 OK");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(server.finish(), 0, "{}", server.stderr());
        assert!(server.stderr().contains("stopped"), "{}", server.stderr());
    }

    /// The standard error of the one process spawned in `env` so far.
    fn server_stderr(env: &Env) -> String {
        std::fs::read_to_string(env.dir.path().join("stderr-0.txt")).unwrap_or_default()
    }
}

#[test]
fn a_missing_or_mismatched_certificate_file_is_named_exit_2() {
    let env = Env::new();
    let (cert, key, _) = cert(&env);
    let missing = env.dir.path().join("nope.crt");
    let (code, _, err) = env.run(&[
        "k8s",
        "webhook",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        p(&missing),
        "--tls-key",
        p(&key),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("nope.crt") && err.contains("cannot be read"),
        "{err}"
    );
    // A key that is not the certificate's.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other_key = env.file("other.key", other.signing_key.serialize_pem().as_bytes());
    let (code, _, err) = env.run(&[
        "k8s",
        "webhook",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        p(&cert),
        "--tls-key",
        p(&other_key),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("other.key") && err.contains("does not fit the certificate"),
        "{err}"
    );
    // Not PEM at all.
    let (code, _, err) = env.run(&[
        "k8s",
        "webhook",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        p(&key),
        "--tls-key",
        p(&key),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tls.key") && err.contains("CERTIFICATE"),
        "{err}"
    );
}

#[test]
fn json_output_is_refused_with_an_error_document() {
    let env = Env::new();
    let (cert, key, _) = cert(&env);
    let (code, out, err) = env.run(&[
        "--output",
        "json",
        "k8s",
        "webhook",
        "--tls-cert",
        p(&cert),
        "--tls-key",
        p(&key),
    ]);
    assert_eq!(code, 2, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--log-format json")
    );
}
