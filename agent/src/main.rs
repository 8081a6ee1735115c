//! `flightrec`: read flight-recorder rings and dumps, and run the demo.
#![forbid(unsafe_code)]

mod cat;
mod demo;
mod export;
mod info;
mod snapshot;
mod view;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "flightrec",
    version,
    about = "A flight recorder for Rust services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a ring file's or dump's records in time order, one per line.
    Cat {
        /// A ring file or dump; `-` reads standard input.
        file: PathBuf,
        /// One JSON object per record instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print what a ring file or dump holds: process, trigger, threads and counts.
    Info {
        /// A ring file or dump; `-` reads standard input.
        file: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Convert a dump (or ring file) for Perfetto UI or chrome://tracing.
    Export {
        /// A dump or ring file; `-` reads standard input.
        file: PathBuf,
        /// The output format.
        #[arg(long, value_enum)]
        format: export::Format,
        /// Where to write; `-` writes to standard output.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Open dumps in the browser timeline: serves them on 127.0.0.1 and prints the URL.
    View {
        /// Dump files, ring files, or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The port to listen on (default: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Listen on this address instead of 127.0.0.1. Anything but loopback exposes the
        /// recording to the network.
        #[arg(long, default_value = "127.0.0.1")]
        addr: std::net::IpAddr,
        /// Another Host header to accept (a name this machine is reached by).
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// Open the page in a browser.
        #[arg(long)]
        open: bool,
    },
    /// Make a running process write a dump (by sending its snapshot signal) and print the
    /// dump's path.
    Snapshot {
        pid: i32,
        /// The signal the process's recorder listens for.
        #[arg(long, default_value = "USR1")]
        signal: String,
        /// How long to wait for the dump, in seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Turn the ring file of a dead process into a dump and print the dump's path.
    Collect {
        /// The ring file (`<service>-<pid>.flightrec-ring`).
        ring: PathBuf,
        /// Where to write the dump (default: beside the ring).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Watch a directory: turn the ring of every process that dies there into a dump (and
    /// remove the ring), printing each dump's path, until interrupted.
    Watch {
        dir: PathBuf,
        /// Seconds between scans.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Scan once and exit.
        #[arg(long)]
        once: bool,
    },
    /// Run a small service with a race in it until the race bites, then show the dump in
    /// the timeline viewer.
    Demo {
        /// Where the ring and the dump go (default: a fresh directory under the system
        /// temp directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the dump and the interleaving, but do not start the viewer.
        #[arg(long)]
        no_view: bool,
        /// Open a browser on the viewer.
        #[arg(long)]
        open: bool,
        /// The viewer's port (default: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Cat { file, json } => read(&file).and_then(|image| {
            let scan = scan(&file, &image)?;
            cat::run(&scan, json, &mut out)
        }),
        Command::Info { file, json } => read(&file).and_then(|image| {
            let scan = scan(&file, &image)?;
            info::run(&file, &scan.recording, json, &mut out)
        }),
        Command::Export {
            file,
            format,
            out: to,
        } => export::run(&file, format, &to),
        Command::View {
            paths,
            port,
            addr,
            allow_hosts,
            open,
        } => view::run(paths, addr, port, allow_hosts, open, &mut out),
        Command::Demo {
            dir,
            no_view,
            open,
            port,
        } => demo::run(
            demo::DemoOptions {
                dir,
                view: !no_view,
                open,
                port,
            },
            &mut out,
        ),
        Command::Snapshot {
            pid,
            signal,
            timeout,
        } => snapshot::run(pid, &signal, timeout, &mut out),
        Command::Collect { ring, out: dir } => collect(&ring, dir, &mut out),
        Command::Watch {
            dir,
            interval,
            once,
        } => watch(&dir, interval, once, &mut out),
    };
    let result = result.and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flightrec: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn collect(
    ring: &std::path::Path,
    dir: Option<PathBuf>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| match ring.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    });
    let dump = flightrec_format::dump::collect(ring, &dir)
        .with_context(|| format!("{}", ring.display()))?;
    writeln!(out, "{}", dump.display())?;
    Ok(())
}

fn watch(
    dir: &std::path::Path,
    interval: f64,
    once: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    loop {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot watch {}", dir.display()))?;
        for ring in entries.flatten().map(|e| e.path()) {
            if ring.extension().is_none_or(|e| e != "flightrec-ring") {
                continue;
            }
            if !matches!(flightrec_format::dump::owner_alive(&ring), Ok(false)) {
                continue;
            }
            match flightrec_format::dump::collect(&ring, dir) {
                Ok(dump) => {
                    // The dump holds everything the ring did; the ring would only be
                    // collected again.
                    let _ = std::fs::remove_file(&ring);
                    writeln!(out, "{}", dump.display())?;
                    out.flush()?;
                }
                // Left in place for the next scan (a full disk may clear).
                Err(e) => eprintln!("flightrec: cannot collect {}: {e}", ring.display()),
            }
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(interval.max(0.01)));
    }
}

/// A ring file or dump as a ring image.
fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    flightrec_format::read_image(path).with_context(|| format!("{}", path.display()))
}

/// The image indexed, its records left to stream.
fn scan<'a>(path: &std::path::Path, image: &'a [u8]) -> anyhow::Result<flightrec_format::Scan<'a>> {
    flightrec_format::scan(image).with_context(|| format!("{}", path.display()))
}

/// `flightrec cat dump | head` must end quietly, like any Unix filter.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
