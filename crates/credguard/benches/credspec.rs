//! Reading and linting a credential spec, as `credspec validate` and `instances add` do:
//! `credspec::read(bytes)` (decode, parse, line map) then `lint()`, on three fixtures: compact
//! UTF-8, PowerShell's indented output, and UTF-16 LE with a BOM.

use std::hint::black_box;

use credguard::credspec::read;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SPECS: [(&str, &[u8]); 3] = [
    ("plain", include_bytes!("../tests/fixtures/cs1.json")),
    (
        "powershell",
        include_bytes!("../tests/fixtures/credspecs/powershell_contoso_webapp01.json"),
    ),
    (
        "utf16le_bom",
        include_bytes!("../tests/fixtures/credspecs/utf16le_bom_webapp01.json"),
    ),
];

fn read_lint(c: &mut Criterion) {
    let mut group = c.benchmark_group("credspec");
    for (name, bytes) in SPECS {
        let doc = read(bytes).expect("the fixture reads");
        assert!(
            doc.lint().iter().all(|d| !d.is_error()),
            "{name} lints clean"
        );
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("read_lint", name), bytes, |b, bytes| {
            b.iter(|| {
                let doc = read(black_box(bytes)).expect("reads");
                doc.lint()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, read_lint);
criterion_main!(benches);
