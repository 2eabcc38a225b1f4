//! `credguard reconcile` (and `instances list --orphans`), as a user runs them, against the
//! emulator in a temporary state directory.

mod common;

use common::{Env, p};
use predicates::prelude::*;
use serde_json::Value;

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
