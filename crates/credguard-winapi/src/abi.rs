//! The raw declarations of `computecore.h` that windows-sys does not provide in a usable form:
//! the opaque handle types, the function-pointer signatures (Windows SDK 10.0.17763 and
//! later), and the table of those pointers resolved from a loaded DLL.
//!
//! They are declared here rather than taken from windows-sys because windows-sys links
//! computecore.dll at load time, and a binary must start on a Windows without it
//! (`credguard credspec validate` works anywhere). Nothing here is public outside the crate:
//! the safe modules ([`crate::computecore`]) are the only callers.

use std::ffi::{CStr, c_void};

use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::LibraryLoader::GetProcAddress;
use windows_sys::core::{HRESULT, PCWSTR, PWSTR};

/// `HCS_SYSTEM`: an opaque compute-system handle.
pub(crate) type HcsSystem = *mut c_void;
/// `HCS_OPERATION`: an opaque operation handle.
pub(crate) type HcsOperation = *mut c_void;
/// `HCS_OPERATION_COMPLETION`: the completion callback of an operation (never used here).
pub(crate) type HcsOperationCompletion =
    Option<unsafe extern "system" fn(HcsOperation, *mut c_void)>;

pub(crate) type HcsModifyServiceSettingsFn =
    unsafe extern "system" fn(settings: PCWSTR, result: *mut PWSTR) -> HRESULT;
pub(crate) type HcsGetServicePropertiesFn =
    unsafe extern "system" fn(property_query: PCWSTR, result: *mut PWSTR) -> HRESULT;
pub(crate) type HcsOpenComputeSystemFn = unsafe extern "system" fn(
    id: PCWSTR,
    requested_access: u32,
    compute_system: *mut HcsSystem,
) -> HRESULT;
pub(crate) type HcsCreateOperationFn = unsafe extern "system" fn(
    context: *const c_void,
    callback: HcsOperationCompletion,
) -> HcsOperation;
pub(crate) type HcsModifyComputeSystemFn = unsafe extern "system" fn(
    compute_system: HcsSystem,
    operation: HcsOperation,
    configuration: PCWSTR,
    identity: *mut c_void,
) -> HRESULT;
pub(crate) type HcsWaitForOperationResultFn = unsafe extern "system" fn(
    operation: HcsOperation,
    timeout_ms: u32,
    result_document: *mut PWSTR,
) -> HRESULT;
pub(crate) type HcsGetOperationResultFn =
    unsafe extern "system" fn(operation: HcsOperation, result_document: *mut PWSTR) -> HRESULT;
pub(crate) type HcsCancelOperationFn =
    unsafe extern "system" fn(operation: HcsOperation) -> HRESULT;
pub(crate) type HcsCloseOperationFn = unsafe extern "system" fn(operation: HcsOperation);
pub(crate) type HcsCloseComputeSystemFn = unsafe extern "system" fn(compute_system: HcsSystem);

/// The exports of computecore.dll that credguard calls, resolved from a loaded module.
#[derive(Clone, Copy)]
pub(crate) struct ComputeCoreFns {
    pub(crate) modify_service_settings: HcsModifyServiceSettingsFn,
    pub(crate) get_service_properties: HcsGetServicePropertiesFn,
    pub(crate) open_compute_system: HcsOpenComputeSystemFn,
    pub(crate) create_operation: HcsCreateOperationFn,
    pub(crate) modify_compute_system: HcsModifyComputeSystemFn,
    pub(crate) wait_for_operation_result: HcsWaitForOperationResultFn,
    pub(crate) get_operation_result: HcsGetOperationResultFn,
    pub(crate) cancel_operation: HcsCancelOperationFn,
    pub(crate) close_operation: HcsCloseOperationFn,
    pub(crate) close_compute_system: HcsCloseComputeSystemFn,
}

/// Resolves one export of `module`, as the function pointer type `$ty`; returns the export's
/// name from the enclosing function when the module lacks it.
macro_rules! export {
    ($module:expr, $name:literal, $ty:ty) => {{
        const NAME: &CStr = match CStr::from_bytes_with_nul(concat!($name, "\0").as_bytes()) {
            Ok(name) => name,
            Err(_) => panic!("an export name has an interior NUL"),
        };
        // SAFETY: $module is a live module handle (resolve's contract), and NAME is a
        // NUL-terminated ASCII string.
        let address = unsafe { GetProcAddress($module, NAME.as_ptr().cast()) };
        match address {
            // SAFETY: the export named $name has the signature $ty (resolve's contract:
            // computecore.h, or the stand-in DLL of the tests); both are `extern "system"`
            // function pointers of the same size, so the transmute only changes the type
            // the compiler sees.
            Some(f) => unsafe {
                std::mem::transmute::<unsafe extern "system" fn() -> isize, $ty>(f)
            },
            None => return Err($name),
        }
    }};
}

impl ComputeCoreFns {
    /// Resolves every export; the error is the name of the first one missing.
    ///
    /// # Safety
    /// `module` is a live module handle, kept loaded for as long as the returned pointers
    /// are called, and each export it has of these names has the signature of
    /// `computecore.h`.
    pub(crate) unsafe fn resolve(module: HMODULE) -> Result<Self, &'static str> {
        Ok(ComputeCoreFns {
            modify_service_settings: export!(
                module,
                "HcsModifyServiceSettings",
                HcsModifyServiceSettingsFn
            ),
            get_service_properties: export!(
                module,
                "HcsGetServiceProperties",
                HcsGetServicePropertiesFn
            ),
            open_compute_system: export!(module, "HcsOpenComputeSystem", HcsOpenComputeSystemFn),
            create_operation: export!(module, "HcsCreateOperation", HcsCreateOperationFn),
            modify_compute_system: export!(
                module,
                "HcsModifyComputeSystem",
                HcsModifyComputeSystemFn
            ),
            wait_for_operation_result: export!(
                module,
                "HcsWaitForOperationResult",
                HcsWaitForOperationResultFn
            ),
            get_operation_result: export!(module, "HcsGetOperationResult", HcsGetOperationResultFn),
            cancel_operation: export!(module, "HcsCancelOperation", HcsCancelOperationFn),
            close_operation: export!(module, "HcsCloseOperation", HcsCloseOperationFn),
            close_compute_system: export!(module, "HcsCloseComputeSystem", HcsCloseComputeSystemFn),
        })
    }
}
