//! What the CLI says: counts singular or plural as they ask, and `reconcile` naming a
//! failed rollback or release for what it is instead of calling it a crash.

mod common;

use common::{EXAMPLE_SPEC, Env, p};

fn ok(env: &Env, args: &[&str]) -> String {
    let (code, out, err) = env.run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn add(env: &Env, id: &str, extra: &[&str]) {
    let spec = env.spec();
    let mut args = vec!["instances", "add", "--id", id, "--credspec", p(&spec)];
    args.extend(extra);
    ok(env, &args);
}

fn fail_remove_instance(env: &Env) {
    ok(
        env,
        &[
            "emulator",
            "inject",
            "--api",
            "HcsModifyServiceSettings",
            "--operation",
            "RemoveInstance",
            "--hresult",
            "E_FAIL",
        ],
    );
}

#[test]
fn reconcile_counts_one_change_and_two_changes() {
    let env = Env::new();
    add(&env, "a", &[]);
    let out = ok(&env, &["reconcile", "--alive-none"]);
    assert!(out.ends_with("reconcile: 1 change, 0 failures\n"), "{out}");
    add(&env, "b", &[]);
    add(&env, "c", &[]);
    let out = ok(&env, &["reconcile", "--alive-none"]);
    assert!(out.ends_with("reconcile: 2 changes, 0 failures\n"), "{out}");

    // One failure.
    add(&env, "d", &[]);
    fail_remove_instance(&env);
    let (code, out, _) = env.run(&["reconcile", "--alive-none"]);
    assert_eq!(code, 3);
    assert!(out.ends_with("reconcile: 0 changes, 1 failure\n"), "{out}");
}

#[test]
fn reconcile_says_a_failed_release_where_nothing_crashed() {
    let env = Env::new();
    add(&env, "web-1", &[]);
    fail_remove_instance(&env);
    let (code, _, err) = env.run(&["instances", "remove", "web-1"]);
    assert_eq!(code, 3, "{err}");
    // The process ended normally: its record says why it stays `releasing`.
    let plan = ok(&env, &["reconcile", "--dry-run"]);
    assert!(
        plan.contains("a failed release left it releasing"),
        "{plan}"
    );
    assert!(!plan.contains("a crash"), "{plan}");
    let out = ok(&env, &["reconcile"]);
    assert!(out.contains("done: remove_interrupted web-1"), "{out}");
    assert!(out.ends_with("reconcile: 1 change, 0 failures\n"), "{out}");
}

#[test]
fn reconcile_says_a_failed_rollback_where_nothing_crashed() {
    let env = Env::new();
    // The query after AddInstance answers garbage, and the rollback's RemoveInstance fails.
    ok(
        &env,
        &[
            "emulator",
            "inject",
            "--api",
            "HcsGetServiceProperties",
            "--skip",
            "1",
            "--response",
            "{",
        ],
    );
    fail_remove_instance(&env);
    let spec = env.spec();
    let (code, _, err) = env.run(&["instances", "add", "--id", "rb", "--credspec", p(&spec)]);
    assert_eq!(code, 3, "{err}");
    let plan = ok(&env, &["reconcile", "--dry-run"]);
    assert!(
        plan.contains("a failed rollback left it creating"),
        "{plan}"
    );
    assert!(!plan.contains("a crash"), "{plan}");
}

#[test]
fn reconcile_still_says_a_crash_where_the_record_knows_of_no_failure() {
    let env = Env::new();
    add(&env, "web-1", &[]);
    // What a process killed between marking the record and removing the instance leaves.
    let journal = credguard::journal::Journal::open(&env.state().join("journal/emulator")).unwrap();
    let mut record = journal.get("web-1").unwrap().unwrap();
    record.fake_state(credguard::journal::RecordState::Releasing);
    journal.write(&record).unwrap();
    let plan = ok(&env, &["reconcile", "--dry-run"]);
    assert!(
        plan.contains("a crash interrupted it while releasing"),
        "{plan}"
    );
}

#[test]
fn utility_vm_entries_are_counted_right() {
    let env = Env::new();
    ok(&env, &["emulator", "uvm", "create", "uvm-1"]);
    let out = ok(&env, &["emulator", "uvm", "show", "uvm-1"]);
    assert!(
        out.starts_with("utility VM `uvm-1`: 0 HvSocket service-table entries\n"),
        "{out}"
    );
    add(&env, "h1", &["--isolation", "hyperv", "--uvm", "uvm-1"]);
    let out = ok(&env, &["emulator", "uvm", "show", "uvm-1"]);
    assert!(
        out.starts_with("utility VM `uvm-1`: 1 HvSocket service-table entry\n"),
        "{out}"
    );
    add(&env, "h2", &["--isolation", "hyperv", "--uvm", "uvm-1"]);
    let out = ok(&env, &["emulator", "uvm", "show", "uvm-1"]);
    assert!(
        out.starts_with("utility VM `uvm-1`: 2 HvSocket service-table entries\n"),
        "{out}"
    );
}

/// The example spec with one lint error (an empty gMSA name) and one warning (the account
/// then has no entry for its DNS scope).
fn one_error_one_warning(env: &Env) -> std::path::PathBuf {
    let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_SPEC).unwrap();
    v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][0]["Name"] = "".into();
    env.file("one.json", v.to_string().as_bytes())
}

#[test]
fn lint_counts_are_singular_for_one() {
    let env = Env::new();
    let spec = one_error_one_warning(&env);
    let (code, _, err) = env.run(&["credspec", "show", p(&spec)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("has 1 lint error and 1 warning:"), "{err}");
    let (code, out, _) = env.run(&["credspec", "validate", p(&spec)]);
    assert_eq!(code, 1);
    assert!(out.contains(": 1 error, 1 warning"), "{out}");
    let (code, _, err) = env.run(&["instances", "add", "--id", "x", "--credspec", p(&spec)]);
    assert_eq!(code, 2);
    assert!(err.contains("has 1 lint error; fix it"), "{err}");
    // Never a count with "(s)".
    assert!(!err.contains("(s)"), "{err}");
}
