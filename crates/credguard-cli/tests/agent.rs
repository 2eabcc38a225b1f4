//! `credguard agent`: the process around the library's agent loop (the loop itself is tested
//! in crates/credguard-agent): flags checked before it starts, SIGTERM/SIGINT end it with exit
//! 0 and a summary, its log names the source that failed. Metrics over HTTP are tested in crates/credguard-agent. Real-runtime tests (containerd) are in crates/credguard-agent's containerd tests.

mod common;

use common::Env;

#[test]
fn flags_are_checked_before_anything_starts() {
    let env = Env::new();
    for (args, want) in [
        (vec!["agent"], "--alive-from"),
        (
            vec!["agent", "--alive-from", "nope"],
            "not a live-set source",
        ),
        (
            vec!["agent", "--alive-from", "containerd", "--interval", "0s"],
            "above zero",
        ),
        (
            vec!["agent", "--alive-from", "containerd", "--interval", "soon"],
            "whole number",
        ),
        (
            vec!["agent", "--alive-from", "containerd", "--grace=-1m"],
            "whole number",
        ),
        (
            vec!["agent", "--alive-from", "cri", "--namespace", "k8s.io"],
            "containerd sources only",
        ),
        (
            vec![
                "agent",
                "--alive-from",
                "containerd",
                "--metrics-listen",
                "localhost",
            ],
            "--metrics-listen",
        ),
    ] {
        let (code, _, err) = env.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_stop_it_with_exit_0_and_a_summary() {
    let env = Env::new();
    for signal in ["-TERM", "-INT"] {
        let mut agent = env.spawn(&[
            "agent",
            "--alive-from",
            "containerd:/nonexistent/containerd.sock",
            "--interval",
            "1h",
        ]);
        agent.wait_for_stderr("round failed");
        if signal == "-TERM" {
            agent.terminate();
        } else {
            agent.interrupt();
        }
        assert_eq!(agent.finish(), 0, "{}", agent.stderr());
        assert!(
            agent
                .stdout()
                .starts_with("agent stopped: 1 round, 1 failed, 0 removals"),
            "{}",
            agent.stdout()
        );
        // The failed round names its source and says that nothing was removed.
        let err = agent.stderr();
        assert!(
            err.contains("source=containerd:/nonexistent/containerd.sock"),
            "{err}"
        );
        assert!(err.contains("nothing is removed"), "{err}");
    }
}
