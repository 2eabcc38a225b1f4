//! How values are shown in messages: container ids, names and paths with control and
//! invisible format characters escaped and long values cut, and error chains flattened onto
//! one line. The bottom layer: it knows nothing of HCS, files or the lifecycle.

use std::fmt;

/// A container id (or any name a message repeats) made fit for an error message: control
/// characters and invisible format characters (Unicode category Cf: bidirectional overrides
/// such as U+202E, zero-width spaces) escaped, long values cut. The one rule for showing
/// values in messages (`credspec::syntax::shown` is the same).
#[derive(Clone, PartialEq, Eq)]
pub struct ShownId(String);

impl ShownId {
    /// Makes the shown form of an id.
    #[must_use]
    pub fn new(id: &str) -> Self {
        ShownId(shown_cut(id, 80))
    }
}

/// `value` with control and format characters escaped, cut after `max` characters (`...`
/// marks the cut): the rule behind [`ShownId`].
pub(crate) fn shown_cut(value: &str, max: usize) -> String {
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

/// A file path made fit for a message by the same rule as [`ShownId`], with room for real
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

impl fmt::Display for ShownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
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

/// Flattens an error and its sources onto one line (`a: b: c`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_ids_are_printable_and_short() {
        assert_eq!(ShownId::new("a\nb\u{7}").to_string(), "a\\nb\\u{7}");
        assert_eq!(
            ShownId::new("a\u{202e}b\u{200b}").to_string(),
            "a\\u{202e}b\\u{200b}"
        );
        let long = "x".repeat(300);
        let shown = ShownId::new(&long).to_string();
        assert!(shown.len() < 100 && shown.ends_with("..."));
    }
}
