//! `credguard credspec validate|show|new`, and `--credspec` of `instances add` and `probe`,
//! as a user runs them, against the emulator in a temporary state directory.

mod common;

use std::path::{Path, PathBuf};

use common::{Env, p, secret_spec_with};
use predicates::prelude::*;
use serde_json::{Value, json};

const SECRET: &str = "Pa55-CredspecCliSecret";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../credguard/tests/fixtures/credspecs")
        .join(name)
}

fn spec_with(env: &Env, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v = good_spec();
    edit(&mut v);
    env.file(name, serde_json::to_string_pretty(&v).unwrap().as_bytes())
}

fn good_spec() -> Value {
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
            ]
        }
    })
}

fn with_plugin(v: &mut Value, guid: &str) {
    let mut plugged = secret_spec_with(guid, json!(format!("contoso.com:gmsaccg:{SECRET}")));
    v["ActiveDirectoryConfig"]["HostAccountConfig"] =
        plugged["ActiveDirectoryConfig"]["HostAccountConfig"].take();
}

const NEW_ARGS: &[&str] = &[
    "credspec",
    "new",
    "--account",
    "WebApp01",
    "--domain",
    "contoso.com",
    "--netbios",
    "CONTOSO",
    "--sid",
    "S-1-5-21-702590844-1001920913-2680819671",
    "--guid",
    "244818ae-87ca-4fcd-92ec-e79e5252348a",
];

#[test]
fn validate_prints_diagnostics_with_line_code_path_and_hint() {
    let env = Env::new();
    let bad = fixture("account_sid.json");
    let (code, out, err) = env.run(&["credspec", "validate", p(&bad)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("{}:6: error[CS011] DomainJoinConfig.Sid: `S-1-5-21-702590844-1001920913-2680819671-1105` looks like an account SID", p(&bad))),
        "{out}"
    );
    assert!(
        out.contains(
            "  hint: the domain SID is required: use `S-1-5-21-702590844-1001920913-2680819671`"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: 1 error, 0 warnings", p(&bad))),
        "{out}"
    );

    let good = fixture("powershell_contoso_webapp01.json");
    env.cmd()
        .args([
            "credspec",
            "validate",
            p(&good),
            p(&fixture("utf16le_bom_webapp01.json")),
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!("{}: ok", p(&good))));
    // A good and a bad one: the bad one decides.
    env.cmd()
        .args(["credspec", "validate", p(&good), p(&bad)])
        .assert()
        .code(1);
}

#[test]
fn validate_strict_fails_on_warnings_and_unreadable_input_has_its_own_code() {
    let env = Env::new();
    let warned = fixture("dns_outside_tree_bad_guid.json");
    env.cmd()
        .args(["credspec", "validate", p(&warned)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "warning[CS032] DomainJoinConfig.DnsName",
        ))
        .stdout(predicate::str::contains("ok, 2 warnings"));
    env.cmd()
        .args(["credspec", "validate", "--strict", p(&warned)])
        .assert()
        .code(1);
    // Unreadable beats failing: exit 2, and the other sources are still reported.
    let (code, out, err) = env.run(&[
        "credspec",
        "validate",
        p(&fixture("syntax_error.json")),
        p(&fixture("account_sid.json")),
        "nope://x",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("not valid JSON at line 7, column 9"), "{err}");
    assert!(
        err.contains("unknown credential spec scheme `nope://`"),
        "{err}"
    );
    assert!(
        err.contains("file://NAME") && err.contains("raw://JSON"),
        "{err}"
    );
    assert!(out.contains("error[CS011]"), "{out}");
}

#[test]
fn validate_json_output_is_the_library_diagnostics() {
    let env = Env::new();
    let (code, out, err) = env.run(&[
        "--output",
        "json",
        "credspec",
        "validate",
        p(&fixture("keyvault_unbraced_guid_numeric_version.json")),
        p(&fixture("aws_domainless_string_plugin_input.json")),
        p(&fixture("missing.json")),
    ]);
    assert_eq!(code, 2, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0]["valid"], false);
    assert_eq!(reports[0]["diagnostics"][1]["code"], "CS062");
    assert_eq!(reports[0]["diagnostics"][1]["severity"], "error");
    assert_eq!(
        reports[0]["diagnostics"][1]["path"],
        "ActiveDirectoryConfig.HostAccountConfig.PluginGUID"
    );
    assert_eq!(reports[0]["diagnostics"][1]["line"], 26);
    assert!(
        reports[0]["diagnostics"][1]["hint"]
            .as_str()
            .unwrap()
            .contains("{CCC2A336-D7F3-4818-A213-272B7924213E}")
    );
    assert_eq!(reports[1]["valid"], true);
    assert_eq!(
        reports[1]["plugin"]["name"],
        "AWS ECS domainless gMSA plug-in"
    );
    assert_eq!(reports[2]["readable"], false);
    assert!(
        reports[2]["error"]
            .as_str()
            .unwrap()
            .contains("cannot read")
    );
    assert!(!out.contains("FIXTURE-SECRET"), "{out}");
}

#[test]
fn every_source_form_is_accepted() {
    let env = Env::new();
    let dir = env.dir.path().join("specs");
    std::fs::create_dir_all(dir.join("team")).unwrap();
    std::fs::copy(fixture("utf8_bom_webapp01.json"), dir.join("team/web.json")).unwrap();
    let raw = format!("raw://{}", good_spec());
    let manifest = format!(
        "{}#webapp1-credspec",
        p(&fixture("k8s_multi_document.yaml"))
    );
    let stdin = std::fs::read(fixture("utf16le_bom_webapp01.json")).unwrap();
    for source in [
        "file://team/web.json",
        raw.as_str(),
        manifest.as_str(),
        p(&fixture("k8s_gmsa_credspec.yaml")),
        p(&fixture("k8s_list.json")),
        p(&fixture("oci_config_string.json")),
        p(&fixture("utf16le_bom_webapp01.json")),
        "-",
    ] {
        env.cmd()
            .args(["credspec", "validate", "--credspec-dir", p(&dir), source])
            .write_stdin(stdin.clone())
            .assert()
            .code(0);
    }
    // The same forms reach HCS as the canonical spec.
    env.cmd()
        .args(["instances", "add", "--id", "k8s", "--credspec", &manifest])
        .assert()
        .code(0);
    env.cmd()
        .env("CREDGUARD_CREDSPEC_DIR", &dir)
        .args([
            "instances",
            "add",
            "--id",
            "file",
            "--credspec",
            "file://team/web.json",
        ])
        .assert()
        .code(0);
    env.cmd()
        .args(["instances", "add", "--id", "utf16", "--credspec", "-"])
        .write_stdin(stdin)
        .assert()
        .code(0);
    let (_, log, _) = env.run(&["emulator", "log"]);
    let sent: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["document"]["Settings"]["Operation"] == "AddInstance")
        .collect();
    assert_eq!(sent.len(), 3);
    let spec = sent[2]["document"]["Settings"]["OperationDetails"]["CredentialSpec"]
        .as_str()
        .unwrap();
    assert!(
        spec.starts_with(r#"{"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"Sid":"#),
        "{spec}"
    );
    assert_eq!(env.ids(), ["k8s", "file", "utf16"]);
}

#[test]
fn sources_are_refused_with_what_to_do() {
    let env = Env::new();
    for (source, says) in [
        ("file://../secret.json", "`..` component"),
        ("file:///etc/passwd", "cannot be absolute"),
        (r"file://C:\x.json", "drive letter"),
        (r"file://\\server\share\x.json", "UNC"),
        ("file://a/b\\c.json", "mixes"),
        ("file://%2e%2e/x.json", "percent-encoded"),
        ("config://spec", "Swarm"),
        ("FILE://x.json", "did you mean `file://`"),
        ("registry://", "needs a value"),
    ] {
        env.cmd()
            .args(["credspec", "validate", source])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
    #[cfg(not(windows))]
    env.cmd()
        .args([
            "instances",
            "add",
            "--id",
            "r",
            "--credspec",
            "registry://webapp01",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "registry:// credential specs can only be read on Windows",
        ));
    let manifest = fixture("k8s_multi_document.yaml");
    env.cmd()
        .args(["credspec", "show", p(&manifest)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`webapp1-credspec`, `webapp2-credspec`",
        ));
    env.cmd()
        .args(["credspec", "show", &format!("{}#webapp3", p(&manifest))])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no GMSACredentialSpec named `webapp3`",
        ));
    assert_eq!(env.call_count(), 0);
}

#[test]
fn instances_add_and_probe_refuse_lint_errors_unless_no_lint() {
    let env = Env::new();
    let bad = spec_with(&env, "bad.json", |v| {
        v["DomainJoinConfig"]["MachineAccountName"] = "WebApp01$".into();
        v["DomainJoinConfig"]["Sid"] = "S-1-5-21-1-2-3-1105".into();
    });
    for args in [
        vec!["instances", "add", "--id", "web", "--credspec", p(&bad)],
        vec!["probe", "--credspec", p(&bad)],
    ] {
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("has 2 lint errors"), "{err}");
        assert!(err.contains("error[CS011] DomainJoinConfig.Sid"), "{err}");
        assert!(
            err.contains("error[CS020] DomainJoinConfig.MachineAccountName"),
            "{err}"
        );
        assert!(err.contains("--no-lint"), "{err}");
    }
    assert_eq!(
        env.call_count(),
        0,
        "nothing may be sent for a refused spec"
    );

    // --no-lint sends it, logging the errors as warnings.
    let (code, _, err) = env.run(&[
        "instances",
        "add",
        "--id",
        "web",
        "--credspec",
        p(&bad),
        "--no-lint",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("CS011") && err.contains("--no-lint"), "{err}");
    env.cmd()
        .args(["probe", "--no-lint", "--credspec", p(&bad)])
        .assert()
        .code(0);

    // Warnings alone do not stop it, and are logged.
    let warned = spec_with(&env, "warned.json", |v| {
        v["DomainJoinConfig"]["Guid"] = "{244818AE-87CA-4FCD-92EC-E79E5252348A}".into();
    });
    let (code, _, err) = env.run(&[
        "instances",
        "add",
        "--id",
        "warned",
        "--credspec",
        p(&warned),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("CS013") && err.contains("WARN"), "{err}");
    assert_eq!(env.ids(), ["web", "warned"]);
}

#[test]
fn show_prints_the_normalised_spec_with_plugin_input_redacted() {
    let env = Env::new();
    let spec = spec_with(&env, "secret.json", |v| {
        v["Extra"] = json!({"kept": [1, 2.5]});
        with_plugin(v, "{CFCA0441-511D-4B2A-862E-20348A78760B}");
    });
    let (code, out, err) = env.run(&["credspec", "show", p(&spec)]);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown["ActiveDirectoryConfig"]["HostAccountConfig"]["PluginInput"],
        "<redacted>"
    );
    assert_eq!(shown["Extra"], json!({"kept": [1, 2.5]}));
    assert!(!out.contains(SECRET) && !err.contains(SECRET));

    let (_, out, _) = env.run(&["--output", "json", "credspec", "show", p(&spec)]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["plugin"]["name"],
        "sample plug-in of Microsoft's ccgplugins.h reference"
    );
    assert_eq!(v["errors"], 0);
    assert!(!out.contains(SECRET));

    env.cmd()
        .args(["--show-secrets", "credspec", "show", p(&spec)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "contoso.com:gmsaccg:{SECRET}"
        )));
}

#[test]
fn plugin_input_never_appears_in_diagnostics_errors_or_logs() {
    let env = Env::new();
    // Lint errors in and around HostAccountConfig, with the secret next to them.
    let spec = spec_with(&env, "secret.json", |v| {
        with_plugin(v, "{GDMA0342-266A-4D1P-831J-20990E82944F}");
        v["ActiveDirectoryConfig"]["HostAccountConfig"]["PortableCcgVersion"] = 1.into();
        v["ActiveDirectoryConfig"]["HostAccountConfig"]["pluginInput"] = SECRET.into();
    });
    let broken = env.file(
        "broken.json",
        format!("{{\"ActiveDirectoryConfig\": {{\"HostAccountConfig\": {{\"PluginInput\": \"{SECRET}\" \"x\"").as_bytes(),
    );
    let raw = format!("raw://{{\"PluginInput\":\"{SECRET}\"");
    let yaml = env.file(
        "m.yaml",
        format!("kind: GMSACredentialSpec\nmetadata: {{name: a}}\ncredspec:\n  PluginInput: \"{SECRET}\n  x: [").as_bytes(),
    );
    let mut all = String::new();
    for args in [
        vec!["credspec", "validate", p(&spec), p(&broken), &raw, p(&yaml)],
        vec![
            "--output",
            "json",
            "credspec",
            "validate",
            p(&spec),
            p(&broken),
            &raw,
        ],
        vec!["credspec", "show", p(&spec)],
        vec!["--output", "json", "credspec", "show", p(&spec)],
        vec!["instances", "add", "--id", "s1", "--credspec", p(&spec)],
        vec!["instances", "add", "--id", "s2", "--credspec", &raw],
        vec![
            "instances",
            "add",
            "--id",
            "s3",
            "--credspec",
            p(&spec),
            "--no-lint",
        ],
        vec![
            "--log-format",
            "json",
            "probe",
            "--credspec",
            p(&spec),
            "--no-lint",
        ],
        vec!["instances", "list"],
        vec!["emulator", "log"],
    ] {
        let mut full = vec!["--log-level", "trace"];
        full.extend(args.iter().copied());
        let (code, out, err) = env.run(&full);
        // The command line itself holds the secret (raw://); only what credguard wrote counts.
        let shown_args = format!("{args:?}").replace(SECRET, "<the secret>");
        all.push_str(&format!("$ {shown_args} -> {code}\n{out}\n{err}\n"));
    }
    assert!(!all.contains(SECRET), "secret leaked:\n{all}");
    assert!(
        all.contains("CS063") && all.contains("placeholder"),
        "{all}"
    );
    assert!(all.contains("<redacted>"), "{all}");
}

/// The plug-in fixtures of the corpus: good and bad inputs of the Key Vault and AWS plug-ins,
/// a password-shaped input, an unknown plug-in. Their PluginInputs share no word with the rest
/// of the spec (older fixtures name `contoso` in both, which `show` rightly prints).
const PLUGIN_FIXTURES: &[&str] = &[
    "keyvault_plugin_input.json",
    "keyvault_sovereign_versioned_spaced.json",
    "keyvault_no_object_id_http_unknown_key.json",
    "keyvault_object_id_not_guid_key_url.json",
    "aws_object_plugin_input_ssm.json",
    "aws_s3_arn_and_extra_member.json",
    "aws_plugin_input_not_json.json",
    "unknown_plugin_guid.json",
    "plaintext_password_plugin_input.json",
];

/// Words of a PluginInput that are its documented form, not its content: the keys (in any
/// case, as the plug-ins read them) and the URL and ARN vocabulary (exactly so written) the
/// messages name to say what is wrong.
const KEY_WORDS: &[&str] = &["objectid", "secreturi", "credentialarn"];
const FORM_WORDS: &[&str] = &[
    "https",
    "http",
    "vault",
    "azure",
    "secrets",
    "keys",
    "secretsmanager",
    "secret",
    "parameter",
];

/// Every 4-character piece of the PluginInput's words (runs of letters and digits), other
/// than the documented form words.
fn pieces_of(input: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for word in input.split(|c: char| !c.is_ascii_alphanumeric()) {
        if FORM_WORDS.contains(&word) || KEY_WORDS.contains(&word.to_ascii_lowercase().as_str()) {
            continue;
        }
        let chars: Vec<char> = word.chars().collect();
        for w in chars.windows(4) {
            pieces.push(w.iter().collect());
        }
    }
    pieces
}

#[test]
fn plugin_checks_never_show_any_piece_of_the_plugin_input() {
    let env = Env::new();
    let mut checked = 0;
    for name in PLUGIN_FIXTURES {
        let path = fixture(name);
        let spec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let input = &spec["ActiveDirectoryConfig"]["HostAccountConfig"]["PluginInput"];
        let input = match input {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert!(input.contains("FIXTURE-SECRET"), "{name}");
        let mut all = String::new();
        for args in [
            vec!["credspec", "validate", p(&path)],
            vec!["--output", "json", "credspec", "validate", p(&path)],
            vec!["credspec", "show", p(&path)],
            vec!["--output", "json", "credspec", "show", p(&path)],
        ] {
            let (code, out, err) = env.run(&args);
            assert!(
                code == 0 || code == 1,
                "{name} {args:?}: {code}\n{out}{err}"
            );
            all.push_str(&format!("{out}\n{err}\n"));
        }
        // Every diagnostic of these fixtures is about the plug-in.
        assert!(
            all.contains("ActiveDirectoryConfig.HostAccountConfig.Plugin") || all.contains(": ok"),
            "{name}: {all}"
        );
        for piece in pieces_of(&input) {
            assert!(
                !all.contains(&piece),
                "{name}: `{piece}` of its PluginInput is in the output:\n{all}"
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");
}

#[test]
fn plugin_input_diagnostics_in_text_and_json_and_info_never_fails() {
    let env = Env::new();
    let kv = fixture("keyvault_no_object_id_http_unknown_key.json");
    let (code, out, err) = env.run(&["credspec", "validate", p(&kv)]);
    assert_eq!(code, 1, "{out}{err}");
    for want in [
        "error[CS081] ActiveDirectoryConfig.HostAccountConfig.PluginInput: `PluginInput` has no `ObjectId`",
        "keeps ObjectId and SecretUri in statics",
        "error[CS082] ActiveDirectoryConfig.HostAccountConfig.PluginInput: `SecretUri` in `PluginInput` is an http URL, not https",
        "warning[CS084]",
        ": 2 errors, 1 warning",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
    let (code, out, _) = env.run(&[
        "--output",
        "json",
        "credspec",
        "validate",
        p(&fixture("aws_s3_arn_and_extra_member.json")),
    ]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let d = &v[0]["diagnostics"];
    assert_eq!(d[0]["code"], "CS087");
    assert_eq!(d[1]["code"], "CS086");
    assert_eq!(d[1]["severity"], "error");
    assert_eq!(
        d[1]["path"],
        "ActiveDirectoryConfig.HostAccountConfig.PluginInput"
    );
    assert_eq!(d[1]["line"], 27);
    assert!(
        d[1]["message"]
            .as_str()
            .unwrap()
            .contains("names a service other than `secretsmanager` and `ssm`"),
        "{d}"
    );
    assert!(
        d[1]["hint"].as_str().unwrap().contains("credentialSpecs"),
        "{d}"
    );
    assert_eq!(
        (v[0]["errors"].clone(), v[0]["warnings"].clone()),
        (json!(1), json!(1))
    );

    // An unknown plug-in is an info note: listed, counted as neither, not even --strict fails.
    let unknown = fixture("unknown_plugin_guid.json");
    let (code, out, err) = env.run(&["credspec", "validate", "--strict", p(&unknown)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("info[CS080] ActiveDirectoryConfig.HostAccountConfig.PluginGUID"),
        "{out}"
    );
    assert!(out.contains(&format!("{}: ok", p(&unknown))), "{out}");
    let (code, out, _) = env.run(&["--output", "json", "credspec", "validate", p(&unknown)]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["diagnostics"][0]["severity"], "info");
    assert_eq!(
        (
            v[0]["errors"].clone(),
            v[0]["warnings"].clone(),
            v[0]["valid"].clone()
        ),
        (json!(0), json!(0), json!(true))
    );
    let (code, out, err) = env.run(&["--output", "json", "credspec", "show", p(&unknown)]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["errors"].clone(), v["warnings"].clone()),
        (json!(0), json!(0))
    );
    let (_, _, err) = env.run(&["credspec", "show", p(&unknown)]);
    assert!(!err.contains("note:"), "{err}");

    // A password in PluginInput is a warning: --strict fails on it.
    let password = fixture("plaintext_password_plugin_input.json");
    let (code, out, _) = env.run(&["credspec", "validate", "--strict", p(&password)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("warning[CS088]") && out.contains("secret store"),
        "{out}"
    );
}

#[test]
fn new_writes_what_new_credentialspec_writes() {
    let env = Env::new();
    let (code, out, err) = env.run(NEW_ARGS);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("{\n    \"CmsPlugins\":  [\n                       \"ActiveDirectory\"\n"),
        "{out}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"],
        json!([{"Name": "WebApp01", "Scope": "contoso.com"}, {"Name": "WebApp01", "Scope": "CONTOSO"}])
    );
    // What it writes lints clean.
    env.cmd()
        .args(["credspec", "validate", "--strict", "-"])
        .write_stdin(out)
        .assert()
        .code(0);

    // --save: {netbios}_{account}.json in the credential-spec directory, never clobbered.
    let dir = env.dir.path().join("CredentialSpecs");
    let mut save = NEW_ARGS.to_vec();
    save.extend(["--save", "--credspec-dir", p(&dir)]);
    env.cmd()
        .args(&save)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("contoso_webapp01.json"));
    let file = dir.join("contoso_webapp01.json");
    let first = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, "edited").unwrap();
    env.cmd()
        .args(&save)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("--force"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "edited");
    save.push("--force");
    env.cmd().args(&save).assert().code(0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    // The default directory is under the state directory off Windows.
    #[cfg(not(windows))]
    {
        let mut default = NEW_ARGS.to_vec();
        default.push("--save");
        env.cmd().args(&default).assert().code(0);
        assert!(
            env.state()
                .join("CredentialSpecs/contoso_webapp01.json")
                .exists()
        );
        env.cmd()
            .args(["credspec", "validate", "file://contoso_webapp01.json"])
            .assert()
            .code(0);
    }
}

#[test]
fn new_with_accounts_and_plugin_input_from_a_file() {
    let env = Env::new();
    let input = env.file(
        "input.txt",
        format!("{{\"credentialArn\": \"arn:aws:secretsmanager:us-west-2:123456789012:secret:{SECRET}\"}}\n").as_bytes(),
    );
    let mut args = NEW_ARGS.to_vec();
    args.extend([
        "--forest",
        "contoso.com",
        "--additional-account",
        "WebApp02@emea.contoso.com",
        "--plugin-guid",
        "859E1386-BDB4-49E8-85C7-3070B13920E1",
        "--plugin-input-file",
        p(&input),
    ]);
    let (code, out, err) = env.run(&args);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["ActiveDirectoryConfig"]["GroupManagedServiceAccounts"][2],
        json!({"Name": "WebApp02", "Scope": "emea.contoso.com"})
    );
    let host = &v["ActiveDirectoryConfig"]["HostAccountConfig"];
    assert_eq!(host["PluginGUID"], "{859E1386-BDB4-49E8-85C7-3070B13920E1}");
    // An input of the wrong shape for the plug-in is refused, naming the flag, not the input.
    let bad = env.file(
        "bad.txt",
        format!("SecretUri=https://{SECRET}.example.com/x\n").as_bytes(),
    );
    let mut bad_args = NEW_ARGS.to_vec();
    bad_args.extend([
        "--plugin-guid",
        "{CCC2A336-D7F3-4818-A213-272B7924213E}",
        "--plugin-input-file",
        p(&bad),
    ]);
    let (code, out, err) = env.run(&bad_args);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("--plugin-input: `PluginInput` has no `ObjectId`"),
        "{err}"
    );
    assert!(err.contains("does not name a Key Vault host"), "{err}");
    assert!(!format!("{out}{err}").contains(SECRET), "{out}{err}");
    assert_eq!(
        host["PluginInput"],
        format!(
            "{{\"credentialArn\": \"arn:aws:secretsmanager:us-west-2:123456789012:secret:{SECRET}\"}}"
        )
    );
    assert_eq!(host["PortableCcgVersion"], "1");
    let mut no_input = NEW_ARGS.to_vec();
    no_input.extend(["--plugin-guid", "859E1386-BDB4-49E8-85C7-3070B13920E1"]);
    env.cmd()
        .args(&no_input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--plugin-input"));
}

#[test]
fn new_refuses_bad_options_naming_each_flag() {
    let env = Env::new();
    let (code, out, err) = env.run(&[
        "credspec",
        "new",
        "--account",
        "CONTOSO\\WebApp01$",
        "--domain",
        "contoso.com",
        "--netbios",
        "CONTOSO",
        "--sid",
        "S-1-5-21-1-2-3-1105",
        "--guid",
        "{GDMA0342-266A-4D1P-831J-20990E82944F}",
        "--additional-account",
        "WebApp02@not a domain",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    for says in [
        "--sid: `S-1-5-21-1-2-3-1105` looks like an account SID",
        "--account: `CONTOSO\\WebApp01$` ends with `$`",
        "--account: `CONTOSO\\WebApp01$` includes a domain",
        "--guid: ",
        "--additional-account `WebApp02@not a domain`",
    ] {
        assert!(err.contains(says), "{says}: {err}");
    }
    env.cmd()
        .args(["credspec", "new", "--account", "a"])
        .assert()
        .code(2);
    env.cmd()
        .args(["credspec", "new", "--force"])
        .assert()
        .code(2);
}

#[test]
fn help_documents_the_credspec_commands() {
    let env = Env::new();
    for (args, says) in [
        (vec!["credspec", "--help"], "validate"),
        (vec!["credspec", "validate", "--help"], "--strict"),
        (vec!["credspec", "show", "--help"], "--credspec-dir"),
        (vec!["credspec", "new", "--help"], "--plugin-input-file"),
        (vec!["instances", "add", "--help"], "--no-lint"),
        (vec!["probe", "--help"], "file://NAME"),
    ] {
        env.cmd()
            .args(&args)
            .assert()
            .code(0)
            .stdout(predicate::str::contains(says));
    }
}
