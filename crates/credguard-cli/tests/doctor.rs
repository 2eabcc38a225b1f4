//! `credguard doctor` off Windows: it says that it checks a Windows host, exit 8, as text
//! and as one JSON error document. (On Windows, scripts/windows-tests.sh runs it under Wine.)
#![cfg(not(windows))]

mod common;

use common::{Env, p};
use serde_json::Value;

#[test]
fn doctor_off_windows_says_it_checks_a_windows_host_and_exits_8() {
    let env = Env::new();
    let (code, out, err) = env.run(&["doctor"]);
    assert_eq!(code, 8, "{out}\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("error: credguard doctor checks a Windows host"),
        "{err}"
    );
    assert!(err.contains(std::env::consts::OS), "{err}");
    assert!(err.contains("run it on the Windows node"), "{err}");
    // Nothing is read first: not even a spec that does not exist, nor a state directory.
    let (code, _, err) = env.run(&[
        "doctor",
        "--credspec",
        "/no/such/spec.json",
        "--container",
        "web-1",
    ]);
    assert_eq!(code, 8, "{err}");
    assert!(!err.contains("spec.json"), "{err}");
    assert!(!env.state().exists(), "doctor created the state directory");
}

#[test]
fn doctor_off_windows_prints_one_json_error_document() {
    let env = Env::new();
    let spec = env.spec();
    let (code, out, err) = env.run(&["--output", "json", "doctor", "--credspec", p(&spec)]);
    assert_eq!(code, 8, "{out}\n{err}");
    assert_eq!(out.lines().count(), 1, "one document: {out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["exit_code"], 8);
    assert_eq!(v["error"]["chain"], serde_json::json!([]));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("checks a Windows host"),
        "{v}"
    );
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
}

#[test]
fn doctor_help_ends_with_examples() {
    let env = Env::new();
    let (code, help, _) = env.run(&["doctor", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("--credspec <SOURCE>") && help.contains("--container <ID>"));
    let tail = help.trim_end();
    let examples = tail.rfind("Examples:").unwrap();
    assert!(
        tail[examples..].contains("credguard doctor --credspec"),
        "{help}"
    );
    assert!(!tail[examples..].contains("Options:"), "{help}");
}
