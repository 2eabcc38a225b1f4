//! Opening the files credential specs are read from, so that the file read is the file
//! checked.
//!
//! - `file://NAME` ([`read_beneath`]): opened beneath the credential-spec directory in one
//!   step, with no check-then-use window. On Linux, `openat2` with `RESOLVE_BENEATH` and
//!   `RESOLVE_NO_MAGICLINKS`: a symbolic link that stays inside the directory is followed, one
//!   that leads out (absolute, or `..` past the directory) is refused by the kernel, whatever
//!   is swapped in while it resolves. Where `openat2` is missing (other Unix systems, kernels
//!   before 5.6), each component is opened with `O_NOFOLLOW` from the directory down, so no
//!   symbolic link is followed at all. On Windows the file is opened and then the final path
//!   of the opened handle must be beneath the directory. In every case the opened handle must
//!   be a regular file (a FIFO, a device, a directory is refused at once: the open is
//!   non-blocking) and at most `limit` bytes are read from it.
//! - A plain path ([`read_path`]): whatever the path names, as users expect (process
//!   substitution `<(...)` is a pipe), but opened non-blocking, so a FIFO nobody writes to
//!   reads as empty instead of hanging, and read through the same size limit.

use std::io::{self, Read};
use std::path::Path;

/// Why a file beneath the credential-spec directory could not be read.
#[derive(Debug)]
pub(crate) enum BeneathError {
    /// Opening or reading failed (not found, permission, ...).
    Io(io::Error),
    /// The name leads outside the directory (through a symbolic link).
    Outside,
    /// The name is a symbolic link, and this system can only refuse them all.
    #[cfg_attr(not(unix), allow(dead_code))]
    Symlink,
    /// The opened file is not a regular file: what it is.
    NotRegular(&'static str),
}

impl From<io::Error> for BeneathError {
    fn from(e: io::Error) -> Self {
        BeneathError::Io(e)
    }
}

/// Reads at most `limit` bytes (and one more, to tell "too large") from `file`.
fn read_limited(file: &mut dyn Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the regular file `rel` (relative, without `..`) beneath `dir`: at most `limit` + 1
/// bytes.
pub(crate) fn read_beneath(dir: &Path, rel: &Path, limit: u64) -> Result<Vec<u8>, BeneathError> {
    let mut file = imp::open_beneath(dir, rel)?;
    Ok(read_limited(&mut file, limit)?)
}

/// Reads what `path` names: at most `limit` + 1 bytes.
pub(crate) fn read_path(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut file = imp::open_path(path)?;
    read_limited(&mut file, limit)
}

#[cfg(unix)]
mod imp {
    use std::fs::File;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::path::{Component, Path};

    use rustix::fs::{CWD, FileType, Mode, OFlags, fcntl_setfl, fstat, openat};

    use super::BeneathError;

    /// Read-only, non-blocking (a FIFO or a device cannot hang the open), no controlling
    /// terminal, closed on exec.
    fn read_flags() -> OFlags {
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
    }

    fn kind(fd: &OwnedFd) -> io::Result<FileType> {
        Ok(FileType::from_raw_mode(fstat(fd)?.st_mode))
    }

    fn regular(fd: OwnedFd) -> Result<File, BeneathError> {
        match kind(&fd)? {
            FileType::RegularFile => Ok(File::from(fd)),
            FileType::Directory => Err(BeneathError::NotRegular("a directory")),
            FileType::Fifo => Err(BeneathError::NotRegular("a FIFO")),
            FileType::CharacterDevice => Err(BeneathError::NotRegular("a character device")),
            FileType::BlockDevice => Err(BeneathError::NotRegular("a block device")),
            FileType::Socket => Err(BeneathError::NotRegular("a socket")),
            _ => Err(BeneathError::NotRegular("not a file")),
        }
    }

    pub(super) fn open_beneath(dir: &Path, rel: &Path) -> Result<File, BeneathError> {
        let dir_fd = openat(
            CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::{ResolveFlags, openat2};
            match openat2(
                &dir_fd,
                rel,
                read_flags(),
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => return regular(fd),
                // EXDEV: the resolution left the directory; ELOOP: a magic link (/proc).
                Err(rustix::io::Errno::XDEV | rustix::io::Errno::LOOP) => {
                    return Err(BeneathError::Outside);
                }
                // No openat2 here (an old kernel, or a seccomp filter that hides it).
                Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {}
                Err(e) => return Err(io::Error::from(e).into()),
            }
        }
        walk_nofollow(dir_fd, rel)
    }

    /// Opens `rel` component by component with `O_NOFOLLOW`: no symbolic link is followed.
    fn walk_nofollow(dir_fd: OwnedFd, rel: &Path) -> Result<File, BeneathError> {
        let parts: Vec<_> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part),
                _ => None,
            })
            .collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(BeneathError::NotRegular("a directory"));
        };
        let refuse_link = |e: rustix::io::Errno| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => BeneathError::Symlink,
            e => BeneathError::Io(e.into()),
        };
        let mut at = dir_fd;
        for part in dirs {
            at = openat(
                &at,
                *part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(refuse_link)?;
        }
        let fd = openat(&at, *last, read_flags() | OFlags::NOFOLLOW, Mode::empty()).map_err(
            |e| match e {
                rustix::io::Errno::LOOP => BeneathError::Symlink,
                e => BeneathError::Io(e.into()),
            },
        )?;
        regular(fd)
    }

    pub(super) fn open_path(path: &Path) -> io::Result<File> {
        let fd = openat(CWD, path, read_flags(), Mode::empty())?;
        // The open did not wait for a writer; the reads may (a pipe being filled). A FIFO
        // without any writer reads as empty.
        if kind(&fd)? != FileType::RegularFile {
            fcntl_setfl(&fd, OFlags::empty())?;
        }
        Ok(File::from(fd))
    }
}

#[cfg(windows)]
mod imp {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    use super::BeneathError;

    pub(super) fn open_beneath(dir: &Path, rel: &Path) -> Result<File, BeneathError> {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS;
        let dir = std::fs::canonicalize(dir)?;
        // FILE_FLAG_BACKUP_SEMANTICS lets a directory be opened (it is then refused as a
        // directory, below, rather than with a bare "access denied"); without the backup
        // privilege it grants nothing more.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(dir.join(rel))?;
        // Where the opened handle really is, whatever links led there.
        let actual = credguard_winapi::path::final_path_of(&file)?;
        if !actual.starts_with(&dir) {
            return Err(BeneathError::Outside);
        }
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(BeneathError::NotRegular("a directory"));
        }
        if !meta.is_file() {
            return Err(BeneathError::NotRegular("not a file"));
        }
        Ok(file)
    }

    pub(super) fn open_path(path: &Path) -> io::Result<File> {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS;
        // A directory opens (FILE_FLAG_BACKUP_SEMANTICS), to be refused as one by name.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::other("it is a directory, not a file"));
        }
        Ok(file)
    }
}

#[cfg(not(any(unix, windows)))]
mod imp {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    use super::BeneathError;

    pub(super) fn open_beneath(_dir: &Path, _rel: &Path) -> Result<File, BeneathError> {
        Err(BeneathError::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "file:// is not supported on this platform",
        )))
    }

    pub(super) fn open_path(path: &Path) -> io::Result<File> {
        File::open(path)
    }
}
