//! Property tests of credential specs: generated specs lint clean and round-trip
//! byte-identically through the canonical form; any JSON object round-trips; the reader
//! and the linter take any input without panicking and never show a `PluginInput`.

mod common;

use credguard::credspec::{
    AdditionalAccount, CredentialSpec, HostAccount, NewSpec, PluginInput, lint, plugins, read,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn account() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,14}"
}

fn label() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,10}[a-z0-9])?"
}

fn guid() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| {
        let h = format!("{n:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    })
}

prop_compose! {
    fn new_spec()(
        account in account(),
        forest_labels in prop::collection::vec(label(), 1..3),
        child in prop::option::of(label()),
        netbios in "[A-Z][A-Z0-9-]{0,14}",
        sid in (any::<u32>(), any::<u32>(), any::<u32>()),
        domain_guid in guid(),
        braced in any::<bool>(),
        additional in prop::collection::vec((account(), label()), 0..3),
        plugin in prop::option::of((prop::sample::select(plugins::KNOWN_PLUGINS), any::<String>(), guid(), label(), "[0-9]{12}")),
    ) -> NewSpec {
        let forest = format!("{}.com", forest_labels.join("."));
        let domain = child.map_or_else(|| forest.clone(), |c| format!("{c}.{forest}"));
        NewSpec {
            account,
            netbios,
            sid: format!("S-1-5-21-{}-{}-{}", sid.0, sid.1, sid.2),
            guid: if braced { format!("{{{}}}", domain_guid.to_uppercase()) } else { domain_guid },
            forest: (domain != forest).then_some(forest.clone()),
            domain,
            additional_accounts: additional
                .into_iter()
                .map(|(name, l)| AdditionalAccount { name, domain: format!("{l}.{forest}") })
                .collect(),
            host_account: plugin.map(|(p, input, object_id, name, account)| HostAccount {
                plugin_guid: p.guid.to_owned(),
                // Empty input is a lint error by design; generate what a user would give: the
                // documented shape for the plug-ins whose input is checked, anything without a
                // `:` (which could look like `domain:user:password`) for the others.
                plugin_input: PluginInput::text(match p.guid {
                    plugins::AZURE_KEY_VAULT_PLUGIN_GUID => format!(
                        "ObjectId={object_id};SecretUri=https://kv{}.vault.azure.net/secrets/{name}",
                        name.replace('-', "")
                    ),
                    plugins::AWS_PLUGIN_GUID => format!(
                        r#"{{"credentialArn": "arn:aws:secretsmanager:us-west-2:{account}:secret:{name}"}}"#
                    ),
                    _ => format!("x{}", input.replace(':', "")),
                }),
            }),
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object shaped like a credential spec, with noise: known members with values of
/// any type, unknown members, and a PluginInput holding a marker.
fn spec_like() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        Just("CmsPlugins".to_owned()),
        Just("DomainJoinConfig".to_owned()),
        Just("ActiveDirectoryConfig".to_owned()),
        Just("Sid".to_owned()),
        Just("sid".to_owned()),
        "[A-Za-z]{1,12}",
    ];
    // The plug-ins whose input is checked, one credguard does not know, and no GUID at all.
    let plugin_guid = prop::sample::select(vec![
        "x",
        plugins::AZURE_KEY_VAULT_PLUGIN_GUID,
        plugins::AWS_PLUGIN_GUID,
        "{6E2B8C1A-4F3D-4A7E-9B21-C5D0E8F7A934}",
    ]);
    (
        prop::collection::vec((key, json_value()), 0..6),
        json_value(),
        json_value(),
        plugin_guid,
    )
        .prop_map(|(members, dj, input, plugin_guid)| {
            let mut root: Map<String, Value> = members.into_iter().collect();
            root.insert("DomainJoinConfig".into(), dj);
            let mut input = input;
            if let Value::Object(m) = &mut input {
                m.insert("k".into(), "MARKER-s3cr3t".into());
            } else {
                input = Value::String(format!("MARKER-s3cr3t{input}"));
            }
            root.insert(
                "ActiveDirectoryConfig".into(),
                serde_json::json!({"HostAccountConfig": {"PluginGUID": plugin_guid, "PluginInput": input}}),
            );
            root
        })
}

proptest! {
    #![proptest_config(common::proptest_config(256))]

    #[test]
    fn generated_specs_lint_clean_and_round_trip(n in new_spec()) {
        let generated = n.build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let map = generated.spec.to_map();
        prop_assert_eq!(lint(&map), vec![]);
        prop_assert!(generated.warnings.is_empty());

        let canonical = generated.spec.to_canonical();
        // Canonical → read → canonical is byte-identical, through the document and the model.
        let doc = read(canonical.as_bytes()).unwrap();
        prop_assert_eq!(doc.canonical(), canonical.clone());
        prop_assert!(doc.lint().is_empty());
        prop_assert_eq!(doc.to_spec().unwrap().to_canonical(), canonical.clone());
        // The file as written (ConvertTo-Json layout), in every encoding Windows writes,
        // reads back to the same canonical form.
        let pretty = generated.to_json();
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(pretty.encode_utf16().flat_map(u16::to_le_bytes));
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(pretty.as_bytes());
        for bytes in [pretty.as_bytes().to_vec(), utf16, bom] {
            prop_assert_eq!(read(&bytes).unwrap().canonical(), canonical.clone());
        }
    }

    #[test]
    fn any_object_round_trips_through_the_canonical_form(root in spec_like()) {
        let text = Value::Object(root.clone()).to_string();
        let doc = read(text.as_bytes()).unwrap();
        let canonical = doc.canonical();
        prop_assert_eq!(&canonical, &text);
        prop_assert_eq!(read(canonical.as_bytes()).unwrap().canonical(), canonical.clone());
        // The typed model, when it can hold the spec, writes it back unchanged.
        if let Ok(spec) = CredentialSpec::from_map(&root) {
            prop_assert_eq!(spec.to_canonical(), canonical.clone());
        }
        // Whatever the spec, no diagnostic and no Debug output shows the PluginInput.
        let shown = format!("{} {:?}", serde_json::to_string(&doc.lint()).unwrap(), doc);
        prop_assert!(!shown.contains("MARKER-s3cr3t"), "{}", shown);
    }

    #[test]
    fn the_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(doc) = read(&bytes) {
            let _ = doc.lint();
        }
    }

    #[test]
    fn the_reader_takes_any_text(text in "[{}\\[\\]\":, a-zA-Z0-9\\n\\\\]{0,64}") {
        if let Ok(doc) = read(text.as_bytes()) {
            let _ = doc.lint();
        }
    }
}
