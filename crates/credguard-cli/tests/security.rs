//! Security checks, run the way an operator runs the tool:
//! - a recognisable `PluginInput` secret never appears in any output (results, logs at
//!   trace level in text and JSON, errors, listings, the emulator log, reconcile plans)
//!   unless `--show-secrets` is given;
//! - journal and emulator state files are owner-only;
//! - hostile container ids and oversized inputs are refused cleanly, with nothing written,
//!   and ids that look like paths stay inside the journal.

mod common;

use std::path::Path;

use common::{Env, p, secret_spec_with};
use serde_json::{Value, json};

const SECRET: &str = "Pl4inTextS3cretPassw0rd-7f3a";

/// Runs a command and returns its exit code and a transcript (command line, stdout, stderr).
fn transcript(env: &Env, args: &[&str]) -> (i32, String) {
    let (code, out, err) = env.run(args);
    // The command line itself holds raw:// secrets; it is not output.
    let shown: Vec<&str> = args
        .iter()
        .map(|a| {
            if a.starts_with("raw://") {
                "raw://..."
            } else {
                a
            }
        })
        .collect();
    (code, format!("$ credguard {}\n{out}{err}", shown.join(" ")))
}

/// A spec whose plug-in input is `plugin_input`, for the ccgplugins.h sample plug-in, whose
/// input the linter does not check: each form is used as it is (the plug-in checks of the
/// linter have their own no-leak test in credspec.rs).
fn spec(plugin_input: Value) -> Value {
    secret_spec_with("{CFCA0441-511D-4B2A-862E-20348A78760B}", plugin_input)
}

#[test]
fn the_secret_never_appears_without_show_secrets() {
    let env = Env::new();
    let string_form = env.file(
        "a.json",
        spec(json!(format!("contoso.com:gmsaccg:{SECRET}")))
            .to_string()
            .as_bytes(),
    );
    let json_string_form = env.file(
        "b.json",
        spec(json!(
            json!({"credentialArn": format!("arn:aws:secretsmanager:{SECRET}")}).to_string()
        ))
        .to_string()
        .as_bytes(),
    );
    let object_form = env.file(
        "c.json",
        spec(json!({"password": SECRET})).to_string().as_bytes(),
    );
    // Broken specs that still carry the secret: errors must not quote them.
    let mut bad = spec(json!(SECRET));
    bad["DomainJoinConfig"]["Sid"] = json!("S-1-5-21-1");
    let lint_errors = env.file("d.json", bad.to_string().as_bytes());
    let truncated = env.file("e.json", &spec(json!(SECRET)).to_string().as_bytes()[..300]);
    let huge = env.file(
        "f.json",
        spec(json!(format!("{SECRET}{}", "x".repeat(70 * 1024))))
            .to_string()
            .as_bytes(),
    );
    let raw = format!("raw://{}", spec(json!(SECRET)));
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm"])
        .assert()
        .code(0);

    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        for log in [
            &["--log-level", "trace"][..],
            &["--log-level", "trace", "--log-format", "json"][..],
        ] {
            let mut full = log.to_vec();
            full.extend_from_slice(args);
            outputs.push(transcript(&env, &full).1);
        }
    };
    for (i, src) in [
        p(&string_form),
        p(&json_string_form),
        p(&object_form),
        raw.as_str(),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("s{i}");
        run(&[
            "instances",
            "add",
            "--id",
            &id,
            "--credspec",
            src,
            "--isolation",
            "hyperv",
            "--uvm",
            "uvm",
        ]);
        run(&[
            "--output",
            "json",
            "instances",
            "add",
            "--id",
            &format!("{id}-dry"),
            "--credspec",
            src,
            "--dry-run",
        ]);
        run(&[
            "instances",
            "add",
            "--id",
            &format!("{id}-dry"),
            "--credspec",
            src,
            "--dry-run",
        ]);
        run(&["probe", "--credspec", src]);
        run(&[
            "--output",
            "json",
            "probe",
            "--credspec",
            src,
            "--isolation",
            "hyperv",
        ]);
        run(&["credspec", "validate", src]);
        run(&["--output", "json", "credspec", "validate", src]);
        run(&["credspec", "show", src]);
        run(&["--output", "json", "credspec", "show", src]);
        run(&["instances", "add", "--id", &id, "--credspec", src]); // already exists
    }
    for bad in [&lint_errors, &truncated, &huge] {
        run(&["instances", "add", "--id", "bad", "--credspec", p(bad)]);
        run(&["credspec", "validate", p(bad)]);
        run(&["probe", "--credspec", p(bad)]);
    }
    run(&[
        "instances",
        "add",
        "--id",
        "nolint",
        "--credspec",
        p(&lint_errors),
        "--no-lint",
    ]);
    // Failure paths: rollback and failed removal.
    run(&[
        "emulator",
        "inject",
        "--api",
        "HcsGetServiceProperties",
        "--skip",
        "1",
        "--response",
        "{}",
    ]);
    run(&[
        "instances",
        "add",
        "--id",
        "rolled",
        "--credspec",
        p(&string_form),
    ]);
    run(&[
        "emulator",
        "inject",
        "--api",
        "HcsModifyServiceSettings",
        "--operation",
        "RemoveInstance",
        "--hresult",
        "E_FAIL",
    ]);
    run(&["instances", "remove", "s0"]);
    run(&["instances", "list"]);
    run(&["--output", "json", "instances", "list"]);
    run(&[
        "--output",
        "json",
        "instances",
        "list",
        "--orphans",
        "--alive",
        "nobody",
    ]);
    run(&["instances", "show", "s1"]);
    run(&["--output", "json", "instances", "show", "s2"]);
    run(&["reconcile", "--dry-run", "--alive", "s1"]);
    run(&["--output", "json", "reconcile", "--alive", "s1"]);
    run(&["emulator", "log"]);
    run(&["emulator", "inject", "--list"]);
    let all = outputs.join("\n");
    assert!(
        !all.contains(SECRET),
        "the secret leaked:\n{}",
        &all[all.find(SECRET).unwrap().saturating_sub(2000)..]
    );
    assert!(all.contains("<redacted>"));
    assert!(all.contains("s1"));

    // With --show-secrets it is shown where the user asked for it.
    let (_, out) = transcript(
        &env,
        &[
            "--show-secrets",
            "--output",
            "json",
            "instances",
            "show",
            "s1",
        ],
    );
    assert!(out.contains(SECRET));
    let (_, out) = transcript(&env, &["--show-secrets", "emulator", "log"]);
    assert!(out.contains(SECRET));
    // ... and never in logs.
    let (_, out) = transcript(
        &env,
        &[
            "--show-secrets",
            "--log-level",
            "trace",
            "instances",
            "add",
            "--id",
            "s9",
            "--credspec",
            p(&string_form),
            "--output",
            "json",
        ],
    );
    let logs: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.contains("TRACE") || l.contains("DEBUG") || l.contains("INFO") || l.contains("WARN")
        })
        .collect();
    assert!(logs.iter().all(|l| !l.contains(SECRET)), "{logs:?}");
}

fn assert_private(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{} is open to others ({mode:o})",
                path.display()
            );
            if path.is_dir() {
                assert_private(&path);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[test]
fn state_and_journal_files_are_owner_only() {
    let env = Env::new();
    let spec_file = env.file("s.json", spec(json!("x")).to_string().as_bytes());
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm"])
        .assert()
        .code(0);
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "perm",
            "--credspec",
            p(&spec_file),
            "--isolation",
            "hyperv",
            "--uvm",
            "uvm",
        ])
        .assert()
        .code(0);
    std::fs::write(env.state().join("journal/emulator/junk.json"), b"{").unwrap();
    env.cmd().args(["reconcile"]).assert().code(0);
    assert!(
        env.state().join("journal/emulator/corrupt").is_dir(),
        "the corrupt record was kept aside"
    );
    assert_private(&env.state());
}

#[test]
fn hostile_ids_and_oversized_inputs_are_refused_with_nothing_written() {
    let env = Env::new();
    let spec_file = env.file("s.json", spec(json!("x")).to_string().as_bytes());
    let long = "a".repeat(257);
    let hostile = [
        "",
        " ",
        long.as_str(),
        "nul\u{0}byte",
        "bell\u{7}",
        "esc\u{1b}[31mred",
        "line\nbreak",
        "tab\tid",
        "del\u{7f}",
        "c1\u{85}control",
    ];
    for id in hostile {
        let out = env
            .cmd()
            .args(["instances", "add", "--id", id, "--credspec", p(&spec_file)])
            .output();
        // A NUL cannot even be passed as an argument by the OS; that is a refusal too.
        if let Ok(out) = out {
            assert_eq!(out.status.code(), Some(2), "{id:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("invalid container id"), "{id:?}: {err}");
            assert!(
                !err.contains('\u{1b}'),
                "control characters are escaped in messages"
            );
        }
        let out = env.cmd().args(["instances", "remove", id]).output();
        if let Ok(out) = out {
            assert_eq!(out.status.code(), Some(2), "remove {id:?}");
        }
    }
    // Oversized: a spec over 64 KiB, a huge id, a huge alive file line.
    let big = env.file(
        "big.json",
        format!("{{\"a\":\"{}\"}}", "x".repeat(65 * 1024)).as_bytes(),
    );
    env.cmd()
        .args(["instances", "add", "--id", "ok", "--credspec", p(&big)])
        .assert()
        .code(2);
    let huge_id = "b".repeat(100_000);
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            &huge_id,
            "--credspec",
            p(&spec_file),
        ])
        .assert()
        .code(2);
    assert_eq!(env.call_count(), 0, "nothing reached the emulator");
    assert!(
        !env.state().join("journal").exists(),
        "no journal was written"
    );

    // Ids that look like paths are fine as ids and stay inside the journal directory.
    for id in [
        "../../escape",
        "..\\..\\escape",
        "/etc/passwd",
        "C:\\Windows\\x",
        "a/b/c",
    ] {
        env.cmd()
            .args(["instances", "add", "--id", id, "--credspec", p(&spec_file)])
            .assert()
            .code(0);
    }
    assert!(!env.dir.path().join("escape").exists());
    let jdir = env.journal();
    let records = std::fs::read_dir(&jdir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(records, 5);
    for id in [
        "../../escape",
        "..\\..\\escape",
        "/etc/passwd",
        "C:\\Windows\\x",
        "a/b/c",
    ] {
        env.cmd().args(["instances", "remove", id]).assert().code(0);
    }
}
