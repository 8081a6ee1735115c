use std::collections::HashMap;

use flightrec_format::{Callsite, Damage, FieldValue, ProcessInfo, Record, RecordKind, SpanStack};
use flightrec_format::{Recording, ThreadSummary, Trigger, TriggerReason, Value};

use super::*;

const T0: i64 = 1_800_000_000_000_000_000;

/// Events counted per pixel one by one: what `pixel_buckets` must agree with.
fn buckets_one_by_one(ts: &[i64], level: &[u8], start: i64, px: i64) -> Vec<(i64, u32, u8)> {
    let mut b: Vec<(i64, u32, u8)> = Vec::new();
    for (&t, &l) in ts.iter().zip(level) {
        let x = pixel_of(t, start, px);
        match b.last_mut() {
            Some(last) if last.0 == x => {
                last.1 += 1;
                last.2 = last.2.max(l);
            }
            _ => b.push((x, 1, l)),
        }
    }
    b
}

#[test]
fn a_window_from_the_coarse_runs_is_the_window_from_every_bar() {
    let mut seed = 0x853c_49e6_748f_ea9b_u64;
    let mut next = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below.max(1)
    };
    let mut coarse_used = 0;
    for case in 0..400 {
        // Disjoint sorted bars: dense runs of short ones, long ones, gaps of every size.
        let mut list = Vec::new();
        let mut t = next(1000) as i64 - 500;
        for _ in 0..next(300) {
            t += [0, 1, 5, 40, 5000][next(5) as usize] as i64;
            let len = [0, 1, 3, 20, 900, 20_000][next(6) as usize] as i64;
            list.push(Bar {
                begin: t,
                end: t + len,
                span: 1,
                record: NO_RECORD,
                flags: 0,
                placement: Placement::Nested { depth: 0 },
                worker: None,
            });
            t += len;
        }
        let coarse_px = 1 + next(60) as i64;
        let runs = coarse_bars(&list, coarse_px);
        assert_eq!(
            runs.iter().map(|r| r.count as usize).sum::<usize>(),
            list.len(),
            "case {case}: every bar in one run"
        );
        if runs.len() < list.len() {
            coarse_used += 1;
        }
        for _ in 0..20 {
            let start = next(t.max(1) as u64 + 2000) as i64 - 1000;
            let end = start + next(t.max(1) as u64) as i64;
            let px = coarse_px + next(3 * coarse_px as u64) as i64;
            let q = (start, end, px);
            assert_eq!(
                depth_window(&list, Some((&runs, coarse_px)), q, None),
                depth_window(&list, None, q, None),
                "case {case}: window {start}..={end} at {px} ns a pixel, runs at {coarse_px}"
            );
        }
    }
    assert!(
        coarse_used > 100,
        "the runs merged bars in {coarse_used} cases only"
    );
}

#[test]
fn events_counted_per_pixel_by_search_match_counting_them_one_by_one() {
    // A small xorshift: dense runs, sparse gaps, equal times, and times at the ends of
    // the range, against starts and pixel widths of every size.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..300 {
        let n = (next() % 2000) as usize;
        let mut t = match case % 3 {
            0 => i64::MIN + (next() % 1000) as i64,
            1 => (next() % 1_000_000) as i64 - 500_000,
            _ => i64::MAX - 10_000_000,
        };
        let mut ts = Vec::with_capacity(n);
        for _ in 0..n {
            t = t.saturating_add(match next() % 4 {
                0 => 0,
                1 => (next() % 10) as i64,
                2 => (next() % 1000) as i64,
                _ => (next() % 100_000) as i64,
            });
            ts.push(t);
        }
        let level: Vec<u8> = (0..n).map(|_| (next() % 5) as u8).collect();
        let start = ts
            .first()
            .copied()
            .unwrap_or(0)
            .saturating_sub((next() % 5000) as i64);
        let px = 1 + (next() % [3, 700, 90_000][case % 3]) as i64;
        assert_eq!(
            pixel_buckets(&ts, &level, start, px),
            buckets_one_by_one(&ts, &level, start, px),
            "case {case}: {n} events from {start}, {px} ns a pixel"
        );
    }
}

fn callsite(id: u32, is_span: bool, name: &str) -> Callsite {
    flightrec_format::testing::callsite(id, is_span, name, &["message", "n"])
}

fn record(ts: i64, thread: u32, kind: RecordKind, span: u64, stack: &[u64]) -> Record {
    Record {
        ts: T0 + ts,
        thread,
        kind,
        callsite: if kind == RecordKind::Event { 1 } else { 2 },
        span,
        link: None,
        fields: if kind == RecordKind::Event {
            vec![
                FieldValue {
                    index: 0,
                    value: Value::Debug("tick".into()),
                    truncated: false,
                },
                FieldValue {
                    index: 1,
                    value: Value::U64(ts as u64),
                    truncated: false,
                },
            ]
            .into()
        } else {
            Default::default()
        },
        truncated: false,
        spans: SpanStack::from(stack),
    }
}

/// Thread 0: a span `s` (id 7) entered before the data starts and never exited, holding
/// 10 000 short spans (ids 100..) and 10 000 events. Thread 1: one event, long before a
/// stall trigger.
fn recording() -> Recording {
    let mut records = Vec::new();
    for i in 0..10_000i64 {
        let span = 100 + i as u64;
        records.push(record(i * 100, 0, RecordKind::Enter, span, &[7, span]));
        records.push(record(i * 100 + 10, 0, RecordKind::Event, 0, &[7, span]));
        records.push(record(i * 100 + 20, 0, RecordKind::Exit, span, &[7, span]));
    }
    records.insert(0, record(0, 1, RecordKind::Event, 0, &[]));
    records.sort_by_key(|r| r.ts);
    let thread = |index, name: &str, n| ThreadSummary {
        index,
        tid: 10 + index as u64,
        name: name.into(),
        records: n,
        overwritten: if index == 0 { 5 } else { 0 },
        dropped: 0,
        fully_overwritten: false,
        lost_to_damage: false,
        gaps: 0,
        first_ts: Some(T0),
        last_ts: Some(T0 + if index == 0 { 999_920 } else { 0 }),
    };
    Recording {
        process: ProcessInfo::default(),
        is_dump: true,
        file_size: 0,
        chunk_size: 0,
        chunk_count: 0,
        start_wall_ns: T0,
        clock: "TSC",
        trigger: Trigger {
            reason: TriggerReason::Stall,
            signal: 0,
            fault_addr: 0,
            tid: 11,
            wall_ns: T0 + 2_000_000_000,
            message: String::new(),
        },
        ending: flightrec_format::Ending::Unrecorded,
        callsites: HashMap::from([(1, callsite(1, false, "ev")), (2, callsite(2, true, "s"))]),
        threads: vec![thread(0, "busy", 30_000), thread(1, "idle", 1)],
        records,
        span_callsites: [(7, 2)].into_iter().collect(),
        damage: Damage::default(),
        history: Default::default(),
        modules: Vec::new(),
        stacks: Vec::new(),
    }
}

/// Two requests (spans 1 and 2) polled alternately on two workers, each event carrying
/// `n` = 5; request 2's span is named "a".
fn two_requests() -> Recording {
    use RecordKind::*;
    let mut rec = recording();
    let mut records = Vec::new();
    for (k, (span, thread)) in [(1u64, 0u32), (2, 1), (1, 1), (2, 0)]
        .into_iter()
        .enumerate()
    {
        let t = k as i64 * 100;
        records.push(record(t, thread, Enter, span, &[span]));
        let mut ev = record(t + 10, thread, Event, 0, &[span]);
        let mut fields = ev.fields.to_vec();
        fields[1].value = Value::U64(5);
        ev.fields = fields.into();
        records.push(ev);
        records.push(record(t + 20, thread, Exit, span, &[span]));
    }
    rec.records = records;
    rec.trigger = Trigger::none();
    // Request 2's span has another name, "a", which groups before "s".
    rec.callsites.insert(3, callsite(3, true, "a"));
    rec.span_callsites = [(1, 2), (2, 3)].into_iter().collect();
    for t in &mut rec.threads {
        t.overwritten = 0;
    }
    rec
}

/// A merge laid end to end, process after process (what the viewer builds, side by
/// side), reads exactly as the time-sorted merge every other reader uses: the same
/// lanes, bars, events, tasks and object trail, record ids aside.
#[test]
fn a_merge_laid_end_to_end_reads_as_the_time_sorted_merge() {
    let stall = |wall_ns| Trigger {
        reason: TriggerReason::Stall,
        signal: 0,
        fault_addr: 0,
        tid: 10,
        wall_ns,
        message: String::new(),
    };
    // Both data end together: what is open at the end is drawn to its own process's
    // end, which the time-sorted merge cannot tell from the common end.
    let mut a = two_requests();
    a.trigger = stall(T0 + 5_030);
    let mut b = two_requests();
    b.process.pid = 2;
    b.trigger = stall(T0 + 5_000);
    // Interleaved with the first in time, and moved 30 ns more by the user.
    let shifts = [0, 30];
    let (sorted, processes) = time_sorted_merge(vec![a.clone(), b.clone()], &shifts);
    let mut reference = Model::new(sorted);
    reference.processes = processes;
    let heads = [a.clone(), b.clone()];
    let parts = [a, b];
    let merged = Model::merged_loading(&heads, &shifts, |k| Ok(parts[k].clone())).unwrap();
    // Record ids differ (the records lie in another order); everything else must not.
    fn without_ids(mut v: serde_json::Value) -> serde_json::Value {
        match &mut v {
            serde_json::Value::Object(o) => {
                o.remove("id");
                o.remove("record");
                for x in o.values_mut() {
                    *x = without_ids(x.take());
                }
            }
            serde_json::Value::Array(a) => {
                for x in a.iter_mut() {
                    *x = without_ids(x.take());
                }
            }
            _ => {}
        }
        v
    }
    let same = |what: &str, x: serde_json::Value, y: serde_json::Value| {
        assert_eq!(without_ids(x), without_ids(y), "{what}");
    };
    let json = |v: &dyn erased::Ser| v.to_json();
    same("meta", json(&reference.meta()), json(&merged.meta()));
    assert_eq!(merged.meta().lanes.len(), 4);
    assert_eq!(merged.meta().tasks.count, 4);
    let (start, end) = (-10, merged.end + 10);
    let f = Filter::default();
    same(
        "window",
        json(&reference.window(start, end, 2000, &f)),
        json(&merged.window(start, end, 2000, &f)),
    );
    for order in [TaskOrder::Start, TaskOrder::Name] {
        same(
            "task list",
            json(&reference.task_list(order)),
            json(&merged.task_list(order)),
        );
        let range = TaskRange {
            order,
            first: 0,
            count: 10,
        };
        same(
            "task window",
            json(&reference.task_window(start, end, 2000, &f, range)),
            json(&merged.task_window(start, end, 2000, &f, range)),
        );
    }
    let trail = merged.object("n", "5", 100);
    assert_eq!(trail.records.len(), 8);
    assert!(trail.records.windows(2).all(|w| w[0].t <= w[1].t));
    same(
        "object trail",
        json(&reference.object("n", "5", 100)),
        json(&trail),
    );
    same(
        "search",
        json(&reference.search(&f, 100)),
        json(&merged.search(&f, 100)),
    );
    // Ids still lead to the right records: each bar's enter record, each event's record.
    for lane in &merged.lanes {
        for b in lane.depths.iter().flatten() {
            let r = &merged.records[b.record as usize];
            assert_eq!(
                (r.kind, r.thread, r.span),
                (RecordKind::Enter, lane.thread, b.span)
            );
        }
        for &e in &lane.events {
            assert_eq!(merged.records[e as usize].thread, lane.thread);
        }
    }
    for (i, _) in merged.records.iter().enumerate() {
        if let Some(t) = merged.tasks.of_record(i) {
            assert!(merged.tasks.records_of(t).any(|r| r == i));
        }
    }
    for (i, t) in merged.tasks.list.iter().enumerate() {
        assert_eq!(merged.task_lanes[i].span, t.span);
    }
    for t in &merged.tasks.list {
        let details = merged.span(t.span).expect("a task's span is known");
        assert_eq!(details.entries.len(), 2);
        same("span", json(&reference.span(t.span)), json(&Some(details)));
    }
    assert!(merged.span(12345).is_none());
}

/// Recordings read as they are modelled: one that cannot be read fails the whole merge
/// with its reason; read, they merge as `merged` merges them.
#[test]
fn a_merge_that_loads_its_recordings_fails_with_the_unreadable_one() {
    let heads = vec![two_requests(), two_requests()];
    let failed = Model::merged_loading(&heads, &[], |k| {
        if k == 1 {
            Err("b.flightrec: not a dump".into())
        } else {
            Ok(two_requests())
        }
    });
    assert_eq!(failed.err().as_deref(), Some("b.flightrec: not a dump"));
    let m = Model::merged_loading(&heads, &[], |_| Ok(two_requests())).expect("both read");
    assert_eq!(m.lanes.len(), 4);
    assert_eq!(m.records.len(), 24);
    assert_eq!(m.processes.len(), 2);
}

/// Serialises any of the model's answers, for comparing them.
mod erased {
    pub trait Ser {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("serialisable")
        }
    }
}

/// Two requests (spans 1 and 2) polled alternately on two workers, each event carrying
/// `n` = 5: the task view has a lane per request, its polls on the workers that ran
/// them, and the object passes between tasks.
#[test]
fn the_task_view_has_a_lane_per_request_with_its_polls_and_hand_overs() {
    let m = Model::new(two_requests());
    assert!(m.tasks.hop_threads());
    assert_eq!(m.meta().tasks.count, 2);
    let list = m.task_list(TaskOrder::Start);
    assert_eq!(list.tasks.len(), 2);
    assert_eq!((list.tasks[0].polls, list.tasks[1].polls), (2, 2));
    assert_eq!(list.tasks[0].workers, vec![0, 1]);
    let range = TaskRange {
        order: TaskOrder::Start,
        first: 1,
        count: 5,
    };
    let w = m.task_window(-10, 400, 1000, &Filter::default(), range);
    assert_eq!((w.first, w.lanes.len()), (1, 1));
    let workers: Vec<Option<u32>> = w.lanes[0]
        .bars
        .iter()
        .map(|b| match b {
            WindowBar::Bar(b) => b.worker,
            WindowBar::Clump(..) => None,
        })
        .collect();
    assert_eq!(workers, vec![Some(1), Some(0)]);
    assert_eq!(w.lanes[0].events.len(), 2);
    // Grouped by span name: "a" (the second to start) first.
    let grouped: Vec<usize> = m
        .task_list(TaskOrder::Name)
        .tasks
        .iter()
        .map(|t| t.task)
        .collect();
    assert_eq!(grouped, vec![1, 0]);
    let w = m.task_window(
        -10,
        400,
        1000,
        &Filter::default(),
        TaskRange {
            order: TaskOrder::Name,
            first: 0,
            count: 1,
        },
    );
    assert_eq!(w.lanes[0].events.len(), 2, "lane 0 by name is request 2");
    let o = m.object("n", "5", 100);
    let tasks: Vec<Option<usize>> = o.records.iter().map(|r| r.task).collect();
    assert_eq!(tasks, vec![Some(0), Some(1), Some(0), Some(1)]);
    assert!(o.records[1..].iter().all(|r| r.task_handover));
    assert!(!o.records[0].task_handover);
    assert_eq!((o.tasks, o.task_handovers), (2, 3));
    // Listing only the newest record still counts every record's thread and task.
    let newest = m.object("n", "5", 1);
    assert!(newest.truncated && newest.records.len() == 1);
    assert_eq!(
        (
            newest.total,
            newest.threads,
            newest.tasks,
            newest.task_handovers
        ),
        (o.total, o.threads, 2, 3)
    );
}

#[test]
fn a_wide_view_merges_subpixel_bars_and_counts_events_per_pixel() {
    let m = Model::new(recording());
    let w = serde_json::to_value(m.window(0, 1_000_000, 100, &Filter::default())).unwrap();
    let lane = &w["lanes"][0];
    // 10 000 events in 100 pixels: counted, not listed.
    assert_eq!(lane["events"].as_array().unwrap().len(), 0);
    let counted: u64 = lane["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 10_000);
    // The 20 ns spans, 100 ns apart, are far under a pixel (10 µs): clumps, not bars.
    let bars = lane["bars"].as_array().unwrap();
    assert!(bars.len() < 200, "{} bars", bars.len());
    let clumped: u64 = bars
        .iter()
        .filter_map(|b| b.get(3))
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(clumped, 10_000);
    // The outer span, entered before the data starts and still open, is one real bar.
    let outer: Vec<_> = bars.iter().filter(|b| b.is_object()).collect();
    assert_eq!(outer.len(), 1);
    assert_eq!(outer[0]["flags"], STARTS_BEFORE_DATA | OPEN_AT_END);
}

#[test]
fn a_narrow_view_lists_each_event_and_bar() {
    let m = Model::new(recording());
    let w = serde_json::to_value(m.window(50_000, 50_250, 1000, &Filter::default())).unwrap();
    let lane = &w["lanes"][0];
    let events = lane["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["title"], "tick");
    let spans: Vec<_> = lane["bars"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["d"] == 1)
        .collect();
    assert_eq!(spans.len(), 3, "the entries overlapping [50 000, 50 250]");
}

/// A hostile dump can hold any timestamps; relative times saturate instead of wrapping.
#[test]
fn timestamps_at_the_ends_of_i64_do_not_overflow() {
    let mut rec = recording();
    rec.records[0].ts = i64::MIN;
    let last = rec.records.len() - 1;
    rec.records[last].ts = i64::MAX;
    rec.trigger.wall_ns = i64::MAX;
    let m = Model::new(rec);
    let _ = m.meta();
    let w = serde_json::to_value(m.window(i64::MIN, i64::MAX, 1000, &Filter::default())).unwrap();
    assert_eq!(w["lanes"].as_array().unwrap().len(), 2);
    let _ = m.search(&Filter::default(), 10);
    let _ = m.object("n", "0", 10);
}

#[test]
fn a_stall_names_the_silent_threads_and_their_open_spans() {
    let m = Model::new(recording());
    let meta = serde_json::to_value(m.meta()).unwrap();
    let stuck = meta["trigger"]["stuck"].as_array().unwrap();
    assert_eq!(stuck.len(), 2);
    let busy = stuck.iter().find(|s| s["name"] == "busy").unwrap();
    assert_eq!(busy["open_spans"], serde_json::json!(["s"]));
    assert!(busy["silent_ns"].as_i64().unwrap() > 1_900_000_000);
    assert_eq!(meta["lanes"][0]["overwritten"], 5);
}

/// The oracle: several recordings as one `Recording`, every record sorted into one time
/// order, as the reading layer's merge steps make it when put together.
fn time_sorted_merge(
    mut recs: Vec<Recording>,
    shifts: &[i64],
) -> (Recording, Vec<flightrec_analysis::merge::MergedProcess>) {
    use flightrec_analysis::merge;
    let processes = merge::processes(&recs, shifts);
    for (k, rec) in recs.iter_mut().enumerate() {
        merge::shift(rec, processes[k].shift_ns);
        merge::rename_into(k, rec, &processes[k].label);
    }
    let streams: Vec<_> = recs
        .iter_mut()
        .map(|r| std::mem::take(&mut r.records).into_iter())
        .collect();
    let records = merge::merge_by_time(streams).map(|(_, r)| r).collect();
    (merge::combine(recs, records), processes)
}
