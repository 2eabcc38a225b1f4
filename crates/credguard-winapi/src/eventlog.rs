//! Reading an event channel (`Microsoft-Windows-Containers-CCG/Admin`) through the Windows
//! Event Log API: the newest events first, each rendered as its XML.

use windows_sys::Win32::Foundation::{
    ERROR_INSUFFICIENT_BUFFER, ERROR_NO_MORE_ITEMS, ERROR_NOT_SUPPORTED, GetLastError,
};
use windows_sys::Win32::System::EventLog::{
    EVT_HANDLE, EvtClose, EvtNext, EvtQuery, EvtQueryChannelPath, EvtQueryReverseDirection,
    EvtRender, EvtRenderEventXml,
};

use crate::wide::WideCString;

/// An Event Log handle, closed when dropped.
struct EvtHandle(EVT_HANDLE);

impl Drop for EvtHandle {
    fn drop(&mut self) {
        // SAFETY: self.0 is a non-zero handle the Event Log API returned, closed once, here.
        unsafe { EvtClose(self.0) };
    }
}

/// The thread's last error; `ERROR_NOT_SUPPORTED` when a call failed without setting one
/// (Wine's Event Log stubs do that).
fn last_error() -> u32 {
    // SAFETY: reads this thread's last-error value; no preconditions.
    match unsafe { GetLastError() } {
        0 => ERROR_NOT_SUPPORTED,
        code => code,
    }
}

/// The newest `limit` events of `channel` that match the XPath `query` (`*` for all), each
/// as its XML (`<Event ...><System>...<EventID>4</EventID>...</Event>`), newest first.
///
/// # Errors
/// The Win32 error code: `ERROR_EVT_CHANNEL_NOT_FOUND` (15007) for a channel that does not
/// exist, `ERROR_ACCESS_DENIED`, ...
pub fn newest_events(
    channel: &WideCString,
    query: &WideCString,
    limit: usize,
) -> Result<Vec<String>, u32> {
    // SAFETY: a zero session is the local computer; channel and query are NUL-terminated
    // and outlive the call.
    let results = unsafe {
        EvtQuery(
            0,
            channel.as_ptr(),
            query.as_ptr(),
            EvtQueryChannelPath | EvtQueryReverseDirection,
        )
    };
    if results == 0 {
        return Err(last_error());
    }
    let results = EvtHandle(results);
    let mut events = Vec::new();
    while events.len() < limit {
        let mut batch = [0isize; 16];
        let mut returned = 0u32;
        // SAFETY: results is an open query; batch has room for 16 handles; returned is a
        // valid out-pointer. The timeout is 5 s: a local query answers at once.
        let ok = unsafe { EvtNext(results.0, 16, batch.as_mut_ptr(), 5_000, 0, &mut returned) };
        if ok == 0 {
            match last_error() {
                ERROR_NO_MORE_ITEMS => break,
                other => return Err(other),
            }
        }
        // Own every returned handle first, so that all are closed whatever happens next.
        let handles: Vec<EvtHandle> = batch
            .iter()
            .take(returned as usize)
            .map(|&h| EvtHandle(h))
            .collect();
        for handle in &handles {
            if events.len() < limit {
                events.push(render_xml(handle)?);
            }
        }
    }
    Ok(events)
}

/// `EvtRender(EvtRenderEventXml)`: the event as XML text.
fn render_xml(event: &EvtHandle) -> Result<String, u32> {
    let mut size_bytes = 0u32;
    let mut buffer: Vec<u16> = Vec::new();
    for _ in 0..8 {
        let mut used = 0u32;
        let mut properties = 0u32;
        // SAFETY: event is an open event handle; buffer is valid for `size_bytes` bytes of
        // writes (zero asks for the size); used and properties are valid out-pointers.
        let ok = unsafe {
            EvtRender(
                0,
                event.0,
                EvtRenderEventXml,
                size_bytes,
                buffer.as_mut_ptr().cast(),
                &mut used,
                &mut properties,
            )
        };
        if ok != 0 {
            let units = (used as usize / 2).min(buffer.len());
            let mut text = &buffer[..units];
            while let [rest @ .., 0] = text {
                text = rest;
            }
            return Ok(String::from_utf16_lossy(text));
        }
        match last_error() {
            ERROR_INSUFFICIENT_BUFFER => {
                buffer = vec![0u16; (used as usize).div_ceil(2)];
                size_bytes = u32::try_from(buffer.len() * 2).unwrap_or(u32::MAX);
            }
            other => return Err(other),
        }
    }
    Err(ERROR_INSUFFICIENT_BUFFER)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a Windows container host: `cargo test -p credguard-winapi --lib -- --ignored
    /// ccg_channel` (docs/WINDOWS.md, "Doctor on a real host"). Wine has no event log.
    #[test]
    #[ignore = "real Windows host with the CCG event channel only"]
    fn the_ccg_channel_can_be_read() {
        let channel = WideCString::new("Microsoft-Windows-Containers-CCG/Admin").unwrap();
        let all = WideCString::new("*").unwrap();
        let events = newest_events(&channel, &all, 5).unwrap();
        for xml in &events {
            assert!(xml.contains("<EventID"), "{xml}");
        }
    }

    #[test]
    #[ignore = "real Windows host only: Wine has no event log"]
    fn a_channel_that_does_not_exist_is_error_15007() {
        let channel = WideCString::new("credguard-no-such-channel/Admin").unwrap();
        let all = WideCString::new("*").unwrap();
        assert_eq!(newest_events(&channel, &all, 5).unwrap_err(), 15007);
    }
}
