//! Shape checks of the `PluginInput` of the CCG plug-ins whose input is public: the Azure
//! Key Vault plug-in (`ObjectId=...;SecretUri=...`) and the AWS plug-in (a JSON document with
//! a `credentialArn`), and, for every plug-in, an input shaped like `domain:user:password`.
//!
//! A `PluginInput` may be a secret, and even where it is not (a vault URL, an ARN) it is
//! the spec author's text: no finding quotes any part of it. Messages say only what is
//! wrong with its shape ("SecretUri is not an https URL"), naming the documented keys and
//! the expected forms, never the values, the unknown keys or the services found.

use serde_json::{Map, Value};

use super::lint::Code;
use super::plugins::{AWS_PLUGIN_GUID, AZURE_KEY_VAULT_PLUGIN_GUID, KEY_VAULT_HOSTS, KnownPlugin};
use super::syntax::is_guid;
use crate::input::json_kind;

/// One problem of a `PluginInput`: the linter reports it at the member's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    pub code: Code,
    pub message: String,
    pub hint: String,
}

fn finding(code: Code, message: impl Into<String>, hint: impl Into<String>) -> Finding {
    Finding {
        code,
        message: message.into(),
        hint: hint.into(),
    }
}

/// The findings for `input`, the (present, non-empty) `PluginInput` of a spec whose
/// `PluginGUID` names `plugin` (`None`: a plug-in credguard does not know).
pub(super) fn check(plugin: Option<KnownPlugin>, input: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Value::String(s) = input
        && looks_like_credentials(s)
    {
        out.push(finding(
            Code::PlaintextPassword,
            "`PluginInput` is shaped like `domain:user:password` (or `domain\\user:password`): the credential spec carries a password in plain text, readable by whoever can read the spec, its copies and the container's configuration",
            "keep the password in a secret store the plug-in reads (Azure Key Vault, AWS Secrets Manager, a Kubernetes secret) and put only the reference to it in PluginInput; if this plug-in can only take a password, keep the spec file owner-only and change the password if the spec was shared",
        ));
    }
    match plugin.map(|p| p.guid) {
        Some(AZURE_KEY_VAULT_PLUGIN_GUID) => key_vault(input, &mut out),
        Some(AWS_PLUGIN_GUID) => aws(input, &mut out),
        _ => {}
    }
    out
}

/// Whether `s` looks like `domain:user:password`, `domain\user:password` or
/// `user@domain:password`: what some plug-ins take, and a password in the spec.
fn looks_like_credentials(s: &str) -> bool {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    if s.starts_with(['{', '[', '"'])
        || s.contains('=')
        || s.contains("://")
        || lower.starts_with("arn:")
    {
        return false;
    }
    let name = |n: &str| {
        !n.is_empty()
            && n.len() <= 256
            && !n
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ';' || c == ',')
    };
    let parts: Vec<&str> = s.splitn(3, ':').collect();
    match parts.as_slice() {
        [domain, user, password] => name(domain) && name(user) && !password.is_empty(),
        [who, password] => name(who) && who.contains(['\\', '@']) && !password.is_empty(),
        _ => false,
    }
}

const KEY_VAULT_FORM: &str = "`ObjectId=<managed identity object id>;SecretUri=https://<vault>.vault.azure.net/secrets/<name>`";

/// The Azure Key Vault plug-in: `ObjectId=...;SecretUri=...`, keys case-insensitive,
/// `;`-separated (whitespace around parts, keys and values and an empty part from a
/// trailing `;` are tolerated).
fn key_vault(input: &Value, out: &mut Vec<Finding>) {
    let Value::String(s) = input else {
        out.push(finding(
            Code::KeyVaultInput,
            format!(
                "`PluginInput` is a JSON {}; the Azure Key Vault plug-in reads a string",
                json_kind(input)
            ),
            format!("write PluginInput as the string {KEY_VAULT_FORM}"),
        ));
        return;
    };
    let parts: Vec<&str> = s
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut object_id: Option<&str> = None;
    let mut secret_uri: Option<&str> = None;
    let mut unknown = 0;
    for (i, part) in parts.iter().enumerate() {
        let Some((key, value)) = part.split_once('=') else {
            out.push(finding(
                Code::KeyVaultInput,
                format!(
                    "part {} of {} of `PluginInput` (split at `;`) has no `=`",
                    i + 1,
                    parts.len()
                ),
                format!("write PluginInput as {KEY_VAULT_FORM}: `;` between the two `KEY=VALUE` parts and nowhere else"),
            ));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let slot = if key.eq_ignore_ascii_case("ObjectId") {
            (&mut object_id, "ObjectId")
        } else if key.eq_ignore_ascii_case("SecretUri") {
            (&mut secret_uri, "SecretUri")
        } else {
            unknown += 1;
            continue;
        };
        if slot.0.is_some() {
            out.push(finding(
                Code::KeyVaultExtraKey,
                format!("`PluginInput` gives `{}` more than once", slot.1),
                format!(
                    "keep one `{}=` part; which copy the plug-in takes is not documented",
                    slot.1
                ),
            ));
        }
        *slot.0 = Some(value);
    }
    if unknown > 0 {
        out.push(finding(
            Code::KeyVaultExtraKey,
            format!(
                "`PluginInput` has {unknown} key{} other than `ObjectId` and `SecretUri` (keys not shown: PluginInput is not quoted)",
                if unknown == 1 { "" } else { "s" }
            ),
            format!("the plug-in reads only ObjectId and SecretUri: check the spelling, or remove the part; the form is {KEY_VAULT_FORM}"),
        ));
    }
    for (value, key, what) in [
        (
            object_id,
            "ObjectId",
            "the object (or client) id of the managed identity that may read the secret",
        ),
        (
            secret_uri,
            "SecretUri",
            "the URL of the Key Vault secret holding `domain\\user:password`",
        ),
    ] {
        match value {
            None => out.push(finding(
                Code::KeyVaultInput,
                format!("`PluginInput` has no `{key}`"),
                format!(
                    "add `{key}=` with {what}; the plug-in keeps ObjectId and SecretUri in statics, so a spec without one silently reuses the value of the spec ccg.exe read before, another identity or another secret"
                ),
            )),
            Some("") => out.push(finding(
                Code::KeyVaultInput,
                format!("`{key}` in `PluginInput` is empty"),
                format!("fill in {what}"),
            )),
            Some(v) if key == "ObjectId" => {
                let bare = v.strip_prefix('{').and_then(|v| v.strip_suffix('}')).unwrap_or(v);
                if !is_guid(bare) {
                    out.push(finding(
                        Code::KeyVaultObjectId,
                        "`ObjectId` in `PluginInput` is not a GUID",
                        "use the managed identity's object id (or client id) as Azure shows it, `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (`az identity show --query principalId`)",
                    ));
                }
            }
            Some(v) => {
                if let Some(problem) = secret_uri_problem(v) {
                    out.push(finding(
                        Code::KeyVaultSecretUri,
                        format!("`SecretUri` in `PluginInput` {problem}"),
                        format!(
                            "use the secret's identifier as Azure shows it: `https://<vault>.<host>/secrets/<name>` or `.../<name>/<version>`, where <host> is one of {} (`az keyvault secret show --query id`)",
                            KEY_VAULT_HOSTS.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
    }
}

/// What is wrong with `uri` as a Key Vault secret URL, said without quoting it.
fn secret_uri_problem(uri: &str) -> Option<&'static str> {
    let Some(rest) = uri
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"))
        .map(|_| &uri[8..])
    else {
        return Some(
            if uri
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
            {
                "is an http URL, not https"
            } else {
                "is not an https URL"
            },
        );
    };
    if rest.contains(['?', '#']) {
        return Some("has a query or fragment");
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Some("has user information before the host");
    }
    let host = match authority.rsplit_once(':') {
        Some((host, "443")) => host,
        Some(_) => return Some("names a port other than 443"),
        None => authority,
    }
    .to_ascii_lowercase();
    let Some(vault) = KEY_VAULT_HOSTS
        .iter()
        .find_map(|suffix| host.strip_suffix(suffix).and_then(|h| h.strip_suffix('.')))
    else {
        return Some(
            "does not name a Key Vault host (`<vault>.vault.azure.net` or a sovereign cloud's)",
        );
    };
    // Vault names: 3-24 characters, letters, digits and `-`, starting with a letter, not
    // ending with `-`, no `--`.
    let vault_ok = (3..=24).contains(&vault.len())
        && vault.starts_with(|c: char| c.is_ascii_alphabetic())
        && !vault.ends_with('-')
        && !vault.contains("--")
        && vault
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !vault_ok {
        return Some(
            "has a vault name that is not 3-24 letters, digits and dashes starting with a letter",
        );
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let name_ok = |n: &str| {
        (1..=127).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    match segments.as_slice() {
        ["secrets", name] | ["secrets", name, _] if !name_ok(name) => {
            Some("has a secret name that is not 1-127 letters, digits and dashes")
        }
        ["secrets", _] => None,
        ["secrets", _, version]
            if version.len() == 32 && version.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            None
        }
        ["secrets", _, _] => Some("has a secret version that is not 32 hexadecimal digits"),
        [kind, ..]
            if kind.eq_ignore_ascii_case("keys") || kind.eq_ignore_ascii_case("certificates") =>
        {
            Some("names a Key Vault key or certificate, not a secret (`/secrets/<name>`)")
        }
        _ => Some("does not have the path `/secrets/<name>` or `/secrets/<name>/<version>`"),
    }
}

const AWS_FORM: &str =
    r#"`{"credentialArn": "arn:aws:secretsmanager:<region>:<account>:secret:<name>"}`"#;

/// The AWS plug-in: a JSON document, as a string (as AWS documents it) or an object, whose
/// `credentialArn` (AWS's examples also write `CredentialArn`) is a Secrets Manager secret
/// or SSM parameter ARN.
fn aws(input: &Value, out: &mut Vec<Finding>) {
    let parsed;
    let object: &Map<String, Value> = match input {
        Value::Object(m) => m,
        Value::String(s) => match serde_json::from_str::<Value>(s.trim()) {
            Ok(Value::Object(m)) => {
                parsed = m;
                &parsed
            }
            Ok(other) => {
                out.push(finding(
                    Code::AwsInput,
                    format!(
                        "`PluginInput` holds a JSON {}, not an object",
                        json_kind(&other)
                    ),
                    format!("write PluginInput as {AWS_FORM}"),
                ));
                return;
            }
            Err(e) => {
                out.push(finding(
                    Code::AwsInput,
                    format!(
                        "`PluginInput` is not a JSON document (it stops being JSON at line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                    format!("write PluginInput as {AWS_FORM}: a JSON object in a string, its quotes escaped"),
                ));
                return;
            }
        },
        other => {
            out.push(finding(
                Code::AwsInput,
                format!(
                    "`PluginInput` is a JSON {}; the AWS plug-in reads a JSON object (or one in a string)",
                    json_kind(other)
                ),
                format!("write PluginInput as {AWS_FORM}"),
            ));
            return;
        }
    };
    let arns: Vec<&Value> = object
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("credentialArn"))
        .map(|(_, v)| v)
        .collect();
    let others = object.len() - arns.len();
    if others > 0 {
        out.push(finding(
            Code::AwsExtraMember,
            format!(
                "`PluginInput` has {others} member{} other than `credentialArn` (names not shown: PluginInput is not quoted)",
                if others == 1 { "" } else { "s" }
            ),
            "the plug-in reads only credentialArn: check the spelling, or remove the member (the domain, user and password belong in the secret the ARN names, not here)",
        ));
    }
    match arns.as_slice() {
        [] => out.push(finding(
            Code::AwsInput,
            "`PluginInput` has no `credentialArn`",
            format!("add the ARN of the Secrets Manager secret (or SSM parameter) holding the domain user's credentials: {AWS_FORM}"),
        )),
        [arn] => match arn {
            Value::String(arn) => {
                if let Some(problem) = arn_problem(arn) {
                    out.push(finding(
                        Code::AwsCredentialArn,
                        format!("`credentialArn` in `PluginInput` {problem}"),
                        "use the ARN of the Secrets Manager secret (`arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>`) or SSM parameter (`arn:aws:ssm:<region>:<account>:parameter/<name>`) holding the domain user's credentials (`aws secretsmanager describe-secret --query ARN`); the credential spec's own S3 or SSM ARN belongs in the task definition's `credentialSpecs`, not here",
                    ));
                }
            }
            other => out.push(finding(
                Code::AwsCredentialArn,
                format!("`credentialArn` in `PluginInput` is a JSON {}, not a string", json_kind(other)),
                format!("write it as a string: {AWS_FORM}"),
            )),
        },
        _ => out.push(finding(
            Code::AwsInput,
            "`PluginInput` gives `credentialArn` more than once (in different cases)",
            "keep one `credentialArn`; which one the plug-in reads is not documented",
        )),
    }
}

/// What is wrong with `arn` as a Secrets Manager secret or SSM parameter ARN, said without
/// quoting it (not even the service or region found).
fn arn_problem(arn: &str) -> Option<&'static str> {
    let parts: Vec<&str> = arn.trim().splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return Some("is not an ARN (`arn:<partition>:<service>:<region>:<account>:<resource>`)");
    };
    if *prefix != "arn" {
        return Some("is not an ARN (it must start with `arn:`)");
    }
    if !["aws", "aws-cn", "aws-us-gov"].contains(partition) {
        return Some("has a partition other than `aws`, `aws-cn` and `aws-us-gov`");
    }
    let kind = match *service {
        "secretsmanager" => "secret:",
        "ssm" => "parameter/",
        _ => return Some("names a service other than `secretsmanager` and `ssm`"),
    };
    let region_ok = {
        let p: Vec<&str> = region.split('-').collect();
        p.len() >= 3
            && p.iter().all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && p.last()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    };
    if !region_ok {
        return Some("has no region, or one not shaped like `us-west-2`");
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Some("has an account that is not 12 digits");
    }
    match resource.strip_prefix(kind) {
        Some(name) if !name.trim_matches('/').is_empty() => None,
        Some(_) => Some("has an empty secret or parameter name"),
        None if kind == "secret:" => {
            Some("names a Secrets Manager resource that is not `secret:<name>`")
        }
        None => Some("names an SSM resource that is not `parameter/<name>`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(plugin: &str, input: Value) -> Vec<&'static str> {
        check(KnownPlugin::by_guid(plugin), &input)
            .into_iter()
            .map(|f| f.code.as_str())
            .collect()
    }

    const KV: &str = AZURE_KEY_VAULT_PLUGIN_GUID;
    const AWS: &str = AWS_PLUGIN_GUID;
    const OID: &str = "6b1c5c5e-2d0f-4f5e-9d3a-0c1b2a3d4e5f";

    #[test]
    fn key_vault_inputs() {
        let uri = "https://kv-web.vault.azure.net/secrets/gmsa-user";
        for (input, want) in [
            (format!("ObjectId={OID};SecretUri={uri}"), vec![]),
            (format!(" secreturi = {uri} ; OBJECTID={OID};"), vec![]),
            (
                format!("ObjectId={{{OID}}};SecretUri={uri}/0123456789abcdef0123456789ABCDEF"),
                vec![],
            ),
            (
                format!(
                    "ObjectId={OID};SecretUri=https://kv-web.vault.usgovcloudapi.net/secrets/x"
                ),
                vec![],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://KV-web.Vault.Azure.CN:443/secrets/x/"),
                vec![],
            ),
            (format!("SecretUri={uri}"), vec!["CS081"]),
            (format!("ObjectId={OID}"), vec!["CS081"]),
            (format!("ObjectId=;SecretUri={uri}"), vec!["CS081"]),
            (
                format!("ObjectId={OID},SecretUri={uri}"),
                vec!["CS083", "CS081"],
            ),
            (format!("ObjectId={OID};{uri}"), vec!["CS081", "CS081"]),
            (format!("ObjectId=42;SecretUri={uri}"), vec!["CS083"]),
            (
                format!("ObjectId={OID};SecretUri={uri};Tenant=x"),
                vec!["CS084"],
            ),
            (
                format!("ObjectId={OID};ObjectId={OID};SecretUri={uri}"),
                vec!["CS084"],
            ),
            (
                format!("ObjectId={OID};SecretUri=http://kv-web.vault.azure.net/secrets/x"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=kv-web.vault.azure.net/secrets/x"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://kv-web.example.com/secrets/x"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://vault.azure.net/secrets/x"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://kv-web.vault.azure.net/keys/x"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://kv-web.vault.azure.net/secrets/a_b"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://kv-web.vault.azure.net/secrets/x/v1"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri={uri}?api-version=7.4"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://kv-web.vault.azure.net:8443/secrets/x"),
                vec!["CS082"],
            ),
            (
                format!("ObjectId={OID};SecretUri=https://kv-web.vault.azure.net/"),
                vec!["CS082"],
            ),
            (
                "CONTOSO\\gmsa-reader:Pa55w0rd".to_owned(),
                vec!["CS088", "CS081", "CS081", "CS081"],
            ),
        ] {
            assert_eq!(codes(KV, Value::from(input.clone())), want, "{input}");
        }
        assert_eq!(
            codes(KV, serde_json::json!({"ObjectId": OID, "SecretUri": uri})),
            vec!["CS081"]
        );
    }

    #[test]
    fn aws_inputs() {
        let arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:gmsa-AbCdEf";
        let doc = |v: &str| Value::from(format!(r#"{{"credentialArn": "{v}"}}"#));
        for (input, want) in [
            (doc(arn), vec![]),
            (serde_json::json!({"CredentialArn": arn}), vec![]),
            (
                doc("arn:aws-cn:ssm:cn-north-1:123456789012:parameter/gmsa/creds"),
                vec![],
            ),
            (
                doc("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x"),
                vec![],
            ),
            (doc("arn:aws:s3:::bucket/credspec.json"), vec!["CS086"]),
            (
                doc("arn:aws:secretsmanager:us-west-2:123:secret:x"),
                vec!["CS086"],
            ),
            (
                doc("arn:aws:secretsmanager::123456789012:secret:x"),
                vec!["CS086"],
            ),
            (
                doc("arn:aws:secretsmanager:us-west-2:123456789012:secret:"),
                vec!["CS086"],
            ),
            (
                doc("arn:aws:ssm:us-west-2:123456789012:secret:x"),
                vec!["CS086"],
            ),
            (
                doc("arn:azure:secretsmanager:us-west-2:123456789012:secret:x"),
                vec!["CS086"],
            ),
            (doc("gmsa-secret"), vec!["CS086"]),
            (serde_json::json!({"credentialArn": 5}), vec!["CS086"]),
            (
                serde_json::json!({"credentialArn": arn, "sqsUrl": "x"}),
                vec!["CS087"],
            ),
            (
                serde_json::json!({"secretArn": arn}),
                vec!["CS087", "CS085"],
            ),
            (
                serde_json::json!({"credentialArn": arn, "CredentialArn": arn}),
                vec!["CS085"],
            ),
            (
                Value::from(format!("{{credentialArn: {arn}}}")),
                vec!["CS085"],
            ),
            (Value::from("[1]"), vec!["CS085"]),
            (Value::from(5), vec!["CS085"]),
            (Value::from(arn), vec!["CS085"]),
        ] {
            assert_eq!(codes(AWS, input.clone()), want, "{input}");
        }
    }

    #[test]
    fn plaintext_passwords() {
        for (input, want) in [
            ("contoso.com:gmsa-reader:Pa55:w0rd", true),
            ("CONTOSO\\gmsa-reader:Pa55w0rd", true),
            ("gmsa-reader@contoso.com:Pa 55", true),
            ("reader:Pa55w0rd", false),
            (
                "arn:aws:secretsmanager:us-west-2:123456789012:secret:x",
                false,
            ),
            (
                "ObjectId=x;SecretUri=https://a.vault.azure.net/secrets/x",
                false,
            ),
            ("{\"a\": \"b:c:d\"}", false),
            ("my secret name:x:y", false),
            ("a::b", false),
        ] {
            assert_eq!(looks_like_credentials(input), want, "{input}");
        }
        // For any plug-in, known or not.
        assert_eq!(
            codes(
                "{E4781092-F116-4B79-B55E-28EB6A224E26}",
                Value::from("d:u:p")
            ),
            vec!["CS088"]
        );
        assert_eq!(check(None, &Value::from("d:u:p")).len(), 1);
    }
}
