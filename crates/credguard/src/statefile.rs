//! Durable local state: atomic file writes, private directories and cross-process locks.
//!
//! Everything credguard keeps on disk (the journal, the emulator's state) is written with
//! the same pattern: a temporary file in the same directory, `fsync`, `rename` over the
//! old file, `fsync` of the directory; readers therefore see the old or the new content,
//! never a torn one, even across a crash. Files and directories are owner-only. Processes
//! that may race take an exclusive lock on a lock file beside the state.
//!
//! Owner-only means mode 0700 for directories and 0600 for files on Unix. On Windows a
//! file takes its permissions from its directory, so [`ensure_private_dir`] gives the
//! directory a protected DACL that grants the current user, SYSTEM and Administrators
//! alone, inherited by everything created inside; an existing directory open to others is
//! restricted if the current user owns it and refused otherwise (`docs/WINDOWS.md`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O failure on a named path.
#[derive(Debug, thiserror::Error)]
#[error("{action} `{path}`")]
pub struct StateFileError {
    /// What was being done (`writing`, `locking`, ...).
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl StateFileError {
    pub(crate) fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        StateFileError {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Creates a directory (and its parents) readable by its owner only.
///
/// On Unix the directories created are mode 0700 and an existing directory is used as it is
/// (the files credguard writes are 0600 whatever the directory's mode). On Windows the
/// directories created get an owner-only DACL inherited by what is created inside, and an
/// existing directory is checked: used if private, restricted if open to others and owned
/// by the current user, refused if open to others and owned by someone else.
///
/// # Errors
/// The directory cannot be created or its permissions set; on Windows, it is open to other
/// users and owned by someone else.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StateFileError> {
    #[cfg(windows)]
    {
        crate::windows::acl::ensure_private_dir(dir)
    }
    #[cfg(not(windows))]
    {
        let err = |e| StateFileError::new("creating the directory", dir, e);
        if !dir.is_dir() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(dir).map_err(err)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync of the directory),
/// with owner-only permissions.
///
/// # Errors
/// Any step fails; the old content of `path`, if any, is then still in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let err = |action, e| StateFileError::new(action, path, e);
    // tempfile creates the file with mode 0600 on Unix; on Windows it inherits the
    // directory's DACL, which a private directory makes owner-only (and the rename keeps).
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| StateFileError::new("creating a temporary file in", dir, e))?;
    tmp.write_all(bytes).map_err(|e| err("writing", e))?;
    tmp.as_file().sync_all().map_err(|e| err("syncing", e))?;
    tmp.persist(path).map_err(|e| err("replacing", e.error))?;
    sync_dir(dir)
}

/// `fsync` of a directory, so a rename or unlink in it is durable.
///
/// # Errors
/// The directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<(), StateFileError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StateFileError::new("syncing the directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        // Windows has no directory fsync; NTFS journals the rename itself.
        let _ = dir;
        Ok(())
    }
}

/// Removes a file durably; a file that is already gone is fine.
///
/// # Errors
/// The file exists but cannot be removed, or the directory cannot be synced.
pub fn remove_durably(path: &Path) -> Result<(), StateFileError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StateFileError::new("removing", path, e)),
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Reads a file, `None` when it does not exist.
///
/// # Errors
/// The file exists but cannot be read.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StateFileError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateFileError::new("reading", path, e)),
    }
}

/// An exclusive lock on a lock file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until this process holds the lock at `path` (created owner-only if needed).
    ///
    /// # Errors
    /// The lock file cannot be opened or locked.
    pub fn acquire(path: &Path) -> Result<FileLock, StateFileError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| StateFileError::new("opening the lock file", path, e))?;
        file.lock()
            .map_err(|e| StateFileError::new("locking", path, e))?;
        Ok(FileLock {
            file,
            path: path.to_owned(),
        })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it prompt.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        ensure_private_dir(&sub).unwrap();
        let p = sub.join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let leftovers: Vec<_> = fs::read_dir(&sub).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file stays behind");
        remove_durably(&p).unwrap();
        remove_durably(&p).unwrap();
        assert!(read_if_exists(&p).unwrap().is_none());
    }

    #[test]
    fn lock_serialises_holders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let held = FileLock::acquire(&p).unwrap();
        let other = File::options().read(true).write(true).open(&p).unwrap();
        assert!(other.try_lock().is_err(), "a second holder must wait");
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
