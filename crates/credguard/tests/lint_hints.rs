//! Lint hints never tell the user to rename a member to the name it already has: an empty
//! member is filled in, a member in the wrong object is moved, and only another spelling
//! is renamed.

use credguard::credspec::path::Segment;
use credguard::credspec::{Code, Diagnostic, lint};
use serde_json::{Map, Value};

const CS1: &str = include_str!("fixtures/cs1.json");

fn spec(change: impl FnOnce(&mut Value)) -> Map<String, Value> {
    let mut v: Value = serde_json::from_str(CS1).unwrap();
    change(&mut v);
    v.as_object().unwrap().clone()
}

/// The member a diagnostic is about: the last key of its path.
fn member(d: &Diagnostic) -> Option<&str> {
    d.path.segments().iter().rev().find_map(|s| match s {
        Segment::Key(k) => Some(k.as_str()),
        Segment::Index(_) => None,
    })
}

/// The names a hint says to rename from and to: "`FROM`: rename it to `TO`", or, in a
/// hint about the member itself, "rename it to `TO`".
fn renames(d: &Diagnostic) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = d.hint.as_str();
    while let Some(at) = rest.find("rename it to `") {
        let to = rest[at + 14..].split('`').next().unwrap().to_owned();
        // "... has `FROM`: rename it to" names the member renamed; otherwise it is the one
        // the diagnostic is about.
        let before = &rest[..at];
        let from = before
            .strip_suffix(": ")
            .and_then(|b| b.strip_suffix('`'))
            .and_then(|b| b.rsplit('`').next())
            .map(str::to_owned)
            .or_else(|| member(d).map(str::to_owned))
            .unwrap_or_default();
        out.push((from, to));
        rest = &rest[at + 14..];
    }
    out
}

fn assert_no_rename_to_itself(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        for (from, to) in renames(d) {
            assert_ne!(from, to, "{}: {} / hint: {}", d.path, d.message, d.hint);
        }
    }
}

fn find(diagnostics: &[Diagnostic], path: &str) -> Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.path.to_string() == path)
        .unwrap_or_else(|| panic!("no diagnostic at {path}: {diagnostics:#?}"))
        .clone()
}

#[test]
fn an_empty_account_name_is_filled_in_not_renamed_to_itself() {
    let d = lint(&spec(|v| {
        v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][0]["Name"] = "".into();
    }));
    let name = find(
        &d,
        "ActiveDirectoryConfig.GroupManagedServiceAccounts[0].Name",
    );
    assert_eq!(name.code, Code::IncompleteAccount);
    assert!(!name.hint.contains("rename"), "{}", name.hint);
    assert!(name.hint.starts_with("fill in `Name`"), "{}", name.hint);
    assert_no_rename_to_itself(&d);
}

#[test]
fn an_empty_member_beside_a_wrongly_cased_copy_is_filled_in_and_the_copy_removed() {
    let d = lint(&spec(|v| {
        let entry = v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][0]
            .as_object_mut()
            .unwrap();
        let name = entry.remove("Name").unwrap();
        entry.insert("name".into(), name);
        entry.insert("Name".into(), "".into());
    }));
    let name = find(
        &d,
        "ActiveDirectoryConfig.GroupManagedServiceAccounts[0].Name",
    );
    // Renaming `name` to `Name` would make a second `Name`.
    assert!(!name.hint.contains("rename"), "{}", name.hint);
    assert!(
        name.hint.contains("fill in `Name`") && name.hint.contains("remove `name`"),
        "{}",
        name.hint
    );
    assert_no_rename_to_itself(&d);
}

#[test]
fn a_missing_account_name_with_another_spelling_is_renamed_from_it() {
    let d = lint(&spec(|v| {
        let entry = v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][0]
            .as_object_mut()
            .unwrap();
        let name = entry.remove("Name").unwrap();
        entry.insert("NAME".into(), name);
    }));
    let name = find(
        &d,
        "ActiveDirectoryConfig.GroupManagedServiceAccounts[0].Name",
    );
    assert!(
        name.hint
            .contains("the entry has `NAME`: rename it to `Name`"),
        "{}",
        name.hint
    );
    assert_no_rename_to_itself(&d);
}

#[test]
fn a_right_member_in_the_wrong_object_is_moved_not_renamed() {
    let d = lint(&spec(|v| {
        let sid = v["DomainJoinConfig"]
            .as_object_mut()
            .unwrap()
            .remove("Sid")
            .unwrap();
        v["Sid"] = sid;
    }));
    let sid = find(&d, "Sid");
    assert_eq!(sid.code, Code::UnknownMember);
    assert_eq!(sid.hint, "move `Sid` into DomainJoinConfig");
    assert_no_rename_to_itself(&d);

    // Wrongly cased as well: one hint with both fixes.
    let d = lint(&spec(|v| {
        let sid = v["DomainJoinConfig"]
            .as_object_mut()
            .unwrap()
            .remove("Sid")
            .unwrap();
        v["sid"] = sid;
    }));
    let sid = find(&d, "sid");
    assert!(
        sid.hint.contains("move it into DomainJoinConfig as `Sid`"),
        "{}",
        sid.hint
    );
    assert_no_rename_to_itself(&d);
}

/// Every member of the example spec, emptied, moved to the root, re-cased or removed: no
/// hint renames a member to its own name.
#[test]
fn no_hint_renames_a_member_to_the_name_it_has() {
    let base: Value = serde_json::from_str(CS1).unwrap();
    let mut paths: Vec<Vec<Value>> = Vec::new();
    fn walk(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    at.push(Value::from(k.as_str()));
                    out.push(at.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    at.push(Value::from(i));
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    walk(&base, &mut Vec::new(), &mut paths);
    assert!(paths.len() > 10);
    let mut checked = 0;
    for path in &paths {
        let key = path.last().unwrap().as_str().unwrap().to_owned();
        for variant in 0..5 {
            let mut v = base.clone();
            let obj = parent_of(&mut v, path);
            let map = obj.as_object_mut().unwrap();
            let value = map.remove(&key).unwrap();
            match variant {
                0 => {
                    map.insert(key.clone(), "".into());
                }
                1 => {
                    map.insert(key.to_lowercase(), value);
                }
                2 => {
                    map.insert(key.to_uppercase(), value);
                    map.insert(key.clone(), Value::Null);
                }
                3 => {
                    v.as_object_mut().unwrap().insert(key.clone(), value);
                }
                _ => {}
            }
            let d = lint(v.as_object().unwrap());
            assert_no_rename_to_itself(&d);
            checked += d.len();
        }
    }
    assert!(checked > 0);
}

/// The object holding the member at `path`.
fn parent_of<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    let mut cur = v;
    for seg in &path[..path.len() - 1] {
        cur = match seg {
            Value::String(k) => &mut cur[k.as_str()],
            Value::Number(n) => &mut cur[usize::try_from(n.as_u64().unwrap()).unwrap()],
            _ => unreachable!(),
        };
    }
    cur
}
