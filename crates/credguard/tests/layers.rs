//! The library's layers, checked: every `crate::MODULE` a top-level module names must be on
//! its allow-list in `docs/ARCHITECTURE.md` ("Layers and what they may depend on"), the
//! allow-lists must have no cycle (imports run one way only), and the table and the tree
//! under `src/` must name the same modules.
//!
//! Test code (a `#[cfg(test)] mod tests` block at the end of a file, and files under a
//! module's `tests/` folder) may reach anything and is not counted; comments are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The allow-list as `docs/ARCHITECTURE.md` shows it: module -> the modules it may import.
fn documented_layers() -> BTreeMap<String, BTreeSet<String>> {
    let doc_path = manifest_dir().join("../../docs/ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("{}: {e}", doc_path.display()));
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Layers and what they may depend on"))
        .expect("docs/ARCHITECTURE.md has a section `## Layers and what they may depend on`");
    let mut layers = BTreeMap::new();
    // The first table of the section: its rows are the modules.
    let table = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    for line in table.filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let module = cells[0].trim_matches('`').to_owned();
        let allowed = backticked(cells[1]);
        assert!(
            layers.insert(module.clone(), allowed).is_none(),
            "docs/ARCHITECTURE.md lists `{module}` twice"
        );
    }
    assert!(
        !layers.is_empty(),
        "the layer table in docs/ARCHITECTURE.md has no rows"
    );
    layers
}

fn backticked(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The top-level modules of `src/` (files and folders, `lib.rs` aside).
fn modules_in_tree(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            if p.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs")
                    .filter(|n| *n != "lib")
                    .map(str::to_owned)
            }
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The modules a file's code names as `crate::MODULE`, with the line of the first mention.
fn imports_of(text: &str) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            // Unit tests sit at the end of a file and may use anything.
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if !name.is_empty() {
                found.entry(name).or_insert(n + 1);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn the_tree_and_the_documented_layers_agree() {
    let src = manifest_dir().join("src");
    let layers = documented_layers();
    let documented: BTreeSet<String> = layers.keys().cloned().collect();
    let tree = modules_in_tree(&src);
    assert_eq!(
        tree, documented,
        "the top-level modules under crates/credguard/src and the layer table in docs/ARCHITECTURE.md differ"
    );
    for (module, allowed) in &layers {
        for target in allowed {
            assert!(
                layers.contains_key(target),
                "docs/ARCHITECTURE.md: `{module}` may import `{target}`, which is no module"
            );
        }
    }
}

#[test]
fn every_import_runs_down_the_layers() {
    let src = manifest_dir().join("src");
    let layers = documented_layers();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        if module == "lib" {
            continue;
        }
        let allowed = layers
            .get(&module)
            .unwrap_or_else(|| panic!("`{module}` is not in the layer table"));
        let text = std::fs::read_to_string(file).unwrap();
        for (target, line) in imports_of(&text) {
            if target != module && !allowed.contains(&target) {
                wrong.push(format!(
                    "src/{}:{line}: `{module}` imports `crate::{target}`, which its layer may not",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers (docs/ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_layers_have_no_cycle() {
    let layers = documented_layers();
    // Kahn's algorithm: repeatedly take a module whose allowed imports are all taken.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = layers
            .iter()
            .filter(|(m, deps)| {
                !done.contains(m.as_str()) && deps.iter().all(|d| done.contains(d.as_str()))
            })
            .map(|(m, _)| m.as_str())
            .collect();
        if ready.is_empty() {
            break;
        }
        done.extend(ready);
    }
    let left: Vec<&String> = layers
        .keys()
        .filter(|m| !done.contains(m.as_str()))
        .collect();
    assert!(
        left.is_empty(),
        "the layer table in docs/ARCHITECTURE.md has a cycle among {left:?}"
    );
}

#[test]
fn the_checker_sees_imports_and_skips_comments_and_tests() {
    let text = "use crate::wire::X;\n// crate::journal in a comment\nlet a = crate::hcs::f(); // crate::statefile\n#[cfg(test)]\nmod tests { use crate::lifecycle; }\n";
    let found: Vec<String> = imports_of(text).into_keys().collect();
    assert_eq!(found, ["hcs", "wire"]);
}
