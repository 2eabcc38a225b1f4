//! `credguard agent --alive-from containerd:SOCKET` against a private containerd and the
//! emulator, as a process: a deleted container's instance removed after the delete event,
//! then SIGTERM ends it with exit 0 and its summary. (The loop's cases against a real
//! containerd, stopped and restarted, and the grace, are in crates/credguard-agent's
//! `agent_containerd` tests.)
//!
//! Ignored by plain `cargo test` (they need root and containerd);
//! `scripts/containerd-tests.sh` runs them with `--ignored`.

#![cfg(unix)]

mod common;

use common::Env;
use credguard_agent::test_support::PrivateContainerd;

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
fn the_agent_removes_a_deleted_containers_instance_and_stops_on_sigterm() {
    let containerd = PrivateContainerd::start().unwrap_or_else(|e| panic!("{e}"));
    let image = containerd
        .import_test_image("default")
        .unwrap_or_else(|e| panic!("{e}"));
    block_on(async {
        for id in ["c1", "c2"] {
            containerd
                .create_container("default", id, &image)
                .await
                .unwrap();
        }
    });
    let env = Env::new();
    env.add("c1", &[]);
    env.add("c2", &[]);
    // An hour between rounds: the removal below can only come from the delete event.
    let mut agent = env.spawn(&[
        "agent",
        "--alive-from",
        &containerd.alive_from(),
        "--interval",
        "1h",
    ]);
    agent.wait_for_stderr("subscribed to container events");
    agent.wait_for_stderr("agent started");
    assert_eq!(env.ids(), ["c1", "c2"], "{}", agent.stderr());
    block_on(containerd.delete_container("default", "c1")).unwrap();
    // The log line follows the removal: wait for it.
    agent.wait_for_stderr("agent removed");
    assert_eq!(env.ids(), ["c2"]);
    let log = agent.stderr();
    assert!(
        log.contains("agent removed") && log.contains("container_id=c1"),
        "the removal is not logged with its container id: {log}"
    );
    agent.terminate();
    assert_eq!(agent.finish(), 0, "{}", agent.stderr());
    assert!(agent.stdout().contains("1 removal"), "{}", agent.stdout());
}
