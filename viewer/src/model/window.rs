//! The window engine: what a view of the timeline shows, lane by lane, thread or task.

use super::*;

impl Model {
    /// What the view `[start, end]` (relative ns) at `width` pixels needs: bars and events,
    /// with anything smaller than a pixel merged, and events counted per pixel where there
    /// are too many to draw one by one.
    pub fn window(&self, start: i64, end: i64, width: u32, filter: &Filter) -> Window {
        let q = WindowQuery::new(self, start, end, width, filter);
        // Lanes are independent: on every core, so that ten recordings opened together
        // answer about as fast as one (a zoomed-out window walks every bar in view).
        let lanes = par_map(self.lanes.iter().collect(), |l| {
            let coarse = Some((l.coarse.as_slice(), l.coarse_px));
            let mut w = self.lane_window(
                &q,
                &l.depths,
                coarse,
                &l.events,
                &l.event_ts,
                &l.event_level,
            );
            w.locks = self.lock_window(&q, &l.locks);
            w.bars.extend(activity_window(&q, &l.activity));
            w
        });
        Window {
            start: q.start,
            end: q.end,
            first: 0,
            lanes,
        }
    }

    /// The task view's window: as `window`, for the task lanes `first..first + count` in
    /// `order` (only the lanes on screen are asked for).
    pub fn task_window(
        &self,
        start: i64,
        end: i64,
        width: u32,
        filter: &Filter,
        lanes: TaskRange,
    ) -> Window {
        let q = WindowQuery::new(self, start, end, width, filter);
        let lane_of: HashMap<u32, usize> = self
            .lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (l.thread, i))
            .collect();
        let lane_of = |thread: u32| lane_of.get(&thread).copied();
        let first = lanes.first.min(self.task_lanes.len());
        let count = lanes.count.min(MAX_TASK_LANES_PER_WINDOW);
        let lanes = (first..(first + count).min(self.task_lanes.len()))
            .map(|pos| {
                let task = &self.tasks.list[self.task_at(lanes.order, pos)];
                let l = task_lane_content(
                    &self.records,
                    &self.rec.callsites,
                    task,
                    &lane_of,
                    self.origin,
                );
                self.lane_window(&q, &l.depths, None, &l.events, &l.event_ts, &l.event_level)
            })
            .collect();
        Window {
            start: q.start,
            end: q.end,
            first,
            lanes,
        }
    }

    /// The task lane at position `pos` in `order`.
    pub fn task_at(&self, order: TaskOrder, pos: usize) -> usize {
        match order {
            TaskOrder::Start => pos,
            TaskOrder::Name => self.by_name[pos] as usize,
        }
    }

    /// The task lanes, in `order`: what the task view lays out (their contents come with
    /// `task_window`).
    pub fn task_list(&self, order: TaskOrder) -> TaskList {
        let tasks = (0..self.task_lanes.len())
            .map(|pos| {
                let task = self.task_at(order, pos);
                let l = &self.task_lanes[task];
                TaskMetaOut {
                    task,
                    span: l.span.to_string(),
                    label: l.label.clone(),
                    name: l.name.clone(),
                    start: l.start,
                    end: l.end,
                    open: l.open,
                    depth: l.depth,
                    polls: l.polls,
                    workers: l.workers.clone(),
                }
            })
            .collect();
        TaskList { tasks }
    }

    pub(super) fn lane_window(
        &self,
        q: &WindowQuery<'_>,
        depths: &[Vec<Bar>],
        coarse: Option<(&[Vec<CoarseBars>], i64)>,
        events: &[u32],
        event_ts: &[i64],
        event_level: &[u8],
    ) -> LaneWindow {
        const MAX_EVENTS_PER_LANE: usize = 3000;
        let (start, end, px, m, everything) = (q.start, q.end, q.px, &q.matcher, q.everything);
        let lane = LaneRef {
            depths,
            events,
            event_ts,
            event_level,
        };
        let mut bars: Vec<WindowBar> = Vec::new();
        let passes =
            |b: &Bar| self.callsite_passes(m, self.rec.span_callsites.get(&b.span).copied());
        for (depth, list) in lane.depths.iter().enumerate() {
            let runs = coarse.and_then(|(runs, px)| Some((runs.get(depth)?.as_slice(), px)));
            let filter: Option<&dyn Fn(&Bar) -> bool> = (!everything).then_some(&passes);
            // A run of bars narrower than a pixel becomes one "busy" bar.
            for item in depth_window(list, runs, (start, end, px), filter) {
                bars.push(match item {
                    DepthItem::Clump(s, e, n) => WindowBar::Clump(s, e, depth, n),
                    DepthItem::Bar(i) => {
                        let b = &list[i];
                        WindowBar::Bar(BarOut {
                            b: b.begin,
                            e: b.end,
                            d: depth,
                            span: b.span.to_string(),
                            name: self.span_name(b.span).to_owned(),
                            level: self.level_of(self.rec.span_callsites.get(&b.span).copied()),
                            flags: b.flags,
                            worker: b.worker,
                        })
                    }
                });
            }
        }
        let from = lane.event_ts.partition_point(|&t| t < start);
        let to = lane.event_ts.partition_point(|&t| t <= end);
        let (events, buckets) = if everything && to - from > MAX_EVENTS_PER_LANE {
            // Every event counts: count per pixel without visiting them one by one (a
            // zoomed-out view of ten recordings holds millions).
            let buckets = pixel_buckets(
                &lane.event_ts[from..to],
                &lane.event_level[from..to],
                start,
                px,
            );
            (Vec::new(), buckets)
        } else {
            // Positions in the lane's event arrays.
            let matching: Vec<usize> = (from..to)
                .filter(|&k| {
                    everything || self.record_passes(m, &self.records[lane.events[k] as usize])
                })
                .collect();
            if matching.len() <= MAX_EVENTS_PER_LANE {
                let ev: Vec<WindowEvent> = matching
                    .iter()
                    .map(|&k| {
                        let i = lane.events[k];
                        let r = &self.records[i as usize];
                        WindowEvent {
                            id: i,
                            t: lane.event_ts[k],
                            level: lane.event_level[k],
                            title: self.title(r),
                        }
                    })
                    .collect();
                (ev, Vec::new())
            } else {
                let mut b: Vec<(i64, u32, u8)> = Vec::new();
                for &k in &matching {
                    let x = pixel_of(lane.event_ts[k], start, px);
                    let level = lane.event_level[k];
                    match b.last_mut() {
                        Some(last) if last.0 == x => {
                            last.1 += 1;
                            last.2 = last.2.max(level);
                        }
                        _ => b.push((x, 1, level)),
                    }
                }
                (Vec::new(), b)
            }
        };
        LaneWindow {
            bars,
            locks: Vec::new(),
            events,
            buckets,
            px,
        }
    }

    /// A lane's holds and waits in the window: waits always (they are what a hang is made
    /// of), holds at least a pixel wide or still open, at most `MAX_LOCK_BARS`.
    pub(super) fn lock_window(
        &self,
        q: &WindowQuery<'_>,
        locks: &[flightrec_analysis::locks::LockInterval],
    ) -> Vec<LockBarOut> {
        const MAX_LOCK_BARS: usize = 2000;
        let names = self.names();
        locks
            .iter()
            .filter(|l| l.end >= q.start && l.begin <= q.end)
            .filter(|l| l.waiting || l.open || l.end - l.begin >= q.px)
            .take(MAX_LOCK_BARS)
            .map(|l| LockBarOut {
                b: l.begin,
                e: l.end,
                lock: l.lock,
                name: names.lock_name(l.lock),
                kind: if l.waiting { "wait" } else { "hold" },
                shared: l.shared,
                open: l.open,
            })
            .collect()
    }
}
