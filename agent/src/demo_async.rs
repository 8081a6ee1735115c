//! `flightrec demo --async`: a real async HTTP service with a check-then-act race across an
//! `.await`, recorded until the race bites.
//!
//! A ticket shop (axum, on a loopback port, a tokio runtime with three workers) sells from
//! small lots; a restocker task puts a new lot on sale when one sells out. A
//! `POST /buy/{event}` request checks that the lot has a ticket left, awaits the payment
//! service, then takes the ticket: the check and the act are two critical sections with an
//! `.await` between them. In-process clients (hyper) buy concurrently; when two requests
//! check the same last ticket before either takes it, the second finds it gone and panics.
//! The recorder's panic hook writes a dump, and the viewer opens in the task view on the two
//! requests that interleaved, with the lot selected.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tracing::{error, info, info_span, Instrument};
use tracing_subscriber::prelude::*;

use crate::demo::{first_panic_dump, print_interleaving, DemoOptions};

/// Events on sale; clients buy tickets for them at random.
const EVENTS: u64 = 3;
/// Concurrent clients.
const CLIENTS: usize = 8;
/// Longest the demo runs before giving up on the race.
const DEADLINE: Duration = Duration::from_secs(50);

/// The lot on sale for one event: its number and the tickets left in it.
#[derive(Debug, Clone, Copy)]
struct Lot {
    number: u64,
    left: u64,
}

struct Shop {
    lots: Mutex<HashMap<u64, Lot>>,
    next_lot: AtomicU64,
    next_request: AtomicU64,
    /// Set by the request that found its ticket gone, before it panics.
    bitten: AtomicBool,
    sold_out: tokio::sync::Notify,
}

impl Shop {
    fn lot_name(event: u64, number: u64) -> String {
        format!("e{event}-lot{number}")
    }

    /// Puts a fresh lot of one to three tickets on sale for `event`.
    fn restock(&self, event: u64) {
        let number = self.next_lot.fetch_add(1, Ordering::Relaxed);
        let tickets = 1 + number % 3;
        let mut lots = self.lots.lock().unwrap_or_else(|e| e.into_inner());
        lots.insert(
            event,
            Lot {
                number,
                left: tickets,
            },
        );
        info!(lot = %Shop::lot_name(event, number), event, tickets, "lot on sale");
    }
}

/// `POST /buy/{event}`: check, pay, take. The bug: the check and the take are two critical
/// sections, with the payment's `.await` between them.
async fn buy(State(shop): State<Arc<Shop>>, Path(event): Path<u64>) -> StatusCode {
    let id = shop.next_request.fetch_add(1, Ordering::Relaxed);
    async move {
        // Check...
        let lot = {
            let lots = shop.lots.lock().unwrap_or_else(|e| e.into_inner());
            lots.get(&event).copied()
        };
        let Some(lot) = lot.filter(|l| l.left > 0) else {
            info!(event, "sold out, try again");
            return StatusCode::CONFLICT;
        };
        let name = Shop::lot_name(event, lot.number);
        info!(lot = %name, left = lot.left, "ticket available");
        // ...await the payment service...
        payment(id).await;
        // ...then act on what was checked before the await: the race.
        let mut lots = shop.lots.lock().unwrap_or_else(|e| e.into_inner());
        let now = lots.entry(event).or_insert(lot);
        if now.number != lot.number || now.left == 0 {
            shop.bitten.store(true, Ordering::SeqCst);
            error!(lot = %name, "ticket gone between the check and the sale: sold twice");
            drop(lots);
            panic!("ticket of {name} sold twice: checked, then taken by another request");
        }
        now.left -= 1;
        info!(lot = %name, "ticket sold");
        if now.left == 0 {
            shop.sold_out.notify_one();
        }
        StatusCode::OK
    }
    .instrument(info_span!("request", id, event))
    .await
}

/// `buy` with the race fixed: the check and the take in one critical section, then the
/// payment for a ticket already taken.
async fn buy_fixed(State(shop): State<Arc<Shop>>, Path(event): Path<u64>) -> StatusCode {
    let id = shop.next_request.fetch_add(1, Ordering::Relaxed);
    async move {
        let taken = {
            let mut lots = shop.lots.lock().unwrap_or_else(|e| e.into_inner());
            match lots.get_mut(&event).filter(|l| l.left > 0) {
                Some(lot) => {
                    lot.left -= 1;
                    let name = Shop::lot_name(event, lot.number);
                    info!(lot = %name, left = lot.left, "ticket taken");
                    Some((name, lot.left))
                }
                None => None,
            }
        };
        let Some((name, left)) = taken else {
            info!(event, "sold out, try again");
            return StatusCode::CONFLICT;
        };
        payment(id).await;
        info!(lot = %name, "ticket sold");
        if left == 0 {
            shop.sold_out.notify_one();
        }
        StatusCode::OK
    }
    .instrument(info_span!("request", id, event))
    .await
}

/// The payment service: a short wait, as a network call would be.
async fn payment(id: u64) {
    let us = 100 + (id * 7919 % 500);
    tokio::time::sleep(Duration::from_micros(us)).await;
}

/// Puts a new lot on sale whenever one sells out.
async fn restocker(shop: Arc<Shop>) {
    loop {
        shop.sold_out.notified().await;
        let sold: Vec<u64> = {
            let lots = shop.lots.lock().unwrap_or_else(|e| e.into_inner());
            lots.iter()
                .filter(|(_, l)| l.left == 0)
                .map(|(&e, _)| e)
                .collect()
        };
        for event in sold {
            // A moment for the shelf to be refilled.
            tokio::time::sleep(Duration::from_micros(300)).await;
            shop.restock(event);
        }
    }
}

/// One client: buys tickets over one keep-alive connection, for random events, until told
/// to stop.
async fn client(addr: std::net::SocketAddr, seed: u64, stop: Arc<AtomicBool>) {
    use http_body_util::{BodyExt as _, Empty};
    let mut n = seed;
    // Customers arrive one after another, not all at once.
    tokio::time::sleep(Duration::from_millis(seed % 40)).await;
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let io = hyper_util::rt::TokioIo::new(stream);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(io).await
        else {
            continue;
        };
        let connection = tokio::spawn(conn);
        while !stop.load(Ordering::Relaxed) {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let event = (n >> 33) % EVENTS;
            let req = hyper::Request::post(format!("/buy/{event}"))
                .header("host", addr.to_string())
                .body(Empty::new());
            let Ok(req) = req else { break };
            match sender.send_request(req).await {
                Ok(resp) => {
                    let _ = resp.into_body().collect().await;
                }
                // The server's handler panicked, or it is going away.
                Err(_) => break,
            }
            // A customer thinks before the next purchase.
            let think = 5_000 + (n >> 40) % 25_000;
            tokio::time::sleep(Duration::from_micros(think)).await;
        }
        connection.abort();
    }
}

pub fn run(opts: DemoOptions, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => tracing_flightrec::default_dump_dir().join("demo-async"),
    };
    // The demo's panic is expected: it is reported below, not as a raw panic message.
    std::panic::set_hook(Box::new(|_| {}));
    let recorder = tracing_flightrec::Recorder::builder()
        .service("ticket-shop")
        .dir(&dir)
        .capacity(16 << 20)
        .snapshot_signal(None)
        .build()
        .context("starting the recorder")?;
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(recorder.layer()));
    let on_workers = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .thread_name("tokio-worker")
        .enable_all()
        .on_thread_start(move || {
            // Events inside the requests go to this thread's default subscriber.
            std::mem::forget(tracing::dispatcher::set_default(&on_workers));
        })
        .build()
        .context("starting the tokio runtime")?;
    let shop = Arc::new(Shop {
        lots: Mutex::new(HashMap::new()),
        next_lot: AtomicU64::new(1),
        next_request: AtomicU64::new(1),
        bitten: AtomicBool::new(false),
        sold_out: tokio::sync::Notify::new(),
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind((
            std::net::Ipv4Addr::LOCALHOST,
            0,
        )))
        .context("listening on a loopback port")?;
    let addr = listener.local_addr()?;
    writeln!(
        out,
        "ticket-shop: an axum service on {addr} sells tickets from small lots; \
         {CLIENTS} clients buy concurrently.\nA request checks a lot, awaits the payment, \
         then takes the ticket. Recording into {} {}",
        dir.display(),
        crate::demo::until(opts.fixed)
    )?;
    out.flush()?;
    let stop = Arc::new(AtomicBool::new(false));
    let bit = tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            for event in 0..EVENTS {
                shop.restock(event);
            }
            tokio::spawn(restocker(shop.clone()).instrument(info_span!("restocker")));
            let app = Router::new()
                .route(
                    "/buy/{event}",
                    if opts.fixed {
                        post(buy_fixed)
                    } else {
                        post(buy)
                    },
                )
                .with_state(shop.clone());
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            for c in 0..CLIENTS {
                tokio::spawn(client(addr, 1 + c as u64 * 7781, stop.clone()));
            }
            let started = tokio::time::Instant::now();
            let deadline = if opts.fixed {
                Duration::from_secs(2)
            } else {
                DEADLINE
            };
            while !shop.bitten.load(Ordering::SeqCst) && started.elapsed() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stop.store(true, Ordering::SeqCst);
            server.abort();
            shop.bitten.load(Ordering::SeqCst)
        })
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let dump = if bit {
        // The panicking worker writes its dump in the panic hook; on a loaded machine that
        // may outlast the runtime's shutdown. Wait for it.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let dump = loop {
            match first_panic_dump(&dir) {
                Ok(d) => break d,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(e.context("finding the panic dump")),
            }
        };
        writeln!(out, "\nThe race bit.")?;
        dump
    } else {
        writeln!(out, "{}", crate::demo::did_not_bite(opts.fixed))?;
        recorder.snapshot().context("writing the dump")?
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
    crate::demo::keep_only(&dir, &dump, &ring);
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
    let selected = culprit.is_some();
    let query = match culprit {
        Some(c) => {
            let margin = ((c.to - c.from) / 5).max(50_000);
            format!(
                "?view=tasks&field={}&value={}&from={}&to={}",
                c.field,
                c.value,
                c.from - margin,
                c.to + margin
            )
        }
        None => "?view=tasks".into(),
    };
    if selected {
        writeln!(
            out,
            "\nOpening the task view with the lot selected: one lane per request, each poll \
             on the worker that ran it; orange arrows are hand-overs of the lot between \
             requests."
        )?;
    } else {
        writeln!(
            out,
            "\nOpening the task view of the whole recording: one lane per request, each poll \
             on the worker that ran it."
        )?;
    }
    crate::view::serve(
        vec![dump],
        std::net::Ipv4Addr::LOCALHOST.into(),
        opts.port,
        Vec::new(),
        opts.open
            || std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some(),
        &query,
        out,
        std::future::pending(),
    )
}
