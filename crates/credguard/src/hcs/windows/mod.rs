//! The real Host Compute Service on Windows: [`ComputeCore`], the [`HcsService`] backend over
//! computecore.dll (`registry://` credential specs are read by `credspec::registry`).
//!
//! computecore.dll is loaded at run time, on the first call, once per process, and never
//! unloaded (HCS may still be running code of it for an operation given up on): the binary
//! starts on any Windows, and a host without the DLL (older than Windows 10 1809 /
//! Windows Server 2019) gets an [`HcsError`] with operation [`HcsOperation::LoadLibrary`]
//! that says so.
//!
//! Documents cross as UTF-16; a document with a NUL character inside is refused before any
//! call. Every string HCS returns is freed with `LocalFree`, whatever the outcome. A failed
//! call becomes an [`HcsError`] carrying the ResultError document HCS sent with it. A call
//! running longer than the slow-call threshold (4 minutes unless configured) is logged as a
//! warning and waited for, never abandoned.
//!
//! State directories are made owner-only by the credguard-statefile crate.
//!
//! The Windows API itself is called through the safe interface of the `credguard-winapi`
//! crate, which holds all of credguard's unsafe code: this crate forbids it.

use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing::debug;

use crate::hcs::hresult::HResult;
use crate::hcs::watchdog::watch;
use crate::hcs::{HcsError, HcsOperation, HcsService};
use credguard_winapi::computecore::{Api, LoadError, Operation};
use credguard_winapi::wide::WideCString;

/// The DLL the Host Compute Service API lives in.
pub const COMPUTECORE_DLL: &str = "computecore.dll";

/// The first Windows releases with computecore.dll, as errors name them.
pub const MINIMUM_WINDOWS: &str = "Windows 10 version 1809 / Windows Server 2019";

/// How long a call may run before the watchdog logs a warning (hcsshim's default).
pub const DEFAULT_SLOW_CALL_THRESHOLD: Duration = Duration::from_secs(4 * 60);

/// How long `HcsWaitForOperationResult` waits for a compute-system modification.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The HCS backend over computecore.dll.
///
/// Cheap to create: nothing is loaded until the first call (or [`ComputeCore::load`]).
/// Safe to share between threads, like HCS itself.
pub struct ComputeCore {
    library: String,
    api: OnceLock<Result<&'static Api, HcsError>>,
    slow_call_threshold: Duration,
    operation_timeout: Duration,
}

impl std::fmt::Debug for ComputeCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.api.get() {
            None => "not loaded".to_owned(),
            Some(Ok(api)) => format!("loaded from {}", api.path().display()),
            Some(Err(_)) => "failed to load".to_owned(),
        };
        f.debug_struct("ComputeCore")
            .field("library", &self.library)
            .field("state", &state)
            .field("slow_call_threshold", &self.slow_call_threshold)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

impl Default for ComputeCore {
    fn default() -> Self {
        ComputeCore::new()
    }
}

impl ComputeCore {
    /// The backend over computecore.dll, with the default thresholds.
    #[must_use]
    pub fn new() -> Self {
        ComputeCore {
            library: COMPUTECORE_DLL.to_owned(),
            api: OnceLock::new(),
            slow_call_threshold: DEFAULT_SLOW_CALL_THRESHOLD,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Loads `file_name` instead of computecore.dll: a DLL with the same exports, searched
    /// for the same way (System32, then the executable's directory). A name with a path
    /// separator is refused when loading.
    #[must_use]
    pub fn with_library_name(mut self, file_name: impl Into<String>) -> Self {
        self.library = file_name.into();
        self.api = OnceLock::new();
        self
    }

    /// Calls running longer than this are logged as warnings (they are still waited for).
    #[must_use]
    pub fn with_slow_call_threshold(mut self, threshold: Duration) -> Self {
        self.slow_call_threshold = threshold;
        self
    }

    /// How long a compute-system modification is waited for before it fails with
    /// `HCS_E_OPERATION_TIMEOUT`.
    #[must_use]
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The slow-call threshold in force.
    #[must_use]
    pub fn slow_call_threshold(&self) -> Duration {
        self.slow_call_threshold
    }

    /// Loads the DLL now (if it is not loaded yet) and returns the file it was loaded from.
    ///
    /// # Errors
    /// An [`HcsError`] with operation [`HcsOperation::LoadLibrary`]: the DLL or one of its
    /// exports is missing, with the Windows version needed.
    pub fn load(&self) -> Result<&Path, HcsError> {
        self.api().map(Api::path)
    }

    fn api(&self) -> Result<&'static Api, HcsError> {
        self.api.get_or_init(|| loaded(&self.library)).clone()
    }
}

/// The DLL `library`, loaded on the first request of the process; later requests (from any
/// [`ComputeCore`]) get the same outcome, failures included.
fn loaded(library: &str) -> Result<&'static Api, HcsError> {
    type Loaded = Vec<(String, Result<&'static Api, HcsError>)>;
    static LOADED: Mutex<Loaded> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, outcome)) = loaded
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(library))
    {
        return outcome.clone();
    }
    let outcome = load(library);
    match &outcome {
        Ok(api) => debug!(path = %api.path().display(), "loaded {library}"),
        Err(error) => debug!(error = %error, "cannot load {library}"),
    }
    loaded.push((library.to_owned(), outcome.clone()));
    outcome
}

/// Loads the DLL and turns a failure into an error naming what is missing.
fn load(library: &str) -> Result<&'static Api, HcsError> {
    let op = HcsOperation::LoadLibrary;
    if library.is_empty() || library.contains(['/', '\\', ':', '\0']) {
        return Err(HcsError::local(
            op,
            HResult::E_INVALIDARG,
            format!(
                "`{library}` is not a DLL file name (a bare name such as computecore.dll is needed)"
            ),
        ));
    }
    let wide = WideCString::new(library).map_err(|_| {
        HcsError::local(
            op,
            HResult::E_INVALIDARG,
            "the DLL name contains a NUL character",
        )
    })?;
    Api::load(&wide).map_err(|error| match error {
        LoadError::Library { code } => HcsError::local(
            op,
            HResult::from_win32(code),
            format!(
                "cannot load {library} from System32 or from the directory of {exe} ({os}): \
                 the Host Compute Service API needs {MINIMUM_WINDOWS} or later",
                exe = current_exe_name(),
                os = credguard_winapi::win32_error(code),
            ),
        ),
        LoadError::Export { export, path } => HcsError::local(
            op,
            HResult::ERROR_PROC_NOT_FOUND,
            format!(
                "{} has no export {export}: credguard needs the computecore.dll of {MINIMUM_WINDOWS} or later",
                shown_path(&path, library)
            ),
        ),
    })
}

fn shown_path(path: &Path, fallback: &str) -> String {
    if path.as_os_str().is_empty() {
        fallback.to_owned()
    } else {
        path.display().to_string()
    }
}

fn current_exe_name() -> String {
    std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .map_or_else(
            || "the executable".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        )
}

/// UTF-16 for a document; a NUL character inside is refused before anything is called.
fn wide(op: HcsOperation, what: &str, text: &str) -> Result<WideCString, HcsError> {
    WideCString::new(text).map_err(|nul| {
        HcsError::local(
            op,
            HResult::E_INVALIDARG,
            format!(
                "the {what} contains a NUL character (at byte {}); it was not sent",
                nul.byte_offset
            ),
        )
    })
}

/// Clamps a timeout to the milliseconds HCS takes (`INFINITE`, `u32::MAX`, excluded).
fn timeout_ms(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).map_or(u32::MAX - 1, |ms| ms.min(u32::MAX - 1))
}

impl HcsService for ComputeCore {
    fn modify_service_settings(&self, settings: &str) -> Result<(), HcsError> {
        let op = HcsOperation::ModifyServiceSettings;
        let settings = wide(op, "settings document", settings)?;
        let api = self.api()?;
        let outcome = watch(op, None, self.slow_call_threshold, || {
            api.modify_service_settings(&settings)
        });
        if outcome.hresult < 0 {
            return Err(HcsError::new(
                op,
                HResult(outcome.hresult),
                outcome.document.as_deref(),
            ));
        }
        Ok(())
    }

    fn get_service_properties(&self, query: &str) -> Result<String, HcsError> {
        let op = HcsOperation::GetServiceProperties;
        let query = wide(op, "property query", query)?;
        let api = self.api()?;
        let outcome = watch(op, None, self.slow_call_threshold, || {
            api.get_service_properties(&query)
        });
        if outcome.hresult < 0 {
            return Err(HcsError::new(
                op,
                HResult(outcome.hresult),
                outcome.document.as_deref(),
            ));
        }
        outcome.document.ok_or_else(|| {
            HcsError::local(
                op,
                HResult(outcome.hresult),
                "HcsGetServiceProperties reported success but returned no document",
            )
        })
    }

    fn modify_compute_system(&self, id: &str, settings: &str) -> Result<(), HcsError> {
        let op = HcsOperation::ModifyComputeSystem;
        let on_system = |error: HcsError| error.on_compute_system(id);
        let wide_id =
            wide(HcsOperation::OpenComputeSystem, "compute system id", id).map_err(on_system)?;
        let settings = wide(op, "modify request", settings).map_err(on_system)?;
        let api = self.api()?;
        let timeout = self.operation_timeout;
        watch(op, Some(id), self.slow_call_threshold, || {
            let system = api.open_compute_system(&wide_id).map_err(|hresult| {
                let mut error =
                    HcsError::new(HcsOperation::OpenComputeSystem, HResult(hresult), None)
                        .on_compute_system(id);
                error.context = Some("cannot open the compute system".to_owned());
                error
            })?;
            let operation = api.create_operation().ok_or_else(|| {
                HcsError::local(
                    op,
                    HResult::E_FAIL,
                    "HcsCreateOperation returned no operation handle",
                )
                .on_compute_system(id)
            })?;
            let started = system.modify(&operation, &settings);
            if started < 0 {
                // The call itself failed; the operation's result holds HCS's document.
                let result = operation.result();
                return Err(
                    HcsError::new(op, HResult(started), result.document.as_deref())
                        .on_compute_system(id),
                );
            }
            let outcome = operation.wait(timeout_ms(timeout));
            if HResult(outcome.hresult) == HResult::HCS_E_OPERATION_TIMEOUT {
                return Err(cancel_timed_out(&operation, timeout).on_compute_system(id));
            }
            if outcome.hresult < 0 {
                return Err(HcsError::new(
                    op,
                    HResult(outcome.hresult),
                    outcome.document.as_deref(),
                )
                .on_compute_system(id));
            }
            Ok(())
        })
    }
}

/// `0x800704C7 ERROR_CANCELLED`: a code with its name, when it has one.
fn shown(hresult: HResult) -> String {
    match hresult.name() {
        Some(name) => format!("{hresult} {name}"),
        None => hresult.to_string(),
    }
}

/// How long an operation given up on is waited for once it has been cancelled.
pub const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// A modification that did not complete in time: it is cancelled (`HcsCancelOperation`)
/// and waited for again (up to [`CANCEL_WAIT`]) before its handle is closed, so that it
/// cannot land after the caller has moved on (a hot-add after its rollback). The error
/// (`HCS_E_OPERATION_TIMEOUT`) says how the operation ended.
fn cancel_timed_out(operation: &Operation<'_>, timeout: Duration) -> HcsError {
    let cancel = HResult(operation.cancel());
    let after = operation.wait(timeout_ms(CANCEL_WAIT));
    let after = HResult(after.hresult);
    let asked = if cancel.is_failure() {
        format!(
            "cancelling it (HcsCancelOperation) failed with {}",
            shown(cancel)
        )
    } else {
        "it was cancelled (HcsCancelOperation)".to_owned()
    };
    let ended = if after == HResult::HCS_E_OPERATION_TIMEOUT {
        format!("it did not stop within {CANCEL_WAIT:?} (it may still be applied)")
    } else if after.is_failure() {
        format!(
            "it stopped with {}: the change was not applied",
            shown(after)
        )
    } else {
        "it completed all the same: the change is applied".to_owned()
    };
    HcsError::local(
        HcsOperation::ModifyComputeSystem,
        HResult::HCS_E_OPERATION_TIMEOUT,
        format!("the modification did not complete within {timeout:?}; {asked}, and {ended}"),
    )
}

#[cfg(test)]
mod tests;
