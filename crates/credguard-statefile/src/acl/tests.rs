//! Tests of owner-only state directories.
//!
//! Three kinds, by what they need:
//! - the policy (`openings`, `verdict`, the refusal message) on descriptors made up here,
//!   and the descriptor credguard creates directories with, read back from memory: these
//!   run anywhere the crate runs on Windows, Wine included;
//! - what the file system reports for directories credguard creates or refuses: these run
//!   under Wine too, where they check what Wine can show (it keeps no security descriptor:
//!   it maps a DACL to Unix mode bits and reports one made up from them);
//! - the stored DACLs, their inheritance by the files credguard writes, the restriction of
//!   an existing directory, and that another user is actually kept out: `#[ignore]`d, for a
//!   Windows host (`docs/WINDOWS.md`), because Wine stores, inherits and enforces none of it.

use std::fs;

use windows_sys::Win32::Security::{
    CONTAINER_INHERIT_ACE, INHERIT_ONLY_ACE, INHERITED_ACE, OBJECT_INHERIT_ACE,
};
use windows_sys::Win32::Storage::FileSystem::{FILE_ALL_ACCESS, FILE_GENERIC_READ};
use windows_sys::Win32::System::SystemServices::{ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE};

use super::*;
use crate::write_atomic;
use credguard_winapi::security::Ace;

/// Someone who is not the current user.
const OTHER_USER: &str = "S-1-5-21-1004336348-1177238915-682003330-1001";
const EVERYONE: &str = "S-1-1-0";
const USERS: &str = "S-1-5-32-545";

const OICI: u8 = (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) as u8;

fn me() -> &'static str {
    current_user().expect("the SID of the current user")
}

fn allow(sid: &str, flags: u8, mask: u32) -> Ace {
    Ace {
        kind: ACCESS_ALLOWED_ACE_TYPE as u8,
        flags,
        mask,
        sid: Some(sid.to_owned()),
    }
}

/// Full control for the current user, SYSTEM and Administrators, with these flags.
fn owner_only(flags: u8) -> Vec<Ace> {
    [me(), SYSTEM, ADMINISTRATORS]
        .into_iter()
        .map(|sid| allow(sid, flags, FILE_ALL_ACCESS))
        .collect()
}

fn security_of(path: &Path) -> FileSecurity {
    security::file_security(&WideCString::from_path(path).unwrap())
        .unwrap_or_else(|e| panic!("reading the security of {}: {e}", path.display()))
}

fn dacl_of(path: &Path) -> Vec<Ace> {
    security_of(path)
        .dacl
        .unwrap_or_else(|| panic!("{} has a NULL DACL", path.display()))
}

/// Creates a directory with the descriptor of `sddl`.
fn make_dir(path: &Path, sddl: &str) {
    security::create_directory(
        &WideCString::from_path(path).unwrap(),
        &descriptor(sddl).unwrap(),
    )
    .unwrap();
}

/// A directory of the current user that Everyone can read, inherited by what is inside.
fn open_dir(path: &Path) {
    let user = me();
    make_dir(
        path,
        &format!("O:{user}D:(A;OICI;FA;;;{user})(A;OICI;FR;;;WD)"),
    );
}

fn security(owner: Option<&str>, dacl: Option<Vec<Ace>>) -> FileSecurity {
    FileSecurity {
        owner: owner.map(str::to_owned),
        dacl,
        protected: false,
    }
}

// --- The policy -------------------------------------------------------------------------------

#[test]
fn the_sddl_names_the_user_system_and_administrators() {
    let user = "S-1-5-21-1-2-3-1000";
    assert_eq!(
        private_dir_sddl(user),
        "O:S-1-5-21-1-2-3-1000D:P(A;OICI;FA;;;S-1-5-21-1-2-3-1000)(A;OICI;FA;;;S-1-5-18)(A;OICI;FA;;;S-1-5-32-544)"
    );
    assert_eq!(
        private_file_sddl(user),
        "D:P(A;;FA;;;S-1-5-21-1-2-3-1000)(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-5-32-544)"
    );
    // A service running as LocalSystem: SYSTEM once.
    assert_eq!(
        private_dir_sddl(SYSTEM),
        "O:S-1-5-18D:P(A;OICI;FA;;;S-1-5-18)(A;OICI;FA;;;S-1-5-32-544)"
    );
}

#[test]
fn the_descriptor_new_directories_get_is_exactly_owner_only_and_protected() {
    // Read back from the descriptor handed to CreateDirectoryW, through the same ACL walk
    // as a directory's: what Windows parses our SDDL into.
    let user = me();
    let created = descriptor(&private_dir_sddl(user))
        .unwrap()
        .security()
        .unwrap();
    assert_eq!(
        created,
        FileSecurity {
            owner: Some(user.to_owned()),
            dacl: Some(owner_only(OICI)),
            protected: true,
        }
    );
    let file = descriptor(&private_file_sddl(user))
        .unwrap()
        .security()
        .unwrap();
    assert_eq!(
        file,
        FileSecurity {
            owner: None,
            dacl: Some(owner_only(0)),
            protected: true,
        }
    );
    assert_eq!(verdict(&created, user), Verdict::Private);
}

#[test]
fn only_the_user_system_administrators_and_creator_placeholders_may_be_granted() {
    let user = "S-1-5-21-1-2-3-1000";
    let private = security(
        Some(ADMINISTRATORS),
        Some(vec![
            allow(SYSTEM, OICI, FILE_ALL_ACCESS),
            allow(ADMINISTRATORS, OICI, FILE_ALL_ACCESS),
            allow(user, OICI | INHERITED_ACE as u8, FILE_ALL_ACCESS),
            // What %ProgramData% hands down, minus Users: the creator of a file is someone
            // who could create it.
            allow(
                CREATOR_OWNER,
                OICI | INHERIT_ONLY_ACE as u8,
                FILE_ALL_ACCESS,
            ),
            allow(OWNER_RIGHTS, 0, FILE_ALL_ACCESS),
            // Denying takes access away; an empty mask grants nothing.
            Ace {
                kind: ACCESS_DENIED_ACE_TYPE as u8,
                flags: OICI,
                mask: FILE_ALL_ACCESS,
                sid: Some(EVERYONE.to_owned()),
            },
            allow(USERS, OICI, 0),
            Ace {
                kind: 10, // ACCESS_DENIED_CALLBACK_ACE_TYPE: a conditional denial
                flags: 0,
                mask: 0,
                sid: None,
            },
        ]),
    );
    assert_eq!(openings(&private, user), vec![]);
    assert_eq!(verdict(&private, user), Verdict::Private);
}

#[test]
fn grants_to_others_a_null_dacl_unknown_entries_and_foreign_owners_are_openings() {
    let user = "S-1-5-21-1-2-3-1000";
    // %ProgramData%\credguard as an older credguard left it.
    let inherited = security(
        Some(user),
        Some(vec![
            allow(SYSTEM, OICI | INHERITED_ACE as u8, FILE_ALL_ACCESS),
            allow(ADMINISTRATORS, OICI | INHERITED_ACE as u8, FILE_ALL_ACCESS),
            allow(USERS, OICI | INHERITED_ACE as u8, FILE_GENERIC_READ),
            // Inherit-only: grants nothing on the directory, everything on new files.
            allow(
                USERS,
                CONTAINER_INHERIT_ACE as u8 | INHERIT_ONLY_ACE as u8,
                0x6,
            ),
            allow(EVERYONE, 0, FILE_GENERIC_READ),
            Ace {
                kind: 9, // ACCESS_ALLOWED_CALLBACK_ACE_TYPE: a conditional entry
                flags: 0,
                mask: 0,
                sid: None,
            },
        ]),
    );
    assert_eq!(
        openings(&inherited, user),
        vec![
            Opening::Grant(USERS.to_owned()),
            Opening::Grant(EVERYONE.to_owned()),
            Opening::UnknownEntry(9),
        ]
    );
    assert!(matches!(verdict(&inherited, user), Verdict::Restrict(o) if o.len() == 3));

    let null_dacl = security(Some(user), None);
    assert_eq!(openings(&null_dacl, user), vec![Opening::NullDacl]);

    // Owned by someone else: even a private DACL can be changed by its owner.
    let foreign = security(
        Some(OTHER_USER),
        Some(vec![allow(user, OICI, FILE_ALL_ACCESS)]),
    );
    assert_eq!(
        verdict(&foreign, user),
        Verdict::Refuse(vec![Opening::Owner(OTHER_USER.to_owned())])
    );
    // Owned by Administrators (an elevated prompt made it) and open: not ours to restrict.
    let by_admins = security(Some(ADMINISTRATORS), inherited.dacl.clone());
    assert!(matches!(verdict(&by_admins, user), Verdict::Refuse(o) if o.len() == 3));
}

#[test]
fn the_refusal_says_what_is_open_and_what_to_do() {
    let refusal = NotPrivate {
        dir: r"C:\ProgramData\credguard\journal\hcs".to_owned(),
        user: "S-1-5-21-1-2-3-1000".to_owned(),
        owner: Some(ADMINISTRATORS.to_owned()),
        openings: vec![
            Opening::Grant(USERS.to_owned()),
            Opening::Grant("S-1-5-21-1-2-3-1001".to_owned()),
        ],
    };
    assert_eq!(
        refusal.to_string(),
        "other users can access it: its DACL allows access to BUILTIN\\Users (S-1-5-32-545); \
         its DACL allows access to S-1-5-21-1-2-3-1001. credguard restricts a directory only \
         when the current user (S-1-5-21-1-2-3-1000) owns it, and this one is owned by \
         BUILTIN\\Administrators (S-1-5-32-544): make the current user its owner \
         (`icacls \"C:\\ProgramData\\credguard\\journal\\hcs\" /setowner *S-1-5-21-1-2-3-1000`, \
         from an elevated prompt) and run credguard again, or restrict it yourself to its \
         owner, SYSTEM and Administrators, or keep the state in another directory"
    );
    assert_eq!(
        Opening::NullDacl.to_string(),
        "it has a NULL DACL, which grants everyone full control"
    );
    assert_eq!(
        Opening::Owner(OTHER_USER.to_owned()).to_string(),
        format!("it is owned by {OTHER_USER}, who can change its permissions")
    );
}

// --- The file system, as far as Wine can show it -----------------------------------------------

#[test]
fn new_state_directories_and_their_parents_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let c = a.join("b").join("c");
    crate::ensure_private_dir(&c).unwrap();
    for dir in [&a, &a.join("b"), &c] {
        let found = security_of(dir);
        assert_eq!(found.owner.as_deref(), Some(me()), "{}", dir.display());
        assert_eq!(
            openings(&found, me()),
            vec![],
            "{}: {found:?}",
            dir.display()
        );
    }
    // Again: now an existing private directory, used as it is.
    let before = security_of(&c);
    crate::ensure_private_dir(&c).unwrap();
    assert_eq!(security_of(&c), before);
}

#[test]
fn a_private_existing_directory_is_used_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    let user = me();
    // The user alone, without Administrators: private too, and not rewritten.
    make_dir(&dir, &format!("O:{user}D:P(A;OICI;FA;;;{user})"));
    let before = security_of(&dir);
    assert_eq!(openings(&before, user), vec![]);
    crate::ensure_private_dir(&dir).unwrap();
    assert_eq!(security_of(&dir), before);
}

#[test]
fn an_open_directory_owned_by_someone_else_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    open_dir(&dir);
    let before = security_of(&dir);
    assert!(
        openings(&before, me()).contains(&Opening::Grant(EVERYONE.to_owned())),
        "the test directory must be open: {before:?}"
    );
    // Seen by another user, the directory is open and not theirs.
    let err = ensure_private_dir_as(&dir, OTHER_USER).unwrap_err();
    assert_eq!(err.action, "using the directory");
    assert_eq!(err.path, dir);
    assert_eq!(err.source.kind(), io::ErrorKind::PermissionDenied);
    let message = err.source.to_string();
    for part in [
        "other users can access it: ",
        "its DACL allows access to Everyone (S-1-1-0)",
        &format!("its DACL allows access to {}", me()),
        &format!("it is owned by {}, who can change its permissions", me()),
        &format!("when the current user ({OTHER_USER}) owns it"),
        &format!("`icacls \"{}\" /setowner *{OTHER_USER}`", dir.display()),
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert_eq!(
        security_of(&dir),
        before,
        "a refused directory is not changed"
    );
}

#[test]
fn a_read_only_check_refuses_what_ensure_refuses_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    open_dir(&dir);
    let before = security_of(&dir);
    let err = check_private_dir_as(&dir, OTHER_USER).unwrap_err();
    assert_eq!(err.action, "using the directory");
    let message = err.source.to_string();
    assert!(
        message.contains("Everyone (S-1-1-0)") && message.contains(&format!("owned by {}", me())),
        "{message}"
    );
    // Open but the current user's: used as it is (a writing command restricts it).
    check_private_dir_as(&dir, me()).unwrap();
    assert_eq!(
        security_of(&dir),
        before,
        "a read-only check changes nothing"
    );
}

// --- A Windows host only ----------------------------------------------------------------------

#[test]
#[ignore = "needs a Windows host: Wine keeps no security descriptor (it maps a DACL to Unix mode bits and reports one made up from them)"]
fn a_new_state_directory_has_exactly_the_owner_only_protected_dacl() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = a.join("b");
    crate::ensure_private_dir(&b).unwrap();
    for dir in [&a, &b] {
        assert_eq!(
            security_of(dir),
            FileSecurity {
                owner: Some(me().to_owned()),
                dacl: Some(owner_only(OICI)),
                protected: true,
            },
            "{}",
            dir.display()
        );
    }
}

#[test]
#[ignore = "needs a Windows host: Wine keeps no security descriptor, so it cannot show a restricted one"]
fn an_open_directory_of_the_current_user_is_restricted_with_what_is_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old-state");
    open_dir(&dir);
    // Written by an older credguard: inherits Everyone's read access.
    fs::write(dir.join("state.json"), b"{}").unwrap();
    assert!(
        dacl_of(&dir.join("state.json"))
            .iter()
            .any(|ace| ace.sid.as_deref() == Some(EVERYONE)),
        "the test file must start readable by Everyone"
    );
    crate::ensure_private_dir(&dir).unwrap();
    assert_eq!(
        security_of(&dir),
        FileSecurity {
            owner: Some(me().to_owned()),
            dacl: Some(owner_only(OICI)),
            protected: true,
        }
    );
    // Windows re-applied the inherited entries of the file already there.
    assert_eq!(
        dacl_of(&dir.join("state.json")),
        owner_only(INHERITED_ACE as u8)
    );
}

#[test]
#[ignore = "needs a Windows host: Wine does not enforce access control lists on files"]
fn another_user_cannot_read_list_or_write_the_state() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    crate::ensure_private_dir(&state).unwrap();
    let secret = state.join("state.json");
    write_atomic(&secret, b"{\"secret\":true}").unwrap();
    // The control: the same stranger can read what is open to Everyone, so a refusal below
    // comes from the DACL, not from the way the stranger is made.
    let open = tmp.path().join("open");
    open_dir(&open);
    fs::write(open.join("public"), b"public").unwrap();

    let seen = std::thread::spawn(move || {
        security::as_stranger(|| {
            (
                fs::read(open.join("public")).map_err(|e| e.kind()),
                fs::read(&secret).map_err(|e| e.kind()),
                fs::read_dir(&state).map(|_| ()).map_err(|e| e.kind()),
                fs::write(state.join("planted"), b"x").map_err(|e| e.kind()),
            )
        })
    })
    .join()
    .unwrap()
    .expect("impersonating a restricted token");
    let (public, secret, listing, planting) = seen;
    assert_eq!(
        public,
        Ok(b"public".to_vec()),
        "the stranger must be able to read an open file"
    );
    let denied = Err(io::ErrorKind::PermissionDenied);
    assert_eq!(secret.map(|_| ()), denied, "reading the state");
    assert_eq!(listing, denied, "listing the state directory");
    assert_eq!(planting, denied, "creating a file in the state directory");
}
