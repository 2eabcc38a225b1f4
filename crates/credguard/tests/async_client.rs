//! The async client (`AsyncCcgClient`, feature `tokio`) on the emulator: its futures do
//! what the synchronous calls do, and a future dropped mid-operation does not abandon it (the
//! instance ends up rolled back, or active and recorded: never unrecorded).

mod common;

use std::time::{Duration, Instant};

use common::{CS1, World};
use credguard::ReconcileOptions;
use credguard::journal::RecordState;
use credguard::lifecycle::AsyncCcgClient;
use credguard::lifecycle::reconcile::Action;
use credguard::{CcgError, Isolation};
use credguard_emulator::{Api, Fault, FaultAction};

/// Polls `done` (yielding to the runtime) until it holds; the deadline only bounds a hang.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::task::yield_now().await;
        std::thread::yield_now();
    }
}

#[tokio::test]
async fn create_release_and_reconcile_as_futures() {
    let w = World::new();
    let client = AsyncCcgClient::new(w.client.clone());
    let (instance, resource) = client
        .create("c1", CS1, Isolation::Process, None)
        .await
        .unwrap();
    assert_eq!(instance.id, "c1");
    assert_eq!(w.records(), [("c1".to_owned(), RecordState::Active)]);
    assert_eq!(client.list().await.unwrap().len(), 1);

    let (resource, result) = client.release(resource).await;
    result.unwrap();
    assert!(resource.is_released());
    assert!(w.ids().is_empty());
    assert!(w.records().is_empty());

    // Reconcile and its plan: a second instance, not alive, goes.
    let (_, resource) = client
        .create("c2", CS1, Isolation::Process, None)
        .await
        .unwrap();
    let _ = resource.detach();
    let opts = ReconcileOptions::with_alive(["other"]).unwrap();
    let plan = client.plan_reconcile(opts.clone()).await.unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].action, Action::RemoveNotAlive);
    let done = client.reconcile(opts).await.unwrap();
    assert!(done[0].result.is_ok());
    assert!(w.ids().is_empty());
}

#[tokio::test]
async fn errors_come_back_as_the_sync_core_gives_them() {
    let w = World::new();
    let client = AsyncCcgClient::new(w.client.clone());
    let (_, resource) = client
        .create("dup", CS1, Isolation::Process, None)
        .await
        .unwrap();
    let err = client
        .create("dup", CS1, Isolation::Process, None)
        .await
        .unwrap_err();
    assert!(matches!(err, CcgError::AlreadyExists { .. }), "{err:?}");
    let err = client
        .create(" bad", CS1, Isolation::Process, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CcgError::InvalidContainerId { .. }),
        "{err:?}"
    );
    let (_, result) = client.release(resource).await;
    result.unwrap();
}

/// The create is held inside AddInstance; its future is dropped there; then HCS answers. The
/// create completes in the background and, its caller gone, releases its instance again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_dropped_mid_call_completes_and_is_rolled_back() {
    let w = World::new();
    let client = AsyncCcgClient::new(w.client.clone());
    // Held until `end_delays` (60 s only bounds a hang).
    w.emu
        .inject(
            Fault::new(Api::ModifyServiceSettings, FaultAction::None)
                .on("AddInstance")
                .delay_ms(60_000),
        )
        .unwrap();
    let task = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .create("dropped", CS1, Isolation::Process, None)
                .await
        })
    };
    until("the AddInstance call took its delay", || {
        w.emu.faults().unwrap().is_empty()
    })
    .await;
    // The create is under way: its record is there.
    assert_eq!(w.records(), [("dropped".to_owned(), RecordState::Creating)]);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    w.emu.end_delays().unwrap();
    until("the abandoned create rolled back", || {
        w.ids().is_empty() && w.records().is_empty()
    })
    .await;
    // AddInstance went out and a RemoveInstance followed: the create was not cut short.
    let calls: Vec<String> = w
        .emu
        .calls()
        .unwrap()
        .iter()
        .map(|c| c.to_json(false).to_string())
        .collect();
    assert!(calls.iter().any(|c| c.contains("AddInstance")), "{calls:?}");
    assert!(
        calls.iter().any(|c| c.contains("RemoveInstance")),
        "{calls:?}"
    );
}

/// A create whose future is dropped during its delay is still seen by a reconciliation started
/// meanwhile as in progress (its lock), never as foreign or interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_create_in_progress_is_skipped_by_reconcile() {
    let w = World::new();
    let client = AsyncCcgClient::new(w.client.clone());
    w.emu
        .inject(
            Fault::new(Api::GetServiceProperties, FaultAction::None)
                .skip(1)
                .delay_ms(60_000),
        )
        .unwrap();
    let task = {
        let client = client.clone();
        tokio::spawn(async move { client.create("held", CS1, Isolation::Process, None).await })
    };
    until("the query after AddInstance took its delay", || {
        w.emu.faults().unwrap().is_empty()
    })
    .await;
    task.abort();
    let _ = task.await;
    // HCS lists the instance now; its create holds the record's lock.
    let plan = client
        .plan_reconcile(ReconcileOptions::alive_none().include_foreign(true))
        .await
        .unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].action, Action::SkipInProgress);
    w.emu.end_delays().unwrap();
    until("the abandoned create rolled back", || {
        w.ids().is_empty() && w.records().is_empty()
    })
    .await;
}

/// A release whose future is dropped during RemoveInstance completes in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_dropped_mid_call_completes() {
    let w = World::new();
    let client = AsyncCcgClient::new(w.client.clone());
    let (_, resource) = client
        .create("r1", CS1, Isolation::Process, None)
        .await
        .unwrap();
    w.emu
        .inject(
            Fault::new(Api::ModifyServiceSettings, FaultAction::None)
                .on("RemoveInstance")
                .delay_ms(60_000),
        )
        .unwrap();
    let task = {
        let client = client.clone();
        tokio::spawn(async move { client.release(resource).await })
    };
    until("the RemoveInstance call took its delay", || {
        w.emu.faults().unwrap().is_empty()
    })
    .await;
    task.abort();
    let _ = task.await;
    w.emu.end_delays().unwrap();
    until("the abandoned release finished", || {
        w.ids().is_empty() && w.records().is_empty()
    })
    .await;
}
