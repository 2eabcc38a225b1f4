//! The CCG lifecycle against the emulator: the flow on the wire, refusal of duplicates,
//! rollback after every failure that follows AddInstance, and release.

mod common;

use std::sync::Arc;

use common::chain_line;
use common::{CS1, SECRET, SECRET_SPEC};
use credguard::hcs::hresult::HResult;
use credguard::lifecycle::{CcgError, Missing, Step};
use credguard::{CcgClient, ErrorKind, Isolation};
use credguard_emulator::{Api, CallRecord, Emulator, Fault, FaultAction};

fn setup() -> (Arc<Emulator>, CcgClient) {
    let emu = Arc::new(Emulator::in_memory());
    let client = CcgClient::new(emu.clone());
    (emu, client)
}

fn calls(emu: &Emulator) -> Vec<CallRecord> {
    emu.calls().unwrap()
}

/// The calls as `api[/operation]` names, for asserting the order on the wire.
fn trace(emu: &Emulator) -> Vec<String> {
    calls(emu)
        .iter()
        .map(|c| {
            let v: serde_json::Value = serde_json::from_str(&c.document).unwrap_or_default();
            match v["Settings"]["Operation"]
                .as_str()
                .or(v["RequestType"].as_str())
            {
                Some(op) => format!("{}/{op}", c.api.name()),
                None => c.api.name().to_owned(),
            }
        })
        .collect()
}

fn ids(emu: &Emulator) -> Vec<String> {
    emu.instances().unwrap().into_iter().map(|i| i.id).collect()
}

const Q: &str = "HcsGetServiceProperties";
const ADD: &str = "HcsModifyServiceSettings/AddInstance";
const RM: &str = "HcsModifyServiceSettings/RemoveInstance";

fn respond(api: Api, text: &str) -> Fault {
    Fault::new(api, FaultAction::Respond { text: text.into() })
}

#[test]
fn process_isolation_uses_lrpc_and_the_hcsshim_flow() {
    let (emu, client) = setup();
    let (inst, mut handle) = client.create("c1", CS1, Isolation::Process).unwrap();
    assert_eq!(trace(&emu), [Q, ADD, Q]);
    let add = &calls(&emu)[1].document;
    let golden_like =
        credguard::wire::to_wire(&credguard::wire::ModificationRequest::add_instance(
            "c1",
            CS1,
            credguard::wire::Transport::Lrpc,
        ))
        .unwrap();
    assert_eq!(add, &golden_like);
    let cg = inst.credential_guard.unwrap();
    assert_eq!(cg.transport.as_str(), "LRPC");
    assert_eq!(cg.cookie.len(), 48);
    assert_eq!(cg.credential_spec, CS1);
    assert!(inst.hv_socket_config.is_none());
    assert_eq!(handle.container_id(), "c1");
    handle.release().unwrap();
    assert!(ids(&emu).is_empty());
    assert_eq!(trace(&emu), [Q, ADD, Q, RM]);
}

#[test]
fn hyperv_isolation_uses_hvsocket_and_returns_its_config() {
    let (emu, client) = setup();
    let (inst, mut handle) = client.create("c2", CS1, Isolation::HyperV).unwrap();
    assert!(
        calls(&emu)[1]
            .document
            .contains(r#""Transport":"HvSocket""#)
    );
    let hv = inst.hv_socket_config.unwrap();
    assert!(!hv.service_id.is_empty());
    assert!(hv.service_config.unwrap().allow_wildcard_binds);
    handle.release().unwrap();
}

#[test]
fn an_existing_id_is_refused_and_nothing_is_sent() {
    let (emu, client) = setup();
    let (_, mut first) = client.create("dup", CS1, Isolation::Process).unwrap();
    emu.clear_calls().unwrap();
    let err = client.create("dup", CS1, Isolation::Process).unwrap_err();
    assert!(matches!(err, CcgError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("already exists") && err.to_string().contains("dup"));
    assert_eq!(trace(&emu), [Q], "only the check is sent");
    assert_eq!(ids(&emu), ["dup"], "the existing instance is untouched");
    first.release().unwrap();
}

#[test]
fn bad_input_sends_nothing() {
    let (emu, client) = setup();
    let long = "x".repeat(257);
    for id in ["", long.as_str(), "a\nb", "tab\there"] {
        let err = client.create(id, CS1, Isolation::Process).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{id:?}");
    }
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(64 * 1024));
    for spec in ["", "not json", "[]", "42", big.as_str()] {
        let err = client.create("ok", spec, Isolation::Process).unwrap_err();
        assert!(
            matches!(err, CcgError::InvalidCredentialSpec { .. }),
            "{err:?}"
        );
    }
    assert!(calls(&emu).is_empty(), "nothing reached HCS");
}

#[test]
fn failed_add_instance_that_was_not_applied_is_reported() {
    let (emu, client) = setup();
    emu.inject(
        Fault::fail(Api::ModifyServiceSettings, HResult::HCS_E_ACCESS_DENIED).on("AddInstance"),
    )
    .unwrap();
    let err = client.create("c3", CS1, Isolation::Process).unwrap_err();
    assert!(
        matches!(
            err,
            CcgError::Hcs {
                step: Step::AddInstance,
                ..
            }
        ),
        "{err:?}"
    );
    let line = chain_line(&err);
    assert!(
        line.contains("c3") && line.contains("AddInstance") && line.contains("0x8037011B"),
        "{line}"
    );
    assert_eq!(
        trace(&emu),
        [Q, ADD, Q],
        "a query checks whether it was applied anyway"
    );
    assert!(ids(&emu).is_empty());
}

#[test]
fn add_instance_applied_then_failed_is_rolled_back() {
    let (emu, client) = setup();
    emu.inject(
        Fault::new(
            Api::ModifyServiceSettings,
            FaultAction::ApplyThenFail {
                hresult: HResult::HCS_E_OPERATION_TIMEOUT,
                result: Some(r#"{"Error":-2143878888,"ErrorMessage":"timed out"}"#.into()),
            },
        )
        .on("AddInstance"),
    )
    .unwrap();
    let err = client.create("c4", CS1, Isolation::Process).unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    let line = chain_line(&err);
    assert!(
        line.contains("c4") && line.contains("AddInstance") && line.contains("timed out"),
        "{line}"
    );
    assert_eq!(trace(&emu), [Q, ADD, Q, RM]);
    assert!(ids(&emu).is_empty());
    assert_eq!(
        err.hcs_error().unwrap().hresult,
        HResult::HCS_E_OPERATION_TIMEOUT
    );
}

#[test]
fn failed_add_with_a_failing_check_is_removed_blindly() {
    let (emu, client) = setup();
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
    // The query after the failed AddInstance fails too.
    emu.inject(Fault::fail(Api::GetServiceProperties, HResult::E_FAIL).skip(1))
        .unwrap();
    let err = client.create("c5", CS1, Isolation::Process).unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    assert!(ids(&emu).is_empty());
}

/// Each failure after a successful AddInstance, and the error it must produce.
/// A case: its name, the isolation, the fault, and a check of the rolled-back cause.
type Case = (&'static str, Isolation, Fault, fn(&CcgError) -> bool);

fn after_add_faults() -> Vec<Case> {
    let query = Api::GetServiceProperties;
    vec![
        ("query error", Isolation::Process, Fault::fail(query, HResult::E_UNEXPECTED).skip(1), |e| {
            matches!(e, CcgError::Hcs { step: Step::Query, .. })
        }),
        ("zero properties", Isolation::Process, respond(query, r#"{"Properties":[]}"#).skip(1), |e| {
            matches!(e, CcgError::BadAnswer { step: Step::Query, .. })
        }),
        (
            "two properties",
            Isolation::Process,
            respond(query, r#"{"Properties":[{"Instances":[]},{"Instances":[]}]}"#).skip(1),
            |e| matches!(e, CcgError::BadAnswer { step: Step::Query, .. }),
        ),
        ("undecodable answer", Isolation::Process, respond(query, "{\"Properties\":[").skip(1), |e| {
            matches!(e, CcgError::BadAnswer { step: Step::Query, .. })
        }),
        ("empty answer", Isolation::Process, respond(query, "").skip(1), |e| {
            matches!(e, CcgError::BadAnswer { step: Step::Query, .. })
        }),
        ("id not listed", Isolation::Process, respond(query, r#"{"Properties":[{"Instances":[]}]}"#).skip(1), |e| {
            matches!(e, CcgError::NotListed { .. })
        }),
        (
            "CredentialGuard missing",
            Isolation::Process,
            respond(query, r#"{"Properties":[{"Instances":[{"Id":"victim"}]}]}"#).skip(1),
            |e| matches!(e, CcgError::Incomplete { missing: Missing::CredentialGuard, .. }),
        ),
        (
            "HvSocketConfig missing",
            Isolation::HyperV,
            respond(query, r#"{"Properties":[{"Instances":[{"Id":"victim","CredentialGuard":{"Cookie":"01"}}]}]}"#).skip(1),
            |e| matches!(e, CcgError::Incomplete { missing: Missing::HvSocketConfig, .. }),
        ),
        (
            "ServiceConfig missing",
            Isolation::HyperV,
            respond(
                query,
                r#"{"Properties":[{"Instances":[{"Id":"victim","CredentialGuard":{"Cookie":"01"},"HvSocketConfig":{"ServiceId":"s"}}]}]}"#,
            )
            .skip(1),
            |e| matches!(e, CcgError::Incomplete { missing: Missing::ServiceConfig, .. }),
        ),
        (
            "ServiceId missing",
            Isolation::HyperV,
            respond(
                query,
                r#"{"Properties":[{"Instances":[{"Id":"victim","CredentialGuard":{"Cookie":"01"},"HvSocketConfig":{"ServiceConfig":{}}}]}]}"#,
            )
            .skip(1),
            |e| matches!(e, CcgError::Incomplete { missing: Missing::ServiceId, .. }),
        ),
    ]
}

#[test]
fn every_failure_after_add_instance_rolls_back() {
    for (name, isolation, fault, expected) in after_add_faults() {
        let (emu, client) = setup();
        emu.inject(fault).unwrap();
        let err = client.create("victim", CS1, isolation).unwrap_err();
        let CcgError::RolledBack { cause, .. } = &err else {
            panic!("{name}: expected a rollback, got {err:?}");
        };
        assert!(expected(cause), "{name}: {cause:?}");
        assert_eq!(err.kind(), ErrorKind::Hcs, "{name}");
        let line = chain_line(&err);
        assert!(line.contains("victim"), "{name}: {line}");
        assert!(ids(&emu).is_empty(), "{name}: the instance was left behind");
        assert!(
            trace(&emu).contains(&RM.to_owned()),
            "{name}: no RemoveInstance sent"
        );
    }
}

#[test]
fn a_failed_rollback_says_so_and_keeps_both_causes() {
    let (emu, client) = setup();
    emu.inject(respond(Api::GetServiceProperties, "garbage").skip(1))
        .unwrap();
    emu.inject(
        Fault::fail(Api::ModifyServiceSettings, HResult::HCS_E_ACCESS_DENIED).on("RemoveInstance"),
    )
    .unwrap();
    let err = client.create("stuck", CS1, Isolation::Process).unwrap_err();
    let CcgError::RollbackFailed {
        rollback, cause, ..
    } = &err
    else {
        panic!("expected RollbackFailed, got {err:?}");
    };
    assert!(matches!(**cause, CcgError::BadAnswer { .. }), "{cause:?}");
    // The rollback's cause is typed: the RemoveInstance HCS refused, with its HRESULT.
    assert!(
        matches!(
            **rollback,
            CcgError::Hcs {
                step: Step::RemoveInstance,
                ..
            }
        ),
        "{rollback:?}"
    );
    assert!(chain_line(&**rollback).contains("0x8037011B"), "{rollback}");
    let line = chain_line(&err);
    assert!(
        line.contains("stuck") && line.contains("left behind"),
        "{line}"
    );
    assert!(line.contains("not a valid ServiceProperties"), "{line}");
    assert_eq!(ids(&emu), ["stuck"], "the emulator really still has it");
    // The operator's clean-up works.
    assert_eq!(client.remove("stuck").unwrap(), credguard::Removal::Removed);
}

#[test]
fn release_is_idempotent() {
    let (emu, client) = setup();
    let (_, mut handle) = client.create("r1", CS1, Isolation::Process).unwrap();
    handle.release().unwrap();
    handle.release().unwrap();
    assert!(handle.is_released());
    assert_eq!(trace(&emu).iter().filter(|c| *c == RM).count(), 1);
}

#[test]
fn release_counts_an_instance_that_is_gone_as_released() {
    let (emu, client) = setup();
    let (_, mut handle) = client.create("r2", CS1, Isolation::Process).unwrap();
    emu.inject(
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
    handle.release().unwrap();
    assert!(ids(&emu).is_empty());
    // Gone behind our back (a vmcompute.exe restart) is released too.
    let (_, mut h2) = client.create("r3", CS1, Isolation::Process).unwrap();
    emu.reset().unwrap();
    h2.release().unwrap();
}

#[test]
fn release_that_fails_keeps_the_handle_for_a_retry() {
    let (emu, client) = setup();
    let (_, mut handle) = client.create("r4", CS1, Isolation::Process).unwrap();
    emu.inject(
        Fault::fail(Api::ModifyServiceSettings, HResult::HCS_E_ACCESS_DENIED).on("RemoveInstance"),
    )
    .unwrap();
    let err = handle.release().unwrap_err();
    assert!(
        matches!(
            err,
            CcgError::Hcs {
                step: Step::RemoveInstance,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(chain_line(&err).contains("r4"));
    assert!(!handle.is_released());
    assert_eq!(ids(&emu), ["r4"]);
    handle.release().unwrap();
    assert!(ids(&emu).is_empty());
}

#[test]
fn remove_reports_an_absent_id_without_sending_remove() {
    let (emu, client) = setup();
    assert_eq!(
        client.remove("nobody").unwrap(),
        credguard::Removal::AlreadyAbsent
    );
    assert_eq!(trace(&emu), [Q]);
}

#[test]
fn list_and_get() {
    let (_emu, client) = setup();
    let (_, mut a) = client.create("a", CS1, Isolation::Process).unwrap();
    let (_, mut b) = client.create("b", CS1, Isolation::HyperV).unwrap();
    let listed: Vec<_> = client.list().unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(listed, ["a", "b"]);
    assert!(client.get("b").unwrap().unwrap().hv_socket_config.is_some());
    assert!(client.get("c").unwrap().is_none());
    a.release().unwrap();
    b.release().unwrap();
}

#[test]
fn emulator_call_log_redacts_plugin_input() {
    let (emu, client) = setup();
    let (_, mut h) = client
        .create("s1", SECRET_SPEC, Isolation::Process)
        .unwrap();
    h.release().unwrap();
    let log: Vec<String> = calls(&emu)
        .iter()
        .map(|c| c.to_json(false).to_string())
        .collect();
    assert!(log.iter().any(|l| l.contains("<redacted>")));
    assert!(log.iter().all(|l| !l.contains(SECRET)), "{log:?}");
    assert!(
        calls(&emu)
            .iter()
            .any(|c| c.to_json(true).to_string().contains(SECRET))
    );
}
