//! `credguard probe`, as a user runs it, against the emulator in a temporary state directory.

mod common;

use common::{Env, p};
use predicates::prelude::*;
use serde_json::Value;

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
