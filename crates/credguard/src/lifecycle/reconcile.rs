//! Reconciliation: finish what a crash interrupted, and remove what nobody owns any more.
//!
//! The plan compares the journal with what HCS lists:
//! - a record left in `creating` or `releasing` whose lock is free was interrupted by a
//!   crash, or left so by a rollback or release whose RemoveInstance failed (the record says
//!   which, [`Record::failed`]): its instance (and HvSocket entry) is removed if HCS still lists it, then the
//!   record is dropped; one whose lock is held belongs to a live process and is skipped;
//! - an `active` record whose instance HCS no longer lists (a vmcompute.exe restart) is
//!   dropped, with its HvSocket entry;
//! - with an alive set (the containers really running), an `active` instance not in it is
//!   removed as well;
//! - an instance the journal does not know is *foreign*: reported, and removed only with
//!   `include_foreign` (and then only when not in the alive set).
//!
//! Running it again finds nothing left to do; it is safe at start-up of a runtime.
//!
//! Reconciliation acts on fresh facts: HCS is listed before the journal is read (so a
//! record written by a create that started meanwhile is seen), and each change is decided
//! again just before it is made, under the record's lock, from the record re-read and HCS
//! queried again. A record whose lock a live process holds is skipped, also when that
//! process started after the plan was made, so an instance being created is never removed
//! as foreign or as interrupted.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use tracing::{info, warn};

use crate::journal::{Journal, JournalError, Record, RecordLock, RecordState};
use crate::lifecycle::{
    CcgClient, CcgError, Step, release, remove_confirmed, remove_hvsocket_entry,
    validate_container_id,
};
use crate::text::{ShownId, chain_line};
use crate::wire::ContainerCredentialGuardInstance;

/// What reconciliation considers. Built with [`ReconcileOptions::default`] (liveness
/// unknown: active instances are kept), [`ReconcileOptions::with_alive`] (a non-empty set of
/// valid container ids) or [`ReconcileOptions::alive_none`] (no container is running: every
/// active instance goes), so that an empty or mistyped alive set can never remove every
/// instance by accident.
#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    alive: Option<BTreeSet<String>>,
    include_foreign: bool,
    within: Option<BTreeSet<String>>,
}

impl ReconcileOptions {
    /// Liveness unknown: active instances are kept.
    #[must_use]
    pub fn new() -> Self {
        ReconcileOptions::default()
    }

    /// The containers that are really running; active instances of others are removed.
    ///
    /// # Errors
    /// [`CcgError::InvalidAliveSet`] when the set is empty (use
    /// [`ReconcileOptions::alive_none`] to mean that) or an id is one that
    /// [`crate::CcgClient::create`] would refuse (empty, control or format characters,
    /// leading or trailing white space, too long); the error names the id.
    pub fn with_alive<I, S>(ids: I) -> Result<Self, CcgError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut alive = BTreeSet::new();
        for id in ids {
            let id = id.into();
            if let Err(e) = validate_container_id(&id) {
                let reason = match e {
                    CcgError::InvalidContainerId { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(invalid_alive(format!(
                    "`{}` is not a container id: {reason}",
                    ShownId::new(&id)
                )));
            }
            alive.insert(id);
        }
        if alive.is_empty() {
            return Err(invalid_alive(
                "it is empty, which would remove every active instance; give the running containers, or say that none runs (ReconcileOptions::alive_none)".to_owned(),
            ));
        }
        Ok(ReconcileOptions {
            alive: Some(alive),
            ..ReconcileOptions::default()
        })
    }

    /// No container is running: every active instance is removed.
    #[must_use]
    pub fn alive_none() -> Self {
        ReconcileOptions {
            alive: Some(BTreeSet::new()),
            ..ReconcileOptions::default()
        }
    }

    /// Also remove instances the journal does not know (foreign ones), unless they are in
    /// the alive set.
    #[must_use]
    pub fn include_foreign(mut self, include: bool) -> Self {
        self.include_foreign = include;
        self
    }

    /// Changes nothing for an id outside `ids` (it is kept, and considered next time). A
    /// caller that lists the running containers itself passes the ids a plan made *before*
    /// that listing saw: an instance created after the listing (whose container the listing
    /// could not show yet) is then never removed as not alive.
    #[must_use]
    pub fn within<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.within = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// The containers that are running, if known (empty: none is).
    #[must_use]
    pub fn alive(&self) -> Option<&BTreeSet<String>> {
        self.alive.as_ref()
    }

    /// Whether foreign instances are removed.
    #[must_use]
    pub fn includes_foreign(&self) -> bool {
        self.include_foreign
    }

    fn is_alive(&self, id: &str) -> bool {
        self.alive.as_ref().is_none_or(|a| a.contains(id))
    }
}

/// The container ids of an alive list as text: one id per line, `#` starts a comment,
/// white space around an id and blank lines are ignored. An empty result is not an error
/// here ([`ReconcileOptions::with_alive`] refuses an empty set).
///
/// # Errors
/// [`CcgError::InvalidAliveSet`] naming the first line (counted from 1) whose id
/// [`crate::CcgClient::create`] would refuse, and why.
pub fn parse_alive_list(text: &str) -> Result<Vec<String>, CcgError> {
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        if let Err(CcgError::InvalidContainerId { reason, .. }) = validate_container_id(id) {
            return Err(invalid_alive(format!(
                "line {}: `{}` is not a container id: {reason}",
                n + 1,
                ShownId::new(id)
            )));
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

fn invalid_alive(reason: String) -> CcgError {
    CcgError::InvalidAliveSet {
        container_id: ShownId::new("*"),
        reason,
    }
}

/// What reconciliation does with one instance or record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing: an active instance that is alive (or liveness is unknown).
    Keep,
    /// Nothing: a process is creating or releasing it right now.
    SkipInProgress,
    /// Nothing: an instance the journal does not know, left alone.
    KeepForeign,
    /// Remove the instance (and HvSocket entry) of an interrupted create or release.
    RemoveInterrupted,
    /// Remove an active instance whose container is not alive.
    RemoveNotAlive,
    /// Drop a record whose instance HCS no longer lists (and its HvSocket entry).
    DropStaleRecord,
    /// Remove an instance the journal does not know (`include_foreign`).
    RemoveForeign,
}

impl Action {
    /// Whether the action changes anything.
    #[must_use]
    pub fn is_change(self) -> bool {
        !matches!(
            self,
            Action::Keep | Action::SkipInProgress | Action::KeepForeign
        )
    }

    /// The action as shown (`remove_interrupted`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::SkipInProgress => "skip_in_progress",
            Action::KeepForeign => "keep_foreign",
            Action::RemoveInterrupted => "remove_interrupted",
            Action::RemoveNotAlive => "remove_not_alive",
            Action::DropStaleRecord => "drop_stale_record",
            Action::RemoveForeign => "remove_foreign",
        }
    }
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PlanItem {
    /// The container id.
    pub container_id: String,
    /// Whether HCS lists an instance for it.
    pub listed: bool,
    /// Whether the journal owns it (`false` for an instance another creator made, even when
    /// a record of a refused or interrupted AddInstance names its id).
    pub owned: bool,
    /// The journal record's state, if any.
    pub state: Option<RecordState>,
    /// How old the record is, in milliseconds.
    pub age_ms: Option<u64>,
    /// The utility VM of its HvSocket entry, if the journal knows one.
    pub utility_vm: Option<String>,
    /// The ServiceId of the HvSocket entry the journal keeps (hot-added, or left behind by a
    /// removal the utility VM refused), if any.
    pub service_id: Option<String>,
    /// What reconciliation does.
    pub action: Action,
    /// Why, in words.
    pub reason: String,
    #[serde(skip)]
    record: Option<Record>,
}

/// What happened to one plan item.
#[derive(Debug)]
pub struct Done {
    /// The item.
    pub item: PlanItem,
    /// `Ok` when the action (if any) succeeded.
    pub result: Result<(), CcgError>,
}

/// What to do with one id, from its record (if any), the instance HCS lists for it (if
/// any) and whether a live process holds its lock: the one place the rules are written.
fn decide(
    id: &str,
    record: Option<&Record>,
    instance: Option<&ContainerCredentialGuardInstance>,
    busy: bool,
    opts: &ReconcileOptions,
) -> (Action, String) {
    let listed = instance.is_some();
    if opts.within.as_ref().is_some_and(|w| !w.contains(id)) {
        return (
            Action::Keep,
            "not seen before the alive set was listed; considered next time".to_owned(),
        );
    }
    let Some(record) = record else {
        let alive = opts.alive.is_some() && opts.is_alive(id);
        return match (busy, listed, opts.include_foreign) {
            (true, _, _) => (
                Action::SkipInProgress,
                "a live process is creating or releasing it".to_owned(),
            ),
            (false, false, _) => (Action::Keep, "HCS no longer lists it".to_owned()),
            (false, true, true) if !alive => (
                Action::RemoveForeign,
                "the journal does not know it (--include-foreign)".to_owned(),
            ),
            (false, true, true) => (
                Action::KeepForeign,
                "the journal does not know it, but its container is alive".to_owned(),
            ),
            (false, true, false) => (
                Action::KeepForeign,
                "the journal does not know it; left alone".to_owned(),
            ),
        };
    };
    match (record.state, listed) {
        _ if busy => (
            Action::SkipInProgress,
            "a live process is creating or releasing it".to_owned(),
        ),
        _ if record.add_refused => (
            Action::DropStaleRecord,
            "AddInstance was refused: the instance belongs to another creator; only the record is dropped".to_owned(),
        ),
        // A crash between HCS's "already exists" refusal and the `add_refused` mark leaves
        // a plain `creating` record: the instance listed is another creator's when it
        // provably is not the one this record asked for.
        (RecordState::Creating, true)
            if instance.is_some_and(|i| record.proves_not_ours(i)) =>
        {
            (
                Action::DropStaleRecord,
                "a crash interrupted its create, and the instance HCS lists is not the one it asked for (another transport or credential spec): it belongs to another creator; only the record is dropped".to_owned(),
            )
        }
        (state, true) if state.is_transient() => (
            Action::RemoveInterrupted,
            left_by(record, state),
        ),
        (state, false) if state.is_transient() && record.hvsocket_entry().is_some() => (
            Action::DropStaleRecord,
            format!(
                "HCS does not list the instance; the HvSocket entry the record ({}) keeps (left by a removal the utility VM refused, or by a crash){}",
                state.as_str(),
                record.hvsocket_entry().map_or_else(String::new, |(vm, sid)| format!(
                    ", `{sid}` in utility VM `{vm}`, is removed first"
                ))
            ),
        ),
        (state, false) if state.is_transient() => (
            Action::DropStaleRecord,
            format!(
                "{}; HCS does not list the instance",
                left_by(record, state)
            ),
        ),
        (_, false) => (
            Action::DropStaleRecord,
            format!(
                "HCS no longer lists the instance (vmcompute.exe restarted?){}",
                entry_note(record)
            ),
        ),
        (_, true) if !opts.is_alive(id) => (
            Action::RemoveNotAlive,
            "its container is not in the alive set".to_owned(),
        ),
        (_, true) => (Action::Keep, "active".to_owned()),
    }
}

/// What left a record `creating` or `releasing`: a failure its process saw and noted (a
/// failed rollback or release: nothing crashed), or, without such a note, a crash.
fn left_by(record: &Record, state: RecordState) -> String {
    match record.failed {
        Some(failed) => format!(
            "a failed {} left it {} (its RemoveInstance failed; nothing crashed)",
            failed.as_str(),
            state.as_str()
        ),
        None => format!("a crash interrupted it while {}", state.as_str()),
    }
}

fn entry_note(record: &Record) -> String {
    record
        .hvsocket_entry()
        .map_or_else(String::new, |(vm, sid)| {
            format!("; its HvSocket entry `{sid}` in utility VM `{vm}` is removed first")
        })
}

fn item(
    id: String,
    record: Option<Record>,
    listed: bool,
    (action, reason): (Action, String),
) -> PlanItem {
    PlanItem {
        container_id: id,
        listed,
        // A listed instance whose record is only dropped belongs to another creator (a
        // refused AddInstance, or one that provably is not the record's).
        owned: record.is_some() && !(listed && action == Action::DropStaleRecord),
        state: record.as_ref().map(|r| r.state),
        age_ms: record.as_ref().map(Record::age_ms),
        utility_vm: record.as_ref().and_then(|r| r.utility_vm.clone()),
        service_id: record
            .as_ref()
            .and_then(|r| r.hvsocket_entry().map(|(_, sid)| sid.to_owned())),
        action,
        reason,
        record,
    }
}

fn journal_err(id: &str, e: JournalError) -> CcgError {
    CcgError::Journal {
        container_id: ShownId::new(id),
        source: e,
    }
}

impl CcgClient {
    /// What [`CcgClient::reconcile`] would do, changing nothing. HCS is listed first, then
    /// the journal is read.
    ///
    /// # Errors
    /// The journal cannot be listed or HCS cannot be queried.
    pub fn plan_reconcile(&self, opts: &ReconcileOptions) -> Result<Vec<PlanItem>, CcgError> {
        let instances = self.list()?;
        let records = match self.journal() {
            Some(j) => j.records().map_err(|e| journal_err("*", e))?,
            None => Vec::new(),
        };
        let listed: HashMap<&str, &ContainerCredentialGuardInstance> =
            instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut plan = Vec::new();
        for record in records {
            let id = record.container_id.clone();
            let instance = listed.get(id.as_str()).copied();
            let busy = match self.journal() {
                Some(j) => j.in_progress(&id).map_err(|e| journal_err(&id, e))?,
                None => false,
            };
            let decision = decide(&id, Some(&record), instance, busy, opts);
            plan.push(item(id, Some(record), instance.is_some(), decision));
        }
        let owned: BTreeSet<String> = plan.iter().map(|p| p.container_id.clone()).collect();
        for inst in instances.iter().filter(|i| !owned.contains(&i.id)) {
            let decision = decide(&inst.id, None, Some(inst), false, opts);
            plan.push(item(inst.id.clone(), None, true, decision));
        }
        Ok(plan)
    }

    /// Carries out the plan. Each change is decided again just before it is made, under the
    /// record's lock, from the record re-read and HCS queried again; the [`Done`] item shows
    /// that fresh decision. Each item's failure is reported in its [`Done`] and does not
    /// stop the others.
    ///
    /// # Errors
    /// The plan cannot be made (journal or HCS query failure).
    pub fn reconcile(&self, opts: &ReconcileOptions) -> Result<Vec<Done>, CcgError> {
        let plan = self.plan_reconcile(opts)?;
        let mut done = Vec::with_capacity(plan.len());
        for planned in plan {
            let (item, result) = if planned.action.is_change() {
                self.act_on_fresh_facts(planned, opts)
            } else {
                (planned, Ok(()))
            };
            match &result {
                Ok(()) if item.action.is_change() => {
                    info!(container_id = %item.container_id, action = item.action.as_str(), "reconciled");
                }
                Err(e) => {
                    warn!(container_id = %item.container_id, action = item.action.as_str(), error = %chain_line(e), "reconcile step failed");
                }
                Ok(()) => {}
            }
            done.push(Done { item, result });
        }
        // Lock files a crash left behind (the records' own went with their locks above).
        if let Some(j) = self.journal()
            && let Err(e) = j.remove_orphaned_lock_files()
        {
            warn!(error = %chain_line(&e), "could not remove orphaned lock files");
        }
        Ok(done)
    }

    /// Takes the record's lock (a busy one means a live process: skipped), re-reads the
    /// record, queries HCS again, decides again and acts.
    fn act_on_fresh_facts(
        &self,
        planned: PlanItem,
        opts: &ReconcileOptions,
    ) -> (PlanItem, Result<(), CcgError>) {
        let id = planned.container_id.clone();
        let lock = match self.journal().map(|j| j.lock(&id, false)) {
            None => None,
            Some(Ok(lock)) => Some(lock),
            Some(Err(JournalError::Busy { .. })) => {
                let busy = (
                    Action::SkipInProgress,
                    "a live process took it over since the plan was made".to_owned(),
                );
                let fresh = item(id, planned.record, planned.listed, busy);
                return (fresh, Ok(()));
            }
            Some(Err(e)) => return (planned, Err(journal_err(&id, e))),
        };
        let record = match self.journal().map(|j| j.get(&id)) {
            None => None,
            Some(Ok(record)) => record,
            Some(Err(e)) => return (planned, Err(journal_err(&id, e))),
        };
        let instance = match self.lookup(&id) {
            Ok(found) => found,
            Err(e) => return (planned, Err(e.at(&id, Step::List))),
        };
        let decision = decide(&id, record.as_ref(), instance.as_ref(), false, opts);
        let fresh = item(id, record, instance.is_some(), decision);
        let result = self.carry_out(&fresh, lock);
        (fresh, result)
    }

    fn carry_out(&self, item: &PlanItem, lock: Option<RecordLock>) -> Result<(), CcgError> {
        let id = item.container_id.as_str();
        let _calls = crate::hcs::watchdog::calls_for(id);
        let hcs = self.backend().as_ref();
        let journal: Option<&Journal> = self.journal().map(AsRef::as_ref);
        // A lock file taken for an id without a record is not left behind.
        let no_record = item.record.is_none();
        let result = match item.action {
            Action::RemoveForeign => remove_confirmed(hcs, id).map(|_| ()),
            Action::RemoveInterrupted | Action::RemoveNotAlive => {
                let entry = item
                    .record
                    .as_ref()
                    .and_then(Record::hvsocket_entry)
                    .map(|(vm, sid)| (vm.to_owned(), sid.to_owned()));
                return release(hcs, journal, id, entry.as_ref(), lock).map(|_| ());
            }
            Action::DropStaleRecord => {
                let Some(j) = journal else { return Ok(()) };
                if let Some((vm, sid)) = item.record.as_ref().and_then(Record::hvsocket_entry) {
                    remove_hvsocket_entry(hcs, id, vm, sid)?;
                }
                j.delete(id).map_err(|e| journal_err(id, e))?;
                if let Some(lock) = lock {
                    lock.remove_file();
                }
                return Ok(());
            }
            Action::Keep | Action::SkipInProgress | Action::KeepForeign => Ok(()),
        };
        if no_record && let Some(lock) = lock {
            lock.remove_file();
        }
        result
    }
}
