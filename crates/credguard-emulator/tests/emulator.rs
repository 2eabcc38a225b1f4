//! The emulator's HCS-like behaviour, its persistence across processes, and its faults.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use credguard::hcs::hresult::HResult;
use credguard::hcs::{ErrorDocument, HcsService};
use credguard::wire::{
    HvSocketServiceConfig, ModificationRequest, ModifySettingRequest, Transport, to_wire,
};
use credguard_emulator::{Api, Emulator, EmulatorError, Fault, FaultAction};

const SPEC: &str = r#"{"CmsPlugins":["ActiveDirectory"]}"#;
const QUERY: &str = r#"{"PropertyTypes":["ContainerCredentialGuard"]}"#;

fn add(id: &str, t: Transport) -> String {
    to_wire(&ModificationRequest::add_instance(id, SPEC, t)).unwrap()
}

fn remove(id: &str) -> String {
    to_wire(&ModificationRequest::remove_instance(id)).unwrap()
}

#[test]
fn add_query_remove() {
    let emu = Emulator::in_memory();
    emu.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap();
    emu.modify_service_settings(&add("b", Transport::HvSocket))
        .unwrap();
    let answer: serde_json::Value =
        serde_json::from_str(&emu.get_service_properties(QUERY).unwrap()).unwrap();
    let instances = answer["Properties"][0]["Instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    let a = &instances[0];
    assert_eq!(a["Id"], "a");
    let cookie = a["CredentialGuard"]["Cookie"].as_str().unwrap();
    assert_eq!(cookie.len(), 48);
    assert!(cookie.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        a["CredentialGuard"]["RpcEndpoint"]
            .as_str()
            .unwrap()
            .starts_with("CcgRpc_")
    );
    assert!(a.get("HvSocketConfig").is_none());
    let b = &instances[1];
    let sid = b["HvSocketConfig"]["ServiceId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(sid).is_ok());
    assert!(
        b["HvSocketConfig"]["ServiceConfig"]["BindSecurityDescriptor"]
            .as_str()
            .unwrap()
            .starts_with("D:")
    );
    emu.modify_service_settings(&remove("a")).unwrap();
    assert_eq!(emu.instances().unwrap().len(), 1);
}

#[test]
fn emulator_choices_for_undocumented_cases() {
    let emu = Emulator::in_memory();
    emu.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap();
    let dup = emu
        .modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap_err();
    assert_eq!(dup.hresult, HResult::ERROR_ALREADY_EXISTS);
    assert!(dup.result_error().is_some());
    let unknown = emu.modify_service_settings(&remove("zzz")).unwrap_err();
    assert_eq!(unknown.hresult, HResult::ERROR_NOT_FOUND);
    // Case-sensitive ids.
    assert_eq!(
        emu.modify_service_settings(&remove("A"))
            .unwrap_err()
            .hresult,
        HResult::ERROR_NOT_FOUND
    );
}

#[test]
fn malformed_documents_get_an_hresult_and_a_result_error() {
    let emu = Emulator::in_memory();
    let cases: &[(&str, HResult)] = &[
        ("{", HResult::HCS_E_INVALID_JSON),
        ("", HResult::HCS_E_INVALID_JSON),
        (
            r#"{"PropertyType":"Memory","Settings":{}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard"}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"Explode","OperationDetails":{}}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance"}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance","OperationDetails":{"CredentialSpec":"{}","Transport":"LRPC"}}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance","OperationDetails":{"Id":"x","Transport":"LRPC"}}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance","OperationDetails":{"Id":"x","CredentialSpec":"[]","Transport":"LRPC"}}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance","OperationDetails":{"Id":"x","CredentialSpec":"{}","Transport":"TCP"}}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance","OperationDetails":{"Id":"x","CredentialSpec":"{}"}}}"#,
            HResult::E_INVALIDARG,
        ),
        (
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance","OperationDetails":{"Id":5}}}"#,
            HResult::E_INVALIDARG,
        ),
    ];
    for (doc, want) in cases {
        let e = emu.modify_service_settings(doc).unwrap_err();
        assert_eq!(e.hresult, *want, "{doc}");
        assert!(
            matches!(e.document, ErrorDocument::Parsed(ref r) if !r.error_message.is_empty() && r.error == want.0),
            "{doc}: {e:?}"
        );
    }
    assert!(emu.instances().unwrap().is_empty());
    for q in [
        "{",
        r#"{"PropertyTypes":[]}"#,
        r#"{"PropertyTypes":["Memory"]}"#,
    ] {
        assert!(emu.get_service_properties(q).is_err(), "{q}");
    }
}

#[test]
fn hvsocket_service_table_of_utility_vms() {
    let emu = Emulator::in_memory();
    let cfg = HvSocketServiceConfig {
        bind_security_descriptor: "D:P".into(),
        allow_wildcard_binds: true,
        ..Default::default()
    };
    let update = to_wire(&ModifySettingRequest::hvsocket_update("sid-1", &cfg)).unwrap();
    let rm = to_wire(&ModifySettingRequest::hvsocket_remove("sid-1")).unwrap();
    let e = emu.modify_compute_system("uvm1", &update).unwrap_err();
    assert_eq!(e.hresult, HResult::HCS_E_SYSTEM_NOT_FOUND_NT);
    assert!(e.to_string().contains("0xC037010E"));
    emu.create_uvm("uvm1").unwrap();
    assert!(emu.create_uvm("uvm1").is_err());
    emu.modify_compute_system("uvm1", &update).unwrap();
    emu.modify_compute_system("uvm1", &update).unwrap(); // Update is create-or-replace
    assert_eq!(
        emu.uvm("uvm1").unwrap().unwrap().service_table["sid-1"],
        cfg
    );
    assert_eq!(emu.hvsocket_entries().unwrap().len(), 1);
    emu.modify_compute_system("uvm1", &rm).unwrap();
    assert_eq!(
        emu.modify_compute_system("uvm1", &rm).unwrap_err().hresult,
        HResult::ERROR_NOT_FOUND
    );
    let bad =
        r#"{"ResourcePath":"VirtualMachine/Devices/Scsi/0","RequestType":"Add","Settings":{}}"#;
    assert_eq!(
        emu.modify_compute_system("uvm1", bad).unwrap_err().hresult,
        HResult::E_INVALIDARG
    );
    emu.remove_uvm("uvm1").unwrap();
    assert!(
        emu.modify_compute_system("uvm1", &update)
            .unwrap_err()
            .hresult
            .is_system_not_found()
    );
}

#[test]
fn faults_fail_apply_respond_and_count_down() {
    let emu = Emulator::in_memory();
    emu.inject(
        Fault::fail(Api::ModifyServiceSettings, HResult::E_FAIL)
            .on("AddInstance")
            .times(2),
    )
    .unwrap();
    assert!(
        emu.modify_service_settings(&add("a", Transport::Lrpc))
            .is_err()
    );
    assert!(
        emu.modify_service_settings(&add("a", Transport::Lrpc))
            .is_err()
    );
    assert!(
        emu.instances().unwrap().is_empty(),
        "a plain failure applies nothing"
    );
    emu.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap();

    emu.inject(Fault::new(
        Api::ModifyServiceSettings,
        FaultAction::ApplyThenFail {
            hresult: HResult::E_FAIL,
            result: Some("not a document".into()),
        },
    ))
    .unwrap();
    let e = emu.modify_service_settings(&remove("a")).unwrap_err();
    assert!(matches!(e.document, ErrorDocument::Raw(ref r) if r == "not a document"));
    assert!(emu.instances().unwrap().is_empty(), "applied then failed");

    emu.inject(
        Fault::new(
            Api::GetServiceProperties,
            FaultAction::Respond {
                text: "junk".into(),
            },
        )
        .skip(1),
    )
    .unwrap();
    assert!(
        emu.get_service_properties(QUERY).unwrap().starts_with('{'),
        "skipped"
    );
    assert_eq!(emu.get_service_properties(QUERY).unwrap(), "junk");
    assert!(
        emu.get_service_properties(QUERY).unwrap().starts_with('{'),
        "used up"
    );

    emu.inject(Fault::fail(Api::GetServiceProperties, HResult::E_FAIL).times(5))
        .unwrap();
    emu.clear_faults().unwrap();
    assert!(emu.get_service_properties(QUERY).is_ok());
    assert!(emu.faults().unwrap().is_empty());
}

#[test]
fn call_log_records_every_call_in_order() {
    let emu = Emulator::in_memory();
    emu.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap();
    emu.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap_err();
    emu.get_service_properties(QUERY).unwrap();
    emu.modify_compute_system("nope", "{}").unwrap_err();
    let calls = emu.calls().unwrap();
    assert_eq!(
        calls.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(calls[1].hresult, HResult::ERROR_ALREADY_EXISTS);
    assert_eq!(calls[3].target.as_deref(), Some("nope"));
    let shown = calls[0].to_json(false);
    assert_eq!(shown["api"], "HcsModifyServiceSettings");
    assert_eq!(shown["hresult"], "0x00000000");
    assert_eq!(shown["target"], serde_json::Value::Null);
    assert_eq!(shown["document"]["Settings"]["OperationDetails"]["Id"], "a");
}

#[test]
fn reset_drops_instances_and_vms() {
    let emu = Emulator::in_memory();
    emu.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap();
    emu.create_uvm("vm").unwrap();
    emu.reset().unwrap();
    assert!(emu.instances().unwrap().is_empty());
    assert!(emu.uvm_ids().unwrap().is_empty());
}

#[test]
fn persistent_state_is_shared_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let one = Emulator::persistent(dir.path()).unwrap();
    one.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap();
    one.inject(Fault::fail(Api::GetServiceProperties, HResult::E_FAIL))
        .unwrap();
    let two = Emulator::persistent(dir.path()).unwrap();
    assert_eq!(two.instances().unwrap()[0].id, "a");
    assert!(
        two.get_service_properties(QUERY).is_err(),
        "the fault queued by the other handle"
    );
    assert!(
        one.get_service_properties(QUERY).is_ok(),
        "and it was used up"
    );
    assert_eq!(one.calls().unwrap().len(), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["state.json", "calls.jsonl", "state.lock"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is readable by others");
        }
    }
}

#[test]
fn corrupt_and_foreign_state_files_are_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    for (content, says) in [
        ("{not json", "corrupt"),
        (
            r#"{"hello":"world"}"#,
            "not a credguard emulator state file",
        ),
    ] {
        std::fs::write(&state, content).unwrap();
        let err = Emulator::persistent(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(says) && msg.contains("state.json"), "{msg}");
        assert!(matches!(
            err,
            EmulatorError::Corrupt { .. } | EmulatorError::Foreign { .. }
        ));
        assert_eq!(
            std::fs::read_to_string(&state).unwrap(),
            content,
            "never reset silently"
        );
    }
}

#[test]
fn a_torn_call_log_line_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::persistent(dir.path()).unwrap();
    emu.get_service_properties(QUERY).unwrap();
    let log = dir.path().join("calls.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"seq\":2,\"api\":\"HcsGetSer");
    std::fs::write(&log, text).unwrap();
    emu.get_service_properties(QUERY).unwrap();
    let seqs: Vec<u64> = emu.calls().unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [1, 2]);
}

/// Waits, up to a deadline against hangs, until every queued fault was taken: a delayed call
/// has then started its delay.
fn wait_until_taken(emu: &Emulator) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !emu.faults().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the delayed call never took its fault"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_delayed_call_does_not_hold_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Arc::new(Emulator::persistent(dir.path()).unwrap());
    // Held until `end_delays` (60 s only bounds a hang).
    emu.inject(Fault::new(Api::ModifyServiceSettings, FaultAction::None).delay_ms(60_000))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let slow = {
        let (emu, done) = (emu.clone(), done.clone());
        std::thread::spawn(move || {
            emu.modify_service_settings(&add("slow", Transport::Lrpc))
                .unwrap();
            done.store(true, Ordering::SeqCst);
        })
    };
    // Wait until the slow call has taken its fault (and so is sleeping).
    wait_until_taken(&emu);
    let other = Emulator::persistent(dir.path()).unwrap();
    other
        .modify_service_settings(&add("fast", Transport::Lrpc))
        .unwrap();
    assert!(
        !done.load(Ordering::SeqCst),
        "the fast call had to wait for the slow one"
    );
    other.end_delays().unwrap();
    slow.join().unwrap();
    let ids: Vec<_> = other
        .instances()
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["fast", "slow"]);
}

#[test]
fn end_delays_ends_the_delays_in_progress_only() {
    for persistent in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let emu = Arc::new(if persistent {
            Emulator::persistent(dir.path()).unwrap()
        } else {
            Emulator::in_memory()
        });
        // Ended before any delay started: the delay that starts later is not cut short.
        emu.end_delays().unwrap();
        emu.inject(Fault::new(Api::ModifyServiceSettings, FaultAction::None).delay_ms(3_600_000))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let slow = {
            let emu = emu.clone();
            std::thread::spawn(move || {
                let _ = tx.send(emu.modify_service_settings(&add("held", Transport::Lrpc)));
            })
        };
        wait_until_taken(&emu);
        assert!(
            rx.try_recv().is_err(),
            "an earlier end_delays ended a later delay"
        );
        assert!(
            emu.instances().unwrap().is_empty(),
            "held before it applies"
        );
        emu.end_delays().unwrap();
        // A deadline, not a timing assertion: without end_delays the call waits an hour.
        rx.recv_timeout(Duration::from_secs(60))
            .expect("end_delays did not end the delay")
            .unwrap();
        slow.join().unwrap();
        assert_eq!(emu.instances().unwrap()[0].id, "held");
    }
}

#[test]
fn read_only_state_answers_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Emulator::persistent_read_only(&dir.path().join("missing")).unwrap();
    assert!(missing.get_service_properties(QUERY).is_ok());
    assert!(!dir.path().join("missing").exists(), "not created");

    let emu = Emulator::persistent(dir.path()).unwrap();
    emu.modify_service_settings(&add("a", Transport::Lrpc))
        .unwrap();
    emu.inject(Fault::fail(Api::GetServiceProperties, HResult::E_FAIL))
        .unwrap();
    std::fs::remove_file(dir.path().join("state.lock")).unwrap();
    let snapshot = || {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot();
    let ro = Emulator::persistent_read_only(dir.path()).unwrap();
    // The queued fault applies, and is not used up; the call is not logged.
    assert!(ro.get_service_properties(QUERY).is_err());
    assert!(ro.get_service_properties(QUERY).is_err());
    assert_eq!(ro.calls().unwrap().len(), 1, "only the add of the writer");
    assert!(
        ro.modify_service_settings(&add("b", Transport::Lrpc))
            .is_ok()
    );
    assert!(
        ro.inject(Fault::fail(Api::GetServiceProperties, HResult::E_FAIL))
            .is_err()
    );
    assert_eq!(snapshot(), before, "nothing written, no lock file");
    emu.clear_faults().unwrap();
    let answer = ro.get_service_properties(QUERY).unwrap();
    assert!(
        answer.contains("\"a\"") && !answer.contains("\"b\""),
        "{answer}"
    );
}

#[cfg(unix)]
#[test]
fn a_planted_call_log_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let emu = Emulator::persistent(&state).unwrap();
    let outside = dir.path().join("outside.jsonl");
    std::fs::write(&outside, "").unwrap();
    std::os::unix::fs::symlink(&outside, state.join("calls.jsonl")).unwrap();
    let e = emu.get_service_properties(QUERY).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "");
}
