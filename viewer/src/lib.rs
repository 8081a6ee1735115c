//! The flightrec timeline viewer: an axum server answering a static page (embedded in the
//! binary) with just what its current view needs.
//!
//! `app(state)` is the whole HTTP surface, so it can be tested with `oneshot`; `serve` binds
//! it (loopback unless told otherwise) and runs it until interrupted.
#![forbid(unsafe_code)]

mod api;
mod assets;
pub mod contract;
pub mod model;
mod security;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use api::app;
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
        }
    }
}

/// One file the viewer can show.
#[derive(Debug, Clone)]
pub struct DumpFile {
    pub path: PathBuf,
    pub size: u64,
    pub modified: std::time::SystemTime,
    /// A dump in object storage, listed from its metadata, fetched into `path` (a cache)
    /// only when opened.
    pub remote: Option<RemoteDump>,
}

/// A dump listed in object storage: what its metadata says.
#[derive(Debug, Clone, Default)]
pub struct RemoteDump {
    /// Its key in the store (what the fetcher is asked for).
    pub key: String,
    pub service: String,
    pub host: String,
    pub pid: u32,
    pub trigger: String,
    /// When it was taken, ns since the Unix epoch.
    pub time_ns: i64,
    /// Its size in the store, bytes (a cached copy of another size is stale).
    pub size: u64,
}

/// Fetches a remote dump by key into its cache file (blocking; called off the async
/// threads), returning the local path.
pub type Fetch = Arc<dyn Fn(&RemoteDump) -> Result<PathBuf, String> + Send + Sync>;

/// Dumps listed in object storage, each with its size and cache path.
pub type RemoteListing = Vec<(RemoteDump, u64, PathBuf)>;

/// The server's state: the files it may show (found once from the paths it was given, and
/// again from their directories when the index is asked for) and the decoded ones.
/// A decoded dump, once some request has decoded it.
pub(crate) type ModelSlot = tokio::sync::OnceCell<Arc<Model>>;

/// Recordings opened together while they are read: what the page is shown meanwhile.
#[derive(Default)]
pub(crate) struct Opening {
    /// Built once, from scans (see `Model::skeleton`).
    skeleton: tokio::sync::OnceCell<Arc<Model>>,
    /// The full read has been started (it runs once, in the background).
    started: std::sync::atomic::AtomicBool,
    /// Why the full read failed: told to every later request instead of a skeleton.
    failed: std::sync::Mutex<Option<(axum::http::StatusCode, String)>>,
}

pub struct AppState {
    /// Paths as given: files, or directories to look in.
    roots: Vec<PathBuf>,
    /// Files found so far. Ids are positions here, and files are only ever appended, so an
    /// id names the same file for the server's life. Requests name files only by id, never
    /// by path.
    files: Mutex<Vec<DumpFile>>,
    /// Decoded dumps, least recently used first. Each slot is filled once, by whichever
    /// request gets there first; the lock is held only to find or add a slot, never while
    /// decoding, so a dump being decoded does not hold up requests for the others.
    loaded: std::sync::Mutex<Vec<(String, Arc<ModelSlot>)>>,
    /// Recordings opened together whose full read is under way: their skeletons.
    openings: std::sync::Mutex<std::collections::HashMap<String, Arc<Opening>>>,
    /// Host header values accepted (DNS rebinding defence).
    allowed_hosts: Vec<String>,
    limits: Limits,
    /// Fetches remote dumps on first open.
    pub(crate) fetch: Option<Fetch>,
    /// Turns to read a recording (`Limits::max_reads` of them).
    pub(crate) reads: tokio::sync::Semaphore,
}

impl AppState {
    /// State for the given paths (dump files, ring files or directories of them), accepting
    /// requests whose Host header is one of `allowed_hosts`.
    pub fn new(
        roots: Vec<PathBuf>,
        allowed_hosts: Vec<String>,
        limits: Limits,
    ) -> Result<AppState, ViewerError> {
        for r in &roots {
            let meta = std::fs::metadata(r).map_err(|source| ViewerError::Path {
                path: r.display().to_string(),
                source,
            })?;
            if meta.is_file() && !is_dump_name(r) && !looks_like_dump(r) {
                return Err(ViewerError::NotADump(r.display().to_string()));
            }
            // A file given by name must be a recording: better one line now than a page
            // that opens on an error.
            if meta.is_file() {
                flightrec_format::check_head(r).map_err(|e| ViewerError::NotARecording {
                    path: r.display().to_string(),
                    why: e.to_string(),
                })?;
            }
        }
        let state = AppState {
            roots,
            files: Mutex::new(Vec::new()),
            loaded: std::sync::Mutex::new(Vec::new()),
            openings: Default::default(),
            allowed_hosts,
            reads: tokio::sync::Semaphore::new(limits.max_reads.max(1)),
            limits,
            fetch: None,
        };
        state.rescan();
        Ok(state)
    }

    /// Appends files that appeared under the roots since the last scan.
    fn rescan(&self) {
        let mut found = Vec::new();
        for r in &self.roots {
            if r.is_dir() {
                if let Ok(entries) = std::fs::read_dir(r) {
                    found.extend(
                        entries
                            .flatten()
                            .map(|e| e.path())
                            .filter(|p| is_recording_file(p)),
                    );
                }
            } else {
                found.push(r.clone());
            }
        }
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        for p in found {
            if files.iter().any(|f| f.path == p) {
                continue;
            }
            if let Ok(m) = std::fs::metadata(&p) {
                if m.is_file() {
                    files.push(DumpFile {
                        path: p,
                        size: m.len(),
                        modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
                        remote: None,
                    });
                }
            }
        }
    }

    /// Adds dumps listed in object storage (each with its size and cache path), fetched
    /// with `fetch` when first opened.
    pub fn add_remote(&mut self, listed: RemoteListing, fetch: Fetch) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        for (r, size, cache) in listed {
            let modified =
                std::time::UNIX_EPOCH + std::time::Duration::from_nanos(r.time_ns.max(0) as u64);
            files.push(DumpFile {
                path: cache,
                size,
                modified,
                remote: Some(r),
            });
        }
        drop(files);
        self.fetch = Some(fetch);
    }

    fn files(&self) -> Vec<DumpFile> {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn file(&self, id: usize) -> Option<DumpFile> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

/// Dumps end in `.flightrec`, ring files in `.flightrec-ring`.
fn is_dump_name(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e == "flightrec" || e == "flightrec-ring")
}

/// A file in a directory is listed when its name and its first bytes say it is a
/// recording; anything else there (`flightrec view DIR` names them at start) is skipped.
pub fn is_recording_file(p: &Path) -> bool {
    is_dump_name(p) && looks_like_dump(p)
}

/// A file given by name may have any name; its first bytes say what it is.
fn looks_like_dump(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && (head == flightrec_format::layout::MAGIC
            || head[..4] == flightrec_format::layout::ZSTD_MAGIC)
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
        let mut state = AppState::new(roots, hosts, config.limits)?;
        if let Some((listed, fetch)) = config.remote {
            state.add_remote(listed, fetch);
        }
        let state = Arc::new(state);
        let n = state.files().len();
        if n == 1 {
            tokio::spawn(api::preload(state.clone(), "0".into()));
        } else if config.merge && n > 1 {
            let all = (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join("+");
            tokio::spawn(api::preload(state.clone(), all));
        }
        ready(addr);
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = stop => {}
            }
        };
        let header_timeout = state.limits.header_read_timeout;
        serve_connections(listener, app(state), header_timeout, shutdown).await;
        Ok(())
    });
    // A recording still being read (on a blocking thread) must not hold up Ctrl-C.
    rt.shutdown_background();
    served
}
