//! The operator surface of `credguard` (issue 10): help that ends with examples at every
//! level, global options under their own heading, `--log-level` checked, `completions`,
//! `man` and `version`.

mod common;

use std::collections::BTreeSet;

use common::Env;
use serde_json::Value;

/// The subcommands a help text lists under `Commands:` (clap's `help` left out).
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            // An entry is `  name  about`; a wrapped about is indented further.
            match line.strip_prefix("  ") {
                Some(rest) if !rest.starts_with(' ') => {
                    let name = rest.split_whitespace().next().unwrap_or("");
                    if name != "help" {
                        names.push(name.to_owned());
                    }
                }
                Some(_) => {}
                None => in_commands = !line.is_empty() && line.starts_with(' '),
            }
        }
    }
    names
}

/// Every command path of the tree, the top one (empty) first, found as a user finds them:
/// through `--help`.
fn command_paths(env: &Env) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let (code, help, err) = env.run(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        for sub in subcommands(&help) {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
        paths.push(path);
    }
    paths
}

/// The sections of a help text: heading (a line ending with `:` at column 0) and lines.
fn sections(help: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            out.push((line.trim_end_matches(':').to_owned(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(line.to_owned());
        }
    }
    out
}

#[test]
fn the_walk_finds_the_nested_commands() {
    let env = Env::new();
    let paths: BTreeSet<String> = command_paths(&env).iter().map(|p| p.join(" ")).collect();
    for expected in [
        "",
        "instances",
        "instances add",
        "instances remove",
        "emulator inject",
        "emulator uvm",
        "emulator uvm stop",
        "credspec validate",
        "credspec new",
        "doctor",
        "completions",
        "man",
        "version",
    ] {
        assert!(paths.contains(expected), "{expected:?} not in {paths:?}");
    }
}

#[test]
fn every_command_help_ends_with_examples_of_that_command() {
    let env = Env::new();
    for path in command_paths(&env) {
        for flag in ["--help", "-h"] {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push(flag);
            let (code, help, err) = env.run(&args);
            assert_eq!(code, 0, "{args:?}: {err}");
            let all = sections(&help);
            let (heading, lines) = all.last().unwrap();
            assert_eq!(
                heading, "Examples",
                "{args:?} does not end with Examples:\n{help}"
            );
            let examples: Vec<&String> = lines
                .iter()
                .filter(|l| l.trim_start().starts_with("credguard"))
                .collect();
            assert!(!examples.is_empty(), "{args:?}: no example\n{help}");
            // Each command's examples show that command (global options may come first).
            let command = path.join(" ");
            assert!(
                examples
                    .iter()
                    .any(|l| l.contains(&format!("credguard {command}"))
                        || l.contains(&format!(" {command}"))),
                "{args:?}: no example of `{command}`\n{help}"
            );
        }
    }
}

const GLOBAL: [&str; 6] = [
    "--backend",
    "--state-dir",
    "--output",
    "--log-level",
    "--log-format",
    "--show-secrets",
];

#[test]
fn global_options_are_listed_apart_from_the_commands_own() {
    let env = Env::new();
    for path in command_paths(&env) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let (_, help, _) = env.run(&args);
        let all = sections(&help);
        let global = all
            .iter()
            .find(|(h, _)| h == "Global options")
            .unwrap_or_else(|| panic!("{args:?}: no Global options heading\n{help}"));
        let global_text = global.1.join("\n");
        for flag in GLOBAL {
            assert!(
                global_text.contains(&format!("{flag} "))
                    || global_text.contains(&format!("{flag}\n")),
                "{args:?}: {flag} not under Global options\n{help}"
            );
            for (heading, lines) in all.iter().filter(|(h, _)| h.ends_with("Options")) {
                assert!(
                    !lines
                        .iter()
                        .any(|l| l.trim_start().starts_with(&format!("{flag} "))
                            || l.trim_start() == flag),
                    "{args:?}: {flag} listed under {heading:?} too\n{help}"
                );
            }
        }
    }
    // The command's own options keep their heading.
    let (_, help, _) = env.run(&["instances", "add", "--help"]);
    let own = sections(&help);
    let options = own
        .iter()
        .find(|(h, _)| h == "Options")
        .unwrap()
        .1
        .join("\n");
    assert!(options.contains("--id <ID>"), "{help}");
    assert!(options.contains("--dry-run"), "{help}");
}

#[test]
fn log_level_refuses_what_is_neither_a_level_nor_a_directive() {
    let env = Env::new();
    for bad in [
        "verbose",
        "warning",
        "credguard=loud",
        "",
        " ",
        "info,chatty",
        "=debug",
    ] {
        let (code, out, err) = env.run(&["--log-level", bad, "version"]);
        assert_eq!(code, 2, "--log-level {bad:?} accepted: {out}{err}");
        assert!(err.contains("--log-level"), "{bad:?}: {err}");
        assert!(
            err.contains(&format!("'{bad}'")),
            "{bad:?}: the value is not named: {err}"
        );
        assert!(out.is_empty(), "{bad:?}: {out}");
    }
    let (_, _, err) = env.run(&["--log-level", "verbose", "version"]);
    assert!(err.contains("neither a level"), "{err}");
    for good in [
        "debug",
        "WARN",
        "off",
        "warn,credguard=debug",
        "credguard=trace",
        "credguard::lifecycle=info",
    ] {
        let (code, _, err) = env.run(&["--log-level", good, "version"]);
        assert_eq!(code, 0, "--log-level {good:?} refused: {err}");
    }
    // The environment variable is read the same way.
    let out = env
        .cmd()
        .args(["instances", "list"])
        .env("CREDGUARD_LOG", "verbose")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("CREDGUARD_LOG") && err.contains("`verbose`"),
        "{err}"
    );
}

/// The commit the tree is at, as build.rs reads it, or `None` without git.
fn head_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn version_names_the_crate_version_the_commit_and_the_target() {
    let env = Env::new();
    let commit = head_commit().unwrap_or_else(|| "unknown".to_owned());
    let expected = format!("{} (commit {commit}, ", env!("CARGO_PKG_VERSION"));
    for args in [&["version"][..], &["--version"]] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.starts_with(&format!("credguard {expected}")),
            "{args:?}: {out:?}, expected {expected:?}"
        );
    }
    // Every subcommand's --version (clap names the subcommand).
    let (code, out, _) = env.run(&["emulator", "uvm", "--version"]);
    assert_eq!(code, 0);
    assert!(out.contains(&expected), "{out}");
    let (code, out, err) = env.run(&["--output", "json", "version"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["version", "commit", "target"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["commit"], commit.as_str());
    assert!(!v["target"].as_str().unwrap().is_empty());
    // It needs no state directory: it works where every other command would fail.
    let out = env
        .cmd()
        .arg("version")
        .env_remove("CREDGUARD_STATE_DIR")
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn completions_cover_every_shell_and_the_nested_commands() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, out, err) = env.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("credguard"), "{shell}");
        for word in ["instances", "uvm", "alive-none", "log-level"] {
            assert!(out.contains(word), "{shell}: {word} is not completed");
        }
    }
    let (code, _, err) = env.run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tcsh"), "{err}");
}

#[test]
fn man_prints_the_whole_tree_on_one_page() {
    let env = Env::new();
    let (code, page, err) = env.run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(page.matches(".TH ").count(), 1, "one page");
    assert!(page.contains(".TH credguard 1"), "{}", &page[..200]);
    let paths = command_paths(&env);
    for path in paths.iter().skip(1) {
        let title = format!(".SH \"CREDGUARD {}\"", path.join(" ").to_uppercase());
        assert!(page.contains(&title), "no section {title}");
    }
    assert!(
        page.contains("credguard instances add \\-\\-id web\\-1"),
        "the examples"
    );
    // Every command's examples under their own heading; the global options once.
    assert_eq!(page.matches(".SH EXAMPLES\n").count(), 1);
    assert_eq!(page.matches(".SS EXAMPLES\n").count(), paths.len() - 1);
    assert!(!page.contains("EXTRA") && !page.contains("\nExamples:\n"));
    assert_eq!(page.matches("GLOBAL OPTIONS").count(), 1);
}

#[cfg(unix)]
#[test]
fn man_out_dir_writes_one_page_per_command_atomically_and_readable() {
    use std::os::unix::fs::PermissionsExt;

    let env = Env::new();
    let dir = env.dir.path().join("man/man1");
    let paths = command_paths(&env);
    for round in 0..2 {
        let (code, out, err) = env.run(&["man", "--out-dir", common::p(&dir)]);
        assert_eq!(code, 0, "round {round}: {err}");
        assert_eq!(out.lines().count(), paths.len(), "{out}");
        let files: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let expected: BTreeSet<String> = paths
            .iter()
            .map(|p| {
                let mut name = vec!["credguard".to_owned()];
                name.extend(p.iter().cloned());
                format!("{}.1", name.join("-"))
            })
            .collect();
        // No temporary file is left, and nothing but the pages is written.
        assert_eq!(files, expected);
        for name in &files {
            let path = dir.join(name);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "{name}: {mode:o}");
            let page = std::fs::read_to_string(&path).unwrap();
            assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{name}");
            assert_eq!(page.matches(".TH ").count(), 1, "{name}");
        }
        let add = std::fs::read_to_string(dir.join("credguard-instances-add.1")).unwrap();
        assert!(add.contains("\\-\\-dry\\-run"), "{add}");
        // A page stands alone: the global options and the examples are on it.
        assert!(add.contains(".SH \"GLOBAL OPTIONS\""), "{add}");
        assert!(add.contains(".SH EXAMPLES\n"), "{add}");
    }
}
