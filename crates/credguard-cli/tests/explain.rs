//! `credguard explain`: the codes users post decode to their NTSTATUS / HRESULT and a cause;
//! one JSON document; exit 0 for any code found (known or not), 2 for a text without one.

mod common;

use common::Env;
use serde_json::Value;

/// The messages users post (microsoft/Windows-Containers issues, windows-gmsa), verbatim.
const QUOTED: [(&str, &str, &str, &str); 3] = [
    (
        "hcs::CreateComputeSystem: winapi error #3489792023",
        "0xD0020017",
        "0xC0020017",
        "RPC_NT_SERVER_UNAVAILABLE",
    ),
    (
        "hcs::CreateComputeSystem: winapi error #3489661095",
        "0xD00000A7",
        "0xC00000A7",
        "STATUS_BAD_VALIDATION_CLASS",
    ),
    (
        "hcs::CreateComputeSystem: winapi error #3489660941",
        "0xD000000D",
        "0xC000000D",
        "STATUS_INVALID_PARAMETER",
    ),
];

#[test]
fn each_quoted_message_decodes_to_its_ntstatus_and_a_cause() {
    let env = Env::new();
    for (message, hresult, ntstatus, name) in QUOTED {
        let (code, out, err) = env.run(&["explain", message]);
        assert_eq!(code, 0, "{message}: {err}");
        assert!(
            out.contains(&format!(
                "HRESULT {hresult}: failure, N bit set (HRESULT_FROM_NT)"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "NTSTATUS {ntstatus} {name} (through HRESULT_FROM_NT): error"
            )),
            "{out}"
        );
        assert!(out.contains("    cause: "), "{out}");
        assert!(out.contains("    next: "), "{out}");
        assert!(out.contains("    source: https://"), "{out}");
    }
}

#[test]
fn json_is_one_document_of_codes_with_their_layers() {
    let env = Env::new();
    let (code, out, err) = env.run(&[
        "--output",
        "json",
        "explain",
        "winapi error #3489792023; again 0xD0020017;",
        "-2143878885",
        "CCG event 4",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let codes = v["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 3, "{v:#}");
    let rpc = &codes[0];
    assert_eq!(rpc["found"], "#3489792023");
    assert_eq!(rpc["kind"], "status");
    assert_eq!(rpc["value"], "0xD0020017");
    assert_eq!(rpc["unsigned"], 3_489_792_023_u64);
    assert_eq!(rpc["signed"], -805_175_273);
    assert_eq!(rpc["known"], true);
    assert_eq!(rpc["layers"][0]["form"], "hresult");
    assert_eq!(rpc["layers"][0]["fields"]["nt_bit"], true);
    let nt = &rpc["layers"][1];
    assert_eq!(nt["form"], "ntstatus");
    assert_eq!(nt["code"], "0xC0020017");
    assert_eq!(nt["via"], "HRESULT_FROM_NT");
    assert_eq!(nt["name"], "RPC_NT_SERVER_UNAVAILABLE");
    assert_eq!(nt["fields"]["facility"], 2);
    assert_eq!(nt["fields"]["facility_name"], "FACILITY_RPC_RUNTIME");
    assert_eq!(nt["message"], "The RPC server is unavailable.");
    for key in ["causes", "next_steps", "sources"] {
        assert!(!nt[key].as_array().unwrap().is_empty(), "{key}");
    }
    let hcs = &codes[1];
    assert_eq!(hcs["found"], "-2143878885");
    assert_eq!(hcs["layers"][0]["name"], "HCS_E_ACCESS_DENIED");
    let event = &codes[2];
    assert_eq!(event["kind"], "event");
    assert_eq!(event["value"], "4");
    assert_eq!(
        event["layers"][0]["provider"],
        "Microsoft-Windows-Containers-CCG"
    );
    assert!(
        event["layers"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Object was not found in registry")
    );
}

#[test]
fn win32_and_plain_ntstatus_codes() {
    let env = Env::new();
    let (code, out, _) = env.run(&["explain", "0x80070005", "0xC000005E", "REGDB_E_CLASSNOTREG"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("HRESULT 0x80070005 E_ACCESSDENIED: failure, facility 0x7 FACILITY_WIN32"),
        "{out}"
    );
    assert!(
        out.contains("Win32 error 5 ERROR_ACCESS_DENIED (through HRESULT_FROM_WIN32)"),
        "{out}"
    );
    assert!(
        out.contains("NTSTATUS 0xC000005E STATUS_NO_LOGON_SERVERS: error"),
        "{out}"
    );
    assert!(
        out.contains("HRESULT 0x80040154 REGDB_E_CLASSNOTREG"),
        "{out}"
    );
}

#[test]
fn an_unknown_code_is_decoded_from_its_bits_and_succeeds() {
    let env = Env::new();
    let (code, out, err) = env.run(&["explain", "0xA1234567"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("HRESULT 0xA1234567: failure, customer bit set, facility 0x123, code 0x4567"),
        "{out}"
    );
    assert!(out.contains("not in credguard's table"), "{out}");
    let (code, out, _) = env.run(&["--output", "json", "explain", "0xA1234567"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["codes"][0]["known"], false);
}

#[test]
fn text_without_a_code_is_a_usage_error_naming_the_forms() {
    let env = Env::new();
    for args in [
        &[
            "explain",
            "the pod listens on port 443 since event-less 2026-08-07",
        ][..],
        &["--output", "json", "explain", "nothing here"],
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 2, "{args:?}");
        if args[0] == "--output" {
            // Under --output json the error is the one document on standard output.
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["error"]["exit_code"], 2, "{out}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no status code or event id found"),
                "{out}"
            );
        } else {
            assert!(out.is_empty(), "{out}");
        }
        assert!(err.contains("no status code or event id found"), "{err}");
        assert!(
            err.contains("0x-prefixed hex") && err.contains("#3489792023"),
            "{err}"
        );
    }
    let (code, _, _) = env.run(&["explain"]);
    assert_eq!(code, 2);
}

#[test]
fn standard_input_with_a_dash() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(["explain", "-"])
        .write_stdin(
            "Warning  Failed  kubelet  Error: failed to create containerd task: \
             hcs::CreateComputeSystem web-1: winapi error #3489660941: unknown\n",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("#3489660941: 0xD000000D"), "{stdout}");
    assert!(stdout.contains("STATUS_INVALID_PARAMETER"), "{stdout}");
}

#[test]
fn needs_no_state_directory() {
    let env = Env::new();
    let not_a_dir = env.file("not-a-dir", b"x");
    let out = env
        .cmd()
        .env("CREDGUARD_STATE_DIR", &not_a_dir)
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .args(["explain", "-805175273"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!env.state().exists());
}

#[test]
fn a_plugin_input_in_the_text_is_never_echoed() {
    let env = Env::new();
    let line = r#"level=debug msg="CredentialSpec:{\"ActiveDirectoryConfig\":{\"HostAccountConfig\":{\"PluginGUID\":\"{859E1386-BDB4-49E8-85C7-3070B13920E1}\",\"PluginInput\":\"contoso\\\\svc:CAFEF00D#4000000000\"}}}" err="hcs::CreateComputeSystem web-1: winapi error #3489792023""#;
    for args in [
        &["explain", line][..],
        &["--output", "json", "explain", line],
    ] {
        let (code, out, err) = env.run(args);
        assert_eq!(code, 0, "{err}");
        for secret in ["CAFEF00D", "4000000000", "svc", "0xCAFEF00D", "0xEE6B2800"] {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "{secret} in {out}{err}"
            );
        }
        assert!(out.contains("0xD0020017"), "{out}");
    }
}
