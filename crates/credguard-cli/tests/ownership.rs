//! Issue 9, "never remove what is not ours; always remove what is", through the command
//! line: alive sets that would remove everything by accident, empty answers, HvSocket entries
//! that cannot be removed, busy records, and concurrent `instances remove` processes.

mod common;

use std::time::Duration;

use common::{Env, p};
use credguard::wire::{ModificationRequest, Transport, to_wire};
use serde_json::Value;

// ---- point 5: an empty or invalid alive set is a usage error ----

#[test]
fn empty_or_invalid_alive_sets_are_refused_and_remove_nothing() {
    let env = Env::new();
    env.add("a1", &[]);
    env.add("a2", &[]);
    let empty = env.file("empty.txt", b"");
    let comments = env.file("comments.txt", b"# nothing runs?\n\n   \n# really\n");
    let bad_line = env.file("bad.txt", b"a1\n# ok\n  \nbad\x07id\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["reconcile", "--alive", ""], "--alive"),
        (vec!["reconcile", "--alive", "a1", " padded"], "padded"),
        (vec!["reconcile", "--alive"], "--alive"),
        (vec!["reconcile", "--alive-file", p(&empty)], "empty.txt"),
        (
            vec!["reconcile", "--alive-file", p(&comments)],
            "comments.txt",
        ),
        (vec!["reconcile", "--alive-file", p(&bad_line)], "line 4"),
        (
            vec!["reconcile", "--alive-none", "--alive", "a1"],
            "--alive-none",
        ),
        (
            vec!["reconcile", "--alive-none", "--alive-file", p(&empty)],
            "--alive-none",
        ),
        (
            vec!["instances", "list", "--orphans", "--alive", ""],
            "--alive",
        ),
        (
            vec!["instances", "list", "--orphans", "--alive-file", p(&empty)],
            "empty.txt",
        ),
        (
            vec!["reconcile", "--dry-run", "--include-foreign", "--alive", ""],
            "--alive",
        ),
    ];
    for (args, names) in cases {
        let (code, _, err) = env.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(names), "{args:?} does not name {names}: {err}");
        assert_eq!(env.ids(), ["a1", "a2"], "{args:?} removed something");
    }
    // From standard input too.
    env.cmd()
        .args(["reconcile", "--alive-file", "-"])
        .write_stdin("# none\n")
        .assert()
        .code(2);
    assert_eq!(env.ids(), ["a1", "a2"]);

    // Saying it explicitly works: --alive-none removes every active instance.
    let (code, out, _) = env.run(&[
        "--output",
        "json",
        "instances",
        "list",
        "--orphans",
        "--alive-none",
    ]);
    assert_eq!(code, 0);
    let orphans: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(orphans.as_array().unwrap().len(), 2);
    let (code, out, err) = env.run(&["reconcile", "--alive-none"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 changes"), "{out}");
    assert!(env.ids().is_empty());
    let help = env.run(&["reconcile", "--help"]).1;
    assert!(help.contains("--alive-none"), "{help}");
}

// ---- point 6: an HCS without instances may answer with no property at all ----

#[test]
fn empty_answers_read_as_no_instances() {
    for answer in ["{}", r#"{"Properties":[]}"#, r#"{"Properties":null}"#] {
        let env = Env::new();
        env.inject(&["--api", "HcsGetServiceProperties", "--response", answer]);
        let (code, out, err) = env.run(&["instances", "list"]);
        assert_eq!(code, 0, "{answer}: {err}");
        assert!(out.contains("no CCG instances"), "{answer}: {out}");
        // `instances list` is read-only: it leaves the fault queued (nothing it does changes
        // the state directory), so the next check gets a fault of its own.
        env.inject(&["--clear"]);

        // The check before AddInstance.
        env.inject(&["--api", "HcsGetServiceProperties", "--response", answer]);
        env.add("e1", &[]);

        // The confirmation after a RemoveInstance that reports failure.
        env.inject(&[
            "--api",
            "HcsModifyServiceSettings",
            "--operation",
            "RemoveInstance",
            "--apply-then-fail",
        ]);
        env.inject(&[
            "--api",
            "HcsGetServiceProperties",
            "--skip",
            "1",
            "--response",
            answer,
        ]);
        let (code, out, err) = env.run(&["--output", "json", "instances", "remove", "e1"]);
        assert_eq!(code, 0, "{answer}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["result"], "removed", "{answer}: {out}");
        assert!(env.ids().is_empty());

        // The read-back right after AddInstance stays strict: rolled back, exit 3.
        env.inject(&[
            "--api",
            "HcsGetServiceProperties",
            "--skip",
            "1",
            "--response",
            answer,
        ]);
        let spec = env.spec();
        let (code, _, err) = env.run(&["instances", "add", "--id", "e2", "--credspec", p(&spec)]);
        assert_eq!(code, 3, "{answer}: {err}");
        assert!(err.contains("removed again"), "{answer}: {err}");
        assert!(env.ids().is_empty());
    }
}

// ---- point 3: an HvSocket entry that cannot be removed never keeps the instance ----

#[test]
fn remove_removes_the_instance_when_the_entry_cannot_be_removed() {
    let env = Env::new();
    env.emulator().create_uvm("uvm-1").unwrap();
    env.add("h1", &["--isolation", "hyperv", "--uvm", "uvm-1"]);
    let sid = env.emulator().instances().unwrap()[0]
        .hv_socket_config
        .clone()
        .unwrap()
        .service_id;
    env.inject(&[
        "--api",
        "HcsModifyComputeSystem",
        "--operation",
        "Remove",
        "--hresult",
        "0x8037011B",
    ]);
    let (code, out, err) = env.run(&["--output", "json", "instances", "remove", "h1"]);
    assert_eq!(code, 3, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["result"], "removed", "{out}");
    assert_eq!(v[0]["entry_left"]["utility_vm"], "uvm-1", "{out}");
    assert_eq!(v[0]["entry_left"]["service_id"], sid.as_str(), "{out}");
    for text in [v[0]["warning"].as_str().unwrap(), err.as_str()] {
        assert!(text.contains("uvm-1") && text.contains(&sid), "{text}");
    }
    assert!(env.ids().is_empty(), "the instance is gone");
    assert_eq!(env.emulator().hvsocket_entries().unwrap().len(), 1);
    // Removing the id again while the VM still refuses: `absent`, naming the entry left
    // (exit 3), and the journal still keeps it.
    env.inject(&[
        "--api",
        "HcsModifyComputeSystem",
        "--operation",
        "Remove",
        "--hresult",
        "0x8037011B",
    ]);
    let (code, out, err) = env.run(&["--output", "json", "instances", "remove", "h1"]);
    assert_eq!(code, 3, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["result"], "absent", "{out}");
    assert_eq!(v[0]["entry_left"]["service_id"], sid.as_str(), "{out}");
    assert!(err.contains("uvm-1") && err.contains(&sid), "{err}");
    assert_eq!(env.emulator().hvsocket_entries().unwrap().len(), 1);
    // The journal keeps the entry; reconcile removes it.
    let (code, out, _) = env.run(&["reconcile", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("drop_stale_record") && out.contains(&sid),
        "{out}"
    );
    let (code, _, err) = env.run(&["reconcile"]);
    assert_eq!(code, 0, "{err}");
    assert!(env.emulator().hvsocket_entries().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(env.journal())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count(),
        0
    );

    // A stopped utility VM does not block the removal at all.
    env.add("h2", &["--isolation", "hyperv", "--uvm", "uvm-1"]);
    let (code, _, err) = env.run(&["emulator", "uvm", "stop", "uvm-1"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = env.run(&["instances", "remove", "h2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed the CCG instance of `h2`"), "{out}");
    assert!(env.ids().is_empty());
}

// ---- point 4: `instances remove` takes the record's lock ----

#[test]
fn remove_refuses_an_instance_a_live_process_is_creating() {
    let env = Env::new();
    env.add("busy", &[]);
    let journal = credguard::journal::Journal::open(&env.journal()).unwrap();
    let mut rec = journal.get("busy").unwrap().unwrap();
    rec.fake_state(credguard::journal::RecordState::Creating);
    journal.write(&rec).unwrap();
    let _held = journal.lock("busy", false).unwrap();
    // A deadline, not a timing assertion: the command must refuse, not wait for the lock.
    let out = env
        .cmd()
        .args(["instances", "remove", "busy"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process"));
    assert_eq!(env.ids(), ["busy"]);
}

// ---- point 7: concurrent removes of one id: one `removed`, the others `absent` ----

#[test]
fn concurrent_remove_processes_report_one_removed() {
    const PROCESSES: usize = 6;
    let env = Env::new();
    for round in 0..4 {
        let id = format!("shared-{round}");
        env.add(&id, &[]);
        let json = round % 2 == 0;
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                let mut args = vec![];
                if json {
                    args.extend(["--output", "json"]);
                }
                args.extend(["instances", "remove", id.as_str()]);
                env.spawn(&args)
            })
            .collect();
        let mut removed = 0;
        let mut absent = 0;
        for mut child in children {
            let code = child.finish();
            let stdout = child.stdout();
            assert_eq!(code, 0, "{stdout}{}", child.stderr());
            let result = if json {
                let v: Value = serde_json::from_str(&stdout).unwrap();
                v[0]["result"].as_str().unwrap().to_owned()
            } else if stdout.contains("removed the CCG instance") {
                "removed".to_owned()
            } else if stdout.contains("already absent") {
                "absent".to_owned()
            } else {
                panic!("{stdout}")
            };
            match result.as_str() {
                "removed" => removed += 1,
                "absent" => absent += 1,
                other => panic!("{other}"),
            }
        }
        assert_eq!((removed, absent), (1, PROCESSES - 1), "round {round}");
        assert!(env.ids().is_empty());
    }
}

// ---- a record that keeps a pending HvSocket entry is not lost by a new create ----

#[test]
fn create_does_not_overwrite_a_pending_hvsocket_entry() {
    let env = Env::new();
    env.emulator().create_uvm("uvm-1").unwrap();
    env.add("p1", &["--isolation", "hyperv", "--uvm", "uvm-1"]);
    let sid = env.emulator().instances().unwrap()[0]
        .hv_socket_config
        .clone()
        .unwrap()
        .service_id;
    let refuse = [
        "--api",
        "HcsModifyComputeSystem",
        "--operation",
        "Remove",
        "--hresult",
        "0x8037011B",
        "--times",
        "2",
    ];
    env.inject(&refuse);
    let (code, _, err) = env.run(&["instances", "remove", "p1"]);
    assert_eq!(code, 3, "{err}");
    assert!(env.ids().is_empty());
    // The VM still refuses: the new create is refused (exit 5) naming the entry, and the
    // record keeps it.
    let spec = env.spec();
    let (code, out, err) = env.run(&[
        "instances",
        "add",
        "--id",
        "p1",
        "--credspec",
        p(&spec),
        "--isolation",
        "hyperv",
        "--uvm",
        "uvm-1",
    ]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(err.contains("uvm-1") && err.contains(&sid), "{err}");
    assert!(env.ids().is_empty(), "nothing was created");
    let (code, out, _) = env.run(&["--output", "json", "reconcile", "--dry-run"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plan"][0]["action"], "drop_stale_record", "{out}");
    assert_eq!(v["plan"][0]["service_id"], sid.as_str(), "{out}");
    let (code, out, _) = env.run(&["--output", "json", "instances", "list"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["service_id"], sid.as_str(), "{out}");
    assert_eq!(v[0]["utility_vm"], "uvm-1", "{out}");
    // A reconcile the VM still refuses reports the entry it leaves, in JSON.
    env.inject(&refuse[..6]);
    let (code, out, _) = env.run(&["--output", "json", "reconcile"]);
    assert_eq!(code, 3, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["results"][0]["entry_left"]["service_id"],
        sid.as_str(),
        "{out}"
    );
    assert_eq!(
        v["results"][0]["entry_left"]["utility_vm"], "uvm-1",
        "{out}"
    );
    assert_eq!(env.emulator().hvsocket_entries().unwrap().len(), 1);
    // Once the VM allows it, the create removes the old entry first and goes ahead.
    env.add("p1", &["--isolation", "hyperv", "--uvm", "uvm-1"]);
    let entries = env.emulator().hvsocket_entries().unwrap();
    assert_eq!(
        entries.len(),
        1,
        "only the new instance's entry: {entries:?}"
    );
    let (code, _, err) = env.run(&["instances", "remove", "p1"]);
    assert_eq!(code, 0, "{err}");
    assert!(env.emulator().hvsocket_entries().unwrap().is_empty());
    assert!(env.ids().is_empty());
}

// ---- point 2, the crash window: killed after HCS refused AddInstance, before the mark ----

/// Starts `instances add --id ID`, lets `foreign` create the instance while the command is
/// inside AddInstance, kills the command there (as a crash between HCS's "already exists"
/// refusal and the `add_refused` mark would leave things), then runs `reconcile`.
fn crash_inside_add_while_another_creates(env: &Env, id: &str, foreign: Transport) {
    use credguard::HcsService;
    use credguard_emulator::{Api, Fault, FaultAction};
    let emu = env.emulator();
    emu.inject(
        Fault::new(Api::ModifyServiceSettings, FaultAction::None)
            .on("AddInstance")
            .delay_ms(60_000),
    )
    .unwrap();
    let spec = env.spec();
    let mut child = env.spawn(&["instances", "add", "--id", id, "--credspec", p(&spec)]);
    child.wait_until("AddInstance", || emu.faults().unwrap().is_empty());
    // The same spec the killed command sent, but another transport: not its instance.
    let text = std::fs::read_to_string(&spec).unwrap();
    let doc = to_wire(&ModificationRequest::add_instance(id, &text, foreign)).unwrap();
    emu.modify_service_settings(&doc).unwrap();
    child.kill();
    emu.clear_faults().unwrap();
}

#[test]
fn reconcile_after_a_crash_inside_a_refused_add_leaves_the_other_creators_instance() {
    let env = Env::new();
    crash_inside_add_while_another_creates(&env, "raced", Transport::HvSocket);
    let (code, out, _) = env.run(&["--output", "json", "reconcile", "--dry-run"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plan"][0]["state"], "creating", "{out}");
    assert_eq!(v["plan"][0]["action"], "drop_stale_record", "{out}");
    assert_eq!(v["plan"][0]["owned"], false, "{out}");
    let (code, out, err) = env.run(&["reconcile", "--alive-none"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(env.ids(), ["raced"], "the other creator's instance stays");
    let (code, out, _) = env.run(&["--output", "json", "instances", "list"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["owned"], false, "{out}");
}
