//! The journal: a durable record of every instance this library creates, so that no crash
//! can lose the id needed to remove it.
//!
//! One JSON file per instance in the journal directory, named by a UUIDv5 of the container
//! id (ids may hold any printable character, files may not). A record is written in state
//! `creating` before AddInstance, `active` once the instance is usable, `releasing` before
//! RemoveInstance, and deleted once the removal is confirmed. Every write is atomic
//! ([`crate::statefile::write_atomic`]) and owner-only.
//!
//! While a process creates or releases an instance it holds an exclusive lock on the
//! record's lock file; the operating system drops the lock when the process dies. A record
//! in `creating` or `releasing` whose lock can be taken was therefore left by a crash, which
//! is how [`crate::reconcile`] tells an interrupted operation from one in progress, with no
//! process-id guessing.
//!
//! A record that cannot be read is moved aside into `corrupt/` (kept for inspection) with a
//! warning; it never stops a listing or a reconciliation.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::lifecycle::Isolation;
use crate::statefile::{
    StateFileError, ensure_private_dir, read_if_exists, remove_durably, write_atomic,
};

/// The marker of a journal record.
pub const RECORD_FORMAT: &str = "credguard-journal/1";

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

/// The journal's record of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// The container id.
    pub container_id: String,
    /// Where the instance is in its life.
    pub state: RecordState,
    /// The isolation it was created for.
    pub isolation: IsolationRecord,
    /// The transport asked for (`LRPC`, `HvSocket`).
    pub transport: String,
    /// The utility VM its HvSocket entry was (or is being) added to, under Hyper-V.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utility_vm: Option<String>,
    /// The HvSocket ServiceId, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// Whether the HvSocket entry may have been added to the utility VM. After a removal
    /// of the instance whose entry could not be removed, the record stays (in `releasing`,
    /// or `creating` after a rollback) with this set, so `reconcile` retries the entry.
    #[serde(default)]
    pub hvsocket_added: bool,
    /// AddInstance was refused as "already exists": the instance listed for this id belongs
    /// to another creator. Such a record is only ever dropped; its instance is never
    /// removed on its account.
    #[serde(default, skip_serializing_if = "is_false")]
    pub add_refused: bool,
    /// When the record was first written (milliseconds since the Unix epoch).
    pub created_unix_ms: u64,
    /// When it was last written.
    pub updated_unix_ms: u64,
    /// The process that created it.
    pub pid: u32,
}

/// [`Isolation`] as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolationRecord {
    /// Process isolation.
    Process,
    /// Hyper-V isolation.
    Hyperv,
}

impl From<Isolation> for IsolationRecord {
    fn from(i: Isolation) -> Self {
        match i {
            Isolation::Process => IsolationRecord::Process,
            Isolation::HyperV => IsolationRecord::Hyperv,
        }
    }
}

impl Record {
    /// A new record in state `creating`.
    #[must_use]
    pub fn creating(container_id: &str, isolation: Isolation, utility_vm: Option<&str>) -> Self {
        let now = now_ms();
        Record {
            format: RECORD_FORMAT.to_owned(),
            container_id: container_id.to_owned(),
            state: RecordState::Creating,
            isolation: isolation.into(),
            transport: isolation.transport().as_str().to_owned(),
            utility_vm: utility_vm.map(str::to_owned),
            service_id: None,
            hvsocket_added: false,
            add_refused: false,
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

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A journal failure.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file could not be read or written.
    #[error("the journal could not be accessed")]
    Io(#[from] StateFileError),
    /// Another process holds the record's lock.
    #[error(
        "another process is creating or releasing the instance of container `{container_id}`; wait for it, or run `credguard reconcile` if it died"
    )]
    Busy {
        /// The container.
        container_id: String,
    },
    /// A record exists already for the id.
    #[error(
        "the journal already has a record for container `{container_id}` (state {}); release that instance first, or run `credguard reconcile` if a crash left it",
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
}

/// The exclusive lock on one record, held while its instance is created or released.
#[derive(Debug)]
pub struct RecordLock {
    file: File,
    path: PathBuf,
}

impl RecordLock {
    /// Removes the lock file while the lock is held (once the record is gone), so lock
    /// files do not pile up. A process that opened the old file meanwhile notices that it
    /// locked a removed file and opens the new one ([`Journal::lock`]). On Windows an open
    /// file cannot be removed, so the file stays there.
    pub fn remove_file(self) {
        if cfg!(unix) {
            let _ = fs::remove_file(&self.path);
        }
        drop(self.file);
    }
}

/// Makes a file owner-only (a record moved aside may have been written by someone else; on
/// Windows a moved file keeps its own DACL rather than inheriting the new directory's).
fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(windows)]
    {
        crate::windows::acl::make_file_private(path)
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
        })
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
    /// # Errors
    /// The lock is held elsewhere (without waiting), or the lock file cannot be opened.
    pub fn lock(&self, container_id: &str, wait: bool) -> Result<RecordLock, JournalError> {
        let path = self.lock_path(container_id);
        let io = |action, e| -> JournalError {
            StateFileError {
                action,
                path: path.clone(),
                source: e,
            }
            .into()
        };
        loop {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options
                .open(&path)
                .map_err(|e| io("opening the lock file", e))?;
            if wait {
                file.lock().map_err(|e| io("locking", e))?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => {
                        return Err(JournalError::Busy {
                            container_id: container_id.to_owned(),
                        });
                    }
                    Err(fs::TryLockError::Error(e)) => return Err(io("locking", e)),
                }
            }
            // The holder before us may have removed the file it locked; then lock anew.
            if same_file(&file, &path) {
                return Ok(RecordLock { file, path });
            }
        }
    }

    /// Whether a process holds the record's lock now (an operation is in progress).
    ///
    /// # Errors
    /// The lock file cannot be opened.
    pub fn in_progress(&self, container_id: &str) -> Result<bool, JournalError> {
        match self.lock(container_id, false) {
            Ok(_lock) => Ok(false),
            Err(JournalError::Busy { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Writes a record (atomically).
    ///
    /// # Errors
    /// The file cannot be written; the previous record, if any, is then intact.
    pub fn write(&self, record: &Record) -> Result<(), JournalError> {
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
        let entries = fs::read_dir(&self.dir).map_err(|e| StateFileError {
            action: "listing",
            path: self.dir.clone(),
            source: e,
        })?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") || !path.is_file() {
                continue;
            }
            match read_if_exists(&path) {
                Ok(Some(bytes)) => out.extend(self.parse(&path, &bytes)),
                Ok(None) => {}
                Err(e) => {
                    warn!(file = %path.display(), error = %crate::error::chain_line(&e), "cannot read a journal record; skipping it");
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
            Ok(r) if r.format == RECORD_FORMAT => return Some(r),
            Ok(r) => format!("unknown format `{}`", r.format),
            Err(e) => e.to_string(),
        };
        self.move_aside(path, &reason);
        None
    }

    fn move_aside(&self, path: &Path, reason: &str) {
        let corrupt = self.dir.join("corrupt");
        let name = path
            .file_name()
            .map_or_else(|| "record".into(), |n| n.to_string_lossy().into_owned());
        let target = corrupt.join(format!("{name}.{}", now_ms()));
        let moved = ensure_private_dir(&corrupt)
            .map_err(|e| e.to_string())
            .and_then(|()| fs::rename(path, &target).map_err(|e| e.to_string()))
            .and_then(|()| make_private(&target).map_err(|e| e.to_string()));
        match moved {
            Ok(()) => warn!(
                file = %path.display(),
                moved_to = %target.display(),
                reason,
                "corrupt journal record moved aside; if it named a live instance, `credguard instances list` shows that instance as foreign"
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
}
