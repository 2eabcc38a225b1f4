//! The offline manifest check over realistic manifests: RBAC allowed and denied, unknown
//! names, inline contents, init containers, hostnames, specs the API server refuses, lint
//! diagnostics with their lines, `List` and multi-document files, unreadable files.

use std::path::{Path, PathBuf};

use credguard_k8s::check::{Report, check_paths, sarif};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

fn cluster() -> Report {
    check_paths(&[fixtures().join("cluster")])
}

/// `(file name, line, rule, object, container)` of every finding.
fn rows(r: &Report) -> Vec<(String, u32, String, String, Option<String>)> {
    r.findings
        .iter()
        .map(|f| {
            (
                Path::new(&f.location.file)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                f.location.line,
                f.rule.clone(),
                f.object.clone(),
                f.container.clone(),
            )
        })
        .collect()
}

#[test]
fn the_cluster_fixtures_give_each_finding_at_its_line() {
    let r = cluster();
    let got = rows(&r);
    let want: Vec<(&str, u32, &str, &str, Option<&str>)> = vec![
        // The account SID, at the Sid member's line.
        (
            "01-credspecs.yaml",
            46,
            "CS011",
            "GMSACredentialSpec webapp2-credspec",
            None,
        ),
        // `PortableCcgVersion: 1` is an integer: the API server refuses the spec.
        (
            "01-credspecs.yaml",
            58,
            "K8S007",
            "GMSACredentialSpec webapp3-credspec",
            None,
        ),
        // A Deployment without spec.hostname: pods are named NAME-HASH-SUFFIX.
        (
            "03-workloads.yaml",
            25,
            "K8S006",
            "Deployment web/webapp2-frontend",
            None,
        ),
        // The default service account of `web` has no RoleBinding for webapp2-credspec.
        (
            "03-workloads.yaml",
            46,
            "K8S002",
            "Deployment web/webapp2-frontend",
            Some("iis"),
        ),
        // ... and webapp2-credspec has a lint error (CS011 above).
        (
            "03-workloads.yaml",
            46,
            "K8S008",
            "Deployment web/webapp2-frontend",
            Some("iis"),
        ),
        ("04-list.json", 11, "K8S001", "Pod web/typo", None),
        (
            "04-list.json",
            23,
            "K8S005",
            "Pod web/inline",
            Some("init:setup"),
        ),
        (
            "04-list.json",
            27,
            "K8S003",
            "Pod web/inline",
            Some("nameless"),
        ),
        (
            "04-list.json",
            32,
            "K8S004",
            "Pod web/inline",
            Some("different"),
        ),
    ];
    let want: Vec<_> = want
        .into_iter()
        .map(|(f, l, r, o, c)| {
            (
                f.to_owned(),
                l,
                r.to_owned(),
                o.to_owned(),
                c.map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(got, want, "{:#?}", r.findings);
    assert_eq!((r.errors, r.warnings), (7, 2));
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.files.len(), 4);
    // The allowed ones: webapp1 through its RoleBinding, the CronJob through the
    // `system:serviceaccounts:batch` group and wildcards, `same` with equal contents.
    assert!(
        !r.findings
            .iter()
            .any(|f| f.object.contains("webapp1") && f.object.starts_with("Deployment"))
    );
    assert!(!r.findings.iter().any(|f| f.object.contains("report")));
    assert!(
        !r.findings
            .iter()
            .any(|f| f.container.as_deref() == Some("same"))
    );
}

#[test]
fn rbac_messages_say_which_account_spec_and_binding() {
    let r = cluster();
    let f = r.findings.iter().find(|f| f.rule == "K8S002").unwrap();
    assert!(
        f.message.contains("`web/default`") && f.message.contains("`webapp2-credspec`"),
        "{}",
        f.message
    );
    assert!(
        f.hint.contains("resourceNames: [\"webapp2-credspec\"]")
            && f.hint.contains("RoleBinding in namespace `web`"),
        "{}",
        f.hint
    );
}

#[test]
fn no_output_quotes_a_plugin_input() {
    let r = cluster();
    let text = format!("{}{}", serde_json::to_string(&r).unwrap(), sarif(&r));
    assert!(!text.contains("FIXTURE-SECRET"), "{text}");
}

#[test]
fn sarif_has_the_required_shape() {
    let r = cluster();
    let log = sarif(&r);
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif"));
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "credguard");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len());
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        let i = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], id);
        assert!(matches!(
            res["level"].as_str().unwrap(),
            "error" | "warning"
        ));
        assert!(!res["message"]["text"].as_str().unwrap().is_empty());
        let loc = &res["locations"][0]["physicalLocation"];
        assert!(
            loc["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .ends_with(".yaml")
                || loc["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap()
                    .ends_with(".json")
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn unreadable_files_are_named_with_their_line() {
    let r = check_paths(&[fixtures().join("broken")]);
    assert_eq!(r.exit_code(), 2);
    assert_eq!(r.unreadable.len(), 2, "{:?}", r.unreadable);
    let bad = &r.unreadable[0];
    assert!(bad.file.ends_with("bad.yaml"));
    assert!(bad.line.is_some_and(|l| l >= 6), "{bad:?}");
    assert!(
        r.unreadable[1].message.contains("not UTF-8"),
        "{:?}",
        r.unreadable[1]
    );
    let missing = check_paths(&[fixtures().join("no-such-file.yaml")]);
    assert_eq!(missing.exit_code(), 2);
    assert!(missing.unreadable[0].file.ends_with("no-such-file.yaml"));
}

#[test]
fn walks_stay_in_the_tree_in_name_order_and_refuse_huge_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("b")).unwrap();
    std::fs::copy(
        fixtures().join("cluster/01-credspecs.yaml"),
        root.join("b/z.yaml"),
    )
    .unwrap();
    std::fs::copy(fixtures().join("cluster/02-rbac.yaml"), root.join("a.yml")).unwrap();
    std::fs::write(root.join("notes.txt"), "not a manifest").unwrap();
    #[cfg(unix)]
    {
        // A loop and a link out of the tree: neither is followed.
        std::os::unix::fs::symlink(root, root.join("b/loop")).unwrap();
        std::os::unix::fs::symlink(fixtures().join("broken/bad.yaml"), root.join("out.yaml"))
            .unwrap();
    }
    let r = check_paths(&[root.to_path_buf()]);
    assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);
    let names: Vec<&str> = r
        .files
        .iter()
        .map(|f| Path::new(f).file_name().and_then(|n| n.to_str()).unwrap())
        .collect();
    assert_eq!(names, ["a.yml", "z.yaml"]);
    let big = root.join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(credguard_k8s::check::MAX_FILE_BYTES + 1).unwrap();
    let r = check_paths(&[big]);
    assert_eq!(r.exit_code(), 2);
    assert!(
        r.unreadable[0].message.contains("larger than"),
        "{:?}",
        r.unreadable
    );
}

#[test]
fn a_clean_input_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("cluster/01-credspecs.yaml")).unwrap();
    let first = text.split("\n---\n").next().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), first).unwrap();
    let r = check_paths(&[dir.path().to_path_buf()]);
    assert_eq!(
        (r.exit_code(), r.findings.len()),
        (0, 0),
        "{:?}",
        r.findings
    );
}

/// Whether the pod `app/web` (service account `web`) is refused `use` of `spec1` with
/// `rbac` (YAML documents) in the input.
fn denied(rbac: &str) -> bool {
    let spec = std::fs::read_to_string(fixtures().join("cluster/01-credspecs.yaml")).unwrap();
    let spec = spec
        .split("\n---\n")
        .next()
        .unwrap()
        .replace("webapp1-credspec", "spec1");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: app\nspec:\n  serviceAccountName: web\n  hostname: web\n  securityContext:\n    windowsOptions:\n      gmsaCredentialSpecName: spec1\n  containers:\n  - name: c\n    image: i\n";
    let text = format!("{spec}\n---\n{pod}---\n{rbac}");
    let objects = credguard_k8s::check::parse("in.yaml", &text).unwrap();
    let r = credguard_k8s::check::check(&objects);
    let other: Vec<_> = r.findings.iter().filter(|f| f.rule != "K8S002").collect();
    assert!(other.is_empty(), "{other:?}");
    r.findings.iter().any(|f| f.rule == "K8S002")
}

const ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: use-spec1\nrules:\n- apiGroups: [windows.k8s.io]\n  resources: [gmsacredentialspecs]\n  verbs: [use]\n  resourceNames: [spec1]\n";

fn binding(kind: &str, ns: Option<&str>, subject: &str, role: &str) -> String {
    let ns = ns
        .map(|n| format!("\n  namespace: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: b{ns}\nsubjects:\n- {subject}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  {role}\n"
    )
}

#[test]
fn rbac_is_evaluated_as_the_api_server_does() {
    let sa = "{kind: ServiceAccount, name: web, namespace: app}";
    let cr = "kind: ClusterRole\n  name: use-spec1";
    let allowed = [
        binding("RoleBinding", Some("app"), sa, cr),
        binding("ClusterRoleBinding", None, sa, cr),
        binding(
            "RoleBinding",
            Some("app"),
            "{kind: Group, name: 'system:serviceaccounts:app', apiGroup: rbac.authorization.k8s.io}",
            cr,
        ),
        binding(
            "ClusterRoleBinding",
            None,
            "{kind: Group, name: 'system:serviceaccounts', apiGroup: rbac.authorization.k8s.io}",
            cr,
        ),
        binding(
            "RoleBinding",
            Some("app"),
            "{kind: User, name: 'system:serviceaccount:app:web', apiGroup: rbac.authorization.k8s.io}",
            cr,
        ),
    ];
    for b in &allowed {
        assert!(!denied(&format!("{ROLE}---\n{b}")), "{b}");
    }
    let denied_cases = [
        // No binding at all.
        String::new(),
        // The service account of another namespace, or a binding in another namespace.
        binding(
            "RoleBinding",
            Some("app"),
            "{kind: ServiceAccount, name: web, namespace: other}",
            cr,
        ),
        binding("RoleBinding", Some("other"), sa, cr),
        binding(
            "ClusterRoleBinding",
            None,
            "{kind: Group, name: 'system:serviceaccounts:other', apiGroup: rbac.authorization.k8s.io}",
            cr,
        ),
        // Another account; a role that does not exist.
        binding(
            "RoleBinding",
            Some("app"),
            "{kind: ServiceAccount, name: default, namespace: app}",
            cr,
        ),
        binding(
            "RoleBinding",
            Some("app"),
            sa,
            "kind: ClusterRole\n  name: nope",
        ),
    ];
    for b in &denied_cases {
        assert!(denied(&format!("{ROLE}---\n{b}")), "{b}");
    }
    // Rules: another spec's name, another verb, another group; wildcards allow.
    let b = binding("RoleBinding", Some("app"), sa, cr);
    for (role, want_denied) in [
        (ROLE.replace("[spec1]", "[spec2]"), true),
        (ROLE.replace("[use]", "[get, list]"), true),
        (ROLE.replace("[windows.k8s.io]", "[apps]"), true),
        (ROLE.replace("  resourceNames: [spec1]\n", ""), false),
        (
            ROLE.replace("[use]", "['*']")
                .replace("[windows.k8s.io]", "['*']"),
            false,
        ),
        (ROLE.replace("[gmsacredentialspecs]", "['*']"), false),
    ] {
        assert_eq!(denied(&format!("{role}---\n{b}")), want_denied, "{role}");
    }
    // A Role in the binding's namespace works; a Role of another namespace does not.
    let role = ROLE
        .replace("kind: ClusterRole", "kind: Role")
        .replace("name: use-spec1", "name: use-spec1\n  namespace: app");
    let rb = binding(
        "RoleBinding",
        Some("app"),
        sa,
        "kind: Role\n  name: use-spec1",
    );
    assert!(!denied(&format!("{role}---\n{rb}")));
    assert!(denied(&format!(
        "{}---\n{rb}",
        role.replace("namespace: app", "namespace: other")
    )));
}

#[test]
fn syntax_errors_have_the_file_line_in_later_documents() {
    let text = "# first\nkind: ServiceAccount\nmetadata: {name: a}\n---\nkind: Pod\nmetadata:\n  name: [b\n";
    let (line, message) = credguard_k8s::check::parse("f.yaml", text).unwrap_err();
    assert!(line.is_some_and(|l| l >= 7), "{line:?} {message}");
    assert!(!message.contains(" at line "), "{message}");
    // Comments-only and empty documents are no objects; a `List` is unpacked.
    let objects = credguard_k8s::check::parse(
        "f.yaml",
        "---\n# nothing\n---\napiVersion: v1\nkind: List\nitems:\n- kind: ServiceAccount\n  metadata:\n    name: a\n- kind: ServiceAccount\n  metadata:\n    name: b\n",
    )
    .unwrap();
    let lines: Vec<u32> = objects.iter().map(|o| o.line).collect();
    assert_eq!(lines, [9, 12]);
}

#[test]
fn odd_shapes_are_no_panic_and_no_finding() {
    let text = "kind: Pod\nmetadata: 5\nspec:\n  containers: {a: 1}\n  securityContext:\n    windowsOptions: [1]\n---\nkind: Deployment\nspec:\n  template: []\n---\nkind: RoleBinding\napiVersion: rbac.authorization.k8s.io/v1\nsubjects: 7\nroleRef: null\n---\nkind: GMSACredentialSpec\napiVersion: windows.k8s.io/v1\nmetadata: {name: [x]}\ncredspec: []\n---\n- a\n- b\n---\n42\n---\nkind: Pod\nspec:\n  initContainers:\n  - securityContext: {windowsOptions: {gmsaCredentialSpecName: 5, gmsaCredentialSpec: {}}}\n";
    let objects = credguard_k8s::check::parse("odd.yaml", text).unwrap();
    let r = credguard_k8s::check::check(&objects);
    // The spec without a usable name and with a credspec of the wrong type is refused.
    assert!(
        r.findings.iter().all(|f| f.rule == "K8S007"),
        "{:?}",
        r.findings
    );
}
