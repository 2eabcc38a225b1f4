//! `credguard emulator log|inject|reset|uvm`, and the emulator's state file, as a user runs
//! them in a temporary state directory.

mod common;

use common::{Env, p};
use predicates::prelude::*;
use serde_json::Value;

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
