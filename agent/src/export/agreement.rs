//! The viewer and the Perfetto exporter read spans alike: random recordings (nesting,
//! out-of-order exits, hops between threads, `follows_from`, data that begins inside spans
//! as in a wrapped ring) go through the viewer's model and through the Perfetto exporter,
//! whose bytes are decoded back; every span entry must have the same interval and track in
//! both.

use std::collections::HashMap;
use std::num::NonZeroU64;

use flightrec_format::{
    Damage, FieldValue, ProcessInfo, Record, RecordKind, Recording, SpanStack, ThreadSummary,
    Trigger, Value,
};
use proptest::prelude::*;
use prost::Message;

use super::perfetto::{PerfettoSink, TracePacket, TYPE_SLICE_BEGIN, TYPE_SLICE_END};
use super::{plan, walk};

/// One step of a script, over `THREADS` threads; indices are taken modulo what exists.
#[derive(Debug, Clone)]
enum Op {
    Event(u32),
    NewSpan(u32),
    /// Enter the n-th live span on a thread (any thread: spans hop).
    Enter(u32, usize),
    /// Exit the n-th span from the top of the thread's stack (0: in nesting order).
    Exit(u32, usize),
    /// Close the n-th live span that no thread has entered.
    Close(usize),
    /// The n-th live span follows from the m-th.
    Follows(u32, usize, usize),
}

const THREADS: u32 = 3;
const BASE_TS: i64 = 1_700_000_000_000_000_000;

fn op() -> impl Strategy<Value = Op> {
    let t = 0..THREADS;
    prop_oneof![
        2 => t.clone().prop_map(Op::Event),
        2 => t.clone().prop_map(Op::NewSpan),
        4 => (t.clone(), 0..6usize).prop_map(|(t, n)| Op::Enter(t, n)),
        // Mostly in nesting order, sometimes not.
        4 => (t.clone(), prop_oneof![3 => Just(0usize), 1 => 1..4usize])
            .prop_map(|(t, n)| Op::Exit(t, n)),
        1 => (0..6usize).prop_map(Op::Close),
        1 => (t, 0..6usize, 0..6usize).prop_map(|(t, a, b)| Op::Follows(t, a, b)),
    ]
}

/// Runs a script the way the decoder would report it, then cuts off the first `cut[t]`
/// records of each thread, as a wrapped ring does (the first surviving record's span stack
/// then says which spans were already entered).
fn recording(ops: &[Op], cut: &[usize]) -> Recording {
    let mut stacks: Vec<Vec<u64>> = vec![Vec::new(); THREADS as usize];
    let mut live: Vec<u64> = Vec::new();
    let mut next_span = 1u64;
    let mut per_thread: Vec<Vec<Record>> = vec![Vec::new(); THREADS as usize];
    let mut ts = BASE_TS;
    let mut span_callsites = HashMap::new();
    for op in ops {
        ts += 1000;
        let (thread, kind, span, follows) = match *op {
            Op::Event(t) => (t, RecordKind::Event, 0, None),
            Op::NewSpan(t) => {
                let s = next_span;
                next_span += 1;
                live.push(s);
                span_callsites.insert(s, 2 + (s % 2) as u32);
                (t, RecordKind::SpanNew, s, None)
            }
            Op::Enter(t, n) if !live.is_empty() => {
                (t, RecordKind::Enter, live[n % live.len()], None)
            }
            Op::Exit(t, n) if !stacks[t as usize].is_empty() => {
                let st = &stacks[t as usize];
                (t, RecordKind::Exit, st[st.len() - 1 - n % st.len()], None)
            }
            Op::Close(n) => {
                let idle: Vec<u64> = live
                    .iter()
                    .copied()
                    .filter(|s| stacks.iter().all(|st| !st.contains(s)))
                    .collect();
                if idle.is_empty() {
                    continue;
                }
                let s = idle[n % idle.len()];
                live.retain(|&x| x != s);
                (0, RecordKind::Close, s, None)
            }
            Op::Follows(t, a, b) if !live.is_empty() => (
                t,
                RecordKind::FollowsFrom,
                live[a % live.len()],
                Some(live[b % live.len()]),
            ),
            _ => continue,
        };
        let stack = &mut stacks[thread as usize];
        if kind == RecordKind::Enter {
            stack.push(span);
        }
        let spans = SpanStack::from(stack.as_slice());
        if kind == RecordKind::Exit {
            if let Some(pos) = stack.iter().rposition(|&s| s == span) {
                stack.remove(pos);
            }
        }
        per_thread[thread as usize].push(Record {
            ts,
            thread,
            kind,
            callsite: match kind {
                RecordKind::Event => 1,
                _ => span_callsites.get(&span).copied().unwrap_or(2),
            },
            span,
            link: follows.and_then(NonZeroU64::new),
            fields: [FieldValue {
                index: 0,
                value: Value::U64(ts as u64 % 7),
                truncated: false,
            }]
            .into(),
            truncated: false,
            spans,
        });
    }
    let mut threads = Vec::new();
    let mut records = Vec::new();
    for (t, mut rs) in per_thread.into_iter().enumerate() {
        let lost = cut[t].min(rs.len());
        rs.drain(..lost);
        if rs.is_empty() {
            continue;
        }
        threads.push(ThreadSummary {
            index: t as u32,
            tid: 100 + t as u64,
            name: format!("t{t}"),
            records: rs.len() as u64,
            overwritten: lost as u64,
            dropped: 0,
            fully_overwritten: false,
            lost_to_damage: false,
            gaps: 0,
            first_ts: rs.first().map(|r| r.ts),
            last_ts: rs.last().map(|r| r.ts),
        });
        records.extend(rs);
    }
    records.sort_by_key(|r| (r.ts, r.thread));
    let callsite = |id: u32, is_span: bool, name: &str| {
        flightrec_format::testing::callsite(id, is_span, name, &["n"])
    };
    Recording {
        process: ProcessInfo {
            pid: 1,
            service: "prop".into(),
            ..ProcessInfo::default()
        },
        is_dump: true,
        file_size: 0,
        chunk_size: 0,
        chunk_count: 0,
        start_wall_ns: BASE_TS,
        clock: "TSC",
        trigger: Trigger::none(),
        ending: flightrec_format::Ending::Unrecorded,
        callsites: [
            (1, callsite(1, false, "ev")),
            (2, callsite(2, true, "a")),
            (3, callsite(3, true, "b")),
        ]
        .into_iter()
        .collect(),
        threads,
        records,
        span_callsites: span_callsites.into_iter().collect(),
        damage: Damage::default(),
        history: Default::default(),
        modules: Vec::new(),
        stacks: Vec::new(),
    }
}

/// Where an entry was drawn: a thread's track at a depth, or a span's own track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Drawn {
    Nested { thread: u32, depth: u32 },
    Own { thread: u32 },
}

/// (where, span, begin, end), sorted.
type Entries = Vec<(Drawn, u64, i64, i64)>;

/// (span, thread, begin, end) of each poll on a task's own track, sorted.
type Polls = Vec<(u64, u32, i64, i64)>;

/// The outermost polls of the reading layer's async tasks; a task polled on two threads at
/// once (a span, not a real task) shows only what began while no other poll of it was open
/// (every op has a time of its own, so only entries still open at the end end together).
fn analysis_polls(rec: &Recording) -> Polls {
    let tasks = flightrec_analysis::Analysis::of(rec, &Default::default()).tasks;
    let mut out = Vec::new();
    for t in tasks.list.iter().filter(|t| t.is_async) {
        let mut open: Option<(i64, bool)> = None;
        for p in t.polls.iter().filter(|p| p.outermost) {
            let free = match open {
                None => true,
                Some((end, at_end)) => p.begin > end || (p.begin == end && !at_end),
            };
            if free {
                out.push((t.span, p.thread, p.begin, p.end));
                open = Some((p.end, p.open_at_end));
            }
        }
    }
    out.sort();
    out
}

fn viewer_entries(rec: &Recording) -> Entries {
    let model = flightrec_viewer::model::Model::new(rec.clone());
    let mut out = Vec::new();
    for lane in &model.lanes {
        for bars in &lane.depths {
            for b in bars {
                let drawn = match b.placement {
                    flightrec_analysis::Placement::Nested { depth } => Drawn::Nested {
                        thread: lane.thread,
                        depth,
                    },
                    flightrec_analysis::Placement::Own => Drawn::Own {
                        thread: lane.thread,
                    },
                };
                out.push((drawn, b.span, b.begin + model.origin, b.end + model.origin));
            }
        }
    }
    out.sort();
    out
}

fn perfetto_entries(rec: &Recording) -> (Entries, Polls) {
    let hidden = indicatif::ProgressBar::hidden();
    let plan = plan(rec, rec.records.iter().cloned(), &hidden);
    let mut bytes = Vec::new();
    let mut sink = PerfettoSink::new(rec, &mut bytes);
    walk(
        rec,
        rec.records.iter().cloned(),
        &plan,
        &[],
        &mut sink,
        &hidden,
    )
    .unwrap();
    sink.finish().unwrap();
    // A Trace is `repeated TracePacket packet = 1`.
    let mut buf = &bytes[..];
    let mut packets = Vec::new();
    while !buf.is_empty() {
        assert_eq!(buf[0], 0x0a);
        buf = &buf[1..];
        let len = prost::encoding::decode_varint(&mut buf).unwrap() as usize;
        packets.push(TracePacket::decode(&buf[..len]).unwrap());
        buf = &buf[len..];
    }
    // Track uuids: thread tracks from their descriptors; own tracks are named
    // "<span name> #<span> (<thread name>)".
    let mut tracks: HashMap<u64, Drawn> = HashMap::new();
    let mut task_tracks = std::collections::HashSet::new();
    for p in &packets {
        let Some(d) = &p.track_descriptor else {
            continue;
        };
        let name = d.name.clone().unwrap_or_default();
        if let Some(t) = &d.thread {
            let index = rec
                .threads
                .iter()
                .find(|x| x.tid as i64 == t.tid.unwrap())
                .unwrap()
                .index;
            tracks.insert(
                d.uuid.unwrap(),
                Drawn::Nested {
                    thread: index,
                    depth: 0,
                },
            );
        } else if let Some(open) = name.rfind("(t") {
            let thread: u32 = name[open + 2..name.len() - 1].parse().unwrap();
            tracks.insert(d.uuid.unwrap(), Drawn::Own { thread });
        } else if d.parent_uuid.is_some() {
            task_tracks.insert(d.uuid.unwrap());
        }
    }
    // Each poll's slice is named after the thread that ran it: "t<index> [<tid>]".
    let mut names: HashMap<u64, String> = HashMap::new();
    for p in &packets {
        if let Some(i) = &p.interned_data {
            for n in &i.event_names {
                names.insert(n.iid.unwrap(), n.name.clone().unwrap());
            }
        }
    }
    let mut polls = Vec::new();
    let mut open_poll: HashMap<u64, usize> = HashMap::new();
    let mut open: HashMap<u64, Vec<(i64, u64)>> = HashMap::new();
    let mut out = Vec::new();
    for p in &packets {
        let Some(e) = &p.track_event else {
            continue;
        };
        let uuid = e.track_uuid.unwrap();
        let ts = p.timestamp.unwrap() as i64;
        if task_tracks.contains(&uuid) {
            match e.r#type {
                Some(TYPE_SLICE_BEGIN) => {
                    let span = e.debug_annotations[0].uint_value.unwrap();
                    let name = &names[&e.name_iid.unwrap()];
                    let thread: u32 = name[1..name.find(' ').unwrap()].parse().unwrap();
                    assert!(!open_poll.contains_key(&uuid), "overlapping polls");
                    open_poll.insert(uuid, polls.len());
                    polls.push((span, thread, ts, i64::MIN));
                }
                Some(TYPE_SLICE_END) => {
                    let k = open_poll.remove(&uuid).expect("an end without a begin");
                    polls[k].3 = ts;
                }
                _ => {}
            }
            continue;
        }
        match e.r#type {
            Some(TYPE_SLICE_BEGIN) => {
                // The span id is the last annotation.
                let span = e.debug_annotations.last().unwrap().uint_value.unwrap();
                open.entry(uuid).or_default().push((ts, span));
            }
            Some(TYPE_SLICE_END) => {
                let stack = open.get_mut(&uuid).unwrap();
                let (begin, span) = stack.pop().expect("an end without a begin");
                let drawn = match tracks[&uuid] {
                    Drawn::Nested { thread, .. } => Drawn::Nested {
                        thread,
                        depth: stack.len() as u32,
                    },
                    own => own,
                };
                out.push((drawn, span, begin, ts));
            }
            _ => {}
        }
    }
    assert!(
        open.values().all(Vec::is_empty),
        "slices left open: {open:?}"
    );
    out.sort();
    polls.sort();
    (out, polls)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_viewer_and_the_perfetto_export_place_every_span_entry_alike(
        ops in prop::collection::vec(op(), 0..80),
        cut in prop::collection::vec(0..12usize, THREADS as usize),
    ) {
        let rec = recording(&ops, &cut);
        let viewer = viewer_entries(&rec);
        let (perfetto, polls) = perfetto_entries(&rec);
        prop_assert_eq!(viewer, perfetto);
        prop_assert_eq!(analysis_polls(&rec), polls);
    }
}
