//! The shapes of the values in a credential spec: SIDs, GUIDs, DNS, NetBIOS and account
//! names. Pure functions the linter and the generator share.

/// What a SID string is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SidShape {
    /// A domain SID: `S-1-5-21-a-b-c`.
    Domain,
    /// A domain SID with a RID: an account's SID. `domain` is the SID without the RID.
    Account {
        /// The domain part.
        domain: String,
    },
    /// A well-formed SID of another kind (`S-1-5-18`).
    Other,
}

/// Parses a SID string (`S-1-5-21-...`); `None` when it is not a SID at all.
#[must_use]
pub fn parse_sid(sid: &str) -> Option<SidShape> {
    let mut parts = sid.split('-');
    if !parts.next()?.eq_ignore_ascii_case("S") {
        return None;
    }
    let numbers: Vec<&str> = parts.collect();
    let decimal = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if numbers.len() < 2 || !numbers.iter().all(|n| decimal(n)) {
        return None;
    }
    if numbers[0] != "1" {
        return None;
    }
    // Sub-authorities are 32-bit; the identifier authority is 48-bit.
    if numbers[2..].iter().any(|n| n.parse::<u32>().is_err()) || numbers[1].parse::<u64>().is_err()
    {
        return None;
    }
    let sub = &numbers[2..];
    if numbers[1] != "5" || sub.first() != Some(&"21") || sub.len() < 4 {
        return Some(SidShape::Other);
    }
    match sub.len() {
        4 => Some(SidShape::Domain),
        5 => Some(SidShape::Account {
            domain: format!("S-1-5-{}", sub[..4].join("-")),
        }),
        _ => Some(SidShape::Other),
    }
}

/// Whether `s` is a GUID written `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hexadecimal
/// (either case), without braces.
#[must_use]
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Why `name` is not a DNS domain name, or `None` when it is one.
#[must_use]
pub fn dns_name_problem(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some(format!(
            "it is {} characters long; at most 253 are allowed",
            name.len()
        ));
    }
    if name.ends_with('.') {
        return Some("it ends with a dot".to_owned());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Some("it has an empty label (two dots in a row, or a leading dot)".to_owned());
        }
        if label.len() > 63 {
            return Some(format!(
                "the label `{}` is longer than 63 characters",
                shown(label)
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Some(format!(
                "it contains {}; DNS names have only letters, digits, hyphens and dots",
                describe_char(c)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("the label `{label}` starts or ends with a hyphen"));
        }
    }
    if labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Some("it is an IP address, not a domain name".to_owned());
    }
    None
}

/// What is wrong with a NetBIOS domain name's characters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NetBiosProblem {
    /// The first character NetBIOS names cannot have, described.
    pub invalid: Option<String>,
    /// Whether it contains a dot (allowed, but almost always a DNS name put here).
    pub dotted: bool,
}

/// Checks the characters of a NetBIOS domain name.
#[must_use]
pub fn netbios_problem(name: &str) -> NetBiosProblem {
    NetBiosProblem {
        invalid: name
            .chars()
            .find(|c| c.is_control() || r#"\/:*?"<>|"#.contains(*c))
            .map(describe_char),
        dotted: name.contains('.'),
    }
}

/// What is wrong with an account name as `MachineAccountName` wants it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AccountProblem {
    /// It ends with `$`.
    pub dollar: bool,
    /// The domain it includes (`CONTOSO` of `CONTOSO\x`, `contoso.com` of `x@contoso.com`
    /// or `x.contoso.com`).
    pub domain: Option<String>,
    /// The name without the domain and the `$`.
    pub bare: String,
    /// The first character account names cannot have, described.
    pub invalid: Option<String>,
}

/// Checks an account name (`MachineAccountName`).
#[must_use]
pub fn account_problem(name: &str) -> AccountProblem {
    let (domain, rest) = if let Some((d, n)) = name.split_once('\\') {
        (Some(d.to_owned()), n)
    } else if let Some((n, d)) = name.split_once('@') {
        (Some(d.to_owned()), n)
    } else if let Some((n, d)) = name.split_once('.') {
        (Some(d.to_owned()), n)
    } else {
        (None, name)
    };
    let dollar = name.ends_with('$') || rest.ends_with('$');
    let bare = rest.trim_end_matches('$').to_owned();
    let invalid = bare
        .chars()
        .find(|c| c.is_control() || r#""/\[]:;|=,+*?<>@"#.contains(*c))
        .map(describe_char);
    AccountProblem {
        dollar,
        domain,
        bare,
        invalid,
    }
}

fn describe_char(c: char) -> String {
    if c == ' ' {
        "a space".to_owned()
    } else if c.is_control() {
        format!("the control character {}", c.escape_default())
    } else {
        format!("`{c}`")
    }
}

/// A value made fit for a message: control characters escaped, long values cut (the same
/// rule as container ids in errors, [`crate::text::ShownId`]).
#[must_use]
pub fn shown(value: &str) -> String {
    crate::text::ShownId::new(value).to_string()
}

/// A file path made fit for a message: [`crate::text::shown_path`], re-exported here
/// where the credential-spec messages are made.
pub use crate::text::shown_path;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids() {
        assert_eq!(
            parse_sid("S-1-5-21-702590844-1001920913-2680819671"),
            Some(SidShape::Domain)
        );
        assert_eq!(
            parse_sid("S-1-5-21-1-2-3-1105"),
            Some(SidShape::Account {
                domain: "S-1-5-21-1-2-3".into()
            })
        );
        assert_eq!(parse_sid("S-1-5-18"), Some(SidShape::Other));
        assert_eq!(parse_sid("S-1-5-32-544"), Some(SidShape::Other));
        assert_eq!(parse_sid("S-1-5-21-1-2"), Some(SidShape::Other));
        for bad in [
            "",
            "S",
            "S-1",
            "S-2-5-21-1-2-3",
            "S-1-5-21-1-2-x",
            "S-1-5-21-1-2-4294967296",
            "S-1-5-21--2-3",
            " S-1-5-21-1-2-3",
        ] {
            assert_eq!(parse_sid(bad), None, "{bad}");
        }
    }

    #[test]
    fn guids() {
        assert!(is_guid("244818ae-87ca-4fcd-92ec-e79e5252348a"));
        assert!(is_guid("244818AE-87CA-4FCD-92EC-E79E5252348A"));
        for bad in [
            "",
            "{244818ae-87ca-4fcd-92ec-e79e5252348a}",
            "244818ae87ca4fcd92ece79e5252348a",
            "GDMA0342-266A-4D1P-831J-20990E82944F",
            "244818ae-87ca-4fcd-92ec-e79e5252348",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
    }

    #[test]
    fn dns_names() {
        for good in [
            "contoso.com",
            "a-b.c9.example",
            "contoso",
            "EMEA.Contoso.COM",
        ] {
            assert_eq!(dns_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "contoso.com.",
            ".contoso.com",
            "a..b",
            "con toso.com",
            "-a.com",
            "a_b.com",
            "10.0.0.1",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(dns_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn account_names() {
        let p = account_problem("CONTOSO\\WebApp01$");
        assert_eq!(
            (p.dollar, p.domain.as_deref(), p.bare.as_str()),
            (true, Some("CONTOSO"), "WebApp01")
        );
        let p = account_problem("WebApp01@contoso.com");
        assert_eq!(
            (p.domain.as_deref(), p.bare.as_str()),
            (Some("contoso.com"), "WebApp01")
        );
        assert_eq!(
            account_problem("WebApp01"),
            AccountProblem {
                bare: "WebApp01".into(),
                ..Default::default()
            }
        );
        assert_eq!(account_problem("a*b").invalid.as_deref(), Some("`*`"));
    }

    #[test]
    fn shown_values_are_printable_and_short() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert!(shown(&"x".repeat(200)).ends_with("..."));
        assert_eq!(shown("a\u{1b}[31m\u{202e}b"), "a\\u{1b}[31m\\u{202e}b");
        let path = format!("/head/{}/tail.json", "p".repeat(30_000));
        let short = shown_path(&path);
        assert!(short.len() < 500 && short.starts_with("/head/") && short.ends_with("/tail.json"));
        assert!(short.contains("..."));
        assert_eq!(shown_path("/a\nb.json"), "/a\\nb.json");
    }
}
