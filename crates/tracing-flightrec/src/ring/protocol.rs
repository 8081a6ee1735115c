//! The lock-free chunk protocol, written over plain atomics so that it can be tested on the
//! heap and model-checked with loom; `Ring` applies it to the mapped file.
//!
//! A chunk moves through `FREE -> CLAIMING -> ACTIVE -> RETIRED -> CLAIMING -> ...`:
//!
//! * A writer *claims* a chunk by taking the next value `c` of the shared claim cursor and
//!   CAS-ing chunk `c % n` from `FREE`/`RETIRED` to `CLAIMING`. It gives up on that chunk if it
//!   is `ACTIVE` (the current chunk of a live thread: this is what keeps an idle or stuck
//!   thread's last records alive) or if it was claimed at a cursor value `>= c` (a later lap
//!   got there first; recycling it would evict newer data before older). The claimer fills in
//!   the chunk header and publishes `ACTIVE` with sequence number `c + 1`.
//! * The owner appends records and publishes each with a release store of `committed_len`.
//! * When its chunk is full the owner claims a new one first and only then *retires* the old
//!   one, so a thread always has its newest records protected.
//! * A reader copies a chunk seqlock-style: load the state, load `committed_len`, copy the
//!   bytes, fence, load the state again; if the sequence number changed the chunk was
//!   recycled under it and the copy is thrown away.
//! * A dumper that wants the whole ring as it was when asked closes the *copy gate* and
//!   copies oldest chunk first, which is also the order claimers recycle in. While the gate
//!   is closed a claimer does not take a `RETIRED` chunk the dumper has not copied yet
//!   (`seq >= gate`); it moves on, and if nothing is free it drops the record and counts it,
//!   as when every chunk is in use. After each chunk the dumper opens the gate up to it, so
//!   writers only wait for the copy of the chunk they would recycle, never block.

use super::sync::{fence, AtomicU32, AtomicU64, Ordering};
use flightrec_format::layout::state;

/// The header at the start of every chunk, viewed in place as atomics. Field order and
/// sizes match `flightrec_format::layout::chunk` (checked at compile time in `ring`).
#[repr(C)]
pub(crate) struct ChunkHeader {
    /// `state::pack(seq, phase)`. Only the owner moves `ACTIVE -> RETIRED`; only a CAS winner
    /// moves `FREE | RETIRED -> CLAIMING`; only that winner moves `CLAIMING -> ACTIVE`.
    pub state: AtomicU64,
    /// Payload bytes holding complete records. Written only by the owner, with release
    /// ordering after the bytes it covers; never decreases while the chunk is owned.
    pub committed_len: AtomicU32,
    /// The owning thread's index. Written only while `CLAIMING`.
    pub thread_index: AtomicU32,
    /// The owning thread's OS thread id. Written only while `CLAIMING`.
    pub os_tid: AtomicU64,
    /// Records the owner had attempted before this chunk. Written only while `CLAIMING`.
    pub thread_seq_start: AtomicU64,
    /// The owner's drop count; updated by the owner while it owns the chunk.
    pub dropped_total: AtomicU64,
    /// Clock anchor read when claimed. Written only while `CLAIMING`.
    pub claim_ticks: AtomicU64,
    pub claim_mono_ns: AtomicU64,
    /// The owner's drop count when it claimed the chunk. Written only while `CLAIMING`.
    pub dropped_before: AtomicU64,
}

impl ChunkHeader {
    #[cfg(loom)]
    pub(crate) fn new() -> ChunkHeader {
        ChunkHeader {
            state: AtomicU64::new(0),
            committed_len: AtomicU32::new(0),
            thread_index: AtomicU32::new(0),
            os_tid: AtomicU64::new(0),
            thread_seq_start: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            claim_ticks: AtomicU64::new(0),
            claim_mono_ns: AtomicU64::new(0),
            dropped_before: AtomicU64::new(0),
        }
    }
}

/// A pool of chunks and the claim cursor shared by all writers.
pub(crate) trait ChunkPool {
    fn chunk_count(&self) -> u64;
    fn chunk(&self, index: u64) -> &ChunkHeader;
    fn cursor(&self) -> &AtomicU64;
    /// The copy gate (`layout::header::COPY_GATE`): 0, or the lowest sequence number a
    /// copier has not copied yet.
    fn copy_gate(&self) -> &AtomicU64;
}

/// What a claimer writes into the header of the chunk it takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claimant {
    pub thread_index: u32,
    pub os_tid: u64,
    pub thread_seq_start: u64,
    pub dropped_before: u64,
    pub ticks: u64,
    pub mono_ns: u64,
}

/// A chunk a writer owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimed {
    pub index: u64,
    pub seq: u64,
}

/// Claims a chunk for `who`; `None` when every chunk tried was in use (the caller drops the
/// record and counts it). Tries at most `2 * chunk_count` cursor positions.
pub(crate) fn claim(pool: &impl ChunkPool, who: &Claimant) -> Option<Claimed> {
    let n = pool.chunk_count();
    for _ in 0..2 * n {
        let c = pool.cursor().fetch_add(1, Ordering::Relaxed);
        let index = c % n;
        let h = pool.chunk(index);
        let word = h.state.load(Ordering::Relaxed);
        let phase = state::phase(word);
        if phase == state::ACTIVE || phase == state::CLAIMING {
            continue;
        }
        if phase == state::RETIRED && state::seq(word) > c {
            // Claimed by a later lap while this claimer was delayed: newer data.
            continue;
        }
        // A cheap first look at the gate, to leave a protected chunk alone without a CAS.
        // It can be stale; the check after the CAS below is the one that counts.
        if phase == state::RETIRED && gated(pool.copy_gate().load(Ordering::Relaxed), word) {
            continue;
        }
        let seq = c + 1;
        if h.state
            .compare_exchange(
                word,
                state::pack(seq, state::CLAIMING),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        // The gate again, now that the chunk is ours, as a read-modify-write: it reads the
        // latest gate value, and the copier's closing CAS is ordered with it. Either this
        // RMW comes first, and then (release here, acquire in the close) our CAS above
        // happens before the copier lists the chunks, so it sees CLAIMING and does not list
        // this chunk; or the close comes first and this reads the closed gate. A protected
        // chunk is handed back untouched: nothing of it has been written yet, so a copier
        // that saw it RETIRED before and after copies it whole.
        if phase == state::RETIRED && gated(pool.copy_gate().fetch_add(0, Ordering::AcqRel), word) {
            h.state.store(word, Ordering::Release);
            continue;
        }
        // Seqlock write side: the CLAIMING store must be visible before any byte of the
        // chunk changes, so a reader that sees a new byte also sees the state change.
        fence(Ordering::Release);
        h.committed_len.store(0, Ordering::Relaxed);
        h.thread_index.store(who.thread_index, Ordering::Relaxed);
        h.os_tid.store(who.os_tid, Ordering::Relaxed);
        h.thread_seq_start
            .store(who.thread_seq_start, Ordering::Relaxed);
        h.dropped_total.store(who.dropped_before, Ordering::Relaxed);
        h.dropped_before
            .store(who.dropped_before, Ordering::Relaxed);
        h.claim_ticks.store(who.ticks, Ordering::Relaxed);
        h.claim_mono_ns.store(who.mono_ns, Ordering::Relaxed);
        h.state
            .store(state::pack(seq, state::ACTIVE), Ordering::Release);
        return Some(Claimed { index, seq });
    }
    None
}

/// Whether a closed gate (`gate`, as loaded) protects the `RETIRED` chunk whose state is
/// `word`: a copier holds the gate and has not copied that chunk yet.
fn gated(gate: u64, word: u64) -> bool {
    gate != 0 && state::seq(word) >= gate
}

/// The copy gate, closed: while it lives, claimers leave alone every `RETIRED` chunk whose
/// sequence number is at least the last `copied` one plus one. Dropping it opens the gate.
pub(crate) struct CopyGate<'a> {
    /// The pool's gate word; this value owns it (it was 0 when taken) until dropped.
    gate: &'a AtomicU64,
}

impl<'a> CopyGate<'a> {
    /// Closes the gate over every chunk; `None` when another copier holds it (that copy then
    /// proceeds without one and relies on the seqlock check alone).
    pub(crate) fn close(pool: &'a impl ChunkPool) -> Option<CopyGate<'a>> {
        let gate = pool.copy_gate();
        gate.compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        Some(CopyGate { gate })
    }

    /// Every chunk with a sequence number up to `seq` has been copied: claimers may take
    /// them again. Sequence numbers must be given in increasing order.
    pub(crate) fn copied(&self, seq: u64) {
        self.gate.store(seq + 1, Ordering::SeqCst);
    }
}

impl Drop for CopyGate<'_> {
    fn drop(&mut self) {
        self.gate.store(0, Ordering::SeqCst);
    }
}

/// Publishes `len` payload bytes of the owner's chunk: everything written before this call
/// becomes visible to a reader that loads `committed_len` with acquire ordering.
#[inline]
pub(crate) fn commit(h: &ChunkHeader, len: u32) {
    h.committed_len.store(len, Ordering::Release);
}

/// The owner gives up its chunk; from now on it may be recycled.
pub(crate) fn retire(h: &ChunkHeader, c: Claimed) {
    h.state
        .store(state::pack(c.seq, state::RETIRED), Ordering::Release);
}

/// A chunk header as a reader saw it: the format's one description of the header.
pub(crate) type ChunkView = flightrec_format::layout::ChunkFields;

/// Why a chunk was not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Never used, or being re-initialised: nothing to copy.
    Empty,
    /// Recycled while being copied: the copy is inconsistent and must be discarded.
    Recycled,
    /// A claimer holds the chunk right now (`CLAIMING`). Behind a closed copy gate this is
    /// a claimer about to hand a protected chunk back: read again.
    Busy,
}

/// Reads a chunk consistently: `copy(len)` must copy the first `len` payload bytes (and may
/// see them change under it); the result says whether that copy can be trusted.
pub(crate) fn read(h: &ChunkHeader, copy: impl FnOnce(usize)) -> Result<ChunkView, ReadOutcome> {
    let s1 = h.state.load(Ordering::Acquire);
    let phase = state::phase(s1);
    if phase == state::FREE {
        return Err(ReadOutcome::Empty);
    }
    if phase == state::CLAIMING {
        return Err(ReadOutcome::Busy);
    }
    let view = ChunkView {
        state: s1,
        committed_len: h.committed_len.load(Ordering::Acquire),
        thread_index: h.thread_index.load(Ordering::Relaxed),
        os_tid: h.os_tid.load(Ordering::Relaxed),
        thread_seq_start: h.thread_seq_start.load(Ordering::Relaxed),
        dropped_total: h.dropped_total.load(Ordering::Relaxed),
        claim_ticks: h.claim_ticks.load(Ordering::Relaxed),
        claim_mono_ns: h.claim_mono_ns.load(Ordering::Relaxed),
        dropped_before: h.dropped_before.load(Ordering::Relaxed),
    };
    copy(view.committed_len as usize);
    // Seqlock read side: if any byte copied above came from a recycler, the recycler's
    // release fence synchronises with this acquire fence and the load below sees its state.
    fence(Ordering::Acquire);
    let s2 = h.state.load(Ordering::Relaxed);
    if state::seq(s2) != state::seq(s1) || state::phase(s2) == state::CLAIMING {
        return Err(ReadOutcome::Recycled);
    }
    Ok(view)
}
