//! Writing a new credential spec, offline, as New-CredentialSpec would.
//!
//! New-CredentialSpec asks Active Directory for the domain's SID, GUID and names; here they
//! are given ([`NewSpec`]), so nothing is contacted. The result has what New-CredentialSpec
//! writes: the primary account under both the DNS and the NetBIOS scope, each additional
//! account under its domain, and optionally a `HostAccountConfig` for portable CCG. It is
//! linted before it is returned, and refused if it has errors, so a generated spec lints
//! clean whenever the inputs are right.
//!
//! [`to_powershell_json`] lays the JSON out the way Windows PowerShell's `ConvertTo-Json`
//! does, so a generated file looks like one New-CredentialSpec wrote.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use super::lint::{Diagnostic, lint};
use super::model::{
    ACTIVE_DIRECTORY_PLUGIN, ActiveDirectoryConfig, CredentialSpec, DomainJoinConfig,
    GroupManagedServiceAccount, HostAccountConfig, PORTABLE_CCG_VERSION, PluginInput,
};
use super::path::{JsonPath, Segment};
use super::syntax::{account_problem, dns_name_problem, is_guid, shown};
use crate::text::shown_file;

/// What a new credential spec is made from (the flags of `credguard credspec new`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSpec {
    /// The gMSA's account name, without `$` (`--account`).
    pub account: String,
    /// The domain's DNS name (`--domain`).
    pub domain: String,
    /// The domain's NetBIOS name (`--netbios`).
    pub netbios: String,
    /// The domain's SID (`--sid`).
    pub sid: String,
    /// The domain's objectGUID (`--guid`); braces are dropped and it is written lower case.
    pub guid: String,
    /// The forest root's DNS name (`--forest`); the domain when `None`.
    pub forest: Option<String>,
    /// More gMSAs the container may use (`--additional-account NAME@DNS`).
    pub additional_accounts: Vec<AdditionalAccount>,
    /// The CCG plug-in, for hosts that are not domain joined.
    pub host_account: Option<HostAccount>,
}

/// An additional gMSA: `NAME@DNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdditionalAccount {
    /// The account name, without `$`.
    pub name: String,
    /// Its domain's DNS name.
    pub domain: String,
}

impl FromStr for AdditionalAccount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.rsplit_once('@') {
            Some((name, domain)) if !name.is_empty() && !domain.is_empty() => {
                Ok(AdditionalAccount {
                    name: name.to_owned(),
                    domain: domain.to_owned(),
                })
            }
            _ => Err(format!(
                "`{}` is not NAME@DNS; write the account and its domain's DNS name, such as WebApp02@contoso.com",
                shown(s)
            )),
        }
    }
}

impl fmt::Display for AdditionalAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.domain)
    }
}

/// The `HostAccountConfig` of a portable-CCG spec.
#[derive(Debug, Clone, PartialEq)]
pub struct HostAccount {
    /// The plug-in's CLSID (`--plugin-guid`); braces are added when missing.
    pub plugin_guid: String,
    /// What the plug-in reads (`--plugin-input`); kept as given.
    pub plugin_input: PluginInput,
}

/// A generated spec and the linter's warnings about it (it has no errors).
#[derive(Debug, Clone)]
pub struct Generated {
    /// The spec.
    pub spec: CredentialSpec,
    /// Warnings (for example a domain outside the forest root's tree, a password-shaped
    /// plug-in input) and info notes (a plug-in credguard does not know), for the user to check.
    pub warnings: Vec<Diagnostic>,
}

impl Generated {
    /// The spec as New-CredentialSpec lays it out, with a final newline.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text = to_powershell_json(&Value::Object(self.spec.to_map()));
        text.push('\n');
        text
    }
}

/// Why a spec could not be generated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The options make a spec with errors; each problem names its option.
    #[error("the options do not make a valid credential spec:\n{}", problems.join("\n"))]
    Invalid {
        /// One line per problem: `--sid: ... (hint: ...)`.
        problems: Vec<String>,
    },
    /// The file exists and `force` was not given.
    #[error(
        "`{}` exists; give --force to overwrite it, or write to standard output",
        shown_file(.path)
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file name would not be a plain name in the directory.
    #[error("the file name `{name}` is not a plain file name; check --netbios and --account")]
    UnsafeFileName {
        /// The name.
        name: String,
    },
    /// Writing failed.
    #[error("cannot write `{}`", shown_file(.path))]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The flag a diagnostic about a generated spec is to be blamed on.
/// `DnsTreeName` comes from --forest when given, else from --domain.
fn flag_for(path: &JsonPath, forest_given: bool) -> &'static str {
    let key = |i: usize| match path.segments().get(i) {
        Some(Segment::Key(k)) => k.as_str(),
        _ => "",
    };
    match (key(0), key(1), path.segments().get(2)) {
        ("DomainJoinConfig", "Sid", _) => "--sid",
        ("DomainJoinConfig", "MachineAccountName", _) => "--account",
        ("DomainJoinConfig", "Guid", _) => "--guid",
        ("DomainJoinConfig", "DnsTreeName", _) if forest_given => "--forest",
        ("DomainJoinConfig", "DnsTreeName", _) => "--domain",
        ("DomainJoinConfig", "DnsName", _) => "--domain",
        ("DomainJoinConfig", "NetBiosName", _) => "--netbios",
        ("ActiveDirectoryConfig", "HostAccountConfig", _) => {
            if matches!(path.segments().get(2), Some(Segment::Key(k)) if k == "PluginInput") {
                "--plugin-input"
            } else {
                "--plugin-guid"
            }
        }
        // Entries 0 and 1 are the primary account under --domain and under --netbios.
        ("ActiveDirectoryConfig", "GroupManagedServiceAccounts", Some(Segment::Index(i))) => {
            let scope = matches!(path.segments().get(3), Some(Segment::Key(k)) if k == "Scope");
            match (i, scope) {
                (0, true) => "--domain",
                (1, true) => "--netbios",
                (0 | 1, false) => "--account",
                _ => "--additional-account",
            }
        }
        _ => "--account",
    }
}

impl NewSpec {
    /// The file name New-CredentialSpec gives the spec: `{netbios}_{account}.json`, lower case.
    #[must_use]
    pub fn file_name(&self) -> String {
        format!("{}_{}.json", self.netbios, self.account).to_lowercase()
    }

    /// Builds the spec and lints it.
    ///
    /// # Errors
    /// [`GenerateError::Invalid`] listing every problem with the flag it comes from.
    pub fn build(&self) -> Result<Generated, GenerateError> {
        let mut problems = Vec::new();
        let guid = self.guid.trim_start_matches('{').trim_end_matches('}');
        let guid = if is_guid(guid) {
            guid.to_ascii_lowercase()
        } else {
            self.guid.clone()
        };
        let mut accounts = vec![
            GroupManagedServiceAccount::new(&self.account, &self.domain),
            GroupManagedServiceAccount::new(&self.account, &self.netbios),
        ];
        for extra in &self.additional_accounts {
            let p = account_problem(&extra.name);
            if p.dollar || p.domain.is_some() || p.invalid.is_some() || p.bare.chars().count() > 15
            {
                problems.push(format!(
                    "--additional-account `{extra}`: the account name must be a sAMAccountName without `$` (at most 15 characters, no domain)"
                ));
            }
            if let Some(why) = dns_name_problem(&extra.domain) {
                problems.push(format!(
                    "--additional-account `{extra}`: `{}` is not a DNS name: {why}",
                    shown(&extra.domain)
                ));
            }
            accounts.push(GroupManagedServiceAccount::new(&extra.name, &extra.domain));
        }
        let host_account_config = self.host_account.as_ref().map(|h| {
            let plugin_guid = if is_guid(&h.plugin_guid) {
                format!("{{{}}}", h.plugin_guid)
            } else {
                h.plugin_guid.clone()
            };
            HostAccountConfig {
                portable_ccg_version: Some(PORTABLE_CCG_VERSION.to_owned()),
                plugin_guid: Some(plugin_guid),
                plugin_input: Some(h.plugin_input.clone()),
                ..HostAccountConfig::default()
            }
        });
        let spec = CredentialSpec {
            cms_plugins: Some(vec![ACTIVE_DIRECTORY_PLUGIN.to_owned()]),
            domain_join_config: Some(DomainJoinConfig {
                sid: Some(self.sid.clone()),
                machine_account_name: Some(self.account.clone()),
                guid: Some(guid),
                dns_tree_name: Some(self.forest.clone().unwrap_or_else(|| self.domain.clone())),
                dns_name: Some(self.domain.clone()),
                net_bios_name: Some(self.netbios.clone()),
                ..DomainJoinConfig::default()
            }),
            active_directory_config: Some(ActiveDirectoryConfig {
                group_managed_service_accounts: Some(accounts),
                host_account_config,
                ..ActiveDirectoryConfig::default()
            }),
            ..CredentialSpec::default()
        };
        let (errors, warnings): (Vec<_>, Vec<_>) = lint(&spec.to_map())
            .into_iter()
            .partition(Diagnostic::is_error);
        problems.extend(errors.iter().map(|d| {
            format!(
                "{}: {} (hint: {})",
                flag_for(&d.path, self.forest.is_some()),
                d.message,
                d.hint
            )
        }));
        if problems.is_empty() {
            Ok(Generated { spec, warnings })
        } else {
            Err(GenerateError::Invalid { problems })
        }
    }
}

/// Writes `text` as `dir/file_name`, owner-only (mode 0600 on Unix, an owner-only DACL on
/// Windows) and atomically, creating the directory and its missing parents owner-only
/// (0700). Without `force` an existing file is left alone; with it, the file is replaced at
/// once (never half written), owner-only whatever the old file's permissions.
///
/// # Errors
/// [`GenerateError::Exists`], [`GenerateError::UnsafeFileName`], [`GenerateError::Write`].
pub fn write_spec_file(
    dir: &Path,
    file_name: &str,
    text: &str,
    force: bool,
) -> Result<PathBuf, GenerateError> {
    if file_name.is_empty()
        || file_name.starts_with('.')
        || file_name.contains(['/', '\\', ':'])
        || file_name.chars().any(char::is_control)
        || super::source::is_dos_device_name(file_name)
    {
        return Err(GenerateError::UnsafeFileName {
            name: shown(file_name),
        });
    }
    let path = dir.join(file_name);
    let write_error = |source| GenerateError::Write {
        path: path.clone(),
        source,
    };
    // The spec may hold the plug-in secret: the directories created for it and the file
    // are owner-only whatever the umask, and the file is written atomically (temporary
    // file, fsync, rename; without --force a rename that never replaces).
    credguard_statefile::create_private_dir_all(dir).map_err(|e| write_error(e.source))?;
    refuse_shared_dir(dir).map_err(write_error)?;
    match credguard_statefile::write_private(&path, text.as_bytes(), force) {
        Ok(()) => {}
        Err(e) if e.source.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(GenerateError::Exists { path });
        }
        Err(e) => return Err(write_error(e.source)),
    }
    Ok(path)
}

/// On Unix, refuses a directory (the one a link leads to) that group or others may write
/// in without the sticky bit: they could replace the spec (what Docker then reads as the
/// container's identity) or delete it. A sticky directory such as `/tmp` is fine: there no
/// one else can rename or remove the file, which is owner-only. On Windows the directory's
/// DACL is Docker's to keep.
fn refuse_shared_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "the directory is writable by group or others (mode {:04o}), who could replace the spec: `chmod go-w` it or give another --credspec-dir",
                    mode & 0o7777
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Lays JSON out as Windows PowerShell's `ConvertTo-Json` does: four spaces of indent
/// counted from the column where the enclosing bracket opened, and two spaces after each
/// colon. No final newline.
#[must_use]
pub fn to_powershell_json(value: &Value) -> String {
    let mut out = String::new();
    powershell_value(&mut out, value, 0);
    out
}

fn powershell_value(out: &mut String, value: &Value, column: usize) {
    let pad = " ".repeat(column + 4);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (n, (key, v)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(",\n");
                }
                let key = Value::String(key.clone()).to_string();
                out.push_str(&pad);
                out.push_str(&key);
                out.push_str(":  ");
                powershell_value(out, v, column + 4 + key.chars().count() + 3);
            }
            out.push('\n');
            out.push_str(&" ".repeat(column));
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (n, v) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&pad);
                powershell_value(out, v, column + 4);
            }
            out.push('\n');
            out.push_str(&" ".repeat(column));
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn contoso() -> NewSpec {
        NewSpec {
            account: "WebApp01".into(),
            domain: "contoso.com".into(),
            netbios: "CONTOSO".into(),
            sid: "S-1-5-21-702590844-1001920913-2680819671".into(),
            guid: "{244818AE-87CA-4FCD-92EC-E79E5252348A}".into(),
            forest: None,
            additional_accounts: vec![],
            host_account: None,
        }
    }

    #[test]
    fn writes_what_new_credentialspec_writes() {
        let g = contoso().build().unwrap();
        assert!(g.warnings.is_empty());
        let expected = r#"{
    "CmsPlugins":  [
                       "ActiveDirectory"
                   ],
    "DomainJoinConfig":  {
                             "Sid":  "S-1-5-21-702590844-1001920913-2680819671",
                             "MachineAccountName":  "WebApp01",
                             "Guid":  "244818ae-87ca-4fcd-92ec-e79e5252348a",
                             "DnsTreeName":  "contoso.com",
                             "DnsName":  "contoso.com",
                             "NetBiosName":  "CONTOSO"
                         },
    "ActiveDirectoryConfig":  {
                                  "GroupManagedServiceAccounts":  [
                                                                      {
                                                                          "Name":  "WebApp01",
                                                                          "Scope":  "contoso.com"
                                                                      },
                                                                      {
                                                                          "Name":  "WebApp01",
                                                                          "Scope":  "CONTOSO"
                                                                      }
                                                                  ]
                              }
}
"#;
        assert_eq!(g.to_json(), expected);
        assert_eq!(contoso().file_name(), "contoso_webapp01.json");
    }

    #[test]
    fn adds_accounts_and_the_plugin() {
        let mut n = contoso();
        n.additional_accounts = vec!["WebApp02@emea.contoso.com".parse().unwrap()];
        n.host_account = Some(HostAccount {
            plugin_guid: "859E1386-BDB4-49E8-85C7-3070B13920E1".into(),
            plugin_input: PluginInput::text(
                "{\"credentialArn\": \"arn:aws:secretsmanager:us-west-2:123456789012:secret:gmsa\"}",
            ),
        });
        let g = n.build().unwrap();
        let v = Value::Object(g.spec.to_map());
        assert_eq!(
            v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][2],
            serde_json::json!({"Name": "WebApp02", "Scope": "emea.contoso.com"})
        );
        assert_eq!(
            v["ActiveDirectoryConfig"]["HostAccountConfig"]["PluginGUID"],
            "{859E1386-BDB4-49E8-85C7-3070B13920E1}"
        );
        assert!(lint(&g.spec.to_map()).is_empty());
        assert!("nodomain".parse::<AdditionalAccount>().is_err());
    }

    #[test]
    fn refuses_a_plugin_input_of_the_wrong_shape_naming_the_flag_not_the_input() {
        let secret = "kv-s3cr3t-name";
        for (guid, input, code_says) in [
            (
                "{CCC2A336-D7F3-4818-A213-272B7924213E}",
                format!("SecretUri=https://{secret}.vault.azure.net/secrets/{secret}"),
                "has no `ObjectId`",
            ),
            (
                "{859E1386-BDB4-49E8-85C7-3070B13920E1}",
                format!("{{\"credentialArn\": \"arn:aws:s3:::{secret}\"}}"),
                "names a service other than",
            ),
        ] {
            let mut n = contoso();
            n.host_account = Some(HostAccount {
                plugin_guid: guid.into(),
                plugin_input: PluginInput::text(input),
            });
            let e = n.build().unwrap_err().to_string();
            assert!(e.contains("--plugin-input: "), "{e}");
            assert!(e.contains(code_says), "{e}");
            assert!(!e.contains(secret), "{e}");
        }
        // A password in the input is a warning: the spec is written, the warning comes along.
        let mut n = contoso();
        n.host_account = Some(HostAccount {
            plugin_guid: "{E4781092-F116-4B79-B55E-28EB6A224E26}".into(),
            plugin_input: PluginInput::text("contoso.com:reader:Pa55w0rd"),
        });
        let g = n.build().unwrap();
        assert_eq!(
            g.warnings
                .iter()
                .map(|d| d.code.as_str())
                .collect::<Vec<_>>(),
            vec!["CS088"]
        );
    }

    #[test]
    fn refuses_bad_options_naming_the_flag() {
        let mut n = contoso();
        n.sid = "S-1-5-21-1-2-3-1105".into();
        n.account = "WebApp01$".into();
        n.additional_accounts = vec!["x$@contoso.com".parse().unwrap()];
        let e = n.build().unwrap_err().to_string();
        assert!(
            e.contains("--sid: `S-1-5-21-1-2-3-1105` looks like an account SID"),
            "{e}"
        );
        assert!(e.contains("--account: `WebApp01$` ends with `$`"), "{e}");
        assert!(e.contains("--additional-account `x$@contoso.com`"), "{e}");
    }

    #[test]
    fn problems_in_account_entries_are_blamed_on_their_flag() {
        let at = |i: usize, key: &str| {
            JsonPath::root()
                .key("ActiveDirectoryConfig")
                .key("GroupManagedServiceAccounts")
                .index(i)
                .key(key)
        };
        assert_eq!(flag_for(&at(0, "Scope"), false), "--domain");
        assert_eq!(flag_for(&at(1, "Scope"), false), "--netbios");
        assert_eq!(flag_for(&at(1, "Name"), false), "--account");
        assert_eq!(flag_for(&at(2, "Name"), false), "--additional-account");
        let mut n = contoso();
        n.domain = String::new();
        let e = n.build().unwrap_err().to_string();
        assert!(e.contains("--domain: `DnsName` is empty"), "{e}");
        assert!(e.contains("--domain: `DnsTreeName` is empty"), "{e}");
        assert!(
            !e.contains("--additional-account") && !e.contains("--forest"),
            "{e}"
        );
    }

    #[test]
    fn warnings_are_returned_not_refused() {
        let mut n = contoso();
        n.forest = Some("fabrikam.com".into());
        let g = n.build().unwrap();
        assert_eq!(g.warnings.len(), 1);
        assert_eq!(g.warnings[0].code.as_str(), "CS032");
    }

    #[test]
    fn writes_files_without_clobbering() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("CredentialSpecs");
        let p = write_spec_file(&sub, "a.json", "one", false).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        let e = write_spec_file(&sub, "a.json", "two", false).unwrap_err();
        assert!(matches!(e, GenerateError::Exists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        write_spec_file(&sub, "a.json", "two", true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        for bad in [
            "../a.json",
            "a\\b.json",
            ".hidden",
            "c:x",
            "COM1.json",
            "con.json",
            "nul",
        ] {
            assert!(matches!(
                write_spec_file(&sub, bad, "x", true),
                Err(GenerateError::UnsafeFileName { .. })
            ));
        }
    }
}
