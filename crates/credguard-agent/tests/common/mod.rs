//! What the agent's tests share: fake live-set sources (a list the test sets, failures,
//! hangs, a watch channel) and an emulator with a journal.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use credguard::journal::Journal;
use credguard::lifecycle::AsyncCcgClient;
use credguard::{CcgClient, Isolation};
use credguard_agent::agent::{RoundOutcome, RoundReport};
use credguard_agent::source::{AliveSource, ListFuture, SourceError, WatchEvent};
use credguard_emulator::Emulator;
use tokio::sync::{mpsc, watch};

/// A credential spec without a plug-in (the library's `tests/fixtures/cs1.json`).
pub const CS1: &str = include_str!("../../../credguard/tests/fixtures/cs1.json");

/// What a fake source answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Ids(BTreeSet<String>),
    Fail(String),
    /// Never answers (the agent's list timeout ends the wait).
    Hang,
}

#[derive(Debug)]
struct FakeState {
    answer: Answer,
    events: Option<mpsc::Receiver<WatchEvent>>,
}

/// A source the test controls. Clones share the state.
#[derive(Debug, Clone)]
pub struct Fake {
    name: String,
    state: Arc<Mutex<FakeState>>,
}

impl Fake {
    pub fn listing(name: &str, ids: &[&str]) -> Self {
        Fake {
            name: name.to_owned(),
            state: Arc::new(Mutex::new(FakeState {
                answer: Answer::Ids(ids.iter().map(|s| (*s).to_owned()).collect()),
                events: None,
            })),
        }
    }

    /// A watch channel: the test sends, the agent receives.
    pub fn with_watch(self) -> (Self, mpsc::Sender<WatchEvent>) {
        let (tx, rx) = mpsc::channel(16);
        self.state.lock().unwrap().events = Some(rx);
        (self, tx)
    }

    pub fn set(&self, answer: Answer) {
        self.state.lock().unwrap().answer = answer;
    }

    pub fn set_ids(&self, ids: &[&str]) {
        self.set(Answer::Ids(ids.iter().map(|s| (*s).to_owned()).collect()));
    }

    pub fn boxed(&self) -> Box<dyn AliveSource> {
        Box::new(self.clone())
    }
}

impl AliveSource for Fake {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn list(&self) -> ListFuture<'_> {
        let answer = self.state.lock().unwrap().answer.clone();
        let name = self.name.clone();
        Box::pin(async move {
            match answer {
                Answer::Ids(ids) => Ok(ids),
                Answer::Fail(reason) => Err(SourceError {
                    source_name: name,
                    reason,
                }),
                Answer::Hang => std::future::pending().await,
            }
        })
    }

    fn watch(&self) -> Option<mpsc::Receiver<WatchEvent>> {
        self.state.lock().unwrap().events.take()
    }
}

/// An in-memory emulator, a journal in a temporary directory, and clients on them.
pub struct World {
    pub emu: Arc<Emulator>,
    pub client: CcgClient,
    _tmp: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let emu = Arc::new(Emulator::in_memory());
        let journal = Arc::new(Journal::open(&tmp.path().join("journal")).unwrap());
        let client = CcgClient::new(emu.clone()).with_journal(journal);
        World {
            emu,
            client,
            _tmp: tmp,
        }
    }

    pub fn async_client(&self) -> AsyncCcgClient {
        AsyncCcgClient::new(self.client.clone())
    }

    /// An instance credguard made (recorded `active` in the journal).
    pub fn owned(&self, id: &str) {
        let (_, r) = self.client.create(id, CS1, Isolation::Process).unwrap();
        r.detach();
    }

    /// An instance another creator made (the journal does not know it).
    pub fn foreign(&self, id: &str) {
        let (_, r) = CcgClient::new(self.emu.clone())
            .create(id, CS1, Isolation::Process)
            .unwrap();
        r.detach();
    }

    /// The ids HCS lists, sorted.
    pub fn ids(&self) -> BTreeSet<String> {
        self.emu
            .instances()
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect()
    }
}

pub fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// Waits for the round numbered `n` to end; returns its report. Rounds are counted by the
/// agent, so none is missed even if several end between two looks.
pub async fn round(rounds: &mut watch::Receiver<RoundReport>, n: u64) -> RoundReport {
    loop {
        {
            let report = rounds.borrow_and_update();
            assert!(
                report.number <= n,
                "round {n} was passed (now {})",
                report.number
            );
            if report.number == n {
                return report.clone();
            }
        }
        rounds.changed().await.expect("the agent stopped");
    }
}

/// The container ids a finished round removed.
pub fn removed(report: &RoundReport) -> BTreeSet<String> {
    match &report.outcome {
        RoundOutcome::Done { removed, .. } => {
            removed.iter().map(|r| r.container_id.clone()).collect()
        }
        other => panic!("round {} did not finish: {other:?}", report.number),
    }
}
