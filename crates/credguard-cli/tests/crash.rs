//! Crash safety: the CLI is killed (SIGKILL) at each point of create and release, then
//! `credguard reconcile` runs; afterwards the emulator lists no instance and no HvSocket
//! entry (no live handle owns any), and no journal record dangles.
//!
//! The CLI is stopped at a precise point with an injected delay: once the emulator's fault
//! queue is empty, the CLI has taken the fault and is sleeping inside that HCS call, and is
//! killed there. The emulator's state is in files, so what the killed process did survives
//! it, as HCS's state survives a crashed client.

mod common;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Env, p};
use credguard_emulator::{Api, Fault, FaultAction};

/// Runs a command to its end; its exit code.
fn run(env: &Env, args: &[&str]) -> i32 {
    env.process(args).status().unwrap().code().unwrap_or(-1)
}

/// Starts `args` with a delay fault queued, waits until the CLI is inside the delayed call,
/// and kills it there.
fn kill_inside(env: &Env, fault: Fault, args: &[&str]) {
    let emu = env.emulator();
    emu.inject(fault.delay_ms(60_000)).unwrap();
    let mut child: Child = env.process(args).spawn().unwrap();
    let start = Instant::now();
    while !emu.faults().unwrap().is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{args:?} ended ({status}) before reaching the delayed call");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{args:?} never reached the delayed call"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn journal_records(env: &Env) -> Vec<PathBuf> {
    match std::fs::read_dir(env.state().join("journal/emulator")) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// reconcile, then nothing may be left.
fn reconcile_and_check_clean(env: &Env, what: &str) {
    assert_eq!(run(env, &["reconcile"]), 0, "{what}: reconcile failed");
    let emu = env.emulator();
    assert_eq!(emu.instances().unwrap(), vec![], "{what}: instances left");
    assert_eq!(
        emu.hvsocket_entries().unwrap(),
        vec![],
        "{what}: HvSocket entries left"
    );
    assert_eq!(
        journal_records(env),
        Vec::<PathBuf>::new(),
        "{what}: journal records dangle"
    );
    assert_eq!(run(env, &["reconcile"]), 0, "{what}: second reconcile");
}

fn delay(api: Api) -> Fault {
    Fault::new(api, FaultAction::None)
}

#[test]
fn killed_before_add_instance() {
    let env = Env::new();
    let spec = env.spec();
    kill_inside(
        &env,
        delay(Api::ModifyServiceSettings).on("AddInstance"),
        &["instances", "add", "--id", "k1", "--credspec", p(&spec)],
    );
    assert_eq!(
        journal_records(&env).len(),
        1,
        "the record is written before AddInstance"
    );
    reconcile_and_check_clean(&env, "before AddInstance");
}

#[test]
fn killed_during_the_check_before_add() {
    let env = Env::new();
    let spec = env.spec();
    kill_inside(
        &env,
        delay(Api::GetServiceProperties),
        &["instances", "add", "--id", "k2", "--credspec", p(&spec)],
    );
    reconcile_and_check_clean(&env, "during the existence check");
}

#[test]
fn killed_between_add_instance_and_the_journal_update() {
    let env = Env::new();
    let spec = env.spec();
    kill_inside(
        &env,
        delay(Api::GetServiceProperties).skip(1),
        &["instances", "add", "--id", "k3", "--credspec", p(&spec)],
    );
    assert_eq!(
        env.emulator().instances().unwrap().len(),
        1,
        "AddInstance was applied"
    );
    reconcile_and_check_clean(&env, "during the query after AddInstance");
}

#[test]
fn killed_during_the_hvsocket_hot_add() {
    let env = Env::new();
    let spec = env.spec();
    env.emulator().create_uvm("uvm-1").unwrap();
    kill_inside(
        &env,
        delay(Api::ModifyComputeSystem).on("Update"),
        &[
            "instances",
            "add",
            "--id",
            "k4",
            "--credspec",
            p(&spec),
            "--isolation",
            "hyperv",
            "--uvm",
            "uvm-1",
        ],
    );
    reconcile_and_check_clean(&env, "during the HvSocket hot-add");
}

#[test]
fn killed_during_release() {
    let env = Env::new();
    let spec = env.spec();
    assert_eq!(
        run(
            &env,
            &["instances", "add", "--id", "k5", "--credspec", p(&spec)]
        ),
        0
    );
    kill_inside(
        &env,
        delay(Api::ModifyServiceSettings).on("RemoveInstance"),
        &["instances", "remove", "k5"],
    );
    assert_eq!(env.emulator().instances().unwrap().len(), 1);
    reconcile_and_check_clean(&env, "during RemoveInstance");
}

#[test]
fn killed_during_release_of_the_hvsocket_entry() {
    let env = Env::new();
    let spec = env.spec();
    env.emulator().create_uvm("uvm-1").unwrap();
    assert_eq!(
        run(
            &env,
            &[
                "instances",
                "add",
                "--id",
                "k6",
                "--credspec",
                p(&spec),
                "--isolation",
                "hyperv",
                "--uvm",
                "uvm-1"
            ]
        ),
        0
    );
    assert_eq!(env.emulator().hvsocket_entries().unwrap().len(), 1);
    kill_inside(
        &env,
        delay(Api::ModifyComputeSystem).on("Remove"),
        &["instances", "remove", "k6"],
    );
    reconcile_and_check_clean(&env, "during the HvSocket entry removal");
}

#[test]
fn a_live_operation_is_not_reconciled_away() {
    let env = Env::new();
    let spec = env.spec();
    let emu = env.emulator();
    emu.inject(delay(Api::GetServiceProperties).skip(1).delay_ms(4_000))
        .unwrap();
    let mut child = env
        .process(&["instances", "add", "--id", "live", "--credspec", p(&spec)])
        .spawn()
        .unwrap();
    while !emu.faults().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The create is in progress: reconcile must leave it alone.
    assert_eq!(run(&env, &["reconcile"]), 0);
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "the create completed"
    );
    assert_eq!(emu.instances().unwrap().len(), 1);
    assert_eq!(journal_records(&env).len(), 1);
    assert_eq!(run(&env, &["instances", "remove", "live"]), 0);
    reconcile_and_check_clean(&env, "after a live create");
}
