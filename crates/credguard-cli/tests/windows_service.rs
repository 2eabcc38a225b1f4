//! `credguard agent service install|uninstall` against a real Windows service control
//! manager: `#[ignore]`d (it needs a Windows host and an administrator; Wine's SCM is checked
//! by scripts/windows-tests.sh). On such a host (docs/WINDOWS.md, "The agent as a Windows
//! service"):
//!
//! ```powershell
//! cargo test -p credguard-cli --test windows_service -- --ignored --test-threads=1
//! ```
#![cfg(windows)]

use std::process::Command;
use std::time::{Duration, Instant};

fn credguard(state: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_credguard"))
        .arg("--backend")
        .arg("emulator")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sc.exe query credguard-agent`'s STATE line, or `None` when the service does not exist.
fn state() -> Option<String> {
    let out = Command::new("sc.exe")
        .args(["query", "credguard-agent"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.trim_start().starts_with("STATE"))
        .map(|l| l.trim().to_owned())
}

#[test]
#[ignore = "needs a Windows host and an administrator (it installs the service credguard-agent)"]
fn install_runs_the_agent_as_a_service_and_uninstall_stops_it_gracefully() {
    let dir = std::env::temp_dir().join(format!("credguard-svc-{}", std::process::id()));
    let (code, out, err) = credguard(
        &dir,
        &[
            "agent",
            "service",
            "install",
            "--alive-from",
            r"containerd:\\.\pipe\credguard-test-nobody",
            "--interval",
            "2s",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("installed and started"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !state().is_some_and(|s| s.contains("RUNNING")) {
        assert!(Instant::now() < deadline, "never running: {:?}", state());
        std::thread::sleep(Duration::from_millis(200));
    }
    // A second install is refused: it exists (exit 5).
    let (code, _, err) = credguard(
        &dir,
        &["agent", "service", "install", "--alive-from", "containerd"],
    );
    assert_eq!(code, 5, "{err}");
    let (code, out, err) = credguard(&dir, &["agent", "service", "uninstall"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(state().is_none(), "still there: {:?}", state());
    let (code, _, err) = credguard(&dir, &["agent", "service", "uninstall"]);
    assert_eq!(code, 4, "{err}");
}
