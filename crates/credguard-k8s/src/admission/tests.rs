use serde_json::{Value, json};

use super::*;

const SECRET: &str = "Sup3rS3cretPassw0rd";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// The library's secret fixture: a valid spec whose PluginInput is `domain:user:password`.
fn secret_spec() -> Value {
    let path = format!(
        "{}/../credguard/tests/fixtures/secret_spec.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap();
    assert!(spec.to_string().contains(SECRET));
    spec
}

/// An account SID (one more sub-authority than a domain's): CS011.
fn with_account_sid(mut spec: Value) -> Value {
    spec["DomainJoinConfig"]["Sid"] = json!("S-1-5-21-702590844-1001920913-2680819671-1103");
    spec
}

fn response(review: Value) -> AdmissionResponse {
    let verdict = review_bytes(review.to_string().as_bytes()).expect("a well-formed review");
    let out = verdict.review;
    assert_eq!(out.api_version, API_VERSION);
    assert_eq!(out.kind, KIND);
    assert!(out.request.is_none());
    out.response.expect("a response")
}

fn pod_with_inline(contents: &str) -> Value {
    let mut review = fixture("review_pod_create.json");
    review["request"]["object"]["spec"]["securityContext"]["windowsOptions"]["gmsaCredentialSpec"] =
        json!(contents);
    review
}

#[test]
fn a_clean_gmsacredentialspec_is_allowed_with_its_uid_and_no_warnings() {
    let r = response(fixture("review_gmsa_create.json"));
    assert_eq!(r.uid, "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
    assert!(r.allowed);
    assert!(r.status.is_none());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn a_gmsacredentialspec_with_a_lint_error_is_denied_naming_code_and_path() {
    let mut review = fixture("review_gmsa_create.json");
    let spec = review["request"]["object"]["credspec"].take();
    review["request"]["object"]["credspec"] = with_account_sid(spec);
    let r = response(review);
    assert!(!r.allowed);
    let status = r.status.unwrap();
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    assert!(status.message.contains("CS011"), "{}", status.message);
    assert!(
        status.message.contains("DomainJoinConfig.Sid"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("GMSACredentialSpec"),
        "{}",
        status.message
    );
}

#[test]
fn a_gmsacredentialspec_without_credspec_is_denied() {
    let mut review = fixture("review_gmsa_create.json");
    review["request"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("credspec");
    let r = response(review);
    assert!(!r.allowed);
    assert!(r.status.unwrap().message.contains("no `credspec`"));
}

#[test]
fn a_gmsacredentialspec_update_is_judged_on_the_new_object() {
    let mut review = fixture("review_gmsa_create.json");
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["oldObject"] = review["request"]["object"].clone();
    let spec = review["request"]["object"]["credspec"].take();
    review["request"]["object"]["credspec"] = with_account_sid(spec);
    assert!(!response(review).allowed);
}

#[test]
fn a_pod_with_clean_inline_contents_is_allowed() {
    let r = response(fixture("review_pod_create.json"));
    assert_eq!(r.uid, "c1a3e5b0-6f1d-4f3c-9a0e-1d2c3b4a5f60");
    assert!(r.allowed);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn a_pod_with_a_warning_is_allowed_with_the_warning_and_never_the_plugin_input() {
    let review = pod_with_inline(&secret_spec().to_string());
    let text = review_bytes(review.to_string().as_bytes()).unwrap().review;
    let out = serde_json::to_string(&text).unwrap();
    assert!(!out.contains(SECRET), "{out}");
    let r = text.response.unwrap();
    assert!(r.allowed);
    assert!(
        r.warnings.iter().any(|w| w.contains("CS088")
            && w.contains("PluginInput")
            && w.contains("the pod's securityContext")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings
            .iter()
            .all(|w| w.chars().count() <= MAX_WARNING_CHARS)
    );
}

#[test]
fn a_pod_with_a_lint_error_is_denied_naming_the_container_and_never_the_plugin_input() {
    let mut review = fixture("review_pod_create.json");
    let spec = with_account_sid(secret_spec()).to_string();
    review["request"]["object"]["spec"]["containers"][0]["securityContext"] = json!({"windowsOptions": {"gmsaCredentialSpecName": "webapp01", "gmsaCredentialSpec": spec}});
    let verdict = review_bytes(review.to_string().as_bytes()).unwrap();
    let out = serde_json::to_string(&verdict.review).unwrap();
    assert!(!out.contains(SECRET), "{out}");
    let r = verdict.review.response.unwrap();
    assert!(!r.allowed);
    let message = r.status.unwrap().message;
    assert!(
        message.contains("container \"iis\": CS011 DomainJoinConfig.Sid"),
        "{message}"
    );
    // The warning of the same spec is still a warning.
    assert!(
        r.warnings.iter().any(|w| w.contains("CS088")),
        "{:?}",
        r.warnings
    );
    assert_eq!(verdict.summary.verdict, "denied");
    assert_eq!(verdict.summary.codes, vec!["CS011".to_owned()]);
    assert_eq!(verdict.summary.object, "web/webapp-7c9d8b6f5d-");
}

#[test]
fn init_and_ephemeral_containers_are_checked_too() {
    for list in ["initContainers", "ephemeralContainers"] {
        let mut review = fixture("review_pod_create.json");
        let spec = with_account_sid(secret_spec()).to_string();
        review["request"]["object"]["spec"][list] = json!([{
            "name": "setup",
            "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022",
            "securityContext": {"windowsOptions": {"gmsaCredentialSpec": spec}}
        }]);
        let r = response(review);
        assert!(!r.allowed, "{list}");
        let message = r.status.unwrap().message;
        assert!(
            message.contains("container \"setup\": CS011"),
            "{list}: {message}"
        );
    }
}

#[test]
fn inline_contents_that_are_not_json_are_denied_without_quoting_them() {
    let r = response(pod_with_inline("{\"CmsPlugins\": [Sup3rS3cretPassw0rd"));
    assert!(!r.allowed);
    let message = r.status.unwrap().message;
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
}

#[test]
fn delete_and_connect_are_allowed_whatever_the_object() {
    for op in ["DELETE", "CONNECT"] {
        let mut review = fixture("review_gmsa_create.json");
        review["request"]["operation"] = json!(op);
        let spec = review["request"]["object"]["credspec"].take();
        review["request"]["oldObject"] = review["request"]["object"].clone();
        review["request"]["object"]["credspec"] = with_account_sid(spec);
        let r = response(review);
        assert!(r.allowed, "{op}");
        assert!(r.warnings.is_empty());
    }
}

#[test]
fn objects_of_other_kinds_are_allowed_without_warnings() {
    let mut review = fixture("review_pod_create.json");
    review["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    review["request"]["object"]["spec"]["securityContext"]["windowsOptions"]["gmsaCredentialSpec"] =
        json!("not even json");
    let r = response(review);
    assert!(r.allowed);
    assert!(r.warnings.is_empty());
    assert!(r.status.is_none());
}

#[test]
fn a_pod_without_gmsa_is_allowed_without_warnings() {
    let mut review = fixture("review_pod_create.json");
    review["request"]["object"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    let r = response(review);
    assert!(r.allowed && r.warnings.is_empty() && r.status.is_none());
}

#[test]
fn dry_run_is_judged_like_any_request() {
    let mut review = pod_with_inline(&with_account_sid(secret_spec()).to_string());
    review["request"]["dryRun"] = json!(true);
    let verdict = review_bytes(review.to_string().as_bytes()).unwrap();
    assert!(verdict.summary.dry_run);
    assert!(!verdict.review.response.unwrap().allowed);
}

#[test]
fn malformed_reviews_are_errors_that_never_quote_the_body() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json Sup3rS3cretPassw0rd".to_vec(), "not valid JSON"),
        (b"{\"apiVersion\":".to_vec(), "ends early"),
        (
            {
                let mut r = fixture("review_pod_create.json");
                r["apiVersion"] = json!("admission.k8s.io/v1beta1");
                r.to_string().into_bytes()
            },
            "admission.k8s.io/v1beta1",
        ),
        (
            json!({"apiVersion": API_VERSION, "kind": "Pod"})
                .to_string()
                .into_bytes(),
            "not an admission.k8s.io/v1 AdmissionReview",
        ),
        (
            json!({"apiVersion": API_VERSION, "kind": KIND})
                .to_string()
                .into_bytes(),
            "no `request`",
        ),
        (
            {
                let mut r = fixture("review_pod_create.json");
                r["request"]["uid"] = json!("");
                r.to_string().into_bytes()
            },
            "empty `uid`",
        ),
        (
            {
                let mut r = fixture("review_pod_create.json");
                r["request"].as_object_mut().unwrap().remove("uid");
                r.to_string().into_bytes()
            },
            "wrong type or value",
        ),
        (
            {
                let mut r = fixture("review_pod_create.json");
                r["request"]["operation"] = json!("Sup3rS3cretPassw0rd");
                r.to_string().into_bytes()
            },
            "wrong type or value",
        ),
    ];
    for (body, expected) in cases {
        let e = review_bytes(&body).expect_err(&String::from_utf8_lossy(&body));
        let text = e.to_string();
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn many_warnings_are_capped_and_each_is_short() {
    let mut review = fixture("review_pod_create.json");
    let spec = secret_spec().to_string();
    let containers: Vec<Value> = (0..30)
        .map(|n| {
            json!({"name": format!("c{n}-{}", "x".repeat(240)), "image": "i",
                "securityContext": {"windowsOptions": {"gmsaCredentialSpec": spec}}})
        })
        .collect();
    review["request"]["object"]["spec"]["containers"] = json!(containers);
    let r = response(review);
    assert!(r.allowed);
    assert_eq!(r.warnings.len(), MAX_WARNINGS);
    assert!(r.warnings.last().unwrap().contains("more lint warnings"));
    assert!(
        r.warnings
            .iter()
            .all(|w| w.chars().count() <= MAX_WARNING_CHARS)
    );
}

#[test]
fn the_fixtures_round_trip_through_the_types() {
    for name in ["review_gmsa_create.json", "review_pod_create.json"] {
        let value = fixture(name);
        let typed: AdmissionReview = serde_json::from_value(value.clone()).unwrap();
        let mut back = serde_json::to_value(&typed).unwrap();
        // The API server sends `oldObject: null`; the types leave it out.
        let mut expected = value;
        expected["request"]
            .as_object_mut()
            .unwrap()
            .remove("oldObject");
        back["request"].as_object_mut().unwrap().remove("oldObject");
        assert_eq!(back, expected, "{name}");
    }
}

#[test]
fn an_update_judges_only_what_changed() {
    // A GMSACredentialSpec stored with an error (before the webhook): a label change passes.
    let mut review = fixture("review_gmsa_create.json");
    review["request"]["operation"] = json!("UPDATE");
    let spec = review["request"]["object"]["credspec"].take();
    review["request"]["object"]["credspec"] = with_account_sid(spec);
    review["request"]["oldObject"] = review["request"]["object"].clone();
    review["request"]["object"]["metadata"]["labels"] = json!({"team": "web"});
    let r = response(review);
    assert!(r.allowed && r.warnings.is_empty(), "{r:?}");

    // A pod stored with an error at pod level; an ephemeral container added (the
    // `ephemeralcontainers` subresource sends the whole pod).
    let mut review = pod_with_inline(&with_account_sid(secret_spec()).to_string());
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["subResource"] = json!("ephemeralcontainers");
    review["request"]["oldObject"] = review["request"]["object"].clone();
    let debug = |spec: Option<Value>| {
        let mut c =
            json!({"name": "debug", "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022"});
        if let Some(spec) = spec {
            c["securityContext"] =
                json!({"windowsOptions": {"gmsaCredentialSpec": spec.to_string()}});
        }
        c
    };
    let mut plain = review.clone();
    plain["request"]["object"]["spec"]["ephemeralContainers"] = json!([debug(None)]);
    assert!(
        response(plain).allowed,
        "the old pod-level error is not judged again"
    );
    let mut bad = review.clone();
    bad["request"]["object"]["spec"]["ephemeralContainers"] =
        json!([debug(Some(with_account_sid(secret_spec())))]);
    let r = response(bad);
    assert!(!r.allowed);
    let message = r.status.unwrap().message;
    assert!(
        message.contains("ephemeral container \"debug\": CS011"),
        "{message}"
    );
    assert!(!message.contains("the pod's securityContext"), "{message}");
}
