//! A private containerd for tests (feature `test-support`, Unix): its own config, root,
//! state and socket under a temp dir, started, stopped and restarted on demand, killed on
//! drop; a tiny OCI image the tests build and import themselves (no registry needed), and
//! containers created and deleted through containerd's API.
//!
//! Needs root and the `containerd` binary (`ctr` for the image import): Debian's
//! `containerd` package, which `scripts/containerd-tests.sh` installs when missing. The
//! binary is `$CREDGUARD_CONTAINERD`, or `containerd` on the `PATH`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use credguard_agent::test_support::PrivateContainerd;
//! let mut containerd = PrivateContainerd::start()?;
//! let image = containerd.import_test_image("default")?;
//! containerd.create_container("default", "c1", &image).await?;
//! let alive_from = containerd.alive_from(); // "containerd:/tmp/.../containerd.sock"
//! containerd.stop()?;
//! containerd.restart()?;
//! # Ok(()) }
//! ```

#![cfg(unix)]

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::api::containerd::containers::containers_client::ContainersClient;
use crate::api::containerd::containers::{
    Container, CreateContainerRequest, DeleteContainerRequest, container,
};
use crate::api::{Address, connect, in_namespace};
use crate::source::ContainerdSource;

/// How long containerd may take to start or stop.
const START_DEADLINE: Duration = Duration::from_secs(60);
const STOP_DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);
/// The name of the image [`PrivateContainerd::import_test_image`] imports.
pub const TEST_IMAGE: &str = "docker.io/credguard/test:1";
/// The runtime containers are created with (no task is ever started).
pub const TEST_RUNTIME: &str = "io.containerd.runc.v2";

/// A containerd of the test's own, under a temp dir; killed when dropped.
#[derive(Debug)]
pub struct PrivateContainerd {
    dir: tempfile::TempDir,
    binary: PathBuf,
    child: Option<Child>,
}

impl PrivateContainerd {
    /// Writes the config and starts containerd; returns once its socket answers.
    pub fn start() -> Result<Self, String> {
        let binary = std::env::var_os("CREDGUARD_CONTAINERD")
            .map_or_else(|| PathBuf::from("containerd"), PathBuf::from);
        let dir = tempfile::Builder::new()
            .prefix("credguard-containerd-")
            .tempdir()
            .map_err(|e| format!("cannot make a temp dir for containerd: {e}"))?;
        let root = dir.path();
        for sub in ["root", "state", "opt", "cni/bin", "cni/conf"] {
            fs::create_dir_all(root.join(sub))
                .map_err(|e| format!("cannot create {}: {e}", root.join(sub).display()))?;
        }
        fs::write(root.join("config.toml"), config(root))
            .map_err(|e| format!("cannot write containerd's config: {e}"))?;
        let mut containerd = Self {
            dir,
            binary,
            child: None,
        };
        containerd.spawn()?;
        Ok(containerd)
    }

    /// The temp dir holding config, root, state, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// containerd's gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// The socket as an [`Address`].
    pub fn address(&self) -> Address {
        Address::Unix(self.socket())
    }

    /// The `--alive-from` value naming this containerd: `containerd:SOCKET`.
    pub fn alive_from(&self) -> String {
        format!("containerd:{}", self.socket().display())
    }

    /// The `--alive-from` value naming this containerd's CRI plugin: `cri:unix://SOCKET`.
    pub fn cri_alive_from(&self) -> String {
        format!("cri:unix://{}", self.socket().display())
    }

    /// A [`ContainerdSource`] for this containerd, every namespace.
    pub fn source(&self) -> ContainerdSource {
        ContainerdSource::new(self.address())
    }

    /// containerd's log (its stdout and stderr, every start appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("containerd.log")
    }

    /// The last lines of containerd's log, for messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path(), 40)
    }

    /// Whether containerd runs (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops containerd (SIGTERM, then SIGKILL after a deadline); the dirs stay.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = rustix::process::Pid::from_child(&child);
        // Already gone is fine: the wait below reaps it.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(());
                }
            }
        }
    }

    /// Starts containerd again with the same config, dirs and socket.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop()?;
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("cannot open {}: {e}", self.log_path().display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", self.log_path().display()))?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e}; install containerd (Debian: apt-get install \
                     containerd; scripts/containerd-tests.sh does it as root) or set \
                     CREDGUARD_CONTAINERD to its path",
                    self.binary.display()
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!(
                    "containerd exited ({status}) before it served {}; its log ends:\n{}",
                    self.socket().display(),
                    self.log_tail()
                ));
            }
            if Instant::now() >= deadline {
                let _ = self.stop();
                return Err(format!(
                    "containerd did not serve {} within {START_DEADLINE:?}; its log ends:\n{}",
                    self.socket().display(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Builds the test image (one small layer, its config and manifest, as an OCI image
    /// layout tar with correct digests) and imports it into `namespace` with `ctr`;
    /// returns its name, [`TEST_IMAGE`].
    pub fn import_test_image(&self, namespace: &str) -> Result<String, String> {
        let archive = self.dir.path().join("test-image.tar");
        fs::write(&archive, test_image_archive()?)
            .map_err(|e| format!("cannot write {}: {e}", archive.display()))?;
        let ctr =
            std::env::var_os("CREDGUARD_CTR").map_or_else(|| PathBuf::from("ctr"), PathBuf::from);
        let output = Command::new(&ctr)
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", namespace, "images", "import", "--no-unpack"])
            .arg(&archive)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", ctr.display()))?;
        let _ = fs::remove_file(&archive);
        if !output.status.success() {
            return Err(format!(
                "ctr images import failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(TEST_IMAGE.to_owned())
    }

    /// Creates a container through containerd's containers service (no task: a listed
    /// container is alive whatever its task state).
    pub async fn create_container(
        &self,
        namespace: &str,
        id: &str,
        image: &str,
    ) -> Result<(), String> {
        self.create_containers(namespace, &[id.to_owned()], image)
            .await
    }

    /// Creates every container of `ids` over one connection.
    pub async fn create_containers(
        &self,
        namespace: &str,
        ids: &[String],
        image: &str,
    ) -> Result<(), String> {
        let channel = connect(&self.address())
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.socket().display()))?;
        let mut client = ContainersClient::new(channel);
        for id in ids {
            let container = Container {
                id: id.clone(),
                image: image.to_owned(),
                runtime: Some(container::Runtime {
                    name: TEST_RUNTIME.to_owned(),
                    options: None,
                }),
                spec: Some(prost_types::Any {
                    type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".to_owned(),
                    value: oci_spec(id).into_bytes(),
                }),
                ..Container::default()
            };
            let request = in_namespace(
                CreateContainerRequest {
                    container: Some(container),
                },
                namespace,
            )?;
            client
                .create(request)
                .await
                .map_err(|status| format!("Containers.Create {id:?} in {namespace:?}: {status}"))?;
        }
        Ok(())
    }

    /// Deletes a container through containerd's containers service.
    pub async fn delete_container(&self, namespace: &str, id: &str) -> Result<(), String> {
        let channel = connect(&self.address())
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.socket().display()))?;
        let request = in_namespace(DeleteContainerRequest { id: id.to_owned() }, namespace)?;
        ContainersClient::new(channel)
            .delete(request)
            .await
            .map_err(|status| format!("Containers.Delete {id:?} in {namespace:?}: {status}"))?;
        Ok(())
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// containerd's config: everything under `root`, no debug or metrics listener, the native
/// snapshotter (no overlay mounts), the CRI plugin on (its own dirs, no TCP).
fn config(root: &Path) -> String {
    let r = root.display();
    format!(
        r#"version = 2
root = "{r}/root"
state = "{r}/state"

[grpc]
  address = "{r}/containerd.sock"

[ttrpc]
  address = "{r}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{r}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{r}/cni/bin"
      conf_dir = "{r}/cni/conf"
"#
    )
}

/// A minimal OCI runtime spec for a container that is never started.
fn oci_spec(id: &str) -> String {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "hostname": id,
        "process": {"args": ["/hello"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
    })
    .to_string()
}

fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return format!("({} cannot be read)", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The `sha256:HEX` digest of `bytes`.
fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn tar_file(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), String> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path, data)
        .map_err(|e| format!("cannot build the test image ({path}): {e}"))
}

/// The test image as an OCI image layout tar: one layer with one file, its config, its
/// manifest, and an index naming it [`TEST_IMAGE`].
pub fn test_image_archive() -> Result<Vec<u8>, String> {
    let mut layer = tar::Builder::new(Vec::new());
    tar_file(
        &mut layer,
        "hello",
        b"#!/bin/sh\necho credguard test image\n",
        0o755,
    )?;
    let layer = layer
        .into_inner()
        .map_err(|e| format!("cannot build the test image's layer: {e}"))?;
    let layer_digest = digest(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    })
    .to_string()
    .into_bytes();
    let config_digest = digest(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len()
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len()
        }]
    })
    .to_string()
    .into_bytes();
    let manifest_digest = digest(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {
                "io.containerd.image.name": TEST_IMAGE,
                "org.opencontainers.image.ref.name": "1"
            }
        }]
    })
    .to_string()
    .into_bytes();
    let mut archive = tar::Builder::new(Vec::new());
    tar_file(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
    )?;
    tar_file(&mut archive, "index.json", &index, 0o644)?;
    for (digest, blob) in [
        (&layer_digest, &layer),
        (&config_digest, &config),
        (&manifest_digest, &manifest),
    ] {
        let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        tar_file(&mut archive, &path, blob, 0o644)?;
    }
    archive
        .into_inner()
        .map_err(|e| format!("cannot build the test image: {e}"))
}
