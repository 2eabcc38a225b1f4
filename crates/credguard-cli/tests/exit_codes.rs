//! Every row of the README's exit-code table, as a user meets it: one command per case the
//! row names, and the table itself checked for every code.

mod common;

use std::time::Duration;

use common::{Env, p};

const README: &str = include_str!("../../../README.md");

/// The README's exit-code table: code and meaning.
fn table() -> Vec<(u8, String)> {
    let start = README
        .find("### Exit codes")
        .expect("README has an exit-code section");
    README[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            (cells[0].trim().parse().unwrap(), cells[1].trim().to_owned())
        })
        .collect()
}

fn meaning(code: u8) -> String {
    table()
        .into_iter()
        .find(|(c, _)| *c == code)
        .unwrap_or_else(|| panic!("README has no row for exit code {code}"))
        .1
}

fn add(env: &Env, id: &str) {
    let spec = env.spec();
    let (code, _, err) = env.run(&["instances", "add", "--id", id, "--credspec", p(&spec)]);
    assert_eq!(code, 0, "add {id}: {err}");
}

fn expect(env: &Env, args: &[&str], code: i32) -> String {
    let out = env
        .cmd()
        .args(args)
        // A deadline, not a timing assertion: a command that waited on a lock would hang.
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    err
}

#[test]
fn the_table_has_every_code_once() {
    let codes: Vec<u8> = table().iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, (0..=8).collect::<Vec<u8>>());
    // The top-level help says the same in short.
    let env = Env::new();
    let (_, help, _) = env.run(&["--help"]);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for (code, word) in [
        (0, "success"),
        (2, "usage"),
        (4, "not found"),
        (5, "already exists"),
        (
            5,
            "already exists (an instance, a utility VM, a file) or busy",
        ),
        (6, "denied"),
        (8, "backend unavailable"),
    ] {
        assert!(
            help.contains(&format!("{code} {word}")),
            "help lacks `{code} {word}`"
        );
    }
}

#[test]
fn success_and_a_failed_check() {
    let env = Env::new();
    expect(&env, &["version"], 0);
    let bad = env.file("bad.json", br#"{"CmsPlugins":["ActiveDirectory"]}"#);
    expect(&env, &["credspec", "validate", p(&bad)], 1);
    assert!(meaning(1).contains("`credspec validate` found errors"));
    // A code credguard's table does not know is still explained.
    expect(&env, &["explain", "0xA1234567"], 0);
    assert!(meaning(0).contains("`explain`: at least one code found, known or not"));
}

#[test]
fn usage_and_bad_input_are_2() {
    let env = Env::new();
    expect(&env, &["--log-level", "verbose", "version"], 2);
    expect(
        &env,
        &["instances", "add", "--id", "", "--credspec", "x"],
        2,
    );
    expect(&env, &["credspec", "validate", "/nonexistent/spec.json"], 2);
    expect(&env, &["explain", "port 443"], 2);
    assert!(meaning(2).contains("bad flag value"));
    assert!(meaning(2).contains("`explain` given a text with no status code or event id"));
}

#[test]
fn an_hcs_failure_is_3() {
    let env = Env::new();
    let (code, _, err) = env.run(&[
        "emulator",
        "inject",
        "--api",
        "HcsModifyServiceSettings",
        "--operation",
        "AddInstance",
        "--hresult",
        "0x8037011B",
    ]);
    assert_eq!(code, 0, "{err}");
    let spec = env.spec();
    expect(
        &env,
        &["instances", "add", "--id", "a", "--credspec", p(&spec)],
        3,
    );
    assert!(meaning(3).starts_with("HCS failed"));
}

#[test]
fn not_found_is_4_for_instances_and_utility_vms() {
    let env = Env::new();
    expect(&env, &["instances", "show", "nobody"], 4);
    for verb in ["show", "remove", "stop"] {
        let err = expect(&env, &["emulator", "uvm", verb, "no-such-vm"], 4);
        assert!(err.contains("no-such-vm"), "{verb}: {err}");
    }
    assert!(meaning(4).contains("utility VM"), "{}", meaning(4));
}

#[test]
fn an_existing_instance_or_utility_vm_or_file_is_5() {
    let env = Env::new();
    add(&env, "web-1");
    let spec = env.spec();
    expect(
        &env,
        &["instances", "add", "--id", "web-1", "--credspec", p(&spec)],
        5,
    );
    expect(&env, &["emulator", "uvm", "create", "uvm-1"], 0);
    let err = expect(&env, &["emulator", "uvm", "create", "uvm-1"], 5);
    assert!(
        err.contains("uvm-1") && err.contains("exists already"),
        "{err}"
    );
    let dir = env.dir.path().join("specs");
    let new = [
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
        "--save",
        "--credspec-dir",
        p(&dir),
    ];
    expect(&env, &new, 0);
    expect(&env, &new, 5);
    let row = meaning(5);
    assert!(row.contains("a utility VM of the id"), "{row}");
    assert!(row.contains("busy"), "{row}");
}

#[test]
fn a_busy_record_is_5() {
    let env = Env::new();
    add(&env, "busy");
    // This test process is the other process: it holds the record's lock with the record
    // in `creating`, as a create in progress does.
    let journal = credguard::journal::Journal::open(&env.state().join("journal/emulator")).unwrap();
    let mut record = journal.get("busy").unwrap().unwrap();
    record.fake_state(credguard::journal::RecordState::Creating);
    journal.write(&record).unwrap();
    let held = journal.lock("busy", false).unwrap();
    let spec = env.spec();
    for args in [
        &["instances", "remove", "busy"][..],
        &["instances", "add", "--id", "busy", "--credspec", p(&spec)],
    ] {
        let err = expect(&env, args, 5);
        assert!(err.contains("another process"), "{args:?}: {err}");
    }
    // `instances add` of an id another process is releasing is refused the same way.
    record.fake_state(credguard::journal::RecordState::Releasing);
    journal.write(&record).unwrap();
    let err = expect(
        &env,
        &["instances", "add", "--id", "busy", "--credspec", p(&spec)],
        5,
    );
    assert!(err.contains("another process"), "{err}");
    drop(held);
}

#[test]
fn denied_by_policy_is_6() {
    let env = Env::new();
    let spec = env.spec();
    expect(
        &env,
        &[
            "instances",
            "add",
            "--id",
            "a",
            "--credspec",
            p(&spec),
            "--gmsa-disabled",
        ],
        6,
    );
    assert!(meaning(6).contains("gMSA disabled"));
}

#[test]
fn a_local_state_failure_is_7() {
    let env = Env::new();
    let dir = env.state().join("emulator");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("state.json"), "{garbage").unwrap();
    expect(&env, &["instances", "list"], 7);
    assert!(meaning(7).contains("emulator state"));
}

#[test]
fn an_unreachable_live_set_source_is_8_and_removes_nothing() {
    let env = Env::new();
    add(&env, "orphan");
    let source = format!("containerd:{}", env.state().join("no.sock").display());
    let err = expect(&env, &["reconcile", "--alive-from", &source], 8);
    assert!(err.contains(&source), "{err}");
    assert!(err.contains("nothing is removed"), "{err}");
    assert_eq!(env.ids(), ["orphan"]);
    assert!(meaning(8).contains("--alive-from"));
}

#[cfg(not(windows))]
#[test]
fn an_unavailable_backend_is_8() {
    let env = Env::new();
    expect(&env, &["--backend", "hcs", "instances", "list"], 8);
    assert!(meaning(8).contains("--backend hcs"));
}
