//! Issue 9, "never remove what is not ours; always remove what is": ownership of instances
//! after a refused AddInstance, HvSocket entries that cannot be removed, reconcile and
//! `remove` acting on fresh facts, empty answers, and concurrent removes.
//!
//! Interleavings are made deterministic with [`Hooked`], a backend wrapping the emulator that
//! runs a closure right after a chosen call (the closure plays the other process).

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use common::CS1;
use common::chain_line;
use credguard::hcs::hresult::HResult;
use credguard::hcs::{HcsError, HcsService};
use credguard::journal::RecordState;
use credguard::lifecycle::CcgError;
use credguard::lifecycle::reconcile::Action;
use credguard::wire::Transport;
use credguard::{CcgClient, CreateRequest, ErrorKind, Isolation, ReconcileOptions, Removal};
use credguard_emulator::{Api, Emulator, Fault, FaultAction};

const UVM: &str = "own-uvm";

type Hook = Box<dyn FnOnce() + Send>;

/// The emulator, with closures run right after the n-th call of an API returns.
#[derive(Default)]
struct Hooks {
    counts: [AtomicU32; 3],
    after: Mutex<Vec<(Api, u32, Hook)>>,
    before: Mutex<Vec<(Api, u32, Hook)>>,
}

struct Hooked {
    inner: Arc<Emulator>,
    hooks: Hooks,
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooked")
    }
}

fn slot(api: Api) -> usize {
    match api {
        Api::ModifyServiceSettings => 0,
        Api::GetServiceProperties => 1,
        Api::ModifyComputeSystem => 2,
    }
}

impl Hooked {
    fn new(inner: Arc<Emulator>) -> Arc<Self> {
        Arc::new(Hooked {
            inner,
            hooks: Hooks::default(),
        })
    }

    /// Runs `f` right after the `nth` (from 1, counted from now) call of `api` returns.
    fn after(&self, api: Api, nth: u32, f: impl FnOnce() + Send + 'static) {
        let base = self.hooks.counts[slot(api)].load(Ordering::SeqCst);
        self.hooks
            .after
            .lock()
            .unwrap()
            .push((api, base + nth, Box::new(f)));
    }

    /// Runs `f` right before the `nth` (from 1, counted from now) call of `api` is made.
    fn before(&self, api: Api, nth: u32, f: impl FnOnce() + Send + 'static) {
        let base = self.hooks.counts[slot(api)].load(Ordering::SeqCst);
        self.hooks
            .before
            .lock()
            .unwrap()
            .push((api, base + nth, Box::new(f)));
    }

    fn starting(&self, api: Api) {
        let n = self.hooks.counts[slot(api)].load(Ordering::SeqCst) + 1;
        Self::run_due(&self.hooks.before, api, n);
    }

    fn ran(&self, api: Api) {
        let n = self.hooks.counts[slot(api)].fetch_add(1, Ordering::SeqCst) + 1;
        Self::run_due(&self.hooks.after, api, n);
    }

    fn run_due(list: &Mutex<Vec<(Api, u32, Hook)>>, api: Api, n: u32) {
        let due: Vec<Hook> = {
            let mut hooks = list.lock().unwrap();
            let mut due = Vec::new();
            let mut i = 0;
            while i < hooks.len() {
                if hooks[i].0 == api && hooks[i].1 == n {
                    due.push(hooks.remove(i).2);
                } else {
                    i += 1;
                }
            }
            due
        };
        for f in due {
            f();
        }
    }
}

impl HcsService for Hooked {
    fn modify_service_settings(&self, settings: &str) -> Result<(), HcsError> {
        self.starting(Api::ModifyServiceSettings);
        let r = self.inner.modify_service_settings(settings);
        self.ran(Api::ModifyServiceSettings);
        r
    }
    fn get_service_properties(&self, query: &str) -> Result<String, HcsError> {
        self.starting(Api::GetServiceProperties);
        let r = self.inner.get_service_properties(query);
        self.ran(Api::GetServiceProperties);
        r
    }
    fn modify_compute_system(&self, id: &str, settings: &str) -> Result<(), HcsError> {
        self.starting(Api::ModifyComputeSystem);
        let r = self.inner.modify_compute_system(id, settings);
        self.ran(Api::ModifyComputeSystem);
        r
    }
}

/// [`common::World`] (its `client` is "another process": a client over the emulator itself)
/// with a client over the hooked backend and the same journal.
struct World {
    base: common::World,
    hooked: Arc<Hooked>,
    /// A client over the hooked backend, with the journal.
    client: CcgClient,
    /// Another process: a client over the emulator itself, with the same journal.
    other: CcgClient,
}

impl std::ops::Deref for World {
    type Target = common::World;
    fn deref(&self) -> &common::World {
        &self.base
    }
}

fn world() -> World {
    let base = common::World::new();
    base.emu.create_uvm(UVM).unwrap();
    let hooked = Hooked::new(base.emu.clone());
    let client = CcgClient::new(hooked.clone()).with_journal(base.journal.clone());
    let other = base.client.clone();
    World {
        base,
        hooked,
        client,
        other,
    }
}

impl World {
    /// A Hyper-V create of [`CS1`] as `id` in the utility VM, through the hooked backend.
    fn hyperv(&self, id: &str) -> Result<credguard::CcgResource, CcgError> {
        self.client
            .create_request(&CreateRequest::new(id, CS1, Isolation::HyperV).with_utility_vm(UVM))
            .map(|(_, h)| h)
    }
}

fn raw_add(emu: &Emulator, id: &str) {
    let doc = credguard::wire::to_wire(&credguard::wire::ModificationRequest::add_instance(
        id,
        CS1,
        Transport::Lrpc,
    ))
    .unwrap();
    emu.modify_service_settings(&doc).unwrap();
}

// ---- point 2: an instance AddInstance refused as "already exists" is another creator's ----

#[test]
fn an_add_refused_as_already_exists_leaves_the_other_creators_instance() {
    for code in [
        None,                            // the emulator's own answer: 0x800700B7
        Some(HResult::from_win32(5010)), // ERROR_OBJECT_ALREADY_EXISTS, 0x80071392
        Some(HResult::HCS_E_SYSTEM_ALREADY_EXISTS),
    ] {
        let w = world();
        let emu = w.emu.clone();
        // Another creator adds the id between our check and our AddInstance (and HCS then
        // answers ours with this code).
        w.hooked.after(Api::GetServiceProperties, 1, move || {
            raw_add(&emu, "raced");
            if let Some(code) = code {
                emu.inject(Fault::fail(Api::ModifyServiceSettings, code).on("AddInstance"))
                    .unwrap();
            }
        });
        let err = w
            .client
            .create("raced", CS1, Isolation::Process)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{code:?}: {err:?}");
        assert!(
            matches!(err, CcgError::AlreadyExists { .. }),
            "{code:?}: {err:?}"
        );
        let line = chain_line(&err);
        assert!(
            line.contains("raced") && line.contains("AddInstance"),
            "{line}"
        );
        assert_eq!(
            w.ids(),
            ["raced"],
            "{code:?}: the other creator's instance stays"
        );
        assert!(w.records().is_empty(), "{code:?}: our record went");
        let removes = w
            .emu
            .calls()
            .unwrap()
            .iter()
            .filter(|c| c.document.contains("RemoveInstance"))
            .count();
        assert_eq!(removes, 0, "{code:?}: nothing was removed");
        // reconcile leaves it alone too (it is foreign now).
        let done = w.client.reconcile(&ReconcileOptions::default()).unwrap();
        assert!(done.iter().all(|d| !d.item.action.is_change()), "{done:?}");
        assert_eq!(w.ids(), ["raced"]);
    }
}

#[test]
fn a_hot_add_refused_as_already_exists_leaves_the_entry_and_removes_our_instance() {
    let w = world();
    let emu = w.emu.clone();
    // Right after the read-back, someone puts an entry with the instance's ServiceId into
    // the VM; our hot-add is then refused as "already exists".
    w.hooked.after(Api::GetServiceProperties, 2, move || {
        let sid = emu.instances().unwrap()[0]
            .hv_socket_config
            .clone()
            .unwrap()
            .service_id;
        let doc =
            credguard::wire::to_wire(&credguard::wire::ModifySettingRequest::hvsocket_update(
                &sid,
                &credguard::wire::HvSocketServiceConfig::default(),
            ))
            .unwrap();
        emu.modify_compute_system(UVM, &doc).unwrap();
        emu.inject(
            Fault::fail(Api::ModifyComputeSystem, HResult::ERROR_ALREADY_EXISTS).on("Update"),
        )
        .unwrap();
    });
    let err = w.hyperv("hv-raced").unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    assert!(w.ids().is_empty(), "our instance was rolled back");
    assert_eq!(w.entries().len(), 1, "the entry we did not add stays");
    assert!(w.records().is_empty());
}

// ---- point 3: a failed HvSocket entry removal never keeps the instance ----

#[test]
fn release_removes_the_instance_when_the_entry_cannot_be_removed() {
    let w = world();
    let mut h = w.hyperv("stuck").unwrap();
    let (vm, sid) = h
        .hvsocket_entry()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    w.emu
        .inject(Fault::fail(Api::ModifyComputeSystem, HResult::HCS_E_ACCESS_DENIED).on("Remove"))
        .unwrap();
    let err = h.release().unwrap_err();
    let line = chain_line(&err);
    assert!(line.contains(&vm) && line.contains(&sid), "{line}");
    assert!(line.contains("stuck"), "{line}");
    assert!(w.ids().is_empty(), "the instance is removed");
    assert!(h.is_released(), "nothing left for the handle to do");
    assert!(h.release().is_ok());
    assert_eq!(w.entries(), std::slice::from_ref(&sid));
    let rec = w.journal.get("stuck").unwrap().unwrap();
    assert_eq!(rec.hvsocket_entry(), Some((vm.as_str(), sid.as_str())));
    // reconcile retries the entry and drops the record.
    let done = w.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert!(done.iter().all(|d| d.result.is_ok()), "{done:?}");
    assert!(w.entries().is_empty());
    assert!(w.records().is_empty());
}

#[test]
fn a_stopped_or_gone_vm_counts_as_the_entry_removed() {
    for code in [
        HResult(0x8037_0110_u32 as i32), // HCS_E_SYSTEM_ALREADY_STOPPED
        HResult(0xC037_0110_u32 as i32),
        HResult::HCS_E_SYSTEM_NOT_FOUND_NT,
    ] {
        let w = world();
        let mut h = w.hyperv("vm-stopped").unwrap();
        w.emu
            .inject(Fault::fail(Api::ModifyComputeSystem, code).on("Remove"))
            .unwrap();
        h.release().unwrap_or_else(|e| panic!("{code:?}: {e:?}"));
        assert!(w.ids().is_empty(), "{code:?}");
        assert!(w.records().is_empty(), "{code:?}");
    }
}

#[test]
fn an_invalid_state_vm_keeps_the_entry_for_reconcile() {
    for code in [
        HResult::HCS_E_INVALID_STATE,
        HResult(0xC037_0105_u32 as i32), // the NTSTATUS form
    ] {
        let w = world();
        let mut h = w.hyperv("paused").unwrap();
        let (vm, sid) = w
            .journal
            .get("paused")
            .unwrap()
            .unwrap()
            .hvsocket_entry()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        w.emu
            .inject(
                Fault::fail(Api::ModifyComputeSystem, code)
                    .on("Remove")
                    .times(1),
            )
            .unwrap();
        let err = h.release().unwrap_err();
        let line = chain_line(&err);
        assert!(
            line.contains(&vm) && line.contains(&sid),
            "{code:?}: {line}"
        );
        assert!(w.ids().is_empty(), "{code:?}: the instance is removed");
        assert_eq!(w.entries(), std::slice::from_ref(&sid), "{code:?}");
        assert_eq!(w.records().len(), 1, "{code:?}: the record keeps the entry");
        // Once the VM takes the Remove, reconcile clears the entry and the record.
        let done = w.client.reconcile(&ReconcileOptions::default()).unwrap();
        assert!(done.iter().all(|d| d.result.is_ok()), "{code:?}: {done:?}");
        assert!(w.entries().is_empty(), "{code:?}");
        assert!(w.records().is_empty(), "{code:?}");
    }
}

#[test]
fn reconcile_removes_the_instance_when_the_entry_cannot_be_removed() {
    let w = world();
    w.hyperv("dead").unwrap().detach();
    w.emu
        .inject(
            Fault::fail(Api::ModifyComputeSystem, HResult::HCS_E_ACCESS_DENIED)
                .on("Remove")
                .times(1),
        )
        .unwrap();
    let opts = ReconcileOptions::alive_none();
    let done = w.client.reconcile(&opts).unwrap();
    assert_eq!(done.len(), 1);
    assert!(done[0].result.is_err(), "the entry failure is reported");
    assert!(w.ids().is_empty(), "the instance went anyway");
    assert_eq!(w.entries().len(), 1);
    assert_eq!(w.records().len(), 1, "the entry is still to be removed");
    let done = w.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert_eq!(done[0].item.action, Action::DropStaleRecord);
    assert!(done[0].result.is_ok(), "{done:?}");
    assert!(w.entries().is_empty());
    assert!(w.records().is_empty());
}

#[test]
fn a_rollback_removes_the_instance_when_the_entry_cannot_be_removed() {
    let w = world();
    // The hot-add is applied but reports failure: the rollback removes the entry (refused
    // here) and the instance.
    w.emu
        .inject(
            Fault::new(
                Api::ModifyComputeSystem,
                FaultAction::ApplyThenFail {
                    hresult: HResult::E_FAIL,
                    result: None,
                },
            )
            .on("Update"),
        )
        .unwrap();
    w.emu
        .inject(Fault::fail(Api::ModifyComputeSystem, HResult::HCS_E_ACCESS_DENIED).on("Remove"))
        .unwrap();
    let err = w.hyperv("rb").unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    let line = chain_line(&err);
    assert!(line.contains(UVM), "{line}");
    assert!(w.ids().is_empty(), "the instance was removed");
    assert_eq!(w.entries().len(), 1);
    assert_eq!(w.records().len(), 1, "kept for the entry");
    w.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert!(w.entries().is_empty());
    assert!(w.records().is_empty());
}

// ---- point 4: reconcile and remove act on fresh facts, under the record's lock ----

#[test]
fn include_foreign_never_removes_an_instance_being_created() {
    let w = world();
    // A live process starts creating `young` after reconcile read the journal: it holds the
    // lock and its record says `creating`; HCS lists the instance.
    let journal = w.journal.clone();
    let emu = w.emu.clone();
    let held = Arc::new(Mutex::new(None));
    let held2 = held.clone();
    w.hooked.before(Api::GetServiceProperties, 1, move || {
        let lock = journal.lock("young", false).unwrap();
        journal
            .write(&credguard::journal::Record::creating(
                "young",
                Isolation::Process,
                None,
            ))
            .unwrap();
        raw_add(&emu, "young");
        *held2.lock().unwrap() = Some(lock);
    });
    // Ask reconcile to clear foreign instances: `young` must survive.
    let opts = ReconcileOptions::default().include_foreign(true);
    let done = w.client.reconcile(&opts).unwrap();
    let young: Vec<_> = done
        .iter()
        .filter(|d| d.item.container_id == "young")
        .collect();
    assert!(
        young.iter().all(|d| !d.item.action.is_change()),
        "{young:?}"
    );
    assert_eq!(w.ids(), ["young"]);
    drop(held);
}

#[test]
fn include_foreign_rechecks_the_journal_before_removing() {
    let w = world();
    raw_add(&w.emu, "late");
    // Between the listing and the removal, a creator takes the lock (it is creating `late`).
    let journal = w.journal.clone();
    let held = Arc::new(Mutex::new(None));
    let held2 = held.clone();
    w.hooked.after(Api::GetServiceProperties, 1, move || {
        *held2.lock().unwrap() = Some(journal.lock("late", false).unwrap());
    });
    let done = w
        .client
        .reconcile(&ReconcileOptions::default().include_foreign(true))
        .unwrap();
    assert!(
        done.iter()
            .all(|d| !d.item.action.is_change() || d.result.is_err()),
        "{done:?}"
    );
    assert_eq!(w.ids(), ["late"], "never removed as foreign while locked");
    drop(held);
}

#[test]
fn a_stale_record_recreated_meanwhile_is_not_dropped() {
    let w = world();
    w.other
        .create("phoenix", CS1, Isolation::Process)
        .unwrap()
        .1
        .detach();
    w.emu.reset().unwrap(); // vmcompute.exe restarted: the record is stale
    let other = w.other.clone();
    // Between reconcile's plan and its action, a runtime creates the id again.
    w.hooked.after(Api::GetServiceProperties, 1, move || {
        other
            .create("phoenix", CS1, Isolation::Process)
            .unwrap()
            .1
            .detach();
    });
    w.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert_eq!(w.ids(), ["phoenix"]);
    assert_eq!(
        w.records(),
        [("phoenix".to_owned(), RecordState::Active)],
        "the new instance keeps its record"
    );
}

#[test]
fn remove_refuses_an_instance_being_created() {
    let w = world();
    raw_add(&w.emu, "busy");
    let _lock = w.journal.lock("busy", false).unwrap();
    w.journal
        .write(&credguard::journal::Record::creating(
            "busy",
            Isolation::Process,
            None,
        ))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let client = w.client.clone();
    std::thread::spawn(move || {
        let _ = tx.send(client.remove("busy"));
    });
    // A deadline, not a timing assertion: today's code waits for the lock forever.
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("remove waited for a creator instead of refusing");
    let err = result.unwrap_err();
    assert!(matches!(err, CcgError::JournalConflict { .. }), "{err:?}");
    assert_eq!(w.ids(), ["busy"]);
}

#[test]
fn remove_reports_absent_when_someone_else_removed_it_first() {
    let w = world();
    w.other
        .create("moved", CS1, Isolation::Process)
        .unwrap()
        .1
        .detach();
    // A remover that does not use the journal (another runtime) removes it between our
    // look and our RemoveInstance: it is absent for us.
    let emu = w.emu.clone();
    w.hooked.after(Api::GetServiceProperties, 1, move || {
        let doc = credguard::wire::to_wire(&credguard::wire::ModificationRequest::remove_instance(
            "moved",
        ))
        .unwrap();
        emu.modify_service_settings(&doc).unwrap();
    });
    let outcome = w.client.remove("moved");
    assert_eq!(outcome.unwrap(), Removal::AlreadyAbsent);
    assert!(w.records().is_empty());
}

// ---- point 6: an HCS without instances may answer with no property at all ----

#[test]
fn empty_answers_mean_no_instances_except_right_after_add() {
    for answer in ["{}", r#"{"Properties":[]}"#, r#"{"Properties":null}"#] {
        let w = world();
        let respond = || {
            Fault::new(
                Api::GetServiceProperties,
                FaultAction::Respond {
                    text: answer.to_owned(),
                },
            )
        };
        // list
        w.emu.inject(respond()).unwrap();
        assert!(w.client.list().unwrap().is_empty(), "{answer}");
        // the check before AddInstance
        w.emu.inject(respond()).unwrap();
        let (_, mut h) = w
            .client
            .create("e1", CS1, Isolation::Process)
            .unwrap_or_else(|e| panic!("{answer}: {e:?}"));
        // the confirmation after a RemoveInstance that reports failure
        w.emu
            .inject(
                Fault::new(
                    Api::ModifyServiceSettings,
                    FaultAction::ApplyThenFail {
                        hresult: HResult::E_FAIL,
                        result: None,
                    },
                )
                .on("RemoveInstance"),
            )
            .unwrap();
        w.emu.inject(respond()).unwrap();
        h.release().unwrap_or_else(|e| panic!("{answer}: {e:?}"));
        assert!(w.ids().is_empty());
        // the read-back right after AddInstance stays strict
        w.emu.inject(respond().skip(1)).unwrap();
        let err = w.client.create("e2", CS1, Isolation::Process).unwrap_err();
        assert!(
            matches!(err, CcgError::RolledBack { .. }),
            "{answer}: {err:?}"
        );
        assert!(w.ids().is_empty());
        // get, and remove of an absent id
        w.emu.inject(respond()).unwrap();
        assert!(w.client.get("e2").unwrap().is_none(), "{answer}");
        w.emu.inject(respond()).unwrap();
        assert_eq!(w.client.remove("e2").unwrap(), Removal::AlreadyAbsent);
    }
}

// ---- point 7: concurrent removes of one id: exactly one `removed` ----

/// A backend whose first two queries wait for each other, so both removers have looked
/// before either removes.
#[derive(Debug)]
struct Gate {
    inner: Arc<Emulator>,
    barrier: Barrier,
    queries: AtomicU32,
}

impl HcsService for Gate {
    fn modify_service_settings(&self, s: &str) -> Result<(), HcsError> {
        self.inner.modify_service_settings(s)
    }
    fn get_service_properties(&self, q: &str) -> Result<String, HcsError> {
        let r = self.inner.get_service_properties(q);
        if self.queries.fetch_add(1, Ordering::SeqCst) < 2 {
            self.barrier.wait();
        }
        r
    }
    fn modify_compute_system(&self, id: &str, s: &str) -> Result<(), HcsError> {
        self.inner.modify_compute_system(id, s)
    }
}

#[test]
fn concurrent_removes_without_a_journal_report_one_removed() {
    let emu = Arc::new(Emulator::in_memory());
    raw_add(&emu, "twice");
    let gate = Arc::new(Gate {
        inner: emu.clone(),
        barrier: Barrier::new(2),
        queries: AtomicU32::new(0),
    });
    let client = CcgClient::new(gate);
    let outcomes: Vec<Removal> = std::thread::scope(|s| {
        let a = s.spawn(|| client.remove("twice").unwrap());
        let b = s.spawn(|| client.remove("twice").unwrap());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(
        outcomes.iter().filter(|o| **o == Removal::Removed).count(),
        1,
        "{outcomes:?}"
    );
    assert!(emu.instances().unwrap().is_empty());
}

#[test]
fn concurrent_removes_with_a_journal_report_one_removed() {
    // On Windows (Wine too) a record read without the lock by one remover made the lock
    // holder's atomic replace of it fail with ERROR_ACCESS_DENIED; statefile now retries it.
    const THREADS: usize = 8;
    for round in 0..20 {
        let w = world();
        let id = format!("contended-{round}");
        w.other
            .create(&id, CS1, Isolation::Process)
            .unwrap()
            .1
            .detach();
        let barrier = Barrier::new(THREADS);
        let outcomes: Vec<Removal> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        w.other.remove(&id).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let removed = outcomes.iter().filter(|o| **o == Removal::Removed).count();
        assert_eq!(removed, 1, "round {round}: {outcomes:?}");
        assert!(w.ids().is_empty());
        assert!(w.records().is_empty());
    }
}

#[test]
fn a_refused_add_record_never_leads_reconcile_to_remove_the_instance() {
    // A `creating` record whose AddInstance was refused as "already exists" (left behind when
    // dropping it failed or the process died right after): the listed instance is another
    // creator's, so reconcile only drops the record.
    let w = world();
    raw_add(&w.emu, "theirs");
    let mut rec = credguard::journal::Record::creating("theirs", Isolation::Process, None);
    rec.fake_add_refused();
    w.journal.write(&rec).unwrap();
    let plan = w
        .client
        .plan_reconcile(&ReconcileOptions::alive_none())
        .unwrap();
    assert_eq!(plan[0].action, Action::DropStaleRecord, "{plan:?}");
    let done = w.client.reconcile(&ReconcileOptions::alive_none()).unwrap();
    assert!(done.iter().all(|d| d.result.is_ok()), "{done:?}");
    assert_eq!(w.ids(), ["theirs"], "the other creator's instance stays");
    assert!(w.records().is_empty());
}

#[test]
fn a_stopped_utility_vm_does_not_block_release_or_reconcile() {
    let w = world();
    let mut h = w.hyperv("on-stopped").unwrap();
    w.hyperv("on-stopped-2").unwrap().detach();
    w.emu.stop_uvm(UVM).unwrap();
    h.release().unwrap();
    let done = w.client.reconcile(&ReconcileOptions::alive_none()).unwrap();
    assert!(done.iter().all(|d| d.result.is_ok()), "{done:?}");
    assert!(w.ids().is_empty());
    assert!(w.records().is_empty());
}

// ---- point 5: an empty or invalid alive set is refused ----

#[test]
fn alive_sets_must_name_valid_ids_and_empty_means_none_only_when_said() {
    let none: [&str; 0] = [];
    let err = ReconcileOptions::with_alive(none).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(chain_line(&err).contains("alive_none"), "{err}");
    for bad in ["", " padded", "a\nb", "tab\there"] {
        let err = ReconcileOptions::with_alive(["ok", bad]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(chain_line(&err).contains("is not a container id"), "{err}");
    }
    let long = "x".repeat(257);
    assert!(ReconcileOptions::with_alive([long]).is_err());
    let opts = ReconcileOptions::with_alive(["a", "b"]).unwrap();
    assert_eq!(opts.alive().map(std::collections::BTreeSet::len), Some(2));
    assert!(!opts.includes_foreign());
    assert_eq!(
        ReconcileOptions::alive_none()
            .alive()
            .map(std::collections::BTreeSet::len),
        Some(0)
    );
    assert!(ReconcileOptions::default().alive().is_none());

    // alive_none removes every active instance; the default keeps them.
    let w = world();
    w.client
        .create("a1", CS1, Isolation::Process)
        .unwrap()
        .1
        .detach();
    w.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert_eq!(w.ids(), ["a1"]);
    w.client.reconcile(&ReconcileOptions::alive_none()).unwrap();
    assert!(w.ids().is_empty());
}

/// The spec fingerprint a `creating` record keeps: no secret, blind to member order and
/// white space, and telling another spec or transport apart.
#[test]
fn a_creating_record_tells_another_creators_instance_by_its_spec_or_transport() {
    use credguard::journal::{Record, spec_fingerprint};
    use credguard::wire::{ContainerCredentialGuardInstance, ContainerCredentialGuardState};
    let spec = r#"{"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"DnsName":"contoso.com","PluginInput":"s3cret-value"}}"#;
    let reordered = "{ \"DomainJoinConfig\": {\"PluginInput\": \"other\", \"DnsName\": \"contoso.com\"},\n \"CmsPlugins\": [\"ActiveDirectory\"] }";
    assert_eq!(spec_fingerprint(spec), spec_fingerprint(reordered));
    assert!(!spec_fingerprint(spec).contains("s3cret"));
    let record = Record::creating("c", Isolation::Process, None).with_spec(spec);
    let listed = |spec: &str, transport: Transport| ContainerCredentialGuardInstance {
        id: "c".into(),
        credential_guard: Some(ContainerCredentialGuardState {
            transport,
            credential_spec: spec.into(),
            ..Default::default()
        }),
        hv_socket_config: None,
    };
    assert!(!record.proves_not_ours(&listed(reordered, Transport::Lrpc)));
    assert!(record.proves_not_ours(&listed(spec, Transport::HvSocket)));
    let other = spec.replace("contoso.com", "fabrikam.com");
    assert!(record.proves_not_ours(&listed(&other, Transport::Lrpc)));
    // An answer without the spec, or a record without a fingerprint, proves nothing.
    assert!(!record.proves_not_ours(&listed("", Transport::Lrpc)));
    let old = Record::creating("c", Isolation::Process, None);
    assert!(!old.proves_not_ours(&listed(&other, Transport::Lrpc)));
}

/// AddInstance fails with a code other than "already exists" while another creator makes
/// the id after our check: the instance listed then is not ours when its transport differs,
/// and is left alone.
#[test]
fn a_failed_add_leaves_an_instance_that_provably_is_another_creators() {
    let w = world();
    let emu = w.emu.clone();
    w.hooked.after(Api::GetServiceProperties, 1, move || {
        let doc = credguard::wire::to_wire(&credguard::wire::ModificationRequest::add_instance(
            "raced",
            CS1,
            Transport::HvSocket,
        ))
        .unwrap();
        emu.modify_service_settings(&doc).unwrap();
        emu.inject(Fault::fail(Api::ModifyServiceSettings, HResult::E_FAIL).on("AddInstance"))
            .unwrap();
    });
    let err = w
        .client
        .create("raced", CS1, Isolation::Process)
        .unwrap_err();
    assert!(matches!(err, CcgError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(w.ids(), ["raced"], "the other creator's instance stays");
    assert!(w.records().is_empty(), "our record went");
    // The same failure with an instance that may be ours (same transport and spec) is
    // still rolled back: HCS can apply a call and report failure.
    let emu = w.emu.clone();
    w.hooked.after(Api::GetServiceProperties, 1, move || {
        emu.inject(
            Fault::new(
                Api::ModifyServiceSettings,
                FaultAction::ApplyThenFail {
                    hresult: HResult::E_FAIL,
                    result: None,
                },
            )
            .on("AddInstance"),
        )
        .unwrap();
    });
    let err = w
        .client
        .create("applied", CS1, Isolation::Process)
        .unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    assert_eq!(w.ids(), ["raced"]);
}
