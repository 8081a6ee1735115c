//! Criterion: the cost per event (or per span lifetime) of each subscriber, on 1 and 2
//! threads. On 2 threads each thread does the work; the time reported is per operation per
//! thread, so "no slowdown" means the 2-thread figure matches the 1-thread one.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn bench(c: &mut Criterion) {
    let subjects = common::subjects();
    for (case, work) in common::CASES {
        let mut g = c.benchmark_group(case);
        for threads in [1usize, 2] {
            for s in &subjects {
                let id = BenchmarkId::new(
                    s.name,
                    format!("{threads} thread{}", if threads > 1 { "s" } else { "" }),
                );
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| run(&s.dispatch, threads, iters, work));
                });
            }
        }
        g.finish();
    }
}

/// Runs `iters` operations on each of `threads` threads; returns the mean per-thread time.
fn run(dispatch: &tracing::Dispatch, threads: usize, iters: u64, work: fn(u64)) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    let total: Duration = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        work(0); // registers the thread and callsite outside the timing
                        barrier.wait();
                        let start = Instant::now();
                        for i in 0..iters {
                            work(i);
                        }
                        start.elapsed()
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total / threads as u32
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
