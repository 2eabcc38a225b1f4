//! The harness every CLI test binary shares: a temporary state directory and the
//! `credguard` binary run in it, against the emulator, as a user runs it.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
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

    /// `credguard` with the state directory set and the environment of the caller kept out,
    /// killed after [`DEADLINE`].
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("credguard").unwrap();
        for var in IGNORED_VARS {
            c.env_remove(var);
        }
        c.env("CREDGUARD_STATE_DIR", self.state())
            .env("NO_COLOR", "1")
            // A deadline against a hang (the command is killed and the test fails), never a
            // timing assertion.
            .timeout(DEADLINE);
        c
    }

    /// `program` (`credguard`, or a shell that runs it) with the environment of [`Env::cmd`],
    /// standard input empty.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        for var in IGNORED_VARS {
            c.env_remove(var);
        }
        c.env("CREDGUARD_STATE_DIR", self.state())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// `credguard ARGS` as a plain process (to spawn, wait for or kill), output discarded.
    pub fn process(&self, args: &[&str]) -> Command {
        let mut c = self.command(bin());
        c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    /// `sh -c SCRIPT` where `"$@"` in SCRIPT is `credguard ARGS` (for a umask or
    /// redirections only a shell makes).
    pub fn sh(&self, script: &str, args: &[&str]) -> Command {
        let mut c = self.command("sh");
        c.arg("-c").arg(script).arg("sh").arg(bin()).args(args);
        c
    }

    /// Starts a command in the background, its standard output and error kept (in files) for
    /// the test and for [`Running`]'s messages.
    pub fn spawn(&self, args: &[&str]) -> Running {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let stdout = self.dir.path().join(format!("stdout-{n}.txt"));
        let stderr = self.dir.path().join(format!("stderr-{n}.txt"));
        let child = self
            .process(args)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Running {
            child,
            what: format!("credguard {}", args.join(" ")),
            stdout,
            stderr,
        }
    }

    /// Runs a command that must end on its own within [`DEADLINE`] (a deadline, not a timing
    /// assertion: one that reads a FIFO or an endless device forever fails the test instead
    /// of hanging it): exit code, stdout, stderr.
    pub fn run_bounded(&self, args: &[&str]) -> (i32, String, String) {
        let mut child = self.spawn(args);
        let code = child.finish();
        (code, child.stdout(), child.stderr())
    }

    /// `instances add --id ID` of the example spec, with `extra` arguments; it must succeed.
    pub fn add(&self, id: &str, extra: &[&str]) {
        let spec = self.spec();
        let mut args = vec!["instances", "add", "--id", id, "--credspec", p(&spec)];
        args.extend(extra);
        let (code, _, err) = self.run(&args);
        assert_eq!(code, 0, "add {id}: {err}");
    }

    /// `emulator inject ARGS`; it must succeed.
    pub fn inject(&self, args: &[&str]) {
        let mut all = vec!["emulator", "inject"];
        all.extend(args);
        let (code, _, err) = self.run(&all);
        assert_eq!(code, 0, "inject {args:?}: {err}");
    }

    /// The journal directory of the emulator backend.
    pub fn journal(&self) -> PathBuf {
        self.state().join("journal/emulator")
    }

    /// The journal's files with extension `ext` (`json` records, `lock` files), sorted;
    /// none when the journal does not exist.
    pub fn journal_files(&self, ext: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(self.journal()) {
            Ok(entries) => entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    /// Runs a command: exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        outcome(&self.cmd().args(args).output().unwrap())
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
            .filter(|i| i["listed"] == true)
            .map(|i| i["container_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// How many calls the emulator has logged.
    pub fn call_count(&self) -> usize {
        let (_, out, _) = self.run(&["emulator", "log"]);
        out.lines().count()
    }
}

/// Variables of the caller's environment that would change what a command does.
const IGNORED_VARS: [&str; 3] = [
    "CREDGUARD_BACKEND",
    "CREDGUARD_LOG",
    "CREDGUARD_CREDSPEC_DIR",
];

/// The `credguard` binary under test.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("credguard")
}

/// A finished process as exit code, stdout, stderr.
pub fn outcome(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An OCI bundle's `config.json` carrying the example spec (as a JSON string, as containerd
/// writes it, or as an object), with the gMSA-disable annotation set to `disable` if given.
pub fn oci_config(disable: Option<&str>, spec_as_string: bool) -> String {
    let spec: Value = serde_json::from_str(EXAMPLE_SPEC).unwrap();
    let mut config = serde_json::json!({
        "ociVersion": "1.1.0",
        "windows": {"credentialSpec": if spec_as_string { Value::String(spec.to_string()) } else { spec }},
    });
    if let Some(v) = disable {
        config["annotations"] = serde_json::json!({"io.microsoft.container.wcow.gmsa.disable": v});
    }
    config.to_string()
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A credential spec whose `HostAccountConfig.PluginInput` holds [`SECRET`]: the library's
/// fixture, shared with its tests.
pub const SECRET_SPEC: &str = include_str!("../../../credguard/tests/fixtures/secret_spec.json");

/// The password in [`SECRET_SPEC`]'s plug-in input: no output may show it unless asked.
pub const SECRET: &str = "Sup3rS3cretPassw0rd";

/// [`SECRET_SPEC`] as a file.
pub fn secret_spec(env: &Env) -> PathBuf {
    env.file("secret.json", SECRET_SPEC.as_bytes())
}

/// [`SECRET_SPEC`] with its `HostAccountConfig`'s `PluginGUID` and `PluginInput` replaced,
/// as a JSON value.
pub fn secret_spec_with(plugin_guid: &str, plugin_input: Value) -> Value {
    let mut v: Value = serde_json::from_str(SECRET_SPEC).unwrap();
    let host = &mut v["ActiveDirectoryConfig"]["HostAccountConfig"];
    host["PluginGUID"] = Value::String(plugin_guid.to_owned());
    host["PluginInput"] = plugin_input;
    v
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
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    /// What the process wrote to standard output so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

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

    /// Waits until its standard error contains `text`; fails at once, with its standard
    /// error, if the process ends first.
    pub fn wait_for_stderr(&mut self, text: &str) {
        let path = self.stderr.clone();
        self.wait_until(&format!("`{text}` on its stderr"), || {
            std::fs::read_to_string(&path).is_ok_and(|s| s.contains(text))
        });
    }

    /// Waits for the process to end by itself, up to [`DEADLINE`]: its exit code.
    pub fn finish(&mut self) -> i32 {
        match self.until("end", || false) {
            Err(status) => status.code().unwrap_or(-1),
            Ok(()) => unreachable!("never ready"),
        }
    }

    /// The process id (to send it a signal).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM (what a service manager's stop sends), through `kill(1)`.
    #[cfg(unix)]
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Sends SIGINT (what Ctrl-C sends).
    #[cfg(unix)]
    pub fn interrupt(&mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT failed: {status}");
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
