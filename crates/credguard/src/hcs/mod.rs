//! The HCS service boundary: the three calls the CCG flow makes, at the level of JSON text.
//!
//! Every backend (the real computecore.dll on Windows, the emulator everywhere) implements
//! [`HcsService`]. The trait passes documents as text so that each backend sees exactly the
//! bytes that would cross the wire, and the library alone builds and reads them.
//!
//! Failures are [`HcsError`]s: the operation, the HRESULT and the ResultError document HCS
//! returned with it (or its raw text when it does not parse).

pub mod hresult;
pub(crate) mod watchdog;
#[cfg(windows)]
pub mod windows;

use std::fmt;

use crate::hcs::hresult::HResult;
use crate::wire::ResultError;

/// The HCS calls, named as hcsshim names them in its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HcsOperation {
    /// `HcsModifyServiceSettings`.
    ModifyServiceSettings,
    /// `HcsGetServiceProperties`.
    GetServiceProperties,
    /// `HcsModifyComputeSystem` (with the open, operation and wait calls around it).
    ModifyComputeSystem,
    /// `HcsOpenComputeSystem`.
    OpenComputeSystem,
    /// Loading computecore.dll or one of its exports.
    LoadLibrary,
}

impl HcsOperation {
    /// The Win32 API name (`HcsModifyServiceSettings`), as the emulator's call log names it.
    #[must_use]
    pub fn api_name(self) -> &'static str {
        match self {
            HcsOperation::ModifyServiceSettings => "HcsModifyServiceSettings",
            HcsOperation::GetServiceProperties => "HcsGetServiceProperties",
            HcsOperation::ModifyComputeSystem => "HcsModifyComputeSystem",
            HcsOperation::OpenComputeSystem => "HcsOpenComputeSystem",
            HcsOperation::LoadLibrary => "LoadLibrary(computecore.dll)",
        }
    }
}

impl fmt::Display for HcsOperation {
    /// `hcs::ModifyServiceSettings`, as hcsshim prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            HcsOperation::ModifyServiceSettings => "ModifyServiceSettings",
            HcsOperation::GetServiceProperties => "GetServiceProperties",
            HcsOperation::ModifyComputeSystem => "ModifyComputeSystem",
            HcsOperation::OpenComputeSystem => "OpenComputeSystem",
            HcsOperation::LoadLibrary => "LoadLibrary",
        };
        write!(f, "hcs::{name}")
    }
}

/// What came back beside a failed HRESULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDocument {
    /// Nothing (a null result string).
    None,
    /// A ResultError document (boxed, to keep the error and every `Result` carrying it
    /// small).
    Parsed(Box<ResultError>),
    /// Text that is not a ResultError document, kept as it came.
    Raw(String),
}

/// A failed HCS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcsError {
    /// Which call failed.
    pub operation: HcsOperation,
    /// The HRESULT it returned.
    pub hresult: HResult,
    /// The document returned with it.
    pub document: ErrorDocument,
    /// A message from the backend itself when HCS sent none (e.g. a DLL that is missing).
    pub context: Option<String>,
    /// The compute system the call was made on (`HcsOpenComputeSystem`,
    /// `HcsModifyComputeSystem`: the utility VM), shown after the operation as hcsshim
    /// shows the id of a system error.
    pub compute_system: Option<String>,
}

impl HcsError {
    /// An error from an HRESULT and the result text HCS returned with it (if any).
    #[must_use]
    pub fn new(operation: HcsOperation, hresult: HResult, result: Option<&str>) -> Self {
        let document = match result {
            None => ErrorDocument::None,
            Some(text) if text.trim().is_empty() => ErrorDocument::None,
            Some(text) => match ResultError::parse(text) {
                Some(doc) => ErrorDocument::Parsed(Box::new(doc)),
                None => ErrorDocument::Raw(text.to_owned()),
            },
        };
        HcsError {
            operation,
            hresult,
            document,
            context: None,
            compute_system: None,
        }
    }

    /// An error the backend raised itself (no HCS document), with a message saying why.
    #[must_use]
    pub fn local(operation: HcsOperation, hresult: HResult, message: impl Into<String>) -> Self {
        HcsError {
            operation,
            hresult,
            document: ErrorDocument::None,
            context: Some(message.into()),
            compute_system: None,
        }
    }

    /// The same error, naming the compute system it was made on.
    #[must_use]
    pub fn on_compute_system(mut self, id: &str) -> Self {
        self.compute_system = Some(id.to_owned());
        self
    }

    /// The parsed ResultError document, if one came back.
    #[must_use]
    pub fn result_error(&self) -> Option<&ResultError> {
        match &self.document {
            ErrorDocument::Parsed(doc) => Some(doc.as_ref()),
            _ => None,
        }
    }
}

impl fmt::Display for HcsError {
    /// `hcs::ModifyServiceSettings: <ErrorMessage> (0x8037011B HCS_E_ACCESS_DENIED)`
    /// (`hcs::ModifyComputeSystem <id>: ...` on a compute system), then one
    /// `[Event Detail: <Message> Stack Trace: <StackTrace> Provider: <Provider> EventID: <EventId>
    /// flags: <Flags> Source: <Source>]` line per error event, each part only when set, as
    /// hcsshim prints them (`internal/hcs/errors.go`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match (&self.document, &self.context) {
            (ErrorDocument::Parsed(doc), _) if !doc.error_message.is_empty() => {
                doc.error_message.trim_end().to_owned()
            }
            (_, Some(ctx)) => ctx.clone(),
            (ErrorDocument::Raw(raw), _) => {
                format!(
                    "HCS returned a result that is not a ResultError document: {}",
                    shorten(raw)
                )
            }
            _ => "the call failed".to_owned(),
        };
        write!(f, "{}", self.operation)?;
        if let Some(id) = &self.compute_system {
            write!(f, " {}", id.escape_debug())?;
        }
        write!(f, ": {message} ({}", self.hresult)?;
        if let Some(name) = self.hresult.name() {
            write!(f, " {name}")?;
        }
        f.write_str(")")?;
        if let ErrorDocument::Parsed(doc) = &self.document {
            for ev in &doc.error_events {
                write!(f, "\n[Event Detail: {}", ev.message.trim_end())?;
                if !ev.stack_trace.is_empty() {
                    write!(f, " Stack Trace: {}", ev.stack_trace.trim_end())?;
                }
                if !ev.provider.is_empty() {
                    write!(f, " Provider: {}", ev.provider)?;
                }
                if ev.event_id != 0 {
                    write!(f, " EventID: {}", ev.event_id)?;
                }
                if ev.flags != 0 {
                    write!(f, " flags: {}", ev.flags)?;
                }
                if !ev.source.is_empty() {
                    write!(f, " Source: {}", ev.source)?;
                }
                f.write_str("]")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for HcsError {}

/// Cuts a raw result down to a length fit for one line of an error message.
fn shorten(raw: &str) -> String {
    const MAX: usize = 200;
    let one_line: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

/// The HCS calls the CCG flow needs, at the level of JSON documents.
///
/// Implementations must be safe to call from several threads at once; HCS itself is.
pub trait HcsService: Send + Sync + fmt::Debug {
    /// `HcsModifyServiceSettings(settings, &result)`.
    ///
    /// # Errors
    /// The HRESULT and result document HCS answered with.
    fn modify_service_settings(&self, settings: &str) -> Result<(), HcsError>;

    /// `HcsGetServiceProperties(query, &result)`: returns the answer document.
    ///
    /// # Errors
    /// The HRESULT and result document HCS answered with.
    fn get_service_properties(&self, query: &str) -> Result<String, HcsError>;

    /// `HcsModifyComputeSystem` on the compute system `id` (open, modify, wait, close).
    ///
    /// # Errors
    /// The HRESULT and result document HCS answered with; `0xC037010E` when no such system.
    fn modify_compute_system(&self, id: &str, settings: &str) -> Result<(), HcsError>;
}

impl<T: HcsService + ?Sized> HcsService for std::sync::Arc<T> {
    fn modify_service_settings(&self, settings: &str) -> Result<(), HcsError> {
        (**self).modify_service_settings(settings)
    }
    fn get_service_properties(&self, query: &str) -> Result<String, HcsError> {
        (**self).get_service_properties(query)
    }
    fn modify_compute_system(&self, id: &str, settings: &str) -> Result<(), HcsError> {
        (**self).modify_compute_system(id, settings)
    }
}

impl<T: HcsService + ?Sized> HcsService for &T {
    fn modify_service_settings(&self, settings: &str) -> Result<(), HcsError> {
        (**self).modify_service_settings(settings)
    }
    fn get_service_properties(&self, query: &str) -> Result<String, HcsError> {
        (**self).get_service_properties(query)
    }
    fn modify_compute_system(&self, id: &str, settings: &str) -> Result<(), HcsError> {
        (**self).modify_compute_system(id, settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_hcsshim_shape() {
        let e = HcsError::new(
            HcsOperation::ModifyServiceSettings,
            HResult::HCS_E_ACCESS_DENIED,
            Some(
                r#"{"Error":-2143354597,"ErrorMessage":"Access is denied.","ErrorEvents":[{"Message":"first"},{"Message":"second","Source":"vmcompute"}]}"#,
            ),
        );
        assert_eq!(
            e.to_string(),
            "hcs::ModifyServiceSettings: Access is denied. (0x8037011B HCS_E_ACCESS_DENIED)\n\
             [Event Detail: first]\n[Event Detail: second Source: vmcompute]"
        );
    }

    /// Every part of an event, in hcsshim's order and spelling (`EventID`, `flags`), and
    /// the compute system after the operation as in hcsshim's system errors.
    #[test]
    fn events_and_compute_systems_are_shown_as_hcsshim_shows_them() {
        let e = HcsError::new(
            HcsOperation::ModifyComputeSystem,
            HResult::HCS_E_INVALID_STATE,
            Some(
                r#"{"Error":-2143354619,"ErrorMessage":"The virtual machine is not running.","ErrorEvents":[{"Message":"m","StackTrace":"at vm","Provider":"17103e3f-3c6e-4677-bb17-3b267eb5be57","EventId":11,"Flags":3,"Source":"vmcompute"}]}"#,
            ),
        )
        .on_compute_system("uvm-1");
        assert_eq!(
            e.to_string(),
            "hcs::ModifyComputeSystem uvm-1: The virtual machine is not running. (0x80370105 HCS_E_INVALID_STATE)\n\
             [Event Detail: m Stack Trace: at vm Provider: 17103e3f-3c6e-4677-bb17-3b267eb5be57 EventID: 11 flags: 3 Source: vmcompute]"
        );
    }

    #[test]
    fn raw_and_missing_documents() {
        let e = HcsError::new(
            HcsOperation::GetServiceProperties,
            HResult(-1),
            Some("garbage\nhere"),
        );
        assert!(matches!(e.document, ErrorDocument::Raw(ref r) if r == "garbage\nhere"));
        assert_eq!(
            e.to_string(),
            "hcs::GetServiceProperties: HCS returned a result that is not a ResultError document: garbage here (0xFFFFFFFF)"
        );
        let e = HcsError::new(HcsOperation::GetServiceProperties, HResult::E_FAIL, None);
        assert_eq!(
            e.to_string(),
            "hcs::GetServiceProperties: the call failed (0x80004005 E_FAIL)"
        );
    }
}
