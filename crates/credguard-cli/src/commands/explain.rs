//! `credguard explain`: what the Windows status codes and CCG event ids in an error message
//! mean, their known causes in gMSA context, and what to check next. The library finds,
//! decodes and explains ([`credguard::explain`]); this prints.

use std::io::Read;

use credguard::explain::{Explanation, FORMS, Layer, explain_text};

use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, emit, text};

pub const EXAMPLES: &str = "\
Examples:
  credguard explain 'hcs::CreateComputeSystem: winapi error #3489792023'
  credguard explain 0xD00000A7 -805175273 'CCG event 4'
  credguard explain - < kubelet.log
  credguard --output json explain 3489660941";

/// The most read from standard input: an error message, a log excerpt.
const STDIN_LIMIT: u64 = 4 << 20;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Status codes, event ids or whole error messages, joined with spaces; `-` reads the
    /// text from standard input. Recognised: 0x-prefixed hex (0xD0020017), 8 hex digits
    /// whose first is 8-F (D0020017), a decimal of 2147483648 or more (3489792023), a
    /// negative decimal as Go prints an int32 (-805175273), any number after `#`, `error` or
    /// `status` (#1722), a symbolic name (HCS_E_ACCESS_DENIED), and an event id after `event`
    /// or `event id` (CCG event 4). Other numbers are prose.
    #[arg(
        value_name = "CODE-OR-TEXT",
        required = true,
        allow_negative_numbers = true
    )]
    pub text: Vec<String>,
}

/// Needs no backend and no state directory.
pub fn run(output: OutputFormat, args: &ExplainArgs) -> Result<Exit, CliError> {
    let input = if args.text == ["-"] {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(STDIN_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        args.text.join(" ")
    };
    let report = explain_text(&input);
    if report.codes.is_empty() {
        return Err(CliError::usage(format!(
            "no status code or event id found; `credguard explain` recognises {FORMS}"
        )));
    }
    match output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(output, &report),
        OutputFormat::Text => {
            for (i, code) in report.codes.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                print_explanation(code);
            }
        }
    }
    Ok(Exit::Ok)
}

fn print_explanation(e: &Explanation) {
    match (e.unsigned, e.signed) {
        (Some(u), Some(s)) => outln!("{}: {} (unsigned {u}, signed {s})", text(&e.found), e.value),
        _ => outln!("{}: event id {}", text(&e.found), e.value),
    }
    for layer in &e.layers {
        print_layer(layer);
    }
    if !e.known {
        outln!("  not in credguard's table: decoded from its bits only");
    }
}

fn print_layer(l: &Layer) {
    let mut head = format!("  {} {}", l.form.label(), l.code);
    if let Some(provider) = &l.provider {
        head.push_str(&format!(" of {provider}"));
    }
    if let Some(name) = &l.name {
        let sep = if l.provider.is_some() { ": " } else { " " };
        head.push_str(&format!("{sep}{name}"));
    }
    if let Some(via) = l.via {
        head.push_str(&format!(" (through {via})"));
    }
    if let Some(f) = &l.fields {
        head.push_str(&format!(": {}", f.severity));
        if f.nt_bit {
            head.push_str(", N bit set (HRESULT_FROM_NT)");
        }
        if f.customer {
            head.push_str(", customer bit set");
        }
        head.push_str(&format!(", facility 0x{:X}", f.facility));
        if let Some(name) = f.facility_name {
            head.push_str(&format!(" {name}"));
        }
        head.push_str(&format!(", code 0x{:04X}", f.code));
    }
    outln!("{head}");
    if let Some(message) = &l.message {
        outln!("    message: {message}");
    }
    for cause in &l.causes {
        outln!("    cause: {cause}");
    }
    for step in &l.next_steps {
        outln!("    next: {step}");
    }
    for source in &l.sources {
        outln!("    source: {source}");
    }
}
