//! The backend against the stand-in computecore.dll (`crates/computecore-stub`), under Wine.
//!
//! Built only with the `stub-tests` feature, which `scripts/windows-tests.sh` turns on: it copies
//! the stand-in next to the test executable and points `CREDGUARD_STUB_STATE_DIR` at the
//! emulator state that the DLL and these tests share. Each test takes [`Stub`], which
//! serialises the tests (the state is one per process), resets the emulator, and refuses
//! to go on unless the DLL loaded is the stand-in beside the executable: these tests must
//! never send their faults' worth of requests to a real HCS.
//!
//! Types of the emulator's API (`HResult` in a fault) come from the `credguard` rlib the
//! emulator links, not from this test build of the crate, so they are made with `parse`.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use credguard_emulator::{Api, Emulator, Fault, FaultAction};

use super::*;
use crate::credspec::registry::{CREDENTIAL_SPECS_KEY, read_registry_credential_spec};
use crate::hcs::ErrorDocument;
use crate::hcs::watchdog::tests::CapturedLog;
use crate::lifecycle::CcgError;
use crate::lifecycle::{CcgClient, CreateRequest};
use crate::wire::{ModificationRequest, ResultError, Transport, to_wire};
use crate::{CCG_QUERY, Isolation};
use credguard_winapi::computecore::local_frees_on_this_thread;

/// A credential spec with text in several scripts, to see it cross UTF-16 both ways.
const SPEC: &str = r#"{"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"Sid":"S-1-5-21-702590844-1001920913-2680819671","MachineAccountName":"wébapp01","Guid":"56d9b66c-d746-4f87-bd26-26760cfdca2e","DnsTreeName":"contoso.com","DnsName":"ドメイン.contoso.com","NetBiosName":"CONTOSO"},"ActiveDirectoryConfig":{"GroupManagedServiceAccounts":[{"Name":"wébapp01 🚀","Scope":"contoso.com"}]}}"#;

static SERIAL: Mutex<()> = Mutex::new(());

/// The stand-in's emulator, reset, held for one test.
struct Stub {
    emulator: Emulator,
    _serial: MutexGuard<'static, ()>,
}

fn stub() -> Stub {
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = std::env::var_os("CREDGUARD_STUB_STATE_DIR").expect(
        "CREDGUARD_STUB_STATE_DIR must name the stand-in computecore.dll's emulator state \
         (scripts/windows-tests.sh sets it)",
    );
    let loaded = ComputeCore::new()
        .load()
        .expect("the stand-in computecore.dll loads")
        .to_path_buf();
    let exe = std::env::current_exe().unwrap();
    assert_eq!(
        loaded.parent().map(normalise),
        exe.parent().map(normalise),
        "{} was loaded, not the stand-in next to {}: these tests must not run against a real HCS",
        loaded.display(),
        exe.display()
    );
    let emulator = Emulator::persistent(Path::new(&dir)).expect("the emulator state opens");
    emulator.reset().unwrap();
    emulator.clear_faults().unwrap();
    emulator.clear_calls().unwrap();
    Stub {
        emulator,
        _serial: serial,
    }
}

fn normalise(p: &Path) -> String {
    p.to_string_lossy().to_lowercase().replace('/', "\\")
}

fn add_instance(id: &str, spec: &str) -> String {
    to_wire(&ModificationRequest::add_instance(
        id,
        spec,
        Transport::Lrpc,
    ))
    .unwrap()
}

fn result_error_text() -> String {
    r#"{"Error":-2143354597,"ErrorMessage":"Zugriff verweigert: Container « ü » 拒否","ErrorEvents":[{"Message":"Première","Provider":"17103e3f-3c6e-4677-bb17-3b267eb5be57","EventId":11,"Source":"vmcompute"},{"Message":"second","StackTrace":"at ccg"}]}"#.to_owned()
}

#[test]
fn service_documents_round_trip_non_ascii_text() {
    let stub = stub();
    let hcs = ComputeCore::new();
    let doc = add_instance("wine-utf16", SPEC);
    let before = local_frees_on_this_thread();
    hcs.modify_service_settings(&doc).unwrap();
    assert_eq!(
        local_frees_on_this_thread(),
        before,
        "AddInstance succeeded with a NULL result: nothing to free"
    );
    // The DLL received exactly the text sent.
    let calls = stub.emulator.calls().unwrap();
    assert_eq!(calls.last().unwrap().document, doc);

    let answer = hcs.get_service_properties(CCG_QUERY).unwrap();
    assert_eq!(
        local_frees_on_this_thread(),
        before + 1,
        "the answer was freed"
    );
    let instance = crate::wire::find_instance(&answer, "wine-utf16")
        .unwrap()
        .expect("listed");
    let state = instance.credential_guard.expect("CredentialGuard state");
    assert_eq!(state.credential_spec, SPEC);
    assert!(answer.contains("ドメイン.contoso.com") && answer.contains("🚀"));
}

#[test]
fn a_failure_carries_the_result_error_document() {
    let stub = stub();
    stub.emulator
        .inject(Fault::new(
            Api::ModifyServiceSettings,
            FaultAction::Fail {
                hresult: "HCS_E_ACCESS_DENIED".parse().unwrap(),
                result: Some(result_error_text()),
            },
        ))
        .unwrap();
    let before = local_frees_on_this_thread();
    let err = ComputeCore::new()
        .modify_service_settings(&add_instance("wine-denied", SPEC))
        .unwrap_err();
    assert_eq!(
        local_frees_on_this_thread(),
        before + 1,
        "the document was freed"
    );
    assert_eq!(err.operation, HcsOperation::ModifyServiceSettings);
    assert_eq!(err.hresult, HResult::HCS_E_ACCESS_DENIED);
    let expected: ResultError = serde_json::from_str(&result_error_text()).unwrap();
    assert_eq!(err.result_error(), Some(&expected));
    assert_eq!(
        err.to_string(),
        "hcs::ModifyServiceSettings: Zugriff verweigert: Container « ü » 拒否 (0x8037011B HCS_E_ACCESS_DENIED)\n\
         [Event Detail: Première Provider: 17103e3f-3c6e-4677-bb17-3b267eb5be57 EventID: 11 Source: vmcompute]\n\
         [Event Detail: second Stack Trace: at ccg]"
    );
    assert!(stub.emulator.instances().unwrap().is_empty());
}

#[test]
fn a_failure_without_a_document_has_none() {
    let stub = stub();
    stub.emulator
        .inject(Fault::fail(
            Api::GetServiceProperties,
            "0x80370114".parse().unwrap(),
        ))
        .unwrap();
    let before = local_frees_on_this_thread();
    let err = ComputeCore::new()
        .get_service_properties(CCG_QUERY)
        .unwrap_err();
    assert_eq!(
        local_frees_on_this_thread(),
        before,
        "NULL: nothing to free"
    );
    assert_eq!(err.document, ErrorDocument::None);
    assert_eq!(err.hresult, HResult::HCS_E_SERVICE_NOT_AVAILABLE);
    assert_eq!(
        err.to_string(),
        "hcs::GetServiceProperties: the call failed (0x80370114 HCS_E_SERVICE_NOT_AVAILABLE)"
    );
}

#[test]
fn a_failure_with_text_that_is_no_result_error_keeps_the_text() {
    let stub = stub();
    stub.emulator
        .inject(Fault::new(
            Api::GetServiceProperties,
            FaultAction::Fail {
                hresult: "E_FAIL".parse().unwrap(),
                result: Some("vmcompute: état inattendu".to_owned()),
            },
        ))
        .unwrap();
    let before = local_frees_on_this_thread();
    let err = ComputeCore::new()
        .get_service_properties(CCG_QUERY)
        .unwrap_err();
    assert_eq!(local_frees_on_this_thread(), before + 1);
    assert_eq!(
        err.document,
        ErrorDocument::Raw("vmcompute: état inattendu".to_owned())
    );
}

#[test]
fn a_null_answer_on_success_is_an_error_not_an_empty_document() {
    let stub = stub();
    stub.emulator
        .inject(Fault::new(
            Api::GetServiceProperties,
            FaultAction::Respond {
                text: String::new(),
            },
        ))
        .unwrap();
    let before = local_frees_on_this_thread();
    let err = ComputeCore::new()
        .get_service_properties(CCG_QUERY)
        .unwrap_err();
    assert_eq!(local_frees_on_this_thread(), before);
    assert_eq!(err.operation, HcsOperation::GetServiceProperties);
    assert_eq!(
        err.to_string(),
        "hcs::GetServiceProperties: HcsGetServiceProperties reported success but returned no document (0x00000000 S_OK)"
    );
}

#[test]
fn create_and_release_through_the_dll() {
    let stub = stub();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let (instance, mut handle) = client
        .create("wine-lifecycle", SPEC, Isolation::Process)
        .unwrap();
    let state = instance.credential_guard.as_ref().unwrap();
    assert_eq!(state.transport, Transport::Lrpc);
    assert!(!state.cookie.is_empty() && !state.rpc_endpoint.is_empty());
    assert_eq!(stub.emulator.instances().unwrap().len(), 1);
    assert_eq!(client.list().unwrap().len(), 1);

    let (hv, mut hv_handle) = client
        .create("wine-lifecycle-hv", SPEC, Isolation::HyperV)
        .unwrap();
    assert!(
        hv.hv_socket_config
            .is_some_and(|c| c.service_config.is_some())
    );

    handle.release().unwrap();
    hv_handle.release().unwrap();
    assert!(stub.emulator.instances().unwrap().is_empty());
    assert_eq!(client.get("wine-lifecycle").unwrap(), None);
}

#[test]
fn a_failed_query_after_add_instance_rolls_back() {
    let stub = stub();
    // The first query (checking for an existing instance) passes; the one after
    // AddInstance fails.
    stub.emulator
        .inject(Fault::new(Api::GetServiceProperties, FaultAction::None))
        .unwrap();
    stub.emulator
        .inject(Fault::new(
            Api::GetServiceProperties,
            FaultAction::Fail {
                hresult: "0x8037011E".parse().unwrap(),
                result: Some(result_error_text()),
            },
        ))
        .unwrap();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let err = client
        .create("wine-rollback", SPEC, Isolation::Process)
        .unwrap_err();
    let CcgError::RolledBack { cause, .. } = &err else {
        panic!("expected a rollback, got {err:?}");
    };
    let CcgError::Hcs { source, .. } = cause.as_ref() else {
        panic!("expected the HCS failure as the cause, got {cause:?}");
    };
    assert_eq!(source.hresult, HResult::HCS_E_SERVICE_DISCONNECT);
    assert!(source.result_error().is_some());
    assert!(
        stub.emulator.instances().unwrap().is_empty(),
        "removed again"
    );
}

#[test]
fn an_add_instance_applied_despite_its_failure_is_rolled_back() {
    let stub = stub();
    stub.emulator
        .inject(
            Fault::new(
                Api::ModifyServiceSettings,
                FaultAction::ApplyThenFail {
                    hresult: "0x80370118".parse().unwrap(),
                    result: None,
                },
            )
            .on("AddInstance"),
        )
        .unwrap();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let err = client
        .create("wine-applied", SPEC, Isolation::Process)
        .unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    assert!(stub.emulator.instances().unwrap().is_empty());
}

#[test]
fn a_rollback_that_fails_says_the_instance_is_left() {
    let stub = stub();
    stub.emulator
        .inject(Fault::new(
            Api::GetServiceProperties,
            FaultAction::Respond {
                text: r#"{"Properties":[{"Instances":[]}]}"#.to_owned(),
            },
        ))
        .unwrap();
    // After AddInstance: the answer does not list the instance, and RemoveInstance fails
    // (then the confirming query lists it).
    stub.emulator
        .inject(Fault::new(
            Api::GetServiceProperties,
            FaultAction::Respond {
                text: r#"{"Properties":[{"Instances":[]}]}"#.to_owned(),
            },
        ))
        .unwrap();
    stub.emulator
        .inject(
            Fault::fail(
                Api::ModifyServiceSettings,
                "E_ACCESSDENIED".parse().unwrap(),
            )
            .on("RemoveInstance"),
        )
        .unwrap();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let err = client
        .create("wine-leak", SPEC, Isolation::Process)
        .unwrap_err();
    assert!(matches!(err, CcgError::RollbackFailed { .. }), "{err:?}");
    assert_eq!(stub.emulator.instances().unwrap().len(), 1, "left behind");
    // The operator's clean-up works through the DLL as well.
    assert_eq!(
        client.remove("wine-leak").unwrap(),
        crate::lifecycle::Removal::Removed
    );
    assert!(stub.emulator.instances().unwrap().is_empty());
}

const UPDATE: &str = r#"{"ResourcePath":"VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/0b52781f-b24d-5685-ddf6-69830ed40ec3","RequestType":"Update","Settings":{"BindSecurityDescriptor":"D:P(A;;FA;;;SY)","ConnectSecurityDescriptor":"D:P(A;;FA;;;SY)","AllowWildcardBinds":true}}"#;

#[test]
fn a_compute_system_is_opened_modified_and_waited_for() {
    let stub = stub();
    stub.emulator.create_uvm("uvm-wine").unwrap();
    let before = local_frees_on_this_thread();
    ComputeCore::new()
        .modify_compute_system("uvm-wine", UPDATE)
        .unwrap();
    assert_eq!(local_frees_on_this_thread(), before);
    let entries = stub.emulator.hvsocket_entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "uvm-wine");
    assert_eq!(entries[0].1, "0b52781f-b24d-5685-ddf6-69830ed40ec3");
}

#[test]
fn an_unknown_compute_system_fails_at_open() {
    let _stub = stub();
    let err = ComputeCore::new()
        .modify_compute_system("uvm-nowhere", UPDATE)
        .unwrap_err();
    assert_eq!(err.operation, HcsOperation::OpenComputeSystem);
    assert!(err.hresult.is_system_not_found(), "{err}");
    assert_eq!(
        err.to_string(),
        "hcs::OpenComputeSystem uvm-nowhere: cannot open the compute system (0xC037010E HCS_E_SYSTEM_NOT_FOUND)"
    );
    assert_eq!(err.compute_system.as_deref(), Some("uvm-nowhere"));
}

/// HcsModifyComputeSystem itself returns a failure: the error carries the ResultError
/// document of the operation (HcsGetOperationResult), freed like every result string.
#[test]
fn a_modification_refused_at_once_carries_the_operation_result_document() {
    let stub = stub();
    stub.emulator.create_uvm("uvm-sync").unwrap();
    let before = local_frees_on_this_thread();
    let err = ComputeCore::new()
        .modify_compute_system("uvm-sync", "{not json")
        .unwrap_err();
    assert_eq!(err.operation, HcsOperation::ModifyComputeSystem);
    assert_eq!(err.hresult.name(), Some("HCS_E_INVALID_JSON"), "{err}");
    let doc = err
        .result_error()
        .unwrap_or_else(|| panic!("no ResultError document: {err:?}"));
    assert!(!doc.error_message.is_empty(), "{doc:?}");
    assert_eq!(err.compute_system.as_deref(), Some("uvm-sync"));
    assert!(
        err.to_string()
            .starts_with("hcs::ModifyComputeSystem uvm-sync: "),
        "{err}"
    );
    assert_eq!(
        local_frees_on_this_thread(),
        before + 1,
        "the document was freed"
    );
    let calls = stub.emulator.calls().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(stub.emulator.hvsocket_entries().unwrap().is_empty());
}

#[test]
fn a_failed_modification_returns_the_operation_result_document() {
    let stub = stub();
    stub.emulator.create_uvm("uvm-fail").unwrap();
    stub.emulator
        .inject(Fault::new(
            Api::ModifyComputeSystem,
            FaultAction::Fail {
                hresult: "HCS_E_ACCESS_DENIED".parse().unwrap(),
                result: Some(result_error_text()),
            },
        ))
        .unwrap();
    let before = local_frees_on_this_thread();
    let err = ComputeCore::new()
        .modify_compute_system("uvm-fail", UPDATE)
        .unwrap_err();
    assert_eq!(local_frees_on_this_thread(), before + 1);
    assert_eq!(err.operation, HcsOperation::ModifyComputeSystem);
    assert_eq!(err.hresult, HResult::HCS_E_ACCESS_DENIED);
    assert!(err.result_error().is_some());
    assert!(stub.emulator.hvsocket_entries().unwrap().is_empty());
}

/// The wait times out: the operation is cancelled (HcsCancelOperation) and waited for
/// before its handle is closed, so the modification never lands afterwards. The stand-in
/// honours the cancel: the emulator's call log records the modification as cancelled, and
/// nothing was added. (Before, the call returned at once and the entry appeared later.)
#[test]
fn a_modification_that_outlasts_the_timeout_is_cancelled_and_never_lands() {
    let stub = stub();
    stub.emulator.create_uvm("uvm-slow").unwrap();
    // Far longer than the test: only the cancel ends it early.
    stub.emulator
        .inject(Fault::new(Api::ModifyComputeSystem, FaultAction::None).delay_ms(120_000))
        .unwrap();
    let err = ComputeCore::new()
        .with_operation_timeout(Duration::from_millis(100))
        .modify_compute_system("uvm-slow", UPDATE)
        .unwrap_err();
    assert_eq!(err.hresult, HResult::HCS_E_OPERATION_TIMEOUT);
    assert_eq!(
        err.to_string(),
        "hcs::ModifyComputeSystem uvm-slow: the modification did not complete within 100ms; \
         it was cancelled (HcsCancelOperation), and it stopped with 0x800704C7 ERROR_CANCELLED: \
         the change was not applied (0x80370118 HCS_E_OPERATION_TIMEOUT)"
    );
    // The operation ended before the call returned: its record is in the log already.
    let calls = stub.emulator.calls().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].api, Api::ModifyComputeSystem);
    assert_eq!(calls[0].hresult.to_string(), "0x800704C7", "{calls:?}");
    assert!(stub.emulator.hvsocket_entries().unwrap().is_empty());
    assert!(
        stub.emulator.faults().unwrap().is_empty(),
        "the delay was taken"
    );
}

/// A hot-add that times out is rolled back; being cancelled first, it cannot land after
/// the rollback removed what it would have added.
#[test]
fn a_timed_out_hot_add_cannot_land_after_its_rollback() {
    let stub = stub();
    stub.emulator.create_uvm("uvm-late").unwrap();
    stub.emulator
        .inject(
            Fault::new(Api::ModifyComputeSystem, FaultAction::None)
                .on("Update")
                .delay_ms(120_000),
        )
        .unwrap();
    let hcs = ComputeCore::new().with_operation_timeout(Duration::from_millis(100));
    let client = CcgClient::new(Arc::new(hcs));
    let mut request = CreateRequest::new("wine-hv-late", SPEC, Isolation::HyperV);
    request.utility_vm = Some("uvm-late");
    let err = client.create_request(&request).unwrap_err();
    let CcgError::RolledBack { cause, .. } = &err else {
        panic!("expected a rollback, got {err:?}");
    };
    // The hot-add failure, naming the utility VM and the ServiceId (issue 9, point 16).
    let CcgError::HvSocketEntry {
        step,
        utility_vm,
        service_id,
        source,
        ..
    } = cause.as_ref()
    else {
        panic!("expected the hot-add failure as the cause, got {cause:?}");
    };
    assert_eq!(*step, crate::lifecycle::Step::HvSocketAdd);
    assert_eq!(utility_vm.to_string(), "uvm-late");
    let shown = cause.to_string();
    assert!(
        shown.contains("uvm-late") && shown.contains(&service_id.to_string()),
        "{shown}"
    );
    assert_eq!(source.hresult, HResult::HCS_E_OPERATION_TIMEOUT);
    assert_eq!(source.compute_system.as_deref(), Some("uvm-late"));
    // The Update ended (cancelled, unapplied) before the rollback's Remove was sent.
    let calls = stub.emulator.calls().unwrap();
    let modifications: Vec<(String, String)> = calls
        .iter()
        .filter(|c| c.api == Api::ModifyComputeSystem)
        .map(|c| {
            let kind = if c.document.contains("\"Update\"") {
                "Update"
            } else {
                "Remove"
            };
            (kind.to_owned(), c.hresult.to_string())
        })
        .collect();
    assert_eq!(
        modifications.first(),
        Some(&("Update".to_owned(), "0x800704C7".to_owned())),
        "{modifications:?}"
    );
    assert!(
        modifications
            .iter()
            .skip(1)
            .all(|(kind, _)| kind == "Remove"),
        "{modifications:?}"
    );
    assert!(stub.emulator.instances().unwrap().is_empty());
    assert!(stub.emulator.hvsocket_entries().unwrap().is_empty());
}

/// Ends the stand-in's injected delay once the delayed AddInstance has taken it and the
/// watchdog has warned about it: the call is slow until then (a signal, not a delay guessed
/// longer than the threshold). Another call slow enough under Wine to be warned about (the
/// query before AddInstance) must not end the delay before it starts.
fn end_delays_once_warned(stub: &Stub, log: &CapturedLog) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !stub.emulator.faults().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the delayed call never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    log.until_warned("HcsModifyServiceSettings");
    stub.emulator.end_delays().unwrap();
}

#[test]
fn a_slow_call_is_logged_and_not_abandoned() {
    let stub = stub();
    stub.emulator
        .inject(
            Fault::new(Api::ModifyServiceSettings, FaultAction::None)
                .on("AddInstance")
                .delay_ms(120_000),
        )
        .unwrap();
    let hcs = ComputeCore::new().with_slow_call_threshold(Duration::from_millis(20));
    let log = CapturedLog::default();
    std::thread::scope(|scope| {
        scope.spawn(|| end_delays_once_warned(&stub, &log));
        tracing::subscriber::with_default(log.subscriber(), || {
            hcs.modify_service_settings(&add_instance("wine-slow", SPEC))
        })
    })
    .expect("the slow call completes and succeeds");
    let text = log.text();
    assert!(
        text.contains("HcsModifyServiceSettings is still running after 20ms; waiting for it"),
        "{text}"
    );
    assert!(
        text.contains("HcsModifyServiceSettings returned after"),
        "{text}"
    );
    // Not abandoned: the instance the slow call created is there.
    assert_eq!(stub.emulator.instances().unwrap().len(), 1);
}

#[test]
fn one_backend_serves_many_threads() {
    let stub = stub();
    let hcs = Arc::new(ComputeCore::new());
    let workers: Vec<_> = (0..6)
        .map(|n| {
            let hcs = Arc::clone(&hcs);
            std::thread::spawn(move || {
                hcs.modify_service_settings(&add_instance(&format!("wine-thread-{n}"), SPEC))
                    .unwrap();
                hcs.get_service_properties(CCG_QUERY).unwrap()
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(stub.emulator.instances().unwrap().len(), 6);
}

#[test]
fn a_credential_spec_registered_under_hklm_is_read() {
    // Wine runs as an administrator, so the real key can be written here.
    let name = format!("credguard-wine-{}", uuid::Uuid::new_v4().simple());
    let key = format!(r"HKLM\{CREDENTIAL_SPECS_KEY}");
    let reg = |args: &[&str]| {
        let status = std::process::Command::new("reg")
            .args(args)
            .status()
            .expect("reg.exe runs");
        assert!(status.success(), "reg {args:?}: {status}");
    };
    reg(&["add", &key, "/v", &name, "/t", "REG_SZ", "/d", SPEC, "/f"]);
    let read = read_registry_credential_spec(&name);
    reg(&["delete", &key, "/v", &name, "/f"]);
    assert_eq!(read.unwrap(), SPEC);
    let err = read_registry_credential_spec(&name).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("it is not registered: registry key {key} has no value of that name")
    );
}

#[test]
fn a_hyperv_instance_is_hot_added_to_its_utility_vm_and_removed_on_release() {
    let stub = stub();
    stub.emulator.create_uvm("uvm-pod").unwrap();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let mut request = CreateRequest::new("wine-hv-pod", SPEC, Isolation::HyperV);
    request.utility_vm = Some("uvm-pod");
    let (instance, mut handle) = client.create_request(&request).unwrap();
    let service_id = instance.hv_socket_config.unwrap().service_id;
    let entries = stub.emulator.hvsocket_entries().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].0.as_str(), entries[0].1.as_str()),
        ("uvm-pod", service_id.as_str())
    );
    handle.release().unwrap();
    assert!(stub.emulator.hvsocket_entries().unwrap().is_empty());
    assert!(stub.emulator.instances().unwrap().is_empty());
}

#[test]
fn a_failed_hot_add_rolls_the_instance_back() {
    let stub = stub();
    stub.emulator.create_uvm("uvm-denied").unwrap();
    stub.emulator
        .inject(
            Fault::new(
                Api::ModifyComputeSystem,
                FaultAction::Fail {
                    hresult: "HCS_E_ACCESS_DENIED".parse().unwrap(),
                    result: Some(result_error_text()),
                },
            )
            .on("Update"),
        )
        .unwrap();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let mut request = CreateRequest::new("wine-hv-denied", SPEC, Isolation::HyperV);
    request.utility_vm = Some("uvm-denied");
    let err = client.create_request(&request).unwrap_err();
    let CcgError::RolledBack { cause, .. } = &err else {
        panic!("expected a rollback, got {err:?}");
    };
    let CcgError::HvSocketEntry {
        step,
        source,
        utility_vm,
        ..
    } = cause.as_ref()
    else {
        panic!("expected the hot-add failure as the cause, got {cause:?}");
    };
    assert_eq!(*step, crate::lifecycle::Step::HvSocketAdd);
    assert_eq!(utility_vm.to_string(), "uvm-denied");
    assert_eq!(source.operation, HcsOperation::ModifyComputeSystem);
    assert!(source.result_error().is_some());
    assert!(stub.emulator.instances().unwrap().is_empty());
    assert!(stub.emulator.hvsocket_entries().unwrap().is_empty());
}

#[test]
fn a_hot_add_to_a_utility_vm_that_is_gone_rolls_back() {
    let stub = stub();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let mut request = CreateRequest::new("wine-hv-novm", SPEC, Isolation::HyperV);
    request.utility_vm = Some("uvm-gone");
    let err = client.create_request(&request).unwrap_err();
    assert!(matches!(err, CcgError::RolledBack { .. }), "{err:?}");
    assert!(stub.emulator.instances().unwrap().is_empty());
}

/// A slow call made for a container names the container in the watchdog's warnings at the
/// default `warn` level (the `info` span that also names it is not recorded there), and
/// the credential spec's PluginInput never appears.
#[test]
fn a_slow_call_warning_names_the_container_at_the_warn_level() {
    let stub = stub();
    stub.emulator
        .inject(
            Fault::new(Api::ModifyServiceSettings, FaultAction::None)
                .on("AddInstance")
                .delay_ms(120_000),
        )
        .unwrap();
    let secret = "S3cretPluginInput";
    let spec = SPEC.replace(
        r#""GroupManagedServiceAccounts""#,
        &format!(
            r#""HostAccountConfig":{{"PortableCcgVersion":"1","PluginGUID":"{{CFCA0441-511D-4B2A-862E-20348A78760B}}","PluginInput":"{secret}"}},"GroupManagedServiceAccounts""#
        ),
    );
    let hcs = ComputeCore::new().with_slow_call_threshold(Duration::from_millis(20));
    let client = CcgClient::new(Arc::new(hcs));
    let log = CapturedLog::default();
    let subscriber = {
        let log = log.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || log.clone())
            .finish()
    };
    let (_, mut handle) = std::thread::scope(|scope| {
        scope.spawn(|| end_delays_once_warned(&stub, &log));
        tracing::subscriber::with_default(subscriber, || {
            client.create("wine-slow-named", &spec, Isolation::Process)
        })
    })
    .expect("the slow create completes");
    handle.release().unwrap();
    let text = log.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("HcsModifyServiceSettings"))
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    for line in warnings {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("container_id=\"wine-slow-named\""), "{line}");
        assert!(
            line.contains("operation=hcs::ModifyServiceSettings"),
            "{line}"
        );
    }
    assert!(
        !text.contains(secret) && !text.contains("PluginInput"),
        "{text}"
    );
    drop(stub);
}
