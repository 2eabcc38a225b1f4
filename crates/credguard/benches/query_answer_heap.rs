//! Peak heap and allocation counts while decoding the answer to the CCG query, measured with
//! a counting global allocator (so not in the timed benchmarks): `find_instance` against the
//! full decode, for 1 to 10,000 listed instances. Prints a Markdown table.
//!
//! It also checks what the numbers promise: `find_instance` allocates the same, a few KB,
//! whatever the number of instances (only the match is materialised). That is a property of
//! the code, not a timing, so it holds on any machine; `cargo test` runs this once.

// This benchmark binary opts into unsafe code because a `GlobalAlloc` implementation must be
// an `unsafe impl`; it only forwards to the system allocator and counts. (The library
// forbids unsafe code: credguard's is all in crates/credguard-winapi; the stand-in DLL is
// the other test-only exception.)
#![allow(unsafe_code)]

#[path = "support/answer.rs"]
mod answer;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use answer::{SIZES, Wanted, answer, full_decode};
use credguard::wire::find_instance;

/// The system allocator, counting allocations and bytes live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(size: usize) {
        let live = LIVE.fetch_add(size, Relaxed) + size;
        PEAK.fetch_max(live, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the counters are atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (that is, by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller upholds the rest.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            LIVE.fetch_sub(layout.size(), Relaxed);
            Self::grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap used by one call: the peak above what was live before it, and the allocations made
/// (a `realloc` counts as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heap {
    peak: usize,
    allocations: usize,
}

fn measure<T>(f: impl FnOnce() -> T) -> Heap {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let allocations = ALLOCATIONS.load(Relaxed);
    drop(black_box(f()));
    Heap {
        peak: PEAK.load(Relaxed) - before,
        allocations: ALLOCATIONS.load(Relaxed) - allocations,
    }
}

fn main() {
    println!(
        "| instances | wanted | document | find_instance peak heap | allocations | full decode peak heap | allocations |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    let mut find_heaps = Vec::new();
    for n in SIZES {
        for wanted in [Wanted::Last, Wanted::Middle] {
            let (doc, id) = answer(n, wanted);
            let find = measure(|| find_instance(black_box(&doc), black_box(&id)));
            let full = measure(|| full_decode(black_box(&doc), black_box(&id)));
            println!(
                "| {n} | {wanted:?} | {} | {} | {} | {} | {} |",
                bytes(doc.len()),
                bytes(find.peak),
                find.allocations,
                bytes(full.peak),
                full.allocations
            );
            find_heaps.push(find);
        }
    }
    // The claim the table makes, checked: find_instance's heap does not grow with the
    // number of instances (every instance has the same shape, so the match costs the same).
    let first = find_heaps[0];
    for h in &find_heaps {
        assert_eq!(
            *h, first,
            "find_instance's heap depends on the instance count"
        );
    }
    assert!(
        first.peak < 8 * 1024,
        "find_instance peaks at {} bytes",
        first.peak
    );
}

fn bytes(n: usize) -> String {
    match n {
        0..10_000 => format!("{n} B"),
        10_000..10_000_000 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}
