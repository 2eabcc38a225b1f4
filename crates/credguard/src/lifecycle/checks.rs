//! The checks every request passes before anything is sent to HCS, as lifecycle errors:
//! the reasons come from [`crate::input`]; here they name the container.

use crate::input::{credential_spec_problem, id_problem};
use crate::lifecycle::CcgError;
use crate::text::ShownId;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::MAX_CREDENTIAL_SPEC_BYTES;

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
