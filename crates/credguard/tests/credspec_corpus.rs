//! The credential-spec fixture corpus: realistic specs as Windows tools, Kubernetes and
//! runtimes write them, and the common mistakes, each with the diagnostics it must get.
//!
//! `tests/fixtures/credspecs/expected.txt` lists, for each source (a fixture, optionally with
//! `#NAME`), either its diagnostics (`CODE PATH` and `@LINE` when the source has lines),
//! `clean`, or `refused: TEXT` (the error chain must contain TEXT). Every fixture must be
//! listed. The plug-in inputs of the fixtures hold `FIXTURE-SECRET`, which no diagnostic,
//! error or redacted form may show.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::chain_line;
use common::fixture_path;
use credguard::credspec::{Encoding, SpecForm, load_arg};

const SECRET: &str = "FIXTURE-SECRET";

fn dir() -> PathBuf {
    fixture_path("credspecs")
}

/// The sections of `expected.txt`, in order: source → expected lines.
fn expectations() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(dir().join("expected.txt")).unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(source) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((source.to_owned(), Vec::new()));
        } else {
            out.last_mut()
                .expect("expected.txt: a line before the first [source]")
                .1
                .push(line.to_owned());
        }
    }
    out
}

/// What loading and linting `source` gives, in expected.txt's terms.
fn actual(source: &str) -> Vec<String> {
    let arg = format!("{}", dir().join(source).display());
    match load_arg(&arg, &dir()) {
        Err(e) => {
            let chain = chain_line(&e);
            assert!(!chain.contains(SECRET), "{source}: {chain}");
            vec![format!("refused: {chain}")]
        }
        Ok(loaded) => {
            let doc = &loaded.document;
            let diagnostics = doc.lint();
            let shown = format!(
                "{} {:?} {}",
                serde_json::to_string(&diagnostics).unwrap(),
                doc,
                doc.redacted()
            );
            assert!(!shown.contains(SECRET), "{source}: {shown}");
            // Every fixture's PluginInput holds the secret; it must be kept exactly.
            if doc.canonical().contains("PluginInput") {
                assert!(
                    doc.canonical().contains(SECRET),
                    "{source}: PluginInput not kept"
                );
            }
            if diagnostics.is_empty() {
                return vec!["clean".to_owned()];
            }
            diagnostics
                .iter()
                .map(|d| match d.line {
                    Some(line) => format!("{} {} @{line}", d.code, d.path),
                    None => format!("{} {}", d.code, d.path),
                })
                .collect()
        }
    }
}

#[test]
fn corpus_gets_its_expected_diagnostics() {
    let expected = expectations();
    let mut failures = Vec::new();
    for (source, want) in &expected {
        let got = actual(source);
        let matches = match (want.first().map(String::as_str), got.first()) {
            (Some(w), Some(g)) if w.starts_with("refused: ") => {
                want.len() == 1 && g.starts_with("refused: ") && g.contains(&w["refused: ".len()..])
            }
            _ => &got == want,
        };
        if !matches {
            failures.push(format!(
                "[{source}]\n  want:\n    {}\n  got:\n    {}",
                want.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_has_expectations() {
    let listed: BTreeMap<String, ()> = expectations()
        .into_iter()
        .map(|(s, _)| (s.split('#').next().unwrap().to_owned(), ()))
        .collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "expected.txt" {
            assert!(listed.contains_key(&name), "{name} is not in expected.txt");
        }
    }
}

#[test]
fn encodings_and_forms_are_recognised() {
    let load = |s: &str| load_arg(&format!("{}", dir().join(s).display()), &dir()).unwrap();
    assert_eq!(
        load("utf16le_bom_webapp01.json").document.encoding(),
        Encoding::Utf16Le
    );
    assert_eq!(
        load("utf8_bom_webapp01.json").document.encoding(),
        Encoding::Utf8Bom
    );
    assert_eq!(
        load("k8s_multi_document.yaml#webapp2-credspec").form,
        SpecForm::KubernetesManifest {
            name: "webapp2-credspec".into()
        }
    );
    assert_eq!(
        load("oci_config_string.json").form,
        SpecForm::OciBundle { as_string: true }
    );
    assert_eq!(
        load("oci_config_object.json").form,
        SpecForm::OciBundle { as_string: false }
    );
    // The same spec, whatever the encoding and layout, has the same canonical form.
    assert_eq!(
        load("utf16le_bom_webapp01.json").document.canonical(),
        load("powershell_contoso_webapp01.json")
            .document
            .canonical()
    );
    // file:// names are relative to the credential-spec directory.
    let via_file = load_arg("file://powershell_contoso_webapp01.json", &dir()).unwrap();
    assert_eq!(
        via_file.document.canonical(),
        load("powershell_contoso_webapp01.json")
            .document
            .canonical()
    );
}

#[test]
fn every_code_is_documented_with_its_severity() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ARCHITECTURE.md"),
    )
    .unwrap();
    for code in credguard::credspec::Code::ALL {
        let row = format!("| `{code}` | {} |", code.severity());
        assert!(
            doc.contains(&row),
            "docs/ARCHITECTURE.md lacks the row `{row}`"
        );
    }
}
