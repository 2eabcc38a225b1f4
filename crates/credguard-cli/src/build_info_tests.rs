//! The commit `build.rs` gives the binary: the override, git's answer, or `unknown`.

#[path = "../build.rs"]
#[allow(dead_code)]
mod build_script;

use build_script::commit;

#[test]
fn a_build_without_git_says_unknown() {
    assert_eq!(commit("/nonexistent/credguard-no-git", None), "unknown");
    assert_eq!(
        commit("/nonexistent/credguard-no-git", Some("  ")),
        "unknown"
    );
}

#[test]
fn the_override_wins_when_given() {
    assert_eq!(
        commit("/nonexistent/credguard-no-git", Some(" 0123abcd ")),
        "0123abcd"
    );
}

#[test]
fn the_binary_carries_what_the_build_script_computes() {
    // Built in this repository, with git at hand, the commit is 12 hex digits; elsewhere
    // (a source archive, no git) it is `unknown`, as the binary says.
    let now = commit(
        "git",
        std::env::var("CREDGUARD_BUILD_COMMIT").ok().as_deref(),
    );
    assert_eq!(crate::commands::version::COMMIT, now);
    if now != "unknown" && std::env::var_os("CREDGUARD_BUILD_COMMIT").is_none() {
        assert_eq!(now.len(), 12, "{now}");
        assert!(now.chars().all(|c| c.is_ascii_hexdigit()), "{now}");
    }
}
