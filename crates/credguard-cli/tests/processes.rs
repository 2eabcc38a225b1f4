//! 8 CLI processes at once on one state directory: no duplicate or lost instance, no
//! corrupt record or state file, exactly one winner for a contended id.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use credguard::journal::Journal;
use credguard_emulator::Emulator;

const SPEC: &str = include_str!("../../../examples/credspecs/contoso_webapp01.json");
const PROCESSES: usize = 8;

fn credguard(state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("credguard"));
    c.args(args)
        .env("CREDGUARD_STATE_DIR", state)
        .env_remove("CREDGUARD_BACKEND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn eight_processes_on_one_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, SPEC).unwrap();
    let spec = spec.to_str().unwrap().to_owned();
    Emulator::persistent(&state.join("emulator"))
        .unwrap()
        .create_uvm("uvm")
        .unwrap();

    // Every process races for the same id: exactly one wins.
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            credguard(
                &state,
                &["instances", "add", "--id", "contended", "--credspec", &spec],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap_or(-1))
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    assert!(
        codes.iter().all(|&c| c == 0 || c == 5),
        "losers are told it exists: {codes:?}"
    );

    // Then 8 workers, each a sequence of processes, all at once.
    let expected: BTreeSet<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PROCESSES)
            .map(|w| {
                let (state, spec) = (state.clone(), spec.clone());
                scope.spawn(move || {
                    let mut kept = BTreeSet::new();
                    for i in 0..4 {
                        let id = format!("w{w}-{i}");
                        let mut args = vec!["instances", "add", "--id", &id, "--credspec", &spec];
                        if (w + i) % 2 == 0 {
                            args.extend(["--isolation", "hyperv", "--uvm", "uvm"]);
                        }
                        let out = credguard(&state, &args).output().unwrap();
                        assert!(
                            out.status.success(),
                            "{id}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        if i % 2 == 0 {
                            let out = credguard(&state, &["instances", "remove", &id])
                                .output()
                                .unwrap();
                            assert!(
                                out.status.success(),
                                "{id}: {}",
                                String::from_utf8_lossy(&out.stderr)
                            );
                        } else {
                            kept.insert(id);
                        }
                        let out = credguard(&state, &["instances", "list"]).output().unwrap();
                        assert!(
                            out.status.success(),
                            "{}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    kept
                })
            })
            .collect();
        let mut all: BTreeSet<String> = workers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.insert("contended".to_owned());
        all
    });

    let emu = Emulator::persistent(&state.join("emulator")).unwrap();
    let listed: Vec<String> = emu.instances().unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(
        listed.len(),
        listed.iter().collect::<BTreeSet<_>>().len(),
        "duplicates: {listed:?}"
    );
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "lost or leaked instances"
    );
    let journal_dir = state.join("journal/emulator");
    let records: BTreeSet<String> = Journal::open(&journal_dir)
        .unwrap()
        .records()
        .unwrap()
        .into_iter()
        .map(|r| r.container_id)
        .collect();
    assert!(
        !journal_dir.join("corrupt").exists(),
        "a record was corrupted"
    );
    assert_eq!(records, expected);
    let hv = emu
        .instances()
        .unwrap()
        .iter()
        .filter(|i| i.hv_socket_config.is_some())
        .count();
    assert_eq!(emu.hvsocket_entries().unwrap().len(), hv);
    // The call log is whole: every line parses, sequence numbers are unique.
    let calls = emu.calls().unwrap();
    let seqs: BTreeSet<u64> = calls.iter().map(|c| c.seq).collect();
    assert_eq!(seqs.len(), calls.len());
}
