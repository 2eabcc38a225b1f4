//! Tells the binary which commit and target it was built from, for `credguard version`
//! and `--version`.
//!
//! The commit is `git rev-parse --short=12 HEAD`, or `CREDGUARD_BUILD_COMMIT` when set (a
//! build from a source archive has no repository), or `unknown`. The script runs again only
//! when HEAD or the branch it points to moves, not on every build. No dirty marker: with
//! reruns limited to HEAD moving, a marker computed once would go stale on the next edit and
//! say "clean" of a changed tree; better none than a wrong one.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CREDGUARD_BUILD_COMMIT");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=CREDGUARD_BUILD_TARGET={target}");
    let given = std::env::var("CREDGUARD_BUILD_COMMIT").ok();
    if given.as_deref().is_none_or(|c| c.trim().is_empty()) {
        watch_head("git");
    }
    let commit = commit("git", given.as_deref());
    println!("cargo:rustc-env=CREDGUARD_BUILD_COMMIT={commit}");
}

/// The commit to show: `given` (from `CREDGUARD_BUILD_COMMIT`) when not blank, else what
/// `git rev-parse --short=12 HEAD` says, else `unknown` (no git, no repository, no commit).
pub(crate) fn commit(git_program: &str, given: Option<&str>) -> String {
    match given.map(str::trim) {
        Some(c) if !c.is_empty() => c.to_owned(),
        _ => git(git_program, &["rev-parse", "--short=12", "HEAD"])
            .unwrap_or_else(|| "unknown".to_owned()),
    }
}

/// One line of a git command's output, or `None` when git is missing or fails (no
/// repository, no commit yet).
fn git(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!line.is_empty() && !line.contains('\n')).then_some(line)
}

/// Reruns the script when HEAD changes (a checkout) or the branch it is on moves (a commit):
/// `.git/HEAD`, the branch's ref file and `packed-refs`, wherever a worktree keeps them.
/// Files that do not exist are not named: cargo would rerun every time.
fn watch_head(program: &str) {
    let mut paths = vec![git(program, &["rev-parse", "--git-path", "HEAD"])];
    if let Some(reference) = git(program, &["symbolic-ref", "-q", "HEAD"]) {
        paths.push(git(program, &["rev-parse", "--git-path", &reference]));
    }
    paths.push(git(program, &["rev-parse", "--git-path", "packed-refs"]));
    for path in paths.into_iter().flatten().map(PathBuf::from) {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
