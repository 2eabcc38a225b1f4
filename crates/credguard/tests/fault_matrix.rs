//! The fault matrix: create and release are driven through every HCS call they make, with
//! every kind of fault, and after each run:
//! - an error names the container id and the step;
//! - HCS lists no instance and no HvSocket entry that no live handle owns;
//! - the journal has no dangling record.
//!
//! The outcomes form the table in `docs/RELIABILITY.md`, which this test generates: it
//! fails when the committed table differs from what it observed, and rewrites it when run
//! with `CREDGUARD_BLESS=1`.

mod common;

use common::chain_line;
use common::{CS1, World};
use credguard::hcs::hresult::HResult;
use credguard::lifecycle::CcgError;
use credguard::{CcgResource, CreateRequest, Isolation};
use credguard_emulator::{Api, Fault, FaultAction};

const ID: &str = "matrix-container";
const UVM: &str = "matrix-uvm";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Create,
    Release,
}

#[derive(Debug, Clone, Copy)]
struct Call {
    name: &'static str,
    phase: Phase,
    api: Api,
    operation: Option<&'static str>,
    skip: u32,
}

const CALLS: &[Call] = &[
    Call {
        name: "existence check (query)",
        phase: Phase::Create,
        api: Api::GetServiceProperties,
        operation: None,
        skip: 0,
    },
    Call {
        name: "AddInstance",
        phase: Phase::Create,
        api: Api::ModifyServiceSettings,
        operation: Some("AddInstance"),
        skip: 0,
    },
    Call {
        name: "query after AddInstance",
        phase: Phase::Create,
        api: Api::GetServiceProperties,
        operation: None,
        skip: 1,
    },
    Call {
        name: "HvSocket hot-add",
        phase: Phase::Create,
        api: Api::ModifyComputeSystem,
        operation: Some("Update"),
        skip: 0,
    },
    Call {
        name: "HvSocket removal",
        phase: Phase::Release,
        api: Api::ModifyComputeSystem,
        operation: Some("Remove"),
        skip: 0,
    },
    Call {
        name: "RemoveInstance",
        phase: Phase::Release,
        api: Api::ModifyServiceSettings,
        operation: Some("RemoveInstance"),
        skip: 0,
    },
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    ErrorWithDocument,
    ErrorWithoutDocument,
    AppliedThenFailed,
    MalformedAnswer,
    EmptyAnswer,
    ZeroProperties,
    TwoProperties,
    NotListed,
    StateMissing,
    HvSocketConfigMissing,
    Delayed,
}

const KINDS: &[Kind] = &[
    Kind::ErrorWithDocument,
    Kind::ErrorWithoutDocument,
    Kind::AppliedThenFailed,
    Kind::MalformedAnswer,
    Kind::EmptyAnswer,
    Kind::ZeroProperties,
    Kind::TwoProperties,
    Kind::NotListed,
    Kind::StateMissing,
    Kind::HvSocketConfigMissing,
    Kind::Delayed,
];

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::ErrorWithDocument => "error + ResultError",
            Kind::ErrorWithoutDocument => "error, no document",
            Kind::AppliedThenFailed => "applied, then failed",
            Kind::MalformedAnswer => "malformed answer",
            Kind::EmptyAnswer => "empty answer",
            Kind::ZeroProperties => "zero properties",
            Kind::TwoProperties => "two properties",
            Kind::NotListed => "instance not listed",
            Kind::StateMissing => "state missing",
            Kind::HvSocketConfigMissing => "HvSocketConfig missing",
            Kind::Delayed => "delayed 20 ms",
        }
    }

    fn fault(self, call: &Call) -> Fault {
        let respond = |text: &str| FaultAction::Respond {
            text: text.to_owned(),
        };
        let action = match self {
            Kind::ErrorWithDocument => FaultAction::Fail {
                hresult: HResult::HCS_E_ACCESS_DENIED,
                result: Some(r#"{"Error":-2143878885,"ErrorMessage":"Access is denied.","ErrorEvents":[{"Message":"injected by the fault matrix"}]}"#.into()),
            },
            Kind::ErrorWithoutDocument => FaultAction::Fail { hresult: HResult::E_FAIL, result: None },
            Kind::AppliedThenFailed => FaultAction::ApplyThenFail { hresult: HResult::HCS_E_OPERATION_TIMEOUT, result: None },
            Kind::MalformedAnswer => respond(r#"{"Properties":[{"Instances":[{"Id":"#),
            Kind::EmptyAnswer => respond(""),
            Kind::ZeroProperties => respond(r#"{"Properties":[]}"#),
            Kind::TwoProperties => respond(r#"{"Properties":[{"Instances":[]},{"Instances":[]}]}"#),
            Kind::NotListed => respond(r#"{"Properties":[{"Instances":[{"Id":"someone-else","CredentialGuard":{"Cookie":"01"}}]}]}"#),
            Kind::StateMissing => respond(&format!(r#"{{"Properties":[{{"Instances":[{{"Id":"{ID}"}}]}}]}}"#)),
            Kind::HvSocketConfigMissing => respond(&format!(
                r#"{{"Properties":[{{"Instances":[{{"Id":"{ID}","CredentialGuard":{{"Cookie":"01","RpcEndpoint":"e","Transport":"HvSocket"}}}}]}}]}}"#
            )),
            Kind::Delayed => FaultAction::None,
        };
        let mut fault = Fault::new(call.api, action).skip(call.skip);
        fault.operation = call.operation.map(str::to_owned);
        if matches!(self, Kind::Delayed) {
            fault = fault.delay_ms(20);
        }
        fault
    }
}

impl World {
    /// [`World::new`] with the utility VM.
    fn with_uvm() -> Self {
        let w = World::new();
        w.emu.create_uvm(UVM).unwrap();
        w
    }

    fn create(&self) -> Result<CcgResource, CcgError> {
        self.client
            .create_request(&CreateRequest::new(ID, CS1, Isolation::HyperV).with_utility_vm(UVM))
            .map(|(_, h)| h)
    }

    /// Nothing on HCS and in the journal beyond what `live` (a handle still held) owns.
    fn assert_clean(&self, live: bool, what: &str) {
        let instances = self.emu.instances().unwrap();
        let entries = self.emu.hvsocket_entries().unwrap();
        let records = self.journal.records().unwrap();
        let n = usize::from(live);
        assert_eq!(instances.len(), n, "{what}: instances {instances:?}");
        assert_eq!(entries.len(), n, "{what}: HvSocket entries {entries:?}");
        assert_eq!(records.len(), n, "{what}: journal records {records:?}");
    }
}

fn assert_names_id_and_step(err: &CcgError, call: &Call, what: &str) {
    let line = chain_line(err);
    assert!(
        line.contains(ID),
        "{what}: the error does not name the container: {line}"
    );
    let steps = [
        "checking for an existing instance",
        "AddInstance",
        "querying the instance after AddInstance",
        "HvSocket service-table entry",
        "RemoveInstance",
    ];
    assert!(
        steps.iter().any(|s| line.contains(s)),
        "{what}: the error does not name the step: {line}"
    );
    let _ = call;
}

/// Runs one cell and returns its outcome for the table.
fn run(call: &Call, kind: Kind) -> String {
    let what = format!("{} / {}", call.name, kind.title());
    let w = World::with_uvm();
    match call.phase {
        Phase::Create => {
            w.emu.inject(kind.fault(call)).unwrap();
            let result = w.create();
            w.emu.clear_faults().unwrap();
            match result {
                Ok(mut h) => {
                    w.assert_clean(true, &what);
                    h.release().unwrap();
                    w.assert_clean(false, &what);
                    "created".to_owned()
                }
                Err(e) => {
                    assert_names_id_and_step(&e, call, &what);
                    w.assert_clean(false, &what);
                    match e {
                        CcgError::RolledBack { .. } => "fails, rolled back".to_owned(),
                        CcgError::AlreadyExists { .. } => "refused, nothing sent".to_owned(),
                        CcgError::RollbackFailed { .. } => {
                            unreachable!("{what}: one fault cannot fail the rollback too")
                        }
                        _ => "fails, nothing created".to_owned(),
                    }
                }
            }
        }
        Phase::Release => {
            let mut h = w.create().unwrap();
            w.emu.inject(kind.fault(call)).unwrap();
            let result = h.release();
            w.emu.clear_faults().unwrap();
            match result {
                Ok(()) => {
                    w.assert_clean(false, &what);
                    "released".to_owned()
                }
                Err(e @ CcgError::HvSocketEntryLeft { .. }) => {
                    // The instance went all the same; the entry waits in the journal, and
                    // reconcile removes it.
                    assert_names_id_and_step(&e, call, &what);
                    assert!(h.is_released(), "{what}");
                    assert!(w.emu.instances().unwrap().is_empty(), "{what}");
                    let done = w
                        .client
                        .reconcile(&credguard::ReconcileOptions::default())
                        .unwrap();
                    assert!(done.iter().all(|d| d.result.is_ok()), "{what}: {done:?}");
                    w.assert_clean(false, &what);
                    "instance removed; entry left to reconcile".to_owned()
                }
                Err(e) => {
                    assert_names_id_and_step(&e, call, &what);
                    assert!(!h.is_released(), "{what}");
                    // The live handle still owns the instance and its entry; its record
                    // says `releasing`, and a retry finishes.
                    assert_eq!(w.emu.instances().unwrap().len(), 1, "{what}");
                    h.release().unwrap();
                    w.assert_clean(false, &what);
                    "fails, handle kept; retry releases".to_owned()
                }
            }
        }
    }
}

fn table() -> String {
    let mut out = String::new();
    out.push_str("| phase | HCS call |");
    for k in KINDS {
        out.push_str(&format!(" {} |", k.title()));
    }
    out.push('\n');
    out.push_str("| --- | --- |");
    out.push_str(&" --- |".repeat(KINDS.len()));
    out.push('\n');
    for call in CALLS {
        let phase = match call.phase {
            Phase::Create => "create",
            Phase::Release => "release",
        };
        out.push_str(&format!("| {phase} | {} |", call.name));
        for &kind in KINDS {
            out.push_str(&format!(" {} |", run(call, kind)));
        }
        out.push('\n');
    }
    out
}

const START: &str = "<!-- fault-matrix:start (generated by crates/credguard/tests/fault_matrix.rs; do not edit) -->";
const END: &str = "<!-- fault-matrix:end -->";

#[test]
fn fault_matrix() {
    let table = table();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/RELIABILITY.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (Some(a), Some(b)) = (doc.find(START), doc.find(END)) else {
        panic!("{} lacks the fault-matrix markers", path.display());
    };
    let current = &doc[a + START.len()..b];
    let wanted = format!("\n{table}");
    if current != wanted {
        if std::env::var_os("CREDGUARD_BLESS").is_some() {
            let new = format!("{}{START}{wanted}{}", &doc[..a], &doc[b..]);
            std::fs::write(&path, new).unwrap();
        } else {
            panic!(
                "docs/RELIABILITY.md is out of date with the fault matrix; rerun with CREDGUARD_BLESS=1.\nobserved:\n{table}"
            );
        }
    }
}
