//! History on disk (opt-in, `Builder::history`): a background thread that copies each chunk
//! the writers retire, compresses it and appends it to a bounded directory beside the ring
//! (the format is `flightrec_format::history`'s), so that a recording reaches back minutes
//! where the ring holds a second.
//!
//! Writers never wait for it. It copies chunks as a dump does without the gate (the
//! seqlock check alone), so a chunk recycled before it got there is missing from the
//! history, and counted. It keeps to a CPU budget: looking for retired chunks, compressing
//! and writing one cost it the CPU time they took (its thread's clock), it earns a share of the CPU time the rest
//! of the process uses; once the budget is spent it compresses at a near-copy level, and
//! deeper in debt it leaves chunks out (counted, never waited for). Its memory is one
//! chunk, the columns of one, two compressors and five words and a flag per chunk of the
//! ring, whatever the disk does; a write that fails (a full disk) leaves its chunk out, and
//! the segment it was writing is closed where its last whole frame ends.
//!
//! A chunk left out is a hole in its thread's history, and a reader shows a thread from its
//! newest hole on (as it does for a ring): what lies before is counted as lost, not shown
//! out of sequence. A history that keeps up has no holes.
//!
//! **Architecture Invariant:** the history thread never blocks a writer and never grows
//! with what is written: a chunk it cannot keep up with is left out and counted in the
//! ring's header (`HISTORY_SKIPPED`), which every dump carries.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use flightrec_format::history::{self as format, encode_frame, Columns, SEGMENT_MAGIC};
use flightrec_format::layout::{header, state};

use crate::ring::protocol::ChunkPool;
use crate::ring::{clock, Ring};

/// The share of the process's CPU time the history may add: it earns this much of every
/// second the rest of the process runs, so at saturation it costs the service at most this
/// share more per request, and an idle process's history costs next to nothing.
pub(crate) const CPU_SHARE: f64 = 0.05;
/// How much the budget may save up: what lets a burst of retired chunks through after a
/// quiet spell (a few hundred chunks of 16 KiB at `LEVEL`). Saved and debt together are
/// what the history may run beyond its share at the start of a busy spell: 20 ms, under
/// half a percent of a 2-core process's first 4 s at full load.
const BUDGET_BURST: Duration = Duration::from_millis(10);
/// How often the history looks for retired chunks. A ring recycles its oldest chunk after
/// it has been written through once, far longer than this at any load it can keep up with.
const POLL: Duration = Duration::from_millis(10);
/// zstd's level for history frames while the budget lasts, on chunks laid out by columns:
/// a fast level, where the records of a service under load shrink about 3.5 times (level 1
/// gains a tenth more for a quarter more time, which at saturation the budget does not
/// cover, and a chunk out of budget shrinks not at all).
const LEVEL: i32 = -1;
/// zstd's level once the budget is spent, on chunks as they are: next to a copy (over
/// 4 GB/s, where `LEVEL` and the columns together do about 0.4), so that a history a
/// little short of CPU keeps every chunk, larger, rather than leave holes in it.
const FAST_LEVEL: i32 = -1000;
/// How far into debt the budget may go on `FAST_LEVEL` chunks before chunks are left out
/// (at a few microseconds a chunk, a thousand chunks or more).
const BUDGET_DEBT: Duration = Duration::from_millis(10);
/// The most history (uncompressed) a dump the process writes itself carries, the newest:
/// the dump is made in the process's memory, and a reader of it holds what a reader of a
/// 256 MiB ring holds. `flightrec collect` of a dead process's ring carries all of it.
pub(crate) const MAX_IN_DUMP: u64 = 256 << 20;
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
        let passes = Arc::new(AtomicU64::new(0));
        let passed = passes.clone();
        let mut archiver = Archiver::new(ring.clone(), dir, max_bytes)?;
        let thread = std::thread::Builder::new()
            .name("flightrec-history".into())
            .spawn(move || {
                crate::ring::lower_thread_priority();
                loop {
                    let last = stopping.load(Ordering::Acquire);
                    archiver.pass();
                    passed.fetch_add(1, Ordering::Release);
                    if last {
                        break;
                    }
                    std::thread::park_timeout(POLL);
                }
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
    /// Per chunk slot: the sequence number the latest claim of it looked at would give it
    /// (claim `c` gives `c + 1` when it succeeds).
    expected: Vec<u64>,
    /// The slots to look at again: claimed and not yet seen retired, or claimed by a claim
    /// whose chunk has not shown up there (a claim in flight, or one that failed). With
    /// `looking`, which marks them, so that a slot is listed once.
    pending: Vec<usize>,
    looking: Vec<bool>,
    /// The slots one look reads (kept to reuse its room).
    look: Vec<usize>,
    /// Claims below this one have been looked at (`header::CLAIM_CURSOR` then).
    claims_seen: u64,
    /// Closed segments, oldest first, with their sizes; then the open one.
    closed: VecDeque<(PathBuf, u64)>,
    open: Option<Segment>,
    budget: Budget,
    z: zstd::bulk::Compressor<'static>,
    z_fast: zstd::bulk::Compressor<'static>,
    buf: Vec<u8>,
    /// Where a chunk is laid out by columns before it is compressed.
    columns: Columns,
    archived: u64,
    skipped: u64,
    /// `header::RETIRED_CHUNKS` when the chunks were last looked at: a look while it has
    /// not moved has nothing to find, and costs one load instead of every chunk's header.
    retired_seen: Option<u64>,
    /// Looks that read the chunks' headers, and the headers they read.
    #[cfg(test)]
    scans: u64,
    #[cfg(test)]
    looked: u64,
}

struct Segment {
    file: std::fs::File,
    path: PathBuf,
    len: u64,
}

impl Archiver {
    fn new(ring: Arc<Ring>, dir: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        let n = ring.chunk_count() as usize;
        let compressor = |level| -> std::io::Result<zstd::bulk::Compressor<'static>> {
            let mut z = zstd::bulk::Compressor::new(level)?;
            z.include_checksum(true)?;
            Ok(z)
        };
        let (z, z_fast) = (compressor(LEVEL)?, compressor(FAST_LEVEL)?);
        Ok(Archiver {
            buf: vec![0u8; ring.geometry.chunk_size as usize],
            columns: Columns::default(),
            ring,
            dir,
            max_bytes,
            segment_bytes: (max_bytes / 8).max(64 << 10),
            handled: vec![0; n],
            seen: vec![0; n],
            expected: vec![0; n],
            pending: Vec::with_capacity(n),
            looking: vec![false; n],
            look: Vec::with_capacity(n),
            claims_seen: 0,
            closed: VecDeque::new(),
            open: None,
            budget: Budget::new(CPU_SHARE),
            z,
            z_fast,
            archived: 0,
            skipped: 0,
            retired_seen: None,
            #[cfg(test)]
            scans: 0,
            #[cfg(test)]
            looked: 0,
        })
    }

    /// One look at the ring: every chunk retired since the last look, oldest first, is
    /// written or left out; then the counts go into the ring's header. Nothing retired
    /// since the last look (an idle process): one load, nothing else.
    fn pass(&mut self) {
        // Acquire: every retire counted here is visible in the chunk states read below.
        let retired_now = self
            .ring
            .header_word(header::RETIRED_CHUNKS)
            .load(Ordering::Acquire);
        if self.retired_seen == Some(retired_now) {
            return;
        }
        self.retired_seen = Some(retired_now);
        #[cfg(test)]
        {
            self.scans += 1;
        }
        // The look is paid from the budget too. It reads only the slots claimed since the
        // last look and those still pending, not every chunk's header: on a busy ring of a
        // thousand chunks, reading them all cost about what laying out a chunk does.
        let scan_started = clock::thread_cpu_ns();
        let n = self.handled.len() as u64;
        let claims_now = self.ring.cursor().load(Ordering::Acquire);
        let mut look = std::mem::take(&mut self.look);
        look.clear();
        look.append(&mut self.pending);
        if claims_now.saturating_sub(self.claims_seen) >= n {
            look.clear();
            look.extend(0..n as usize);
            self.looking.fill(true);
            for i in 0..n {
                let c = claims_now - n + i;
                self.expected[(c % n) as usize] = c + 1;
            }
        } else {
            for c in self.claims_seen..claims_now {
                let i = (c % n) as usize;
                self.expected[i] = c + 1;
                if !std::mem::replace(&mut self.looking[i], true) {
                    look.push(i);
                }
            }
        }
        self.claims_seen = claims_now;
        #[cfg(test)]
        {
            self.looked += look.len() as u64;
        }
        let mut retired = Vec::new();
        for &i in &look {
            let word = self.ring.chunk(i as u64).state.load(Ordering::Acquire);
            let (seq, phase) = (state::seq(word), state::phase(word));
            // Looked at again until the chunk its latest claim gave it has retired.
            let again = phase != state::RETIRED || seq < self.expected[i];
            if again {
                self.pending.push(i);
            } else {
                self.looking[i] = false;
            }
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
        self.look = look;
        retired.sort_unstable();
        let scanned = clock::thread_cpu_ns();
        self.budget.earn(clock::process_cpu_ns(), scanned);
        self.budget.spend(scanned.saturating_sub(scan_started));
        for (seq, i) in retired {
            self.handled[i] = seq;
            let fast = match self.budget.allows() {
                Allowance::Full => false,
                Allowance::Fast => true,
                Allowance::None => {
                    self.skipped += 1;
                    continue;
                }
            };
            let started = clock::thread_cpu_ns();
            let kept = self.keep(i as u64, fast);
            self.budget
                .spend(clock::thread_cpu_ns().saturating_sub(started));
            match kept {
                true => self.archived += 1,
                false => self.skipped += 1,
            }
        }
        let word = |off| self.ring.header_word(off);
        word(header::HISTORY_ARCHIVED).store(self.archived, Ordering::Relaxed);
        word(header::HISTORY_SKIPPED).store(self.skipped, Ordering::Relaxed);
    }

    /// Copies, compresses (at `FAST_LEVEL` when `fast`) and appends chunk `index`; false
    /// when it was recycled under the copy or could not be written.
    fn keep(&mut self, index: u64, fast: bool) -> bool {
        let Ok(view) = self.ring.copy_chunk(index, &mut self.buf) else {
            return false;
        };
        view.write(&mut self.buf);
        let z = if fast { &mut self.z_fast } else { &mut self.z };
        // Out of budget, a chunk is not laid out by columns either: that costs about half
        // what compressing it at `LEVEL` does, and the near-copy level gains little by it.
        let Ok(frame) = encode_frame(&self.buf, z, &mut self.columns, !fast) else {
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

/// What the budget lets a chunk cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowance {
    /// Compressed at `LEVEL`.
    Full,
    /// Compressed at `FAST_LEVEL`: the budget is spent, not yet deep in debt.
    Fast,
    /// Left out.
    None,
}

/// CPU time the history may spend, in ns: `share` of the CPU time the rest of the process
/// used, saved up to `BUDGET_BURST`.
struct Budget {
    share: f64,
    /// Nanoseconds available; negative after a chunk that cost more than was saved.
    left: f64,
    /// The process's and the history thread's CPU clocks when last earned on (`None`
    /// before the first time).
    clocks: Option<(u64, u64)>,
}

impl Budget {
    fn new(share: f64) -> Budget {
        Budget {
            share,
            left: BUDGET_BURST.as_nanos() as f64,
            clocks: None,
        }
    }

    /// Earns the share of what the rest of the process ran since the last time, given
    /// the process's and this thread's CPU clocks now.
    fn earn(&mut self, process_ns: u64, own_ns: u64) {
        if let Some((process, own)) = self.clocks {
            let others = process_ns
                .saturating_sub(process)
                .saturating_sub(own_ns.saturating_sub(own));
            self.left =
                (self.left + others as f64 * self.share).min(BUDGET_BURST.as_nanos() as f64);
        }
        self.clocks = Some((process_ns, own_ns));
    }

    /// What a chunk may cost now.
    fn allows(&self) -> Allowance {
        if self.left > 0.0 {
            Allowance::Full
        } else if self.left > -(BUDGET_DEBT.as_nanos() as f64) {
            Allowance::Fast
        } else {
            Allowance::None
        }
    }

    fn spend(&mut self, ns: u64) {
        self.left -= ns as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::writer::ThreadWriter;
    use flightrec_format::layout::Geometry;
    use flightrec_format::record::{Encoder, RecordKind};
    use flightrec_format::Value;
    use std::path::Path;

    /// A heap ring of `chunks` chunks of 1 KiB.
    fn ring(chunks: u64) -> Arc<Ring> {
        let g = Geometry::for_capacity(4096 + (64 << 10) + chunks * 1024, Some(1024)).unwrap();
        Arc::new(Ring::heap(g))
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flightrec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Events numbered `seqs`, each written whole (a writer never waits for the history).
    fn write(w: &mut ThreadWriter, seqs: std::ops::Range<u64>) {
        for seq in seqs {
            assert!(w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::Event, 1, seq);
                e.id(0);
                e.field_u64(0, seq);
                e.finish()
            }));
        }
    }

    /// The event numbers of the ring read with its history in `dir`, in record order.
    fn read(ring: &Ring, dir: &Path) -> Vec<u64> {
        let (mut image, _) = crate::snapshot::consistent_copy(ring);
        format::extend_ring_file(&mut image, dir, u64::MAX);
        let rec = flightrec_format::decode(&image).unwrap();
        rec.records
            .iter()
            .map(|r| match r.fields.get(0).unwrap().value {
                Value::U64(v) => v,
                ref v => panic!("{v:?}"),
            })
            .collect()
    }

    /// A heap ring of 8 chunks, its history in a fresh directory named after `name`, and
    /// a writer.
    fn setup(name: &str) -> (Arc<Ring>, PathBuf, Archiver, ThreadWriter) {
        let ring = ring(8);
        let dir = temp_dir(name);
        let a = Archiver::new(ring.clone(), dir.clone(), 1 << 20).unwrap();
        let w = ThreadWriter::new(ring.clone(), 0, 1);
        (ring, dir, a, w)
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_history_that_keeps_up_holds_every_record_once_in_order() {
        let (ring, dir, mut a, mut w) = setup("history-keeps-up");
        for b in 0..50 {
            write(&mut w, b * 100..(b + 1) * 100);
            a.pass();
        }
        assert_eq!((a.skipped, a.archived > 40), (0, true), "{}", a.archived);
        assert_eq!(read(&ring, &dir), (0..5000).collect::<Vec<u64>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An idle process's history reads one word a look, not every chunk's header; the
    /// next retired chunk is looked at and written.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn looks_while_nothing_retires_read_no_chunk() {
        let (ring, dir, mut a, mut w) = setup("history-idle");
        write(&mut w, 0..300);
        a.pass();
        let (scans, archived) = (a.scans, a.archived);
        for _ in 0..10 {
            a.pass();
        }
        write(&mut w, 300..310);
        a.pass();
        assert_eq!((a.scans, a.archived), (scans, archived), "nothing retired");
        drop(w);
        a.pass();
        assert_eq!(a.scans, scans + 1);
        assert_eq!(a.archived, archived + 2, "the exiting thread's two chunks");
        assert_eq!(read(&ring, &dir), (0..310).collect::<Vec<u64>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A look reads the slots claimed since the last look and those still pending, not
    /// every chunk's header; through a ring written over three times it keeps every record.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_look_reads_only_the_slots_claimed_since_the_last_one() {
        let ring = ring(64);
        let dir = temp_dir("history-claimed");
        let mut a = Archiver::new(ring.clone(), dir.clone(), 16 << 20).unwrap();
        let mut w = ThreadWriter::new(ring.clone(), 0, 1);
        for b in 0..200 {
            write(&mut w, b * 100..(b + 1) * 100);
            a.pass();
        }
        assert_eq!(a.skipped, 0);
        assert!(a.archived > 150, "{}", a.archived);
        assert!(
            a.looked <= 4 * a.scans,
            "{} headers read in {} looks of a 64-chunk ring",
            a.looked,
            a.scans
        );
        assert_eq!(read(&ring, &dir), (0..20_000).collect::<Vec<u64>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A history held up (a slow disk) while the writer wraps the ring many times: the
    /// writer wrote every record without waiting, what was recycled before the history
    /// looked again is left out and counted, the history's memory is still one chunk, and
    /// the thread reads as a run from the hole to its newest record.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_history_held_up_leaves_out_what_was_recycled_and_counts_it() {
        let (ring, dir, mut a, mut w) = setup("history-held-up");
        write(&mut w, 0..300);
        a.pass();
        assert!(a.archived > 0);
        assert_eq!(a.skipped, 0);
        write(&mut w, 300..5000);
        a.pass();
        assert!(a.skipped > 0, "chunks recycled unseen are counted");
        assert_eq!(a.buf.len(), 1024);
        let got = read(&ring, &dir);
        assert_eq!(got.last(), Some(&4999));
        assert!(got.windows(2).all(|p| p[1] == p[0] + 1), "a run, no hole");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A history that spent more than it saved first compresses at the fast level, then,
    /// deeper in debt, leaves chunks out, until the rest of the process has run long
    /// enough for its share to pay the debt back; it never saves more than a burst.
    #[test]
    fn the_budget_is_a_share_of_what_the_rest_of_the_process_runs() {
        let ms = 1_000_000u64;
        let mut b = Budget::new(0.05);
        b.earn(1_000 * ms, 10 * ms);
        assert_eq!(b.allows(), Allowance::Full);
        b.spend(BUDGET_BURST.as_nanos() as u64 + 5 * ms);
        assert_eq!(b.allows(), Allowance::Fast);
        b.spend(BUDGET_DEBT.as_nanos() as u64);
        assert_eq!(
            b.allows(),
            Allowance::None,
            "5 ms deeper than the debt allowed"
        );
        // 100 ms of process time, all of it the history's own: nothing earned.
        b.earn(1_100 * ms, 110 * ms);
        assert_eq!(b.allows(), Allowance::None);
        // 80 ms of others' time earns 4 ms: still deeper than the debt allowed.
        b.earn(1_180 * ms, 110 * ms);
        assert_eq!(b.allows(), Allowance::None);
        b.earn(1_210 * ms, 110 * ms);
        assert_eq!(
            b.allows(),
            Allowance::Fast,
            "110 ms of others' time earned 5.5 ms"
        );
        // A long busy spell saves one burst, not more.
        b.earn(100_000 * ms, 110 * ms);
        assert_eq!(b.allows(), Allowance::Full);
        b.spend(BUDGET_BURST.as_nanos() as u64);
        assert_eq!(b.allows(), Allowance::Fast);
    }
}
