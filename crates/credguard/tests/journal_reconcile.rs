//! The journal through the lifecycle, Hyper-V hot-add and removal, reconciliation, and the
//! gMSA disable policy.

mod common;

use std::sync::Arc;

use common::chain_line;
use common::{CS1, World};
use credguard::hcs::hresult::HResult;
use credguard::journal::{Journal, Record, RecordState};
use credguard::lifecycle::reconcile::Action;
use credguard::lifecycle::{CcgError, Step};
use credguard::{CcgClient, CreateRequest, ErrorKind, Isolation, ReconcileOptions, Removal};
use credguard_emulator::{Api, Emulator, Fault, FaultAction};

fn setup() -> World {
    World::new()
}

fn alive(ids: &[&str]) -> ReconcileOptions {
    if ids.is_empty() {
        return ReconcileOptions::alive_none();
    }
    ReconcileOptions::with_alive(ids.iter().copied()).unwrap()
}

#[test]
fn create_records_active_and_release_drops_the_record() {
    let s = setup();
    let (_, mut h) = s.client.create("j1", CS1, Isolation::Process).unwrap();
    let rec = s.journal.get("j1").unwrap().unwrap();
    assert_eq!(rec.state(), RecordState::Active);
    assert_eq!(rec.transport(), "LRPC");
    assert_eq!(rec.pid(), std::process::id());
    assert!(rec.created_unix_ms() > 0);
    h.release().unwrap();
    assert!(s.journal.get("j1").unwrap().is_none());
    assert!(s.records().is_empty());
}

#[test]
fn rolled_back_creates_leave_no_record_and_failed_rollbacks_leave_creating() {
    let s = setup();
    s.emu
        .inject(
            Fault::new(
                Api::GetServiceProperties,
                FaultAction::Respond { text: "{".into() },
            )
            .skip(1),
        )
        .unwrap();
    assert!(matches!(
        s.client.create("j2", CS1, Isolation::Process),
        Err(CcgError::RolledBack { .. })
    ));
    assert!(s.records().is_empty());

    s.emu
        .inject(
            Fault::new(
                Api::GetServiceProperties,
                FaultAction::Respond { text: "{".into() },
            )
            .skip(1),
        )
        .unwrap();
    s.emu
        .inject(Fault::fail(Api::ModifyServiceSettings, HResult::E_FAIL).on("RemoveInstance"))
        .unwrap();
    assert!(matches!(
        s.client.create("j3", CS1, Isolation::Process),
        Err(CcgError::RollbackFailed { .. })
    ));
    assert_eq!(s.records(), [("j3".to_owned(), RecordState::Creating)]);
    assert_eq!(s.ids(), ["j3"]);

    // reconcile finishes the job.
    let done = s.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].item.action, Action::RemoveInterrupted);
    assert!(done[0].result.is_ok());
    assert!(s.ids().is_empty());
    assert!(s.records().is_empty());
}

#[test]
fn a_dropped_handle_leaves_an_active_record_that_reconcile_finds() {
    let s = setup();
    let (_, h) = s.client.create("dropped", CS1, Isolation::Process).unwrap();
    drop(h);
    assert_eq!(s.records(), [("dropped".to_owned(), RecordState::Active)]);
    let plan = s
        .client
        .plan_reconcile(&ReconcileOptions::default())
        .unwrap();
    assert_eq!(plan[0].action, Action::Keep, "liveness unknown: kept");
    let plan = s.client.plan_reconcile(&alive(&[])).unwrap();
    assert_eq!(plan[0].action, Action::RemoveNotAlive);
    s.client.reconcile(&alive(&[])).unwrap();
    assert!(s.ids().is_empty());
    assert!(s.records().is_empty());
}

#[test]
fn journal_write_failure_before_add_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journal");
    let journal = Arc::new(Journal::open(&jdir).unwrap());
    let emu = Arc::new(Emulator::in_memory());
    let client = CcgClient::new(emu.clone()).with_journal(journal);
    // A directory where the record file would go makes the atomic rename fail.
    let rec = Record::creating("blocked", Isolation::Process, None);
    let probe = Journal::open(&jdir).unwrap();
    probe.write(&rec).unwrap();
    let path = std::fs::read_dir(&jdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("x"), b"x").unwrap();
    let err = client
        .create("blocked", CS1, Isolation::Process)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State, "{err:?}");
    assert!(chain_line(&err).contains("blocked"));
    let adds = emu
        .calls()
        .unwrap()
        .iter()
        .filter(|c| c.document.contains("AddInstance"))
        .count();
    assert_eq!(adds, 0, "nothing was added without a record");
}

#[test]
fn a_busy_record_is_refused() {
    let s = setup();
    let _held = s.journal.lock("busy", false).unwrap();
    let err = s
        .client
        .create("busy", CS1, Isolation::Process)
        .unwrap_err();
    assert!(matches!(err, CcgError::JournalConflict { .. }), "{err:?}");
    assert!(chain_line(&err).contains("another process"));
    assert!(s.emu.calls().unwrap().is_empty());
}

#[test]
fn a_stale_record_does_not_block_a_new_create() {
    let s = setup();
    let (_, h) = s.client.create("again", CS1, Isolation::Process).unwrap();
    h.detach();
    s.emu.reset().unwrap(); // vmcompute.exe restarted: the instance is gone, the record is not
    let (_, mut h) = s.client.create("again", CS1, Isolation::Process).unwrap();
    assert_eq!(s.records(), [("again".to_owned(), RecordState::Active)]);
    h.release().unwrap();
}

#[test]
fn hyperv_hot_add_and_release_remove_the_service_table_entry() {
    let s = setup();
    s.emu.create_uvm("uvm").unwrap();
    let (inst, mut h) = s.hyperv("x1", "uvm").unwrap();
    let hv = inst.hv_socket_config.unwrap();
    let table = s.emu.uvm("uvm").unwrap().unwrap().service_table;
    assert_eq!(table.get(&hv.service_id), hv.service_config.as_ref());
    assert_eq!(h.hvsocket_entry(), Some(("uvm", hv.service_id.as_str())));
    let rec = s.journal.get("x1").unwrap().unwrap();
    assert_eq!(rec.utility_vm(), Some("uvm"));
    assert_eq!(rec.service_id(), Some(hv.service_id.as_str()));
    let update = s
        .emu
        .calls()
        .unwrap()
        .into_iter()
        .find(|c| c.api == Api::ModifyComputeSystem)
        .unwrap();
    assert_eq!(update.target.as_deref(), Some("uvm"));
    assert!(update.document.contains(r#""RequestType":"Update""#));
    h.release().unwrap();
    assert_eq!(s.entries().len(), 0);
    assert!(s.ids().is_empty());
    let calls = s.emu.calls().unwrap();
    let rm_entry = calls
        .iter()
        .position(|c| c.api == Api::ModifyComputeSystem && c.document.contains("Remove"))
        .unwrap();
    let rm_inst = calls
        .iter()
        .position(|c| c.document.contains("RemoveInstance"))
        .unwrap();
    assert!(rm_entry < rm_inst, "the entry goes before the instance");
}

#[test]
fn a_vanished_utility_vm_does_not_block_release() {
    let s = setup();
    s.emu.create_uvm("uvm").unwrap();
    let (_, mut h) = s.hyperv("x2", "uvm").unwrap();
    s.emu.remove_uvm("uvm").unwrap();
    h.release().unwrap();
    assert!(s.ids().is_empty());
    assert!(s.records().is_empty());
}

#[test]
fn a_failed_hot_add_rolls_everything_back() {
    let s = setup();
    // No such VM: 0xC037010E.
    let err = s.hyperv("x3", "no-such-vm").unwrap_err();
    let CcgError::RolledBack { cause, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            **cause,
            CcgError::HvSocketEntry {
                step: Step::HvSocketAdd,
                ..
            }
        ),
        "{cause:?}"
    );
    assert!(chain_line(&err).contains("0xC037010E"));
    assert!(s.ids().is_empty());
    assert!(s.records().is_empty());

    // Applied, then failed: the entry is removed too.
    s.emu.create_uvm("uvm").unwrap();
    s.emu
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
    assert!(matches!(
        s.hyperv("x4", "uvm"),
        Err(CcgError::RolledBack { .. })
    ));
    assert_eq!(s.entries().len(), 0);
    assert!(s.ids().is_empty());
    assert!(s.records().is_empty());
}

#[test]
fn a_failed_entry_removal_keeps_the_entry_in_the_journal_for_reconcile() {
    let s = setup();
    s.emu.create_uvm("uvm").unwrap();
    let (_, mut h) = s.hyperv("x5", "uvm").unwrap();
    s.emu
        .inject(Fault::fail(Api::ModifyComputeSystem, HResult::HCS_E_ACCESS_DENIED).on("Remove"))
        .unwrap();
    // The instance goes all the same (issue 9); the entry stays in the journal.
    let err = h.release().unwrap_err();
    assert!(matches!(err, CcgError::HvSocketEntryLeft { .. }), "{err:?}");
    assert!(h.is_released());
    assert!(s.ids().is_empty());
    assert_eq!(s.records(), [("x5".to_owned(), RecordState::Releasing)]);
    s.client.reconcile(&ReconcileOptions::default()).unwrap();
    assert_eq!(s.entries().len(), 0);
    assert!(s.records().is_empty());
}

#[test]
fn utility_vm_only_with_hyperv() {
    let s = setup();
    let err = s
        .client
        .create_request(&CreateRequest::new("p", CS1, Isolation::Process).with_utility_vm("uvm"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(s.emu.calls().unwrap().is_empty());
}

#[test]
fn reconcile_plan_covers_every_case_and_is_idempotent() {
    let s = setup();
    s.emu.create_uvm("uvm").unwrap();
    // active + alive
    let (_, keep) = s.client.create("keep", CS1, Isolation::Process).unwrap();
    keep.detach();
    // active, not alive, with an HvSocket entry
    let (_, dead) = s.hyperv("dead", "uvm").unwrap();
    dead.detach();
    // interrupted create: record creating, instance present (as a crash leaves it)
    let (_, h) = s.client.create("crashed", CS1, Isolation::Process).unwrap();
    h.detach();
    let mut rec = s.journal.get("crashed").unwrap().unwrap();
    rec.fake_state(RecordState::Creating);
    s.journal.write(&rec).unwrap();
    // interrupted release: record releasing, instance gone
    let (_, h) = s.client.create("half", CS1, Isolation::Process).unwrap();
    h.detach();
    let mut rec = s.journal.get("half").unwrap().unwrap();
    rec.fake_state(RecordState::Releasing);
    s.journal.write(&rec).unwrap();
    s.client.backend().modify_service_settings(r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"RemoveInstance","OperationDetails":{"Id":"half"}}}"#).unwrap();
    // stale: active record, instance gone
    let (_, h) = s.client.create("stale", CS1, Isolation::Process).unwrap();
    h.detach();
    s.client.backend().modify_service_settings(r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"RemoveInstance","OperationDetails":{"Id":"stale"}}}"#).unwrap();
    // foreign: HCS lists it, the journal does not know it
    CcgClient::new(s.emu.clone())
        .create("foreign", CS1, Isolation::Process)
        .unwrap()
        .1
        .detach();
    // in progress: a live process holds the lock of a creating record
    let (_, h) = s.client.create("busy", CS1, Isolation::Process).unwrap();
    h.detach();
    let mut rec = s.journal.get("busy").unwrap().unwrap();
    rec.fake_state(RecordState::Creating);
    s.journal.write(&rec).unwrap();
    let held = s.journal.lock("busy", false).unwrap();

    let opts = alive(&["keep", "busy", "foreign"]);
    let plan = s.client.plan_reconcile(&opts).unwrap();
    let action = |id: &str| plan.iter().find(|p| p.container_id == id).unwrap().action;
    assert_eq!(action("keep"), Action::Keep);
    assert_eq!(action("dead"), Action::RemoveNotAlive);
    assert_eq!(action("crashed"), Action::RemoveInterrupted);
    assert_eq!(action("half"), Action::DropStaleRecord);
    assert_eq!(action("stale"), Action::DropStaleRecord);
    assert_eq!(action("foreign"), Action::KeepForeign);
    assert_eq!(action("busy"), Action::SkipInProgress);
    assert!(
        plan.iter()
            .find(|p| p.container_id == "foreign")
            .is_some_and(|p| !p.owned)
    );

    let done = s.client.reconcile(&opts).unwrap();
    assert!(done.iter().all(|d| d.result.is_ok()));
    let mut ids = s.ids();
    ids.sort();
    assert_eq!(ids, ["busy", "foreign", "keep"]);
    assert_eq!(
        s.entries().len(),
        0,
        "the dead container's HvSocket entry went too"
    );
    let mut recs: Vec<String> = s.records().into_iter().map(|r| r.0).collect();
    recs.sort();
    assert_eq!(recs, ["busy", "keep"]);

    // Idempotent.
    let again = s.client.reconcile(&opts).unwrap();
    assert!(
        again.iter().all(|d| !d.item.action.is_change()),
        "{again:?}"
    );

    // Once the lock is free, the interrupted create is finished; foreign ones go only
    // when asked for.
    drop(held);
    let opts = ReconcileOptions::with_alive(["keep"])
        .unwrap()
        .include_foreign(true);
    s.client.reconcile(&opts).unwrap();
    assert_eq!(s.ids(), ["keep"]);
    assert_eq!(s.records(), [("keep".to_owned(), RecordState::Active)]);
}

#[test]
fn remove_uses_the_journal_for_the_hvsocket_entry() {
    let s = setup();
    s.emu.create_uvm("uvm").unwrap();
    let (_, h) = s.hyperv("r1", "uvm").unwrap();
    h.detach();
    assert_eq!(s.client.remove("r1").unwrap(), Removal::Removed);
    assert_eq!(s.entries().len(), 0);
    assert!(s.records().is_empty());
    // An absent instance with a stale record: reported absent, record dropped.
    let (_, h) = s.client.create("r2", CS1, Isolation::Process).unwrap();
    h.detach();
    s.emu.reset().unwrap();
    assert_eq!(s.client.remove("r2").unwrap(), Removal::AlreadyAbsent);
    assert!(s.records().is_empty());
}

#[test]
fn gmsa_disabled_policy_denies_before_anything_is_sent() {
    let s = setup();
    let client = s
        .client
        .clone()
        .with_gmsa_disabled(format!("annotation {}", credguard::GMSA_DISABLE_ANNOTATION));
    let err = client
        .create("denied", CS1, Isolation::Process)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.to_string().contains("operation denied"));
    assert!(s.emu.calls().unwrap().is_empty());
    assert!(s.records().is_empty());
}

/// `within`: only the ids a plan saw before the alive set was listed may change; an instance
/// (of credguard's, or foreign) created after that is kept, and considered next time.
#[test]
fn within_limits_the_changes_to_the_ids_seen_before() {
    let w = setup();
    for id in ["old", "new"] {
        let (_, r) = w.client.create(id, CS1, Isolation::Process).unwrap();
        let _ = r.detach();
    }
    let (_, r) = CcgClient::new(w.emu.clone())
        .create("new-foreign", CS1, Isolation::Process)
        .unwrap();
    let _ = r.detach();
    let opts = ReconcileOptions::alive_none()
        .include_foreign(true)
        .within(["old"]);
    let done = w.client.reconcile(&opts).unwrap();
    let action = |id: &str| {
        done.iter()
            .find(|d| d.item.container_id == id)
            .map(|d| d.item.action)
    };
    assert_eq!(action("old"), Some(Action::RemoveNotAlive));
    assert_eq!(action("new"), Some(Action::Keep));
    assert_eq!(action("new-foreign"), Some(Action::Keep));
    assert_eq!(w.ids(), ["new", "new-foreign"]);
}
