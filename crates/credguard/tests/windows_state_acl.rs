//! The owner-only access of everything the library and the emulator write into a state
//! directory, on a Windows host (`#[ignore]`d: Wine stores, inherits and enforces no DACL;
//! see docs/WINDOWS.md for how to run them). The directory rules themselves are tested in
//! the credguard-statefile crate.

#![cfg(windows)]

use std::fs;
use std::path::Path;

use credguard_statefile::{FileLock, write_atomic};
use credguard_winapi::security::{self, Ace, FileSecurity, SecurityDescriptor};
use credguard_winapi::wide::WideCString;
use windows_sys::Win32::Security::{CONTAINER_INHERIT_ACE, INHERITED_ACE, OBJECT_INHERIT_ACE};
use windows_sys::Win32::Storage::FileSystem::FILE_ALL_ACCESS;
use windows_sys::Win32::System::SystemServices::ACCESS_ALLOWED_ACE_TYPE;

const SYSTEM: &str = "S-1-5-18";
const ADMINISTRATORS: &str = "S-1-5-32-544";
const OICI: u8 = (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) as u8;

fn me() -> String {
    security::current_user_sid().expect("the SID of the current user")
}

/// Full control for the current user, SYSTEM and Administrators, with these flags.
fn owner_only(flags: u8) -> Vec<Ace> {
    [me().as_str(), SYSTEM, ADMINISTRATORS]
        .into_iter()
        .map(|sid| Ace {
            kind: ACCESS_ALLOWED_ACE_TYPE as u8,
            flags,
            mask: FILE_ALL_ACCESS,
            sid: Some(sid.to_owned()),
        })
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

fn descriptor(sddl: &str) -> std::io::Result<SecurityDescriptor> {
    SecurityDescriptor::from_sddl(&WideCString::new(sddl).expect("no NUL"))
}

#[test]
#[ignore = "needs a Windows host: Wine does not apply inherited entries to new files"]
fn everything_credguard_writes_in_a_state_directory_inherits_owner_only_access() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    credguard_statefile::ensure_private_dir(&dir).unwrap();

    // A temporary file renamed into place (twice: the second replaces the first).
    write_atomic(&dir.join("state.json"), b"one").unwrap();
    write_atomic(&dir.join("state.json"), b"two").unwrap();
    let _lock = FileLock::acquire(&dir.join("state.lock")).unwrap();
    // The journal: a record and its lock file.
    let journal_dir = dir.join("journal");
    let journal = credguard::Journal::open(&journal_dir).unwrap();
    journal
        .write(&credguard::journal::Record::creating(
            "c1",
            credguard::Isolation::Process,
            None,
        ))
        .unwrap();
    let _record_lock = journal.lock("c1", false).unwrap();
    // The emulator's state (credential specs live there).
    let emulator_dir = dir.join("emulator");
    let emulator = credguard_emulator::Emulator::persistent(&emulator_dir).unwrap();
    emulator.create_uvm("uvm-1").unwrap();

    let inherited_by_files = owner_only(INHERITED_ACE as u8);
    let inherited_by_dirs = owner_only(OICI | INHERITED_ACE as u8);
    let mut seen = 0;
    for sub in [&dir, &journal_dir, &emulator_dir] {
        for entry in fs::read_dir(sub).unwrap() {
            let path = entry.unwrap().path();
            let found = security_of(&path);
            if path.is_dir() {
                // journal and emulator were made by ensure_private_dir: protected, explicit.
                assert_eq!(found.dacl, Some(owner_only(OICI)), "{}", path.display());
                assert!(found.protected, "{}", path.display());
            } else {
                assert_eq!(
                    found.dacl.as_ref(),
                    Some(&inherited_by_files),
                    "{}",
                    path.display()
                );
                assert!(!found.protected, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 5,
        "state.json, state.lock, a record and its lock, the emulator state"
    );

    // A subdirectory made by anything else inherits too, and hands it down.
    let other = dir.join("other");
    fs::create_dir(&other).unwrap();
    assert_eq!(dacl_of(&other), inherited_by_dirs);
    fs::write(other.join("f"), b"x").unwrap();
    assert_eq!(dacl_of(&other.join("f")), inherited_by_files);
}

#[test]
#[ignore = "needs a Windows host: Wine keeps no security descriptor"]
fn a_corrupt_journal_record_moved_aside_is_made_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let journal = credguard::Journal::open(&dir).unwrap();
    // A record put there from elsewhere, with an explicit grant to Everyone.
    let record = dir.join("0b5b2c1e-0000-5000-8000-000000000000.json");
    fs::write(&record, b"not json").unwrap();
    security::set_protected_dacl(
        &WideCString::from_path(&record).unwrap(),
        &descriptor(&format!("D:P(A;;FA;;;{})(A;;FR;;;WD)", me())).unwrap(),
    )
    .unwrap();
    assert!(journal.records().unwrap().is_empty());
    let moved: Vec<_> = fs::read_dir(dir.join("corrupt"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(moved.len(), 1);
    let found = security_of(&moved[0]);
    assert_eq!(found.dacl, Some(owner_only(0)));
    assert!(found.protected);
}
