//! Every unsafe line of credguard: computecore.dll loaded at run time, its calls, the strings
//! it returns, and the registry.
//!
//! `unsafe_code` is denied in the workspace and allowed here alone, because calling into a
//! DLL through raw pointers cannot be done without it. Everything this module hands out is
//! safe to use: strings go in as [`WideCString`] (NUL-terminated, no interior NUL, by
//! construction), come back as owned Rust `String`s (the HCS allocation is freed with
//! `LocalFree` before the call returns, on every path), and the handles
//! ([`ComputeSystem`], [`Operation`], [`RegKey`], the module inside [`Api`]) close
//! themselves when dropped. Every unsafe block carries a `// SAFETY:` comment listing the
//! invariants it relies on.
//!
//! The function pointer types below are declared here rather than taken from windows-sys
//! because windows-sys links computecore.dll at load time, and the binary must start on a
//! Windows without it (`credguard credspec validate` works anywhere).

#![allow(unsafe_code)]

use std::ffi::{CStr, c_void};
use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::ptr;

use windows_sys::Win32::Foundation::{
    ERROR_MOD_NOT_FOUND, ERROR_MORE_DATA, ERROR_SUCCESS, FreeLibrary, GENERIC_ALL, GetLastError,
    HLOCAL, HMODULE, LocalFree,
};
use windows_sys::Win32::System::LibraryLoader::{
    GetModuleFileNameW, GetProcAddress, LOAD_LIBRARY_SEARCH_APPLICATION_DIR,
    LOAD_LIBRARY_SEARCH_SYSTEM32, LoadLibraryExW,
};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, KEY_READ, RegCloseKey, RegOpenKeyExW,
    RegQueryValueExW,
};
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
/// `raw` is null, or a NUL-terminated UTF-16 string allocated with `LocalAlloc` that the
/// caller owns and uses no more after this call.
unsafe fn take_hcs_string(raw: PWSTR) -> Option<String> {
    if raw.is_null() {
        return None;
    }
    // Freed by the guard on every path out of this function, unwinding included.
    struct Free(PWSTR);
    impl Drop for Free {
        fn drop(&mut self) {
            // SAFETY: self.0 is the non-null LocalAlloc'd string the caller of
            // take_hcs_string owns; nothing reads it after this guard is dropped, and it is
            // freed exactly once (the guard is not cloned or copied).
            let leaked: HLOCAL = unsafe { LocalFree(self.0.cast()) };
            debug_assert!(leaked.is_null(), "LocalFree failed on an HCS result string");
            #[cfg(all(test, feature = "stub-tests"))]
            LOCAL_FREES.with(|n| n.set(n.get() + 1));
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
    pub(crate) fn path(&self) -> &std::path::Path {
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

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from HcsCreateOperation (non-null) and is closed once,
        // here; the Api outlives this value by the 'doc borrow.
        unsafe { (self.api.close_operation)(self.handle) };
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
