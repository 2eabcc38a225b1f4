//! The ResultError decoder and the message built from it on any text: no panic, the parse
//! agrees with what `HcsError::new` keeps, a parsed document writes back to itself, and a
//! text that is not a document is shown on one line.
#![no_main]

use credguard::HResult;
use credguard::hcs::{ErrorDocument, HcsError, HcsOperation};
use credguard::wire::{ResultError, to_wire};
use libfuzzer_sys::fuzz_target;

const OPERATIONS: [HcsOperation; 5] = [
    HcsOperation::ModifyServiceSettings,
    HcsOperation::GetServiceProperties,
    HcsOperation::ModifyComputeSystem,
    HcsOperation::OpenComputeSystem,
    HcsOperation::LoadLibrary,
];

fuzz_target!(|bytes: &[u8]| {
    // HCS hands back UTF-16 that the backends convert; what reaches the parser is UTF-8.
    let text = String::from_utf8_lossy(bytes);
    let parsed = ResultError::parse(&text);
    if let Some(doc) = &parsed {
        let again = to_wire(doc).expect("a ResultError serialises");
        assert_eq!(ResultError::parse(&again).as_ref(), Some(doc), "{again}");
    }

    // A named code, an unnamed one, and whatever the document itself carries.
    let mut codes = vec![HResult::HCS_E_ACCESS_DENIED, HResult(0x0BAD_C0DE)];
    if let Some(doc) = &parsed {
        codes.push(HResult(doc.error));
    }
    for (i, code) in codes.into_iter().enumerate() {
        let op = OPERATIONS[(bytes.len() + i) % OPERATIONS.len()];
        let err = HcsError::new(op, code, Some(&text));
        match (&err.document, &parsed) {
            (ErrorDocument::Parsed(got), Some(doc)) => assert_eq!(&**got, doc),
            (ErrorDocument::Parsed(_), None) => panic!("HcsError parsed what parse refused"),
            (ErrorDocument::Raw(raw), None) => assert_eq!(raw, &*text),
            (ErrorDocument::None, None) => assert!(text.trim().is_empty()),
            (other, Some(_)) => panic!("parse accepted what HcsError kept as {other:?}"),
        }
        let shown = err.to_string();
        assert!(shown.starts_with(&op.to_string()), "{shown}");
        if !matches!(err.document, ErrorDocument::Parsed(_)) {
            assert!(!shown.contains('\n'), "a raw result spans lines: {shown:?}");
        }
    }
});
