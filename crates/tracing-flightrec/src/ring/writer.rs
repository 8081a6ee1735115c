//! A thread's writer: the chunk it owns and where it is in it. The steady-state path (a
//! record that fits in the current chunk) is: encode into the chunk's tail, one release
//! store of `committed_len`. No lock, no syscall, no allocation, no shared cache line.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use flightrec_format::layout::{header, SPAN_ID_BLOCK};
use flightrec_format::meta::{MetaBuilder, ThreadEntry};
use flightrec_format::record::{Encoder, RecordKind, Tail};

use super::protocol::{self, ChunkPool, Claimant, Claimed};
use super::{clock, Ring};

/// Deepest span stack kept per thread; deeper spans are recorded but not repeated in the
/// context record at the start of each chunk.
pub(crate) const MAX_STACK: usize = 32;

/// After a failed claim (every chunk in use), records are dropped without trying again
/// for this many records, so a saturated pool does not cost every writer a full scan.
const CLAIM_BACKOFF: u32 = 64;

/// Per-thread writer state. Lives in a thread-local; dropped (and its chunk retired) when
/// the thread exits.
pub(crate) struct ThreadWriter {
    pub(crate) ring: Arc<Ring>,
    thread_index: u32,
    os_tid: u64,
    /// The chunk this thread writes into, if any.
    chunk: Option<Claimed>,
    /// The chunk it filled before `chunk`, still held (`ACTIVE`): a thread that has just
    /// moved to a fresh chunk has its last records here, and a busy thread must not recycle
    /// them. Retired when the thread claims the chunk after `chunk`.
    previous: Option<Claimed>,
    /// Payload bytes written (and committed) in `chunk`.
    written: usize,
    /// `chunk`'s claim time, as its header holds it: what its records' times are stored
    /// against.
    base_ticks: u64,
    /// Records this thread has attempted, written or dropped.
    attempted: u64,
    /// Records this thread could not write.
    dropped: u64,
    backoff: u32,
    /// Span ids handed out to this thread: `next..end`.
    next_span: u64,
    end_span: u64,
    /// Entered spans, outermost first; `depth` may exceed MAX_STACK.
    stack: [EnteredSpan; MAX_STACK],
    depth: usize,
}

/// A span this thread is inside.
#[derive(Clone, Copy, Default)]
pub(crate) struct EnteredSpan {
    /// Our span id.
    pub(crate) span: u64,
    pub(crate) callsite: u32,
    /// Who entered it: the tracing `Id` and the span table it came from (see
    /// `EnteredBy`), so that exiting it finds it here without a table lookup. Zero for
    /// spans entered otherwise (tokio's task polls).
    pub(crate) by: EnteredBy,
}

/// A tracing span `Id` with the span table (one per subscriber) that numbered it: ids are
/// only unique within one subscriber.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EnteredBy {
    pub(crate) key: u64,
    pub(crate) table: usize,
}

impl ThreadWriter {
    pub(crate) fn new(ring: Arc<Ring>, thread_index: u32, os_tid: u64) -> ThreadWriter {
        ThreadWriter {
            ring,
            thread_index,
            os_tid,
            chunk: None,
            previous: None,
            written: 0,
            base_ticks: 0,
            attempted: 0,
            dropped: 0,
            backoff: 0,
            next_span: 0,
            end_span: 0,
            stack: [EnteredSpan::default(); MAX_STACK],
            depth: 0,
        }
    }

    /// Writes one record. `encode(tail)` encodes it at the start of the tail and returns
    /// its length, or `None` if it does not fit. It may be called twice: once for the
    /// current chunk and, if that is full, once for a fresh one (then with
    /// `truncate_to_fit`, since no other chunk could hold more).
    #[inline]
    pub(crate) fn write(&mut self, mut encode: impl FnMut(Tail<'_>) -> Option<usize>) -> bool {
        self.attempted += 1;
        if let Some(c) = self.chunk {
            // SAFETY: this thread owns chunk `c` (claimed, not retired), `written` is its
            // committed length, and no other slice of the chunk is alive.
            let buf = unsafe { self.ring.payload_tail(c.index, self.written) };
            let tail = Tail {
                buf,
                base_ticks: self.base_ticks,
                truncate_to_fit: false,
            };
            if let Some(n) = encode(tail) {
                self.written += n;
                protocol::commit(self.ring.chunk(c.index), self.written as u32);
                return true;
            }
        }
        self.write_slow(encode)
    }

    #[cold]
    fn write_slow(&mut self, mut encode: impl FnMut(Tail<'_>) -> Option<usize>) -> bool {
        // `attempted` already counts this record; a fresh chunk starts with it, after any
        // records lost to re-entrant calls.
        self.fold_reentered();
        if !self.refill(self.attempted - 1) {
            return self.drop_one();
        }
        let c = self.chunk.expect("refill succeeded");
        // SAFETY: as in `write`: we own the freshly claimed chunk and hold no other slice.
        let buf = unsafe { self.ring.payload_tail(c.index, self.written) };
        let tail = Tail {
            buf,
            base_ticks: self.base_ticks,
            truncate_to_fit: true,
        };
        match encode(tail) {
            Some(n) => {
                self.written += n;
                protocol::commit(self.ring.chunk(c.index), self.written as u32);
                true
            }
            None => self.drop_one(),
        }
    }

    fn drop_one(&mut self) -> bool {
        self.dropped += 1;
        if let Some(c) = self.chunk {
            self.ring
                .chunk(c.index)
                .dropped_total
                .store(self.dropped, Ordering::Release);
        }
        false
    }

    /// Folds in records lost before reaching this writer (re-entrant calls), counted in a
    /// thread-local by the layer. Done when claiming a chunk, off the steady-state path.
    fn fold_reentered(&mut self) {
        let lost = REENTERED.try_with(|c| c.replace(0)).unwrap_or(0);
        self.attempted += lost;
        self.dropped += lost;
    }

    /// Claims a fresh chunk (then retires the one before the current one) and writes the
    /// context record.
    fn refill(&mut self, seq_start: u64) -> bool {
        if self.backoff > 0 {
            self.backoff -= 1;
            return false;
        }
        let who = Claimant {
            thread_index: self.thread_index,
            os_tid: self.os_tid,
            thread_seq_start: seq_start,
            dropped_before: self.dropped,
            ticks: clock::ticks(),
            mono_ns: clock::mono_ns(),
        };
        let Some(new) = protocol::claim(&*self.ring, &who) else {
            self.backoff = CLAIM_BACKOFF;
            return false;
        };
        if let Some(old) = self.previous.take() {
            protocol::retire(self.ring.chunk(old.index), old);
            self.ring.count_retired(1);
        }
        self.previous = self.chunk.replace(new);
        self.written = 0;
        self.base_ticks = who.ticks;
        // The context record: which spans this thread is inside, so the chunk reads on its
        // own even after the thread's older chunks are overwritten.
        let kept = self.depth.min(MAX_STACK);
        let stack = self.stack;
        // SAFETY: we own the chunk just claimed and hold no other slice of it.
        let buf = unsafe { self.ring.payload_tail(new.index, 0) };
        let tail = Tail {
            buf,
            base_ticks: who.ticks,
            truncate_to_fit: false,
        };
        let mut e = Encoder::new(tail, RecordKind::Context, 0, who.ticks);
        e.varint(kept as u64);
        for entered in &stack[..kept] {
            e.id(entered.span);
            e.varint(u64::from(entered.callsite));
        }
        if let Some(n) = e.finish() {
            self.written = n;
            protocol::commit(self.ring.chunk(new.index), n as u32);
        }
        true
    }

    /// A span id unique within the ring, from this thread's block.
    pub(crate) fn next_span_id(&mut self) -> u64 {
        if self.next_span == self.end_span {
            let block = self
                .ring
                .header_word(header::NEXT_SPAN_BLOCK)
                .fetch_add(1, Ordering::Relaxed);
            self.next_span = block * SPAN_ID_BLOCK;
            self.end_span = self.next_span + SPAN_ID_BLOCK;
        }
        let id = self.next_span;
        self.next_span += 1;
        id
    }

    pub(crate) fn push_span(&mut self, span: u64, callsite: u32, by: EnteredBy) {
        if self.depth < MAX_STACK {
            self.stack[self.depth] = EnteredSpan { span, callsite, by };
        }
        self.depth += 1;
    }

    /// The innermost span this thread is inside, if `by` entered it: the span an exit
    /// usually leaves, known without a lookup.
    #[inline]
    pub(crate) fn innermost_entered_by(&self, by: EnteredBy) -> Option<EnteredSpan> {
        let top = self.stack.get(self.depth.checked_sub(1)?)?;
        (top.by == by).then_some(*top)
    }

    pub(crate) fn pop_span(&mut self, span: u64) {
        let kept = self.depth.min(MAX_STACK);
        if self.depth > MAX_STACK {
            self.depth -= 1;
            return;
        }
        // Usually the top (a plain pop, no search or move); spans exited out of order are
        // removed where they are.
        if kept > 0 && self.stack[kept - 1].span == span {
            self.depth -= 1;
            return;
        }
        if let Some(pos) = self.stack[..kept].iter().rposition(|e| e.span == span) {
            self.stack.copy_within(pos + 1..kept, pos);
            self.depth -= 1;
        }
    }

    /// Whether `span` is entered on this thread (among the spans the context keeps).
    #[cfg_attr(not(all(feature = "tokio", tokio_unstable)), allow(dead_code))]
    pub(crate) fn is_entered(&self, span: u64) -> bool {
        self.stack[..self.depth.min(MAX_STACK)]
            .iter()
            .any(|e| e.span == span)
    }

    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for ThreadWriter {
    fn drop(&mut self) {
        // Oldest first, the order claimers should recycle them in.
        for c in [self.previous.take(), self.chunk.take()]
            .into_iter()
            .flatten()
        {
            protocol::retire(self.ring.chunk(c.index), c);
            self.ring.count_retired(1);
        }
    }
}

// The per-thread writer registry: each thread's `ThreadWriter`, made when the thread first
// records (tracing-subscriber keeps its per-thread span stack beside the registry that owns
// it; ours sits beside the writer it hands out).

thread_local! {
    static WRITER: RefCell<Option<ThreadWriter>> = const { RefCell::new(None) };
    /// Records lost because the layer was re-entered on this thread (a `Debug` impl that
    /// logs, say); folded into the writer's drop count when it next claims a chunk.
    pub(crate) static REENTERED: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` with this thread's writer for `ring`, registering the thread first if needed.
/// `None` when the thread-local is gone (thread teardown) or re-entered.
#[inline]
pub(crate) fn with_writer<R>(
    ring: &Arc<Ring>,
    f: impl FnOnce(&mut ThreadWriter) -> R,
) -> Option<R> {
    WRITER
        .try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                let _ = REENTERED.try_with(|c| c.set(c.get() + 1));
                return None;
            };
            let current = matches!(&*slot, Some(w) if Arc::ptr_eq(&w.ring, ring));
            if !current {
                // Dropping a writer for another ring retires its chunk there.
                *slot = Some(register_thread(ring));
            }
            Some(f(slot.as_mut()?))
        })
        .ok()
        .flatten()
}

/// Runs `f` with this thread's writer, whichever ring it writes into; a thread with none is
/// registered with the ring `ring_for_new` names, and writes nothing when it names none.
/// `None` then, or as in `with_writer`.
#[inline]
pub(crate) fn with_current_writer<R>(
    ring_for_new: impl FnOnce() -> Option<Arc<Ring>>,
    f: impl FnOnce(&mut ThreadWriter) -> R,
) -> Option<R> {
    WRITER
        .try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                let _ = REENTERED.try_with(|c| c.set(c.get() + 1));
                return None;
            };
            if slot.is_none() {
                *slot = Some(register_thread(&ring_for_new()?));
            }
            Some(f(slot.as_mut()?))
        })
        .ok()
        .flatten()
}

#[cold]
fn register_thread(ring: &Arc<Ring>) -> ThreadWriter {
    let index = ring
        .header_word(header::NEXT_THREAD_INDEX)
        .fetch_add(1, Ordering::Relaxed) as u32;
    let tid = os_tid();
    let name = match std::thread::current().name() {
        Some(n) => n.to_string(),
        None => format!("thread-{tid}"),
    };
    let mut m = MetaBuilder::default();
    m.thread(&ThreadEntry { index, tid, name });
    ring.append_meta(&m.bytes);
    ThreadWriter::new(ring.clone(), index, tid)
}

/// The kernel's id for the calling thread (what `top -H` and gdb show).
pub(crate) fn os_tid() -> u64 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}
