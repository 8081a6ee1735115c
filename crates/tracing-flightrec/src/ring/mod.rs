//! The ring: one preallocated file per process, mapped shared, holding the header, the meta
//! log and a pool of chunks that threads write into.
//!
//! This module is the only place in the crate with `unsafe`: it turns offsets in the mapping
//! into atomics and byte slices. Everything it hands out is justified by the chunk protocol
//! (`protocol`), which is written over plain atomics and model-checked with loom.

pub(crate) mod clock;
pub(crate) mod crash;
pub(crate) mod protocol;
pub(crate) mod span_table;
pub(crate) mod stacks;
pub(crate) mod stop;
pub(crate) mod sync;
pub(crate) mod writer;

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flightrec_format::layout::{self, chunk, header, Geometry, CHUNK_HEADER_SIZE, HEADER_SIZE};

use protocol::{ChunkHeader, ChunkPool};

// The in-place view of a chunk header must match the format crate's offsets exactly.
const _: () = {
    assert!(std::mem::size_of::<ChunkHeader>() == CHUNK_HEADER_SIZE);
    assert!(std::mem::offset_of!(ChunkHeader, state) == chunk::STATE);
    assert!(std::mem::offset_of!(ChunkHeader, committed_len) == chunk::COMMITTED_LEN);
    assert!(std::mem::offset_of!(ChunkHeader, thread_index) == chunk::THREAD_INDEX);
    assert!(std::mem::offset_of!(ChunkHeader, os_tid) == chunk::OS_TID);
    assert!(std::mem::offset_of!(ChunkHeader, thread_seq_start) == chunk::THREAD_SEQ_START);
    assert!(std::mem::offset_of!(ChunkHeader, dropped_total) == chunk::DROPPED_TOTAL);
    assert!(std::mem::offset_of!(ChunkHeader, claim_ticks) == chunk::CLAIM_TICKS);
    assert!(std::mem::offset_of!(ChunkHeader, claim_mono_ns) == chunk::CLAIM_MONO_NS);
    assert!(std::mem::offset_of!(ChunkHeader, dropped_before) == chunk::DROPPED_BEFORE);
    // Chunks start at multiples of 64 from a page-aligned base, so every atomic is aligned.
    assert!(HEADER_SIZE.is_multiple_of(64));
};

/// Backing memory of a ring: a shared file mapping, or (in tests) a heap buffer with the
/// same layout.
enum Backing {
    File {
        _map: memmap2::MmapRaw,
        _file: File,
    },
    #[cfg(test)]
    Heap(#[allow(dead_code)] Box<[AtomicU64]>),
}

/// A mapped ring file.
pub(crate) struct Ring {
    backing: Backing,
    /// Base address of the mapping. Page aligned (or 8-aligned for the heap backing), valid
    /// for `geometry.file_size` bytes for as long as `backing` lives.
    base: *mut u8,
    pub(crate) geometry: Geometry,
    pub(crate) path: PathBuf,
    /// Serialises appends to the meta log; holds the committed length. Taken once per
    /// callsite and per thread, never per record.
    meta: Mutex<u64>,
    /// The next callsite id (tracing's callsites, flightrec's own, and recorded locks).
    pub(crate) next_callsite: std::sync::atomic::AtomicU32,
    /// Unique per ring in this process: what a lock's cached callsite id is valid for.
    pub(crate) generation: u32,
    /// Nanoseconds per tick, as calibrated when the ring was made: for durations written
    /// into records (a lock's wait and hold).
    pub(crate) ns_per_tick: f64,
    /// Whether the file goes when the ring closes (the recorder dropped, or the process
    /// exiting through `exit`): a clean end leaves nothing to read, unless the user asked
    /// to keep it (`Builder::keep_ring`).
    pub(crate) remove_when_closed: std::sync::atomic::AtomicBool,
}

/// Hands out `Ring::generation`s.
static RING_GENERATION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

fn next_generation() -> u32 {
    RING_GENERATION.fetch_add(1, Ordering::Relaxed)
}

// SAFETY: `base` points into `backing`, which `Ring` owns and which is itself Send + Sync
// (a shared mapping or a heap buffer of atomics). All shared access to the memory goes
// through atomics, the mutex-guarded meta log, or payload bytes that the chunk protocol
// gives to exactly one writer at a time; see the individual accessors.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates (or replaces) the ring file at `path` and initialises its header.
    pub(crate) fn create(
        path: &Path,
        geometry: Geometry,
        pid: u32,
        anchor: &layout::ClockAnchor,
    ) -> std::io::Result<Ring> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        // Held for the life of the ring (the process): the kernel releases it at death, which
        // is how a later recorder or `flightrec collect` tells a dead owner from a live one.
        match file.try_lock() {
            Ok(()) | Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(geometry.file_size)?;
        // Reserve the blocks now so a full disk shows up here, not as SIGBUS in a writer.
        reserve(&file, geometry.file_size)?;
        // Populated up front: a writer's first touch of a page must not cost a page fault
        // (a microsecond, and a syscall-like trip into the kernel) on the hot path.
        let map = memmap2::MmapOptions::new()
            .len(geometry.file_size as usize)
            .populate()
            .map_raw(&file)?;
        let base = map.as_mut_ptr();
        let ring = Ring {
            backing: Backing::File {
                _map: map,
                _file: file,
            },
            base,
            geometry,
            path: path.to_path_buf(),
            meta: Mutex::new(0),
            next_callsite: std::sync::atomic::AtomicU32::new(1),
            generation: next_generation(),
            ns_per_tick: if anchor.ticks_per_sec > 0.0 {
                1e9 / anchor.ticks_per_sec
            } else {
                1.0
            },
            remove_when_closed: std::sync::atomic::AtomicBool::new(false),
        };
        ring.init_header(pid, anchor);
        Ok(ring)
    }

    /// A ring in heap memory, for tests of the protocol without a file.
    #[cfg(test)]
    pub(crate) fn heap(geometry: Geometry) -> Ring {
        let words: Box<[AtomicU64]> = (0..geometry.file_size / 8)
            .map(|_| AtomicU64::new(0))
            .collect();
        let base = words.as_ptr() as *mut u8;
        let ring = Ring {
            backing: Backing::Heap(words),
            base,
            geometry,
            path: PathBuf::from("<heap>"),
            meta: Mutex::new(0),
            next_callsite: std::sync::atomic::AtomicU32::new(1),
            generation: next_generation(),
            ns_per_tick: 1.0,
            remove_when_closed: std::sync::atomic::AtomicBool::new(false),
        };
        ring.init_header(std::process::id(), &clock::anchor_now());
        ring
    }

    fn init_header(&self, pid: u32, anchor: &layout::ClockAnchor) {
        let mut head = vec![0u8; HEADER_SIZE];
        self.geometry.write_header(&mut head, pid, anchor);
        // SAFETY: the ring has just been created and not yet shared with any thread or
        // process that follows the protocol (a fresh, truncated file), so nothing else
        // accesses the header; `base` is valid for HEADER_SIZE bytes.
        unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), self.base, HEADER_SIZE) };
        let _ = &self.backing;
    }

    /// The header word at `off`, viewed as an atomic.
    pub(crate) fn header_word(&self, off: usize) -> &AtomicU64 {
        assert!(off.is_multiple_of(8) && off + 8 <= HEADER_SIZE);
        // SAFETY: `off` is 8-aligned and within the header, which is within the mapping;
        // `base` is page (or 8) aligned, so the address is aligned for AtomicU64, which has
        // the size and alignment of u64. The mapping outlives `&self`. Every party that
        // writes these words (this process, or another mapping the same file) does so
        // atomically.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    #[inline]
    fn chunk_ptr(&self, index: u64) -> *mut u8 {
        assert!(index < self.geometry.chunk_count as u64);
        // SAFETY: index < chunk_count, so the chunk lies within file_size bytes of base.
        unsafe {
            self.base
                .add(self.geometry.chunk_offset(index as u32) as usize)
        }
    }

    /// The chunk's payload capacity in bytes.
    #[inline]
    pub(crate) fn payload_capacity(&self) -> usize {
        self.geometry.chunk_size as usize - CHUNK_HEADER_SIZE
    }

    /// The unwritten tail `[from, capacity)` of chunk `index`'s payload.
    ///
    /// # Safety
    /// The caller must own chunk `index` under the protocol (it claimed it and has not
    /// retired it), `from` must be at least the chunk's `committed_len`, and the caller must
    /// not hold another slice of the same chunk.
    // Exclusivity comes from the chunk protocol (one owner per chunk), not from `&mut self`:
    // many threads write their own chunks of one shared ring at once.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn payload_tail(&self, index: u64, from: usize) -> &mut [u8] {
        let cap = self.payload_capacity();
        assert!(from <= cap);
        // SAFETY: the range lies within the chunk (from <= cap). No one else writes it: the
        // protocol gives a chunk to one owner, recyclers only take RETIRED chunks, and the
        // caller holds no other slice. Readers only read below committed_len <= from; a
        // reader racing a recycle may still be copying old bytes, which the seqlock check
        // detects and discards, never interpreting them (see `copy_chunk`).
        unsafe {
            std::slice::from_raw_parts_mut(
                self.chunk_ptr(index).add(CHUNK_HEADER_SIZE + from),
                cap - from,
            )
        }
    }

    /// Copies chunk `index` consistently into `dst` (a `chunk_size` buffer): header fields
    /// and committed payload. Returns the view, or why nothing usable was copied.
    pub(crate) fn copy_chunk(
        &self,
        index: u64,
        dst: &mut [u8],
    ) -> Result<protocol::ChunkView, protocol::ReadOutcome> {
        let cap = self.payload_capacity();
        let src = self.chunk_ptr(index);
        protocol::read(self.chunk(index), |len| {
            // Whole words: the payload starts 64-aligned and its capacity is a multiple of
            // 64, so rounding `len` up to 8 stays inside the chunk.
            let words = len.min(cap).div_ceil(8);
            let dst = &mut dst[CHUNK_HEADER_SIZE..CHUNK_HEADER_SIZE + words * 8];
            for (i, d) in dst.chunks_exact_mut(8).enumerate() {
                // SAFETY: in bounds of the chunk (i < words <= cap / 8) and 8-aligned (the
                // chunk is 64-aligned from an aligned base). A volatile read of a word that a
                // recycler may be writing concurrently: this is the seqlock read, whose
                // result is used only if `protocol::read` then finds the sequence unchanged,
                // in which case no recycler wrote the chunk while it was copied. Volatile
                // keeps the compiler from assuming the bytes are stable. Any u64 is valid.
                let w = unsafe {
                    std::ptr::read_volatile(src.add(CHUNK_HEADER_SIZE + i * 8) as *const u64)
                };
                d.copy_from_slice(&w.to_ne_bytes());
            }
        })
    }

    /// Counts `n` chunks retired (`header::RETIRED_CHUNKS`), after their retire: release,
    /// so a reader that sees the count also sees their `RETIRED` states.
    pub(crate) fn count_retired(&self, n: u64) {
        self.header_word(header::RETIRED_CHUNKS)
            .fetch_add(n, Ordering::Release);
    }

    /// Copies the header's words into `dst` (at least the header's size); `copy_meta`
    /// then brings the meta log and its length.
    pub(crate) fn copy_header(&self, dst: &mut [u8]) {
        for off in (0..HEADER_SIZE).step_by(8) {
            let v = self.header_word(off).load(Ordering::Relaxed);
            dst[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Copies the committed meta log into `dst` (at least the meta log's end), and its
    /// length into `dst`'s header. Copied after a copy's chunks, it holds every entry a
    /// copied record names: a writer appends an entry (a callsite, a thread, a kept
    /// message) before any record that names it.
    pub(crate) fn copy_meta(&self, dst: &mut [u8]) {
        let meta_len = self
            .header_word(header::META_COMMITTED_LEN)
            .load(Ordering::Acquire);
        let meta_len = meta_len.min(self.geometry.meta_capacity);
        let start = self.geometry.meta_offset as usize;
        // SAFETY: [start, start + meta_len) is within the meta log, which lies within the
        // mapping. Bytes below the committed length are never written again (the log is
        // append-only), and the acquire load above makes their writes visible.
        let src = unsafe { std::slice::from_raw_parts(self.base.add(start), meta_len as usize) };
        dst[start..start + meta_len as usize].copy_from_slice(src);
        dst[header::META_COMMITTED_LEN..header::META_COMMITTED_LEN + 8]
            .copy_from_slice(&meta_len.to_le_bytes());
    }

    /// Appends `bytes` (whole meta entries) to the meta log. Returns false when the log is
    /// full; the entries are then simply not recorded (records still decode, with generic
    /// names).
    pub(crate) fn append_meta(&self, bytes: &[u8]) -> bool {
        self.append_meta_leaving(bytes, 0)
    }

    /// `append_meta`, unless it would leave less than `keep_free` bytes of the meta log
    /// free: for entries that only save room in records, which must never take the room a
    /// callsite or a thread needs.
    pub(crate) fn append_meta_leaving(&self, bytes: &[u8], keep_free: u64) -> bool {
        let mut len = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let cap = self.geometry.meta_capacity;
        if *len + bytes.len() as u64 + keep_free > cap {
            return false;
        }
        let at = self.geometry.meta_offset + *len;
        // SAFETY: [at, at + bytes.len()) lies within the meta log (checked against cap just
        // above). Bytes beyond the committed length are written only under this mutex, and
        // readers never read past the committed length.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(at as usize), bytes.len())
        };
        *len += bytes.len() as u64;
        self.header_word(header::META_COMMITTED_LEN)
            .store(*len, Ordering::Release);
        true
    }
}

impl Ring {
    /// Records the snapshot signal (`None`: it listens for none) and the dump directory in
    /// the header, where `flightrec snapshot` reads them. Paths longer than the header's
    /// field are not recorded (the tool then looks beside the ring).
    pub(crate) fn record_settings(
        &self,
        signal: Option<i32>,
        dump_dir: &Path,
        quota: flightrec_format::retention::Quota,
    ) {
        let sig = layout::SNAPSHOT_SIGNAL_RECORDED | signal.unwrap_or(0) as u32 as u64;
        self.header_word(header::SNAPSHOT_SIGNAL)
            .store(sig, Ordering::Release);
        // One word holds the count (u32) and the padding before the budget.
        let keep = quota.keep_per_trigger.clamp(1, u32::MAX as usize) as u64;
        self.header_word(header::RETAIN_PER_TRIGGER)
            .store(keep, Ordering::Relaxed);
        self.header_word(header::RETAIN_BYTES)
            .store(quota.max_bytes, Ordering::Relaxed);
        use std::os::unix::ffi::OsStrExt;
        let bytes = dump_dir.as_os_str().as_bytes();
        if bytes.len() > header::DUMP_DIR_CAP {
            return;
        }
        for (i, word) in bytes.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..word.len()].copy_from_slice(word);
            self.header_word(header::DUMP_DIR + i * 8)
                .store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        self.header_word(header::DUMP_DIR_LEN)
            .store(bytes.len() as u64, Ordering::Release);
    }

    /// A clean end: marks the ring closed, then removes its file unless it is to be kept.
    /// The mapping stays valid after the unlink, for threads still writing during `exit`.
    pub(crate) fn close(&self) {
        self.mark_closed();
        if self.remove_when_closed.load(Ordering::Relaxed) {
            let _ = std::fs::remove_file(&self.path);
            // The history on disk beside it, if the recorder kept one, goes with it.
            let _ = std::fs::remove_dir_all(flightrec_format::history::dir_of(&self.path));
        }
    }

    /// Marks a clean shutdown: the next recorder (or `flightrec watch`) removes this ring
    /// quietly instead of reporting a process that died without a dump.
    pub(crate) fn mark_closed(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        self.header_word(header::CLOSED_WALL_NS)
            .store(now.max(1), Ordering::Release);
    }
}

/// Rings of this process that `exit` marks closed: a process that returns from `main` or
/// calls `std::process::exit` never drops a recorder kept in a static (`init()` leaks it).
static CLOSE_AT_EXIT: Mutex<Vec<std::sync::Weak<Ring>>> = Mutex::new(Vec::new());

/// Marks `ring` closed when the process exits through `exit` (not on a crash, an abort or a
/// kill, whose rings stay as evidence).
pub(crate) fn close_at_exit(ring: &Arc<Ring>) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let mut rings = CLOSE_AT_EXIT.lock().unwrap_or_else(|e| e.into_inner());
    rings.retain(|r| r.strong_count() > 0);
    rings.push(Arc::downgrade(ring));
    drop(rings);
    INSTALL.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` with no preconditions; it runs during
        // `exit`, on the exiting thread, outside any signal handler.
        unsafe { libc::atexit(close_rings_at_exit) };
    });
}

/// What runs at `exit` before the rings are closed (the recorders' exit dumps), set once.
static BEFORE_CLOSE_AT_EXIT: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Runs `hook` at `exit`, before this process's rings are marked closed.
pub(crate) fn before_close_at_exit(hook: fn()) {
    let _ = BEFORE_CLOSE_AT_EXIT.set(hook);
}

extern "C" fn close_rings_at_exit() {
    if let Some(hook) = BEFORE_CLOSE_AT_EXIT.get() {
        hook();
    }
    // `try_lock`: exit can run while another thread holds the list (registering a recorder);
    // blocking here could hang the exit, so that rare case is left unmarked.
    if let Ok(rings) = CLOSE_AT_EXIT.try_lock() {
        for ring in rings.iter().filter_map(std::sync::Weak::upgrade) {
            ring.close();
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        crash::unwatch(self);
        stop::unwatch(self);
        stacks::unwatch(self);
        self.close();
    }
}

impl ChunkPool for Ring {
    fn chunk_count(&self) -> u64 {
        self.geometry.chunk_count as u64
    }

    #[inline]
    fn chunk(&self, index: u64) -> &ChunkHeader {
        // SAFETY: the chunk header lies at the start of the chunk, within the mapping, at a
        // 64-aligned offset from a page-aligned base. ChunkHeader is repr(C) atomics whose
        // layout matches the format (checked at compile time above), and all parties access
        // these words atomically. The mapping outlives `&self`.
        unsafe { &*(self.chunk_ptr(index) as *const ChunkHeader) }
    }

    fn cursor(&self) -> &AtomicU64 {
        self.header_word(header::CLAIM_CURSOR)
    }

    fn copy_gate(&self) -> &AtomicU64 {
        self.header_word(header::COPY_GATE)
    }
}

/// Allocates the file's blocks (where the filesystem supports it) so a full disk is an
/// error at creation rather than SIGBUS on first touch of a page.
fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: posix_fallocate on an fd we own, with a non-negative range; it touches no
        // memory of ours.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        if rc != 0 && rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
    }
    let _ = (file, len);
    Ok(())
}

/// Lowers the calling thread's scheduling priority to nice 10, best effort: for the
/// recorder's background work (the history), which must not delay the service's threads
/// when they want the CPU.
pub(crate) fn lower_thread_priority() {
    // SAFETY: gettid and setpriority take and return plain integers and touch no memory of
    // ours. On Linux, PRIO_PROCESS with a thread id sets that thread's nice value alone; a
    // failure (not permitted, say) leaves the priority as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Writes `line` to stderr with one `write(2)`, never through `std::io::stderr()`: its lock
/// may be held by a thread that is stuck (the very stall being dumped), and a dump's
/// thread must not wait on the application. Best effort: a closed or full stderr loses the
/// line, never the dump, which is complete before this is called.
pub(crate) fn write_stderr(line: &str) {
    // SAFETY: the pointer and length describe `line`'s bytes, alive for the call; write(2)
    // only reads them, and any error (a closed descriptor included) is returned, not raised.
    let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}
