//! `flightrec demo`: a small service with a real race in it, recorded until the race bites.
//!
//! Four workers price orders from a shared cache; a refresher thread clears the cache and
//! refills it. A worker checks that a price is cached, lets go of the lock, and reads the
//! price a moment later: if the refresher cleared the cache in between, the price is gone
//! and the worker panics. The recorder's panic hook writes a dump, and the viewer opens on it
//! with the cache selected, so the guilty interleaving (hit on one thread, clear on another,
//! miss on the first) is on screen.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flightrec_analysis::findings::{Finding, Kind};
use tracing::{debug, error, info, info_span, warn};
use tracing_subscriber::prelude::*;

/// What to do once the dump is written.
pub struct DemoOptions {
    pub dir: Option<PathBuf>,
    /// Serve the dump in the viewer (until Ctrl-C).
    pub view: bool,
    /// Open a browser on it.
    pub open: bool,
    pub port: u16,
    /// Run the service with its race fixed, for two seconds: a correct program, whose
    /// recording must give no finding.
    pub fixed: bool,
}

type Cache = Arc<Mutex<HashMap<u64, u64>>>;

const SKUS: u64 = 64;
const WORKERS: usize = 4;

pub fn run(opts: DemoOptions, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => tracing_flightrec::default_dump_dir().join("demo"),
    };
    // The demo's panic is expected: it is reported below, not as a raw panic message.
    std::panic::set_hook(Box::new(|_| {}));
    let recorder = tracing_flightrec::Recorder::builder()
        .service("demo-shop")
        .dir(&dir)
        .capacity(8 << 20)
        .snapshot_signal(None)
        .build()
        .context("starting the recorder")?;
    let subscriber = tracing_subscriber::registry().with(recorder.layer());
    let dispatch = tracing::Dispatch::new(subscriber);
    writeln!(
        out,
        "demo-shop: {WORKERS} workers price orders from a cache that a refresher thread \
         clears and refills.\nRecording into {} {}",
        dir.display(),
        crate::demo::until(opts.fixed)
    )?;
    out.flush()?;
    let fixed = opts.fixed;
    let outcome = tracing::dispatcher::with_default(&dispatch, || shop(fixed));
    let dump = match outcome {
        Outcome::Bit => {
            let dump = first_panic_dump(&dir).context("finding the panic dump")?;
            writeln!(out, "\nThe race bit.")?;
            dump
        }
        Outcome::DidNotBite => {
            writeln!(out, "{}", crate::demo::did_not_bite(opts.fixed))?;
            recorder.snapshot().context("writing the dump")?
        }
    };
    writeln!(out, "Dump: {}\n", dump.display())?;
    let rec = flightrec_format::open(&dump).context("reading the dump back")?;
    let analysis = flightrec_analysis::Analysis::of(
        &rec,
        &flightrec_analysis::findings::Thresholds::default(),
    );
    let found = &analysis.findings;
    crate::info::run(&dump, &rec, &analysis, false, out)?;
    let culprit = print_interleaving(found, out)?;
    let ring = recorder.ring_path().to_path_buf();
    drop(recorder);
    keep_only(&dir, &dump, &ring);
    writeln!(
        out,
        "\nThe dump is kept at {} (the ring file was removed); open it again with: flightrec view {}",
        dump.display(),
        dump.display()
    )?;
    out.flush()?;
    if !opts.view {
        return Ok(());
    }
    // The page opens on the interleaving (from the hit to the failed read, with a margin),
    // with the cache selected.
    let selected = culprit.is_some();
    let query = match culprit {
        Some(c) => {
            let margin = ((c.to - c.from) / 5).max(20_000);
            format!(
                "?field={}&value={}&from={}&to={}",
                c.field,
                c.value,
                c.from - margin,
                c.to + margin
            )
        }
        None => String::new(),
    };
    if selected {
        writeln!(
            out,
            "\nOpening the timeline with the cache selected: every access to it, on every \
             thread, linked in time order; orange arrows are hand-overs between threads."
        )?;
    } else {
        // Nothing to select (the fixed service's recording has no interleaving).
        writeln!(
            out,
            "\nOpening the timeline of the whole recording: one lane per thread."
        )?;
    }
    crate::view::serve(
        vec![dump],
        std::net::Ipv4Addr::LOCALHOST.into(),
        opts.port,
        Vec::new(),
        // Where there is a desktop, the demo opens the browser itself.
        opts.open
            || std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some(),
        &query,
        out,
        std::future::pending(),
    )
}

/// The ring and any other dumps are not needed any more: only the dump shown stays.
pub(crate) fn keep_only(dir: &Path, dump: &Path, ring: &Path) {
    let _ = std::fs::remove_file(ring);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for p in entries.flatten().map(|e| e.path()) {
            if p != dump && p.extension().is_some_and(|x| x == "flightrec") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

enum Outcome {
    /// A worker panicked (more may have, before they saw the stop flag).
    Bit,
    DidNotBite,
}

/// Runs the shop until a worker panics (or 20 seconds pass; 2 when `fixed`).
fn shop(fixed: bool) -> Outcome {
    let cache: Cache = Arc::new(Mutex::new(HashMap::new()));
    let addr = format!("{:p}", Arc::as_ptr(&cache));
    refill(&cache, &addr, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        let d = dispatch.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || tracing::dispatcher::with_default(&d, f))
            .expect("spawning a demo thread")
    };
    let refresher = {
        let (cache, addr, stop) = (cache.clone(), addr.clone(), stop.clone());
        spawn(
            "refresher".into(),
            Box::new(move || {
                let mut generation = 0;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(3));
                    generation += 1;
                    let _s = info_span!("refresh", generation).entered();
                    // The bug: clearing and refilling are two critical sections, not one.
                    {
                        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
                        // Every access is logged inside its critical section, so the
                        // records' order is the order the lock was taken in.
                        warn!(cache = %addr, removed = c.len(), "cache cleared for refresh");
                        c.clear();
                    }
                    std::thread::sleep(Duration::from_micros(300));
                    refill(&cache, &addr, generation);
                }
            }),
        )
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (cache, addr, stop) = (cache.clone(), addr.clone(), stop.clone());
            spawn(
                format!("worker-{w}"),
                Box::new(move || {
                    let mut order = w as u64;
                    while !stop.load(Ordering::Relaxed) {
                        order += WORKERS as u64;
                        if fixed {
                            price_order_fixed(&cache, &addr, order, w);
                        } else {
                            price_order(&cache, &addr, order, w, &stop);
                        }
                    }
                }),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(if fixed { 2 } else { 20 });
    let outcome = loop {
        if workers.iter().any(|h| h.is_finished()) {
            stop.store(true, Ordering::Relaxed);
            let joined: Vec<_> = workers.into_iter().map(|h| h.join()).collect();
            let panicked = joined.iter().any(|r| r.is_err());
            break if panicked {
                Outcome::Bit
            } else {
                Outcome::DidNotBite
            };
        }
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            for h in workers {
                let _ = h.join();
            }
            break Outcome::DidNotBite;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, Ordering::Relaxed);
    let _ = refresher.join();
    outcome
}

fn refill(cache: &Cache, addr: &str, generation: u64) {
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    for sku in 0..SKUS {
        c.insert(sku, 100 + (sku * 37 + generation) % 900);
    }
    info!(cache = %addr, generation, skus = SKUS, "cache refilled");
}

fn price_order(cache: &Cache, addr: &str, order: u64, worker: usize, stop: &AtomicBool) {
    let sku = order * 7 % SKUS;
    let _s = info_span!("order", order, worker).entered();
    // Check...
    {
        let c = cache.lock().unwrap_or_else(|e| e.into_inner());
        if !c.contains_key(&sku) {
            debug!(cache = %addr, sku, "cache miss, pricing from the catalogue");
            return;
        }
        debug!(cache = %addr, sku, "cache hit");
    }
    // ...then act, with the lock let go in between: the race.
    let _p = info_span!("apply_discount", sku).entered();
    for _ in 0..200 {
        std::hint::spin_loop();
    }
    let c = cache.lock().unwrap_or_else(|e| e.into_inner());
    match c.get(&sku) {
        Some(&price) => debug!(cache = %addr, sku, price, "priced"),
        None => {
            // Stop the others first, so the first panic is the one that is dumped and shown.
            stop.store(true, Ordering::Relaxed);
            error!(cache = %addr, sku, "price vanished between the check and the read");
            drop(c);
            panic!("price of sku {sku} vanished from the cache between the check and the read");
        }
    }
}

/// `price_order` with the race fixed: the check and the read in one critical section.
fn price_order_fixed(cache: &Cache, addr: &str, order: u64, worker: usize) {
    let sku = order * 7 % SKUS;
    let _s = info_span!("order", order, worker).entered();
    let c = cache.lock().unwrap_or_else(|e| e.into_inner());
    match c.get(&sku) {
        Some(&price) => {
            debug!(cache = %addr, sku, "cache hit");
            let _p = info_span!("apply_discount", sku).entered();
            debug!(cache = %addr, sku, price, "priced");
        }
        None => debug!(cache = %addr, sku, "cache miss, pricing from the catalogue"),
    }
}

/// The dump of this process's first panic (another worker may have panicked before it
/// stopped).
pub(crate) fn first_panic_dump(dir: &Path) -> anyhow::Result<PathBuf> {
    let mine = format!("-{}-", std::process::id());
    let mut dumps: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "flightrec")
                && p.to_string_lossy().ends_with("-panic.flightrec")
                // This run's, not an earlier demo's in the same directory.
                && p.to_string_lossy().contains(&mine)
        })
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    dumps.sort();
    dumps
        .into_iter()
        .next()
        .map(|d| d.1)
        .ok_or_else(|| anyhow::anyhow!("no panic dump in {}", dir.display()))
}

/// How long a demo records, as its first lines say.
pub(crate) fn until(fixed: bool) -> &'static str {
    if fixed {
        "for two seconds, with the race fixed..."
    } else {
        "until the race bites..."
    }
}

/// What a demo says when no worker failed.
pub(crate) fn did_not_bite(fixed: bool) -> &'static str {
    if fixed {
        "\nNo race with the fix in: dumping the recording."
    } else {
        "\nThe race did not bite this time; dumping the recording anyway."
    }
}

/// The object the viewer opens on, and the stretch of time: the interleaving finding's
/// object and its first and last evidence (ns since the Unix epoch).
pub(crate) struct Culprit {
    pub field: String,
    pub value: String,
    pub from: i64,
    pub to: i64,
}

/// Prints the recording's first `interleaving` finding (the failure, explained): the
/// failing request's earlier touch of the object, the other threads' or requests' touches
/// in between, and the failure, each with its time, who wrote it and what it shows. The
/// findings know nothing of the demo's messages: this is what a user's service gets too.
pub(crate) fn print_interleaving(
    found: &[Finding],
    out: &mut impl Write,
) -> anyhow::Result<Option<Culprit>> {
    let Some(f) = found.iter().find(|f| f.kind == Kind::Interleaving) else {
        return Ok(None);
    };
    let object = f.object.clone().unwrap_or_default();
    writeln!(out, "\nThe guilty interleaving, on {object}:")?;
    let who = |e: &flightrec_analysis::findings::Evidence| match &e.task {
        Some(t) => format!("{t} on {}", e.thread),
        None => e.thread.clone(),
    };
    let width = f.records.iter().map(|e| who(e).len()).max().unwrap_or(0);
    for e in &f.records {
        writeln!(
            out,
            "  {}  {:<width$}  {}   ({})",
            crate::cat::format_ts(e.ts),
            who(e),
            e.title,
            e.role
        )?;
    }
    let (field, value) = object.split_once('=').unwrap_or((&object, ""));
    Ok(Some(Culprit {
        field: field.to_string(),
        value: value.to_string(),
        from: f.records.first().map_or(0, |e| e.ts),
        to: f.records.last().map_or(0, |e| e.ts),
    }))
}
