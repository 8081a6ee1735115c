//! Several recordings as one model: each modelled on its own, side by side, then laid end
//! to end; and their skeleton (chunk activity) while they are read.

use super::*;

impl Model {
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

    /// What recordings opened together (or one big recording) look like before they are
    /// read: their processes,
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
        // A single recording read in the background keeps its own names and ids, as its
        // whole model will.
        let single = scans.len() == 1;
        let mut parts = Vec::new();
        for (k, (mut rec, activity)) in scans.into_iter().enumerate() {
            let shift = processes[k].shift_ns;
            merge::shift(&mut rec, shift);
            if !single {
                merge::rename_into(k, &mut rec, &processes[k].label);
            }
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
                let local = if single {
                    lane.thread
                } else {
                    merge::local_thread(lane.thread)
                };
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
        if single {
            let mut m = parts.pop().expect("one part");
            m.loading = true;
            return m;
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
        let mut findings = Vec::new();
        let mut lock_report = flightrec_analysis::report::LocksReport::default();
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
                header,
                records: part_records,
                lanes: part_lanes,
                tasks,
                task_lanes,
                locks: part_locks,
                stacks: part_stacks,
                findings: part_findings,
                lock_report: part_lock_report,
                ..
            } = m;
            lock_report.extend(part_lock_report);
            for mut f in part_findings {
                for e in &mut f.records {
                    e.record += record_base;
                }
                findings.push(f);
            }
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
            locks.order.extend(part_locks.order);
            stacks.extend(part_stacks);
            headers.push(header);
        }
        let header = Header::combine(headers);
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
        let mut m = Model::assemble(
            header, records, origin, end, lanes, tasks, task_lanes, locks, stacks,
        );
        // Worst first across the recordings too.
        findings.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.kind));
        m.findings = findings;
        m.lock_report = lock_report;
        m
    }
}
