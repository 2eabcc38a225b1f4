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

/// Redacts the value of every `PluginInput` in free text (a log line, `kubectl describe`
/// output) where the credential spec may sit as JSON, as escaped JSON inside a JSON string
/// (`\"PluginInput\":\"...\"`, at any depth of escaping), as an object, or as
/// `PluginInput=...`. The key stays, its value becomes [`REDACTED`]. A quoted value whose
/// closing quote is missing is redacted to the end of the text: a secret cut short is still
/// a secret. Text without the key is returned as it is.
#[must_use]
pub fn redact_text(text: &str) -> std::borrow::Cow<'_, str> {
    const KEY: &str = "plugininput";
    let lower = text.to_ascii_lowercase(); // ASCII lower-casing keeps every byte offset
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(pos) = lower[from..].find(KEY) {
        let mut i = from + pos + KEY.len();
        from = i;
        // The key's closing quote (escaped or not), spaces, then `:` or `=`, then spaces.
        while i < bytes.len() && matches!(bytes[i], b'\\' | b'"' | b'\'') {
            i += 1;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || !matches!(bytes[i], b':' | b'=') {
            continue; // the word in prose, not a member
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let quote_start = i;
        while i < bytes.len() && bytes[i] == b'\\' {
            i += 1;
        }
        let (start, end) = if i < bytes.len() && matches!(bytes[i], b'"' | b'\'') {
            // A quoted value ends at the same quote, escaped as deeply as the opening one
            // (inner quotes are escaped more deeply).
            let quote = &text[quote_start..=i];
            let start = i + 1;
            let mut end = text.len();
            let mut at = start;
            while let Some(p) = text[at..].find(quote) {
                let q = at + p;
                if q == 0 || bytes[q - 1] != b'\\' {
                    end = q;
                    break;
                }
                at = q + 1;
            }
            (start, end)
        } else if i < bytes.len() && bytes[i] == b'{' {
            let mut depth = 0_usize;
            let mut end = text.len();
            for (k, b) in bytes[i..].iter().enumerate() {
                match b {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            (i, end)
        } else {
            let end = text[quote_start..]
                .find(|c: char| c.is_whitespace() || c == ',' || c == '}')
                .map_or(text.len(), |p| quote_start + p);
            (quote_start, end)
        };
        if start >= end {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
        from = end;
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
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

    #[test]
    fn free_text_loses_every_plugin_input_value_at_any_escaping() {
        for (text, secret) in [
            (
                r#"{"PluginInput":"contoso\\u:P4ss#3489792023","x":1}"#,
                "P4ss",
            ),
            (
                r#"CredentialSpec:{\"ActiveDirectoryConfig\":{\"HostAccountConfig\":{\"PluginGUID\":\"{859E1386-BDB4-49E8-85C7-3070B13920E1}\",\"PluginInput\":\"{\\\"credentialArn\\\":\\\"arn:aws:ssm:us-west-2:671234669241:parameter/gmsa\\\"}\",\"PortableCcgVersion\":\"1\"}}}"#,
                "671234669241",
            ),
            (
                r#""pluginInput": {"credentialArn": "arn:aws:secretsmanager:s3cr3t"}, "y""#,
                "s3cr3t",
            ),
            (
                "PluginInput=ObjectId=abc;SecretUri=https://v.vault.azure.net/secrets/s3cr3t next",
                "s3cr3t",
            ),
            (r#""PluginInput":"cut short s3cr3t"#, "s3cr3t"),
        ] {
            let out = redact_text(text);
            assert!(!out.contains(secret), "{text}\n-> {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        let out = redact_text(
            r#"{"PluginInput":"s3cr3t","PortableCcgVersion":"1"} winapi error #3489792023"#,
        );
        assert!(
            out.ends_with(r#"<redacted>","PortableCcgVersion":"1"} winapi error #3489792023"#),
            "{out}"
        );
        // The word in prose, and text without it, stay as they are.
        for text in [
            "check the PluginInput of the spec",
            "winapi error #3489792023",
            "",
        ] {
            assert!(matches!(redact_text(text), std::borrow::Cow::Borrowed(t) if t == text));
        }
    }
}
