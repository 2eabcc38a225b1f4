//! Checks made on every input before anything is sent to HCS.
//!
//! The container id and the credential spec come from users and runtimes; a bad one must
//! be refused here with a message that says what is wrong, not by HCS with an HRESULT.
//! (The credential-spec linter checks the content; this checks that it is usable at all.)
//! The lifecycle turns these reasons into [`crate::CcgError`]s naming the container.

/// The longest container id accepted, in characters.
pub const MAX_CONTAINER_ID_CHARS: usize = 256;

/// The largest credential spec accepted, in bytes (Kubernetes' limit too).
pub const MAX_CREDENTIAL_SPEC_BYTES: usize = 64 * 1024;

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
    if let Some((pos, c)) = id
        .chars()
        .enumerate()
        .find(|(_, c)| crate::text::is_format_char(*c))
    {
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
