//! The admission handler alone (no TLS, no HTTP): `admission::review_bytes` on request bodies
//! shaped as the API server sends them: a GMSACredentialSpec CREATE, a Pod CREATE with inline
//! contents (allowed), the same pod denied (a lint error), and a pod without gMSA.

use std::hint::black_box;

use credguard_k8s::admission::review_bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

fn bodies() -> Vec<(&'static str, Vec<u8>, bool)> {
    let gmsa = fixture("review_gmsa_create.json");
    let pod = fixture("review_pod_create.json");
    let mut denied = pod.clone();
    let inline = "/request/object/spec/securityContext/windowsOptions/gmsaCredentialSpec";
    let contents = denied.pointer(inline).unwrap().as_str().unwrap().to_owned();
    let mut spec: Value = serde_json::from_str(&contents).unwrap();
    spec["DomainJoinConfig"]["Sid"] = json!("S-1-5-21-702590844-1001920913-2680819671-1103");
    *denied.pointer_mut(inline).unwrap() = json!(spec.to_string());
    let mut plain = pod.clone();
    plain["request"]["object"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    vec![
        (
            "gmsacredentialspec_allowed",
            gmsa.to_string().into_bytes(),
            true,
        ),
        ("pod_inline_allowed", pod.to_string().into_bytes(), true),
        ("pod_inline_denied", denied.to_string().into_bytes(), false),
        ("pod_without_gmsa", plain.to_string().into_bytes(), true),
    ]
}

fn handler(c: &mut Criterion) {
    let mut group = c.benchmark_group("admission");
    for (name, body, allowed) in bodies() {
        let verdict = review_bytes(&body).unwrap();
        assert_eq!(verdict.review.response.unwrap().allowed, allowed, "{name}");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("review_bytes", name), &body, |b, body| {
            b.iter(|| {
                let verdict = review_bytes(black_box(body)).unwrap();
                serde_json::to_vec(&verdict.review).unwrap()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, handler);
criterion_main!(benches);
