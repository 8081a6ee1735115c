//! `flightrec demo`: a small multi-threaded workload recorded, dumped and shown.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing::{info, info_span, warn};
use tracing_subscriber::prelude::*;

pub fn run(dir: Option<PathBuf>, tail: usize, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("flightrec-demo-{}", std::process::id())),
    };
    let recorder = flightrec::Recorder::builder()
        .service("demo-shop")
        .dir(&dir)
        .capacity(4 << 20)
        .build()
        .context("starting the recorder")?;
    let subscriber = tracing_subscriber::registry().with(recorder.layer());
    tracing::subscriber::with_default(subscriber, workload);
    let dump = recorder.snapshot().context("writing the dump")?;
    writeln!(
        out,
        "recorded a 4-thread workload; dump written to {}\n",
        dump.display()
    )?;
    let rec = flightrec_format::open(&dump).context("reading the dump back")?;
    crate::info::run(&dump, &rec, false, out)?;
    writeln!(
        out,
        "\nlast {tail} records (flightrec cat {}):",
        dump.display()
    )?;
    let names = crate::cat::Names::new(&rec);
    let mut line = String::new();
    for r in rec
        .records
        .iter()
        .rev()
        .take(tail)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        line.clear();
        crate::cat::text_line(&rec, &names, r, &mut line);
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Four workers take orders from a shared counter; each order is a span with a nested
/// "charge" span, and every 97th payment is declined.
fn workload() {
    let next_order = Arc::new(AtomicU64::new(1));
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let next_order = next_order.clone();
            let dispatch = dispatch.clone();
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || loop {
                        let order = next_order.fetch_add(1, Ordering::Relaxed);
                        if order > 2000 {
                            break;
                        }
                        let span = info_span!("order", order, worker = w);
                        let _g = span.enter();
                        info!(items = order % 5 + 1, "order received");
                        {
                            let charge = info_span!("charge", amount_cents = order * 137 % 10_000);
                            let _c = charge.enter();
                            if order.is_multiple_of(97) {
                                warn!(reason = "card declined", "payment failed");
                            } else {
                                info!("payment accepted");
                            }
                        }
                        if order.is_multiple_of(50) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    })
                })
                .expect("spawning a demo worker")
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}
