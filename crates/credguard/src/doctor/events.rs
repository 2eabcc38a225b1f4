//! The CCG events of one container: found in the channel's XML, reported by id, level, time
//! and meaning (never by their text, which could carry what a plug-in was given).
//!
//! The meanings come from `explain`'s table of event ids (`data/explain.json`, each entry
//! with its source); an id it does not know is reported as such, pointing at Event Viewer.

use serde::Serialize;

/// A CCG event of the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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

/// The provider of CCG's events, as `explain`'s table names it.
const CCG_PROVIDER: &str = "Microsoft-Windows-Containers-CCG";

/// What CCG event `id` means, from `explain`'s table of event ids (`data/explain.json`):
/// its name, known causes and next step; for an id the table does not know, a pointer to
/// Event Viewer.
#[must_use]
pub fn event_meaning(id: u32) -> String {
    let report = crate::explain::explain_text(&format!("event {id}"));
    let layer = report
        .codes
        .iter()
        .flat_map(|c| &c.layers)
        .find(|l| l.provider.as_deref() == Some(CCG_PROVIDER) && l.code == id.to_string());
    match layer {
        Some(l) => {
            let mut text = l.name.clone().unwrap_or_else(|| format!("CCG event {id}"));
            if !l.causes.is_empty() {
                text.push_str(" (known causes: ");
                text.push_str(&l.causes.join("; "));
                text.push(')');
            }
            if let Some(next) = l.next_steps.first() {
                text.push_str("; next: ");
                text.push_str(next);
            }
            text
        }
        None => "credguard does not know this event: read its message in Event Viewer (Applications and Services Logs > Microsoft > Windows > Containers-CCG > Admin)".to_owned(),
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
        meaning: event_meaning(event_id),
    })
}
