//! Reconciliation: finish what a crash interrupted, and remove what nobody owns any more.
//!
//! The plan compares the journal with what HCS lists:
//! - a record left in `creating` or `releasing` whose lock is free was interrupted by a
//!   crash: its instance (and HvSocket entry) is removed if HCS still lists it, then the
//!   record is dropped; one whose lock is held belongs to a live process and is skipped;
//! - an `active` record whose instance HCS no longer lists (a vmcompute.exe restart) is
//!   dropped, with its HvSocket entry;
//! - with an alive set (the containers really running), an `active` instance not in it is
//!   removed as well;
//! - an instance the journal does not know is *foreign*: reported, and removed only with
//!   `include_foreign` (and then only when not in the alive set).
//!
//! Running it again finds nothing left to do; it is safe at start-up of a runtime.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use tracing::{info, warn};

use crate::error::{CcgError, ShownId, chain_line};
use crate::journal::{Journal, Record, RecordState};
use crate::lifecycle::{CcgClient, release, remove_confirmed, remove_hvsocket_entry};

/// What reconciliation considers.
#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    /// The containers that are really running; `None` when not known (then active
    /// instances are kept).
    pub alive: Option<BTreeSet<String>>,
    /// Also remove instances the journal does not know.
    pub include_foreign: bool,
}

/// What reconciliation does with one instance or record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
pub struct PlanItem {
    /// The container id.
    pub container_id: String,
    /// Whether HCS lists an instance for it.
    pub listed: bool,
    /// Whether the journal owns it.
    pub owned: bool,
    /// The journal record's state, if any.
    pub state: Option<RecordState>,
    /// How old the record is, in milliseconds.
    pub age_ms: Option<u64>,
    /// The utility VM of its HvSocket entry, if the journal knows one.
    pub utility_vm: Option<String>,
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

impl CcgClient {
    /// What [`CcgClient::reconcile`] would do, changing nothing.
    ///
    /// # Errors
    /// The journal cannot be listed or HCS cannot be queried.
    pub fn plan_reconcile(&self, opts: &ReconcileOptions) -> Result<Vec<PlanItem>, CcgError> {
        let records = match self.journal() {
            Some(j) => j.records().map_err(|e| CcgError::Journal {
                container_id: ShownId::new("*"),
                source: e,
            })?,
            None => Vec::new(),
        };
        let instances = self.list()?;
        let listed: HashMap<&str, ()> = instances.iter().map(|i| (i.id.as_str(), ())).collect();
        let alive = |id: &str| opts.alive.as_ref().is_none_or(|a| a.contains(id));
        let mut plan = Vec::new();
        for record in records {
            let id = record.container_id.clone();
            let is_listed = listed.contains_key(id.as_str());
            let busy = match self.journal() {
                Some(j) => j.in_progress(&id).map_err(|e| CcgError::Journal {
                    container_id: ShownId::new(&id),
                    source: e,
                })?,
                None => false,
            };
            let (action, reason) = match (record.state, is_listed) {
                (_, _) if busy => (
                    Action::SkipInProgress,
                    "a live process is creating or releasing it".to_owned(),
                ),
                (state, true) if state.is_transient() => (
                    Action::RemoveInterrupted,
                    format!("a crash interrupted it while {}", state.as_str()),
                ),
                (state, false) if state.is_transient() => (
                    Action::DropStaleRecord,
                    format!(
                        "a crash interrupted it while {}; HCS does not list the instance",
                        state.as_str()
                    ),
                ),
                (_, false) => (
                    Action::DropStaleRecord,
                    "HCS no longer lists the instance (vmcompute.exe restarted?)".to_owned(),
                ),
                (_, true) if !alive(&id) => (
                    Action::RemoveNotAlive,
                    "its container is not in the alive set".to_owned(),
                ),
                (_, true) => (Action::Keep, "active".to_owned()),
            };
            plan.push(PlanItem {
                container_id: id,
                listed: is_listed,
                owned: true,
                state: Some(record.state),
                age_ms: Some(record.age_ms()),
                utility_vm: record.utility_vm.clone(),
                action,
                reason,
                record: Some(record),
            });
        }
        let owned: BTreeSet<String> = plan.iter().map(|p| p.container_id.clone()).collect();
        for inst in instances.iter().filter(|i| !owned.contains(&i.id)) {
            let (action, reason) =
                if opts.include_foreign && !(opts.alive.is_some() && alive(&inst.id)) {
                    (
                        Action::RemoveForeign,
                        "the journal does not know it (--include-foreign)".to_owned(),
                    )
                } else if opts.include_foreign {
                    (
                        Action::KeepForeign,
                        "the journal does not know it, but its container is alive".to_owned(),
                    )
                } else {
                    (
                        Action::KeepForeign,
                        "the journal does not know it; left alone".to_owned(),
                    )
                };
            plan.push(PlanItem {
                container_id: inst.id.clone(),
                listed: true,
                owned: false,
                state: None,
                age_ms: None,
                utility_vm: None,
                action,
                reason,
                record: None,
            });
        }
        Ok(plan)
    }

    /// Carries out the plan. Each item's failure is reported in its [`Done`] and does not
    /// stop the others.
    ///
    /// # Errors
    /// The plan cannot be made (journal or HCS query failure).
    pub fn reconcile(&self, opts: &ReconcileOptions) -> Result<Vec<Done>, CcgError> {
        let plan = self.plan_reconcile(opts)?;
        let mut done = Vec::with_capacity(plan.len());
        for item in plan {
            let result = if item.action.is_change() {
                self.carry_out(&item)
            } else {
                Ok(())
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

    fn carry_out(&self, item: &PlanItem) -> Result<(), CcgError> {
        let id = item.container_id.as_str();
        let _calls = crate::watchdog::calls_for(id);
        let hcs = self.backend().as_ref();
        let journal: Option<&Journal> = self.journal().map(AsRef::as_ref);
        match item.action {
            Action::RemoveForeign => remove_confirmed(hcs, id),
            Action::RemoveInterrupted | Action::RemoveNotAlive => {
                let entry = item
                    .record
                    .as_ref()
                    .and_then(Record::hvsocket_entry)
                    .map(|(vm, sid)| (vm.to_owned(), sid.to_owned()));
                release(hcs, journal, id, entry.as_ref())
            }
            Action::DropStaleRecord => {
                let Some(j) = journal else { return Ok(()) };
                let _lock = j.lock(id, false).map_err(|e| CcgError::JournalConflict {
                    container_id: ShownId::new(id),
                    source: e,
                })?;
                if let Some((vm, sid)) = item.record.as_ref().and_then(Record::hvsocket_entry) {
                    remove_hvsocket_entry(hcs, id, vm, sid)?;
                }
                j.delete(id).map_err(|e| CcgError::Journal {
                    container_id: ShownId::new(id),
                    source: e,
                })
            }
            Action::Keep | Action::SkipInProgress | Action::KeepForeign => Ok(()),
        }
    }
}
