//! A decoded recording arranged for the timeline: one lane per thread, each span entry a bar
//! at its nesting depth, events by time, and the queries the page makes.
//!
//! Times in the API are nanoseconds since `origin` (the recording's earliest timestamp), so
//! they fit a JavaScript number exactly; `origin` itself travels as a string.

use std::collections::HashMap;

use crate::contract::{
    BarFlags, BarOut, Constants, DeadlockOut, DeadlockStep, FieldOut, LaneMeta, LaneWindow,
    LevelName, LockBarOut, LockDetails, LockParty, Meta, ObjectRecord, ObjectTrail, ProcessOut,
    RecordDetails, SearchHit, SearchHits, SpanDetails, SpanEntryOut, SpanRef, StackOut, StuckLane,
    TaskList, TaskMetaOut, TasksMeta, TriggerMeta, Window, WindowBar, WindowEvent,
};
use flightrec_analysis::{
    entries_of_plan, merge_fields, Names, ObjectKey, Placement, SpanPlan, Tasks, Trail,
};
use flightrec_format::{Level, Record, RecordKind, Recording, TriggerReason};

mod answers;
mod build;
mod window;

#[cfg(test)]
mod damage_tests;
#[cfg(test)]
mod tests;

/// A bar's entry began before the thread's surviving data: its start was overwritten.
pub const STARTS_BEFORE_DATA: u8 = 1;
/// Still entered when the data ends.
pub const OPEN_AT_END: u8 = 2;

/// No record index (a bar whose enter record was overwritten).
const NO_RECORD: u32 = u32::MAX;

/// One entry of a span on one thread.
#[derive(Debug, Clone)]
pub struct Bar {
    pub begin: i64,
    pub end: i64,
    pub span: u64,
    /// The enter record, or `NO_RECORD`.
    pub record: u32,
    pub flags: u8,
    /// Where the reading layer placed the entry: nested at its depth, or on the span's own
    /// track (drawn in the rows below the lane's nested depths).
    pub placement: Placement,
    /// In the task view, a poll: the lane (of the thread view) of the worker that ran it.
    pub worker: Option<u32>,
}

/// A thread's lane.
#[derive(Debug)]
pub struct Lane {
    pub thread: u32,
    pub tid: u64,
    pub name: String,
    /// Event and `follows_from` records, by time.
    pub events: Vec<u32>,
    /// Each event's time (relative ns) and level, beside `events`: a window over many
    /// events reads these two arrays, not the records.
    pub event_ts: Vec<i64>,
    pub event_level: Vec<u8>,
    /// Bars by nesting depth; within a depth, sorted by begin (and, being disjoint, by end).
    pub depths: Vec<Vec<Bar>>,
    /// Where this thread's surviving data starts (relative ns).
    pub data_start: i64,
    pub last: i64,
    /// Records of this thread lost to overwriting (before `data_start`).
    pub overwritten: u64,
    /// Locks this thread held or waited for, relative times, sorted by begin.
    pub locks: Vec<flightrec_analysis::locks::LockInterval>,
    /// In a model still loading (`Model::skeleton`): where the thread was active, chunk by
    /// chunk (relative first and last record, records), oldest first.
    pub activity: Vec<(i64, i64, u32)>,
    /// Each depth's bars as a window `coarse_px` ns a pixel or coarser sees them: the runs
    /// it would clump anyway (bars narrower than `coarse_px`, less than `coarse_px` apart)
    /// merged in advance, so that a zoomed-out window over millions of bars walks far
    /// fewer. Beside `depths`, depth for depth; empty (and `coarse_px` 0) when not built.
    pub coarse: Vec<Vec<CoarseBars>>,
    pub coarse_px: i64,
}

/// A run of one depth's consecutive bars (see `Lane::coarse`), or one bar (`count` 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoarseBars {
    /// The first bar's begin, the last bar's end.
    pub begin: i64,
    pub end: i64,
    /// Where the first bar is in its depth, and how many bars from there.
    pub first: u32,
    pub count: u32,
}

/// `list`'s runs of bars narrower than `px` and less than `px` apart, merged.
fn coarse_bars(list: &[Bar], px: i64) -> Vec<CoarseBars> {
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
enum DepthItem {
    Bar(usize),
    Clump(i64, i64, u32),
}

/// Walks one depth's bars in a window, clumping the runs narrower than a pixel.
struct ClumpWalk {
    px: i64,
    clump: Option<(i64, i64, u32)>,
    items: Vec<DepthItem>,
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
fn depth_window(
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

/// What is known of a span.
#[derive(Debug, Default)]
pub struct SpanInfo {
    pub callsite: Option<u32>,
    /// Creation and later `record`s, merged: (field index, value).
    pub fields: Vec<flightrec_format::FieldValue>,
    pub parent: Option<u64>,
    pub created_on: Option<u32>,
    /// (lane, depth, index in the depth) of each entry.
    pub entries: Vec<(usize, usize, usize)>,
    pub follows: Vec<u64>,
    pub followed_by: Vec<u64>,
}

/// A task's lane in the task view, as the task list shows it. What it draws (its polls,
/// the spans it entered, its events) is made from the task when the lane is on screen:
/// most of a big recording's tasks never are, and holding every lane's bars cost more
/// than the rest of the model.
#[derive(Debug)]
pub struct TaskLane {
    pub span: u64,
    pub label: String,
    /// Its root span's name, for grouping.
    pub name: String,
    /// From creation (or first sign of life) to close (or the end of the data), relative.
    pub start: i64,
    pub end: i64,
    /// Not closed when the data ends.
    pub open: bool,
    /// Lanes (of the thread view) of the workers that polled it, in order of first poll.
    pub workers: Vec<usize>,
    pub polls: usize,
    /// Rows: its polls, then each depth of the spans entered inside them.
    pub depth: usize,
}

/// What a task lane draws: its polls (row 0), the spans it entered (rows below, by
/// depth), and its events.
#[derive(Debug, Default)]
pub struct TaskLaneContent {
    pub events: Vec<u32>,
    pub event_ts: Vec<i64>,
    pub event_level: Vec<u8>,
    pub depths: Vec<Vec<Bar>>,
}

/// The records a model shows: one recording's, or several recordings' laid end to end
/// without being copied together. A record's id is its position across the parts, in
/// order.
#[derive(Debug, Default)]
pub struct Records {
    parts: Vec<Vec<Record>>,
    /// Id of each part's first record.
    bases: Vec<usize>,
    len: usize,
}

impl Records {
    fn one(records: Vec<Record>) -> Records {
        let mut r = Records::default();
        r.push(records);
        r
    }

    fn push(&mut self, part: Vec<Record>) {
        self.bases.push(self.len);
        self.len += part.len();
        self.parts.push(part);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, id: usize) -> Option<&Record> {
        let k = self.bases.partition_point(|&b| b <= id).checked_sub(1)?;
        self.parts[k].get(id - self.bases[k])
    }

    /// Every record, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.parts.iter().flatten()
    }
}

impl std::ops::Index<usize> for Records {
    type Output = Record;

    fn index(&self, id: usize) -> &Record {
        self.get(id).expect("a record id from this model")
    }
}

pub struct Model {
    /// The recording's header: process, trigger, callsites, threads (its records are in
    /// `records`).
    pub rec: Recording,
    pub records: Records,
    /// ns since the Unix epoch of relative time 0.
    pub origin: i64,
    /// Relative end of the recording (last record or trigger).
    pub end: i64,
    pub lanes: Vec<Lane>,
    /// The reading layer's tasks (requests, tokio tasks), by start time.
    pub tasks: Tasks,
    /// One lane per task, in `tasks.list` order.
    pub task_lanes: Vec<TaskLane>,
    /// Task lanes grouped by root span name (then by start).
    pub by_name: Vec<u32>,
    /// The lock model: per-lock statistics, holds, waits and cycles when the data ends
    /// (ns since the Unix epoch). Its intervals are in the lanes, relative.
    pub locks: flightrec_analysis::LockState,
    /// For several recordings merged: their processes (one per recording, in order).
    pub processes: Vec<flightrec_analysis::merge::MergedProcess>,
    /// Native stacks captured into the dump, unwound and symbolised once, at load.
    pub stacks: Vec<flightrec_analysis::stacks::ThreadStack>,
    /// A stand-in while recordings opened together are read (see `skeleton`).
    pub loading: bool,
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
struct WindowQuery<'a> {
    start: i64,
    end: i64,
    /// ns per pixel.
    px: i64,
    matcher: Matcher<'a>,
    /// No filter: nothing to look up per item.
    everything: bool,
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
struct LaneRef<'l> {
    depths: &'l [Vec<Bar>],
    events: &'l [u32],
    event_ts: &'l [i64],
    event_level: &'l [u8],
}

/// The parsed filter, ready to test records.
struct Matcher<'a> {
    min_level: Level,
    target: Option<&'a str>,
    text: Option<String>,
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
fn level_num(l: Level) -> u8 {
    l as u8
}

/// The task list's lanes, one per task, in `tasks.list` order.
fn task_lanes(
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
fn task_lane_content(
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
fn by_name(task_lanes: &[TaskLane]) -> Vec<u32> {
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

/// `f` over `items`, on as many threads as the machine has cores (each taking the next item
/// as it finishes one), results in the items' order.
pub(crate) fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let n = items.len();
    let workers = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n.max(1));
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let results = std::sync::Mutex::new((0..n).map(|_| None).collect::<Vec<Option<U>>>());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((i, item)) = next else { break };
                let out = f(item);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(out);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// The start of the pixel (`px` ns wide, counted from `start`) that time `t` falls in.
fn pixel_of(t: i64, start: i64, px: i64) -> i64 {
    start.saturating_add(t.saturating_sub(start) / px * px)
}

/// Events (their times, in order, and levels) counted per pixel: `(pixel start, count, most
/// severe level)` for each pixel holding any. Each pixel's end is found by binary search and
/// its level by a pass over its levels alone, so the cost follows the pixels, not the events.
fn pixel_buckets(ts: &[i64], level: &[u8], start: i64, px: i64) -> Vec<(i64, u32, u8)> {
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

/// Runs `f` on a thread of lower CPU priority (nice 10, which the threads it starts
/// inherit): the full read of recordings opened together goes on while the page is drawn
/// from their skeleton, and the page's questions, and the browser beside it, must not wait
/// behind it on a machine of two cores. Best effort: where the priority cannot be lowered,
/// `f` runs all the same.
fn in_background<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A recording's activity by thread, from its scan: `(thread index, chunks)`.
pub type ThreadActivity = Vec<(u32, Vec<flightrec_format::ChunkActivity>)>;

/// A lane's activity (see `Lane::activity`) in a window: a clump (row 0) per run of chunks
/// less than a pixel apart, counting their records.
fn activity_window(q: &WindowQuery<'_>, activity: &[(i64, i64, u32)]) -> Vec<WindowBar> {
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
