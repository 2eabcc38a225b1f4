//! The CLI stays thin: its sources never build a wire document (HCS request types) nor a
//! library error, and never match a library error's variants; the library returns plans,
//! checks requests and says what an error means (kind, entry_left, remedy).

use std::path::{Path, PathBuf};

/// What the CLI's `src/` must never mention.
const FORBIDDEN: &[&str] = &[
    "CcgError::",
    "ModificationRequest",
    "ModifySettingRequest",
    "HvSocketServiceConfig",
    "to_wire",
    "validate_container_id",
    "policy.check",
    "credguard::text::chain_line",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_cli_builds_no_wire_document_and_no_library_error() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "found the sources: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in FORBIDDEN {
                if line.contains(word) {
                    found.push(format!("{}:{}: {word}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the CLI must ask the library (CcgClient::plan, SpecRequest::check, CcgError accessors) instead:\n{}",
        found.join("\n")
    );
}
