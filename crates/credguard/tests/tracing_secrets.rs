//! Traces carry the container id, and never the credential spec, at any level, on every
//! path (success, rollback, failed rollback, release, dropped handle).

mod common;

use std::io;
use std::sync::{Arc, Mutex};

use common::{SECRET, SECRET_SPEC as SPEC};
use credguard::hcs::hresult::HResult;
use credguard::{CcgClient, Isolation};
use credguard_emulator::{Api, Emulator, Fault, FaultAction};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

fn capture(json: bool, f: impl FnOnce()) -> String {
    let buf = Buffer::default();
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buf.clone())
        .with_ansi(false);
    if json {
        tracing::subscriber::with_default(builder.json().with_current_span(true).finish(), f);
    } else {
        tracing::subscriber::with_default(builder.finish(), f);
    }
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

fn every_path() {
    let emu = Arc::new(Emulator::in_memory());
    let client = CcgClient::new(emu.clone());
    // Success and release.
    let (_, mut h) = client.create("trace-ok", SPEC, Isolation::Process).unwrap();
    h.release().unwrap();
    // Rolled back.
    emu.inject(
        Fault::new(
            Api::GetServiceProperties,
            FaultAction::Respond { text: "x".into() },
        )
        .skip(1),
    )
    .unwrap();
    client
        .create("trace-rollback", SPEC, Isolation::HyperV)
        .unwrap_err();
    // Failed rollback.
    emu.inject(
        Fault::new(
            Api::GetServiceProperties,
            FaultAction::Respond { text: "x".into() },
        )
        .skip(1),
    )
    .unwrap();
    emu.inject(
        Fault::fail(Api::ModifyServiceSettings, HResult::E_FAIL)
            .on("RemoveInstance")
            .times(2),
    )
    .unwrap();
    client
        .create("trace-stuck", SPEC, Isolation::Process)
        .unwrap_err();
    // Duplicate.
    client
        .create("trace-stuck", SPEC, Isolation::Process)
        .unwrap_err();
    // Dropped without release.
    let (_, h) = client
        .create("trace-dropped", SPEC, Isolation::Process)
        .unwrap();
    drop(h);
}

#[test]
fn traces_never_hold_the_credential_spec() {
    for json in [false, true] {
        let out = capture(json, every_path);
        assert!(!out.contains(SECRET), "secret in trace output:\n{out}");
        assert!(
            !out.contains("DomainJoinConfig"),
            "credential spec in trace output:\n{out}"
        );
        for id in ["trace-ok", "trace-rollback", "trace-stuck", "trace-dropped"] {
            assert!(out.contains(id), "{id} missing from traces:\n{out}");
        }
        assert!(out.contains("container_id"), "{out}");
        assert!(out.contains("dropped without release"), "{out}");
    }
}
