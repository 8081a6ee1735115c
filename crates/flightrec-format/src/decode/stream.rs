//! Streaming a scanned image's records: one cursor per thread over its chunks, merged in
//! time order (`Scan::records`).

use std::sync::Arc;

use crate::record::Fields;

use super::*;

impl<'a> Scan<'a> {
    /// Each thread's activity, chunk by chunk, oldest first: `(thread index, chunks)`.
    pub fn activity(&self) -> impl Iterator<Item = (u32, &[ChunkActivity])> {
        self.runs
            .iter()
            .zip(&self.activity)
            .map(|((index, _), a)| (*index, a.as_slice()))
    }

    /// The messages callsites keep in the meta log (`(callsite, text)`), which their
    /// events' records stand for with a mark (see `record::tag::MESSAGE`).
    pub fn kept_messages(&self) -> impl Iterator<Item = (u32, &str)> {
        self.messages.iter().map(|(&c, t)| (c, &**t))
    }

    /// The records in global time order (ties broken by thread index, then by the order
    /// the thread wrote them), without context records. Each call starts from the
    /// beginning.
    pub fn records(&self) -> RecordStream<'a> {
        let mut cursors: Vec<ThreadCursor<'a>> = self
            .runs
            .iter()
            .map(|(index, chunks)| ThreadCursor {
                image: self.image,
                time: self.time,
                messages: self.messages.clone(),
                thread: *index,
                chunks: chunks.clone(),
                chunk: 0,
                pos: 0,
                base_ticks: 0,
                stack: Vec::new(),
                shared: vec![SpanStack::default()],
                last_ts: i64::MIN,
            })
            .collect();
        let mut pending = Vec::with_capacity(cursors.len());
        let mut heap = std::collections::BinaryHeap::new();
        for (slot, c) in cursors.iter_mut().enumerate() {
            let next = c.next();
            if let Some(r) = &next {
                heap.push(std::cmp::Reverse((r.ts, r.thread, slot)));
            }
            pending.push(next);
        }
        RecordStream {
            cursors,
            pending,
            heap,
        }
    }
}

/// Records in global time order: a merge of per-thread cursors. See `Scan::records`.
pub struct RecordStream<'a> {
    cursors: Vec<ThreadCursor<'a>>,
    /// Each cursor's next record, waiting its turn.
    pending: Vec<Option<Record>>,
    /// (time, thread index, cursor slot) of every pending record.
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u32, usize)>>,
}

impl Iterator for RecordStream<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let std::cmp::Reverse((_, _, slot)) = self.heap.pop()?;
        let next = self.cursors[slot].next();
        if let Some(r) = &next {
            self.heap.push(std::cmp::Reverse((r.ts, r.thread, slot)));
        }
        std::mem::replace(&mut self.pending[slot], next)
    }
}

/// Walks one thread's kept chunks, resolving times, parents and span stacks.
struct ThreadCursor<'a> {
    image: &'a [u8],
    time: TimeBase,
    messages: Arc<HashMap<u32, Box<str>>>,
    thread: u32,
    chunks: Vec<std::ops::Range<usize>>,
    chunk: usize,
    pos: usize,
    /// The current chunk's claim time, what its records' times are stored against: read
    /// from its header when the cursor enters it.
    base_ticks: u64,
    /// Spans entered on the thread, outermost first.
    stack: Vec<u64>,
    /// `shared[d]` is `stack[..d]` as shared by the records written under it: leaving a
    /// span goes back to its parent's, so a thread in and out of requests makes one
    /// stack a request, not two (a recording keeps millions of records).
    shared: Vec<SpanStack>,
    /// Times never step back within a thread, even if the clock did.
    last_ts: i64,
}

impl Iterator for ThreadCursor<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            let range = self.chunks.get(self.chunk)?.clone();
            if self.pos == 0 {
                // The chunk's header sits just before its payload, in a dense image as in a
                // sparse one; the scan read it already.
                self.base_ticks = range
                    .start
                    .checked_sub(CHUNK_HEADER_SIZE)
                    .and_then(|h| {
                        crate::layout::get_u64(self.image, h + crate::layout::chunk::CLAIM_TICKS)
                    })
                    .unwrap_or(0);
            }
            let payload = &self.image[range];
            if self.pos >= payload.len() {
                self.chunk += 1;
                self.pos = 0;
                continue;
            }
            // The scan parsed these bytes already: a failure here cannot happen, but ends
            // the chunk rather than trusting that.
            let bytes = &payload[self.pos..];
            let Ok((r, n)) = parse_record_head(bytes, self.base_ticks) else {
                self.pos = payload.len();
                continue;
            };
            self.pos += n;
            if r.kind == RecordKind::Context {
                // Usually the stack the thread's previous chunk ended with: kept as it is.
                if !r
                    .context
                    .iter()
                    .map(|&(s, _)| s)
                    .eq(self.stack.iter().copied())
                {
                    self.stack.clear();
                    self.stack.extend(r.context.iter().map(|&(s, _)| s));
                    self.share_from(0);
                }
                continue;
            }
            let ts = self.time.to_unix_ns(r.ticks).max(self.last_ts);
            self.last_ts = ts;
            let current = self.stack.last().copied().and_then(NonZeroU64::new);
            let resolve = |p: u64| match p {
                PARENT_CONTEXTUAL => current,
                PARENT_ROOT => None,
                id => NonZeroU64::new(id),
            };
            let link = match r.kind {
                RecordKind::Event | RecordKind::SpanNew => resolve(r.other),
                RecordKind::FollowsFrom => NonZeroU64::new(r.other),
                _ => None,
            };
            // The callsite's message, as if stored whole. Missing only from a damaged meta
            // log: an empty text, marked cut short.
            let message = r
                .message
                .map(|_| self.messages.get(&r.callsite).map(|t| &**t));
            let fields = Fields::from_ring(&bytes[r.fields_at.min(n)..n], message);
            if r.kind == RecordKind::Enter {
                self.stack.push(r.span);
                self.share_from(self.stack.len() - 1);
            }
            let record = Record {
                ts,
                thread: self.thread,
                kind: r.kind,
                callsite: r.callsite,
                span: r.span,
                link,
                fields,
                truncated: r.flags & FLAG_TRUNCATED != 0,
                spans: self.shared[self.stack.len()].clone(),
            };
            if r.kind == RecordKind::Exit {
                if let Some(pos) = self.stack.iter().rposition(|&s| s == r.span) {
                    self.stack.remove(pos);
                    self.share_from(pos);
                }
            }
            return Some(record);
        }
    }
}

impl ThreadCursor<'_> {
    /// Makes `shared` match `stack` again after the stack changed from depth `d` on: the
    /// shallower stacks are kept.
    fn share_from(&mut self, d: usize) {
        self.shared.truncate(d + 1);
        for depth in d + 1..=self.stack.len() {
            self.shared.push(SpanStack::from(&self.stack[..depth]));
        }
    }
}
