//! The offline check of Kubernetes manifests: what the cluster will do with the gMSA parts
//! of workloads, predicted from the manifests alone, for CI and code review.
//!
//! [`collect`] finds the files (directories walked in name order; symbolic links inside a
//! walked directory are not followed, so a link cannot lead out of the tree or into a loop;
//! files over [`MAX_FILE_BYTES`] and files that are not UTF-8 are refused by name), [`parse`]
//! reads each one (YAML or JSON, several documents, `List` kinds), and [`check`] reports,
//! per workload and container, what the windows-gmsa webhook and the API server would refuse
//! and what the credential-spec linter finds, each [`Finding`] with the file and line of the
//! manifest:
//!
//! | rule | severity | what |
//! |---|---|---|
//! | `K8S001` | error | `gmsaCredentialSpecName` names no GMSACredentialSpec in the input |
//! | `K8S002` | error | RBAC does not let the pod's service account `use` that GMSACredentialSpec |
//! | `K8S003` | error | inline `gmsaCredentialSpec` contents without a name |
//! | `K8S004` | error | inline contents that differ from the named GMSACredentialSpec (or are not JSON) |
//! | `K8S005` | warning | a name on an init or ephemeral container (the webhook ignores those) |
//! | `K8S006` | warning | the pod's hostname is over 15 characters (the NetBIOS limit) |
//! | `K8S007` | error | a GMSACredentialSpec the API server would refuse (a member of the wrong type) |
//! | `K8S008` | error | a workload names a GMSACredentialSpec with lint errors (or a refused one) |
//! | `CSnnn` | as linted | the linter's diagnostics of each GMSACredentialSpec, pruned as the API server stores it |
//!
//! No finding quotes a `PluginInput`: the linter's messages never do, and contents are only
//! said to differ, never shown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use credguard::credspec::syntax::{shown, shown_path};
use credguard::credspec::{Severity, lint};
use serde::Serialize;
use serde_json::{Value, json};

use crate::crd;

/// The largest manifest file read.
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// How deep directories are walked.
const MAX_DEPTH: usize = 32;

/// A rule of the check (the linter's codes are rules too, by their code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `K8S001`.
    UnknownSpec,
    /// `K8S002`.
    RbacDenied,
    /// `K8S003`.
    ContentsWithoutName,
    /// `K8S004`.
    ContentsDiffer,
    /// `K8S005`.
    InitContainerName,
    /// `K8S006`.
    HostnameTooLong,
    /// `K8S007`.
    SchemaRefused,
    /// `K8S008`.
    SpecHasErrors,
}

impl Rule {
    /// Every rule.
    pub const ALL: &'static [Rule] = &[
        Rule::UnknownSpec,
        Rule::RbacDenied,
        Rule::ContentsWithoutName,
        Rule::ContentsDiffer,
        Rule::InitContainerName,
        Rule::HostnameTooLong,
        Rule::SchemaRefused,
        Rule::SpecHasErrors,
    ];

    /// `K8S001`...
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Rule::UnknownSpec => "K8S001",
            Rule::RbacDenied => "K8S002",
            Rule::ContentsWithoutName => "K8S003",
            Rule::ContentsDiffer => "K8S004",
            Rule::InitContainerName => "K8S005",
            Rule::HostnameTooLong => "K8S006",
            Rule::SchemaRefused => "K8S007",
            Rule::SpecHasErrors => "K8S008",
        }
    }

    /// The rule's severity.
    #[must_use]
    pub fn severity(self) -> Severity {
        match self {
            Rule::InitContainerName | Rule::HostnameTooLong => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// One line on what the rule finds.
    #[must_use]
    pub fn summary(self) -> &'static str {
        match self {
            Rule::UnknownSpec => "gmsaCredentialSpecName names no GMSACredentialSpec",
            Rule::RbacDenied => {
                "the pod's service account may not `use` the GMSACredentialSpec it names"
            }
            Rule::ContentsWithoutName => {
                "inline gmsaCredentialSpec contents without gmsaCredentialSpecName"
            }
            Rule::ContentsDiffer => {
                "inline gmsaCredentialSpec contents differ from the named GMSACredentialSpec"
            }
            Rule::InitContainerName => {
                "gmsaCredentialSpecName on an init or ephemeral container, which the webhook ignores"
            }
            Rule::HostnameTooLong => "the pod's hostname is longer than 15 characters",
            Rule::SchemaRefused => {
                "the API server refuses the GMSACredentialSpec (a member of the wrong type)"
            }
            Rule::SpecHasErrors => {
                "the workload names a GMSACredentialSpec with lint errors or that the API server refuses"
            }
        }
    }
}

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Location {
    /// The file, as given or found (shown: control characters escaped).
    pub file: String,
    /// The line (1-based) of the member, or of the object when the member is not found.
    pub line: u32,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Finding {
    /// `K8S001`... or a lint code (`CS011`).
    pub rule: String,
    /// Error or warning.
    pub severity: Severity,
    /// The object: `Deployment default/web`, `GMSACredentialSpec webapp1`.
    pub object: String,
    /// The container it is about, when it is about one (`init:setup`, `ephemeral:debug`
    /// for those kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The member it is about, when known (`credspec.DomainJoinConfig.Sid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where.
    pub location: Location,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}[{}] {}",
            self.location.file, self.location.line, self.severity, self.rule, self.object
        )?;
        if let Some(c) = &self.container {
            write!(f, " container {c}")?;
        }
        write!(f, ": {} (hint: {})", self.message, self.hint)
    }
}

/// A file that could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Unreadable {
    /// The file (shown).
    pub file: String,
    /// The line of a syntax error, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Why.
    pub message: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The result of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Report {
    /// The files read, in the order checked.
    pub files: Vec<String>,
    /// How many Kubernetes objects were read.
    pub objects: usize,
    /// Findings, file by file in line order.
    pub findings: Vec<Finding>,
    /// Files that could not be read or parsed.
    pub unreadable: Vec<Unreadable>,
    /// How many findings are errors.
    pub errors: usize,
    /// How many findings are warnings.
    pub warnings: usize,
}

impl Report {
    /// 0 clean (warnings allowed), 1 errors, 2 an unreadable input (as `credspec validate`).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        if !self.unreadable.is_empty() {
            2
        } else if self.errors > 0 {
            1
        } else {
            0
        }
    }
}

/// One object read from a manifest.
#[derive(Debug, Clone)]
pub struct Object {
    /// The file (shown).
    pub file: String,
    /// The line of the object (its document, or its `List` item).
    pub line: u32,
    /// The text of its document, for finding members' lines.
    lines: DocText,
    /// The object.
    pub value: Value,
}

#[derive(Debug, Clone)]
struct DocText {
    /// The document's lines and the number of the first.
    text: std::sync::Arc<Vec<String>>,
    first: u32,
    /// Where the object starts and ends within them (lines numbered as in the file).
    from: u32,
    to: u32,
}

impl Object {
    /// The line of `needle` (a member's key, or `key: value`) in this object's text at or
    /// after `after`, or the object's line.
    fn line_of(&self, needles: &[&str], after: u32) -> u32 {
        let d = &self.lines;
        let start = after.max(d.from);
        let mut line = start;
        for needle in needles {
            let found = (line..=d.to).find(|l| {
                let i = (l - d.first) as usize;
                d.text.get(i).is_some_and(|t| contains_key(t, needle))
            });
            match found {
                Some(l) => line = l,
                None => return if line == start { self.line } else { line },
            }
        }
        line
    }
}

/// Whether a line holds `key` as a YAML or JSON key (`key:`, `"key":`, `- key:`).
fn contains_key(line: &str, key: &str) -> bool {
    let t = line.trim_start().trim_start_matches("- ").trim_start();
    t.starts_with(&format!("{key}:"))
        || t.starts_with(&format!("\"{key}\":"))
        || t.starts_with(&format!("\"{key}\" :"))
        || t.contains(&format!("\"{key}\":"))
        || t.contains(&format!("{{{key}:"))
        || t.contains(&format!(", {key}:"))
}

/// Finds the manifest files `paths` name: files as given (a symbolic link given on the
/// command line is followed), directories walked for `*.yaml`, `*.yml` and `*.json`, in
/// name order, without following the symbolic links inside them.
///
/// # Errors
/// A path that does not exist or a directory that cannot be read, as an [`Unreadable`].
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Unreadable>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, 0, &mut files, &mut errors),
            Ok(_) => files.push(p.clone()),
            Err(e) => errors.push(Unreadable {
                file: shown_path(&p.to_string_lossy()),
                line: None,
                message: format!("cannot read it: {e}"),
            }),
        }
    }
    (files, errors)
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, errors: &mut Vec<Unreadable>) {
    if depth > MAX_DEPTH {
        errors.push(Unreadable {
            file: shown_path(&dir.to_string_lossy()),
            line: None,
            message: format!("directories nested deeper than {MAX_DEPTH} levels are not walked"),
        });
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(Unreadable {
                file: shown_path(&dir.to_string_lossy()),
                line: None,
                message: format!("cannot read the directory: {e}"),
            });
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        // file_type() does not follow symbolic links: they are skipped.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&path, depth + 1, files, errors);
        } else if kind.is_file()
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            files.push(path);
        }
    }
}

/// Reads and parses one manifest file.
///
/// # Errors
/// Too large, not UTF-8, or not YAML/JSON (with the line of the error).
pub fn read_file(path: &Path) -> Result<Vec<Object>, Unreadable> {
    let file = shown_path(&path.to_string_lossy());
    let err = |line: Option<u32>, message: String| Unreadable {
        file: file.clone(),
        line,
        message,
    };
    let bytes = credguard::credspec::read_path_limited(path, MAX_FILE_BYTES)
        .map_err(|e| err(None, format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(
            None,
            format!(
                "it is larger than {} MiB; manifests are not that large",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        err(
            None,
            format!(
                "it is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    parse(&file, text).map_err(|(line, message)| err(line, message))
}

/// Parses manifest text (YAML documents, or JSON) into its objects, `List` items unpacked.
///
/// # Errors
/// A syntax error: its line and message.
pub fn parse(file: &str, text: &str) -> Result<Vec<Object>, (Option<u32>, String)> {
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let all = std::sync::Arc::new(lines);
    // Documents: split at `---` lines (YAML document markers are at column 0).
    let mut docs: Vec<(u32, u32)> = Vec::new();
    let mut start = 1u32;
    for (i, l) in all.iter().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if l == "---" || l.starts_with("--- ") || l == "..." {
            if n > start {
                docs.push((start, n - 1));
            }
            start = n + 1;
        }
    }
    let last = u32::try_from(all.len()).unwrap_or(u32::MAX);
    if last >= start {
        docs.push((start, last));
    }
    let mut out = Vec::new();
    for (from, to) in docs {
        let body = all[(from - 1) as usize..to as usize].join("\n");
        if body.trim().is_empty()
            || body
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let value: Value = serde_norway::from_str(&body).map_err(|e| {
            let line = e
                .location()
                .map(|l| from + u32::try_from(l.line()).unwrap_or(0).saturating_sub(1));
            (
                line,
                format!(
                    "it is not valid YAML or JSON: {}",
                    without_location(&e.to_string())
                ),
            )
        })?;
        let Some(first) = (from..=to).find(|l| {
            let t = all[(*l - 1) as usize].trim();
            !t.is_empty() && !t.starts_with('#')
        }) else {
            continue;
        };
        let text = DocText {
            text: std::sync::Arc::clone(&all),
            first: 1,
            from: first,
            to,
        };
        if value.get("kind").and_then(Value::as_str) == Some("List")
            || value
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List") && value.get("items").is_some())
        {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut after = first;
            for item in items {
                let name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let probe = Object {
                    file: file.to_owned(),
                    line: first,
                    lines: text.clone(),
                    value: Value::Null,
                };
                let line = if name.is_empty() {
                    after
                } else {
                    probe.line_of(&["kind", "metadata", "name"], after)
                };
                let line = if name.is_empty() {
                    line
                } else {
                    find_name(&probe, &name, after).unwrap_or(line)
                };
                after = line;
                out.push(Object {
                    file: file.to_owned(),
                    line,
                    lines: DocText {
                        from: line,
                        ..text.clone()
                    },
                    value: item,
                });
            }
            continue;
        }
        if value.is_object() {
            out.push(Object {
                file: file.to_owned(),
                line: first,
                lines: text,
                value,
            });
        }
    }
    Ok(out)
}

/// A parser message without its ` at line N column M` (relative to the document, while
/// the line reported is the file's).
fn without_location(message: &str) -> String {
    let mut out = message.to_owned();
    while let Some(i) = out.find(" at line ") {
        let rest = &out[i + " at line ".len()..];
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let rest = rest.strip_prefix(" column ").unwrap_or(rest);
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        out = format!("{}{rest}", &out[..i]);
    }
    out
}

/// The line of an item whose `name` is `name`: the line of `"kind"` before it is not
/// knowable without positions, so the name's line stands for the item.
fn find_name(o: &Object, name: &str, after: u32) -> Option<u32> {
    let d = &o.lines;
    (after..=d.to).find(|l| {
        let t = &d.text[(l - d.first) as usize];
        t.contains(&format!("\"name\": \"{name}\"")) || t.trim() == format!("name: {name}")
    })
}

/// Reads every file and checks the objects together.
#[must_use]
pub fn check_paths(paths: &[PathBuf]) -> Report {
    let (files, mut unreadable) = collect(paths);
    let mut objects = Vec::new();
    let mut read = Vec::new();
    for f in &files {
        read.push(shown_path(&f.to_string_lossy()));
        match read_file(f) {
            Ok(o) => objects.extend(o),
            Err(e) => unreadable.push(e),
        }
    }
    let mut report = check(&objects);
    report.files = read;
    report.unreadable = unreadable;
    report
}

struct Spec<'a> {
    object: &'a Object,
    /// The spec as the API server stores it, or why it refuses it.
    admitted: Result<Value, crd::SchemaError>,
}

#[derive(Debug)]
struct Binding<'a> {
    namespace: Option<String>,
    role_kind: String,
    role_name: String,
    subjects: Vec<&'a Value>,
    object: &'a Object,
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn describe(o: &Value) -> String {
    let kind = s(o, "/kind").unwrap_or("object");
    let name = s(o, "/metadata/name").unwrap_or("<unnamed>");
    match s(o, "/metadata/namespace") {
        Some(ns) => format!("{kind} {}/{}", shown(ns), shown(name)),
        None if is_namespaced_workload(kind) => format!("{kind} default/{}", shown(name)),
        None => format!("{kind} {}", shown(name)),
    }
}

fn is_namespaced_workload(kind: &str) -> bool {
    matches!(
        kind,
        "Pod"
            | "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "Job"
            | "CronJob"
            | "PodTemplate"
    )
}

/// The pod template spec of a workload, and where it is.
fn pod_spec(o: &Value) -> Option<(&Value, &'static str)> {
    let kind = s(o, "/kind")?;
    let pointer = match kind {
        "Pod" => "/spec",
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => "/spec/template/spec",
        "PodTemplate" => "/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => return None,
    };
    o.pointer(pointer)
        .filter(|v| v.is_object())
        .map(|v| (v, pointer))
}

/// Checks the objects as a cluster holding all of them would treat them.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn check(objects: &[Object]) -> Report {
    let mut findings = Vec::new();
    let mut specs: BTreeMap<String, Spec<'_>> = BTreeMap::new();
    let mut roles: BTreeMap<(Option<String>, String), &Object> = BTreeMap::new();
    let mut bindings = Vec::new();
    for o in objects {
        let v = &o.value;
        let kind = s(v, "/kind").unwrap_or_default();
        let api = s(v, "/apiVersion").unwrap_or_default();
        let name = s(v, "/metadata/name").unwrap_or_default().to_owned();
        let ns = s(v, "/metadata/namespace").map(str::to_owned);
        match kind {
            k if k == crd::KIND && api.starts_with(crd::GROUP) => {
                specs.insert(
                    name,
                    Spec {
                        object: o,
                        admitted: crd::admit(v),
                    },
                );
            }
            "Role" | "ClusterRole" if api.starts_with("rbac.authorization.k8s.io") => {
                let ns = if kind == "Role" {
                    Some(ns.unwrap_or_else(|| "default".to_owned()))
                } else {
                    None
                };
                roles.insert((ns, name), o);
            }
            "RoleBinding" | "ClusterRoleBinding"
                if api.starts_with("rbac.authorization.k8s.io") =>
            {
                bindings.push(Binding {
                    namespace: (kind == "RoleBinding")
                        .then(|| ns.unwrap_or_else(|| "default".to_owned())),
                    role_kind: s(v, "/roleRef/kind").unwrap_or_default().to_owned(),
                    role_name: s(v, "/roleRef/name").unwrap_or_default().to_owned(),
                    subjects: v
                        .get("subjects")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().collect())
                        .unwrap_or_default(),
                    object: o,
                });
            }
            _ => {}
        }
    }
    // The specs: refused by the schema, or linted as stored.
    for (name, spec) in &specs {
        let object = format!("{} {}", crd::KIND, shown(name));
        match &spec.admitted {
            Err(e) => findings.push(Finding {
                rule: Rule::SchemaRefused.id().to_owned(),
                severity: Rule::SchemaRefused.severity(),
                object,
                container: None,
                path: Some(e.path.clone()),
                location: Location {
                    file: spec.object.file.clone(),
                    line: spec.object.line_of(&member_keys(&e.path), spec.object.line),
                },
                message: format!(
                    "the API server refuses it: `{}` is {}, the CRD declares {}",
                    e.path,
                    a_or_an(e.found),
                    a_or_an(e.expected)
                ),
                hint: format!(
                    "write `{}` as a {} (in YAML, quote values such as `\"1\"`)",
                    e.path, e.expected
                ),
            }),
            Ok(admitted) => {
                for d in lint(&crd::credspec(admitted)) {
                    if d.severity == Severity::Info {
                        continue;
                    }
                    let path = format!("credspec.{}", d.path);
                    findings.push(Finding {
                        rule: d.code.as_str().to_owned(),
                        severity: d.severity,
                        object: object.clone(),
                        container: None,
                        location: Location {
                            file: spec.object.file.clone(),
                            line: spec.object.line_of(&member_keys(&path), spec.object.line),
                        },
                        path: Some(path),
                        message: d.message,
                        hint: d.hint,
                    });
                }
            }
        }
    }
    // Each spec's first error, for the workloads that name it.
    let mut spec_errors: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for f in &findings {
        if f.severity == Severity::Error
            && let Some(name) = f.object.strip_prefix("GMSACredentialSpec ")
            && let Some((n, _)) = specs.get_key_value(name)
        {
            let entry = spec_errors
                .entry(n.as_str())
                .or_insert((0, format!("{}:{}", f.location.file, f.location.line)));
            entry.0 += 1;
        }
    }
    // The workloads.
    for o in objects {
        let Some((pod, at)) = pod_spec(&o.value) else {
            continue;
        };
        let object = describe(&o.value);
        let kind = s(&o.value, "/kind").unwrap_or_default();
        let ns = s(&o.value, "/metadata/namespace").unwrap_or("default");
        let sa = pod
            .get("serviceAccountName")
            .or_else(|| pod.get("serviceAccount"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        let pod_line = o.line_of(
            &at.split('/').filter(|p| !p.is_empty()).collect::<Vec<_>>(),
            o.line,
        );
        let mut uses_gmsa = false;
        // Where windowsOptions can be, and which kind of container the webhook skips.
        let mut places: Vec<(Option<String>, &Value, Option<&str>)> = Vec::new();
        if let Some(w) = pod.pointer("/securityContext/windowsOptions") {
            places.push((None, w, None));
        }
        for (list, prefix, skipped) in [
            ("containers", "", None),
            ("initContainers", "init:", Some("init")),
            ("ephemeralContainers", "ephemeral:", Some("ephemeral")),
        ] {
            for c in pod
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(w) = c.pointer("/securityContext/windowsOptions") {
                    let cname = c.get("name").and_then(Value::as_str).unwrap_or("<unnamed>");
                    places.push((Some(format!("{prefix}{}", shown(cname))), w, skipped));
                }
            }
        }
        for (container, w, skipped) in places {
            let name = w.get("gmsaCredentialSpecName").and_then(Value::as_str);
            let contents = w.get("gmsaCredentialSpec").and_then(Value::as_str);
            if name.is_none() && contents.is_none() {
                continue;
            }
            uses_gmsa = true;
            let cname = container
                .as_deref()
                .map(|c| c.rsplit(':').next().unwrap_or(c));
            // The container's line, then the member's after it.
            let from = cname
                .and_then(|c| find_after(o, &format!("name: {c}"), pod_line))
                .unwrap_or(pod_line);
            let line = match name {
                Some(n) => find_after(o, &format!("gmsaCredentialSpecName: {n}"), from),
                None => find_after(o, "gmsaCredentialSpec:", from),
            }
            .unwrap_or(from);
            let mut push = |rule: Rule, message: String, hint: String| {
                findings.push(Finding {
                    rule: rule.id().to_owned(),
                    severity: rule.severity(),
                    object: object.clone(),
                    container: container.clone(),
                    path: None,
                    location: Location {
                        file: o.file.clone(),
                        line,
                    },
                    message,
                    hint,
                });
            };
            let Some(name) = name else {
                push(
                    Rule::ContentsWithoutName,
                    "windowsOptions has gmsaCredentialSpec contents but no gmsaCredentialSpecName".to_owned(),
                    "name the GMSACredentialSpec with gmsaCredentialSpecName and let the windows-gmsa webhook fill in the contents (it refuses contents without a name)".to_owned(),
                );
                continue;
            };
            if let Some(which) = skipped {
                push(
                    Rule::InitContainerName,
                    format!("{which} container names GMSACredentialSpec `{}`, but the windows-gmsa webhook only expands and authorizes names of the pod and its regular containers", shown(name)),
                    "set gmsaCredentialSpecName on the pod's securityContext.windowsOptions (it applies to every container) or on the regular containers".to_owned(),
                );
                continue;
            }
            let Some(spec) = specs.get(name) else {
                let known: Vec<String> = specs.keys().map(|k| format!("`{}`", shown(k))).collect();
                push(
                    Rule::UnknownSpec,
                    format!(
                        "gmsaCredentialSpecName `{}` names no GMSACredentialSpec in the input",
                        shown(name)
                    ),
                    if known.is_empty() {
                        "add the GMSACredentialSpec's manifest to the files checked, or correct the name".to_owned()
                    } else {
                        format!(
                            "the GMSACredentialSpecs in the input are {}; correct the name or add the manifest",
                            known.join(", ")
                        )
                    },
                );
                continue;
            };
            if let Some((n, first)) = spec_errors.get(name) {
                push(
                    Rule::SpecHasErrors,
                    format!(
                        "GMSACredentialSpec `{}` has {n} error{} (the first at {first}): ccg.exe would fail on it, or the API server refuses it",
                        shown(name),
                        if *n == 1 { "" } else { "s" }
                    ),
                    "fix the GMSACredentialSpec (its findings say how); the pod starts but gets no domain identity until then".to_owned(),
                );
            }
            if !rbac_allows(&roles, &bindings, ns, sa, name) {
                push(
                    Rule::RbacDenied,
                    format!(
                        "service account `{}/{}` may not `use` GMSACredentialSpec `{}`: no RoleBinding in namespace `{}` or ClusterRoleBinding in the input grants it, so the windows-gmsa webhook refuses the pod (403)",
                        shown(ns),
                        shown(sa),
                        shown(name),
                        shown(ns)
                    ),
                    format!(
                        "apply a ClusterRole with the rule {{apiGroups: [\"windows.k8s.io\"], resources: [\"gmsacredentialspecs\"], verbs: [\"use\"], resourceNames: [\"{}\"]}} and a RoleBinding in namespace `{}` to it with the subject {{kind: ServiceAccount, name: {}, namespace: {}}}",
                        shown(name),
                        shown(ns),
                        shown(sa),
                        shown(ns)
                    ),
                );
            }
            if let (Some(contents), Ok(admitted)) = (contents, &spec.admitted) {
                let stored = Value::Object(crd::credspec(admitted));
                match serde_json::from_str::<Value>(contents) {
                    Ok(inline) if inline == stored => {}
                    Ok(_) => push(
                        Rule::ContentsDiffer,
                        format!("the inline gmsaCredentialSpec contents differ from GMSACredentialSpec `{}` (compared as JSON, as the webhook does)", shown(name)),
                        "remove the inline contents and let the windows-gmsa webhook fill them in, or make them the GMSACredentialSpec's credspec exactly".to_owned(),
                    ),
                    Err(e) => push(
                        Rule::ContentsDiffer,
                        format!("the inline gmsaCredentialSpec contents are not JSON (line {}, column {}), so they cannot match GMSACredentialSpec `{}`", e.line(), e.column(), shown(name)),
                        "remove the inline contents and let the windows-gmsa webhook fill them in".to_owned(),
                    ),
                }
            }
        }
        if uses_gmsa && let Some((hostname, how)) = hostname(&o.value, kind, pod) {
            {
                let n = hostname.chars().count();
                if n > 15 {
                    let line = find_after(o, "hostname:", pod_line).unwrap_or(o.line);
                    findings.push(Finding {
                        rule: Rule::HostnameTooLong.id().to_owned(),
                        severity: Rule::HostnameTooLong.severity(),
                        object: object.clone(),
                        container: None,
                        path: None,
                        location: Location {
                            file: o.file.clone(),
                            line,
                        },
                        message: format!(
                            "the pod's hostname {how} is {n} characters long; Windows cuts the computer (NetBIOS) name at 15, so containers of different pods can share one and the gMSA's authentication can fail"
                        ),
                        hint: "set spec.hostname in the pod template to a name of at most 15 characters".to_owned(),
                    });
                }
            }
        }
    }
    findings.sort_by(|a, b| {
        (&a.location.file, a.location.line, &a.rule).cmp(&(
            &b.location.file,
            b.location.line,
            &b.rule,
        ))
    });
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    Report {
        files: Vec::new(),
        objects: objects.len(),
        findings,
        unreadable: Vec::new(),
        errors,
        warnings,
    }
}

fn a_or_an(kind: &str) -> String {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}

fn find_after(o: &Object, needle: &str, after: u32) -> Option<u32> {
    let d = &o.lines;
    (after.max(d.from)..=d.to).find(|l| {
        d.text
            .get((l - d.first) as usize)
            .is_some_and(|t| t.contains(needle) || t.replace('"', "").contains(needle))
    })
}

/// The keys of a member path (`credspec.A.B[0].C` → `credspec`, `A`, `B`, `C`).
fn member_keys(path: &str) -> Vec<&str> {
    path.split(['.', '['])
        .filter(|p| !p.is_empty() && !p.ends_with(']'))
        .collect()
}

/// The hostname the pod's containers get, and how it comes about: `spec.hostname` when
/// set; otherwise the pod's name (kubelet gives containers the pod's hostname, which is the
/// pod name, cut at 63 characters), which for a bare Pod is its name and for the others is
/// generated from the workload's name.
fn hostname(o: &Value, kind: &str, pod: &Value) -> Option<(String, String)> {
    if let Some(h) = pod
        .get("hostname")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
    {
        return Some((h.to_owned(), format!("`{}` (spec.hostname)", shown(h))));
    }
    let name = s(o, "/metadata/name")?;
    let (example, how) = match kind {
        "Pod" => (name.to_owned(), "the pod name"),
        "StatefulSet" => (format!("{name}-0"), "the pod name, NAME-ORDINAL"),
        "Deployment" => (
            format!("{name}-xxxxxxxxxx-xxxxx"),
            "the pod name, NAME-HASH-SUFFIX",
        ),
        "CronJob" => (
            format!("{name}-xxxxxxxx-xxxxx"),
            "the pod name, NAME-TIME-SUFFIX",
        ),
        _ => (format!("{name}-xxxxx"), "the pod name, NAME-SUFFIX"),
    };
    let example: String = example.chars().take(63).collect();
    Some((example.clone(), format!("`{}` ({how})", shown(&example))))
}

/// Whether RBAC in the input lets `namespace/sa` `use` the GMSACredentialSpec `spec`.
fn rbac_allows(
    roles: &BTreeMap<(Option<String>, String), &Object>,
    bindings: &[Binding<'_>],
    namespace: &str,
    sa: &str,
    spec: &str,
) -> bool {
    bindings.iter().any(|b| {
        if b.namespace.as_deref().is_some_and(|ns| ns != namespace) {
            return false;
        }
        if !b.subjects.iter().any(|s| subject_matches(s, namespace, sa)) {
            return false;
        }
        let role = match b.role_kind.as_str() {
            "ClusterRole" => roles.get(&(None, b.role_name.clone())),
            "Role" if b.namespace.is_some() => {
                roles.get(&(b.namespace.clone(), b.role_name.clone()))
            }
            _ => None,
        };
        role.is_some_and(|r| {
            r.value
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|rule| rule_allows(rule, spec))
        }) && b.object.value.is_object()
    })
}

fn subject_matches(s: &Value, namespace: &str, sa: &str) -> bool {
    let kind = s.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "ServiceAccount" => {
            name == sa && s.get("namespace").and_then(Value::as_str) == Some(namespace)
        }
        "Group" => {
            name == "system:serviceaccounts"
                || name == "system:authenticated"
                || name == format!("system:serviceaccounts:{namespace}")
        }
        "User" => name == format!("system:serviceaccount:{namespace}:{sa}"),
        _ => false,
    }
}

fn rule_allows(rule: &Value, spec: &str) -> bool {
    let has = |key: &str, want: &str| {
        rule.get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == want || v == "*"))
    };
    let names = rule
        .get("resourceNames")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    has("verbs", "use")
        && has("apiGroups", crd::GROUP)
        && has("resources", crd::RESOURCE)
        && names.is_none_or(|a| a.iter().any(|v| v == spec))
}

/// The rules a report can hold (the check's and the linter's), for SARIF's rule table.
#[must_use]
pub fn rule_table() -> Vec<(String, Severity, String)> {
    let mut out: Vec<(String, Severity, String)> = Rule::ALL
        .iter()
        .map(|r| (r.id().to_owned(), r.severity(), r.summary().to_owned()))
        .collect();
    out.extend(
        credguard::credspec::Code::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), c.severity(), c.summary().to_owned())),
    );
    out
}

/// The report as a SARIF 2.1.0 log, for code scanning in CI. Unreadable files become
/// `toolExecutionNotifications` of the run's invocation.
#[must_use]
pub fn sarif(report: &Report) -> Value {
    let table = rule_table();
    let used: BTreeSet<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    let rules: Vec<&(String, Severity, String)> = table
        .iter()
        .filter(|(id, _, _)| used.contains(id.as_str()))
        .collect();
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    };
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = rules.iter().position(|(id, _, _)| *id == f.rule);
            let mut text = format!("{}: {}", f.object, f.message);
            if let Some(c) = &f.container {
                text = format!("{} container {c}: {}", f.object, f.message);
            }
            let mut r = json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": format!("{text} (hint: {})", f.hint)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.location.file)},
                        "region": {"startLine": f.location.line.max(1)},
                    }
                }],
            });
            if let Some(i) = index {
                r["ruleIndex"] = json!(i);
            }
            r
        })
        .collect();
    let notifications: Vec<Value> = report
        .unreadable
        .iter()
        .map(|u| {
            let mut n = json!({
                "level": "error",
                "message": {"text": u.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(&u.file)}}}],
            });
            if let Some(l) = u.line {
                n["locations"][0]["physicalLocation"]["region"] = json!({"startLine": l.max(1)});
            }
            n
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "credguard",
                "informationUri": "https://github.com/credguard/credguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|(id, sev, summary)| json!({
                    "id": id,
                    "shortDescription": {"text": summary},
                    "defaultConfiguration": {"level": level(*sev)},
                })).collect::<Vec<_>>(),
            }},
            "invocations": [{
                "executionSuccessful": report.unreadable.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

/// A file path as a relative URI reference: `\` as `/`, and characters URIs do not allow
/// percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
