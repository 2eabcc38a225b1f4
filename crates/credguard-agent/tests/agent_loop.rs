//! The agent's loop on the emulator with fake sources, on tokio's paused clock where time
//! matters (rounds, grace): what it removes and when, what a failing source does, deletion
//! events, shutdown.

mod common;

use std::time::Duration;

use common::{Answer, Fake, World, removed, round, set};
use credguard::lifecycle::reconcile::Action;
use credguard_agent::agent::{Agent, AgentOptions, RoundOutcome};
use credguard_agent::source::WatchEvent;
use credguard_emulator::{Api, Fault, FaultAction};
use tokio::sync::oneshot;

fn options(sources: &[&Fake]) -> AgentOptions {
    AgentOptions::new(sources.iter().map(|s| s.boxed()).collect())
}

/// Starts the agent; returns its rounds, its shutdown trigger and its task.
async fn start(
    w: &World,
    opts: AgentOptions,
) -> (
    tokio::sync::watch::Receiver<credguard_agent::agent::RoundReport>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<credguard_agent::agent::Summary>,
) {
    let agent = Agent::new(opts, w.async_client()).await.unwrap();
    let rounds = agent.rounds();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    (rounds, stop, task)
}

#[tokio::test(start_paused = true)]
async fn credguards_orphan_is_removed_and_a_live_container_kept() {
    let w = World::new();
    w.owned("live");
    w.owned("orphan");
    let source = Fake::listing("fake", &["live", "unrelated"]);
    let (mut rounds, stop, task) = start(&w, options(&[&source])).await;
    let first = round(&mut rounds, 1).await;
    assert_eq!(removed(&first), set(&["orphan"]));
    match &first.outcome {
        RoundOutcome::Done { removed, .. } => {
            assert_eq!(removed[0].action, Action::RemoveNotAlive);
            assert_eq!(removed[0].owner, "credguard");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.ids(), set(&["live"]));
    stop.send(()).unwrap();
    let summary = task.await.unwrap();
    assert_eq!(summary.removed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_source_removes_nothing_and_the_agent_resumes() {
    let w = World::new();
    w.owned("orphan");
    w.foreign("stranger");
    let good = Fake::listing("good", &["live"]);
    let bad = Fake::listing("bad", &[]);
    bad.set(Answer::Fail("connection refused".to_owned()));
    let opts = options(&[&good, &bad]).with_grace(Duration::ZERO);
    let agent = Agent::new(opts, w.async_client()).await.unwrap();
    let metrics = agent.metrics();
    let mut rounds = agent.rounds();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    for n in 1..=3 {
        let report = round(&mut rounds, n).await;
        assert_eq!(
            report.outcome,
            RoundOutcome::Failed {
                source: "bad".to_owned(),
                reason: "connection refused".to_owned()
            }
        );
        assert_eq!(
            w.ids(),
            set(&["orphan", "stranger"]),
            "round {n} removed something"
        );
    }
    assert!(
        metrics
            .render()
            .contains("credguard_agent_failed_rounds_total{source=\"bad\"} 3"),
        "{}",
        metrics.render()
    );
    // The runtime is back: the next round removes the orphans.
    bad.set_ids(&[]);
    let report = round(&mut rounds, 4).await;
    assert_eq!(removed(&report), set(&["orphan", "stranger"]));
    assert!(w.ids().is_empty());
    stop.send(()).unwrap();
    let summary = task.await.unwrap();
    assert_eq!((summary.rounds, summary.failed_rounds), (4, 3));
}

#[tokio::test(start_paused = true)]
async fn a_source_that_does_not_answer_fails_the_round() {
    let w = World::new();
    w.owned("orphan");
    let hung = Fake::listing("hung", &[]);
    hung.set(Answer::Hang);
    let (mut rounds, stop, task) = start(&w, options(&[&hung])).await;
    let report = round(&mut rounds, 1).await;
    match report.outcome {
        RoundOutcome::Failed { source, reason } => {
            assert_eq!(source, "hung");
            assert!(reason.contains("no answer within 10 s"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.ids(), set(&["orphan"]));
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// Grace 2 min, interval 30 s: a foreign instance missing from the start survives every
/// round less than the grace after its first miss and goes in the first one at or after it.
#[tokio::test(start_paused = true)]
async fn a_foreign_instance_goes_only_after_two_misses_the_grace_apart() {
    let w = World::new();
    w.foreign("hcsshim-made");
    w.owned("orphan");
    let source = Fake::listing("fake", &["live"]);
    let grace = Duration::from_secs(120);
    let opts = options(&[&source])
        .with_interval(Duration::from_secs(30))
        .with_grace(grace);
    let (mut rounds, stop, task) = start(&w, opts).await;
    let first = round(&mut rounds, 1).await;
    // credguard's own orphan follows the journal's rules: removed at once.
    assert_eq!(removed(&first), set(&["orphan"]));
    let mut n = 1;
    loop {
        n += 1;
        let report = round(&mut rounds, n).await;
        let since = report.at.duration_since(first.at);
        if since < grace {
            assert!(removed(&report).is_empty(), "round {n} at +{since:?}");
            assert_eq!(w.ids(), set(&["hcsshim-made"]));
        } else {
            assert_eq!(
                removed(&report),
                set(&["hcsshim-made"]),
                "round {n} at +{since:?}"
            );
            assert!(w.ids().is_empty());
            break;
        }
        assert!(n < 10, "never removed");
    }
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_foreign_instance_seen_alive_again_starts_its_grace_over() {
    let w = World::new();
    w.foreign("f");
    let source = Fake::listing("fake", &["other"]);
    let grace = Duration::from_secs(120);
    let opts = options(&[&source])
        .with_interval(Duration::from_secs(30))
        .with_grace(grace);
    let (mut rounds, stop, task) = start(&w, opts).await;
    round(&mut rounds, 1).await; // first miss at +0
    round(&mut rounds, 2).await; // +30
    source.set_ids(&["f"]);
    round(&mut rounds, 3).await; // +60: alive again
    source.set_ids(&["other"]);
    let restart = round(&mut rounds, 4).await; // +90: first miss again
    for n in 5..=7 {
        // +120 .. +180: past the first miss's grace, but not the second's.
        let report = round(&mut rounds, n).await;
        assert!(report.at.duration_since(restart.at) < grace);
        assert!(removed(&report).is_empty(), "round {n}");
    }
    let report = round(&mut rounds, 8).await; // +210 = restart + 120
    assert_eq!(removed(&report), set(&["f"]));
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// A deletion event starts a round at once: with an interval of an hour, the round after the
/// event ends at the same (paused) instant, not an hour later.
#[tokio::test(start_paused = true)]
async fn a_deletion_event_starts_a_round_at_once() {
    let w = World::new();
    w.owned("c1");
    w.owned("c2");
    let (source, events) = Fake::listing("fake", &["c1", "c2"]).with_watch();
    let opts = options(&[&source]).with_interval(Duration::from_secs(3600));
    let agent = Agent::new(opts, w.async_client()).await.unwrap();
    let mut rounds = agent.rounds();
    let mut subscriptions = agent.subscriptions();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    let first = round(&mut rounds, 1).await;
    assert!(removed(&first).is_empty());
    events.send(WatchEvent::Subscribed).await.unwrap();
    subscriptions.wait_for(|n| *n == 1).await.unwrap();
    source.set_ids(&["c2"]);
    events
        .send(WatchEvent::Deleted {
            id: "c1".to_owned(),
        })
        .await
        .unwrap();
    let second = round(&mut rounds, 2).await;
    assert_eq!(removed(&second), set(&["c1"]));
    assert!(
        second.at.duration_since(first.at) < Duration::from_secs(3600),
        "the round waited for the interval"
    );
    assert_eq!(w.ids(), set(&["c2"]));
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// An instance created while a round runs (after its snapshot, before the live set could show
/// its container) is not removed by that round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_created_during_a_round_is_left_for_the_next() {
    let w = World::new();
    let source = Fake::listing("fake", &["other"]);
    // The round's snapshot query passes; the next one (reconcile's plan, after the live set
    // was listed) is held until the test has created the instance.
    w.emu
        .inject(
            Fault::new(Api::GetServiceProperties, FaultAction::None)
                .skip(1)
                .delay_ms(60_000),
        )
        .unwrap();
    let opts = options(&[&source]).with_interval(Duration::from_secs(3600));
    let (mut rounds, stop, task) = start(&w, opts).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !w.emu.faults().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the round never reached its reconcile"
        );
        tokio::task::yield_now().await;
    }
    // Made by credguard after the live set was listed: its container is not in it.
    w.owned("new");
    w.emu.end_delays().unwrap();
    let report = round(&mut rounds, 1).await;
    assert!(removed(&report).is_empty(), "{report:?}");
    assert_eq!(w.ids(), set(&["new"]));
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// Shutdown during a round: the round finishes (its HCS call is held until the test lets it
/// go), nothing new starts, and `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_round_in_progress_finish() {
    let w = World::new();
    w.owned("orphan");
    let source = Fake::listing("fake", &["live"]);
    w.emu
        .inject(
            Fault::new(Api::ModifyServiceSettings, FaultAction::None)
                .on("RemoveInstance")
                .delay_ms(60_000),
        )
        .unwrap();
    let opts = options(&[&source]).with_interval(Duration::from_secs(3600));
    let (_rounds, stop, task) = start(&w, opts).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !w.emu.faults().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the round never reached RemoveInstance"
        );
        tokio::task::yield_now().await;
    }
    stop.send(()).unwrap();
    w.emu.end_delays().unwrap();
    let summary = task.await.unwrap();
    assert_eq!((summary.rounds, summary.removed), (1, 1));
    assert!(w.ids().is_empty());
}

#[tokio::test]
async fn options_are_checked() {
    let w = World::new();
    let err = Agent::new(AgentOptions::new(Vec::new()), w.async_client())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no live-set source"), "{err}");
    let source = Fake::listing("fake", &[]);
    let err = Agent::new(
        options(&[&source]).with_interval(Duration::ZERO),
        w.async_client(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "the interval must be more than zero");
}
