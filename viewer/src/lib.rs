//! The flightrec timeline viewer: an axum server answering a static page (embedded in the
//! binary) with just what its current view needs.
//!
//! `app(state)` is the whole HTTP surface, so it can be tested with `oneshot`; `serve` binds
//! it (loopback unless told otherwise) and runs it until interrupted.
#![forbid(unsafe_code)]

mod api;
mod assets;
pub mod contract;
mod library;
pub mod model;
mod security;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use api::app;
pub use library::{
    is_recording_file, DumpFile, Fetch, Library, LibraryError, RecordingSet, RemoteDump,
    RemoteListing,
};
pub use model::Model;

/// What can go wrong starting the viewer.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    #[error("{path}")]
    Path {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a dump, ring file or directory")]
    NotADump(String),
    #[error("{path}: not a flightrec recording: {why}")]
    NotARecording { path: String, why: String },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server")]
    Runtime(#[source] std::io::Error),
}

/// Limits on what the server accepts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Dump or ring files larger than this on disk are not opened.
    pub max_file_bytes: u64,
    /// Decoded dumps kept in memory at once.
    pub max_loaded: usize,
    /// Longest request URI accepted.
    pub max_uri_len: usize,
    /// Recordings (or sets opened together) read at once: what bounds the memory of
    /// reads under way, as `max_loaded` bounds that of finished ones. A request that waits
    /// longer than `read_wait` for its turn gets 503.
    pub max_reads: usize,
    pub read_wait: std::time::Duration,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: std::time::Duration,
    /// What the cache of remote dumps holds: recordings opened together that are larger
    /// together are refused in one line instead of evicting each other.
    pub cache_bytes: u64,
    /// A single recording larger than this on disk is first shown as its skeleton (where
    /// each thread was busy, from its chunks), with how far its read is, while it is read:
    /// a big one takes seconds.
    pub skeleton_above_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 2 << 30,
            max_loaded: 2,
            max_uri_len: 8192,
            max_reads: 2,
            read_wait: std::time::Duration::from_secs(30),
            header_read_timeout: std::time::Duration::from_secs(10),
            cache_bytes: 1 << 30,
            skeleton_above_bytes: 8 << 20,
        }
    }
}

/// The server's state: the dump library it shows, and who may ask.
pub struct AppState {
    pub(crate) library: Arc<Library>,
    /// Host header values accepted (DNS rebinding defence).
    allowed_hosts: Vec<String>,
}

impl AppState {
    /// State for the given paths (dump files, ring files or directories of them), accepting
    /// requests whose Host header is one of `allowed_hosts`.
    pub fn new(
        roots: Vec<PathBuf>,
        allowed_hosts: Vec<String>,
        limits: Limits,
    ) -> Result<AppState, ViewerError> {
        Ok(AppState::of(Library::new(roots, limits)?, allowed_hosts))
    }

    /// State serving `library`.
    pub fn of(library: Library, allowed_hosts: Vec<String>) -> AppState {
        AppState {
            library: Arc::new(library),
            allowed_hosts,
        }
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }
}

/// How `serve` listens.
#[derive(Clone)]
pub struct ServeConfig {
    /// The recordings given are opened together, merged into one timeline.
    pub merge: bool,
    /// Dumps listed in object storage, and how to fetch one when it is opened.
    pub remote: Option<(RemoteListing, Fetch)>,
    pub addr: SocketAddr,
    /// Extra Host header values to accept (names this server is reached by).
    pub extra_hosts: Vec<String>,
    pub limits: Limits,
}

/// The Host header values a server bound to `addr` answers to.
pub fn hosts_for(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut v = vec![addr.to_string()];
    // Bound to every address, it is also reached through loopback.
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        v.push(format!("localhost:{port}"));
        v.push(format!("127.0.0.1:{port}"));
        v.push(format!("[::1]:{port}"));
    }
    v.sort();
    v.dedup();
    v
}

/// Accepts connections and serves `router` on each (HTTP/1.1) until `shutdown`. A client
/// that does not finish sending a request's headers within `header_timeout` is
/// disconnected, so half-sent requests cannot hold connections open.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    header_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: wait a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let _ = http
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds, calls `ready` with the bound address, and serves until Ctrl-C (or until
/// `stop` resolves).
pub fn serve(
    roots: Vec<PathBuf>,
    config: ServeConfig,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ViewerError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ViewerError::Runtime)?;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| ViewerError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(ViewerError::Runtime)?;
        let mut hosts = hosts_for(addr);
        hosts.extend(config.extra_hosts);
        let mut library = Library::new(roots, config.limits)?;
        if let Some((listed, fetch)) = config.remote {
            library.add_remote(listed, fetch);
        }
        let state = Arc::new(AppState::of(library, hosts));
        let library = state.library.clone();
        let n = library.files().len();
        if n == 1 {
            tokio::spawn(library.clone().preload("0".into()));
        } else if config.merge && n > 1 {
            let all = (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join("+");
            tokio::spawn(library.clone().preload(all));
        }
        ready(addr);
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = stop => {}
            }
        };
        let header_timeout = library.limits.header_read_timeout;
        serve_connections(listener, app(state), header_timeout, shutdown).await;
        Ok(())
    });
    // A recording still being read (on a blocking thread) must not hold up Ctrl-C.
    rt.shutdown_background();
    served
}
