//! The CLI at its edges (issue 9 review): a closed standard error, read-only emulator
//! commands, messages naming the user's paths, and what read-only commands leave behind.
#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Env, bin, oci_config, p};

/// An OCI bundle `config.json` whose annotation disables gMSA, with the example spec.
fn disabled_bundle(env: &Env) -> PathBuf {
    env.file("config.json", oci_config(Some("true"), false).as_bytes())
}

/// Runs with standard error a pipe whose reader is closed before the process starts
/// (standard output captured): exit code, stdout.
fn run_with_stderr_gone(env: &Env, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env
        .command(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs under `sh` with the given redirections after the command: exit code.
fn run_sh(env: &Env, redirect: &str, args: &[&str]) -> i32 {
    env.sh(&format!("exec \"$@\" {redirect}"), args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// Commands that write to standard error (errors, warnings, logs) and the code each ends
/// with.
fn stderr_cases(env: &Env) -> Vec<(Vec<String>, i32)> {
    let spec = env.spec();
    let bad = env.file("bad.json", br#"{"CmsPlugins": ["ActiveDirectory"]}"#);
    let disabled = disabled_bundle(env);
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    vec![
        (s(&["instances", "show", "nope"]), 4),
        (s(&["instances", "remove", "nope"]), 0),
        (
            s(&[
                "instances",
                "add",
                "--id",
                "bad\u{1b}id",
                "--credspec",
                p(&spec),
            ]),
            2,
        ),
        (s(&["credspec", "validate", "/nonexistent/spec.json"]), 2),
        (s(&["credspec", "validate", p(&bad)]), 1),
        (s(&["--output", "json", "credspec", "validate", p(&bad)]), 1),
        (s(&["credspec", "validate", p(&disabled)]), 0),
        (s(&["credspec", "show", p(&disabled)]), 0),
        (s(&["--log-level", "trace", "instances", "list"]), 0),
        (
            s(&[
                "--log-level",
                "trace",
                "--log-format",
                "json",
                "instances",
                "list",
            ]),
            0,
        ),
        (s(&["--log-level", "nonsense[", "instances", "list"]), 2),
        (
            s(&[
                "credspec",
                "new",
                "--domain",
                "contoso.com",
                "--account",
                "webapp01",
                "--sid",
                "S-1-5-21-1-2-3",
                "--guid",
                "00000000-0000-0000-0000-000000000001",
                "--netbios",
                "CONTOSO",
            ]),
            -2,
        ),
        (s(&["probe", "--credspec", p(&disabled)]), 6),
        (s(&["emulator", "inject", "bogus"]), 2),
    ]
}

#[test]
fn a_closed_stderr_never_panics_or_changes_the_exit_status() {
    let env = Env::new();
    for (args, want) in stderr_cases(&env) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // What the command ends with when standard error is fine.
        let (normal, _, err) = env.run(&args);
        if want >= 0 {
            assert_eq!(normal, want, "{args:?}: {err}");
        }
        let (code, _) = run_with_stderr_gone(&env, &args);
        assert_eq!(code, normal, "{args:?} with standard error a closed pipe");
        assert_eq!(run_sh(&env, "2>&-", &args), normal, "{args:?} 2>&-");
        assert_eq!(run_sh(&env, ">&- 2>&-", &args), normal, "{args:?} >&- 2>&-");
    }
}

// ---- names in messages: the --save directory ----

const NEW: &[&str] = &[
    "credspec",
    "new",
    "--domain",
    "contoso.com",
    "--account",
    "webapp01",
    "--sid",
    "S-1-5-21-1-2-3",
    "--guid",
    "00000000-0000-0000-0000-000000000001",
    "--netbios",
    "CONTOSO",
    "--save",
];

/// No raw ESC or bidirectional control, nothing near the length of a 30,000-character name.
fn assert_shown(what: &str, text: &str) {
    assert!(!text.contains('\u{1b}'), "{what}: raw ESC in {text:?}");
    assert!(!text.contains('\u{202e}'), "{what}: raw U+202E in {text:?}");
    assert!(text.len() < 3_000, "{what}: {} bytes", text.len());
}

#[test]
fn credspec_new_save_shows_the_directory_escaped_and_short() {
    let env = Env::new();
    let hostile = format!("a\u{1b}[31mb\u{202e}c{}", "x".repeat(200));
    let run = |dir: &Path, extra: &[&str]| {
        let mut args = NEW.to_vec();
        args.extend_from_slice(&["--credspec-dir", p(dir)]);
        args.extend_from_slice(extra);
        env.run(&args)
    };
    // Cannot write: the parent is a file (GenerateError::Write).
    let file = env.file(&hostile, b"");
    let (code, out, err) = run(&file.join("sub"), &[]);
    assert_eq!(code, 7, "{out}{err}");
    assert_shown("write error", &err);
    assert!(
        err.contains("\\u{1b}") || err.contains("\\x1b") || err.contains("\\e"),
        "{err}"
    );
    // A 30,000-character directory name.
    let long = env
        .dir
        .path()
        .join(format!("{hostile}{}", "y".repeat(30_000)));
    let (code, out, err) = run(&long, &[]);
    assert_eq!(code, 7, "{out}{err}");
    assert_shown("long name", &err);
    // Written, then refused as existing (GenerateError::Exists), in text and JSON.
    let dir = env.dir.path().join(format!("d{hostile}"));
    let (code, out, err) = run(&dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_shown("wrote", &out);
    let (code, out, err) = run(&dir, &[]);
    assert_eq!(code, 5, "{out}{err}");
    assert_shown("exists", &err);
}

#[test]
fn state_dir_and_alive_file_paths_are_shown_escaped_and_short() {
    let env = Env::new();
    let hostile = env
        .dir
        .path()
        .join(format!("h\u{1b}[31m\u{202e}{}", "x".repeat(200)));
    let state = |dir: &Path, args: &[&str]| {
        let mut all = vec!["--state-dir", p(dir)];
        all.extend_from_slice(args);
        env.run(&all)
    };
    // Writable by others: refused, naming the directory.
    fs::create_dir(&hostile).unwrap();
    fs::set_permissions(&hostile, fs::Permissions::from_mode(0o777)).unwrap();
    for args in [
        &["instances", "list"][..],
        &["emulator", "log"],
        &["reconcile"],
    ] {
        let (code, _, err) = state(&hostile, args);
        assert_eq!(code, 7, "{args:?}: {err}");
        assert_shown("state dir writable by others", &err);
    }
    // Not a directory.
    let file = hostile.join("file");
    fs::write(&file, "").unwrap();
    let (code, _, err) = state(&file, &["instances", "list"]);
    assert_eq!(code, 7, "{err}");
    assert_shown("state dir a file", &err);
    // A name too long to exist.
    let long = env.dir.path().join(format!("\u{1b}{}", "x".repeat(30_000)));
    let (code, _, err) = state(&long, &["reconcile"]);
    assert_eq!(code, 7, "{err}");
    assert_shown("state dir too long", &err);
    // A corrupt emulator state file under a private directory with a hostile name.
    fs::set_permissions(&hostile, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir(hostile.join("emulator")).unwrap();
    fs::set_permissions(hostile.join("emulator"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(hostile.join("emulator/state.json"), "{\"format\":").unwrap();
    let (code, _, err) = state(&hostile, &["instances", "list"]);
    assert_eq!(code, 7, "{err}");
    assert_shown("corrupt emulator state", &err);
    fs::write(hostile.join("emulator/state.json"), "{}").unwrap();
    let (code, _, err) = state(&hostile, &["emulator", "log"]);
    assert_eq!(code, 7, "{err}");
    assert_shown("foreign emulator state", &err);
    // A missing alive file.
    let (code, _, err) = env.run(&["reconcile", "--alive-file", p(&hostile.join("alive"))]);
    assert_eq!(code, 2, "{err}");
    assert_shown("alive file", &err);
}

#[test]
fn utility_vm_names_are_shown_escaped_and_short() {
    let env = Env::new();
    let long = "L".repeat(30_000);
    for id in ["a\u{1b}[2Jb", "a\u{202e}b", "a\u{200b}b", long.as_str()] {
        for (cmd, want) in [("show", 4), ("remove", 2), ("stop", 2), ("create", 2)] {
            let (code, out, err) = env.run(&["emulator", "uvm", cmd, id]);
            assert_eq!(code, want, "uvm {cmd}: {out}{err}");
            assert_shown(&format!("uvm {cmd}"), &err);
        }
    }
}

// ---- files named on the command line besides credential specs ----

#[test]
fn alive_and_plugin_input_files_never_hang_or_read_without_end() {
    let env = Env::new();
    let fifo = env.dir.path().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let mut new = NEW[..NEW.len() - 1].to_vec();
    new.extend_from_slice(&["--plugin-guid", "859e1386-bdb4-49e8-85c7-3070b13920e1"]);
    for file in [p(&fifo), "/dev/zero"] {
        for args in [
            vec!["reconcile", "--dry-run", "--alive-file", file],
            vec!["instances", "list", "--orphans", "--alive-file", file],
        ] {
            let (code, _, err) = env.run_bounded(&args);
            assert_eq!(code, 2, "{args:?}: {err}");
        }
        let mut args = new.clone();
        args.extend_from_slice(&["--plugin-input-file", file]);
        let (code, _, err) = env.run_bounded(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // Process substitution (a pipe with a writer) still works.
    let out = Command::new("bash")
        .arg("-c")
        .arg("\"$@\" --alive-file <(echo a)")
        .arg("bash")
        .arg(bin())
        .args(["reconcile", "--dry-run"])
        .env("CREDGUARD_STATE_DIR", env.state())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn option_values_repeated_in_errors_are_escaped_and_short() {
    let env = Env::new();
    let long = format!("h\u{1b}[31m\u{202e}{}", "x".repeat(30_000));
    for value in ["h\u{1b}[31m\u{202e}xx", long.as_str()] {
        let cases: Vec<Vec<&str>> = vec![
            vec!["--log-level", value, "instances", "list"],
            vec![
                "emulator",
                "inject",
                "--api",
                value,
                "--hresult",
                "0x80004005",
            ],
            vec![
                "emulator",
                "inject",
                "--api",
                "HcsModifyServiceSettings",
                "--operation",
                value,
                "--hresult",
                "0x80004005",
            ],
            vec![
                "emulator",
                "inject",
                "--api",
                "HcsModifyServiceSettings",
                "--hresult",
                value,
            ],
            // Values clap itself refuses, and an unknown argument.
            vec![
                "instances",
                "add",
                "--id",
                "a",
                "--credspec",
                "x",
                "--isolation",
                value,
            ],
            vec!["--output", value, "instances", "list"],
            vec!["instances", "list", value],
            vec![value],
        ];
        for args in cases {
            let (code, _, err) = env.run(&args);
            assert_eq!(code, 2, "{args:?}: {err}");
            assert_shown("option value", &err);
        }
        let out = env
            .cmd()
            .args(["instances", "list"])
            .env("CREDGUARD_LOG", value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_shown("CREDGUARD_LOG", &String::from_utf8_lossy(&out.stderr));
    }
}

// ---- values HCS lists, shown as text ----

#[test]
fn listed_values_are_shown_escaped_and_short_in_text() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "a", "--credspec", p(&spec)])
        .assert()
        .code(0);
    // Instances another creator made, with ids and fields credguard would never send.
    let state_file = env.state().join("emulator/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&state_file).unwrap()).unwrap();
    let template = state["instances"][0].clone();
    let long = "L".repeat(30_000);
    for id in ["e\u{1b}[31mvil", "r\u{202e}ev", long.as_str()] {
        let mut inst = template.clone();
        inst["Id"] = id.into();
        inst["ContainerCredentialGuard"]["RpcEndpoint"] = format!("x\u{1b}]0;{long}").into();
        state["instances"].as_array_mut().unwrap().push(inst);
    }
    fs::write(&state_file, state.to_string()).unwrap();
    for args in [
        &["instances", "list"][..],
        &[
            "reconcile",
            "--dry-run",
            "--include-foreign",
            "--alive",
            "a",
        ],
        &[
            "reconcile",
            "--dry-run",
            "--include-foreign",
            "--alive-none",
        ],
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_shown(&format!("{args:?}"), &out);
        assert_shown(&format!("{args:?}"), &err);
    }
    // The JSON listing keeps the values as they are (JSON escapes the controls).
    let (code, out, _) = env.run(&["--output", "json", "instances", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("\\u001b[31mvil"), "{out}");
    // Removing the foreign instances prints their ids shown too.
    let (code, out, err) = env.run(&["reconcile", "--include-foreign", "--alive", "a"]);
    assert_eq!(code, 0, "{err}");
    assert_shown("reconcile", &out);
}

#[test]
fn listed_utility_vm_ids_are_shown_escaped_in_text() {
    let env = Env::new();
    env.cmd()
        .args(["emulator", "uvm", "create", "u1"])
        .assert()
        .code(0);
    let state_file = env.state().join("emulator/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&state_file).unwrap()).unwrap();
    let vm = state["uvms"]["u1"].clone();
    let hostile = "v\u{1b}[31m\u{202e}";
    state["uvms"][hostile] = vm;
    fs::write(&state_file, state.to_string()).unwrap();
    for args in [
        &["emulator", "uvm", "list"][..],
        &["emulator", "uvm", "show", hostile],
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_shown("uvm", &out);
    }
}

// ---- credspec new --save: where the secret goes ----

#[test]
fn credspec_new_save_never_writes_the_secret_where_others_can_swap_it() {
    let env = Env::new();
    let mut save = NEW.to_vec();
    save.extend_from_slice(&[
        "--plugin-guid",
        "859e1386-bdb4-49e8-85c7-3070b13920e1",
        "--plugin-input",
        // What the AWS plug-in reads (the linter checks its shape), with the secret in it.
        r#"{"credentialArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:SECRET-INPUT"}"#,
    ]);
    // The default directory is under the state directory: a state directory others can
    // write in (who planted `CredentialSpecs` as a link to their own directory) is refused,
    // as every command refuses it.
    let attacker = env.dir.path().join("attacker");
    fs::create_dir(&attacker).unwrap();
    fs::set_permissions(&attacker, fs::Permissions::from_mode(0o777)).unwrap();
    fs::create_dir(env.state()).unwrap();
    fs::set_permissions(env.state(), fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&attacker, env.state().join("CredentialSpecs")).unwrap();
    for extra in [&[][..], &["--force"]] {
        let mut args = save.clone();
        args.extend_from_slice(extra);
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 7, "{extra:?}: {out}{err}");
        assert!(err.contains("chmod 700"), "{err}");
        assert_eq!(fs::read_dir(&attacker).unwrap().count(), 0, "{extra:?}");
    }
    // An explicit directory group or others may write in (without the sticky bit) is
    // refused too: they could replace the spec, or read the next one written there.
    let shared = env.dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    for mode in [0o777, 0o775, 0o770] {
        fs::set_permissions(&shared, fs::Permissions::from_mode(mode)).unwrap();
        let mut args = save.clone();
        args.extend_from_slice(&["--credspec-dir", p(&shared)]);
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 7, "{mode:o}: {out}{err}");
        assert!(err.contains("writable by group or others"), "{err}");
        assert_eq!(fs::read_dir(&shared).unwrap().count(), 0, "{mode:o}");
    }
    // A private one, or a sticky one like /tmp, is fine.
    for mode in [0o700, 0o755, 0o1777] {
        fs::set_permissions(&shared, fs::Permissions::from_mode(mode)).unwrap();
        let mut args = save.clone();
        args.extend_from_slice(&["--credspec-dir", p(&shared), "--force"]);
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 0, "{mode:o}: {out}{err}");
    }
}
