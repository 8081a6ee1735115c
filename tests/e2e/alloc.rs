//! The hot path allocates nothing and touches no shared header word: a counting global
//! allocator sees zero allocations across a hundred thousand events (including the chunk
//! claims and recycling they cause), and the ring's global counters do not move while a
//! thread writes into its own chunk.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use flightrec_format::layout::{get_u64, header};

use crate::helpers::*;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts, per thread, in a const-initialised
// thread-local without a destructor (so counting itself never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[derive(Debug)]
#[allow(dead_code)]
struct Order {
    id: u64,
    items: [u16; 3],
}

fn mixed_events(i: u64) {
    let name = "checkout";
    tracing::info!(a = i, b = i * 2, "literal message");
    tracing::info!(service = name, i, "with a str field");
    tracing::debug!(order = ?Order { id: i, items: [1, 2, 3] }, "with a Debug field");
    tracing::warn!(ratio = 0.5, ok = false, neg = -1i64, "formatted {}", i);
}

/// Spans without Debug fields, created, entered, exited and closed, and a long-lived span
/// entered and exited as an async task's polls are: no allocation by our layer, and the
/// registry's own span slots are reused (its pool warms up first).
#[test]
fn spans_allocate_nothing_once_warm() {
    let dir = scratch();
    let rec = recorder(dir.path(), "alloc-spans", 256 << 10);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        let task = tracing::info_span!("task", id = 7u64);
        let work = |i: u64| {
            let s = tracing::info_span!("request", i, path = "/checkout");
            let _g = s.enter();
            for _ in 0..3 {
                let _poll = task.enter();
            }
        };
        for i in 0..1000 {
            work(i);
        }
        let before = allocations();
        for i in 0..100_000 {
            work(i);
        }
        let during = allocations() - before;
        assert_eq!(during, 0, "{during} allocations for 100 000 span lifetimes");
    });
}

#[test]
fn events_allocate_nothing_even_across_chunk_claims() {
    let dir = scratch();
    // A small ring, so the loop below claims and recycles many chunks.
    let rec = recorder(dir.path(), "alloc", 256 << 10);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        for i in 0..1000 {
            mixed_events(i); // warm up: callsites and thread registered, first chunk claimed
        }
        let before = allocations();
        for i in 0..100_000 {
            mixed_events(i);
        }
        let during = allocations() - before;
        assert_eq!(during, 0, "{during} allocations for 400 000 events");
    });
    let ring = flightrec_format::open(rec.ring_path()).unwrap();
    assert!(
        ring.threads[0].overwritten > 300_000,
        "the loop did not wrap the ring"
    );
}

#[test]
fn steady_state_writes_touch_no_shared_header_word() {
    let dir = scratch();
    let rec = recorder(dir.path(), "shared", 16 << 20);
    let words = [
        header::CLAIM_CURSOR,
        header::NEXT_THREAD_INDEX,
        header::NEXT_SPAN_BLOCK,
        header::META_COMMITTED_LEN,
    ];
    let read = || {
        let b = std::fs::read(rec.ring_path()).unwrap();
        words.map(|w| get_u64(&b, w).unwrap())
    };
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        let write = |n: u64| {
            for i in 0..n {
                tracing::info!(i, "fits in the current chunk");
            }
        };
        write(1); // registers the thread and the callsite, claims a chunk
        let before = read();
        write(100);
        assert_eq!(read(), before, "a per-event write to a shared header word");
        assert!(before[0] > 0, "the thread claimed a chunk");
    });
}
