//! containerd as a live-set source: its containers service (every namespace, or those
//! given) for the list, its events service for container deletions.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{
    AliveSource, DEFAULT_TIMEOUT, ListFuture, SourceError, WatchEvent, refused, timed_out,
    unreachable,
};
use crate::api::containerd::containers::ListContainersRequest;
use crate::api::containerd::containers::containers_client::ContainersClient;
use crate::api::containerd::event_types::ContainerDelete;
use crate::api::containerd::events::events_client::EventsClient;
use crate::api::containerd::events::{Envelope, SubscribeRequest};
use crate::api::containerd::namespaces::ListNamespacesRequest;
use crate::api::containerd::namespaces::namespaces_client::NamespacesClient;
use crate::api::{Address, connect, in_namespace};

/// The topic of containerd's container-delete event.
const DELETE_TOPIC: &str = "/containers/delete";
/// The most a listing may decode in one message (a namespace's list, when containerd has
/// no streamed listing).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// The first and the longest wait before subscribing again after the runtime went away.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The watch channel's capacity.
const WATCH_CAPACITY: usize = 256;

/// containerd's containers service: every container of every namespace (or of the
/// namespaces given), whatever its task state.
#[derive(Debug, Clone)]
pub struct ContainerdSource {
    address: Address,
    namespaces: Vec<String>,
    timeout: Duration,
}

impl ContainerdSource {
    /// containerd at `address`, every namespace, the default timeout.
    pub fn new(address: Address) -> Self {
        Self {
            address,
            namespaces: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Only these namespaces (every namespace when empty).
    #[must_use]
    pub fn with_namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// How long one listing (or one subscription attempt) may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The address asked.
    pub fn address(&self) -> &Address {
        &self.address
    }

    async fn list_now(&self) -> Result<BTreeSet<String>, SourceError> {
        let channel = connect(&self.address)
            .await
            .map_err(|error| unreachable(self.name(), &self.address, &error, "containerd"))?;
        let namespaces = if self.namespaces.is_empty() {
            let mut client = NamespacesClient::new(channel.clone());
            let answer = client
                .list(ListNamespacesRequest::default())
                .await
                .map_err(|status| refused(self.name(), "Namespaces.List", &status))?;
            answer
                .into_inner()
                .namespaces
                .into_iter()
                .map(|namespace| namespace.name)
                .collect()
        } else {
            self.namespaces.clone()
        };
        let mut client = ContainersClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
        let mut ids = BTreeSet::new();
        for namespace in &namespaces {
            self.list_namespace(&mut client, namespace, &mut ids)
                .await?;
        }
        Ok(ids)
    }

    /// Adds one namespace's container ids: the streamed listing (one container a message,
    /// no size limit), or the plain one from a containerd without it.
    async fn list_namespace(
        &self,
        client: &mut ContainersClient<tonic::transport::Channel>,
        namespace: &str,
        ids: &mut BTreeSet<String>,
    ) -> Result<(), SourceError> {
        let request = |()| {
            in_namespace(ListContainersRequest::default(), namespace).map_err(|reason| {
                SourceError {
                    source_name: self.name(),
                    reason,
                }
            })
        };
        match client.list_stream(request(())?).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                while let Some(message) = stream.message().await.map_err(|status| {
                    refused(
                        self.name(),
                        &format!("Containers.ListStream in namespace {namespace:?}"),
                        &status,
                    )
                })? {
                    if let Some(container) = message.container {
                        ids.insert(container.id);
                    }
                }
                Ok(())
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                let answer = client.list(request(())?).await.map_err(|status| {
                    refused(
                        self.name(),
                        &format!("Containers.List in namespace {namespace:?}"),
                        &status,
                    )
                })?;
                ids.extend(answer.into_inner().containers.into_iter().map(|c| c.id));
                Ok(())
            }
            Err(status) => Err(refused(
                self.name(),
                &format!("Containers.ListStream in namespace {namespace:?}"),
                &status,
            )),
        }
    }
}

impl AliveSource for ContainerdSource {
    fn name(&self) -> String {
        format!("containerd:{}", self.address)
    }

    fn list(&self) -> ListFuture<'_> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.list_now())
                .await
                .unwrap_or_else(|_| Err(timed_out(self.name(), self.timeout, "containerd")))
        })
    }

    fn watch(&self) -> Option<mpsc::Receiver<WatchEvent>> {
        let (sender, receiver) = mpsc::channel(WATCH_CAPACITY);
        tokio::spawn(watch_loop(self.clone(), sender));
        Some(receiver)
    }
}

/// How one subscription ended.
enum Ended {
    /// The receiver was dropped: stop.
    Closed,
    /// The subscription broke or could not be made.
    Lost(SourceError),
}

/// Subscribes, reports, and subscribes again (with a bounded backoff) until the receiver
/// is dropped.
async fn watch_loop(source: ContainerdSource, sender: mpsc::Sender<WatchEvent>) {
    let mut backoff = BACKOFF_FIRST;
    // A loss is reported once, not at every failed attempt while the runtime is away.
    let mut lost_reported = false;
    loop {
        let mut subscribed = false;
        match subscribe_once(&source, &sender, &mut subscribed).await {
            Ended::Closed => return,
            Ended::Lost(error) => {
                if subscribed {
                    backoff = BACKOFF_FIRST;
                    lost_reported = false;
                }
                if !lost_reported {
                    tracing::warn!(source = %source.name(), error = %error.reason, "container-delete subscription lost; subscribing again");
                    if sender.send(WatchEvent::Lost(error)).await.is_err() {
                        return;
                    }
                    lost_reported = true;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = sender.closed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One subscription, from connecting to its end.
async fn subscribe_once(
    source: &ContainerdSource,
    sender: &mpsc::Sender<WatchEvent>,
    subscribed: &mut bool,
) -> Ended {
    let name = source.name();
    let channel = tokio::select! {
        connected = tokio::time::timeout(source.timeout, connect(&source.address)) => match connected {
            Ok(Ok(channel)) => channel,
            Ok(Err(error)) => return Ended::Lost(unreachable(name, &source.address, &error, "containerd")),
            Err(_) => return Ended::Lost(timed_out(name, source.timeout, "containerd")),
        },
        () = sender.closed() => return Ended::Closed,
    };
    let request = SubscribeRequest {
        filters: vec![format!("topic==\"{DELETE_TOPIC}\"")],
    };
    // containerd answers a subscription's headers only with its first event, so the call
    // runs in its own task; a round trip on the same connection after it was sent tells
    // that containerd has it.
    let mut events_client = EventsClient::new(channel.clone());
    let mut call = tokio::spawn(async move { events_client.subscribe(request).await });
    let mut namespaces = NamespacesClient::new(channel);
    let probe = tokio::select! {
        probe = tokio::time::timeout(source.timeout, namespaces.list(ListNamespacesRequest::default())) => probe,
        () = sender.closed() => {
            call.abort();
            return Ended::Closed;
        }
    };
    match probe {
        Ok(Ok(_)) => {}
        Ok(Err(status)) => {
            call.abort();
            return Ended::Lost(refused(name, "Namespaces.List", &status));
        }
        Err(_) => {
            call.abort();
            return Ended::Lost(timed_out(name, source.timeout, "containerd"));
        }
    }
    *subscribed = true;
    if sender.send(WatchEvent::Subscribed).await.is_err() {
        call.abort();
        return Ended::Closed;
    }
    let answer = tokio::select! {
        answer = &mut call => answer,
        () = sender.closed() => {
            call.abort();
            return Ended::Closed;
        }
    };
    let mut stream = match answer {
        Ok(Ok(stream)) => stream.into_inner(),
        Ok(Err(status)) => return Ended::Lost(refused(name, "Events.Subscribe", &status)),
        Err(join) => {
            return Ended::Lost(SourceError {
                source_name: name,
                reason: format!("the subscription task ended: {join}"),
            });
        }
    };
    loop {
        let message = tokio::select! {
            message = stream.message() => message,
            () = sender.closed() => return Ended::Closed,
        };
        match message {
            Ok(Some(envelope)) => {
                if let Some(id) = deleted_id(source, &envelope)
                    && sender.send(WatchEvent::Deleted { id }).await.is_err()
                {
                    return Ended::Closed;
                }
            }
            Ok(None) => {
                return Ended::Lost(SourceError {
                    source_name: name,
                    reason: "containerd ended the event stream (restarting?)".to_owned(),
                });
            }
            Err(status) => return Ended::Lost(refused(name, "the event stream", &status)),
        }
    }
}

/// The container id of a container-delete event in a namespace the source covers.
fn deleted_id(source: &ContainerdSource, envelope: &Envelope) -> Option<String> {
    if envelope.topic != DELETE_TOPIC {
        return None;
    }
    if !source.namespaces.is_empty() && !source.namespaces.contains(&envelope.namespace) {
        return None;
    }
    let event = envelope.event.as_ref()?;
    match <ContainerDelete as prost::Message>::decode(event.value.as_slice()) {
        Ok(delete) if !delete.id.is_empty() => Some(delete.id),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(source = %source.name(), type_url = %event.type_url, %error, "a container-delete event that does not decode; ignored");
            None
        }
    }
}
