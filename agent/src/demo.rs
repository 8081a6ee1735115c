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
use flightrec_format::{Record, Recording};
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
}

type Cache = Arc<Mutex<HashMap<u64, u64>>>;

const SKUS: u64 = 64;
const WORKERS: usize = 4;

pub fn run(opts: DemoOptions, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => flightrec::default_dump_dir().join("demo"),
    };
    // The demo's panic is expected: it is reported below, not as a raw panic message.
    std::panic::set_hook(Box::new(|_| {}));
    let recorder = flightrec::Recorder::builder()
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
         clears and refills.\nRecording into {} until the race bites...",
        dir.display()
    )?;
    out.flush()?;
    let outcome = tracing::dispatcher::with_default(&dispatch, shop);
    let dump = match outcome {
        Outcome::Bit => {
            let dump = first_panic_dump(&dir).context("finding the panic dump")?;
            writeln!(out, "\nThe race bit.")?;
            dump
        }
        Outcome::DidNotBite => {
            writeln!(
                out,
                "\nThe race did not bite this time; dumping the recording anyway."
            )?;
            recorder.snapshot().context("writing the dump")?
        }
    };
    writeln!(out, "Dump: {}\n", dump.display())?;
    let rec = flightrec_format::open(&dump).context("reading the dump back")?;
    let found = flightrec_analysis::findings::findings(
        &rec,
        &flightrec_analysis::findings::Thresholds::default(),
    );
    crate::info::run(&dump, &rec, rec.records.iter().cloned(), &found, false, out)?;
    let culprit = print_interleaving(&rec, out)?;
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
    let query = match culprit {
        Some(Culprit {
            cache,
            from,
            to: Some(to),
        }) => {
            let margin = ((to - from) / 5).max(20_000);
            format!(
                "?field=cache&value={cache}&from={}&to={}",
                from - margin,
                to + margin
            )
        }
        Some(Culprit { cache, .. }) => format!("?field=cache&value={cache}&focus=trigger"),
        None => String::new(),
    };
    writeln!(
        out,
        "\nOpening the timeline with the cache selected: every access to it, on every \
         thread, linked in time order; orange arrows are hand-overs between threads."
    )?;
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

/// Runs the shop until a worker panics (or 20 seconds pass).
fn shop() -> Outcome {
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
                        price_order(&cache, &addr, order, w, &stop);
                    }
                }),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
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

/// The object and the moments to show.
struct Culprit {
    /// The cache's address, as its records carry it.
    cache: String,
    /// The victim's cache hit, ns since the Unix epoch.
    from: i64,
    /// Its failed read.
    to: Option<i64>,
}

/// Prints the guilty interleaving: the panicking worker's cache hit, what other threads did
/// to the cache before its read, and the failed read.
fn print_interleaving(rec: &Recording, out: &mut impl Write) -> anyhow::Result<Option<Culprit>> {
    let names = flightrec_analysis::Names::new(rec);
    let field = |r: &Record, name: &str| -> Option<String> {
        r.fields
            .iter()
            .find(|f| names.field_name(r.callsite, f.index) == name)
            .map(|f| f.value.to_text())
    };
    let message = |r: &Record| field(r, "message").unwrap_or_default();
    let thread_name = |index: u32| names.thread_label(index);
    let victim = rec
        .threads
        .iter()
        .find(|t| t.tid == rec.trigger.tid)
        .map(|t| t.index);
    let Some(failed) = rec
        .records
        .iter()
        .rposition(|r| Some(r.thread) == victim && message(r).starts_with("price vanished"))
    else {
        return Ok(rec.records.iter().find_map(|r| {
            Some(Culprit {
                cache: field(r, "cache")?,
                from: r.ts,
                to: None,
            })
        }));
    };
    let err = &rec.records[failed];
    let (sku, cache) = (field(err, "sku"), field(err, "cache"));
    let hit = rec.records[..failed]
        .iter()
        .rposition(|r| {
            r.thread == err.thread && message(r) == "cache hit" && field(r, "sku") == sku
        })
        .unwrap_or(failed);
    writeln!(
        out,
        "\nThe guilty interleaving, on the cache at {}:",
        cache.as_deref().unwrap_or("?")
    )?;
    let mut prev: Option<u32> = None;
    for r in &rec.records[hit..=failed] {
        let touches_cache = field(r, "cache") == cache;
        let relevant = if r.thread == err.thread {
            touches_cache
        } else {
            touches_cache && (field(r, "sku") == sku || field(r, "removed").is_some())
        };
        if !relevant {
            continue;
        }
        let mark = match prev {
            Some(p) if p != r.thread => format!("   <- handed over from {}", thread_name(p)),
            _ => String::new(),
        };
        let detail: Vec<String> = ["sku", "removed"]
            .iter()
            .filter_map(|k| field(r, k).map(|v| format!("{k}={v}")))
            .collect();
        writeln!(
            out,
            "  {}  {:<10} {} {}{}",
            crate::cat::format_ts(r.ts),
            thread_name(r.thread),
            message(r),
            detail.join(" "),
            mark
        )?;
        prev = Some(r.thread);
    }
    Ok(cache.map(|cache| Culprit {
        cache,
        from: rec.records[hit].ts,
        to: Some(err.ts),
    }))
}
