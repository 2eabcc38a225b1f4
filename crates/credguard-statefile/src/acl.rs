//! Owner-only state on Windows: the access control lists of credguard's state directories.
//!
//! On Unix a state directory is mode 0700 and each file 0600. On Windows a file created in a
//! directory takes the directory's inheritable access control entries, so the directory's
//! DACL decides who can read everything written into it: journal records, lock files, the
//! emulator's state with its credential specs. Left alone, the default state directory
//! `%ProgramData%\credguard` inherits a DACL that lets every user read (and create) files.
//!
//! - **A directory credguard creates** (and each missing parent it creates on the way) is
//!   owned by the current user and gets a protected DACL, inheriting nothing from its
//!   parent, of three entries: full control for the current user, SYSTEM and
//!   Administrators, each inherited by files and subdirectories (object and container
//!   inherit). What is created inside, by credguard or anything else, inherits exactly those
//!   entries; a temporary file renamed into place keeps what it inherited in the same
//!   directory.
//! - **An existing directory** is used as it is when it is private already: no NULL DACL, no
//!   entry allowing anyone but the current user, SYSTEM, Administrators or the CREATOR OWNER
//!   and OWNER RIGHTS placeholders (which stand for whoever could create files there), and
//!   an owner among the first three. Otherwise, when the current user owns it, it is
//!   restricted as above (a warning names what was open); Windows then re-applies the
//!   inherited entries of what is inside, so files written by an older credguard lose the
//!   access they had inherited. When someone else owns it, credguard refuses it with an
//!   error naming the directory and what to do: it does not rewrite the permissions of a
//!   directory it has no claim to (a shared folder given as the state directory by mistake).
//!
//! The current user is named by the SID of the process token rather than by an SDDL alias:
//! CREATOR OWNER (`CO`) grants nothing on the directory itself, only on what is created in
//! it, to whoever creates it; OWNER RIGHTS (`OW`) follows each object's owner, which is the
//! creating token's default owner (the Administrators group for some elevated tokens) and
//! changes when someone takes ownership. The user's SID names one principal, on the
//! directory and on everything inside.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use tracing::warn;

use crate::StateFileError;
use credguard_winapi::security::{self, FileSecurity, SecurityDescriptor};
use credguard_winapi::wide::WideCString;

/// LocalSystem.
pub(crate) const SYSTEM: &str = "S-1-5-18";
/// BUILTIN\Administrators.
pub(crate) const ADMINISTRATORS: &str = "S-1-5-32-544";
/// CREATOR OWNER: in an inheritable entry, whoever creates the inheriting object.
const CREATOR_OWNER: &str = "S-1-3-0";
/// OWNER RIGHTS: the object's owner.
const OWNER_RIGHTS: &str = "S-1-3-4";

/// The SID of the user this process runs as, read once.
pub(crate) fn current_user() -> io::Result<&'static str> {
    static USER: OnceLock<String> = OnceLock::new();
    if let Some(user) = USER.get() {
        return Ok(user);
    }
    let sid = security::current_user_sid()?;
    Ok(USER.get_or_init(|| sid))
}

/// Who a private directory grants full control: the user, SYSTEM and Administrators (the
/// user once, when it is SYSTEM).
fn trusted(user: &str) -> Vec<&str> {
    let mut sids = vec![user];
    for sid in [SYSTEM, ADMINISTRATORS] {
        if sid != user {
            sids.push(sid);
        }
    }
    sids
}

/// The SDDL of a private directory: owned by `user`, protected DACL, full control (`FA`)
/// for the trusted principals, inherited by files (`OI`) and subdirectories (`CI`).
pub(crate) fn private_dir_sddl(user: &str) -> String {
    let mut sddl = format!("O:{user}D:P");
    for sid in trusted(user) {
        sddl.push_str(&format!("(A;OICI;FA;;;{sid})"));
    }
    sddl
}

/// The SDDL of a private file's DACL: protected, full control for the trusted principals.
pub(crate) fn private_file_sddl(user: &str) -> String {
    let mut sddl = "D:P".to_owned();
    for sid in trusted(user) {
        sddl.push_str(&format!("(A;;FA;;;{sid})"));
    }
    sddl
}

fn descriptor(sddl: &str) -> io::Result<SecurityDescriptor> {
    let wide = WideCString::new(sddl).map_err(|_| io::Error::other("an SDDL text with a NUL"))?;
    SecurityDescriptor::from_sddl(&wide)
}

/// What lets someone other than the current user, SYSTEM and Administrators into a
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Opening {
    /// A NULL DACL, which grants everyone full control.
    NullDacl,
    /// An entry allowing access to this SID (inherit-only entries included: they grant
    /// access to the files created inside).
    Grant(String),
    /// An entry of a kind credguard does not decode (conditional or object entries).
    UnknownEntry(u8),
    /// Someone else owns the directory, and an owner can always change its permissions.
    Owner(String),
}

impl fmt::Display for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opening::NullDacl => {
                f.write_str("it has a NULL DACL, which grants everyone full control")
            }
            Opening::Grant(sid) => write!(f, "its DACL allows access to {}", named(sid)),
            Opening::UnknownEntry(kind) => {
                write!(
                    f,
                    "its DACL has an entry of type {kind}, which credguard cannot assess"
                )
            }
            Opening::Owner(sid) => {
                write!(
                    f,
                    "it is owned by {}, who can change its permissions",
                    named(sid)
                )
            }
        }
    }
}

/// A SID with its name when it is a well-known one (`BUILTIN\Users (S-1-5-32-545)`).
fn named(sid: &str) -> String {
    let name = match sid {
        "S-1-1-0" => "Everyone",
        "S-1-2-0" => "LOCAL",
        "S-1-3-0" => "CREATOR OWNER",
        "S-1-5-2" => "NETWORK",
        "S-1-5-4" => "INTERACTIVE",
        "S-1-5-7" => "ANONYMOUS LOGON",
        "S-1-5-11" => "Authenticated Users",
        SYSTEM => "SYSTEM",
        ADMINISTRATORS => "BUILTIN\\Administrators",
        "S-1-5-32-545" => "BUILTIN\\Users",
        "S-1-5-32-546" => "BUILTIN\\Guests",
        _ => return sid.to_owned(),
    };
    format!("{name} ({sid})")
}

fn listed(openings: &[Opening]) -> String {
    openings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything that lets others into a directory with this owner and DACL.
pub(crate) fn openings(security: &FileSecurity, user: &str) -> Vec<Opening> {
    let mut found = Vec::new();
    let trusted = trusted(user);
    match &security.owner {
        Some(owner) if trusted.contains(&owner.as_str()) => {}
        Some(owner) => found.push(Opening::Owner(owner.clone())),
        // A descriptor without an owner: nobody has the owner's implicit rights.
        None => {}
    }
    let Some(dacl) = &security.dacl else {
        found.push(Opening::NullDacl);
        return found;
    };
    for ace in dacl {
        // A deny entry takes access away; an entry with an empty mask grants nothing.
        if ace.is_deny() || (ace.sid.is_some() && ace.mask == 0) {
            continue;
        }
        let opening = match &ace.sid {
            Some(sid)
                if trusted.contains(&sid.as_str())
                    || sid == CREATOR_OWNER
                    || sid == OWNER_RIGHTS =>
            {
                continue;
            }
            Some(sid) => Opening::Grant(sid.clone()),
            None => Opening::UnknownEntry(ace.kind),
        };
        if !found.contains(&opening) {
            found.push(opening);
        }
    }
    found
}

/// What to do with an existing directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Private already: use it as it is.
    Private,
    /// Open, and the current user owns it: restrict it.
    Restrict(Vec<Opening>),
    /// Open, and someone else owns it: refuse it.
    Refuse(Vec<Opening>),
}

pub(crate) fn verdict(security: &FileSecurity, user: &str) -> Verdict {
    let openings = openings(security, user);
    if openings.is_empty() {
        Verdict::Private
    } else if security.owner.as_deref() == Some(user) {
        Verdict::Restrict(openings)
    } else {
        Verdict::Refuse(openings)
    }
}

/// Why an existing directory is refused, and what to do about it.
#[derive(Debug)]
struct NotPrivate {
    dir: String,
    user: String,
    owner: Option<String>,
    openings: Vec<Opening>,
}

impl fmt::Display for NotPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = self
            .owner
            .as_deref()
            .map_or_else(|| "nobody".to_owned(), named);
        write!(
            f,
            "other users can access it: {openings}. credguard restricts a directory only when \
             the current user ({user}) owns it, and this one is owned by {owner}: make the \
             current user its owner (`icacls \"{dir}\" /setowner *{user}`, from an elevated \
             prompt) and run credguard again, or restrict it yourself to its owner, SYSTEM and \
             Administrators, or keep the state in another directory",
            openings = listed(&self.openings),
            user = self.user,
            dir = self.dir,
        )
    }
}

impl std::error::Error for NotPrivate {}

/// Creates `dir` and its missing parents owner-only, or checks (and restricts, or refuses)
/// the existing `dir`: see the module documentation.
///
/// # Errors
/// A directory cannot be created, its permissions cannot be read or set, or it is open to
/// others and owned by someone else.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), StateFileError> {
    let user = current_user()
        .map_err(|e| StateFileError::new("reading the current user's SID for", dir, e))?;
    ensure_private_dir_as(dir, user)
}

/// [`ensure_private_dir`] for the user `user` (tests pretend to be someone else).
pub(crate) fn ensure_private_dir_as(dir: &Path, user: &str) -> Result<(), StateFileError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.is_dir())
        .collect();
    if !missing.is_empty() {
        let private = descriptor(&private_dir_sddl(user))
            .map_err(|e| StateFileError::new("creating the directory", dir, e))?;
        let create = |path: &Path| -> io::Result<()> {
            security::create_directory(&WideCString::from_path(path)?, &private)
        };
        // Outermost first; `dir` itself last.
        let mut created = false;
        for path in missing.iter().rev() {
            created = match create(path) {
                Ok(()) => true,
                // Another process created it meanwhile: `dir` is then checked below.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => false,
                Err(e) => return Err(StateFileError::new("creating the directory", path, e)),
            };
        }
        if created {
            return Ok(());
        }
    }
    check_existing(dir, user)
}

fn check_existing(dir: &Path, user: &str) -> Result<(), StateFileError> {
    let reading = |e| StateFileError::new("reading the permissions of the directory", dir, e);
    let wide = WideCString::from_path(dir).map_err(reading)?;
    let security = security::file_security(&wide).map_err(reading)?;
    match verdict(&security, user) {
        Verdict::Private => Ok(()),
        Verdict::Restrict(openings) => {
            descriptor(&private_dir_sddl(user))
                .and_then(|d| security::set_protected_dacl(&wide, &d))
                .map_err(|e| {
                    StateFileError::new("restricting the permissions of the directory", dir, e)
                })?;
            warn!(
                dir = %dir.display(),
                was = %listed(&openings),
                "the state directory was open to other users: restricted it to its owner, SYSTEM and Administrators"
            );
            Ok(())
        }
        Verdict::Refuse(openings) => Err(refuse(dir, user, security.owner, openings)),
    }
}

fn refuse(dir: &Path, user: &str, owner: Option<String>, openings: Vec<Opening>) -> StateFileError {
    StateFileError::new(
        "using the directory",
        dir,
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            NotPrivate {
                dir: dir.display().to_string(),
                user: user.to_owned(),
                owner,
                openings,
            },
        ),
    )
}

/// Checks an existing directory for a command that only reads, changing nothing: private
/// is fine, open and owned by someone else is refused as [`ensure_private_dir`] refuses it,
/// open and owned by the current user is used with a warning (the next command that
/// writes restricts it).
///
/// # Errors
/// Its permissions cannot be read, or it is open to others and owned by someone else.
pub(crate) fn check_private_dir(dir: &Path) -> Result<(), StateFileError> {
    let user = current_user()
        .map_err(|e| StateFileError::new("reading the current user's SID for", dir, e))?;
    check_private_dir_as(dir, user)
}

/// [`check_private_dir`] for the user `user` (tests pretend to be someone else).
pub(crate) fn check_private_dir_as(dir: &Path, user: &str) -> Result<(), StateFileError> {
    let reading = |e| StateFileError::new("reading the permissions of the directory", dir, e);
    let wide = WideCString::from_path(dir).map_err(reading)?;
    let security = security::file_security(&wide).map_err(reading)?;
    match verdict(&security, user) {
        Verdict::Private => Ok(()),
        Verdict::Restrict(openings) => {
            warn!(
                dir = %dir.display(),
                open_to = %listed(&openings),
                "the state directory is open to other users; the next credguard command that writes restricts it"
            );
            Ok(())
        }
        Verdict::Refuse(openings) => Err(refuse(dir, user, security.owner, openings)),
    }
}

/// Gives a file a protected DACL of full control for the current user, SYSTEM and
/// Administrators (for a file moved in from elsewhere, which keeps its own DACL).
///
/// # Errors
/// The current user cannot be found out or the DACL cannot be set.
pub fn make_file_private(path: &Path) -> io::Result<()> {
    let descriptor = descriptor(&private_file_sddl(current_user()?))?;
    security::set_protected_dacl(&WideCString::from_path(path)?, &descriptor)
}

#[cfg(test)]
mod tests;
