//! Turning a `--credspec` argument into the credential spec text sent to HCS.

use std::io::Read;

use crate::exit::CliError;

/// The largest input read, before any other check (the spec limit is enforced later).
const READ_LIMIT: u64 = 1024 * 1024;

/// Reads the credential spec named by a `--credspec` argument: a file path, or `-` for
/// standard input.
pub fn read_credspec(arg: &str) -> Result<String, CliError> {
    let (name, bytes) = if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(READ_LIMIT)
            .read_to_end(&mut buf)
            .map_err(|e| {
                CliError::usage(format!(
                    "cannot read the credential spec from standard input: {e}"
                ))
            })?;
        ("standard input".to_owned(), buf)
    } else {
        let bytes = std::fs::read(arg).map_err(|e| {
            CliError::usage(format!("cannot read the credential spec file `{arg}`: {e}"))
        })?;
        (format!("`{arg}`"), bytes)
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::usage(format!("the credential spec in {name} is not UTF-8 text")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
    if let Some(reason) = credguard::input::credential_spec_problem(&text) {
        return Err(CliError::usage(format!(
            "the credential spec in {name} cannot be used: {reason}"
        )));
    }
    Ok(text)
}
