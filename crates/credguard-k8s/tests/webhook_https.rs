//! The webhook over real HTTPS: a certificate made here, AdmissionReview bodies shaped as the
//! API server sends them, answers checked member by member.

mod support;

use std::time::Duration;

use credguard_k8s::webhook::{DEFAULT_MAX_BODY_BYTES, Limits};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::{connect, fixture, start, tls_connect};

const SECRET: &str = "Sup3rS3cretPassw0rd";

fn secret_spec() -> Value {
    let path = format!(
        "{}/../credguard/tests/fixtures/secret_spec.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn account_sid(mut spec: Value) -> Value {
    spec["DomainJoinConfig"]["Sid"] = json!("S-1-5-21-702590844-1001920913-2680819671-1103");
    spec
}

fn pod_review(uid: &str, spec: &Value) -> Vec<u8> {
    let mut review = fixture("review_pod_create.json");
    review["request"]["uid"] = json!(uid);
    review["request"]["object"]["spec"]["securityContext"]["windowsOptions"]["gmsaCredentialSpec"] =
        json!(spec.to_string());
    review.to_string().into_bytes()
}

fn response_of(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    v["response"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_denied_and_warned_reviews_over_https() {
    let server = start(Limits::default()).await;
    let (mut client, _) = connect(server.addr, server.client()).await;

    // A clean GMSACredentialSpec: allowed, no warnings.
    let (status, body) = client
        .post(fixture("review_gmsa_create.json").to_string().into_bytes())
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = response_of(&body);
    assert_eq!(r["uid"], "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
    assert_eq!(r["allowed"], true);
    assert!(
        r.get("warnings").is_none() && r.get("status").is_none(),
        "{r}"
    );

    // A GMSACredentialSpec with an account SID: denied with code and path.
    let mut review = fixture("review_gmsa_create.json");
    let spec = review["request"]["object"]["credspec"].take();
    review["request"]["object"]["credspec"] = account_sid(spec);
    let (status, body) = client.post(review.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    let r = response_of(&body);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 422);
    assert_eq!(r["status"]["reason"], "Invalid");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("CS011 DomainJoinConfig.Sid"), "{message}");

    // A pod (same keep-alive connection) with the secret spec: warned, never the secret.
    let (status, body) = client.post(pod_review("warn-1", &secret_spec())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&body).contains(SECRET));
    let r = response_of(&body);
    assert_eq!(r["uid"], "warn-1");
    assert_eq!(r["allowed"], true);
    let warnings = r["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("CS088")),
        "{r}"
    );

    // A pod with the secret spec and an error: denied, never the secret.
    let (status, body) = client
        .post(pod_review("deny-1", &account_sid(secret_spec())))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&body).contains(SECRET));
    let r = response_of(&body);
    assert_eq!(r["uid"], "deny-1");
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("the pod's securityContext: CS011")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_is_offered_by_alpn_and_answers_the_same() {
    let server = start(Limits::default()).await;
    let (mut client, _) = connect(server.addr, server.h2_client()).await;
    assert!(matches!(client, support::Client::H2(_)));
    let (status, body) = client
        .post(pod_review("h2-1", &account_sid(secret_spec())))
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = response_of(&body);
    assert_eq!(
        (r["uid"].as_str(), r["allowed"].as_bool()),
        (Some("h2-1"), Some(false))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reviews_are_400_with_a_json_error() {
    let server = start(Limits::default()).await;
    let (mut client, _) = connect(server.addr, server.client()).await;
    let mut no_uid = fixture("review_pod_create.json");
    no_uid["request"]["uid"] = json!("");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not json".to_vec(), "not valid JSON"),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})
                .to_string()
                .into_bytes(),
            "no `request`",
        ),
        (
            {
                let mut r = fixture("review_pod_create.json");
                r["apiVersion"] = json!("admission.k8s.io/v1beta1");
                r.to_string().into_bytes()
            },
            "admission.k8s.io/v1beta1",
        ),
        (no_uid.to_string().into_bytes(), "empty `uid`"),
        (Vec::new(), "ends early"),
    ];
    for (body, expected) in cases {
        let (status, reply) = client.post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}");
        let v: Value = serde_json::from_slice(&reply).unwrap();
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(expected), "{error}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_413_whether_declared_or_not() {
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        ..Limits::default()
    };
    let server = start(limits).await;
    // Declared by Content-Length (HTTP/1.1 sends it for a full body).
    let (mut client, _) = connect(server.addr, server.client()).await;
    let big = vec![b' '; 64 * 1024 + 1];
    let (status, body) = client.post(big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("65536 bytes"));
    // Exactly at the limit is read (and is not a review).
    let (mut client, _) = connect(server.addr, server.client()).await;
    let (status, _) = client.post(vec![b' '; 64 * 1024]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Chunked, with no length declared: counted as it arrives.
    let mut tls = tls_connect(server.addr, server.client()).await;
    let chunk = vec![b' '; 40 * 1024];
    let mut request =
        b"POST /validate HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..2 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    tls.write_all(&request).await.unwrap();
    let head = read_head(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert_eq!(DEFAULT_MAX_BODY_BYTES, 3 * 1024 * 1024);
    server.stop().await;
}

/// Reads until the end of a response head (with a deadline).
async fn read_head(tls: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(20), async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed before a response");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a response head within 20 s");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_and_methods_and_healthz() {
    let server = start(Limits::default()).await;
    let (mut client, _) = connect(server.addr, server.client()).await;
    let (status, body) = client.send(Method::GET, "/healthz", Vec::new()).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok\n"[..]));
    let (status, _) = client.send(Method::POST, "/healthz", Vec::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = client.send(Method::GET, "/validate", Vec::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, body) = client.send(Method::POST, "/mutate", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["error"].is_string());
    // The 405 says what is allowed.
    let mut tls = tls_connect(server.addr, server.client()).await;
    tls.write_all(b"PUT /validate HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut tls).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 405"), "{head}");
    assert!(head.contains("allow: post"), "{head}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_certificate_is_served_on_the_next_handshake_and_a_broken_one_is_not() {
    let server = start(Limits::default()).await;
    let first = &server.cert;
    let (_, seen) = connect(server.addr, server.client()).await;
    assert_eq!(seen, first.der);

    // A broken pair (new certificate, old key): the old pair goes on being served.
    let second = support::make_cert();
    std::fs::write(&server.cert_path, &second.cert_pem).unwrap();
    let both = support::client_config(&[first, &second], &[b"http/1.1"]);
    let (mut client, seen) = connect(server.addr, both.clone()).await;
    assert_eq!(
        seen, first.der,
        "a certificate without its key must not be served"
    );
    let (status, _) = client.send(Method::GET, "/healthz", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);

    // The matching key arrives: the new pair is served from the next handshake on.
    std::fs::write(&server.key_path, &second.key_pem).unwrap();
    let (mut client, seen) = connect(server.addr, both.clone()).await;
    assert_eq!(seen, second.der);
    let (status, _) = client.send(Method::GET, "/healthz", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);

    // A Secret volume's swap: the files replaced by new ones (rename over them).
    let third = support::make_cert();
    let tmp_cert = server.dir.path().join("tls.crt.new");
    let tmp_key = server.dir.path().join("tls.key.new");
    std::fs::write(&tmp_cert, &third.cert_pem).unwrap();
    std::fs::write(&tmp_key, &third.key_pem).unwrap();
    std::fs::rename(&tmp_key, &server.key_path).unwrap();
    std::fs::rename(&tmp_cert, &server.cert_path).unwrap();
    let all = support::client_config(&[first, &second, &third], &[b"http/1.1"]);
    let (_, seen) = connect(server.addr, all).await;
    assert_eq!(seen, third.der);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_each_get_their_own_answer() {
    let server = start(Limits::default()).await;
    let good = secret_spec();
    let bad = account_sid(secret_spec());
    // 1,000 requests in flight at once: 20 HTTP/2 connections of 40 streams and 200 HTTP/1.1
    // connections of one request each.
    let mut tasks = Vec::new();
    let mut n = 0usize;
    for c in 0..220 {
        let h2 = c < 20;
        let config = if h2 {
            server.h2_client()
        } else {
            server.client()
        };
        let (client, _) = connect(server.addr, config).await;
        let per_connection = if h2 { 40 } else { 1 };
        for _ in 0..per_connection {
            let uid = format!("uid-{n:04}");
            let deny = n.is_multiple_of(3);
            let body = pod_review(&uid, if deny { &bad } else { &good });
            let mut client = match &client {
                support::Client::H2(s) => support::Client::H2(s.clone()),
                support::Client::H1(_) => {
                    // HTTP/1.1 senders are not shared: each task has its own connection.
                    connect(server.addr, server.client()).await.0
                }
            };
            tasks.push(tokio::spawn(async move {
                let (status, body) = client.post(body).await;
                (uid, deny, status, body)
            }));
            n += 1;
        }
    }
    assert_eq!(tasks.len(), 1000);
    let mut answered = 0;
    for task in tasks {
        let (uid, deny, status, body) = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("every request is answered within 120 s")
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{uid}");
        let r = response_of(&body);
        assert_eq!(r["uid"], uid.as_str());
        assert_eq!(r["allowed"], !deny, "{uid}");
        assert!(
            r["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains("CS088"))
        );
        answered += 1;
    }
    assert_eq!(answered, 1000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(limits).await;
    // A head that never ends: the connection is closed.
    let mut tls = tls_connect(server.addr, server.client()).await;
    tls.write_all(b"POST /validate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server must close a connection whose head never ends"
    );
    // A body that never ends: 408.
    let mut tls = tls_connect(server.addr, server.client()).await;
    tls.write_all(
        b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{\"a\"",
    )
    .await
    .unwrap();
    let head = read_head(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight_and_returns() {
    let server = start(Limits::default()).await;
    let mut tls = tls_connect(server.addr, server.client()).await;
    // A request in flight when the shutdown starts: its head read and its body asked for
    // (the server's 100 Continue says so)...
    let body = pod_review("drain-1", &secret_spec());
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let interim = read_head(&mut tls).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    // ...is finished and answered.
    tls.write_all(&body).await.unwrap();
    let head = read_head(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .expect("run returns after the drain")
        .unwrap();
    // No longer listening.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
