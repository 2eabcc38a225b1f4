//! `credguard k8s policy` and `credguard k8s check`: what they print, in each format, and
//! their exit codes.

mod common;

use std::path::PathBuf;

use common::Env;
use serde_json::Value;

fn manifests(dir: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../credguard-k8s/tests/fixtures/manifests")
        .join(dir)
        .to_string_lossy()
        .into_owned()
}

/// The YAML documents of `text`, as JSON values.
fn yaml_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

#[test]
fn policy_prints_two_policies_and_their_bindings_as_yaml() {
    let env = Env::new();
    let (code, out, err) = env.run(&["k8s", "policy"]);
    assert_eq!(code, 0, "{err}");
    let docs = yaml_docs(&out);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ]
    );
    for d in &docs {
        assert_eq!(d["apiVersion"], "admissionregistration.k8s.io/v1");
    }
    let rules = &docs[0]["spec"]["matchConstraints"]["resourceRules"][0];
    assert_eq!(rules["apiGroups"][0], "windows.k8s.io");
    assert_eq!(rules["resources"][0], "gmsacredentialspecs");
    assert_eq!(rules["operations"], serde_json::json!(["CREATE", "UPDATE"]));
    assert_eq!(docs[1]["spec"]["validationActions"][0], "Deny");
    assert_eq!(docs[3]["spec"]["validationActions"][0], "Warn");
    assert_eq!(docs[1]["spec"]["policyName"], docs[0]["metadata"]["name"]);
    let messages: Vec<&str> = docs[0]["spec"]["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("CS011 ")),
        "{messages:?}"
    );
    assert!(messages.iter().all(|m| m.starts_with("CS")));
}

#[test]
fn policy_options() {
    let env = Env::new();
    let (code, out, _) = env.run(&[
        "k8s",
        "policy",
        "--warn-only",
        "--name",
        "trial",
        "--object-selector",
        "env=prod,team notin (legacy)",
    ]);
    assert_eq!(code, 0);
    let docs = yaml_docs(&out);
    assert_eq!(docs[0]["metadata"]["name"], "trial");
    assert_eq!(docs[2]["metadata"]["name"], "trial-warnings");
    assert_eq!(docs[1]["spec"]["validationActions"][0], "Warn");
    let sel = &docs[1]["spec"]["matchResources"]["objectSelector"];
    assert_eq!(sel["matchLabels"]["env"], "prod");
    assert_eq!(sel["matchExpressions"][0]["operator"], "NotIn");
    // Cluster-scoped: a namespace selector would never apply, so it is refused.
    let (code, out, err) = env.run(&["k8s", "policy", "--namespace-selector", "a=b"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("cluster-scoped"), "{err}");
    let (code, _, err) = env.run(&["k8s", "policy", "--name", "Not_A_Name"]);
    assert_eq!(code, 2);
    assert!(err.contains("Not_A_Name"), "{err}");
    let (code, _, err) = env.run(&["k8s", "policy", "--object-selector", "a in b"]);
    assert_eq!(code, 2);
    assert!(err.contains("parentheses"), "{err}");
}

#[test]
fn check_reports_findings_with_file_and_line_and_exits_1() {
    let env = Env::new();
    let (code, out, err) = env.run(&["k8s", "check", &manifests("cluster")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "03-workloads.yaml:46: error[K8S002] Deployment web/webapp2-frontend container iis"
        ),
        "{out}"
    );
    assert!(out.contains("01-credspecs.yaml:46: error[CS011]"), "{out}");
    assert!(
        out.contains("4 files checked (13 objects): 7 errors, 2 warnings"),
        "{out}"
    );
    assert!(!out.contains("FIXTURE-SECRET"));
}

#[test]
fn check_exit_codes() {
    let env = Env::new();
    let clean = env.file(
        "clean.yaml",
        b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n",
    );
    let (code, out, _) = env.run(&["k8s", "check", clean.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = env.run(&["k8s", "check", &manifests("broken")]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("bad.yaml:7: error: it is not valid YAML"),
        "{out}"
    );
    let (code, _, _) = env.run(&["k8s", "check", "/no/such/dir"]);
    assert_eq!(code, 2);
    let (code, _, err) = env.run(&["k8s", "check"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn check_prints_sarif() {
    let env = Env::new();
    let (code, out, err) = env.run(&["--output", "sarif", "k8s", "check", &manifests("cluster")]);
    assert_eq!(code, 1, "{err}");
    let log: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 9);
    assert!(results.iter().any(|r| r["ruleId"] == "K8S002"
        && r["locations"][0]["physicalLocation"]["region"]["startLine"] == 46));
    // Only `k8s check` speaks SARIF.
    let (code, _, err) = env.run(&["--output=sarif", "k8s", "policy"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = env.run(&["--output", "sarif", "version"]);
    assert_eq!(code, 2);
}
