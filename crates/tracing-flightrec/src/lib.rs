//! flightrec: a flight recorder for Rust services.
//!
//! A `tracing` layer writes every thread's events and spans into a memory-mapped ring file
//! without blocking; `Recorder::snapshot` turns the ring into a compressed dump that
//! `flightrec cat`, `flightrec info` and the viewer read. The ring file itself survives the
//! process's death (SIGKILL, OOM), so the last records of every thread are never lost with it.
//!
//! Two lines set it up, from the `FLIGHTREC_*` environment (with tracing's fmt output to
//! stderr, filtered by `RUST_LOG`); `kill -USR1 <pid>` then dumps the ring:
//!
//! ```no_run
//! fn main() -> Result<(), tracing_flightrec::Error> {
//!     tracing_flightrec::init()?;
//!     tracing::info!(port = 8080, "listening");
//!     Ok(())
//! }
//! ```
//!
//! Or built by hand, composed with other layers:
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! let recorder = tracing_flightrec::Recorder::builder()
//!     .service("checkout")
//!     .dir("/var/tmp/flightrec")
//!     .capacity(64 << 20)
//!     .build()?;
//! tracing_subscriber::registry()
//!     .with(recorder.layer())
//!     // The recorder keeps everything; the console shows INFO and above.
//!     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
//!     .init();
//! let dump: std::path::PathBuf = recorder.snapshot()?;
//! # Ok::<(), tracing_flightrec::Error>(())
//! ```
#![cfg_attr(not(loom), deny(unsafe_code))]

#[cfg(not(loom))]
mod callsites;
#[cfg(not(loom))]
mod defaults;
#[cfg(not(loom))]
mod env;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
pub(crate) mod history;
#[cfg(not(loom))]
mod layer;
#[cfg(not(loom))]
mod recorder;
#[cfg(not(loom))]
#[allow(unsafe_code)]
mod ring;
#[cfg(not(loom))]
mod shared;
#[cfg(not(loom))]
mod snapshot;
#[cfg(not(loom))]
pub mod sync;
#[cfg(all(feature = "tokio", tokio_unstable, not(loom)))]
mod tokio_tasks;
#[cfg(all(feature = "tokio", not(tokio_unstable)))]
compile_error!(
    "flightrec's `tokio` feature records tokio's task hooks, which tokio only offers when built \
     with `--cfg tokio_unstable`: set RUSTFLAGS=\"--cfg tokio_unstable\" (or `rustflags` in \
     .cargo/config.toml), or turn the feature off."
);
#[cfg(not(loom))]
mod trigger;

#[cfg(loom)]
#[path = "ring/loom_root.rs"]
mod ring;

#[cfg(not(loom))]
pub use defaults::default_dump_dir;
#[cfg(not(loom))]
pub use error::Error;
#[cfg(not(loom))]
pub use history::HistoryStatus;
#[cfg(not(loom))]
pub use layer::FlightrecLayer;
#[cfg(not(loom))]
pub use recorder::{init, test_recorder, Builder, Recorder, DEFAULT_CAPACITY, DEFAULT_STACK_SLOTS};
/// The signal flightrec sends a thread to capture its native stack (SIGRTMIN+5). A thread
/// that blocks it is reported as not answering.
#[cfg(not(loom))]
pub use ring::stacks::capture_signal;
