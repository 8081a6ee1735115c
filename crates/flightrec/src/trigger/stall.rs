//! The stall watchdog: a thread that notices when threads stop making progress inside a
//! span, and writes one dump per stall episode naming each stalled thread, its open spans
//! and how long it has been stuck.
//!
//! It reads only the ring (lock-free: chunk states, committed lengths, seqlock copies) and
//! never calls tracing, so a deadlock inside the logging pipeline itself still gets its
//! dump. It cannot tell a deadlock from a long wait inside a span, and says so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flightrec_format::layout::{state, CHUNK_HEADER_SIZE};
use flightrec_format::meta::{parse_meta, MetaEntry};
use flightrec_format::record::{parse_record, RecordKind};
use flightrec_format::TriggerReason;

use crate::layer::Shared;
use crate::ring::protocol::ChunkPool;

/// What the watchdog knows of one thread's current chunk.
struct Progress {
    seq: u64,
    committed: u32,
    since: Instant,
    reported: bool,
}

/// A thread found stuck inside spans.
struct Stalled {
    thread_index: u32,
    tid: u64,
    for_: Duration,
    /// Open spans' callsites, outermost first.
    spans: Vec<u32>,
}

pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn start(shared: Arc<Shared>, threshold: Duration) -> std::io::Result<Watchdog> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let tick = (threshold / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let thread = std::thread::Builder::new()
            .name("flightrec-watchdog".into())
            .spawn(move || {
                let mut seen: HashMap<u64, Progress> = HashMap::new();
                let mut buf = vec![0u8; shared.ring.geometry.chunk_size as usize];
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::park_timeout(tick);
                    scan(&shared, threshold, &mut seen, &mut buf);
                }
            })?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn scan(shared: &Shared, threshold: Duration, seen: &mut HashMap<u64, Progress>, buf: &mut [u8]) {
    let ring = &shared.ring;
    let now = Instant::now();
    // A thread holds two ACTIVE chunks (see `ThreadWriter::previous`); only the newer one
    // moves. Threads are told apart by the index in the chunk header.
    let mut newest: HashMap<u32, (u64, u64)> = HashMap::new();
    for i in 0..ring.chunk_count() {
        let h = ring.chunk(i);
        let word = h.state.load(Ordering::Acquire);
        if state::phase(word) == state::ACTIVE {
            let t = h.thread_index.load(Ordering::Relaxed);
            let e = newest.entry(t).or_insert((state::seq(word), i));
            if state::seq(word) > e.0 {
                *e = (state::seq(word), i);
            }
        }
    }
    for i in 0..ring.chunk_count() {
        let h = ring.chunk(i);
        let word = h.state.load(Ordering::Acquire);
        let t = h.thread_index.load(Ordering::Relaxed);
        if state::phase(word) != state::ACTIVE || newest.get(&t).map(|e| e.1) != Some(i) {
            seen.remove(&i);
            continue;
        }
        let committed = h.committed_len.load(Ordering::Acquire);
        let p = seen.entry(i).or_insert(Progress {
            seq: state::seq(word),
            committed,
            since: now,
            reported: false,
        });
        if p.seq != state::seq(word) || p.committed != committed {
            *p = Progress {
                seq: state::seq(word),
                committed,
                since: now,
                reported: false,
            };
        }
    }
    // An episode starts when a thread has been quiet for the threshold; threads quiet for
    // half of it are named too, so the two sides of a deadlock land in one dump.
    if !seen
        .values()
        .any(|p| !p.reported && now.duration_since(p.since) >= threshold)
    {
        return;
    }
    // Every quiet thread looked at is marked; a dump is written only when a thread inside a
    // span is newly stuck, so an episode (or an idle thread) gives one dump, not one a tick.
    let mut stalled = Vec::new();
    let mut newly_stuck = false;
    for (&i, p) in seen.iter_mut() {
        let quiet = now.duration_since(p.since);
        if quiet < threshold / 2 {
            continue;
        }
        if let Some(s) = open_spans(shared, i, buf) {
            if !s.spans.is_empty() {
                newly_stuck |= !p.reported;
                stalled.push(Stalled { for_: quiet, ..s });
            }
        }
        p.reported = true;
    }
    if !newly_stuck {
        return;
    }
    stalled.sort_by_key(|s| std::cmp::Reverse(s.for_));
    let message = describe(shared, &stalled);
    let t = super::trigger(TriggerReason::Stall, 0, stalled[0].tid, message);
    let _ = shared.dump(&t);
}

/// Copies chunk `i` and replays its context and enter/exit records to find the spans its
/// thread is inside.
fn open_spans(shared: &Shared, i: u64, buf: &mut [u8]) -> Option<Stalled> {
    let view = shared.ring.copy_chunk(i, buf).ok()?;
    let payload = &buf[CHUNK_HEADER_SIZE..CHUNK_HEADER_SIZE + view.committed_len as usize];
    let mut stack: Vec<(u64, u32)> = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        let Ok((r, n)) = parse_record(&payload[pos..]) else {
            break;
        };
        match r.kind {
            RecordKind::Context => stack = r.context,
            RecordKind::Enter => stack.push((r.span, r.callsite)),
            RecordKind::Exit => {
                if let Some(at) = stack.iter().rposition(|&(s, _)| s == r.span) {
                    stack.remove(at);
                }
            }
            _ => {}
        }
        pos += n;
    }
    Some(Stalled {
        thread_index: view.thread_index,
        tid: view.os_tid,
        for_: Duration::ZERO,
        spans: stack.into_iter().map(|(_, c)| c).collect(),
    })
}

/// "2 threads stalled: a (tid 1) for 5.2s in order > lock; ..." with names from the meta log.
fn describe(shared: &Shared, stalled: &[Stalled]) -> String {
    let g = shared.ring.geometry;
    let mut image = vec![0u8; (g.meta_offset + g.meta_capacity) as usize];
    shared.ring.copy_header_and_meta(&mut image);
    let meta_len = flightrec_format::layout::get_u64(
        &image,
        flightrec_format::layout::header::META_COMMITTED_LEN,
    )
    .unwrap_or(0) as usize;
    let start = g.meta_offset as usize;
    let (entries, _) = parse_meta(&image[start..start + meta_len]);
    let mut threads = HashMap::new();
    let mut spans = HashMap::new();
    for e in entries {
        match e {
            MetaEntry::Thread(t) => {
                threads.insert(t.index, t.name);
            }
            MetaEntry::Callsite(c) => {
                spans.insert(c.id, c.name);
            }
            MetaEntry::Process(_) => {}
        }
    }
    let parts: Vec<String> = stalled
        .iter()
        .map(|s| {
            let name = threads.get(&s.thread_index).map_or("?", String::as_str);
            let path: Vec<&str> = s
                .spans
                .iter()
                .map(|c| spans.get(c).map_or("?", String::as_str))
                .collect();
            format!(
                "{name} (tid {}) for {:.1}s in {}",
                s.tid,
                s.for_.as_secs_f64(),
                path.join(" > ")
            )
        })
        .collect();
    format!(
        "{} thread{} stalled: {} (no new records while inside a span: a deadlock, or a long wait)",
        stalled.len(),
        if stalled.len() == 1 { "" } else { "s" },
        parts.join("; ")
    )
}
