//! Writes a dump of about N records (default one million) from four threads, with nested
//! spans and fields, and prints its path: the input for measuring `flightrec export` and
//! the viewer at scale.
//!
//! `cargo run --release -p tracing-flightrec --example big_dump -- [RECORDS] [DIR] [CAPACITY_MIB]`
use tracing_subscriber::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let records: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("RECORDS"));
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join("flightrec-big-dump"),
        Into::into,
    );
    let capacity_mib: u64 = args
        .next()
        .map_or(256, |a| a.parse().expect("CAPACITY_MIB"));
    const THREADS: u64 = 4;
    // Each iteration writes 5 records: a span's new, enter, event, exit and close.
    let per_thread = records / THREADS / 5;
    let rec = tracing_flightrec::Recorder::builder()
        .dir(&dir)
        .service("big")
        .capacity(capacity_mib << 20)
        .snapshot_signal(None)
        .build()
        .expect("recorder");
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let d = d.clone();
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn_scoped(s, move || {
                    tracing::dispatcher::with_default(&d, || {
                        for i in 0..per_thread {
                            let _span = tracing::info_span!("request", id = i).entered();
                            tracing::info!(conn = i % 64, bytes = i * 3, "handled");
                        }
                    })
                })
                .expect("thread");
        }
    });
    println!("{}", rec.snapshot().expect("snapshot").display());
}
