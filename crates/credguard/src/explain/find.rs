//! Finding status codes and event ids in the text a user pastes.
//!
//! The rule (also in [`FORMS`], which the CLI shows when it finds nothing):
//! - `0x` and 1 to 8 hex digits: a code (`0xD0020017`, `0x6ba`);
//! - exactly 8 hex digits whose first is 8-F (the failure bit set): a code (`D0020017`,
//!   `80070005`), unless it is part of a GUID, a SID or another dashed name;
//! - a decimal of 2147483648 (0x80000000) or more that fits 32 bits: a code, as kubelet,
//!   containerd and Docker print it (`3489792023`); a negative decimal of magnitude 65536 or
//!   more that fits an int32: a code as Go prints it (`-805175273`);
//! - any decimal right after `#` or after the word `error`, `status`, `hresult`,
//!   `ntstatus` (`#1722`, `Status = 1722`): a code; one below 65536 is a Win32 error;
//! - a number after `event`, `event id` or `eventid` (`CCG event 4`, `Event ID: 11507`): an
//!   event id, never a code;
//! - a symbolic name credguard knows (`HCS_E_ACCESS_DENIED`, `RPC_NT_SERVER_UNAVAILABLE`).
//!
//! Anything else is prose: `port 443`, `10.0.17763`, `2026-08-07`, a container id. The
//! value of a `PluginInput` (a plug-in's secret) is never searched.

/// The forms [`find_codes`] recognises, for messages.
pub const FORMS: &str = "a status code as 0x-prefixed hex (0xD0020017), 8 hex digits (D0020017), \
a decimal of 2147483648 or more (3489792023), a negative decimal as Go prints an int32 \
(-805175273), a number after `#`, `error` or `status` (#3489792023, error 1722), a symbolic \
name (HCS_E_ACCESS_DENIED), or an event id after `event` / `event id` (CCG event 4, event id 11507)";

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Finding {
    /// A 32-bit status code: an HRESULT, an NTSTATUS, or (below 0x10000) a Win32 error.
    Status(u32),
    /// An event id.
    Event(u32),
}

/// One code or event id in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The text as it was written (`#3489792023`, `-805175273`, `event 4`).
    pub text: String,
    /// What it is.
    pub finding: Finding,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The word that ends before `end` (separated from it only by spaces, `:`, `=` or `#`),
/// lower-cased, and where it starts.
fn word_before(text: &str, end: usize) -> Option<(String, usize)> {
    let head = text[..end].trim_end_matches([' ', '\t', ':', '=', '#']);
    let start = head
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map(|(i, _)| i)?;
    Some((head[start..].to_ascii_lowercase(), start))
}

/// Where the event context before a number starts (`event`, `event id`, `eventid`), if any.
fn event_context(text: &str, start: usize) -> Option<usize> {
    let (word, at) = word_before(text, start)?;
    match word.as_str() {
        "event" | "eventid" => Some(at),
        "id" => match word_before(text, at)? {
            (w, at) if w == "event" => Some(at),
            _ => None,
        },
        _ => None,
    }
}

fn is_marked(text: &str, start: usize, prev: Option<char>) -> bool {
    prev == Some('#')
        || word_before(text, start).is_some_and(|(w, _)| {
            matches!(
                w.as_str(),
                "error" | "status" | "hresult" | "ntstatus" | "winerror"
            )
        })
}

/// Every status code and event id in `text`, in order of first appearance, each once (the
/// same code written twice, or as `#3489792023` and `0xD0020017`, is one finding). The
/// rule is in the module documentation and [`FORMS`].
///
/// The value of every `PluginInput` in the text is left out first
/// ([`redact_text`](crate::redact::redact_text)): a number in a plug-in's secret is never
/// found, so never shown.
#[must_use]
pub fn find_codes(text: &str) -> Vec<Found> {
    let redacted = crate::redact::redact_text(text);
    let text: &str = &redacted;
    let mut out: Vec<Found> = Vec::new();
    let mut push = |shown: &str, finding: Finding| {
        if !out.iter().any(|f| f.finding == finding) {
            out.push(Found {
                text: shown.to_owned(),
                finding,
            });
        }
    };
    let mut i = 0;
    while i < text.len() {
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if !is_word(c) {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let end = text[start..]
            .char_indices()
            .find(|(_, c)| !is_word(*c))
            .map_or(text.len(), |(j, _)| start + j);
        i = end;
        let token = &text[start..end];
        let prev = text[..start].chars().next_back();
        let before_prev = prev.and_then(|p| text[..start - p.len_utf8()].chars().next_back());
        let next = text[end..].chars().next();
        let after_next = next.and_then(|n| text[end + n.len_utf8()..].chars().next());
        // Part of a dashed or braced name (GUID, SID, date, container-1): not a code.
        let dashed_before = prev == Some('-') && before_prev.is_some_and(is_word);
        let dashed_after = next == Some('-') && after_next.is_some_and(is_word);
        let in_name = dashed_before || dashed_after || prev == Some('{') || next == Some('}');
        let negative = prev == Some('-') && !before_prev.is_some_and(is_word);

        if let Some(hex) = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
        {
            if (1..=8).contains(&hex.len())
                && !in_name
                && let Ok(v) = u32::from_str_radix(hex, 16)
            {
                push(token, Finding::Status(v));
            }
            continue;
        }
        let all_hex = token.bytes().all(|b| b.is_ascii_hexdigit());
        let failure_first = matches!(token.as_bytes()[0], b'8' | b'9' | b'a'..=b'f' | b'A'..=b'F');
        if token.len() == 8
            && all_hex
            && failure_first
            && !in_name
            && prev != Some('#')
            && !negative
        {
            if let Ok(v) = u32::from_str_radix(token, 16) {
                push(token, Finding::Status(v));
            }
            continue;
        }
        if token.bytes().all(|b| b.is_ascii_digit()) {
            let Ok(n) = token.parse::<u64>() else {
                continue;
            };
            if let Some(at) = event_context(text, start) {
                if let Ok(id) = u32::try_from(n)
                    && id <= 0xFFFF
                {
                    push(&text[at..end], Finding::Event(id));
                }
                continue;
            }
            if dashed_before || dashed_after {
                continue;
            }
            let marked = is_marked(text, start, prev);
            if negative {
                if (1..=0x8000_0000).contains(&n) && (n >= 0x1_0000 || marked) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let v = (-i64::try_from(n).unwrap_or(0)) as i32 as u32;
                    push(&text[start - 1..end], Finding::Status(v));
                }
            } else if let Ok(v) = u32::try_from(n)
                && (v >= 0x8000_0000 || marked)
            {
                let shown = if prev == Some('#') {
                    &text[start - 1..end]
                } else {
                    token
                };
                push(shown, Finding::Status(v));
            }
            continue;
        }
        if token.contains('_')
            && token
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            let code = token
                .parse::<crate::hcs::hresult::HResult>()
                .ok()
                .map(crate::hcs::hresult::HResult::as_u32)
                .or_else(|| super::table::code_of_name(token));
            if let Some(v) = code {
                push(token, Finding::Status(v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(text: &str) -> Vec<u32> {
        find_codes(text)
            .into_iter()
            .filter_map(|f| match f.finding {
                Finding::Status(v) => Some(v),
                Finding::Event(_) => None,
            })
            .collect()
    }

    #[test]
    fn the_three_quoted_messages_verbatim() {
        let found = find_codes("hcs::CreateComputeSystem: winapi error #3489792023");
        assert_eq!(
            found,
            vec![Found {
                text: "#3489792023".into(),
                finding: Finding::Status(0xD002_0017)
            }]
        );
        assert_eq!(
            statuses(
                "hcs::CreateComputeSystem f8a7b59bca075e1afea0a808f725bf1468f8ad163d1889bc98c1dd3775b8302f: winapi error #3489661095"
            ),
            vec![0xD000_00A7]
        );
        assert_eq!(
            statuses(
                "failed to create containerd task: hcs::CreateComputeSystem web-1: winapi error #3489660941: unknown"
            ),
            vec![0xD000_000D]
        );
    }

    #[test]
    fn every_written_form() {
        for (text, code) in [
            ("3489792023", 0xD002_0017),
            ("error 3489792023", 0xD002_0017),
            ("#3489792023", 0xD002_0017),
            ("-805175273", 0xD002_0017),
            ("\"Error\":-2143878885,", 0x8037_011B),
            ("0xD0020017", 0xD002_0017),
            ("(0xc0370106)", 0xC037_0106),
            ("D0020017", 0xD002_0017),
            ("d0020017.", 0xD002_0017),
            ("LogHr(3) tid(b20) 80070005 Access is denied.", 0x8007_0005),
            ("Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE", 1722),
            ("#1722", 1722),
            ("HCS_E_ACCESS_DENIED", 0x8037_011B),
            ("RPC_NT_SERVER_UNAVAILABLE", 0xC002_0017),
        ] {
            assert_eq!(statuses(text).first(), Some(&code), "{text}");
        }
    }

    #[test]
    fn one_code_in_many_forms_is_found_once() {
        let found = find_codes(
            "winapi error #3489792023 (0xD0020017, -805175273, D0020017) again #3489792023",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].text, "#3489792023");
        assert_eq!(
            statuses("Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE"),
            vec![1722]
        );
    }

    #[test]
    fn event_ids_are_events_not_codes() {
        let found =
            find_codes("CCG event 4: failed; Hyper-V-Compute Event ID: 11507; EventID 11507");
        assert_eq!(
            found,
            vec![
                Found {
                    text: "event 4".into(),
                    finding: Finding::Event(4)
                },
                Found {
                    text: "Event ID: 11507".into(),
                    finding: Finding::Event(11507)
                },
            ]
        );
    }

    #[test]
    fn prose_numbers_are_not_codes() {
        for text in [
            "port 443 on 10.0.17763.1817 since 2026-08-07 12:00",
            "the pod restarted 3 times in 1200 seconds, exit 1",
            "PluginGUID {CCC2A336-D7F3-4818-A213-272B7924213E}",
            "Sid S-1-5-21-1960130858-3242946568-2400973019",
            "container f8a7b59bca075e1afea0a808f725bf1468f8ad163d1889bc98c1dd3775b8302f",
            "build 20240101 and 12345678 and -443",
            "4294967296 does not fit 32 bits, 0x123456789 neither",
            "HRESULT_FROM_WIN32 and NOT_A_NAME",
            "",
        ] {
            assert_eq!(find_codes(text), vec![], "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_walked_and_every_finding_is_a_piece_of_it(text in "\\PC{0,120}") {
            let found = find_codes(&text);
            for (i, f) in found.iter().enumerate() {
                proptest::prop_assert!(text.contains(&f.text), "{:?}", f.text);
                proptest::prop_assert!(found[..i].iter().all(|g| g.finding != f.finding));
            }
        }

        #[test]
        fn every_code_is_found_in_every_form_it_may_take(v: u32) {
            let one = |text: String| find_codes(&text).into_iter().map(|f| f.finding).collect::<Vec<_>>();
            let me = vec![Finding::Status(v)];
            proptest::prop_assert_eq!(one(format!("0x{v:X}")), me.clone());
            proptest::prop_assert_eq!(one(format!("winapi error #{v}")), me.clone());
            proptest::prop_assert_eq!(one(format!("failed: (0x{v:08x})")), me.clone());
            if v >= 0x8000_0000 {
                proptest::prop_assert_eq!(one(format!("code {v} seen")), me.clone());
                proptest::prop_assert_eq!(one(format!("{v:08X}")), me.clone());
                #[allow(clippy::cast_possible_wrap)]
                let signed = v as i32;
                if signed <= -0x1_0000 {
                    proptest::prop_assert_eq!(one(format!("\"Error\":{signed},")), me.clone());
                }
            }
        }
    }

    #[test]
    fn nothing_is_found_in_a_plugin_input() {
        let line = r#"CredentialSpec:{\"ActiveDirectoryConfig\":{\"HostAccountConfig\":{\"PluginInput\":\"contoso\\\\svc:DEADBEEF#3489792023\"}}} failed: winapi error #3489660941"#;
        let found = find_codes(line);
        assert_eq!(
            found,
            vec![Found {
                text: "#3489660941".into(),
                finding: Finding::Status(0xD000_000D)
            }]
        );
        assert_eq!(find_codes(r#"{"PluginInput": "x:y:0xD0020017"}"#), vec![]);
    }

    #[test]
    fn text_with_other_scripts_is_walked_safely() {
        assert_eq!(statuses("Fehler «#3489792023» – été"), vec![0xD002_0017]);
        assert_eq!(statuses("événement 0x80070005"), vec![0x8007_0005]);
    }
}
