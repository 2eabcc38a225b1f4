//! The typed credential spec.
//!
//! Every object of the model keeps the members it does not know and the order in which the
//! members came, so reading a spec into the model and writing it out again gives back the
//! same document. `PluginInput` is kept exactly as found (a string, a JSON-encoded string or
//! any JSON value) and is never shown by `Debug`.
//!
//! The model is strict about types (a `Sid` that is a number cannot be held); the linter
//! ([`super::lint()`]) works on the JSON itself and reports such a spec with a diagnostic.

use std::fmt;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::path::JsonPath;
use crate::input::json_kind;
use crate::redact::REDACTED;

/// The only CMS plug-in a gMSA credential spec names.
pub const ACTIVE_DIRECTORY_PLUGIN: &str = "ActiveDirectory";

/// `PortableCcgVersion` as New-CredentialSpec and the plug-in docs write it.
pub const PORTABLE_CCG_VERSION: &str = "1";

/// A member of the model whose JSON type is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` is a JSON {found}; it must be {expected}")]
#[non_exhaustive]
pub struct ModelError {
    /// Where.
    pub path: JsonPath,
    /// What the model needs there (`a string`, `an array of strings`, ...).
    pub expected: &'static str,
    /// The JSON type found.
    pub found: &'static str,
}

/// A plug-in's input: opaque, possibly a secret. Kept exactly; `Debug` never shows it.
#[derive(Clone, PartialEq)]
pub struct PluginInput(Value);

impl PluginInput {
    /// An input given as text (the usual form).
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        PluginInput(Value::String(text.into()))
    }

    /// An input given as any JSON value.
    #[must_use]
    pub fn from_value(value: Value) -> Self {
        PluginInput(value)
    }

    /// The input itself. Whoever calls this is responsible for not showing it.
    #[must_use]
    pub fn expose(&self) -> &Value {
        &self.0
    }
}

impl fmt::Debug for PluginInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PluginInput({REDACTED})")
    }
}

/// The order in which an object's members were read, so that writing it gives them back in
/// that order. A new object has none: its members are written in New-CredentialSpec's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberOrder(Vec<String>);

/// A gMSA credential spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialSpec {
    /// `CmsPlugins`: `["ActiveDirectory"]`.
    pub cms_plugins: Option<Vec<String>>,
    /// `DomainJoinConfig`: the domain and the gMSA.
    pub domain_join_config: Option<DomainJoinConfig>,
    /// `ActiveDirectoryConfig`: the gMSAs and, for portable CCG, the plug-in.
    pub active_directory_config: Option<ActiveDirectoryConfig>,
    /// Members the model does not know, kept as found.
    pub unknown: Map<String, Value>,
    /// The order the members were read in (empty for a spec made in code).
    pub order: MemberOrder,
}

/// `DomainJoinConfig`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainJoinConfig {
    /// `Sid`: the domain's SID (`S-1-5-21-a-b-c`, no RID).
    pub sid: Option<String>,
    /// `MachineAccountName`: the gMSA's account name, without `$` and without a domain.
    pub machine_account_name: Option<String>,
    /// `Guid`: the domain's objectGUID.
    pub guid: Option<String>,
    /// `DnsTreeName`: the forest root's DNS name.
    pub dns_tree_name: Option<String>,
    /// `DnsName`: the domain's DNS name.
    pub dns_name: Option<String>,
    /// `NetBiosName`: the domain's NetBIOS name.
    pub net_bios_name: Option<String>,
    /// Members the model does not know, kept as found.
    pub unknown: Map<String, Value>,
    /// The order the members were read in (empty for a spec made in code).
    pub order: MemberOrder,
}

/// `ActiveDirectoryConfig`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveDirectoryConfig {
    /// `GroupManagedServiceAccounts`: the gMSA under each scope.
    pub group_managed_service_accounts: Option<Vec<GroupManagedServiceAccount>>,
    /// `HostAccountConfig`: the CCG plug-in of a host that is not domain joined.
    pub host_account_config: Option<HostAccountConfig>,
    /// Members the model does not know, kept as found.
    pub unknown: Map<String, Value>,
    /// The order the members were read in (empty for a spec made in code).
    pub order: MemberOrder,
}

/// An entry of `GroupManagedServiceAccounts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupManagedServiceAccount {
    /// `Name`: the account name.
    pub name: Option<String>,
    /// `Scope`: the DNS or NetBIOS name of the account's domain.
    pub scope: Option<String>,
    /// Members the model does not know, kept as found.
    pub unknown: Map<String, Value>,
    /// The order the members were read in (empty for a spec made in code).
    pub order: MemberOrder,
}

/// `HostAccountConfig`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostAccountConfig {
    /// `PortableCcgVersion`: `"1"`.
    pub portable_ccg_version: Option<String>,
    /// `PluginGUID`: the plug-in's COM CLSID, in braces.
    pub plugin_guid: Option<String>,
    /// `PluginInput`: what the plug-in reads; opaque and possibly secret.
    pub plugin_input: Option<PluginInput>,
    /// Members the model does not know, kept as found.
    pub unknown: Map<String, Value>,
    /// The order the members were read in (empty for a spec made in code).
    pub order: MemberOrder,
}

impl GroupManagedServiceAccount {
    /// An entry for `name` under `scope`.
    #[must_use]
    pub fn new(name: impl Into<String>, scope: impl Into<String>) -> Self {
        GroupManagedServiceAccount {
            name: Some(name.into()),
            scope: Some(scope.into()),
            ..Self::default()
        }
    }
}

/// Reads the members of one object of the model.
struct Reader<'a> {
    map: &'a Map<String, Value>,
    path: &'a JsonPath,
    known: &'static [&'static str],
}

impl<'a> Reader<'a> {
    fn get(&self, key: &'static str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &Value) -> ModelError {
        ModelError {
            path: self.path.key(key),
            expected,
            found: json_kind(found),
        }
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(key, "a string", other)),
        }
    }

    fn object(&self, key: &'static str) -> Result<Option<&'a Map<String, Value>>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.wrong(key, "an object", other)),
        }
    }

    fn array(&self, key: &'static str) -> Result<Option<&'a Vec<Value>>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.wrong(key, "an array", other)),
        }
    }

    fn unknown(&self) -> Map<String, Value> {
        self.map
            .iter()
            .filter(|(k, _)| !self.known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn order(&self) -> MemberOrder {
        MemberOrder(self.map.keys().cloned().collect())
    }
}

/// Writes one object of the model: members in the order they were read, then members set
/// since (in the canonical order given), then unknown members added since.
fn write(
    order: &MemberOrder,
    known: Vec<(&'static str, Option<Value>)>,
    unknown: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for key in &order.0 {
        if let Some((_, Some(v))) = known.iter().find(|(k, _)| k == key) {
            out.insert(key.clone(), v.clone());
        } else if let Some(v) = unknown.get(key) {
            out.insert(key.clone(), v.clone());
        }
    }
    for (key, value) in known {
        if let Some(v) = value
            && !out.contains_key(key)
        {
            out.insert(key.to_owned(), v);
        }
    }
    for (key, value) in unknown {
        if !out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

fn string_value(s: Option<&String>) -> Option<Value> {
    s.map(|s| Value::String(s.clone()))
}

impl CredentialSpec {
    /// The member names the model knows, in the order New-CredentialSpec writes them.
    pub const MEMBERS: &'static [&'static str] =
        &["CmsPlugins", "DomainJoinConfig", "ActiveDirectoryConfig"];

    /// Reads the model from a spec's root object.
    ///
    /// # Errors
    /// [`ModelError`] naming the first member whose JSON type the model cannot hold.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, ModelError> {
        let root = JsonPath::root();
        let r = Reader {
            map,
            path: &root,
            known: Self::MEMBERS,
        };
        let cms_plugins = match r.array("CmsPlugins")? {
            None => None,
            Some(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(ModelError {
                            path: root.key("CmsPlugins").index(i),
                            expected: "a string",
                            found: json_kind(other),
                        }),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let domain_join_config = r
            .object("DomainJoinConfig")?
            .map(|m| DomainJoinConfig::from_map(m, &root.key("DomainJoinConfig")))
            .transpose()?;
        let active_directory_config = r
            .object("ActiveDirectoryConfig")?
            .map(|m| ActiveDirectoryConfig::from_map(m, &root.key("ActiveDirectoryConfig")))
            .transpose()?;
        Ok(CredentialSpec {
            cms_plugins,
            domain_join_config,
            active_directory_config,
            unknown: r.unknown(),
            order: r.order(),
        })
    }

    /// The spec as a JSON object.
    #[must_use]
    pub fn to_map(&self) -> Map<String, Value> {
        write(
            &self.order,
            vec![
                (
                    "CmsPlugins",
                    self.cms_plugins
                        .as_ref()
                        .map(|p| Value::Array(p.iter().cloned().map(Value::String).collect())),
                ),
                (
                    "DomainJoinConfig",
                    self.domain_join_config
                        .as_ref()
                        .map(|d| Value::Object(d.to_map())),
                ),
                (
                    "ActiveDirectoryConfig",
                    self.active_directory_config
                        .as_ref()
                        .map(|a| Value::Object(a.to_map())),
                ),
            ],
            &self.unknown,
        )
    }

    /// The canonical form sent to HCS: compact JSON, no BOM, unknown members kept.
    #[must_use]
    pub fn to_canonical(&self) -> String {
        Value::Object(self.to_map()).to_string()
    }

    /// The plug-in GUID, when the spec names one.
    #[must_use]
    pub fn plugin_guid(&self) -> Option<&str> {
        self.active_directory_config
            .as_ref()?
            .host_account_config
            .as_ref()?
            .plugin_guid
            .as_deref()
    }
}

impl DomainJoinConfig {
    /// The member names the model knows, in the order New-CredentialSpec writes them.
    pub const MEMBERS: &'static [&'static str] = &[
        "Sid",
        "MachineAccountName",
        "Guid",
        "DnsTreeName",
        "DnsName",
        "NetBiosName",
    ];

    fn from_map(map: &Map<String, Value>, path: &JsonPath) -> Result<Self, ModelError> {
        let r = Reader {
            map,
            path,
            known: Self::MEMBERS,
        };
        Ok(DomainJoinConfig {
            sid: r.string("Sid")?,
            machine_account_name: r.string("MachineAccountName")?,
            guid: r.string("Guid")?,
            dns_tree_name: r.string("DnsTreeName")?,
            dns_name: r.string("DnsName")?,
            net_bios_name: r.string("NetBiosName")?,
            unknown: r.unknown(),
            order: r.order(),
        })
    }

    fn to_map(&self) -> Map<String, Value> {
        write(
            &self.order,
            vec![
                ("Sid", string_value(self.sid.as_ref())),
                (
                    "MachineAccountName",
                    string_value(self.machine_account_name.as_ref()),
                ),
                ("Guid", string_value(self.guid.as_ref())),
                ("DnsTreeName", string_value(self.dns_tree_name.as_ref())),
                ("DnsName", string_value(self.dns_name.as_ref())),
                ("NetBiosName", string_value(self.net_bios_name.as_ref())),
            ],
            &self.unknown,
        )
    }
}

impl ActiveDirectoryConfig {
    /// The member names the model knows, in the order New-CredentialSpec writes them.
    pub const MEMBERS: &'static [&'static str] =
        &["GroupManagedServiceAccounts", "HostAccountConfig"];

    fn from_map(map: &Map<String, Value>, path: &JsonPath) -> Result<Self, ModelError> {
        let r = Reader {
            map,
            path,
            known: Self::MEMBERS,
        };
        let accounts_path = path.key("GroupManagedServiceAccounts");
        let group_managed_service_accounts = match r.array("GroupManagedServiceAccounts")? {
            None => None,
            Some(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::Object(m) => {
                            GroupManagedServiceAccount::from_map(m, &accounts_path.index(i))
                        }
                        other => Err(ModelError {
                            path: accounts_path.index(i),
                            expected: "an object",
                            found: json_kind(other),
                        }),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let host_account_config = r
            .object("HostAccountConfig")?
            .map(|m| HostAccountConfig::from_map(m, &path.key("HostAccountConfig")))
            .transpose()?;
        Ok(ActiveDirectoryConfig {
            group_managed_service_accounts,
            host_account_config,
            unknown: r.unknown(),
            order: r.order(),
        })
    }

    fn to_map(&self) -> Map<String, Value> {
        write(
            &self.order,
            vec![
                (
                    "GroupManagedServiceAccounts",
                    self.group_managed_service_accounts.as_ref().map(|a| {
                        Value::Array(a.iter().map(|g| Value::Object(g.to_map())).collect())
                    }),
                ),
                (
                    "HostAccountConfig",
                    self.host_account_config
                        .as_ref()
                        .map(|h| Value::Object(h.to_map())),
                ),
            ],
            &self.unknown,
        )
    }
}

impl GroupManagedServiceAccount {
    /// The member names the model knows.
    pub const MEMBERS: &'static [&'static str] = &["Name", "Scope"];

    fn from_map(map: &Map<String, Value>, path: &JsonPath) -> Result<Self, ModelError> {
        let r = Reader {
            map,
            path,
            known: Self::MEMBERS,
        };
        Ok(GroupManagedServiceAccount {
            name: r.string("Name")?,
            scope: r.string("Scope")?,
            unknown: r.unknown(),
            order: r.order(),
        })
    }

    fn to_map(&self) -> Map<String, Value> {
        write(
            &self.order,
            vec![
                ("Name", string_value(self.name.as_ref())),
                ("Scope", string_value(self.scope.as_ref())),
            ],
            &self.unknown,
        )
    }
}

impl HostAccountConfig {
    /// The member names the model knows, in the order the plug-in docs write them.
    pub const MEMBERS: &'static [&'static str] =
        &["PortableCcgVersion", "PluginGUID", "PluginInput"];

    fn from_map(map: &Map<String, Value>, path: &JsonPath) -> Result<Self, ModelError> {
        let r = Reader {
            map,
            path,
            known: Self::MEMBERS,
        };
        Ok(HostAccountConfig {
            portable_ccg_version: r.string("PortableCcgVersion")?,
            plugin_guid: r.string("PluginGUID")?,
            plugin_input: r.get("PluginInput").cloned().map(PluginInput),
            unknown: r.unknown(),
            order: r.order(),
        })
    }

    fn to_map(&self) -> Map<String, Value> {
        write(
            &self.order,
            vec![
                (
                    "PortableCcgVersion",
                    string_value(self.portable_ccg_version.as_ref()),
                ),
                ("PluginGUID", string_value(self.plugin_guid.as_ref())),
                (
                    "PluginInput",
                    self.plugin_input.as_ref().map(|p| p.0.clone()),
                ),
            ],
            &self.unknown,
        )
    }
}

impl Serialize for CredentialSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CredentialSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        CredentialSpec::from_map(&map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"X-Note":"kept","DomainJoinConfig":{"NetBiosName":"CONTOSO","Sid":"S-1-5-21-1-2-3","Extra":[1,{"b":2,"a":1}],"MachineAccountName":"WebApp01","Guid":"244818ae-87ca-4fcd-92ec-e79e5252348a","DnsTreeName":"contoso.com","DnsName":"contoso.com"},"CmsPlugins":["ActiveDirectory"],"ActiveDirectoryConfig":{"HostAccountConfig":{"PluginInput":{"credentialArn":"arn:aws:secret"},"PortableCcgVersion":"1","PluginGUID":"{859E1386-BDB4-49E8-85C7-3070B13920E1}"},"GroupManagedServiceAccounts":[{"Scope":"contoso.com","Name":"WebApp01","Zone":1}]}}"#;

    #[test]
    fn round_trips_unknown_members_and_order() {
        let spec: CredentialSpec = serde_json::from_str(SPEC).unwrap();
        assert_eq!(spec.to_canonical(), SPEC);
        let dj = spec.domain_join_config.as_ref().unwrap();
        assert_eq!(dj.sid.as_deref(), Some("S-1-5-21-1-2-3"));
        assert_eq!(dj.unknown.len(), 1);
        assert_eq!(
            spec.plugin_guid(),
            Some("{859E1386-BDB4-49E8-85C7-3070B13920E1}")
        );
    }

    #[test]
    fn plugin_input_is_kept_exactly_and_never_debugged() {
        for input in [
            r#""ObjectId=1;SecretUri=https://v.vault.azure.net/secrets/s3cr3t""#,
            r#""{\"credentialArn\": \"arn:aws:s3cr3t\"}""#,
            r#"{"password":"s3cr3t","n":[1,2.5,null]}"#,
        ] {
            let text = format!(
                r#"{{"ActiveDirectoryConfig":{{"HostAccountConfig":{{"PluginInput":{input}}}}}}}"#
            );
            let spec: CredentialSpec = serde_json::from_str(&text).unwrap();
            assert_eq!(spec.to_canonical(), text);
            assert!(!format!("{spec:?}").contains("s3cr3t"));
        }
    }

    #[test]
    fn members_set_later_are_written_in_canonical_order() {
        let mut spec: CredentialSpec =
            serde_json::from_str(r#"{"Z":1,"CmsPlugins":["ActiveDirectory"]}"#).unwrap();
        spec.domain_join_config = Some(DomainJoinConfig {
            sid: Some("S-1-5-21-1-2-3".into()),
            ..DomainJoinConfig::default()
        });
        spec.unknown.insert("Y".into(), Value::Bool(true));
        assert_eq!(
            spec.to_canonical(),
            r#"{"Z":1,"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"Sid":"S-1-5-21-1-2-3"},"Y":true}"#
        );
        spec.domain_join_config = None;
        assert!(!spec.to_canonical().contains("DomainJoinConfig"));
    }

    #[test]
    fn wrong_types_name_the_member() {
        let e = serde_json::from_str::<CredentialSpec>(r#"{"DomainJoinConfig":{"Sid":5}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`DomainJoinConfig.Sid` is a JSON number; it must be a string"),
            "{e}"
        );
        let e = serde_json::from_str::<CredentialSpec>(
            r#"{"ActiveDirectoryConfig":{"GroupManagedServiceAccounts":["x"]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("GroupManagedServiceAccounts[0]` is a JSON string"),
            "{e}"
        );
    }
}
