//! Printing results: the same serde types as the library for JSON, short lines for text.
//! Every credential spec shown goes through redaction unless `--show-secrets`.

use clap::ValueEnum;
use credguard::redact::redact_value;
use credguard::schema::ContainerCredentialGuardInstance;
use serde_json::Value;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    Text,
    /// JSON for programs.
    Json,
}

/// A JSON value with secrets redacted unless asked otherwise.
pub fn shown(mut v: Value, show_secrets: bool) -> Value {
    if !show_secrets {
        redact_value(&mut v);
    }
    v
}

/// An instance as JSON (wire field names), secrets redacted unless asked otherwise.
pub fn instance_json(inst: &ContainerCredentialGuardInstance, show_secrets: bool) -> Value {
    shown(
        serde_json::to_value(inst).unwrap_or(Value::Null),
        show_secrets,
    )
}

/// Prints a JSON value on one line.
pub fn print_json(v: &Value) {
    println!("{v}");
}

/// An instance as text lines (without the credential spec).
pub fn print_instance_text(inst: &ContainerCredentialGuardInstance) {
    println!("container id:   {}", inst.id);
    match &inst.credential_guard {
        Some(cg) => {
            println!("transport:      {}", cg.transport);
            println!("cookie:         {}", or_none(&cg.cookie));
            println!("rpc endpoint:   {}", or_none(&cg.rpc_endpoint));
            println!("gMSA:           {}", gmsa_summary(&cg.credential_spec));
        }
        None => println!("credential guard state: (none listed)"),
    }
    if let Some(hv) = &inst.hv_socket_config {
        println!("hvsocket service id: {}", or_none(&hv.service_id));
        if let Some(sc) = &hv.service_config {
            println!("  bind sddl:    {}", or_none(&sc.bind_security_descriptor));
            println!(
                "  connect sddl: {}",
                or_none(&sc.connect_security_descriptor)
            );
            println!(
                "  wildcard binds: {}, disabled: {}",
                sc.allow_wildcard_binds, sc.disabled
            );
        }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

/// `webapp01 in contoso.com` from a credential spec, without anything secret.
pub fn gmsa_summary(spec: &str) -> String {
    let v: Value = match serde_json::from_str(spec) {
        Ok(v) => v,
        Err(_) => return "(credential spec is not JSON)".to_owned(),
    };
    let dj = &v["DomainJoinConfig"];
    let account = dj["MachineAccountName"].as_str().unwrap_or("?");
    let domain = dj["DnsName"].as_str().unwrap_or("?");
    format!("{account} in {domain}")
}
