//! `credguard reconcile --alive-from containerd:SOCKET` against a private containerd and
//! the emulator: the live set is containerd's list, orphans are removed, live containers
//! keep their instances, a stopped containerd removes nothing (exit 8) and a restarted one
//! lets the next round finish the work.
//!
//! Ignored by plain `cargo test` (they need root and containerd);
//! `scripts/containerd-tests.sh` runs them with `--ignored`.

#![cfg(unix)]

mod common;

use common::Env;
use credguard_agent::test_support::PrivateContainerd;
use serde_json::Value;

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// The ids a JSON plan removes as not alive.
fn removed(out: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(out).unwrap();
    let mut ids: Vec<String> = doc["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["action"] == "remove_not_alive")
        .map(|item| item["container_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
fn reconcile_alive_from_containerd_removes_orphans_keeps_live_and_waits_for_a_stopped_runtime() {
    let mut containerd = PrivateContainerd::start().unwrap_or_else(|e| panic!("{e}"));
    let image = containerd
        .import_test_image("default")
        .unwrap_or_else(|e| panic!("{e}"));
    block_on(async {
        containerd
            .create_container("default", "live-1", &image)
            .await
            .unwrap();
        containerd
            .create_container("k8s.io", "live-2", &image)
            .await
            .unwrap();
    });
    let env = Env::new();
    for id in ["live-1", "live-2", "gone-1"] {
        env.add(id, &[]);
    }
    let from = containerd.alive_from();

    // The plan first: only the container containerd does not list is removed.
    let (code, out, err) = env.run(&[
        "--output",
        "json",
        "reconcile",
        "--alive-from",
        &from,
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(removed(&out), ["gone-1"], "{out}");
    assert_eq!(sorted(env.ids()), ["gone-1", "live-1", "live-2"]);

    // With one namespace, the other namespace's container is not alive.
    let (code, out, err) = env.run(&[
        "--output",
        "json",
        "reconcile",
        "--alive-from",
        &from,
        "--namespace",
        "default",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(removed(&out), ["gone-1", "live-2"], "{out}");

    // The round: the orphan goes, the live stay.
    let (code, out, err) = env.run(&["reconcile", "--alive-from", &from]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("gone-1"), "{out}");
    assert_eq!(sorted(env.ids()), ["live-1", "live-2"]);

    // containerd stopped: an error naming the source, exit 8, nothing removed.
    containerd.stop().unwrap();
    env.add("gone-2", &[]);
    let (code, out, err) = env.run(&[
        "--output",
        "json",
        "reconcile",
        "--alive-from",
        &from,
        "--source-timeout",
        "5s",
    ]);
    assert_eq!(code, 8, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains(&from), "{message}");
    assert!(message.contains("nothing is removed"), "{message}");
    assert_eq!(doc["error"]["exit_code"], 8);
    assert_eq!(sorted(env.ids()), ["gone-2", "live-1", "live-2"]);

    // Restarted: the next round removes what is gone, including a container deleted since.
    containerd.restart().unwrap();
    block_on(containerd.delete_container("default", "live-1")).unwrap();
    let (code, out, err) = env.run(&["reconcile", "--alive-from", &from]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(sorted(env.ids()), ["live-2"]);
}

#[test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
fn reconcile_alive_from_the_cri_of_the_same_containerd() {
    let containerd = PrivateContainerd::start().unwrap_or_else(|e| panic!("{e}"));
    let env = Env::new();
    env.add("no-pod", &[]);
    // The CRI lists no container (no pod runs): the instance is an orphan.
    let (code, out, err) = env.run(&["reconcile", "--alive-from", &containerd.cri_alive_from()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(env.ids(), Vec::<String>::new());
}
