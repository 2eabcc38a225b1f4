//! The agent's loop against a real, private containerd (`PrivateContainerd`) and the
//! emulator: a deleted container's instance removed after the delete event, containerd stopped
//! (nothing removed, the agent keeps running) and restarted (it resumes), foreign-instance
//! grace. Waits poll with a deadline; nothing asserts how long anything took.
//!
//! Ignored by plain `cargo test` (they need root and containerd);
//! `scripts/containerd-tests.sh` runs them with `--ignored`.

#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::{World, set};
use credguard_agent::agent::{Agent, AgentOptions, RoundOutcome, RoundReport, Summary};
use credguard_agent::source::AliveSource;
use credguard_agent::test_support::PrivateContainerd;
use tokio::sync::{oneshot, watch};

/// The most a wait for the agent may take (against hangs; not a timing assertion).
const DEADLINE: Duration = Duration::from_secs(60);

fn started() -> (PrivateContainerd, String) {
    let containerd = PrivateContainerd::start().unwrap_or_else(|e| panic!("{e}"));
    let image = containerd
        .import_test_image("default")
        .unwrap_or_else(|e| panic!("{e}\n{}", containerd.log_tail()));
    (containerd, image)
}

struct Running {
    rounds: watch::Receiver<RoundReport>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Summary>,
}

async fn run(w: &World, opts: AgentOptions) -> (Running, watch::Receiver<u64>) {
    let agent = Agent::new(opts, w.async_client()).await.unwrap();
    let rounds = agent.rounds();
    let subscriptions = agent.subscriptions();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    (Running { rounds, stop, task }, subscriptions)
}

/// Polls `done` (after each round, or every 50 ms) until it holds, within [`DEADLINE`].
async fn until(
    what: &str,
    rounds: &mut watch::Receiver<RoundReport>,
    mut done: impl FnMut(&RoundReport) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if done(&rounds.borrow_and_update()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never: {what}; last round {:?}",
            *rounds.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), rounds.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn a_deleted_containers_instance_goes_after_the_delete_event() {
    let (containerd, image) = started();
    containerd
        .create_container("default", "c1", &image)
        .await
        .unwrap();
    containerd
        .create_container("default", "c2", &image)
        .await
        .unwrap();
    let w = World::new();
    w.owned("c1");
    w.owned("c2");
    // An hour between rounds: only the delete event can start the round that removes c1.
    let opts = AgentOptions::new(vec![Box::new(containerd.source())])
        .with_interval(Duration::from_secs(3600));
    let (mut agent, mut subscriptions) = run(&w, opts).await;
    until("the first round", &mut agent.rounds, |r| r.number >= 1).await;
    tokio::time::timeout(DEADLINE, subscriptions.wait_for(|n| *n >= 1))
        .await
        .expect("never subscribed to containerd's events")
        .unwrap();
    assert_eq!(
        w.ids(),
        set(&["c1", "c2"]),
        "a listed container's instance was removed"
    );
    containerd.delete_container("default", "c1").await.unwrap();
    until("c1's instance removed", &mut agent.rounds, |_| {
        w.ids() == set(&["c2"])
    })
    .await;
    assert!(agent.rounds.borrow().number >= 2);
    agent.stop.send(()).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn containerd_stopped_removes_nothing_and_restarted_resumes() {
    let (mut containerd, image) = started();
    containerd
        .create_container("default", "live", &image)
        .await
        .unwrap();
    let w = World::new();
    w.owned("live");
    let name = containerd.source().name();
    let opts = AgentOptions::new(vec![Box::new(containerd.source())])
        .with_interval(Duration::from_millis(200))
        .with_list_timeout(Duration::from_secs(5));
    let (mut agent, _) = run(&w, opts).await;
    until("the first round", &mut agent.rounds, |r| r.number >= 1).await;
    containerd.stop().unwrap();
    // An orphan now: its container never existed. Nothing goes while containerd is down.
    w.owned("orphan");
    let mut failed = 0;
    until("three failed rounds", &mut agent.rounds, |r| {
        if let RoundOutcome::Failed { source, .. } = &r.outcome {
            assert_eq!(source, &name, "the failed round names another source");
            failed += 1;
        }
        failed >= 3
    })
    .await;
    assert_eq!(
        w.ids(),
        set(&["live", "orphan"]),
        "removed while containerd was down"
    );
    assert!(!agent.task.is_finished(), "the agent stopped");
    containerd.restart().unwrap();
    until(
        "the orphan removed after the restart",
        &mut agent.rounds,
        |_| w.ids() == set(&["live"]),
    )
    .await;
    agent.stop.send(()).unwrap();
    let summary = agent.task.await.unwrap();
    assert!(summary.failed_rounds >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a private containerd: scripts/containerd-tests.sh"]
async fn a_foreign_instance_goes_only_after_its_grace() {
    let (containerd, image) = started();
    containerd
        .create_container("default", "hcsshim-live", &image)
        .await
        .unwrap();
    let w = World::new();
    w.foreign("hcsshim-live");
    w.foreign("hcsshim-orphan");
    let grace = Duration::from_secs(2);
    let opts = AgentOptions::new(vec![Box::new(containerd.source())])
        .with_interval(Duration::from_millis(250))
        .with_grace(grace);
    // Before the agent starts: no earlier than its first listing.
    let before = tokio::time::Instant::now();
    let (mut agent, _) = run(&w, opts).await;
    let mut removed_at = None;
    until("the foreign orphan removed", &mut agent.rounds, |r| {
        if let RoundOutcome::Done { removed, .. } = &r.outcome
            && removed.iter().any(|x| x.container_id == "hcsshim-orphan")
        {
            removed_at = Some(r.at);
        }
        removed_at.is_some()
    })
    .await;
    // Removed by a listing at least the grace after the first one that missed it.
    assert!(removed_at.unwrap().duration_since(before) >= grace);
    assert_eq!(
        w.ids(),
        set(&["hcsshim-live"]),
        "a live foreign instance went"
    );
    agent.stop.send(()).unwrap();
    agent.task.await.unwrap();
}
