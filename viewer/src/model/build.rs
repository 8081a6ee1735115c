//! Building a model from one recording.

use super::*;

impl Model {
    pub fn new(rec: Recording) -> Model {
        let origin = Model::origin_of(&rec);
        Model::at(rec, origin)
    }

    /// Relative time 0 for a recording: its first record, or its trigger when earlier.
    pub(super) fn origin_of(rec: &Recording) -> i64 {
        let first = rec.records.first().map(|r| r.ts);
        let trig = (rec.trigger.reason != TriggerReason::None && rec.trigger.wall_ns > 0)
            .then_some(rec.trigger.wall_ns);
        match (first, trig) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => rec.start_wall_ns,
        }
    }

    /// The model of `rec`, its times relative to `origin` (ns since the Unix epoch).
    pub(super) fn at(mut rec: Recording, origin: i64) -> Model {
        // The analysis's pass over the records (the lock replay, the objects' touches) on
        // another core, beside the model, which resolves the tasks from the span entries it
        // draws; the findings then read both.
        let (replay, built) = std::thread::scope(|s| {
            let replay = s.spawn(|| flightrec_analysis::findings::Replay::of(&rec));
            let built = Model::build(&rec, origin);
            (replay.join(), built)
        });
        let replay = match replay {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let Built {
            end,
            mut lanes,
            tasks,
            task_lanes,
            stacks,
        } = built;
        let analysis = flightrec_analysis::Analysis::from_parts(
            tasks,
            replay,
            &[],
            &flightrec_analysis::findings::Thresholds::default(),
        );
        let flightrec_analysis::Analysis {
            tasks,
            mut locks,
            findings: found,
            ..
        } = analysis;
        let lock_report = flightrec_analysis::report::LocksReport::of(&rec, &locks);
        // The holds and waits, as intervals, go to their threads' lanes; the rest stays whole.
        let lane_of: HashMap<u32, usize> = lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (l.thread, i))
            .collect();
        for mut l in std::mem::take(&mut locks.intervals) {
            if let Some(&lane) = lane_of.get(&l.thread) {
                l.begin = l.begin.saturating_sub(origin);
                l.end = l.end.saturating_sub(origin);
                lanes[lane].locks.push(l);
            }
        }
        for l in &mut lanes {
            l.locks.sort_by_key(|x| (x.begin, x.end));
        }
        let records = Records::one(std::mem::take(&mut rec.records));
        let mut m = Model::assemble(
            Header::of(rec),
            records,
            origin,
            end,
            lanes,
            tasks,
            task_lanes,
            locks,
            stacks,
        );
        m.findings = found;
        m.lock_report = lock_report;
        m
    }

    /// Everything of a model but its records, from `rec`.
    fn build(rec: &Recording, origin: i64) -> Built {
        let last = rec.records.last().map_or(origin, |r| r.ts);
        let trig = (rec.trigger.reason != TriggerReason::None && rec.trigger.wall_ns > 0)
            .then_some(rec.trigger.wall_ns);
        let end = last.max(trig.unwrap_or(last)).saturating_sub(origin);
        let mut lane_of: HashMap<u32, usize> = HashMap::new();
        let mut lanes: Vec<Lane> = Vec::new();
        for t in &rec.threads {
            if t.records == 0 {
                continue;
            }
            lane_of.insert(t.index, lanes.len());
            lanes.push(Lane {
                thread: t.index,
                tid: t.tid,
                name: t.name.clone(),
                events: Vec::new(),
                event_ts: Vec::new(),
                event_level: Vec::new(),
                depths: Vec::new(),
                data_start: t.first_ts.map_or(0, |f| f.saturating_sub(origin)),
                last: t.last_ts.map_or(0, |l| l.saturating_sub(origin)),
                overwritten: t.overwritten,
                locks: Vec::new(),
                activity: Vec::new(),
                coarse: Vec::new(),
                coarse_px: 0,
            });
        }
        // Entries, as the reading layer reconstructs them for every reader.
        // Own-track bars per lane, placed in rows below the nested ones afterwards.
        let mut own: Vec<Vec<Bar>> = (0..lanes.len()).map(|_| Vec::new()).collect();
        let plan = SpanPlan::of_recording(rec);
        let all_entries = entries_of_plan(&plan, &rec.records);
        let tasks = flightrec_analysis::Analysis::tasks_of_spans(rec, &all_entries, &plan);
        drop(plan);
        for &e in &all_entries {
            let Some(&lane) = lane_of.get(&e.thread) else {
                continue;
            };
            let mut flags = 0;
            if e.enter_record.is_none() {
                flags |= STARTS_BEFORE_DATA;
            }
            if e.open_at_end {
                flags |= OPEN_AT_END;
            }
            let bar = Bar {
                begin: e.begin.saturating_sub(origin),
                end: e.end.saturating_sub(origin),
                span: e.span,
                record: e.enter_record.map_or(NO_RECORD, |i| i as u32),
                flags,
                placement: e.placement,
                worker: None,
            };
            match e.placement {
                Placement::Nested { depth } => {
                    let depths = &mut lanes[lane].depths;
                    while depths.len() <= depth as usize {
                        depths.push(Vec::new());
                    }
                    depths[depth as usize].push(bar);
                }
                Placement::Own => own[lane].push(bar),
            }
        }
        for (i, r) in rec.records.iter().enumerate() {
            if matches!(r.kind, RecordKind::Event | RecordKind::FollowsFrom) {
                if let Some(&lane) = lane_of.get(&r.thread) {
                    let level = rec
                        .callsites
                        .get(&r.callsite)
                        .map_or(3, |c| level_num(c.level));
                    let l = &mut lanes[lane];
                    l.events.push(i as u32);
                    l.event_ts.push(r.ts.saturating_sub(origin));
                    l.event_level.push(level);
                }
            }
        }
        // Own-track entries go in rows below the thread's nested depths, each bar in the
        // first row where it overlaps nothing.
        for (lane, mut bars) in own.into_iter().enumerate() {
            bars.sort_by_key(|b| (b.begin, b.end));
            let base = lanes[lane].depths.len();
            let mut row_ends: Vec<i64> = Vec::new();
            for bar in bars {
                let row = match row_ends.iter().position(|&e| e <= bar.begin) {
                    Some(r) => r,
                    None => {
                        row_ends.push(i64::MIN);
                        row_ends.len() - 1
                    }
                };
                row_ends[row] = bar.end;
                let depths = &mut lanes[lane].depths;
                while depths.len() <= base + row {
                    depths.push(Vec::new());
                }
                depths[base + row].push(bar);
            }
        }
        // Bars were pushed as they ended; the queries want them by begin.
        for l in &mut lanes {
            for bars in &mut l.depths {
                bars.sort_by_key(|b| b.begin);
            }
            // Runs for windows of the whole lane down to about 1/16384 of it (a canvas is a
            // few thousand pixels wide).
            let span = l.last.saturating_sub(l.data_start).max(0);
            l.coarse_px = (span / 16384).max(1);
            l.coarse = l
                .depths
                .iter()
                .map(|d| coarse_bars(d, l.coarse_px))
                .collect();
        }
        drop(all_entries);
        let task_lanes = task_lanes(rec, &tasks, &lane_of, origin, end);
        let stacks = flightrec_analysis::stacks::stacks(rec);
        Built {
            end,
            lanes,
            tasks,
            task_lanes,
            stacks,
        }
    }
}

/// What `Model::build` makes of a recording.
struct Built {
    end: i64,
    lanes: Vec<Lane>,
    tasks: Tasks,
    task_lanes: Vec<TaskLane>,
    stacks: Vec<flightrec_analysis::stacks::ThreadStack>,
}
