//! Task lanes: one per task of the reading layer, and what a lane draws when the page
//! asks for it.

use super::*;

/// The task list's lanes, one per task, in `tasks.list` order.
pub(super) fn task_lanes(
    rec: &Recording,
    tasks: &Tasks,
    lane_of: &HashMap<u32, usize>,
    origin: i64,
    end: i64,
) -> Vec<TaskLane> {
    let names = Names::new(rec);
    let rel = |t: i64| t.saturating_sub(origin);
    tasks
        .list
        .iter()
        .map(|t| {
            let mut workers: Vec<usize> = Vec::new();
            for p in &t.polls {
                if let Some(&w) = lane_of.get(&p.thread) {
                    if !workers.contains(&w) {
                        workers.push(w);
                    }
                }
            }
            let start = rel(t.start);
            TaskLane {
                span: t.span,
                // Told apart from look-alikes once all lanes are known (`Model::assemble`).
                label: flightrec_analysis::tasks::label(&names, t),
                name: names.span_name(t.span).to_owned(),
                start,
                end: t.closed().map_or(end, rel).max(start),
                open: t.closed().is_none(),
                workers,
                polls: t.polls.len(),
                depth: t.inner.iter().map(|i| i.depth + 1).max().unwrap_or(1),
            }
        })
        .collect()
}

/// What the lane of `tasks.list[k]` draws. `lane_of`: the thread view's lane of each
/// thread.
pub(super) fn task_lane_content(
    records: &Records,
    callsites: &HashMap<u32, flightrec_format::Callsite>,
    tasks: &Tasks,
    k: usize,
    lane_of: &dyn Fn(u32) -> Option<usize>,
    origin: i64,
) -> TaskLaneContent {
    let t = &tasks.list[k];
    let rel = |t: i64| t.saturating_sub(origin);
    let mut depths: Vec<Vec<Bar>> = vec![Vec::new()];
    for p in &t.polls {
        let mut flags = 0;
        if p.starts_before_data {
            flags |= STARTS_BEFORE_DATA;
        }
        if p.open_at_end {
            flags |= OPEN_AT_END;
        }
        depths[0].push(Bar {
            begin: rel(p.begin),
            end: rel(p.end),
            span: t.span,
            record: NO_RECORD,
            flags,
            placement: Placement::Nested { depth: 0 },
            worker: lane_of(p.thread).map(|w| w as u32),
        });
    }
    for i in &t.inner {
        while depths.len() <= i.depth {
            depths.push(Vec::new());
        }
        depths[i.depth].push(Bar {
            begin: rel(i.begin),
            end: rel(i.end),
            span: i.span,
            record: NO_RECORD,
            flags: if i.open_at_end { OPEN_AT_END } else { 0 },
            placement: Placement::Nested {
                depth: i.depth as u32,
            },
            worker: None,
        });
    }
    // A span polled on two threads at once would overlap itself in a row: the rows are
    // drawn as given, by begin.
    for d in &mut depths {
        d.sort_by_key(|b| (b.begin, b.end));
    }
    let mut c = TaskLaneContent {
        depths,
        ..TaskLaneContent::default()
    };
    for i in tasks.records_of(k) {
        let r = &records[i];
        if matches!(r.kind, RecordKind::Event | RecordKind::FollowsFrom) {
            c.events.push(i as u32);
            c.event_ts.push(rel(r.ts));
            c.event_level
                .push(callsites.get(&r.callsite).map_or(3, |c| level_num(c.level)));
        }
    }
    c
}

/// Task lanes grouped by root span name (then by start): positions in `task_lanes`.
pub(super) fn by_name(task_lanes: &[TaskLane]) -> Vec<u32> {
    // Millions of tasks share a few names: rank the names once, then sort numbers.
    let mut names: Vec<&str> = task_lanes
        .iter()
        .map(|t| t.name.as_str())
        .collect::<std::collections::HashSet<&str>>()
        .into_iter()
        .collect();
    names.sort_unstable();
    let rank: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i as u32))
        .collect();
    let mut keyed: Vec<(u32, i64, u32)> = task_lanes
        .iter()
        .enumerate()
        .map(|(i, t)| (rank[t.name.as_str()], t.start, i as u32))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use flightrec_format::meta::tokio_task;
    use flightrec_format::meta::ThreadEntry;
    use flightrec_format::testing::{callsite, records_image, TestRecord, TestRecordKind};
    use flightrec_format::testing::{TestValue, EVENTS_WALL_NS};
    use flightrec_format::Callsite;

    use super::super::Model;

    const TASK: u32 = 1;
    const REQUEST: u32 = 2;
    const STEP: u32 = 3;

    fn at(ticks: u64, callsite: u32, kind: TestRecordKind) -> TestRecord {
        TestRecord {
            ticks,
            callsite,
            kind,
        }
    }

    fn task(span: u64, tokio_id: u64) -> TestRecordKind {
        TestRecordKind::SpanNew {
            span,
            parent: u64::MAX,
            fields: vec![
                (0, TestValue::U64(tokio_id)),
                (1, TestValue::Str("src/main.rs".into())),
                (2, TestValue::U64(7)),
            ],
        }
    }

    /// Tasks recorded by the tokio hooks (the `tokio` feature's test records them from a
    /// real runtime; this one lays them out as the hooks write them): a lane per task,
    /// named after the task and the request it runs, its polls on the workers' lanes, and
    /// a task still pending at the end drawn open.
    #[test]
    fn tokio_hook_tasks_get_a_lane_each_with_their_workers_and_polls() {
        let callsites = vec![
            Callsite {
                target: tokio_task::TARGET.into(),
                ..callsite(TASK, true, tokio_task::NAME, &tokio_task::FIELDS)
            },
            callsite(REQUEST, true, "request", &["n"]),
            callsite(STEP, false, "step", &["message"]),
        ];
        use TestRecordKind::{Close, Enter, Exit};
        let step = |parent| TestRecordKind::Event {
            parent,
            fields: vec![(0, TestValue::Str("step".into()))],
        };
        // Worker 1 spawns task 11 (span 1) and 12 (span 2), polls 11 once with its request
        // span inside.
        let w1 = vec![
            at(10, TASK, task(1, 11)),
            at(20, TASK, task(2, 12)),
            at(30, TASK, Enter(1)),
            at(
                31,
                REQUEST,
                TestRecordKind::SpanNew {
                    span: 3,
                    parent: 0,
                    fields: vec![(0, TestValue::U64(1))],
                },
            ),
            at(32, REQUEST, Enter(3)),
            at(33, STEP, step(0)),
            at(34, REQUEST, Exit(3)),
            at(35, TASK, Exit(1)),
            at(40, TASK, Enter(2)),
            at(41, TASK, Exit(2)),
        ];
        // Worker 2 polls task 11 again, to its end.
        let w2 = vec![
            at(50, TASK, Enter(1)),
            at(51, REQUEST, Enter(3)),
            at(52, STEP, step(0)),
            at(53, REQUEST, Exit(3)),
            at(54, REQUEST, Close(3)),
            at(55, TASK, Exit(1)),
            at(56, TASK, Close(1)),
        ];
        let worker = |index, tid| ThreadEntry {
            index,
            tid,
            name: "worker".into(),
        };
        let img = records_image(&callsites, &[(worker(0, 100), w1), (worker(1, 101), w2)]);
        let rec = flightrec_format::decode(&img).unwrap();
        assert!(!rec.damage.is_damaged(), "{:?}", rec.damage);
        assert_eq!(rec.start_wall_ns, EVENTS_WALL_NS as i64);
        let model = Model::new(rec);
        let lane = |label: &str| {
            model
                .task_lanes
                .iter()
                .find(|l| l.label == label)
                .unwrap_or_else(|| panic!("no lane {label}: {:?}", model.task_lanes))
        };
        // Named after the span it runs, with that span's fields.
        let done = lane("task 11 · request n=1");
        assert!(!done.open);
        assert_eq!(done.polls, 2);
        assert_eq!(done.workers.len(), 2);
        for &w in &done.workers {
            assert_eq!(model.lanes[w].name, "worker");
        }
        assert_ne!(done.workers[0], done.workers[1]);
        let pending = lane("task 12");
        assert!(pending.open);
        assert_eq!(pending.polls, 1);
    }
}
