//! The stall watchdog: a thread that notices when threads stop making progress inside a
//! span, and writes one dump per stall episode naming each stalled thread, its open spans
//! and how long it has been stuck.
//!
//! It reads only the ring (lock-free: chunk states, committed lengths, seqlock copies) and
//! never calls tracing, so a deadlock inside the logging pipeline itself still gets its
//! dump. It cannot tell a deadlock from a long wait inside a span, and says so.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flightrec_format::layout::{state, CHUNK_HEADER_SIZE};
use flightrec_format::meta::{parse_meta, MetaEntry};
use flightrec_format::record::{parse_record, RecordKind};
use flightrec_format::TriggerReason;

use crate::ring::protocol::ChunkPool;
use crate::shared::Shared;

/// What the watchdog knows of one thread's current chunk.
struct Progress {
    seq: u64,
    committed: u32,
    since: Instant,
    reported: bool,
}

/// A thread found stuck inside spans, or waiting for a recorded lock.
struct Stalled {
    thread_index: u32,
    tid: u64,
    for_: Duration,
    /// Open spans' callsites, outermost first.
    spans: Vec<u32>,
    /// The recorded lock (its callsite) the thread began to wait for and has not got.
    waiting_for: Option<u32>,
    /// The recorded condvar or channel (its callsite) the thread waits on, not woken nor
    /// received yet: said, but not a stall by itself (an idle worker waits for work so).
    waiting_on: Option<u32>,
}

/// Names from the meta log: threads, callsites, and which callsites are recorded locks.
#[derive(Default)]
struct MetaNames {
    threads: HashMap<u32, String>,
    callsites: HashMap<u32, String>,
    locks: HashSet<u32>,
}

fn meta_names(shared: &Shared) -> MetaNames {
    let g = shared.ring.geometry;
    let mut image = vec![0u8; (g.meta_offset + g.meta_capacity) as usize];
    shared.ring.copy_header(&mut image);
    shared.ring.copy_meta(&mut image);
    let meta_len = flightrec_format::layout::get_u64(
        &image,
        flightrec_format::layout::header::META_COMMITTED_LEN,
    )
    .unwrap_or(0) as usize;
    let start = g.meta_offset as usize;
    let end = (start + meta_len).min(image.len());
    let (entries, _) = parse_meta(&image[start..end]);
    let mut names = MetaNames::default();
    for e in entries {
        match e {
            MetaEntry::Thread(t) => {
                names.threads.insert(t.index, t.name);
            }
            MetaEntry::Callsite(c) => {
                if flightrec_format::meta::lock::is(&c) {
                    names.locks.insert(c.id);
                }
                names.callsites.insert(c.id, c.name);
            }
            MetaEntry::Process(_) | MetaEntry::Message { .. } => {}
        }
    }
    names
}

pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the watchdog: a stall check every `threshold / 4`, and the stop mark
    /// forgotten once the process has carried on for `stop_grace` after it (see
    /// `forget_stop`).
    pub(crate) fn start(
        shared: Arc<Shared>,
        threshold: Duration,
        stop_grace: Duration,
    ) -> std::io::Result<Watchdog> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let tick = (threshold / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let thread = std::thread::Builder::new()
            .name("flightrec-watchdog".into())
            .spawn(move || {
                let mut seen: HashMap<u64, Progress> = HashMap::new();
                let mut buf = vec![0u8; shared.ring.geometry.chunk_size as usize];
                let mut stop_seen = None;
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::park_timeout(tick);
                    scan(&shared, threshold, &mut seen, &mut buf);
                    forget_stop(&shared, stop_grace, &mut stop_seen);
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

/// A stop signal the process is still running `grace` after was handled and the process
/// carried on (a SIGHUP that reloads, a SIGINT it ignores, a graceful stop that hangs): its
/// mark is cleared, so that a later death of this process is collected as one.
fn forget_stop(shared: &Shared, grace: Duration, seen: &mut Option<(u64, Instant)>) {
    let word = shared
        .ring
        .header_word(flightrec_format::layout::header::STOP_SIGNAL);
    let signal = word.load(Ordering::Acquire);
    match *seen {
        _ if signal == 0 => *seen = None,
        Some((s, since)) if s == signal => {
            if since.elapsed() >= grace
                && word
                    .compare_exchange(signal, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                *seen = None;
            }
        }
        _ => *seen = Some((signal, Instant::now())),
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
    let names = meta_names(shared);
    let mut stalled = Vec::new();
    let mut newly_stuck = false;
    for (&i, p) in seen.iter_mut() {
        let quiet = now.duration_since(p.since);
        if quiet < threshold / 2 {
            continue;
        }
        if let Some(s) = open_spans(shared, i, buf, &names.locks) {
            if !s.spans.is_empty() || s.waiting_for.is_some() {
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
    let message = describe(&names, &stalled);
    let t = super::trigger(TriggerReason::Stall, 0, stalled[0].tid, message);
    // With the stalled threads' native stacks: where each one is stuck.
    let tids: Vec<u64> = stalled.iter().map(|s| s.tid).collect();
    let _ = shared.dump_with_stacks(&t, &tids, flightrec_format::layout::stacks::REASON_STALL);
}

/// Copies chunk `i` and replays its context and enter/exit records to find the spans its
/// thread is inside, and its lock events to find a wait that has not ended.
fn open_spans(shared: &Shared, i: u64, buf: &mut [u8], locks: &HashSet<u32>) -> Option<Stalled> {
    use flightrec_format::meta::lock::{op, OP};
    use flightrec_format::Value;
    let view = shared.ring.copy_chunk(i, buf).ok()?;
    let payload = &buf[CHUNK_HEADER_SIZE..CHUNK_HEADER_SIZE + view.committed_len as usize];
    let mut stack: Vec<(u64, u32)> = Vec::new();
    let mut waiting_for = None;
    let mut waiting_on = None;
    let mut pos = 0;
    while pos < payload.len() {
        let Ok((r, n)) = parse_record(&payload[pos..], view.claim_ticks) else {
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
            RecordKind::Event if locks.contains(&r.callsite) => {
                let what = r.fields.iter().find(|f| f.index == OP).map(|f| &f.value);
                match what.map(|v| match v {
                    Value::U64(v) => flightrec_format::meta::lock::operation(*v),
                    _ => 0,
                }) {
                    Some(op::WAIT | op::WAIT_SHARED) => waiting_for = Some(r.callsite),
                    Some(op::ACQUIRED | op::ACQUIRED_SHARED) => waiting_for = None,
                    Some(op::COND_WAIT | op::RECV_WAIT) => waiting_on = Some(r.callsite),
                    Some(op::COND_WOKE | op::RECEIVED) => waiting_on = None,
                    _ => {}
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
        waiting_for,
        waiting_on,
    })
}

/// "2 threads stalled: a (tid 1) for 5.2s in order > lock, waiting for `cache`; ..." with
/// names from the meta log.
fn describe(names: &MetaNames, stalled: &[Stalled]) -> String {
    let parts: Vec<String> = stalled
        .iter()
        .map(|s| {
            let name = names
                .threads
                .get(&s.thread_index)
                .map_or("?", String::as_str);
            let path: Vec<&str> = s
                .spans
                .iter()
                .map(|c| names.callsites.get(c).map_or("?", String::as_str))
                .collect();
            let mut part = format!("{name} (tid {}) for {:.1}s", s.tid, s.for_.as_secs_f64());
            if !path.is_empty() {
                part.push_str(&format!(" in {}", path.join(" > ")));
            }
            if let Some(l) = s.waiting_for {
                let lock = names.callsites.get(&l).map_or("?", String::as_str);
                part.push_str(&format!(", waiting for `{lock}`"));
            } else if let Some(on) = s.waiting_on {
                let what = names.callsites.get(&on).map_or("?", String::as_str);
                part.push_str(&format!(", waiting on `{what}`"));
            }
            part
        })
        .collect();
    format!(
        "{} thread{} stalled: {} (no new records while inside a span or waiting for a lock: a \
         deadlock, or a long wait)",
        stalled.len(),
        if stalled.len() == 1 { "" } else { "s" },
        parts.join("; ")
    )
}
