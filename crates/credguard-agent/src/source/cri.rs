//! The Kubernetes CRI as a live-set source: `RuntimeService/ListContainers`, every state.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{
    AliveSource, DEFAULT_TIMEOUT, ListFuture, SourceError, refused, timed_out, unreachable,
};
use crate::api::cri::ListContainersRequest;
use crate::api::cri::runtime_service_client::RuntimeServiceClient;
use crate::api::{Address, connect};

/// The most a listing may decode (the CRI answers in one message).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A CRI runtime's containers (`RuntimeService/ListContainers` without a filter: every
/// state, created, running, exited or unknown).
#[derive(Debug, Clone)]
pub struct CriSource {
    endpoint: Address,
    timeout: Duration,
}

impl CriSource {
    /// The CRI runtime at `endpoint`, the default timeout.
    pub fn new(endpoint: Address) -> Self {
        Self {
            endpoint,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long one listing may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn list_now(&self) -> Result<BTreeSet<String>, SourceError> {
        let channel = connect(&self.endpoint)
            .await
            .map_err(|error| unreachable(self.name(), &self.endpoint, &error, "the CRI runtime"))?;
        let mut client = RuntimeServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
        let answer = client
            .list_containers(ListContainersRequest::default())
            .await
            .map_err(|status| refused(self.name(), "RuntimeService/ListContainers", &status))?;
        Ok(answer
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect())
    }
}

impl AliveSource for CriSource {
    fn name(&self) -> String {
        format!("cri:{}", self.endpoint)
    }

    fn list(&self) -> ListFuture<'_> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.list_now())
                .await
                .unwrap_or_else(|_| Err(timed_out(self.name(), self.timeout, "the CRI runtime")))
        })
    }
}
