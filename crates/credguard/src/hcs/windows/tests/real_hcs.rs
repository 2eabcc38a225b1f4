//! Tests against the real Host Compute Service. They need a Windows host (Windows 10 1809 /
//! Windows Server 2019 or later) with the Containers feature, run as administrator, and are
//! ignored otherwise; `docs/WINDOWS.md` says how to run them. They create CCG instances
//! under generated ids and remove them again.

use std::sync::Arc;

use super::*;
use crate::Isolation;
use crate::lifecycle::CcgClient;

const NEEDS: &str = "needs a Windows host with the Containers feature, run as administrator";

/// The credential spec to create instances with: the file named by
/// `CREDGUARD_TEST_CREDSPEC` (a gMSA credential spec of the host's domain).
fn credential_spec() -> String {
    let path = std::env::var_os("CREDGUARD_TEST_CREDSPEC").unwrap_or_else(|| {
        panic!("set CREDGUARD_TEST_CREDSPEC to a credential spec file (New-CredentialSpec)")
    });
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", Path::new(&path).display()))
}

fn test_id(tag: &str) -> String {
    format!("credguard-test-{tag}-{}", uuid::Uuid::new_v4().simple())
}

#[test]
#[ignore = "needs a Windows host with the Containers feature, run as administrator"]
fn real_computecore_loads_from_system32() {
    let hcs = ComputeCore::new();
    let path = hcs.load().expect(NEEDS).to_path_buf();
    let system32 = Path::new(&std::env::var_os("SystemRoot").expect("SystemRoot")).join("System32");
    assert_eq!(
        path.parent().map(|p| p.to_string_lossy().to_lowercase()),
        Some(system32.to_string_lossy().to_lowercase())
    );
}

#[test]
#[ignore = "needs a Windows host with the Containers feature, run as administrator"]
fn real_hcs_lists_instances() {
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    client.list().expect("the CCG query succeeds");
}

#[test]
#[ignore = "needs a Windows host with the Containers feature, run as administrator"]
fn real_hcs_creates_and_releases_a_process_isolated_instance() {
    let spec = credential_spec();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let id = test_id("lrpc");
    let (instance, mut handle) = client.create(&id, &spec, Isolation::Process).unwrap();
    let state = instance.credential_guard.expect("CredentialGuard state");
    assert!(!state.cookie.is_empty(), "a cookie");
    assert!(!state.rpc_endpoint.is_empty(), "an RPC endpoint");
    assert!(client.get(&id).unwrap().is_some(), "listed");
    handle.release().unwrap();
    assert!(client.get(&id).unwrap().is_none(), "gone");
}

#[test]
#[ignore = "needs a Windows host with the Containers feature, run as administrator"]
fn real_hcs_creates_and_releases_a_hyperv_instance() {
    let spec = credential_spec();
    let client = CcgClient::new(Arc::new(ComputeCore::new()));
    let id = test_id("hvsocket");
    let (instance, mut handle) = client.create(&id, &spec, Isolation::HyperV).unwrap();
    let hv = instance.hv_socket_config.expect("HvSocketConfig");
    assert!(!hv.service_id.is_empty() && hv.service_config.is_some());
    handle.release().unwrap();
    assert!(client.get(&id).unwrap().is_none(), "gone");
}

#[test]
#[ignore = "needs a Windows host with the Containers feature, run as administrator"]
fn real_hcs_reports_an_unknown_compute_system() {
    let err = ComputeCore::new()
        .modify_compute_system(
            &test_id("no-such-uvm"),
            r#"{"ResourcePath":"VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/0b52781f-b24d-5685-ddf6-69830ed40ec3","RequestType":"Update","Settings":{}}"#,
        )
        .unwrap_err();
    assert!(err.hresult.is_system_not_found(), "{err}");
}

#[test]
#[ignore = "needs a Windows host with the Containers feature, run as administrator"]
fn real_hcs_refuses_invalid_json_with_a_result_error() {
    let err = ComputeCore::new()
        .modify_service_settings("{not json")
        .unwrap_err();
    assert!(err.hresult.is_failure(), "{err}");
}
