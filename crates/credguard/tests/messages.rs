//! The library's messages never tell the reader to run a `credguard` command (a containerd
//! shim or any other caller has no such command): they say what to do in words, and
//! `CcgError::remedy` says it as a value a caller maps to its own action or command.

mod common;

use std::path::Path;
use std::sync::Arc;

use credguard::hcs::hresult::HResult;
use credguard::lifecycle::{CcgError, Remedy};
use credguard::{CcgClient, CreateRequest, Isolation, Journal};
use credguard_emulator::{Api, Emulator, Fault, FaultAction};

use common::chain_line;

const CS1: &str = include_str!("fixtures/cs1.json");

/// Fails when a message names a credguard command.
fn assert_no_command(err: &CcgError) {
    let line = chain_line(err);
    assert!(!line.contains("credguard "), "{line}");
    assert!(!line.contains("`credguard"), "{line}");
}

struct World {
    emu: Arc<Emulator>,
    client: CcgClient,
    journal: Arc<Journal>,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let emu = Arc::new(Emulator::in_memory());
    let journal = Arc::new(Journal::open(&dir.path().join("journal")).unwrap());
    let client = CcgClient::new(emu.clone()).with_journal(journal.clone());
    World {
        emu,
        client,
        journal,
        _dir: dir,
    }
}

#[test]
fn an_existing_instance_says_remove_it_first() {
    let w = world();
    let (_, h) = w.client.create("dup", CS1, Isolation::Process).unwrap();
    h.detach();
    let err = w.client.create("dup", CS1, Isolation::Process).unwrap_err();
    assert_no_command(&err);
    assert!(
        err.to_string().contains("remove that instance first"),
        "{err}"
    );
    assert_eq!(err.remedy(), Some(Remedy::RemoveInstance));
}

#[test]
fn a_failed_rollback_says_remove_or_reconcile_and_keeps_its_cause_typed() {
    let w = world();
    w.emu
        .inject(
            Fault::new(
                Api::GetServiceProperties,
                FaultAction::Respond {
                    text: "garbage".into(),
                },
            )
            .skip(1),
        )
        .unwrap();
    w.emu
        .inject(
            Fault::fail(Api::ModifyServiceSettings, HResult::HCS_E_ACCESS_DENIED)
                .on("RemoveInstance"),
        )
        .unwrap();
    let err = w
        .client
        .create("stuck", CS1, Isolation::Process)
        .unwrap_err();
    assert_no_command(&err);
    assert_eq!(err.remedy(), Some(Remedy::RemoveInstanceOrReconcile));
    let CcgError::RollbackFailed { rollback, .. } = &err else {
        panic!("expected RollbackFailed, got {err:?}");
    };
    // The rollback's error is a CcgError with its own chain, shown on one line in the
    // message; the error's source stays the create's cause.
    assert_eq!(
        rollback.hcs_error().unwrap().hresult,
        HResult::HCS_E_ACCESS_DENIED
    );
    assert!(err.to_string().contains(&chain_line(&**rollback)), "{err}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("unusable answer"), "{source}");
}

#[test]
fn a_left_hvsocket_entry_says_a_reconcile_removes_it() {
    let w = world();
    w.emu.create_uvm("uvm").unwrap();
    let (_, mut h) = w
        .client
        .create_request(&CreateRequest::new("hv", CS1, Isolation::HyperV).with_utility_vm("uvm"))
        .unwrap();
    w.emu
        .inject(
            Fault::fail(Api::ModifyComputeSystem, HResult::HCS_E_ACCESS_DENIED)
                .on("Remove")
                .times(3),
        )
        .unwrap();
    let err = h.release().unwrap_err();
    assert_no_command(&err);
    assert!(err.instance_removed());
    assert!(err.entry_left().is_some());
    assert_eq!(err.remedy(), Some(Remedy::Reconcile));
    assert!(err.to_string().contains("a reconcile removes it"), "{err}");

    // A new create of the id while the VM still refuses: refused, pending.
    let err = w
        .client
        .create_request(&CreateRequest::new("hv", CS1, Isolation::HyperV).with_utility_vm("uvm"))
        .unwrap_err();
    assert_no_command(&err);
    assert!(!err.instance_removed());
    assert_eq!(err.remedy(), Some(Remedy::Reconcile));
    // And a removal of the id, which has no instance any more.
    let err = w.client.remove("hv").unwrap_err();
    assert_no_command(&err);
    assert!(!err.instance_removed());
    assert!(err.entry_left().is_some());
}

#[test]
fn a_busy_record_says_wait_or_reconcile() {
    let w = world();
    let _lock = w.journal.lock("busy", false).unwrap();
    let err = w
        .client
        .create("busy", CS1, Isolation::Process)
        .unwrap_err();
    assert_no_command(&err);
    assert_eq!(err.remedy(), Some(Remedy::WaitOrReconcile));
}

/// Every string literal in the library's sources (comments and rustdoc aside): none names
/// a credguard command, so no message, log line or hint can.
#[test]
fn no_library_message_names_a_credguard_command() {
    fn scan(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if ["`credguard ", "run credguard "]
                    .iter()
                    .any(|w| code.contains(w))
                {
                    found.push(format!("{}:{}: {code}", path.display(), n + 1));
                }
            }
        }
    }
    let mut found = Vec::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    scan(&src, &mut found);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
