//! A `ValidatingAdmissionPolicy` generated from the credential-spec linter: every lint code
//! that CEL can express over a `GMSACredentialSpec` as the API server hands it to policies
//! (pruned to the CRD schema, see [`crate::crd`]) becomes a validation whose message starts
//! with the code.
//!
//! [`decision`] is the table: for each [`Code`] either the CEL [`Check`]s that express it
//! or why the policy does not cover it. It matches on every code the linter has; a code added
//! to the linter without a decision here makes `every_code_has_a_decision` fail.
//!
//! The expressions use standard CEL only (`has`, `all`, `exists`, `size`, `matches`,
//! `contains`, `startsWith`, `endsWith`, `?:`), with RE2 regular expressions written with
//! ASCII classes (`[0-9]`, never `\d`, whose meaning differs between engines), plus three
//! functions of the Kubernetes `strings` extension where a code needs ASCII case-insensitive
//! comparison or the account name without its domain: `lowerAscii` (CS032, CS051, CS052) and
//! `indexOf` / `substring` (CS051, CS052). Every member access is guarded by `has()`, so no
//! expression fails on a missing member (the API server would refuse the request).
//!
//! Two policies come out: `NAME` holds the error codes (bound with `Deny`), `NAME-warnings`
//! the warning codes (bound with `Warn`); [`PolicyOptions::warn_only`] binds both with `Warn`.

use std::fmt;

use credguard::credspec::{Code, Severity};
use serde_json::{Value, json};

use crate::crd;

/// One validation of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The lint code it stands for.
    pub code: Code,
    /// The member it is about (`DomainJoinConfig.Sid`).
    pub path: &'static str,
    /// The CEL expression: true when the object passes.
    pub expression: String,
}

impl Check {
    /// The validation's message: `CS011 DomainJoinConfig.Sid: <the code's summary>`. It
    /// quotes no value of the object (no PluginInput).
    #[must_use]
    pub fn message(&self) -> String {
        format!("{} {}: {}", self.code, self.path, self.code.summary())
    }
}

/// What the policy does with a lint code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Expressed by these checks.
    Cel(Vec<Check>),
    /// Not in the policy, and why (the offline check and the webhook run the linter itself
    /// and report it).
    Outside(&'static str),
}

const BLANK: &str = r"^[\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]*$";
const U32: &str = "(?:[0-9]{1,9}|[0-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-5])";
const HEX: &str = "[0-9A-Fa-f]";
const CONTROL: &str = r"\x00-\x1F\x7F-\x{9F}";
const ACCOUNT_BAD: &str = r#""/\\\[\]:;|=,+*?<>"#;
const NETBIOS_BAD: &str = r#"\\/:*?"<>|"#;
const DNS: &str = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$";
const ALL_DIGITS: &str = r"^[0-9]+(?:\.[0-9]+)*$";

/// A CEL string literal holding `s` (backslashes and quotes escaped).
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn guid_regex() -> String {
    format!("{HEX}{{8}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{12}}")
}

/// A regex matching `literal` exactly, ASCII letters in either case (as
/// `eq_ignore_ascii_case`, not Unicode case folding).
fn ascii_ci(literal: &str) -> String {
    let mut out = String::from("^");
    for c in literal.chars() {
        if c.is_ascii_alphabetic() {
            out.push('[');
            out.push(c.to_ascii_uppercase());
            out.push(c.to_ascii_lowercase());
            out.push(']');
        } else if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out.push('$');
    out
}

/// `object.credspec.A.B`.
fn at(path: &[&str]) -> String {
    let mut s = String::from("object.credspec");
    for p in path {
        s.push('.');
        s.push_str(p);
    }
    s
}

/// `has(...)` of `object.credspec` and of every prefix of `path`.
fn has(path: &[&str]) -> String {
    let mut parts = vec!["has(object.credspec)".to_owned()];
    for i in 1..=path.len() {
        parts.push(format!("has({})", at(&path[..i])));
    }
    format!("({})", parts.join(" && "))
}

/// The string member at `path` is there and not blank (what the linter reads as filled in).
fn filled(path: &[&str]) -> String {
    format!("({} && !{}.matches({}))", has(path), at(path), lit(BLANK))
}

const DJC: &str = "DomainJoinConfig";
const ADC: &str = "ActiveDirectoryConfig";
const HAC: &str = "HostAccountConfig";
const GMSA: &str = "GroupManagedServiceAccounts";

fn check(code: Code, path: &'static str, expression: String) -> Check {
    Check {
        code,
        path,
        expression,
    }
}

/// `when ? test : true`, parenthesised.
fn only_if(when: &str, test: &str) -> String {
    format!("(!{when} || ({test}))")
}

/// A check on a filled string member.
fn on_string(code: Code, p: &'static str, path: &[&str], test: impl Fn(&str) -> String) -> Check {
    check(code, p, only_if(&filled(path), &test(&at(path))))
}

/// `name` (an expression), split as the linter splits `MachineAccountName`: the regex to
/// test in each of the four cases (after the first `\`, before the first `@`, before the
/// first `.`, the whole name).
fn by_account_form(name: &str, bs: &str, at_sign: &str, dot: &str, whole: &str) -> String {
    format!(
        "({name}.contains({bsl}) ? {name}.matches({}) : {name}.contains(\"@\") ? {name}.matches({}) : {name}.contains(\".\") ? {name}.matches({}) : {name}.matches({}))",
        lit(bs),
        lit(at_sign),
        lit(dot),
        lit(whole),
        bsl = lit("\\"),
    )
}

/// The part of the (lower-cased) account expression `a` the linter keeps as the account:
/// after the first `\`, else before the first `@`, else before the first `.`.
fn account_rest(a: &str) -> String {
    format!(
        "({a}.contains({bs}) ? {a}.substring({a}.indexOf({bs}) + 1) : {a}.contains(\"@\") ? {a}.substring(0, {a}.indexOf(\"@\")) : {a}.contains(\".\") ? {a}.substring(0, {a}.indexOf(\".\")) : {a})",
        bs = lit("\\"),
    )
}

/// Whether the entry name expression `n` names the primary account (MachineAccountName as
/// written, or without its domain and `$`), ignoring ASCII case.
fn is_primary(n: &str) -> String {
    let a = format!("{}.lowerAscii()", at(&[DJC, "MachineAccountName"]));
    let n = format!("{n}.lowerAscii()");
    let rest = account_rest(&a);
    format!(
        "({n} == {a} || (!{n}.endsWith(\"$\") && {rest}.startsWith({n}) && {rest}.substring(size({n})).matches({})))",
        lit(r"^\$*$")
    )
}

/// Whether the policy expresses `code`, and how. `None` only for a code added to the linter
/// after this table: a test fails on it.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn decision(code: Code) -> Option<Decision> {
    use Decision::{Cel, Outside};
    let d = match code {
        Code::MissingMember => {
            let mut v = Vec::new();
            for (p, m) in [
                ("CmsPlugins", "CmsPlugins"),
                ("DomainJoinConfig", DJC),
                ("ActiveDirectoryConfig", ADC),
            ] {
                v.push(check(code, p, has(&[m])));
            }
            for (p, m) in [
                ("DomainJoinConfig.Sid", "Sid"),
                ("DomainJoinConfig.MachineAccountName", "MachineAccountName"),
                ("DomainJoinConfig.DnsTreeName", "DnsTreeName"),
                ("DomainJoinConfig.DnsName", "DnsName"),
                ("DomainJoinConfig.NetBiosName", "NetBiosName"),
            ] {
                v.push(check(code, p, only_if(&has(&[DJC]), &has(&[DJC, m]))));
            }
            v.push(check(
                code,
                "ActiveDirectoryConfig.GroupManagedServiceAccounts",
                only_if(&has(&[ADC]), &has(&[ADC, GMSA])),
            ));
            for (p, m) in [
                (
                    "ActiveDirectoryConfig.HostAccountConfig.PortableCcgVersion",
                    "PortableCcgVersion",
                ),
                (
                    "ActiveDirectoryConfig.HostAccountConfig.PluginGUID",
                    "PluginGUID",
                ),
                (
                    "ActiveDirectoryConfig.HostAccountConfig.PluginInput",
                    "PluginInput",
                ),
            ] {
                v.push(check(
                    code,
                    p,
                    only_if(&has(&[ADC, HAC]), &has(&[ADC, HAC, m])),
                ));
            }
            Cel(v)
        }
        Code::EmptyMember => {
            let mut v = Vec::new();
            for (p, path) in [
                ("DomainJoinConfig.Sid", &[DJC, "Sid"][..]),
                (
                    "DomainJoinConfig.MachineAccountName",
                    &[DJC, "MachineAccountName"],
                ),
                ("DomainJoinConfig.DnsTreeName", &[DJC, "DnsTreeName"]),
                ("DomainJoinConfig.DnsName", &[DJC, "DnsName"]),
                ("DomainJoinConfig.NetBiosName", &[DJC, "NetBiosName"]),
                (
                    "ActiveDirectoryConfig.HostAccountConfig.PluginGUID",
                    &[ADC, HAC, "PluginGUID"],
                ),
                (
                    "ActiveDirectoryConfig.HostAccountConfig.PluginInput",
                    &[ADC, HAC, "PluginInput"],
                ),
            ] {
                v.push(check(
                    code,
                    p,
                    only_if(
                        &has(path),
                        &format!("!{}.matches({})", at(path), lit(BLANK)),
                    ),
                ));
            }
            Cel(v)
        }
        Code::WrongType => Outside(
            "the API server refuses a member of the wrong type (422, schema validation) before any admission policy runs: the CRD declares every member's type",
        ),
        Code::MissingGuid => Cel(vec![check(
            code,
            "DomainJoinConfig.Guid",
            only_if(&has(&[DJC]), &filled(&[DJC, "Guid"])),
        )]),
        Code::InvalidSid => Cel(vec![on_string(
            code,
            "DomainJoinConfig.Sid",
            &[DJC, "Sid"],
            |s| {
                format!(
                    "{s}.matches({}) || {s}.matches({})",
                    lit(&format!("^[Ss]-1-5-21-{U32}-{U32}-{U32}$")),
                    lit(&format!("^[Ss]-1-5-21-{U32}-{U32}-{U32}-{U32}$"))
                )
            },
        )]),
        Code::AccountSid => Cel(vec![on_string(
            code,
            "DomainJoinConfig.Sid",
            &[DJC, "Sid"],
            |s| {
                format!(
                    "!{s}.matches({})",
                    lit(&format!("^[Ss]-1-5-21-{U32}-{U32}-{U32}-{U32}$"))
                )
            },
        )]),
        Code::InvalidGuid => Cel(vec![on_string(
            code,
            "DomainJoinConfig.Guid",
            &[DJC, "Guid"],
            |s| {
                let g = guid_regex();
                format!(
                    "{s}.matches({}) || {s}.matches({})",
                    lit(&format!("^{g}$")),
                    lit(&format!(r"^\{{{g}\}}$"))
                )
            },
        )]),
        Code::BracedGuid => Cel(vec![on_string(
            code,
            "DomainJoinConfig.Guid",
            &[DJC, "Guid"],
            |s| {
                format!(
                    "!{s}.matches({})",
                    lit(&format!(r"^\{{{}\}}$", guid_regex()))
                )
            },
        )]),
        Code::AccountDollar => Cel(vec![on_string(
            code,
            "DomainJoinConfig.MachineAccountName",
            &[DJC, "MachineAccountName"],
            |s| {
                format!(
                    "!{}",
                    by_account_form(s, r"\$$", r"^[^@]*\$@", r"^[^.]*\$\.", r"\$$")
                )
            },
        )]),
        Code::AccountWithDomain => Cel(vec![on_string(
            code,
            "DomainJoinConfig.MachineAccountName",
            &[DJC, "MachineAccountName"],
            |s| {
                format!(
                    "!({s}.contains({}) || {s}.contains(\"@\") || {s}.contains(\".\"))",
                    lit("\\")
                )
            },
        )]),
        Code::AccountTooLong => Cel(vec![on_string(
            code,
            "DomainJoinConfig.MachineAccountName",
            &[DJC, "MachineAccountName"],
            |s| {
                format!(
                    "!{}",
                    by_account_form(
                        s,
                        r"(?s)^[^\\]*\\.{15,}[^$]\$*$",
                        r"^[^@]{15,}[^@$]\$*@",
                        r"^[^.]{15,}[^.$]\$*\.",
                        r"(?s)^.{15,}[^$]\$*$",
                    )
                )
            },
        )]),
        Code::AccountInvalidChars => Cel(vec![on_string(
            code,
            "DomainJoinConfig.MachineAccountName",
            &[DJC, "MachineAccountName"],
            |s| {
                let bad = format!("[{CONTROL}{ACCOUNT_BAD}@]");
                let bad_no_at = format!("[{CONTROL}{ACCOUNT_BAD}]");
                format!(
                    "!{}",
                    by_account_form(
                        s,
                        &format!(r"(?s)^[^\\]*\\.*{bad}"),
                        &format!("^[^@]*{bad_no_at}"),
                        &format!("^[^.]*{bad}"),
                        &bad,
                    )
                )
            },
        )]),
        Code::InvalidDnsName => Cel(vec![on_string(
            code,
            "DomainJoinConfig.DnsName",
            &[DJC, "DnsName"],
            is_dns,
        )]),
        Code::InvalidDnsTreeName => Cel(vec![on_string(
            code,
            "DomainJoinConfig.DnsTreeName",
            &[DJC, "DnsTreeName"],
            is_dns,
        )]),
        Code::DnsNameOutsideTree => {
            let (dns, tree) = (at(&[DJC, "DnsName"]), at(&[DJC, "DnsTreeName"]));
            let both = format!(
                "({} && {} && {} && {})",
                filled(&[DJC, "DnsName"]),
                filled(&[DJC, "DnsTreeName"]),
                is_dns(&dns),
                is_dns(&tree)
            );
            Cel(vec![check(
                code,
                "DomainJoinConfig.DnsName",
                only_if(
                    &both,
                    &format!(
                        "{dns}.lowerAscii() == {tree}.lowerAscii() || {dns}.lowerAscii().endsWith(\".\" + {tree}.lowerAscii())"
                    ),
                ),
            )])
        }
        Code::NetBiosTooLong => Cel(vec![on_string(
            code,
            "DomainJoinConfig.NetBiosName",
            &[DJC, "NetBiosName"],
            |s| format!("size({s}) <= 15"),
        )]),
        Code::NetBiosInvalidChars => Cel(vec![on_string(
            code,
            "DomainJoinConfig.NetBiosName",
            &[DJC, "NetBiosName"],
            |s| {
                format!(
                    "!{s}.matches({})",
                    lit(&format!("[{CONTROL}{NETBIOS_BAD}]"))
                )
            },
        )]),
        Code::NetBiosLooksLikeDns => Cel(vec![on_string(
            code,
            "DomainJoinConfig.NetBiosName",
            &[DJC, "NetBiosName"],
            |s| format!("!{s}.contains(\".\")"),
        )]),
        Code::NoActiveDirectoryPlugin => Cel(vec![check(
            code,
            "CmsPlugins",
            only_if(
                &has(&["CmsPlugins"]),
                &format!(
                    "{}.exists(p, p == \"ActiveDirectory\")",
                    at(&["CmsPlugins"])
                ),
            ),
        )]),
        Code::UnknownCmsPlugin => Cel(vec![check(
            code,
            "CmsPlugins",
            only_if(
                &has(&["CmsPlugins"]),
                &format!("{}.all(p, p == \"ActiveDirectory\")", at(&["CmsPlugins"])),
            ),
        )]),
        Code::NoAccounts => Cel(vec![check(
            code,
            "ActiveDirectoryConfig.GroupManagedServiceAccounts",
            only_if(
                &has(&[ADC, GMSA]),
                &format!("size({}) > 0", at(&[ADC, GMSA])),
            ),
        )]),
        Code::NoPrimaryAccount => {
            let accounts = at(&[ADC, GMSA]);
            let when = format!(
                "({} && {} && size({accounts}) > 0)",
                filled(&[DJC, "MachineAccountName"]),
                has(&[ADC, GMSA])
            );
            Cel(vec![check(
                code,
                "ActiveDirectoryConfig.GroupManagedServiceAccounts",
                only_if(
                    &when,
                    &format!(
                        "{accounts}.exists(e, has(e.Name) && {})",
                        is_primary("e.Name")
                    ),
                ),
            )])
        }
        Code::MissingScope => {
            let accounts = at(&[ADC, GMSA]);
            let when = format!(
                "({} && {} && size({accounts}) > 0 && {accounts}.exists(e, has(e.Name) && {}))",
                filled(&[DJC, "MachineAccountName"]),
                has(&[ADC, GMSA]),
                is_primary("e.Name")
            );
            let scoped = |member: &str| {
                let scope = at(&[DJC, member]);
                only_if(
                    &filled(&[DJC, member]),
                    &format!(
                        "{accounts}.exists(e, has(e.Name) && !e.Name.matches({blank}) && {} && has(e.Scope) && !e.Scope.matches({blank}) && e.Scope.lowerAscii() == {scope}.lowerAscii())",
                        is_primary("e.Name"),
                        blank = lit(BLANK),
                    ),
                )
            };
            Cel(vec![
                check(
                    code,
                    "ActiveDirectoryConfig.GroupManagedServiceAccounts",
                    only_if(&when, &scoped("DnsName")),
                ),
                check(
                    code,
                    "ActiveDirectoryConfig.GroupManagedServiceAccounts",
                    only_if(&when, &scoped("NetBiosName")),
                ),
            ])
        }
        Code::IncompleteAccount => Cel(vec![check(
            code,
            "ActiveDirectoryConfig.GroupManagedServiceAccounts",
            only_if(
                &has(&[ADC, GMSA]),
                &format!(
                    "{}.all(e, has(e.Name) && !e.Name.matches({b}) && has(e.Scope) && !e.Scope.matches({b}))",
                    at(&[ADC, GMSA]),
                    b = lit(BLANK)
                ),
            ),
        )]),
        Code::PortableCcgVersion => Cel(vec![check(
            code,
            "ActiveDirectoryConfig.HostAccountConfig.PortableCcgVersion",
            only_if(
                &has(&[ADC, HAC, "PortableCcgVersion"]),
                &format!("{} == \"1\"", at(&[ADC, HAC, "PortableCcgVersion"])),
            ),
        )]),
        Code::InvalidPluginGuid => Cel(vec![on_string(
            code,
            "ActiveDirectoryConfig.HostAccountConfig.PluginGUID",
            &[ADC, HAC, "PluginGUID"],
            |s| {
                format!(
                    "{s}.matches({}) || {s}.matches({})",
                    lit(&ascii_ci(
                        credguard::credspec::plugins::DOCS_PLACEHOLDER_PLUGIN_GUID
                    )),
                    lit(&format!(r"^\{{{}\}}$", guid_regex()))
                )
            },
        )]),
        Code::PlaceholderPluginGuid => Cel(vec![on_string(
            code,
            "ActiveDirectoryConfig.HostAccountConfig.PluginGUID",
            &[ADC, HAC, "PluginGUID"],
            |s| {
                format!(
                    "!{s}.matches({})",
                    lit(&ascii_ci(
                        credguard::credspec::plugins::DOCS_PLACEHOLDER_PLUGIN_GUID
                    ))
                )
            },
        )]),
        Code::PluginGuidTypo => Outside(
            "needs the number of differing digits between PluginGUID and each known plug-in's GUID; CEL has no loop over a string's characters (a regular expression of every one- and two-digit variant would be far too large)",
        ),
        Code::UnknownMember => Outside(
            "the API server prunes members the CRD does not declare before policies run, so the policy never sees them (a wrongly cased member shows as the missing one, CS001); `kubectl apply` warns about unknown fields",
        ),
        Code::UnknownPlugin => Outside("information only: nothing to deny or warn about"),
        Code::AwsInput | Code::AwsCredentialArn | Code::AwsExtraMember => Outside(
            "the AWS plug-in's PluginInput is JSON inside a string, and Kubernetes CEL has no function that parses JSON; the webhook and the offline check run the linter itself",
        ),
        Code::KeyVaultInput
        | Code::KeyVaultSecretUri
        | Code::KeyVaultObjectId
        | Code::KeyVaultExtraKey
        | Code::PlaintextPassword => Outside(
            "left out on purpose: these parse PluginInput (`KEY=VALUE;` pairs with repeated keys, the `domain:user:password` shape with byte-length limits), which the strings extension could only approximate with a second, hand-kept parser of a value that may be secret; the webhook and the offline check run the linter itself",
        ),
        _ => return None,
    };
    Some(d)
}

fn is_dns(s: &str) -> String {
    format!(
        "({s}.matches({}) && size({s}) <= 253 && !{s}.matches({}))",
        lit(DNS),
        lit(ALL_DIGITS)
    )
}

/// Every check of the policy, in code order.
#[must_use]
pub fn checks() -> Vec<Check> {
    Code::ALL
        .iter()
        .filter_map(|c| match decision(*c) {
            Some(Decision::Cel(checks)) => Some(checks),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The codes the policy covers and those it does not (with why), for documentation.
#[must_use]
pub fn coverage() -> (Vec<Code>, Vec<(Code, &'static str)>) {
    let mut covered = Vec::new();
    let mut outside = Vec::new();
    for code in Code::ALL {
        match decision(*code) {
            Some(Decision::Cel(_)) => covered.push(*code),
            Some(Decision::Outside(why)) => outside.push((*code, why)),
            None => outside.push((*code, "not decided yet")),
        }
    }
    (covered, outside)
}

/// How the policy is generated.
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    /// The name of the policy of errors and its binding; the warnings' are `NAME-warnings`.
    pub name: String,
    /// Bind the errors with `Warn` too, so nothing is denied (to try the policy out).
    pub warn_only: bool,
    /// A label selector (`key=value,key2 in (a,b),!key3`) for the `GMSACredentialSpec`s
    /// themselves (the bindings' `objectSelector`).
    pub object_selector: Option<String>,
    /// A namespace selector: refused, as `GMSACredentialSpec`s are cluster-scoped.
    pub namespace_selector: Option<String>,
}

/// The default policy name.
pub const DEFAULT_NAME: &str = "credguard-credspec-lint";

/// Why a policy cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The name is not a DNS subdomain name fit for the policy.
    #[error(
        "the policy name `{0}` is not a lowercase DNS subdomain name of at most 244 characters (letters, digits, `-`, `.`; `-warnings` is appended for the warnings policy)"
    )]
    Name(String),
    /// A label selector does not parse.
    #[error("the selector `{selector}` is not a label selector: {problem}")]
    Selector {
        /// The selector as given (shown).
        selector: String,
        /// What is wrong.
        problem: String,
    },
    /// A namespace selector was asked for.
    #[error(
        "GMSACredentialSpec is cluster-scoped (`scope: Cluster` in its CRD), so a namespace selector never applies to it: the API server would run the policy on every GMSACredentialSpec regardless; select specs by their own labels with an object selector instead"
    )]
    NamespaceSelector,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 244
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Parses a label selector as `kubectl -l` takes it: comma-separated requirements
/// `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`, `key`
/// (exists), `!key` (does not exist). Returns a `LabelSelector` object.
///
/// # Errors
/// A requirement does not parse, or a key or value is not a label key or value.
pub fn parse_selector(selector: &str) -> Result<Value, PolicyError> {
    let err = |problem: String| PolicyError::Selector {
        selector: credguard::credspec::syntax::shown(selector),
        problem,
    };
    let mut labels = serde_json::Map::new();
    let mut exprs = Vec::new();
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(err("a `)` without its `(`".to_owned()));
        }
    }
    if depth != 0 {
        return Err(err("a `(` without its `)`".to_owned()));
    }
    terms.push(&selector[start..]);
    for term in terms {
        let t = term.trim();
        if t.is_empty() {
            return Err(err("an empty requirement (two commas in a row?)".to_owned()));
        }
        let set = |rest: &str| -> Result<Vec<String>, PolicyError> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| err(format!("`{t}`: the values go in parentheses, `(a,b)`")))?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
            for v in &values {
                if !label_value(v) {
                    return Err(err(format!("`{v}` is not a label value")));
                }
            }
            Ok(values)
        };
        let words: Vec<&str> = t.split_whitespace().collect();
        let (key, op, values) = if let Some((k, v)) = t.split_once("!=") {
            (k.trim(), "NotIn", vec![v.trim().to_owned()])
        } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            let v = v.trim();
            if !label_value(v) {
                return Err(err(format!("`{v}` is not a label value")));
            }
            labels.insert(k.trim().to_owned(), Value::from(v));
            if !label_key(k.trim()) {
                return Err(err(format!("`{}` is not a label key", k.trim())));
            }
            continue;
        } else if words.len() >= 2 && (words[1] == "in" || words[1] == "notin") {
            let rest = t[words[0].len()..].trim_start()[words[1].len()..].to_owned();
            let op = if words[1] == "in" { "In" } else { "NotIn" };
            (words[0], op, set(&rest)?)
        } else if let Some(k) = t.strip_prefix('!') {
            (k.trim(), "DoesNotExist", Vec::new())
        } else if words.len() == 1 {
            (t, "Exists", Vec::new())
        } else {
            return Err(err(format!(
                "`{t}` is none of `key=value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`"
            )));
        };
        if !label_key(key) {
            return Err(err(format!("`{key}` is not a label key")));
        }
        let mut e = json!({"key": key, "operator": op});
        if !values.is_empty() {
            for v in &values {
                if !label_value(v) {
                    return Err(err(format!("`{v}` is not a label value")));
                }
            }
            e["values"] = json!(values);
        }
        exprs.push(e);
    }
    let mut out = serde_json::Map::new();
    if !labels.is_empty() {
        out.insert("matchLabels".into(), Value::Object(labels));
    }
    if !exprs.is_empty() {
        out.insert("matchExpressions".into(), Value::Array(exprs));
    }
    Ok(Value::Object(out))
}

fn label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => valid_name(prefix) && prefix.len() <= 253 && label_name(name),
        None => label_name(s),
    }
}

fn label_value(s: &str) -> bool {
    s.is_empty() || label_name(s)
}

/// The generated objects: the error policy and its binding, the warning policy and its
/// binding (`admissionregistration.k8s.io/v1`, Kubernetes 1.30+).
///
/// # Errors
/// A bad name or selector, or a namespace selector (see [`PolicyError`]).
pub fn generate(opts: &PolicyOptions) -> Result<Vec<Value>, PolicyError> {
    if opts.namespace_selector.is_some() {
        return Err(PolicyError::NamespaceSelector);
    }
    let name = if opts.name.is_empty() {
        DEFAULT_NAME
    } else {
        &opts.name
    };
    if !valid_name(name) {
        return Err(PolicyError::Name(credguard::credspec::syntax::shown(name)));
    }
    let selector = opts
        .object_selector
        .as_deref()
        .map(parse_selector)
        .transpose()?;
    let all = checks();
    let mut out = Vec::new();
    for (severity, policy_name) in [
        (Severity::Error, name.to_owned()),
        (Severity::Warning, format!("{name}-warnings")),
    ] {
        let validations: Vec<Value> = all
            .iter()
            .filter(|c| c.code.severity() == severity)
            .map(|c| {
                json!({
                    "expression": c.expression,
                    "message": c.message(),
                    "reason": "Invalid",
                })
            })
            .collect();
        let action = if severity == Severity::Error && !opts.warn_only {
            "Deny"
        } else {
            "Warn"
        };
        let labels = json!({
            "app.kubernetes.io/name": "credguard",
            "app.kubernetes.io/component": "credspec-lint",
        });
        out.push(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {
                "name": policy_name,
                "labels": labels,
                "annotations": {
                    "credguard.io/severity": severity.to_string(),
                    "credguard.io/version": env!("CARGO_PKG_VERSION"),
                },
            },
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [{
                        "apiGroups": [crd::GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [crd::RESOURCE],
                    }],
                },
                "validations": validations,
            },
        }));
        let mut binding = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy_name, "labels": labels},
            "spec": {
                "policyName": policy_name,
                "validationActions": [action],
            },
        });
        if let Some(sel) = &selector {
            binding["spec"]["matchResources"] = json!({"objectSelector": sel});
        }
        out.push(binding);
    }
    Ok(out)
}

/// The objects as a multi-document YAML stream.
///
/// # Errors
/// Never in practice (the objects are plain JSON values).
pub fn to_yaml(objects: &[Value]) -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(o)?);
    }
    Ok(out)
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Cel(c) => write!(f, "{} CEL validation(s)", c.len()),
            Decision::Outside(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_decision() {
        for code in Code::ALL {
            assert!(
                decision(*code).is_some(),
                "{code} has no policy decision: add CEL checks or say why the policy leaves it out in policy::decision"
            );
        }
    }

    #[test]
    fn messages_start_with_the_code_and_have_one_line() {
        for c in checks() {
            let m = c.message();
            assert!(m.starts_with(c.code.as_str()), "{m}");
            assert!(!m.contains('\n'));
        }
    }

    #[test]
    fn errors_deny_and_warnings_warn() {
        let objs = generate(&PolicyOptions::default()).unwrap();
        assert_eq!(objs.len(), 4);
        assert_eq!(objs[0]["metadata"]["name"], DEFAULT_NAME);
        assert_eq!(objs[1]["spec"]["validationActions"], json!(["Deny"]));
        assert_eq!(objs[3]["spec"]["validationActions"], json!(["Warn"]));
        assert_eq!(
            objs[2]["metadata"]["name"],
            format!("{DEFAULT_NAME}-warnings")
        );
        for v in objs[0]["spec"]["validations"].as_array().unwrap() {
            let code = &v["message"].as_str().unwrap()[..5];
            let code = Code::ALL.iter().find(|c| c.as_str() == code).unwrap();
            assert_eq!(code.severity(), Severity::Error);
        }
        let warn = generate(&PolicyOptions {
            warn_only: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(warn[1]["spec"]["validationActions"], json!(["Warn"]));
    }

    #[test]
    fn names_and_selectors() {
        let bad = generate(&PolicyOptions {
            name: "Bad_Name".into(),
            ..Default::default()
        });
        assert!(matches!(bad, Err(PolicyError::Name(_))));
        assert_eq!(
            generate(&PolicyOptions {
                namespace_selector: Some("a=b".into()),
                ..Default::default()
            }),
            Err(PolicyError::NamespaceSelector)
        );
        assert_eq!(
            parse_selector("env=prod, tier notin (a, b),team,!legacy,x!=y").unwrap(),
            json!({
                "matchLabels": {"env": "prod"},
                "matchExpressions": [
                    {"key": "tier", "operator": "NotIn", "values": ["a", "b"]},
                    {"key": "team", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                    {"key": "x", "operator": "NotIn", "values": ["y"]},
                ]
            })
        );
        assert_eq!(
            parse_selector("example.com/owner in (a)").unwrap()["matchExpressions"][0]["key"],
            "example.com/owner"
        );
        for bad in ["", "a=b,,c", "a in b", "a in (b", "a b c", "-a=b", "a=b c"] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
        let objs = generate(&PolicyOptions {
            object_selector: Some("env=prod".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            objs[1]["spec"]["matchResources"]["objectSelector"]["matchLabels"]["env"],
            "prod"
        );
    }

    #[test]
    fn cel_literals_escape() {
        assert_eq!(lit(r#"a\b"c"#), r#""a\\b\"c""#);
        assert_eq!(ascii_ci("{Ab-1}"), r"^\{[Aa][Bb]-1\}$");
    }
}
