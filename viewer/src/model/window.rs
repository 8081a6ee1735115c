//! The window engine: what a view of the timeline shows, lane by lane, thread or task.

use super::*;

/// `list`'s runs of bars narrower than `px` and less than `px` apart, merged.
pub(super) fn coarse_bars(list: &[Bar], px: i64) -> Vec<CoarseBars> {
    let mut out: Vec<CoarseBars> = Vec::new();
    // Whether the last item is a run that narrow bars may still join.
    let mut open = false;
    for (i, b) in list.iter().enumerate() {
        let narrow = b.end.saturating_sub(b.begin) < px;
        match out.last_mut() {
            Some(run) if open && narrow && b.begin.saturating_sub(run.end) < px => {
                run.end = b.end;
                run.count += 1;
            }
            _ => {
                out.push(CoarseBars {
                    begin: b.begin,
                    end: b.end,
                    first: i as u32,
                    count: 1,
                });
                open = narrow;
            }
        }
    }
    out
}

/// What a window shows of one depth: bars (by position in the depth) and clumps of bars
/// narrower than a pixel `(begin, end, bars)`.
#[derive(Debug, PartialEq)]
pub(super) enum DepthItem {
    Bar(usize),
    Clump(i64, i64, u32),
}

/// Walks one depth's bars in a window, clumping the runs narrower than a pixel.
pub(super) struct ClumpWalk {
    pub(super) px: i64,
    pub(super) clump: Option<(i64, i64, u32)>,
    pub(super) items: Vec<DepthItem>,
}

impl ClumpWalk {
    /// `n` bars from `begin` to `end`, each narrower than a pixel and less than a pixel apart.
    fn narrow(&mut self, begin: i64, end: i64, n: u32) {
        match &mut self.clump {
            Some((_, e, count)) if begin.saturating_sub(*e) < self.px => {
                *e = end;
                *count += n;
            }
            _ => {
                self.close();
                self.clump = Some((begin, end, n));
            }
        }
    }

    fn bar(&mut self, list: &[Bar], i: usize) {
        let b = &list[i];
        if b.end.saturating_sub(b.begin) < self.px {
            self.narrow(b.begin, b.end, 1);
        } else {
            self.close();
            self.items.push(DepthItem::Bar(i));
        }
    }

    fn close(&mut self) {
        if let Some((s, e, n)) = self.clump.take() {
            self.items.push(DepthItem::Clump(s, e, n));
        }
    }
}

/// The window `start..=end` at `px` ns a pixel of one depth's bars (`list`), those `passes`
/// lets through. With `coarse` (the depth's runs at `coarse_px`, see `Lane::coarse`), when
/// the pixel is at least that wide and every bar passes, from the runs: the same answer.
pub(super) fn depth_window(
    list: &[Bar],
    coarse: Option<(&[CoarseBars], i64)>,
    (start, end, px): (i64, i64, i64),
    passes: Option<&dyn Fn(&Bar) -> bool>,
) -> Vec<DepthItem> {
    let mut walk = ClumpWalk {
        px,
        clump: None,
        items: Vec::new(),
    };
    match (coarse, passes) {
        (Some((runs, coarse_px)), None) if coarse_px > 0 && px >= coarse_px => {
            let from = runs.partition_point(|c| c.end < start);
            for c in runs[from..].iter().take_while(|c| c.begin <= end) {
                let (first, n) = (c.first as usize, c.count as usize);
                if n == 1 {
                    walk.bar(list, first);
                } else if list[first].end >= start && list[first + n - 1].begin <= end {
                    // Every bar of the run is in the window and narrower than a pixel:
                    // clumped as one by one.
                    walk.narrow(c.begin, c.end, c.count);
                } else {
                    for i in first..first + n {
                        if list[i].end >= start && list[i].begin <= end {
                            walk.bar(list, i);
                        }
                    }
                }
            }
        }
        _ => {
            let from = list.partition_point(|b| b.end < start);
            for (i, b) in list.iter().enumerate().skip(from) {
                if b.begin > end {
                    break;
                }
                if passes.is_none_or(|p| p(b)) {
                    walk.bar(list, i);
                }
            }
        }
    }
    walk.close();
    walk.items
}

/// Filters the page applies to what it is shown.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    /// The least severe level shown: trace, debug, info, warn, error.
    pub level: Option<String>,
    /// A substring of the target.
    pub target: Option<String>,
    /// A substring of an event's message or any field value.
    pub text: Option<String>,
}

/// Task lanes one window answer holds at most: a screenful, with room to spare.
pub const MAX_TASK_LANES_PER_WINDOW: usize = 500;

/// The order of the task view's lanes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskOrder {
    /// By start time.
    #[default]
    Start,
    /// Grouped by root span name, then by start time.
    Name,
}

/// Which task lanes a task window is for: `count` lanes from position `first` in `order`.
#[derive(Debug, Clone, Copy)]
pub struct TaskRange {
    pub order: TaskOrder,
    pub first: usize,
    pub count: usize,
}

/// A window's time range and filter, resolved once for all its lanes.
pub(super) struct WindowQuery<'a> {
    pub(super) start: i64,
    pub(super) end: i64,
    /// ns per pixel.
    pub(super) px: i64,
    pub(super) matcher: Matcher<'a>,
    /// No filter: nothing to look up per item.
    pub(super) everything: bool,
}

impl<'a> WindowQuery<'a> {
    fn new(model: &Model, start: i64, end: i64, width: u32, filter: &'a Filter) -> Self {
        let matcher = model.matcher(filter);
        let everything =
            matcher.min_level == Level::Trace && matcher.target.is_none() && matcher.text.is_none();
        let width = width.clamp(1, 10_000) as i64;
        // Any i64 may arrive from a URL; far beyond any recording is as good as infinity.
        const FAR: i64 = 1 << 60;
        let start = start.clamp(-FAR, FAR);
        let end = end.clamp(-FAR, FAR).max(start + 1);
        WindowQuery {
            start,
            end,
            px: ((end - start) / width).max(1),
            matcher,
            everything,
        }
    }
}

/// What a window reads of a lane, thread or task.
pub(super) struct LaneRef<'l> {
    pub(super) depths: &'l [Vec<Bar>],
    pub(super) events: &'l [u32],
    pub(super) event_ts: &'l [i64],
    pub(super) event_level: &'l [u8],
}

/// The parsed filter, ready to test records.
pub(super) struct Matcher<'a> {
    pub(super) min_level: Level,
    pub(super) target: Option<&'a str>,
    pub(super) text: Option<String>,
}

pub(crate) fn parse_level(s: &str) -> Option<Level> {
    Some(match s.to_ascii_lowercase().as_str() {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warn" => Level::Warn,
        "error" => Level::Error,
        _ => return None,
    })
}

/// Levels as the page colours them: 1 (TRACE) to 5 (ERROR).
pub(super) fn level_num(l: Level) -> u8 {
    l as u8
}

/// The start of the pixel (`px` ns wide, counted from `start`) that time `t` falls in.
pub(super) fn pixel_of(t: i64, start: i64, px: i64) -> i64 {
    start.saturating_add(t.saturating_sub(start) / px * px)
}

/// Events (their times, in order, and levels) counted per pixel: `(pixel start, count, most
/// severe level)` for each pixel holding any. Each pixel's end is found by binary search and
/// its level by a pass over its levels alone, so the cost follows the pixels, not the events.
pub(super) fn pixel_buckets(ts: &[i64], level: &[u8], start: i64, px: i64) -> Vec<(i64, u32, u8)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < ts.len() {
        let x = pixel_of(ts[i], start, px);
        // `pixel_of` never decreases along sorted times, so this is a partition.
        let n = i + ts[i..].partition_point(|&t| pixel_of(t, start, px) <= x);
        let most = level[i..n].iter().copied().max().unwrap_or(0);
        out.push((x, (n - i) as u32, most));
        i = n;
    }
    out
}

/// A lane's activity (see `Lane::activity`) in a window: a clump (row 0) per run of chunks
/// less than a pixel apart, counting their records.
pub(super) fn activity_window(q: &WindowQuery<'_>, activity: &[(i64, i64, u32)]) -> Vec<WindowBar> {
    let mut out = Vec::new();
    let from = activity.partition_point(|a| a.1 < q.start);
    let mut run: Option<(i64, i64, u32)> = None;
    for &(b, e, n) in activity[from..].iter().take_while(|a| a.0 <= q.end) {
        match &mut run {
            Some((_, re, rn)) if b.saturating_sub(*re) < q.px => {
                *re = (*re).max(e);
                *rn = rn.saturating_add(n);
            }
            _ => {
                if let Some((rb, re, rn)) = run.take() {
                    out.push(WindowBar::Clump(rb, re, 0, rn));
                }
                run = Some((b, e, n));
            }
        }
    }
    if let Some((rb, re, rn)) = run {
        out.push(WindowBar::Clump(rb, re, 0, rn));
    }
    out
}

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
        let lane_of = |thread: u32| self.lane_of(thread);
        let first = lanes.first.min(self.task_lanes.len());
        let count = lanes.count.min(MAX_TASK_LANES_PER_WINDOW);
        let lanes = (first..(first + count).min(self.task_lanes.len()))
            .map(|pos| {
                let l = task_lane_content(
                    &self.records,
                    self.header.callsites(),
                    &self.tasks,
                    self.task_at(lanes.order, pos),
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
        let passes = |b: &Bar| self.callsite_passes(m, self.header.span_callsite(b.span));
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
                            level: self.level_of(self.header.span_callsite(b.span)),
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
