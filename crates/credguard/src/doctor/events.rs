//! The CCG events of one container: found in the channel's XML, reported by id, level, time
//! and meaning (never by their text, which could carry what a plug-in was given).
//!
//! The meanings are few: credguard knows CCG event 4 (the plug-in could not be instantiated)
//! from public issues. Any other id is reported as such, pointing at Event Viewer.

use serde::Serialize;

/// A CCG event of the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CcgEvent {
    /// `<EventID>`.
    pub event_id: u32,
    /// `<Level>`: 1 critical, 2 error, 3 warning, 4 information.
    pub level: Option<u8>,
    /// Whether the level is critical or error.
    pub error: bool,
    /// `<TimeCreated SystemTime="...">`, as written.
    pub time: Option<String>,
    /// What it means, and what to check.
    pub meaning: String,
}

/// What CCG event `id` means, as far as credguard knows.
#[must_use]
pub fn event_meaning(id: u32) -> &'static str {
    match id {
        4 => {
            "CCG failed to instantiate the credential spec's plug-in (\"Object was not found in registry\"): its COM class is not registered under HKLM\\SYSTEM\\CurrentControlSet\\Control\\CCG\\COMClasses\\{GUID} (a registration under HKLM\\SYSTEM\\CurrentControlSet\\CCG\\COMClasses is never read), or HKCR\\CLSID\\{GUID} is missing or names a DLL that cannot load"
        }
        _ => {
            "credguard does not know this event: read its message in Event Viewer (Applications and Services Logs > Microsoft > Windows > Containers-CCG > Admin)"
        }
    }
}

/// Whether the event's XML mentions the container (its id appears in it, ignoring case).
pub(super) fn mentions(xml: &str, container: &str) -> bool {
    !container.is_empty()
        && xml
            .to_ascii_lowercase()
            .contains(&container.to_ascii_lowercase())
}

/// The text between `<tag ...>` and `</tag>`, the first time.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(at) = xml[from..].find(&open) {
        let start = from + at + open.len();
        let rest = &xml[start..];
        // `<EventID>` or `<EventID Qualifiers='0'>`, not `<EventIDs>`.
        if rest.starts_with('>') || rest.starts_with(' ') {
            let body = &rest[rest.find('>')? + 1..];
            return Some(&body[..body.find('<')?]);
        }
        from = start;
    }
    None
}

/// The `SystemTime` attribute of `<TimeCreated .../>`.
fn time_created(xml: &str) -> Option<String> {
    let at = xml.find("<TimeCreated")?;
    let rest = &xml[at..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let attr = tag.find("SystemTime=")? + "SystemTime=".len();
    let quote = tag[attr..].chars().next()?;
    let value = &tag[attr + 1..];
    let value = &value[..value.find(quote)?];
    // A timestamp: digits, -, :, ., T, Z only; anything else is not shown.
    value
        .chars()
        .all(|c| c.is_ascii_digit() || "-:.TZ+".contains(c))
        .then(|| value.to_owned())
}

/// The event of one `<Event>` XML, `None` when it has no numeric `<EventID>`.
pub(super) fn parse(xml: &str) -> Option<CcgEvent> {
    let event_id: u32 = element(xml, "EventID")?.trim().parse().ok()?;
    let level: Option<u8> = element(xml, "Level").and_then(|l| l.trim().parse().ok());
    Some(CcgEvent {
        event_id,
        level,
        error: matches!(level, Some(1 | 2)),
        time: time_created(xml),
        meaning: event_meaning(event_id).to_owned(),
    })
}
