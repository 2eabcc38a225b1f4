//! computecore.dll, loaded at run time, and the Host Compute Service calls credguard makes.
//!
//! [`Api::load`] loads the DLL once and keeps it for the rest of the process; every call
//! takes its strings as [`WideCString`]s and returns the HRESULT with the result document
//! as an owned `String`, the HCS allocation freed before the call returns.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::ptr;

use windows_sys::Win32::Foundation::{
    E_POINTER, ERROR_MOD_NOT_FOUND, FreeLibrary, GENERIC_ALL, GetLastError, HMODULE,
};
use windows_sys::Win32::System::LibraryLoader::{
    GetModuleFileNameW, LOAD_LIBRARY_SEARCH_APPLICATION_DIR, LOAD_LIBRARY_SEARCH_SYSTEM32,
    LoadLibraryExW,
};
use windows_sys::core::{HRESULT, PWSTR};

use crate::abi::{ComputeCoreFns, HcsOperation, HcsSystem};
use crate::wide::{WideCString, take_local_string};

#[cfg(feature = "test-support")]
thread_local! {
    /// How many HCS result strings this thread released with `LocalFree` (tests check that
    /// every string HCS returned was released).
    static LOCAL_FREES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The number of HCS result strings released on this thread so far (feature
/// `test-support`).
#[cfg(feature = "test-support")]
#[must_use]
pub fn local_frees_on_this_thread() -> usize {
    LOCAL_FREES.with(std::cell::Cell::get)
}

/// Takes ownership of a string HCS returned, copies it into a `String` and frees it.
///
/// # Safety
/// As [`take_local_string`].
unsafe fn take_hcs_string(raw: PWSTR) -> Option<String> {
    // SAFETY: the caller's contract is take_local_string's.
    let text = unsafe { take_local_string(raw) };
    #[cfg(feature = "test-support")]
    if text.is_some() {
        LOCAL_FREES.with(|n| n.set(n.get() + 1));
    }
    text
}

/// What an HCS call returned: its HRESULT and the result document, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// The HRESULT the call returned (negative: a failure).
    pub hresult: HRESULT,
    /// The result document HCS returned with it, if any.
    pub document: Option<String>,
}

/// Why computecore.dll (or another DLL standing in for it) could not be used.
#[derive(Debug)]
pub enum LoadError {
    /// `LoadLibraryExW` failed.
    Library {
        /// The Win32 error code (`GetLastError`).
        code: u32,
    },
    /// The DLL loaded but lacks an export.
    Export {
        /// The name of the missing export.
        export: &'static str,
        /// The file the DLL was loaded from (empty when Windows cannot tell).
        path: PathBuf,
    },
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
pub struct Api {
    path: PathBuf,
    fns: ComputeCoreFns,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("path", &self.path).finish()
    }
}

impl Api {
    /// Loads `file_name` from System32 or, when it is not there, from the directory of the
    /// running executable, and resolves the exports.
    ///
    /// System32 is searched first so that the real computecore.dll always wins; the
    /// executable's directory is the fallback where a stand-in DLL can be placed (Wine).
    /// The current directory and `PATH` are never searched (DLL planting).
    ///
    /// The DLL is trusted to be computecore.dll or one with the same exports and
    /// signatures (as the stand-in of the tests is): the caller chooses the file name, and
    /// only those two places are searched.
    ///
    /// Each call loads the module again (Windows counts the references); callers load a
    /// library once per process and keep the `&'static Api`.
    ///
    /// # Errors
    /// [`LoadError::Library`] when the DLL cannot be loaded, [`LoadError::Export`] when it
    /// lacks one of the exports.
    pub fn load(file_name: &WideCString) -> Result<&'static Api, LoadError> {
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
        // SAFETY: module.0 is live (held by the guard, and kept loaded for the rest of the
        // process below once every export resolved); the DLL is computecore.dll or one with
        // its exports and signatures (this function's documented trust, as the file name is
        // searched for only in System32 and the executable's directory).
        let fns = match unsafe { ComputeCoreFns::resolve(module.0) } {
            Ok(fns) => fns,
            Err(export) => return Err(LoadError::Export { export, path }),
        };
        module.keep();
        Ok(Box::leak(Box::new(Api { path, fns })))
    }

    /// The file the DLL was loaded from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `HcsModifyServiceSettings(settings, &result)`.
    pub fn modify_service_settings(&self, settings: &WideCString) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: settings is NUL-terminated and outlives the (synchronous) call; result is
        // a valid out-pointer, initialised to null so an untouched result reads as none.
        let hresult = unsafe { (self.fns.modify_service_settings)(settings.as_ptr(), &mut result) };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }

    /// `HcsGetServiceProperties(query, &result)`.
    pub fn get_service_properties(&self, query: &WideCString) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: query is NUL-terminated and outlives the (synchronous) call; result is a
        // valid out-pointer, initialised to null.
        let hresult = unsafe { (self.fns.get_service_properties)(query.as_ptr(), &mut result) };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }

    /// `HcsOpenComputeSystem(id, GENERIC_ALL, &system)`.
    ///
    /// # Errors
    /// The HRESULT of the failed call (`E_POINTER` for a success without a handle).
    pub fn open_compute_system(&self, id: &WideCString) -> Result<ComputeSystem<'_>, HRESULT> {
        let mut handle: HcsSystem = ptr::null_mut();
        // SAFETY: id is NUL-terminated and outlives the call; handle is a valid out-pointer.
        let hresult =
            unsafe { (self.fns.open_compute_system)(id.as_ptr(), GENERIC_ALL, &mut handle) };
        if hresult < 0 {
            return Err(hresult);
        }
        if handle.is_null() {
            // Success without a handle: nothing to close, and nothing to use.
            return Err(E_POINTER);
        }
        Ok(ComputeSystem { api: self, handle })
    }

    /// `HcsCreateOperation(NULL, NULL)`: an operation waited on with
    /// [`Operation::wait`]; `None` when HCS could not create one.
    ///
    /// `'doc` is the lifetime of the documents the operation is started with: they stay
    /// alive until the operation is closed.
    #[must_use]
    pub fn create_operation<'doc>(&'doc self) -> Option<Operation<'doc>> {
        // SAFETY: a null context and a null callback are documented as valid (the operation
        // is then waited on with HcsWaitForOperationResult).
        let handle = unsafe { (self.fns.create_operation)(ptr::null(), None) };
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
pub struct ComputeSystem<'api> {
    api: &'api Api,
    handle: HcsSystem,
}

impl<'api> ComputeSystem<'api> {
    /// `HcsModifyComputeSystem(system, operation, settings, NULL)`: starts the
    /// modification; its result comes from [`Operation::wait`].
    pub fn modify<'doc>(&self, operation: &Operation<'doc>, settings: &'doc WideCString) -> HRESULT
    where
        'api: 'doc,
    {
        // SAFETY: both handles are open (they are closed only when their owners drop, which
        // the borrows here prevent); settings is NUL-terminated and, by the 'doc bound,
        // outlives the operation, so it stays valid for as long as HCS may read it; a null
        // identity token means "the caller's identity".
        unsafe {
            (self.api.fns.modify_compute_system)(
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
        unsafe { (self.api.fns.close_compute_system)(self.handle) };
    }
}

/// An HCS operation, closed with `HcsCloseOperation` when dropped.
#[derive(Debug)]
pub struct Operation<'doc> {
    api: &'doc Api,
    handle: HcsOperation,
    /// The documents the operation was started with must outlive it. Invariant in 'doc, so
    /// the borrow checker cannot shorten 'doc below the operation's own life.
    _documents: PhantomData<fn(&'doc WideCString) -> &'doc WideCString>,
}

impl Operation<'_> {
    /// `HcsWaitForOperationResult(operation, timeout_ms, &result)`.
    pub fn wait(&self, timeout_ms: u32) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: the operation handle is open (closed only on drop); result is a valid
        // out-pointer, initialised to null.
        let hresult = unsafe {
            (self.api.fns.wait_for_operation_result)(self.handle, timeout_ms, &mut result)
        };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }

    /// `HcsGetOperationResult(operation, &result)`: the result of an operation that ended
    /// (or failed to start), with its result document; `HCS_E_OPERATION_PENDING` while it
    /// runs.
    pub fn result(&self) -> CallOutcome {
        let mut result: PWSTR = ptr::null_mut();
        // SAFETY: the operation handle is open (closed only on drop); result is a valid
        // out-pointer, initialised to null.
        let hresult = unsafe { (self.api.fns.get_operation_result)(self.handle, &mut result) };
        CallOutcome {
            hresult,
            // SAFETY: HCS sets result to null or to a LocalAlloc'd NUL-terminated string
            // that the caller owns; it is taken exactly once, here.
            document: unsafe { take_hcs_string(result) },
        }
    }

    /// `HcsCancelOperation(operation)`: asks HCS to stop the operation. It may still
    /// complete; [`Operation::wait`] tells how it ended.
    pub fn cancel(&self) -> HRESULT {
        // SAFETY: the operation handle is open (closed only on drop); the call takes
        // nothing else.
        unsafe { (self.api.fns.cancel_operation)(self.handle) }
    }
}

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from HcsCreateOperation (non-null) and is closed once,
        // here; the Api outlives this value by the 'doc borrow.
        unsafe { (self.api.fns.close_operation)(self.handle) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_a_load_error_with_its_code() {
        let name = WideCString::new("credguard-winapi-no-such-library.dll").unwrap();
        match Api::load(&name) {
            Err(LoadError::Library { code }) => assert_eq!(code, ERROR_MOD_NOT_FOUND),
            other => panic!("expected LoadError::Library, got {other:?}"),
        }
    }

    #[test]
    fn a_dll_without_the_exports_is_a_load_error_naming_the_first_missing() {
        // kernel32.dll is in System32 everywhere (Wine included) and exports none of HCS.
        let name = WideCString::new("kernel32.dll").unwrap();
        match Api::load(&name) {
            Err(LoadError::Export { export, path }) => {
                assert_eq!(export, "HcsModifyServiceSettings");
                let file = path.file_name().map(|f| f.to_string_lossy().to_lowercase());
                assert_eq!(file.as_deref(), Some("kernel32.dll"), "{}", path.display());
            }
            other => panic!("expected LoadError::Export, got {other:?}"),
        }
    }
}
