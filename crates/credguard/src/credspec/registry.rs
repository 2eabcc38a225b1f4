//! `registry://NAME` credential specs: the JSON text stored as a string value `NAME` under
//! the key Docker uses for them,
//! `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\Containers\CredentialSpecs`.
//!
//! Register one with
//! `reg add "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\Containers\CredentialSpecs" /v NAME /t REG_SZ /d "<json>"`.
//! Each way this can fail (no such key, no such value, a value that is not a string) has
//! its own error saying which key it is about. The value's name is not repeated: the caller
//! names the source (`registry://NAME`, shown by the one rule for values in messages,
//! [`crate::credspec::syntax::shown`]), and a message says it once.

use credguard_winapi::registry::{RegKey, RegRoot};
use credguard_winapi::wide::WideCString;
use credguard_winapi::win32_error;

/// The key under `HKEY_LOCAL_MACHINE` whose string values are the registered credential specs.
pub const CREDENTIAL_SPECS_KEY: &str =
    r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\Containers\CredentialSpecs";

/// `ERROR_FILE_NOT_FOUND`: what the registry answers for a key or value that does not exist.
const ERROR_FILE_NOT_FOUND: u32 = 2;

/// Why a credential spec could not be read from the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name cannot name a registry value.
    #[error("the name cannot name a registry value: {reason}")]
    InvalidName {
        /// The name as given (made printable and short).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The key does not exist.
    #[error(
        "registry key {key} does not exist: no credential spec is registered in the registry on this host"
    )]
    KeyMissing {
        /// The full key path (`HKLM\...`).
        key: String,
    },
    /// The key has no value of that name.
    #[error("it is not registered: registry key {key} has no value of that name")]
    ValueMissing {
        /// The full key path.
        key: String,
        /// The value name (made printable and short).
        name: String,
    },
    /// The value exists but does not hold text.
    #[error(
        "the registry value under {key} is of type {kind}, not a string (REG_SZ): it cannot be a credential spec"
    )]
    NotAString {
        /// The full key path.
        key: String,
        /// The value name (made printable and short).
        name: String,
        /// The registry type, by name (`REG_DWORD`).
        kind: &'static str,
    },
    /// The value is a string type but its bytes are not UTF-16 text.
    #[error("the registry value under {key} is not valid UTF-16 text")]
    NotText {
        /// The full key path.
        key: String,
        /// The value name (made printable and short).
        name: String,
    },
    /// Opening the key failed for another reason (access denied, ...).
    #[error("cannot open registry key {key}")]
    OpenKey {
        /// The full key path.
        key: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the value failed for another reason.
    #[error("cannot read the registry value under {key}")]
    ReadValue {
        /// The full key path.
        key: String,
        /// The value name (made printable and short).
        name: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Reads the credential spec registered as `name` (the part after `registry://`).
///
/// Returns the value's text as stored (REG_SZ, or REG_EXPAND_SZ taken literally, without
/// expanding variables); checking that it is a credential spec is the caller's job.
///
/// # Errors
/// [`RegistryError`]: the name is empty or has a NUL, the key or the value is missing, the
/// value is not a string, or the registry refused access.
pub fn read_registry_credential_spec(name: &str) -> Result<String, RegistryError> {
    read_string_value(RegRoot::LocalMachine, CREDENTIAL_SPECS_KEY, name)
}

/// Reads the string value `name` of `root\key`.
pub(crate) fn read_string_value(
    root: RegRoot,
    key: &str,
    name: &str,
) -> Result<String, RegistryError> {
    let shown = crate::credspec::syntax::shown(name);
    let invalid = |reason| RegistryError::InvalidName {
        name: shown.clone(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid(
            "the name is empty (it would read the key's default value)",
        ));
    }
    let wide_name =
        WideCString::new(name).map_err(|_| invalid("the name contains a NUL character"))?;
    let full_key = format!(
        "{}\\{key}",
        match root {
            RegRoot::LocalMachine => "HKLM",
            RegRoot::CurrentUser => "HKCU",
            RegRoot::ClassesRoot => "HKCR",
        }
    );
    let wide_key = WideCString::new(key).map_err(|_| RegistryError::OpenKey {
        key: full_key.clone(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the key path contains a NUL character",
        ),
    })?;
    let handle = RegKey::open(root, &wide_key).map_err(|code| match code {
        ERROR_FILE_NOT_FOUND => RegistryError::KeyMissing {
            key: full_key.clone(),
        },
        code => RegistryError::OpenKey {
            key: full_key.clone(),
            source: win32_error(code),
        },
    })?;
    let value = handle.query(&wide_name).map_err(|code| match code {
        ERROR_FILE_NOT_FOUND => RegistryError::ValueMissing {
            key: full_key.clone(),
            name: shown.clone(),
        },
        code => RegistryError::ReadValue {
            key: full_key.clone(),
            name: shown.clone(),
            source: win32_error(code),
        },
    })?;
    decode_string(value.kind, &value.data).map_err(|problem| match problem {
        Problem::NotAString(kind) => RegistryError::NotAString {
            key: full_key.clone(),
            name: shown.clone(),
            kind,
        },
        Problem::NotText => RegistryError::NotText {
            key: full_key.clone(),
            name: shown.clone(),
        },
    })
}

/// What is wrong with a value's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    NotAString(&'static str),
    NotText,
}

/// `REG_SZ`, `REG_EXPAND_SZ`.
const REG_SZ: u32 = 1;
const REG_EXPAND_SZ: u32 = 2;

/// The name of a registry value type.
fn kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "REG_NONE",
        1 => "REG_SZ",
        2 => "REG_EXPAND_SZ",
        3 => "REG_BINARY",
        4 => "REG_DWORD",
        5 => "REG_DWORD_BIG_ENDIAN",
        6 => "REG_LINK",
        7 => "REG_MULTI_SZ",
        8 => "REG_RESOURCE_LIST",
        9 => "REG_FULL_RESOURCE_DESCRIPTOR",
        10 => "REG_RESOURCE_REQUIREMENTS_LIST",
        11 => "REG_QWORD",
        _ => "an unknown registry type",
    }
}

/// The text of a string value: UTF-16LE bytes, with or without terminating NULs.
fn decode_string(kind: u32, data: &[u8]) -> Result<String, Problem> {
    if kind != REG_SZ && kind != REG_EXPAND_SZ {
        return Err(Problem::NotAString(kind_name(kind)));
    }
    if !data.len().is_multiple_of(2) {
        return Err(Problem::NotText);
    }
    let mut units: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    while units.last() == Some(&0) {
        units.pop();
    }
    if units.contains(&0) {
        return Err(Problem::NotText);
    }
    String::from_utf16(&units).map_err(|_| Problem::NotText)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn utf16le(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn string_values_decode_with_or_without_terminators() {
        assert_eq!(
            decode_string(REG_SZ, &utf16le("{\"a\":\"é\"}\0")).unwrap(),
            "{\"a\":\"é\"}"
        );
        assert_eq!(decode_string(REG_EXPAND_SZ, &utf16le("x")).unwrap(), "x");
        assert_eq!(decode_string(REG_SZ, &[]).unwrap(), "");
        assert_eq!(
            decode_string(4, &[1, 0, 0, 0]),
            Err(Problem::NotAString("REG_DWORD"))
        );
        assert_eq!(
            decode_string(7, &utf16le("a\0b\0\0")),
            Err(Problem::NotAString("REG_MULTI_SZ"))
        );
        assert_eq!(decode_string(REG_SZ, &[0x41]), Err(Problem::NotText));
        assert_eq!(
            decode_string(REG_SZ, &utf16le("a\0b")),
            Err(Problem::NotText)
        );
        assert_eq!(decode_string(REG_SZ, &[0x00, 0xD8]), Err(Problem::NotText));
    }

    /// A key of its own under HKCU (writable without administrator rights), removed on drop.
    struct TestKey(String);

    impl TestKey {
        fn new(tag: &str) -> TestKey {
            let key = format!(
                r"Software\credguard-tests\registry-{tag}-{}",
                uuid::Uuid::new_v4().simple()
            );
            TestKey(key)
        }

        fn add(&self, args: &[&str]) {
            let status = Command::new("reg")
                .args(["add", &format!(r"HKCU\{}", self.0), "/f"])
                .args(args)
                .status()
                .expect("reg.exe runs");
            assert!(status.success(), "reg add {args:?}: {status}");
        }
    }

    impl Drop for TestKey {
        fn drop(&mut self) {
            let _ = Command::new("reg")
                .args(["delete", &format!(r"HKCU\{}", self.0), "/f"])
                .output();
        }
    }

    #[test]
    fn reads_a_string_value_with_non_ascii_text() {
        let key = TestKey::new("string");
        let spec = r#"{"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"DnsName":"ドメイン.example","MachineAccountName":"wébapp01"}}"#;
        key.add(&["/v", "webapp01", "/t", "REG_SZ", "/d", spec]);
        let text = read_string_value(RegRoot::CurrentUser, &key.0, "webapp01").unwrap();
        assert_eq!(text, spec);
    }

    #[test]
    fn a_missing_key_says_so() {
        let key = TestKey::new("absent");
        let err = read_string_value(RegRoot::CurrentUser, &key.0, "webapp01").unwrap_err();
        assert!(matches!(err, RegistryError::KeyMissing { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                r"registry key HKCU\{} does not exist: no credential spec is registered in the registry on this host",
                key.0
            )
        );
    }

    #[test]
    fn a_missing_value_says_so() {
        let key = TestKey::new("novalue");
        key.add(&["/v", "other", "/t", "REG_SZ", "/d", "{}"]);
        let err = read_string_value(RegRoot::CurrentUser, &key.0, "webapp01").unwrap_err();
        assert!(matches!(err, RegistryError::ValueMissing { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                r"it is not registered: registry key HKCU\{} has no value of that name",
                key.0
            )
        );
    }

    #[test]
    fn a_value_that_is_not_a_string_says_so() {
        let key = TestKey::new("dword");
        key.add(&["/v", "webapp01", "/t", "REG_DWORD", "/d", "7"]);
        let err = read_string_value(RegRoot::CurrentUser, &key.0, "webapp01").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                r"the registry value under HKCU\{} is of type REG_DWORD, not a string (REG_SZ): it cannot be a credential spec",
                key.0
            )
        );
    }

    #[test]
    fn bad_names_are_refused_before_the_registry_is_read() {
        let err = read_registry_credential_spec("").unwrap_err();
        assert!(err.to_string().contains("the name is empty"), "{err}");
        let err = read_registry_credential_spec("a\0b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the name cannot name a registry value: the name contains a NUL character"
        );
        assert!(matches!(err, RegistryError::InvalidName { name, .. } if name == "a\\u{0}b"));
    }

    #[test]
    fn a_name_is_shown_once_escaped_and_short() {
        let long = format!("evil\u{1b}[31m\u{202e}{}", "n".repeat(30_000));
        // Through the credential-spec loader, as `registry://NAME` reaches it.
        let err =
            crate::credspec::load_arg(&format!("registry://{long}"), std::path::Path::new("."))
                .unwrap_err();
        let chain = crate::text::chain_line(&err);
        assert!(
            !chain.contains('\u{1b}') && !chain.contains('\u{202e}'),
            "{chain:?}"
        );
        assert!(chain.len() < 1000, "{} bytes", chain.len());
        assert_eq!(chain.matches("evil").count(), 1, "{chain}");
        // A missing value under a key that exists: the inner error does not repeat it.
        let key = TestKey::new("longname");
        key.add(&["/v", "other", "/t", "REG_SZ", "/d", "{}"]);
        let err = read_string_value(RegRoot::CurrentUser, &key.0, &long).unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains("evil") && !text.contains('\u{1b}'),
            "{text:?}"
        );
    }

    #[test]
    fn the_error_type_can_cross_threads() {
        fn assert_bounds<E: std::error::Error + Send + Sync + 'static>() {}
        assert_bounds::<RegistryError>();
    }
}
