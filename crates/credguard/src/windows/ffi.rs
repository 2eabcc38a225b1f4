//! Every unsafe line of credguard: computecore.dll loaded at run time, its calls, the strings
//! it returns, the registry, and the security descriptors of the state directories.
//!
//! `unsafe_code` is denied in the workspace and allowed here alone, because calling into a
//! DLL through raw pointers cannot be done without it. Everything this module hands out is
//! safe to use: strings go in as [`WideCString`] (NUL-terminated, no interior NUL, by
//! construction), come back as owned Rust `String`s (the HCS allocation is freed with
//! `LocalFree` before the call returns, on every path), and the handles
//! ([`ComputeSystem`], [`Operation`], [`RegKey`], the module inside [`Api`], the access
//! token inside [`current_user_sid`]) and the descriptors Windows allocates
//! ([`SecurityDescriptor`]) close or free themselves when dropped. Security identifiers
//! cross as strings (`S-1-5-18`), never as pointers. Every unsafe block carries a
//! `// SAFETY:` comment listing the invariants it relies on.
//!
//! The function pointer types below are declared here rather than taken from windows-sys
//! because windows-sys links computecore.dll at load time, and the binary must start on a
//! Windows without it (`credguard credspec validate` works anywhere).

#![allow(unsafe_code)]

use std::ffi::{CStr, c_void};
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::ptr;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_MOD_NOT_FOUND, ERROR_MORE_DATA, ERROR_SUCCESS, FreeLibrary, GENERIC_ALL,
    GetLastError, HANDLE, HLOCAL, HMODULE, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, ACL_SIZE_INFORMATION, AclSizeInformation,
    DACL_SECURITY_INFORMATION, GetAce, GetAclInformation, GetSecurityDescriptorControl,
    GetSecurityDescriptorDacl, GetSecurityDescriptorOwner, GetTokenInformation,
    OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SE_DACL_PROTECTED, SECURITY_ATTRIBUTES, TOKEN_ACCESS_MASK, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{CreateDirectoryW, GetFinalPathNameByHandleW};
use windows_sys::Win32::System::LibraryLoader::{
    GetModuleFileNameW, GetProcAddress, LOAD_LIBRARY_SEARCH_APPLICATION_DIR,
    LOAD_LIBRARY_SEARCH_SYSTEM32, LoadLibraryExW,
};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, KEY_READ, RegCloseKey, RegOpenKeyExW,
    RegQueryValueExW,
};
use windows_sys::Win32::System::SystemServices::{
    ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE, ACCESS_DENIED_CALLBACK_ACE_TYPE,
    ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE, ACCESS_DENIED_OBJECT_ACE_TYPE,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
use windows_sys::core::{HRESULT, PCWSTR, PWSTR};

/// `HCS_SYSTEM`: an opaque compute-system handle.
type HcsSystem = *mut c_void;
/// `HCS_OPERATION`: an opaque operation handle.
type HcsOperationHandle = *mut c_void;
/// `HCS_OPERATION_COMPLETION`: the completion callback of an operation (never used here).
type HcsOperationCompletion = Option<unsafe extern "system" fn(HcsOperationHandle, *mut c_void)>;

// The signatures of computecore.h (Windows SDK 10.0.17763 and later).
type HcsModifyServiceSettingsFn =
    unsafe extern "system" fn(settings: PCWSTR, result: *mut PWSTR) -> HRESULT;
type HcsGetServicePropertiesFn =
    unsafe extern "system" fn(property_query: PCWSTR, result: *mut PWSTR) -> HRESULT;
type HcsOpenComputeSystemFn = unsafe extern "system" fn(
    id: PCWSTR,
    requested_access: u32,
    compute_system: *mut HcsSystem,
) -> HRESULT;
type HcsCreateOperationFn = unsafe extern "system" fn(
    context: *const c_void,
    callback: HcsOperationCompletion,
) -> HcsOperationHandle;
type HcsModifyComputeSystemFn = unsafe extern "system" fn(
    compute_system: HcsSystem,
    operation: HcsOperationHandle,
    configuration: PCWSTR,
    identity: *mut c_void,
) -> HRESULT;
type HcsWaitForOperationResultFn = unsafe extern "system" fn(
    operation: HcsOperationHandle,
    timeout_ms: u32,
    result_document: *mut PWSTR,
) -> HRESULT;
type HcsGetOperationResultFn = unsafe extern "system" fn(
    operation: HcsOperationHandle,
    result_document: *mut PWSTR,
) -> HRESULT;
type HcsCancelOperationFn = unsafe extern "system" fn(operation: HcsOperationHandle) -> HRESULT;
type HcsCloseOperationFn = unsafe extern "system" fn(operation: HcsOperationHandle);
type HcsCloseComputeSystemFn = unsafe extern "system" fn(compute_system: HcsSystem);

/// A UTF-16 string for Windows: NUL-terminated, with no NUL before the end.
///
/// The field is private so that nothing outside this module can break that invariant, on
/// which every `PCWSTR` handed to Windows here relies.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct WideCString(Vec<u16>);

/// A text with a NUL character inside, which a NUL-terminated string cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InteriorNul {
    /// The byte offset of the first NUL in the UTF-8 text.
    pub(crate) byte_offset: usize,
}

impl WideCString {
    /// Converts UTF-8 text; refuses a text that contains a NUL character.
    pub(crate) fn new(text: &str) -> Result<Self, InteriorNul> {
        if let Some(byte_offset) = text.find('\0') {
            return Err(InteriorNul { byte_offset });
        }
        let mut wide: Vec<u16> = text.encode_utf16().collect();
        wide.push(0);
        Ok(WideCString(wide))
    }

    /// Converts a path (which need not be valid Unicode); refuses one with a NUL inside.
    ///
    /// The path is passed on as it is: the calls taking it are limited to `MAX_PATH`
    /// characters unless the process is long-path aware.
    pub(crate) fn from_path(path: &Path) -> io::Result<Self> {
        use std::os::windows::ffi::OsStrExt;
        let mut wide: Vec<u16> = path.as_os_str().encode_wide().collect();
        if wide.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path contains a NUL character",
            ));
        }
        wide.push(0);
        Ok(WideCString(wide))
    }

    /// The UTF-16 code units without the terminating NUL.
    #[cfg(test)]
    pub(crate) fn units(&self) -> &[u16] {
        &self.0[..self.0.len() - 1]
    }

    fn as_ptr(&self) -> PCWSTR {
        self.0.as_ptr()
    }
}

impl std::fmt::Debug for WideCString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}",
            String::from_utf16_lossy(&self.0[..self.0.len() - 1])
        )
    }
}

#[cfg(all(test, feature = "stub-tests"))]
thread_local! {
    /// How many HCS result strings this thread released with `LocalFree` (tests check that
    /// every string HCS returned was released).
    static LOCAL_FREES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The number of HCS result strings released on this thread so far.
#[cfg(all(test, feature = "stub-tests"))]
pub(crate) fn local_frees_on_this_thread() -> usize {
    LOCAL_FREES.with(std::cell::Cell::get)
}

/// Takes ownership of a string HCS returned, copies it into a `String` and frees it.
///
/// # Safety
/// As [`take_local_string`].
unsafe fn take_hcs_string(raw: PWSTR) -> Option<String> {
    // SAFETY: the caller's contract is take_local_string's.
    let text = unsafe { take_local_string(raw) };
    #[cfg(all(test, feature = "stub-tests"))]
    if text.is_some() {
        LOCAL_FREES.with(|n| n.set(n.get() + 1));
    }
    text
}

/// Takes ownership of a string Windows allocated with `LocalAlloc`, copies it into a
/// `String` and frees it.
///
/// # Safety
/// `raw` is null, or a NUL-terminated UTF-16 string allocated with `LocalAlloc` that the
/// caller owns and uses no more after this call.
unsafe fn take_local_string(raw: PWSTR) -> Option<String> {
    if raw.is_null() {
        return None;
    }
    // Freed by the guard on every path out of this function, unwinding included.
    struct Free(PWSTR);
    impl Drop for Free {
        fn drop(&mut self) {
            // SAFETY: self.0 is the non-null LocalAlloc'd string the caller of
            // take_local_string owns; nothing reads it after this guard is dropped, and it
            // is freed exactly once (the guard is not cloned or copied).
            let leaked: HLOCAL = unsafe { LocalFree(self.0.cast()) };
            debug_assert!(
                leaked.is_null(),
                "LocalFree failed on a string Windows returned"
            );
        }
    }
    let guard = Free(raw);
    let mut len = 0usize;
    // SAFETY: the string is NUL-terminated (caller's contract), so every index up to and
    // including the terminator is inside the allocation; reading stops at the terminator.
    while unsafe { *guard.0.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: guard.0 is valid for `len` u16 reads (just scanned), properly aligned (HCS
    // returns a WCHAR*), and not written to while the slice lives (we own it).
    let units = unsafe { std::slice::from_raw_parts(guard.0, len) };
    let text = String::from_utf16_lossy(units);
    drop(guard);
    Some(text)
}

/// What an HCS call returned: its HRESULT and the result document, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallOutcome {
    pub(crate) hresult: HRESULT,
    pub(crate) document: Option<String>,
}

/// Why computecore.dll (or another DLL standing in for it) could not be used.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// `LoadLibraryExW` failed.
    Library { code: u32 },
    /// The DLL loaded but lacks an export.
    Export { export: &'static str, path: PathBuf },
}

/// A module being set up, freed when dropped unless [`Module::keep`] is called.
struct Module(HMODULE);

impl Module {
    /// Keeps the module loaded for the rest of the process.
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: self.0 is a module handle LoadLibraryExW returned and that was not freed;
        // this runs only when resolving its exports failed, so no pointer into it is kept.
        unsafe { FreeLibrary(self.0) };
    }
}

/// computecore.dll, loaded, with every export credguard calls resolved.
///
/// Never unloaded: HCS may still run code of the DLL for an operation the caller stopped
/// waiting for (a wait that timed out), and freeing the module under it would crash the
/// process. So an `Api` lives for the rest of the process (`&'static`).
pub(crate) struct Api {
    path: PathBuf,
    modify_service_settings: HcsModifyServiceSettingsFn,
    get_service_properties: HcsGetServicePropertiesFn,
    open_compute_system: HcsOpenComputeSystemFn,
    create_operation: HcsCreateOperationFn,
    modify_compute_system: HcsModifyComputeSystemFn,
    wait_for_operation_result: HcsWaitForOperationResultFn,
    get_operation_result: HcsGetOperationResultFn,
    cancel_operation: HcsCancelOperationFn,
    close_operation: HcsCloseOperationFn,
    close_compute_system: HcsCloseComputeSystemFn,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("path", &self.path).finish()
    }
}

/// Resolves one export of `module`, as the function pointer type `$ty`.
macro_rules! export {
    ($module:expr, $path:expr, $name:literal, $ty:ty) => {{
        const NAME: &CStr = match CStr::from_bytes_with_nul(concat!($name, "\0").as_bytes()) {
            Ok(name) => name,
            Err(_) => panic!("an export name has an interior NUL"),
        };
        // SAFETY: $module is a live module handle (held by the `Module` guard in `load`),
        // and NAME is a NUL-terminated ASCII string.
        let address = unsafe { GetProcAddress($module, NAME.as_ptr().cast()) };
        match address {
            // SAFETY: the export named $name has the signature $ty in computecore.h (and in
            // the stand-in DLL of the tests); both are `extern "system"` function pointers
            // of the same size, so the transmute only changes the type the compiler sees.
            Some(f) => unsafe {
                std::mem::transmute::<unsafe extern "system" fn() -> isize, $ty>(f)
            },
            None => {
                return Err(LoadError::Export {
                    export: $name,
                    path: $path,
                });
            }
        }
    }};
}

impl Api {
    /// Loads `file_name` from System32 or, when it is not there, from the directory of the
    /// running executable, and resolves the exports.
    ///
    /// System32 is searched first so that the real computecore.dll always wins; the
    /// executable's directory is the fallback where a stand-in DLL can be placed (Wine).
    /// The current directory and `PATH` are never searched (DLL planting).
    ///
    /// Each call loads the module again (Windows counts the references); callers load a
    /// library once per process and keep the `&'static Api`.
    pub(crate) fn load(file_name: &WideCString) -> Result<&'static Api, LoadError> {
        // SAFETY: file_name is a NUL-terminated UTF-16 string that outlives the call; the
        // file handle argument must be null; the flag is a valid LOAD_LIBRARY_SEARCH_* value.
        let mut handle = unsafe {
            LoadLibraryExW(
                file_name.as_ptr(),
                ptr::null_mut(),
                LOAD_LIBRARY_SEARCH_SYSTEM32,
            )
        };
        if handle.is_null() {
            // SAFETY: reads the calling thread's last-error value; no preconditions.
            let first = unsafe { GetLastError() };
            if first != ERROR_MOD_NOT_FOUND {
                return Err(LoadError::Library { code: first });
            }
            // SAFETY: as above; the flags are a valid combination (the DLL from the
            // application directory, its dependencies from there or System32).
            handle = unsafe {
                LoadLibraryExW(
                    file_name.as_ptr(),
                    ptr::null_mut(),
                    LOAD_LIBRARY_SEARCH_APPLICATION_DIR | LOAD_LIBRARY_SEARCH_SYSTEM32,
                )
            };
            if handle.is_null() {
                // SAFETY: reads the calling thread's last-error value; no preconditions.
                let code = unsafe { GetLastError() };
                return Err(LoadError::Library { code });
            }
        }
        let module = Module(handle);
        let path = module_path(module.0);
        let api = Api {
            modify_service_settings: export!(
                module.0,
                path,
                "HcsModifyServiceSettings",
                HcsModifyServiceSettingsFn
            ),
            get_service_properties: export!(
                module.0,
                path,
                "HcsGetServiceProperties",
                HcsGetServicePropertiesFn
            ),
            open_compute_system: export!(
                module.0,
                path,
                "HcsOpenComputeSystem",
                HcsOpenComputeSystemFn
            ),
            create_operation: export!(module.0, path, "HcsCreateOperation", HcsCreateOperationFn),
            modify_compute_system: export!(
                module.0,
                path,
                "HcsModifyComputeSystem",
                HcsModifyComputeSystemFn
            ),
            wait_for_operation_result: export!(
                module.0,
                path,
                "HcsWaitForOperationResult",
                HcsWaitForOperationResultFn
            ),
            get_operation_result: export!(
                module.0,
                path,
                "HcsGetOperationResult",
                HcsGetOperationResultFn
            ),
            cancel_operation: export!(module.0, path, "HcsCancelOperation", HcsCancelOperationFn),
            close_operation: export!(module.0, path, "HcsCloseOperation", HcsCloseOperationFn),
            close_compute_system: export!(
                module.0,
                path,
                "HcsCloseComputeSystem",
                HcsCloseComputeSystemFn
            ),
            path,
        };
        module.keep();
        Ok(Box::leak(Box::new(api)))
    }

    /// The file the DLL was loaded from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `HcsModifyServiceSettings(settings, &result)`.
    pub(crate) fn modify_service_settings(&self, settings: &WideCString) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: settings is NUL-terminated and outlives the (synchronous) call; result is
        // a valid out-pointer, initialised to null so an untouched result reads as none.
        let hresult = unsafe { (self.modify_service_settings)(settings.as_ptr(), &mut result) };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }

    /// `HcsGetServiceProperties(query, &result)`.
    pub(crate) fn get_service_properties(&self, query: &WideCString) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: query is NUL-terminated and outlives the (synchronous) call; result is a
        // valid out-pointer, initialised to null.
        let hresult = unsafe { (self.get_service_properties)(query.as_ptr(), &mut result) };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }

    /// `HcsOpenComputeSystem(id, GENERIC_ALL, &system)`.
    pub(crate) fn open_compute_system(&self, id: &WideCString) -> Result<ComputeSystem<'_>, i32> {
        let mut handle: HcsSystem = ptr::null_mut();
        // SAFETY: id is NUL-terminated and outlives the call; handle is a valid out-pointer.
        let hresult = unsafe { (self.open_compute_system)(id.as_ptr(), GENERIC_ALL, &mut handle) };
        if hresult < 0 {
            return Err(hresult);
        }
        if handle.is_null() {
            // Success without a handle: nothing to close, and nothing to use.
            return Err(windows_sys::Win32::Foundation::E_POINTER);
        }
        Ok(ComputeSystem { api: self, handle })
    }

    /// `HcsCreateOperation(NULL, NULL)`: an operation waited on with
    /// [`Operation::wait`]; `None` when HCS could not create one.
    ///
    /// `'doc` is the lifetime of the documents the operation is started with: they stay
    /// alive until the operation is closed.
    pub(crate) fn create_operation<'doc>(&'doc self) -> Option<Operation<'doc>> {
        // SAFETY: a null context and a null callback are documented as valid (the operation
        // is then waited on with HcsWaitForOperationResult).
        let handle = unsafe { (self.create_operation)(ptr::null(), None) };
        if handle.is_null() {
            return None;
        }
        Some(Operation {
            api: self,
            handle,
            _documents: PhantomData,
        })
    }
}

/// An open compute system, closed with `HcsCloseComputeSystem` when dropped.
#[derive(Debug)]
pub(crate) struct ComputeSystem<'api> {
    api: &'api Api,
    handle: HcsSystem,
}

impl<'api> ComputeSystem<'api> {
    /// `HcsModifyComputeSystem(system, operation, settings, NULL)`: starts the
    /// modification; its result comes from [`Operation::wait`].
    pub(crate) fn modify<'doc>(
        &self,
        operation: &Operation<'doc>,
        settings: &'doc WideCString,
    ) -> HRESULT
    where
        'api: 'doc,
    {
        // SAFETY: both handles are open (they are closed only when their owners drop, which
        // the borrows here prevent); settings is NUL-terminated and, by the 'doc bound,
        // outlives the operation, so it stays valid for as long as HCS may read it; a null
        // identity token means "the caller's identity".
        unsafe {
            (self.api.modify_compute_system)(
                self.handle,
                operation.handle,
                settings.as_ptr(),
                ptr::null_mut(),
            )
        }
    }
}

impl Drop for ComputeSystem<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful HcsOpenComputeSystem and is closed once,
        // here; the Api (and so the DLL) outlives this value by the 'api borrow.
        unsafe { (self.api.close_compute_system)(self.handle) };
    }
}

/// An HCS operation, closed with `HcsCloseOperation` when dropped.
#[derive(Debug)]
pub(crate) struct Operation<'doc> {
    api: &'doc Api,
    handle: HcsOperationHandle,
    /// The documents the operation was started with must outlive it. Invariant in 'doc, so
    /// the borrow checker cannot shorten 'doc below the operation's own life.
    _documents: PhantomData<fn(&'doc WideCString) -> &'doc WideCString>,
}

impl Operation<'_> {
    /// `HcsWaitForOperationResult(operation, timeout_ms, &result)`.
    pub(crate) fn wait(&self, timeout_ms: u32) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: the operation handle is open (closed only on drop); result is a valid
        // out-pointer, initialised to null.
        let hresult =
            unsafe { (self.api.wait_for_operation_result)(self.handle, timeout_ms, &mut result) };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }
}

impl Operation<'_> {
    /// `HcsGetOperationResult(operation, &result)`: the result of an operation that ended
    /// (or failed to start), with its result document; `HCS_E_OPERATION_PENDING` while it
    /// runs.
    pub(crate) fn result(&self) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: the operation handle is open (closed only on drop); result is a valid
        // out-pointer, initialised to null.
        let hresult = unsafe { (self.api.get_operation_result)(self.handle, &mut result) };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }

    /// `HcsCancelOperation(operation)`: asks HCS to stop the operation. It may still
    /// complete; [`Operation::wait`] tells how it ended.
    pub(crate) fn cancel(&self) -> HRESULT {
        // SAFETY: the operation handle is open (closed only on drop); the call takes
        // nothing else.
        unsafe { (self.api.cancel_operation)(self.handle) }
    }
}

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from HcsCreateOperation (non-null) and is closed once,
        // here; the Api outlives this value by the 'doc borrow.
        unsafe { (self.api.close_operation)(self.handle) };
    }
}

/// The final path of an open file (`GetFinalPathNameByHandleW`, normalised, with the DOS
/// volume name: `\\?\C:\dir\file`): where the handle really is, whatever links or
/// junctions the path that opened it went through.
pub(crate) fn final_path_of(file: &std::fs::File) -> io::Result<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use std::os::windows::io::AsRawHandle;
    let handle = file.as_raw_handle();
    let mut buffer = vec![0u16; 260];
    loop {
        let capacity = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: handle is the open handle of `file`, borrowed for the call (the File
        // outlives it); buffer is valid for `capacity` u16 writes; flags 0 are
        // FILE_NAME_NORMALIZED | VOLUME_NAME_DOS, a valid combination.
        let needed = unsafe { GetFinalPathNameByHandleW(handle, buffer.as_mut_ptr(), capacity, 0) };
        let needed = needed as usize;
        if needed == 0 {
            return Err(io::Error::last_os_error());
        }
        if needed < buffer.len() {
            buffer.truncate(needed);
            return Ok(PathBuf::from(std::ffi::OsString::from_wide(&buffer)));
        }
        // Too small: `needed` is the size wanted, with the terminating NUL.
        buffer.resize(needed + 1, 0);
    }
}

/// The full path of a loaded module; empty when Windows cannot tell.
fn module_path(module: HMODULE) -> PathBuf {
    use std::os::windows::ffi::OsStringExt;
    let mut buffer = vec![0u16; 260];
    loop {
        let capacity = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: module is a live module handle; buffer is valid for `capacity` u16 writes.
        let written = unsafe { GetModuleFileNameW(module, buffer.as_mut_ptr(), capacity) };
        let written = written as usize;
        if written == 0 {
            return PathBuf::new();
        }
        if written < buffer.len() {
            buffer.truncate(written);
            return PathBuf::from(std::ffi::OsString::from_wide(&buffer));
        }
        if buffer.len() >= 32_768 {
            return PathBuf::new();
        }
        buffer.resize(buffer.len() * 2, 0);
    }
}

/// The registry hives credguard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegRoot {
    /// `HKEY_LOCAL_MACHINE`.
    LocalMachine,
    /// `HKEY_CURRENT_USER` (the tests use it: it is writable without administrator rights).
    #[cfg_attr(not(test), allow(dead_code))]
    CurrentUser,
}

/// An open registry key, closed when dropped.
#[derive(Debug)]
pub(crate) struct RegKey(HKEY);

/// A registry value: its `REG_*` type and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegValue {
    pub(crate) kind: u32,
    pub(crate) data: Vec<u8>,
}

impl RegKey {
    /// `RegOpenKeyExW(root, subkey, 0, KEY_READ)`; the error is the Win32 error code.
    pub(crate) fn open(root: RegRoot, subkey: &WideCString) -> Result<RegKey, u32> {
        let root = match root {
            RegRoot::LocalMachine => HKEY_LOCAL_MACHINE,
            RegRoot::CurrentUser => HKEY_CURRENT_USER,
        };
        let mut key: HKEY = ptr::null_mut();
        // SAFETY: root is a predefined key; subkey is NUL-terminated and outlives the call;
        // key is a valid out-pointer.
        let status = unsafe { RegOpenKeyExW(root, subkey.as_ptr(), 0, KEY_READ, &mut key) };
        if status == ERROR_SUCCESS {
            Ok(RegKey(key))
        } else {
            Err(status)
        }
    }

    /// `RegQueryValueExW`: the type and the bytes of value `name`; the error is the Win32
    /// error code.
    pub(crate) fn query(&self, name: &WideCString) -> Result<RegValue, u32> {
        // The value can grow between the size query and the read: retry a few times.
        for _ in 0..8 {
            let mut kind = 0u32;
            let mut size = 0u32;
            // SAFETY: the key is open; name is NUL-terminated; a null data pointer asks for
            // the size only; kind and size are valid out-pointers.
            let status = unsafe {
                RegQueryValueExW(
                    self.0,
                    name.as_ptr(),
                    ptr::null(),
                    &mut kind,
                    ptr::null_mut(),
                    &mut size,
                )
            };
            if status != ERROR_SUCCESS {
                return Err(status);
            }
            let mut data = vec![0u8; size as usize];
            // SAFETY: as above, and data is valid for `size` byte writes.
            let status = unsafe {
                RegQueryValueExW(
                    self.0,
                    name.as_ptr(),
                    ptr::null(),
                    &mut kind,
                    data.as_mut_ptr(),
                    &mut size,
                )
            };
            match status {
                ERROR_SUCCESS => {
                    data.truncate(size as usize);
                    return Ok(RegValue { kind, data });
                }
                ERROR_MORE_DATA => {}
                other => return Err(other),
            }
        }
        Err(ERROR_MORE_DATA)
    }
}

impl Drop for RegKey {
    fn drop(&mut self) {
        // SAFETY: self.0 is a key RegOpenKeyExW opened and that is closed once, here.
        unsafe { RegCloseKey(self.0) };
    }
}

// --- Security descriptors of files and directories ----------------------------------------

/// An allocation Windows made with `LocalAlloc` and handed over, freed when dropped.
struct LocalBox(*mut c_void);

impl Drop for LocalBox {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: self.0 was allocated by Windows with LocalAlloc and handed to us (the
            // constructors say where); nothing points into it once this value is dropped
            // (borrows of it end first), and it is freed exactly once, here.
            let leaked: HLOCAL = unsafe { LocalFree(self.0) };
            debug_assert!(leaked.is_null(), "LocalFree failed");
        }
    }
}

/// A security descriptor (owner, DACL, control flags) that Windows allocated, freed when
/// dropped.
pub(crate) struct SecurityDescriptor(LocalBox);

impl std::fmt::Debug for SecurityDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityDescriptor")
    }
}

impl SecurityDescriptor {
    /// `ConvertStringSecurityDescriptorToSecurityDescriptorW`: a descriptor from its SDDL text.
    pub(crate) fn from_sddl(sddl: &WideCString) -> io::Result<Self> {
        let mut raw: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: sddl is NUL-terminated and outlives the call; raw is a valid out-pointer;
        // the size out-pointer is optional and null.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut raw,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // On success raw is a self-relative descriptor from LocalAlloc that we now own.
        Ok(SecurityDescriptor(LocalBox(raw)))
    }

    fn as_raw(&self) -> PSECURITY_DESCRIPTOR {
        self.0.0
    }

    /// The owner, the DACL and whether it is protected, as this descriptor holds them.
    pub(crate) fn security(&self) -> io::Result<FileSecurity> {
        let mut control = 0u16;
        let mut revision = 0u32;
        // SAFETY: the descriptor is valid (owned by self); control and revision are valid
        // out-pointers.
        let ok =
            unsafe { GetSecurityDescriptorControl(self.as_raw(), &mut control, &mut revision) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut owner: PSID = ptr::null_mut();
        let mut defaulted = 0;
        // SAFETY: as above; owner and defaulted are valid out-pointers.
        if unsafe { GetSecurityDescriptorOwner(self.as_raw(), &mut owner, &mut defaulted) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let owner = if owner.is_null() {
            None
        } else {
            // SAFETY: owner points to the owner SID inside the descriptor, which self keeps
            // alive during the call.
            Some(unsafe { sid_string(owner) }?)
        };
        let mut present = 0;
        let mut dacl: *mut ACL = ptr::null_mut();
        // SAFETY: as above; present, dacl and defaulted are valid out-pointers.
        let ok = unsafe {
            GetSecurityDescriptorDacl(self.as_raw(), &mut present, &mut dacl, &mut defaulted)
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // No DACL, or a NULL one: either way everyone has full access.
        let dacl = if present == 0 || dacl.is_null() {
            None
        } else {
            // SAFETY: dacl points to the ACL inside the descriptor, which self keeps alive
            // and unchanged during the call.
            Some(unsafe { acl_entries(dacl) }?)
        };
        Ok(FileSecurity {
            owner,
            dacl,
            protected: control & SE_DACL_PROTECTED != 0,
        })
    }
}

/// One access control entry of a DACL, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ace {
    /// `ACCESS_ALLOWED_ACE_TYPE`, `ACCESS_DENIED_ACE_TYPE`, ...
    pub(crate) kind: u8,
    /// `OBJECT_INHERIT_ACE`, `CONTAINER_INHERIT_ACE`, `INHERITED_ACE`, ...
    pub(crate) flags: u8,
    /// The access mask; 0 for the kinds not decoded.
    pub(crate) mask: u32,
    /// The trustee (`S-1-5-18`), for allow and deny entries; `None` for the other kinds.
    pub(crate) sid: Option<String>,
}

impl Ace {
    /// Whether the entry is of a kind that denies access (and can therefore grant none).
    pub(crate) fn is_deny(&self) -> bool {
        matches!(
            u32::from(self.kind),
            ACCESS_DENIED_ACE_TYPE
                | ACCESS_DENIED_OBJECT_ACE_TYPE
                | ACCESS_DENIED_CALLBACK_ACE_TYPE
                | ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE
        )
    }
}

/// The owner and DACL of a file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSecurity {
    /// The owner's SID, if the descriptor names one.
    pub(crate) owner: Option<String>,
    /// The entries, in order; `None` for a NULL DACL, which lets everyone do everything.
    pub(crate) dacl: Option<Vec<Ace>>,
    /// Whether the DACL is protected from inheriting entries of the parent directory.
    pub(crate) protected: bool,
}

/// `GetNamedSecurityInfoW`: the owner and the DACL of a file or directory.
pub(crate) fn file_security(path: &WideCString) -> io::Result<FileSecurity> {
    let mut raw: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: path is NUL-terminated and outlives the call; raw is a valid out-pointer; the
    // owner, group, DACL and SACL out-pointers are optional when the whole descriptor is
    // asked for, and null.
    let status = unsafe {
        GetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut raw,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(win32_error(status));
    }
    // On success raw is a self-relative descriptor from LocalAlloc that we now own.
    SecurityDescriptor(LocalBox(raw)).security()
}

/// The entries of an ACL.
///
/// # Safety
/// `acl` points to a valid ACL that stays alive and unchanged during the call.
unsafe fn acl_entries(acl: *const ACL) -> io::Result<Vec<Ace>> {
    let mut info = ACL_SIZE_INFORMATION {
        AceCount: 0,
        AclBytesInUse: 0,
        AclBytesFree: 0,
    };
    // SAFETY: acl is valid (caller's contract); info is a writable ACL_SIZE_INFORMATION of
    // the size passed.
    let ok = unsafe {
        GetAclInformation(
            acl,
            (&raw mut info).cast(),
            size_of::<ACL_SIZE_INFORMATION>() as u32,
            AclSizeInformation,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut entries = Vec::with_capacity(info.AceCount as usize);
    for index in 0..info.AceCount {
        let mut ace: *mut c_void = ptr::null_mut();
        // SAFETY: acl is valid, index is below its entry count, ace is a valid out-pointer.
        if unsafe { GetAce(acl, index, &mut ace) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: ace points to an entry inside the ACL; every entry starts with an
        // ACE_HEADER, and entries are DWORD-aligned inside an ACL.
        let header = unsafe { ace.cast::<ACE_HEADER>().read() };
        let kind = u32::from(header.AceType);
        let (mask, sid) = if kind == ACCESS_ALLOWED_ACE_TYPE || kind == ACCESS_DENIED_ACE_TYPE {
            // Allow and deny entries share one layout: header, mask, then the SID from
            // `SidStart` on, inside the entry (whose AceSize covers it).
            let entry = ace.cast::<ACCESS_ALLOWED_ACE>();
            // SAFETY: entry points to an ACCESS_ALLOWED_ACE-shaped entry (kind checked
            // above), DWORD-aligned, inside the ACL; the mask is read by value.
            let mask = unsafe { (*entry).Mask };
            // SAFETY: as above; only the address of SidStart is taken, no reference made.
            let sid: PSID = unsafe { &raw mut (*entry).SidStart }.cast();
            // SAFETY: sid points to the entry's SID, inside the ACL, alive during the call.
            (mask, Some(unsafe { sid_string(sid) }?))
        } else {
            (0, None)
        };
        entries.push(Ace {
            kind: header.AceType,
            flags: header.AceFlags,
            mask,
            sid,
        });
    }
    Ok(entries)
}

/// `ConvertSidToStringSidW`: `S-1-5-18` and so on.
///
/// # Safety
/// `sid` points to a valid SID that stays alive during the call.
unsafe fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text: PWSTR = ptr::null_mut();
    // SAFETY: sid is valid (caller's contract); text is a valid out-pointer.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success text is a NUL-terminated string from LocalAlloc that we own and
    // do not use afterwards.
    unsafe { take_local_string(text) }
        .ok_or_else(|| io::Error::other("ConvertSidToStringSidW returned no string"))
}

/// A kernel handle, closed when dropped.
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: self.0 is a handle this process opened and closes once, here.
        unsafe { CloseHandle(self.0) };
    }
}

/// `OpenProcessToken` of this process.
fn process_token(access: TOKEN_ACCESS_MASK) -> io::Result<OwnedHandle> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing; token is a
    // valid out-pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), access, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedHandle(token))
}

/// The `TokenUser` information of a token: a TOKEN_USER followed by the SID it points to.
/// `u64` elements, so that the TOKEN_USER (which holds a pointer) is aligned.
fn token_user(token: &OwnedHandle) -> io::Result<Vec<u64>> {
    let mut size = 0u32;
    // SAFETY: the token is open with TOKEN_QUERY; a null buffer of length 0 asks for the
    // size only; size is a valid out-pointer. The call fails (ERROR_INSUFFICIENT_BUFFER) by
    // design; only the size matters.
    unsafe { GetTokenInformation(token.0, TokenUser, ptr::null_mut(), 0, &mut size) };
    if size == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u64; (size as usize).div_ceil(size_of::<u64>())];
    // SAFETY: buffer is valid for at least `size` bytes of writes and 8-byte aligned; size
    // is a valid out-pointer.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            size,
            &mut size,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buffer)
}

/// The SID of the user this process runs as (`TokenUser` of the process token), as text.
pub(crate) fn current_user_sid() -> io::Result<String> {
    let token = process_token(TOKEN_QUERY)?;
    let buffer = token_user(&token)?;
    // SAFETY: GetTokenInformation(TokenUser) filled the buffer with a TOKEN_USER at its
    // start (the buffer is 8-byte aligned and at least that large), whose Sid points into
    // the buffer, which lives until the end of this function.
    let sid = unsafe { buffer.as_ptr().cast::<TOKEN_USER>().read() }
        .User
        .Sid;
    // SAFETY: sid points to a valid SID inside buffer, alive during the call.
    unsafe { sid_string(sid) }
}

/// `CreateDirectoryW` with a security descriptor: a directory (its parent must exist) whose
/// owner and DACL are those of `descriptor`. An existing directory is an error of kind
/// `AlreadyExists`.
pub(crate) fn create_directory(
    path: &WideCString,
    descriptor: &SecurityDescriptor,
) -> io::Result<()> {
    let attributes = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.as_raw(),
        bInheritHandle: 0,
    };
    // SAFETY: path is NUL-terminated and outlives the call; attributes is a valid
    // SECURITY_ATTRIBUTES whose descriptor is alive (borrowed) during the call.
    if unsafe { CreateDirectoryW(path.as_ptr(), &attributes) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `SetNamedSecurityInfoW`: replaces the DACL of a file or directory by the DACL of
/// `descriptor`, protected from inheritance. On a directory, Windows then re-applies the
/// inheritable entries to what is inside (the entries those files inherited are replaced).
pub(crate) fn set_protected_dacl(
    path: &WideCString,
    descriptor: &SecurityDescriptor,
) -> io::Result<()> {
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = ptr::null_mut();
    // SAFETY: the descriptor is valid; present, dacl and defaulted are valid out-pointers.
    let ok = unsafe {
        GetSecurityDescriptorDacl(descriptor.as_raw(), &mut present, &mut dacl, &mut defaulted)
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    if present == 0 || dacl.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the security descriptor has no DACL to set",
        ));
    }
    // SAFETY: path is NUL-terminated and outlives the call; dacl points into the
    // descriptor, which is borrowed (alive) during the call; only the DACL is set, so the
    // owner, group and SACL pointers are null.
    let status = unsafe {
        SetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    };
    if status != ERROR_SUCCESS {
        return Err(win32_error(status));
    }
    Ok(())
}

/// Runs `f` on this thread as a stranger would: impersonating this process's own token
/// restricted (`CreateRestrictedToken`) so that its user and the Administrators group can
/// only deny access, and without any privilege but bypass-traverse-checking. An access
/// check then goes as for another, ordinary local user: only what the token's remaining
/// groups (Everyone, Users, Authenticated Users, INTERACTIVE, ...) are granted counts.
///
/// Test support: Windows enforces such checks, Wine does not.
#[cfg(test)]
pub(crate) fn as_stranger<R>(f: impl FnOnce() -> R) -> io::Result<R> {
    use windows_sys::Win32::Security::Authorization::ConvertStringSidToSidW;
    use windows_sys::Win32::Security::{
        CreateRestrictedToken, DISABLE_MAX_PRIVILEGE, ImpersonateLoggedOnUser, RevertToSelf,
        SID_AND_ATTRIBUTES, TOKEN_DUPLICATE, TOKEN_IMPERSONATE,
    };

    let token = process_token(TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_IMPERSONATE)?;
    let user = token_user(&token)?;
    // SAFETY: as in current_user_sid: the buffer starts with an aligned TOKEN_USER whose
    // Sid points into the buffer, which lives until the end of this function.
    let user_sid = unsafe { user.as_ptr().cast::<TOKEN_USER>().read() }
        .User
        .Sid;
    let administrators_text =
        WideCString::new("S-1-5-32-544").map_err(|_| io::Error::other("a SID with a NUL"))?;
    let mut administrators: PSID = ptr::null_mut();
    // SAFETY: the text is NUL-terminated and outlives the call; administrators is a valid
    // out-pointer.
    if unsafe { ConvertStringSidToSidW(administrators_text.as_ptr(), &mut administrators) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // On success the SID is a LocalAlloc'd allocation that we own.
    let administrators = LocalBox(administrators);
    let disable = [
        SID_AND_ATTRIBUTES {
            Sid: user_sid,
            Attributes: 0,
        },
        SID_AND_ATTRIBUTES {
            Sid: administrators.0,
            Attributes: 0,
        },
    ];
    let mut restricted: HANDLE = ptr::null_mut();
    // SAFETY: the token is open with TOKEN_DUPLICATE; disable holds two valid SIDs, alive
    // during the call (in `user` and `administrators`); no privilege and no restricting SID
    // is passed (counts 0, null pointers); restricted is a valid out-pointer.
    let ok = unsafe {
        CreateRestrictedToken(
            token.0,
            DISABLE_MAX_PRIVILEGE,
            disable.len() as u32,
            disable.as_ptr(),
            0,
            ptr::null(),
            0,
            ptr::null(),
            &mut restricted,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let restricted = OwnedHandle(restricted);
    // SAFETY: restricted is an open primary token with the access of `token`, which
    // includes the TOKEN_QUERY and TOKEN_DUPLICATE the call needs.
    if unsafe { ImpersonateLoggedOnUser(restricted.0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    /// Ends the impersonation on every path out, unwinding included.
    struct Revert;
    impl Drop for Revert {
        fn drop(&mut self) {
            // SAFETY: ends the impersonation this thread started above; takes no argument.
            if unsafe { RevertToSelf() } == 0 {
                // The thread would go on as the stranger: nothing after this is trustworthy.
                std::process::abort();
            }
        }
    }
    let _revert = Revert;
    Ok(f())
}

/// The operating system's message for a Win32 error code.
pub(crate) fn win32_error(code: u32) -> io::Error {
    io::Error::from_raw_os_error(i32::try_from(code).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_strings_are_nul_terminated_utf16() {
        let w = WideCString::new("añ日🚀").unwrap();
        assert_eq!(String::from_utf16(w.units()).unwrap(), "añ日🚀");
        assert_eq!(w.0.last(), Some(&0));
        assert_eq!(w.0.iter().filter(|&&u| u == 0).count(), 1);
        assert_eq!(
            WideCString::new("ab\0cd"),
            Err(InteriorNul { byte_offset: 2 })
        );
        assert_eq!(WideCString::new("").unwrap().units(), &[] as &[u16]);
    }
}
