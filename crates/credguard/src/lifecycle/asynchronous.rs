//! [`AsyncCcgClient`]: the lifecycle as futures, for runtimes built on tokio (feature
//! `tokio`).
//!
//! Every call runs the synchronous core ([`CcgClient`]) on tokio's blocking pool
//! (`spawn_blocking`), so HCS calls never block an async worker thread. The work does not
//! belong to the future that awaits it: **dropping a future does not abandon its operation**.
//! - A dropped [`AsyncCcgClient::create`] runs to its end in the background. If it created
//!   the instance and nobody can take the handle any more, the instance is released again
//!   (rolled back) there and then; if that release fails, or the future was dropped just after
//!   the handle was handed over, the instance stays `active` in the journal (the handle's drop
//!   warns), where reconciliation finds it. Either way the instance is never unrecorded: it
//!   ends up rolled back, or active and recorded.
//! - A dropped [`AsyncCcgClient::release`] or [`AsyncCcgClient::reconcile`] runs to its end
//!   in the background as well; a release that fails leaves the record for reconciliation,
//!   as the synchronous release does.
//!
//! A create that is still running holds its journal record's lock, so a reconciliation
//! started meanwhile skips it (it is never removed as foreign or interrupted).

use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::lifecycle::reconcile::{Done, PlanItem, ReconcileOptions};
use crate::lifecycle::{CcgClient, CcgError, CcgResource, CreateRequest, Removal};
use crate::text::chain_line;
use crate::wire::{ContainerCredentialGuardInstance, Isolation};

/// The lifecycle of [`CcgClient`] as futures (see the [module docs](self) for what dropping
/// one does). Cheap to clone: clones share the client.
#[derive(Debug, Clone)]
pub struct AsyncCcgClient {
    inner: Arc<CcgClient>,
}

/// What [`AsyncCcgClient::create`] returns: the instance as HCS lists it and its handle.
pub type Created = (ContainerCredentialGuardInstance, CcgResource);

impl AsyncCcgClient {
    /// The async face of `client` (with its journal and policy).
    #[must_use]
    pub fn new(client: CcgClient) -> Self {
        AsyncCcgClient {
            inner: Arc::new(client),
        }
    }

    /// The synchronous client underneath.
    #[must_use]
    pub fn client(&self) -> &CcgClient {
        &self.inner
    }

    /// [`CcgClient::create_request`] for a container (`utility_vm`: as
    /// [`CreateRequest::with_utility_vm`]). Dropping the future does not abandon the create:
    /// see the [module docs](self).
    ///
    /// # Errors
    /// As [`CcgClient::create_request`].
    ///
    /// # Panics
    /// When the synchronous core panicked (the panic is passed on).
    pub async fn create(
        &self,
        container_id: impl Into<String>,
        credential_spec: impl Into<String>,
        isolation: Isolation,
        utility_vm: Option<String>,
    ) -> Result<Created, CcgError> {
        let (id, spec) = (container_id.into(), credential_spec.into());
        let client = self.inner.clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::task::spawn_blocking(move || {
            let req =
                CreateRequest::new(&id, &spec, isolation).with_utility_vm(utility_vm.as_deref());
            let result = client.create_request(&req);
            if let Err(Ok((_, mut resource))) = tx.send(result) {
                // The caller is gone: nobody can release this instance, so it is rolled back
                // now; a failed release leaves the record `active` for reconciliation.
                match resource.release() {
                    Ok(()) => {
                        info!(container_id = %id, "create's caller went away: its instance was released again");
                    }
                    Err(e) => {
                        warn!(container_id = %id, error = %chain_line(&e), "create's caller went away and its instance could not be released; the journal keeps it for reconcile");
                    }
                }
            }
        });
        joined(task.await);
        match rx.await {
            Ok(result) => result,
            Err(_) => unreachable!("the create task ran to its end, so it sent its outcome"),
        }
    }

    /// [`CcgResource::release`] of `resource`. The handle comes back with the outcome:
    /// released, or (on an error) still unreleased, so the call can be repeated. Dropping the
    /// future does not abandon the release: the handle is dropped where it ran (released,
    /// or warned about, with its record left for reconciliation).
    ///
    /// # Panics
    /// As [`AsyncCcgClient::create`].
    pub async fn release(&self, mut resource: CcgResource) -> (CcgResource, Result<(), CcgError>) {
        let task = tokio::task::spawn_blocking(move || {
            let result = resource.release();
            (resource, result)
        });
        joined(task.await)
    }

    /// [`CcgClient::reconcile`].
    ///
    /// # Errors
    /// As [`CcgClient::reconcile`].
    pub async fn reconcile(&self, opts: ReconcileOptions) -> Result<Vec<Done>, CcgError> {
        self.blocking(move |c| c.reconcile(&opts)).await
    }

    /// [`CcgClient::plan_reconcile`].
    ///
    /// # Errors
    /// As [`CcgClient::plan_reconcile`].
    pub async fn plan_reconcile(&self, opts: ReconcileOptions) -> Result<Vec<PlanItem>, CcgError> {
        self.blocking(move |c| c.plan_reconcile(&opts)).await
    }

    /// [`CcgClient::list`].
    ///
    /// # Errors
    /// As [`CcgClient::list`].
    pub async fn list(&self) -> Result<Vec<ContainerCredentialGuardInstance>, CcgError> {
        self.blocking(CcgClient::list).await
    }

    /// [`CcgClient::remove`].
    ///
    /// # Errors
    /// As [`CcgClient::remove`].
    pub async fn remove(&self, container_id: impl Into<String>) -> Result<Removal, CcgError> {
        let id = container_id.into();
        self.blocking(move |c| c.remove(&id)).await
    }

    /// Runs `f` on the blocking pool; it runs to its end even when the future is dropped.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CcgClient) -> Result<T, CcgError> + Send + 'static,
    ) -> Result<T, CcgError> {
        let client = self.inner.clone();
        joined(tokio::task::spawn_blocking(move || f(&client)).await)
    }
}

/// A blocking task's outcome; its panic is passed on. A blocking task that has started is
/// never cancelled, and one that has not is cancelled only by a runtime shutting down, which
/// drops the future awaiting it too.
fn joined<T>(joined: Result<T, tokio::task::JoinError>) -> T {
    match joined {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => panic!("the tokio runtime shut down under a credguard call"),
    }
}
