//! The sources against a real, private containerd (`PrivateContainerd`): listing across
//! namespaces and with namespaces given, containerd stopped and restarted, the CRI plugin's
//! ListContainers, and the delete watch.
//!
//! Ignored by plain `cargo test` (they need root and containerd);
//! `scripts/containerd-tests.sh` runs them with `--ignored`.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::time::Duration;

use credguard_agent::source::{
    AliveSource, CriSource, SourceOptions, SourceSpec, WatchEvent, live_set,
};
use credguard_agent::test_support::PrivateContainerd;
use tokio::sync::mpsc::Receiver;

/// How long an awaited watch event may take.
const EVENT_DEADLINE: Duration = Duration::from_secs(30);

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|id| (*id).to_owned()).collect()
}

fn started() -> (PrivateContainerd, String) {
    let containerd = PrivateContainerd::start().unwrap_or_else(|e| panic!("{e}"));
    let image = containerd
        .import_test_image("default")
        .unwrap_or_else(|e| panic!("{e}\n{}", containerd.log_tail()));
    (containerd, image)
}

#[tokio::test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn containers_of_every_namespace_are_listed_and_namespaces_narrow_it() {
    let (containerd, image) = started();
    containerd
        .create_container("default", "c-default", &image)
        .await
        .unwrap();
    containerd
        .create_container("k8s.io", "c-k8s-1", &image)
        .await
        .unwrap();
    containerd
        .create_container("k8s.io", "c-k8s-2", &image)
        .await
        .unwrap();

    let every = containerd.source();
    assert_eq!(
        every.list().await.unwrap(),
        ids(&["c-default", "c-k8s-1", "c-k8s-2"])
    );
    let k8s = containerd
        .source()
        .with_namespaces(vec!["k8s.io".to_owned()]);
    assert_eq!(k8s.list().await.unwrap(), ids(&["c-k8s-1", "c-k8s-2"]));

    // The --alive-from value reaches the same containerd.
    let spec: SourceSpec = containerd.alive_from().parse().unwrap();
    let source = spec.open(&SourceOptions {
        namespaces: vec!["default".to_owned()],
        ..SourceOptions::default()
    });
    assert_eq!(source.list().await.unwrap(), ids(&["c-default"]));
}

#[tokio::test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn a_stopped_containerd_fails_the_live_set_and_a_restarted_one_answers_again() {
    let (mut containerd, image) = started();
    containerd
        .create_container("default", "survivor", &image)
        .await
        .unwrap();
    let sources: Vec<Box<dyn AliveSource>> = vec![Box::new(
        containerd.source().with_timeout(Duration::from_secs(5)),
    )];
    assert_eq!(live_set(&sources).await.unwrap(), ids(&["survivor"]));

    containerd.stop().unwrap();
    let error = live_set(&sources).await.unwrap_err();
    assert_eq!(error.failures.len(), 1);
    let failure = &error.failures[0];
    assert_eq!(failure.source_name, containerd.alive_from());
    assert!(failure.reason.contains("cannot connect"), "{failure}");
    assert!(error.to_string().contains("nothing is removed"), "{error}");

    containerd.restart().unwrap();
    assert_eq!(live_set(&sources).await.unwrap(), ids(&["survivor"]));
}

#[tokio::test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn the_cri_plugin_of_the_same_containerd_answers_list_containers() {
    let (containerd, image) = started();
    // Containers made through the containers service are not CRI containers (no sandbox),
    // so the CRI lists none of them: the answer has the right shape and is empty.
    containerd
        .create_container("k8s.io", "not-a-pod", &image)
        .await
        .unwrap();
    let spec: SourceSpec = containerd.cri_alive_from().parse().unwrap();
    let source = spec.open(&SourceOptions::default());
    assert_eq!(
        source.name(),
        format!("cri:{}", containerd.socket().display())
    );
    let listed = source
        .list()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", containerd.log_tail()));
    assert_eq!(listed, BTreeSet::new());

    // And a CRI source at a dead endpoint names itself and why.
    let dead = CriSource::new(credguard_agent::api::Address::Unix(
        containerd.dir().join("no-such.sock"),
    ));
    let error = dead.list().await.unwrap_err();
    assert!(error.to_string().starts_with("cri:"), "{error}");
    assert!(error.reason.contains("cannot connect"), "{error}");
}

async fn next(events: &mut Receiver<WatchEvent>) -> WatchEvent {
    tokio::time::timeout(EVENT_DEADLINE, events.recv())
        .await
        .expect("no watch event within the deadline")
        .expect("the watch ended")
}

#[tokio::test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn the_watch_reports_deletes_and_survives_a_containerd_restart() {
    let (mut containerd, image) = started();
    containerd
        .create_container("default", "doomed", &image)
        .await
        .unwrap();
    containerd
        .create_container("k8s.io", "doomed-too", &image)
        .await
        .unwrap();
    let source = containerd.source().with_timeout(Duration::from_secs(5));
    let mut events = source.watch().expect("containerd watches");
    assert_eq!(next(&mut events).await, WatchEvent::Subscribed);

    containerd
        .delete_container("default", "doomed")
        .await
        .unwrap();
    assert_eq!(
        next(&mut events).await,
        WatchEvent::Deleted {
            id: "doomed".to_owned()
        }
    );

    containerd.stop().unwrap();
    match next(&mut events).await {
        WatchEvent::Lost(error) => assert_eq!(error.source_name, containerd.alive_from()),
        other => panic!("expected Lost, got {other:?}"),
    }
    containerd.restart().unwrap();
    assert_eq!(next(&mut events).await, WatchEvent::Subscribed);
    containerd
        .delete_container("k8s.io", "doomed-too")
        .await
        .unwrap();
    assert_eq!(
        next(&mut events).await,
        WatchEvent::Deleted {
            id: "doomed-too".to_owned()
        }
    );
}

#[tokio::test]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn the_watch_of_some_namespaces_ignores_deletes_elsewhere() {
    let (containerd, image) = started();
    containerd
        .create_container("default", "elsewhere", &image)
        .await
        .unwrap();
    containerd
        .create_container("k8s.io", "watched", &image)
        .await
        .unwrap();
    let source = containerd
        .source()
        .with_namespaces(vec!["k8s.io".to_owned()]);
    let mut events = source.watch().unwrap();
    assert_eq!(next(&mut events).await, WatchEvent::Subscribed);
    containerd
        .delete_container("default", "elsewhere")
        .await
        .unwrap();
    containerd
        .delete_container("k8s.io", "watched")
        .await
        .unwrap();
    // Events arrive in order: the first Deleted is the watched namespace's.
    assert_eq!(
        next(&mut events).await,
        WatchEvent::Deleted {
            id: "watched".to_owned()
        }
    );
}
