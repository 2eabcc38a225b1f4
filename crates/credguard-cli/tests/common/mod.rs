//! The harness every CLI test binary shares: a temporary state directory and the
//! `credguard` binary run in it, against the emulator, as a user runs it.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

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

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
