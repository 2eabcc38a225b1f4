//! `credguard explain` on any text: no panic, every finding is a piece of the text, each
//! code once, every finding explained with at least one layer, and a status code written
//! back in its `0x` form is found again as itself.
#![no_main]

use credguard::explain::{Finding, explain, explain_text, find_codes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let found = find_codes(&text);
    for (i, f) in found.iter().enumerate() {
        assert!(text.contains(&f.text), "{:?} is not in the text", f.text);
        assert!(
            found[..i].iter().all(|g| g.finding != f.finding),
            "{:?} found twice",
            f.finding
        );
        let e = explain(f);
        assert!(!e.layers.is_empty());
        if let Finding::Status(v) = f.finding {
            let again = find_codes(&format!("0x{v:08X}"));
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].finding, f.finding);
        }
    }
    let report = explain_text(&text);
    assert_eq!(report.codes.len(), found.len());
});
