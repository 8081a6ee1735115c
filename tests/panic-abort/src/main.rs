//! Records, then panics on a worker thread, in a build with `panic = "abort"`.
use tracing_subscriber::prelude::*;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: flightrec-panic-abort DIR");
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir)
        .service("abort")
        .capacity(1 << 20)
        .snapshot_signal(None)
        .build()
        .expect("building the recorder");
    let d = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
    let worker = std::thread::Builder::new()
        .name("doomed".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                for step in 0..5u64 {
                    tracing::info!(step, "working");
                }
                let answer = 42;
                panic!("boom {answer}");
            })
        })
        .expect("spawning the worker");
    let _ = worker.join();
    unreachable!("panic = \"abort\" ends the process in the panicking thread");
}
