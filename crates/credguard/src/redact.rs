//! Keeping plug-in secrets out of everything people read.
//!
//! A credential spec's `HostAccountConfig.PluginInput` can hold a password. Anything shown
//! to a person (listings, `show`, the emulator's call log, dry runs) goes through these
//! functions first; only an explicit `--show-secrets` skips them.

use serde_json::Value;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Redacts every `PluginInput` in a credential spec given as JSON text.
///
/// The result is compact JSON. A text that is not JSON is replaced whole, since it cannot
/// be told which part of it is secret.
#[must_use]
pub fn redact_credential_spec(text: &str) -> String {
    match serde_json::from_str::<Value>(text.trim_start_matches('\u{feff}')) {
        Ok(mut v) => {
            redact_value(&mut v);
            v.to_string()
        }
        Err(_) if text.is_empty() => String::new(),
        Err(_) => format!("{REDACTED} (not JSON, {} bytes)", text.len()),
    }
}

/// Redacts a JSON value in place: every `PluginInput` member at any depth, and every
/// `CredentialSpec` (or `credentialSpec`) member, whether it holds the spec as a JSON string
/// (as HCS documents and runtimes do) or as an object (as the OCI schema does).
pub fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key.eq_ignore_ascii_case("PluginInput") {
                    *child = Value::String(REDACTED.to_owned());
                } else if key.eq_ignore_ascii_case("CredentialSpec") {
                    if let Value::String(s) = child {
                        *s = redact_credential_spec(s);
                    } else {
                        redact_value(child);
                    }
                } else {
                    redact_value(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// Redacts a wire document given as text (for call logs and dry runs): the result is the
/// document as a JSON value with secrets replaced, or the text itself when it is not JSON
/// and mentions no `PluginInput`.
#[must_use]
pub fn redact_document(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            redact_value(&mut v);
            v
        }
        Err(_) if text.contains("PluginInput") || text.contains("CredentialSpec") => {
            Value::String(format!("{REDACTED} (not JSON, {} bytes)", text.len()))
        }
        Err(_) => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_plugin_input_inside_a_spec_string() {
        let spec = r#"{"ActiveDirectoryConfig":{"HostAccountConfig":{"PortableCcgVersion":"1","PluginInput":"s3cr3t"}}}"#;
        let doc = serde_json::json!({"Settings":{"OperationDetails":{"CredentialSpec": spec}}})
            .to_string();
        let out = redact_document(&doc).to_string();
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains(REDACTED), "{out}");
        assert!(out.contains("PortableCcgVersion"), "{out}");
    }

    #[test]
    fn redacts_object_plugin_input_and_object_specs() {
        let mut v = serde_json::json!({"windows":{"credentialSpec":{"x":{"PluginInput":{"password":"p"}}}}});
        redact_value(&mut v);
        assert!(!v.to_string().contains("\"p\""));
    }

    #[test]
    fn unparseable_specs_are_hidden_whole() {
        let out = redact_credential_spec("{\"PluginInput\":\"s3cr3t\"");
        assert!(!out.contains("s3cr3t"));
        let out = redact_document("{\"CredentialSpec\":\"PluginInput s3cr3t");
        assert!(!out.to_string().contains("s3cr3t"));
    }
}
