//! The table of known codes and event ids: `data/explain.json`, compiled in and parsed once.
//!
//! Names of the codes that [`HResult`]'s own table knows are taken from there
//! ([`HResult::name`]) and are not in the data file: one table of names, one of
//! explanations. `tests` below fail when the file does not parse, when an entry lacks a
//! key, a message, a cause, a next step or a source, or when it repeats (or lacks) a name.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::hcs::hresult::HResult;

/// The data file, as it is in the repository.
pub(super) const DATA: &str = include_str!("../../data/explain.json");

/// One entry of the data file: exactly one key (`hresult`, `ntstatus`, `win32` or `event`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Entry {
    #[serde(default, with = "hex_opt")]
    pub hresult: Option<u32>,
    #[serde(default, with = "hex_opt")]
    pub ntstatus: Option<u32>,
    #[serde(default)]
    pub win32: Option<u32>,
    #[serde(default)]
    pub event: Option<u32>,
    /// The event's provider (events only).
    #[serde(default)]
    pub provider: Option<String>,
    /// The symbolic name, for codes [`HResult::name`] does not know (and events).
    #[serde(default)]
    pub name: Option<String>,
    pub message: String,
    pub causes: Vec<String>,
    pub next_steps: Vec<String>,
    pub sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Table {
    #[allow(dead_code)] // documentation for people editing the file
    about: String,
    pub entries: Vec<Entry>,
}

/// `"0xC0020017"` in the file, a `u32` here.
mod hex_opt {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        text.strip_prefix("0x")
            .filter(|h| h.len() == 8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("`{text}` is not a code in the form 0x1234ABCD"))
            })
    }
}

/// Parses the data file (the tests call this; [`table`] keeps its result).
pub(super) fn parse(text: &str) -> Result<Table, serde_json::Error> {
    serde_json::from_str(text)
}

/// The table, parsed on first use. The file is part of the build and a test parses it, so
/// a failure here is a bug in the repository, not in the input.
pub(super) fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| parse(DATA).expect("crates/credguard/data/explain.json parses (tested)"))
}

/// The forms an entry can be keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    HResult(u32),
    NtStatus(u32),
    Win32(u32),
    Event(u32),
}

impl Entry {
    pub(super) fn key(&self) -> Option<Key> {
        match (self.hresult, self.ntstatus, self.win32, self.event) {
            (Some(v), None, None, None) => Some(Key::HResult(v)),
            (None, Some(v), None, None) => Some(Key::NtStatus(v)),
            (None, None, Some(v), None) => Some(Key::Win32(v)),
            (None, None, None, Some(v)) => Some(Key::Event(v)),
            _ => None,
        }
    }

    /// The name [`HResult`]'s table gives this entry's code, if it has one (then the entry
    /// must not name it again).
    #[cfg(test)]
    pub(super) fn hresult_name(&self) -> Option<&'static str> {
        match self.key()? {
            Key::HResult(v) | Key::NtStatus(v) => hr(v).name(),
            Key::Win32(_) | Key::Event(_) => None,
        }
    }
}

#[allow(clippy::cast_possible_wrap)] // status codes are written as u32 by convention
pub(super) const fn hr(v: u32) -> HResult {
    HResult(v as i32)
}

/// The entries with this key (events may have one per provider).
pub(super) fn lookup(key: Key) -> impl Iterator<Item = &'static Entry> {
    table().entries.iter().filter(move |e| e.key() == Some(key))
}

/// The code a symbolic name stands for, from the data file's names (not [`HResult`]'s).
pub(super) fn code_of_name(name: &str) -> Option<u32> {
    table()
        .entries
        .iter()
        .find(|e| e.event.is_none() && e.name.as_deref() == Some(name))
        .and_then(|e| e.hresult.or(e.ntstatus).or(e.win32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_parses_and_every_entry_is_complete() {
        let table = parse(DATA).unwrap_or_else(|e| panic!("data/explain.json: {e}"));
        assert!(!table.entries.is_empty());
        for (i, e) in table.entries.iter().enumerate() {
            let at = format!("entry {i} ({:?})", e.key());
            assert!(
                e.key().is_some(),
                "{at}: exactly one of hresult, ntstatus, win32, event"
            );
            assert!(!e.message.trim().is_empty(), "{at}: no message");
            assert!(!e.causes.is_empty(), "{at}: no cause");
            assert!(!e.next_steps.is_empty(), "{at}: no next step");
            assert!(!e.sources.is_empty(), "{at}: no source");
            for s in &e.sources {
                assert!(
                    s.starts_with("https://learn.microsoft.com/")
                        || s.starts_with("https://github.com/")
                        || s.starts_with("https://kubernetes.io/"),
                    "{at}: source {s} is neither a Microsoft document nor a public issue"
                );
            }
            assert_eq!(
                e.provider.is_some(),
                e.event.is_some(),
                "{at}: a provider goes with an event id, and only there"
            );
        }
    }

    #[test]
    fn every_code_is_named_once_in_one_table() {
        // A code HResult names is not named again here; every other entry has its name.
        for e in &parse(DATA).unwrap().entries {
            match (e.hresult_name(), &e.name) {
                (Some(name), Some(again)) => {
                    panic!("{again}: {name} is named by hcs::hresult's table already")
                }
                (None, None) => panic!("{:?} has no name", e.key()),
                _ => {}
            }
            // A Win32 error's name is not the name HResult's table gives its HRESULT form.
            if let (Some(v), Some(name)) = (e.win32, &e.name) {
                assert_ne!(
                    HResult::from_win32(v).name(),
                    Some(name.as_str()),
                    "{name} is named by hcs::hresult's table already"
                );
            }
        }
    }

    #[test]
    fn each_key_appears_once() {
        let entries = &parse(DATA).unwrap().entries;
        for (i, a) in entries.iter().enumerate() {
            for b in &entries[i + 1..] {
                let same_event = a.event.is_some() && a.provider != b.provider;
                assert!(
                    a.key() != b.key() || same_event,
                    "{:?} is in the table twice",
                    a.key()
                );
            }
        }
    }

    #[test]
    fn a_broken_file_is_refused() {
        assert!(parse("{").is_err());
        assert!(parse(r#"{"about":"","entries":[{"ntstatus":"C0020017","message":"","causes":[],"next_steps":[],"sources":[]}]}"#).is_err());
        assert!(parse(r#"{"about":"","entries":[{"ntstatus":"0xC0020017","mesage":"x","causes":[],"next_steps":[],"sources":[]}]}"#).is_err());
    }
}
