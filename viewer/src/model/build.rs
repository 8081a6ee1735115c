//! Building a model: from one recording, from several merged (side by side, then laid end
//! to end), and from their skeleton (chunk activity) while they are read.

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
        let plan = SpanPlan::of_recording(&rec);
        let all_entries = entries_of_plan(&plan, &rec.records);
        let tasks = Tasks::from_parts(&rec.records, &all_entries, &plan, Names::new(&rec));
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
        // The one lock model: its intervals go to their threads' lanes, the rest stays whole.
        let names = Names::new(&rec);
        let mut tracker = flightrec_analysis::LockTracker::with_intervals();
        for r in &rec.records {
            tracker.observe(&names, r);
        }
        let mut locks = tracker.finish(end + origin, |thread| {
            flightrec_analysis::locks::complete_thread(&rec, thread)
        });
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
        let task_lanes = task_lanes(&rec, &tasks, &lane_of, origin, end);
        let by_name = by_name(&task_lanes);
        let stacks = flightrec_analysis::stacks::stacks(&rec);
        let records = Records::one(std::mem::take(&mut rec.records));
        Model {
            rec,
            records,
            origin,
            end,
            lanes,
            tasks,
            task_lanes,
            by_name,
            locks,
            processes: Vec::new(),
            stacks,
            loading: false,
        }
    }

    /// Several recordings as one timeline, recording `k` moved by `shifts[k]` ns (see
    /// `flightrec_analysis::merge`) and read by `load(k)` on the core that models it, just
    /// before. Each recording is modelled on its own, side by side on the machine's cores,
    /// and the models are then laid end to end: the work grows with the records, not
    /// faster, and no record is copied into a time-sorted whole (lanes, tasks and queries
    /// order by time themselves). A recording's decoding is done with before the next one's begins: a recording's decoding is done with before the next one's begins, so the
    /// memory held at once is the models and a decode per core. `heads`: the recordings'
    /// headers (`flightrec_format::read_head`), for naming the processes up front.
    pub fn merged_loading(
        heads: &[Recording],
        shifts: &[i64],
        load: impl Fn(usize) -> Result<Recording, String> + Sync,
    ) -> Result<Model, String> {
        let processes = flightrec_analysis::merge::processes(heads, shifts);
        let load = &load;
        in_background(move || Model::merged_parts(processes, load))
    }

    pub(super) fn merged_parts(
        processes: Vec<flightrec_analysis::merge::MergedProcess>,
        load: impl Fn(usize) -> Result<Recording, String> + Sync,
    ) -> Result<Model, String> {
        use flightrec_analysis::merge;
        let mut parts = par_map((0..processes.len()).collect(), |k| {
            let mut rec = load(k)?;
            merge::shift(&mut rec, processes[k].shift_ns);
            merge::rename_into(k, &mut rec, &processes[k].label);
            Ok::<_, String>(Model::new(rec))
        })
        .into_iter()
        .collect::<Result<Vec<Model>, String>>()?;
        let origin = parts.iter().map(|m| m.origin).min().unwrap_or(0);
        for m in &mut parts {
            m.rebase(origin);
        }
        let mut m = Model::concat(parts, origin);
        m.processes = processes;
        Ok(m)
    }

    /// What recordings opened together look like before they are read: their processes,
    /// threads and trigger, and where each thread was active, chunk by chunk, from scans
    /// that decode no record (`flightrec_format::Scan::activity`). The page draws this at
    /// once and asks again until the real model is ready (`loading`).
    pub fn skeleton(scans: Vec<(Recording, ThreadActivity)>, shifts: &[i64]) -> Model {
        use flightrec_analysis::merge;
        let mut scans = scans;
        for (rec, _) in &mut scans {
            // Which callsite each span has: nothing a skeleton draws, and for a big
            // recording a map of hundreds of thousands that would be copied and renamed.
            rec.span_callsites = Default::default();
        }
        let heads: Vec<Recording> = scans.iter().map(|(r, _)| r.clone()).collect();
        let processes = merge::processes(&heads, shifts);
        drop(heads);
        let mut parts = Vec::new();
        for (k, (mut rec, activity)) in scans.into_iter().enumerate() {
            let shift = processes[k].shift_ns;
            merge::shift(&mut rec, shift);
            merge::rename_into(k, &mut rec, &processes[k].label);
            rec.records.clear();
            // Where the records would start: the first thread's first, or the trigger.
            let first = rec.threads.iter().filter_map(|t| t.first_ts).min();
            let last = rec.threads.iter().filter_map(|t| t.last_ts).max();
            let trig = (rec.trigger.reason != TriggerReason::None && rec.trigger.wall_ns > 0)
                .then_some(rec.trigger.wall_ns);
            let origin = first
                .into_iter()
                .chain(trig)
                .min()
                .unwrap_or(rec.start_wall_ns);
            let end = last
                .into_iter()
                .chain(trig)
                .max()
                .unwrap_or(origin)
                .saturating_sub(origin);
            let mut m = Model::at(rec, origin);
            m.end = end;
            for lane in &mut m.lanes {
                let local = merge::local_thread(lane.thread);
                if let Some((_, chunks)) = activity.iter().find(|(t, _)| *t == local) {
                    lane.activity = chunks
                        .iter()
                        .map(|c| {
                            (
                                c.first_ns.saturating_add(shift).saturating_sub(origin),
                                c.last_ns.saturating_add(shift).saturating_sub(origin),
                                c.records.min(u32::MAX as u64) as u32,
                            )
                        })
                        .collect();
                    // One row to draw it in.
                    lane.depths.push(Vec::new());
                }
            }
            parts.push(m);
        }
        let origin = parts.iter().map(|m| m.origin).min().unwrap_or(0);
        for m in &mut parts {
            m.rebase(origin);
        }
        let mut m = Model::concat(parts, origin);
        m.processes = processes;
        m.loading = true;
        m
    }

    /// Re-expresses every relative time against `origin` (no later than this model's).
    pub(super) fn rebase(&mut self, origin: i64) {
        let delta = self.origin.saturating_sub(origin);
        if delta == 0 {
            return;
        }
        let by = |t: &mut i64| *t = t.saturating_add(delta);
        self.origin = origin;
        by(&mut self.end);
        for l in &mut self.lanes {
            l.event_ts.iter_mut().for_each(by);
            for b in l.depths.iter_mut().flatten() {
                by(&mut b.begin);
                by(&mut b.end);
            }
            for c in l.coarse.iter_mut().flatten() {
                by(&mut c.begin);
                by(&mut c.end);
            }
            by(&mut l.data_start);
            by(&mut l.last);
            for x in &mut l.locks {
                by(&mut x.begin);
                by(&mut x.end);
            }
            for a in &mut l.activity {
                by(&mut a.0);
                by(&mut a.1);
            }
        }
        for t in &mut self.task_lanes {
            by(&mut t.start);
            by(&mut t.end);
        }
    }

    /// Models of renamed recordings (apart ids, one origin) laid end to end: records,
    /// lanes and task lanes appended, every index into them moved by what precedes.
    pub(super) fn concat(parts: Vec<Model>, origin: i64) -> Model {
        let end = parts.iter().map(|m| m.end).max().unwrap_or(0);
        let mut records = Records::default();
        let mut lanes = Vec::new();
        let mut task_parts = Vec::new();
        let mut task_lane_parts = Vec::new();
        let mut bases = Vec::new();
        let mut locks = flightrec_analysis::LockState::default();
        let mut stacks = Vec::new();
        let mut headers = Vec::new();
        for m in parts {
            let record_base = records.len();
            let lane_base = lanes.len();
            let moved = |i: u32| {
                if i == NO_RECORD {
                    i
                } else {
                    i + record_base as u32
                }
            };
            let Model {
                rec,
                records: part_records,
                lanes: part_lanes,
                tasks,
                task_lanes,
                locks: part_locks,
                stacks: part_stacks,
                ..
            } = m;
            for part in part_records.parts {
                records.push(part);
            }
            for mut l in part_lanes {
                for e in &mut l.events {
                    *e = moved(*e);
                }
                for b in l.depths.iter_mut().flatten() {
                    b.record = moved(b.record);
                }
                lanes.push(l);
            }
            let task_lanes: Vec<TaskLane> = task_lanes
                .into_iter()
                .map(|mut t| {
                    for w in &mut t.workers {
                        *w += lane_base;
                    }
                    t
                })
                .collect();
            task_parts.push(tasks);
            task_lane_parts.push(task_lanes);
            bases.push(record_base);
            locks.holds.extend(part_locks.holds);
            locks.waits.extend(part_locks.waits);
            locks.deadlocks.extend(part_locks.deadlocks);
            locks.stats.extend(part_locks.stats);
            stacks.extend(part_stacks);
            headers.push(rec);
        }
        let rec = flightrec_analysis::merge::combine(headers, Vec::new());
        let starts: Vec<Vec<i64>> = task_lane_parts
            .iter()
            .map(|p| p.iter().map(|t| t.start).collect())
            .collect();
        let (tasks, moved) = Tasks::concat(task_parts, &bases, &starts, records.len());
        // The task lanes in the tasks' new order, sorted in place (there are millions).
        let mut from = vec![0usize; tasks.list.len()];
        let mut task_lanes: Vec<TaskLane> = Vec::with_capacity(tasks.list.len());
        for (k, part) in task_lane_parts.into_iter().enumerate() {
            for (pos, t) in part.into_iter().enumerate() {
                from[moved[k][pos] as usize] = task_lanes.len();
                task_lanes.push(t);
            }
        }
        flightrec_analysis::tasks::permute(&mut task_lanes, &from);
        let by_name = by_name(&task_lanes);
        Model {
            rec,
            records,
            origin,
            end,
            lanes,
            tasks,
            task_lanes,
            by_name,
            locks,
            processes: Vec::new(),
            stacks,
            loading: false,
        }
    }
}
