//! One round of the node agent, as `reconcile --alive-from containerd` does it: containerd's
//! listing (every namespace) + the HCS query + the journal's reconcile, at 10, 1,000 and
//! 5,000 live containers, each with a CCG instance (the emulator) and a journal record.
//! Every container is alive, so a round removes nothing and rounds repeat identically.
//!
//! Needs root and containerd: `scripts/containerd-tests.sh --bench` (docs/PERFORMANCE.md).

#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use credguard::{CcgClient, Isolation, Journal};
use credguard_agent::source::{AliveSource, live_set, reconcile_options};
#[cfg(unix)]
use credguard_agent::test_support::PrivateContainerd;
use credguard_emulator::Emulator;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const CS1: &str = include_str!("../../credguard/tests/fixtures/cs1.json");
const SIZES: [usize; 3] = [10, 1_000, 5_000];

#[cfg(not(unix))]
fn round(_: &mut Criterion) {}

#[cfg(unix)]
fn round(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let containerd = PrivateContainerd::start().unwrap_or_else(|e| panic!("{e}"));
    let image = containerd
        .import_test_image("k8s.io")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("agent_round");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(15));
    let mut created = 0;
    for size in SIZES {
        // Containers are added to reach `size` (the runtime keeps the earlier ones).
        let ids: Vec<String> = (created..size).map(|i| format!("{i:064x}")).collect();
        runtime
            .block_on(containerd.create_containers("k8s.io", &ids, &image))
            .unwrap();
        created = size;
        let dir = tempfile::tempdir().unwrap();
        let emulator = Arc::new(Emulator::in_memory());
        let journal = Arc::new(Journal::open(&dir.path().join("journal")).unwrap());
        let client = CcgClient::new(emulator).with_journal(journal);
        for i in 0..size {
            let (_, resource) = client
                .create(&format!("{i:064x}"), CS1, Isolation::Process)
                .unwrap();
            resource.detach();
        }
        let sources: Vec<Box<dyn AliveSource>> = vec![Box::new(containerd.source())];
        group.bench_with_input(BenchmarkId::new("round", size), &size, |b, _| {
            b.iter(|| {
                let live = runtime.block_on(live_set(&sources)).unwrap();
                assert_eq!(live.len(), size);
                let options = reconcile_options(live).unwrap();
                let done = client.reconcile(&options).unwrap();
                black_box(done);
            });
        });
        // Its two halves, to see where a round's time goes.
        group.bench_with_input(BenchmarkId::new("containerd_list", size), &size, |b, _| {
            b.iter(|| black_box(runtime.block_on(live_set(&sources)).unwrap()));
        });
        let options = reconcile_options(runtime.block_on(live_set(&sources)).unwrap()).unwrap();
        group.bench_with_input(BenchmarkId::new("hcs_and_journal", size), &size, |b, _| {
            b.iter(|| black_box(client.reconcile(&options).unwrap()));
        });
    }
    group.finish();
}

criterion_group!(benches, round);

#[cfg(unix)]
criterion_main!(benches);

/// A private containerd runs on Unix only; on Windows the benchmark is empty.
#[cfg(not(unix))]
fn main() {}
