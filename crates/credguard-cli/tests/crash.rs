//! Crash safety: the CLI is killed (SIGKILL) at each point of create and release, then
//! `credguard reconcile` runs; afterwards the emulator lists no instance and no HvSocket
//! entry (no live handle owns any), and no journal record dangles.
//!
//! The CLI is stopped at a precise point with an injected delay: once the emulator's fault
//! queue is empty, the CLI has taken the fault and is sleeping inside that HCS call, and is
//! killed there (or, to let it go on, [`credguard_emulator::Emulator::end_delays`] ends the
//! delay). The emulator's state is in files, so what the killed process did survives
//! it, as HCS's state survives a crashed client.

mod common;

use std::path::PathBuf;

use common::{Env, p};
use credguard_emulator::{Api, Fault, FaultAction};

/// Runs a command to its end (bounded by the harness's deadline); its exit code.
fn run(env: &Env, args: &[&str]) -> i32 {
    env.spawn(args).finish()
}

/// Starts `args` with a delay fault queued, waits until the CLI is inside the delayed call,
/// and kills it there.
fn kill_inside(env: &Env, fault: Fault, args: &[&str]) {
    let emu = env.emulator();
    emu.inject(fault.delay_ms(60_000)).unwrap();
    let mut child = env.spawn(args);
    child.wait_until("the delayed call", || emu.faults().unwrap().is_empty());
    child.kill(); // SIGKILL
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
        env.journal_files("json"),
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
        env.journal_files("json").len(),
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
    // Held inside the query after AddInstance until `end_delays` (60 s only bounds a hang).
    emu.inject(delay(Api::GetServiceProperties).skip(1).delay_ms(60_000))
        .unwrap();
    let mut child = env.spawn(&["instances", "add", "--id", "live", "--credspec", p(&spec)]);
    child.wait_until("the delayed call", || emu.faults().unwrap().is_empty());
    // The create is in progress: reconcile must leave it alone.
    assert_eq!(run(&env, &["reconcile"]), 0);
    assert!(child.is_running(), "the create was still in progress");
    emu.end_delays().unwrap();
    assert_eq!(
        child.finish(),
        0,
        "the create completed: {}",
        child.stderr()
    );
    assert_eq!(emu.instances().unwrap().len(), 1);
    assert_eq!(env.journal_files("json").len(), 1);
    assert_eq!(run(&env, &["instances", "remove", "live"]), 0);
    reconcile_and_check_clean(&env, "after a live create");
}
