//! Where credential specs live, and the one parser for all of them.
//!
//! Every command that takes `--credspec` goes through [`parse_source`] and [`load`]
//! (or [`load_arg`], both at once). Accepted:
//! - a path, or `-` for standard input;
//! - `file://NAME`: relative to the credential-spec directory, as Docker reads it; absolute
//!   names, names that could leave the directory and DOS device names are refused, and only
//!   a regular file beneath the directory is opened (see the `open` module);
//! - `raw://JSON`: the spec inline (its text read like a file's: a manifest or a bundle
//!   `config.json`, with its policy, works too);
//! - `registry://NAME`: a REG_SZ value under [`REGISTRY_KEY`] (Windows only);
//! - a Kubernetes `GMSACredentialSpec` manifest (YAML, multi-document YAML, JSON, or a JSON
//!   `List`), read from a path, `-` or `file://`; a manifest with several resources is
//!   selected from with `PATH#NAME` (the resource's `metadata.name`);
//! - an OCI runtime bundle's `config.json`, whose `windows.credentialSpec` is a JSON string
//!   (what runtimes write) or an object (what the OCI schema says); its gMSA-disable
//!   annotation travels with the spec as its [`SpecPolicy`].
//!
//! A member repeated in one object, in any form, makes the spec unreadable. Errors name the
//! source as the user gave it, once, made printable and short ([`super::syntax::shown`]),
//! except for `raw://`, whose text is never repeated (it can hold a plug-in secret).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde_json::{Map, Value};

use super::open;
use super::path::{JsonPath, LineMap};
use super::read::{Encoding, ReadError, SpecDocument, decode, parse_json};
use crate::input::{MAX_CREDENTIAL_SPEC_BYTES, json_kind};

/// Docker's credential-spec directory on Windows, the default of `--credspec-dir` there.
pub const DOCKER_CREDENTIAL_SPECS_DIR: &str = r"C:\ProgramData\docker\CredentialSpecs";

/// The registry key whose REG_SZ values `registry://NAME` reads.
pub const REGISTRY_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\Containers\CredentialSpecs";

/// The largest file read as a source: a manifest or bundle config holding a spec can be
/// bigger than the spec's 64 KiB, but not without bound.
pub const MAX_SOURCE_FILE_BYTES: usize = 1024 * 1024;

/// The Kubernetes kind of a credential spec resource.
pub const GMSA_CREDENTIAL_SPEC_KIND: &str = "GMSACredentialSpec";

/// The accepted forms, as errors list them.
pub const ACCEPTED_FORMS: &str = "a path (a credential spec, a Kubernetes GMSACredentialSpec manifest as PATH or PATH#NAME, or an OCI bundle config.json), `-` for standard input, file://NAME (relative to the credential-spec directory), raw://JSON, or registry://NAME";

/// The credential-spec directory used when `--credspec-dir` is not given: Docker's on
/// Windows, `<state-dir>/CredentialSpecs` elsewhere.
#[must_use]
pub fn default_credspec_dir(state_dir: &Path) -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(DOCKER_CREDENTIAL_SPECS_DIR)
    } else {
        state_dir.join("CredentialSpecs")
    }
}

/// Where a credential spec is to be read from.
#[derive(Clone, PartialEq, Eq)]
pub enum SpecSource {
    /// Standard input (`-`, or `-#NAME` to select a manifest resource).
    Stdin {
        /// The `metadata.name` of the manifest resource to take.
        select: Option<String>,
    },
    /// A path (`PATH`, or `PATH#NAME`).
    Path {
        /// The file.
        path: PathBuf,
        /// The `metadata.name` of the manifest resource to take.
        select: Option<String>,
    },
    /// `file://NAME`: relative to the credential-spec directory.
    File {
        /// The name, checked to stay inside the directory.
        name: String,
        /// The `metadata.name` of the manifest resource to take.
        select: Option<String>,
    },
    /// `raw://JSON`. Its text is never shown.
    Raw(String),
    /// `registry://NAME`.
    Registry(String),
}

impl fmt::Debug for SpecSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecSource::Raw(text) => write!(f, "Raw(<{} bytes>)", text.len()),
            other => write!(f, "{other}"),
        }
    }
}

impl fmt::Display for SpecSource {
    /// The source as the user wrote it, except that `raw://` hides its text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let select = |s: &Option<String>| s.as_ref().map(|s| format!("#{s}")).unwrap_or_default();
        match self {
            SpecSource::Stdin { select: s } => write!(f, "<stdin>{}", select(s)),
            SpecSource::Path { path, select: s } => write!(f, "{}{}", path.display(), select(s)),
            SpecSource::File { name, select: s } => write!(f, "file://{name}{}", select(s)),
            SpecSource::Raw(_) => f.write_str("raw://"),
            SpecSource::Registry(name) => write!(f, "registry://{name}"),
        }
    }
}

/// How the spec was stored in its source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum SpecForm {
    /// A credential spec document.
    Spec,
    /// The `credspec` of a Kubernetes `GMSACredentialSpec`.
    KubernetesManifest {
        /// The resource's `metadata.name`.
        name: String,
    },
    /// The `windows.credentialSpec` of an OCI bundle's `config.json`.
    OciBundle {
        /// Whether it was a JSON string (as runtimes write it) rather than an object.
        as_string: bool,
    },
}

/// The OCI annotation with which hcsshim's policy disables gMSA for a container.
pub const GMSA_DISABLE_ANNOTATION: &str = "io.microsoft.container.wcow.gmsa.disable";

/// What a credential spec's source says about the policy of the container it is for.
///
/// Only an OCI bundle's `config.json` says anything (its annotations); every other form
/// carries the default, which allows the spec. [`crate::CcgClient::create_spec`] refuses a
/// spec whose policy disables gMSA before anything is sent, so a caller that loads a spec
/// through [`load`] gets the policy with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpecPolicy {
    /// Why gMSA is disabled for the container (the annotation and its value), when it is.
    pub gmsa_disabled: Option<String>,
}

impl SpecPolicy {
    /// The policy an OCI runtime spec (`config.json`) sets through hcsshim's annotation
    /// `io.microsoft.container.wcow.gmsa.disable`: a boolean as Go's `strconv.ParseBool`
    /// reads it (`1`, `t`, `T`, `true`, `TRUE`, `True`; surrounding white space ignored, and
    /// a JSON `true` counts too). Anything else leaves gMSA enabled, as hcsshim does.
    #[must_use]
    pub fn of_oci_config(config: &Map<String, Value>) -> Self {
        let key = GMSA_DISABLE_ANNOTATION;
        let value = config.get("annotations").and_then(|a| a.get(key));
        let disabled = match value {
            Some(Value::String(v)) => {
                matches!(v.trim(), "1" | "t" | "T" | "true" | "TRUE" | "True")
            }
            Some(Value::Bool(b)) => *b,
            _ => false,
        };
        SpecPolicy {
            gmsa_disabled: disabled.then(|| {
                let shown = match value {
                    Some(Value::String(v)) => shown_name(v),
                    _ => "true".to_owned(),
                };
                format!("the OCI annotation `{key}` is `{shown}`")
            }),
        }
    }
}

/// A credential spec read from its source.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The source, for messages (`specs/web.json`, `<stdin>`, `raw://`), made printable
    /// and short.
    pub origin: String,
    /// How it was stored.
    pub form: SpecForm,
    /// The spec.
    pub document: SpecDocument,
    /// What the source says about policy (an OCI bundle's gMSA-disable annotation).
    pub policy: SpecPolicy,
}

/// Why a credential spec could not be had from its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// An empty argument.
    #[error("the credential spec source is empty; give {ACCEPTED_FORMS}")]
    Empty,
    /// A scheme with nothing after it.
    #[error("`{scheme}://` needs a value after it; give {ACCEPTED_FORMS}")]
    EmptyValue {
        /// The scheme.
        scheme: String,
    },
    /// A scheme credguard does not read.
    #[error("unknown credential spec scheme `{scheme}://`{suggestion}; give {ACCEPTED_FORMS}")]
    UnknownScheme {
        /// The scheme.
        scheme: String,
        /// `, did you mean ...` or nothing.
        suggestion: String,
    },
    /// Docker Swarm's `config://`.
    #[error(
        "`config://` credential specs are Docker Swarm configs, which only Swarm can read; save the spec to a file and give its path or file://NAME"
    )]
    SwarmConfig,
    /// A `file://` name that is absolute or could leave the directory.
    #[error(
        "`file://{name}` is refused: {reason}; give a name relative to the credential-spec directory, such as file://contoso_webapp01.json"
    )]
    BadFileName {
        /// The name (printable).
        name: String,
        /// Why.
        reason: String,
    },
    /// A `file://` name that leads outside the directory, or through a link this system
    /// cannot follow safely. Nothing was read.
    #[error(
        "`{origin}` is refused: {reason}; file:// names must name a file in the credential-spec directory `{dir}`"
    )]
    OutsideDirectory {
        /// The source (printable).
        origin: String,
        /// The directory (printable).
        dir: String,
        /// Why.
        reason: &'static str,
    },
    /// A `file://` name that is not a regular file (a FIFO, a device, a directory). Nothing
    /// was read.
    #[error(
        "`{origin}` is {what}, not a regular file; a credential spec is read from a regular file"
    )]
    NotAFile {
        /// The source (printable).
        origin: String,
        /// What it is.
        what: &'static str,
    },
    /// A path whose file name is a DOS device name (Windows): reading it would read the
    /// device. Nothing was opened.
    #[error(
        "`{origin}` is refused: {device} on Windows, not a file; give `-` to read standard input, or rename the file"
    )]
    DeviceName {
        /// The source (printable).
        origin: String,
        /// What names the device (printable): "`COM1` is a DOS device name", or that the
        /// path is in the device namespace.
        device: String,
    },
    /// A file or standard input could not be read.
    #[error("cannot read the credential spec `{origin}` (check the path and that it is readable)")]
    Unreadable {
        /// The source.
        origin: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file bigger than any source can be.
    #[error(
        "`{origin}` is over {MAX_SOURCE_FILE_BYTES} bytes; a credential spec is at most 64 KiB, and a manifest or bundle config holding one at most 1 MiB: check that this is the right file"
    )]
    FileTooLarge {
        /// The source.
        origin: String,
    },
    /// The spec (or the document holding it) is not readable.
    #[error("the credential spec `{origin}` cannot be used")]
    Read {
        /// The source (and, inside a document, where in it).
        origin: String,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// A YAML manifest that is not YAML.
    #[error("`{origin}` is neither JSON nor valid YAML{at}: {reason}; fix the syntax there")]
    Yaml {
        /// The source.
        origin: String,
        /// ` at line L, column C`, when known.
        at: String,
        /// What is wrong (never the input).
        reason: String,
    },
    /// A YAML manifest with a key repeated in one mapping.
    #[error(
        "`{origin}`: `{path}` appears twice{at}; a reader that keeps the first copy would use one that is not checked: keep one of them"
    )]
    YamlDuplicate {
        /// The source.
        origin: String,
        /// The key's path in its document (printable).
        path: String,
        /// ` (lines A and B)` of the two copies, else ` (in the mapping at line L)`, when
        /// known (YAML gives no line per key; they are found in the text).
        at: String,
    },
    /// A manifest without a usable GMSACredentialSpec, or an ambiguous selection.
    #[error("`{origin}`: {reason}")]
    Manifest {
        /// The source.
        origin: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// An OCI bundle config without a usable `windows.credentialSpec`.
    #[error("OCI bundle config `{origin}`: {reason}")]
    Bundle {
        /// The source.
        origin: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// `registry://` off Windows.
    #[error(
        "registry:// credential specs can only be read on Windows (registry://{name} is a value under {REGISTRY_KEY}); on this host, save the spec to a file and give its path or file://NAME"
    )]
    RegistryNotOnWindows {
        /// The value name.
        name: String,
    },
    /// Reading the registry value failed.
    #[error("cannot read the credential spec registry://{name}")]
    Registry {
        /// The value name.
        name: String,
        /// Why (the registry error names the key and the value).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// A `--credspec` argument fit to be shown: as given, except that the text of `raw://` is
/// left out (it can hold a plug-in secret).
#[must_use]
pub fn shown_arg(arg: &str) -> String {
    if arg.starts_with("raw://") {
        "raw://".to_owned()
    } else {
        shown_path(arg)
    }
}

/// Parses a `--credspec` argument. Checks `file://` names; reads nothing.
///
/// # Errors
/// [`SourceError`] for an empty argument, an unknown scheme (listing the accepted forms), a
/// scheme without a value, or a `file://` name that is absolute or could leave the directory.
pub fn parse_source(arg: &str) -> Result<SpecSource, SourceError> {
    if arg.is_empty() {
        return Err(SourceError::Empty);
    }
    if arg == "-" {
        return Ok(SpecSource::Stdin { select: None });
    }
    if let Some(select) = arg.strip_prefix("-#").filter(|s| is_resource_name(s)) {
        return Ok(SpecSource::Stdin {
            select: Some(select.to_owned()),
        });
    }
    let Some((scheme, value)) = split_scheme(arg) else {
        let (path, select) = split_selector(arg);
        return Ok(SpecSource::Path {
            path: PathBuf::from(path),
            select,
        });
    };
    let need_value = || {
        if value.is_empty() {
            Err(SourceError::EmptyValue {
                scheme: scheme.to_owned(),
            })
        } else {
            Ok(())
        }
    };
    match scheme {
        "file" => {
            need_value()?;
            let (name, select) = split_selector(value);
            check_relative_name(name)?;
            Ok(SpecSource::File {
                name: name.to_owned(),
                select,
            })
        }
        "raw" => {
            need_value()?;
            Ok(SpecSource::Raw(value.to_owned()))
        }
        "registry" => {
            need_value()?;
            Ok(SpecSource::Registry(value.to_owned()))
        }
        "config" => Err(SourceError::SwarmConfig),
        other => {
            let suggestion = ["file", "raw", "registry"]
                .iter()
                .find(|s| s.eq_ignore_ascii_case(other))
                .map(|s| format!(" (schemes are lower case: did you mean `{s}://`?)"))
                .unwrap_or_default();
            Err(SourceError::UnknownScheme {
                scheme: shown_name(other),
                suggestion,
            })
        }
    }
}

/// `scheme://value`, where a scheme is a letter followed by letters, digits, `+`, `-`, `.`
/// and is longer than one character (`C://x` is a Windows path).
fn split_scheme(arg: &str) -> Option<(&str, &str)> {
    let (scheme, value) = arg.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() > 1
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    .then_some((scheme, value))
}

/// Whether `s` is a Kubernetes resource name (a DNS-1123 subdomain).
fn is_resource_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// `PATH#NAME` → (`PATH`, `NAME`) when NAME is a resource name; otherwise the whole.
fn split_selector(s: &str) -> (&str, Option<String>) {
    match s.rsplit_once('#') {
        Some((path, name)) if !path.is_empty() && is_resource_name(name) => {
            (path, Some(name.to_owned()))
        }
        _ => (s, None),
    }
}

fn shown_name(s: &str) -> String {
    super::syntax::shown(s)
}

fn shown_path(s: &str) -> String {
    super::syntax::shown_path(s)
}

/// Refuses `file://` names that are absolute or could resolve outside the directory, on
/// any platform (Docker on Windows is the reference).
fn check_relative_name(name: &str) -> Result<(), SourceError> {
    let refuse = |reason: &str| {
        Err(SourceError::BadFileName {
            name: shown_name(name),
            reason: reason.to_owned(),
        })
    };
    if name.chars().any(char::is_control) {
        return refuse("it contains a control character");
    }
    let lower = name.to_ascii_lowercase();
    for encoded in ["%2e", "%2f", "%5c"] {
        if lower.contains(encoded) {
            return refuse(
                "it contains a percent-encoded dot or separator (`%2e`, `%2f`, `%5c`), which is not decoded: write the name plainly",
            );
        }
    }
    if name.starts_with("\\\\") || name.starts_with("//") {
        return refuse("it is a UNC path; the path cannot be absolute");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return refuse("the path cannot be absolute");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return refuse("it starts with a drive letter; the path cannot be absolute");
    }
    if name.contains(':') {
        return refuse("it contains `:` (a drive or an alternate data stream)");
    }
    if name.contains('/') && name.contains('\\') {
        return refuse("it mixes `/` and `\\` separators");
    }
    if let Some(device) = name.split(['/', '\\']).find(|c| is_dos_device_name(c)) {
        return Err(SourceError::BadFileName {
            name: shown_name(name),
            reason: format!(
                "`{}` is a DOS device name on Windows (CON, PRN, AUX, NUL, COM0-9, LPT0-9, CONIN$, CONOUT$, CLOCK$, with any extension), never a credential spec; rename the file",
                shown_name(device)
            ),
        });
    }
    for component in name.split(['/', '\\']) {
        // Windows drops trailing dots and spaces, so `.. ` and `...` act as `..`.
        if component.len() > 1 && component.trim_end_matches(['.', ' ']).is_empty() {
            return refuse(
                "it has a `..` component; the path must be under the credential-spec directory",
            );
        }
    }
    Ok(())
}

/// Whether a file name (one path component) names a DOS device on Windows: `CON`, `PRN`,
/// `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9` (and their superscript-digit forms `COM¹`,
/// `COM²`, `COM³`, `LPT¹`...), `CONIN$`, `CONOUT$`, `CLOCK$`, in any case, with any
/// extension (`COM1.json`) or stream (`COM1:`) and trailing dots or spaces (`NUL.`,
/// `AUX .txt`). Opening such a name anywhere on Windows opens the device (`COM1` can be a
/// VM's serial console, `CON` the console), so it is never a credential spec, on any
/// platform.
#[must_use]
pub fn is_dos_device_name(component: &str) -> bool {
    // Windows ends the device name at the first `.` or `:` (`COM1:` and `COM1:x` are COM1).
    let stem = component.split(['.', ':']).next().unwrap_or_default();
    let stem = stem.trim_end_matches([' ', '.']).to_ascii_uppercase();
    let numbered = |prefix: &str| {
        stem.strip_prefix(prefix).is_some_and(|rest| {
            let mut chars = rest.chars();
            matches!(
                (chars.next(), chars.next()),
                (Some('0'..='9' | '\u{b9}' | '\u{b2}' | '\u{b3}'), None)
            )
        })
    };
    matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" | "CLOCK$"
    ) || numbered("COM")
        || numbered("LPT")
}

/// Why a plain path names a Windows device, if it does: a DOS device file name in any
/// folder (`CON`, `COM1:`, `C:\x\nul.json`, see [`is_dos_device_name`]), or a path in the
/// device namespace (`\\.\COM1`, `//./pipe/x`, `\\?\GLOBALROOT\...`; `\\?\C:\...` and
/// `\\?\UNC\...` are files). Opening a device can hang (a serial port, a pipe) or read
/// the console, so such a path is refused before anything opens it. Always `None` on other
/// systems, where these are ordinary names.
#[must_use]
pub fn device_in_path(path: &Path) -> Option<String> {
    #[cfg(windows)]
    {
        let text = path.to_string_lossy();
        let b = text.as_bytes();
        let sep = |c: u8| c == b'/' || c == b'\\';
        if b.len() >= 4 && sep(b[0]) && sep(b[1]) && matches!(b[2], b'.' | b'?') && sep(b[3]) {
            let rest = text[4..].to_ascii_uppercase();
            let rb = rest.as_bytes();
            let drive = rb.len() >= 2 && rb[0].is_ascii_alphabetic() && rb[1] == b':';
            let unc = rest.starts_with("UNC\\") || rest.starts_with("UNC/");
            // `\\.\C:` is the volume itself; `\\?\C:\x` and `\\?\UNC\...` are paths.
            let file = b[2] == b'?' && ((drive && rb.get(2).is_some_and(|c| sep(*c))) || unc);
            if !file {
                return Some(
                    "it is a path in the device namespace (`\\\\.\\`, `\\\\?\\` outside a drive or share)"
                        .to_owned(),
                );
            }
        }
        path.file_name()
            .and_then(|n| n.to_str())
            .filter(|n| is_dos_device_name(n))
            .map(|n| format!("`{}` is a DOS device name", shown_name(n)))
    }
    #[cfg(not(windows))]
    {
        let _ = path;
        None
    }
}

/// Parses and loads a `--credspec` argument: the one entry point every command uses.
///
/// # Errors
/// [`SourceError`] from [`parse_source`] or [`load`].
pub fn load_arg(arg: &str, credspec_dir: &Path) -> Result<LoadedSpec, SourceError> {
    load(&parse_source(arg)?, credspec_dir)
}

/// Loads a credential spec from its source, reading standard input for `-`.
///
/// # Errors
/// [`SourceError`] saying what could not be read and why.
pub fn load(source: &SpecSource, credspec_dir: &Path) -> Result<LoadedSpec, SourceError> {
    load_from(source, credspec_dir, &mut std::io::stdin().lock())
}

/// [`load`] with standard input given.
///
/// # Errors
/// [`SourceError`] saying what could not be read and why.
pub fn load_from(
    source: &SpecSource,
    credspec_dir: &Path,
    stdin: &mut dyn Read,
) -> Result<LoadedSpec, SourceError> {
    match source {
        SpecSource::Stdin { select } => {
            let origin = "<stdin>".to_owned();
            let bytes = read_limited(stdin, &origin)?;
            from_bytes(origin, &bytes, select.as_deref())
        }
        SpecSource::Path { path, select } => {
            // Before anything looks at the path (`exists` opens it on Windows): a device
            // (`COM1`, `COM1:`, `\\.\COM1`) can hang the open itself.
            if let Some(device) = device_in_path(path) {
                return Err(SourceError::DeviceName {
                    origin: shown_path(&path.display().to_string()),
                    device,
                });
            }
            // `a#b.json` is a file with `#` in its name when `a` does not exist but it does.
            let (path, select) = match select {
                Some(name) if !path.exists() => {
                    let whole = PathBuf::from(format!("{}#{name}", path.display()));
                    if whole.exists() {
                        (whole, None)
                    } else {
                        (path.clone(), Some(name.as_str()))
                    }
                }
                _ => (path.clone(), select.as_deref()),
            };
            let origin = shown_path(&path.display().to_string());
            if let Some(device) = device_in_path(&path) {
                return Err(SourceError::DeviceName { origin, device });
            }
            let bytes = read_file(&path, &origin)?;
            from_bytes(origin, &bytes, select)
        }
        SpecSource::File { name, select } => {
            let relative: PathBuf = name
                .split(['/', '\\'])
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            let origin = shown_path(&format!("file://{name}"));
            let bytes = open::read_beneath(credspec_dir, &relative, MAX_SOURCE_FILE_BYTES as u64)
                .map_err(|e| beneath_error(e, &origin, credspec_dir))?;
            if bytes.len() > MAX_SOURCE_FILE_BYTES {
                return Err(SourceError::FileTooLarge { origin });
            }
            from_bytes(origin, &bytes, select.as_deref())
        }
        // Inline and registry texts are read like every other source: a bundle's config.json
        // pasted there still carries its policy (a spec-only reader sent it as the spec,
        // annotation and all, under --no-lint).
        SpecSource::Raw(text) => from_bytes("raw://".to_owned(), text.as_bytes(), None),
        SpecSource::Registry(name) => {
            let text = registry_value(name)?;
            let origin = shown_name(&format!("registry://{name}"));
            from_bytes(origin, text.as_bytes(), None)
        }
    }
}

#[cfg(not(windows))]
fn registry_value(name: &str) -> Result<String, SourceError> {
    Err(SourceError::RegistryNotOnWindows {
        name: shown_name(name),
    })
}

#[cfg(windows)]
fn registry_value(name: &str) -> Result<String, SourceError> {
    crate::credspec::registry::read_registry_credential_spec(name).map_err(|e| {
        SourceError::Registry {
            name: shown_name(name),
            source: Box::new(e),
        }
    })
}

fn read_file(path: &Path, origin: &str) -> Result<Vec<u8>, SourceError> {
    let bytes = open::read_path(path, MAX_SOURCE_FILE_BYTES as u64).map_err(|source| {
        SourceError::Unreadable {
            origin: origin.to_owned(),
            source,
        }
    })?;
    if bytes.len() > MAX_SOURCE_FILE_BYTES {
        return Err(SourceError::FileTooLarge {
            origin: origin.to_owned(),
        });
    }
    Ok(bytes)
}

/// The error of a `file://` name that could not be read beneath the directory.
fn beneath_error(e: open::BeneathError, origin: &str, dir: &Path) -> SourceError {
    let dir = shown_path(&dir.display().to_string());
    match e {
        open::BeneathError::Io(source) => SourceError::Unreadable {
            origin: format!("{origin} (in the credential-spec directory {dir})"),
            source,
        },
        open::BeneathError::Outside => SourceError::OutsideDirectory {
            origin: origin.to_owned(),
            dir,
            reason: "it leads outside the credential-spec directory (through a symbolic link)",
        },
        open::BeneathError::Symlink => SourceError::OutsideDirectory {
            origin: origin.to_owned(),
            dir,
            reason: "it is a symbolic link, which file:// names on this system cannot be",
        },
        open::BeneathError::NotRegular(what) => SourceError::NotAFile {
            origin: origin.to_owned(),
            what,
        },
    }
}

fn read_limited(input: &mut dyn Read, origin: &str) -> Result<Vec<u8>, SourceError> {
    let mut bytes = Vec::new();
    input
        .take(MAX_SOURCE_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| SourceError::Unreadable {
            origin: origin.to_owned(),
            source,
        })?;
    if bytes.len() > MAX_SOURCE_FILE_BYTES {
        return Err(SourceError::FileTooLarge {
            origin: origin.to_owned(),
        });
    }
    Ok(bytes)
}

/// Reads what a file or stdin holds: a spec, a manifest, or a bundle config.
fn from_bytes(
    origin: String,
    bytes: &[u8],
    select: Option<&str>,
) -> Result<LoadedSpec, SourceError> {
    let read_error = |origin: &str, source| SourceError::Read {
        origin: origin.to_owned(),
        source,
    };
    let (text, encoding) = decode(bytes).map_err(|e| read_error(&origin, e))?;
    let json = parse_json(&text);
    let (value, lines) = match json {
        Ok(parsed) => parsed,
        // Not JSON: a YAML manifest, or a spec with a JSON syntax error. A text that starts
        // like JSON, or that YAML does not read as a manifest, gets the JSON error.
        Err(json_error) => {
            if text.trim_start().starts_with(['{', '[']) {
                return Err(read_error(&origin, json_error));
            }
            return match yaml_documents(&text) {
                Ok(documents) if documents.iter().any(|d| d.get("kind").is_some()) => {
                    select_manifest(origin, documents, encoding, select)
                }
                Err(e) if e.to_string().contains(DUPLICATE_KEY) => {
                    let full = e.to_string();
                    let path = full
                        .split_once(DUPLICATE_KEY)
                        .and_then(|(_, rest)| rest.split(" at line ").next());
                    let path = path.unwrap_or_default();
                    let at = e
                        .location()
                        .map(|l| l.line())
                        .map_or_else(String::new, |line| {
                            match yaml_duplicate_lines(&text, line, path) {
                                Some((a, b)) => format!(" (lines {a} and {b})"),
                                None => format!(" (in the mapping at line {line})"),
                            }
                        });
                    Err(SourceError::YamlDuplicate {
                        origin,
                        path: shown_name(path),
                        at,
                    })
                }
                Err(e) if text.contains("kind:") || text.contains("apiVersion:") => {
                    Err(yaml_error(&origin, &e))
                }
                _ => Err(read_error(&origin, json_error)),
            };
        }
    };
    if let Value::Object(map) = &value {
        if kind_of(map).is_some_and(|k| k == GMSA_CREDENTIAL_SPEC_KIND || is_list(map)) {
            let manifests = vec![value];
            return select_manifest(origin, manifests, encoding, select);
        }
        if map.contains_key("ociVersion") || map.get("windows").is_some_and(Value::is_object) {
            return from_bundle(origin, map, lines, encoding, select);
        }
    }
    if let Some(name) = select {
        return Err(SourceError::Manifest {
            origin,
            reason: format!(
                "`#{name}` selects a Kubernetes GMSACredentialSpec by name, but this is a credential spec; give the path without `#{name}`"
            ),
        });
    }
    if bytes.len() > MAX_CREDENTIAL_SPEC_BYTES {
        return Err(read_error(
            &origin,
            ReadError::TooLarge { bytes: bytes.len() },
        ));
    }
    let document =
        SpecDocument::from_value(value, encoding, lines).map_err(|e| read_error(&origin, e))?;
    Ok(LoadedSpec {
        origin,
        form: SpecForm::Spec,
        document,
        policy: SpecPolicy::default(),
    })
}

fn kind_of(map: &Map<String, Value>) -> Option<&str> {
    map.get("kind").and_then(Value::as_str)
}

fn is_list(map: &Map<String, Value>) -> bool {
    kind_of(map).is_some_and(|k| k.ends_with("List"))
        && map.get("items").is_some_and(Value::is_array)
}

/// The documents of a (multi-document) YAML text, as JSON values. A key that appears twice
/// in one mapping is an error ([`DUPLICATE_KEY`] and its path), as in JSON.
fn yaml_documents(text: &str) -> Result<Vec<Value>, serde_norway::Error> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| StrictValue(JsonPath::root()).deserialize(document))
        .collect()
}

/// The lines (1-based) of the first two copies of the last key of `path` in the block
/// mapping whose first key is on line `mapping_line` (where serde_norway places the error),
/// so a YAML duplicate names both lines as a JSON one does. `None` when the text does not
/// show them plainly (a flow mapping `{a: 1, a: 2}`, a key written with escapes): the
/// message then names the mapping's line.
fn yaml_duplicate_lines(text: &str, mapping_line: usize, path: &str) -> Option<(usize, usize)> {
    // A key the path shows quoted (`["a.b"]`) is not looked for.
    let key = path.rsplit('.').next().filter(|k| !k.ends_with(']'))?;
    let lines: Vec<&str> = text.lines().collect();
    let first = *lines.get(mapping_line.checked_sub(1)?)?;
    // The mapping's indentation: that of its first key, after any `- ` of a sequence item.
    let mut indent = first.len() - first.trim_start_matches(' ').len();
    let mut rest = &first[indent..];
    while let Some(item) = rest.strip_prefix("- ") {
        let inner = item.trim_start_matches(' ');
        indent += 2 + item.len() - inner.len();
        rest = inner;
    }
    let is_key = |content: &str| {
        [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|k| {
                content
                    .strip_prefix(k.as_str())
                    .is_some_and(|after| after.trim_start_matches(' ').starts_with(':'))
            })
    };
    let mut found = Vec::new();
    if is_key(rest) {
        found.push(mapping_line);
    }
    for (n, line) in lines.iter().enumerate().skip(mapping_line) {
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let this = line.len() - content.len();
        if this < indent || line.starts_with("---") || line.starts_with("...") {
            break;
        }
        if this == indent && is_key(content) {
            found.push(n + 1);
            if found.len() == 2 {
                return Some((found[0], found[1]));
            }
        }
    }
    None
}

/// The start of the error [`StrictValue`] gives for a repeated key, followed by its path.
const DUPLICATE_KEY: &str = "duplicate key at ";

/// A JSON value read from any serde format, refusing a key repeated in one map (serde_json's
/// own `Value` keeps the last silently). The path is where the value is, for the error.
struct StrictValue(JsonPath);

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue(self.0.index(out.len())))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.0.key(&key);
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE_KEY}{path}")));
            }
            let v = map.next_value_seed(StrictValue(path))?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// serde_norway's error as our message: its position, and its text only when that text
/// cannot carry the input (no quotes in it).
fn yaml_error(origin: &str, e: &serde_norway::Error) -> SourceError {
    let at = e
        .location()
        .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
        .unwrap_or_default();
    let full = e.to_string();
    let message = full.split(" at line ").next().unwrap_or_default();
    let reason = if message.contains(['"', '\'', '`']) || message.is_empty() {
        "the YAML cannot be read as data".to_owned()
    } else {
        message.to_owned()
    };
    SourceError::Yaml {
        origin: origin.to_owned(),
        at,
        reason,
    }
}

/// Picks the GMSACredentialSpec from manifest documents (JSON `List`s are opened).
fn select_manifest(
    origin: String,
    documents: Vec<Value>,
    encoding: Encoding,
    select: Option<&str>,
) -> Result<LoadedSpec, SourceError> {
    let mut resources = Vec::new();
    let mut push = |v: Value| {
        if let Value::Object(m) = v
            && kind_of(&m) == Some(GMSA_CREDENTIAL_SPEC_KIND)
        {
            resources.push(m);
        }
    };
    for document in documents {
        match document {
            Value::Object(m) if is_list(&m) => {
                if let Some(Value::Array(items)) = m.get("items") {
                    items.iter().cloned().for_each(&mut push);
                }
            }
            other => push(other),
        }
    }
    let name_of = |m: &Map<String, Value>| {
        m.get("metadata")
            .and_then(|md| md.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("(no metadata.name)")
            .to_owned()
    };
    let names: Vec<String> = resources.iter().map(name_of).collect();
    let listed = names
        .iter()
        .map(|n| format!("`{}`", shown_name(n)))
        .collect::<Vec<_>>()
        .join(", ");
    let manifest_error = |reason: String| SourceError::Manifest {
        origin: origin.clone(),
        reason,
    };
    let index = match (select, resources.len()) {
        (_, 0) => {
            return Err(manifest_error(format!(
                "it holds no Kubernetes {GMSA_CREDENTIAL_SPEC_KIND} resource (kind: {GMSA_CREDENTIAL_SPEC_KIND}) and is not a JSON credential spec; give a credential spec or a manifest holding one"
            )));
        }
        (Some(name), _) => names.iter().position(|n| n == name).ok_or_else(|| {
            manifest_error(format!(
                "no {GMSA_CREDENTIAL_SPEC_KIND} named `{}`; it has {listed}: give one of them after `#`",
                shown_name(name)
            ))
        })?,
        (None, 1) => 0,
        (None, n) => {
            return Err(manifest_error(format!(
                "it holds {n} {GMSA_CREDENTIAL_SPEC_KIND} resources ({listed}); select one by name: the path followed by `#NAME` (for example `#{}`)",
                shown_name(&names[0])
            )));
        }
    };
    let name = names[index].clone();
    let mut resource = resources.swap_remove(index);
    let spec = match resource.remove("credspec") {
        Some(spec @ Value::Object(_)) => spec,
        None => {
            return Err(manifest_error(format!(
                "{GMSA_CREDENTIAL_SPEC_KIND} `{}` has no `credspec`; put the credential spec under `credspec:`",
                shown_name(&name)
            )));
        }
        Some(other) => {
            return Err(manifest_error(format!(
                "the `credspec` of {GMSA_CREDENTIAL_SPEC_KIND} `{}` is a {}; it must be the credential spec as a mapping (object)",
                shown_name(&name),
                json_kind(&other)
            )));
        }
    };
    let at = format!(
        "{origin} ({GMSA_CREDENTIAL_SPEC_KIND} {})",
        shown_name(&name)
    );
    let document = SpecDocument::from_value(spec, encoding, LineMap::none()).map_err(|source| {
        SourceError::Read {
            origin: at.clone(),
            source,
        }
    })?;
    Ok(LoadedSpec {
        origin: at,
        form: SpecForm::KubernetesManifest { name },
        document,
        policy: SpecPolicy::default(),
    })
}

fn from_bundle(
    origin: String,
    config: &Map<String, Value>,
    lines: LineMap,
    encoding: Encoding,
    select: Option<&str>,
) -> Result<LoadedSpec, SourceError> {
    let bundle_error = |reason: String| SourceError::Bundle {
        origin: origin.clone(),
        reason,
    };
    if let Some(name) = select {
        return Err(bundle_error(format!(
            "`#{name}` selects a Kubernetes GMSACredentialSpec by name, but this is an OCI bundle config; give the path without `#{name}`"
        )));
    }
    let key = JsonPath::root().key("windows").key("credentialSpec");
    let at = format!("{origin} (windows.credentialSpec)");
    let spec = config.get("windows").and_then(|w| w.get("credentialSpec"));
    let (value, lines, as_string) = match spec {
        None | Some(Value::Null) => {
            return Err(bundle_error(
                "it has no `windows.credentialSpec`, so its container runs without a gMSA; give the bundle of a container that has one, or the credential spec itself".to_owned(),
            ));
        }
        Some(Value::String(s)) => {
            let line = lines.line_of(&key).unwrap_or(1);
            let (value, _) = parse_json(s).map_err(|source| SourceError::Read {
                origin: at.clone(),
                // The string is on one line of the config: say that line.
                source: match source {
                    ReadError::DuplicateMember { path, .. } => ReadError::DuplicateMember {
                        path,
                        first: line,
                        second: line,
                    },
                    other => other,
                },
            })?;
            (
                value,
                LineMap::single(lines.line_of(&key).unwrap_or(1)),
                true,
            )
        }
        Some(v @ Value::Object(_)) => (v.clone(), lines.subtree(&key), false),
        Some(other) => {
            return Err(bundle_error(format!(
                "`windows.credentialSpec` is a JSON {}; it must be the credential spec as a JSON string or an object",
                json_kind(other)
            )));
        }
    };
    let document =
        SpecDocument::from_value(value, encoding, lines).map_err(|source| SourceError::Read {
            origin: at.clone(),
            source,
        })?;
    Ok(LoadedSpec {
        origin: at,
        form: SpecForm::OciBundle { as_string },
        document,
        policy: SpecPolicy::of_oci_config(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse_source("-").unwrap(),
            SpecSource::Stdin { select: None }
        );
        assert_eq!(
            parse_source("-#web").unwrap(),
            SpecSource::Stdin {
                select: Some("web".into())
            }
        );
        assert_eq!(
            parse_source("specs/m.yaml#webapp1-credspec").unwrap(),
            SpecSource::Path {
                path: "specs/m.yaml".into(),
                select: Some("webapp1-credspec".into())
            }
        );
        assert_eq!(
            parse_source(r"C:\specs\a.json").unwrap(),
            SpecSource::Path {
                path: r"C:\specs\a.json".into(),
                select: None
            }
        );
        assert_eq!(
            parse_source("file://sub/a.json").unwrap(),
            SpecSource::File {
                name: "sub/a.json".into(),
                select: None
            }
        );
        assert_eq!(
            parse_source("raw://{}").unwrap(),
            SpecSource::Raw("{}".into())
        );
        assert_eq!(
            parse_source("registry://web").unwrap(),
            SpecSource::Registry("web".into())
        );
    }

    #[test]
    fn refuses_unknown_schemes_listing_the_forms() {
        let e = parse_source("http://x/spec.json").unwrap_err().to_string();
        assert!(
            e.contains("unknown credential spec scheme `http://`"),
            "{e}"
        );
        assert!(
            e.contains("file://NAME") && e.contains("raw://JSON") && e.contains("registry://NAME"),
            "{e}"
        );
        let e = parse_source("FILE://a.json").unwrap_err().to_string();
        assert!(e.contains("did you mean `file://`"), "{e}");
        assert!(matches!(
            parse_source("config://x"),
            Err(SourceError::SwarmConfig)
        ));
        assert!(matches!(
            parse_source("raw://"),
            Err(SourceError::EmptyValue { .. })
        ));
        assert!(matches!(parse_source(""), Err(SourceError::Empty)));
        let e = parse_source("raw:/{\"PluginInput\":\"s3cr3t\"}");
        // Not a scheme: a path, which is fine to name.
        assert!(e.is_ok());
    }

    #[test]
    fn refuses_file_names_that_leave_the_directory() {
        for (name, says) in [
            ("/etc/passwd", "cannot be absolute"),
            ("\\x.json", "cannot be absolute"),
            (r"\\server\share\x.json", "UNC"),
            ("//server/share/x.json", "UNC"),
            ("C:/x.json", "drive letter"),
            ("c:x.json", "drive letter"),
            ("x.json:stream", "alternate data stream"),
            ("a/b\\c.json", "mixes"),
            ("../x.json", "`..`"),
            ("a/../../x.json", "`..`"),
            ("..\\x.json", "`..`"),
            (".. /x.json", "`..`"),
            (".../x.json", "`..`"),
            ("%2e%2e/x.json", "percent-encoded"),
            ("..%2Fx.json", "percent-encoded"),
            ("a\u{0}.json", "control"),
        ] {
            let e = parse_source(&format!("file://{name}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{name}: {e}");
        }
        assert!(parse_source("file://./sub/x.json").is_ok());
    }

    #[test]
    fn raw_text_is_never_shown() {
        assert_eq!(shown_arg(r#"raw://{"PluginInput":"s3cr3t"}"#), "raw://");
        assert_eq!(shown_arg("a\nb.json"), "a\\nb.json");
        let s = parse_source(r#"raw://{"PluginInput":"s3cr3t"}"#).unwrap();
        assert!(!format!("{s} {s:?}").contains("s3cr3t"));
        let e = load_arg(
            r#"raw://{"PluginInput":"s3cr3t""#,
            Path::new("/nonexistent"),
        )
        .unwrap_err();
        let chain = crate::text::chain_line(&e);
        assert!(
            chain.contains("raw://") && chain.contains("line 1"),
            "{chain}"
        );
        assert!(!chain.contains("s3cr3t"), "{chain}");
    }

    #[cfg(not(windows))]
    #[test]
    fn registry_is_windows_only() {
        let e = load_arg("registry://web", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("registry:// credential specs can only be read on Windows"),
            "{e}"
        );
    }

    #[test]
    fn yaml_errors_do_not_quote_the_input() {
        let e = load_from(
            &SpecSource::Stdin { select: None },
            Path::new("."),
            &mut "kind: GMSACredentialSpec\ncredspec:\n  a: \"s3cr3t\n  b: [".as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line "), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
