//! `--output json`: every command, on its success and its error paths, prints exactly one
//! JSON document on standard output, valid against its schema under `docs/schema/` (the
//! error document against `error.json`, with the process's exit code in it); `--output
//! jsonl` prints arrays one element a line.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Env, p};
use serde_json::Value;

/// The committed schemas, by command name (`instances-add`, ..., `error`).
fn schemas() -> BTreeMap<String, jsonschema::Validator> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{} is not a valid JSON Schema: {e}", path.display()));
        out.insert(name.to_owned(), validator);
    }
    out
}

/// The one JSON document of `out`, or a panic saying why there is not exactly one.
fn one_document(out: &str, what: &str) -> Value {
    let docs: Vec<Value> = serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {out:?}"));
    assert_eq!(
        docs.len(),
        1,
        "{what}: not exactly one JSON document: {out:?}"
    );
    assert_eq!(
        out.lines().count(),
        1,
        "{what}: the document is not one line: {out:?}"
    );
    docs.into_iter().next().unwrap()
}

/// Checks one run: its exit code, one document, valid against `schema` (or, when `schema`
/// is `error`, the error document with the exit code in it).
fn check(
    schemas: &BTreeMap<String, jsonschema::Validator>,
    schema: &str,
    args: &[&str],
    code: i32,
    out: &str,
    err: &str,
    want_code: i32,
) -> Value {
    let what = format!("{args:?}");
    assert_eq!(code, want_code, "{what}: stdout {out} stderr {err}");
    let doc = one_document(out, &what);
    let validator = schemas
        .get(schema)
        .unwrap_or_else(|| panic!("no docs/schema/{schema}.json"));
    if let Err(e) = validator.validate(&doc) {
        panic!("{what}: not valid against {schema}.json: {e}\n{doc:#}");
    }
    if schema == "error" {
        assert_eq!(doc["error"]["exit_code"], want_code, "{what}: {doc}");
        assert!(
            !doc["error"]["message"].as_str().unwrap().is_empty(),
            "{what}: {doc}"
        );
        // The error says what standard error says (whose lines may be indented or wrapped).
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            words(err).contains(&words(message)),
            "{what}: stderr {err:?} vs message {message:?}"
        );
    } else {
        assert!(
            doc.get("error").is_none_or(|e| !e.is_object()),
            "{what}: an error document where {schema} was expected: {doc}"
        );
    }
    doc
}

/// The fields under which documents of HCS and credential specs are embedded unchanged.
const EMBEDDED: &[&str] = &["instance", "document", "spec", "service_table"];

/// Every field name of credguard's own is snake_case (the embedded documents keep theirs).
fn assert_snake_case(v: &Value, at: &str) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                assert!(
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{at}: field `{k}` is not snake_case"
                );
                if !EMBEDDED.contains(&k.as_str()) {
                    assert_snake_case(v, &format!("{at}.{k}"));
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| assert_snake_case(i, at)),
        _ => {}
    }
}

const NEW: &[&str] = &[
    "credspec",
    "new",
    "--account",
    "WebApp01",
    "--domain",
    "contoso.com",
    "--netbios",
    "CONTOSO",
    "--sid",
    "S-1-5-21-702590844-1001920913-2680819671",
    "--guid",
    "244818ae-87ca-4fcd-92ec-e79e5252348a",
];

#[test]
fn every_command_prints_one_document_valid_against_its_schema() {
    let schemas = schemas();
    let env = Env::new();
    let spec = env.spec();
    let spec = p(&spec);
    let bad = env.file("bad.json", br#"{"CmsPlugins": ["ActiveDirectory"]}"#);
    let bad = p(&bad);
    let missing = env.dir.path().join("missing.json");
    let missing = p(&missing);
    let specs_dir = env.dir.path().join("specs");
    let specs_dir = p(&specs_dir);
    let secret = env.file("secret.txt", br#"{"credentialArn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:the-plugin-secret"}"#);
    let secret = p(&secret);
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../credguard/tests/fixtures/credspecs");
    let k8s =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../credguard-k8s/tests/fixtures/manifests");
    let (k8s_cluster, k8s_broken) = (k8s.join("cluster"), k8s.join("broken"));
    let (k8s_cluster, k8s_broken) = (p(&k8s_cluster).to_owned(), p(&k8s_broken).to_owned());
    let k8s_clean = env.file(
        "sa.yaml",
        b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n",
    );
    let k8s_clean = p(&k8s_clean).to_owned();
    let manifest = fixtures.join("k8s_gmsa_credspec.yaml");
    let manifest = p(&manifest);
    let oci = fixtures.join("oci_config_string.json");
    let oci = p(&oci);
    let no_containerd = format!(
        "containerd:{}",
        env.state().join("no-containerd.sock").display()
    );

    // Each run, in order (the state carries over): the schema its output must match
    // (`error` for an error document), its arguments after `--output json`, its exit code.
    #[rustfmt::skip]
    let runs: Vec<(&str, Vec<&str>, i32)> = vec![
        ("emulator-uvm-list", vec!["emulator", "uvm", "list"], 0),
        ("emulator-uvm-create", vec!["emulator", "uvm", "create", "uvm-1"], 0),
        ("error", vec!["emulator", "uvm", "create", "uvm-1"], 5),
        ("emulator-uvm-create", vec!["emulator", "uvm", "create", "uvm-2"], 0),
        ("emulator-uvm-list", vec!["emulator", "uvm", "list"], 0),
        ("emulator-uvm-show", vec!["emulator", "uvm", "show", "uvm-1"], 0),
        ("error", vec!["emulator", "uvm", "show", "nope"], 4),
        ("instances-list", vec!["instances", "list"], 0),
        ("instances-add", vec!["instances", "add", "--id", "a", "--credspec", spec], 0),
        ("error", vec!["instances", "add", "--id", "a", "--credspec", spec], 5),
        ("instances-add", vec!["instances", "add", "--id", "h", "--credspec", spec, "--isolation", "hyperv", "--uvm", "uvm-1"], 0),
        ("instances-add", vec!["instances", "add", "--id", "d", "--credspec", spec, "--dry-run"], 0),
        ("instances-add", vec!["instances", "add", "--id", "d", "--credspec", spec, "--isolation", "hyperv", "--uvm", "uvm-1", "--dry-run"], 0),
        ("error", vec!["instances", "add", "--id", "x", "--credspec", bad], 2),
        ("error", vec!["instances", "add", "--id", "x", "--credspec", spec, "--gmsa-disabled"], 6),
        ("error", vec!["instances", "add", "--credspec", spec], 2),
        ("emulator-uvm-show", vec!["emulator", "uvm", "show", "uvm-1"], 0),
        ("instances-list", vec!["instances", "list"], 0),
        ("instances-list", vec!["instances", "list", "--orphans", "--alive", "a"], 0),
        ("error", vec!["instances", "list", "--alive", ""], 2),
        ("instances-show", vec!["instances", "show", "a"], 0),
        ("error", vec!["instances", "show", "nope"], 4),
        ("instances-remove", vec!["instances", "remove", "a", "nope"], 0),
        ("error", vec!["instances", "remove", ""], 2),
        ("error", vec!["instances", "remove"], 2),
        ("emulator-inject", vec!["emulator", "inject", "--list"], 0),
        ("emulator-inject", vec!["emulator", "inject", "--api", "HcsModifyServiceSettings", "--operation", "RemoveInstance", "--hresult", "E_FAIL"], 0),
        ("emulator-inject", vec!["emulator", "inject", "--list"], 0),
        ("error", vec!["emulator", "inject", "--api", "HcsModifyServiceSettings", "--hresult", "E_FAIL", "--times", "0"], 2),
        // A removal that fails: the per-id result says so, exit 3, no error document.
        ("instances-remove", vec!["instances", "remove", "h"], 3),
        ("emulator-inject", vec!["emulator", "inject", "--clear"], 0),
        ("emulator-inject", vec!["emulator", "inject", "--api", "HcsModifyServiceSettings", "--operation", "RemoveInstance", "--hresult", "E_FAIL"], 0),
        // Never reached: still queued when the queue is cleared below.
        ("emulator-inject", vec!["emulator", "inject", "--api", "HcsGetServiceProperties", "--hresult", "E_FAIL", "--skip", "1000"], 0),
        // A reconcile whose removal fails: the results say so, exit 3.
        ("reconcile", vec!["reconcile", "--alive-none"], 3),
        ("emulator-inject", vec!["emulator", "inject", "--clear"], 0),
        ("reconcile", vec!["reconcile", "--dry-run", "--alive-none"], 0),
        ("reconcile", vec!["reconcile", "--alive-none"], 0),
        ("error", vec!["reconcile", "--alive", ""], 2),
        // --alive-from: a source that cannot be reached is exit 8 and removes nothing (the
        // successes need a containerd: tests/alive_from.rs); an unknown kind is a usage error.
        ("error", vec!["reconcile", "--alive-from", &no_containerd, "--source-timeout", "5s"], 8),
        ("error", vec!["reconcile", "--alive-from", "docker"], 2),
        ("error", vec!["reconcile", "--alive-from", "containerd", "--alive-none"], 2),
        ("probe", vec!["probe", "--credspec", spec], 0),
        ("probe", vec!["probe", "--credspec", spec, "--isolation", "hyperv", "--uvm", "uvm-2"], 0),
        ("emulator-inject", vec!["emulator", "inject", "--api", "HcsGetServiceProperties", "--hresult", "E_FAIL", "--skip", "2"], 0),
        // A probe with a failing step: the steps say which, exit 1.
        ("probe", vec!["probe", "--credspec", spec], 1),
        ("error", vec!["probe", "--credspec", bad], 2),
        ("credspec-validate", vec!["credspec", "validate", spec], 0),
        ("credspec-validate", vec!["credspec", "validate", spec, bad], 1),
        ("credspec-validate", vec!["credspec", "validate", spec, missing], 2),
        ("error", vec!["credspec", "validate"], 2),
        ("credspec-validate", vec!["credspec", "validate", manifest, oci], 0),
        ("credspec-show", vec!["credspec", "show", spec], 0),
        ("credspec-show", vec!["credspec", "show", oci], 0),
        ("error", vec!["credspec", "show", missing], 2),
        ("credspec-new", NEW.to_vec(), 0),
        ("credspec-new", [NEW, &["--plugin-guid", "{859E1386-BDB4-49E8-85C7-3070B13920E1}", "--plugin-input-file", secret]].concat(), 0),
        ("credspec-new", [NEW, &["--save", "--credspec-dir", specs_dir]].concat(), 0),
        ("error", [NEW, &["--save", "--credspec-dir", specs_dir]].concat(), 5),
        ("error", vec!["credspec", "new", "--account", "a"], 2),
        ("emulator-log", vec!["emulator", "log"], 0),
        ("emulator-log", vec!["emulator", "log", "--tail", "2", "--clear"], 0),
        ("emulator-log", vec!["emulator", "log"], 0),
        ("error", vec!["--backend", "hcs", "emulator", "log"], 2),
        ("emulator-uvm-stop", vec!["emulator", "uvm", "stop", "uvm-1"], 0),
        ("error", vec!["emulator", "uvm", "stop", "nope"], 4),
        ("emulator-uvm-remove", vec!["emulator", "uvm", "remove", "uvm-1"], 0),
        ("error", vec!["emulator", "uvm", "remove", "uvm-1"], 4),
        ("emulator-reset", vec!["emulator", "reset"], 0),
        ("emulator-reset", vec!["emulator", "reset", "--all"], 0),
        ("error", vec!["--backend", "hcs", "emulator", "reset"], 2),
        ("version", vec!["version"], 0),
        // doctor checks a Windows host: elsewhere it is the error document, exit 8 (its own
        // document is checked under Wine, scripts/windows-tests.sh).
        ("error", vec!["doctor", "--credspec", &spec], 8),
        ("explain", vec!["explain", "hcs::CreateComputeSystem: winapi error #3489792023"], 0),
        ("explain", vec!["explain", "0x12345678"], 0),
        // A server prints no result document: refused under JSON, whatever else is wrong.
        ("error", vec!["k8s", "webhook", "--tls-cert", missing, "--tls-key", missing], 2),
        ("error", vec!["explain", "no code here"], 2),
        ("k8s-policy", vec!["k8s", "policy"], 0),
        ("k8s-policy", vec!["k8s", "policy", "--warn-only", "--object-selector", "env=prod"], 0),
        ("error", vec!["k8s", "policy", "--namespace-selector", "a=b"], 2),
        ("k8s-check", vec!["k8s", "check", &k8s_cluster], 1),
        ("k8s-check", vec!["k8s", "check", &k8s_clean], 0),
        ("k8s-check", vec!["k8s", "check", &k8s_broken], 2),
        ("error", vec!["k8s", "check"], 2),
        // A script and a manual are not JSON: refused under --output json.
        ("error", vec!["completions", "bash"], 2),
        ("error", vec!["man"], 2),
        // Usage errors clap reports.
        ("error", vec!["no-such-command"], 2),
        ("error", vec!["--log-level", "[not a directive", "instances", "list"], 2),
        // The agent: its flags checked before it starts; a Windows service needs Windows.
        ("error", vec!["agent", "--alive-from", "bogus"], 2),
        ("error", vec!["agent", "--alive-from", "containerd", "--interval", "0s"], 2),
        ("error", vec!["agent"], 2),
        #[cfg(not(windows))]
        ("error", vec!["agent", "service", "install", "--alive-from", "containerd"], 8),
        #[cfg(not(windows))]
        ("error", vec!["agent", "service", "uninstall"], 8),
    ];
    let mut succeeded = BTreeSet::new();
    // What each `inject --clear` dropped: the first fault was used up by the removal.
    let mut cleared = [0, 1].into_iter();
    for (schema, args, want) in &runs {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let (code, out, err) = env.run(&all);
        let doc = check(&schemas, schema, &all, code, &out, &err, *want);
        // `k8s policy` prints a Kubernetes `List`, applied as it is: Kubernetes' camelCase.
        if *schema != "k8s-policy" {
            assert_snake_case(&doc, &format!("{all:?}"));
        }
        // `credspec new` prints the spec it generates as is: it is the file asked for.
        assert!(
            args.starts_with(&["credspec", "new"]) || !out.contains("the-plugin-secret"),
            "{all:?}: a PluginInput in the output: {out}"
        );
        if *schema != "error" {
            succeeded.insert((*schema).to_owned());
        }
        // What each command did, as it says.
        match (*schema, args.as_slice()) {
            ("instances-remove", ["instances", "remove", "a", "nope"]) => {
                assert_eq!(doc[0]["container_id"], "a");
                assert_eq!(doc[0]["result"], "removed");
                assert_eq!(doc[1]["result"], "absent");
            }
            ("instances-remove", ["instances", "remove", "h"]) => {
                assert_eq!(doc[0]["result"], "failed", "{doc}");
                assert!(doc[0]["error"].as_str().unwrap().contains("0x80004005"));
            }
            ("emulator-uvm-create", [.., id]) => {
                assert_eq!(
                    doc,
                    serde_json::json!({"utility_vm": id, "action": "created"})
                );
            }
            ("emulator-inject", [.., "--clear"]) => {
                assert_eq!(doc["cleared_faults"], cleared.next().unwrap(), "{doc}");
            }
            ("emulator-reset", ["emulator", "reset", "--all"]) => assert_eq!(
                doc["cleared"],
                serde_json::json!(["ccg_instances", "utility_vms", "faults", "call_log"])
            ),
            ("probe", ["probe", "--credspec", _, "--isolation", ..]) => {
                assert_eq!(doc["isolation"], "hyperv");
            }
            ("credspec-validate", [_, _, m, o]) if (*m, *o) == (manifest, oci) => {
                assert_eq!(doc[0]["form"]["form"], "kubernetes_manifest", "{doc}");
                assert_eq!(doc[1]["form"]["form"], "oci_bundle", "{doc}");
            }
            ("instances-show", _) => {
                assert_eq!(doc["container_id"], "a");
                assert_eq!(doc["instance"]["Id"], "a", "HCS's document, unchanged");
            }
            _ => {}
        }
    }
    // The agent runs until it is stopped: one summary document when SIGTERM stops it.
    #[cfg(unix)]
    {
        let args = [
            "--output",
            "json",
            "agent",
            "--alive-from",
            "containerd:/nonexistent.sock",
            "--interval",
            "1h",
        ];
        let mut agent = env.spawn(&args);
        agent.wait_for_stderr("round failed");
        agent.terminate();
        let code = agent.finish();
        let doc = check(
            &schemas,
            "agent",
            &args,
            code,
            &agent.stdout(),
            &agent.stderr(),
            0,
        );
        assert_eq!(doc["failed_rounds"], 1, "{doc}");
        succeeded.insert("agent".to_owned());
    }
    // Every command's schema was met by a successful run (doctor's and the Windows service's
    // only on Windows).
    let all: BTreeSet<String> = schemas.keys().filter(|k| *k != "error").cloned().collect();
    let missed: Vec<_> = all
        .difference(&succeeded)
        .filter(|k| cfg!(windows) || (*k != "doctor" && !k.starts_with("agent-service")))
        .collect();
    assert!(missed.is_empty(), "commands never run: {missed:?}");

    // And every command refuses an unknown option with the error document.
    for name in &all {
        let mut args = vec!["--output", "json"];
        args.extend(name.split('-'));
        args.push("--no-such-option");
        let (code, out, err) = env.run(&args);
        check(&schemas, "error", &args, code, &out, &err, 2);
    }
}

#[test]
fn emulator_log_is_an_array_under_json_and_lines_under_jsonl() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "a", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let (code, out, _) = env.run(&["--output", "json", "emulator", "log"]);
    assert_eq!(code, 0);
    let calls = one_document(&out, "emulator log");
    let calls = calls.as_array().expect("an array");
    assert!(calls.len() >= 3, "{out}");
    assert_eq!(calls[0]["seq"], 1);

    let (code, out, _) = env.run(&["--output", "jsonl", "emulator", "log"]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&lines, calls, "the same calls, one a line");
    // The text output stays one call a line too.
    let (_, text, _) = env.run(&["emulator", "log"]);
    assert_eq!(text, out);

    // Any other document is one line under jsonl as under json; so is an error.
    let (code, out, _) = env.run(&["--output", "jsonl", "instances", "show", "a"]);
    assert_eq!(code, 0);
    assert_eq!(one_document(&out, "show")["container_id"], "a");
    let (code, out, _) = env.run(&["--output", "jsonl", "instances", "show", "nope"]);
    assert_eq!(code, 4);
    assert_eq!(one_document(&out, "show nope")["error"]["exit_code"], 4);
}

#[test]
fn an_error_document_has_the_message_and_its_causes() {
    let env = Env::new();
    // A state directory that is a file: the error has causes.
    std::fs::create_dir_all(env.state()).unwrap();
    std::fs::write(env.state().join("emulator"), b"not a directory").unwrap();
    let (code, out, err) = env.run(&["--output", "json", "emulator", "uvm", "list"]);
    assert_ne!(code, 0, "{err}");
    let doc = one_document(&out, "uvm list");
    let e = &doc["error"];
    assert_eq!(e["exit_code"], code);
    let chain: Vec<&str> = e["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // Standard error says the same, as lines.
    assert!(
        err.contains(&format!("error: {}", e["message"].as_str().unwrap())),
        "{err}"
    );
    for cause in &chain {
        assert!(
            err.contains(&format!("caused by: {cause}")),
            "{err} vs {chain:?}"
        );
    }
    assert!(!chain.is_empty(), "{doc}");
}

#[test]
fn usage_errors_print_the_error_document_only_when_json_was_asked() {
    let env = Env::new();
    for output in [&["--output", "json"][..], &["--output=json"]] {
        let mut args = output.to_vec();
        args.extend(["instances", "add", "--credspec", "x"]);
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 2, "{err}");
        let doc = one_document(&out, "usage");
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--id <ID>"),
            "{doc}"
        );
        assert_eq!(doc["error"]["exit_code"], 2);
        assert!(err.contains("Usage:"), "stderr keeps clap's text: {err}");
    }
    // The output option given after the command too.
    let (code, out, _) = env.run(&["instances", "show", "--output", "json"]);
    assert_eq!(code, 2);
    one_document(&out, "after the command");
    // Text: nothing on stdout.
    let (code, out, _) = env.run(&["instances", "add", "--credspec", "x"]);
    assert_eq!((code, out.as_str()), (2, ""));
    // `--output json` as an argument after `--` asks for nothing.
    let (code, out, _) = env.run(&["credspec", "validate", "--", "--output", "json"]);
    assert_eq!(code, 2);
    assert_eq!(
        out, "",
        "text output: validate prints nothing for unreadable sources"
    );
    // Help is help, whatever the output.
    let (code, out, _) = env.run(&["--output", "json", "instances", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage:"), "{out}");
}

#[test]
fn a_closed_stdout_keeps_the_exit_status_of_json_errors() {
    let env = Env::new();
    for (args, want) in [
        (&["--output", "json", "instances", "show", "nope"][..], 4),
        (&["--output", "json", "instances", "add"], 2),
        (&["--output", "jsonl", "emulator", "log"], 0),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(assert_cmd::cargo::cargo_bin("credguard"))
            .args(args)
            .env_remove("CREDGUARD_BACKEND")
            .env_remove("CREDGUARD_LOG")
            .env("CREDGUARD_STATE_DIR", env.state())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
