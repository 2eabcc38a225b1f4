//! Checks made on every input before anything is sent to HCS.
//!
//! The container id and the credential spec come from users and runtimes; a bad one must
//! be refused here with a message that says what is wrong, not by HCS with an HRESULT.
//! (The credential-spec linter checks the content; this checks that it is usable at all.)

use crate::error::{CcgError, ShownId};

/// The longest container id accepted, in characters.
pub const MAX_CONTAINER_ID_CHARS: usize = 256;

/// The largest credential spec accepted, in bytes (Kubernetes' limit too).
pub const MAX_CREDENTIAL_SPEC_BYTES: usize = 64 * 1024;

/// Checks a container id: not empty, at most 256 characters, no control characters, no
/// invisible or bidirectional format characters (Unicode category Cf), no white space at
/// either end.
///
/// # Errors
/// [`CcgError::InvalidContainerId`] saying which rule the id breaks.
pub fn validate_container_id(id: &str) -> Result<(), CcgError> {
    match id_problem(id) {
        None => Ok(()),
        Some(reason) => Err(CcgError::InvalidContainerId {
            id: ShownId::new(id),
            reason,
        }),
    }
}

/// Whether a character is of Unicode general category Cf (format): invisible characters
/// that change how text around them is shown or compared, such as U+202E RIGHT-TO-LEFT
/// OVERRIDE, U+200B ZERO WIDTH SPACE, U+FEFF ZERO WIDTH NO-BREAK SPACE, U+2066..U+2069 the
/// bidirectional isolates and U+00AD SOFT HYPHEN. The category comes from the Unicode
/// Character Database through the `unicode-properties` crate, not from a partial list.
#[must_use]
pub fn is_format_char(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// What makes an id (a container id, a utility VM id, an id of the alive set) unusable, or
/// `None` when it is usable. The reason shows an offending character escaped (`U+202E`)
/// with its position (from 1, in characters), never raw.
#[must_use]
pub fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("the id is empty; give the container's id".to_owned());
    }
    let chars = id.chars().count();
    if chars > MAX_CONTAINER_ID_CHARS {
        return Some(format!(
            "the id is {chars} characters long; at most {MAX_CONTAINER_ID_CHARS} are accepted"
        ));
    }
    if let Some((pos, c)) = id.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Some(format!(
            "the id contains the control character U+{:04X} at position {}; ids must be printable",
            u32::from(c),
            pos + 1
        ));
    }
    if let Some((pos, c)) = id.chars().enumerate().find(|(_, c)| is_format_char(*c)) {
        return Some(format!(
            "the id contains the invisible format character U+{:04X} at position {}; ids must be printable, without bidirectional or zero-width characters",
            u32::from(c),
            pos + 1
        ));
    }
    if id.trim() != id {
        return Some("the id starts or ends with white space".to_owned());
    }
    None
}

/// Checks that a credential spec is a JSON object of at most 64 KiB.
///
/// # Errors
/// [`CcgError::InvalidCredentialSpec`] saying what is wrong, never quoting the spec.
pub fn validate_credential_spec(container_id: &str, spec: &str) -> Result<(), CcgError> {
    match credential_spec_problem(spec) {
        None => Ok(()),
        Some(reason) => Err(CcgError::InvalidCredentialSpec {
            container_id: ShownId::new(container_id),
            reason,
        }),
    }
}

/// What makes a credential spec text unusable (too large, empty, not JSON, not an object),
/// or `None` when it is usable. The reason never quotes the spec.
#[must_use]
pub fn credential_spec_problem(spec: &str) -> Option<String> {
    if spec.len() > MAX_CREDENTIAL_SPEC_BYTES {
        return Some(format!(
            "it is {} bytes; at most {MAX_CREDENTIAL_SPEC_BYTES} bytes (64 KiB) are accepted",
            spec.len()
        ));
    }
    if spec.trim().is_empty() {
        return Some("it is empty; give the gMSA credential spec JSON".to_owned());
    }
    match serde_json::from_str::<serde_json::Value>(spec) {
        // Syntax errors name a line and column and never echo the input.
        Err(e) => Some(format!("it is not valid JSON ({e})")),
        // An OCI bundle's config.json is not a spec: sent as one, its gMSA-disable
        // annotation would go unread. Loaded through `credspec::source`, its policy applies.
        Ok(serde_json::Value::Object(map))
            if map.contains_key("ociVersion")
                || map
                    .get("windows")
                    .and_then(|w| w.get("credentialSpec"))
                    .is_some() =>
        {
            Some("it is an OCI bundle config.json, not a credential spec; load it with credguard::credspec::source (which takes the spec from `windows.credentialSpec` and applies the bundle's gMSA policy) and create with CcgClient::create_spec".to_owned())
        }
        Ok(serde_json::Value::Object(_)) => None,
        Ok(other) => Some(format!(
            "it is a JSON {}, not an object; a credential spec is an object with CmsPlugins, DomainJoinConfig and ActiveDirectoryConfig",
            json_kind(&other)
        )),
    }
}

/// The JSON type of a value, as error messages say it.
#[must_use]
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        assert!(validate_container_id("a3f1c2d4").is_ok());
        assert!(validate_container_id(&"x".repeat(256)).is_ok());
        for bad in ["", " a", "a\n", "a\u{0}b", "a\u{7f}"] {
            assert!(validate_container_id(bad).is_err(), "{bad:?}");
        }
        // Invisible and bidirectional format characters (Cf), anywhere in the id.
        for (bad, shown, pos) in [
            ("ab\u{202E}cd", "U+202E", 3),
            ("\u{200B}", "U+200B", 1),
            ("\u{FEFF}ab", "U+FEFF", 1),
            ("a\u{2066}b\u{2069}", "U+2066", 2),
            ("a\u{2067}", "U+2067", 2),
            ("a\u{2068}", "U+2068", 2),
            ("a\u{00AD}b", "U+00AD", 2),
            ("a\u{200E}", "U+200E", 2),
            ("a\u{061C}", "U+061C", 2),
            ("a\u{E0001}", "U+E0001", 2),
        ] {
            let e = validate_container_id(bad).unwrap_err().to_string();
            assert!(
                e.contains(shown) && e.contains(&format!("position {pos}")),
                "{bad:?}: {e}"
            );
            assert!(!e.contains(bad), "shown escaped: {e}");
        }
        // Letters of other scripts and combining marks are fine.
        for good in ["café", "контейнер", "a\u{0301}", "容器-1"] {
            assert!(validate_container_id(good).is_ok(), "{good:?}");
        }
        let e = validate_container_id(&"x".repeat(257))
            .unwrap_err()
            .to_string();
        assert!(e.contains("257 characters"), "{e}");
    }

    #[test]
    fn credential_specs() {
        assert!(validate_credential_spec("c", "{}").is_ok());
        for (bad, says) in [
            ("", "empty"),
            ("  ", "empty"),
            ("[1]", "array"),
            ("\"x\"", "string"),
            ("{\"PluginInput\":\"hunter2\"", "not valid JSON"),
            // A bundle's config.json, whose annotation only the source loader reads.
            (
                r#"{"ociVersion":"1.1.0","annotations":{"io.microsoft.container.wcow.gmsa.disable":"true"}}"#,
                "OCI bundle",
            ),
            (
                r#"{"windows":{"credentialSpec":"{\"PluginInput\":\"hunter2\"}"}}"#,
                "OCI bundle",
            ),
        ] {
            let e = validate_credential_spec("c", bad).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("`c`"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_CREDENTIAL_SPEC_BYTES));
        assert!(
            validate_credential_spec("c", &big)
                .unwrap_err()
                .to_string()
                .contains("64 KiB")
        );
    }
}
