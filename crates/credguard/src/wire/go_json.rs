//! Writing documents exactly as hcsshim's Go client writes them.
//!
//! Go's `encoding/json` writes compact JSON in struct field order and escapes `<`, `>` and
//! `&` as `\u003c`, `\u003e`, `\u0026`, and U+2028/U+2029 as `\u2028`/`\u2029`. serde_json
//! agrees on everything else (control characters included), so a formatter that adds those
//! five escapes makes our documents byte-identical to hcsshim's.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

#[derive(Debug, Default)]
struct GoCompatFormatter;

impl Formatter for GoCompatFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serialises a wire document the way hcsshim does (compact, Go's escaping).
///
/// # Errors
/// Only if the value's `Serialize` implementation fails, which none of this crate's
/// schema types do.
pub fn to_wire<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoCompatFormatter);
    value.serialize(&mut ser)?;
    // The formatter writes only whole UTF-8 sequences and ASCII escapes.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let s = to_wire("a<b>&c\u{2028}\u{2029}\n\u{1}é").unwrap();
        assert_eq!(s, r#""a\u003cb\u003e\u0026c\u2028\u2029\n\u0001é""#);
    }
}
