//! Crash safety: the CLI is killed (SIGKILL) at each point of create and release, then
//! `credguard reconcile` runs; afterwards the emulator lists no instance and no HvSocket
//! entry (no live handle owns any), and no journal record dangles.
//!
//! The CLI is stopped at a precise point with an injected delay: once the emulator's fault
//! queue is empty, the CLI has taken the fault and is sleeping inside that HCS call, and is
//! killed there. The emulator's state is in files, so what the killed process did survives
//! it, as HCS's state survives a crashed client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use credguard_emulator::{Api, Emulator, Fault, FaultAction};

const SPEC: &str = include_str!("../../../examples/credspecs/contoso_webapp01.json");

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn spec(&self) -> PathBuf {
        let p = self.dir.path().join("spec.json");
        std::fs::write(&p, SPEC).unwrap();
        p
    }

    fn emulator(&self) -> Emulator {
        Emulator::persistent(&self.state().join("emulator")).unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("credguard"));
        c.args(args)
            .env("CREDGUARD_STATE_DIR", self.state())
            .env_remove("CREDGUARD_BACKEND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> i32 {
        self.command(args).status().unwrap().code().unwrap_or(-1)
    }

    /// Starts `args` with a delay fault queued, waits until the CLI is inside the delayed
    /// call, and kills it there.
    fn kill_inside(&self, fault: Fault, args: &[&str]) {
        let emu = self.emulator();
        emu.inject(fault.delay_ms(60_000)).unwrap();
        let mut child: Child = self.command(args).spawn().unwrap();
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

    fn journal_records(&self) -> Vec<PathBuf> {
        let dir = self.state().join("journal/emulator");
        match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// reconcile, then nothing may be left.
    fn reconcile_and_check_clean(&self, what: &str) {
        assert_eq!(self.run(&["reconcile"]), 0, "{what}: reconcile failed");
        let emu = self.emulator();
        assert_eq!(emu.instances().unwrap(), vec![], "{what}: instances left");
        assert_eq!(
            emu.hvsocket_entries().unwrap(),
            vec![],
            "{what}: HvSocket entries left"
        );
        assert_eq!(
            self.journal_records(),
            Vec::<PathBuf>::new(),
            "{what}: journal records dangle"
        );
        assert_eq!(self.run(&["reconcile"]), 0, "{what}: second reconcile");
    }
}

fn delay(api: Api) -> Fault {
    Fault::new(api, FaultAction::None)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn killed_before_add_instance() {
    let env = Env::new();
    let spec = env.spec();
    env.kill_inside(
        delay(Api::ModifyServiceSettings).on("AddInstance"),
        &["instances", "add", "--id", "k1", "--credspec", p(&spec)],
    );
    assert_eq!(
        env.journal_records().len(),
        1,
        "the record is written before AddInstance"
    );
    env.reconcile_and_check_clean("before AddInstance");
}

#[test]
fn killed_during_the_check_before_add() {
    let env = Env::new();
    let spec = env.spec();
    env.kill_inside(
        delay(Api::GetServiceProperties),
        &["instances", "add", "--id", "k2", "--credspec", p(&spec)],
    );
    env.reconcile_and_check_clean("during the existence check");
}

#[test]
fn killed_between_add_instance_and_the_journal_update() {
    let env = Env::new();
    let spec = env.spec();
    env.kill_inside(
        delay(Api::GetServiceProperties).skip(1),
        &["instances", "add", "--id", "k3", "--credspec", p(&spec)],
    );
    assert_eq!(
        env.emulator().instances().unwrap().len(),
        1,
        "AddInstance was applied"
    );
    env.reconcile_and_check_clean("during the query after AddInstance");
}

#[test]
fn killed_during_the_hvsocket_hot_add() {
    let env = Env::new();
    let spec = env.spec();
    env.emulator().create_uvm("uvm-1").unwrap();
    env.kill_inside(
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
    env.reconcile_and_check_clean("during the HvSocket hot-add");
}

#[test]
fn killed_during_release() {
    let env = Env::new();
    let spec = env.spec();
    assert_eq!(
        env.run(&["instances", "add", "--id", "k5", "--credspec", p(&spec)]),
        0
    );
    env.kill_inside(
        delay(Api::ModifyServiceSettings).on("RemoveInstance"),
        &["instances", "remove", "k5"],
    );
    assert_eq!(env.emulator().instances().unwrap().len(), 1);
    env.reconcile_and_check_clean("during RemoveInstance");
}

#[test]
fn killed_during_release_of_the_hvsocket_entry() {
    let env = Env::new();
    let spec = env.spec();
    env.emulator().create_uvm("uvm-1").unwrap();
    assert_eq!(
        env.run(&[
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
        ]),
        0
    );
    assert_eq!(env.emulator().hvsocket_entries().unwrap().len(), 1);
    env.kill_inside(
        delay(Api::ModifyComputeSystem).on("Remove"),
        &["instances", "remove", "k6"],
    );
    env.reconcile_and_check_clean("during the HvSocket entry removal");
}

#[test]
fn a_live_operation_is_not_reconciled_away() {
    let env = Env::new();
    let spec = env.spec();
    let emu = env.emulator();
    emu.inject(delay(Api::GetServiceProperties).skip(1).delay_ms(4_000))
        .unwrap();
    let mut child = env
        .command(&["instances", "add", "--id", "live", "--credspec", p(&spec)])
        .spawn()
        .unwrap();
    while !emu.faults().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The create is in progress: reconcile must leave it alone.
    assert_eq!(env.run(&["reconcile"]), 0);
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "the create completed"
    );
    assert_eq!(emu.instances().unwrap().len(), 1);
    assert_eq!(env.journal_records().len(), 1);
    assert_eq!(env.run(&["instances", "remove", "live"]), 0);
    env.reconcile_and_check_clean("after a live create");
}
