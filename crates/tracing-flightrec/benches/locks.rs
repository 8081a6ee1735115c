//! Criterion: `tracing_flightrec::sync::Mutex` against `std::sync::Mutex`, in one run. Uncontended
//! lock+unlock on one thread, and the same on two threads sharing one lock (contended: each
//! time per operation per thread). flightrec's lock records into a live recorder's ring.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

trait Lock: Sync {
    fn bump(&self);
}

impl Lock for std::sync::Mutex<u64> {
    #[inline]
    fn bump(&self) {
        *self.lock().unwrap() += 1;
    }
}

impl Lock for tracing_flightrec::sync::Mutex<u64> {
    #[inline]
    fn bump(&self) {
        *self.lock().unwrap() += 1;
    }
}

/// `iters` lock+unlock on each of `threads` threads; the mean per-thread time.
fn run(lock: &dyn Lock, threads: usize, iters: u64) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    let total: Duration = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    lock.bump(); // registers the thread with the recorder outside the timing
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        lock.bump();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total / threads as u32
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("flightrec-bench-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    // A thread records its lock events into the recorder of its subscriber: the global
    // one here, for every thread the bench starts.
    let recorder = tracing_flightrec::Recorder::builder()
        .dir(dir.path())
        .service("bench-locks")
        .capacity(64 << 20)
        .build()
        .unwrap();
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(recorder.layer()),
        )
        .expect("the bench sets the only global subscriber");
    }
    let std_lock = std::sync::Mutex::new(0u64);
    let flightrec_lock = tracing_flightrec::sync::Mutex::named("bench", 0u64);
    let subjects: [(&str, &dyn Lock); 2] = [
        ("std::sync::Mutex", &std_lock),
        ("flightrec::sync::Mutex", &flightrec_lock),
    ];
    for (case, threads) in [
        ("uncontended lock+unlock", 1usize),
        ("contended lock+unlock", 2),
    ] {
        let mut g = c.benchmark_group(case);
        for (name, lock) in subjects {
            g.bench_function(
                BenchmarkId::new(name, format!("{threads} thread(s)")),
                |b| b.iter_custom(|iters| run(lock, threads, iters)),
            );
        }
        g.finish();
    }
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
