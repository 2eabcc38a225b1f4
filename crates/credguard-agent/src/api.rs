//! The gRPC clients credguard uses: the part of containerd's API (containers, namespaces,
//! events) and of the Kubernetes CRI (`runtime.v1.RuntimeService`) it needs, generated at
//! build time from the crate's own `proto/` files, and the connection to a runtime's local
//! endpoint (a Unix socket, or a named pipe on Windows).
//!
//! Why not the `containerd-client` and `k8s-cri` crates: both generate their code at build
//! time with `tonic-build`, which runs a system `protoc`; a fresh machine with only a Rust
//! toolchain has none, and credguard must build there. The `.proto` files here declare only
//! the services, messages and fields credguard uses, with the names and field numbers of the
//! published APIs (protobuf skips undeclared fields), and `build.rs` compiles them with
//! protox, a protobuf compiler written in Rust.

use std::fmt;
use std::io;

use tonic::transport::{Channel, Endpoint};

/// Generated from `proto/`: containerd's services and the CRI, clients only.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
pub mod containerd {
    /// `containerd.services.containers.v1`: the containers service.
    pub mod containers {
        tonic::include_proto!("containerd.services.containers.v1");
    }
    /// `containerd.services.namespaces.v1`: the namespaces service.
    pub mod namespaces {
        tonic::include_proto!("containerd.services.namespaces.v1");
    }
    /// `containerd.services.events.v1`: the events service.
    pub mod events {
        tonic::include_proto!("containerd.services.events.v1");
    }
    /// `containerd.events`: the events containerd publishes (the container delete).
    pub mod event_types {
        tonic::include_proto!("containerd.events");
    }
}

/// Generated from `proto/cri.proto`: the Kubernetes CRI runtime service, client only.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
pub mod cri {
    tonic::include_proto!("runtime.v1");
}

/// The gRPC metadata header that names the containerd namespace of a call.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";

/// A runtime's local gRPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket path (`/run/containerd/containerd.sock`).
    Unix(std::path::PathBuf),
    /// A Windows named pipe (`\\.\pipe\containerd-containerd`).
    Pipe(String),
}

impl Address {
    /// containerd's default address on this platform: `\\.\pipe\containerd-containerd` on
    /// Windows, `/run/containerd/containerd.sock` elsewhere.
    pub fn containerd_default() -> Self {
        if cfg!(windows) {
            Self::Pipe(r"\\.\pipe\containerd-containerd".to_owned())
        } else {
            Self::Unix("/run/containerd/containerd.sock".into())
        }
    }

    /// Reads an address as containerd and crictl users write it: a path, `unix:///path`,
    /// `\\.\pipe\NAME`, `npipe:////./pipe/NAME` or `npipe://./pipe/NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the address is empty".to_owned());
        }
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!("{text:?} names no socket path"));
            }
            return Ok(Self::Unix(path.into()));
        }
        if let Some(rest) = text.strip_prefix("npipe://") {
            // npipe:////./pipe/NAME and npipe://./pipe/NAME both mean \\.\pipe\NAME.
            let rest = rest.trim_start_matches('/');
            let name = rest
                .strip_prefix("./pipe/")
                .or_else(|| rest.strip_prefix(r".\pipe\"))
                .filter(|name| !name.is_empty())
                .ok_or_else(|| {
                    format!("{text:?} is not a local named pipe (npipe:////./pipe/NAME)")
                })?;
            return Ok(Self::Pipe(format!(r"\\.\pipe\{}", name.replace('/', r"\"))));
        }
        if text.starts_with(r"\\.\pipe\") || text.starts_with("//./pipe/") {
            return Ok(Self::Pipe(text.replace('/', r"\")));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "{text:?}: the scheme {scheme:?} is not supported (a local endpoint is \
                 unix:///PATH, a path, or a named pipe \\\\.\\pipe\\NAME)"
            ));
        }
        Ok(Self::Unix(text.into()))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "{}", path.display()),
            Self::Pipe(name) => f.write_str(name),
        }
    }
}

/// Opens a gRPC channel to `address`; the connection is made before this returns.
pub async fn connect(address: &Address) -> Result<Channel, io::Error> {
    let address = address.clone();
    // The URI is not used: the connector opens the local endpoint.
    let endpoint = Endpoint::from_static("http://localhost");
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let address = address.clone();
        async move { open(&address).await.map(hyper_util::rt::TokioIo::new) }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|error| {
            // tonic wraps the connector's io::Error; give back the innermost reason.
            let mut source: Option<&dyn std::error::Error> = Some(&error);
            while let Some(inner) = source {
                if let Some(io) = inner.downcast_ref::<io::Error>() {
                    return io::Error::new(io.kind(), io.to_string());
                }
                source = inner.source();
            }
            io::Error::other(error.to_string())
        })
}

#[cfg(unix)]
async fn open(address: &Address) -> io::Result<tokio::net::UnixStream> {
    match address {
        Address::Unix(path) => tokio::net::UnixStream::connect(path).await,
        Address::Pipe(name) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{name} is a Windows named pipe; this system has Unix sockets"),
        )),
    }
}

#[cfg(windows)]
async fn open(address: &Address) -> io::Result<tokio::net::windows::named_pipe::NamedPipeClient> {
    /// All instances of the pipe are busy: wait and try again.
    const ERROR_PIPE_BUSY: i32 = 231;
    const BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(50);
    match address {
        Address::Pipe(name) => loop {
            // Bounded by the caller's per-call timeout.
            match tokio::net::windows::named_pipe::ClientOptions::new().open(name) {
                Ok(client) => return Ok(client),
                Err(error) if error.raw_os_error() == Some(ERROR_PIPE_BUSY) => {
                    tokio::time::sleep(BUSY_RETRY).await;
                }
                Err(error) => return Err(error),
            }
        },
        Address::Unix(path) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} is a Unix socket path; on Windows the runtime listens on a named pipe \
                 (\\\\.\\pipe\\NAME)",
                path.display()
            ),
        )),
    }
}

/// Adds the containerd namespace header to a request.
pub fn in_namespace<T>(message: T, namespace: &str) -> Result<tonic::Request<T>, String> {
    let mut request = tonic::Request::new(message);
    let value = namespace
        .parse()
        .map_err(|_| format!("the namespace {namespace:?} cannot be sent in a gRPC header"))?;
    request.metadata_mut().insert(NAMESPACE_HEADER, value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::Address;

    #[test]
    fn addresses_as_containerd_and_crictl_users_write_them() {
        assert_eq!(
            Address::parse("/run/containerd/containerd.sock"),
            Ok(Address::Unix("/run/containerd/containerd.sock".into()))
        );
        assert_eq!(
            Address::parse("unix:///run/containerd/containerd.sock"),
            Ok(Address::Unix("/run/containerd/containerd.sock".into()))
        );
        for pipe in [
            r"\\.\pipe\containerd-containerd",
            "npipe:////./pipe/containerd-containerd",
            "npipe://./pipe/containerd-containerd",
            "//./pipe/containerd-containerd",
        ] {
            assert_eq!(
                Address::parse(pipe),
                Ok(Address::Pipe(r"\\.\pipe\containerd-containerd".to_owned())),
                "{pipe}"
            );
        }
        for bad in ["", "unix://", "tcp://127.0.0.1:1234", "npipe://host/pipe/x"] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
    }
}
