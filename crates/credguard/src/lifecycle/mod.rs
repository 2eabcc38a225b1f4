//! The CCG instance lifecycle: create an instance, hand over its state, release it, and
//! never leave one behind on a failure.
//!
//! The flow is hcsshim's (AddInstance, query, exactly one property, find by id), made safe:
//! an id that already has an instance is refused before anything is sent; a failed
//! AddInstance is followed by a query, because HCS can apply an operation and still report
//! failure; every failure after AddInstance removes the instance again before the error is
//! returned; a failed RemoveInstance is followed by a query, and an id no longer listed
//! counts as removed.
//!
//! With a [`Journal`] (see [`CcgClient::with_journal`]) every instance is recorded before
//! AddInstance and until its removal is confirmed, so [`crate::lifecycle::reconcile`] can finish what a
//! crash interrupted. Under Hyper-V isolation with a utility VM, the instance's HvSocket
//! service-table entry is hot-added to the VM after creation and removed before release.

#[cfg(feature = "tokio")]
pub mod asynchronous;
mod checks;
mod error;
mod plan;
mod policy;
pub mod reconcile;

pub use crate::input::{
    MAX_CONTAINER_ID_CHARS, MAX_CREDENTIAL_SPEC_BYTES, credential_spec_problem, id_problem,
};
pub use checks::{validate_container_id, validate_credential_spec};
pub use error::{CcgError, ErrorKind, Missing, Remedy, Step};
pub use plan::{PLACEHOLDER_SERVICE_ID, Plan, PlannedCall};
pub use reconcile::ReconcileOptions;

#[cfg(feature = "tokio")]
pub use asynchronous::AsyncCcgClient;

use std::sync::Arc;

use tracing::{debug, info, info_span, warn};

use crate::credspec::LoadedSpec;
use crate::hcs::hresult::HResult;
use crate::hcs::{HcsError, HcsService};
use crate::text::{ShownId, chain_line};

use crate::hcs::watchdog::calls_for;
use crate::journal::{FailedOperation, Journal, JournalError, Record, RecordLock, RecordState};
use crate::wire::{
    CCG_QUERY, ContainerCredentialGuardInstance, FindError, HvSocketServiceConfig, Isolation,
    ModificationRequest, ModifySettingRequest, find_instance, find_listed_instance,
    list_listed_instances, to_wire,
};

/// Everything [`CcgClient::create_request`] needs: [`CreateRequest::new`], then
/// [`CreateRequest::with_utility_vm`] for a Hyper-V container whose utility VM gets the
/// HvSocket entry.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CreateRequest<'a> {
    /// The container id the instance belongs to.
    pub container_id: &'a str,
    /// The credential spec, as JSON text (sent as given).
    pub credential_spec: &'a str,
    /// The container's isolation.
    pub isolation: Isolation,
    /// Under Hyper-V isolation: the utility VM to hot-add the HvSocket service-table entry
    /// to. `None` when the caller puts the entry into the VM's document itself.
    pub utility_vm: Option<&'a str>,
    /// The caller's gMSA disable policy for this container (what disabled it, as hcsshim's
    /// `io.microsoft.container.wcow.gmsa.disable` annotation does): the request is refused
    /// with [`CcgError::Denied`] before anything is sent.
    pub gmsa_disabled: Option<&'a str>,
}

impl<'a> CreateRequest<'a> {
    /// A request without a utility VM.
    #[must_use]
    pub fn new(container_id: &'a str, credential_spec: &'a str, isolation: Isolation) -> Self {
        CreateRequest {
            container_id,
            credential_spec,
            isolation,
            utility_vm: None,
            gmsa_disabled: None,
        }
    }

    /// Disables gMSA for this container: `reason` says what disabled it (for the message).
    #[must_use]
    pub fn with_gmsa_disabled(mut self, reason: impl Into<Option<&'a str>>) -> Self {
        self.gmsa_disabled = reason.into();
        self
    }

    /// The utility VM to hot-add the instance's HvSocket entry to (Hyper-V isolation only;
    /// `None` for none).
    #[must_use]
    pub fn with_utility_vm(mut self, utility_vm: impl Into<Option<&'a str>>) -> Self {
        self.utility_vm = utility_vm.into();
        self
    }

    /// Every check [`CcgClient::create_request`] makes of the request itself before
    /// anything is sent: the container id, the request's gMSA policy, the credential spec,
    /// and the utility VM (a valid id, under Hyper-V isolation only). The client's own
    /// policy is not part of it (see [`CcgClient::check_request`]).
    ///
    /// # Errors
    /// [`CcgError::InvalidContainerId`], [`CcgError::Denied`],
    /// [`CcgError::InvalidCredentialSpec`] or [`CcgError::InvalidRequest`], as create
    /// returns them.
    pub fn check(&self) -> Result<(), CcgError> {
        let id = self.container_id;
        validate_container_id(id)?;
        denied_by(id, self.gmsa_disabled)?;
        validate_credential_spec(id, self.credential_spec)?;
        if let Some(vm) = self.utility_vm {
            if self.isolation != Isolation::HyperV {
                return Err(CcgError::InvalidRequest {
                    container_id: ShownId::new(id),
                    reason: "a utility VM applies to Hyper-V isolation only; drop it or ask for Hyper-V isolation".into(),
                });
            }
            if let Err(CcgError::InvalidContainerId { reason, .. }) = validate_container_id(vm) {
                return Err(CcgError::InvalidRequest {
                    container_id: ShownId::new(id),
                    reason: format!("invalid utility VM id `{}`: {reason}", ShownId::new(vm)),
                });
            }
        }
        Ok(())
    }
}

/// [`CreateRequest`] for a credential spec loaded from its source
/// ([`crate::credspec::load`]): the spec carries what its source says about policy, and
/// [`CcgClient::create_spec_request`] refuses what that policy denies before anything is sent.
/// Built with [`SpecRequest::new`] and [`SpecRequest::with_utility_vm`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SpecRequest<'a> {
    /// The container id the instance belongs to.
    pub container_id: &'a str,
    /// The credential spec as loaded (its canonical form is sent).
    pub spec: &'a LoadedSpec,
    /// The container's isolation.
    pub isolation: Isolation,
    /// As [`CreateRequest::utility_vm`].
    pub utility_vm: Option<&'a str>,
    /// As [`CreateRequest::gmsa_disabled`] (the spec's source may disable gMSA too).
    pub gmsa_disabled: Option<&'a str>,
}

impl<'a> SpecRequest<'a> {
    /// A request without a utility VM.
    #[must_use]
    pub fn new(container_id: &'a str, spec: &'a LoadedSpec, isolation: Isolation) -> Self {
        SpecRequest {
            container_id,
            spec,
            isolation,
            utility_vm: None,
            gmsa_disabled: None,
        }
    }

    /// As [`CreateRequest::with_utility_vm`].
    #[must_use]
    pub fn with_utility_vm(mut self, utility_vm: impl Into<Option<&'a str>>) -> Self {
        self.utility_vm = utility_vm.into();
        self
    }

    /// As [`CreateRequest::with_gmsa_disabled`].
    #[must_use]
    pub fn with_gmsa_disabled(mut self, reason: impl Into<Option<&'a str>>) -> Self {
        self.gmsa_disabled = reason.into();
        self
    }

    /// Every check [`CcgClient::create_spec_request`] makes of the request itself before
    /// anything is sent: the container id, the request's and the spec's source's gMSA
    /// policy (a denied spec is refused before anything else about it matters), then as
    /// [`CreateRequest::check`] for the spec's canonical form.
    ///
    /// # Errors
    /// [`CcgError::Denied`] when the request or the spec's source disables gMSA;
    /// otherwise as [`CreateRequest::check`].
    pub fn check(&self) -> Result<(), CcgError> {
        validate_container_id(self.container_id)?;
        denied_by(self.container_id, self.gmsa_disabled)?;
        self.spec.policy.check(self.container_id)?;
        let text = self.spec.document.canonical();
        self.with_text(&text).check()
    }

    /// The [`CreateRequest`] of the spec's canonical form `text`.
    fn with_text<'t>(&self, text: &'t str) -> CreateRequest<'t>
    where
        'a: 't,
    {
        CreateRequest {
            container_id: self.container_id,
            credential_spec: text,
            isolation: self.isolation,
            utility_vm: self.utility_vm,
            gmsa_disabled: self.gmsa_disabled,
        }
    }
}

/// Refuses a container whose gMSA a policy disabled (`reason`: what disabled it).
fn denied_by(id: &str, reason: Option<&str>) -> Result<(), CcgError> {
    match reason {
        Some(reason) => Err(CcgError::Denied {
            container_id: ShownId::new(id),
            reason: reason.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Container ids that are all valid (as [`validate_container_id`] checks them), for
/// [`CcgClient::remove_each`]: a batch is checked whole before anything is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerIds(Vec<String>);

impl ContainerIds {
    /// Checks every id, in order.
    ///
    /// # Errors
    /// [`CcgError::InvalidContainerId`] of the first invalid id.
    pub fn new<I, S>(ids: I) -> Result<Self, CcgError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ids: Vec<String> = ids.into_iter().map(Into::into).collect();
        for id in &ids {
            validate_container_id(id)?;
        }
        Ok(ContainerIds(ids))
    }

    /// The ids, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// What [`CcgClient::remove`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// This call's RemoveInstance removed the instance.
    Removed,
    /// No instance was listed for the id (no RemoveInstance was sent), or another process
    /// removed it first (HCS answered RemoveInstance with "not found" and no longer lists
    /// it).
    AlreadyAbsent,
}

/// Creates, finds and removes CCG instances through an HCS backend.
#[derive(Debug, Clone)]
pub struct CcgClient {
    hcs: Arc<dyn HcsService>,
    journal: Option<Arc<Journal>>,
    gmsa_disabled: Option<String>,
}

/// Why a lookup failed: the call, or its answer.
pub(crate) enum LookupError {
    Call(HcsError),
    Answer(FindError),
}

impl LookupError {
    pub(crate) fn at(self, id: &str, step: Step) -> CcgError {
        let container_id = ShownId::new(id);
        match self {
            LookupError::Call(source) => CcgError::Hcs {
                container_id,
                step,
                source,
            },
            LookupError::Answer(source) => CcgError::BadAnswer {
                container_id,
                step,
                source,
            },
        }
    }
}

/// An HvSocket service-table entry: the utility VM and the service id.
type HvEntry = (String, String);

impl CcgClient {
    /// A client over an HCS backend, without a journal.
    #[must_use]
    pub fn new(hcs: Arc<dyn HcsService>) -> Self {
        CcgClient {
            hcs,
            journal: None,
            gmsa_disabled: None,
        }
    }

    /// Records every instance in `journal` from before AddInstance until its removal.
    #[must_use]
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The gMSA disable policy: every create is refused with an "operation denied" error
    /// before anything is sent. `reason` says what disabled it (for the message).
    #[must_use]
    pub fn with_gmsa_disabled(mut self, reason: impl Into<String>) -> Self {
        self.gmsa_disabled = Some(reason.into());
        self
    }

    /// The backend this client talks to.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn HcsService> {
        &self.hcs
    }

    /// The journal, if any.
    #[must_use]
    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// Every check [`CcgClient::create_spec_request`] makes before anything is sent (the
    /// request's, [`SpecRequest::check`], then the client's policy), without sending
    /// anything: a caller that does more with the spec (lints it, say) learns first whether
    /// create would refuse it.
    ///
    /// # Errors
    /// As [`SpecRequest::check`], then [`CcgError::Denied`] when the client's policy
    /// disables gMSA.
    pub fn check_request(&self, req: &SpecRequest<'_>) -> Result<(), CcgError> {
        req.check()?;
        self.check_policy(req.container_id)
    }

    /// The client's gMSA disable policy, for `id`.
    fn check_policy(&self, id: &str) -> Result<(), CcgError> {
        denied_by(id, self.gmsa_disabled.as_deref())
    }

    /// Creates the CCG instance for a container (no utility VM hot-add).
    ///
    /// Returns the instance as HCS lists it (its `CredentialGuard` state goes into the V2
    /// container document, see [`crate::wire::container`]) and the handle whose
    /// [`CcgResource::release`] removes it.
    ///
    /// # Errors
    /// As [`CcgClient::create_request`].
    pub fn create(
        &self,
        container_id: &str,
        credential_spec: &str,
        isolation: Isolation,
    ) -> Result<(ContainerCredentialGuardInstance, CcgResource), CcgError> {
        self.create_request(&CreateRequest::new(
            container_id,
            credential_spec,
            isolation,
        ))
    }

    /// Creates the CCG instance for a container from a credential spec loaded from its
    /// source (no utility VM hot-add). A spec whose source disables gMSA (an OCI bundle's
    /// `io.microsoft.container.wcow.gmsa.disable` annotation) is refused with
    /// [`CcgError::Denied`] before anything is sent.
    ///
    /// # Errors
    /// As [`CcgClient::create_spec_request`].
    pub fn create_spec(
        &self,
        container_id: &str,
        spec: &LoadedSpec,
        isolation: Isolation,
    ) -> Result<(ContainerCredentialGuardInstance, CcgResource), CcgError> {
        self.create_spec_request(&SpecRequest::new(container_id, spec, isolation))
    }

    /// [`CcgClient::create_request`] for a loaded credential spec: its source's policy is
    /// applied first.
    ///
    /// # Errors
    /// [`CcgError::Denied`] when the spec's source disables gMSA (nothing is sent); then as
    /// [`CcgClient::create_request`].
    pub fn create_spec_request(
        &self,
        req: &SpecRequest<'_>,
    ) -> Result<(ContainerCredentialGuardInstance, CcgResource), CcgError> {
        // Denied before anything else about the spec matters; create_request checks the rest.
        validate_container_id(req.container_id)?;
        denied_by(req.container_id, req.gmsa_disabled)?;
        req.spec.policy.check(req.container_id)?;
        let text = req.spec.document.canonical();
        self.create_request(&req.with_text(&text))
    }

    /// Creates the CCG instance for a container, hot-adding its HvSocket entry to the
    /// utility VM when one is given.
    ///
    /// # Errors
    /// Input errors and policy refusals before anything is sent;
    /// [`CcgError::AlreadyExists`] when the id is listed already (nothing is sent then
    /// either); HCS failures named by [`Step`]. A failure after HCS created the instance is
    /// returned as [`CcgError::RolledBack`] once the instance (and its HvSocket entry) is
    /// removed again, or [`CcgError::RollbackFailed`] when it could not be.
    pub fn create_request(
        &self,
        req: &CreateRequest<'_>,
    ) -> Result<(ContainerCredentialGuardInstance, CcgResource), CcgError> {
        let id = req.container_id;
        req.check()?;
        self.check_policy(id)?;
        let transport = req.isolation.transport();
        let span = info_span!("ccg.create", container_id = %id, transport = %transport);
        let _enter = span.enter();
        let _calls = calls_for(id);

        let lock = self.lock_record(id, false)?;
        let stale = self.stale_record(id)?;

        match self.lookup(id) {
            Ok(None) => {}
            Ok(Some(_)) => {
                debug!(
                    container_id = id,
                    "refusing AddInstance: an instance already exists"
                );
                return Err(CcgError::AlreadyExists {
                    container_id: ShownId::new(id),
                    step: Step::CheckExisting,
                    source: None,
                });
            }
            Err(e) => return Err(e.at(id, Step::CheckExisting)),
        }
        if let Some(mut old) = stale {
            // The record outlived its instance (a crash, a vmcompute.exe restart). An
            // HvSocket entry it keeps is removed first; if the utility VM still refuses, the
            // create is refused, so the new record cannot overwrite (and lose) the entry.
            if let Some((vm, sid)) = old.hvsocket_entry()
                && let Err(e) = remove_hvsocket_entry(self.hcs.as_ref(), id, vm, sid)
            {
                warn!(container_id = id, utility_vm = vm, service_id = sid, error = %chain_line(&e), "refusing the create: the HvSocket entry of an earlier instance is still pending");
                return Err(CcgError::EntryPending {
                    container_id: ShownId::new(id),
                    utility_vm: ShownId::new(vm),
                    service_id: ShownId::new(sid),
                    source: Box::new(e),
                });
            }
            old.hvsocket_added = false;
            self.clean_stale_record(&old);
        }

        let mut record =
            Record::creating(id, req.isolation, req.utility_vm).with_spec(req.credential_spec);
        self.journal_write(&record)?;

        let doc = add_instance_document(req);
        debug!(container_id = id, "sending AddInstance");
        if let Err(source) = self.hcs.modify_service_settings(&doc) {
            if source.hresult.is_already_exists() {
                // Another creator made the id after the check: its instance is not ours.
                self.forget_refused_add(&mut record);
                return Err(CcgError::AlreadyExists {
                    container_id: ShownId::new(id),
                    step: Step::AddInstance,
                    source: Some(source),
                });
            }
            return Err(self.after_failed_add(&mut record, source));
        }

        let instance = match self.read_new_instance(id, req.isolation) {
            Ok(instance) => instance,
            Err(cause) => return Err(self.roll_back(id, cause, None)),
        };

        let mut hv_entry: Option<HvEntry> = None;
        if let (Some(vm), Some(hv)) = (req.utility_vm, instance.hv_socket_config.as_ref()) {
            let entry = (vm.to_owned(), hv.service_id.clone());
            record.service_id = Some(hv.service_id.clone());
            record.hvsocket_added = true;
            if let Err(e) = self.journal_write(&record) {
                return Err(self.roll_back(id, e, None));
            }
            let config = hv.service_config.clone().unwrap_or_default();
            let doc = hvsocket_add_document(&hv.service_id, &config);
            debug!(container_id = id, utility_vm = vm, service_id = %hv.service_id, "hot-adding the HvSocket service-table entry");
            if let Err(source) = self.hcs.modify_compute_system(vm, &doc) {
                // An entry that exists already was not added by this call: it is left alone
                // (only the instance, which is ours, is removed).
                let ours = !source.hresult.is_already_exists();
                let cause = CcgError::HvSocketEntry {
                    container_id: ShownId::new(id),
                    step: Step::HvSocketAdd,
                    utility_vm: ShownId::new(vm),
                    service_id: ShownId::new(&hv.service_id),
                    source: Box::new(source),
                };
                if !ours {
                    record.hvsocket_added = false;
                    if let Err(e) = self.journal_write(&record) {
                        warn!(container_id = id, error = %chain_line(&e), "could not record that the HvSocket entry is not ours");
                    }
                }
                return Err(self.roll_back(id, cause, ours.then_some(&entry)));
            }
            hv_entry = Some(entry);
        }

        if let Err(e) = record
            .move_to(RecordState::Active)
            .map_err(|e| journal_error(id, e))
            .and_then(|()| self.journal_write(&record))
        {
            return Err(self.roll_back(id, e, hv_entry.as_ref()));
        }
        drop(lock);
        info!(container_id = id, "CCG instance created");
        Ok((
            instance,
            CcgResource {
                hcs: self.hcs.clone(),
                journal: self.journal.clone(),
                container_id: id.to_owned(),
                hv_entry,
                released: false,
            },
        ))
    }

    /// Lists every CCG instance on the host.
    ///
    /// # Errors
    /// The query failed or its answer cannot be used.
    pub fn list(&self) -> Result<Vec<ContainerCredentialGuardInstance>, CcgError> {
        let doc = self
            .hcs
            .get_service_properties(CCG_QUERY)
            .map_err(|e| LookupError::Call(e).at("*", Step::List))?;
        list_listed_instances(&doc).map_err(|e| LookupError::Answer(e).at("*", Step::List))
    }

    /// The instance HCS lists for a container id, if any.
    ///
    /// # Errors
    /// The id is invalid, or the query failed or its answer cannot be used.
    pub fn get(
        &self,
        container_id: &str,
    ) -> Result<Option<ContainerCredentialGuardInstance>, CcgError> {
        validate_container_id(container_id)?;
        let _calls = calls_for(container_id);
        self.lookup(container_id)
            .map_err(|e| e.at(container_id, Step::List))
    }

    /// The instance HCS lists for a container id.
    ///
    /// # Errors
    /// As [`CcgClient::get`], and [`CcgError::NotFound`] when no instance is listed.
    pub fn get_existing(
        &self,
        container_id: &str,
    ) -> Result<ContainerCredentialGuardInstance, CcgError> {
        self.get(container_id)?.ok_or_else(|| CcgError::NotFound {
            container_id: ShownId::new(container_id),
        })
    }

    /// [`CcgClient::remove`] for each id of a checked list, in order (one id's failure does
    /// not stop the others): the outcome of each.
    #[must_use]
    pub fn remove_each(&self, container_ids: &ContainerIds) -> Vec<Result<Removal, CcgError>> {
        container_ids.0.iter().map(|id| self.remove(id)).collect()
    }

    /// Removes the instance of a container id that this process holds no handle for (an
    /// operator's clean-up), with its HvSocket entry when the journal knows one. An id that
    /// is not listed is reported (its stale journal record, if any, is dropped), and no
    /// RemoveInstance is sent.
    ///
    /// With a journal, everything happens under the record's lock, and the record and HCS's
    /// listing are read after taking it. A record in `creating` whose lock a live process
    /// holds is refused ([`CcgError::JournalConflict`]); otherwise a busy lock (another
    /// removal, say) is waited for, and then the id is usually found absent. Of several
    /// concurrent removals only the one whose RemoveInstance removed the instance returns
    /// [`Removal::Removed`].
    ///
    /// # Errors
    /// The id is invalid, the query failed, a removal failed and the instance is still
    /// listed, or a create of the id is in progress. [`CcgError::HvSocketEntryLeft`] when
    /// the instance was removed but its HvSocket entry could not be;
    /// [`CcgError::HvSocketEntry`] (step [`Step::HvSocketRemove`]) when no instance is
    /// listed but the HvSocket entry the journal keeps for the id (from an earlier refused
    /// removal) still cannot be removed: the record keeps it for `reconcile`.
    pub fn remove(&self, container_id: &str) -> Result<Removal, CcgError> {
        validate_container_id(container_id)?;
        let _enter = info_span!("ccg.remove", container_id = %container_id).entered();
        let _calls = calls_for(container_id);
        let lock = self.lock_for_removal(container_id)?;
        let record = self.journal_get(container_id)?;
        let entry = record
            .as_ref()
            .and_then(Record::hvsocket_entry)
            .map(|(vm, sid)| (vm.to_owned(), sid.to_owned()));
        match self.lookup(container_id) {
            Ok(None) => {
                if let Some((vm, sid)) = entry.as_ref()
                    && let Err(e) = remove_hvsocket_entry(self.hcs.as_ref(), container_id, vm, sid)
                {
                    // No instance, but the entry a refused removal left is still there: the
                    // record keeps it for `reconcile`, and the caller hears of it.
                    warn!(container_id, utility_vm = %vm, service_id = %sid, error = %chain_line(&e), "no instance is listed, but the HvSocket entry the journal keeps could not be removed; it stays for reconcile");
                    return Err(e);
                }
                let gone = match record {
                    Some(mut old) => {
                        old.hvsocket_added = false;
                        self.clean_stale_record(&old)
                    }
                    None => true,
                };
                if gone && let Some(lock) = lock {
                    lock.remove_file();
                }
                Ok(Removal::AlreadyAbsent)
            }
            Ok(Some(_)) => release(
                self.hcs.as_ref(),
                self.journal.as_deref(),
                container_id,
                entry.as_ref(),
                lock,
            ),
            Err(e) => Err(e.at(container_id, Step::List)),
        }
    }

    /// The record's lock for a removal: taken at once if free; refused when a live process
    /// is creating the instance; otherwise waited for (another removal or a short step of a
    /// create or release holds it).
    fn lock_for_removal(&self, id: &str) -> Result<Option<RecordLock>, CcgError> {
        let Some(journal) = &self.journal else {
            return Ok(None);
        };
        match journal.lock(id, false) {
            Ok(lock) => Ok(Some(lock)),
            Err(busy @ JournalError::Busy { .. }) => {
                let record = journal.get(id).map_err(|e| journal_error(id, e))?;
                if record.is_some_and(|r| r.state == RecordState::Creating) {
                    return Err(journal_error(id, busy));
                }
                debug!(
                    container_id = id,
                    "another process holds the record's lock; waiting for it"
                );
                self.lock_record(id, true)
            }
            Err(e) => Err(journal_error(id, e)),
        }
    }

    pub(crate) fn lookup(
        &self,
        id: &str,
    ) -> Result<Option<ContainerCredentialGuardInstance>, LookupError> {
        lookup(self.hcs.as_ref(), id)
    }

    /// The lookup right after AddInstance: the answer must hold exactly one property.
    fn lookup_strict(
        &self,
        id: &str,
    ) -> Result<Option<ContainerCredentialGuardInstance>, LookupError> {
        let doc = self
            .hcs
            .get_service_properties(CCG_QUERY)
            .map_err(LookupError::Call)?;
        find_instance(&doc, id).map_err(LookupError::Answer)
    }

    fn lock_record(&self, id: &str, wait: bool) -> Result<Option<RecordLock>, CcgError> {
        let Some(journal) = &self.journal else {
            return Ok(None);
        };
        journal
            .lock(id, wait)
            .map(Some)
            .map_err(|e| journal_error(id, e))
    }

    /// A record left for this id by an earlier life, if any (the caller holds the lock, so
    /// no live process is working on it).
    fn stale_record(&self, id: &str) -> Result<Option<Record>, CcgError> {
        self.journal_get(id)
    }

    fn journal_get(&self, id: &str) -> Result<Option<Record>, CcgError> {
        match &self.journal {
            None => Ok(None),
            Some(j) => j.get(id).map_err(|e| journal_error(id, e)),
        }
    }

    fn journal_write(&self, record: &Record) -> Result<(), CcgError> {
        match &self.journal {
            None => Ok(()),
            Some(j) => j
                .write(record)
                .map_err(|e| journal_error(&record.container_id, e)),
        }
    }

    /// Drops a record whose instance is gone, removing its HvSocket entry first (best
    /// effort). Returns whether the record is gone.
    fn clean_stale_record(&self, record: &Record) -> bool {
        let id = &record.container_id;
        if let Some((vm, sid)) = record.hvsocket_entry()
            && let Err(e) = remove_hvsocket_entry(self.hcs.as_ref(), id, vm, sid)
        {
            warn!(container_id = %id, error = %chain_line(&e), "could not remove the HvSocket entry of a stale journal record");
            return false;
        }
        info!(container_id = %id, state = record.state.as_str(), "dropping a journal record whose instance is gone");
        if let Some(j) = &self.journal
            && let Err(e) = j.delete(id)
        {
            warn!(container_id = %id, error = %chain_line(&e), "could not drop a stale journal record");
            return false;
        }
        true
    }

    /// AddInstance was refused as "already exists": the instance is another creator's. The
    /// record is marked so (in case it cannot be dropped, `reconcile` then only drops it),
    /// then dropped.
    fn forget_refused_add(&self, record: &mut Record) {
        let id = record.container_id.clone();
        warn!(container_id = %id, "AddInstance was refused: an instance already exists for this id; it belongs to another creator and is left alone");
        record.add_refused = true;
        if let Err(e) = self.journal_write(record) {
            warn!(container_id = %id, error = %chain_line(&e), "could not mark the journal record as refused");
        }
        self.drop_record(&id);
    }

    /// Query, exactly one property, find by id, and check that the instance has what the
    /// container needs.
    fn read_new_instance(
        &self,
        id: &str,
        isolation: Isolation,
    ) -> Result<ContainerCredentialGuardInstance, CcgError> {
        let shown = || ShownId::new(id);
        let instance = self
            .lookup_strict(id)
            .map_err(|e| e.at(id, Step::Query))?
            .ok_or_else(|| CcgError::NotListed {
                container_id: shown(),
                step: Step::Query,
            })?;
        let incomplete = |missing| CcgError::Incomplete {
            container_id: shown(),
            step: Step::Query,
            missing,
        };
        if instance.credential_guard.is_none() {
            return Err(incomplete(Missing::CredentialGuard));
        }
        if isolation == Isolation::HyperV {
            let hv = instance
                .hv_socket_config
                .as_ref()
                .ok_or_else(|| incomplete(Missing::HvSocketConfig))?;
            if hv.service_id.is_empty() {
                return Err(incomplete(Missing::ServiceId));
            }
            if hv.service_config.is_none() {
                return Err(incomplete(Missing::ServiceConfig));
            }
        }
        Ok(instance)
    }

    /// AddInstance reported failure: HCS may have applied it anyway. An id listed now was
    /// not listed before the call, so the call created it, and it is removed again; unless
    /// the instance listed provably is not the one this call asked for (another transport
    /// or credential spec): another creator made the id after the check, and its instance
    /// is left alone as for an "already exists" refusal.
    fn after_failed_add(&self, record: &mut Record, source: HcsError) -> CcgError {
        let id = record.container_id.clone();
        let id = id.as_str();
        match self.lookup(id) {
            Ok(Some(listed)) if record.proves_not_ours(&listed) => {
                self.forget_refused_add(record);
                CcgError::AlreadyExists {
                    container_id: ShownId::new(id),
                    step: Step::AddInstance,
                    source: Some(source),
                }
            }
            found => self.after_failed_add_found(id, found, source),
        }
    }

    fn after_failed_add_found(
        &self,
        id: &str,
        found: Result<Option<ContainerCredentialGuardInstance>, LookupError>,
        source: HcsError,
    ) -> CcgError {
        let cause = CcgError::Hcs {
            container_id: ShownId::new(id),
            step: Step::AddInstance,
            source,
        };
        match found {
            Ok(None) => {
                self.drop_record(id);
                cause
            }
            Ok(Some(_)) => {
                warn!(
                    container_id = id,
                    "AddInstance reported failure but HCS lists the instance"
                );
                self.roll_back(id, cause, None)
            }
            Err(query) => {
                // Whether the instance exists cannot be seen; it was not listed before the
                // call, so removing it cannot harm anything that is not ours.
                let query = query.at(id, Step::Query);
                warn!(container_id = id, error = %chain_line(&query), "cannot see whether the failed AddInstance was applied; removing blindly");
                let doc = wire(&ModificationRequest::remove_instance(id));
                match self.hcs.modify_service_settings(&doc) {
                    Ok(()) => {
                        self.drop_record(id);
                        CcgError::RolledBack {
                            container_id: ShownId::new(id),
                            entry_left: None,
                            cause: Box::new(cause),
                        }
                    }
                    Err(remove) => {
                        mark_failed(self.journal.as_deref(), id, FailedOperation::Rollback);
                        // The query's failure was logged above; the rollback's is the
                        // RemoveInstance HCS refused.
                        CcgError::RollbackFailed {
                            container_id: ShownId::new(id),
                            rollback: Box::new(CcgError::Hcs {
                                container_id: ShownId::new(id),
                                step: Step::RemoveInstance,
                                source: remove,
                            }),
                            cause: Box::new(cause),
                        }
                    }
                }
            }
        }
    }

    /// Removes the HvSocket entry (if any) and the instance after a failure that followed a
    /// successful AddInstance. A failed entry removal does not keep the instance: the
    /// instance is removed all the same. The journal record goes once both are gone, and
    /// stays (in `creating`, for `reconcile`) when either may not be.
    fn roll_back(&self, id: &str, cause: CcgError, entry: Option<&HvEntry>) -> CcgError {
        info!(container_id = id, error = %chain_line(&cause), "rolling back the CCG instance");
        let entry_error = entry.and_then(|(vm, sid)| {
            remove_hvsocket_entry(self.hcs.as_ref(), id, vm, sid)
                .err()
                .map(|e| (vm, sid, e))
        });
        match remove_confirmed(self.hcs.as_ref(), id) {
            Ok(_) => {
                let entry_left = entry_error.map(|(vm, sid, e)| {
                    warn!(container_id = id, utility_vm = %vm, service_id = %sid, error = %chain_line(&e), "the instance was rolled back, but its HvSocket entry could not be removed; the journal keeps it for reconcile");
                    (ShownId::new(vm), ShownId::new(sid))
                });
                if entry_left.is_none() {
                    self.drop_record(id);
                }
                CcgError::RolledBack {
                    container_id: ShownId::new(id),
                    entry_left,
                    cause: Box::new(cause),
                }
            }
            Err(rollback) => {
                if let Some((vm, sid, e)) = entry_error {
                    tracing::error!(container_id = id, utility_vm = %vm, service_id = %sid, error = %chain_line(&e), "rollback: the HvSocket entry could not be removed either; the journal keeps it for reconcile");
                }
                tracing::error!(container_id = id, error = %chain_line(&rollback), "rollback failed: the instance may be left behind");
                mark_failed(self.journal.as_deref(), id, FailedOperation::Rollback);
                CcgError::RollbackFailed {
                    container_id: ShownId::new(id),
                    rollback: Box::new(rollback),
                    cause: Box::new(cause),
                }
            }
        }
    }

    fn drop_record(&self, id: &str) {
        // The instance is gone; a leftover record is dropped by the next reconcile.
        if let Some(j) = &self.journal
            && let Err(e) = j.delete(id)
        {
            warn!(container_id = id, error = %chain_line(&e), "could not drop the journal record");
        }
    }
}

/// Notes in the record of `id` (if the journal has one) that `operation` failed, so that
/// `reconcile` says so instead of blaming a crash. Best effort: a record that cannot be
/// updated still leads `reconcile` to the instance.
fn mark_failed(journal: Option<&Journal>, id: &str, operation: FailedOperation) {
    let Some(j) = journal else { return };
    match j.get(id) {
        Ok(Some(mut r)) if r.state.is_transient() => {
            r.failed = Some(operation);
            if let Err(e) = j.write(&r) {
                warn!(container_id = id, error = %e, "could not note the failed {} in the journal record", operation.as_str());
            }
        }
        Ok(_) => {}
        Err(e) => {
            warn!(container_id = id, error = %e, "could not read the journal record to note the failed {}", operation.as_str());
        }
    }
}

fn journal_error(id: &str, e: JournalError) -> CcgError {
    let container_id = ShownId::new(id);
    match e {
        JournalError::Busy { .. } | JournalError::Exists { .. } => CcgError::JournalConflict {
            container_id,
            source: e,
        },
        JournalError::Io(_) | JournalError::Transition { .. } => CcgError::Journal {
            container_id,
            source: e,
        },
    }
}

/// The AddInstance document of a request, as create sends it and [`CcgClient::plan`] shows it.
fn add_instance_document(req: &CreateRequest<'_>) -> String {
    wire(&ModificationRequest::add_instance(
        req.container_id,
        req.credential_spec,
        req.isolation.transport(),
    ))
}

/// The hot-add of an instance's HvSocket entry, as create sends it and [`CcgClient::plan`]
/// shows it (with placeholders for what only HCS's answer holds).
fn hvsocket_add_document(service_id: &str, config: &HvSocketServiceConfig) -> String {
    wire(&ModifySettingRequest::hvsocket_update(service_id, config))
}

fn wire<T: serde::Serialize>(doc: &T) -> String {
    // The schema types serialise infallibly (strings, booleans and JSON values only).
    to_wire(doc).unwrap_or_default()
}

/// The lookup of every step but the read-back after AddInstance: an answer with no property
/// at all lists no instances.
pub(crate) fn lookup(
    hcs: &dyn HcsService,
    id: &str,
) -> Result<Option<ContainerCredentialGuardInstance>, LookupError> {
    let doc = hcs
        .get_service_properties(CCG_QUERY)
        .map_err(LookupError::Call)?;
    find_listed_instance(&doc, id).map_err(LookupError::Answer)
}

/// RemoveInstance; if it fails, an id no longer listed counts as removed: by this call when
/// HCS's answer was anything but "not found" (HCS can apply an operation and still report
/// failure), by someone else when it was "not found".
pub(crate) fn remove_confirmed(hcs: &dyn HcsService, id: &str) -> Result<Removal, CcgError> {
    let doc = wire(&ModificationRequest::remove_instance(id));
    debug!(container_id = id, "sending RemoveInstance");
    let Err(source) = hcs.modify_service_settings(&doc) else {
        return Ok(Removal::Removed);
    };
    match lookup(hcs, id) {
        Ok(None) if source.hresult == HResult::ERROR_NOT_FOUND => {
            debug!(container_id = id, error = %source, "RemoveInstance found no instance: another process removed it");
            Ok(Removal::AlreadyAbsent)
        }
        Ok(None) => {
            debug!(container_id = id, error = %source, "RemoveInstance reported failure but the instance is gone");
            Ok(Removal::Removed)
        }
        Ok(Some(_)) => Err(CcgError::Hcs {
            container_id: ShownId::new(id),
            step: Step::RemoveInstance,
            source,
        }),
        Err(query) => {
            let query = query.at(id, Step::ConfirmRemoval);
            warn!(container_id = id, error = %chain_line(&query), "cannot confirm the removal");
            Err(CcgError::Hcs {
                container_id: ShownId::new(id),
                step: Step::RemoveInstance,
                source,
            })
        }
    }
}

/// Removes an HvSocket service-table entry. An entry that no longer exists, and a utility
/// VM that is gone or stopped, count as removed: a VM that is gone or stopped took its
/// service table with it.
pub(crate) fn remove_hvsocket_entry(
    hcs: &dyn HcsService,
    id: &str,
    utility_vm: &str,
    service_id: &str,
) -> Result<(), CcgError> {
    let doc = wire(&ModifySettingRequest::hvsocket_remove(service_id));
    debug!(
        container_id = id,
        utility_vm, service_id, "removing the HvSocket service-table entry"
    );
    match hcs.modify_compute_system(utility_vm, &doc) {
        Ok(()) => Ok(()),
        Err(e) if e.hresult.is_system_gone() || e.hresult == HResult::ERROR_NOT_FOUND => {
            debug!(container_id = id, utility_vm, service_id, error = %e, "the HvSocket entry or its utility VM is already gone or stopped");
            Ok(())
        }
        Err(source) => Err(CcgError::HvSocketEntry {
            container_id: ShownId::new(id),
            step: Step::HvSocketRemove,
            utility_vm: ShownId::new(utility_vm),
            service_id: ShownId::new(service_id),
            source: Box::new(source),
        }),
    }
}

/// The release sequence: record `releasing`, remove the HvSocket entry, remove the
/// instance (confirmed), drop the record. `lock` is the record's lock when the caller holds
/// it already; otherwise it is waited for.
///
/// A failed instance removal keeps the record `releasing` so a retry or `reconcile`
/// finishes the job. A failed entry removal does not stop the instance's removal: once the
/// instance is gone the record stays (with its entry) for `reconcile`, and the error is
/// [`CcgError::HvSocketEntryLeft`].
pub(crate) fn release(
    hcs: &dyn HcsService,
    journal: Option<&Journal>,
    id: &str,
    entry: Option<&HvEntry>,
    lock: Option<RecordLock>,
) -> Result<Removal, CcgError> {
    let lock = match (journal, lock) {
        (Some(j), None) => Some(j.lock(id, true).map_err(|e| journal_error(id, e))?),
        (_, lock) => lock,
    };
    let mut entry = entry.cloned();
    let mut record = None;
    if let Some(j) = journal
        && let Some(mut r) = j.get(id).map_err(|e| journal_error(id, e))?
    {
        if entry.is_none() {
            entry = r
                .hvsocket_entry()
                .map(|(vm, sid)| (vm.to_owned(), sid.to_owned()));
        }
        r.move_to(RecordState::Releasing)
            .map_err(|e| journal_error(id, e))?;
        // Under way again: until it fails, a record left `releasing` means a crash.
        r.failed = None;
        j.write(&r).map_err(|e| journal_error(id, e))?;
        record = Some(r);
    }
    let entry_error = entry.as_ref().and_then(|(vm, sid)| {
        remove_hvsocket_entry(hcs, id, vm, sid)
            .err()
            .map(|e| (vm.clone(), sid.clone(), e))
    });
    let removal = match remove_confirmed(hcs, id) {
        Ok(removal) => removal,
        Err(e) => {
            if let Some((_, _, entry)) = &entry_error {
                warn!(container_id = id, error = %chain_line(entry), "the HvSocket entry could not be removed either");
            }
            mark_failed(journal, id, FailedOperation::Release);
            return Err(e);
        }
    };
    if let Some((vm, sid, source)) = entry_error {
        warn!(container_id = id, utility_vm = %vm, service_id = %sid, error = %chain_line(&source), "the instance was removed, but its HvSocket entry could not be; the journal keeps it for reconcile");
        if let Some(j) = journal {
            let mut r = record.unwrap_or_else(|| {
                let mut r = Record::creating(id, Isolation::HyperV, Some(&vm));
                r.state = RecordState::Releasing; // creating -> releasing, always allowed
                r
            });
            r.utility_vm = Some(vm.clone());
            r.service_id = Some(sid.clone());
            r.hvsocket_added = true;
            j.write(&r).map_err(|e| journal_error(id, e))?;
        }
        return Err(CcgError::HvSocketEntryLeft {
            container_id: ShownId::new(id),
            utility_vm: ShownId::new(&vm),
            service_id: ShownId::new(&sid),
            source: Box::new(source),
        });
    }
    if let Some(j) = journal {
        j.delete(id).map_err(|e| journal_error(id, e))?;
    }
    if let Some(lock) = lock {
        lock.remove_file();
    }
    Ok(removal)
}

/// The handle of a created instance: [`release`](CcgResource::release) removes it.
///
/// Dropping the handle without releasing it leaves the instance in place (HCS keeps it
/// until it is removed or vmcompute.exe restarts) and its journal record `active`, and logs
/// a warning naming the container, so `reconcile` can find it.
#[must_use = "a CCG instance stays on the host until it is released"]
#[derive(Debug)]
pub struct CcgResource {
    hcs: Arc<dyn HcsService>,
    journal: Option<Arc<Journal>>,
    container_id: String,
    hv_entry: Option<HvEntry>,
    released: bool,
}

impl CcgResource {
    /// The container id the instance belongs to.
    #[must_use]
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// The utility VM and service id of the hot-added HvSocket entry, if any.
    #[must_use]
    pub fn hvsocket_entry(&self) -> Option<(&str, &str)> {
        self.hv_entry
            .as_ref()
            .map(|(vm, sid)| (vm.as_str(), sid.as_str()))
    }

    /// Whether the instance was released.
    #[must_use]
    pub fn is_released(&self) -> bool {
        self.released
    }

    /// Removes the HvSocket entry (if one was hot-added) and then the instance. Calling it
    /// again after a success does nothing.
    ///
    /// # Errors
    /// A removal failed and HCS still lists the instance (or whether it does could not be
    /// seen); the handle stays unreleased, so the call can be repeated.
    /// [`CcgError::HvSocketEntryLeft`] when the instance was removed but its HvSocket entry
    /// could not be: the handle counts as released (the journal keeps the entry and
    /// `reconcile` removes it), and the error names the utility VM and the ServiceId.
    pub fn release(&mut self) -> Result<(), CcgError> {
        if self.released {
            return Ok(());
        }
        let _enter = info_span!("ccg.release", container_id = %self.container_id).entered();
        let _calls = calls_for(&self.container_id);
        match release(
            self.hcs.as_ref(),
            self.journal.as_deref(),
            &self.container_id,
            self.hv_entry.as_ref(),
            None,
        ) {
            Ok(_) => {}
            Err(e @ CcgError::HvSocketEntryLeft { .. }) => {
                self.released = true;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.released = true;
        info!(container_id = %self.container_id, "CCG instance released");
        Ok(())
    }

    /// Gives up the handle without releasing and without the warning: the caller takes
    /// over the duty to remove the instance (e.g. an operator command whose instance
    /// outlives the process; its journal record stays `active`). Returns the container id.
    pub fn detach(mut self) -> String {
        self.released = true;
        std::mem::take(&mut self.container_id)
    }
}

impl Drop for CcgResource {
    fn drop(&mut self) {
        if !self.released {
            warn!(
                container_id = %self.container_id,
                "CCG instance handle dropped without release: the instance stays on the host until removed or reconciled"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PropertyQuery;

    #[test]
    fn the_query_constant_is_what_the_schema_writes() {
        assert_eq!(to_wire(&PropertyQuery::ccg()).unwrap(), CCG_QUERY);
    }
}
