//! Files, state and output at the edges (issue 9): what credguard writes is owner-only
//! whatever the umask, its state directory must be private and is never read or written
//! through a planted symlink, a closed standard output never changes the exit status, ids
//! with invisible format characters are refused, and read-only commands change nothing.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{EXAMPLE_SPEC, Env, bin, outcome, p};

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) == 0
}

/// Runs `credguard` under `umask 000`: exit code, stdout, stderr.
fn run_umask0(env: &Env, args: &[&str]) -> (i32, String, String) {
    outcome(&env.sh("umask 000; exec \"$@\"", args).output().unwrap())
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every directory (0700) and file (0600) under `root`, `root` included.
fn assert_private_tree(root: &Path, after: &str) {
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{} after {after}", dir.display());
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                assert!(meta.is_file(), "{} after {after}", path.display());
                assert_eq!(mode(&path), 0o600, "{} after {after}", path.display());
                assert!(
                    !path
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(".tmp"),
                    "a temporary file stayed behind: {}",
                    path.display()
                );
            }
        }
    }
}

const NEW_ARGS: &[&str] = &[
    "credspec",
    "new",
    "--account",
    "WebApp01",
    "--domain",
    "contoso.com",
    "--netbios",
    "CONTOSO",
    "--sid",
    "S-1-5-21-702590844-1001920913-2680819671",
    "--guid",
    "244818ae-87ca-4fcd-92ec-e79e5252348a",
    "--plugin-guid",
    "{859E1386-BDB4-49E8-85C7-3070B13920E1}",
];

const PLUGIN_SECRET: &str = "portable-ccg-secret-9c1e";

// ---- point 8: owner-only, atomic writes whatever the umask ----

#[test]
fn saved_credspec_and_the_dirs_created_for_it_are_owner_only_under_umask_000() {
    let env = Env::new();
    // What the AWS plug-in reads (the linter checks its shape), with the secret in it.
    let input = env.file(
        "plugin-input.txt",
        format!(
            r#"{{"credentialArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:{PLUGIN_SECRET}"}}"#
        )
        .as_bytes(),
    );
    let dir = env.dir.path().join("specs/nested/CredentialSpecs");
    let mut args = NEW_ARGS.to_vec();
    args.extend([
        "--plugin-input-file",
        p(&input),
        "--save",
        "--credspec-dir",
        p(&dir),
    ]);
    let (code, _, err) = run_umask0(&env, &args);
    assert_eq!(code, 0, "{err}");
    let file = dir.join("contoso_webapp01.json");
    assert!(fs::read_to_string(&file).unwrap().contains(PLUGIN_SECRET));
    assert_eq!(mode(&file), 0o600, "the spec holds the plug-in secret");
    for d in [
        env.dir.path().join("specs"),
        env.dir.path().join("specs/nested"),
        dir.clone(),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }

    // --force over a file someone made readable: replaced atomically, owner-only again.
    fs::write(&file, "old").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::metadata(&file).unwrap().ino();
    args.push("--force");
    let (code, _, err) = run_umask0(&env, &args);
    assert_eq!(code, 0, "{err}");
    assert!(fs::read_to_string(&file).unwrap().contains(PLUGIN_SECRET));
    assert_eq!(mode(&file), 0o600);
    assert_ne!(
        fs::metadata(&file).unwrap().ino(),
        before,
        "replaced by a rename, not rewritten in place"
    );
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file stays behind: {names:?}");

    // The default directory (under the state directory) is created owner-only too.
    let mut args = NEW_ARGS.to_vec();
    args.extend(["--plugin-input-file", p(&input), "--save"]);
    let (code, _, err) = run_umask0(&env, &args);
    assert_eq!(code, 0, "{err}");
    assert_private_tree(&env.state(), "credspec new --save");
}

#[test]
fn every_state_file_and_dir_is_owner_only_under_umask_000() {
    let env = Env::new();
    let spec = env.spec();
    let steps: &[&[&str]] = &[
        &["emulator", "uvm", "create", "uvm-1"],
        &["instances", "add", "--id", "a", "--credspec", p(&spec)],
        &[
            "instances",
            "add",
            "--id",
            "h",
            "--credspec",
            p(&spec),
            "--isolation",
            "hyperv",
            "--uvm",
            "uvm-1",
        ],
        &["instances", "list"],
        &["instances", "show", "a"],
        &[
            "emulator",
            "inject",
            "--api",
            "HcsGetServiceProperties",
            "--hresult",
            "E_FAIL",
        ],
        &["emulator", "log"],
        &["instances", "list"],
        &["instances", "remove", "a"],
        &["reconcile"],
        &["emulator", "log", "--clear"],
        &["reconcile", "--alive", "zzz"],
    ];
    for args in steps {
        let (code, out, err) = run_umask0(&env, args);
        // The injected fault fails the list after it; everything else succeeds.
        assert!(code == 0 || code == 3, "{args:?}: {code}\n{out}{err}");
        assert_private_tree(&env.state(), &args.join(" "));
    }
    // A call log an older version left readable is owner-only again after the next call.
    let log = env.state().join("emulator/calls.jsonl");
    fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run_umask0(
        &env,
        &["instances", "add", "--id", "c", "--credspec", p(&spec)],
    );
    assert_eq!(code, 0, "{err}");
    assert_private_tree(&env.state(), "a call logged into an open call log");
    // A corrupt record moved aside is owner-only too, in an owner-only directory.
    let journal = env.journal();
    fs::write(journal.join("bad.json"), "{").unwrap();
    fs::set_permissions(journal.join("bad.json"), fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run_umask0(&env, &["reconcile"]);
    assert_eq!(code, 0, "{err}");
    assert!(journal.join("corrupt").is_dir());
    assert_private_tree(&env.state(), "reconcile moving a corrupt record aside");
}

// ---- point 9: a private state directory, no symlink followed ----

/// An environment with one instance `a` added, and a file outside the state directory.
fn env_with_instance() -> (Env, PathBuf) {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "a", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    (env, outside)
}

#[test]
fn a_planted_call_log_symlink_is_never_written_through() {
    let (env, outside) = env_with_instance();
    let target = outside.join("stolen.jsonl");
    fs::write(&target, "").unwrap();
    let log = env.state().join("emulator/calls.jsonl");
    fs::remove_file(&log).unwrap();
    symlink(&target, &log).unwrap();
    let spec = env.spec();
    let (code, out, err) = env.run(&["instances", "add", "--id", "b", "--credspec", p(&spec)]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("symbolic link") && err.contains("calls.jsonl"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "",
        "nothing appended outside"
    );
    // Reading the log refuses the link too.
    let (code, _, err) = env.run(&["emulator", "log"]);
    assert_eq!(code, 7, "{err}");
}

#[test]
fn a_planted_emulator_state_symlink_is_refused() {
    let (env, outside) = env_with_instance();
    let state = env.state().join("emulator/state.json");
    let target = outside.join("state.json");
    fs::copy(&state, &target).unwrap();
    fs::remove_file(&state).unwrap();
    symlink(&target, &state).unwrap();
    let (code, _, err) = env.run(&["instances", "list"]);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("symbolic link") && err.contains("state.json"),
        "{err}"
    );
}

#[test]
fn a_planted_state_lock_symlink_creates_nothing_outside() {
    let (env, outside) = env_with_instance();
    let lock = env.state().join("emulator/state.lock");
    let target = outside.join("created-by-credguard");
    fs::remove_file(&lock).unwrap();
    symlink(&target, &lock).unwrap();
    let (code, _, err) = env.run(&["emulator", "reset"]);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("symbolic link") && err.contains("state.lock"),
        "{err}"
    );
    assert!(!target.exists(), "no file created through the link");
}

#[test]
fn a_planted_journal_record_symlink_is_not_followed_or_chmodded() {
    let (env, outside) = env_with_instance();
    let record = env.journal_files("json").pop().unwrap();
    let target = outside.join("precious.json");
    fs::write(&target, "not a record").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(&record).unwrap();
    symlink(&target, &record).unwrap();
    let (_, _, err) = env.run(&["reconcile"]);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "not a record");
    assert_eq!(mode(&target), 0o644, "the link's target was not touched");
    assert!(target.exists());
}

#[test]
fn a_planted_record_lock_symlink_creates_nothing_outside() {
    let (env, outside) = env_with_instance();
    let target = outside.join("lock-target");
    let spec = env.spec();
    // The lock file of `b`: the record's name with `.lock`, found by adding `b` once.
    env.cmd()
        .args(["instances", "add", "--id", "b", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let before: Vec<PathBuf> = env.journal_files("json");
    env.cmd()
        .args(["instances", "remove", "b"])
        .assert()
        .code(0);
    let after = env.journal_files("json");
    let gone: Vec<&PathBuf> = before.iter().filter(|p| !after.contains(p)).collect();
    let lock = gone[0].with_extension("lock");
    let _ = fs::remove_file(&lock);
    symlink(&target, &lock).unwrap();
    let (code, _, err) = env.run(&["instances", "add", "--id", "b", "--credspec", p(&spec)]);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!target.exists(), "no lock file created through the link");
}

#[test]
fn a_symlinked_journal_dir_is_refused() {
    let (env, outside) = env_with_instance();
    let journal = env.journal();
    fs::rename(&journal, outside.join("journal")).unwrap();
    symlink(outside.join("journal"), &journal).unwrap();
    let spec = env.spec();
    let (code, _, err) = env.run(&["instances", "add", "--id", "b", "--credspec", p(&spec)]);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("symbolic link") && err.contains("journal"),
        "{err}"
    );
    let (code, _, err) = env.run(&["instances", "list"]);
    assert_eq!(code, 7, "{err}");
}

#[test]
fn a_symlinked_corrupt_dir_receives_nothing() {
    let (env, outside) = env_with_instance();
    let journal = env.journal();
    symlink(&outside, journal.join("corrupt")).unwrap();
    fs::write(journal.join("bad.json"), "{").unwrap();
    let (_, _, err) = env.run(&["reconcile"]);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing moved outside"
    );
    assert!(journal.join("bad.json").exists(), "left where it was");
}

#[test]
fn a_state_dir_writable_by_others_is_refused_naming_owner_and_mode() {
    for sub in ["", "emulator", "journal", "journal/emulator"] {
        let (env, _) = env_with_instance();
        let dir = if sub.is_empty() {
            env.state()
        } else {
            env.state().join(sub)
        };
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        for args in [&["instances", "list"][..], &["instances", "remove", "a"]] {
            let (code, _, err) = env.run(args);
            assert_eq!(code, 7, "{sub}: {err}");
            assert!(
                err.contains(p(&dir)) && err.contains("0777") && err.contains("uid"),
                "{sub}: {err}"
            );
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o720)).unwrap();
        assert_eq!(env.run(&["instances", "list"]).0, 7, "group-writable {sub}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            env.run(&["instances", "list"]).0,
            0,
            "readable by others is fine"
        );
    }
}

#[test]
fn a_state_dir_owned_by_another_user_is_refused_even_for_root() {
    if !is_root() {
        eprintln!("skipped: chown to another uid needs root (CI runs as root)");
        return;
    }
    for sub in ["", "emulator", "journal/emulator"] {
        let (env, _) = env_with_instance();
        let dir = if sub.is_empty() {
            env.state()
        } else {
            env.state().join(sub)
        };
        let status = Command::new("chown")
            .arg("65534")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        let (code, _, err) = env.run(&["instances", "list"]);
        assert_eq!(code, 7, "{sub}: {err}");
        assert!(
            err.contains(p(&dir)) && err.contains("uid 65534") && err.contains("0700"),
            "{sub}: {err}"
        );
    }
}

// ---- point 11: a closed standard output keeps the exit status ----

/// Runs with standard output a pipe whose reader is closed before the process starts.
fn run_with_closed_pipe(env: &Env, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env
        .command(bin())
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_never_changes_the_exit_status() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "a", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let bad = env.file("bad.json", br#"{"CmsPlugins": ["ActiveDirectory"]}"#);
    let cases: &[(&[&str], i32)] = &[
        (&["credspec", "validate", p(&bad)], 1),
        (&["credspec", "validate", p(&spec)], 0),
        (&["instances", "show", "nope"], 4),
        (&["instances", "list"], 0),
        (&["instances", "show", "a"], 0),
        (&["emulator", "log"], 0),
        (&["reconcile", "--dry-run"], 0),
    ];
    for (args, want) in cases {
        for output in ["text", "json"] {
            let mut all = vec!["--output", output];
            all.extend_from_slice(args);
            let (code, err) = run_with_closed_pipe(&env, &all);
            assert_eq!(code, *want, "{all:?}: {err}");
            assert!(!err.contains("panicked"), "{all:?}: {err}");
        }
    }
    // Standard output closed entirely (`>&-`).
    for (args, want) in cases {
        let out = Command::new("sh")
            .arg("-c")
            .arg("exec \"$@\" >&-")
            .arg("sh")
            .arg(bin())
            .args(*args)
            .env_remove("CREDGUARD_BACKEND")
            .env("CREDGUARD_STATE_DIR", env.state())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(*want), "{args:?} >&-");
    }
    // Through a shell pipe into a reader that quits at once, as an operator would.
    let out = Command::new("bash")
        .arg("-c")
        .arg("set -o pipefail; \"$@\" | head -c0")
        .arg("bash")
        .arg(bin())
        .args(["credspec", "validate", p(&bad)])
        .env("CREDGUARD_STATE_DIR", env.state())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

// ---- point 13: invisible and bidirectional format characters in ids ----

#[test]
fn ids_with_format_characters_are_refused_everywhere() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm-1"])
        .assert()
        .code(0);
    for (id, shown, pos) in [
        ("ab\u{202E}cd", "U+202E", 3),
        ("ab\u{200B}", "U+200B", 3),
        ("\u{FEFF}ab", "U+FEFF", 1),
        ("a\u{2066}b", "U+2066", 2),
        ("a\u{00AD}b", "U+00AD", 2),
    ] {
        let checks: Vec<Vec<&str>> = vec![
            vec!["instances", "add", "--id", id, "--credspec", p(&spec)],
            vec![
                "instances",
                "add",
                "--id",
                "ok",
                "--credspec",
                p(&spec),
                "--isolation",
                "hyperv",
                "--uvm",
                id,
            ],
            vec!["instances", "show", id],
            vec!["instances", "remove", id],
            vec!["emulator", "uvm", "create", id],
            vec!["reconcile", "--dry-run", "--alive", id],
        ];
        for args in checks {
            let (code, out, err) = env.run(&args);
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            assert!(
                err.contains(shown) && err.contains(&format!("position {pos}")),
                "{args:?}: {err}"
            );
            assert!(!err.contains(id), "the raw character is not printed: {err}");
        }
        let alive = env.file("alive.txt", format!("good\n{id}\n").as_bytes());
        let (code, _, err) = env.run(&["reconcile", "--dry-run", "--alive-file", p(&alive)]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(shown), "{err}");
    }
    assert!(env.ids().is_empty(), "nothing was added");
}

#[test]
fn a_journal_record_naming_a_format_character_id_is_not_trusted() {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "a", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let record = env.journal_files("json").pop().unwrap();
    let text = fs::read_to_string(&record)
        .unwrap()
        .replace("\"container_id\": \"a\"", "\"container_id\": \"a\\u202e\"");
    let planted = record.with_file_name("planted.json");
    fs::write(&planted, text).unwrap();
    let (code, out, err) = env.run(&["--output", "json", "instances", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("\\u202e") && !out.contains('\u{202E}'),
        "{out}"
    );
    assert!(err.contains("U+202E"), "{err}");
}

// ---- point 15: read-only commands change nothing ----

type Snapshot = BTreeMap<PathBuf, (u32, u32, Vec<u8>, i64, i64)>;

/// Every path under `root` with its mode, owner, content (files) and mtime.
fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let content = if meta.is_file() {
            fs::read(&path).unwrap()
        } else {
            Vec::new()
        };
        if meta.is_dir() {
            for e in fs::read_dir(&path).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.insert(
            path,
            (
                meta.mode(),
                meta.uid(),
                content,
                meta.mtime(),
                meta.mtime_nsec(),
            ),
        );
    }
    out
}

/// A state directory with an instance, a call log, an injected fault, a corrupt journal
/// record and no lock file for the instance's record.
fn read_only_env() -> (Env, PathBuf) {
    let env = Env::new();
    let spec = env.spec();
    env.cmd()
        .args(["instances", "add", "--id", "a", "--credspec", p(&spec)])
        .assert()
        .code(0);
    let journal = env.journal();
    for lock in env.journal_files("lock") {
        fs::remove_file(lock).unwrap();
    }
    fs::write(journal.join("bad.json"), "{\"format\":").unwrap();
    // A utility VM and a queued fault for the emulator's read-only commands.
    env.cmd()
        .args(["emulator", "uvm", "create", "uvm-1"])
        .assert()
        .code(0);
    env.cmd()
        .args([
            "emulator",
            "inject",
            "--api",
            "HcsModifyComputeSystem",
            "--hresult",
            "0x80004005",
        ])
        .assert()
        .code(0);
    (env, spec)
}

fn read_only_commands(spec: &Path) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let dir = spec.parent().unwrap().to_str().unwrap().to_owned();
    vec![
        s(&["instances", "list"]),
        s(&["--output", "json", "instances", "list"]),
        s(&["instances", "list", "--orphans"]),
        s(&["instances", "show", "a"]),
        s(&["emulator", "log"]),
        s(&["reconcile", "--dry-run"]),
        s(&[
            "reconcile",
            "--dry-run",
            "--alive",
            "zzz",
            "--include-foreign",
        ]),
        s(&["credspec", "validate", p(spec)]),
        s(&["credspec", "show", p(spec)]),
        s(&[
            "credspec",
            "validate",
            "file://spec.json",
            "--credspec-dir",
            &dir,
        ]),
        s(&["credspec", "show", "raw://{}"]),
        s(&["emulator", "log", "--tail", "1"]),
        s(&["emulator", "inject", "--list"]),
        s(&["--output", "json", "emulator", "inject", "--list"]),
        s(&["emulator", "uvm", "list"]),
        s(&["--output", "json", "emulator", "uvm", "list"]),
        s(&["emulator", "uvm", "show", "uvm-1"]),
        s(&["--output", "json", "emulator", "uvm", "show", "uvm-1"]),
        s(&[
            "instances",
            "add",
            "--id",
            "b",
            "--credspec",
            p(spec),
            "--dry-run",
        ]),
        s(&["probe", "--help"]),
        s(&["--version"]),
    ]
}

#[test]
fn read_only_commands_change_nothing_and_report_corrupt_records() {
    let (env, spec) = read_only_env();
    let before = snapshot(&env.state());
    for args in read_only_commands(&spec) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        if (args.contains(&"instances") && args.contains(&"list")) || args.contains(&"reconcile") {
            assert!(
                err.contains("bad.json"),
                "{args:?} warns about the corrupt record: {err}"
            );
        }
        assert_eq!(
            snapshot(&env.state()),
            before,
            "{args:?} changed the state directory"
        );
    }
    // Reconcile (not --dry-run) is the one that moves the corrupt record aside.
    env.cmd().args(["reconcile"]).assert().code(0);
    assert!(!env.state().join("journal/emulator/bad.json").exists());
    // A state directory that does not exist yet is not created by a read-only command.
    let empty = Env::new();
    for args in read_only_commands(&spec) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if args.contains(&"show") && (args.contains(&"instances") || args.contains(&"uvm")) {
            assert_eq!(empty.run(&args).0, 4, "{args:?}");
        } else {
            assert_eq!(empty.run(&args).0, 0, "{args:?}");
        }
        assert!(
            !empty.state().exists(),
            "{args:?} created the state directory"
        );
    }
}

#[test]
fn read_only_commands_work_on_a_read_only_state_dir_as_its_unprivileged_owner() {
    if !is_root() {
        eprintln!("skipped: switching to uid 65534 needs root (CI runs as root)");
        return;
    }
    let (env, spec) = read_only_env();
    // The unprivileged user must reach the binary, the spec and the state directory.
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&spec, fs::Permissions::from_mode(0o644)).unwrap();
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(env.state())
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(env.state())
        .status()
        .unwrap();
    assert!(status.success());
    // The build directory may be out of that user's reach (a clone under /root): run a copy.
    let exe = env.dir.path().join("credguard");
    fs::copy(bin(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let before = snapshot(&env.state());
    for args in read_only_commands(&spec) {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe)
            .args(&args)
            .env_remove("CREDGUARD_BACKEND")
            .env_remove("CREDGUARD_LOG")
            .env("CREDGUARD_STATE_DIR", env.state())
            .env("HOME", "/nonexistent")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert_eq!(
            snapshot(&env.state()),
            before,
            "{args:?} changed the state directory"
        );
    }
    // Writing commands say clearly that they cannot write.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args(["instances", "remove", "a"])
        .env("CREDGUARD_STATE_DIR", env.state())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    // Let the temporary directory be cleaned up.
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(env.state())
        .status();
}

#[test]
fn the_example_spec_is_what_the_harness_uses() {
    // Keeps EXAMPLE_SPEC in use here (the harness is shared).
    assert!(EXAMPLE_SPEC.contains("CmsPlugins"));
}
