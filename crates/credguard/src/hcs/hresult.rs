//! HRESULT values: the status codes every HCS call returns.
//!
//! An [`HResult`] is shown the way Windows tools show it (`0x8037011B`) and carries a
//! symbolic name for the codes this project meets often, so that an operator reading an
//! error does not have to look the number up.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Windows HRESULT. Negative values (high bit set) are failures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HResult(pub i32);

#[allow(clippy::cast_possible_wrap)] // HRESULTs are written as u32 hex literals by convention.
const fn hr(v: u32) -> HResult {
    HResult(v as i32)
}

impl HResult {
    /// `S_OK`.
    pub const S_OK: HResult = hr(0);
    /// `E_FAIL`: unspecified failure.
    pub const E_FAIL: HResult = hr(0x8000_4005);
    /// `E_UNEXPECTED`.
    pub const E_UNEXPECTED: HResult = hr(0x8000_FFFF);
    /// `E_NOTIMPL`.
    pub const E_NOTIMPL: HResult = hr(0x8000_4001);
    /// `E_INVALIDARG` (`HRESULT_FROM_WIN32(ERROR_INVALID_PARAMETER)`).
    pub const E_INVALIDARG: HResult = hr(0x8007_0057);
    /// `E_ACCESSDENIED`.
    pub const E_ACCESSDENIED: HResult = hr(0x8007_0005);
    /// `E_OUTOFMEMORY`.
    pub const E_OUTOFMEMORY: HResult = hr(0x8007_000E);
    /// `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)`.
    pub const ERROR_FILE_NOT_FOUND: HResult = hr(0x8007_0002);
    /// `HRESULT_FROM_WIN32(ERROR_NOT_FOUND)`: element not found.
    pub const ERROR_NOT_FOUND: HResult = hr(0x8007_0490);
    /// `HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)`.
    pub const ERROR_ALREADY_EXISTS: HResult = hr(0x8007_00B7);
    /// `HRESULT_FROM_WIN32(ERROR_OBJECT_ALREADY_EXISTS)`: the object already exists.
    pub const ERROR_OBJECT_ALREADY_EXISTS: HResult = hr(0x8007_1392);
    /// `HRESULT_FROM_WIN32(ERROR_TIMEOUT)`.
    pub const ERROR_TIMEOUT: HResult = hr(0x8007_05B4);
    /// `HRESULT_FROM_WIN32(ERROR_CANCELLED)`: the operation was cancelled.
    pub const ERROR_CANCELLED: HResult = hr(0x8007_04C7);
    /// `HRESULT_FROM_WIN32(ERROR_MOD_NOT_FOUND)`: a DLL could not be loaded.
    pub const ERROR_MOD_NOT_FOUND: HResult = hr(0x8007_007E);
    /// `HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND)`: a DLL lacks an export.
    pub const ERROR_PROC_NOT_FOUND: HResult = hr(0x8007_007F);
    /// `HCS_E_INVALID_STATE`.
    pub const HCS_E_INVALID_STATE: HResult = hr(0x8037_0105);
    /// The NTSTATUS-style form of invalid state (a system that is not running) that
    /// vmcompute returns.
    pub const HCS_E_INVALID_STATE_NT: HResult = hr(0xC037_0105);
    /// `HCS_E_INVALID_JSON`.
    pub const HCS_E_INVALID_JSON: HResult = hr(0x8037_010D);
    /// The NTSTATUS-style form of invalid JSON that vmcompute also returns.
    pub const HCS_E_INVALID_JSON_NT: HResult = hr(0xC037_010D);
    /// `HCS_E_SYSTEM_NOT_FOUND`.
    pub const HCS_E_SYSTEM_NOT_FOUND: HResult = hr(0x8037_010E);
    /// The NTSTATUS-style "compute system does not exist" that vmcompute returns.
    pub const HCS_E_SYSTEM_NOT_FOUND_NT: HResult = hr(0xC037_010E);
    /// `HCS_E_SYSTEM_ALREADY_EXISTS`.
    pub const HCS_E_SYSTEM_ALREADY_EXISTS: HResult = hr(0x8037_010F);
    /// `HCS_E_SYSTEM_ALREADY_STOPPED`.
    pub const HCS_E_SYSTEM_ALREADY_STOPPED: HResult = hr(0x8037_0110);
    /// `HCS_E_SERVICE_NOT_AVAILABLE`.
    pub const HCS_E_SERVICE_NOT_AVAILABLE: HResult = hr(0x8037_0114);
    /// `HCS_E_OPERATION_TIMEOUT`.
    pub const HCS_E_OPERATION_TIMEOUT: HResult = hr(0x8037_0118);
    /// `HCS_E_ACCESS_DENIED`.
    pub const HCS_E_ACCESS_DENIED: HResult = hr(0x8037_011B);
    /// `HCS_E_SERVICE_DISCONNECT`.
    pub const HCS_E_SERVICE_DISCONNECT: HResult = hr(0x8037_011E);

    /// `HRESULT_FROM_WIN32`: the HRESULT of a Win32 error code (`0x8007xxxx`).
    #[must_use]
    pub const fn from_win32(code: u32) -> HResult {
        if code == 0 {
            HResult::S_OK
        } else {
            hr(0x8007_0000 | (code & 0xFFFF))
        }
    }

    /// Whether this is a failure code (negative).
    #[must_use]
    pub const fn is_failure(self) -> bool {
        self.0 < 0
    }

    /// The code as the unsigned number Windows tools print.
    #[must_use]
    #[allow(clippy::cast_sign_loss)]
    pub const fn as_u32(self) -> u32 {
        self.0 as u32
    }

    /// Whether the code says that a compute system (a utility VM) does not exist.
    #[must_use]
    pub fn is_system_not_found(self) -> bool {
        self == Self::HCS_E_SYSTEM_NOT_FOUND || self == Self::HCS_E_SYSTEM_NOT_FOUND_NT
    }

    /// The HCS code (facility 0x37) this is, in its `0x8037xxxx` form, whether it came as
    /// an HRESULT or in the NTSTATUS-style `0xC037xxxx` form vmcompute also returns.
    const fn hcs_code(self) -> Option<u32> {
        match self.as_u32() & 0xBFFF_FFFF {
            v if v & 0xFFFF_0000 == 0x8037_0000 => Some(v),
            _ => None,
        }
    }

    /// Whether the code says that what was to be created exists already:
    /// `ERROR_ALREADY_EXISTS` (`0x800700B7`), `ERROR_OBJECT_ALREADY_EXISTS` (`0x80071392`)
    /// or `HCS_E_SYSTEM_ALREADY_EXISTS` (`0x8037010F`, also in its `0xC037` form). HCS's
    /// answer to AddInstance for an id that has an instance is not documented, so every
    /// "already exists" code counts.
    #[must_use]
    pub fn is_already_exists(self) -> bool {
        self == Self::ERROR_ALREADY_EXISTS
            || self == Self::ERROR_OBJECT_ALREADY_EXISTS
            || self.hcs_code() == Some(Self::HCS_E_SYSTEM_ALREADY_EXISTS.as_u32())
    }

    /// Whether the code says that a compute system (a utility VM) is gone or stopped, so
    /// that its HvSocket service table went with it: `HCS_E_SYSTEM_NOT_FOUND` or
    /// `HCS_E_SYSTEM_ALREADY_STOPPED` ("not running"), each as `0x8037xxxx` or
    /// `0xC037xxxx`. `HCS_E_INVALID_STATE` is not one of them: a VM in a state that refuses
    /// the operation (starting, paused, saving) still has its table, so the entry is kept
    /// and retried.
    #[must_use]
    pub fn is_system_gone(self) -> bool {
        matches!(self.hcs_code(), Some(0x8037_010E | 0x8037_0110))
    }

    /// The symbolic name of a well-known code, if this is one.
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        let code = self.as_u32();
        TABLE
            .iter()
            .find(|(v, _)| *v == code)
            .map(|(_, name)| *name)
    }
}

impl fmt::Display for HResult {
    /// `0x8037011B`: upper-case hex, eight digits, as Windows tools print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.as_u32())
    }
}

impl fmt::Debug for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{self} ({name})"),
            None => write!(f, "{self}"),
        }
    }
}

/// Why a text is not an HRESULT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an HRESULT: write it as hex (0x8037011B), as a signed decimal (-2143878885) or as a known name (HCS_E_ACCESS_DENIED)"
)]
pub struct ParseHResultError(String);

impl FromStr for HResult {
    type Err = ParseHResultError;

    /// Accepts `0x8037011B`, `8037011B` is not accepted (ambiguous with decimal), a decimal
    /// (`-2143354597` or `2151612699`) or a symbolic name from [`HResult::name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // The text is shown as every name is: escaped, and cut when long.
        let err = || ParseHResultError(crate::text::ShownId::new(s).to_string());
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            let v = u32::from_str_radix(hex, 16).map_err(|_| err())?;
            return Ok(hr(v));
        }
        if let Ok(v) = t.parse::<i32>() {
            return Ok(HResult(v));
        }
        if let Ok(v) = t.parse::<u32>() {
            return Ok(hr(v));
        }
        TABLE
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(t))
            .map(|(v, _)| hr(*v))
            .ok_or_else(err)
    }
}

/// Every code credguard knows by name: the one table behind [`HResult::name`] and
/// [`HResult::from_str`]. A name appears once per form: the HRESULT form (`0x8037xxxx`)
/// first, then the NTSTATUS-style form (`0xC037xxxx`) vmcompute also returns, so a name
/// parses to its HRESULT form.
const TABLE: &[(u32, &str)] = &[
    (0x0000_0000, "S_OK"),
    (0x8000_4001, "E_NOTIMPL"),
    (0x8000_4005, "E_FAIL"),
    (0x8000_FFFF, "E_UNEXPECTED"),
    (0x8007_0002, "ERROR_FILE_NOT_FOUND"),
    (0x8007_0005, "E_ACCESSDENIED"),
    (0x8007_000E, "E_OUTOFMEMORY"),
    (0x8007_0057, "E_INVALIDARG"),
    (0x8007_007E, "ERROR_MOD_NOT_FOUND"),
    (0x8007_007F, "ERROR_PROC_NOT_FOUND"),
    (0x8007_00B7, "ERROR_ALREADY_EXISTS"),
    (0x8007_0490, "ERROR_NOT_FOUND"),
    (0x8007_04C7, "ERROR_CANCELLED"),
    (0x8007_05B4, "ERROR_TIMEOUT"),
    (0x8007_1392, "ERROR_OBJECT_ALREADY_EXISTS"),
    (0x8037_0100, "HCS_E_TERMINATED_DURING_START"),
    (0x8037_0101, "HCS_E_IMAGE_MISMATCH"),
    (0x8037_0102, "HCS_E_HYPERV_NOT_INSTALLED"),
    (0x8037_0105, "HCS_E_INVALID_STATE"),
    (0x8037_0106, "HCS_E_UNEXPECTED_EXIT"),
    (0x8037_0107, "HCS_E_TERMINATED"),
    (0x8037_0108, "HCS_E_CONNECT_FAILED"),
    (0x8037_0109, "HCS_E_CONNECTION_TIMEOUT"),
    (0x8037_010A, "HCS_E_CONNECTION_CLOSED"),
    (0x8037_010B, "HCS_E_UNKNOWN_MESSAGE"),
    (0x8037_010C, "HCS_E_UNSUPPORTED_PROTOCOL_VERSION"),
    (0x8037_010D, "HCS_E_INVALID_JSON"),
    (0x8037_010E, "HCS_E_SYSTEM_NOT_FOUND"),
    (0x8037_010F, "HCS_E_SYSTEM_ALREADY_EXISTS"),
    (0x8037_0110, "HCS_E_SYSTEM_ALREADY_STOPPED"),
    (0x8037_0111, "HCS_E_PROTOCOL_ERROR"),
    (0x8037_0112, "HCS_E_INVALID_LAYER"),
    (0x8037_0113, "HCS_E_WINDOWS_INSIDER_REQUIRED"),
    (0x8037_0114, "HCS_E_SERVICE_NOT_AVAILABLE"),
    (0x8037_0115, "HCS_E_OPERATION_NOT_STARTED"),
    (0x8037_0116, "HCS_E_OPERATION_ALREADY_STARTED"),
    (0x8037_0117, "HCS_E_OPERATION_PENDING"),
    (0x8037_0118, "HCS_E_OPERATION_TIMEOUT"),
    (0x8037_0119, "HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET"),
    (0x8037_011A, "HCS_E_OPERATION_RESULT_ALLOCATION_FAILED"),
    (0x8037_011B, "HCS_E_ACCESS_DENIED"),
    (0x8037_011C, "HCS_E_GUEST_CRITICAL_ERROR"),
    (0x8037_011D, "HCS_E_PROCESS_INFO_NOT_AVAILABLE"),
    (0x8037_011E, "HCS_E_SERVICE_DISCONNECT"),
    (0x8037_011F, "HCS_E_PROCESS_ALREADY_STOPPED"),
    (0x8037_0120, "HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION"),
    (0x8037_0121, "HCS_E_OPERATION_ALREADY_CANCELLED"),
    (0xC037_0105, "HCS_E_INVALID_STATE"),
    (0xC037_010D, "HCS_E_INVALID_JSON"),
    (0xC037_010E, "HCS_E_SYSTEM_NOT_FOUND"),
    (0xC037_010F, "HCS_E_SYSTEM_ALREADY_EXISTS"),
    (0xC037_0110, "HCS_E_SYSTEM_ALREADY_STOPPED"),
];

impl Serialize for HResult {
    /// Serialised as the hex text (`"0x8037011B"`), which is what people search for.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Num(i64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Num(n) => i32::try_from(n)
                .or_else(|_| u32::try_from(n).map(hr).map(|h| h.0))
                .map(HResult)
                .map_err(|_| serde::de::Error::custom(format!("{n} is not an HRESULT"))),
            Repr::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_windows_hex() {
        assert_eq!(HResult::HCS_E_ACCESS_DENIED.to_string(), "0x8037011B");
        assert_eq!(HResult::S_OK.to_string(), "0x00000000");
        assert_eq!(
            format!("{:?}", HResult::HCS_E_SYSTEM_NOT_FOUND_NT),
            "0xC037010E (HCS_E_SYSTEM_NOT_FOUND)"
        );
    }

    #[test]
    fn parses_every_written_form() {
        for text in [
            "0x8037011B",
            "0x8037011b",
            "-2143878885",
            "2151088411",
            "hcs_e_access_denied",
        ] {
            assert_eq!(
                text.parse::<HResult>(),
                Ok(HResult::HCS_E_ACCESS_DENIED),
                "{text}"
            );
        }
        assert!("8037011G".parse::<HResult>().is_err());
        assert!("0x1FFFFFFFF".parse::<HResult>().is_err());
        assert!("".parse::<HResult>().is_err());
    }

    #[test]
    fn win32_codes_map_like_hresult_from_win32() {
        assert_eq!(HResult::from_win32(126), HResult::ERROR_MOD_NOT_FOUND);
        assert_eq!(HResult::from_win32(127), HResult::ERROR_PROC_NOT_FOUND);
        assert_eq!(HResult::from_win32(0), HResult::S_OK);
    }

    #[test]
    fn failure_is_the_sign_bit() {
        assert!(HResult::E_FAIL.is_failure());
        assert!(!HResult::S_OK.is_failure());
        assert!(HResult::HCS_E_SYSTEM_NOT_FOUND_NT.is_system_not_found());
    }

    #[test]
    fn already_exists_and_gone_systems_in_both_forms() {
        for code in [0x8007_00B7_u32, 0x8007_1392, 0x8037_010F, 0xC037_010F] {
            assert!(hr(code).is_already_exists(), "{code:#x}");
        }
        for code in [0x8007_0490_u32, 0x8037_0110, 0x8007_0005] {
            assert!(!hr(code).is_already_exists(), "{code:#x}");
        }
        for code in [0x8037_010E_u32, 0xC037_010E, 0x8037_0110, 0xC037_0110] {
            assert!(hr(code).is_system_gone(), "{code:#x}");
        }
        // Invalid state: the VM is still there with its table (paused, starting).
        for code in [
            0x8037_011B_u32,
            0x8007_0490,
            0x8000_4005,
            0x0037_010E,
            0x8037_0105,
            0xC037_0105,
        ] {
            assert!(!hr(code).is_system_gone(), "{code:#x}");
        }
        assert_eq!(
            HResult::ERROR_OBJECT_ALREADY_EXISTS,
            HResult::from_win32(5010)
        );
    }

    #[test]
    fn every_known_constant_has_a_name() {
        for h in [
            HResult::S_OK,
            HResult::E_FAIL,
            HResult::E_UNEXPECTED,
            HResult::E_NOTIMPL,
            HResult::E_INVALIDARG,
            HResult::E_ACCESSDENIED,
            HResult::E_OUTOFMEMORY,
            HResult::ERROR_FILE_NOT_FOUND,
            HResult::ERROR_NOT_FOUND,
            HResult::ERROR_ALREADY_EXISTS,
            HResult::ERROR_OBJECT_ALREADY_EXISTS,
            HResult::ERROR_TIMEOUT,
            HResult::ERROR_CANCELLED,
            HResult::ERROR_MOD_NOT_FOUND,
            HResult::ERROR_PROC_NOT_FOUND,
            HResult::HCS_E_INVALID_STATE,
            HResult::HCS_E_INVALID_STATE_NT,
            HResult::HCS_E_INVALID_JSON,
            HResult::HCS_E_INVALID_JSON_NT,
            HResult::HCS_E_SYSTEM_NOT_FOUND,
            HResult::HCS_E_SYSTEM_NOT_FOUND_NT,
            HResult::HCS_E_SYSTEM_ALREADY_EXISTS,
            HResult::HCS_E_SYSTEM_ALREADY_STOPPED,
            HResult::HCS_E_SERVICE_NOT_AVAILABLE,
            HResult::HCS_E_OPERATION_TIMEOUT,
            HResult::HCS_E_ACCESS_DENIED,
            HResult::HCS_E_SERVICE_DISCONNECT,
        ] {
            assert!(h.name().is_some(), "{h}");
        }
    }

    #[test]
    fn every_name_parses_back_to_a_code_of_that_name() {
        // HCS_E_OPERATION_NOT_STARTED and the other names without a constant used to print
        // but not parse.
        for (code, name) in TABLE {
            let parsed: HResult = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.name(), Some(*name), "{name}");
            assert_eq!(
                parsed.as_u32() & 0xBFFF_FFFF,
                code & 0xBFFF_FFFF,
                "{name} parses to its HRESULT form"
            );
            assert_eq!(name.to_lowercase().parse::<HResult>(), Ok(parsed), "{name}");
            // And every code prints its name and parses from its hex form.
            let h = hr(*code);
            assert_eq!(h.name(), Some(*name));
            assert_eq!(h.to_string().parse::<HResult>(), Ok(h));
        }
        assert_eq!(
            "HCS_E_OPERATION_NOT_STARTED"
                .parse::<HResult>()
                .map(HResult::as_u32),
            Ok(0x8037_0115)
        );
    }

    #[test]
    fn the_table_has_each_code_once() {
        let mut codes: Vec<u32> = TABLE.iter().map(|(v, _)| *v).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), before);
    }
}
