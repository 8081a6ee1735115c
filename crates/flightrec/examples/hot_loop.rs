//! A million events through flightrec, for profilers (callgrind, perf).
use tracing_subscriber::prelude::*;

fn main() {
    let dir = std::env::temp_dir().join("flightrec-hot-loop");
    let rec = flightrec::Recorder::builder()
        .dir(&dir)
        .capacity(64 << 20)
        .build()
        .unwrap();
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
    tracing::dispatcher::with_default(&d, || {
        for i in 0..1_000_000u64 {
            tracing::info!(a = i, b = 7u64, "literal message");
        }
    });
}
