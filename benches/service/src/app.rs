//! The service under test, in one of the variants: an axum app whose every request enters a
//! span, waits on a "database" task, takes a lock around shared state, writes five events
//! (two at DEBUG, three at INFO) and answers JSON. Each variant runs in a process of its own
//! (`serve`), so that one variant's global subscriber and threads never touch another's.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Path as UrlPath, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use crate::Variant;

/// The shared state every request updates under its lock.
#[derive(Default)]
struct Orders {
    count: u64,
    revenue: u64,
    per_product: HashMap<u64, u64>,
}

/// The lock around the shared state: std's, or flightrec's recorded one for the variants
/// that run flightrec (as a service using flightrec's locks would).
enum OrdersLock {
    Std(std::sync::Mutex<Orders>),
    Recorded(tracing_flightrec::sync::Mutex<Orders>),
}

impl OrdersLock {
    fn with<R>(&self, f: impl FnOnce(&mut Orders) -> R) -> R {
        match self {
            OrdersLock::Std(m) => f(&mut m.lock().unwrap_or_else(|e| e.into_inner())),
            OrdersLock::Recorded(m) => f(&mut m.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

struct AppState {
    orders: OrdersLock,
    recording: Recording,
    /// Queries to the database task, each with where its answer goes.
    db: mpsc::Sender<(u64, oneshot::Sender<u64>)>,
}

#[derive(Serialize)]
struct OrderReply {
    order: u64,
    product: u64,
    price: u64,
    orders_so_far: u64,
}

/// What `/cpu` answers: the process's CPU time so far, user and system, from getrusage;
/// and of that, what flightrec's history thread ran (0 without one).
#[derive(Serialize, serde::Deserialize, Clone, Copy, Debug, Default)]
pub struct CpuTime {
    pub user_us: u64,
    pub sys_us: u64,
    pub history_us: u64,
}

impl CpuTime {
    pub fn total_us(&self) -> u64 {
        self.user_us + self.sys_us
    }

    fn of_this_process() -> CpuTime {
        use nix::sys::resource::{getrusage, UsageWho};
        let micros =
            |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
        match getrusage(UsageWho::RUSAGE_SELF) {
            Ok(u) => CpuTime {
                user_us: micros(u.user_time()),
                sys_us: micros(u.system_time()),
                history_us: history_thread_us(),
            },
            Err(_) => CpuTime::default(),
        }
    }
}

/// The CPU time this process's `flightrec-history` thread has run, from the scheduler's
/// count in nanoseconds (`/proc/self/task/*/schedstat`; `stat`'s ticks are 10 ms).
fn history_thread_us() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| "flightrec-history".starts_with(c.trim_end()))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>()
        / 1000
}

async fn order(State(app): State<Arc<AppState>>, UrlPath(id): UrlPath<u64>) -> Json<OrderReply> {
    let span = tracing::info_span!("request", method = "GET", route = "/order/{id}", order = id);
    async move {
        let product = id % 97;
        tracing::debug!(order = id, product, "parsed request");
        let (tx, rx) = oneshot::channel();
        let price = match app.db.send((product, tx)).await {
            Ok(()) => rx.await.unwrap_or(0),
            Err(_) => 0,
        };
        tracing::info!(order = id, product, price, "price loaded");
        let (orders_so_far, sold) = app.orders.with(|o| {
            o.count += 1;
            o.revenue += price;
            let sold = o.per_product.entry(product).or_default();
            *sold += 1;
            (o.count, *sold)
        });
        tracing::info!(order = id, orders_so_far, sold, "order counted");
        tracing::debug!(product, sold, "stock updated");
        tracing::info!(status = 200u16, "responded");
        Json(OrderReply {
            order: id,
            product,
            price,
            orders_so_far,
        })
    }
    .instrument(span)
    .await
}

async fn cpu() -> Json<CpuTime> {
    Json(CpuTime::of_this_process())
}

/// Where a recording variant keeps what it records: flightrec's ring file (the driver reads
/// it), or dial9's trace directory.
#[derive(Clone, Debug, Default)]
struct Recording {
    ring: Option<PathBuf>,
    trace_dir: Option<PathBuf>,
}

/// What `/recording` answers.
#[derive(Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct RecordingNow {
    /// flightrec's ring file.
    pub ring: Option<PathBuf>,
    /// The bytes of dial9's trace files so far.
    pub trace_bytes: Option<u64>,
}

async fn recording_now(State(app): State<Arc<AppState>>) -> Json<RecordingNow> {
    Json(RecordingNow {
        ring: app.recording.ring.clone(),
        trace_bytes: app.recording.trace_dir.as_deref().map(bytes_under),
    })
}

/// The bytes of the files under `dir`, in every subdirectory.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The database stand-in: one task answering queries in turn, as a connection would.
async fn database(mut queries: mpsc::Receiver<(u64, oneshot::Sender<u64>)>) {
    while let Some((product, answer)) = queries.recv().await {
        let _ = answer.send(100 + product * 7 % 1000);
    }
}

/// What keeps a variant's subscriber working until the process ends.
#[derive(Default)]
struct Keep {
    _appender: Option<tracing_appender::non_blocking::WorkerGuard>,
    recorder: Option<tracing_flightrec::Recorder>,
    #[cfg(all(feature = "dial9", tokio_unstable))]
    dial9: Option<dial9::Recorder>,
    recording: Recording,
}

/// tracing's fmt layer writing to a file through tracing-appender's non-blocking writer,
/// INFO and above, as services run it in production.
fn fmt_to_file<S>(dir: &Path, keep: &mut Keep) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(dir, "service.log"));
    keep._appender = Some(guard);
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(LevelFilter::INFO)
}

fn recorder(dir: &Path, history: u64) -> anyhow::Result<tracing_flightrec::Recorder> {
    tracing_flightrec::Recorder::builder()
        .service("service-bench")
        .dir(dir)
        .history(history)
        .build()
        .context("starting the recorder")
}

/// Installs the variant's subscriber (none for `None`).
fn install(variant: Variant, dir: &Path) -> anyhow::Result<Keep> {
    let mut keep = Keep::default();
    match variant {
        Variant::None | Variant::NoneUnstable => {}
        Variant::Registry => tracing_subscriber::registry().init(),
        Variant::Fmt => {
            let fmt = fmt_to_file(dir, &mut keep);
            tracing_subscriber::registry().with(fmt).init();
        }
        Variant::Flightrec | Variant::FlightrecTokio | Variant::FlightrecHistory => {
            let history = match variant {
                Variant::FlightrecHistory => crate::HISTORY_BYTES,
                _ => 0,
            };
            let rec = recorder(dir, history)?;
            tracing_subscriber::registry().with(rec.layer()).init();
            keep.recording.ring = Some(rec.ring_path().to_path_buf());
            keep.recorder = Some(rec);
        }
        Variant::FlightrecFmt => {
            let rec = recorder(dir, 0)?;
            let fmt = fmt_to_file(dir, &mut keep);
            tracing_subscriber::registry()
                .with(rec.layer())
                .with(fmt)
                .init();
            keep.recording.ring = Some(rec.ring_path().to_path_buf());
            keep.recorder = Some(rec);
        }
        Variant::Console => install_console()?,
        // Not a subscriber: its hooks go on the runtime (`runtime`).
        Variant::Dial9 => keep.recording.trace_dir = Some(dir.join("dial9")),
    }
    Ok(keep)
}

#[cfg(all(feature = "console", tokio_unstable))]
fn install_console() -> anyhow::Result<()> {
    // Its gRPC server on a port of its own choosing: no client connects during the run, as
    // in a service that keeps the console available.
    let console = console_subscriber::ConsoleLayer::builder()
        .server_addr((std::net::Ipv4Addr::LOCALHOST, 0))
        .spawn();
    tracing_subscriber::registry().with(console).init();
    Ok(())
}

#[cfg(not(all(feature = "console", tokio_unstable)))]
fn install_console() -> anyhow::Result<()> {
    anyhow::bail!("the console variant needs the `console` feature and --cfg tokio_unstable (scripts/service-bench.sh builds it)")
}

fn runtime(variant: Variant, keep: &mut Keep) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(2)
        .thread_name("server-worker")
        .enable_all();
    if variant == Variant::FlightrecTokio {
        record_tasks(keep, &mut builder)?;
    }
    if variant == Variant::Dial9 {
        return dial9_runtime(keep, builder);
    }
    Ok(builder.build()?)
}

/// The runtime with dial9's hooks on it, writing to disk as its README sets it up, with a
/// budget the run cannot fill (what it writes is measured from its files).
#[cfg(all(feature = "dial9", tokio_unstable))]
fn dial9_runtime(
    keep: &mut Keep,
    builder: tokio::runtime::Builder,
) -> anyhow::Result<tokio::runtime::Runtime> {
    use dial9::{Dial9HandleTokioExt as _, TokioAttachOptions};
    let dir = keep
        .recording
        .trace_dir
        .clone()
        .context("the dial9 variant has a trace directory")?;
    let writer = dial9::DiskBuffer::builder()
        .base_path(&dir)
        .max_total_size(4 << 30)
        .build()
        .context("starting dial9's writer")?;
    let recorder = dial9::recorder(writer).build();
    let runtime = recorder
        .handle()
        .attach_tokio_runtime(builder, TokioAttachOptions::default())
        .context("attaching dial9 to the runtime")?;
    keep.dial9 = Some(recorder);
    Ok(runtime)
}

#[cfg(not(all(feature = "dial9", tokio_unstable)))]
fn dial9_runtime(
    _: &mut Keep,
    _: tokio::runtime::Builder,
) -> anyhow::Result<tokio::runtime::Runtime> {
    anyhow::bail!("the dial9 variant needs the `dial9` feature and --cfg tokio_unstable (scripts/service-bench.sh builds it)")
}

#[cfg(all(feature = "hooks", tokio_unstable))]
fn record_tasks(keep: &Keep, builder: &mut tokio::runtime::Builder) -> anyhow::Result<()> {
    let rec = keep
        .recorder
        .as_ref()
        .context("the tokio variant runs a recorder")?;
    rec.record_tokio_tasks(builder);
    Ok(())
}

#[cfg(not(all(feature = "hooks", tokio_unstable)))]
fn record_tasks(_: &Keep, _: &mut tokio::runtime::Builder) -> anyhow::Result<()> {
    anyhow::bail!("flightrec's task hooks need the `hooks` feature and --cfg tokio_unstable (scripts/service-bench.sh builds them)")
}

/// Serves the app in `variant` on a loopback port, printed as `listening <addr>` on stdout,
/// until stdin closes.
pub fn serve(variant: Variant) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("flightrec-service-bench-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .context("making the variant's directory")?;
    let mut keep = install(variant, dir.path())?;
    let rt = runtime(variant, &mut keep)?;
    let orders = Orders::default();
    let orders = if keep.recorder.is_some() {
        OrdersLock::Recorded(tracing_flightrec::sync::Mutex::new(orders))
    } else {
        OrdersLock::Std(std::sync::Mutex::new(orders))
    };
    let recording = keep.recording.clone();
    rt.block_on(async move {
        let (db, queries) = mpsc::channel(1024);
        tokio::spawn(database(queries));
        let app = Router::new()
            .route("/order/{id}", get(order))
            .route("/cpu", get(cpu))
            .route("/recording", get(recording_now))
            .with_state(Arc::new(AppState {
                orders,
                recording,
                db,
            }));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        println!("listening {}", listener.local_addr()?);
        let (closed_tx, closed_rx) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            // The driver closes our stdin when the variant's run is over.
            for _ in std::io::stdin().lock().lines() {}
            let _ = closed_tx.send(());
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = closed_rx.await;
            })
            .await?;
        anyhow::Ok(())
    })?;
    drop(rt);
    drop(keep);
    Ok(())
}
