//! The journal: a durable record of every instance this library creates, so that no crash
//! can lose the id needed to remove it.
//!
//! One JSON file per instance in the journal directory, named by a UUIDv5 of the container
//! id (ids may hold any printable character, files may not). A record is written in state
//! `creating` before AddInstance, `active` once the instance is usable, `releasing` before
//! RemoveInstance, and deleted once the removal is confirmed. Every write is atomic
//! ([`credguard_statefile::write_atomic`]) and owner-only.
//!
//! While a process creates or releases an instance it holds an exclusive lock on the
//! record's lock file; the operating system drops the lock when the process dies. A record
//! in `creating` or `releasing` whose lock can be taken was therefore left by a crash, which
//! is how [`crate::lifecycle::reconcile`] tells an interrupted operation from one in progress, with no
//! process-id guessing. A lock file is removed when its lock is released (on Windows by the
//! last process that had it open), and reconcile removes those a crash left
//! ([`Journal::remove_orphaned_lock_files`]), so lock files do not pile up.
//!
//! A record that cannot be read (or names an id [`crate::lifecycle::validate_container_id`]
//! refuses) is moved aside into `corrupt/` (kept for inspection) with a warning; it never
//! stops a listing or a reconciliation. A journal opened read-only
//! ([`Journal::open_read_only`], for listings and dry runs) only reports it: moving it is
//! left to `reconcile`. Records and lock files are never opened through a symbolic link.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::wire::Isolation;
use credguard_statefile::{
    StateFileError, check_private_dir, ensure_private_dir, ensure_regular, open_error,
    open_lock_file, read_if_exists, remove_durably, write_atomic,
};

/// The marker of a journal record.
pub const RECORD_FORMAT: &str = "credguard-journal/1";

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// Recorded before AddInstance; the instance may or may not exist.
    Creating,
    /// Created and handed over.
    Active,
    /// Recorded before removal; the instance may or may not still exist.
    Releasing,
}

impl RecordState {
    /// The state as shown (`creating`, `active`, `releasing`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Creating => "creating",
            RecordState::Active => "active",
            RecordState::Releasing => "releasing",
        }
    }

    /// Whether the record says an operation was under way.
    #[must_use]
    pub fn is_transient(self) -> bool {
        !matches!(self, RecordState::Active)
    }

    /// Whether a record in this state may move to `next`: the one list of allowed
    /// transitions. A record is born `creating` ([`Record::creating`]); create ends in
    /// `active`; release (and a rollback or a clean-up of an interrupted create) goes through
    /// `releasing`, which a retry may write again; removal deletes the record. Nothing
    /// goes back: an `active` or `releasing` record never becomes `creating`, and a
    /// `releasing` one never `active` again.
    #[must_use]
    pub const fn can_become(self, next: RecordState) -> bool {
        matches!(
            (self, next),
            (
                RecordState::Creating,
                RecordState::Creating | RecordState::Active
            ) | (
                RecordState::Creating | RecordState::Active | RecordState::Releasing,
                RecordState::Releasing
            )
        )
    }

    /// Whether create may mark the record `active` (only from `creating`).
    #[must_use]
    pub const fn can_activate(self) -> bool {
        self.can_become(RecordState::Active)
    }

    /// Whether release may mark the record `releasing` (from every state).
    #[must_use]
    pub const fn can_release(self) -> bool {
        self.can_become(RecordState::Releasing)
    }
}

/// The journal's record of one instance. Read it through its accessors; only the library
/// writes records (tests that fake what a crash leaves use the `test-support` feature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Always [`RECORD_FORMAT`].
    pub(crate) format: String,
    /// The container id.
    pub(crate) container_id: String,
    /// Where the instance is in its life.
    pub(crate) state: RecordState,
    /// The isolation it was created for.
    pub(crate) isolation: Isolation,
    /// The transport asked for (`LRPC`, `HvSocket`).
    pub(crate) transport: String,
    /// The utility VM its HvSocket entry was (or is being) added to, under Hyper-V.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) utility_vm: Option<String>,
    /// The HvSocket ServiceId, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) service_id: Option<String>,
    /// Whether the HvSocket entry may have been added to the utility VM. After a removal
    /// of the instance whose entry could not be removed, the record stays (in `releasing`,
    /// or `creating` after a rollback) with this set, so `reconcile` retries the entry.
    #[serde(default)]
    pub(crate) hvsocket_added: bool,
    /// AddInstance was refused as "already exists": the instance listed for this id belongs
    /// to another creator. Such a record is only ever dropped; its instance is never
    /// removed on its account.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) add_refused: bool,
    /// A fingerprint of the credential spec sent with AddInstance, without its secrets
    /// ([`spec_fingerprint`]): evidence, after a crash, of whether the instance HCS lists
    /// for the id can be the one this record was creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) spec_fingerprint: Option<String>,
    /// The operation whose failure left the record `creating` or `releasing`, when the
    /// process that wrote it saw the failure (a rollback or a release whose RemoveInstance
    /// HCS refused): it did not crash. `None` while an operation is under way, so a record
    /// left transient without it was interrupted by a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failed: Option<FailedOperation>,
    /// When the record was first written (milliseconds since the Unix epoch).
    pub(crate) created_unix_ms: u64,
    /// When it was last written.
    pub(crate) updated_unix_ms: u64,
    /// The process that created it.
    pub(crate) pid: u32,
}

/// An operation whose failure, seen by the process that ran it, left a record transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedOperation {
    /// A create failed after AddInstance, and removing the instance again failed too: the
    /// record stays `creating`.
    Rollback,
    /// RemoveInstance of a release failed: the record stays `releasing`.
    Release,
}

impl FailedOperation {
    /// The operation as shown (`rollback`, `release`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FailedOperation::Rollback => "rollback",
            FailedOperation::Release => "release",
        }
    }
}

impl Record {
    /// The container id.
    #[must_use]
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// Where the instance is in its life.
    #[must_use]
    pub fn state(&self) -> RecordState {
        self.state
    }

    /// The isolation it was created for.
    #[must_use]
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The transport asked for (`LRPC`, `HvSocket`).
    #[must_use]
    pub fn transport(&self) -> &str {
        &self.transport
    }

    /// The utility VM its HvSocket entry was (or is being) added to, under Hyper-V.
    #[must_use]
    pub fn utility_vm(&self) -> Option<&str> {
        self.utility_vm.as_deref()
    }

    /// The HvSocket ServiceId, once known.
    #[must_use]
    pub fn service_id(&self) -> Option<&str> {
        self.service_id.as_deref()
    }

    /// Whether AddInstance was refused as "already exists" (the listed instance is another
    /// creator's).
    #[must_use]
    pub fn add_refused(&self) -> bool {
        self.add_refused
    }

    /// The operation whose failure (seen by the process that ran it) left the record
    /// transient, if any.
    #[must_use]
    pub fn failed(&self) -> Option<FailedOperation> {
        self.failed
    }

    /// When the record was first written (milliseconds since the Unix epoch).
    #[must_use]
    pub fn created_unix_ms(&self) -> u64 {
        self.created_unix_ms
    }

    /// When it was last written (milliseconds since the Unix epoch).
    #[must_use]
    pub fn updated_unix_ms(&self) -> u64 {
        self.updated_unix_ms
    }

    /// The process that created it.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Tests only (feature `test-support`): puts the record in `state` whatever its state
    /// allows, as a crash at another moment would have left it.
    #[cfg(feature = "test-support")]
    pub fn fake_state(&mut self, state: RecordState) {
        self.state = state;
    }

    /// Tests only (feature `test-support`): sets what a failed operation noted.
    #[cfg(feature = "test-support")]
    pub fn fake_failed(&mut self, failed: Option<FailedOperation>) {
        self.failed = failed;
    }

    /// Tests only (feature `test-support`): marks AddInstance refused, as a crash after the
    /// refusal was recorded leaves it.
    #[cfg(feature = "test-support")]
    pub fn fake_add_refused(&mut self) {
        self.add_refused = true;
    }

    /// Moves the record to `next`, if its state allows it ([`RecordState::can_become`]).
    ///
    /// # Errors
    /// [`JournalError::Transition`] when it does not; the record is unchanged.
    pub fn move_to(&mut self, next: RecordState) -> Result<(), JournalError> {
        if !self.state.can_become(next) {
            return Err(JournalError::Transition {
                container_id: self.container_id.clone(),
                from: self.state,
                to: next,
            });
        }
        self.state = next;
        Ok(())
    }

    /// A new record in state `creating`.
    #[must_use]
    pub fn creating(container_id: &str, isolation: Isolation, utility_vm: Option<&str>) -> Self {
        let now = now_ms();
        Record {
            format: RECORD_FORMAT.to_owned(),
            container_id: container_id.to_owned(),
            state: RecordState::Creating,
            isolation,
            transport: isolation.transport().as_str().to_owned(),
            utility_vm: utility_vm.map(str::to_owned),
            service_id: None,
            hvsocket_added: false,
            add_refused: false,
            spec_fingerprint: None,
            failed: None,
            created_unix_ms: now,
            updated_unix_ms: now,
            pid: std::process::id(),
        }
    }

    /// How long ago the record was created, in milliseconds.
    #[must_use]
    pub fn age_ms(&self) -> u64 {
        now_ms().saturating_sub(self.created_unix_ms)
    }

    /// Records the fingerprint of the credential spec AddInstance is sent with.
    #[must_use]
    pub fn with_spec(mut self, credential_spec: &str) -> Self {
        self.spec_fingerprint = Some(spec_fingerprint(credential_spec));
        self
    }

    /// Whether `instance`, listed by HCS for this record's id, provably is not the one this
    /// record was creating: its transport, or its credential spec's fingerprint, differs
    /// from what AddInstance was sent with. An instance that does not show them (or a record
    /// from before fingerprints) proves nothing, and `false` is returned.
    #[must_use]
    pub fn proves_not_ours(
        &self,
        instance: &crate::wire::ContainerCredentialGuardInstance,
    ) -> bool {
        let Some(state) = &instance.credential_guard else {
            return false;
        };
        let transport = state.transport.as_str();
        if !transport.is_empty() && !transport.eq_ignore_ascii_case(&self.transport) {
            return true;
        }
        match &self.spec_fingerprint {
            Some(fp) if !state.credential_spec.is_empty() => {
                *fp != spec_fingerprint(&state.credential_spec)
            }
            _ => false,
        }
    }

    /// The utility VM and service id of an HvSocket entry that may need removing.
    #[must_use]
    pub fn hvsocket_entry(&self) -> Option<(&str, &str)> {
        match (&self.utility_vm, &self.service_id) {
            (Some(vm), Some(sid)) if self.hvsocket_added => Some((vm, sid)),
            _ => None,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
fn is_false(b: &bool) -> bool {
    !*b
}

/// A fingerprint of a credential spec that keeps no secret: the spec with every
/// `PluginInput` redacted, its members sorted (so a reordering by HCS does not change it),
/// hashed into a name-based (SHA-1) UUID. Text that is not JSON is fingerprinted as is.
#[must_use]
pub fn spec_fingerprint(credential_spec: &str) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    let text = credential_spec.trim_start_matches('\u{feff}');
    let canonical = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut v) => {
            crate::redact::redact_value(&mut v);
            sorted(&v).to_string()
        }
        // Not JSON: nothing to redact by member; the hash alone is stored.
        Err(_) => text.to_owned(),
    };
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, canonical.as_bytes()).to_string()
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A journal failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A file could not be read or written.
    #[error("the journal could not be accessed")]
    Io(#[from] StateFileError),
    /// Another process holds the record's lock.
    #[error(
        "another process is creating or releasing the instance of container `{container_id}`; wait for it, or reconcile if it died"
    )]
    Busy {
        /// The container.
        container_id: String,
    },
    /// A record was to move to a state its state does not allow
    /// ([`RecordState::can_become`]); nothing was written.
    #[error(
        "the journal's record of container `{container_id}` cannot go from `{}` to `{}`; nothing was written",
        .from.as_str(),
        .to.as_str()
    )]
    Transition {
        /// The container.
        container_id: String,
        /// The record's state.
        from: RecordState,
        /// The state asked for.
        to: RecordState,
    },
    /// A record exists already for the id.
    #[error(
        "the journal already has a record for container `{container_id}` (state {}); release that instance first, or reconcile if a crash left it",
        .state.as_str()
    )]
    Exists {
        /// The container.
        container_id: String,
        /// The record's state.
        state: RecordState,
    },
}

/// The journal directory.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    /// Opened by [`Journal::open_read_only`]: nothing is created, moved or written.
    read_only: bool,
}

/// The exclusive lock on one record, held while its instance is created or released.
///
/// Dropping it releases the lock and removes the lock file, so lock files do not pile up
/// (see [`Journal::lock`] for why removing a lock file is safe).
#[derive(Debug)]
pub struct RecordLock {
    file: Option<File>,
    path: PathBuf,
}

impl RecordLock {
    /// Releases the lock and removes the lock file: the same as dropping it.
    pub(crate) fn remove_file(self) {
        drop(self);
    }
}

impl Drop for RecordLock {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            release_and_remove(file, &self.path);
        }
    }
}

/// Unix: the lock file is removed while the lock is still held. Nobody else can hold it
/// then, and a process that opened the file meanwhile and waits for its lock finds, once it
/// has it, that the path no longer names the file it locked ([`same_file`]) and opens anew.
#[cfg(unix)]
fn release_and_remove(file: File, path: &Path) {
    let _ = fs::remove_file(path);
    drop(file);
}

/// Windows: lock files are opened without `FILE_SHARE_DELETE`, so a lock file cannot be
/// removed (nor renamed) while any process has it open: holding its lock, waiting for it,
/// or about to. The handle is closed first (releasing the lock), then the file removed;
/// the removal fails with a sharing violation when another process has it open, and that
/// process removes it when it is done.
#[cfg(not(unix))]
fn release_and_remove(file: File, path: &Path) {
    drop(file);
    let _ = fs::remove_file(path);
}

/// Why a lock file could not be locked.
enum LockFailure {
    /// Another process holds it.
    Busy,
    /// The file could not be opened or locked.
    Io(&'static str, std::io::Error),
    /// The file is not one to lock (a link, not a regular file), or could not be opened.
    State(StateFileError),
}

/// Opens the lock file at `path` (created owner-only when `create`; `None` when not and
/// there is no file) and locks it, waiting for the lock or not. The lock is on the file
/// `path` names once it is held: a file removed by its holder meanwhile is opened anew.
fn lock_file(path: &Path, wait: bool, create: bool) -> Result<Option<File>, LockFailure> {
    loop {
        let file = match open_lock_file(path, create) {
            Ok(file) => file,
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(LockFailure::State(open_error(
                    "opening the lock file",
                    path,
                    e,
                )));
            }
        };
        // A planted link is refused by the open itself; a FIFO or directory here.
        ensure_regular(&file, path).map_err(LockFailure::State)?;
        if wait {
            file.lock().map_err(|e| LockFailure::Io("locking", e))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(LockFailure::Busy),
                Err(fs::TryLockError::Error(e)) => return Err(LockFailure::Io("locking", e)),
            }
        }
        // The holder before us may have removed the file it locked; then lock anew.
        if same_file(&file, path) {
            return Ok(Some(file));
        }
    }
}

/// Makes a file owner-only (a record moved aside may have been written by someone else; on
/// Windows a moved file keeps its own DACL rather than inheriting the new directory's).
fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Through the opened file, never through a link planted in its place.
        match credguard_statefile::open_regular(path) {
            Ok(Some(file)) => file.set_permissions(fs::Permissions::from_mode(0o600)),
            Ok(None) => Err(std::io::ErrorKind::NotFound.into()),
            Err(e) => Err(std::io::Error::other(crate::text::chain_line(&e))),
        }
    }
    #[cfg(windows)]
    {
        credguard_statefile::make_file_private(path)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = path;
        Ok(())
    }
}

/// Whether `file` is still the file at `path` (and not one removed meanwhile).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Always: a lock file opened without `FILE_SHARE_DELETE` cannot be removed or renamed
/// while this handle is open, so `path` still names it.
#[cfg(not(unix))]
fn same_file(_file: &File, _path: &Path) -> bool {
    true
}

impl Journal {
    /// Opens (creating owner-only if needed) the journal in `dir`.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        ensure_private_dir(dir)?;
        Ok(Journal {
            dir: dir.to_owned(),
            read_only: false,
        })
    }

    /// Opens the journal in `dir` for reading only (listings, dry runs): nothing is created
    /// (not the directory, not a lock file), a corrupt record is reported but left where it
    /// is (moving it aside is `reconcile`'s job), and writes fail. A missing directory
    /// reads as an empty journal.
    ///
    /// # Errors
    /// The directory is refused ([`check_private_dir`]).
    pub fn open_read_only(dir: &Path) -> Result<Self, JournalError> {
        check_private_dir(dir)?;
        Ok(Journal {
            dir: dir.to_owned(),
            read_only: true,
        })
    }

    fn refuse_if_read_only(&self) -> Result<(), JournalError> {
        if self.read_only {
            return Err(StateFileError::new(
                "writing the journal",
                &self.dir,
                std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    "the journal was opened read-only",
                ),
            )
            .into());
        }
        Ok(())
    }

    /// The journal directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(container_id: &str) -> String {
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, container_id.as_bytes()).to_string()
    }

    fn record_path(&self, container_id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", Self::key(container_id)))
    }

    fn lock_path(&self, container_id: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", Self::key(container_id)))
    }

    /// Takes the record's lock: without waiting (`wait == false`, failing with
    /// [`JournalError::Busy`]) or waiting for it.
    ///
    /// The lock is `flock`/`LockFileEx` on the record's lock file, created if needed; the
    /// [`RecordLock`] removes the file again when dropped. On Unix a waiter that finds the
    /// file it locked removed meanwhile opens the new one; on Windows a lock file cannot be
    /// removed while anyone has it open. Either way two processes never both hold the
    /// lock of one record.
    ///
    /// # Errors
    /// The lock is held elsewhere (without waiting), or the lock file cannot be opened.
    pub fn lock(&self, container_id: &str, wait: bool) -> Result<RecordLock, JournalError> {
        self.refuse_if_read_only()?;
        let path = self.lock_path(container_id);
        match lock_file(&path, wait, true) {
            Ok(Some(file)) => Ok(RecordLock {
                file: Some(file),
                path,
            }),
            Ok(None) => unreachable!("a lock file opened with create exists"),
            Err(LockFailure::Busy) => Err(JournalError::Busy {
                container_id: container_id.to_owned(),
            }),
            Err(LockFailure::Io(action, source)) => Err(StateFileError {
                action,
                path,
                source,
            }
            .into()),
            Err(LockFailure::State(e)) => Err(e.into()),
        }
    }

    /// Whether a process holds the record's lock now (an operation is in progress).
    /// Creates and removes nothing: no lock file means nobody holds the lock.
    ///
    /// # Errors
    /// The lock file exists but cannot be opened or locked.
    pub fn in_progress(&self, container_id: &str) -> Result<bool, JournalError> {
        let path = self.lock_path(container_id);
        match lock_file(&path, false, false) {
            Ok(_) => Ok(false),
            Err(LockFailure::Busy) => Ok(true),
            Err(LockFailure::Io(action, source)) => Err(StateFileError {
                action,
                path,
                source,
            }
            .into()),
            Err(LockFailure::State(e)) => Err(e.into()),
        }
    }

    /// Removes the lock files no record needs: those without a record beside them whose
    /// lock can be taken (left by a crash, or by a removal that met a process opening the
    /// file). A lock held by a live process is left alone. Returns how many were removed.
    ///
    /// # Errors
    /// The directory cannot be listed. A lock file that cannot be opened is skipped with a
    /// warning.
    pub fn remove_orphaned_lock_files(&self) -> Result<usize, JournalError> {
        if self.read_only {
            return Ok(0);
        }
        let entries = fs::read_dir(&self.dir).map_err(|e| StateFileError {
            action: "listing",
            path: self.dir.clone(),
            source: e,
        })?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "lock") || !path.is_file() {
                continue;
            }
            if path.with_extension("json").exists() {
                continue;
            }
            match lock_file(&path, false, false) {
                Ok(Some(file)) => {
                    // Re-checked under the lock: a record written meanwhile keeps its file.
                    if path.with_extension("json").exists() {
                        continue;
                    }
                    drop(RecordLock {
                        file: Some(file),
                        path: path.clone(),
                    });
                    if !path.exists() {
                        removed += 1;
                    }
                }
                Ok(None) | Err(LockFailure::Busy) => {}
                Err(LockFailure::Io(action, e)) => {
                    warn!(file = %path.display(), error = %e, "{action}: cannot check an orphaned lock file; leaving it");
                }
                Err(LockFailure::State(e)) => {
                    warn!(file = %path.display(), error = %crate::text::chain_line(&e), "cannot check an orphaned lock file; leaving it");
                }
            }
        }
        Ok(removed)
    }

    /// Writes a record (atomically).
    ///
    /// # Errors
    /// The file cannot be written; the previous record, if any, is then intact.
    pub fn write(&self, record: &Record) -> Result<(), JournalError> {
        self.refuse_if_read_only()?;
        let mut record = record.clone();
        record.updated_unix_ms = now_ms();
        let path = self.record_path(&record.container_id);
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| StateFileError {
            action: "serialising the record for",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &bytes)?;
        Ok(())
    }

    /// Deletes a record (durably); a record that is already gone is fine.
    ///
    /// # Errors
    /// The file exists but cannot be removed.
    pub fn delete(&self, container_id: &str) -> Result<(), JournalError> {
        self.refuse_if_read_only()?;
        remove_durably(&self.record_path(container_id))?;
        Ok(())
    }

    /// The record of a container id, if there is a readable one.
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn get(&self, container_id: &str) -> Result<Option<Record>, JournalError> {
        let path = self.record_path(container_id);
        let Some(bytes) = read_if_exists(&path)? else {
            return Ok(None);
        };
        Ok(self
            .parse(&path, &bytes)
            .filter(|r| r.container_id == container_id))
    }

    /// Every readable record, oldest first. Unreadable ones are moved aside with a warning.
    ///
    /// # Errors
    /// The directory cannot be listed.
    pub fn records(&self) -> Result<Vec<Record>, JournalError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if self.read_only && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new());
            }
            Err(e) => {
                return Err(StateFileError {
                    action: "listing",
                    path: self.dir.clone(),
                    source: e,
                }
                .into());
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            // Directories (`corrupt/`) are skipped; links and other non-regular files are
            // refused, with a warning, by the read below.
            if path.extension().is_none_or(|e| e != "json")
                || entry.file_type().is_ok_and(|t| t.is_dir())
            {
                continue;
            }
            match read_if_exists(&path) {
                Ok(Some(bytes)) => out.extend(self.parse(&path, &bytes)),
                Ok(None) => {}
                Err(e) => {
                    warn!(file = %path.display(), error = %crate::text::chain_line(&e), "cannot read a journal record; skipping it");
                }
            }
        }
        out.sort_by(|a, b| {
            a.created_unix_ms
                .cmp(&b.created_unix_ms)
                .then_with(|| a.container_id.cmp(&b.container_id))
        });
        Ok(out)
    }

    /// Parses a record; a corrupt one is moved aside.
    fn parse(&self, path: &Path, bytes: &[u8]) -> Option<Record> {
        let reason = match serde_json::from_slice::<Record>(bytes) {
            Ok(r) if r.format == RECORD_FORMAT => match crate::input::id_problem(&r.container_id) {
                None => return Some(r),
                Some(problem) => format!("its container id is not valid: {problem}"),
            },
            Ok(r) => format!("unknown format `{}`", r.format),
            Err(e) => e.to_string(),
        };
        self.move_aside(path, &reason);
        None
    }

    fn move_aside(&self, path: &Path, reason: &str) {
        if self.read_only {
            warn!(
                file = %path.display(),
                reason,
                "corrupt journal record left in place; a reconcile moves it aside"
            );
            return;
        }
        let corrupt = self.dir.join("corrupt");
        let name = path
            .file_name()
            .map_or_else(|| "record".into(), |n| n.to_string_lossy().into_owned());
        let target = corrupt.join(format!("{name}.{}", now_ms()));
        let moved = ensure_private_dir(&corrupt)
            .map_err(|e| crate::text::chain_line(&e))
            .and_then(|()| fs::rename(path, &target).map_err(|e| e.to_string()))
            .and_then(|()| make_private(&target).map_err(|e| e.to_string()));
        match moved {
            Ok(()) => warn!(
                file = %path.display(),
                moved_to = %target.display(),
                reason,
                "corrupt journal record moved aside; if it named a live instance, the instance is now listed as foreign (no record)"
            ),
            Err(e) => {
                warn!(file = %path.display(), reason, error = %e, "corrupt journal record could not be moved aside; skipping it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let mut r = Record::creating("a/b\\c:d", Isolation::HyperV, Some("uvm"));
        j.write(&r).unwrap();
        r.state = RecordState::Active;
        j.write(&r).unwrap();
        let got = j.get("a/b\\c:d").unwrap().unwrap();
        assert_eq!(got.state, RecordState::Active);
        assert_eq!(got.utility_vm.as_deref(), Some("uvm"));
        assert_eq!(j.records().unwrap().len(), 1);
        j.delete("a/b\\c:d").unwrap();
        j.delete("a/b\\c:d").unwrap();
        assert!(j.get("a/b\\c:d").unwrap().is_none());
    }

    #[test]
    fn corrupt_records_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        j.write(&Record::creating("good", Isolation::Process, None))
            .unwrap();
        fs::write(dir.path().join("bad.json"), b"{\"format\":\"credguard-jour").unwrap();
        let recs = j.records().unwrap();
        assert_eq!(recs.len(), 1);
        assert!(!dir.path().join("bad.json").exists());
        let kept: Vec<_> = fs::read_dir(dir.path().join("corrupt")).unwrap().collect();
        assert_eq!(kept.len(), 1, "kept for inspection");
    }

    #[test]
    fn read_only_journal_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Journal::open_read_only(&dir.path().join("missing")).unwrap();
        assert!(missing.records().unwrap().is_empty());
        assert!(!missing.in_progress("x").unwrap());
        assert!(!dir.path().join("missing").exists(), "not created");

        let j = Journal::open(&dir.path().join("j")).unwrap();
        j.write(&Record::creating("good", Isolation::Process, None))
            .unwrap();
        fs::write(j.dir().join("bad.json"), b"{").unwrap();
        let ro = Journal::open_read_only(j.dir()).unwrap();
        let names = |d: &Path| {
            let mut v: Vec<_> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let before = names(j.dir());
        assert_eq!(ro.records().unwrap().len(), 1);
        assert!(!ro.in_progress("good").unwrap());
        assert!(ro.get("good").unwrap().is_some());
        assert_eq!(names(j.dir()), before, "no lock file, nothing moved aside");
        assert!(
            ro.write(&Record::creating("x", Isolation::Process, None))
                .is_err()
        );
        assert!(ro.delete("good").is_err());
        assert!(ro.lock("good", false).is_err());
        // A live holder is still seen.
        let held = j.lock("good", false).unwrap();
        assert!(ro.in_progress("good").unwrap());
        drop(held);
    }

    #[test]
    fn a_record_with_an_invalid_id_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let mut r = Record::creating("a", Isolation::Process, None);
        r.container_id = "a\u{202E}b".to_owned();
        fs::write(
            dir.path().join("planted.json"),
            serde_json::to_vec(&r).unwrap(),
        )
        .unwrap();
        assert!(j.records().unwrap().is_empty());
        assert!(dir.path().join("corrupt").is_dir());
    }

    #[test]
    fn locks_tell_in_progress_from_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert!(!j.in_progress("x").unwrap());
        let held = j.lock("x", false).unwrap();
        assert!(j.in_progress("x").unwrap());
        assert!(matches!(j.lock("x", false), Err(JournalError::Busy { .. })));
        drop(held);
        assert!(!j.in_progress("x").unwrap());
    }

    #[test]
    fn record_states_move_only_forward() {
        use RecordState::{Active, Creating, Releasing};
        let all = [Creating, Active, Releasing];
        let allowed = [
            (Creating, Creating),
            (Creating, Active),
            (Creating, Releasing),
            (Active, Releasing),
            (Releasing, Releasing),
        ];
        for from in all {
            for to in all {
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from:?} -> {to:?}");
                let mut r = Record::creating("c", Isolation::Process, None);
                r.state = from;
                let moved = r.move_to(to);
                assert_eq!(moved.is_ok(), expected, "{from:?} -> {to:?}");
                if let Err(e) = moved {
                    assert_eq!(r.state, from, "a refused move changes nothing");
                    let shown = e.to_string();
                    assert!(
                        shown.contains(from.as_str())
                            && shown.contains(to.as_str())
                            && shown.contains("`c`"),
                        "{shown}"
                    );
                } else {
                    assert_eq!(r.state, to);
                }
            }
        }
        assert!(Creating.can_activate() && !Active.can_activate() && !Releasing.can_activate());
        assert!(all.iter().all(|s| s.can_release()));
    }
}
