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

#![warn(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[cfg(windows)]
mod acl;
pub mod shown;

#[cfg(windows)]
pub use acl::make_file_private;

use crate::shown::shown_file;

/// An I/O failure on a named path.
#[derive(Debug, thiserror::Error)]
#[error("{action} `{}`", shown_file(.path))]
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
    /// The error of `action` on `path`.
    #[must_use]
    pub fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        StateFileError {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Creates a directory (and its parents) readable by its owner only, and checks it.
///
/// On Unix every directory created is mode 0700 whatever the umask, and the directory is
/// then checked ([`check_private_dir`]): not a symbolic link, owned by the effective user,
/// not writable by group or others. On Windows the directories created get an owner-only
/// DACL inherited by what is created inside, and an existing directory is checked: used if
/// private, restricted if open to others and owned by the current user, refused if open to
/// others and owned by someone else.
///
/// # Errors
/// The directory cannot be created or its permissions set; it is a symbolic link, owned by
/// another user or writable by others (Unix); it is open to other users and owned by
/// someone else (Windows).
pub fn ensure_private_dir(dir: &Path) -> Result<(), StateFileError> {
    #[cfg(windows)]
    {
        acl::ensure_private_dir(dir)
    }
    #[cfg(not(windows))]
    {
        create_missing_dirs(dir)?;
        check_private_dir(dir).map(|_| ())
    }
}

/// Creates `dir` and its missing parents owner-only (mode 0700 on Unix whatever the umask,
/// the owner-only DACL on Windows), leaving an existing directory as it is. For directories
/// credguard writes into but does not own, such as a credential-spec directory.
///
/// # Errors
/// A directory cannot be created or its permissions set.
pub fn create_private_dir_all(dir: &Path) -> Result<(), StateFileError> {
    #[cfg(windows)]
    {
        if dir.is_dir() {
            return Ok(());
        }
        acl::ensure_private_dir(dir)
    }
    #[cfg(not(windows))]
    {
        create_missing_dirs(dir)
    }
}

#[cfg(not(windows))]
fn create_missing_dirs(dir: &Path) -> Result<(), StateFileError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err())
        .collect();
    // Outermost first.
    for path in missing.iter().rev() {
        let err = |e| StateFileError::new("creating the directory", path, e);
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(path) {
            Ok(()) => {
                // The umask may have taken bits away; set exactly 0700.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(err)?;
                }
            }
            // Another process created it meanwhile: it is checked like an existing one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

/// Why a state directory or file is refused.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(action: &'static str, path: &Path, why: String) -> StateFileError {
    StateFileError::new(
        action,
        path,
        io::Error::new(io::ErrorKind::PermissionDenied, Refused(why)),
    )
}

/// Checks an existing state directory without changing anything: `Ok(false)` when it does
/// not exist. On Unix it must not be a symbolic link, must be owned by the effective user
/// (root included: a directory owned by another user, who could swap what is inside, is
/// refused even for root), and must not be writable by group or others. On Windows its
/// DACL gets the verdict of [`ensure_private_dir`] without being changed: open to others
/// and owned by someone else is refused, open and the current user's is used with a warning.
///
/// # Errors
/// The directory is refused (the error names its owner and mode), or cannot be examined.
pub fn check_private_dir(dir: &Path) -> Result<bool, StateFileError> {
    const ACTION: &str = "refusing the state directory";
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StateFileError::new("examining the directory", dir, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refused(
            ACTION,
            dir,
            "it is a symbolic link; credguard follows no link in its state directory: replace it with a real directory".to_owned(),
        ));
    }
    if !meta.is_dir() {
        return Err(refused(ACTION, dir, "it is not a directory".to_owned()));
    }
    #[cfg(windows)]
    acl::check_private_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let (uid, mode) = (meta.uid(), meta.mode() & 0o7777);
        let owner = || match user_name(uid) {
            Some(name) => format!("uid {uid} ({name})"),
            None => format!("uid {uid}"),
        };
        if uid != me {
            return Err(refused(
                ACTION,
                dir,
                format!(
                    "it is owned by {}, not by the user running credguard (uid {me}), mode {mode:04o}: another user could change what credguard reads there; use a directory of your own (--state-dir) or `chown` it",
                    owner()
                ),
            ));
        }
        if mode & 0o022 != 0 {
            return Err(refused(
                ACTION,
                dir,
                format!(
                    "it is owned by {}, mode {mode:04o}: group or others can write in it and plant files; `chmod 700` it",
                    owner()
                ),
            ));
        }
    }
    Ok(true)
}

/// The user name of a uid from `/etc/passwd`, when it is cheap to find.
#[cfg(unix)]
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

/// Opens an existing state file for reading: never through a symbolic link, never blocking
/// on a FIFO, regular files only. `None` when it does not exist.
///
/// # Errors
/// The file is a link or not a regular file, or cannot be opened.
pub fn open_regular(path: &Path) -> Result<Option<File>, StateFileError> {
    let mut options = OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    match options.open(path) {
        Ok(file) => {
            ensure_regular(&file, path)?;
            Ok(Some(file))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error("reading", path, e)),
    }
}

/// Adds the flags every state file is opened with: `O_NOFOLLOW` (a planted symbolic link
/// fails instead of redirecting the open) and `O_NONBLOCK` (a planted FIFO does not hang
/// the open; it has no effect on regular files).
pub fn no_follow(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        // The flag bits are C `int` open flags: they fit an i32.
        options.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
    }
    #[cfg(windows)]
    {
        // The link itself is opened, never its target; `ensure_regular` then refuses it.
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT;
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = options;
    }
}

/// A clear error for a failed open of a state file (a symbolic link says so).
#[must_use]
pub fn open_error(action: &'static str, path: &Path, e: io::Error) -> StateFileError {
    #[cfg(unix)]
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
        && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return refused(
            action,
            path,
            "it is a symbolic link; credguard opens no file in its state directory through a link: remove it".to_owned(),
        );
    }
    StateFileError::new(action, path, e)
}

/// Refuses an opened state file that is not a regular file (a FIFO, a device, a directory).
///
/// # Errors
/// The file is not a regular file, or cannot be examined.
pub fn ensure_regular(file: &File, path: &Path) -> Result<(), StateFileError> {
    let meta = file
        .metadata()
        .map_err(|e| StateFileError::new("examining", path, e))?;
    if !meta.is_file() {
        return Err(refused(
            "refusing",
            path,
            "it is not a regular file; remove it".to_owned(),
        ));
    }
    #[cfg(windows)]
    ensure_not_linked(file, path)?;
    Ok(())
}

/// Windows: the opened handle must be the file `path` names, not one a link led to. Windows
/// refuses links through `FILE_FLAG_OPEN_REPARSE_POINT` ([`no_follow`]); links Wine follows
/// transparently (Unix symbolic links) show in the handle's final path.
#[cfg(windows)]
fn ensure_not_linked(file: &File, path: &Path) -> Result<(), StateFileError> {
    let examine = |e| StateFileError::new("examining", path, e);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let expected = fs::canonicalize(dir).map_err(examine)?.join(name);
    let actual = credguard_winapi::path::final_path_of(file).map_err(examine)?;
    // Windows names are case-insensitive; both sides come from the same normalization.
    if actual.as_os_str().to_string_lossy().to_lowercase()
        == expected.as_os_str().to_string_lossy().to_lowercase()
    {
        Ok(())
    } else {
        Err(refused(
            "refusing",
            path,
            "it is a link (symbolic link or junction) to another file; credguard opens no file in its state directory through a link: remove it".to_owned(),
        ))
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync of the directory),
/// with owner-only permissions whatever the umask.
///
/// # Errors
/// Any step fails; the old content of `path`, if any, is then still in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    write_private(path, bytes, true)
}

/// [`write_atomic`] that never replaces an existing file (`replace == false`: the error's
/// source is then of kind [`io::ErrorKind::AlreadyExists`]), or replaces it
/// (`replace == true`). The file is owner-only in either case: mode 0600 on Unix, and on
/// Windows a protected owner-only DACL of its own, so that it stays private in a directory
/// open to others (a credential-spec directory).
///
/// # Errors
/// Any step fails, or the file exists and `replace` is false.
pub fn write_private(path: &Path, bytes: &[u8], replace: bool) -> Result<(), StateFileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let err = |action, e| StateFileError::new(action, path, e);
    // tempfile creates the file exclusively (never through a link) with mode 0600 less the
    // umask; the mode is then set exactly. On Windows it inherits the directory's DACL.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| StateFileError::new("creating a temporary file in", dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| err("setting the permissions of", e))?;
    }
    #[cfg(windows)]
    if !replace {
        make_file_private(tmp.path()).map_err(|e| err("setting the permissions of", e))?;
    }
    tmp.write_all(bytes).map_err(|e| err("writing", e))?;
    tmp.as_file().sync_all().map_err(|e| err("syncing", e))?;
    if replace {
        persist_replacing(tmp, path).map_err(|e| err("replacing", e))?;
    } else {
        tmp.persist_noclobber(path)
            .map_err(|e| err("creating", e.error))?;
    }
    sync_dir(dir)
}

/// Renames `tmp` over `path`. On Windows a file cannot be replaced while another handle
/// has it open (a process reading the record without its lock, or one whose removal of it
/// is still pending): the rename fails with `ERROR_ACCESS_DENIED` or
/// `ERROR_SHARING_VIOLATION` until that handle is closed. Readers hold such files only for a
/// read, so the rename is retried for up to 5 seconds before the error is returned.
fn persist_replacing(tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        let mut tmp = Some(tmp);
        retry_while_held_open(|| {
            let file = tmp.take().expect("a failed rename gives the file back");
            file.persist(path).map(drop).map_err(|e| {
                tmp = Some(e.file);
                e.error
            })
        })
    }
    #[cfg(not(windows))]
    {
        tmp.persist(path).map(drop).map_err(|e| e.error)
    }
}

/// How long [`retry_while_held_open`] keeps retrying (Windows only).
#[cfg(windows)]
const HELD_OPEN_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

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

/// Reads a file, `None` when it does not exist; never through a symbolic link, regular
/// files only ([`open_regular`]).
///
/// # Errors
/// The file exists but cannot be read, or is refused.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StateFileError> {
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| StateFileError::new("reading", path, e))?;
    Ok(Some(bytes))
}

/// Opens a lock file: read-write and created owner-only when `create`, read-only
/// otherwise (a lock needs no write access); never through a link ([`no_follow`]). On
/// Windows without `FILE_SHARE_DELETE`, so a lock file cannot be removed or renamed while
/// anyone has it open (the journal relies on it to remove lock files safely); an open that
/// meets a removal in progress is retried (`retry_while_held_open`, on Windows).
///
/// # Errors
/// The file cannot be opened (the caller maps the error: [`open_error`]).
pub fn open_lock_file(path: &Path, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    if create {
        options.write(true).create(true).truncate(false);
    }
    no_follow(&mut options);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        options.open(path)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::{FILE_SHARE_READ, FILE_SHARE_WRITE};
        // Not FILE_SHARE_DELETE.
        options.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE);
        retry_while_held_open(|| options.open(path))
    }
    #[cfg(not(any(unix, windows)))]
    {
        options.open(path)
    }
}

/// Windows: runs `op` again while it fails because another handle has the file open, or
/// its removal is still pending (`ERROR_ACCESS_DENIED`, `ERROR_SHARING_VIOLATION`): such
/// handles are held for one read or one lock, so this passes once they close. Gives up
/// after [`HELD_OPEN_RETRY`] with the last error.
#[cfg(windows)]
pub fn retry_while_held_open<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    use std::time::{Duration, Instant};
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    let deadline = Instant::now() + HELD_OPEN_RETRY;
    loop {
        match op() {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
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
        let file =
            open_lock_file(path, true).map_err(|e| open_error("opening the lock file", path, e))?;
        ensure_regular(&file, path)?;
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

    #[cfg(unix)]
    use crate::shown::chain_line;

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

    #[cfg(unix)]
    #[test]
    fn links_and_open_directories_are_refused() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"outside").unwrap();
        let state = dir.path().join("state");
        ensure_private_dir(&state.join("a/b")).unwrap();
        for d in [&state, &state.join("a"), &state.join("a/b")] {
            assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700);
        }
        // A file read, or a lock file opened, through a planted link fails and names it.
        let link = state.join("state.json");
        symlink(&outside, &link).unwrap();
        let e = chain_line(&read_if_exists(&link).unwrap_err());
        assert!(
            e.contains("symbolic link") && e.contains("state.json"),
            "{e}"
        );
        let lock = state.join("x.lock");
        symlink(dir.path().join("created"), &lock).unwrap();
        let e = chain_line(&FileLock::acquire(&lock).unwrap_err());
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!dir.path().join("created").exists());
        // Writing replaces the link itself, never its target.
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"outside");
        // A FIFO fails at once instead of blocking the read.
        let fifo = state.join("fifo.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = chain_line(&read_if_exists(&fifo).unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
        // A linked directory, or one others can write in, is refused with its mode.
        let linked = dir.path().join("linked");
        symlink(&state, &linked).unwrap();
        let e = chain_line(&ensure_private_dir(&linked).unwrap_err());
        assert!(e.contains("symbolic link"), "{e}");
        fs::set_permissions(&state, fs::Permissions::from_mode(0o775)).unwrap();
        let e = chain_line(&ensure_private_dir(&state).unwrap_err());
        assert!(e.contains("0775") && e.contains("uid"), "{e}");
        assert!(check_private_dir(&state).is_err());
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_private_dir(&state).unwrap());
        assert!(!check_private_dir(&dir.path().join("missing")).unwrap());
    }

    #[test]
    fn write_private_never_clobbers_without_replace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spec.json");
        write_private(&p, b"one", false).unwrap();
        let e = write_private(&p, b"two", false).unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        }
        write_private(&p, b"two", true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
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

/// Windows host only: a symbolic link planted as a state file is refused, never followed
/// (`FILE_FLAG_OPEN_REPARSE_POINT`), and its target is not written. Under Wine the links
/// made on the Linux side are checked with credguard.exe by `scripts/windows-tests.sh`
/// (Wine follows them whatever the flag; the handle's final path shows them); links made
/// by Windows code Wine cannot open at all. On Windows, as an administrator or with
/// Developer Mode on: `cargo test -p credguard --lib statefile -- --include-ignored`.
#[cfg(all(test, windows))]
mod windows_link_tests {
    use super::*;

    #[test]
    #[ignore = "needs a Windows host: Wine cannot open the links CreateSymbolicLinkW makes"]
    fn a_planted_link_is_never_opened_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        fs::write(&outside, b"outside").unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        std::os::windows::fs::symlink_file(&outside, state.join("calls.jsonl")).unwrap();
        let e = read_if_exists(&state.join("calls.jsonl")).unwrap_err();
        assert!(e.to_string().contains("remove it"), "{e}");
        let e = FileLock::acquire(&state.join("calls.jsonl")).unwrap_err();
        assert!(e.to_string().contains("remove it"), "{e}");
        assert_eq!(fs::read(&outside).unwrap(), b"outside");
    }
}
