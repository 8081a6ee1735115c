//! What flightrec costs an axum service per request, beside what services run today.
//!
//! `scripts/service-bench.sh` builds this binary three times (plain, then under
//! `--cfg tokio_unstable` once with flightrec's task hooks and once with tokio-console's
//! layer) and runs it:
//! every variant in a server process of its own, one after another, driven by clients in
//! this process with the same load; then a table. See the README's "Cost per request".

mod app;
mod load;
mod recorded;
mod report;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::recorded::RingLook;

/// The subscribers compared, each in a server process of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Variant {
    /// No subscriber at all.
    None,
    /// tracing's registry and no layer: what any layer pays before doing anything (span
    /// ids, the per-thread span stack, dispatch).
    Registry,
    /// tracing's fmt layer, INFO and above, to a file through tracing-appender's
    /// non-blocking writer.
    Fmt,
    /// flightrec's layer alone (every level), its lock around the shared state.
    Flightrec,
    /// flightrec with history on disk beside its ring (`HISTORY_BYTES` of it).
    #[value(name = "flightrec+history")]
    FlightrecHistory,
    /// flightrec and the fmt layer above, as the README composes them.
    #[value(name = "flightrec+fmt")]
    FlightrecFmt,
    /// tokio-console's `console-subscriber` (with tokio's own `tracing` instrumentation,
    /// which it needs).
    Console,
    /// No subscriber, built with `--cfg tokio_unstable`: the baseline of the variant below.
    #[value(name = "none-unstable")]
    NoneUnstable,
    /// flightrec with tokio's task hooks recorded.
    #[value(name = "flightrec+tokio")]
    FlightrecTokio,
    /// dial9, the Tokio flight recorder, its hooks on the runtime, writing to disk.
    Dial9,
}

/// The builds the variants need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    Plain,
    /// `--cfg tokio_unstable --features hooks`.
    Hooks,
    /// `--cfg tokio_unstable --features console`.
    Console,
    /// `--cfg tokio_unstable --features dial9`.
    Dial9,
}

impl Variant {
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    fn build(self) -> Build {
        match self {
            Variant::NoneUnstable | Variant::FlightrecTokio => Build::Hooks,
            Variant::Console => Build::Console,
            Variant::Dial9 => Build::Dial9,
            _ => Build::Plain,
        }
    }

    /// The variant this one is compared with.
    pub fn baseline(self) -> Variant {
        match self.build() {
            Build::Hooks | Build::Dial9 => Variant::NoneUnstable,
            _ => Variant::None,
        }
    }
}

#[derive(Parser)]
#[command(about = "What flightrec costs an axum service per request, beside other subscribers")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunOptions,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serves the app in one variant until stdin closes (what the driver starts).
    Serve { variant: Variant },
}

#[derive(clap::Args)]
pub struct RunOptions {
    /// The variants, in the order they run in each round.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,registry,fmt,flightrec,flightrec+history,flightrec+fmt,console,none-unstable,flightrec+tokio,dial9"
    )]
    variants: Vec<Variant>,
    /// This binary built with `--cfg tokio_unstable --features hooks`, which serves the
    /// `none-unstable` and `flightrec+tokio` variants.
    #[arg(long)]
    hooks_bin: Option<PathBuf>,
    /// This binary built with `--cfg tokio_unstable --features console`, which serves the
    /// `console` variant.
    #[arg(long)]
    console_bin: Option<PathBuf>,
    /// This binary built with `--cfg tokio_unstable --features dial9`, which serves the
    /// `dial9` variant.
    #[arg(long)]
    dial9_bin: Option<PathBuf>,
    /// Rounds over all variants; each figure is the median of its rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of each measured phase (saturation, then fixed rate).
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests per second of the latency phase; by default 20% of the first variant's
    /// throughput at saturation in the first round.
    #[arg(long)]
    rate: Option<f64>,
}

/// One variant's figures from one round.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub requests_per_s: f64,
    /// CPU time of the server process per request, in microseconds, at saturation.
    pub cpu_us_saturated: f64,
    /// The same at the fixed rate.
    pub cpu_us_fixed: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// What the variant recorded per request at saturation, in bytes: flightrec's ring,
    /// dial9's trace files (NaN for the others).
    pub recorded_bytes_per_request: f64,
    /// How far back flightrec's ring reached right after saturation, in seconds (NaN for
    /// the others, and before the ring wrapped).
    pub ring_reach_s: f64,
    /// With history on disk: how many seconds `HISTORY_BYTES` of it holds at the rate it
    /// grew at saturation, and the share of chunks it left out then (NaN for the others).
    pub history_holds_s: f64,
    pub history_skipped: f64,
    /// The same as `history_holds_s`, at the fixed rate.
    pub history_holds_s_fixed: f64,
    /// The history thread's CPU time at saturation over the rest of the process's: what the
    /// history adds to the CPU a request costs (its budget is 5%).
    pub history_cpu_share: f64,
}

/// The history on disk the `flightrec+history` variant keeps.
pub const HISTORY_BYTES: u64 = 256 << 20;

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Cmd::Serve { variant }) => app::serve(variant),
        None => run(cli.run),
    };
    if let Err(e) = result {
        eprintln!("flightrec-service-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(opts: RunOptions) -> anyhow::Result<()> {
    let this = std::env::current_exe().context("finding this binary")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()?;
    let phase = Duration::from_secs_f64(opts.seconds);
    let mut rate = opts.rate;
    let mut samples: Vec<(Variant, Vec<Sample>)> =
        opts.variants.iter().map(|&v| (v, Vec::new())).collect();
    for round in 1..=opts.rounds {
        for (variant, got) in &mut samples {
            let bin = match variant.build() {
                Build::Plain => Some(this.clone()),
                Build::Hooks => opts.hooks_bin.clone(),
                Build::Console => opts.console_bin.clone(),
                Build::Dial9 => opts.dial9_bin.clone(),
            };
            let bin = bin.with_context(|| {
                format!(
                    "the {} variant needs its own build (scripts/service-bench.sh passes it)",
                    variant.name()
                )
            })?;
            let sample = rt.block_on(measure(&bin, *variant, &opts, phase, &mut rate))?;
            eprintln!(
                "round {round}/{} {:<16} {:>8.0} req/s  {:>6.1} µs CPU/req  p99 {:>6.0} µs",
                opts.rounds,
                variant.name(),
                sample.requests_per_s,
                sample.cpu_us_saturated,
                sample.p99_us
            );
            got.push(sample);
        }
    }
    let rate = rate.unwrap_or_default();
    print!(
        "{}",
        report::table(&samples, rate, &opts_summary(&opts, rate))
    );
    Ok(())
}

fn opts_summary(opts: &RunOptions, rate: f64) -> String {
    format!(
        "{} rounds, median of each; {} connections; {} s at saturation, then {} s at {:.0} req/s",
        opts.rounds, opts.connections, opts.seconds, opts.seconds, rate
    )
}

/// A variant's server process; stopped (stdin closed, then killed if it lingers) on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(bin: &PathBuf, variant: Variant) -> anyhow::Result<Server> {
        let mut child = Command::new(bin)
            .args(["serve", &variant.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .with_context(|| {
                format!(
                    "the {} server did not start (it said {line:?})",
                    variant.name()
                )
            })?;
        Ok(Server { child, addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn measure(
    bin: &PathBuf,
    variant: Variant,
    opts: &RunOptions,
    phase: Duration,
    rate: &mut Option<f64>,
) -> anyhow::Result<Sample> {
    let server = Server::start(bin, variant)?;
    let addr = server.addr;
    let mut control = load::Connection::open(addr).await?;
    // Warm-up: connections, the allocator, and every callsite registered.
    load::closed_loop(addr, opts.connections, Duration::from_secs(1)).await?;

    // What it recorded is read outside the phases' CPU readings: the server is idle then.
    let recording0 = control.recording().await?;
    let ring0 = recording0.ring.as_deref().map(RingLook::of).transpose()?;
    let cpu0 = control.cpu().await?;
    let start = Instant::now();
    let done = load::closed_loop(addr, opts.connections, phase).await?;
    let elapsed = start.elapsed();
    let cpu1 = control.cpu().await?;
    let recording1 = control.recording().await?;
    let ring1 = recording1.ring.as_deref().map(RingLook::of).transpose()?;
    let (recorded_bytes_per_request, ring_reach_s) = match (ring0, ring1) {
        (Some(before), Some(after)) => (
            after.bytes_per_request(&before, done),
            after.reach_ns.map_or(f64::NAN, |ns| ns as f64 / 1e9),
        ),
        _ => match (recording0.trace_bytes, recording1.trace_bytes) {
            (Some(a), Some(b)) => (b.saturating_sub(a) as f64 / done.max(1) as f64, f64::NAN),
            _ => (f64::NAN, f64::NAN),
        },
    };
    let (history_holds_s, history_skipped) = match (ring0, ring1) {
        (Some(before), Some(after)) if after.history_archived > 0 => {
            let archived = after.history_archived - before.history_archived;
            let skipped = after.history_skipped - before.history_skipped;
            (
                before.history_holds_s(&after, elapsed),
                skipped as f64 / (archived + skipped).max(1) as f64,
            )
        }
        _ => (f64::NAN, f64::NAN),
    };
    let requests_per_s = done as f64 / elapsed.as_secs_f64();
    let rate = *rate.get_or_insert_with(|| (requests_per_s * 0.2 / 100.0).round().max(1.0) * 100.0);

    let cpu2 = control.cpu().await?;
    let fixed_start = Instant::now();
    let mut latencies = load::open_loop(addr, opts.connections, rate, phase).await?;
    let fixed_elapsed = fixed_start.elapsed();
    let cpu3 = control.cpu().await?;
    let history_holds_s_fixed = match ring1.filter(|r| r.history_archived > 0) {
        Some(before) => {
            let after = control.recording().await?;
            let after = after.ring.as_deref().map(RingLook::of).transpose()?;
            after.map_or(f64::NAN, |after| {
                before.history_holds_s(&after, fixed_elapsed)
            })
        }
        None => f64::NAN,
    };
    drop(control);
    drop(server);

    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    };
    Ok(Sample {
        requests_per_s,
        cpu_us_saturated: (cpu1.total_us() - cpu0.total_us()) as f64 / done.max(1) as f64,
        cpu_us_fixed: (cpu3.total_us() - cpu2.total_us()) as f64 / latencies.len().max(1) as f64,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        recorded_bytes_per_request,
        ring_reach_s,
        history_holds_s,
        history_skipped,
        history_holds_s_fixed,
        history_cpu_share: match cpu1.history_us - cpu0.history_us {
            0 => f64::NAN,
            history => {
                history as f64
                    / (cpu1.total_us() - cpu0.total_us())
                        .saturating_sub(history)
                        .max(1) as f64
            }
        },
    })
}
