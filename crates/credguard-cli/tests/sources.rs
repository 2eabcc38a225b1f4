//! Issue 9, policy and credential-spec sources: the gMSA-disable annotation holds for every
//! source form, `file://` opens only regular files beneath the directory, duplicate members
//! and DOS device names are refused, and names repeated in messages are escaped and short.

mod common;

use std::path::PathBuf;

use common::{EXAMPLE_SPEC, Env, oci_config, outcome, p};
use serde_json::Value;

const DISABLE: &str = "io.microsoft.container.wcow.gmsa.disable";

/// An OCI bundle config.json whose annotation disables gMSA, as text.
fn disabled_config() -> String {
    oci_config(Some("true"), true)
}

fn utf16le_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

/// The credential-spec directory of `env` (`--credspec-dir`).
fn credspec_dir(env: &Env) -> PathBuf {
    let dir = env.dir.path().join("CredentialSpecs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `credguard ARGS` with `stdin` as standard input.
fn run_with_stdin(env: &Env, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    outcome(
        &env.cmd()
            .args(args)
            .write_stdin(stdin.to_vec())
            .output()
            .unwrap(),
    )
}

/// Whether the emulator logged an AddInstance.
fn add_instance_logged(env: &Env) -> bool {
    let (_, out, _) = env.run(&["emulator", "log"]);
    out.contains("AddInstance")
}

#[test]
fn the_gmsa_disable_annotation_denies_every_source_form() {
    let env = Env::new();
    let dir = credspec_dir(&env);
    let config = disabled_config();
    let plain = env.file("config.json", config.as_bytes());
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(config.as_bytes());
    let bom8 = env.file("bom8.json", &bom);
    let bom16 = env.file("bom16.json", &utf16le_bom(&config));
    std::fs::write(dir.join("bundle.json"), &config).unwrap();
    let bundle = env.dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), &bom).unwrap();
    let d = p(&dir);
    // The same bundle inline: read like every other source, not as a bare spec.
    let raw = format!("raw://{config}");

    let mut cases: Vec<(Vec<&str>, &[u8])> = Vec::new();
    for source in [
        p(&plain),
        p(&bom8),
        p(&bom16),
        "file://bundle.json",
        "-",
        raw.as_str(),
    ] {
        cases.push((
            vec![
                "instances",
                "add",
                "--id",
                "denied",
                "--credspec-dir",
                d,
                "--credspec",
                source,
            ],
            config.as_bytes(),
        ));
        cases.push((
            vec!["probe", "--credspec-dir", d, "--credspec", source],
            config.as_bytes(),
        ));
        // A dry run sends nothing, but says the same.
        cases.push((
            vec![
                "instances",
                "add",
                "--id",
                "denied",
                "--dry-run",
                "--credspec-dir",
                d,
                "--credspec",
                source,
            ],
            config.as_bytes(),
        ));
    }
    cases.push((
        vec![
            "instances",
            "add",
            "--id",
            "denied",
            "--oci-bundle",
            p(&bundle),
        ],
        b"",
    ));
    cases.push((
        vec![
            "instances",
            "add",
            "--id",
            "denied",
            "--credspec",
            "-",
            "--no-lint",
        ],
        &bom,
    ));
    cases.push((
        vec![
            "instances",
            "add",
            "--id",
            "denied",
            "--credspec",
            raw.as_str(),
            "--no-lint",
        ],
        b"",
    ));
    for (args, stdin) in &cases {
        let (code, _, err) = run_with_stdin(&env, args, stdin);
        assert_eq!(code, 6, "{args:?}: {err}");
        assert!(
            err.contains("operation denied") && err.contains(DISABLE),
            "{args:?}: {err}"
        );
    }
    assert!(!add_instance_logged(&env), "a denied spec sends nothing");
    assert!(env.ids().is_empty());
}

#[test]
fn validate_and_show_say_that_the_bundle_disables_gmsa() {
    let env = Env::new();
    let config = env.file("config.json", disabled_config().as_bytes());
    let (code, out, err) = env.run(&["credspec", "validate", p(&config)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("disables gMSA") && out.contains(DISABLE),
        "{out}"
    );
    assert!(
        !out.contains(": ok\n"),
        "not passed as plainly usable: {out}"
    );
    let (code, out, err) = env.run(&["credspec", "validate", "--strict", p(&config)]);
    assert_eq!(code, 1, "{out}{err}");
    let (code, out, _) = env.run(&["--output", "json", "credspec", "validate", p(&config)]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        report[0]["gmsa_disabled"]
            .as_str()
            .unwrap()
            .contains(DISABLE),
        "{report}"
    );
    let (code, _, err) = env.run(&["credspec", "show", p(&config)]);
    assert_eq!(code, 0);
    assert!(err.contains("disables gMSA"), "{err}");
    let (_, out, _) = env.run(&["--output", "json", "credspec", "show", p(&config)]);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert!(shown["gmsa_disabled"].is_string(), "{shown}");
}

#[test]
fn duplicate_members_are_refused_with_both_lines() {
    let env = Env::new();
    let text = EXAMPLE_SPEC.replacen(
        "\"DomainJoinConfig\": {",
        "\"DomainJoinConfig\": {\n        \"Sid\": \"S-1-5-21-1-2-3\",",
        1,
    );
    assert_ne!(text, EXAMPLE_SPEC, "the example spec changed its layout");
    let spec = env.file("dup.json", text.as_bytes());
    let (code, _, err) = env.run(&["credspec", "validate", p(&spec)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`DomainJoinConfig.Sid` appears twice (lines 6 and 7)"),
        "{err}"
    );
    let (code, _, err) = env.run(&[
        "instances",
        "add",
        "--id",
        "dup",
        "--no-lint",
        "--credspec",
        p(&spec),
    ]);
    assert_eq!(code, 2, "--no-lint does not let a duplicate through: {err}");
    assert!(!add_instance_logged(&env));
}

#[cfg(unix)]
#[test]
fn file_names_open_only_regular_files_beneath_the_directory() {
    use std::os::unix::fs::symlink;

    let env = Env::new();
    let dir = credspec_dir(&env);
    let d = p(&dir);
    let outside = env.file("outside.json", EXAMPLE_SPEC.as_bytes());
    symlink(&outside, dir.join("out.json")).unwrap();
    symlink("/dev/zero", dir.join("zero.json")).unwrap();
    std::fs::create_dir(dir.join("sub.json")).unwrap();
    std::fs::write(dir.join("ok.json"), EXAMPLE_SPEC).unwrap();
    symlink("ok.json", dir.join("inside.json")).unwrap();
    let fifo = dir.join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());

    for (name, says) in [
        ("out.json", "outside the credential-spec directory"),
        ("zero.json", "outside the credential-spec directory"),
        ("sub.json", "is a directory, not a regular file"),
        ("fifo.json", "is a FIFO, not a regular file"),
    ] {
        // A FIFO without a writer used to hang here forever.
        let (code, _, err) = env.run_bounded(&[
            "credspec",
            "validate",
            "--credspec-dir",
            d,
            &format!("file://{name}"),
        ]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(
            !err.contains(p(&outside)),
            "{name}: names the outside file: {err}"
        );
    }
    for name in ["ok.json", "inside.json"] {
        let (code, out, err) = env.run(&[
            "credspec",
            "validate",
            "--credspec-dir",
            d,
            &format!("file://{name}"),
        ]);
        assert_eq!(code, 0, "{name}: {out}{err}");
    }
}

#[cfg(unix)]
#[test]
fn plain_paths_keep_process_substitution_but_not_a_hang_or_an_endless_read() {
    let env = Env::new();
    let fifo = env.dir.path().join("fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // No writer: reads as empty at once instead of hanging.
    let (code, _, err) = env.run_bounded(&["credspec", "validate", p(&fifo)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("empty"), "{err}");
    // Process substitution, as users write it: `<(cat spec.json)` hands over a pipe whose
    // writer is already there. (A named FIFO whose writer comes later is a race this test
    // must not depend on: opened first, it reads as empty.)
    let spec = env.spec();
    let script = format!(
        "exec {} credspec validate <(cat {})",
        p(&assert_cmd::cargo::cargo_bin("credguard")),
        p(&spec),
    );
    let out = assert_cmd::Command::new("bash")
        .args(["-c", &script])
        .env("CREDGUARD_STATE_DIR", env.state())
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An endless device is cut at the size limit.
    let (code, _, err) = env.run(&["credspec", "validate", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is over"), "{err}");
    let (code, _, err) = run_with_stdin(&env, &["credspec", "validate", "-"], &vec![b' '; 2 << 20]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is over"), "{err}");
}

#[test]
fn dos_device_names_are_refused_before_anything_is_opened() {
    let env = Env::new();
    let dir = credspec_dir(&env);
    for name in [
        "CON",
        "con",
        "COM1",
        "COM1.json",
        "sub/LPT9.json",
        "NUL.",
        "aux .json",
        "PRN",
        "CONIN$",
        "conout$.json",
        "CLOCK$",
        "COM\u{b9}",
        "LPT\u{b3}.txt",
        "COM0",
    ] {
        // Had it been opened, a file of that name would be read and pass (on Windows the
        // name is the device itself, so nothing is written there).
        #[cfg(unix)]
        std::fs::write(dir.join(name.replace('/', "_")), EXAMPLE_SPEC).unwrap();
        let (code, _, err) = env.run(&[
            "credspec",
            "validate",
            "--credspec-dir",
            p(&dir),
            &format!("file://{name}"),
        ]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains("is a DOS device name"), "{name}: {err}");
    }
    std::fs::write(dir.join("console.json"), EXAMPLE_SPEC).unwrap();
    let (code, _, err) = env.run(&[
        "credspec",
        "validate",
        "--credspec-dir",
        p(&dir),
        "file://console.json",
    ]);
    assert_eq!(code, 0, "{err}");
}

/// The chain of errors of a command, with what a name looks like in it.
fn assert_shown_once(err: &str, marker: &str) {
    assert!(!err.contains('\u{1b}'), "a raw ESC: {err:?}");
    assert!(!err.contains('\u{202e}'), "a raw U+202E: {err:?}");
    assert!(err.len() < 2000, "{} bytes: {err}", err.len());
    assert_eq!(err.matches(marker).count(), 1, "{err}");
}

#[test]
fn names_in_messages_are_escaped_short_and_said_once() {
    let env = Env::new();
    let dir = credspec_dir(&env);
    let long = format!("LoNg{}", "n".repeat(30_000));
    for name in ["evil\u{1b}[31mred", "evil\u{202e}nosj.exe", long.as_str()] {
        let marker = &name[..4];
        // file:// that does not exist.
        let (code, _, err) = env.run(&[
            "credspec",
            "validate",
            "--credspec-dir",
            p(&dir),
            &format!("file://{name}"),
        ]);
        assert_eq!(code, 2, "{err}");
        assert_shown_once(&err, marker);
        // A plain path that does not exist.
        let path = env.dir.path().join(format!("x{name}"));
        let (code, _, err) = env.run(&["credspec", "validate", p(&path)]);
        assert_eq!(code, 2, "{err}");
        assert_shown_once(&err, marker);
        // registry:// (off Windows: refused, naming it).
        let (code, _, err) = env.run(&["credspec", "validate", &format!("registry://{name}")]);
        assert_eq!(code, 2, "{err}");
        assert_shown_once(&err, marker);
    }
    // PATH#NAME with a name the manifest lacks, and a manifest whose resource has odd names.
    let manifest = format!(
        "apiVersion: windows.k8s.io/v1\nkind: GMSACredentialSpec\nmetadata:\n  name: \"evil\\e[31m{}\"\ncredspec: 7\n",
        "m".repeat(30_000)
    );
    let path = env.file("m.yaml", manifest.as_bytes());
    let (code, _, err) = env.run(&["credspec", "validate", p(&path)]);
    assert_eq!(code, 2, "{err}");
    assert_shown_once(&err, "evil");
    let (code, _, err) = env.run(&["credspec", "validate", &format!("{}#nope", p(&path))]);
    assert_eq!(code, 2, "{err}");
    assert_shown_once(&err, "evil");
    // A manifest with two resources, under a path with an ESC in it: the path once. (Unix
    // only: Windows file names cannot hold control characters.)
    #[cfg(unix)]
    manifest_path_is_said_once(&env);
}

#[cfg(unix)]
fn manifest_path_is_said_once(env: &Env) {
    let two = "kind: GMSACredentialSpec\nmetadata:\n  name: a\ncredspec: {}\n---\nkind: GMSACredentialSpec\nmetadata:\n  name: b\ncredspec: {}\n";
    let sub = env.dir.path().join("evil\u{1b}dir");
    std::fs::create_dir_all(&sub).unwrap();
    let path = sub.join("two.yaml");
    std::fs::write(&path, two).unwrap();
    let (code, _, err) = env.run(&["credspec", "validate", p(&path)]);
    assert_eq!(code, 2, "{err}");
    assert_shown_once(&err, "evil");
}

#[test]
fn the_size_limit_holds_on_a_file_name() {
    let env = Env::new();
    let dir = credspec_dir(&env);
    std::fs::write(dir.join("big.json"), vec![b' '; 2 << 20]).unwrap();
    let (code, _, err) = env.run(&[
        "credspec",
        "validate",
        "--credspec-dir",
        p(&dir),
        "file://big.json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is over"), "{err}");
}
