//! The credential-spec linter: every mistake ccg.exe would fail on (or silently misread),
//! reported before the spec reaches Windows, with what to do about it.
//!
//! Each [`Diagnostic`] has a stable [`Code`] (`CS001`...), a [`Severity`], the JSON path it
//! is about, a message and a hint. The linter works on the JSON itself, not on the typed
//! model, so a spec with members of the wrong type is linted in full.
//!
//! No diagnostic quotes a `PluginInput`: its shape is checked only for the plug-ins whose
//! input is public (see `plugin_input`), and those messages name what is wrong with the shape,
//! never any part of the input; a message quotes a value only of members known to hold no
//! secret (SIDs, names, GUIDs).

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{
    ACTIVE_DIRECTORY_PLUGIN, ActiveDirectoryConfig, CredentialSpec, DomainJoinConfig,
    GroupManagedServiceAccount, HostAccountConfig, PORTABLE_CCG_VERSION,
};
use super::path::JsonPath;
use super::plugin_input;
use super::plugins::{DOCS_PLACEHOLDER_PLUGIN_GUID, KnownPlugin, nearest_known_plugin};
use super::syntax::{
    SidShape, account_problem, dns_name_problem, is_guid, netbios_problem, parse_sid, shown,
};
use crate::input::json_kind;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// ccg.exe will fail on the spec, or the container will not get its identity.
    Error,
    /// Probably wrong, or different from what New-CredentialSpec writes.
    Warning,
    /// Worth knowing, nothing to fix (a plug-in credguard cannot check, say).
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $summary:literal;)*) => {
        /// The stable code of a diagnostic. Codes are never reused for another meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as shown: `CS001`.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity every diagnostic with this code has.
            #[must_use]
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// What the code means, in one line.
            #[must_use]
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }
        }
    };
}

codes! {
    MissingMember = "CS001", Error, "a required member is missing";
    EmptyMember = "CS002", Error, "a required member is empty";
    WrongType = "CS003", Error, "a member has the wrong JSON type";
    MissingGuid = "CS004", Warning, "DomainJoinConfig.Guid is missing or empty";
    InvalidSid = "CS010", Error, "Sid is not a domain SID";
    AccountSid = "CS011", Error, "Sid is an account SID, not the domain's";
    InvalidGuid = "CS012", Error, "Guid is not a GUID";
    BracedGuid = "CS013", Warning, "Guid is written in braces";
    AccountDollar = "CS020", Error, "MachineAccountName ends with `$`";
    AccountWithDomain = "CS021", Error, "MachineAccountName includes a domain";
    AccountTooLong = "CS022", Error, "MachineAccountName is longer than 15 characters";
    AccountInvalidChars = "CS023", Error, "MachineAccountName has characters account names cannot have";
    InvalidDnsName = "CS030", Error, "DnsName is not a DNS name";
    InvalidDnsTreeName = "CS031", Error, "DnsTreeName is not a DNS name";
    DnsNameOutsideTree = "CS032", Warning, "DnsName is not DnsTreeName or a name under it";
    NetBiosTooLong = "CS033", Error, "NetBiosName is longer than 15 characters";
    NetBiosInvalidChars = "CS034", Error, "NetBiosName has characters NetBIOS names cannot have";
    NetBiosLooksLikeDns = "CS035", Warning, "NetBiosName looks like a DNS name";
    NoActiveDirectoryPlugin = "CS040", Error, "CmsPlugins does not name ActiveDirectory";
    UnknownCmsPlugin = "CS041", Warning, "CmsPlugins names something other than ActiveDirectory";
    NoAccounts = "CS050", Error, "GroupManagedServiceAccounts is empty";
    NoPrimaryAccount = "CS051", Error, "GroupManagedServiceAccounts has no entry for MachineAccountName";
    MissingScope = "CS052", Warning, "the primary account lacks a Scope for DnsName or NetBiosName";
    IncompleteAccount = "CS053", Error, "a GroupManagedServiceAccounts entry has no Name or Scope";
    PortableCcgVersion = "CS061", Warning, "PortableCcgVersion is not \"1\"";
    InvalidPluginGuid = "CS062", Error, "PluginGUID is not a GUID in braces";
    PlaceholderPluginGuid = "CS063", Error, "PluginGUID is the placeholder from Microsoft's docs";
    PluginGuidTypo = "CS064", Warning, "PluginGUID is one or two digits away from a known plug-in";
    UnknownMember = "CS070", Warning, "a member is unknown or wrongly cased";
    UnknownPlugin = "CS080", Info, "PluginGUID names a plug-in credguard does not know, so its PluginInput is not checked";
    KeyVaultInput = "CS081", Error, "the Azure Key Vault plug-in's PluginInput is not `ObjectId=...;SecretUri=...` with both keys";
    KeyVaultSecretUri = "CS082", Error, "the Azure Key Vault plug-in's SecretUri is not an https Key Vault secret URL";
    KeyVaultObjectId = "CS083", Error, "the Azure Key Vault plug-in's ObjectId is not a GUID";
    KeyVaultExtraKey = "CS084", Warning, "the Azure Key Vault plug-in's PluginInput has an unknown or repeated key";
    AwsInput = "CS085", Error, "the AWS plug-in's PluginInput is not a JSON object with a credentialArn";
    AwsCredentialArn = "CS086", Error, "the AWS plug-in's credentialArn is not a Secrets Manager secret or SSM parameter ARN";
    AwsExtraMember = "CS087", Warning, "the AWS plug-in's PluginInput has a member other than credentialArn";
    PlaintextPassword = "CS088", Warning, "PluginInput looks like `domain:user:password`: the spec carries a password";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One finding of the linter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Diagnostic {
    /// The stable code.
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub code: Code,
    /// Error or warning (always the code's).
    pub severity: Severity,
    /// The member it is about (for a missing member, the member that should be there).
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub path: JsonPath,
    /// The line of the source text, when the spec was read from JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl Diagnostic {
    fn new(code: Code, path: JsonPath, message: String, hint: String) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            path,
            line: None,
            message,
            hint,
        }
    }

    /// Whether this is an error.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `error[CS011] DomainJoinConfig.Sid: message (hint: ...)`, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] {}: {} (hint: {})",
            self.severity, self.code, self.path, self.message, self.hint
        )
    }
}

/// Lints a credential spec's root object. Diagnostics come in document order of the checks
/// (root, DomainJoinConfig, ActiveDirectoryConfig); their `line` is left empty (see
/// [`super::SpecDocument::lint`] for diagnostics with lines).
#[must_use]
pub fn lint(root: &Map<String, Value>) -> Vec<Diagnostic> {
    let mut l = Linter { out: Vec::new() };
    let path = JsonPath::root();
    l.members(root, &path, CredentialSpec::MEMBERS);
    l.cms_plugins(root, &path);
    let domain = l.object(root, &path, "DomainJoinConfig", Required::Yes);
    if let Some(domain) = domain {
        l.domain_join_config(domain, &path.key("DomainJoinConfig"));
    }
    if let Some(ad) = l.object(root, &path, "ActiveDirectoryConfig", Required::Yes) {
        l.active_directory_config(ad, &path.key("ActiveDirectoryConfig"), domain);
    }
    l.out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Required {
    Yes,
    No,
}

struct Linter {
    out: Vec<Diagnostic>,
}

/// Where each member name the model knows belongs, for "it belongs in ..." hints.
const HOMES: &[(&str, &[&str])] = &[
    ("the root object", CredentialSpec::MEMBERS),
    ("DomainJoinConfig", DomainJoinConfig::MEMBERS),
    ("ActiveDirectoryConfig", ActiveDirectoryConfig::MEMBERS),
    (
        "each entry of GroupManagedServiceAccounts",
        GroupManagedServiceAccount::MEMBERS,
    ),
    (
        "ActiveDirectoryConfig.HostAccountConfig",
        HostAccountConfig::MEMBERS,
    ),
];

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The object `key` (exactly as written) is a member of, if the model knows it.
fn home_of(key: &str) -> Option<&'static str> {
    HOMES
        .iter()
        .find(|(_, names)| names.contains(&key))
        .map(|(home, _)| *home)
}

/// The member of `known` that `key` most likely means: the same name in another case, or a
/// name at most two edits away.
fn likely_member(key: &str, known: &[&'static str]) -> Option<&'static str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        return Some(k);
    }
    let lower = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len() / 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, for names of a few dozen characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            row.push(substitute.min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

impl Linter {
    fn push(&mut self, code: Code, path: JsonPath, message: String, hint: String) {
        self.out.push(Diagnostic::new(code, path, message, hint));
    }

    /// CS070 for every member of `map` that `known` lacks.
    fn members(&mut self, map: &Map<String, Value>, path: &JsonPath, known: &[&'static str]) {
        let here = if path.is_root() {
            "the root object".to_owned()
        } else {
            format!("`{path}`")
        };
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let (message, hint) = if let Some(intended) = likely_member(key, known)
                .filter(|k| map.contains_key(*k) && k.eq_ignore_ascii_case(key))
            {
                // Both `Sid` and `sid`: names are case sensitive, so this is no duplicate,
                // but renaming it would make one.
                (
                    format!(
                        "`{key}` is a wrongly cased copy of `{intended}`, which {here} also has"
                    ),
                    format!(
                        "remove it: member names are case sensitive, so `{intended}` is the one read and this copy is ignored (a reader that ignored case could take either)"
                    ),
                )
            } else if let Some(home) = home_of(key).filter(|_| {
                // A wrongly cased member of this object is that member, not another object's.
                !known.iter().any(|k| k.eq_ignore_ascii_case(key))
            }) {
                // The right name in the wrong object: move it, never "rename" it to itself.
                (
                    format!("`{key}` does not belong in {here}; it belongs in {home}"),
                    format!("move `{key}` into {home}"),
                )
            } else if let Some(intended) = likely_member(key, known) {
                (
                    format!("unknown member `{key}`; did you mean `{intended}`?"),
                    format!(
                        "rename it to `{intended}`: member names are case sensitive, and a misspelt member is ignored as if it were missing"
                    ),
                )
            } else if let Some((home, intended)) = HOMES.iter().find_map(|(home, names)| {
                names
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(key))
                    .map(|n| (*home, *n))
            }) {
                // Another object's member, wrongly cased too: both fixes, in one hint.
                (
                    format!(
                        "`{key}` does not belong in {here}; it looks like `{intended}` of {home}"
                    ),
                    format!(
                        "move it into {home} as `{intended}` (member names are case sensitive)"
                    ),
                )
            } else {
                (
                    format!("unknown member `{key}` in {here}"),
                    format!(
                        "check the spelling (the members here are {}) or remove it; it is passed on unchanged",
                        list(known)
                    ),
                )
            };
            self.push(Code::UnknownMember, path.key(key), message, hint);
        }
    }

    fn missing(
        &mut self,
        code: Code,
        map: &Map<String, Value>,
        path: &JsonPath,
        key: &str,
        what: &str,
    ) {
        let hint = match map
            .keys()
            .find(|k| k.as_str() != key && k.eq_ignore_ascii_case(key))
        {
            Some(found) => {
                format!("the spec has `{found}`: rename it to `{key}` (names are case sensitive)")
            }
            None => format!("add `{key}`: {what}"),
        };
        self.push(code, path.key(key), format!("`{key}` is missing"), hint);
    }

    fn wrong_type(&mut self, path: JsonPath, expected: &str, found: &Value) {
        let message = format!(
            "`{path}` is a JSON {}; it must be {expected}",
            json_kind(found)
        );
        self.push(
            Code::WrongType,
            path,
            message,
            format!("write it as {expected}"),
        );
    }

    fn object<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &JsonPath,
        key: &str,
        required: Required,
    ) -> Option<&'a Map<String, Value>> {
        match map.get(key) {
            None => {
                if required == Required::Yes {
                    let what = match key {
                        "DomainJoinConfig" => {
                            "the domain and the gMSA (Sid, MachineAccountName, Guid, DnsTreeName, DnsName, NetBiosName); a generated spec is complete"
                        }
                        _ => {
                            "the gMSAs (GroupManagedServiceAccounts); a generated spec is complete"
                        }
                    };
                    self.missing(Code::MissingMember, map, path, key, what);
                }
                None
            }
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                self.wrong_type(path.key(key), "an object", other);
                None
            }
        }
    }

    /// A required string member: CS001/CS004 when missing, CS003 when not a string, CS002
    /// when empty. Returns it when it has content.
    fn string<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &JsonPath,
        key: &str,
        missing: Code,
        what: &str,
    ) -> Option<&'a str> {
        match map.get(key) {
            None => {
                self.missing(missing, map, path, key, what);
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                // A member whose absence is only a warning is only a warning when empty.
                let code = if missing.severity() == Severity::Error {
                    Code::EmptyMember
                } else {
                    missing
                };
                self.push(
                    code,
                    path.key(key),
                    format!("`{key}` is empty"),
                    format!("fill in {what}"),
                );
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.wrong_type(path.key(key), "a string", other);
                None
            }
        }
    }

    fn cms_plugins(&mut self, root: &Map<String, Value>, path: &JsonPath) {
        let key = "CmsPlugins";
        let at = path.key(key);
        let items = match root.get(key) {
            None => {
                self.missing(
                    Code::MissingMember,
                    root,
                    path,
                    key,
                    r#"`"CmsPlugins": ["ActiveDirectory"]`"#,
                );
                return;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.wrong_type(at, r#"an array of strings (`["ActiveDirectory"]`)"#, other);
                return;
            }
        };
        let mut found = false;
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) if s == ACTIVE_DIRECTORY_PLUGIN => found = true,
                Value::String(s) => self.push(
                    Code::UnknownCmsPlugin,
                    at.index(i),
                    format!("`{}` is not a CMS plug-in credential specs use", shown(s)),
                    if s.eq_ignore_ascii_case(ACTIVE_DIRECTORY_PLUGIN) {
                        format!("write it as `{ACTIVE_DIRECTORY_PLUGIN}` (case sensitive)")
                    } else {
                        format!(
                            "remove it; gMSA credential specs name only `{ACTIVE_DIRECTORY_PLUGIN}`"
                        )
                    },
                ),
                other => self.wrong_type(at.index(i), "a string", other),
            }
        }
        if !found {
            self.push(
                Code::NoActiveDirectoryPlugin,
                at,
                format!("`CmsPlugins` does not name `{ACTIVE_DIRECTORY_PLUGIN}`"),
                r#"write `"CmsPlugins": ["ActiveDirectory"]`"#.to_owned(),
            );
        }
    }

    fn domain_join_config(&mut self, d: &Map<String, Value>, path: &JsonPath) {
        self.members(d, path, DomainJoinConfig::MEMBERS);
        let m = Code::MissingMember;
        if let Some(sid) = self.string(
            d,
            path,
            "Sid",
            m,
            "the domain's SID (`(Get-ADDomain).DomainSID.Value`, `S-1-5-21-...`)",
        ) {
            self.sid(sid, path.key("Sid"));
        }
        if let Some(name) = self.string(
            d,
            path,
            "MachineAccountName",
            m,
            "the gMSA's account name without `$` (`WebApp01`)",
        ) {
            self.machine_account_name(name, path.key("MachineAccountName"));
        }
        if let Some(guid) = self.string(
            d,
            path,
            "Guid",
            Code::MissingGuid,
            "the domain's objectGUID (`(Get-ADDomain).ObjectGUID`); New-CredentialSpec writes it",
        ) {
            self.domain_guid(guid, path.key("Guid"));
        }
        let tree = self.string(
            d,
            path,
            "DnsTreeName",
            m,
            "the forest root's DNS name (`(Get-ADDomain).Forest`)",
        );
        let tree =
            tree.filter(|t| self.dns_name(t, path.key("DnsTreeName"), Code::InvalidDnsTreeName));
        let dns = self.string(
            d,
            path,
            "DnsName",
            m,
            "the domain's DNS name (`(Get-ADDomain).DNSRoot`)",
        );
        let dns = dns.filter(|n| self.dns_name(n, path.key("DnsName"), Code::InvalidDnsName));
        if let (Some(dns), Some(tree)) = (dns, tree) {
            let (dns_l, tree_l) = (dns.to_ascii_lowercase(), tree.to_ascii_lowercase());
            if dns_l != tree_l && !dns_l.ends_with(&format!(".{tree_l}")) {
                self.push(
                    Code::DnsNameOutsideTree,
                    path.key("DnsName"),
                    format!("`DnsName` `{}` is neither `DnsTreeName` `{}` nor a domain under it", shown(dns), shown(tree)),
                    "check both: DnsTreeName is the forest root domain, DnsName the gMSA's domain (fine only if the domain roots a second tree of the forest)".to_owned(),
                );
            }
        }
        if let Some(netbios) = self.string(
            d,
            path,
            "NetBiosName",
            m,
            "the domain's NetBIOS name (`(Get-ADDomain).NetBIOSName`, e.g. `CONTOSO`)",
        ) {
            self.netbios_name(netbios, path.key("NetBiosName"));
        }
    }

    fn sid(&mut self, sid: &str, at: JsonPath) {
        match parse_sid(sid) {
            Some(SidShape::Domain) => {}
            Some(SidShape::Account { domain }) => self.push(
                Code::AccountSid,
                at,
                format!("`{}` looks like an account SID (it has a fourth sub-authority, the RID), not a domain SID", shown(sid)),
                format!("the domain SID is required: use `{domain}` (`(Get-ADDomain).DomainSID.Value`), not the gMSA's own SID"),
            ),
            Some(SidShape::Other) => self.push(
                Code::InvalidSid,
                at,
                format!("`{}` is a SID but not a domain SID (`S-1-5-21-a-b-c`)", shown(sid)),
                "use the domain's SID (`(Get-ADDomain).DomainSID.Value`)".to_owned(),
            ),
            None => self.push(
                Code::InvalidSid,
                at,
                format!("`{}` is not a SID", shown(sid)),
                "use the domain's SID, `S-1-5-21-` and three numbers (`(Get-ADDomain).DomainSID.Value`)".to_owned(),
            ),
        }
    }

    fn domain_guid(&mut self, guid: &str, at: JsonPath) {
        if is_guid(guid) {
            return;
        }
        if let Some(inner) = guid.strip_prefix('{').and_then(|g| g.strip_suffix('}'))
            && is_guid(inner)
        {
            self.push(
                Code::BracedGuid,
                at,
                format!("`Guid` `{}` is written in braces", shown(guid)),
                format!(
                    "write it without braces, as New-CredentialSpec does: `{}`",
                    inner.to_ascii_lowercase()
                ),
            );
            return;
        }
        self.push(
            Code::InvalidGuid,
            at,
            format!("`{}` is not a GUID", shown(guid)),
            "use the domain's objectGUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hexadecimal (`(Get-ADDomain).ObjectGUID`)".to_owned(),
        );
    }

    fn machine_account_name(&mut self, name: &str, at: JsonPath) {
        let problem = account_problem(name);
        if problem.dollar {
            self.push(
                Code::AccountDollar,
                at.clone(),
                format!("`{}` ends with `$`", shown(name)),
                format!(
                    "write the account name without the `$`: `{}`",
                    shown(&problem.bare)
                ),
            );
        }
        if let Some(domain) = &problem.domain {
            self.push(
                Code::AccountWithDomain,
                at.clone(),
                format!("`{}` includes a domain (`{}`)", shown(name), shown(domain)),
                format!(
                    "write only the account name, `{}`; the domain goes in DnsName and NetBiosName",
                    shown(&problem.bare)
                ),
            );
        }
        let len = problem.bare.chars().count();
        if len > 15 {
            self.push(
                Code::AccountTooLong,
                at.clone(),
                format!("`{}` is {len} characters long; an account name has at most 15", shown(&problem.bare)),
                "use the gMSA's sAMAccountName without `$` (`(Get-ADServiceAccount NAME).SamAccountName`), which is at most 15 characters".to_owned(),
            );
        }
        if let Some(bad) = problem.invalid {
            self.push(
                Code::AccountInvalidChars,
                at,
                format!(
                    "`{}` contains {bad}, which account names cannot contain",
                    shown(name)
                ),
                "use the gMSA's sAMAccountName without `$`".to_owned(),
            );
        }
    }

    /// Reports a name that is not a DNS name; returns whether it is one.
    fn dns_name(&mut self, name: &str, at: JsonPath, code: Code) -> bool {
        let Some(problem) = dns_name_problem(name) else {
            return true;
        };
        let key = match code {
            Code::InvalidDnsTreeName => "DnsTreeName",
            _ => "DnsName",
        };
        self.push(
            code,
            at,
            format!("`{key}` `{}` is not a DNS name: {problem}", shown(name)),
            "write the fully qualified domain name, such as `contoso.com` (`Get-ADDomain` shows it)".to_owned(),
        );
        false
    }

    fn netbios_name(&mut self, name: &str, at: JsonPath) {
        let problem = netbios_problem(name);
        let len = name.chars().count();
        if len > 15 {
            self.push(
                Code::NetBiosTooLong,
                at.clone(),
                format!(
                    "`{}` is {len} characters long; a NetBIOS name has at most 15",
                    shown(name)
                ),
                "use the domain's NetBIOS name (`(Get-ADDomain).NetBIOSName`, e.g. `CONTOSO`)"
                    .to_owned(),
            );
        }
        if let Some(bad) = problem.invalid {
            self.push(
                Code::NetBiosInvalidChars,
                at.clone(),
                format!(
                    "`{}` contains {bad}, which NetBIOS names cannot contain",
                    shown(name)
                ),
                "use the domain's NetBIOS name (`(Get-ADDomain).NetBIOSName`, e.g. `CONTOSO`)"
                    .to_owned(),
            );
        }
        if problem.dotted {
            self.push(
                Code::NetBiosLooksLikeDns,
                at,
                format!("`{}` contains a dot and looks like a DNS name", shown(name)),
                "NetBiosName is the short domain name (`(Get-ADDomain).NetBIOSName`, e.g. `CONTOSO`); the DNS name goes in DnsName".to_owned(),
            );
        }
    }

    fn active_directory_config(
        &mut self,
        ad: &Map<String, Value>,
        path: &JsonPath,
        domain: Option<&Map<String, Value>>,
    ) {
        self.members(ad, path, ActiveDirectoryConfig::MEMBERS);
        let key = "GroupManagedServiceAccounts";
        let at = path.key(key);
        match ad.get(key) {
            None => self.missing(
                Code::MissingMember,
                ad,
                path,
                key,
                "the gMSA under each scope: `[{\"Name\": ACCOUNT, \"Scope\": DNSNAME}, {\"Name\": ACCOUNT, \"Scope\": NETBIOSNAME}]`",
            ),
            Some(Value::Array(items)) => self.accounts(items, &at, domain),
            Some(other) => self.wrong_type(at, "an array of {Name, Scope} objects", other),
        }
        if let Some(host) = self.object(ad, path, "HostAccountConfig", Required::No) {
            self.host_account_config(host, &path.key("HostAccountConfig"));
        }
    }

    fn accounts(&mut self, items: &[Value], at: &JsonPath, domain: Option<&Map<String, Value>>) {
        let text = |key: &str| {
            domain
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        };
        let (account, dns, netbios) = (
            text("MachineAccountName"),
            text("DnsName"),
            text("NetBiosName"),
        );
        // An entry for the account as written or for its bare name counts as the primary
        // one: a `$` or a domain in MachineAccountName is reported on its own.
        let bare = account.map(|a| account_problem(a).bare);
        let is_primary = |name: &str| {
            account.is_some_and(|a| name.eq_ignore_ascii_case(a))
                || bare
                    .as_deref()
                    .is_some_and(|b| name.eq_ignore_ascii_case(b))
        };
        if items.is_empty() {
            self.push(
                Code::NoAccounts,
                at.clone(),
                "`GroupManagedServiceAccounts` is empty".to_owned(),
                format!(
                    "add the gMSA under both scopes: `{{\"Name\": \"{0}\", \"Scope\": \"{1}\"}}, {{\"Name\": \"{0}\", \"Scope\": \"{2}\"}}`",
                    shown(account.unwrap_or("ACCOUNT")),
                    shown(dns.unwrap_or("DNSNAME")),
                    shown(netbios.unwrap_or("NETBIOSNAME")),
                ),
            );
            return;
        }
        let mut primary_scopes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let entry_at = at.index(i);
            let Value::Object(entry) = item else {
                self.wrong_type(entry_at, "an object with Name and Scope", item);
                continue;
            };
            self.members(entry, &entry_at, GroupManagedServiceAccount::MEMBERS);
            let field = |l: &mut Self, key: &str, what: &str| match entry.get(key) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
                Some(Value::String(_)) | None => {
                    // Another spelling of the member (`name` for `Name`), never the member
                    // itself: an empty `Name` is to be filled in, not renamed to `Name`.
                    let variant = entry
                        .keys()
                        .find(|k| k.as_str() != key && k.eq_ignore_ascii_case(key));
                    let hint = match (variant, entry.contains_key(key)) {
                        (Some(found), false) => format!(
                            "the entry has `{found}`: rename it to `{key}` (names are case sensitive)"
                        ),
                        (Some(found), true) => format!(
                            "fill in `{key}` ({what}) and remove `{found}`: names are case sensitive, so `{found}` is ignored"
                        ),
                        (None, true) => format!("fill in `{key}`: {what}"),
                        (None, false) => format!("give every entry a `{key}`: {what}"),
                    };
                    let state = if entry.contains_key(key) {
                        "an empty"
                    } else {
                        "no"
                    };
                    l.push(
                        Code::IncompleteAccount,
                        entry_at.key(key),
                        format!("entry {i} of `GroupManagedServiceAccounts` has {state} `{key}`"),
                        hint,
                    );
                    None
                }
                Some(other) => {
                    l.wrong_type(entry_at.key(key), "a string", other);
                    None
                }
            };
            let name = field(self, "Name", "the gMSA's account name");
            let scope = field(
                self,
                "Scope",
                "the DNS or NetBIOS name of the account's domain",
            );
            if let Some(name) = name
                && is_primary(name)
            {
                primary_scopes.extend(scope);
            }
        }
        let Some(account) = account else {
            return;
        };
        if !items.iter().any(|i| {
            i.get("Name")
                .and_then(Value::as_str)
                .is_some_and(is_primary)
        }) {
            self.push(
                Code::NoPrimaryAccount,
                at.clone(),
                format!("no entry of `GroupManagedServiceAccounts` names `{}`, the MachineAccountName", shown(account)),
                format!(
                    "add `{{\"Name\": \"{0}\", \"Scope\": \"{1}\"}}` and `{{\"Name\": \"{0}\", \"Scope\": \"{2}\"}}`, or correct MachineAccountName",
                    shown(account),
                    shown(dns.unwrap_or("DNSNAME")),
                    shown(netbios.unwrap_or("NETBIOSNAME")),
                ),
            );
            return;
        }
        for (scope, which) in [(dns, "DnsName"), (netbios, "NetBiosName")] {
            let Some(scope) = scope else { continue };
            if !primary_scopes.iter().any(|s| s.eq_ignore_ascii_case(scope)) {
                self.push(
                    Code::MissingScope,
                    at.clone(),
                    format!("`{}` has no entry with Scope `{}` (the {which})", shown(account), shown(scope)),
                    format!(
                        "add `{{\"Name\": \"{}\", \"Scope\": \"{}\"}}`; New-CredentialSpec writes the account under both the DNS and the NetBIOS name",
                        shown(account),
                        shown(scope)
                    ),
                );
            }
        }
    }

    fn host_account_config(&mut self, h: &Map<String, Value>, path: &JsonPath) {
        self.members(h, path, HostAccountConfig::MEMBERS);
        match h.get("PortableCcgVersion") {
            None => self.missing(
                Code::MissingMember,
                h,
                path,
                "PortableCcgVersion",
                r#"`"PortableCcgVersion": "1"`"#,
            ),
            Some(Value::String(v)) if v == PORTABLE_CCG_VERSION => {}
            Some(v) => {
                let (message, hint) = match v {
                    Value::Number(n) if n.as_u64() == Some(1) => (
                        "`PortableCcgVersion` is the number 1, not the string \"1\"".to_owned(),
                        r#"write it as a string: `"PortableCcgVersion": "1"` (in YAML, quote it)"#
                            .to_owned(),
                    ),
                    Value::String(s) => (
                        format!(
                            "`PortableCcgVersion` is `{}`; the only version is \"1\"",
                            shown(s)
                        ),
                        r#"write `"PortableCcgVersion": "1"`"#.to_owned(),
                    ),
                    other => (
                        format!(
                            "`PortableCcgVersion` is a JSON {}; the only version is the string \"1\"",
                            json_kind(other)
                        ),
                        r#"write `"PortableCcgVersion": "1"`"#.to_owned(),
                    ),
                };
                self.push(
                    Code::PortableCcgVersion,
                    path.key("PortableCcgVersion"),
                    message,
                    hint,
                );
            }
        }
        // Whose input PluginInput is: a known plug-in, an unknown one (`None`), or nothing to
        // go by (no usable PluginGUID: the input is left alone).
        let mut plugin: Option<Option<KnownPlugin>> = None;
        if let Some(guid) = self.string(h, path, "PluginGUID", Code::MissingMember, "the CCG plug-in's CLSID in braces (`{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`), from the plug-in's documentation") {
            plugin = self.plugin_guid(guid, path.key("PluginGUID"));
        }
        // PluginInput may be secret: its shape is checked for the plug-ins that document it,
        // and no message quotes any of it.
        let key = "PluginInput";
        match h.get(key) {
            None => self.missing(
                Code::MissingMember,
                h,
                path,
                key,
                "what the plug-in reads (its documentation says what; it may be a secret)",
            ),
            Some(Value::Null) => self.push(
                Code::EmptyMember,
                path.key(key),
                "`PluginInput` is null".to_owned(),
                "fill in what the plug-in reads (its documentation says what)".to_owned(),
            ),
            Some(Value::String(s)) if s.trim().is_empty() => self.push(
                Code::EmptyMember,
                path.key(key),
                "`PluginInput` is empty".to_owned(),
                "fill in what the plug-in reads (its documentation says what)".to_owned(),
            ),
            Some(input) => {
                if let Some(plugin) = plugin {
                    for f in plugin_input::check(plugin, input) {
                        self.push(f.code, path.key(key), f.message, f.hint);
                    }
                }
            }
        }
    }

    /// Checks `PluginGUID`; returns whose input `PluginInput` is: `Some(Some(plugin))` for a
    /// known plug-in (also when only the braces are missing), `Some(None)` for a well-formed
    /// GUID of a plug-in credguard does not know (CS080), `None` when the GUID is unusable
    /// (the placeholder, a near miss of a known one, not a GUID).
    fn plugin_guid(&mut self, guid: &str, at: JsonPath) -> Option<Option<KnownPlugin>> {
        if guid.eq_ignore_ascii_case(DOCS_PLACEHOLDER_PLUGIN_GUID) {
            self.push(
                Code::PlaceholderPluginGuid,
                at,
                format!("`{guid}` is the placeholder from Microsoft's documentation, not a real plug-in GUID (G, P and J are not hexadecimal digits)"),
                "use the CLSID your CCG plug-in documents, for example {859E1386-BDB4-49E8-85C7-3070B13920E1} for AWS ECS domainless gMSA or {CCC2A336-D7F3-4818-A213-272B7924213E} for Azure Key Vault".to_owned(),
            );
            return None;
        }
        let inner = guid.strip_prefix('{').and_then(|g| g.strip_suffix('}'));
        match inner {
            Some(inner) if is_guid(inner) => {
                if let Some(known) = KnownPlugin::by_guid(guid) {
                    return Some(Some(known));
                }
                if let Some((plugin, _)) = nearest_known_plugin(guid) {
                    self.push(
                        Code::PluginGuidTypo,
                        at,
                        format!("`{}` is not a known plug-in but differs from {} in one or two digits", shown(guid), plugin.description()),
                        format!("if you meant that plug-in, write `{}`; a wrong GUID makes CCG fail to load the plug-in", plugin.guid),
                    );
                    return None;
                }
                self.push(
                    Code::UnknownPlugin,
                    at,
                    format!("`{}` is not a plug-in credguard knows, so its PluginInput is not checked", shown(guid)),
                    "nothing to fix for an in-house or newer plug-in: make sure each host has it registered under `HKLM\\SYSTEM\\CurrentControlSet\\Control\\CCG\\COMClasses\\<PluginGUID>` (CCG reads no other key) and that PluginInput is what its documentation asks for".to_owned(),
                );
                Some(None)
            }
            _ if is_guid(guid) => {
                let braced = format!("{{{guid}}}");
                let named = KnownPlugin::by_guid(&braced)
                    .map(|p| format!(" ({})", p.name))
                    .unwrap_or_default();
                self.push(
                    Code::InvalidPluginGuid,
                    at,
                    format!("`{}` is not in braces", shown(guid)),
                    format!("write `{braced}`{named}; CCG reads PluginGUID as a braced CLSID"),
                );
                // The plug-in meant is plain: check its input too.
                KnownPlugin::by_guid(&braced).map(Some)
            }
            _ => {
                self.push(
                Code::InvalidPluginGuid,
                at,
                format!("`{}` is not a GUID in braces", shown(guid)),
                "write the plug-in's CLSID as `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` in hexadecimal, as its documentation gives it".to_owned(),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(spec: &str) -> Vec<(&'static str, String)> {
        let v: Map<String, Value> = serde_json::from_str(spec).unwrap();
        lint(&v)
            .into_iter()
            .map(|d| (d.code.as_str(), d.path.to_string()))
            .collect()
    }

    fn good() -> Value {
        serde_json::json!({
            "CmsPlugins": ["ActiveDirectory"],
            "DomainJoinConfig": {
                "Sid": "S-1-5-21-702590844-1001920913-2680819671",
                "MachineAccountName": "WebApp01",
                "Guid": "244818ae-87ca-4fcd-92ec-e79e5252348a",
                "DnsTreeName": "contoso.com",
                "DnsName": "contoso.com",
                "NetBiosName": "CONTOSO"
            },
            "ActiveDirectoryConfig": {
                "GroupManagedServiceAccounts": [
                    {"Name": "WebApp01", "Scope": "contoso.com"},
                    {"Name": "WebApp01", "Scope": "CONTOSO"}
                ]
            }
        })
    }

    fn with(edit: impl FnOnce(&mut Value)) -> String {
        let mut v = good();
        edit(&mut v);
        v.to_string()
    }

    #[test]
    fn a_good_spec_is_clean() {
        assert_eq!(codes(&good().to_string()), vec![]);
    }

    #[test]
    fn every_code_is_unique_and_has_its_severity() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code}");
            assert!(code.as_str().starts_with("CS") && code.as_str().len() == 5);
        }
    }

    #[test]
    fn account_sid_gets_the_domain_sid_hint() {
        let spec = with(|v| v["DomainJoinConfig"]["Sid"] = "S-1-5-21-1-2-3-1105".into());
        let v: Map<String, Value> = serde_json::from_str(&spec).unwrap();
        let d = lint(&v);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::AccountSid);
        assert_eq!(d[0].path.to_string(), "DomainJoinConfig.Sid");
        assert!(d[0].message.contains("account SID"), "{}", d[0].message);
        assert!(
            d[0].hint
                .contains("domain SID is required: use `S-1-5-21-1-2-3`"),
            "{}",
            d[0].hint
        );
    }

    #[test]
    fn missing_members_and_types() {
        let spec = with(|v| {
            let dj = v["DomainJoinConfig"].as_object_mut().unwrap();
            dj.remove("Guid");
            dj.remove("DnsName");
            dj.insert("Sid".into(), Value::from(5));
            dj.insert("NetBiosName".into(), "  ".into());
        });
        assert_eq!(
            codes(&spec),
            vec![
                ("CS003", "DomainJoinConfig.Sid".to_owned()),
                ("CS004", "DomainJoinConfig.Guid".to_owned()),
                ("CS001", "DomainJoinConfig.DnsName".to_owned()),
                ("CS002", "DomainJoinConfig.NetBiosName".to_owned()),
            ]
        );
        let spec = with(|v| v["DomainJoinConfig"]["Guid"] = "".into());
        assert_eq!(
            codes(&spec),
            vec![("CS004", "DomainJoinConfig.Guid".to_owned())]
        );
        assert_eq!(
            codes("{}"),
            vec![
                ("CS001", "CmsPlugins".to_owned()),
                ("CS001", "DomainJoinConfig".to_owned()),
                ("CS001", "ActiveDirectoryConfig".to_owned()),
            ]
        );
    }

    #[test]
    fn wrongly_cased_member_is_named_in_both_diagnostics() {
        let spec = with(|v| {
            let dj = v["DomainJoinConfig"].as_object_mut().unwrap();
            let sid = dj.remove("Sid").unwrap();
            dj.insert("SID".into(), sid);
        });
        let v: Map<String, Value> = serde_json::from_str(&spec).unwrap();
        let d = lint(&v);
        assert_eq!(d[0].code, Code::UnknownMember);
        assert!(
            d[0].message.contains("did you mean `Sid`?"),
            "{}",
            d[0].message
        );
        assert_eq!(d[1].code, Code::MissingMember);
        assert!(d[1].hint.contains("the spec has `SID`"), "{}", d[1].hint);
        let spec = with(|v| {
            let root = v.as_object_mut().unwrap();
            let dj = root.remove("DomainJoinConfig").unwrap();
            root.insert("DomainJoinConfiguration".into(), dj);
        });
        let v: Map<String, Value> = serde_json::from_str(&spec).unwrap();
        assert!(
            lint(&v)[0]
                .message
                .contains("unknown member `DomainJoinConfiguration`")
        );
        let spec = with(|v| v["Sid"] = "x".into());
        let v: Map<String, Value> = serde_json::from_str(&spec).unwrap();
        assert!(
            lint(&v)[0]
                .message
                .contains("it belongs in DomainJoinConfig")
        );
    }

    #[test]
    fn machine_account_mistakes() {
        for (name, want) in [
            ("WebApp01$", vec!["CS020"]),
            ("CONTOSO\\WebApp01", vec!["CS021"]),
            ("WebApp01@contoso.com", vec!["CS021"]),
            ("webapp01.contoso.com", vec!["CS021"]),
            ("WebApplication0001", vec!["CS022"]),
            (
                "CONTOSO\\WebApplication0001$",
                vec!["CS020", "CS021", "CS022"],
            ),
            ("Web*App", vec!["CS023"]),
        ] {
            let spec = with(|v| {
                v["DomainJoinConfig"]["MachineAccountName"] = name.into();
                v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][0]["Name"] = name.into();
                v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][1]["Name"] = name.into();
            });
            let got: Vec<_> = codes(&spec).into_iter().map(|(c, _)| c).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn domain_name_mistakes() {
        for (edit, want) in [
            (("DnsName", "contoso..com"), vec!["CS030"]),
            (("DnsName", "fabrikam.com"), vec!["CS032"]),
            (("DnsName", "emea.contoso.com"), vec![]),
            (("DnsTreeName", "contoso_com"), vec!["CS031"]),
            (("NetBiosName", "CONTOSOCORPORATION"), vec!["CS033"]),
            (("NetBiosName", "CON/TOSO"), vec!["CS034"]),
            (("NetBiosName", "contoso.com"), vec!["CS035"]),
        ] {
            let spec = with(|v| {
                v["DomainJoinConfig"][edit.0] = edit.1.into();
                if edit.0 == "NetBiosName" || edit.0 == "DnsName" {
                    v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"] = serde_json::json!([
                        {"Name": "WebApp01", "Scope": v["DomainJoinConfig"]["DnsName"]},
                        {"Name": "WebApp01", "Scope": v["DomainJoinConfig"]["NetBiosName"]}
                    ]);
                }
            });
            let got: Vec<_> = codes(&spec).into_iter().map(|(c, _)| c).collect();
            assert_eq!(got, want, "{edit:?}");
        }
    }

    #[test]
    fn account_list_mistakes() {
        let spec = with(|v| {
            v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"] = serde_json::json!([]);
        });
        assert_eq!(
            codes(&spec),
            vec![(
                "CS050",
                "ActiveDirectoryConfig.GroupManagedServiceAccounts".to_owned()
            )]
        );
        let spec = with(|v| {
            v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"] =
                serde_json::json!([{"Name": "Other", "Scope": "contoso.com"}]);
        });
        assert_eq!(
            codes(&spec),
            vec![(
                "CS051",
                "ActiveDirectoryConfig.GroupManagedServiceAccounts".to_owned()
            )]
        );
        let spec = with(|v| {
            v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"] = serde_json::json!([{"Name": "webapp01", "Scope": "contoso.com"}, {"Name": "", "Scope": "CONTOSO"}, {"Name": "x"}]);
        });
        assert_eq!(
            codes(&spec),
            vec![
                (
                    "CS053",
                    "ActiveDirectoryConfig.GroupManagedServiceAccounts[1].Name".to_owned()
                ),
                (
                    "CS053",
                    "ActiveDirectoryConfig.GroupManagedServiceAccounts[2].Scope".to_owned()
                ),
                (
                    "CS052",
                    "ActiveDirectoryConfig.GroupManagedServiceAccounts".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn cms_plugins_mistakes() {
        let spec = with(|v| v["CmsPlugins"] = serde_json::json!(["activedirectory"]));
        assert_eq!(
            codes(&spec),
            vec![
                ("CS041", "CmsPlugins[0]".to_owned()),
                ("CS040", "CmsPlugins".to_owned())
            ]
        );
        let spec = with(|v| v["CmsPlugins"] = "ActiveDirectory".into());
        assert_eq!(codes(&spec), vec![("CS003", "CmsPlugins".to_owned())]);
    }

    #[test]
    fn host_account_config_mistakes() {
        let host = |h: Value| with(|v| v["ActiveDirectoryConfig"]["HostAccountConfig"] = h);
        let ok = serde_json::json!({
            "PortableCcgVersion": "1",
            "PluginGUID": "{859E1386-BDB4-49E8-85C7-3070B13920E1}",
            "PluginInput": "{\"credentialArn\": \"arn:aws:secretsmanager:us-west-2:123456789012:secret:s3cr3t\"}"
        });
        assert_eq!(codes(&host(ok.clone())), vec![]);
        let mut placeholder = ok.clone();
        placeholder["PluginGUID"] = "{GDMA0342-266A-4D1P-831J-20990E82944F}".into();
        let v: Map<String, Value> = serde_json::from_str(&host(placeholder)).unwrap();
        let d = lint(&v);
        assert_eq!(d[0].code, Code::PlaceholderPluginGuid);
        assert!(d[0].message.contains("placeholder"));
        let mut bare = ok.clone();
        bare["PluginGUID"] = "859E1386-BDB4-49E8-85C7-3070B13920E1".into();
        let v: Map<String, Value> = serde_json::from_str(&host(bare)).unwrap();
        let d = lint(&v);
        assert_eq!(d[0].code, Code::InvalidPluginGuid);
        assert!(d[0].hint.contains("AWS"), "{}", d[0].hint);
        let mut typo = ok.clone();
        typo["PluginGUID"] = "{859E1386-BDB4-49E8-85C7-3070B13920E7}".into();
        assert_eq!(
            codes(&host(typo)),
            vec![(
                "CS064",
                "ActiveDirectoryConfig.HostAccountConfig.PluginGUID".to_owned()
            )]
        );
        let mut number = ok.clone();
        number["PortableCcgVersion"] = 1.into();
        assert_eq!(
            codes(&host(number)),
            vec![(
                "CS061",
                "ActiveDirectoryConfig.HostAccountConfig.PortableCcgVersion".to_owned()
            )]
        );
        assert_eq!(
            codes(&host(serde_json::json!({}))),
            vec![
                (
                    "CS001",
                    "ActiveDirectoryConfig.HostAccountConfig.PortableCcgVersion".to_owned()
                ),
                (
                    "CS001",
                    "ActiveDirectoryConfig.HostAccountConfig.PluginGUID".to_owned()
                ),
                (
                    "CS001",
                    "ActiveDirectoryConfig.HostAccountConfig.PluginInput".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn diagnostics_never_quote_plugin_input() {
        let secret = "s3cr3t-Pa55w0rd";
        for input in [
            Value::from(secret),
            Value::from(format!("{{\"credentialArn\": \"{secret}\"}}")),
            serde_json::json!({"password": secret, "PluginGUID": secret}),
        ] {
            let spec = with(|v| {
                v["ActiveDirectoryConfig"]["HostAccountConfig"] = serde_json::json!({
                    "PortableCcgVersion": 2,
                    "PluginGUID": "{GDMA0342-266A-4D1P-831J-20990E82944F}",
                    "PluginInput": input,
                    "pluginInput": input,
                });
            });
            let v: Map<String, Value> = serde_json::from_str(&spec).unwrap();
            let d = lint(&v);
            assert!(!d.is_empty());
            let all = serde_json::to_string(&d).unwrap() + &format!("{d:?}");
            assert!(!all.contains(secret), "{all}");
        }
    }
}
