//! How values are shown in messages: container ids, names and paths with control and
//! invisible format characters escaped and long values cut, and error chains flattened onto
//! one line. The bottom layer: it knows nothing of HCS, files or the lifecycle.

use std::fmt;

use credguard_statefile::shown::shown_cut;
pub use credguard_statefile::shown::{is_format_char, shown_file, shown_path};

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

pub(crate) use credguard_statefile::shown::chain_line;

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
