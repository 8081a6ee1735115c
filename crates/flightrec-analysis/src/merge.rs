//! Several recordings as one: their records in one time order, each named by its process.
//!
//! Recordings from different processes (or hosts) are aligned on wall-clock time: every
//! record's `ts` is already ns since the Unix epoch, from each recording's own clock anchors.
//! Between hosts, that alignment is only as good as the hosts' clock sync.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;

use flightrec_format::{Record, Recording};

/// Merges per-recording record streams (each in time order) into one, by time (ties by
/// recording, then stream order). Yields `(recording index, record)`. Memory: one record
/// per stream.
pub fn merge_by_time<I>(streams: Vec<I>) -> impl Iterator<Item = (usize, Record)>
where
    I: Iterator<Item = Record>,
{
    let mut streams = streams;
    let mut heads: Vec<Option<Record>> = streams.iter_mut().map(|s| s.next()).collect();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|r| Reverse((r.ts, i))))
        .collect();
    std::iter::from_fn(move || {
        let Reverse((_, i)) = heap.pop()?;
        let r = heads[i].take()?;
        heads[i] = streams[i].next();
        if let Some(n) = &heads[i] {
            heap.push(Reverse((n.ts, i)));
        }
        Some((i, r))
    })
}

/// How a recording's process is named among several: `service[pid]`, with the host when
/// the recordings come from more than one.
pub fn process_label(rec: &Recording, with_host: bool) -> String {
    let p = &rec.process;
    if with_host {
        format!("{}[{}]@{}", p.service, p.pid, p.host)
    } else {
        format!("{}[{}]", p.service, p.pid)
    }
}

/// Whether the recordings come from more than one host (their alignment is then only as
/// good as the hosts' clock sync).
pub fn several_hosts(recs: &[&Recording]) -> bool {
    recs.windows(2)
        .any(|w| w[0].process.host != w[1].process.host)
}

/// One of the processes in a merged recording.
#[derive(Debug, Clone)]
pub struct MergedProcess {
    pub label: String,
    pub process: flightrec_format::ProcessInfo,
    pub trigger: flightrec_format::Trigger,
    /// Its threads' indexes in the merged recording are `thread_base + index`.
    pub thread_base: u32,
    /// What its timestamps came from (`Recording::clock`).
    pub clock: &'static str,
    /// How far it was moved on the common timeline (ns, later when positive): an offset the
    /// user measured between two hosts' clocks.
    pub shift_ns: i64,
}

/// Where recording `k`'s ids go in a merged recording: threads, callsites and spans each get
/// a range of their own, so nothing from two recordings is confused.
fn thread_of(k: usize, index: u32) -> u32 {
    ((k as u32) << 20) | (index & 0xF_FFFF)
}

/// A merged thread index's index in its own recording (the inverse of the renaming's
/// thread part; see `rename_into`).
pub fn local_thread(index: u32) -> u32 {
    index & 0xF_FFFF
}

/// Which recording a merged thread index came from (its `k` in `rename_into`).
pub fn recording_of_thread(index: u32) -> usize {
    (index >> 20) as usize
}

fn callsite_of(k: usize, id: u32) -> u32 {
    ((k as u32) << 24) | (id & 0xFF_FFFF)
}

fn span_of(k: usize, span: u64) -> u64 {
    if span == 0 {
        0
    } else {
        ((k as u64) << 56) | (span & ((1 << 56) - 1))
    }
}

/// The processes of recordings about to be merged, in order: their labels, thread ranges,
/// clocks and shifts (`shifts[k]` for recording `k`, 0 where missing). The recordings are
/// not changed: `shift` and `rename_into` each of them next (they may be done side by
/// side), then `combine` them.
pub fn processes(recs: &[Recording], shifts: &[i64]) -> Vec<MergedProcess> {
    let borrowed: Vec<&Recording> = recs.iter().collect();
    let with_host = several_hosts(&borrowed);
    recs.iter()
        .enumerate()
        .map(|(k, rec)| MergedProcess {
            label: process_label(rec, with_host),
            process: rec.process.clone(),
            trigger: rec.trigger.clone(),
            thread_base: thread_of(k, 0),
            clock: rec.clock,
            shift_ns: shifts.get(k).copied().unwrap_or(0),
        })
        .collect()
}

/// Moves recording `k` into its own range of merged ids, in place: threads, callsites and
/// spans renumbered, its threads named after its process (`label`). A renamed recording is
/// still a whole recording: it can be read alone, or `combine`d with the others.
pub fn rename_into(k: usize, rec: &mut Recording, label: &str) {
    rec.callsites = std::mem::take(&mut rec.callsites)
        .into_iter()
        .map(|(id, mut c)| {
            c.id = callsite_of(k, id);
            (c.id, c)
        })
        .collect();
    for t in &mut rec.threads {
        t.index = thread_of(k, t.index);
        t.name = format!("{label} {}", t.name);
    }
    rec.span_callsites = std::mem::take(&mut rec.span_callsites)
        .into_iter()
        .map(|(s, c)| (span_of(k, s), callsite_of(k, c)))
        .collect();
    // The decoder shares one span stack among a thread's records while it does not change:
    // renamed, they share one again (per thread, the last stack seen and its renaming).
    type Stack = flightrec_format::SpanStack;
    let mut renamed: Vec<(u32, Stack, Stack)> = Vec::new();
    for r in &mut rec.records {
        if !r.spans.is_empty() {
            let at = renamed.iter().position(|(t, _, _)| *t == r.thread);
            match at {
                Some(i) if Stack::ptr_eq(&renamed[i].1, &r.spans) => {
                    r.spans = renamed[i].2.clone();
                }
                _ => {
                    let spans: Stack = r.spans.iter().map(|&s| span_of(k, s)).collect();
                    let entry = (
                        r.thread,
                        std::mem::replace(&mut r.spans, spans.clone()),
                        spans,
                    );
                    match at {
                        Some(i) => renamed[i] = entry,
                        None => renamed.push(entry),
                    }
                }
            }
        }
        r.thread = thread_of(k, r.thread);
        r.callsite = callsite_of(k, r.callsite);
        r.span = span_of(k, r.span);
        r.link = r.link.and_then(|l| NonZeroU64::new(span_of(k, l.get())));
    }
}

/// Renamed recordings (see `rename_into`) as one, holding `records` (their records, in the
/// order the caller chose: by time for readers that stream them). Callsites, threads and
/// span callsites are moved in; the merged trigger is the earliest. Stacks and modules stay
/// behind: each process's stacks resolve against its own modules.
pub fn combine(recs: Vec<Recording>, records: Vec<Record>) -> Recording {
    let borrowed: Vec<&Recording> = recs.iter().collect();
    let with_host = several_hosts(&borrowed);
    let labels: Vec<String> = recs.iter().map(|r| process_label(r, with_host)).collect();
    let mut merged = Recording {
        process: flightrec_format::ProcessInfo {
            pid: 0,
            service: labels.join(" + "),
            host: {
                let mut hosts: Vec<&str> = recs.iter().map(|r| r.process.host.as_str()).collect();
                hosts.dedup();
                hosts.join(", ")
            },
            ..flightrec_format::ProcessInfo::default()
        },
        is_dump: recs.iter().all(|r| r.is_dump),
        file_size: recs.iter().map(|r| r.file_size).sum(),
        chunk_size: recs.first().map_or(0, |r| r.chunk_size),
        chunk_count: recs.iter().map(|r| r.chunk_count).sum(),
        start_wall_ns: recs.iter().map(|r| r.start_wall_ns).min().unwrap_or(0),
        clock: recs.first().map_or("unknown", |r| r.clock),
        trigger: recs
            .iter()
            .filter(|r| r.trigger.reason != flightrec_format::TriggerReason::None)
            .min_by_key(|r| r.trigger.wall_ns)
            .map_or_else(flightrec_format::Trigger::none, |r| r.trigger.clone()),
        ending: flightrec_format::Ending::Unrecorded,
        callsites: Default::default(),
        threads: Vec::new(),
        records,
        span_callsites: Default::default(),
        damage: recs
            .iter()
            .find(|r| r.damage.is_damaged())
            .map(|r| r.damage.clone())
            .unwrap_or_default(),
        history: recs.iter().fold(Default::default(), |sum, r| {
            flightrec_format::history::HistoryCounts {
                attached: sum.attached + r.history.attached,
                archived: sum.archived + r.history.archived,
                skipped: sum.skipped + r.history.skipped,
            }
        }),
        modules: Vec::new(),
        stacks: Vec::new(),
    };
    // Every recording's spans at once: sorted once, not once a recording.
    let mut recs = recs;
    merged.span_callsites = recs
        .iter_mut()
        .flat_map(|r| std::mem::take(&mut r.span_callsites))
        .collect();
    for rec in recs {
        merged.callsites.extend(rec.callsites);
        merged.threads.extend(rec.threads);
    }
    merged
}

/// Moves a whole recording by `ns` on the wall clock: every record, its threads' first and
/// last times, its start, its trigger and its stack captures. For aligning hosts whose
/// clocks disagree by a measured offset.
pub fn shift(rec: &mut Recording, ns: i64) {
    if ns == 0 {
        return;
    }
    let by = |t: i64| t.saturating_add(ns);
    for r in &mut rec.records {
        r.ts = by(r.ts);
    }
    for t in &mut rec.threads {
        t.first_ts = t.first_ts.map(by);
        t.last_ts = t.last_ts.map(by);
    }
    rec.start_wall_ns = by(rec.start_wall_ns);
    if rec.trigger.wall_ns != 0 {
        rec.trigger.wall_ns = by(rec.trigger.wall_ns);
    }
    for (ts, _) in &mut rec.stacks {
        *ts = ts.map(by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightrec_format::{RecordKind, SpanStack};

    fn rec(ts: i64) -> Record {
        Record {
            ts,
            thread: 0,
            kind: RecordKind::Event,
            callsite: 1,
            span: 0,
            link: None,
            fields: Default::default(),
            truncated: false,
            spans: SpanStack::default(),
        }
    }

    /// Several recordings as one `Recording`, every record in one time order: the steps a
    /// reader takes apart (`processes`, `shift`, `rename_into`, `merge_by_time`,
    /// `combine`), put together.
    fn merge_shifted(mut recs: Vec<Recording>, shifts: &[i64]) -> (Recording, Vec<MergedProcess>) {
        let processes = processes(&recs, shifts);
        for (k, rec) in recs.iter_mut().enumerate() {
            shift(rec, processes[k].shift_ns);
            rename_into(k, rec, &processes[k].label);
        }
        let streams: Vec<_> = recs
            .iter_mut()
            .map(|r| std::mem::take(&mut r.records).into_iter())
            .collect();
        let records = merge_by_time(streams).map(|(_, r)| r).collect();
        (combine(recs, records), processes)
    }

    #[test]
    fn a_shifted_recording_moves_whole_and_merges_in_its_new_place() {
        let sample =
            || flightrec_format::decode(&flightrec_format::testing::sample_image(3)).unwrap();
        let (a, b) = (sample(), sample());
        let first = a.records[0].ts;
        let (merged, procs) = merge_shifted(vec![a, b], &[0, 1_000]);
        assert_eq!(procs[1].shift_ns, 1_000);
        assert_eq!(procs[0].shift_ns, 0);
        // Each record of the second is 1 µs after its twin in the first.
        let of = |k: u32| {
            merged
                .records
                .iter()
                .filter(|r| r.thread >> 20 == k)
                .map(|r| r.ts)
                .collect::<Vec<_>>()
        };
        let (x, y) = (of(0), of(1));
        assert_eq!(x.len(), y.len());
        assert!(x.iter().zip(&y).all(|(a, b)| b - a == 1_000));
        assert_eq!(x[0], first);
        assert!(merged.records.windows(2).all(|w| w[0].ts <= w[1].ts));
    }

    #[test]
    fn renaming_moves_every_id_and_keeps_shared_span_stacks_shared() {
        let original =
            flightrec_format::decode(&flightrec_format::testing::sample_image(3)).unwrap();
        let mut renamed = original.clone();
        rename_into(2, &mut renamed, "svc[1]");
        let mut shared_before = 0;
        for (w, v) in original.records.windows(2).zip(renamed.records.windows(2)) {
            for (a, b) in w.iter().zip(v) {
                assert_eq!(b.thread, thread_of(2, a.thread));
                assert_eq!(b.span, span_of(2, a.span));
                let spans: Vec<u64> = a.spans.iter().map(|&s| span_of(2, s)).collect();
                assert_eq!(&b.spans[..], &spans[..]);
            }
            if !w[0].spans.is_empty() && SpanStack::ptr_eq(&w[0].spans, &w[1].spans) {
                shared_before += 1;
                assert!(SpanStack::ptr_eq(&v[0].spans, &v[1].spans));
            }
        }
        assert!(
            shared_before > 0,
            "the sample shares stacks between records"
        );
        assert!(renamed
            .threads
            .iter()
            .all(|t| t.name.starts_with("svc[1] ")));
    }

    #[test]
    fn streams_merge_in_time_order_ties_by_stream() {
        let a = vec![rec(1), rec(5), rec(9)];
        let b = vec![rec(2), rec(5), rec(10), rec(11)];
        let c: Vec<Record> = Vec::new();
        let merged: Vec<(usize, i64)> =
            merge_by_time(vec![a.into_iter(), b.into_iter(), c.into_iter()])
                .map(|(i, r)| (i, r.ts))
                .collect();
        assert_eq!(
            merged,
            vec![(0, 1), (1, 2), (0, 5), (1, 5), (0, 9), (1, 10), (1, 11)]
        );
    }
}
