//! The errors of the CCG instance lifecycle.
//!
//! Every error names the container id it is about and, for HCS failures, the step of the
//! flow that failed. Messages never contain the credential spec. The binary prints the
//! chain (`error:` then `caused by:` lines), so no message repeats its source.

use std::fmt;

use crate::hcs::HcsError;
use crate::text::{ShownId, chain_line};
use crate::wire::FindError;

/// The steps of creating and releasing an instance, as errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// The query made before AddInstance, to refuse an id that already has an instance.
    CheckExisting,
    /// `HcsModifyServiceSettings` with AddInstance.
    AddInstance,
    /// The query made after AddInstance, to read the new instance.
    Query,
    /// `HcsModifyServiceSettings` with RemoveInstance.
    RemoveInstance,
    /// The query made after a failed RemoveInstance, to see whether the instance is gone.
    ConfirmRemoval,
    /// The query made for a listing or a lookup.
    List,
    /// The hot-add of the HvSocket service-table entry to the utility VM.
    HvSocketAdd,
    /// The removal of the HvSocket service-table entry from the utility VM.
    HvSocketRemove,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::CheckExisting => "checking for an existing instance before AddInstance",
            Step::AddInstance => "AddInstance",
            Step::Query => "querying the instance after AddInstance",
            Step::RemoveInstance => "RemoveInstance",
            Step::ConfirmRemoval => "confirming the removal",
            Step::List => "listing the instances",
            Step::HvSocketAdd => "adding the HvSocket service-table entry to the utility VM",
            Step::HvSocketRemove => "removing the HvSocket service-table entry from the utility VM",
        })
    }
}

/// What a CCG instance lacked in HCS's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// The `CredentialGuard` state the container document needs.
    CredentialGuard,
    /// `HvSocketConfig`, needed under Hyper-V isolation.
    HvSocketConfig,
    /// `HvSocketConfig.ServiceId`.
    ServiceId,
    /// `HvSocketConfig.ServiceConfig`.
    ServiceConfig,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Missing::CredentialGuard => "CredentialGuard",
            Missing::HvSocketConfig => "HvSocketConfig",
            Missing::ServiceId => "HvSocketConfig.ServiceId",
            Missing::ServiceConfig => "HvSocketConfig.ServiceConfig",
        })
    }
}

/// An error of the CCG instance lifecycle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CcgError {
    /// The container id cannot be used; nothing was sent.
    #[error("invalid container id `{id}`: {reason}")]
    InvalidContainerId {
        /// The id as given, made printable.
        id: ShownId,
        /// Why.
        reason: String,
    },

    /// The credential spec cannot be used; nothing was sent.
    #[error("container `{container_id}`: the credential spec cannot be used: {reason}")]
    InvalidCredentialSpec {
        /// The container.
        container_id: ShownId,
        /// Why (never the spec's content).
        reason: String,
    },

    /// An option of the request cannot be used; nothing was sent.
    #[error("container `{container_id}`: {reason}")]
    InvalidRequest {
        /// The container.
        container_id: ShownId,
        /// Why.
        reason: String,
    },

    /// The policy disables gMSA; nothing was sent.
    #[error(
        "container `{container_id}`: operation denied: gMSA credentials are disabled ({reason}); remove the credential spec or lift the policy"
    )]
    Denied {
        /// The container.
        container_id: ShownId,
        /// What disabled it.
        reason: String,
    },

    /// An instance already exists for this id: HCS listed it in the check before
    /// AddInstance (nothing was sent then), or HCS refused AddInstance as "already exists"
    /// (`step` [`Step::AddInstance`], `source` its answer). Either way the instance belongs
    /// to another creator and was left alone.
    #[error(
        "container `{container_id}`: {step}: an instance already exists for this container id{}; remove that instance first or use another id",
        already_exists_note(*.step)
    )]
    AlreadyExists {
        /// The container.
        container_id: ShownId,
        /// Where it was seen: [`Step::CheckExisting`] or [`Step::AddInstance`].
        step: Step,
        /// HCS's refusal, when AddInstance was refused.
        #[source]
        source: Option<HcsError>,
    },

    /// No instance is listed for this id.
    #[error("container `{container_id}`: no CCG instance is listed for this container id")]
    NotFound {
        /// The container.
        container_id: ShownId,
    },

    /// An HCS call failed.
    #[error("container `{container_id}`: {step} failed")]
    Hcs {
        /// The container.
        container_id: ShownId,
        /// The step of the flow.
        step: Step,
        /// What HCS answered.
        #[source]
        source: HcsError,
    },

    /// Adding or removing an HvSocket service-table entry failed.
    #[error("container `{container_id}`: {step} `{utility_vm}` (ServiceId `{service_id}`) failed")]
    HvSocketEntry {
        /// The container.
        container_id: ShownId,
        /// [`Step::HvSocketAdd`] or [`Step::HvSocketRemove`].
        step: Step,
        /// The utility VM.
        utility_vm: ShownId,
        /// The entry's ServiceId.
        service_id: ShownId,
        /// What HCS answered.
        #[source]
        source: Box<HcsError>,
    },

    /// The instance was removed, but its HvSocket service-table entry could not be: the
    /// journal keeps the entry and `reconcile` removes it later.
    #[error(
        "container `{container_id}`: the CCG instance was removed, but its HvSocket service-table entry (ServiceId `{service_id}`) is still in utility VM `{utility_vm}`; the journal keeps it and a reconcile removes it"
    )]
    HvSocketEntryLeft {
        /// The container.
        container_id: ShownId,
        /// The utility VM.
        utility_vm: ShownId,
        /// The entry's ServiceId.
        service_id: ShownId,
        /// Why the entry could not be removed.
        #[source]
        source: Box<CcgError>,
    },

    /// A create was refused because the journal still keeps an HvSocket service-table entry
    /// of an earlier instance of this id that could not be removed (the utility VM refuses
    /// it still): a new record would lose it. Nothing was sent after the attempt.
    #[error(
        "container `{container_id}`: refused: the HvSocket service-table entry (ServiceId `{service_id}`) of an earlier instance of this id is still in utility VM `{utility_vm}` and could not be removed now; the journal keeps it: reconcile once the utility VM allows it, then create again"
    )]
    EntryPending {
        /// The container.
        container_id: ShownId,
        /// The utility VM.
        utility_vm: ShownId,
        /// The entry's ServiceId.
        service_id: ShownId,
        /// Why the entry could not be removed.
        #[source]
        source: Box<CcgError>,
    },

    /// An alive set that cannot be used; nothing was done.
    #[error("invalid alive set: {reason}")]
    InvalidAliveSet {
        /// Always `*`: the set is about every container.
        container_id: ShownId,
        /// What is wrong, naming the value.
        reason: String,
    },

    /// HCS answered the CCG query with a document that cannot be used.
    #[error("container `{container_id}`: {step}: unusable answer")]
    BadAnswer {
        /// The container.
        container_id: ShownId,
        /// The step of the flow.
        step: Step,
        /// What is wrong with the answer.
        #[source]
        source: FindError,
    },

    /// HCS accepted AddInstance but does not list the instance.
    #[error(
        "container `{container_id}`: {step}: HCS accepted AddInstance but does not list an instance with this id"
    )]
    NotListed {
        /// The container.
        container_id: ShownId,
        /// The step of the flow.
        step: Step,
    },

    /// HCS lists the instance without something the container needs.
    #[error("container `{container_id}`: {step}: HCS lists the instance without `{missing}`")]
    Incomplete {
        /// The container.
        container_id: ShownId,
        /// The step of the flow.
        step: Step,
        /// What is missing.
        missing: Missing,
    },

    /// Creating failed after HCS had created the instance; the instance was removed again.
    #[error(
        "container `{container_id}`: creating the CCG instance failed; the instance HCS had created was removed again{}",
        entry_left_note(.entry_left.as_ref())
    )]
    RolledBack {
        /// The container.
        container_id: ShownId,
        /// The HvSocket entry (utility VM, ServiceId) that could not be removed with it,
        /// if any: the journal keeps it for `reconcile`.
        entry_left: Option<(ShownId, ShownId)>,
        /// Why creating failed.
        #[source]
        cause: Box<CcgError>,
    },

    /// Creating failed, and removing the instance again failed too: it may be left behind.
    #[error(
        "container `{container_id}`: creating the CCG instance failed and removing it again failed too ({}); the instance may be left behind: remove it, or reconcile (the journal keeps its record)",
        chain_line(.rollback)
    )]
    RollbackFailed {
        /// The container.
        container_id: ShownId,
        /// Why the rollback failed: the failed removal of the instance (its chain is shown
        /// on one line in this error's message; [`std::error::Error::source`] is the
        /// create's cause).
        rollback: Box<CcgError>,
        /// Why creating failed.
        #[source]
        cause: Box<CcgError>,
    },

    /// The journal could not record or update an instance.
    #[error("container `{container_id}`: the journal could not be updated")]
    Journal {
        /// The container.
        container_id: ShownId,
        /// What went wrong.
        #[source]
        source: crate::journal::JournalError,
    },

    /// The journal shows the id busy or already recorded; nothing was sent.
    #[error("container `{container_id}`: refused")]
    JournalConflict {
        /// The container.
        container_id: ShownId,
        /// The conflict.
        #[source]
        source: crate::journal::JournalError,
    },
}

impl CcgError {
    /// The container id the error is about, as shown.
    #[must_use]
    pub fn container_id(&self) -> &ShownId {
        match self {
            CcgError::InvalidContainerId { id, .. } => id,
            CcgError::InvalidCredentialSpec { container_id, .. }
            | CcgError::InvalidRequest { container_id, .. }
            | CcgError::Denied { container_id, .. }
            | CcgError::AlreadyExists { container_id, .. }
            | CcgError::NotFound { container_id }
            | CcgError::HvSocketEntry { container_id, .. }
            | CcgError::HvSocketEntryLeft { container_id, .. }
            | CcgError::EntryPending { container_id, .. }
            | CcgError::InvalidAliveSet { container_id, .. }
            | CcgError::Hcs { container_id, .. }
            | CcgError::BadAnswer { container_id, .. }
            | CcgError::NotListed { container_id, .. }
            | CcgError::Incomplete { container_id, .. }
            | CcgError::RolledBack { container_id, .. }
            | CcgError::RollbackFailed { container_id, .. }
            | CcgError::Journal { container_id, .. }
            | CcgError::JournalConflict { container_id, .. } => container_id,
        }
    }

    /// The innermost HCS failure behind this error, if any.
    #[must_use]
    pub fn hcs_error(&self) -> Option<&HcsError> {
        match self {
            CcgError::Hcs { source, .. } => Some(source),
            CcgError::HvSocketEntry { source, .. } => Some(source),
            CcgError::AlreadyExists { source, .. } => source.as_ref(),
            CcgError::HvSocketEntryLeft { source, .. } | CcgError::EntryPending { source, .. } => {
                source.hcs_error()
            }
            CcgError::RolledBack { cause, .. } | CcgError::RollbackFailed { cause, .. } => {
                cause.hcs_error()
            }
            _ => None,
        }
    }

    /// The HvSocket service-table entry (utility VM, ServiceId) this error says is still in
    /// its utility VM, kept by the journal for `reconcile`, if any.
    #[must_use]
    pub fn entry_left(&self) -> Option<(&ShownId, &ShownId)> {
        match self {
            CcgError::HvSocketEntryLeft {
                utility_vm,
                service_id,
                ..
            }
            | CcgError::EntryPending {
                utility_vm,
                service_id,
                ..
            }
            | CcgError::HvSocketEntry {
                step: Step::HvSocketRemove,
                utility_vm,
                service_id,
                ..
            } => Some((utility_vm, service_id)),
            CcgError::RolledBack {
                entry_left: Some((vm, sid)),
                ..
            } => Some((vm, sid)),
            _ => None,
        }
    }

    /// Whether the instance this error is about was removed: the error is about what was
    /// left behind with it (its HvSocket entry, see [`CcgError::entry_left`]).
    #[must_use]
    pub fn instance_removed(&self) -> bool {
        matches!(self, CcgError::HvSocketEntryLeft { .. })
    }

    /// What the caller can do about this error, if anything beyond fixing its input: for a
    /// program, the action to take; for a tool, the command to suggest. The message says it
    /// in words without naming any tool's command.
    #[must_use]
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            CcgError::AlreadyExists { .. } => Some(Remedy::RemoveInstance),
            CcgError::JournalConflict { .. } => Some(Remedy::WaitOrReconcile),
            CcgError::HvSocketEntryLeft { .. }
            | CcgError::EntryPending { .. }
            | CcgError::RolledBack {
                entry_left: Some(_),
                ..
            }
            | CcgError::HvSocketEntry {
                step: Step::HvSocketRemove,
                ..
            } => Some(Remedy::Reconcile),
            CcgError::RollbackFailed { .. } => Some(Remedy::RemoveInstanceOrReconcile),
            _ => None,
        }
    }

    /// What kind of failure this is, for exit codes and for callers that branch on it.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            CcgError::InvalidContainerId { .. }
            | CcgError::InvalidCredentialSpec { .. }
            | CcgError::InvalidRequest { .. }
            | CcgError::InvalidAliveSet { .. } => ErrorKind::InvalidInput,
            CcgError::Denied { .. } => ErrorKind::Denied,
            CcgError::AlreadyExists { .. }
            | CcgError::JournalConflict { .. }
            | CcgError::EntryPending { .. } => ErrorKind::AlreadyExists,
            CcgError::NotFound { .. } => ErrorKind::NotFound,
            CcgError::Journal { .. } => ErrorKind::State,
            CcgError::RolledBack { cause, .. } | CcgError::RollbackFailed { cause, .. } => {
                match cause.kind() {
                    ErrorKind::State => ErrorKind::State,
                    _ => ErrorKind::Hcs,
                }
            }
            CcgError::Hcs { .. }
            | CcgError::HvSocketEntry { .. }
            | CcgError::HvSocketEntryLeft { .. }
            | CcgError::BadAnswer { .. }
            | CcgError::NotListed { .. }
            | CcgError::Incomplete { .. } => ErrorKind::Hcs,
        }
    }
}

fn already_exists_note(step: Step) -> &'static str {
    match step {
        Step::AddInstance => {
            " (HCS refused AddInstance: another creator made it after the check, so it was left alone)"
        }
        _ => "",
    }
}

fn entry_left_note(entry: Option<&(ShownId, ShownId)>) -> String {
    entry.map_or_else(String::new, |(vm, sid)| {
        format!(
            ", but its HvSocket service-table entry (ServiceId `{sid}`) is still in utility VM `{vm}`: the journal keeps it and a reconcile removes it"
        )
    })
}

/// What a caller can do about a [`CcgError`] ([`CcgError::remedy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// An instance of the id exists already: remove it (or use another id).
    RemoveInstance,
    /// Something is left that the journal keeps (an HvSocket entry): a reconcile removes
    /// it, once what refused it allows it.
    Reconcile,
    /// The instance may be left behind: remove it, or reconcile.
    RemoveInstanceOrReconcile,
    /// Another process works on the id: wait for it, or reconcile if it died.
    WaitOrReconcile,
}

/// The broad classes of [`CcgError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input was refused before anything was sent.
    InvalidInput,
    /// A policy refused the operation before anything was sent.
    Denied,
    /// An instance already exists for the id.
    AlreadyExists,
    /// No instance exists for the id.
    NotFound,
    /// HCS failed or answered with something unusable.
    Hcs,
    /// Local state (the journal) failed.
    State,
}
