//! What a path or standard input can hold (a spec, a Kubernetes manifest in JSON or YAML, an
//! OCI bundle config), and `--credspec` arguments, on any input: no panic.
#![no_main]

use std::path::Path;

use credguard::credspec::{SpecSource, load_from, parse_source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let stdin = SpecSource::Stdin { select: None };
    if let Ok(loaded) = load_from(&stdin, Path::new("."), &mut &bytes[..]) {
        let _ = loaded.document.lint();
    }
    if let Ok(arg) = std::str::from_utf8(bytes) {
        let _ = parse_source(arg);
    }
});
