//! The harness every CLI test binary shares: a temporary state directory and the
//! `credguard` binary run in it, against the emulator, as a user runs it.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use credguard_emulator::Emulator;
use serde_json::Value;

/// The bundled example credential spec.
pub const EXAMPLE_SPEC: &str = include_str!("../../../../examples/credspecs/contoso_webapp01.json");

/// A temporary directory with a state directory in it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `--state-dir` of every command run here.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `credguard` with the state directory set and the environment of the caller kept out.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("credguard").unwrap();
        c.env_remove("CREDGUARD_BACKEND")
            .env_remove("CREDGUARD_LOG")
            .env_remove("CREDGUARD_CREDSPEC_DIR")
            .env("CREDGUARD_STATE_DIR", self.state())
            .env("NO_COLOR", "1");
        c
    }

    /// The same as a plain process (to spawn, wait for or kill), output discarded.
    pub fn process(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("credguard"));
        c.args(args)
            .env_remove("CREDGUARD_BACKEND")
            .env_remove("CREDGUARD_LOG")
            .env("CREDGUARD_STATE_DIR", self.state())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Starts a command in the background, its standard error kept for [`Running`]'s messages.
    pub fn spawn(&self, args: &[&str]) -> Running {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let stderr = self.dir.path().join(format!("stderr-{n}.txt"));
        let child = self
            .process(args)
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Running {
            child,
            what: format!("credguard {}", args.join(" ")),
            stderr,
        }
    }

    /// Runs a command: exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Writes a file in the temporary directory.
    pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// The example credential spec, as a file.
    pub fn spec(&self) -> PathBuf {
        self.file("spec.json", EXAMPLE_SPEC.as_bytes())
    }

    /// The emulator's persistent state, opened directly.
    pub fn emulator(&self) -> Emulator {
        Emulator::persistent(&self.state().join("emulator")).unwrap()
    }

    /// The ids HCS lists (`instances list`, without stale journal rows).
    pub fn ids(&self) -> Vec<String> {
        let (code, out, err) = self.run(&["--output", "json", "instances", "list"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["credguard"]["listed"] == true)
            .map(|i| i["Id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// How many calls the emulator has logged.
    pub fn call_count(&self) -> usize {
        let (_, out, _) = self.run(&["emulator", "log"]);
        out.lines().count()
    }
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The plug-in input's secret in [`secret_spec`]: no output may show it unless asked.
pub const SECRET: &str = "Sup3rS3cretPassw0rd";

/// A credential spec whose `PluginInput` holds [`SECRET`], as a file.
pub fn secret_spec(env: &Env) -> PathBuf {
    let spec = serde_json::json!({
        "CmsPlugins": ["ActiveDirectory"],
        "DomainJoinConfig": {
            "Sid": "S-1-5-21-702590844-1001920913-2680819671",
            "MachineAccountName": "webapp01",
            "Guid": "56d9b66c-d746-4f87-bd26-26760cfdca2e",
            "DnsTreeName": "contoso.com",
            "DnsName": "contoso.com",
            "NetBiosName": "CONTOSO"
        },
        "ActiveDirectoryConfig": {
            "GroupManagedServiceAccounts": [
                {"Name": "webapp01", "Scope": "contoso.com"},
                {"Name": "webapp01", "Scope": "CONTOSO"}
            ],
            "HostAccountConfig": {
                "PortableCcgVersion": "1",
                "PluginGUID": "{CFCA0441-511D-4B2A-862E-20348A78760B}",
                "PluginInput": format!("contoso.com:gmsaccg:{SECRET}")
            }
        }
    });
    env.file("secret.json", spec.to_string().as_bytes())
}

/// How long a test waits for a process or a condition before it fails: a deadline against
/// hangs, never a timing assertion.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A `credguard` process running in the background ([`Env::spawn`]). Every wait on it has
/// [`DEADLINE`] and watches the process: when it ends (or hangs) where the test did not
/// expect it, the test fails at once with its standard error. Dropped, it is killed.
pub struct Running {
    child: Child,
    what: String,
    stderr: PathBuf,
}

impl Running {
    /// What the process wrote to standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls `ready` until it holds (`Ok`) or the process ends (`Err` with its status); kills
    /// the process and fails after [`DEADLINE`].
    pub fn until(&mut self, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), ExitStatus> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}`: no {what} within {DEADLINE:?}; its stderr:\n{}",
                    self.what,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until `ready` holds; fails at once, with the process's standard error, if the
    /// process ends first.
    pub fn wait_until(&mut self, what: &str, ready: impl FnMut() -> bool) {
        if let Err(status) = self.until(what, ready) {
            panic!(
                "`{}` ended ({status}) before {what}; its stderr:\n{}",
                self.what,
                self.stderr()
            );
        }
    }

    /// Waits for the process to end by itself, up to [`DEADLINE`]: its exit code.
    pub fn finish(&mut self) -> i32 {
        match self.until("end", || false) {
            Err(status) => status.code().unwrap_or(-1),
            Ok(()) => unreachable!("never ready"),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Kills the process (SIGKILL on Unix) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test leaves no process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
