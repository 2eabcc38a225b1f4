//! The admission handler: an `admission.k8s.io/v1` AdmissionReview in, an AdmissionReview
//! out, checked by the one credential-spec linter of [`credguard::credspec`].
//!
//! It is a plain function ([`review`] on parsed JSON, [`review_bytes`] on a request body), so
//! any server can embed it; [`crate::webhook`] is the TLS server around it.
//!
//! What it decides:
//! - a `GMSACredentialSpec` (`windows.k8s.io`, any version) whose `credspec` has lint errors
//!   is denied (HTTP-like code 422, reason `Invalid`); an object without `credspec` is denied
//!   too (the CRD requires it);
//! - a `Pod` whose pod-level `securityContext.windowsOptions` or any container (containers,
//!   initContainers, ephemeralContainers) carries inline `gmsaCredentialSpec` contents with lint
//!   errors, or contents that are not a credential spec at all, is denied. Validating webhooks
//!   run after the mutating windows-gmsa webhook has expanded `gmsaCredentialSpecName` into
//!   those contents, so this is the spec the node will get;
//! - on UPDATE only what changed is judged (a GMSACredentialSpec whose `credspec` is unchanged,
//!   a pod's contents that were there before, are allowed): a spec stored earlier must not
//!   block a label change, a finalizer's removal or an ephemeral container;
//! - lint warnings become the response's `warnings` (each at most [`MAX_WARNING_CHARS`]
//!   characters, the length the API server keeps), errors the denial's message;
//! - `DELETE` and `CONNECT`, and objects of any other kind, are allowed without warnings;
//!   `dryRun` requests are judged like others (the handler has no side effects).
//!
//! Messages name the lint codes, the member paths and the container, never a value of a
//! `PluginInput` (the linter never quotes one, and neither does this module).

use std::fmt::Write as _;

use credguard::credspec::{Diagnostic, Encoding, LineMap, SpecDocument, read};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `apiVersion` of the reviews this handler reads and writes.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The `kind` of the reviews.
pub const KIND: &str = "AdmissionReview";
/// The API group of `GMSACredentialSpec`.
pub const GMSA_GROUP: &str = "windows.k8s.io";
/// The longest warning the API server passes on unchanged (longer ones it truncates).
pub const MAX_WARNING_CHARS: usize = 256;
/// At most this many warnings are returned; the rest are summarised in the last one.
pub const MAX_WARNINGS: usize = 20;
/// The longest denial message (the API server puts it in the client's error).
const MAX_MESSAGE_CHARS: usize = 4096;

/// An `admission.k8s.io/v1` AdmissionReview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// `admission.k8s.io/v1`.
    pub api_version: String,
    /// `AdmissionReview`.
    pub kind: String,
    /// What the API server asks (in a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<AdmissionRequest>,
    /// The verdict (in a response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<AdmissionResponse>,
}

/// A group, version and kind (`metav1.GroupVersionKind`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupVersionKind {
    /// The API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// The version.
    #[serde(default)]
    pub version: String,
    /// The kind.
    #[serde(default)]
    pub kind: String,
}

/// A group, version and resource (`metav1.GroupVersionResource`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupVersionResource {
    /// The API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// The version.
    #[serde(default)]
    pub version: String,
    /// The resource (plural, lower case).
    #[serde(default)]
    pub resource: String,
}

/// The operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// A new object.
    Create,
    /// A changed object.
    Update,
    /// A removed object.
    Delete,
    /// A connection (exec, attach, port-forward, proxy).
    Connect,
}

/// Who asks (`authenticationv1.UserInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The user's unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The user's groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Anything else the authenticator said.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `AdmissionRequest`: what the API server asks about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Identifies this review; echoed in the response.
    pub uid: String,
    /// The kind of the object as the API server has it.
    pub kind: GroupVersionKind,
    /// The resource.
    pub resource: GroupVersionResource,
    /// The subresource (`status`, `ephemeralcontainers`, ...), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    /// The kind the client sent, when converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    /// The resource the client asked for, when converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    /// The subresource the client asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    /// The object's name (may be empty on CREATE with `generateName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The operation.
    pub operation: Operation,
    /// Who asks.
    #[serde(default)]
    pub user_info: UserInfo,
    /// The new object (CREATE, UPDATE; CONNECT options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// The old object (UPDATE, DELETE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    /// Whether nothing will be persisted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// The operation's options (`CreateOptions`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// `metav1.Status`, as much of it as a denial needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// An HTTP status code for the client (422 for lint errors).
    pub code: u16,
    /// What is wrong, for people.
    pub message: String,
    /// A machine-readable reason (`Invalid`).
    pub reason: String,
}

/// `AdmissionResponse`: the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's uid.
    pub uid: String,
    /// Whether the operation may go on.
    pub allowed: bool,
    /// Why not (JSON member `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Warnings the client is shown (lint warnings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why a body is not an AdmissionReview this handler can answer (a server answers HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// Not JSON, or not shaped as an AdmissionReview request.
    #[error("the body is not an AdmissionReview: {reason}")]
    Malformed {
        /// What serde_json said (position and expected shape; never the body).
        reason: String,
    },
    /// Another API version or kind.
    #[error(
        "the body is a {api_version} {kind}, not an {API_VERSION} {KIND}: list only `v1` in the webhook's admissionReviewVersions"
    )]
    WrongType {
        /// The `apiVersion` found.
        api_version: String,
        /// The `kind` found.
        kind: String,
    },
    /// No `request` member.
    #[error("the AdmissionReview has no `request`")]
    NoRequest,
    /// An empty `request.uid`.
    #[error("the AdmissionReview's request has an empty `uid`")]
    NoUid,
}

/// The verdict with what a log line needs (never contents).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The response review to send.
    pub review: AdmissionReview,
    /// What was judged, for logs.
    pub summary: Summary,
}

/// What a review was about and how it ended, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The request's uid.
    pub uid: String,
    /// The object's kind.
    pub kind: String,
    /// The operation.
    pub operation: Operation,
    /// `namespace/name` (or just the name), as far as known.
    pub object: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// `allowed`, `warned` or `denied`.
    pub verdict: &'static str,
    /// The lint codes of the errors (denied) or warnings.
    pub codes: Vec<String>,
}

/// Reviews a request body: parses it, then [`review`].
///
/// # Errors
/// [`ReviewError`] when the body is not an `admission.k8s.io/v1` AdmissionReview request with
/// a uid.
pub fn review_bytes(body: &[u8]) -> Result<Verdict, ReviewError> {
    let review: AdmissionReview =
        serde_json::from_slice(body).map_err(|e| ReviewError::Malformed {
            reason: serde_reason(&e),
        })?;
    self::review(review)
}

/// serde_json's message without any quoted input (it quotes unknown variants and the like):
/// the category and position only.
fn serde_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "it could not be read",
        Category::Syntax => "it is not valid JSON",
        Category::Eof => "it ends early",
        Category::Data => "a member has the wrong type or value, or a required one is missing",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// Reviews a parsed AdmissionReview.
///
/// # Errors
/// [`ReviewError`] when it is not an `admission.k8s.io/v1` AdmissionReview request with a uid.
pub fn review(review: AdmissionReview) -> Result<Verdict, ReviewError> {
    if review.api_version != API_VERSION || review.kind != KIND {
        return Err(ReviewError::WrongType {
            api_version: review.api_version.chars().take(64).collect(),
            kind: review.kind.chars().take(64).collect(),
        });
    }
    let request = review.request.ok_or(ReviewError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::NoUid);
    }
    let findings = judge(&request);
    let object = object_name(&request);
    let mut summary = Summary {
        uid: request.uid.clone(),
        kind: request.kind.kind.clone(),
        operation: request.operation,
        object,
        dry_run: request.dry_run.unwrap_or(false),
        verdict: "allowed",
        codes: Vec::new(),
    };
    let errors: Vec<&Finding> = findings.iter().filter(|f| f.is_error()).collect();
    let response = if errors.is_empty() {
        let warnings = warnings_of(&findings);
        if !warnings.is_empty() {
            summary.verdict = "warned";
            summary.codes = codes_of(findings.iter());
        }
        AdmissionResponse {
            uid: request.uid,
            allowed: true,
            status: None,
            warnings,
        }
    } else {
        summary.verdict = "denied";
        summary.codes = codes_of(errors.iter().copied());
        AdmissionResponse {
            uid: request.uid,
            allowed: false,
            status: Some(Status {
                code: 422,
                message: denial_message(&request.kind.kind, &errors),
                reason: "Invalid".to_owned(),
            }),
            warnings: warnings_of(&findings),
        }
    };
    Ok(Verdict {
        review: AdmissionReview {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            request: None,
            response: Some(response),
        },
        summary,
    })
}

fn object_name(request: &AdmissionRequest) -> String {
    let name = request
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            let meta = request.object.as_ref()?.get("metadata")?;
            meta.get("name")
                .or_else(|| meta.get("generateName"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    match request.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name,
    }
}

/// One problem: a diagnostic, or contents that cannot be read, and where.
#[derive(Debug)]
enum Finding {
    Lint {
        /// `container "app"`, `the pod's securityContext`, or empty for a GMSACredentialSpec.
        place: String,
        diagnostic: Diagnostic,
    },
    Unreadable {
        place: String,
        reason: String,
    },
}

impl Finding {
    fn is_error(&self) -> bool {
        match self {
            Finding::Lint { diagnostic, .. } => diagnostic.is_error(),
            Finding::Unreadable { .. } => true,
        }
    }

    fn is_warning(&self) -> bool {
        matches!(self, Finding::Lint { diagnostic, .. }
            if diagnostic.severity == credguard::credspec::Severity::Warning)
    }

    fn code(&self) -> String {
        match self {
            Finding::Lint { diagnostic, .. } => diagnostic.code.to_string(),
            Finding::Unreadable { .. } => "unreadable".to_owned(),
        }
    }
}

fn codes_of<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<String> {
    let mut codes: Vec<String> = findings.map(Finding::code).collect();
    codes.sort();
    codes.dedup();
    codes
}

fn judge(request: &AdmissionRequest) -> Vec<Finding> {
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return Vec::new();
    }
    let Some(object) = request.object.as_ref() else {
        return Vec::new();
    };
    // On UPDATE only what changes is judged: a spec stored before (before the webhook, or
    // while it was unreachable) must not block a label change, a finalizer's removal or an
    // ephemeral container added for debugging.
    let old = match request.operation {
        Operation::Update => request.old_object.as_ref(),
        _ => None,
    };
    match (request.kind.group.as_str(), request.kind.kind.as_str()) {
        (GMSA_GROUP, "GMSACredentialSpec") => match old {
            Some(old) if old.get("credspec") == object.get("credspec") => Vec::new(),
            _ => judge_gmsa(object),
        },
        ("", "Pod") => {
            let before = old.map(inline_specs).unwrap_or_default();
            let mut out = Vec::new();
            for (place, contents) in inline_specs(object) {
                if !before.contains(&(place.clone(), contents)) {
                    judge_inline(&place, contents, &mut out);
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn judge_gmsa(object: &Value) -> Vec<Finding> {
    let place = String::new();
    match object.get("credspec") {
        None | Some(Value::Null) => vec![Finding::Unreadable {
            place,
            reason: "it has no `credspec`".to_owned(),
        }],
        Some(value) => {
            match SpecDocument::from_value(value.clone(), Encoding::Utf8, LineMap::none()) {
                Ok(doc) => lint_findings(&place, &doc),
                Err(e) => vec![Finding::Unreadable {
                    place,
                    reason: format!("its `credspec`: {e}"),
                }],
            }
        }
    }
}

fn lint_findings(place: &str, doc: &SpecDocument) -> Vec<Finding> {
    doc.lint()
        .into_iter()
        .map(|diagnostic| Finding::Lint {
            place: place.to_owned(),
            diagnostic,
        })
        .collect()
}

/// The inline contents of a pod, each with where it is (`the pod's securityContext`,
/// `container "iis"`, ...): pod level, then init containers, containers and ephemeral
/// containers in order.
fn inline_specs(pod: &Value) -> Vec<(String, &str)> {
    let Some(spec) = pod.get("spec") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(contents) = gmsa_contents(spec) {
        out.push(("the pod's securityContext".to_owned(), contents));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (n, container) in containers.iter().enumerate() {
            let Some(contents) = gmsa_contents(container) else {
                continue;
            };
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("{list}[{n}]"), |name| format!("{name:?}"));
            let what = match list {
                "initContainers" => "init container",
                "ephemeralContainers" => "ephemeral container",
                _ => "container",
            };
            out.push((format!("{what} {name}"), contents));
        }
    }
    out
}

/// `securityContext.windowsOptions.gmsaCredentialSpec` of a pod spec or a container.
fn gmsa_contents(holder: &Value) -> Option<&str> {
    holder
        .get("securityContext")?
        .get("windowsOptions")?
        .get("gmsaCredentialSpec")?
        .as_str()
}

fn judge_inline(place: &str, contents: &str, out: &mut Vec<Finding>) {
    match read(contents.as_bytes()) {
        Ok(doc) => out.extend(lint_findings(place, &doc)),
        Err(e) => out.push(Finding::Unreadable {
            place: place.to_owned(),
            reason: format!("its gmsaCredentialSpec: {e}"),
        }),
    }
}

fn denial_message(kind: &str, errors: &[&Finding]) -> String {
    let mut message = format!(
        "credguard: the {kind}'s credential spec{} would fail on Windows nodes ({} error{}):",
        if kind == "Pod" { "s" } else { "" },
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
    );
    for finding in errors {
        let line = match finding {
            Finding::Lint { place, diagnostic } => {
                let mut s = String::new();
                if !place.is_empty() {
                    let _ = write!(s, "{place}: ");
                }
                let _ = write!(
                    s,
                    "{} {}: {} ({})",
                    diagnostic.code, diagnostic.path, diagnostic.message, diagnostic.hint
                );
                s
            }
            Finding::Unreadable { place, reason } if place.is_empty() => reason.clone(),
            Finding::Unreadable { place, reason } => format!("{place}: {reason}"),
        };
        if message.chars().count() + line.chars().count() + 3 > MAX_MESSAGE_CHARS {
            message.push_str("; ... (more errors: run the credential-spec linter on it)");
            break;
        }
        message.push_str(if message.ends_with(':') { " " } else { "; " });
        message.push_str(&line);
    }
    message
}

/// Lint warnings, one short line each: `container "app": CS088 path: summary`.
fn warnings_of(findings: &[Finding]) -> Vec<String> {
    let warnings: Vec<String> = findings
        .iter()
        .filter(|f| f.is_warning())
        .filter_map(|f| match f {
            Finding::Lint { place, diagnostic } => {
                let prefix = if place.is_empty() {
                    String::new()
                } else {
                    format!("{place}: ")
                };
                Some(truncate(
                    &format!(
                        "{prefix}{} {}: {}",
                        diagnostic.code,
                        diagnostic.path,
                        diagnostic.code.summary()
                    ),
                    MAX_WARNING_CHARS,
                ))
            }
            Finding::Unreadable { .. } => None,
        })
        .collect();
    if warnings.len() > MAX_WARNINGS {
        let mut kept: Vec<String> = warnings[..MAX_WARNINGS - 1].to_vec();
        kept.push(format!(
            "credguard: {} more lint warnings not shown",
            warnings.len() - (MAX_WARNINGS - 1)
        ));
        return kept;
    }
    warnings
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 3).collect();
    t.push_str("...");
    t
}

#[cfg(test)]
mod tests;
