//! 8 CLI processes at once on one state directory: no duplicate or lost instance, no
//! corrupt record or state file, exactly one winner for a contended id.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use common::{Env, p};
use credguard::journal::Journal;

const PROCESSES: usize = 8;

fn credguard(env: &Env, args: &[&str]) -> Command {
    let mut c = env.process(args);
    c.stderr(Stdio::piped());
    c
}

#[test]
fn eight_processes_on_one_state_directory() {
    let env = Env::new();
    let spec_file = env.spec();
    let spec = p(&spec_file);
    env.emulator().create_uvm("uvm").unwrap();

    // Every process races for the same id: exactly one wins.
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            credguard(
                &env,
                &["instances", "add", "--id", "contended", "--credspec", spec],
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
        let env = &env;
        let workers: Vec<_> = (0..PROCESSES)
            .map(|w| {
                scope.spawn(move || {
                    let mut kept = BTreeSet::new();
                    for i in 0..4 {
                        let id = format!("w{w}-{i}");
                        let mut args = vec!["instances", "add", "--id", &id, "--credspec", spec];
                        if (w + i) % 2 == 0 {
                            args.extend(["--isolation", "hyperv", "--uvm", "uvm"]);
                        }
                        let out = credguard(env, &args).output().unwrap();
                        assert!(
                            out.status.success(),
                            "{id}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        if i % 2 == 0 {
                            let out = credguard(env, &["instances", "remove", &id])
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
                        let out = credguard(env, &["instances", "list"]).output().unwrap();
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

    let emu = env.emulator();
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
    let journal_dir = env.state().join("journal/emulator");
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
