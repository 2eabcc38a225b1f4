//! Decoding the answer to the CCG query and finding one instance in it: `find_instance`
//! (one streaming pass, only the match materialised) against the full decode a
//! straightforward port does (every instance materialised, then a linear search), for 1 to
//! 10,000 listed instances, the wanted one last (every other instance comes first) and in the
//! middle. Peak heap and allocation counts are measured by `query_answer_heap`.

#[path = "support/answer.rs"]
mod answer;

use std::hint::black_box;
use std::time::Duration;

use answer::{SIZES, Wanted, answer, full_decode};
use credguard::wire::find_instance;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn query_answer(c: &mut Criterion) {
    for wanted in [Wanted::Last, Wanted::Middle] {
        let mut group = c.benchmark_group(format!("query_answer/{wanted:?}").to_lowercase());
        for n in SIZES {
            let (doc, id) = answer(n, wanted);
            assert_eq!(
                find_instance(&doc, &id).expect("a valid answer"),
                full_decode(&doc, &id),
                "both find the same instance"
            );
            if n >= 1_000 {
                group.sample_size(30);
                group.measurement_time(Duration::from_secs(8));
            }
            group.throughput(Throughput::Bytes(doc.len() as u64));
            group.bench_with_input(BenchmarkId::new("find_instance", n), &doc, |b, doc| {
                b.iter(|| find_instance(black_box(doc), black_box(&id)));
            });
            group.bench_with_input(BenchmarkId::new("full_decode", n), &doc, |b, doc| {
                b.iter(|| full_decode(black_box(doc), black_box(&id)));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, query_answer);
criterion_main!(benches);
