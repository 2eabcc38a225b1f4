//! Tests of the backend that need no computecore.dll: what is refused before any call, and
//! what a missing DLL or export looks like. The tests against the stand-in DLL are in
//! `stub_tests` (built with the `stub-tests` feature, run by `scripts/windows-tests.sh`).

use super::*;

#[test]
fn a_document_with_a_nul_is_refused_before_anything_is_loaded() {
    // The library does not exist: had the call been attempted, the error would be about it.
    let hcs = ComputeCore::new().with_library_name("credguard-no-such-library.dll");
    let err = hcs
        .modify_service_settings("{\"PropertyType\":\"Container\u{0}CredentialGuard\"}")
        .unwrap_err();
    assert_eq!(err.operation, HcsOperation::ModifyServiceSettings);
    assert_eq!(err.hresult, HResult::E_INVALIDARG);
    assert_eq!(
        err.to_string(),
        "hcs::ModifyServiceSettings: the settings document contains a NUL character (at byte 26); it was not sent (0x80070057 E_INVALIDARG)"
    );
    let err = hcs.get_service_properties("\0").unwrap_err();
    assert_eq!(err.operation, HcsOperation::GetServiceProperties);
    assert!(
        err.to_string()
            .contains("the property query contains a NUL character (at byte 0)"),
        "{err}"
    );
    let err = hcs.modify_compute_system("uvm\0", "{}").unwrap_err();
    assert_eq!(err.operation, HcsOperation::OpenComputeSystem);
    assert!(
        err.to_string()
            .contains("the compute system id contains a NUL"),
        "{err}"
    );
    let err = hcs.modify_compute_system("uvm", "{\0}").unwrap_err();
    assert_eq!(err.operation, HcsOperation::ModifyComputeSystem);
    assert!(
        err.to_string()
            .contains("the modify request contains a NUL"),
        "{err}"
    );
}

#[test]
fn a_missing_dll_names_itself_and_the_windows_version_needed() {
    let hcs = ComputeCore::new().with_library_name("credguard-no-such-library.dll");
    let err = hcs.get_service_properties("{}").unwrap_err();
    assert_eq!(err.operation, HcsOperation::LoadLibrary);
    assert_eq!(err.hresult, HResult::ERROR_MOD_NOT_FOUND);
    let text = err.to_string();
    assert!(
        text.starts_with("hcs::LoadLibrary: cannot load credguard-no-such-library.dll from System32 or from the directory of credguard-"),
        "{text}"
    );
    assert!(
        text.contains("the Host Compute Service API needs Windows 10 version 1809 / Windows Server 2019 or later"),
        "{text}"
    );
    assert!(text.ends_with("(0x8007007E ERROR_MOD_NOT_FOUND)"), "{text}");
    // Loaded (or rather, tried) once: the same error comes back without a second attempt.
    assert_eq!(hcs.load().unwrap_err(), err);
    assert!(format!("{hcs:?}").contains("failed to load"));
}

#[test]
fn a_dll_without_the_exports_names_the_first_missing_one() {
    // kernel32.dll loads from System32 and has none of the HCS exports.
    let hcs = ComputeCore::new().with_library_name("kernel32.dll");
    let err = hcs.modify_service_settings("{}").unwrap_err();
    assert_eq!(err.operation, HcsOperation::LoadLibrary);
    assert_eq!(err.hresult, HResult::ERROR_PROC_NOT_FOUND);
    let text = err.to_string();
    assert!(
        text.contains("kernel32.dll has no export HcsModifyServiceSettings"),
        "{text}"
    );
    assert!(
        text.contains("credguard needs the computecore.dll of Windows 10 version 1809 / Windows Server 2019 or later"),
        "{text}"
    );
}

#[test]
fn a_path_is_not_a_library_name() {
    let err = ComputeCore::new()
        .with_library_name(r"C:\Temp\computecore.dll")
        .load()
        .unwrap_err();
    assert_eq!(err.operation, HcsOperation::LoadLibrary);
    assert!(err.to_string().contains("is not a DLL file name"), "{err}");
}

#[test]
fn timeouts_are_clamped_below_infinite() {
    assert_eq!(timeout_ms(Duration::from_millis(1500)), 1500);
    assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), u32::MAX - 1);
    assert_eq!(timeout_ms(Duration::ZERO), 0);
}

mod real_hcs;
#[cfg(feature = "stub-tests")]
mod stub_tests;
