//! The `GMSACredentialSpec` custom resource (`gmsacredentialspecs.windows.k8s.io`) as the
//! API server stores it: its schema, and what the API server does to an incoming object
//! before any admission policy or validating webhook sees it.
//!
//! The schema is the one the windows-gmsa project installs (`admission-webhook/deploy/
//! gmsa-crd.yml`; versions `v1` and the deprecated `v1alpha1`, identical; `scope: Cluster`;
//! no `x-kubernetes-preserve-unknown-fields` anywhere): `credspec` holds `CmsPlugins` (array of
//! strings), `DomainJoinConfig` (six strings), `ActiveDirectoryConfig` with
//! `GroupManagedServiceAccounts` (array of `{Name, Scope}` strings) and `HostAccountConfig`
//! (`PluginGUID`, `PluginInput`, `PortableCcgVersion`, all strings).
//!
//! [`admit`] does what the API server does with a create or update, in its order:
//! 1. **pruning**: members the schema does not declare are dropped, matched case
//!    sensitively (a `domainJoinConfig` is gone, so the spec arrives *without*
//!    `DomainJoinConfig`); at the root only `apiVersion`, `kind`, `metadata` and `credspec`
//!    stay;
//! 2. **null members dropped**: a member whose value is `null` is removed, as none is
//!    `nullable`;
//! 3. **schema validation**: a member of the wrong type (a number where a string is
//!    declared, an object `PluginInput`) makes the API server reject the request with 422
//!    before admission policies run: [`admit`] returns a [`SchemaError`] naming the member.
//!
//! The admission webhook and the offline check reuse this module, so all three see the
//! object the policy would.

use std::fmt;

use serde_json::{Map, Value};

/// The API group of the resource.
pub const GROUP: &str = "windows.k8s.io";
/// The resource's plural name, as admission rules name it.
pub const RESOURCE: &str = "gmsacredentialspecs";
/// The kind.
pub const KIND: &str = "GMSACredentialSpec";
/// The versions the CRD serves (same schema).
pub const VERSIONS: &[&str] = &["v1", "v1alpha1"];
/// Whether the resource is namespaced: it is not (`scope: Cluster`), so a namespace selector
/// never applies to it.
pub const NAMESPACED: bool = false;

/// One node of the structural schema.
#[derive(Debug, Clone, Copy)]
pub enum Schema {
    /// `type: string`.
    String,
    /// `type: array` of the item schema.
    Array(&'static Schema),
    /// `type: object` with these properties (no additional properties: unknown ones are
    /// pruned).
    Object(&'static [(&'static str, Schema)]),
}

impl Schema {
    fn type_name(self) -> &'static str {
        match self {
            Schema::String => "string",
            Schema::Array(_) => "array",
            Schema::Object(_) => "object",
        }
    }
}

const STRING_ARRAY: Schema = Schema::Array(&Schema::String);
const ACCOUNT: Schema = Schema::Object(&[("Name", Schema::String), ("Scope", Schema::String)]);

/// The schema of `credspec`.
pub const CREDSPEC: Schema = Schema::Object(&[
    (
        "ActiveDirectoryConfig",
        Schema::Object(&[
            ("GroupManagedServiceAccounts", Schema::Array(&ACCOUNT)),
            (
                "HostAccountConfig",
                Schema::Object(&[
                    ("PluginGUID", Schema::String),
                    ("PluginInput", Schema::String),
                    ("PortableCcgVersion", Schema::String),
                ]),
            ),
        ]),
    ),
    ("CmsPlugins", STRING_ARRAY),
    (
        "DomainJoinConfig",
        Schema::Object(&[
            ("DnsName", Schema::String),
            ("DnsTreeName", Schema::String),
            ("Guid", Schema::String),
            ("MachineAccountName", Schema::String),
            ("NetBiosName", Schema::String),
            ("Sid", Schema::String),
        ]),
    ),
]);

/// Root members every object keeps whatever its schema says.
const OBJECT_META: &[&str] = &["apiVersion", "kind", "metadata"];

/// The API server refuses the object before admission: a member has the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// The member, as Kubernetes writes field paths (`credspec.CmsPlugins[0]`).
    pub path: String,
    /// The type the schema declares.
    pub expected: &'static str,
    /// The JSON type found.
    pub found: &'static str,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: Invalid value: \"{}\": {} must be of type {} (the API server refuses the object before any admission check)",
            self.path, self.found, self.path, self.expected
        )
    }
}

impl std::error::Error for SchemaError {}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Prunes and validates `value` against `schema` in place, as the API server does.
///
/// # Errors
/// A member (or `value` itself) has another type than the schema declares.
pub fn prune(value: &mut Value, schema: Schema, path: &str) -> Result<(), SchemaError> {
    match (schema, value) {
        (Schema::String, Value::String(_)) => Ok(()),
        (Schema::Array(item), Value::Array(items)) => {
            for (i, v) in items.iter_mut().enumerate() {
                prune(v, *item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Schema::Object(props), Value::Object(map)) => prune_map(map, props, path),
        (schema, value) => Err(SchemaError {
            path: path.to_owned(),
            expected: schema.type_name(),
            found: kind(value),
        }),
    }
}

fn prune_map(
    map: &mut Map<String, Value>,
    props: &[(&str, Schema)],
    path: &str,
) -> Result<(), SchemaError> {
    map.retain(|k, v| !v.is_null() && props.iter().any(|(name, _)| name == k));
    for (key, v) in map.iter_mut() {
        let (_, schema) = props
            .iter()
            .find(|(name, _)| name == key)
            .expect("retained above");
        let at = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        prune(v, *schema, &at)?;
    }
    Ok(())
}

/// What the API server makes of a `GMSACredentialSpec` object sent to it: pruned (unknown
/// members, also wrongly cased ones, dropped; `null` members dropped) and validated.
///
/// # Errors
/// The object is not a JSON object, or a member has another type than the schema
/// declares: the API server would refuse it (422) before admission.
pub fn admit(object: &Value) -> Result<Value, SchemaError> {
    let Value::Object(root) = object else {
        return Err(SchemaError {
            path: "<object>".to_owned(),
            expected: "object",
            found: kind(object),
        });
    };
    let mut out = Map::new();
    for (key, v) in root {
        if OBJECT_META.contains(&key.as_str()) {
            out.insert(key.clone(), v.clone());
        } else if key == "credspec" && !v.is_null() {
            let mut v = v.clone();
            prune(&mut v, CREDSPEC, "credspec")?;
            out.insert(key.clone(), v);
        }
    }
    Ok(Value::Object(out))
}

/// The credential spec of an admitted object: its `credspec`, or an empty object when it
/// has none (which the linter then reports as missing every required member).
#[must_use]
pub fn credspec(admitted: &Value) -> Map<String, Value> {
    admitted
        .get("credspec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Wraps a credential spec's root object as a `GMSACredentialSpec` named `name`.
#[must_use]
pub fn wrap(name: &str, spec: Value) -> Value {
    serde_json::json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": KIND,
        "metadata": {"name": name},
        "credspec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_miscased_members_are_pruned() {
        let obj = wrap(
            "x",
            json!({
                "CmsPlugins": ["ActiveDirectory"],
                "domainJoinConfig": {"Sid": "S-1-5-21-1-2-3"},
                "DomainJoinConfig": {"Sid": "S-1-5-21-1-2-3", "sid": "x", "Extra": 1},
                "ActiveDirectoryConfig": {
                    "GroupManagedServiceAccounts": [{"Name": "a", "Scope": "b", "scope": "c"}],
                    "HostAccountConfig": {"PluginGUID": "{x}", "PluginInput": "i", "Other": "y"}
                },
                "Unknown": {"a": 1}
            }),
        );
        let mut with_extra_root = obj.clone();
        with_extra_root["spec"] = json!({"a": 1});
        let admitted = admit(&with_extra_root).unwrap();
        assert_eq!(
            admitted["credspec"],
            json!({
                "CmsPlugins": ["ActiveDirectory"],
                "DomainJoinConfig": {"Sid": "S-1-5-21-1-2-3"},
                "ActiveDirectoryConfig": {
                    "GroupManagedServiceAccounts": [{"Name": "a", "Scope": "b"}],
                    "HostAccountConfig": {"PluginGUID": "{x}", "PluginInput": "i"}
                }
            })
        );
        assert!(admitted.get("spec").is_none());
        assert_eq!(admitted["metadata"]["name"], "x");
    }

    #[test]
    fn nulls_are_dropped_and_wrong_types_refused() {
        let admitted = admit(&wrap(
            "x",
            json!({"DomainJoinConfig": {"Sid": null, "Guid": "g"}, "CmsPlugins": null}),
        ))
        .unwrap();
        assert_eq!(
            admitted["credspec"],
            json!({"DomainJoinConfig": {"Guid": "g"}})
        );
        let e = admit(&wrap("x", json!({"DomainJoinConfig": {"Sid": 5}}))).unwrap_err();
        assert_eq!(e.path, "credspec.DomainJoinConfig.Sid");
        assert_eq!((e.expected, e.found), ("string", "integer"));
        let e = admit(&wrap(
            "x",
            json!({"ActiveDirectoryConfig": {"HostAccountConfig": {"PluginInput": {"a": 1}}}}),
        ))
        .unwrap_err();
        assert_eq!(
            e.path,
            "credspec.ActiveDirectoryConfig.HostAccountConfig.PluginInput"
        );
        let e = admit(&wrap("x", json!({"CmsPlugins": ["a", 1]}))).unwrap_err();
        assert_eq!(e.path, "credspec.CmsPlugins[1]");
        assert!(e.to_string().contains("must be of type string"), "{e}");
    }

    #[test]
    fn a_missing_credspec_lints_as_empty() {
        let admitted = admit(&json!({"kind": KIND, "metadata": {"name": "x"}})).unwrap();
        assert!(credspec(&admitted).is_empty());
    }
}
