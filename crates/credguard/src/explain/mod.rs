//! From an opaque Windows status code to its meaning, its known causes in gMSA / Container
//! Credential Guard context, and what to check next.
//!
//! [`find_codes`] finds the codes and event ids in a text (an error message as kubelet,
//! containerd or Docker print it); [`explain`] decodes each one structurally, layer by
//! layer, and adds what the table of known codes (`crates/credguard/data/explain.json`, each
//! entry with its source) says:
//!
//! - an HRESULT: severity (the S bit), customer bit, the N bit (`0x10000000`,
//!   `HRESULT_FROM_NT`), facility and code; with the N bit, the NTSTATUS under it (the code
//!   without the bit: `0xD0020017` is `RPC_NT_SERVER_UNAVAILABLE`, `0xC0020017`); in
//!   facility 7 (`0x8007xxxx`, `HRESULT_FROM_WIN32`) the Win32 error under it;
//! - an NTSTATUS given as such (`0xC...`, N bit clear): severity, customer bit, facility,
//!   code;
//! - a number below `0x10000`: a Win32 error;
//! - an event id: what the CCG and Hyper-V-Compute events of that id say.
//!
//! A code the table does not know is still decoded from its bits. Symbolic names come from
//! one place each: [`HResult::name`](crate::hcs::hresult::HResult::name) for the codes its table knows, the data file for the
//! others.

mod find;
mod table;

use serde::Serialize;

pub use find::{FORMS, Finding, Found, find_codes};

use table::{Entry, Key, hr, lookup};

/// The N bit of an HRESULT: set by `HRESULT_FROM_NT` on an NTSTATUS.
pub const FACILITY_NT_BIT: u32 = 0x1000_0000;

/// How a layer of a code is read.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// An HRESULT.
    Hresult,
    /// An NTSTATUS.
    Ntstatus,
    /// A Win32 error number.
    Win32,
    /// An event id of an event log provider.
    Event,
}

impl Form {
    /// `HRESULT`, `NTSTATUS`, `Win32 error`, `event`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Form::Hresult => "HRESULT",
            Form::Ntstatus => "NTSTATUS",
            Form::Win32 => "Win32 error",
            Form::Event => "event",
        }
    }
}

/// The bit fields of an HRESULT or an NTSTATUS.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fields {
    /// HRESULT: `success` or `failure` (the S bit); NTSTATUS: `success`, `informational`,
    /// `warning` or `error` (the two Sev bits).
    pub severity: &'static str,
    /// The C bit: a customer-defined (not Microsoft) code.
    pub customer: bool,
    /// The N bit (HRESULT only: an NTSTATUS mapped with `HRESULT_FROM_NT`).
    pub nt_bit: bool,
    /// The facility number.
    pub facility: u32,
    /// The facility's name, where known.
    pub facility_name: Option<&'static str>,
    /// The code field (the low 16 bits).
    pub code: u32,
}

/// One reading of a code: the HRESULT, the NTSTATUS or Win32 error under it, or an event.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// How this layer is read.
    pub form: Form,
    /// The code in this form: `0xC0020017`, or a decimal for Win32 errors and events.
    pub code: String,
    /// How this layer comes from the one before: `HRESULT_FROM_NT`, `HRESULT_FROM_WIN32`,
    /// `NTSTATUS_FROM_WIN32`.
    pub via: Option<&'static str>,
    /// The bit fields (HRESULT and NTSTATUS layers).
    pub fields: Option<Fields>,
    /// The event's provider (event layers).
    pub provider: Option<String>,
    /// The symbolic name, where known.
    pub name: Option<String>,
    /// The system's message text, where known.
    pub message: Option<String>,
    /// Known causes in gMSA / CCG context.
    pub causes: Vec<String>,
    /// What to check next.
    pub next_steps: Vec<String>,
    /// Where the message, causes and steps come from.
    pub sources: Vec<String>,
}

/// What credguard can say about one code or event id found in a text.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The text as it was written (`#3489792023`).
    pub found: String,
    /// `status` or `event`.
    pub kind: &'static str,
    /// The value: `0xD0020017`, or the event id.
    pub value: String,
    /// The code as an unsigned number (status codes).
    pub unsigned: Option<u32>,
    /// The code as a signed 32-bit number, as Go prints it (status codes).
    pub signed: Option<i32>,
    /// Whether the table knows any layer (an unknown code is still decoded).
    pub known: bool,
    /// The readings, outermost first.
    pub layers: Vec<Layer>,
}

/// The answer of `credguard explain`: `{"codes": [...]}`.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every code found, in order of first appearance.
    pub codes: Vec<Explanation>,
}

/// Every code and event id in `text`, explained. Empty when the text holds none.
#[must_use]
pub fn explain_text(text: &str) -> Report {
    Report {
        codes: find_codes(text).iter().map(explain).collect(),
    }
}

/// One finding, decoded and explained.
#[must_use]
pub fn explain(found: &Found) -> Explanation {
    match found.finding {
        Finding::Status(v) => {
            let layers = status_layers(v);
            #[allow(clippy::cast_possible_wrap)]
            Explanation {
                found: found.text.clone(),
                kind: "status",
                value: format!("0x{v:08X}"),
                unsigned: Some(v),
                signed: Some(v as i32),
                known: layers.iter().any(|l| l.message.is_some()),
                layers,
            }
        }
        Finding::Event(id) => {
            let mut layers: Vec<Layer> = lookup(Key::Event(id))
                .map(|e| with_entry(bare(Form::Event, id.to_string(), None, None), Some(e)))
                .collect();
            let known = !layers.is_empty();
            if layers.is_empty() {
                layers.push(bare(Form::Event, id.to_string(), None, None));
            }
            Explanation {
                found: found.text.clone(),
                kind: "event",
                value: id.to_string(),
                unsigned: None,
                signed: None,
                known,
                layers,
            }
        }
    }
}

fn bare(form: Form, code: String, via: Option<&'static str>, fields: Option<Fields>) -> Layer {
    Layer {
        form,
        code,
        via,
        fields,
        provider: None,
        name: None,
        message: None,
        causes: Vec::new(),
        next_steps: Vec::new(),
        sources: Vec::new(),
    }
}

fn with_entry(mut layer: Layer, entry: Option<&Entry>) -> Layer {
    if let Some(e) = entry {
        layer.name = layer.name.or_else(|| e.name.clone());
        layer.provider.clone_from(&e.provider);
        layer.message = Some(e.message.clone());
        layer.causes.clone_from(&e.causes);
        layer.next_steps.clone_from(&e.next_steps);
        layer.sources.clone_from(&e.sources);
    }
    layer
}

/// The readings of a status code, outermost first.
fn status_layers(v: u32) -> Vec<Layer> {
    let mut layers = Vec::new();
    if v < 0x1_0000 {
        layers.push(win32_layer(v, None));
        return layers;
    }
    let sev = v >> 30;
    let nt_bit = v & FACILITY_NT_BIT != 0;
    if sev == 0b11 && !nt_bit {
        // An NTSTATUS as it is (an HRESULT would have the R bit clear).
        ntstatus_layers(v, None, &mut layers);
        return layers;
    }
    layers.push(hresult_layer(v));
    if v & 0x8000_0000 != 0 && nt_bit {
        ntstatus_layers(v & !FACILITY_NT_BIT, Some("HRESULT_FROM_NT"), &mut layers);
    } else if v & 0xFFFF_0000 == 0x8007_0000 {
        layers.push(win32_layer(v & 0xFFFF, Some("HRESULT_FROM_WIN32")));
    }
    layers
}

fn hresult_layer(v: u32) -> Layer {
    let facility = (v >> 16) & 0x7FF;
    let fields = Fields {
        severity: if v & 0x8000_0000 != 0 {
            "failure"
        } else {
            "success"
        },
        customer: v & 0x2000_0000 != 0,
        nt_bit: v & FACILITY_NT_BIT != 0,
        facility,
        // With the N bit, the facility is the NTSTATUS's: the layer below names it.
        facility_name: if v & FACILITY_NT_BIT == 0 {
            facility_name(HRESULT_FACILITIES, facility)
        } else {
            None
        },
        code: v & 0xFFFF,
    };
    let mut layer = bare(Form::Hresult, format!("0x{v:08X}"), None, Some(fields));
    layer.name = hr(v).name().map(str::to_owned);
    with_entry(layer, lookup(Key::HResult(v)).next())
}

fn ntstatus_layers(v: u32, via: Option<&'static str>, layers: &mut Vec<Layer>) {
    let facility = (v >> 16) & 0xFFF;
    let fields = Fields {
        severity: ["success", "informational", "warning", "error"][(v >> 30) as usize],
        customer: v & 0x2000_0000 != 0,
        nt_bit: false,
        facility,
        facility_name: facility_name(NTSTATUS_FACILITIES, facility),
        code: v & 0xFFFF,
    };
    let mut layer = bare(Form::Ntstatus, format!("0x{v:08X}"), via, Some(fields));
    // The NTSTATUS-style HCS codes (0xC037xxxx) are in HResult's table; their explanation is
    // the one of their HRESULT form.
    layer.name = hr(v).name().map(str::to_owned);
    let entry = lookup(Key::NtStatus(v)).next().or_else(|| {
        (facility == VMCOMPUTE)
            .then(|| lookup(Key::HResult(v & !0x4000_0000)).next())
            .flatten()
    });
    layers.push(with_entry(layer, entry));
    if facility == 7 && v & 0xC000_0000 == 0xC000_0000 {
        layers.push(win32_layer(v & 0xFFFF, Some("NTSTATUS_FROM_WIN32")));
    }
}

fn win32_layer(v: u32, via: Option<&'static str>) -> Layer {
    let layer = bare(Form::Win32, v.to_string(), via, None);
    with_entry(layer, lookup(Key::Win32(v)).next())
}

/// Facility 0x37: HCS (vmcompute), in HRESULTs and in the NTSTATUS-style codes it returns.
const VMCOMPUTE: u32 = 0x37;

/// HRESULT facilities ([MS-ERREF] 2.1 and winerror.h), those this project meets.
const HRESULT_FACILITIES: &[(u32, &str)] = &[
    (0, "FACILITY_NULL"),
    (1, "FACILITY_RPC"),
    (2, "FACILITY_DISPATCH"),
    (3, "FACILITY_STORAGE"),
    (4, "FACILITY_ITF"),
    (7, "FACILITY_WIN32"),
    (8, "FACILITY_WINDOWS"),
    (9, "FACILITY_SECURITY"),
    (0x35, "FACILITY_HYPERVISOR"),
    (VMCOMPUTE, "FACILITY_VMCOMPUTE (HCS)"),
];

/// NTSTATUS facilities ([MS-ERREF] 2.3), those this project meets.
const NTSTATUS_FACILITIES: &[(u32, &str)] = &[
    (1, "FACILITY_DEBUGGER"),
    (2, "FACILITY_RPC_RUNTIME"),
    (3, "FACILITY_RPC_STUBS"),
    (4, "FACILITY_IO_ERROR_CODE"),
    (7, "FACILITY_NTWIN32"),
    (9, "FACILITY_NTSSPI"),
    (0x35, "FACILITY_HYPERVISOR"),
    (VMCOMPUTE, "FACILITY_VMCOMPUTE (HCS)"),
];

fn facility_name(table: &[(u32, &'static str)], facility: u32) -> Option<&'static str> {
    table.iter().find(|(f, _)| *f == facility).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(v: u32) -> Explanation {
        explain(&Found {
            text: format!("0x{v:08X}"),
            finding: Finding::Status(v),
        })
    }

    fn forms(e: &Explanation) -> Vec<(Form, String, Option<String>)> {
        e.layers
            .iter()
            .map(|l| (l.form, l.code.clone(), l.name.clone()))
            .collect()
    }

    #[test]
    fn the_quoted_codes_decode_to_their_ntstatus_and_a_cause() {
        for (text, hresult, ntstatus, name) in [
            (
                "hcs::CreateComputeSystem: winapi error #3489792023",
                "0xD0020017",
                "0xC0020017",
                "RPC_NT_SERVER_UNAVAILABLE",
            ),
            (
                "hcs::CreateComputeSystem: winapi error #3489661095",
                "0xD00000A7",
                "0xC00000A7",
                "STATUS_BAD_VALIDATION_CLASS",
            ),
            (
                "hcs::CreateComputeSystem: winapi error #3489660941",
                "0xD000000D",
                "0xC000000D",
                "STATUS_INVALID_PARAMETER",
            ),
        ] {
            let report = explain_text(text);
            assert_eq!(report.codes.len(), 1, "{text}");
            let e = &report.codes[0];
            assert!(e.known);
            assert_eq!(e.value, hresult);
            let [outer, inner] = &e.layers[..] else {
                panic!("{text}: {:?}", forms(e))
            };
            assert_eq!(outer.form, Form::Hresult);
            assert!(outer.fields.as_ref().unwrap().nt_bit);
            assert_eq!(outer.fields.as_ref().unwrap().severity, "failure");
            assert_eq!(inner.form, Form::Ntstatus);
            assert_eq!(inner.code, ntstatus);
            assert_eq!(inner.via, Some("HRESULT_FROM_NT"));
            assert_eq!(inner.name.as_deref(), Some(name));
            assert_eq!(inner.fields.as_ref().unwrap().severity, "error");
            assert!(
                !inner.causes.is_empty() && !inner.sources.is_empty(),
                "{text}"
            );
            assert!(!inner.next_steps.is_empty(), "{text}");
        }
        let rpc = status(0xD002_0017);
        let nt = &rpc.layers[1];
        assert_eq!(nt.fields.as_ref().unwrap().facility, 2);
        assert_eq!(
            nt.fields.as_ref().unwrap().facility_name,
            Some("FACILITY_RPC_RUNTIME")
        );
        assert_eq!(nt.fields.as_ref().unwrap().code, 0x17);
        // The outer facility is the NTSTATUS's, not an HRESULT facility (2 is not DISPATCH).
        assert_eq!(rpc.layers[0].fields.as_ref().unwrap().facility_name, None);
        assert_eq!(rpc.signed, Some(-805_175_273));
        assert_eq!(
            nt.message.as_deref(),
            Some("The RPC server is unavailable.")
        );
    }

    #[test]
    fn hresult_from_win32_goes_down_to_the_win32_error() {
        let e = status(0x8007_0005);
        assert_eq!(
            forms(&e),
            vec![
                (
                    Form::Hresult,
                    "0x80070005".into(),
                    Some("E_ACCESSDENIED".into())
                ),
                (Form::Win32, "5".into(), Some("ERROR_ACCESS_DENIED".into())),
            ]
        );
        let f = e.layers[0].fields.as_ref().unwrap();
        assert_eq!((f.facility, f.facility_name), (7, Some("FACILITY_WIN32")));
        assert_eq!(e.layers[1].via, Some("HRESULT_FROM_WIN32"));
        assert!(!e.layers[1].causes.is_empty());
    }

    #[test]
    fn hcs_codes_take_their_names_from_the_hresult_table() {
        let e = status(0x8037_011B);
        assert_eq!(e.layers.len(), 1);
        let l = &e.layers[0];
        assert_eq!(l.name.as_deref(), Some("HCS_E_ACCESS_DENIED"));
        assert_eq!(
            l.fields.as_ref().unwrap().facility_name,
            Some("FACILITY_VMCOMPUTE (HCS)")
        );
        assert!(
            l.message
                .as_deref()
                .unwrap()
                .starts_with("Insufficient privileges")
        );
        // The NTSTATUS-style form vmcompute returns is explained as its HRESULT form.
        let e = status(0xC037_010E);
        assert_eq!(e.layers[0].form, Form::Ntstatus);
        assert_eq!(e.layers[0].name.as_deref(), Some("HCS_E_SYSTEM_NOT_FOUND"));
        assert!(e.layers[0].message.is_some());
        // Every HCS_E_* name of HResult's table has an explanation.
        for v in 0x8037_0100..=0x8037_0121_u32 {
            if let Some(name) = hr(v).name() {
                let e = status(v);
                if name.starts_with("HCS_E_")
                    && !matches!(
                        name,
                        "HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION"
                            | "HCS_E_OPERATION_ALREADY_CANCELLED"
                    )
                {
                    assert!(e.known, "{name} has no explanation");
                }
            }
        }
    }

    #[test]
    fn an_ntstatus_given_directly_and_a_win32_number() {
        let e = status(0xC000_005E);
        assert_eq!(
            forms(&e),
            vec![(
                Form::Ntstatus,
                "0xC000005E".into(),
                Some("STATUS_NO_LOGON_SERVERS".into())
            )]
        );
        assert_eq!(e.layers[0].via, None);
        let e = status(1722);
        assert_eq!(
            forms(&e),
            vec![(
                Form::Win32,
                "1722".into(),
                Some("RPC_S_SERVER_UNAVAILABLE".into())
            )]
        );
        let e = status(0x8004_0154);
        assert_eq!(e.layers[0].name.as_deref(), Some("REGDB_E_CLASSNOTREG"));
        assert!(e.known);
    }

    #[test]
    fn an_unknown_code_is_still_decoded() {
        let e = status(0xA123_4567);
        assert!(!e.known);
        let f = e.layers[0].fields.as_ref().unwrap();
        assert_eq!(
            (f.severity, f.customer, f.nt_bit, f.facility, f.code),
            ("failure", true, false, 0x123, 0x4567)
        );
        assert_eq!(f.facility_name, None);
        assert_eq!(e.layers[0].name, None);
        // An HRESULT_FROM_NT of an unknown NTSTATUS: both layers decoded, none named.
        let e = status(0xD0AB_0001);
        assert_eq!(e.layers.len(), 2);
        assert_eq!(e.layers[1].code, "0xC0AB0001");
        assert!(!e.known);
    }

    #[test]
    fn ccg_and_hyper_v_compute_events() {
        let report = explain_text("CCG event 4 and Hyper-V-Compute event 11507");
        let [four, eleven] = &report.codes[..] else {
            panic!("{report:?}")
        };
        assert!(four.known && eleven.known);
        assert_eq!(
            four.layers[0].provider.as_deref(),
            Some("Microsoft-Windows-Containers-CCG")
        );
        assert!(
            four.layers[0]
                .message
                .as_deref()
                .unwrap()
                .contains("Object was not found in registry")
        );
        assert!(
            four.layers[0]
                .causes
                .iter()
                .any(|c| c.contains("Control\\CCG\\COMClasses"))
        );
        assert_eq!(
            eleven.layers[0].provider.as_deref(),
            Some("Microsoft-Windows-Hyper-V-Compute")
        );
        let unknown = explain_text("event 99");
        assert!(!unknown.codes[0].known);
    }

    #[test]
    fn the_report_serialises_in_snake_case() {
        let v = serde_json::to_value(explain_text("#3489792023")).unwrap();
        let code = &v["codes"][0];
        assert_eq!(code["found"], "#3489792023");
        assert_eq!(code["value"], "0xD0020017");
        assert_eq!(code["unsigned"], 3_489_792_023_u32);
        assert_eq!(code["signed"], -805_175_273);
        assert_eq!(code["layers"][0]["fields"]["nt_bit"], true);
        assert_eq!(code["layers"][1]["form"], "ntstatus");
        assert!(
            !code["layers"][1]["next_steps"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}
