//! The CLI as a user runs it, against the emulator in a temporary state directory.

mod common;

use std::path::PathBuf;

use common::{Env, p};
use predicates::prelude::*;
use serde_json::Value;

const SECRET: &str = "Sup3rS3cretPassw0rd";

fn secret_spec(env: &Env) -> PathBuf {
    let spec = serde_json::json!({
        "CmsPlugins": ["ActiveDirectory"],
        "DomainJoinConfig": {
            "Sid": "S-1-5-21-702590844-1001920913-2680819671",
            "MachineAccountName": "webapp01",
            "Guid": "56d9b66c-d746-4f87-bd26-26760cfdca2e",
            "DnsTreeName": "contoso.com",
            "DnsName": "contoso.com",
            "NetBiosName": "CONTOSO"
        },
        "ActiveDirectoryConfig": {
            "GroupManagedServiceAccounts": [
                {"Name": "webapp01", "Scope": "contoso.com"},
                {"Name": "webapp01", "Scope": "CONTOSO"}
            ],
            "HostAccountConfig": {
                "PortableCcgVersion": "1",
                "PluginGUID": "{CFCA0441-511D-4B2A-862E-20348A78760B}",
                "PluginInput": format!("contoso.com:gmsaccg:{SECRET}")
            }
        }
    });
    env.file("secret.json", spec.to_string().as_bytes())
}

#[test]
fn probe_passes_and_leaves_nothing_behind() {
    let env = Env::new();
    let spec = env.spec();
    for iso in ["process", "hyperv"] {
        env.cmd()
            .args(["probe", "--credspec", p(&spec), "--isolation", iso])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("add instance"))
            .stdout(predicate::str::contains("verify listing"))
            .stdout(predicate::str::contains("remove instance"))
            .stdout(predicate::str::contains("verify removal"))
            .stdout(predicate::str::contains("probe passed"))
            .stdout(predicate::str::contains(" ms"));
    }
    assert!(env.ids().is_empty());
}

#[test]
fn probe_fails_cleanly_and_never_leaves_its_instance() {
    let env = Env::new();
    let spec = env.spec();
    // The listing check sees an instance without a cookie.
    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsGetServiceProperties",
            "--skip",
            "2",
        ])
        .args(["--response", r#"{"Properties":[{"Instances":[]}]}"#])
        .assert()
        .code(0);
    let (code, out, _) = env.run(&["--output", "json", "probe", "--credspec", p(&spec)]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["steps"][1]["ok"], false);
    assert_eq!(v["steps"][2]["step"], "remove instance");
    assert!(env.ids().is_empty(), "the probe left its instance behind");

    // AddInstance refused: the probe fails at its first step.
    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsModifyServiceSettings",
            "--operation",
            "AddInstance",
            "--hresult",
            "0x8037011B",
        ])
        .assert()
        .code(0);
    env.cmd()
        .args(["probe", "--credspec", p(&spec)])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL"))
        .stdout(predicate::str::contains("0x8037011B"));
    assert!(env.ids().is_empty());
}

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
fn hcs_backend_off_windows_is_a_clear_error() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args([
            "--backend",
            "hcs",
            "instances",
            "add",
            "--id",
            "a",
            "--credspec",
            p(&spec),
        ])
        .assert()
        .code(8)
        .stderr(predicate::str::contains("needs Windows"));
    env.cmd()
        .env("CREDGUARD_BACKEND", "hcs")
        .args(["instances", "list"])
        .assert()
        .code(8);
}

#[test]
fn corrupt_emulator_state_is_named_and_kept() {
    let env = Env::new();
    let dir = env.state().join("emulator");
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    std::fs::write(&state, "{garbage").unwrap();
    env.cmd()
        .args(["instances", "list"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains("state.json"))
        .stderr(predicate::str::contains("corrupt"));
    std::fs::write(&state, r#"{"some":"other tool"}"#).unwrap();
    env.cmd()
        .args(["instances", "list"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains(
            "not a credguard emulator state file",
        ));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        r#"{"some":"other tool"}"#
    );
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
fn emulator_log_inject_and_reset() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "l1", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let (_, out, _) = env.run(&["emulator", "log"]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["api"], "HcsGetServiceProperties");
    assert_eq!(lines[1]["api"], "HcsModifyServiceSettings");
    assert_eq!(lines[1]["hresult"], "0x00000000");
    assert_eq!(lines[1]["target"], Value::Null);
    assert_eq!(lines[1]["document"]["Settings"]["Operation"], "AddInstance");

    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsGetServiceProperties",
            "--operation",
            "AddInstance",
            "--hresult",
            "E_FAIL",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--operation"));
    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsBogus",
            "--hresult",
            "E_FAIL",
        ])
        .assert()
        .code(2);
    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsGetServiceProperties",
            "--hresult",
            "0x00000001",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a failure"));
    env.cmd()
        .args(["emulator", "inject", "--api", "HcsGetServiceProperties"])
        .assert()
        .code(2);
    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsGetServiceProperties",
            "--hresult",
            "E_FAIL",
            "--times",
            "3",
        ])
        .assert()
        .code(0);
    env.cmd().args(["instances", "list"]).assert().code(3);
    env.cmd()
        .args(["emulator", "inject", "--clear"])
        .assert()
        .code(0);
    env.cmd().args(["instances", "list"]).assert().code(0);

    env.cmd().args(["emulator", "reset"]).assert().code(0);
    assert!(env.ids().is_empty());
    env.cmd()
        .args(["emulator", "log", "--clear"])
        .assert()
        .code(0);
    assert_eq!(env.call_count(), 0);
}

#[test]
fn emulator_uvms() {
    let env = Env::new();
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm-1"])
        .assert()
        .code(0);
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm-1"])
        .assert()
        .code(5);
    let (_, out, _) = env.run(&["--output", "json", "emulator", "uvm", "show", "uvm-1"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["service_table"], serde_json::json!({}));
    env.cmd()
        .args(["emulator", "uvm", "show", "uvm-2"])
        .assert()
        .code(4);
    env.cmd()
        .args(["emulator", "uvm", "list"])
        .assert()
        .code(0)
        .stdout("uvm-1\n");
    env.cmd()
        .args(["emulator", "uvm", "remove", "uvm-1"])
        .assert()
        .code(0);
    env.cmd()
        .args(["--backend", "hcs", "emulator", "log"])
        .assert()
        .code(2);
}

#[test]
fn plugin_input_never_appears_without_show_secrets() {
    let env = Env::new();
    let spec = secret_spec(&env);
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let mut full = vec!["--log-level", "trace"];
        full.extend_from_slice(args);
        let (code, out, err) = env.run(&full);
        outputs.push(format!("$ {args:?} -> {code}\n{out}\n{err}"));
    };
    run(&["instances", "add", "--id", "s1", "--credspec", p(&spec)]);
    run(&[
        "--output",
        "json",
        "instances",
        "add",
        "--id",
        "s2",
        "--credspec",
        p(&spec),
        "--isolation",
        "hyperv",
    ]);
    run(&["instances", "add", "--id", "s1", "--credspec", p(&spec)]);
    run(&["instances", "list"]);
    run(&["--output", "json", "instances", "list"]);
    run(&["--output", "json", "instances", "show", "s1"]);
    run(&["instances", "show", "s2"]);
    run(&[
        "instances",
        "add",
        "--id",
        "s3",
        "--credspec",
        p(&spec),
        "--dry-run",
    ]);
    run(&["probe", "--credspec", p(&spec), "--isolation", "hyperv"]);
    run(&["--log-format", "json", "probe", "--credspec", p(&spec)]);
    run(&[
        "emulator",
        "inject",
        "--api",
        "HcsGetServiceProperties",
        "--skip",
        "1",
        "--response",
        "nope",
    ]);
    run(&["instances", "add", "--id", "s4", "--credspec", p(&spec)]);
    run(&["instances", "remove", "s1", "s2", "s4"]);
    run(&["emulator", "log"]);
    let all = outputs.join("\n");
    assert!(!all.contains(SECRET), "secret leaked:\n{all}");
    assert!(all.contains("<redacted>"), "{all}");

    // Asked for explicitly, it is shown.
    env.cmd()
        .args(["instances", "add", "--id", "s5", "--credspec", p(&spec)])
        .assert()
        .code(0);
    env.cmd()
        .args([
            "--show-secrets",
            "--output",
            "json",
            "instances",
            "show",
            "s5",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(SECRET));
    env.cmd()
        .args(["--show-secrets", "emulator", "log"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(SECRET));
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

#[test]
fn help_explains_every_command() {
    let env = Env::new();
    for args in [
        vec!["--help"],
        vec!["instances", "add", "--help"],
        vec!["probe", "--help"],
        vec!["emulator", "inject", "--help"],
    ] {
        env.cmd()
            .args(&args)
            .assert()
            .code(0)
            .stdout(predicate::str::contains("Usage"));
    }
}

fn oci_bundle(env: &Env, name: &str, disable: Option<&str>, as_string: bool) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let spec: Value = serde_json::from_slice(include_bytes!(
        "../../../examples/credspecs/contoso_webapp01.json"
    ))
    .unwrap();
    let mut config = serde_json::json!({
        "ociVersion": "1.1.0",
        "windows": {"credentialSpec": if as_string { Value::String(spec.to_string()) } else { spec }},
    });
    if let Some(v) = disable {
        config["annotations"] = serde_json::json!({"io.microsoft.container.wcow.gmsa.disable": v});
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
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

#[test]
fn hyperv_with_a_utility_vm_list_orphans_and_reconcile() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm-1"])
        .assert()
        .code(0);
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "h1",
            "--credspec",
            p(&spec),
            "--isolation",
            "hyperv",
            "--uvm",
            "uvm-1",
        ])
        .assert()
        .code(0);
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "h2",
            "--credspec",
            p(&spec),
            "--uvm",
            "uvm-1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--uvm"));
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "h3",
            "--credspec",
            p(&spec),
            "--isolation",
            "hyperv",
            "--uvm",
            "no-such-vm",
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("0xC037010E"));
    env.cmd()
        .args(["instances", "add", "--id", "p1", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let (_, out, _) = env.run(&["--output", "json", "emulator", "uvm", "show", "uvm-1"]);
    let vm: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(vm["service_table"].as_object().unwrap().len(), 1);

    let (code, out, _) = env.run(&["--output", "json", "instances", "list"]);
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["owned"], true);
        assert_eq!(row["state"], "active");
        assert_eq!(row["orphan"], false);
    }
    let (_, out, _) = env.run(&[
        "--output",
        "json",
        "instances",
        "list",
        "--orphans",
        "--alive",
        "p1",
    ]);
    let orphans: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(orphans.as_array().unwrap().len(), 1);
    assert_eq!(orphans[0]["container_id"], "h1");

    env.cmd()
        .args(["reconcile", "--dry-run", "--alive", "p1"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("remove_not_alive"))
        .stdout(predicate::str::contains("nothing was changed"));
    assert_eq!(env.ids(), ["h1", "p1"]);
    let alive = env.file("alive.txt", b"# running containers\np1\n");
    env.cmd()
        .args(["reconcile", "--alive-file", p(&alive)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("1 change, 0 failures"));
    assert_eq!(env.ids(), ["p1"]);
    let (_, out, _) = env.run(&["--output", "json", "emulator", "uvm", "show", "uvm-1"]);
    let vm: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        vm["service_table"],
        serde_json::json!({}),
        "the HvSocket entry went with the instance"
    );
    env.cmd()
        .args(["reconcile", "--alive", "p1"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 changes"));
}
