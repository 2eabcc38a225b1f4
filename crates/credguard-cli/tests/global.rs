//! What every command shares (`main.rs`): `--help`, `--backend`, and `--show-secrets` (no
//! command shows a `PluginInput` without it), against the emulator in a temporary state
//! directory.

mod common;

use common::{Env, SECRET, p, secret_spec};
use predicates::prelude::*;

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
