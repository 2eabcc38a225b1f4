//! What the library's integration tests share: the fixtures (one copy each, under
//! `tests/fixtures`), an emulator with a journal and a client on it, and proptest's seed.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use credguard::journal::{Journal, RecordState};
use credguard::lifecycle::CcgError;
use credguard::{CcgClient, CcgResource, CreateRequest, Isolation};
use credguard_emulator::Emulator;

/// A valid credential spec without a plug-in (`fixtures/cs1.json`).
pub const CS1: &str = include_str!("../fixtures/cs1.json");

/// A valid credential spec whose `HostAccountConfig.PluginInput` holds [`SECRET`]
/// (`fixtures/secret_spec.json`; the CLI's tests use the same file).
pub const SECRET_SPEC: &str = include_str!("../fixtures/secret_spec.json");

/// The password in [`SECRET_SPEC`]'s plug-in input: no log, error or output may show it
/// unless asked to.
pub const SECRET: &str = "Sup3rS3cretPassw0rd";

/// A file under `tests/fixtures`.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The text of a file under `tests/fixtures`.
pub fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An in-memory emulator and a client on it, with a journal in a temporary directory.
pub struct World {
    pub emu: Arc<Emulator>,
    pub journal: Arc<Journal>,
    pub client: CcgClient,
    /// The journal's directory.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let emu = Arc::new(Emulator::in_memory());
        let journal = Arc::new(Journal::open(&dir).unwrap());
        let client = CcgClient::new(emu.clone()).with_journal(journal.clone());
        World {
            emu,
            journal,
            client,
            dir,
            _tmp: tmp,
        }
    }

    /// The ids HCS lists.
    pub fn ids(&self) -> Vec<String> {
        self.emu
            .instances()
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect()
    }

    /// The journal's records: id and state.
    pub fn records(&self) -> Vec<(String, RecordState)> {
        self.journal
            .records()
            .unwrap()
            .into_iter()
            .map(|r| (r.container_id().to_owned(), r.state()))
            .collect()
    }

    /// The service ids of the HvSocket entries in the utility VMs.
    pub fn entries(&self) -> Vec<String> {
        self.emu
            .hvsocket_entries()
            .unwrap()
            .into_iter()
            .map(|e| e.1)
            .collect()
    }

    /// A Hyper-V create of [`CS1`] as `id` in utility VM `vm`.
    pub fn hyperv(
        &self,
        id: &str,
        vm: &str,
    ) -> Result<
        (
            credguard::wire::ContainerCredentialGuardInstance,
            CcgResource,
        ),
        CcgError,
    > {
        self.client
            .create_request(&CreateRequest::new(id, CS1, Isolation::HyperV).with_utility_vm(vm))
    }
}

/// proptest's configuration with `cases` cases. Deterministic by default: a fixed seed,
/// unless `PROPTEST_RNG_SEED` names one (`random` for a time-based seed). The seed is
/// printed (`-- --nocapture` shows it); a failure is reproduced with
/// `PROPTEST_RNG_SEED=<seed>`.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    const DEFAULT_SEED: u64 = 12345;
    let seed = match std::env::var("PROPTEST_RNG_SEED").as_deref() {
        Err(_) => DEFAULT_SEED,
        Ok("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("PROPTEST_RNG_SEED={s:?}: neither a number nor `random`")),
    };
    eprintln!("proptest seed {seed} (PROPTEST_RNG_SEED={seed} reproduces it)");
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..proptest::test_runner::Config::default()
    }
}

/// An error and its sources on one line (`a: b: c`): how the tests read an error's chain
/// (the library keeps its own flattening private; printing a chain is the caller's choice).
pub fn chain_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string().replace('\n', " ");
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string().replace('\n', " "));
        next = e.source();
    }
    out
}
