//! How names and paths are shown in messages: control characters and invisible format
//! characters (Unicode category Cf: bidirectional overrides such as U+202E, zero-width
//! spaces) escaped, long values cut. The one rule for every credguard message; it lives in
//! this, the lowest of credguard's crates, because state-file errors name paths, and the
//! library's `credguard::text` re-exports it.

/// `value` with control and format characters escaped, cut after `max` characters (`...`
/// marks the cut): the rule behind `credguard::text::ShownId`.
pub fn shown_cut(value: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in value.chars().enumerate() {
        if n == max {
            out.push_str("...");
            break;
        }
        if c.is_control() || is_format_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A file path made fit for a message by the same rule as [`shown_cut`], with room for real
/// paths: up to 512 characters are kept; a longer path keeps its first and last 200
/// characters around `...` (the end names the file).
#[must_use]
pub fn shown_path(value: &str) -> String {
    const KEEP: usize = 200;
    let count = value.chars().count();
    if count <= 512 {
        return shown_cut(value, 512);
    }
    let tail: String = value.chars().skip(count - KEEP).collect();
    format!("{}{}", shown_cut(value, KEEP), shown_cut(&tail, KEEP))
}

/// A path in a message: [`shown_path`] of its text (a directory's name is the user's).
#[must_use]
pub fn shown_file(path: &std::path::Path) -> String {
    shown_path(&path.to_string_lossy())
}

/// Whether a character is of Unicode general category Cf (format): invisible characters
/// that change how text around them is shown or compared, such as U+202E RIGHT-TO-LEFT
/// OVERRIDE, U+200B ZERO WIDTH SPACE, U+FEFF ZERO WIDTH NO-BREAK SPACE, U+2066..U+2069 the
/// bidirectional isolates and U+00AD SOFT HYPHEN. The category comes from the Unicode
/// Character Database through the `unicode-properties` crate, not from a partial list.
#[must_use]
pub fn is_format_char(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// An error and its sources on one line (`a: b: c`); line breaks inside a message become
/// spaces. The one flattening of error chains: the library's logs, the emulator's messages
/// and the CLI's report lines all use it.
#[must_use]
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
