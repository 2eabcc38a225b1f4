//! Every manifest under `deploy/kubernetes/` (recursively, so a new one is covered without
//! touching this test) is checked against the Kubernetes API types of `k8s-openapi`:
//! deserialised into its type by `apiVersion` and `kind`, serialised back, and compared with
//! the document as written. A member the type does not know is dropped by the round trip and
//! reported with its path; the only difference allowed is a member written as `null` (the same
//! as absent to the API server). Kinds `k8s-openapi` lacks (cert-manager's Issuer and
//! Certificate) are checked against an explicit list of the fields this project uses, their
//! `metadata` against the real `ObjectMeta`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

/// The documents of a YAML text (empty ones, such as a trailing `---`, left out).
fn documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// The paths where `written` has something `back` (the round trip) lost or changed.
fn differences(path: &str, written: &Value, back: &Value, out: &mut Vec<String>) {
    match (written, back) {
        (Value::Object(w), Value::Object(b)) => {
            for (key, value) in w {
                let at = format!("{path}.{key}");
                match b.get(key) {
                    None if value.is_null() => {}
                    None => out.push(format!("{at}: unknown field (not in the API type)")),
                    Some(back) => differences(&at, value, back, out),
                }
            }
        }
        (Value::Array(w), Value::Array(b)) if w.len() == b.len() => {
            for (n, (w, b)) in w.iter().zip(b).enumerate() {
                differences(&format!("{path}[{n}]"), w, b, out);
            }
        }
        (w, b) if w == b => {}
        // A number the type holds as a float or a quantity comes back the same number.
        (Value::Number(w), Value::Number(b)) if w.as_f64() == b.as_f64() => {}
        (w, b) => out.push(format!("{path}: written {w}, read back as {b}")),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    round_trip_at::<T>("", doc)
}

fn round_trip_at<T: DeserializeOwned + Serialize>(path: &str, doc: &Value) -> Result<(), String> {
    let typed: T =
        serde_json::from_value(doc.clone()).map_err(|e| format!("does not deserialise: {e}"))?;
    let back = serde_json::to_value(&typed).unwrap();
    let mut out = Vec::new();
    differences(path, doc, &back, &mut out);
    if out.is_empty() {
        Ok(())
    } else {
        Err(out.join("; "))
    }
}

/// What `allowed` permits: an object of the named members (each checked in turn), an array
/// of one schema (each element checked), or `"*"` (anything).
fn check_fields(path: &str, value: &Value, allowed: &Value, out: &mut Vec<String>) {
    match (allowed, value) {
        (Value::String(any), _) if any == "*" => {}
        (Value::Object(members), Value::Object(written)) => {
            for (key, value) in written {
                match members.get(key) {
                    Some(schema) => check_fields(&format!("{path}.{key}"), value, schema, out),
                    None => out.push(format!(
                        "{path}.{key}: unknown field (not in the allowed list)"
                    )),
                }
            }
        }
        (Value::Array(schema), Value::Array(items)) if schema.len() == 1 => {
            for (n, item) in items.iter().enumerate() {
                check_fields(&format!("{path}[{n}]"), item, &schema[0], out);
            }
        }
        (Value::String(kind), v) if kind == "string" && v.is_string() => {}
        (Value::String(kind), v) if kind == "bool" && v.is_boolean() => {}
        (Value::String(kind), v) if kind == "int" && v.is_i64() => {}
        (schema, v) => out.push(format!("{path}: {v} is not {schema}")),
    }
}

/// cert-manager.io/v1 Issuer and Certificate: the fields of their API this project may use.
fn cert_manager_spec(kind: &str) -> Option<Value> {
    let issuer_ref = json!({"name": "string", "kind": "string", "group": "string"});
    match kind {
        "Issuer" | "ClusterIssuer" => Some(json!({
            "selfSigned": {"crlDistributionPoints": ["string"]},
            "ca": {
                "secretName": "string",
                "crlDistributionPoints": ["string"],
                "ocspServers": ["string"],
                "issuingCertificateURLs": ["string"]
            }
        })),
        "Certificate" => Some(json!({
            "secretName": "string",
            "commonName": "string",
            "dnsNames": ["string"],
            "ipAddresses": ["string"],
            "uris": ["string"],
            "duration": "string",
            "renewBefore": "string",
            "isCA": "bool",
            "usages": ["string"],
            "privateKey": {
                "algorithm": "string",
                "size": "int",
                "encoding": "string",
                "rotationPolicy": "string"
            },
            "secretTemplate": {"annotations": "*", "labels": "*"},
            "revisionHistoryLimit": "int",
            "issuerRef": issuer_ref
        })),
        _ => None,
    }
}

/// Checks one document; `Ok(kind)` when it is a known kind without unknown fields.
fn check_document(doc: &Value) -> Result<String, String> {
    let api_version = doc["apiVersion"].as_str().ok_or("no apiVersion")?;
    let kind = doc["kind"].as_str().ok_or("no kind")?;
    match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<api::core::v1::Namespace>(doc),
        ("v1", "ServiceAccount") => round_trip::<api::core::v1::ServiceAccount>(doc),
        ("v1", "Service") => round_trip::<api::core::v1::Service>(doc),
        ("v1", "ConfigMap") => round_trip::<api::core::v1::ConfigMap>(doc),
        ("v1", "Secret") => round_trip::<api::core::v1::Secret>(doc),
        ("apps/v1", "Deployment") => round_trip::<api::apps::v1::Deployment>(doc),
        ("apps/v1", "DaemonSet") => round_trip::<api::apps::v1::DaemonSet>(doc),
        ("policy/v1", "PodDisruptionBudget") => {
            round_trip::<api::policy::v1::PodDisruptionBudget>(doc)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<api::rbac::v1::Role>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            round_trip::<api::rbac::v1::ClusterRole>(doc)
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            round_trip::<api::rbac::v1::RoleBinding>(doc)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<api::rbac::v1::ClusterRoleBinding>(doc)
        }
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => round_trip::<
            api::admissionregistration::v1::ValidatingWebhookConfiguration,
        >(doc),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => {
            round_trip::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(doc)
        }
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => round_trip::<
            api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        >(doc),
        ("cert-manager.io/v1", kind) if cert_manager_spec(kind).is_some() => {
            let schema = json!({
                "apiVersion": "string",
                "kind": "string",
                "metadata": "*",
                "spec": cert_manager_spec(kind).unwrap()
            });
            let mut out = Vec::new();
            check_fields("", doc, &schema, &mut out);
            if let Err(e) = round_trip_at::<ObjectMeta>(".metadata", &doc["metadata"]) {
                out.push(e);
            }
            if out.is_empty() { Ok(()) } else { Err(out.join("; ")) }
        }
        _ => Err(format!(
            "{api_version} {kind} is a kind this test does not know: add its k8s-openapi type (or an allowed-field list) to check_document"
        )),
    }
    .map(|()| kind.to_owned())
}

/// Every document of every manifest, with where it is.
fn all_documents() -> Vec<(String, Value)> {
    let mut files = Vec::new();
    yaml_files(&deploy_dir(), &mut files);
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs = documents(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, doc) in docs.into_iter().enumerate() {
            let shown = file
                .strip_prefix(deploy_dir())
                .unwrap()
                .display()
                .to_string();
            out.push((format!("{shown} (document {})", n + 1), doc));
        }
    }
    out
}

#[test]
fn every_manifest_is_its_api_type_without_unknown_fields() {
    let docs = all_documents();
    assert!(
        !docs.is_empty(),
        "no YAML document under {}",
        deploy_dir().display()
    );
    let mut kinds = BTreeSet::new();
    let mut failures = Vec::new();
    for (at, doc) in &docs {
        match check_document(doc) {
            Ok(kind) => {
                kinds.insert(kind);
            }
            Err(e) => failures.push(format!("{at}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for expected in [
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ValidatingWebhookConfiguration",
        "Issuer",
        "Certificate",
        "DaemonSet",
    ] {
        assert!(
            kinds.contains(expected),
            "no {expected} under deploy/kubernetes/: {kinds:?}"
        );
    }
}

#[test]
fn a_misspelt_or_unknown_field_fails_the_check() {
    let cases = [
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n",
            ".spec.replica",
        ),
        (
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      securityContext: {windowsOptions: {hostprocess: true}}\n      containers: [{name: c, image: i}]\n",
            ".spec.template.spec.securityContext.windowsOptions.hostprocess",
        ),
        (
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: x}\nwebhooks:\n- name: a.b.c\n  admissionReviewVersions: [v1]\n  sideEffects: None\n  clientConfig: {service: {name: s, namespace: n}}\n  matchCondition: []\n",
            ".webhooks[0].matchCondition",
        ),
        (
            "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\nspec: {secretName: s, dnsName: [a], issuerRef: {name: i}}\n",
            ".spec.dnsName",
        ),
        (
            "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: x, label: {a: b}}\nspec: {selfSigned: {}}\n",
            ".metadata.label",
        ),
    ];
    for (yaml, path) in cases {
        let doc = documents(yaml).unwrap().remove(0);
        let e = check_document(&doc).expect_err(path);
        assert!(
            e.contains(path) && e.contains("unknown field"),
            "{path}: {e}"
        );
    }
    // The same documents spelt right pass.
    let right = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x, labels: {a: b}}\nspec: {secretName: s, dnsNames: [a], issuerRef: {name: i}}\n";
    assert_eq!(
        check_document(&documents(right).unwrap()[0]).unwrap(),
        "Certificate"
    );
    // An unknown kind is a failure, not a pass.
    let unknown =
        documents("apiVersion: example.invalid/v1\nkind: Widget\nmetadata: {name: x}\n").unwrap();
    assert!(
        check_document(&unknown[0])
            .unwrap_err()
            .contains("does not know")
    );
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    &docs
        .iter()
        .find(|(_, d)| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
        .1
}

#[test]
fn the_webhook_configuration_matches_the_server() {
    let docs = all_documents();
    let config = find(&docs, "ValidatingWebhookConfiguration", "credguard-webhook");
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "credguard-system/credguard-webhook"
    );
    find(&docs, "Certificate", "credguard-webhook");
    for webhook in config["webhooks"].as_array().unwrap() {
        assert_eq!(webhook["failurePolicy"], "Ignore");
        assert_eq!(webhook["sideEffects"], "None");
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(
            webhook["clientConfig"]["service"]["path"],
            credguard_k8s::webhook::VALIDATE_PATH
        );
    }
    let deployment = find(&docs, "Deployment", "credguard-webhook");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        credguard_k8s::webhook::HEALTHZ_PATH
    );
}

#[test]
fn the_agent_runs_as_a_hostprocess_daemonset_with_its_cli_contract() {
    let docs = all_documents();
    let ds = find(&docs, "DaemonSet", "credguard-agent");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"]["windowsOptions"]["hostProcess"],
        true
    );
    assert_eq!(
        pod["securityContext"]["windowsOptions"]["runAsUserName"],
        "NT AUTHORITY\\SYSTEM"
    );
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "windows");
    assert_eq!(
        pod["containers"][0]["command"],
        json!([
            "credguard.exe",
            "agent",
            "--alive-from",
            "containerd",
            "--interval",
            "30s",
            "--grace",
            "2m",
            "--metrics-listen",
            "0.0.0.0:9484"
        ])
    );
}

/// The pods webhook's `matchConditions`, evaluated with a CEL engine over pods: it must send
/// exactly the pods that carry inline contents somewhere (the only ones the webhook can deny).
#[test]
fn the_pod_match_condition_sends_exactly_the_pods_with_inline_contents() {
    let docs = all_documents();
    let config = find(&docs, "ValidatingWebhookConfiguration", "credguard-webhook");
    let pods_webhook = config["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["rules"][0]["resources"] == json!(["pods"]))
        .expect("a webhook for pods");
    let conditions = pods_webhook["matchConditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 1);
    let expression = conditions[0]["expression"].as_str().unwrap();
    let env = std::sync::Arc::new(cel::Env::stdlib());
    let program = env
        .compile(expression)
        .unwrap_or_else(|e| panic!("does not compile: {e:?}"));
    let sent = |pod: &Value| {
        let mut ctx = cel::Context::with_env(std::sync::Arc::clone(&env));
        ctx.add_variable("object", pod).unwrap();
        ctx.add_variable_from_value("oldObject", cel::Value::Null);
        ctx.add_variable("request", json!({"operation": "CREATE", "resource": {"group": "", "version": "v1", "resource": "pods"}}))
            .unwrap();
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => b,
            other => {
                panic!("not a bool (the API server would fail the condition): {other:?}\n{pod}")
            }
        }
    };
    let container = |extra: Value| {
        let mut c = json!({"name": "c", "image": "i"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let inline = json!({"securityContext": {"windowsOptions": {"gmsaCredentialSpec": "{}"}}});
    let name_only =
        json!({"securityContext": {"windowsOptions": {"gmsaCredentialSpecName": "webapp01"}}});
    let pod = |spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
    let cases = [
        // The fixture the API server sends after windows-gmsa expanded the name: pod level.
        (support_fixture_pod(), true),
        (
            pod(json!({"containers": [container(inline.clone())]})),
            true,
        ),
        (
            pod(
                json!({"containers": [container(json!({}))], "initContainers": [container(inline.clone())]}),
            ),
            true,
        ),
        (
            pod(
                json!({"containers": [container(json!({}))], "ephemeralContainers": [container(inline.clone())]}),
            ),
            true,
        ),
        // A Linux pod, a Windows pod without gMSA, a name the mutating webhook did not expand.
        (pod(json!({"containers": [container(json!({}))]})), false),
        (
            pod(
                json!({"os": {"name": "windows"}, "nodeSelector": {"kubernetes.io/os": "windows"}, "containers": [container(json!({}))]}),
            ),
            false,
        ),
        (
            pod(
                json!({"securityContext": {"runAsNonRoot": true}, "containers": [container(json!({"securityContext": {"windowsOptions": {"runAsUserName": "ContainerUser"}}}))]}),
            ),
            false,
        ),
        (
            pod(json!({"containers": [container(name_only.clone())]})),
            false,
        ),
        (
            pod(
                json!({"securityContext": name_only["securityContext"].clone(), "containers": [container(json!({}))]}),
            ),
            false,
        ),
    ];
    for (pod, expected) in cases {
        assert_eq!(sent(&pod), expected, "{pod}");
    }
}

/// The pod of the webhook's Pod CREATE fixture (inline contents at pod level).
fn support_fixture_pod() -> Value {
    let path = format!(
        "{}/tests/fixtures/review_pod_create.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let review: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    review["request"]["object"].clone()
}
