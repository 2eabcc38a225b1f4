//! An emulator of the Host Compute Service, as far as Container Credential Guard needs it.
//!
//! [`Emulator`] implements [`credguard::hcs::HcsService`]: it answers the CCG
//! AddInstance/RemoveInstance requests and the `ContainerCredentialGuard` query, and the
//! HvSocket service-table modifications of utility VMs. It keeps a call log of every call
//! and takes queued faults, so every failure path of the library can be driven on Linux.
//!
//! Two stores: [`Emulator::in_memory`] for library tests, and [`Emulator::persistent`],
//! whose state lives in a directory so that one process can `add` and the next `list`, as
//! with HCS. Every call's effect is on disk before the call returns (HCS's state outlives a
//! client that crashes); an exclusive lock serialises processes, and it is held only while
//! state is read and written, never across an injected delay.
//!
//! # HCS facts and emulator choices
//! Facts (from Microsoft's documentation and hcsshim): the document shapes; the query's
//! answer `{"Properties":[{"Instances":[...]}]}`; instances persist until removed or until
//! vmcompute.exe restarts ([`Emulator::reset`]); `0xC037010E` for a compute system that
//! does not exist; HCS may apply an operation and still report failure.
//!
//! Choices of this emulator, because HCS's behaviour is not documented (the library does
//! not depend on any of them):
//! - AddInstance with an `Id` that already has an instance fails with `0x800700B7`
//!   (`ERROR_ALREADY_EXISTS`);
//! - RemoveInstance of an unknown `Id` fails with `0x80070490` (`ERROR_NOT_FOUND`);
//! - `Id`s match case-sensitively;
//! - malformed JSON is answered with `0x8037010D` (`HCS_E_INVALID_JSON`), a well-formed
//!   document with missing or wrong fields with `0x80070057` (`E_INVALIDARG`), each with a
//!   ResultError document;
//! - the cookie is `01000000` followed by 40 random hex digits; the RPC endpoint is
//!   `CcgRpc_` and 16 random hex digits; an HvSocket instance gets a random ServiceId and
//!   the ServiceConfig `{"BindSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)",
//!   "ConnectSecurityDescriptor":"D:P(A;;FA;;;SY)(A;;FA;;;BA)","AllowWildcardBinds":true}`;
//! - instances are listed in creation order;
//! - the HvSocket service table accepts `Update` (create or replace), `Add` (fails with
//!   `ERROR_ALREADY_EXISTS` for an existing entry) and `Remove` (fails with
//!   `ERROR_NOT_FOUND` for an absent one);
//! - the only property type answered is `ContainerCredentialGuard`; others fail with
//!   `E_INVALIDARG`;
//! - a stopped utility VM ([`Emulator::stop_uvm`]) keeps its service table but refuses
//!   every modification with `0xC0370110` (`HCS_E_SYSTEM_ALREADY_STOPPED`, "not running",
//!   hcsshim's `ErrVmcomputeAlreadyStopped`); what real HCS answers a modification of a
//!   stopped VM with is not documented, so this is the emulator's choice, and other codes
//!   (`HCS_E_INVALID_STATE`, ...) can be injected as faults.

// rustdoc on every public item (clippy -D warnings makes this an error).
#![warn(missing_docs)]

mod fault;
mod state;
mod store;

use std::path::Path;
use std::thread;
use std::time::Duration;

use credguard::hcs::hresult::HResult;
use credguard::hcs::{HcsError, HcsService};
use credguard::wire::HvSocketServiceConfig;

pub use fault::{Api, Fault, FaultAction, ParseApiError};
pub use state::{CallRecord, Uvm};
pub use store::EmulatorError;

use state::Outcome;
use store::Store;

/// The HCS emulator. Cheap to share behind an `Arc`; safe to call from many threads and,
/// with the persistent store, from many processes.
#[derive(Debug)]
pub struct Emulator {
    store: Store,
}

impl Emulator {
    /// An emulator whose state lives in this process only.
    #[must_use]
    pub fn in_memory() -> Self {
        Emulator {
            store: Store::memory(),
        }
    }

    /// An emulator whose state lives in `dir` (created owner-only if needed), shared by
    /// every process that opens the same directory.
    ///
    /// # Errors
    /// The directory cannot be created, or its state file is corrupt or not an emulator
    /// state file (it is never reset silently: the error names the file).
    pub fn persistent(dir: &Path) -> Result<Self, EmulatorError> {
        Ok(Emulator {
            store: Store::files(dir)?,
        })
    }

    /// The persistent state in `dir`, for reading only (listings, the call log): nothing is
    /// created or written. Calls are answered from the saved state and leave no trace: they
    /// are not logged, and an injected fault that matches applies without being used up.
    ///
    /// # Errors
    /// The directory is refused, or its state file is corrupt or not an emulator state file.
    pub fn persistent_read_only(dir: &Path) -> Result<Self, EmulatorError> {
        Ok(Emulator {
            store: Store::files_read_only(dir)?,
        })
    }

    /// Queues a fault for the next matching calls.
    ///
    /// # Errors
    /// The persistent state cannot be read or written.
    pub fn inject(&self, fault: Fault) -> Result<(), EmulatorError> {
        self.store.update(|s| s.faults.push(fault))
    }

    /// Drops every queued fault.
    ///
    /// # Errors
    /// The persistent state cannot be read or written.
    pub fn clear_faults(&self) -> Result<(), EmulatorError> {
        self.store.update(|s| s.faults.clear())
    }

    /// Ends every injected delay being waited out now: those calls go on at once. A test holds
    /// a call with a long delay (an upper bound against hangs), sees it start (its fault leaves
    /// the queue, [`Emulator::faults`]), does what must happen meanwhile, then ends the delay,
    /// rather than guessing a delay long enough. Delays that start later are not affected.
    ///
    /// # Errors
    /// The persistent state cannot be read or written.
    pub fn end_delays(&self) -> Result<(), EmulatorError> {
        self.store.update(|s| s.delays_ended += 1)
    }

    /// The faults still queued.
    ///
    /// # Errors
    /// The persistent state cannot be read.
    pub fn faults(&self) -> Result<Vec<Fault>, EmulatorError> {
        self.store.read(|s| s.faults.clone())
    }

    /// What a vmcompute.exe restart does: every CCG instance and every utility VM is gone.
    /// Queued faults and the call log stay.
    ///
    /// # Errors
    /// The persistent state cannot be read or written.
    pub fn reset(&self) -> Result<(), EmulatorError> {
        self.store.update(|s| {
            s.instances.clear();
            s.uvms.clear();
        })
    }

    /// Clears the call log.
    ///
    /// # Errors
    /// The persistent state cannot be written.
    pub fn clear_calls(&self) -> Result<(), EmulatorError> {
        self.store.clear_calls()
    }

    /// The call log, oldest first. Documents are recorded as received; use
    /// [`CallRecord::to_json`] to show them (it redacts `PluginInput`).
    ///
    /// # Errors
    /// The persistent log cannot be read.
    pub fn calls(&self) -> Result<Vec<CallRecord>, EmulatorError> {
        self.store.calls()
    }

    /// The CCG instances, in creation order.
    ///
    /// # Errors
    /// The persistent state cannot be read.
    pub fn instances(
        &self,
    ) -> Result<Vec<credguard::wire::ContainerCredentialGuardInstance>, EmulatorError> {
        self.store.read(|s| s.instances.clone())
    }

    /// Creates a utility VM (a compute system with an empty HvSocket service table).
    ///
    /// # Errors
    /// [`EmulatorError::Invalid`] for an id no system could have,
    /// [`EmulatorError::Exists`] when a system with this id exists already, or the state
    /// cannot be written.
    pub fn create_uvm(&self, id: &str) -> Result<(), EmulatorError> {
        self.store.try_update(|s| {
            if let Some(problem) = credguard::lifecycle::id_problem(id) {
                return Err(EmulatorError::Invalid(format!(
                    "utility VM `{}` cannot be created: {problem}",
                    credguard::text::ShownId::new(id)
                )));
            }
            if s.uvms.contains_key(id) {
                return Err(EmulatorError::Exists(format!(
                    "utility VM `{}` exists already",
                    credguard::text::ShownId::new(id)
                )));
            }
            s.uvms.insert(id.to_owned(), Uvm::default());
            Ok(())
        })
    }

    /// Removes a utility VM (as when it stops); later calls on it answer `0xC037010E`.
    ///
    /// # Errors
    /// [`EmulatorError::Invalid`] for an id no system could have, [`EmulatorError::NotFound`]
    /// when there is no such VM, or the state cannot be written.
    pub fn remove_uvm(&self, id: &str) -> Result<(), EmulatorError> {
        valid_uvm_id(id)?;
        self.store.try_update(|s| {
            s.uvms.remove(id).map(|_| ()).ok_or_else(|| {
                EmulatorError::NotFound(format!(
                    "no utility VM `{}`",
                    credguard::text::ShownId::new(id)
                ))
            })
        })
    }

    /// Stops a utility VM: it stays listed with its service table, but every modification
    /// of it fails with `0xC0370110` (`HCS_E_SYSTEM_ALREADY_STOPPED`).
    ///
    /// # Errors
    /// [`EmulatorError::Invalid`] for an id no system could have, [`EmulatorError::NotFound`]
    /// when there is no such VM, or the state cannot be written.
    pub fn stop_uvm(&self, id: &str) -> Result<(), EmulatorError> {
        valid_uvm_id(id)?;
        self.store.try_update(|s| {
            s.uvms
                .get_mut(id)
                .map(|vm| vm.stopped = true)
                .ok_or_else(|| {
                    EmulatorError::NotFound(format!(
                        "no utility VM `{}`",
                        credguard::text::ShownId::new(id)
                    ))
                })
        })
    }

    /// A utility VM, if it exists.
    ///
    /// # Errors
    /// The persistent state cannot be read.
    pub fn uvm(&self, id: &str) -> Result<Option<Uvm>, EmulatorError> {
        self.store.read(|s| s.uvms.get(id).cloned())
    }

    /// Every utility VM id.
    ///
    /// # Errors
    /// The persistent state cannot be read.
    pub fn uvm_ids(&self) -> Result<Vec<String>, EmulatorError> {
        self.store.read(|s| s.uvms.keys().cloned().collect())
    }

    /// Every HvSocket service-table entry of every utility VM, as (VM id, service id, entry).
    ///
    /// # Errors
    /// The persistent state cannot be read.
    pub fn hvsocket_entries(
        &self,
    ) -> Result<Vec<(String, String, HvSocketServiceConfig)>, EmulatorError> {
        self.store.read(|s| {
            s.uvms
                .iter()
                .flat_map(|(vm, uvm)| {
                    uvm.service_table
                        .iter()
                        .map(move |(sid, cfg)| (vm.clone(), sid.clone(), cfg.clone()))
                })
                .collect()
        })
    }

    /// `HcsModifyComputeSystem` as an operation that can be cancelled (the stand-in
    /// computecore.dll runs it so, for `HcsCancelOperation`): `cancelled` is asked during an
    /// injected delay and, under the state lock, right before the modification is applied.
    /// Once it answers yes the call stops, changes nothing, and is logged (and fails) with
    /// `0x800704C7` (`ERROR_CANCELLED`; what HCS answers for a cancelled operation is not
    /// documented, this is the emulator's choice).
    ///
    /// # Errors
    /// As [`HcsService::modify_compute_system`], and `ERROR_CANCELLED` once cancelled.
    pub fn modify_compute_system_cancellable(
        &self,
        id: &str,
        settings: &str,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), HcsError> {
        self.call_cancellable(
            Api::ModifyComputeSystem,
            Some(id),
            settings,
            Some(cancelled),
        )
        .map(|_| ())
        .map_err(|e| e.on_compute_system(id))
    }

    /// One call: take a matching fault, wait out its delay without holding the lock, then
    /// apply the call (or the fault) and log it, all under the lock.
    fn call(
        &self,
        api: Api,
        target: Option<&str>,
        document: &str,
    ) -> Result<Option<String>, HcsError> {
        self.call_cancellable(api, target, document, None)
    }

    /// [`Emulator::call`], stopped without effect once `cancelled` says so.
    fn call_cancellable(
        &self,
        api: Api,
        target: Option<&str>,
        document: &str,
        cancelled: Option<&dyn Fn() -> bool>,
    ) -> Result<Option<String>, HcsError> {
        let is_cancelled = || cancelled.is_some_and(|c| c());
        let op = api.operation();
        let operation = fault::operation_of(api, document);
        let local = |e: EmulatorError| {
            HcsError::local(
                op,
                HResult::E_UNEXPECTED,
                format!("the HCS emulator failed: {}", chain_line(&e)),
            )
        };
        let fault = self
            .store
            .take_fault(api, operation.as_deref())
            .map_err(local)?;
        let (fault, ended_at_take) = fault.unzip();
        if let Some(delay) = fault.as_ref().map(|f| f.delay_ms).filter(|&d| d > 0) {
            // In slices, so that a cancellation or `end_delays` ends the wait early.
            let until = std::time::Instant::now() + Duration::from_millis(delay);
            let ended = || {
                self.store
                    .read(|s| Some(s.delays_ended) > ended_at_take)
                    .unwrap_or(false)
            };
            loop {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() || is_cancelled() || ended() {
                    break;
                }
                thread::sleep(left.min(Duration::from_millis(10)));
            }
        }
        let outcome: Outcome = self
            .store
            .call(
                |s| {
                    if is_cancelled() {
                        Outcome::error(HResult::ERROR_CANCELLED, "the operation was cancelled")
                    } else {
                        s.apply(api, target, document, fault.as_ref())
                    }
                },
                api,
                target,
                document,
            )
            .map_err(local)?;
        match outcome.hresult {
            h if h.is_failure() => Err(HcsError::new(op, h, outcome.result.as_deref())),
            _ => Ok(outcome.result),
        }
    }
}

impl HcsService for Emulator {
    fn modify_service_settings(&self, settings: &str) -> Result<(), HcsError> {
        self.call(Api::ModifyServiceSettings, None, settings)
            .map(|_| ())
    }

    fn get_service_properties(&self, query: &str) -> Result<String, HcsError> {
        self.call(Api::GetServiceProperties, None, query)
            .map(Option::unwrap_or_default)
    }

    fn modify_compute_system(&self, id: &str, settings: &str) -> Result<(), HcsError> {
        self.call(Api::ModifyComputeSystem, Some(id), settings)
            .map(|_| ())
            .map_err(|e| e.on_compute_system(id))
    }
}

/// An id that no utility VM can have (empty, too long, a control or format character) is
/// bad input, not a VM that is missing.
fn valid_uvm_id(id: &str) -> Result<(), EmulatorError> {
    match credguard::lifecycle::id_problem(id) {
        Some(problem) => Err(EmulatorError::Invalid(format!(
            "`{}` is not a utility VM id: {problem}",
            credguard::text::ShownId::new(id)
        ))),
        None => Ok(()),
    }
}

use credguard_statefile::shown::chain_line;
