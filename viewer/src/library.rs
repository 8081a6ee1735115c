//! The dump library: which recordings the viewer may show (files found under the paths it
//! was given, dumps listed in object storage), and their models, read once and cached. It
//! knows nothing of HTTP: its errors say what went wrong, and the routes choose a status.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::contract::DumpSummary;
use crate::model::Model;
use crate::{Limits, ViewerError};

/// Why the library cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LibraryError {
    /// A recording id that does not parse (`3`, `1+2`, `1+2@-1500000`).
    #[error("{0}")]
    BadId(String),
    #[error("{0}")]
    NotFound(String),
    /// Larger than the viewer opens, or than the cache of remote dumps holds.
    #[error("{0}")]
    TooLarge(String),
    /// The file is not a recording the format crate can read.
    #[error("{0}")]
    Unreadable(String),
    /// A dump in object storage could not be fetched.
    #[error("{0}")]
    FetchFailed(String),
    /// Every turn to read is taken (`Limits::max_reads`), for longer than `read_wait`.
    #[error("{0}")]
    Busy(String),
    /// A read that panicked or was cancelled.
    #[error("{0}")]
    Internal(String),
}

type Result<T, E = LibraryError> = std::result::Result<T, E>;

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

/// A decoded dump, once some request has decoded it.
type ModelSlot = tokio::sync::OnceCell<Arc<Model>>;

/// Recordings opened together while they are read: what the page is shown meanwhile.
#[derive(Default)]
struct Opening {
    /// Built once, from scans (see `Model::skeleton`).
    skeleton: tokio::sync::OnceCell<Arc<Model>>,
    /// The full read has been started (it runs once, in the background).
    started: AtomicBool,
    /// Why the full read failed: told to every later request instead of a skeleton.
    failed: Mutex<Option<LibraryError>>,
    /// How far the full read of a single recording is: records decoded, and how many its
    /// threads announce.
    progress: Arc<ReadProgress>,
}

/// Records decoded so far by a read, of how many expected.
#[derive(Default)]
pub struct ReadProgress {
    pub read: std::sync::atomic::AtomicU64,
    pub expected: std::sync::atomic::AtomicU64,
}

/// Recordings opened together at most.
const MAX_MERGED: usize = 16;

/// The recordings a dump id names, each with the shift (ns) the user gave it: `3`, `1+2`,
/// or `1+2@-1500000` (the second moved 1.5 ms earlier). Its `key` names the set in the
/// cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSet {
    pub files: Vec<(usize, i64)>,
}

impl RecordingSet {
    /// The cache key of recordings opened together: ids, with their shifts.
    fn key(&self) -> String {
        self.files
            .iter()
            .map(|(i, s)| {
                if *s == 0 {
                    i.to_string()
                } else {
                    format!("{i}@{s}")
                }
            })
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// The files the viewer may show and the models read from them.
pub struct Library {
    /// Paths as given: files, or directories to look in.
    roots: Vec<PathBuf>,
    /// Files found so far. Ids are positions here, and files are only ever appended, so an
    /// id names the same file for the server's life. Requests name files only by id, never
    /// by path.
    files: Mutex<Vec<DumpFile>>,
    /// Decoded dumps, least recently used first. Each slot is filled once, by whichever
    /// request gets there first; the lock is held only to find or add a slot, never while
    /// decoding, so a dump being decoded does not hold up requests for the others.
    loaded: Mutex<Vec<(String, Arc<ModelSlot>)>>,
    /// Recordings opened together whose full read is under way: their skeletons.
    openings: Mutex<std::collections::HashMap<String, Arc<Opening>>>,
    pub(crate) limits: Limits,
    /// Fetches remote dumps on first open.
    fetch: Option<Fetch>,
    /// Turns to read a recording (`Limits::max_reads` of them).
    reads: tokio::sync::Semaphore,
}

impl Library {
    /// The library of the given paths (dump files, ring files or directories of them).
    pub fn new(roots: Vec<PathBuf>, limits: Limits) -> Result<Library, ViewerError> {
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
        let library = Library {
            roots,
            files: Mutex::new(Vec::new()),
            loaded: Mutex::new(Vec::new()),
            openings: Default::default(),
            reads: tokio::sync::Semaphore::new(limits.max_reads.max(1)),
            limits,
            fetch: None,
        };
        library.rescan();
        Ok(library)
    }

    /// Appends files that appeared under the roots since the last scan.
    pub fn rescan(&self) {
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

    pub fn files(&self) -> Vec<DumpFile> {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn file(&self, id: usize) -> Option<DumpFile> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn known(&self, id: usize) -> Result<DumpFile> {
        self.file(id)
            .ok_or_else(|| LibraryError::NotFound(format!("no dump {id}")))
    }

    /// The index: every file found (after a rescan), newest first.
    pub fn list(&self) -> Vec<DumpSummary> {
        self.rescan();
        let mut rows: Vec<(std::time::SystemTime, DumpSummary)> = self
            .files()
            .into_iter()
            .enumerate()
            .map(|(id, f)| (f.modified, self.summary(id, &f)))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        rows.into_iter().map(|r| r.1).collect()
    }

    /// A line of the index: what the file's header says, or why it cannot be read.
    fn summary(&self, id: usize, f: &DumpFile) -> DumpSummary {
        // A local file's size and time as they are now (it may have been cut or rewritten since
        // it was found); a remote one's as listed.
        let mut f = f.clone();
        if f.remote.is_none() {
            if let Ok(m) = std::fs::metadata(&f.path) {
                f.size = m.len();
                f.modified = m.modified().unwrap_or(f.modified);
            }
        }
        let f = &f;
        let mut row = DumpSummary {
            id,
            file: f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: f.size,
            modified: f
                .modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ..DumpSummary::default()
        };
        if f.size > self.limits.max_file_bytes {
            row.error = Some("too large to open".into());
            return row;
        }
        // A dump in object storage: its metadata says it all, nothing is downloaded to list it.
        if let Some(r) = &f.remote {
            row.file = r.key.clone();
            row.service = Some(r.service.clone());
            row.host = Some(r.host.clone());
            row.pid = Some(r.pid);
            row.trigger = Some(flightrec_format::TriggerReason::from_slug(&r.trigger).slug());
            row.trigger_description = Some(format!("{} (in object storage)", r.trigger));
            row.kind = Some("dump");
            row.time = Some(r.time_ns.to_string());
            return row;
        }
        match flightrec_format::read_head(&f.path).and_then(|img| {
            // When its data ends: a dump when it was taken, a ring when its process ended (a
            // clean exit or a stop), else when the trigger struck, else when it started.
            let dumped = flightrec_format::layout::get_u64(
                &img,
                flightrec_format::layout::header::DUMP_WALL_NS,
            )
            .unwrap_or(0)
            .min(i64::MAX as u64) as i64;
            flightrec_format::scan(&img).map(|s| {
                let r = s.recording;
                let ended = match r.ending {
                    flightrec_format::Ending::Closed { wall_ns }
                    | flightrec_format::Ending::Stopped { wall_ns, .. } => wall_ns,
                    flightrec_format::Ending::Unrecorded => 0,
                };
                let end = [dumped, ended, r.trigger.wall_ns]
                    .into_iter()
                    .find(|&t| t > 0)
                    .unwrap_or(r.start_wall_ns);
                (r.process, r.trigger, end, r.is_dump)
            })
        }) {
            Ok((p, t, end, is_dump)) => {
                row.service = Some(p.service);
                row.host = Some(p.host);
                row.pid = Some(p.pid);
                row.trigger = Some(t.reason.slug());
                row.trigger_description = Some(t.describe());
                row.kind = Some(if is_dump { "dump" } else { "ring" });
                row.time = Some(end.to_string());
            }
            Err(e) => row.error = Some(e.to_string()),
        }
        row
    }

    /// The one parser of dump ids: `3`, `1+2`, or `1+2@-1500000`, each file known.
    pub fn parse_id(&self, id: &str) -> Result<RecordingSet> {
        let mut ids: Vec<(usize, i64)> = Vec::new();
        for part in id.split('+') {
            let (file, shift) = match part.split_once('@') {
                Some((f, s)) => (
                    f,
                    s.parse::<i64>().map_err(|_| {
                        LibraryError::BadId(
                            "a shift is a whole number of ns, as in 2@-1500000".into(),
                        )
                    })?,
                ),
                None => (part, 0),
            };
            let f: usize = file
                .parse()
                .map_err(|_| LibraryError::BadId("a dump id is a number".into()))?;
            self.known(f)?;
            if !ids.iter().any(|(i, _)| *i == f) {
                ids.push((f, shift));
            }
        }
        // One recording shifted is the same recording: one model, whatever the shift asked.
        if let [(_, shift)] = ids.as_mut_slice() {
            *shift = 0;
        }
        if ids.len() > MAX_MERGED {
            return Err(LibraryError::BadId(format!(
                "at most {MAX_MERGED} recordings open together"
            )));
        }
        Ok(RecordingSet { files: ids })
    }

    /// The cache slot for `key`, made (and the least recently used evicted) if missing.
    fn slot(&self, key: &str) -> Arc<ModelSlot> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        match loaded.iter().position(|(i, _)| *i == key) {
            Some(pos) => {
                let entry = loaded.remove(pos);
                let slot = entry.1.clone();
                loaded.push(entry);
                slot
            }
            None => {
                while loaded.len() >= self.limits.max_loaded.max(1) {
                    loaded.remove(0);
                }
                let slot = Arc::new(ModelSlot::new());
                loaded.push((key.to_owned(), slot.clone()));
                slot
            }
        }
    }

    /// Decodes dump `id` ahead of the first request for it (the single dump `flightrec view`
    /// was given, or the merge it was asked for), so the page finds it ready.
    pub async fn preload(self: Arc<Self>, id: String) {
        // Several at once: their skeleton first (which starts the full read).
        let _ = self.model_or_skeleton(&id).await;
    }

    /// The model of dump id `id`, reading it (off the async threads) if it is not loaded.
    pub async fn model(&self, id: &str) -> Result<Arc<Model>> {
        let set = self.parse_id(id)?;
        let slot = self.slot(&set.key());
        // Concurrent requests for this dump wait for one decode; a failed decode is not
        // kept, so the next request tries again (the file may have been completed since).
        let m = slot.get_or_try_init(|| self.read(&set)).await?;
        Ok(m.clone())
    }

    /// What the page's first questions (meta, windows) are answered from: the model of
    /// `id` when it is ready; for several recordings not read yet, their skeleton (scanned
    /// at once, see `Model::skeleton`) while the full read goes on in the background.
    pub async fn model_or_skeleton(self: &Arc<Self>, id: &str) -> Result<Arc<Model>> {
        let set = self.parse_id(id)?;
        if set.files.len() < 2 && !self.is_big(&set) {
            return self.model(id).await;
        }
        let key = set.key();
        if let Some(m) = self.slot(&key).get() {
            return Ok(m.clone());
        }
        let opening = {
            let mut openings = self.openings.lock().unwrap_or_else(|e| e.into_inner());
            openings.entry(key.clone()).or_default().clone()
        };
        if let Some(e) = opening
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(e);
        }
        // The skeleton first, on every core: it is what the page shows meanwhile. Then the
        // full read.
        let skeleton = opening
            .skeleton
            .get_or_try_init(|| self.skeleton(&set))
            .await?
            .clone();
        if !opening.started.swap(true, Ordering::SeqCst) {
            let (library, id, opening, key) =
                (self.clone(), id.to_owned(), opening.clone(), key.clone());
            tokio::spawn(async move {
                match library.model(&id).await {
                    Ok(_) => {
                        let mut openings =
                            library.openings.lock().unwrap_or_else(|e| e.into_inner());
                        openings.remove(&key);
                    }
                    // Busy is not a failure of these recordings: the next request tries
                    // again.
                    Err(LibraryError::Busy(_)) => opening.started.store(false, Ordering::SeqCst),
                    Err(e) => *opening.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e),
                }
            });
        }
        // The full read may have ended meanwhile.
        if let Some(m) = self.slot(&key).get() {
            return Ok(m.clone());
        }
        Ok(skeleton)
    }

    /// A single recording big enough to be shown as its skeleton while it is read.
    fn is_big(&self, set: &RecordingSet) -> bool {
        match set.files.as_slice() {
            [(id, _)] => self
                .file(*id)
                .is_some_and(|f| f.size > self.limits.skeleton_above_bytes),
            _ => false,
        }
    }

    /// How far the read of `id` is, while it is shown as its skeleton: records decoded and
    /// expected (`None` when no read of it is under way).
    pub fn progress(&self, id: &str) -> Option<(u64, u64)> {
        let set = self.parse_id(id).ok()?;
        if set.files.len() != 1 {
            return None;
        }
        let key = set.key();
        let openings = self.openings.lock().unwrap_or_else(|e| e.into_inner());
        let p = &openings.get(&key)?.progress;
        Some((
            p.read.load(Ordering::Relaxed),
            p.expected.load(Ordering::Relaxed),
        ))
    }

    /// Recordings opened together from object storage must fit in the cache together, or
    /// fetching one would evict another before they are read: refused in one line instead.
    fn check_remote_total(&self, set: &RecordingSet) -> Result<()> {
        let remote: u64 = set
            .files
            .iter()
            .filter_map(|&(id, _)| self.file(id))
            .filter(|f| f.remote.is_some())
            .map(|f| f.size)
            .sum();
        if remote > self.limits.cache_bytes {
            return Err(LibraryError::TooLarge(format!(
                "these recordings are {remote} bytes together, more than the cache of remote dumps holds ({} bytes; FLIGHTREC_CACHE_BYTES)",
                self.limits.cache_bytes
            )));
        }
        Ok(())
    }

    /// The one path resolver: where the recordings of `set` are on this machine, each
    /// checked for size, and fetched (off the async threads) when it is in object storage
    /// and not cached yet.
    async fn local_paths(&self, set: &RecordingSet) -> Result<Vec<PathBuf>> {
        self.check_remote_total(set)?;
        let mut paths = Vec::new();
        for &(id, _) in &set.files {
            let file = self.known(id)?;
            self.check_size(&file)?;
            paths.push(self.local_path(&file).await?);
        }
        Ok(paths)
    }

    async fn local_path(&self, file: &DumpFile) -> Result<PathBuf> {
        let Some(remote) = file.remote.clone() else {
            return Ok(file.path.clone());
        };
        if file.path.is_file() {
            return Ok(file.path.clone());
        }
        let fetch = self
            .fetch
            .clone()
            .ok_or_else(|| LibraryError::Internal("no way to fetch remote dumps".into()))?;
        off_thread(move || fetch(&remote).map_err(LibraryError::FetchFailed)).await
    }

    fn check_size(&self, file: &DumpFile) -> Result<()> {
        let max = self.limits.max_file_bytes;
        if file.remote.is_some() {
            // Its listed size; the file may not be here yet.
            return if file.size > max {
                Err(LibraryError::TooLarge(format!(
                    "{} bytes, more than the viewer opens",
                    file.size
                )))
            } else {
                Ok(())
            };
        }
        let size = std::fs::metadata(&file.path).map_or(file.size, |m| m.len());
        if size > max {
            return Err(LibraryError::TooLarge(format!(
                "{} is {size} bytes, more than the viewer opens ({max} bytes)",
                file.path.display(),
            )));
        }
        Ok(())
    }

    /// A turn to read: at most `Limits::max_reads` reads hold one at once, so the memory
    /// of reads under way is bounded; after `Limits::read_wait`, busy.
    async fn read_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        match tokio::time::timeout(self.limits.read_wait, self.reads.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(LibraryError::Busy(format!(
                "the viewer is reading {} other recordings; try again in a moment",
                self.limits.max_reads
            ))),
        }
    }

    /// Scans recordings opened together (no record decoded) into their skeleton.
    async fn skeleton(&self, set: &RecordingSet) -> Result<Arc<Model>> {
        let shifts: Vec<i64> = set.files.iter().map(|(_, s)| *s).collect();
        let paths = self.local_paths(set).await?;
        off_thread(move || {
            let scans = crate::model::par_map(paths.iter().collect(), |p| {
                let image =
                    flightrec_format::read_image(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let scan = image.scan().map_err(|e| format!("{}: {e}", p.display()))?;
                let activity = scan.activity().map(|(t, a)| (t, a.to_vec())).collect();
                Ok::<_, String>((scan.recording, activity))
            })
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(LibraryError::Unreadable)?;
            Ok(Arc::new(Model::skeleton(scans, &shifts)))
        })
        .await
    }

    /// Reads and arranges one dump, or several merged into one timeline.
    async fn read(&self, set: &RecordingSet) -> Result<Arc<Model>> {
        let _turn = self.read_turn().await?;
        let paths = self.local_paths(set).await?;
        if let [(_, 0)] = set.files.as_slice() {
            let path = paths[0].clone();
            // Shown as its skeleton meanwhile: the page is told how far the read is.
            let progress = {
                let openings = self.openings.lock().unwrap_or_else(|e| e.into_inner());
                openings.get(&set.key()).map(|o| o.progress.clone())
            };
            return off_thread(move || {
                let decoded = flightrec_format::read_image(&path).and_then(|image| {
                    image.decode_counting(|read, expected| {
                        if let Some(p) = &progress {
                            p.read.store(read, Ordering::Relaxed);
                            p.expected.store(expected, Ordering::Relaxed);
                        }
                    })
                });
                decoded
                    .map(|rec| Arc::new(Model::new(rec)))
                    .map_err(|e| LibraryError::Unreadable(format!("{}: {e}", path.display())))
            })
            .await;
        }
        let shifts: Vec<i64> = set.files.iter().map(|(_, s)| *s).collect();
        off_thread(move || {
            // The headers first (small reads), to name the processes; then each recording
            // is decoded and modelled on one core, side by side.
            let heads = paths
                .iter()
                .map(|p| {
                    flightrec_format::read_head(p)
                        .and_then(|img| flightrec_format::scan(&img).map(|s| s.recording))
                        .map_err(|e| format!("{}: {e}", p.display()))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(LibraryError::Unreadable)?;
            let load = |k: usize| {
                flightrec_format::open(&paths[k])
                    .map_err(|e| format!("{}: {e}", paths[k].display()))
            };
            Model::merged_loading(&heads, &shifts, load)
                .map(Arc::new)
                .map_err(LibraryError::Unreadable)
        })
        .await
    }
}

/// Runs blocking work (a read, a fetch) off the async threads.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LibraryError::Internal(e.to_string()))?
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
