//! 32 threads creating and releasing on one emulator and one journal: no duplicate or lost
//! instance, no corrupt record, and exactly one winner when threads race for the same id.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use common::CS1;
use credguard::journal::{Journal, RecordState};
use credguard::lifecycle::CcgError;
use credguard::{CcgClient, CreateRequest, Isolation};
use credguard_emulator::Emulator;

const THREADS: usize = 32;
const ROUNDS: usize = 8;

fn run(emu: Arc<Emulator>, journal_dir: &std::path::Path) {
    emu.create_uvm("uvm").unwrap();
    let journal = Arc::new(Journal::open(journal_dir).unwrap());
    let client = CcgClient::new(emu.clone()).with_journal(journal.clone());
    let barrier = Arc::new(Barrier::new(THREADS));
    let kept: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let client = client.clone();
                let barrier = barrier.clone();
                scope.spawn(move || {
                    let mut kept = Vec::new();
                    barrier.wait();
                    for r in 0..ROUNDS {
                        let id = format!("t{t}-r{r}");
                        let isolation = if (t + r) % 3 == 0 {
                            Isolation::HyperV
                        } else {
                            Isolation::Process
                        };
                        let req = CreateRequest::new(&id, CS1, isolation)
                            .with_utility_vm((isolation == Isolation::HyperV).then_some("uvm"));
                        let (_, mut h) = client.create_request(&req).unwrap();
                        if r % 2 == 0 {
                            h.release().unwrap();
                        } else {
                            kept.push(h.detach());
                        }
                        // Everyone races for the same id; exactly one may win each round.
                        let shared = format!("shared-{r}");
                        match client.create(&shared, CS1, Isolation::Process) {
                            Ok((_, h)) => kept.push(h.detach()),
                            Err(
                                CcgError::AlreadyExists { .. } | CcgError::JournalConflict { .. },
                            ) => {}
                            Err(e) => panic!("{shared}: {e:?}"),
                        }
                    }
                    kept
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut expected = BTreeSet::new();
    for id in kept.into_iter().flatten() {
        assert!(expected.insert(id.clone()), "{id} was created twice");
    }
    for r in 0..ROUNDS {
        assert!(
            expected.contains(&format!("shared-{r}")),
            "nobody won shared-{r}"
        );
    }
    let listed: Vec<String> = emu.instances().unwrap().into_iter().map(|i| i.id).collect();
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), listed_set.len(), "duplicate instances");
    assert_eq!(listed_set, expected, "lost or leaked instances");
    let records = journal.records().unwrap();
    assert!(
        !journal_dir.join("corrupt").exists(),
        "a record was corrupted"
    );
    let recorded: BTreeSet<String> = records
        .iter()
        .map(|r| r.container_id().to_owned())
        .collect();
    assert_eq!(recorded, expected);
    assert!(records.iter().all(|r| r.state() == RecordState::Active));
    let hv_kept = emu
        .instances()
        .unwrap()
        .iter()
        .filter(|i| i.hv_socket_config.is_some())
        .count();
    assert_eq!(
        emu.hvsocket_entries().unwrap().len(),
        hv_kept,
        "HvSocket entries leaked"
    );
}

#[test]
fn threads_on_one_in_memory_emulator_and_one_journal() {
    let dir = tempfile::tempdir().unwrap();
    run(Arc::new(Emulator::in_memory()), &dir.path().join("journal"));
}

#[test]
fn threads_on_one_persistent_emulator_and_one_journal() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Arc::new(Emulator::persistent(&dir.path().join("emulator")).unwrap());
    run(emu, &dir.path().join("journal"));
}
