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
    /// Lock-order cycles when the data ends.
    pub deadlocks: Vec<Vec<flightrec_analysis::locks::CycleStep>>,
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

impl Model {
    pub fn new(rec: Recording) -> Model {
        let origin = Model::origin_of(&rec);
        Model::at(rec, origin)
    }

    /// Relative time 0 for a recording: its first record, or its trigger when earlier.
    fn origin_of(rec: &Recording) -> i64 {
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
    fn at(mut rec: Recording, origin: i64) -> Model {
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
        let names = Names::new(&rec);
        for mut l in flightrec_analysis::locks::lock_intervals(&names, &rec.records, end + origin) {
            if let Some(&lane) = lane_of.get(&l.thread) {
                l.begin = l.begin.saturating_sub(origin);
                l.end = l.end.saturating_sub(origin);
                lanes[lane].locks.push(l);
            }
        }
        for l in &mut lanes {
            l.locks.sort_by_key(|x| (x.begin, x.end));
        }
        let deadlocks = flightrec_analysis::LockState::of(&rec).deadlocks;
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
            deadlocks,
            processes: Vec::new(),
            stacks,
            loading: false,
        }
    }

    /// Several recordings as one timeline, recording `k` moved by `shifts[k]` ns (see
    /// `flightrec_analysis::merge`). Each recording is modelled on its own, side by side on
    /// the machine's cores, and the models are then laid end to end: the work grows with
    /// the records, not faster, and no record is copied into a time-sorted whole (lanes,
    /// tasks and queries order by time themselves).
    pub fn merged(recs: Vec<Recording>, shifts: &[i64]) -> Model {
        let processes = flightrec_analysis::merge::processes(&recs, shifts);
        let recs: Vec<std::sync::Mutex<Option<Recording>>> = recs
            .into_iter()
            .map(|r| std::sync::Mutex::new(Some(r)))
            .collect();
        let take = |k: usize| {
            recs[k]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .ok_or_else(|| "taken twice".to_owned())
        };
        match Model::merged_parts(processes, take) {
            Ok(m) => m,
            Err(e) => unreachable!("each recording is given once: {e}"),
        }
    }

    /// As `merged`, each recording read by `load(k)` on the core that models it, just
    /// before: a recording's decoding is done with before the next one's begins, so the
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

    fn merged_parts(
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
    fn rebase(&mut self, origin: i64) {
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
    fn concat(parts: Vec<Model>, origin: i64) -> Model {
        let end = parts.iter().map(|m| m.end).max().unwrap_or(0);
        let mut records = Records::default();
        let mut lanes = Vec::new();
        let mut task_parts = Vec::new();
        let mut task_lane_parts = Vec::new();
        let mut bases = Vec::new();
        let mut deadlocks = Vec::new();
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
                deadlocks: part_deadlocks,
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
            deadlocks.extend(part_deadlocks);
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
            deadlocks,
            processes: Vec::new(),
            stacks,
            loading: false,
        }
    }

    /// The process (its position among the merged ones) a thread belongs to.
    fn process_of(&self, thread: u32) -> Option<usize> {
        if self.processes.is_empty() {
            return None;
        }
        self.processes.iter().rposition(|p| p.thread_base <= thread)
    }

    fn names(&self) -> Names<'_> {
        Names::new(&self.rec)
    }

    fn callsite(&self, id: u32) -> Option<&flightrec_format::Callsite> {
        self.rec.callsites.get(&id)
    }

    fn field_name(&self, callsite: Option<u32>, index: u8) -> String {
        match callsite {
            Some(c) => self.names().field_name(c, index).into_owned(),
            None => format!("field{index}"),
        }
    }

    fn span_name(&self, span: u64) -> &str {
        self.names().span_name(span)
    }

    fn thread_name(&self, index: u32) -> &str {
        self.names().thread(index).0
    }

    /// A record's title, by the reading layer's rule.
    pub fn title(&self, r: &Record) -> String {
        self.names().title(r).into_owned()
    }

    fn matcher<'a>(&self, f: &'a Filter) -> Matcher<'a> {
        Matcher {
            min_level: f
                .level
                .as_deref()
                .and_then(parse_level)
                .unwrap_or(Level::Trace),
            target: f.target.as_deref().filter(|t| !t.is_empty()),
            text: f
                .text
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase),
        }
    }

    fn callsite_passes(&self, m: &Matcher<'_>, callsite: Option<u32>) -> bool {
        let Some(cs) = callsite.and_then(|c| self.callsite(c)) else {
            return m.target.is_none();
        };
        cs.level >= m.min_level && m.target.is_none_or(|t| cs.target.contains(t))
    }

    fn record_passes(&self, m: &Matcher<'_>, r: &Record) -> bool {
        if !self.callsite_passes(m, Some(r.callsite)) {
            return false;
        }
        match &m.text {
            None => true,
            Some(text) => {
                self.title(r).to_lowercase().contains(text)
                    || r.fields
                        .iter()
                        .any(|f| f.value.to_text().to_lowercase().contains(text))
            }
        }
    }

    fn level_of(&self, callsite: Option<u32>) -> u8 {
        callsite
            .and_then(|c| self.callsite(c))
            .map_or(3, |c| level_num(c.level))
    }

    /// The page's first request: lanes, time range, trigger.
    pub fn meta(&self) -> Meta {
        let lanes = self
            .lanes
            .iter()
            .enumerate()
            .map(|(i, l)| LaneMeta {
                lane: i,
                thread: l.thread,
                tid: l.tid,
                name: l.name.clone(),
                data_start: l.data_start,
                last: l.last,
                overwritten: l.overwritten,
                cut: self.rec.damage.missing_bytes > 0 || self.rec.damage.missing_chunks > 0,
                depth: l.depths.len(),
                events: l.events.len(),
                process: self.process_of(l.thread),
            })
            .collect();
        let p = &self.rec.process;
        let t = &self.rec.trigger;
        let trigger = (t.reason != TriggerReason::None).then(|| {
            let lane = self.lanes.iter().position(|l| l.tid == t.tid && t.tid != 0);
            TriggerMeta {
                reason: t.reason.slug(),
                description: t.describe(),
                message: t.message.clone(),
                t: (t.wall_ns > 0).then(|| t.wall_ns.saturating_sub(self.origin)),
                tid: t.tid,
                lane,
                thread: lane.map(|l| self.lanes[l].name.clone()),
                stuck: self.stuck_lanes(),
            }
        });
        let mut targets: Vec<String> = self
            .rec
            .callsites
            .values()
            .map(|c| c.target.clone())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        Meta {
            loading: self.loading,
            service: p.service.clone(),
            pid: p.pid,
            host: p.host.clone(),
            exe: p.exe.clone(),
            origin: self.origin.to_string(),
            end: self.end,
            records: self.records.len(),
            lanes,
            trigger,
            stacks: self
                .stacks
                .iter()
                .map(|t| StackOut {
                    tid: t.tid,
                    lane: self.lanes.iter().position(|l| l.tid == t.tid),
                    thread: t.thread.clone(),
                    headline: t.headline(),
                    reason: match t.reason {
                        flightrec_format::CaptureReason::Crash => "crash",
                        flightrec_format::CaptureReason::Stall => "stall",
                        flightrec_format::CaptureReason::Snapshot => "snapshot",
                        flightrec_format::CaptureReason::Unknown(_) => "unknown",
                    },
                    answered: t.outcome == flightrec_format::CaptureOutcome::Captured,
                    frames: t.frames.iter().map(|f| f.describe()).collect(),
                    note: t.note.clone(),
                })
                .collect(),
            deadlocks: self.deadlocks_out(),
            processes: self
                .processes
                .iter()
                .map(|p| ProcessOut {
                    label: p.label.clone(),
                    service: p.process.service.clone(),
                    pid: p.process.pid,
                    host: p.process.host.clone(),
                    trigger: (p.trigger.reason != TriggerReason::None)
                        .then(|| p.trigger.describe()),
                    clock: p.clock,
                    shift_ns: p.shift_ns,
                })
                .collect(),
            several_hosts: {
                let mut hosts: Vec<&str> = self
                    .processes
                    .iter()
                    .map(|p| p.process.host.as_str())
                    .collect();
                hosts.sort_unstable();
                hosts.dedup();
                hosts.len() > 1
            },
            tasks: TasksMeta {
                count: self.task_lanes.len(),
                hop: self.tasks.hop_threads(),
                tokio: self.tasks.list.iter().filter(|t| t.tokio.is_some()).count(),
            },
            targets,
            damaged: self.rec.damage.is_damaged(),
            constants: Constants {
                flags: BarFlags {
                    starts_before_data: STARTS_BEFORE_DATA,
                    open_at_end: OPEN_AT_END,
                },
                levels: [
                    Level::Trace,
                    Level::Debug,
                    Level::Info,
                    Level::Warn,
                    Level::Error,
                ]
                .into_iter()
                .map(|l| LevelName {
                    level: level_num(l),
                    name: l.as_str(),
                })
                .collect(),
            },
            file: None,
            size: None,
        }
    }

    fn deadlocks_out(&self) -> Vec<DeadlockOut> {
        let names = self.names();
        let lane_of = |t: u32| self.lanes.iter().position(|l| l.thread == t);
        let lock_name = |l: u32| {
            names
                .callsite(l)
                .map_or_else(|| format!("lock {l}"), |c| c.name.clone())
        };
        self.deadlocks
            .iter()
            .map(|cycle| DeadlockOut {
                description: flightrec_analysis::locks::describe_deadlock(&names, cycle),
                steps: cycle
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let next = &cycle[(i + 1) % cycle.len()];
                        DeadlockStep {
                            lane: lane_of(s.thread),
                            thread: names.thread_label(s.thread),
                            holds: lock_name(s.holds),
                            waits_for: lock_name(s.waits_for),
                            holder: lane_of(next.thread),
                            since: s.since.saturating_sub(self.origin),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// For a stall: each lane whose last record lies well before the trigger, with the spans
    /// open at its end and how long it had been silent.
    fn stuck_lanes(&self) -> Vec<StuckLane> {
        let t = &self.rec.trigger;
        if t.reason != TriggerReason::Stall || t.wall_ns == 0 {
            return Vec::new();
        }
        let at = t.wall_ns.saturating_sub(self.origin);
        self.lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| at.saturating_sub(l.last) > 50_000_000)
            .map(|(i, l)| StuckLane {
                lane: i,
                name: l.name.clone(),
                silent_ns: at.saturating_sub(l.last),
                open_spans: l
                    .depths
                    .iter()
                    .flat_map(|d| d.last())
                    .filter(|b| b.flags & OPEN_AT_END != 0)
                    .map(|b| self.span_name(b.span).to_owned())
                    .collect(),
            })
            .collect()
    }

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

    fn lane_window(
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
    fn lock_window(
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
                name: names
                    .callsite(l.lock)
                    .map_or_else(|| format!("lock {}", l.lock), |c| c.name.clone()),
                kind: if l.waiting { "wait" } else { "hold" },
                shared: l.shared,
                open: l.open,
            })
            .collect()
    }

    fn span_ref(&self, span: u64) -> SpanRef {
        SpanRef {
            span: span.to_string(),
            name: self.span_name(span).to_owned(),
        }
    }

    /// A recorded lock's page: what it is, how it was used, who holds and waits for it.
    pub fn lock(&self, id: u32) -> Option<LockDetails> {
        let info = flightrec_analysis::locks::locks(&self.rec)
            .into_iter()
            .find(|l| l.id == id)?;
        let mut stats = flightrec_analysis::locks::LockStats::default();
        let mut holders = Vec::new();
        let mut waiters = Vec::new();
        let mut waits = Vec::new();
        for (li, lane) in self.lanes.iter().enumerate() {
            for l in lane.locks.iter().filter(|l| l.lock == id) {
                let party = LockParty {
                    lane: Some(li),
                    thread: lane.name.clone(),
                    since: l.begin,
                    ns: l.end - l.begin,
                    shared: l.shared,
                };
                let ns = (l.end - l.begin).max(0) as u64;
                if l.waiting {
                    if !l.open {
                        stats.contended += 1;
                        stats.total_wait_ns += ns;
                        stats.max_wait_ns = stats.max_wait_ns.max(ns);
                    }
                    if l.open {
                        waiters.push(party);
                    } else {
                        waits.push(party);
                    }
                } else {
                    stats.acquisitions += 1;
                    if !l.open {
                        stats.total_hold_ns += ns;
                        stats.max_hold_ns = stats.max_hold_ns.max(ns);
                    }
                    if l.open {
                        holders.push(party);
                    }
                }
            }
        }
        waits.sort_by_key(|w| std::cmp::Reverse(w.ns));
        waits.truncate(20);
        Some(LockDetails {
            lock: id,
            name: info.name,
            kind: info.kind,
            place: info.place,
            acquisitions: stats.acquisitions,
            contended: stats.contended,
            total_wait_ns: stats.total_wait_ns,
            max_wait_ns: stats.max_wait_ns,
            total_hold_ns: stats.total_hold_ns,
            max_hold_ns: stats.max_hold_ns,
            holders,
            waiters,
            longest_waits: waits,
        })
    }

    /// Everything about one record, for the details panel.
    pub fn record(&self, id: usize) -> Option<RecordDetails> {
        let r = self.records.get(id)?;
        let cs = self.callsite(r.callsite);
        let fields = r
            .fields
            .iter()
            .map(|f| FieldOut {
                name: self.field_name(Some(r.callsite), f.index),
                value: f.value.to_text(),
                kind: f.value.type_name(),
                truncated: Some(f.truncated),
            })
            .collect();
        let lane = self.lanes.iter().position(|l| l.thread == r.thread);
        Some(RecordDetails {
            id,
            t: r.ts.saturating_sub(self.origin),
            ts: r.ts.to_string(),
            kind: r.kind.as_str(),
            title: self.title(r),
            level: cs.map(|c| c.level.as_str()),
            target: cs.map(|c| c.target.clone()),
            name: cs.map(|c| c.name.clone()),
            file: cs.and_then(|c| c.file.clone()),
            line: cs.and_then(|c| c.line),
            thread: self.thread_name(r.thread).to_owned(),
            lane,
            tid: lane.map(|l| self.lanes[l].tid),
            fields,
            spans: r.spans.iter().map(|&s| self.span_ref(s)).collect(),
            truncated: r.truncated,
            span: (r.span != 0).then(|| r.span.to_string()),
            follows: r.follows.map(|f| f.to_string()),
        })
    }

    /// What the recording says of `span`, gathered when asked (a click, not a load):
    /// one pass over the records and the bars. `None` when it says nothing.
    fn span_info(&self, span: u64) -> Option<SpanInfo> {
        let mut s = SpanInfo {
            callsite: self.rec.span_callsites.get(&span).copied(),
            ..SpanInfo::default()
        };
        let mut known = s.callsite.is_some();
        for r in self.records.iter() {
            match r.kind {
                RecordKind::SpanNew if r.span == span => {
                    s.parent = r.parent;
                    s.created_on = Some(r.thread);
                    merge_fields(&mut s.fields, &r.fields);
                    known = true;
                }
                RecordKind::SpanRecord if r.span == span => {
                    merge_fields(&mut s.fields, &r.fields);
                    known = true;
                }
                RecordKind::FollowsFrom => {
                    if let Some(f) = r.follows {
                        if r.span == span {
                            s.follows.push(f);
                            known = true;
                        }
                        if f == span {
                            s.followed_by.push(r.span);
                            known = true;
                        }
                    }
                }
                _ => {}
            }
        }
        for (li, l) in self.lanes.iter().enumerate() {
            for (depth, bars) in l.depths.iter().enumerate() {
                for (at, b) in bars.iter().enumerate() {
                    if b.span == span {
                        s.entries.push((li, depth, at));
                    }
                }
            }
        }
        known |= !s.entries.is_empty();
        known.then_some(s)
    }

    /// Everything about one span: fields, every entry on every thread, links.
    pub fn span(&self, span: u64) -> Option<SpanDetails> {
        let s = self.span_info(span)?;
        let cs = s.callsite.and_then(|c| self.callsite(c));
        let mut entries: Vec<SpanEntryOut> = s
            .entries
            .iter()
            .map(|&(lane, depth, at)| {
                let b = &self.lanes[lane].depths[depth][at];
                SpanEntryOut {
                    lane,
                    thread: self.lanes[lane].name.clone(),
                    b: b.begin,
                    e: b.end,
                    d: depth,
                    flags: b.flags,
                    record: (b.record != NO_RECORD).then_some(b.record),
                }
            })
            .collect();
        entries.sort_by_key(|e| e.b);
        // The span stack when it was first entered (from the enter record, when it survived).
        let stack = entries
            .iter()
            .find_map(|e| e.record)
            .and_then(|i| self.records.get(i as usize))
            .map(|r| r.spans.iter().map(|&s| self.span_ref(s)).collect())
            .unwrap_or_default();
        let fields = s
            .fields
            .iter()
            .map(|f| FieldOut {
                name: self.field_name(s.callsite, f.index),
                value: f.value.to_text(),
                kind: f.value.type_name(),
                truncated: None,
            })
            .collect();
        let refs = |v: &[u64]| v.iter().map(|&id| self.span_ref(id)).collect();
        Some(SpanDetails {
            span: span.to_string(),
            name: self.span_name(span).to_owned(),
            level: cs.map(|c| c.level.as_str()),
            target: cs.map(|c| c.target.clone()),
            file: cs.and_then(|c| c.file.clone()),
            line: cs.and_then(|c| c.line),
            fields,
            parent: s.parent.map(|p| self.span_ref(p)),
            created_on: s.created_on.map(|t| self.thread_name(t).to_owned()),
            entries,
            follows: refs(&s.follows),
            followed_by: refs(&s.followed_by),
            stack,
        })
    }

    /// Every record that carries `field = value`, on any thread, in time order, marking where
    /// the object passes from one thread to another. Beyond `limit`, the newest are kept:
    /// in a flight recording the end is where the trouble is.
    pub fn object(&self, field: &str, value: &str, limit: usize) -> ObjectTrail {
        let mut out = std::collections::VecDeque::new();
        let key = ObjectKey::new(field, value);
        let names = self.names();
        let mut trail = Trail::default();
        // The same trail, between tasks (a record outside any task ends no hand-over).
        let mut task_trail = Trail::default();
        // Merged recordings lie process after process: put the carriers in time order.
        let mut carriers: Vec<(i64, usize)> = self
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| key.carried_by(&names, r))
            .map(|(i, r)| (r.ts, i))
            .collect();
        carriers.sort_unstable();
        for (_, i) in carriers {
            let r = &self.records[i];
            let from_thread = trail.step(r.thread);
            let task = self.tasks.of_record(i);
            let from_task = task.and_then(|t| task_trail.step(t as u32));
            if out.len() == limit.max(1) {
                out.pop_front();
            }
            out.push_back(ObjectRecord {
                id: i,
                t: r.ts.saturating_sub(self.origin),
                kind: r.kind.as_str(),
                lane: self.lanes.iter().position(|l| l.thread == r.thread),
                thread: self.thread_name(r.thread).to_owned(),
                span: r.spans.last().map(|&s| self.span_name(s).to_owned()),
                title: self.title(r),
                handover: from_thread.is_some(),
                from: from_thread.map(|p| self.thread_name(p).to_owned()),
                task,
                task_handover: from_task.is_some(),
                task_label: task.map(|t| self.task_lanes[t].label.clone()),
                from_task: from_task.map(|t| self.task_lanes[t as usize].label.clone()),
            });
        }
        ObjectTrail {
            field: field.to_owned(),
            value: value.to_owned(),
            truncated: trail.carriers > out.len(),
            records: out.into(),
            total: trail.carriers,
            handovers: trail.handovers,
        }
    }

    /// Events matching the filter (its text is the search), in time order.
    pub fn search(&self, filter: &Filter, limit: usize) -> SearchHits {
        let m = self.matcher(filter);
        let mut out = Vec::new();
        let mut total = 0usize;
        for l in &self.lanes {
            for &i in &l.events {
                let r = &self.records[i as usize];
                if self.record_passes(&m, r) {
                    total += 1;
                    out.push((r.ts, i));
                }
            }
        }
        out.sort_unstable();
        out.truncate(limit);
        let hits = out
            .iter()
            .map(|&(ts, i)| {
                let r = &self.records[i as usize];
                SearchHit {
                    id: i,
                    t: ts.saturating_sub(self.origin),
                    lane: self.lanes.iter().position(|l| l.thread == r.thread),
                }
            })
            .collect();
        SearchHits { hits, total }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use flightrec_format::{Callsite, Damage, FieldValue, ProcessInfo, Record, RecordKind};
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
            parent: None,
            follows: None,
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
            } else {
                Vec::new()
            },
            truncated: false,
            spans: Arc::from(stack),
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
            span_callsites: HashMap::from([(7, 2)]),
            damage: Damage::default(),
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
            ev.fields[1].value = Value::U64(5);
            records.push(ev);
            records.push(record(t + 20, thread, Exit, span, &[span]));
        }
        rec.records = records;
        rec.trigger = Trigger::none();
        // Request 2's span has another name, "a", which groups before "s".
        rec.callsites.insert(3, callsite(3, true, "a"));
        rec.span_callsites = HashMap::from([(1, 2), (2, 3)]);
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
        let (sorted, processes) =
            flightrec_analysis::merge::merge_shifted(vec![a.clone(), b.clone()], &shifts);
        let mut reference = Model::new(sorted);
        reference.processes = processes;
        let merged = Model::merged(vec![a, b], &shifts);
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
                assert!(merged.tasks.list[t].records.contains(&i));
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
        let w =
            serde_json::to_value(m.window(i64::MIN, i64::MAX, 1000, &Filter::default())).unwrap();
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
}

/// The model over damaged input: every single-byte flip and every truncation of a small
/// image that still decodes must give a model whose every query answers without a panic.
#[cfg(test)]
mod damage_tests {
    use super::*;

    fn exercise(img: &[u8]) {
        let Ok(rec) = flightrec_format::decode(img) else {
            return;
        };
        let n = rec.records.len();
        let m = Model::new(rec);
        let _ = m.meta();
        for (start, end) in [(0, m.end.max(1)), (i64::MIN, i64::MAX), (-5, 3), (7, 7)] {
            let _ = m.window(start, end, 800, &Filter::default());
        }
        for i in 0..n + 1 {
            let _ = m.record(i);
        }
        let mut spans: Vec<u64> = m.records.iter().map(|r| r.span).collect();
        spans.extend(m.rec.span_callsites.keys());
        spans.sort_unstable();
        spans.dedup();
        for s in spans {
            let _ = m.span(s);
        }
        let _ = m.object("n", "0", 10);
        let _ = m.search(
            &Filter {
                text: Some("hello".into()),
                ..Filter::default()
            },
            10,
        );
    }

    #[test]
    fn every_flip_and_truncation_of_an_image_gives_a_model_that_answers() {
        let img = flightrec_format::testing::sample_image(3);
        let start = flightrec_format::layout::HEADER_SIZE;
        for at in start..img.len() {
            let mut b = img.clone();
            b[at] ^= 0x5a;
            exercise(&b);
        }
        for len in (0..img.len()).step_by(7) {
            exercise(&img[..len]);
        }
    }
}
