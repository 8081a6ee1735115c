//! A million events (or, with `span`, a million span lifetimes) through flightrec, for
//! profilers (callgrind, perf).
use tracing_subscriber::prelude::*;

fn main() {
    let spans = std::env::args().nth(1).as_deref() == Some("span");
    let dir = std::env::temp_dir().join("flightrec-hot-loop");
    let rec = tracing_flightrec::Recorder::builder()
        .dir(&dir)
        .capacity(64 << 20)
        .build()
        .unwrap();
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
    tracing::dispatcher::with_default(&d, || {
        for i in 0..1_000_000u64 {
            if spans {
                let s = tracing::info_span!("request", i);
                let _g = s.enter();
            } else {
                tracing::info!(a = i, b = 7u64, "literal message");
            }
        }
    });
}
