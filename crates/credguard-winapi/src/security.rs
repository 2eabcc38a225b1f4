//! Security descriptors of files and directories, their owners and DACLs, and the SID of
//! the current user. Security identifiers cross as text (`S-1-5-18`), never as pointers.

use std::ffi::c_void;
use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, ERROR_SUCCESS, HANDLE, HLOCAL, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, ACL_SIZE_INFORMATION, AclSizeInformation,
    DACL_SECURITY_INFORMATION, GetAce, GetAclInformation, GetSecurityDescriptorControl,
    GetSecurityDescriptorDacl, GetSecurityDescriptorOwner, GetTokenInformation,
    OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SE_DACL_PROTECTED, SECURITY_ATTRIBUTES, TOKEN_ACCESS_MASK, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;
use windows_sys::Win32::System::SystemServices::{
    ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE, ACCESS_DENIED_CALLBACK_ACE_TYPE,
    ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE, ACCESS_DENIED_OBJECT_ACE_TYPE,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
use windows_sys::core::PWSTR;

use crate::wide::{WideCString, take_local_string};
use crate::win32_error;

/// An allocation Windows made with `LocalAlloc` and handed over, freed when dropped.
struct LocalBox(*mut c_void);

impl Drop for LocalBox {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: self.0 was allocated by Windows with LocalAlloc and handed to us (the
            // constructors say where); nothing points into it once this value is dropped
            // (borrows of it end first), and it is freed exactly once, here.
            let leaked: HLOCAL = unsafe { LocalFree(self.0) };
            debug_assert!(leaked.is_null(), "LocalFree failed");
        }
    }
}

/// A security descriptor (owner, DACL, control flags) that Windows allocated, freed when
/// dropped.
pub struct SecurityDescriptor(LocalBox);

impl std::fmt::Debug for SecurityDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityDescriptor")
    }
}

impl SecurityDescriptor {
    /// `ConvertStringSecurityDescriptorToSecurityDescriptorW`: a descriptor from its SDDL text.
    pub fn from_sddl(sddl: &WideCString) -> io::Result<Self> {
        let mut raw: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: sddl is NUL-terminated and outlives the call; raw is a valid out-pointer;
        // the size out-pointer is optional and null.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut raw,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // On success raw is a self-relative descriptor from LocalAlloc that we now own.
        Ok(SecurityDescriptor(LocalBox(raw)))
    }

    fn as_raw(&self) -> PSECURITY_DESCRIPTOR {
        self.0.0
    }

    /// The owner, the DACL and whether it is protected, as this descriptor holds them.
    pub fn security(&self) -> io::Result<FileSecurity> {
        let mut control = 0u16;
        let mut revision = 0u32;
        // SAFETY: the descriptor is valid (owned by self); control and revision are valid
        // out-pointers.
        let ok =
            unsafe { GetSecurityDescriptorControl(self.as_raw(), &mut control, &mut revision) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut owner: PSID = ptr::null_mut();
        let mut defaulted = 0;
        // SAFETY: as above; owner and defaulted are valid out-pointers.
        if unsafe { GetSecurityDescriptorOwner(self.as_raw(), &mut owner, &mut defaulted) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let owner = if owner.is_null() {
            None
        } else {
            // SAFETY: owner points to the owner SID inside the descriptor, which self keeps
            // alive during the call.
            Some(unsafe { sid_string(owner) }?)
        };
        let mut present = 0;
        let mut dacl: *mut ACL = ptr::null_mut();
        // SAFETY: as above; present, dacl and defaulted are valid out-pointers.
        let ok = unsafe {
            GetSecurityDescriptorDacl(self.as_raw(), &mut present, &mut dacl, &mut defaulted)
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // No DACL, or a NULL one: either way everyone has full access.
        let dacl = if present == 0 || dacl.is_null() {
            None
        } else {
            // SAFETY: dacl points to the ACL inside the descriptor, which self keeps alive
            // and unchanged during the call.
            Some(unsafe { acl_entries(dacl) }?)
        };
        Ok(FileSecurity {
            owner,
            dacl,
            protected: control & SE_DACL_PROTECTED != 0,
        })
    }
}

/// One access control entry of a DACL, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// `ACCESS_ALLOWED_ACE_TYPE`, `ACCESS_DENIED_ACE_TYPE`, ...
    pub kind: u8,
    /// `OBJECT_INHERIT_ACE`, `CONTAINER_INHERIT_ACE`, `INHERITED_ACE`, ...
    pub flags: u8,
    /// The access mask; 0 for the kinds not decoded.
    pub mask: u32,
    /// The trustee (`S-1-5-18`), for allow and deny entries; `None` for the other kinds.
    pub sid: Option<String>,
}

impl Ace {
    /// Whether the entry is of a kind that denies access (and can therefore grant none).
    pub fn is_deny(&self) -> bool {
        matches!(
            u32::from(self.kind),
            ACCESS_DENIED_ACE_TYPE
                | ACCESS_DENIED_OBJECT_ACE_TYPE
                | ACCESS_DENIED_CALLBACK_ACE_TYPE
                | ACCESS_DENIED_CALLBACK_OBJECT_ACE_TYPE
        )
    }
}

/// The owner and DACL of a file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSecurity {
    /// The owner's SID, if the descriptor names one.
    pub owner: Option<String>,
    /// The entries, in order; `None` for a NULL DACL, which lets everyone do everything.
    pub dacl: Option<Vec<Ace>>,
    /// Whether the DACL is protected from inheriting entries of the parent directory.
    pub protected: bool,
}

/// `GetNamedSecurityInfoW`: the owner and the DACL of a file or directory.
pub fn file_security(path: &WideCString) -> io::Result<FileSecurity> {
    let mut raw: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: path is NUL-terminated and outlives the call; raw is a valid out-pointer; the
    // owner, group, DACL and SACL out-pointers are optional when the whole descriptor is
    // asked for, and null.
    let status = unsafe {
        GetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut raw,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(win32_error(status));
    }
    // On success raw is a self-relative descriptor from LocalAlloc that we now own.
    SecurityDescriptor(LocalBox(raw)).security()
}

/// The entries of an ACL.
///
/// # Safety
/// `acl` points to a valid ACL that stays alive and unchanged during the call.
unsafe fn acl_entries(acl: *const ACL) -> io::Result<Vec<Ace>> {
    let mut info = ACL_SIZE_INFORMATION {
        AceCount: 0,
        AclBytesInUse: 0,
        AclBytesFree: 0,
    };
    // SAFETY: acl is valid (caller's contract); info is a writable ACL_SIZE_INFORMATION of
    // the size passed.
    let ok = unsafe {
        GetAclInformation(
            acl,
            (&raw mut info).cast(),
            size_of::<ACL_SIZE_INFORMATION>() as u32,
            AclSizeInformation,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut entries = Vec::with_capacity(info.AceCount as usize);
    for index in 0..info.AceCount {
        let mut ace: *mut c_void = ptr::null_mut();
        // SAFETY: acl is valid, index is below its entry count, ace is a valid out-pointer.
        if unsafe { GetAce(acl, index, &mut ace) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: ace points to an entry inside the ACL; every entry starts with an
        // ACE_HEADER, and entries are DWORD-aligned inside an ACL.
        let header = unsafe { ace.cast::<ACE_HEADER>().read() };
        let kind = u32::from(header.AceType);
        let (mask, sid) = if kind == ACCESS_ALLOWED_ACE_TYPE || kind == ACCESS_DENIED_ACE_TYPE {
            // Allow and deny entries share one layout: header, mask, then the SID from
            // `SidStart` on, inside the entry (whose AceSize covers it).
            let entry = ace.cast::<ACCESS_ALLOWED_ACE>();
            // SAFETY: entry points to an ACCESS_ALLOWED_ACE-shaped entry (kind checked
            // above), DWORD-aligned, inside the ACL; the mask is read by value.
            let mask = unsafe { (*entry).Mask };
            // SAFETY: as above; only the address of SidStart is taken, no reference made.
            let sid: PSID = unsafe { &raw mut (*entry).SidStart }.cast();
            // SAFETY: sid points to the entry's SID, inside the ACL, alive during the call.
            (mask, Some(unsafe { sid_string(sid) }?))
        } else {
            (0, None)
        };
        entries.push(Ace {
            kind: header.AceType,
            flags: header.AceFlags,
            mask,
            sid,
        });
    }
    Ok(entries)
}

/// `ConvertSidToStringSidW`: `S-1-5-18` and so on.
///
/// # Safety
/// `sid` points to a valid SID that stays alive during the call.
unsafe fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text: PWSTR = ptr::null_mut();
    // SAFETY: sid is valid (caller's contract); text is a valid out-pointer.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success text is a NUL-terminated string from LocalAlloc that we own and
    // do not use afterwards.
    unsafe { take_local_string(text) }
        .ok_or_else(|| io::Error::other("ConvertSidToStringSidW returned no string"))
}

/// A kernel handle, closed when dropped.
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: self.0 is a handle this process opened and closes once, here.
        unsafe { CloseHandle(self.0) };
    }
}

/// `OpenProcessToken` of this process.
fn process_token(access: TOKEN_ACCESS_MASK) -> io::Result<OwnedHandle> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing; token is a
    // valid out-pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), access, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedHandle(token))
}

/// The `TokenUser` information of a token: a TOKEN_USER followed by the SID it points to.
/// `u64` elements, so that the TOKEN_USER (which holds a pointer) is aligned.
fn token_user(token: &OwnedHandle) -> io::Result<Vec<u64>> {
    let mut size = 0u32;
    // SAFETY: the token is open with TOKEN_QUERY; a null buffer of length 0 asks for the
    // size only; size is a valid out-pointer. The call fails (ERROR_INSUFFICIENT_BUFFER) by
    // design; only the size matters.
    unsafe { GetTokenInformation(token.0, TokenUser, ptr::null_mut(), 0, &mut size) };
    if size == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u64; (size as usize).div_ceil(size_of::<u64>())];
    // SAFETY: buffer is valid for at least `size` bytes of writes and 8-byte aligned; size
    // is a valid out-pointer.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            size,
            &mut size,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buffer)
}

/// The SID of the user this process runs as (`TokenUser` of the process token), as text.
pub fn current_user_sid() -> io::Result<String> {
    let token = process_token(TOKEN_QUERY)?;
    let buffer = token_user(&token)?;
    // SAFETY: GetTokenInformation(TokenUser) filled the buffer with a TOKEN_USER at its
    // start (the buffer is 8-byte aligned and at least that large), whose Sid points into
    // the buffer, which lives until the end of this function.
    let sid = unsafe { buffer.as_ptr().cast::<TOKEN_USER>().read() }
        .User
        .Sid;
    // SAFETY: sid points to a valid SID inside buffer, alive during the call.
    unsafe { sid_string(sid) }
}

/// `CreateDirectoryW` with a security descriptor: a directory (its parent must exist) whose
/// owner and DACL are those of `descriptor`. An existing directory is an error of kind
/// `AlreadyExists`.
pub fn create_directory(path: &WideCString, descriptor: &SecurityDescriptor) -> io::Result<()> {
    let attributes = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.as_raw(),
        bInheritHandle: 0,
    };
    // SAFETY: path is NUL-terminated and outlives the call; attributes is a valid
    // SECURITY_ATTRIBUTES whose descriptor is alive (borrowed) during the call.
    if unsafe { CreateDirectoryW(path.as_ptr(), &attributes) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `SetNamedSecurityInfoW`: replaces the DACL of a file or directory by the DACL of
/// `descriptor`, protected from inheritance. On a directory, Windows then re-applies the
/// inheritable entries to what is inside (the entries those files inherited are replaced).
pub fn set_protected_dacl(path: &WideCString, descriptor: &SecurityDescriptor) -> io::Result<()> {
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = ptr::null_mut();
    // SAFETY: the descriptor is valid; present, dacl and defaulted are valid out-pointers.
    let ok = unsafe {
        GetSecurityDescriptorDacl(descriptor.as_raw(), &mut present, &mut dacl, &mut defaulted)
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    if present == 0 || dacl.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the security descriptor has no DACL to set",
        ));
    }
    // SAFETY: path is NUL-terminated and outlives the call; dacl points into the
    // descriptor, which is borrowed (alive) during the call; only the DACL is set, so the
    // owner, group and SACL pointers are null.
    let status = unsafe {
        SetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    };
    if status != ERROR_SUCCESS {
        return Err(win32_error(status));
    }
    Ok(())
}

/// Runs `f` on this thread as a stranger would: impersonating this process's own token
/// restricted (`CreateRestrictedToken`) so that its user and the Administrators group can
/// only deny access, and without any privilege but bypass-traverse-checking. An access
/// check then goes as for another, ordinary local user: only what the token's remaining
/// groups (Everyone, Users, Authenticated Users, INTERACTIVE, ...) are granted counts.
///
/// Test support (feature `test-support`): Windows enforces such checks, Wine does not.
#[cfg(feature = "test-support")]
pub fn as_stranger<R>(f: impl FnOnce() -> R) -> io::Result<R> {
    use windows_sys::Win32::Security::Authorization::ConvertStringSidToSidW;
    use windows_sys::Win32::Security::{
        CreateRestrictedToken, DISABLE_MAX_PRIVILEGE, ImpersonateLoggedOnUser, RevertToSelf,
        SID_AND_ATTRIBUTES, TOKEN_DUPLICATE, TOKEN_IMPERSONATE,
    };

    let token = process_token(TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_IMPERSONATE)?;
    let user = token_user(&token)?;
    // SAFETY: as in current_user_sid: the buffer starts with an aligned TOKEN_USER whose
    // Sid points into the buffer, which lives until the end of this function.
    let user_sid = unsafe { user.as_ptr().cast::<TOKEN_USER>().read() }
        .User
        .Sid;
    let administrators_text =
        WideCString::new("S-1-5-32-544").map_err(|_| io::Error::other("a SID with a NUL"))?;
    let mut administrators: PSID = ptr::null_mut();
    // SAFETY: the text is NUL-terminated and outlives the call; administrators is a valid
    // out-pointer.
    if unsafe { ConvertStringSidToSidW(administrators_text.as_ptr(), &mut administrators) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // On success the SID is a LocalAlloc'd allocation that we own.
    let administrators = LocalBox(administrators);
    let disable = [
        SID_AND_ATTRIBUTES {
            Sid: user_sid,
            Attributes: 0,
        },
        SID_AND_ATTRIBUTES {
            Sid: administrators.0,
            Attributes: 0,
        },
    ];
    let mut restricted: HANDLE = ptr::null_mut();
    // SAFETY: the token is open with TOKEN_DUPLICATE; disable holds two valid SIDs, alive
    // during the call (in `user` and `administrators`); no privilege and no restricting SID
    // is passed (counts 0, null pointers); restricted is a valid out-pointer.
    let ok = unsafe {
        CreateRestrictedToken(
            token.0,
            DISABLE_MAX_PRIVILEGE,
            disable.len() as u32,
            disable.as_ptr(),
            0,
            ptr::null(),
            0,
            ptr::null(),
            &mut restricted,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let restricted = OwnedHandle(restricted);
    // SAFETY: restricted is an open primary token with the access of `token`, which
    // includes the TOKEN_QUERY and TOKEN_DUPLICATE the call needs.
    if unsafe { ImpersonateLoggedOnUser(restricted.0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    /// Ends the impersonation on every path out, unwinding included.
    struct Revert;
    impl Drop for Revert {
        fn drop(&mut self) {
            // SAFETY: ends the impersonation this thread started above; takes no argument.
            if unsafe { RevertToSelf() } == 0 {
                // The thread would go on as the stranger: nothing after this is trustworthy.
                std::process::abort();
            }
        }
    }
    let _revert = Revert;
    Ok(f())
}

#[cfg(test)]
mod tests {
    use windows_sys::Win32::Security::{CONTAINER_INHERIT_ACE, OBJECT_INHERIT_ACE};
    use windows_sys::Win32::Storage::FileSystem::{FILE_ALL_ACCESS, FILE_GENERIC_READ};

    use super::*;

    #[test]
    fn the_current_user_has_a_sid() {
        let sid = current_user_sid().unwrap();
        assert!(sid.starts_with("S-1-5-"), "{sid}");
    }

    #[test]
    fn a_descriptor_from_sddl_reads_back_as_written() {
        let sddl = "O:S-1-5-18D:P(A;OICI;FA;;;S-1-5-18)(D;;FR;;;S-1-1-0)(A;;FR;;;S-1-5-32-545)";
        let descriptor = SecurityDescriptor::from_sddl(&WideCString::new(sddl).unwrap()).unwrap();
        let security = descriptor.security().unwrap();
        let oici = (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) as u8;
        let entry = |kind: u32, flags: u8, mask: u32, sid: &str| Ace {
            kind: kind as u8,
            flags,
            mask,
            sid: Some(sid.to_owned()),
        };
        assert_eq!(
            security,
            FileSecurity {
                owner: Some("S-1-5-18".to_owned()),
                dacl: Some(vec![
                    entry(ACCESS_ALLOWED_ACE_TYPE, oici, FILE_ALL_ACCESS, "S-1-5-18"),
                    entry(ACCESS_DENIED_ACE_TYPE, 0, FILE_GENERIC_READ, "S-1-1-0"),
                    entry(
                        ACCESS_ALLOWED_ACE_TYPE,
                        0,
                        FILE_GENERIC_READ,
                        "S-1-5-32-545"
                    ),
                ]),
                protected: true,
            }
        );
        let dacl = security.dacl.unwrap();
        assert!(!dacl[0].is_deny() && dacl[1].is_deny() && !dacl[2].is_deny());
    }

    #[test]
    fn a_descriptor_without_a_dacl_cannot_be_set() {
        let descriptor =
            SecurityDescriptor::from_sddl(&WideCString::new("O:S-1-5-18").unwrap()).unwrap();
        assert_eq!(descriptor.security().unwrap().dacl, None);
        let dir = tempfile::tempdir().unwrap();
        let path = WideCString::from_path(dir.path()).unwrap();
        let err = set_protected_dacl(&path, &descriptor).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn bad_sddl_is_an_error() {
        assert!(SecurityDescriptor::from_sddl(&WideCString::new("D:(nonsense)").unwrap()).is_err());
    }
}
