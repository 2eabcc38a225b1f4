//! JSON paths (`DomainJoinConfig.Sid`, `ActiveDirectoryConfig.GroupManagedServiceAccounts[1]`)
//! and the map from a path to the line of the source text it was read from.
//!
//! serde_json keeps no positions, so [`LineMap::from_json`] scans the text once more: a
//! small scanner over JSON that serde_json has already accepted, recording the line on which
//! each member name and each array element starts.

use std::collections::HashMap;
use std::fmt;

use serde::{Serialize, Serializer};

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A member of an object.
    Key(String),
    /// An element of an array, from 0.
    Index(usize),
}

/// Where in a credential spec something is, from its root object.
///
/// Shown as `DomainJoinConfig.Sid` or `ActiveDirectoryConfig.GroupManagedServiceAccounts[0].Name`;
/// a member name that is not a plain word is shown quoted (`["odd name"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<Segment>);

impl JsonPath {
    /// The root object.
    #[must_use]
    pub fn root() -> Self {
        JsonPath(Vec::new())
    }

    /// The path of a member of the object at this path.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        JsonPath(segments)
    }

    /// The path of an element of the array at this path.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        JsonPath(segments)
    }

    /// The path's steps, from the root.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the root.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path one step up, or `None` at the root.
    #[must_use]
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(JsonPath(rest.to_vec()))
    }

    /// This path with `prefix` in front of it.
    #[must_use]
    pub fn under(&self, prefix: &JsonPath) -> Self {
        let mut segments = prefix.0.clone();
        segments.extend(self.0.iter().cloned());
        JsonPath(segments)
    }

    /// This path without `prefix`, when it starts with it.
    #[must_use]
    pub fn strip_prefix(&self, prefix: &JsonPath) -> Option<Self> {
        self.0
            .strip_prefix(prefix.0.as_slice())
            .map(|rest| JsonPath(rest.to_vec()))
    }
}

fn is_plain_word(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain_word(key) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => {
                    let quoted = serde_json::to_string(key).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?;
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The line (from 1) on which each member and element of a JSON text starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineMap {
    lines: HashMap<JsonPath, u32>,
}

impl LineMap {
    /// A map that knows no lines (for specs that were not read from JSON text, such as
    /// YAML manifests).
    #[must_use]
    pub fn none() -> Self {
        LineMap::default()
    }

    /// A map that puts every path on one line (for a spec held in one JSON string of a
    /// bigger document, such as an OCI bundle's `windows.credentialSpec`).
    #[must_use]
    pub fn single(line: u32) -> Self {
        let mut lines = HashMap::new();
        lines.insert(JsonPath::root(), line);
        LineMap { lines }
    }

    /// The lines of a JSON text. The text must be valid JSON (serde_json has accepted it);
    /// on anything else the map holds the lines read up to that point.
    #[must_use]
    pub fn from_json(text: &str) -> Self {
        Self::scan(text).0
    }

    /// The lines of a JSON text, and the first member that appears twice in one object
    /// (at any depth), if any. The text must be valid JSON, as for [`LineMap::from_json`].
    #[must_use]
    pub fn scan(text: &str) -> (Self, Option<Duplicate>) {
        let mut scanner = Scanner {
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            lines: HashMap::new(),
            duplicate: None,
        };
        scanner.skip_ws();
        let root = JsonPath::root();
        scanner.lines.insert(root.clone(), scanner.line);
        // Depth is bounded: serde_json refuses nesting deeper than 128 before this runs.
        let _ = scanner.value(&root);
        (
            LineMap {
                lines: scanner.lines,
            },
            scanner.duplicate,
        )
    }

    /// The part of this map under `prefix`, with the paths made relative to it.
    #[must_use]
    pub fn subtree(&self, prefix: &JsonPath) -> Self {
        let lines = self
            .lines
            .iter()
            .filter_map(|(path, line)| Some((path.strip_prefix(prefix)?, *line)))
            .collect();
        LineMap { lines }
    }

    /// The line of `path`, or of the nearest enclosing member the text has (a missing member
    /// is reported on the line of the object that lacks it).
    #[must_use]
    pub fn line_of(&self, path: &JsonPath) -> Option<u32> {
        let mut at = Some(path.clone());
        while let Some(p) = at {
            if let Some(line) = self.lines.get(&p) {
                return Some(*line);
            }
            at = p.parent();
        }
        None
    }
}

/// A member that appears twice in one object: where, and the lines of both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The member's path.
    pub path: JsonPath,
    /// The line of the first occurrence (from 1).
    pub first: u32,
    /// The line of the second.
    pub second: u32,
}

/// The line scanner behind [`LineMap::from_json`].
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    lines: HashMap<JsonPath, u32>,
    duplicate: Option<Duplicate>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.bump();
        }
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        self.skip_ws();
        (self.bump()? == want).then_some(())
    }

    /// Reads a string whose opening quote is next, returning its decoded content.
    fn string(&mut self) -> Option<String> {
        let start = self.pos + 1;
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            let b = self.bump()?;
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                break;
            }
        }
        let raw = std::str::from_utf8(&self.bytes[start - 1..self.pos]).ok()?;
        serde_json::from_str(raw).ok()
    }

    fn value(&mut self, path: &JsonPath) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'{' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b'}' {
                    self.bump();
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    let line = self.line;
                    let key = self.string()?;
                    let child = path.key(&key);
                    // Paths are unique per place in the text, so a path seen before is a
                    // member name repeated in this object. The first occurrence keeps its line.
                    match self.lines.entry(child.clone()) {
                        std::collections::hash_map::Entry::Occupied(first) => {
                            if self.duplicate.is_none() {
                                self.duplicate = Some(Duplicate {
                                    path: child.clone(),
                                    first: *first.get(),
                                    second: line,
                                });
                            }
                        }
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(line);
                        }
                    }
                    self.expect(b':')?;
                    self.value(&child)?;
                    self.skip_ws();
                    match self.bump()? {
                        b',' => {}
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b']' {
                    self.bump();
                    return Some(());
                }
                let mut index = 0;
                loop {
                    self.skip_ws();
                    let child = path.index(index);
                    self.lines.insert(child.clone(), self.line);
                    self.value(&child)?;
                    index += 1;
                    self.skip_ws();
                    match self.bump()? {
                        b',' => {}
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                // A number, true, false or null: runs to the next delimiter.
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
                ) {
                    self.bump();
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_as_people_write_them() {
        let p = JsonPath::root()
            .key("ActiveDirectoryConfig")
            .key("GroupManagedServiceAccounts")
            .index(1)
            .key("Scope");
        assert_eq!(
            p.to_string(),
            "ActiveDirectoryConfig.GroupManagedServiceAccounts[1].Scope"
        );
        assert_eq!(JsonPath::root().key("a b").to_string(), r#"["a b"]"#);
        assert_eq!(JsonPath::root().to_string(), "(root)");
        assert_eq!(
            p.parent().unwrap().to_string(),
            "ActiveDirectoryConfig.GroupManagedServiceAccounts[1]"
        );
    }

    #[test]
    fn lines_of_members_and_elements() {
        let text = "{\n  \"A\": {\n    \"B\": \"x\\\"}\",\n    \"C\": [\n      1,\n      {\"D\": null}\n    ]\n  }\n}";
        let map = LineMap::from_json(text);
        let a = JsonPath::root().key("A");
        assert_eq!(map.line_of(&a), Some(2));
        assert_eq!(map.line_of(&a.key("B")), Some(3));
        assert_eq!(map.line_of(&a.key("C")), Some(4));
        assert_eq!(map.line_of(&a.key("C").index(1)), Some(6));
        assert_eq!(map.line_of(&a.key("C").index(1).key("D")), Some(6));
        // A member the text lacks is placed on its object's line.
        assert_eq!(map.line_of(&a.key("Missing")), Some(2));
        let sub = map.subtree(&a);
        assert_eq!(sub.line_of(&JsonPath::root().key("B")), Some(3));
    }
}
