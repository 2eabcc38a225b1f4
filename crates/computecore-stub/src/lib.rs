//! **Test infrastructure, never shipped**: a stand-in `computecore.dll` whose HCS functions
//! are answered by `credguard_emulator::Emulator`.
//!
//! Windows (and Wine) has no HCS we can drive in tests, so this DLL exports the ten
//! functions credguard's Windows backend calls, with the signatures of `computecore.h`:
//! `HcsModifyServiceSettings`, `HcsGetServiceProperties`, `HcsOpenComputeSystem`,
//! `HcsCreateOperation`, `HcsModifyComputeSystem`, `HcsWaitForOperationResult`,
//! `HcsGetOperationResult`, `HcsCancelOperation`, `HcsCloseOperation` and
//! `HcsCloseComputeSystem`. Placed next to an executable that has
//! no computecore.dll in System32 (a Wine prefix), it is what that executable loads, so
//! every line of the backend's FFI layer runs against it.
//!
//! # Where the state lives
//! If the environment variable `CREDGUARD_STUB_STATE_DIR` is set when the DLL is first
//! called, the emulator is `Emulator::persistent` in that directory: a test process (or
//! `credguard emulator inject` under Wine) opens the same directory to inject faults,
//! read the call log and check the instances. Otherwise the state is in memory, private to
//! the process.
//!
//! # Behaviour, as HCS documents it
//! - Result strings are allocated with `LocalAlloc`, to be freed with `LocalFree`. An empty
//!   result is returned as NULL (so a test can provoke a NULL result with an emulator
//!   fault answering an empty text).
//! - A failure returns the emulator's ResultError document (or its raw text); a failure
//!   the emulator describes only with a message gets a ResultError carrying that message.
//! - `HcsOpenComputeSystem` fails with `0xC037010E` for an id that is no utility VM of the
//!   emulator; `HcsModifyComputeSystem` runs the modification on a thread of its own, and
//!   `HcsWaitForOperationResult` waits for it with the given timeout
//!   (`HCS_E_OPERATION_TIMEOUT` when it runs out), so delays injected in the emulator
//!   exercise the caller's timeout. A configuration that is not JSON fails at once: the
//!   call returns the failure itself (`HCS_E_INVALID_JSON`) and the operation holds the
//!   ResultError document, for `HcsGetOperationResult`.
//! - `HcsCancelOperation` is honoured until the modification is applied: a cancelled
//!   modification stops (cutting an injected delay short), changes nothing, and ends with
//!   `ERROR_CANCELLED`, which the emulator's call log records. A cancel after it was
//!   applied changes nothing. `HcsGetOperationResult` answers `HCS_E_OPERATION_PENDING`
//!   while the operation runs.
//! - Only waited operations are supported: `HcsCreateOperation` with a completion callback
//!   returns NULL.
//!
//! `unsafe` is allowed in this crate alone besides credguard-winapi (credguard's Windows
//! FFI): the exports take and return raw pointers. Each unsafe block has a `// SAFETY:`
//! comment.

#![cfg(windows)]
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use credguard::hcs::hresult::HResult;
use credguard::hcs::{ErrorDocument, HcsError, HcsOperation, HcsService};
use credguard::wire::ResultError;
use credguard_emulator::Emulator;
use windows_sys::Win32::Foundation::HLOCAL;
use windows_sys::Win32::System::Memory::{LMEM_FIXED, LocalAlloc};
use windows_sys::core::{HRESULT, PCWSTR, PWSTR};

/// The environment variable naming the emulator's state directory.
pub const STATE_DIR_ENV: &str = "CREDGUARD_STUB_STATE_DIR";

/// `INFINITE` for `HcsWaitForOperationResult`.
const INFINITE: u32 = u32::MAX;
const E_POINTER: HResult = HResult(0x8000_4003_u32.cast_signed());
const HCS_E_OPERATION_NOT_STARTED: HResult = HResult(0x8037_0115_u32.cast_signed());
const HCS_E_OPERATION_ALREADY_STARTED: HResult = HResult(0x8037_0116_u32.cast_signed());
const HCS_E_OPERATION_PENDING: HResult = HResult(0x8037_0117_u32.cast_signed());
const HCS_E_OPERATION_ALREADY_CANCELLED: HResult = HResult(0x8037_0121_u32.cast_signed());

/// The emulator behind every export of this process.
fn emulator() -> Result<&'static Emulator, String> {
    static EMULATOR: OnceLock<Result<Emulator, String>> = OnceLock::new();
    EMULATOR
        .get_or_init(|| match std::env::var_os(STATE_DIR_ENV) {
            Some(dir) => Emulator::persistent(Path::new(&dir)).map_err(|e| {
                format!(
                    "the stand-in computecore.dll cannot open the emulator state in {} ({STATE_DIR_ENV}): {}",
                    Path::new(&dir).display(),
                    chain_line(&e)
                )
            }),
            None => Ok(Emulator::in_memory()),
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Reads a NUL-terminated UTF-16 argument.
///
/// # Safety
/// `text` is null or points to a NUL-terminated UTF-16 string that stays valid and
/// unchanged during the call.
unsafe fn read_wide(op: HcsOperation, what: &str, text: PCWSTR) -> Result<String, HcsError> {
    if text.is_null() {
        return Err(HcsError::local(
            op,
            E_POINTER,
            format!("the {what} is NULL"),
        ));
    }
    let mut len = 0usize;
    // SAFETY: the string is NUL-terminated (caller's contract): every index read, up to and
    // including the terminator, is inside it.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `text` is valid for `len` reads (just scanned) and unchanged during the call.
    let units = unsafe { std::slice::from_raw_parts(text, len) };
    String::from_utf16(units).map_err(|_| {
        HcsError::local(
            op,
            HResult::E_INVALIDARG,
            format!("the {what} is not valid UTF-16"),
        )
    })
}

/// Allocates `text` with `LocalAlloc` as a NUL-terminated UTF-16 string; NULL for none or
/// for an empty text. `Err` when the allocation fails.
fn local_wide(text: Option<&str>) -> Result<PWSTR, HResult> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(std::ptr::null_mut());
    };
    let mut units: Vec<u16> = text.encode_utf16().collect();
    units.push(0);
    let bytes = units.len() * size_of::<u16>();
    // SAFETY: LocalAlloc has no preconditions; LMEM_FIXED returns a pointer (or null).
    let memory: HLOCAL = unsafe { LocalAlloc(LMEM_FIXED, bytes) };
    if memory.is_null() {
        return Err(HResult::E_OUTOFMEMORY);
    }
    let out: PWSTR = memory.cast();
    // SAFETY: `memory` is a fresh allocation of `bytes` bytes, suitably aligned for u16
    // (LocalAlloc memory is aligned for any type), not overlapping `units`.
    unsafe { std::ptr::copy_nonoverlapping(units.as_ptr(), out, units.len()) };
    Ok(out)
}

/// Stores a result string through an out-pointer (if the caller gave one).
///
/// # Safety
/// `out` is null or valid for one `PWSTR` write.
unsafe fn put_result(out: *mut PWSTR, text: Option<&str>) -> Result<(), HResult> {
    if out.is_null() {
        return Ok(());
    }
    let value = local_wide(text)?;
    // SAFETY: `out` is non-null and valid for a write (caller's contract).
    unsafe { out.write(value) };
    Ok(())
}

/// The HRESULT and result document an HCS call answers with for an error.
fn error_answer(error: &HcsError) -> (HResult, Option<String>) {
    let text = match &error.document {
        ErrorDocument::Parsed(doc) => serde_json::to_string(doc).ok(),
        ErrorDocument::Raw(raw) => Some(raw.clone()),
        ErrorDocument::None => error.context.as_ref().map(|message| {
            let doc = ResultError {
                error: error.hresult.0,
                error_message: message.clone(),
                ..ResultError::default()
            };
            serde_json::to_string(&doc).unwrap_or_default()
        }),
    };
    (error.hresult, text)
}

/// Runs an export's body: the out-pointer is cleared first, a panic becomes
/// `E_UNEXPECTED`, and the answer's document is stored through `result`.
///
/// # Safety
/// `result` is null or valid for one `PWSTR` write.
unsafe fn answer(
    op: HcsOperation,
    result: *mut PWSTR,
    body: impl FnOnce() -> Result<Option<String>, HcsError>,
) -> HRESULT {
    // SAFETY: `result` is null or valid for a write (caller's contract).
    if let Err(hr) = unsafe { put_result(result, None) } {
        return hr.0;
    }
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        Err(HcsError::local(
            op,
            HResult::E_UNEXPECTED,
            "the stand-in computecore.dll panicked",
        ))
    });
    let (hresult, text) = match outcome {
        Ok(text) => (HResult::S_OK, text),
        Err(error) => error_answer(&error),
    };
    // SAFETY: as above.
    match unsafe { put_result(result, text.as_deref()) } {
        Ok(()) => hresult.0,
        Err(hr) => hr.0,
    }
}

fn unavailable(op: HcsOperation) -> impl FnOnce(String) -> HcsError {
    move |message| HcsError::local(op, HResult::E_UNEXPECTED, message)
}

/// `HRESULT HcsModifyServiceSettings(PCWSTR settings, PWSTR* result)`.
///
/// # Safety
/// `settings` is null or a NUL-terminated UTF-16 string; `result` is null or valid for one
/// `PWSTR` write. A string stored in `*result` is the caller's, to free with `LocalFree`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsModifyServiceSettings(
    settings: PCWSTR,
    result: *mut PWSTR,
) -> HRESULT {
    let op = HcsOperation::ModifyServiceSettings;
    // SAFETY: `result` is null or writable (this function's contract).
    unsafe {
        answer(op, result, || {
            // SAFETY: `settings` is null or NUL-terminated (this function's contract).
            let settings = read_wide(op, "settings document", settings)?;
            let emulator = emulator().map_err(unavailable(op))?;
            emulator.modify_service_settings(&settings).map(|()| None)
        })
    }
}

/// `HRESULT HcsGetServiceProperties(PCWSTR propertyQuery, PWSTR* result)`.
///
/// # Safety
/// As [`HcsModifyServiceSettings`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsGetServiceProperties(
    property_query: PCWSTR,
    result: *mut PWSTR,
) -> HRESULT {
    let op = HcsOperation::GetServiceProperties;
    // SAFETY: `result` is null or writable (this function's contract).
    unsafe {
        answer(op, result, || {
            // SAFETY: `property_query` is null or NUL-terminated (this function's contract).
            let query = read_wide(op, "property query", property_query)?;
            let emulator = emulator().map_err(unavailable(op))?;
            emulator.get_service_properties(&query).map(Some)
        })
    }
}

/// What an `HCS_SYSTEM` handle points to.
struct StubSystem {
    id: String,
}

/// `HRESULT HcsOpenComputeSystem(PCWSTR id, DWORD requestedAccess, HCS_SYSTEM* computeSystem)`.
///
/// # Safety
/// `id` is null or a NUL-terminated UTF-16 string; `compute_system` is null or valid for
/// one handle write. A handle stored there is closed with [`HcsCloseComputeSystem`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsOpenComputeSystem(
    id: PCWSTR,
    _requested_access: u32,
    compute_system: *mut *mut c_void,
) -> HRESULT {
    let op = HcsOperation::OpenComputeSystem;
    if compute_system.is_null() {
        return E_POINTER.0;
    }
    // SAFETY: non-null and writable (this function's contract).
    unsafe { compute_system.write(std::ptr::null_mut()) };
    let opened = catch_unwind(AssertUnwindSafe(|| -> Result<StubSystem, HResult> {
        // SAFETY: `id` is null or NUL-terminated (this function's contract).
        let id = unsafe { read_wide(op, "compute system id", id) }.map_err(|e| e.hresult)?;
        let emulator = emulator().map_err(|_| HResult::E_UNEXPECTED)?;
        match emulator.uvm(&id) {
            Ok(Some(_)) => Ok(StubSystem { id }),
            Ok(None) => Err(HResult::HCS_E_SYSTEM_NOT_FOUND_NT),
            Err(_) => Err(HResult::E_UNEXPECTED),
        }
    }))
    .unwrap_or(Err(HResult::E_UNEXPECTED));
    match opened {
        Ok(system) => {
            let handle = Box::into_raw(Box::new(system));
            // SAFETY: as above.
            unsafe { compute_system.write(handle.cast()) };
            HResult::S_OK.0
        }
        Err(hr) => hr.0,
    }
}

/// `void HcsCloseComputeSystem(HCS_SYSTEM computeSystem)`.
///
/// # Safety
/// `compute_system` is null or a handle from [`HcsOpenComputeSystem`] not closed yet, and
/// not used after this call.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsCloseComputeSystem(compute_system: *mut c_void) {
    if !compute_system.is_null() {
        // SAFETY: the handle is a Box<StubSystem> leaked by HcsOpenComputeSystem and not
        // closed before (this function's contract): it is reclaimed exactly once.
        drop(unsafe { Box::from_raw(compute_system.cast::<StubSystem>()) });
    }
}

/// Where an operation is.
enum OperationState {
    Created,
    Running,
    Done(HResult, Option<String>),
}

/// What an `HCS_OPERATION` handle points to (an `Arc`, shared with the thread that runs it).
struct StubOperation {
    state: Mutex<OperationState>,
    done: Condvar,
    cancelled: AtomicBool,
}

impl StubOperation {
    fn lock(&self) -> MutexGuard<'_, OperationState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Borrows the operation behind a handle, as a new `Arc` reference.
///
/// # Safety
/// `operation` is a handle from [`HcsCreateOperation`] not closed yet.
unsafe fn operation_ref(operation: *mut c_void) -> Arc<StubOperation> {
    // SAFETY: the handle is `Arc::into_raw` of a live Arc (this function's contract); the
    // ManuallyDrop keeps the handle's own reference, and the clone adds one for the caller.
    let handle = ManuallyDrop::new(unsafe { Arc::from_raw(operation.cast::<StubOperation>()) });
    Arc::clone(&handle)
}

/// `HCS_OPERATION HcsCreateOperation(const void* context, HCS_OPERATION_COMPLETION callback)`.
///
/// Returns NULL when a callback is given: the stand-in supports waited operations only.
///
/// # Safety
/// None beyond the ABI: the context is not dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsCreateOperation(
    _context: *const c_void,
    callback: Option<unsafe extern "system" fn(*mut c_void, *mut c_void)>,
) -> *mut c_void {
    if callback.is_some() {
        return std::ptr::null_mut();
    }
    let operation = Arc::new(StubOperation {
        state: Mutex::new(OperationState::Created),
        done: Condvar::new(),
        cancelled: AtomicBool::new(false),
    });
    Arc::into_raw(operation).cast_mut().cast()
}

/// `void HcsCloseOperation(HCS_OPERATION operation)`. A running modification finishes on
/// its own thread; its result is then dropped.
///
/// # Safety
/// `operation` is null or a handle from [`HcsCreateOperation`] not closed yet, and not
/// used after this call.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsCloseOperation(operation: *mut c_void) {
    if !operation.is_null() {
        // SAFETY: the handle is `Arc::into_raw` of a live Arc whose reference is released
        // exactly once, here (this function's contract).
        drop(unsafe { Arc::from_raw(operation.cast::<StubOperation>()) });
    }
}

/// `HRESULT HcsModifyComputeSystem(HCS_SYSTEM computeSystem, HCS_OPERATION operation,
/// PCWSTR configuration, HANDLE identity)`: starts the modification.
///
/// # Safety
/// `compute_system` and `operation` are open handles of this DLL (or null);
/// `configuration` is null or a NUL-terminated UTF-16 string, read during the call only.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsModifyComputeSystem(
    compute_system: *mut c_void,
    operation: *mut c_void,
    configuration: PCWSTR,
    _identity: *mut c_void,
) -> HRESULT {
    let op = HcsOperation::ModifyComputeSystem;
    if compute_system.is_null() || operation.is_null() {
        return HResult::E_INVALIDARG.0;
    }
    // SAFETY: an open handle from HcsOpenComputeSystem (this function's contract), only
    // read here.
    let id = unsafe { &*compute_system.cast::<StubSystem>() }.id.clone();
    // SAFETY: `configuration` is null or NUL-terminated (this function's contract).
    let settings = match unsafe { read_wide(op, "configuration", configuration) } {
        Ok(settings) => settings,
        Err(error) => return error.hresult.0,
    };
    // No result document can come back from this call: an emulator that cannot be
    // opened is reported by the HRESULT alone.
    let Ok(emulator) = emulator() else {
        return HResult::E_UNEXPECTED.0;
    };
    // SAFETY: an open handle from HcsCreateOperation (this function's contract).
    let shared = unsafe { operation_ref(operation) };
    {
        let mut state = shared.lock();
        if !matches!(*state, OperationState::Created) {
            return HCS_E_OPERATION_ALREADY_STARTED.0;
        }
        *state = OperationState::Running;
    }
    if serde_json::from_str::<serde_json::Value>(&settings).is_err() {
        // Refused at once: the call fails itself, and the operation keeps the emulator's
        // answer (logged in its call log) for HcsGetOperationResult.
        let (hresult, text) = match emulator.modify_compute_system(&id, &settings) {
            Ok(()) => (HResult::S_OK, None),
            Err(error) => error_answer(&error),
        };
        *shared.lock() = OperationState::Done(hresult, text);
        shared.done.notify_all();
        return hresult.0;
    }
    std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let cancelled = || shared.cancelled.load(Ordering::SeqCst);
            emulator.modify_compute_system_cancellable(&id, &settings, &cancelled)
        }))
        .unwrap_or_else(|_| {
            Err(HcsError::local(
                op,
                HResult::E_UNEXPECTED,
                "the stand-in computecore.dll panicked",
            ))
        });
        let done = match outcome {
            Ok(()) => OperationState::Done(HResult::S_OK, None),
            Err(error) => {
                let (hresult, text) = error_answer(&error);
                OperationState::Done(hresult, text)
            }
        };
        *shared.lock() = done;
        shared.done.notify_all();
    });
    HResult::S_OK.0
}

/// `HRESULT HcsWaitForOperationResult(HCS_OPERATION operation, DWORD timeoutMs,
/// PWSTR* resultDocument)`.
///
/// # Safety
/// `operation` is an open handle of this DLL (or null); `result_document` is null or valid
/// for one `PWSTR` write. A string stored there is the caller's, to free with `LocalFree`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsWaitForOperationResult(
    operation: *mut c_void,
    timeout_ms: u32,
    result_document: *mut PWSTR,
) -> HRESULT {
    // SAFETY: `result_document` is null or writable (this function's contract).
    if let Err(hr) = unsafe { put_result(result_document, None) } {
        return hr.0;
    }
    if operation.is_null() {
        return HResult::E_INVALIDARG.0;
    }
    // SAFETY: an open handle from HcsCreateOperation (this function's contract).
    let shared = unsafe { operation_ref(operation) };
    let state = shared.lock();
    if matches!(*state, OperationState::Created) {
        return HCS_E_OPERATION_NOT_STARTED.0;
    }
    let running = |s: &mut OperationState| matches!(s, OperationState::Running);
    let state = if timeout_ms == INFINITE {
        shared
            .done
            .wait_while(state, running)
            .unwrap_or_else(PoisonError::into_inner)
    } else {
        shared
            .done
            .wait_timeout_while(state, Duration::from_millis(timeout_ms.into()), running)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    };
    match &*state {
        OperationState::Done(hresult, text) => {
            // SAFETY: as above.
            match unsafe { put_result(result_document, text.as_deref()) } {
                Ok(()) => hresult.0,
                Err(hr) => hr.0,
            }
        }
        _ => HResult::HCS_E_OPERATION_TIMEOUT.0,
    }
}

/// `HRESULT HcsGetOperationResult(HCS_OPERATION operation, PWSTR* resultDocument)`: the
/// result of an operation that ended, with its document; `HCS_E_OPERATION_PENDING` while
/// it runs, `HCS_E_OPERATION_NOT_STARTED` before it started.
///
/// # Safety
/// `operation` is an open handle of this DLL (or null); `result_document` is null or valid
/// for one `PWSTR` write. A string stored there is the caller's, to free with `LocalFree`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsGetOperationResult(
    operation: *mut c_void,
    result_document: *mut PWSTR,
) -> HRESULT {
    // SAFETY: `result_document` is null or writable (this function's contract).
    if let Err(hr) = unsafe { put_result(result_document, None) } {
        return hr.0;
    }
    if operation.is_null() {
        return HResult::E_INVALIDARG.0;
    }
    // SAFETY: an open handle from HcsCreateOperation (this function's contract).
    let shared = unsafe { operation_ref(operation) };
    let state = shared.lock();
    match &*state {
        OperationState::Created => HCS_E_OPERATION_NOT_STARTED.0,
        OperationState::Running => HCS_E_OPERATION_PENDING.0,
        OperationState::Done(hresult, text) => {
            // SAFETY: as above.
            match unsafe { put_result(result_document, text.as_deref()) } {
                Ok(()) => hresult.0,
                Err(hr) => hr.0,
            }
        }
    }
}

/// `HRESULT HcsCancelOperation(HCS_OPERATION operation)`: a running modification stops
/// before it is applied (see the crate documentation); one that ended is left as it is.
///
/// # Safety
/// `operation` is an open handle of this DLL (or null).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn HcsCancelOperation(operation: *mut c_void) -> HRESULT {
    if operation.is_null() {
        return HResult::E_INVALIDARG.0;
    }
    // SAFETY: an open handle from HcsCreateOperation (this function's contract).
    let shared = unsafe { operation_ref(operation) };
    let state = shared.lock();
    if matches!(*state, OperationState::Created) {
        return HCS_E_OPERATION_NOT_STARTED.0;
    }
    if shared.cancelled.swap(true, Ordering::SeqCst) {
        return HCS_E_OPERATION_ALREADY_CANCELLED.0;
    }
    HResult::S_OK.0
}

/// An error and its sources on one line (`a: b: c`).
fn chain_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string().replace('\n', " ");
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string().replace('\n', " "));
        next = e.source();
    }
    out
}
