//! `credguard instances add|list|show|remove`, as a user runs them, against the emulator in a
//! temporary state directory.

mod common;

use std::path::PathBuf;

use common::{Env, SECRET, oci_config, p, secret_spec};
use predicates::prelude::*;
use serde_json::Value;

#[test]
fn add_list_show_remove() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "web-1", "--credspec", p(&spec)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("web-1"))
        .stdout(predicate::str::contains("LRPC"));
    let (code, out, _) = env.run(&[
        "--output",
        "json",
        "instances",
        "add",
        "--id",
        "web-2",
        "--credspec",
        p(&spec),
        "--isolation",
        "hyperv",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["container_id"], "web-2");
    assert_eq!(v["instance"]["CredentialGuard"]["Transport"], "HvSocket");
    assert!(v["instance"]["HvSocketConfig"]["ServiceId"].is_string());
    assert_eq!(env.ids(), ["web-1", "web-2"]);

    env.cmd()
        .args(["instances", "show", "web-2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("HvSocket"));
    env.cmd()
        .args(["instances", "show", "nope"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("nope"));

    // A second add with the same id: exit 5, nothing changes.
    env.cmd()
        .args(["instances", "add", "--id", "web-1", "--credspec", p(&spec)])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(env.ids(), ["web-1", "web-2"]);

    let (code, out, _) = env.run(&["--output", "json", "instances", "remove", "web-1", "ghost"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["result"], "removed");
    assert_eq!(v[1]["result"], "absent");
    env.cmd()
        .args(["instances", "remove", "web-2", "web-2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("already absent"));
    assert!(env.ids().is_empty());
}

#[test]
fn stdin_credspec() {
    let env = Env::new();
    let spec = std::fs::read(env.spec()).unwrap();
    env.cmd()
        .args(["instances", "add", "--id", "from-stdin", "--credspec", "-"])
        .write_stdin(spec)
        .assert()
        .code(0);
    assert_eq!(env.ids(), ["from-stdin"]);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let env = Env::new();
    let spec = env.spec();
    let long = "x".repeat(257);
    for id in ["", long.as_str(), "bad\u{1}id", "new\nline"] {
        env.cmd()
            .args(["instances", "add", "--id", id, "--credspec", p(&spec)])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid container id"));
    }
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(70 * 1024));
    let cases: Vec<(PathBuf, &str)> = vec![
        (env.dir.path().join("missing.json"), "cannot read"),
        (env.file("empty.json", b""), "empty"),
        (env.file("text.json", b"hello"), "not valid JSON"),
        (env.file("array.json", b"[1,2]"), "not an object"),
        (env.file("big.json", big.as_bytes()), "64 KiB"),
    ];
    for (path, says) in &cases {
        env.cmd()
            .args(["instances", "add", "--id", "ok", "--credspec", p(path)])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*says))
            .stderr(predicate::str::contains(p(path)));
    }
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "ok",
            "--credspec",
            p(&spec),
            "--isolation",
            "sandbox",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sandbox"));
    // Nothing reached the emulator (its state was not even created).
    assert!(!env.state().join("emulator/state.json").exists());
    assert_eq!(env.call_count(), 0);
}

#[test]
fn dry_run_sends_nothing_and_prints_the_documents() {
    let env = Env::new();
    let spec = secret_spec(&env);
    let (code, out, err) = env.run(&[
        "--output",
        "json",
        "instances",
        "add",
        "--id",
        "dry",
        "--credspec",
        p(&spec),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dry_run"], true);
    let docs = v["calls"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[1]["api"], "HcsModifyServiceSettings");
    assert_eq!(
        docs[1]["document"]["Settings"]["OperationDetails"]["Transport"],
        "LRPC"
    );
    assert!(!out.contains(SECRET));
    assert!(out.contains("<redacted>"));
    assert_eq!(env.call_count(), 0);
    assert!(env.ids().is_empty());
}

#[test]
fn hcs_errors_are_printed_once_as_a_chain() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["emulator", "inject", "--api", "ModifyServiceSettings", "--operation", "AddInstance"])
        .args(["--hresult", "0x80370118", "--result", r#"{"Error":-2143878888,"ErrorMessage":"The operation timed out.","ErrorEvents":[{"Message":"ccg.exe did not answer"}]}"#])
        .assert()
        .code(0);
    let (code, _, err) = env.run(&["instances", "add", "--id", "c9", "--credspec", p(&spec)]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with("error: container `c9`: AddInstance failed"),
        "{err}"
    );
    assert!(err.contains("caused by: hcs::ModifyServiceSettings: The operation timed out. (0x80370118 HCS_E_OPERATION_TIMEOUT)"), "{err}");
    assert!(
        err.contains("[Event Detail: ccg.exe did not answer]"),
        "{err}"
    );
    assert_eq!(err.matches("The operation timed out.").count(), 1, "{err}");

    // Applied then failed: rolled back, reported, nothing left.
    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsModifyServiceSettings",
            "--operation",
            "AddInstance",
            "--apply-then-fail",
        ])
        .assert()
        .code(0);
    env.cmd()
        .args(["instances", "add", "--id", "c9", "--credspec", p(&spec)])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("removed again"));
    assert!(env.ids().is_empty());
}

#[test]
fn state_files_are_owner_only() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "perm", "--credspec", p(&spec)])
        .assert()
        .code(0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = env.state().join("emulator");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
        }
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
}

fn oci_bundle(env: &Env, name: &str, disable: Option<&str>, as_string: bool) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), oci_config(disable, as_string)).unwrap();
    dir
}

#[test]
fn oci_bundles_and_the_gmsa_disable_annotation() {
    let env = Env::new();
    let ok = oci_bundle(&env, "ok", None, true);
    let obj = oci_bundle(&env, "obj", Some("false"), false);
    let off = oci_bundle(&env, "off", Some("true"), true);
    env.cmd()
        .args(["instances", "add", "--id", "b1", "--oci-bundle", p(&ok)])
        .assert()
        .code(0);
    env.cmd()
        .args(["instances", "add", "--id", "b2", "--oci-bundle", p(&obj)])
        .assert()
        .code(0);
    let before = env.call_count();
    for args in [
        vec!["instances", "add", "--id", "b3", "--oci-bundle", p(&off)],
        vec![
            "instances",
            "add",
            "--id",
            "b3",
            "--credspec",
            p(&off.join("config.json")),
        ],
    ] {
        env.cmd()
            .args(&args)
            .assert()
            .code(6)
            .stderr(predicate::str::contains("operation denied"))
            .stderr(predicate::str::contains(
                "io.microsoft.container.wcow.gmsa.disable",
            ));
    }
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "b4",
            "--credspec",
            p(&env.spec()),
            "--gmsa-disabled",
        ])
        .assert()
        .code(6);
    assert_eq!(env.call_count(), before, "a denied spec sends nothing");
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "b5",
            "--oci-bundle",
            p(&env.dir.path().join("missing")),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("config.json"));
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "b6",
            "--oci-bundle",
            p(&ok),
            "--credspec",
            p(&env.spec()),
        ])
        .assert()
        .code(2);
    assert_eq!(env.ids(), ["b1", "b2"]);
}
