//! The fast path of [`super::find_instance`]: one pass over the bytes of the answer that
//! checks its JSON syntax, walks its structure and keeps only the positions of the wanted
//! instance's fields; serde_json then decodes just those.
//!
//! It answers only when it is certain to agree with the streaming decoder (the reference):
//! the whole text is valid JSON by the same grammar serde_json applies to values it skips,
//! the document has the usual shape, and `Properties` holds exactly one element. Everything
//! else gives `None` and is left to the streaming decoder, which then also produces the
//! error: a syntax or type error anywhere, `Properties` with another count, escapes in a key
//! or an `Id` (compared after decoding there), a repeated `Id`, `CredentialGuard`,
//! `HvSocketConfig`, `Instances` or `Properties` key, and nesting deeper than
//! [`MAX_DEPTH`]. So the scan may only ever be stricter than the reference, never looser.
//!
//! Why: 80 % of the streaming decoder's time went to skipping strings (serde_json's
//! `IgnoredAny`), and the credential specs in the answer are dense with escapes (`\"` every
//! few bytes), which its skipper handles with a call per escape. A table-driven loop over
//! the bytes skips them faster, and the structure costs less without serde's visitors
//! around it; docs/PERFORMANCE.md has the numbers.

use crate::wire::{
    ContainerCredentialGuardHvSocketServiceConfig, ContainerCredentialGuardInstance,
    ContainerCredentialGuardState,
};

/// Nesting the scan follows inside a skipped value (a bit per level, no allocation); deeper
/// documents go to the streaming decoder.
pub(super) const MAX_DEPTH: usize = 256;

/// What one byte is inside a string.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const BACKSLASH: u8 = 2;
const CONTROL: u8 = 3;

static STRING_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = CONTROL;
        b += 1;
    }
    table[b'"' as usize] = QUOTE;
    table[b'\\' as usize] = BACKSLASH;
    table
};

/// The characters that may follow a backslash, `u` aside (it takes four hex digits).
static SIMPLE_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let chars = *b"\"\\/bfnrt";
    let mut k = 0;
    while k < chars.len() {
        table[chars[k] as usize] = true;
        k += 1;
    }
    table
};

/// Finds the instance `id` in `doc`; `None` when the streaming decoder must decide.
pub(super) fn find(doc: &str, id: &str) -> Option<Option<ContainerCredentialGuardInstance>> {
    let mut scan = Scan {
        doc,
        bytes: doc.as_bytes(),
        at: 0,
    };
    let found = scan.service_properties(id)?;
    scan.whitespace();
    (scan.at == scan.bytes.len()).then_some(found)
}

/// A position in the document; every method leaves it just after what it consumed and
/// returns `None` for anything it does not accept.
struct Scan<'a> {
    doc: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// A value's place in the document.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl<'a> Scan<'a> {
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.whitespace();
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        let end = self.at + text.len();
        (self.bytes.get(self.at..end)? == text).then(|| self.at = end)
    }

    /// A string, from its opening quote: whether it holds an escape. Checks what serde_json
    /// checks when it skips one: no control characters, only the JSON escapes, four hex
    /// digits after `\u` (surrogates are not paired up, as serde_json does not when skipping).
    fn string(&mut self) -> Option<bool> {
        let start = self.at + 1;
        let mut escaped = false;
        // An iterator rather than indexing: no bounds check per byte in the loop where most
        // of the time goes.
        let mut rest = self.bytes.get(start..)?.iter().enumerate();
        while let Some((offset, &byte)) = rest.next() {
            match STRING_CLASS[usize::from(byte)] {
                PLAIN => {}
                QUOTE => {
                    self.at = start + offset + 1;
                    return Some(escaped);
                }
                BACKSLASH => {
                    escaped = true;
                    let (_, &next) = rest.next()?;
                    if !SIMPLE_ESCAPE[usize::from(next)] {
                        if next != b'u' {
                            return None;
                        }
                        for _ in 0..4 {
                            if !rest.next()?.1.is_ascii_hexdigit() {
                                return None;
                            }
                        }
                    }
                }
                _ => return None,
            }
        }
        None
    }

    /// A string without escapes, whose text then is its value.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        let bytes = self.bytes;
        let start = self.at + 1;
        if self.string()? {
            return None;
        }
        Some(&bytes[start..self.at - 1])
    }

    /// A number, by serde_json's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let digits = |scan: &mut Self| {
            let start = scan.at;
            while scan.bytes.get(scan.at).is_some_and(u8::is_ascii_digit) {
                scan.at += 1;
            }
            (scan.at > start).then_some(())
        };
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => digits(self)?,
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(())
    }

    /// One value of any kind, checked and skipped, without recursion.
    fn skip_value(&mut self) -> Option<()> {
        // One bit per open container, set for an object.
        let mut objects = [0u64; MAX_DEPTH / 64];
        let mut depth = 0usize;
        loop {
            // A value is expected here.
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.at += 1;
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    let object = open == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.at += 1;
                    } else {
                        if object {
                            objects[depth / 64] |= 1 << (depth % 64);
                            self.key()?;
                        } else {
                            objects[depth / 64] &= !(1 << (depth % 64));
                        }
                        depth += 1;
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b'n' => self.literal(b"null")?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended: close the containers it ends, or go on to the next member.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let object = objects[(depth - 1) / 64] & (1 << ((depth - 1) % 64)) != 0;
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if object => self.at += 1,
                    b']' if !object => self.at += 1,
                    _ => return None,
                }
                depth -= 1;
            }
        }
    }

    /// A member's key and its colon, in a skipped object (any string will do).
    fn key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.string()?;
        self.eat(b':')
    }

    /// A value skipped, with its place.
    fn span(&mut self) -> Option<Span> {
        self.whitespace();
        let start = self.at;
        self.skip_value()?;
        Some(Span {
            start,
            end: self.at,
        })
    }

    /// `null`, consumed; `Some(false)` when something else comes.
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(true)
        } else {
            Some(false)
        }
    }

    /// The members of an object the reference decodes with types: keys without escapes
    /// (the reference compares them decoded), each value left to `member`.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.plain_string()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The elements of an array, each left to `element` with its index; their count.
    fn elements(
        &mut self,
        mut element: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<usize> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(0);
        }
        let mut count = 0;
        loop {
            element(self, count)?;
            count += 1;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(count);
                }
                _ => return None,
            }
        }
    }

    /// `{"Properties":[<system info>]}`: the instance, when `Properties` has one element.
    fn service_properties(&mut self, id: &str) -> Option<Option<ContainerCredentialGuardInstance>> {
        let mut properties = None;
        self.members(|scan, key| {
            if key != b"Properties" {
                return scan.skip_value();
            }
            if properties.is_some() {
                return None;
            }
            let mut found = None;
            let count = scan.elements(|scan, index| {
                if index == 0 {
                    found = scan.system_info(id)?;
                    Some(())
                } else {
                    scan.skip_value()
                }
            })?;
            properties = Some((count, found));
            Some(())
        })?;
        match properties {
            Some((1, found)) => Some(found),
            _ => None,
        }
    }

    /// `{"Instances":[...]}` or `null`.
    fn system_info(&mut self, id: &str) -> Option<Option<ContainerCredentialGuardInstance>> {
        if self.null()? {
            return Some(None);
        }
        let mut instances = None;
        self.members(|scan, key| {
            if key != b"Instances" {
                return scan.skip_value();
            }
            if instances.is_some() {
                return None;
            }
            instances = Some(scan.instances(id)?);
            Some(())
        })?;
        Some(instances.flatten())
    }

    /// `[...]` or `null`: the first instance with the id; those after it are only checked.
    fn instances(&mut self, id: &str) -> Option<Option<ContainerCredentialGuardInstance>> {
        if self.null()? {
            return Some(None);
        }
        let mut found = None;
        self.elements(|scan, _| {
            if found.is_some() {
                return scan.skip_value();
            }
            found = scan.instance(id)?;
            Some(())
        })?;
        Some(found)
    }

    /// One instance (or `null`): decoded when its `Id` is `id`.
    fn instance(&mut self, id: &str) -> Option<Option<ContainerCredentialGuardInstance>> {
        if self.null()? {
            return Some(None);
        }
        let mut matched: Option<bool> = None;
        let mut credential_guard: Option<Span> = None;
        let mut hv_socket_config: Option<Span> = None;
        self.members(|scan, key| {
            match key {
                b"Id" => {
                    if matched.is_some() {
                        return None;
                    }
                    matched = Some(if scan.null()? {
                        id.is_empty()
                    } else {
                        scan.plain_string()? == id.as_bytes()
                    });
                }
                b"CredentialGuard" => {
                    if credential_guard.is_some() {
                        return None;
                    }
                    credential_guard = Some(scan.span()?);
                }
                b"HvSocketConfig" => {
                    if hv_socket_config.is_some() {
                        return None;
                    }
                    hv_socket_config = Some(scan.span()?);
                }
                _ => scan.skip_value()?,
            }
            Some(())
        })?;
        // No `Id` is the empty id, as the full decode reads it.
        if !matched.unwrap_or(id.is_empty()) {
            return Some(None);
        }
        Some(Some(ContainerCredentialGuardInstance {
            id: id.to_owned(),
            credential_guard: self.decode::<ContainerCredentialGuardState>(credential_guard)?,
            hv_socket_config: self
                .decode::<ContainerCredentialGuardHvSocketServiceConfig>(hv_socket_config)?,
        }))
    }

    /// A field of the wanted instance, decoded by serde_json; a type error is the
    /// reference's to report.
    fn decode<T: serde::Deserialize<'a>>(&self, span: Option<Span>) -> Option<Option<T>> {
        match span {
            None => Some(None),
            Some(span) => serde_json::from_str(&self.doc[span.start..span.end]).ok(),
        }
    }
}
