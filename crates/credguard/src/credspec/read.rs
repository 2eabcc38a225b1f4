//! Reading a credential spec from bytes, tolerantly.
//!
//! Accepted: UTF-8 with or without a BOM, and UTF-16 LE or BE with a BOM (what Windows
//! PowerShell 5 writes with `Out-File` and `>`). Refused: anything over 64 KiB, text that
//! is not JSON (the error names the line and column), JSON that is not an object. Nothing
//! else is checked here: the content is the linter's business, so a spec with wrong member
//! types still reads.
//!
//! Errors never quote the input: a spec can hold a plug-in secret.

use std::fmt;

use serde_json::{Map, Value};

use super::lint::{Diagnostic, lint};
use super::model::{CredentialSpec, ModelError};
use super::path::LineMap;
use super::syntax::shown;
use crate::input::{MAX_CREDENTIAL_SPEC_BYTES, json_kind};
use crate::redact::redact_value;

/// How a spec's bytes were encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Encoding {
    /// UTF-8 without a BOM (or plain ASCII, what New-CredentialSpec writes).
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 with a BOM (editors on Windows).
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
    /// UTF-16 little endian with a BOM (Windows PowerShell 5 `Out-File`, `>`).
    #[serde(rename = "utf-16le")]
    Utf16Le,
    /// UTF-16 big endian with a BOM.
    #[serde(rename = "utf-16be")]
    Utf16Be,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Bom => "UTF-8 with BOM",
            Encoding::Utf16Le => "UTF-16 LE",
            Encoding::Utf16Be => "UTF-16 BE",
        })
    }
}

/// Why a spec could not be read. Never quotes the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Over the 64 KiB limit.
    #[error(
        "it is {bytes} bytes; a credential spec is at most {MAX_CREDENTIAL_SPEC_BYTES} bytes (64 KiB) (real ones are a few hundred): check that this is the right file"
    )]
    TooLarge {
        /// The size found.
        bytes: usize,
    },
    /// Nothing but white space.
    #[error(
        "it is empty; a credential spec is a JSON object (generate one from the gMSA's attributes)"
    )]
    Empty,
    /// Bytes that are not text in a supported encoding.
    #[error(
        "it is not valid {encoding} at line {line}, column {column}: {reason}; save the file as UTF-8"
    )]
    Encoding {
        /// The encoding tried.
        encoding: Encoding,
        /// Where (from 1).
        line: usize,
        /// Where (from 1, in characters).
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// UTF-16 without a BOM, which cannot be told apart from other encodings reliably.
    #[error(
        "it looks like UTF-16 without a byte-order mark; save it as UTF-8 (in PowerShell: `Set-Content -Encoding UTF8`) or as UTF-16 with a BOM"
    )]
    Utf16WithoutBom,
    /// Not JSON.
    #[error("it is not valid JSON at line {line}, column {column}: {reason}; fix the syntax there")]
    Syntax {
        /// Where (from 1).
        line: usize,
        /// Where (from 1).
        column: usize,
        /// What serde_json expected (never the input).
        reason: String,
    },
    /// A member that appears twice in one object: a reader that keeps the first copy (many
    /// do) would see one the linter did not check.
    #[error(
        "`{path}` appears twice ({}); a reader that keeps the first copy would use one that is not checked: keep one of them",
        lines_of(*first, *second)
    )]
    DuplicateMember {
        /// The member's path (printable).
        path: String,
        /// The line of the first occurrence (from 1).
        first: u32,
        /// The line of the second.
        second: u32,
    },
    /// JSON, but not an object.
    #[error(
        "it is a JSON {found}, not an object; a credential spec is an object with CmsPlugins, DomainJoinConfig and ActiveDirectoryConfig"
    )]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
}

fn lines_of(first: u32, second: u32) -> String {
    if first == second {
        format!("both on line {first}")
    } else {
        format!("lines {first} and {second}")
    }
}

/// A credential spec as read: its JSON object, kept exactly (member order, unknown members,
/// `PluginInput`), with where it came from in its text.
///
/// `Debug` shows the spec with every `PluginInput` redacted.
#[derive(Clone, PartialEq)]
pub struct SpecDocument {
    root: Map<String, Value>,
    encoding: Encoding,
    lines: LineMap,
}

impl fmt::Debug for SpecDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpecDocument")
            .field("root", &self.redacted())
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

impl SpecDocument {
    /// A document from a JSON value read some other way (a manifest, a bundle).
    ///
    /// # Errors
    /// [`ReadError::NotAnObject`] and [`ReadError::TooLarge`] (measured on the canonical
    /// form).
    pub fn from_value(value: Value, encoding: Encoding, lines: LineMap) -> Result<Self, ReadError> {
        let Value::Object(root) = value else {
            return Err(ReadError::NotAnObject {
                found: json_kind(&value),
            });
        };
        let doc = SpecDocument {
            root,
            encoding,
            lines,
        };
        let bytes = doc.canonical().len();
        if bytes > MAX_CREDENTIAL_SPEC_BYTES {
            return Err(ReadError::TooLarge { bytes });
        }
        Ok(doc)
    }

    /// The spec's root object, exactly as read.
    #[must_use]
    pub fn root(&self) -> &Map<String, Value> {
        &self.root
    }

    /// How the bytes were encoded.
    #[must_use]
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Where each member was in the text.
    #[must_use]
    pub fn lines(&self) -> &LineMap {
        &self.lines
    }

    /// The canonical form sent to HCS: compact JSON, no BOM, every member kept in its order.
    #[must_use]
    pub fn canonical(&self) -> String {
        serde_json::to_string(&self.root).unwrap_or_default()
    }

    /// The spec with every `PluginInput` replaced by `<redacted>`, for showing.
    #[must_use]
    pub fn redacted(&self) -> Value {
        let mut v = Value::Object(self.root.clone());
        redact_value(&mut v);
        v
    }

    /// The linter's diagnostics, each with the line of the text it is about.
    #[must_use]
    pub fn lint(&self) -> Vec<Diagnostic> {
        let mut diagnostics = lint(&self.root);
        for d in &mut diagnostics {
            d.line = self.lines.line_of(&d.path);
        }
        diagnostics
    }

    /// The typed model of the spec.
    ///
    /// # Errors
    /// [`ModelError`] when a member has a JSON type the model cannot hold (the linter
    /// reports the same with a diagnostic).
    pub fn to_spec(&self) -> Result<CredentialSpec, ModelError> {
        CredentialSpec::from_map(&self.root)
    }
}

/// Reads a credential spec from bytes: decodes, parses, checks that it is one JSON object of
/// at most 64 KiB.
///
/// # Errors
/// [`ReadError`] saying what is wrong and where.
pub fn read(bytes: &[u8]) -> Result<SpecDocument, ReadError> {
    if bytes.len() > MAX_CREDENTIAL_SPEC_BYTES {
        return Err(ReadError::TooLarge { bytes: bytes.len() });
    }
    let (text, encoding) = decode(bytes)?;
    let (value, lines) = parse_json(&text)?;
    SpecDocument::from_value(value, encoding, lines)
}

/// Decodes bytes to text by their BOM: UTF-8 (with or without BOM), UTF-16 LE or BE (with
/// BOM). The BOM is not part of the text.
///
/// # Errors
/// [`ReadError::Encoding`] with the position of the first bad byte;
/// [`ReadError::Utf16WithoutBom`] for text that is evidently UTF-16 but has no BOM.
pub fn decode(bytes: &[u8]) -> Result<(String, Encoding), ReadError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest, Encoding::Utf8Bom);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, Encoding::Utf16Le, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, Encoding::Utf16Be, u16::from_be_bytes);
    }
    // ASCII text in UTF-16 has a NUL in every other byte; UTF-8 JSON has none at all.
    if bytes.len() >= 2 && (bytes[0] == 0) != (bytes[1] == 0) {
        return Err(ReadError::Utf16WithoutBom);
    }
    utf8(bytes, Encoding::Utf8)
}

fn utf8(bytes: &[u8], encoding: Encoding) -> Result<(String, Encoding), ReadError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s.to_owned(), encoding)),
        Err(e) => {
            let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let (line, column) = position_after(good);
            Err(ReadError::Encoding {
                encoding,
                line,
                column,
                reason: format!(
                    "byte 0x{:02X} at offset {} does not start a UTF-8 character",
                    bytes[e.valid_up_to()],
                    e.valid_up_to()
                ),
            })
        }
    }
}

fn utf16(
    bytes: &[u8],
    encoding: Encoding,
    unit: fn([u8; 2]) -> u16,
) -> Result<(String, Encoding), ReadError> {
    let (pairs, odd) = bytes.as_chunks::<2>();
    let mut text = String::with_capacity(pairs.len());
    for c in char::decode_utf16(pairs.iter().map(|p| unit(*p))) {
        match c {
            Ok(c) => text.push(c),
            Err(e) => {
                let (line, column) = position_after(&text);
                return Err(ReadError::Encoding {
                    encoding,
                    line,
                    column,
                    reason: format!("unpaired surrogate 0x{:04X}", e.unpaired_surrogate()),
                });
            }
        }
    }
    if !odd.is_empty() {
        let (line, column) = position_after(&text);
        return Err(ReadError::Encoding {
            encoding,
            line,
            column,
            reason: "the text ends in half a character (an odd number of bytes)".to_owned(),
        });
    }
    Ok((text, encoding))
}

/// The line and column (from 1) of the character just after `text`.
fn position_after(text: &str) -> (usize, usize) {
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses JSON text, turning serde_json's error into one that names the line and column;
/// refuses a member that appears twice in one object (at any depth). Returns the value and
/// the lines of its members.
pub(crate) fn parse_json(text: &str) -> Result<(Value, LineMap), ReadError> {
    if text.trim().is_empty() {
        return Err(ReadError::Empty);
    }
    let value = serde_json::from_str(text).map_err(|e| ReadError::Syntax {
        line: e.line(),
        column: e.column(),
        reason: syntax_reason(&e),
    })?;
    let (lines, duplicate) = LineMap::scan(text);
    if let Some(d) = duplicate {
        return Err(ReadError::DuplicateMember {
            path: shown(&d.path.to_string()),
            first: d.first,
            second: d.second,
        });
    }
    Ok((value, lines))
}

/// serde_json's message without its ` at line L column C` tail (the error says where
/// itself). serde_json's syntax messages describe what it expected and never quote input.
fn syntax_reason(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&tail).unwrap_or(&full).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str =
        r#"{"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"Sid":"S-1-5-21-1-2-3"}}"#;

    fn utf16le(s: &str) -> Vec<u8> {
        let mut out = vec![0xFF, 0xFE];
        out.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    fn utf16be(s: &str) -> Vec<u8> {
        let mut out = vec![0xFE, 0xFF];
        out.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
        out
    }

    #[test]
    fn reads_every_encoding_windows_writes() {
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(SPEC.as_bytes());
        for (bytes, encoding) in [
            (SPEC.as_bytes().to_vec(), Encoding::Utf8),
            (bom, Encoding::Utf8Bom),
            (utf16le(SPEC), Encoding::Utf16Le),
            (utf16be(SPEC), Encoding::Utf16Be),
        ] {
            let doc = read(&bytes).unwrap();
            assert_eq!(doc.encoding(), encoding);
            assert_eq!(doc.canonical(), SPEC);
        }
    }

    #[test]
    fn refuses_utf16_without_bom_and_bad_bytes() {
        let bare: Vec<u8> = SPEC.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(read(&bare).unwrap_err(), ReadError::Utf16WithoutBom);
        let e = read(b"{\n\"a\": \"\xFF\"}").unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::Encoding {
                    line: 2,
                    column: 7,
                    ..
                }
            ),
            "{e:?}"
        );
        let mut odd = utf16le("{}");
        odd.push(0x20);
        assert!(read(&odd).unwrap_err().to_string().contains("odd number"));
        let mut lone = vec![0xFF, 0xFE];
        lone.extend(0xD800u16.to_le_bytes());
        assert!(
            read(&lone)
                .unwrap_err()
                .to_string()
                .contains("unpaired surrogate 0xD800")
        );
    }

    #[test]
    fn syntax_errors_name_line_and_column_without_quoting() {
        let e = read(b"{\n  \"PluginInput\": \"hunter2\"\n  \"x\": 1\n}").unwrap_err();
        let ReadError::Syntax { line, column, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!((*line, *column), (3, 3));
        let text = e.to_string();
        assert!(
            text.contains("line 3, column 3: expected `,` or `}`"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn refuses_what_is_not_one_object_of_64_kib() {
        assert_eq!(read(b" \n").unwrap_err(), ReadError::Empty);
        assert_eq!(
            read(b"[]").unwrap_err(),
            ReadError::NotAnObject { found: "array" }
        );
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_CREDENTIAL_SPEC_BYTES));
        let e = read(big.as_bytes()).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e:?}");
        assert!(e.to_string().contains("64 KiB"));
    }

    #[test]
    fn debug_redacts_plugin_input() {
        let doc =
            read(br#"{"ActiveDirectoryConfig":{"HostAccountConfig":{"PluginInput":"hunter2"}}}"#)
                .unwrap();
        let shown = format!("{doc:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("redacted"),
            "{shown}"
        );
        assert!(doc.canonical().contains("hunter2"));
    }
}
