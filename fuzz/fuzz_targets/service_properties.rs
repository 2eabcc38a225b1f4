//! The decoders of the answer to the CCG query on any text: no panic; `find_instance` gives
//! exactly what its reference (the streaming decoder without the fast path) gives, errors
//! included; and wherever both succeed, `find_instance` returns exactly the instance
//! `list_instances` has first for an id (and nothing for an id it does not list).
#![no_main]

use credguard::wire::{
    ContainerCredentialGuardInstance, find_instance, find_instance_reference, list_instances,
};
use libfuzzer_sys::fuzz_target;

/// An id no seed lists, looked up in every document beside the empty id.
const ABSENT: &str = "\u{1}not-listed";

/// How many distinct listed ids are looked up per input, so that one input stays fast.
const MAX_IDS: usize = 64;

fuzz_target!(|bytes: &[u8]| {
    let Ok(doc) = std::str::from_utf8(bytes) else {
        return;
    };
    let listed = list_instances(doc).ok();
    let mut ids = vec!["", ABSENT];
    if let Some(listed) = &listed {
        let mut more: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
        more.sort_unstable();
        more.dedup();
        ids.extend(more.into_iter().filter(|id| !id.is_empty()).take(MAX_IDS));
    }
    for id in ids {
        check(doc, id, listed.as_deref());
    }
});

/// Looks `id` up (which must never panic) and compares with the full decode when both worked.
fn check(doc: &str, id: &str, listed: Option<&[ContainerCredentialGuardInstance]>) {
    let found = find_instance(doc, id);
    match (&found, find_instance_reference(doc, id)) {
        (Ok(fast), Ok(reference)) => assert_eq!(fast, &reference, "fast path differs on {id:?}"),
        (Err(fast), Err(reference)) => assert_eq!(format!("{fast:?}"), format!("{reference:?}")),
        (fast, reference) => panic!("fast path {fast:?}, reference {reference:?} on {id:?}"),
    }
    let Ok(found) = found else {
        return;
    };
    if let Some(inst) = &found {
        assert_eq!(inst.id, id, "find_instance returned another id");
    }
    if let Some(listed) = listed {
        let first = listed.iter().find(|i| i.id == id);
        assert_eq!(
            found.as_ref(),
            first,
            "find_instance and list_instances disagree on {id:?}"
        );
    }
}
