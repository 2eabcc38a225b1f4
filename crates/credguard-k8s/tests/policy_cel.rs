//! The proof of the generated ValidatingAdmissionPolicy: every CEL expression is evaluated
//! (with the `cel` crate, the Kubernetes `strings` extension loaded) over the whole
//! credential-spec corpus (the library's fixtures and the variants below), each spec wrapped
//! as a `GMSACredentialSpec` and pruned to the CRD schema as the API server does, and the
//! verdict for every code the policy covers must be the linter's on the same pruned spec. An
//! expression that errors is a failure too: the API server would refuse the request.
//!
//! The expressions are also read back from the generated YAML, so what is tested is what
//! `credguard k8s policy` prints.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cel::{Context, Env, Program};
use credguard::credspec::{Code, lint};
use credguard_k8s::crd;
use credguard_k8s::policy::{self, Decision, PolicyOptions};
use serde_json::{Value, json};

/// The library's corpus, by its path inside the repository.
fn library_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../credguard/tests/fixtures/credspecs")
}

/// `GMSACredentialSpec` objects (or bare specs, to be wrapped) found in a fixture file.
fn objects_in(path: &Path) -> Vec<(String, Value)> {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut docs = Vec::new();
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Vec::new();
        };
        for doc in serde_norway::Deserializer::from_str(text) {
            use serde::Deserialize;
            if let Ok(v) = Value::deserialize(doc) {
                docs.push(v);
            }
        }
    } else {
        let Ok((text, _)) = credguard::credspec::read::decode(&bytes) else {
            return Vec::new();
        };
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            docs.push(v);
        }
    }
    let mut out = Vec::new();
    for doc in docs {
        let items = match doc.get("kind").and_then(Value::as_str) {
            Some("List") => doc["items"].as_array().cloned().unwrap_or_default(),
            _ => vec![doc],
        };
        for (i, item) in items.into_iter().enumerate() {
            let label = format!("{name}#{i}");
            if item.get("kind").and_then(Value::as_str) == Some(crd::KIND) {
                out.push((label, item));
            } else if item.is_object() && item.get("kind").is_none() {
                out.push((label, crd::wrap("corpus", item)));
            }
        }
    }
    out
}

fn good() -> Value {
    json!({
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
            ],
            "HostAccountConfig": {
                "PortableCcgVersion": "1",
                "PluginGUID": "{859E1386-BDB4-49E8-85C7-3070B13920E1}",
                "PluginInput": "{\"credentialArn\":\"arn:aws:secretsmanager:us-west-2:123456789012:secret:gmsa-AbCdEf\"}"
            }
        }
    })
}

/// Variants of a good spec that reach each check's edges: values at the limits, every
/// form of account name, Unicode blanks, case differences, pruned members.
#[allow(clippy::too_many_lines)]
fn variants() -> Vec<(String, Value)> {
    let mut out = vec![("good".to_owned(), good())];
    let mut add = |label: &str, pointer: &str, value: Option<Value>| {
        let mut v = good();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = v.pointer_mut(parent).unwrap();
        match (target, value) {
            (Value::Object(m), Some(val)) => {
                m.insert(key.to_owned(), val);
            }
            (Value::Object(m), None) => {
                m.remove(key);
            }
            (Value::Array(a), Some(val)) => a[key.parse::<usize>().unwrap()] = val,
            (Value::Array(a), None) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            _ => panic!("{pointer}"),
        }
        out.push((format!("{label} ({pointer})"), v));
    };
    let dj = "/DomainJoinConfig";
    let s = |x: &str| Some(Value::from(x));
    // Missing, empty and blank members, everywhere.
    for m in [
        "/CmsPlugins",
        "/DomainJoinConfig",
        "/ActiveDirectoryConfig",
        "/ActiveDirectoryConfig/GroupManagedServiceAccounts",
        "/ActiveDirectoryConfig/HostAccountConfig",
        "/ActiveDirectoryConfig/HostAccountConfig/PluginGUID",
        "/ActiveDirectoryConfig/HostAccountConfig/PluginInput",
        "/ActiveDirectoryConfig/HostAccountConfig/PortableCcgVersion",
    ] {
        add("missing", m, None);
    }
    for m in [
        "Sid",
        "MachineAccountName",
        "Guid",
        "DnsTreeName",
        "DnsName",
        "NetBiosName",
    ] {
        let p = format!("{dj}/{m}");
        add("missing", &p, None);
        add("null", &p, Some(Value::Null));
        for blank in [
            "", " ", "\t\n", "\u{a0}", "\u{3000}", "\u{85}", "\u{b}", "\u{200b}",
        ] {
            add("blank", &p, s(blank));
        }
        add("padded", &p, s(" x "));
    }
    for m in ["PluginGUID", "PluginInput"] {
        let p = format!("/ActiveDirectoryConfig/HostAccountConfig/{m}");
        add("empty", &p, s(""));
        add("blank", &p, s(" \u{2028}"));
    }
    // Pruned: wrongly cased members are gone.
    add(
        "miscased",
        "/domainJoinConfig",
        Some(good()["DomainJoinConfig"].clone()),
    );
    add("miscased", "/DomainJoinConfig/sid", s("S-1-5-21-1-2-3"));
    // SIDs.
    for sid in [
        "S-1-5-21-1-2-3",
        "s-1-5-21-1-2-3",
        "S-1-5-21-1-2-3-1105",
        "S-1-5-21-4294967295-0-0",
        "S-1-5-21-4294967296-0-0",
        "S-1-5-21-0000000001-2-3",
        "S-1-5-21-00000000001-2-3",
        "S-1-5-21-4294967295-4294967295-4294967295-4294967295",
        "S-1-5-21-1-2-3-4294967296",
        "S-1-5-21-1-2",
        "S-1-5-21-1-2-3-4-5",
        "S-1-5-18",
        "S-1-05-21-1-2-3",
        "S-1-5-021-1-2-3",
        "S-1-5-21-1-2-x",
        "S-1-5-21-1-2-3 ",
        "S-1-5-21-\u{664}-2-3",
        "x",
    ] {
        add("sid", &format!("{dj}/Sid"), s(sid));
    }
    // GUIDs.
    for guid in [
        "244818AE-87CA-4FCD-92EC-E79E5252348A",
        "{244818ae-87ca-4fcd-92ec-e79e5252348a}",
        "{244818ae-87ca-4fcd-92ec-e79e5252348a",
        "244818ae87ca4fcd92ece79e5252348a",
        "244818ag-87ca-4fcd-92ec-e79e5252348a",
        "244818ae-87ca-4fcd-92ec-e79e5252348",
    ] {
        add("guid", &format!("{dj}/Guid"), s(guid));
    }
    // Account names in every form the linter splits.
    for name in [
        "WebApp01$",
        "CONTOSO\\WebApp01",
        "CONTOSO\\WebApp01$",
        "CONTOSO\\WebApp01$$",
        "WebApp01@contoso.com",
        "WebApp01$@contoso.com",
        "WebApp01.contoso.com",
        "WebApp01$.contoso.com",
        "ABCDEFGHIJKLMNO",
        "ABCDEFGHIJKLMNOP",
        "ABCDEFGHIJKLMNO$",
        "ABCDEFGHIJKLMNO$$$",
        "ABCDEFGHIJKLMNOP$",
        "ÄBCDEFGHIJKLMNO",
        "ÄBCDEFGHIJKLMNOP",
        "C\\ABCDEFGHIJKLMNOP",
        "C\\ABCDEFGHIJKLMNO$",
        "ABCDEFGHIJKLMNOP@c",
        "ABCDEFGHIJKLMNO$@c",
        "ABCDEFGHIJKLMNOP.c",
        "ABCDEFGHIJKLMNO.c",
        "a@b\\c",
        "a\\b@c",
        "a\\b\\c",
        "a.b@c",
        "a*b",
        "a b",
        "a\u{7}b",
        "a\u{9f}b",
        "a\u{a0}b",
        "a[b]",
        "C\\a*b",
        "a*@contoso.com",
        "a@b*c",
        "a.b*c",
        "a*.c",
        "web$app",
        "$",
        "$$",
        "C\\$",
        "\\",
        "@",
        ".",
        "WEBAPP01",
        "webapp01",
    ] {
        add("account", &format!("{dj}/MachineAccountName"), s(name));
    }
    // Account entries naming the account in other forms.
    for (name, entry) in [
        ("CONTOSO\\WebApp01$", "webapp01"),
        ("CONTOSO\\WebApp01$", "contoso\\webapp01$"),
        ("WebApp01@contoso.com", "WEBAPP01"),
        ("WebApp01.contoso.com", "WebApp01"),
        ("WebApp01$", "WebApp01"),
        ("WebApp01$", "WebApp01$"),
        ("WebApp01$", "WebApp01$$"),
        ("WebApp01$$", "WebApp01$"),
        ("C\\WebApp01$$", "WebApp01$"),
        ("$$", ""),
        ("Wébapp01", "wébapp01"),
        ("Wébapp01", "WÉBAPP01"),
    ] {
        let mut v = good();
        v["DomainJoinConfig"]["MachineAccountName"] = name.into();
        v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][0]["Name"] = entry.into();
        v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][1]["Name"] = entry.into();
        out.push((format!("primary {name} / {entry}"), v));
    }
    let mut add = |label: &str, edit: &dyn Fn(&mut Value)| {
        let mut v = good();
        edit(&mut v);
        out.push((label.to_owned(), v));
    };
    let gm = "GroupManagedServiceAccounts";
    add("no accounts", &|v| {
        v["ActiveDirectoryConfig"][gm] = json!([]);
    });
    add("other account", &|v| {
        v["ActiveDirectoryConfig"][gm] = json!([{"Name": "Other", "Scope": "contoso.com"}]);
    });
    add("one scope", &|v| {
        v["ActiveDirectoryConfig"][gm] = json!([{"Name": "WebApp01", "Scope": "contoso.com"}]);
    });
    add("scopes other case", &|v| {
        v["ActiveDirectoryConfig"][gm] = json!([{"Name": "webapp01", "Scope": "CONTOSO.COM"}, {"Name": "WEBAPP01", "Scope": "contoso"}]);
    });
    add("scope on another account", &|v| {
        v["ActiveDirectoryConfig"][gm] = json!([{"Name": "WebApp01", "Scope": "contoso.com"}, {"Name": "Other", "Scope": "CONTOSO"}]);
    });
    add("blank name with scope", &|v| {
        v["ActiveDirectoryConfig"][gm] = json!([
            {"Name": "WebApp01", "Scope": "contoso.com"},
            {"Name": " ", "Scope": "CONTOSO"}
        ]);
    });
    add("entry without name", &|v| {
        v["ActiveDirectoryConfig"][gm][1] = json!({"Scope": "CONTOSO"});
    });
    add("entry with blank scope", &|v| {
        v["ActiveDirectoryConfig"][gm][1] = json!({"Name": "WebApp01", "Scope": ""});
    });
    add("entry miscased", &|v| {
        v["ActiveDirectoryConfig"][gm][1] = json!({"name": "WebApp01", "scope": "CONTOSO"});
    });
    add("entry with null name", &|v| {
        v["ActiveDirectoryConfig"][gm][1] = json!({"Name": null, "Scope": "CONTOSO"});
    });
    add("primary entry with blank scope only", &|v| {
        v["ActiveDirectoryConfig"][gm] = json!([{"Name": "WebApp01", "Scope": " "}]);
    });
    add("no netbios", &|v| {
        v["DomainJoinConfig"]
            .as_object_mut()
            .unwrap()
            .remove("NetBiosName");
    });
    add("no account name", &|v| {
        v["DomainJoinConfig"]
            .as_object_mut()
            .unwrap()
            .remove("MachineAccountName");
    });
    // DNS names.
    for (dns, tree) in [
        ("emea.contoso.com", "contoso.com"),
        ("EMEA.Contoso.COM", "contoso.com"),
        ("fabrikam.com", "contoso.com"),
        ("xcontoso.com", "contoso.com"),
        ("contoso.com", "CONTOSO.COM"),
        ("contoso.com.", "contoso.com"),
        (".contoso.com", "contoso.com"),
        ("a..b", "contoso.com"),
        ("-a.com", "contoso.com"),
        ("a-.com", "contoso.com"),
        ("a_b.com", "contoso.com"),
        ("10.0.0.1", "contoso.com"),
        ("10.0.0.a", "contoso.com"),
        ("con toso.com", "contoso.com"),
        ("contöso.com", "contoso.com"),
        ("contoso", "contoso"),
        ("emea.contoso.com", "contoso.com."),
        ("emea.contoso.com", "bad_tree"),
    ] {
        let mut v = good();
        v["DomainJoinConfig"]["DnsName"] = dns.into();
        v["DomainJoinConfig"]["DnsTreeName"] = tree.into();
        v["ActiveDirectoryConfig"][gm][0]["Scope"] = dns.into();
        out.push((format!("dns {dns} / {tree}"), v));
    }
    let long_label = "a".repeat(63);
    for dns in [
        format!("{long_label}.com"),
        format!("{long_label}b.com"),
        format!(
            "{}.{}.{}.{}",
            long_label,
            long_label,
            long_label,
            "a".repeat(61)
        ),
        format!(
            "{}.{}.{}.{}",
            long_label,
            long_label,
            long_label,
            "a".repeat(62)
        ),
    ] {
        let mut v = good();
        v["DomainJoinConfig"]["DnsName"] = dns.clone().into();
        v["DomainJoinConfig"]["DnsTreeName"] = dns.clone().into();
        v["ActiveDirectoryConfig"][gm][0]["Scope"] = dns.into();
        out.push(("long dns".to_owned(), v));
    }
    // NetBIOS names.
    for nb in [
        "CONTOSOCONTOSO1",
        "CONTOSOCONTOSO12",
        "CONTÖSOCONTOSO1",
        "contoso.com",
        "CON*TOSO",
        "CON\\TOSO",
        "CON\u{1}TOSO",
        "CON TOSO",
    ] {
        let mut v = good();
        v["DomainJoinConfig"]["NetBiosName"] = nb.into();
        v["ActiveDirectoryConfig"][gm][1]["Scope"] = nb.into();
        out.push((format!("netbios {nb}"), v));
    }
    // CmsPlugins.
    for plugins in [
        json!([]),
        json!(["activedirectory"]),
        json!(["ActiveDirectory", "Other"]),
        json!(["Other"]),
        json!(["ActiveDirectory", "ActiveDirectory"]),
    ] {
        let mut v = good();
        v["CmsPlugins"] = plugins.clone();
        out.push((format!("plugins {plugins}"), v));
    }
    // HostAccountConfig.
    let hac = "/ActiveDirectoryConfig/HostAccountConfig";
    let mut add = |label: &str, member: &str, value: &str| {
        let mut v = good();
        v.pointer_mut(hac).unwrap()[member] = value.into();
        out.push((format!("{label} {value}"), v));
    };
    for version in ["1", "2", " 1", ""] {
        add("version", "PortableCcgVersion", version);
    }
    for guid in [
        "{GDMA0342-266A-4D1P-831J-20990E82944F}",
        "{gdma0342-266a-4d1p-831j-20990e82944f}",
        "GDMA0342-266A-4D1P-831J-20990E82944F",
        "859E1386-BDB4-49E8-85C7-3070B13920E1",
        "{859E1386-BDB4-49E8-85C7-3070B13920E2}",
        "{859e1386-bdb4-49e8-85c7-3070b13920e1}",
        "{11111111-2222-3333-4444-555555555555}",
        "{859E1386-BDB4-49E8-85C7-3070B13920E1",
        "not a guid",
    ] {
        add("plugin guid", "PluginGUID", guid);
    }
    out
}

struct Engine {
    env: Arc<Env>,
}

impl Engine {
    fn new() -> Self {
        let mut env = Env::stdlib();
        // Kubernetes CEL includes the strings extension (lowerAscii, indexOf, substring).
        env.add_extension(cel::extensions::strings).unwrap();
        Engine { env: Arc::new(env) }
    }

    fn compile(&self, expression: &str) -> Program {
        self.env
            .compile(expression)
            .unwrap_or_else(|e| panic!("does not compile: {e:?}\n{expression}"))
    }

    /// Whether `program` lets `object` pass; panics when it errors.
    fn passes(&self, program: &Program, object: &Value, what: &str, expr: &str) -> bool {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        ctx.add_variable("object", object).unwrap();
        ctx.add_variable_from_value("oldObject", cel::Value::Null);
        ctx.add_variable_from_value("params", cel::Value::Null);
        ctx.add_variable(
            "request",
            json!({"operation": "CREATE", "kind": {"group": crd::GROUP, "version": "v1", "kind": crd::KIND}}),
        )
        .unwrap();
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => b,
            other => panic!(
                "{what}: the expression did not evaluate to a bool (the API server would refuse the request): {other:?}\n{expr}"
            ),
        }
    }
}

/// The validations of the generated policy (both policies), as printed.
fn generated_validations() -> Vec<(Code, String)> {
    let yaml = policy::to_yaml(&policy::generate(&PolicyOptions::default()).unwrap()).unwrap();
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&yaml) {
        use serde::Deserialize;
        let v = Value::deserialize(doc).unwrap();
        if v["kind"] != "ValidatingAdmissionPolicy" {
            continue;
        }
        for val in v["spec"]["validations"].as_array().unwrap() {
            let message = val["message"].as_str().unwrap();
            let code = *Code::ALL
                .iter()
                .find(|c| message.starts_with(&format!("{c} ")))
                .unwrap_or_else(|| panic!("message without a code: {message}"));
            out.push((code, val["expression"].as_str().unwrap().to_owned()));
        }
    }
    out
}

fn corpus() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(library_corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
        })
        .collect();
    files.sort();
    assert!(files.len() > 20, "the library's corpus was not found");
    let mut out: Vec<(String, Value)> = files.iter().flat_map(|f| objects_in(f)).collect();
    out.extend(
        variants()
            .into_iter()
            .map(|(label, spec)| (label, crd::wrap("variant", spec))),
    );
    out
}

#[test]
fn the_policy_agrees_with_the_linter_on_the_whole_corpus() {
    let engine = Engine::new();
    let programs: Vec<(Code, String, Program)> = generated_validations()
        .into_iter()
        .map(|(code, e)| {
            let p = engine.compile(&e);
            (code, e, p)
        })
        .collect();
    let covered: BTreeSet<&str> = programs.iter().map(|(c, _, _)| c.as_str()).collect();
    let mut seen_violated = BTreeSet::new();
    let mut mismatches = Vec::new();
    let mut refused = 0;
    let corpus = corpus();
    for (label, object) in &corpus {
        let Ok(admitted) = crd::admit(object) else {
            // The API server refuses it before policies run.
            refused += 1;
            continue;
        };
        let linted: BTreeSet<&str> = lint(&crd::credspec(&admitted))
            .iter()
            .map(|d| d.code.as_str())
            .filter(|c| covered.contains(c))
            .collect();
        let mut failed = BTreeSet::new();
        for (code, expr, program) in &programs {
            if !engine.passes(program, &admitted, label, expr) {
                failed.insert(code.as_str());
            }
        }
        seen_violated.extend(failed.iter().copied());
        if linted != failed {
            mismatches.push(format!(
                "{label}: linter {linted:?}, policy {failed:?}\n  credspec: {}",
                admitted["credspec"]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "the policy and the linter disagree on {} of {} objects:\n{}",
        mismatches.len(),
        corpus.len(),
        mismatches.join("\n")
    );
    assert!(
        refused > 0,
        "no object of the corpus was refused by the schema"
    );
    // A code never violated in the corpus is not proven: the corpus must reach each one.
    let unreached: Vec<&&str> = covered.difference(&seen_violated).collect();
    assert!(
        unreached.is_empty(),
        "no spec of the corpus violates {unreached:?}: add one"
    );
}

#[test]
fn every_covered_code_is_in_the_generated_policy() {
    let generated: std::collections::HashSet<Code> = generated_validations()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    for code in Code::ALL {
        match policy::decision(*code) {
            Some(Decision::Cel(_)) => assert!(generated.contains(code), "{code}"),
            _ => assert!(!generated.contains(code), "{code}"),
        }
    }
}

#[test]
fn a_broken_expression_is_caught() {
    // The proof can fail: a check that lets account SIDs through disagrees with the linter.
    let engine = Engine::new();
    let broken = engine.compile("true");
    let mut v = good();
    v["DomainJoinConfig"]["Sid"] = "S-1-5-21-1-2-3-1105".into();
    let admitted = crd::admit(&crd::wrap("x", v)).unwrap();
    let linted = lint(&crd::credspec(&admitted));
    assert!(linted.iter().any(|d| d.code == Code::AccountSid));
    assert!(engine.passes(&broken, &admitted, "broken", "true"));
    let real = policy::checks()
        .into_iter()
        .find(|c| c.code == Code::AccountSid)
        .unwrap();
    assert!(!engine.passes(&engine.compile(&real.expression), &admitted, "real", ""));
}

/// docs/KUBERNETES.md lists every code in the right table: covered, or left out.
#[test]
fn the_docs_list_every_code_where_the_policy_puts_it() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/KUBERNETES.md"),
    )
    .unwrap();
    let section = |title: &str| -> String {
        let start = doc
            .find(title)
            .unwrap_or_else(|| panic!("no `{title}` in docs/KUBERNETES.md"));
        let rest = &doc[start + title.len()..];
        let end = rest.find("\n#").unwrap_or(rest.len());
        rest[..end].to_owned()
    };
    let covered_doc = section("### Codes the policy covers");
    let outside_doc = section("### Codes the policy leaves out");
    let (covered, outside) = policy::coverage();
    for c in covered {
        assert!(
            covered_doc.contains(&format!("| {c} ")),
            "{c} is covered but not listed as such"
        );
        assert!(
            !outside_doc.contains(&format!("| {c} ")),
            "{c} listed as left out"
        );
    }
    for (c, _) in outside {
        assert!(
            outside_doc.contains(&format!("| {c} ")),
            "{c} is left out but not listed as such"
        );
        assert!(
            !covered_doc.contains(&format!("| {c} ")),
            "{c} listed as covered"
        );
    }
}
