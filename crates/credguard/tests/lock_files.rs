//! Lock files do not pile up in the journal directory (issue 9, point 14), on Unix and on
//! Windows (this file runs under Wine too): every path out of a create, a release, a
//! removal and a reconciliation leaves no `*.lock` file behind, and reconcile removes the
//! ones a crash left. Two holders of one record's lock never coexist, however lock files
//! are removed and re-created around them.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{CS1, World};
use credguard::hcs::hresult::HResult;
use credguard::journal::Record;
use credguard::lifecycle::CcgError;
use credguard::{CcgClient, Isolation, ReconcileOptions, Removal};
use credguard_emulator::{Api, Fault, FaultAction};

fn setup() -> World {
    World::new()
}

/// The `*.lock` files in a directory.
fn lock_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_completed_create_and_release_leave_no_lock_file() {
    let s = setup();
    let (_, mut handle) = s.client.create("lf-ok", CS1, Isolation::Process).unwrap();
    assert_eq!(lock_files(&s.dir), Vec::<String>::new(), "after create");
    handle.release().unwrap();
    assert_eq!(lock_files(&s.dir), Vec::<String>::new(), "after release");
}

#[test]
fn an_add_refused_as_a_duplicate_leaves_no_lock_file() {
    let s = setup();
    // Another creator (no journal here) made an instance for the id.
    let (_, other) = CcgClient::new(s.emu.clone())
        .create("lf-dup", CS1, Isolation::Process)
        .unwrap();
    let _ = other.detach();
    let err = s
        .client
        .create("lf-dup", CS1, Isolation::Process)
        .unwrap_err();
    assert!(matches!(err, CcgError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(lock_files(&s.dir), Vec::<String>::new());
}

#[test]
fn a_failed_or_rolled_back_add_leaves_no_lock_file() {
    let s = setup();
    s.emu
        .inject(Fault::fail(Api::ModifyServiceSettings, HResult::E_FAIL).on("AddInstance"))
        .unwrap();
    s.client
        .create("lf-fail", CS1, Isolation::Process)
        .unwrap_err();
    assert_eq!(lock_files(&s.dir), Vec::<String>::new(), "failed add");

    // The query after AddInstance fails: the instance is rolled back.
    s.emu
        .inject(
            Fault::new(
                Api::GetServiceProperties,
                FaultAction::Respond {
                    text: "not json".into(),
                },
            )
            .skip(1),
        )
        .unwrap();
    let err = s
        .client
        .create("lf-rollback", CS1, Isolation::Process)
        .unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    assert_eq!(lock_files(&s.dir), Vec::<String>::new(), "rolled back");

    // Refused because another process holds the record's lock: its lock file stays.
    let held = s.journal.lock("lf-busy", false).unwrap();
    s.client
        .create("lf-busy", CS1, Isolation::Process)
        .unwrap_err();
    assert_eq!(lock_files(&s.dir).len(), 1, "the holder's file stays");
    drop(held);
    assert_eq!(lock_files(&s.dir), Vec::<String>::new(), "holder done");
}

#[test]
fn an_operator_removal_leaves_no_lock_file() {
    let s = setup();
    let (_, handle) = s
        .client
        .create("lf-remove", CS1, Isolation::Process)
        .unwrap();
    let _ = handle.detach();
    assert_eq!(s.client.remove("lf-remove").unwrap(), Removal::Removed);
    assert_eq!(lock_files(&s.dir), Vec::<String>::new());
}

#[test]
fn reconcile_removes_orphaned_lock_files_and_the_plan_creates_none() {
    let s = setup();
    // A crash while creating: a record in `creating` and its lock file, lock free.
    s.journal
        .write(&Record::creating("lf-crashed", Isolation::Process, None))
        .unwrap();
    let lock = s.journal.lock("lf-crashed", false).unwrap();
    let name = lock_files(&s.dir).remove(0);
    drop(lock);
    std::fs::write(s.dir.join(name), b"").unwrap();
    // Lock files whose records are gone (crashes of older versions, or a crash between
    // dropping the record and removing the lock file).
    for key in ["0b52781f-b24d-5685-ddf6-69830ed40ec3", "not-a-uuid"] {
        std::fs::write(s.dir.join(format!("{key}.lock")), b"").unwrap();
    }
    // A record kept active, without a lock file.
    let (_, kept) = s.client.create("lf-kept", CS1, Isolation::Process).unwrap();
    let _ = kept.detach();
    // A lock another process holds right now, without a record: in use, kept.
    let busy = s.journal.lock("lf-busy", false).unwrap();
    let before = lock_files(&s.dir);
    assert_eq!(before.len(), 4, "{before:?}");

    s.client
        .plan_reconcile(&ReconcileOptions::default())
        .unwrap();
    assert_eq!(lock_files(&s.dir), before, "the plan changes nothing");

    s.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert_eq!(
        lock_files(&s.dir).len(),
        1,
        "only the held lock's file stays: {:?}",
        lock_files(&s.dir)
    );
    drop(busy);
    assert_eq!(lock_files(&s.dir), Vec::<String>::new());
    assert_eq!(s.journal.records().unwrap().len(), 1, "lf-kept stays");
    // Other files are left alone.
    std::fs::write(s.dir.join("notes.txt"), b"mine").unwrap();
    assert_eq!(s.journal.remove_orphaned_lock_files().unwrap(), 0);
    assert!(s.dir.join("notes.txt").exists());
}

/// Many threads take, hold and give back one record's lock (each with its own open file,
/// as separate processes have), while others test it and sweep orphans: never two holders
/// at once, and no lock file left at the end.
#[test]
fn locks_stay_exclusive_while_their_files_are_removed_and_recreated() {
    let s = setup();
    let journal = s.journal.clone();
    let holders = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    const ROUNDS: usize = 40;
    let mut threads = Vec::new();
    for n in 0..4 {
        let (journal, holders, taken) = (journal.clone(), holders.clone(), taken.clone());
        threads.push(std::thread::spawn(move || {
            for round in 0..ROUNDS {
                // Half of them wait for the lock, half try and retry.
                let lock = if n % 2 == 0 {
                    journal.lock("lf-race", true).unwrap()
                } else {
                    // A deadline against a lock never given back, not a timing assertion.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        match journal.lock("lf-race", false) {
                            Ok(lock) => break lock,
                            Err(credguard::journal::JournalError::Busy { .. }) => {
                                assert!(Instant::now() < deadline, "the lock was never free");
                                std::thread::yield_now();
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                };
                assert_eq!(
                    holders.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders of one record's lock (thread {n}, round {round})"
                );
                taken.fetch_add(1, Ordering::SeqCst);
                std::thread::yield_now();
                holders.fetch_sub(1, Ordering::SeqCst);
                drop(lock);
            }
        }));
    }
    let observer = {
        let (journal, taken) = (journal.clone(), taken.clone());
        // Until every round is done, or a deadline if a worker failed.
        let deadline = Instant::now() + Duration::from_secs(60);
        std::thread::spawn(move || {
            while taken.load(Ordering::SeqCst) < 4 * ROUNDS && Instant::now() < deadline {
                journal.in_progress("lf-race").unwrap();
                journal.remove_orphaned_lock_files().unwrap();
            }
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    observer.join().unwrap();
    assert_eq!(taken.load(Ordering::SeqCst), 4 * ROUNDS);
    // A removal that collided with the observer's open handle (Windows) leaves the file
    // for the next sweep.
    journal.remove_orphaned_lock_files().unwrap();
    assert_eq!(lock_files(&s.dir), Vec::<String>::new());
}
