//! How the CLI shows an error chain on one line (in JSON fields, warnings, report lines);
//! `exit::CliError::print` shows it as `error:` and `caused by:` lines.

/// An error and its sources on one line (`a: b: c`); line breaks inside a message become
/// spaces.
pub fn chain_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string().replace('\n', " ");
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string().replace('\n', " "));
        next = e.source();
    }
    out
}
