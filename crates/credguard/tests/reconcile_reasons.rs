//! What `reconcile` says left a record `creating` or `releasing`: a crash only when nothing
//! else is known; a failed rollback or a failed release when the process that wrote the
//! record saw its RemoveInstance fail and ended normally.

use std::sync::Arc;

use credguard::hcs::hresult::HResult;
use credguard::journal::{FailedOperation, Journal, RecordState};
use credguard::lifecycle::CcgError;
use credguard::lifecycle::reconcile::{Action, PlanItem};
use credguard::{CcgClient, Isolation, ReconcileOptions};
use credguard_emulator::{Api, Emulator, Fault, FaultAction};

const CS1: &str = include_str!("fixtures/cs1.json");

struct Setup {
    emu: Arc<Emulator>,
    journal: Arc<Journal>,
    client: CcgClient,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let emu = Arc::new(Emulator::in_memory());
    let journal = Arc::new(Journal::open(&dir.path().join("journal")).unwrap());
    let client = CcgClient::new(emu.clone()).with_journal(journal.clone());
    Setup {
        emu,
        journal,
        client,
        _dir: dir,
    }
}

impl Setup {
    fn plan_item(&self, id: &str) -> PlanItem {
        self.client
            .plan_reconcile(&ReconcileOptions::default())
            .unwrap()
            .into_iter()
            .find(|p| p.container_id == id)
            .unwrap()
    }

    fn fail_remove_instance(&self) {
        self.emu
            .inject(Fault::fail(Api::ModifyServiceSettings, HResult::E_FAIL).on("RemoveInstance"))
            .unwrap();
    }
}

#[test]
fn a_failed_rollback_is_not_called_a_crash() {
    let s = setup();
    // The query after AddInstance answers garbage: the create rolls back, and its
    // RemoveInstance fails.
    s.emu
        .inject(
            Fault::new(
                Api::GetServiceProperties,
                FaultAction::Respond { text: "{".into() },
            )
            .skip(1),
        )
        .unwrap();
    s.fail_remove_instance();
    assert!(matches!(
        s.client.create("rb", CS1, Isolation::Process),
        Err(CcgError::RollbackFailed { .. })
    ));
    let record = s.journal.get("rb").unwrap().unwrap();
    assert_eq!(record.state(), RecordState::Creating);
    assert_eq!(record.failed(), Some(FailedOperation::Rollback));

    let item = s.plan_item("rb");
    assert_eq!(item.action, Action::RemoveInterrupted);
    assert!(
        item.reason.contains("a failed rollback left it creating"),
        "{}",
        item.reason
    );
    assert!(!item.reason.contains("a crash"), "{}", item.reason);
}

#[test]
fn a_failed_release_is_not_called_a_crash() {
    let s = setup();
    let (_, mut handle) = s.client.create("rel", CS1, Isolation::Process).unwrap();
    s.fail_remove_instance();
    assert!(handle.release().is_err());
    let record = s.journal.get("rel").unwrap().unwrap();
    assert_eq!(record.state(), RecordState::Releasing);
    assert_eq!(record.failed(), Some(FailedOperation::Release));

    let item = s.plan_item("rel");
    assert_eq!(item.action, Action::RemoveInterrupted);
    assert!(
        item.reason.contains("a failed release left it releasing"),
        "{}",
        item.reason
    );
    assert!(!item.reason.contains("a crash"), "{}", item.reason);

    // The instance goes away without the record's process (a vmcompute.exe restart): the
    // stale record is still a failed release's.
    s.emu.reset().unwrap();
    let item = s.plan_item("rel");
    assert_eq!(item.action, Action::DropStaleRecord);
    assert!(
        item.reason.contains("a failed release left it releasing"),
        "{}",
        item.reason
    );
}

#[test]
fn a_record_left_transient_without_a_noted_failure_is_a_crash() {
    let s = setup();
    let (_, handle) = s.client.create("cr", CS1, Isolation::Process).unwrap();
    handle.detach();
    // What a process that died between marking the record and removing the instance leaves.
    let mut record = s.journal.get("cr").unwrap().unwrap();
    record.fake_state(RecordState::Releasing);
    s.journal.write(&record).unwrap();
    let item = s.plan_item("cr");
    assert_eq!(item.action, Action::RemoveInterrupted);
    assert!(
        item.reason
            .contains("a crash interrupted it while releasing"),
        "{}",
        item.reason
    );

    // A release that starts again clears an earlier failure: if it is cut short, that
    // was a crash, not the old failure.
    record.fake_failed(Some(FailedOperation::Rollback));
    record.fake_state(RecordState::Creating);
    s.journal.write(&record).unwrap();
    assert!(s.plan_item("cr").reason.contains("a failed rollback"));
    // Its release fails at the instance's removal (no crash): the note is the release's.
    s.fail_remove_instance();
    assert!(s.client.remove("cr").is_err());
    let record = s.journal.get("cr").unwrap().unwrap();
    assert_eq!(record.failed(), Some(FailedOperation::Release));
}

#[test]
fn records_written_before_the_note_existed_still_read() {
    let s = setup();
    let (_, handle) = s.client.create("old", CS1, Isolation::Process).unwrap();
    handle.detach();
    let record = s.journal.get("old").unwrap().unwrap();
    let mut json = serde_json::to_value(&record).unwrap();
    assert!(json.get("failed").is_none(), "not written while unset");
    json["state"] = "creating".into();
    let back: credguard::journal::Record = serde_json::from_value(json).unwrap();
    assert_eq!(back.failed(), None);
}
