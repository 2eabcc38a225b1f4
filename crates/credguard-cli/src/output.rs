//! Printing results: the same serde types as the library for JSON, short lines for text.
//! Every credential spec shown goes through redaction unless `--show-secrets`.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::documents::{ErrorBody, ErrorDoc};
use crate::exit::{CliError, Exit};

use clap::ValueEnum;
use credguard::redact::redact_value;
use credguard::wire::ContainerCredentialGuardInstance;
use serde_json::Value;

/// `println!` for results that never panics and never ends the process: once standard
/// output fails (a reader that closed the pipe, `credguard ... | head -1`), later lines are
/// dropped and the command runs to its own result, which is its exit status
/// ([`finish`]).
macro_rules! outln {
    () => { $crate::output::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics: an error, warning or note for a standard error that is
/// closed (`2>&-`) or a pipe whose reader went away is dropped, and the command ends with
/// its own exit status.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::write_err_line(format_args!($($arg)*)) };
}

/// Writes one line to standard error, ignoring any failure (see [`errln!`]).
pub fn write_err_line(args: std::fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{args}").and_then(|()| err.flush());
}

/// No failure yet; the reader went away; another write failure.
const OUT_OK: u8 = 0;
const OUT_CLOSED: u8 = 1;
const OUT_FAILED: u8 = 2;

static OUT_STATE: AtomicU8 = AtomicU8::new(OUT_OK);

/// Writes one line to standard output (see [`outln!`]).
pub fn write_line(args: std::fmt::Arguments<'_>) {
    if OUT_STATE.load(Ordering::Relaxed) != OUT_OK {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            OUT_STATE.store(OUT_CLOSED, Ordering::Relaxed);
        } else {
            OUT_STATE.store(OUT_FAILED, Ordering::Relaxed);
            errln!("error: cannot write to standard output: {e}");
        }
    }
}

/// Writes generated text (a completion script, a man page) to standard output as it is,
/// with the failure handling of [`outln!`].
pub fn write_bytes(bytes: &[u8]) {
    if OUT_STATE.load(Ordering::Relaxed) != OUT_OK {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            OUT_STATE.store(OUT_CLOSED, Ordering::Relaxed);
        } else {
            OUT_STATE.store(OUT_FAILED, Ordering::Relaxed);
            errln!("error: cannot write to standard output: {e}");
        }
    }
}

/// The exit status of a command that ended with `code`: its own, except that a command
/// that succeeded but could not write its output (other than to a reader that went away)
/// fails with 7.
pub fn finish(code: Exit) -> Exit {
    match OUT_STATE.load(Ordering::Relaxed) {
        OUT_FAILED if code == Exit::Ok => Exit::State,
        _ => code,
    }
}

/// A count with its noun, singular or plural as the count asks: `1 change`, `2 changes`,
/// `0 failures`. Every count the CLI prints goes through here.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    Text,
    /// One JSON document for programs, errors included (docs/schema/ has their schemas).
    Json,
    /// JSON Lines: a result that is a JSON array (`emulator log`, the lists) one element a
    /// line; any other document on one line, as with `json`.
    Jsonl,
}

impl OutputFormat {
    /// Whether results are JSON (`json` or `jsonl`).
    pub fn is_json(self) -> bool {
        self != OutputFormat::Text
    }

    /// The format `--output` asks for in these (unparsed) arguments, for a usage error
    /// that ends before clap has said: the last `--output FORMAT` or `--output=FORMAT`
    /// before `--`; text when there is none or it is not a format.
    pub fn requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> OutputFormat {
        let mut format = OutputFormat::Text;
        let mut args = args.into_iter().skip(1);
        while let Some(arg) = args.next() {
            let value = match arg.to_str() {
                Some("--") => break,
                Some("--output") => args.next(),
                Some(a) => a.strip_prefix("--output=").map(Into::into),
                None => None,
            };
            if let Some(f) = value
                .as_ref()
                .and_then(|v| v.to_str())
                .and_then(|v| OutputFormat::from_str(v, false).ok())
            {
                format = f;
            }
        }
        format
    }
}

/// Whether a result document was printed: a command that failed after printing its
/// result (whose items carry their errors) prints no error document.
static DOC_PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints `doc`, the one result document of a command under `--output json` or `jsonl`.
pub fn emit<T: serde::Serialize>(format: OutputFormat, doc: &T) {
    let v = serde_json::to_value(doc).unwrap_or(Value::Null);
    DOC_PRINTED.store(true, Ordering::Relaxed);
    match (&v, format) {
        (Value::Array(items), OutputFormat::Jsonl) => {
            for item in items {
                outln!("{item}");
            }
        }
        _ => outln!("{v}"),
    }
}

/// Prints the error document of `e` on standard output when the command printed no result
/// document, under `--output json` or `jsonl`; the error also goes to standard error as
/// text. Same text as standard error: no secret is in either.
pub fn print_error(format: OutputFormat, e: &CliError) {
    e.print();
    if format.is_json() && !DOC_PRINTED.load(Ordering::Relaxed) {
        let mut chain = Vec::new();
        let mut next = e.error.source();
        while let Some(cause) = next {
            chain.push(cause.to_string());
            next = cause.source();
        }
        emit(
            format,
            &ErrorDoc {
                error: ErrorBody {
                    message: e.error.to_string(),
                    chain,
                    exit_code: e.code as u8,
                },
            },
        );
    }
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

/// A value HCS (or anyone who created an instance) chose, made fit for a line of text:
/// control and format characters escaped, cut after 80 characters, as every name credguard
/// shows. JSON output carries the values as they are.
pub fn text(value: &str) -> String {
    credguard::text::ShownId::new(value).to_string()
}

/// An instance as text lines (without the credential spec).
pub fn print_instance_text(inst: &ContainerCredentialGuardInstance) {
    outln!("container id:   {}", text(&inst.id));
    match &inst.credential_guard {
        Some(cg) => {
            outln!("transport:      {}", text(cg.transport.as_str()));
            outln!("cookie:         {}", text(or_none(&cg.cookie)));
            outln!("rpc endpoint:   {}", text(or_none(&cg.rpc_endpoint)));
            outln!("gMSA:           {}", gmsa_summary(&cg.credential_spec));
        }
        None => outln!("credential guard state: (none listed)"),
    }
    if let Some(hv) = &inst.hv_socket_config {
        outln!("hvsocket service id: {}", text(or_none(&hv.service_id)));
        if let Some(sc) = &hv.service_config {
            outln!(
                "  bind sddl:    {}",
                credguard::credspec::syntax::shown_path(or_none(&sc.bind_security_descriptor))
            );
            outln!(
                "  connect sddl: {}",
                credguard::credspec::syntax::shown_path(or_none(&sc.connect_security_descriptor))
            );
            outln!(
                "  wildcard binds: {}, disabled: {}",
                sc.allow_wildcard_binds,
                sc.disabled
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
    format!("{} in {}", text(account), text(domain))
}
