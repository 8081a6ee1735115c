//! `flightrec`: read flight-recorder rings and dumps, and run the demo.
#![forbid(unsafe_code)]

mod cat;
mod demo;
mod info;

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
    /// Record a small multi-threaded workload, dump it and show the dump.
    Demo {
        /// Where the ring and the dump go (default: a fresh directory under the system
        /// temp directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// How many records of the dump's tail to print.
        #[arg(long, default_value_t = 25)]
        tail: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Cat { file, json } => open(&file).and_then(|r| cat::run(&r, json, &mut out)),
        Command::Info { file, json } => {
            open(&file).and_then(|r| info::run(&file, &r, json, &mut out))
        }
        Command::Demo { dir, tail } => demo::run(dir, tail, &mut out),
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

fn open(path: &std::path::Path) -> anyhow::Result<flightrec_format::Recording> {
    flightrec_format::open(path).with_context(|| format!("{}", path.display()))
}

/// `flightrec cat dump | head` must end quietly, like any Unix filter.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
