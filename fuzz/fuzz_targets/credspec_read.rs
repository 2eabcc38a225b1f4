//! The credential-spec reader and linter on any bytes: no panic, and whatever reads has a
//! canonical form that reads back to itself.
#![no_main]

use credguard::credspec::read;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(doc) = read(bytes) {
        let _ = doc.lint();
        let _ = doc.to_spec();
        let canonical = doc.canonical();
        let again = read(canonical.as_bytes()).expect("a canonical form reads back");
        assert_eq!(again.canonical(), canonical);
    }
});
