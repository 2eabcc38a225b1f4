//! `instances add --dry-run` prints the library's plan: the documents it shows are what
//! `instances add` then sends (the emulator's call log), and nothing is sent by the dry run.
//! Errors the library reports without naming a credguard command get the command as a
//! `hint:` line from the CLI.

mod common;

use common::{Env, p};
use serde_json::Value;

/// (api, target, document as JSON) of every call the emulator logged.
fn sent(env: &Env) -> Vec<(String, Option<String>, Value)> {
    env.emulator()
        .calls()
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.api.name().to_owned(),
                c.target,
                serde_json::from_str(&c.document).unwrap(),
            )
        })
        .collect()
}

fn planned(out: &str) -> Vec<(String, Option<String>, Value)> {
    let v: Value = serde_json::from_str(out).unwrap();
    assert_eq!(v["dry_run"], true, "{v}");
    v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["api"].as_str().unwrap().to_owned(),
                c["target"].as_str().map(str::to_owned),
                c["document"].clone(),
            )
        })
        .collect()
}

#[test]
fn the_dry_run_shows_what_add_then_sends() {
    let env = Env::new();
    let spec = env.spec();
    let add = |dry: bool| {
        let mut args = vec![
            "--show-secrets",
            "--output",
            "json",
            "instances",
            "add",
            "--id",
            "web-1",
            "--credspec",
            p(&spec),
        ];
        if dry {
            args.push("--dry-run");
        }
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 0, "{err}");
        out
    };
    let plan = planned(&add(true));
    assert!(
        env.emulator().calls().unwrap().is_empty(),
        "a dry run sends nothing"
    );
    add(false);
    assert_eq!(plan, sent(&env));
}

#[test]
fn the_hyperv_dry_run_shows_the_hot_add_with_placeholders() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm-1"])
        .assert()
        .code(0);
    let args = |dry: bool| {
        let mut a = vec![
            "--show-secrets",
            "--output",
            "json",
            "instances",
            "add",
            "--id",
            "hv-1",
            "--credspec",
            p(&spec),
            "--isolation",
            "hyperv",
            "--uvm",
            "uvm-1",
        ];
        if dry {
            a.push("--dry-run");
        }
        a
    };
    let (code, out, err) = env.run(&args(true));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let plan = planned(&out);
    let hot_add = &v["calls"][3];
    assert_eq!(hot_add["api"], "HcsModifyComputeSystem");
    assert_eq!(hot_add["target"], "uvm-1");
    assert_eq!(
        hot_add["document"]["ResourcePath"],
        "VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/<ServiceId>"
    );
    assert_eq!(
        hot_add["from_answer"],
        serde_json::json!(["HvSocketConfig.ServiceId", "HvSocketConfig.ServiceConfig"])
    );
    let (code, _, err) = env.run(&args(false));
    assert_eq!(code, 0, "{err}");
    let sent = sent(&env);
    assert_eq!(sent.len(), 4);
    assert_eq!(plan[..3], sent[..3]);
    assert_eq!(sent[3].0, plan[3].0);
    assert_eq!(sent[3].1, plan[3].1);

    // The text form names each call, the utility VM and the placeholders.
    let (code, out, err) = env.run(&[
        "instances",
        "add",
        "--id",
        "hv-2",
        "--credspec",
        p(&spec),
        "--isolation",
        "hyperv",
        "--uvm",
        "uvm-1",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("dry run: nothing is sent; these documents would be, in order:"),
        "{out}"
    );
    assert!(
        out.contains("HcsModifyComputeSystem on `uvm-1` (hot-add"),
        "{out}"
    );
    assert!(
        out.contains("placeholders for what HCS's answer holds"),
        "{out}"
    );
    assert!(
        out.contains("<redacted>") || !out.contains("PluginInput"),
        "{out}"
    );
}

#[test]
fn a_dry_run_opens_no_backend_and_no_state_directory() {
    let env = Env::new();
    let spec = env.spec();
    // Even the real HCS, which is not here: the plan needs none.
    let (code, out, err) = env.run(&[
        "--backend",
        "hcs",
        "instances",
        "add",
        "--id",
        "nowhere",
        "--credspec",
        p(&spec),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("HcsModifyServiceSettings (AddInstance)"),
        "{out}"
    );
    assert!(!env.state().exists(), "the state directory stays missing");
}

#[test]
fn a_dry_run_refuses_what_add_refuses() {
    let env = Env::new();
    let spec = env.spec();
    for (extra, code) in [
        (&["--gmsa-disabled"][..], 6),
        (&["--id", "bad\u{202e}id"][..], 2),
    ] {
        let mut args = vec!["instances", "add", "--credspec", p(&spec), "--dry-run"];
        if !extra.contains(&"--id") {
            args.extend(["--id", "ok"]);
        }
        args.extend(extra);
        let (got, _, err) = env.run(&args);
        assert_eq!(got, code, "{args:?}: {err}");
        args.retain(|a| *a != "--dry-run");
        let (got, _, err_add) = env.run(&args);
        assert_eq!(got, code, "{args:?}: {err_add}");
        assert_eq!(err, err_add, "the dry run says what add says");
    }
    assert!(env.emulator().calls().unwrap().is_empty());
}

#[test]
fn errors_end_with_the_credguard_command_that_helps() {
    let env = Env::new();
    let spec = env.spec();
    let add = ["instances", "add", "--id", "twice", "--credspec", p(&spec)];
    assert_eq!(env.run(&add).0, 0);
    let (code, _, err) = env.run(&add);
    assert_eq!(code, 5, "{err}");
    // The library's message says what to do in words; the CLI adds the command.
    let (message, hint) = err.split_once("\nhint: ").expect("a hint line");
    assert!(!message.contains("credguard "), "{err}");
    assert!(message.contains("remove that instance first"), "{err}");
    assert_eq!(
        hint.trim_end(),
        "`credguard instances remove twice` removes it (or use another id)"
    );

    // An error without a remedy has no hint.
    let (code, _, err) = env.run(&["instances", "show", "nothing"]);
    assert_eq!(code, 4, "{err}");
    assert!(!err.contains("hint:"), "{err}");
}
