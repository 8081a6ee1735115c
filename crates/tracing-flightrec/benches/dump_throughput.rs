//! Writers' throughput with and without dumps: four threads write at full speed into a
//! 16 MiB ring for several windows, alternating windows without dumps and windows with a
//! `SIGUSR1` dump every second (through the real signal path and dumper thread). Prints a
//! table; a dump pausing writers would show as a drop.
//!
//! `cargo bench -p tracing-flightrec --bench dump_throughput`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_subscriber::prelude::*;

const WRITERS: usize = 4;
const WINDOW: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("flightrec-dump-bench-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir.path())
        .service("dumpbench")
        .capacity(16 << 20)
        .stall_threshold(None)
        .keep_dumps(3)
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (d, counts, stop) = (dispatch.clone(), counts.clone(), stop.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            tracing::info!(t, i, "write");
                            i += 1;
                        }
                        counts[t].store(i, Ordering::Relaxed);
                    }
                })
            })
        })
        .collect();
    let total = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    std::thread::sleep(Duration::from_millis(500)); // warm up
    let pid = std::process::id();
    println!("| window | dumps | events/s (all writers) |");
    println!("|---|---:|---:|");
    let mut quiet = Vec::new();
    let mut dumping = Vec::new();
    for round in 0..ROUNDS {
        for with_dumps in [false, true] {
            let before = total();
            let start = Instant::now();
            let mut dumps = 0;
            while start.elapsed() < WINDOW {
                std::thread::sleep(Duration::from_millis(1000));
                if with_dumps {
                    signal_self_usr1(pid);
                    dumps += 1;
                }
            }
            let rate = (total() - before) as f64 / start.elapsed().as_secs_f64();
            println!(
                "| {} {} | {dumps} | {:.1} M |",
                if with_dumps { "with dumps" } else { "quiet" },
                round + 1,
                rate / 1e6
            );
            if with_dumps {
                dumping.push(rate)
            } else {
                quiet.push(rate)
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (q, d) = (mean(&quiet), mean(&dumping));
    println!(
        "\nmean quiet {:.1} M/s, with a dump every second {:.1} M/s: {:+.1}%",
        q / 1e6,
        d / 1e6,
        (d / q - 1.0) * 100.0
    );
    let written = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "flightrec")
        })
        .count();
    println!("dumps kept in the directory (retention 3): {written}");
}

/// Sends SIGUSR1 to this process the way `kill -USR1` would.
fn signal_self_usr1(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status();
}
