//! The CCG instance lifecycle: create an instance, hand over its state, release it, and
//! never leave one behind on a failure.
//!
//! The flow is hcsshim's (AddInstance, query, exactly one property, find by id), made safe:
//! an id that already has an instance is refused before anything is sent; a failed
//! AddInstance is followed by a query, because HCS can apply an operation and still report
//! failure; every failure after AddInstance removes the instance again before the error is
//! returned; a failed RemoveInstance is followed by a query, and an id no longer listed
//! counts as removed.

use std::sync::Arc;

use tracing::{debug, info, info_span, warn};

use crate::error::{CcgError, Missing, ShownId, Step, chain_line};
use crate::hcs::{HcsError, HcsService};
use crate::input::{validate_container_id, validate_credential_spec};
use crate::schema::{
    ContainerCredentialGuardInstance, FindError, ModificationRequest, Transport, find_instance,
    list_instances, to_wire,
};

/// The query for every CCG instance on the host, as hcsshim writes it.
pub const CCG_QUERY: &str = r#"{"PropertyTypes":["ContainerCredentialGuard"]}"#;

/// How the container is isolated, which decides the transport of its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Isolation {
    /// Process isolation (Argon): transport `LRPC`.
    #[default]
    Process,
    /// Hyper-V isolation (Xenon): transport `HvSocket`.
    HyperV,
}

impl Isolation {
    /// The transport HCS is asked for.
    #[must_use]
    pub fn transport(self) -> Transport {
        match self {
            Isolation::Process => Transport::Lrpc,
            Isolation::HyperV => Transport::HvSocket,
        }
    }
}

/// What [`CcgClient::remove`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The instance was removed.
    Removed,
    /// No instance was listed for the id; nothing was sent.
    AlreadyAbsent,
}

/// Creates, finds and removes CCG instances through an HCS backend.
#[derive(Debug, Clone)]
pub struct CcgClient {
    hcs: Arc<dyn HcsService>,
}

/// Why a lookup failed: the call, or its answer.
enum LookupError {
    Call(HcsError),
    Answer(FindError),
}

impl LookupError {
    fn at(self, id: &str, step: Step) -> CcgError {
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

impl CcgClient {
    /// A client over an HCS backend.
    #[must_use]
    pub fn new(hcs: Arc<dyn HcsService>) -> Self {
        CcgClient { hcs }
    }

    /// The backend this client talks to.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn HcsService> {
        &self.hcs
    }

    /// Creates the CCG instance for a container.
    ///
    /// Returns the instance as HCS lists it (its `CredentialGuard` state goes into the V2
    /// container document) and the handle whose
    /// [`CcgResource::release`] removes it.
    ///
    /// # Errors
    /// Input errors before anything is sent; [`CcgError::AlreadyExists`] when the id is
    /// listed already (nothing is sent then either); HCS failures named by [`Step`]. A
    /// failure after HCS created the instance is returned as [`CcgError::RolledBack`] once
    /// the instance is removed again, or [`CcgError::RollbackFailed`] when it could not be.
    pub fn create(
        &self,
        container_id: &str,
        credential_spec: &str,
        isolation: Isolation,
    ) -> Result<(ContainerCredentialGuardInstance, CcgResource), CcgError> {
        validate_container_id(container_id)?;
        validate_credential_spec(container_id, credential_spec)?;
        let transport = isolation.transport();
        let span = info_span!("ccg.create", container_id = %container_id, transport = %transport);
        let _enter = span.enter();

        match self.lookup(container_id) {
            Ok(None) => {}
            Ok(Some(_)) => {
                warn!(
                    container_id,
                    "refusing AddInstance: an instance already exists"
                );
                return Err(CcgError::AlreadyExists {
                    container_id: ShownId::new(container_id),
                });
            }
            Err(e) => return Err(e.at(container_id, Step::CheckExisting)),
        }

        let doc = wire(&ModificationRequest::add_instance(
            container_id,
            credential_spec,
            transport,
        ));
        debug!(container_id, "sending AddInstance");
        if let Err(source) = self.hcs.modify_service_settings(&doc) {
            let cause = CcgError::Hcs {
                container_id: ShownId::new(container_id),
                step: Step::AddInstance,
                source,
            };
            return Err(self.after_failed_add(container_id, cause));
        }

        match self.read_new_instance(container_id, isolation) {
            Ok(instance) => {
                info!(container_id, "CCG instance created");
                Ok((instance, CcgResource::new(self.hcs.clone(), container_id)))
            }
            Err(cause) => Err(self.roll_back(container_id, cause)),
        }
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
        list_instances(&doc).map_err(|e| LookupError::Answer(e).at("*", Step::List))
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
        self.lookup(container_id)
            .map_err(|e| e.at(container_id, Step::List))
    }

    /// Removes the instance of a container id that this process holds no handle for (an
    /// operator's clean-up). An id that is not listed is reported, and nothing is sent.
    ///
    /// # Errors
    /// The id is invalid, the query failed, or RemoveInstance failed and the instance is
    /// still listed.
    pub fn remove(&self, container_id: &str) -> Result<Removal, CcgError> {
        validate_container_id(container_id)?;
        let _enter = info_span!("ccg.remove", container_id = %container_id).entered();
        match self.lookup(container_id) {
            Ok(None) => Ok(Removal::AlreadyAbsent),
            Ok(Some(_)) => {
                remove_confirmed(self.hcs.as_ref(), container_id).map(|()| Removal::Removed)
            }
            Err(e) => Err(e.at(container_id, Step::List)),
        }
    }

    fn lookup(&self, id: &str) -> Result<Option<ContainerCredentialGuardInstance>, LookupError> {
        lookup(self.hcs.as_ref(), id)
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
            .lookup(id)
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
    /// not listed before the call, so the call created it, and it is removed again.
    fn after_failed_add(&self, id: &str, cause: CcgError) -> CcgError {
        match self.lookup(id) {
            Ok(None) => cause,
            Ok(Some(_)) => {
                warn!(
                    container_id = id,
                    "AddInstance reported failure but HCS lists the instance"
                );
                self.roll_back(id, cause)
            }
            Err(query) => {
                // Whether the instance exists cannot be seen; it was not listed before the
                // call, so removing it cannot harm anything that is not ours.
                let query = query.at(id, Step::Query);
                warn!(container_id = id, error = %chain_line(&query), "cannot see whether the failed AddInstance was applied; removing blindly");
                let doc = wire(&ModificationRequest::remove_instance(id));
                match self.hcs.modify_service_settings(&doc) {
                    Ok(()) => CcgError::RolledBack {
                        container_id: ShownId::new(id),
                        cause: Box::new(cause),
                    },
                    Err(remove) => CcgError::RollbackFailed {
                        container_id: ShownId::new(id),
                        rollback: format!(
                            "{}; RemoveInstance: {}",
                            chain_line(&query),
                            remove.to_string().replace('\n', " ")
                        ),
                        cause: Box::new(cause),
                    },
                }
            }
        }
    }

    /// Removes the instance after a failure that followed a successful AddInstance.
    fn roll_back(&self, id: &str, cause: CcgError) -> CcgError {
        warn!(container_id = id, error = %chain_line(&cause), "rolling back the CCG instance");
        match remove_confirmed(self.hcs.as_ref(), id) {
            Ok(()) => CcgError::RolledBack {
                container_id: ShownId::new(id),
                cause: Box::new(cause),
            },
            Err(rollback) => {
                tracing::error!(container_id = id, error = %chain_line(&rollback), "rollback failed: the instance may be left behind");
                CcgError::RollbackFailed {
                    container_id: ShownId::new(id),
                    rollback: chain_line(&rollback),
                    cause: Box::new(cause),
                }
            }
        }
    }
}

fn wire<T: serde::Serialize>(doc: &T) -> String {
    // The schema types serialise infallibly (strings, booleans and JSON values only).
    to_wire(doc).unwrap_or_default()
}

fn lookup(
    hcs: &dyn HcsService,
    id: &str,
) -> Result<Option<ContainerCredentialGuardInstance>, LookupError> {
    let doc = hcs
        .get_service_properties(CCG_QUERY)
        .map_err(LookupError::Call)?;
    find_instance(&doc, id).map_err(LookupError::Answer)
}

/// RemoveInstance; if it fails, an id no longer listed counts as removed.
pub(crate) fn remove_confirmed(hcs: &dyn HcsService, id: &str) -> Result<(), CcgError> {
    let doc = wire(&ModificationRequest::remove_instance(id));
    debug!(container_id = id, "sending RemoveInstance");
    let Err(source) = hcs.modify_service_settings(&doc) else {
        return Ok(());
    };
    match lookup(hcs, id) {
        Ok(None) => {
            debug!(container_id = id, error = %source, "RemoveInstance reported failure but the instance is gone");
            Ok(())
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

/// The handle of a created instance: [`release`](CcgResource::release) removes it.
///
/// Dropping the handle without releasing it leaves the instance in place (HCS keeps it
/// until it is removed or vmcompute.exe restarts) and logs a warning naming the container.
#[must_use = "a CCG instance stays on the host until it is released"]
#[derive(Debug)]
pub struct CcgResource {
    hcs: Arc<dyn HcsService>,
    container_id: String,
    released: bool,
}

impl CcgResource {
    fn new(hcs: Arc<dyn HcsService>, container_id: &str) -> Self {
        CcgResource {
            hcs,
            container_id: container_id.to_owned(),
            released: false,
        }
    }

    /// The container id the instance belongs to.
    #[must_use]
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// Whether the instance was released.
    #[must_use]
    pub fn is_released(&self) -> bool {
        self.released
    }

    /// Removes the instance. Calling it again after a success does nothing.
    ///
    /// # Errors
    /// RemoveInstance failed and HCS still lists the instance (or whether it does could not
    /// be seen); the handle stays unreleased, so the call can be repeated.
    pub fn release(&mut self) -> Result<(), CcgError> {
        if self.released {
            return Ok(());
        }
        let _enter = info_span!("ccg.release", container_id = %self.container_id).entered();
        remove_confirmed(self.hcs.as_ref(), &self.container_id)?;
        self.released = true;
        info!(container_id = %self.container_id, "CCG instance released");
        Ok(())
    }

    /// Gives up the handle without releasing and without the warning: the caller takes
    /// over the duty to remove the instance (e.g. an operator command that leaves it for a
    /// later `remove`).
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
                "CCG instance handle dropped without release: the instance stays on the host until removed (`credguard instances remove` or `credguard reconcile`)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PropertyQuery;

    #[test]
    fn the_query_constant_is_what_the_schema_writes() {
        assert_eq!(to_wire(&PropertyQuery::ccg()).unwrap(), CCG_QUERY);
    }
}
