//! Creating and releasing one CCG instance against the in-memory emulator, with 1 and with
//! 1,000 other instances live on the "host". Both steps query the whole listing (create checks
//! that the id is free and reads the new instance back; release checks that it is gone), so
//! the cost grows with what is live.

use std::hint::black_box;
use std::sync::Arc;

use credguard::wire::{ModificationRequest, Transport, to_wire};
use credguard::{CcgClient, HcsService, Isolation};
use credguard_emulator::Emulator;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};

const SPEC: &str = include_str!("../tests/fixtures/cs1.json");

fn create_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_release");
    for live in [1usize, 1_000] {
        let emulator = Arc::new(Emulator::in_memory());
        for i in 0..live {
            // Created straight through the service, as another process would: a client
            // would query the growing listing twice per instance.
            let add = ModificationRequest::add_instance(
                &format!("live-{i:05}"),
                SPEC.trim(),
                Transport::Lrpc,
            );
            emulator
                .modify_service_settings(&to_wire(&add).expect("serialises"))
                .expect("the emulator creates an instance");
        }
        let client = CcgClient::new(emulator.clone());
        assert_eq!(client.list().expect("lists").len(), live);
        group.bench_function(BenchmarkId::new("process", live), |b| {
            b.iter_batched(
                // The emulator logs every call; cleared outside the timed part so that the
                // log does not grow over millions of iterations.
                || emulator.clear_calls().expect("in memory"),
                |()| {
                    let (instance, mut handle) = client
                        .create(black_box("bench-container"), SPEC, Isolation::Process)
                        .expect("created");
                    handle.release().expect("released");
                    instance
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, create_release);
criterion_main!(benches);
