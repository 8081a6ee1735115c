//! What can go wrong setting up or using a recorder.

use std::path::PathBuf;

/// What can go wrong setting up or using a recorder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the flightrec directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the ring file {path}: {source}")]
    CreateRing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid ring capacity {capacity} bytes: it must be between 256 KiB and 4 GiB")]
    Capacity { capacity: u64 },
    #[error("invalid history size {bytes} bytes: it must be at least 1 MiB (or 0 for none)")]
    HistorySize { bytes: u64 },
    #[error("cannot start the history on disk in {path}: {source}")]
    History {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid chunk size {0}: it must be between 1 KiB and 64 KiB")]
    ChunkSize(u32),
    #[error("invalid {var}={value:?}: {why}")]
    Env {
        var: &'static str,
        value: String,
        why: String,
    },
    #[error(transparent)]
    Dump(#[from] flightrec_format::dump::DumpError),
    #[error("cannot install the handler for snapshot signal {signal}: {source}")]
    Signal {
        signal: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the stall watchdog: {0}")]
    Watchdog(#[source] std::io::Error),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized,
    #[error("a dump was asked for while this thread was writing one (it folded into nothing)")]
    DumpInProgress,
}
