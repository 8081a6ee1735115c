//! Per-event latency distribution (median, p99, p99.9) for each subscriber, on 1 and 2
//! threads, printed as a table. Each operation is timed on its own with `Instant`; the
//! median cost of timing nothing is measured in the same run and subtracted.
//!
//! `cargo bench -p tracing-flightrec --bench latency`

mod common;

use std::time::Instant;

const SAMPLES: usize = 400_000;

fn timer_overhead() -> u64 {
    let mut v: Vec<u64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(());
            t.elapsed().as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn measure(
    dispatch: &tracing::Dispatch,
    work: fn(u64),
    threads: usize,
    overhead: u64,
) -> (u64, u64, u64) {
    let barrier = std::sync::Barrier::new(threads);
    let mut all: Vec<u64> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        for i in 0..10_000 {
                            work(i);
                        }
                        barrier.wait();
                        let mut v = Vec::with_capacity(SAMPLES);
                        for i in 0..SAMPLES as u64 {
                            let t = Instant::now();
                            work(i);
                            v.push((t.elapsed().as_nanos() as u64).saturating_sub(overhead));
                        }
                        v
                    })
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (at(0.5), at(0.99), at(0.999))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; there are no tests here.
    }
    let subjects = common::subjects();
    let overhead = timer_overhead();
    println!("timer overhead subtracted: {overhead} ns; {SAMPLES} samples per thread\n");
    println!("| case | threads | subscriber | median ns | p99 ns | p99.9 ns |");
    println!("|---|---|---|---:|---:|---:|");
    for (case, work) in common::CASES {
        for threads in [1, 2] {
            for s in &subjects {
                let (p50, p99, p999) = measure(&s.dispatch, work, threads, overhead);
                println!(
                    "| {case} | {threads} | {} | {p50} | {p99} | {p999} |",
                    s.name
                );
            }
        }
    }
}
