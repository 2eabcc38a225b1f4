//! 8 CLI processes at once on one state directory: no duplicate or lost instance, no
//! corrupt record or state file, exactly one winner for a contended id.

mod common;

use std::collections::BTreeSet;

use common::{Env, p};
use credguard::journal::Journal;

const PROCESSES: usize = 8;

/// Runs `credguard ARGS` to its end (bounded by the harness's deadline), asserting success.
fn ok(env: &Env, what: &str, args: &[&str]) {
    let (code, _, err) = env.run(args);
    assert_eq!(code, 0, "{what}: {err}");
}

#[test]
fn eight_processes_on_one_state_directory() {
    let env = Env::new();
    let spec_file = env.spec();
    let spec = p(&spec_file);
    env.emulator().create_uvm("uvm").unwrap();

    // Every process races for the same id: exactly one wins.
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| env.spawn(&["instances", "add", "--id", "contended", "--credspec", spec]))
        .collect();
    let codes: Vec<i32> = children.iter_mut().map(common::Running::finish).collect();
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
                        ok(env, &id, &args);
                        if i % 2 == 0 {
                            ok(env, &id, &["instances", "remove", &id]);
                        } else {
                            kept.insert(id);
                        }
                        ok(env, "list", &["instances", "list"]);
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
    let journal_dir = env.journal();
    let records: BTreeSet<String> = Journal::open(&journal_dir)
        .unwrap()
        .records()
        .unwrap()
        .into_iter()
        .map(|r| r.container_id().to_owned())
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
