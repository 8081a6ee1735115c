//! History on disk (opt-in, `Builder::history`): a background thread that copies each chunk
//! the writers retire, compresses it and appends it to a bounded directory beside the ring
//! (the format is `flightrec_format::history`'s), so that a recording reaches back minutes
//! where the ring holds a second.
//!
//! Writers never wait for it. It copies chunks as a dump does without the gate (the
//! seqlock check alone), so a chunk recycled before it got there is missing from the
//! history, and counted. It keeps to a CPU budget: compressing and writing a chunk costs it
//! the CPU time that took (its thread's clock), the budget refills at a share of the machine's cores, and when the
//! budget is spent it leaves chunks out (counted, never waited for). Its memory is one
//! chunk and a compressor whatever the disk does; a write that fails (a full disk) leaves
//! its chunk out, and the segment it was writing is closed where its last whole frame ends.
//!
//! **Architecture Invariant:** the history thread never blocks a writer and never grows
//! with what is written: a chunk it cannot keep up with is left out and counted in the
//! ring's header (`HISTORY_SKIPPED`), which every dump carries.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flightrec_format::history::{self as format, encode_frame, SEGMENT_MAGIC};
use flightrec_format::layout::{header, state};

use crate::ring::protocol::ChunkPool;
use crate::ring::{clock, Ring};

/// The share of the machine's CPU the history may take, summed over its cores: at
/// saturation every core works for the service, and this keeps the history's cost within
/// that share of it.
pub(crate) const CPU_SHARE: f64 = 0.05;
/// How long the budget may save up: what lets a burst of retired chunks through after a
/// quiet spell.
const BUDGET_BURST: Duration = Duration::from_millis(250);
/// How often the history looks for retired chunks. A ring recycles its oldest chunk after
/// it has been written through once, far longer than this at any load it can keep up with.
const POLL: Duration = Duration::from_millis(10);
/// zstd's level for history frames: its fastest levels still shrink records several times,
/// and speed is what the budget buys.
const LEVEL: i32 = 1;
/// The most history (uncompressed) a dump the process writes itself carries, the newest:
/// the dump is made in the process's memory. `flightrec collect` of a dead process's ring
/// carries all of it.
pub(crate) const MAX_IN_DUMP: u64 = 1 << 30;
/// Smallest history the recorder accepts: a few segments of a few chunks.
pub(crate) const MIN_HISTORY: u64 = 1 << 20;

/// The running history thread; dropping it stops the thread after one last look.
pub(crate) struct History {
    ring: Arc<Ring>,
    stop: Arc<AtomicBool>,
    /// Looks at the ring completed.
    passes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Where a recorder's history on disk stands (`Recorder::history_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryStatus {
    /// Chunks written to the history.
    pub archived: u64,
    /// Chunks left out: the CPU budget was spent, the disk failed a write, or the ring
    /// recycled them before the history got there.
    pub skipped: u64,
    /// Looks at the ring the history thread has finished. A look that began after a chunk
    /// retired has written it or counted it as left out: a caller that waits for this to
    /// grow by two knows everything retired before it began waiting is handled.
    pub passes: u64,
}

impl History {
    /// Starts the history of `ring` in `flightrec_format::history::dir_of(ring)`, kept under
    /// `max_bytes` on disk. Whatever the directory held before (a ring of the same name,
    /// long dead) is removed first.
    pub(crate) fn start(ring: Arc<Ring>, max_bytes: u64) -> std::io::Result<History> {
        let dir = format::dir_of(&ring.path);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let share =
            CPU_SHARE * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        let passes = Arc::new(AtomicU64::new(0));
        let passed = passes.clone();
        let mut archiver = Archiver::new(ring.clone(), dir, max_bytes, share)?;
        let thread = std::thread::Builder::new()
            .name("flightrec-history".into())
            .spawn(move || loop {
                let last = stopping.load(Ordering::Acquire);
                archiver.pass();
                passed.fetch_add(1, Ordering::Release);
                if last {
                    break;
                }
                std::thread::park_timeout(POLL);
            })?;
        Ok(History {
            ring,
            stop,
            passes,
            thread: Some(thread),
        })
    }

    pub(crate) fn status(&self) -> HistoryStatus {
        // Passes first: the counts read after it are at least that pass's.
        let passes = self.passes.load(Ordering::Acquire);
        let word = |off| self.ring.header_word(off).load(Ordering::Relaxed);
        HistoryStatus {
            archived: word(header::HISTORY_ARCHIVED),
            skipped: word(header::HISTORY_SKIPPED),
            passes,
        }
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The history thread's state: which chunk it last took from each slot of the ring, the
/// segment it appends to, and its budget.
struct Archiver {
    ring: Arc<Ring>,
    dir: PathBuf,
    max_bytes: u64,
    /// A segment is closed at this size, so the oldest part can go a segment at a time.
    segment_bytes: u64,
    /// Per chunk slot: the sequence number of the last chunk handled there (written or left
    /// out), and of the last chunk seen there.
    handled: Vec<u64>,
    seen: Vec<u64>,
    /// Closed segments, oldest first, with their sizes; then the open one.
    closed: VecDeque<(PathBuf, u64)>,
    open: Option<Segment>,
    budget: Budget,
    z: zstd::bulk::Compressor<'static>,
    buf: Vec<u8>,
    archived: u64,
    skipped: u64,
}

struct Segment {
    file: std::fs::File,
    path: PathBuf,
    len: u64,
}

impl Archiver {
    fn new(ring: Arc<Ring>, dir: PathBuf, max_bytes: u64, share: f64) -> std::io::Result<Self> {
        let n = ring.chunk_count() as usize;
        let mut z = zstd::bulk::Compressor::new(LEVEL)?;
        z.include_checksum(true)?;
        Ok(Archiver {
            buf: vec![0u8; ring.geometry.chunk_size as usize],
            ring,
            dir,
            max_bytes,
            segment_bytes: (max_bytes / 8).max(64 << 10),
            handled: vec![0; n],
            seen: vec![0; n],
            closed: VecDeque::new(),
            open: None,
            budget: Budget::new(share, Instant::now()),
            z,
            archived: 0,
            skipped: 0,
        })
    }

    /// One look at the ring: every chunk retired since the last look, oldest first, is
    /// written or left out; then the counts go into the ring's header.
    fn pass(&mut self) {
        let mut retired = Vec::new();
        for i in 0..self.handled.len() {
            let word = self.ring.chunk(i as u64).state.load(Ordering::Acquire);
            let (seq, phase) = (state::seq(word), state::phase(word));
            if phase == state::FREE {
                continue;
            }
            // A chunk seen here before and gone before it was handled: it retired and was
            // recycled between two looks.
            let before = self.seen[i];
            if before != 0 && before != seq && self.handled[i] != before {
                self.skipped += 1;
            }
            self.seen[i] = seq;
            if phase == state::RETIRED && self.handled[i] != seq {
                retired.push((seq, i));
            }
        }
        retired.sort_unstable();
        for (seq, i) in retired {
            self.handled[i] = seq;
            if !self.budget.allows(Instant::now()) {
                self.skipped += 1;
                continue;
            }
            let started = clock::thread_cpu_ns();
            let kept = self.keep(i as u64);
            let took = clock::thread_cpu_ns().saturating_sub(started);
            self.budget.spend(Duration::from_nanos(took));
            match kept {
                true => self.archived += 1,
                false => self.skipped += 1,
            }
        }
        let word = |off| self.ring.header_word(off);
        word(header::HISTORY_ARCHIVED).store(self.archived, Ordering::Relaxed);
        word(header::HISTORY_SKIPPED).store(self.skipped, Ordering::Relaxed);
    }

    /// Copies, compresses and appends chunk `index`; false when it was recycled under the
    /// copy or could not be written.
    fn keep(&mut self, index: u64) -> bool {
        let Ok(view) = self.ring.copy_chunk(index, &mut self.buf) else {
            return false;
        };
        view.write(&mut self.buf);
        let Ok(frame) = encode_frame(&self.buf, &mut self.z) else {
            return false;
        };
        self.append(&frame, state::seq(view.state)).is_ok()
    }

    fn append(&mut self, frame: &[u8], seq: u64) -> std::io::Result<()> {
        if self
            .open
            .as_ref()
            .is_some_and(|s| s.len >= self.segment_bytes)
        {
            self.close_segment();
        }
        if self.open.is_none() {
            let path = self.dir.join(format::segment_name(seq));
            let mut file = std::fs::File::create(&path)?;
            if let Err(e) = file.write_all(&SEGMENT_MAGIC) {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            let len = SEGMENT_MAGIC.len() as u64;
            self.open = Some(Segment { file, path, len });
        }
        let seg = self.open.as_mut().expect("opened above");
        if let Err(e) = seg.file.write_all(frame) {
            // Cut back to the last whole frame (a reader would stop at the cut one) and
            // start afresh next time.
            let _ = seg.file.set_len(seg.len);
            self.close_segment();
            return Err(e);
        }
        seg.len += frame.len() as u64;
        self.make_room();
        Ok(())
    }

    fn close_segment(&mut self) {
        if let Some(s) = self.open.take() {
            self.closed.push_back((s.path, s.len));
        }
    }

    /// Deletes closed segments, oldest first, until the history fits its budget.
    fn make_room(&mut self) {
        let open = self.open.as_ref().map_or(0, |s| s.len);
        let mut total: u64 = open + self.closed.iter().map(|(_, len)| len).sum::<u64>();
        while total > self.max_bytes {
            let Some((path, len)) = self.closed.pop_front() else {
                // The open segment alone is over budget: close it, so it goes next time.
                self.close_segment();
                break;
            };
            let _ = std::fs::remove_file(&path);
            total -= len;
        }
    }
}

/// CPU time the history may spend, refilled at `share` seconds per second of wall time and
/// saved up to `BUDGET_BURST`.
struct Budget {
    share: f64,
    /// Seconds available; negative after a chunk that cost more than was saved.
    left: f64,
    refilled: Instant,
}

impl Budget {
    fn new(share: f64, now: Instant) -> Budget {
        Budget {
            share,
            left: BUDGET_BURST.as_secs_f64(),
            refilled: now,
        }
    }

    /// Whether a chunk may be spent on at `now`.
    fn allows(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.refilled).as_secs_f64() * self.share;
        self.left = (self.left + earned).min(BUDGET_BURST.as_secs_f64());
        self.refilled = self.refilled.max(now);
        self.left > 0.0
    }

    fn spend(&mut self, took: Duration) {
        self.left -= took.as_secs_f64();
    }
}

/// Removes the history of the ring file `ring`, if it has one.
pub(crate) fn remove(ring: &Path) {
    let _ = std::fs::remove_dir_all(format::dir_of(ring));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history that spent more than it saved leaves chunks out until the share of the
    /// time since has paid it back, and never saves more than a burst.
    #[test]
    fn the_budget_leaves_chunks_out_until_it_is_paid_back() {
        let t0 = Instant::now();
        let mut b = Budget::new(0.1, t0);
        assert!(b.allows(t0));
        b.spend(BUDGET_BURST + Duration::from_millis(50));
        assert!(!b.allows(t0));
        assert!(
            !b.allows(t0 + Duration::from_millis(400)),
            "40 ms of 50 paid back"
        );
        assert!(b.allows(t0 + Duration::from_millis(600)), "60 ms paid back");
        // A long quiet spell saves one burst, not more.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.allows(later));
        b.spend(BUDGET_BURST);
        assert!(!b.allows(later));
    }
}
