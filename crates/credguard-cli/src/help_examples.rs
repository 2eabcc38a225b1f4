//! The examples every `--help` ends with are real commands: each one parses with the same
//! command tree the binary uses, flags, values, conflicts and required options included.

use clap::{CommandFactory, Parser};

use crate::Cli;

/// The example commands of a help's `Examples:` text: continuation lines (` \`) joined,
/// comments (`#` lines and `  # ...` tails) dropped.
fn examples(after_help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in after_help.lines().skip(1) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                out.push(std::mem::take(&mut pending));
            }
        }
    }
    out
}

/// Shell words as `sh` splits these examples: single quotes, and the command ends at an
/// unquoted redirection, pipe or comment.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in command.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if quoted => word.push(c),
            ' ' => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            '<' | '>' | '|' if !started => break,
            '#' if !started => break,
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {command}");
    if started {
        words.push(word);
    }
    words
}

fn walk(cmd: &clap::Command, path: &mut Vec<String>, found: &mut Vec<(String, String)>) {
    // clap's own `help` subcommand (and the tree of names under it) only prints help.
    if cmd.get_name() == "help" {
        return;
    }
    let text = cmd
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        text.starts_with("Examples:\n"),
        "`{}` has no Examples",
        path.join(" ")
    );
    for example in examples(&text) {
        found.push((path.join(" "), example));
    }
    for sub in cmd.get_subcommands() {
        path.push(sub.get_name().to_owned());
        walk(sub, path, found);
        path.pop();
    }
}

#[test]
fn every_example_in_every_help_parses() {
    let mut cmd = Cli::command();
    cmd.build();
    let mut found = Vec::new();
    walk(&cmd, &mut vec!["credguard".to_owned()], &mut found);
    assert!(found.len() > 60, "{} examples", found.len());
    for (command, example) in &found {
        let args = words(example);
        assert_eq!(args[0], "credguard", "`{command}`: {example}");
        // As main reads them: `--output sarif` of `k8s check` taken out first.
        let (args, _) = crate::sarif_output(args.iter().map(Into::into).collect());
        if let Err(e) = Cli::try_parse_from(&args) {
            panic!("`{command}`: the example `{example}` does not parse:\n{e}");
        }
    }
}

#[test]
fn the_command_tree_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn example_words_split_as_sh_does() {
    assert_eq!(
        words("credguard a --result '{\"x\": 1}' < spec.json"),
        ["credguard", "a", "--result", "{\"x\": 1}"]
    );
    assert_eq!(words("credguard  b # note"), ["credguard", "b"]);
    assert_eq!(words("credguard c x#y"), ["credguard", "c", "x#y"]);
    assert_eq!(
        examples("Examples:\n  # c\n  credguard a \\\n      --b x\n  credguard d"),
        ["credguard a --b x", "credguard d"]
    );
}
