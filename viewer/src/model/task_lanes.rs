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
            let start = rel(t.start(&rec.records));
            TaskLane {
                span: t.span,
                label: flightrec_analysis::tasks::label(&names, t),
                name: names.span_name(t.span).to_owned(),
                start,
                end: t.closed.map_or(end, rel).max(start),
                open: t.closed.is_none(),
                workers,
                polls: t.polls.len(),
                depth: t.inner.iter().map(|i| i.depth + 1).max().unwrap_or(1),
            }
        })
        .collect()
}

/// What task `t`'s lane draws. `lane_of`: the thread view's lane of each thread.
pub(super) fn task_lane_content(
    records: &Records,
    callsites: &HashMap<u32, flightrec_format::Callsite>,
    t: &flightrec_analysis::Task,
    lane_of: &dyn Fn(u32) -> Option<usize>,
    origin: i64,
) -> TaskLaneContent {
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
    for &i in &t.records {
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
