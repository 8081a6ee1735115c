//! A decoded recording arranged for the timeline: one lane per thread, each span entry a bar
//! at its nesting depth, events by time, and the queries the page makes.
//!
//! Times in the API are nanoseconds since `origin` (the recording's earliest timestamp), so
//! they fit a JavaScript number exactly; `origin` itself travels as a string.

use std::collections::HashMap;

use crate::contract::{
    BarFlags, BarOut, Constants, DeadlockOut, DeadlockStep, FieldOut, FindingMark, FindingOut,
    HistoryOut, LaneMeta, LaneWindow, LevelName, LockBarOut, LockDetails, LockParty, Meta,
    ObjectRecord, ObjectTrail, ProcessOut, RecordDetails, SearchHit, SearchHits, SpanDetails,
    SpanEntryOut, SpanRef, StackOut, StuckLane, TaskList, TaskMetaOut, TasksMeta, TriggerMeta,
    Window, WindowBar, WindowEvent,
};
use flightrec_analysis::{
    entries_of_plan, merge_fields, Names, ObjectKey, Placement, SpanPlan, Tasks, Trail,
};
use flightrec_format::{Level, Record, RecordKind, Recording, TriggerReason};

mod answers;
mod build;
mod merge;
mod parallel;
mod task_lanes;
mod window;

use parallel::in_background;
pub(crate) use parallel::par_map;
use task_lanes::{by_name, task_lane_content, task_lanes};
pub(crate) use window::parse_level;
use window::*;
pub use window::{Filter, TaskOrder, TaskRange, MAX_TASK_LANES_PER_WINDOW};

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

/// What a model keeps of its recording besides the records: process, trigger, damage,
/// callsites, threads and span callsites. A type of its own, not a `Recording` whose
/// records were taken: no reading-layer call can be handed it and silently see no records.
pub struct Header {
    /// A recording without records (`records` is always empty).
    rec: Recording,
}

impl Header {
    /// The header of `rec`; its records are dropped.
    pub(super) fn of(mut rec: Recording) -> Header {
        rec.records = Vec::new();
        Header { rec }
    }

    /// Names and titles (`Names` reads only the metadata).
    pub fn names(&self) -> Names<'_> {
        Names::new(&self.rec)
    }

    pub fn process(&self) -> &flightrec_format::ProcessInfo {
        &self.rec.process
    }

    pub fn trigger(&self) -> &flightrec_format::Trigger {
        &self.rec.trigger
    }

    pub fn damage(&self) -> &flightrec_format::Damage {
        &self.rec.damage
    }

    pub fn history(&self) -> flightrec_format::history::HistoryCounts {
        self.rec.history
    }

    pub fn callsites(&self) -> &HashMap<u32, flightrec_format::Callsite> {
        &self.rec.callsites
    }

    pub fn span_callsite(&self, span: u64) -> Option<u32> {
        self.rec.span_callsites.get(&span).copied()
    }

    /// The recorded locks, by id.
    pub fn locks(&self) -> Vec<flightrec_analysis::LockInfo> {
        flightrec_analysis::lock_ops::locks(&self.rec)
    }

    /// Headers of renamed recordings (apart ids) as one.
    fn combine(parts: Vec<Header>) -> Header {
        let recs = parts.into_iter().map(|h| h.rec).collect();
        Header::of(flightrec_analysis::merge::combine(recs, Vec::new()))
    }
}

pub struct Model {
    /// The recording's header (its records are in `records`).
    pub header: Header,
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
    /// The lane of each thread that has one (by thread index): the one answer to "which
    /// lane is this thread".
    lane_index: HashMap<u32, usize>,
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
    /// The bugs the recording shows (`flightrec_analysis::findings`), worst first; their
    /// evidence records are this model's record ids. For recordings opened together, each
    /// recording's own.
    pub findings: Vec<flightrec_analysis::findings::Finding>,
    /// The locks as every reader gives them: statistics, and holds, waits and cycles when
    /// the data ends (for recordings opened together, each one's in turn).
    pub lock_report: flightrec_analysis::report::LocksReport,
}

impl Model {
    /// The one way a model is put together, from its parts: the orders and indexes over
    /// them are made here.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        header: Header,
        records: Records,
        origin: i64,
        end: i64,
        lanes: Vec<Lane>,
        tasks: Tasks,
        task_lanes: Vec<TaskLane>,
        locks: flightrec_analysis::LockState,
        stacks: Vec<flightrec_analysis::stacks::ThreadStack>,
    ) -> Model {
        let mut task_lanes = task_lanes;
        let mut labels: Vec<String> = task_lanes
            .iter_mut()
            .map(|t| std::mem::take(&mut t.label))
            .collect();
        flightrec_analysis::tasks::tell_apart(&mut labels);
        for (t, l) in task_lanes.iter_mut().zip(labels) {
            t.label = l;
        }
        let by_name = by_name(&task_lanes);
        let lane_index = lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (l.thread, i))
            .collect();
        Model {
            header,
            records,
            origin,
            end,
            lanes,
            tasks,
            task_lanes,
            lane_index,
            by_name,
            locks,
            processes: Vec::new(),
            stacks,
            loading: false,
            findings: Vec::new(),
            lock_report: flightrec_analysis::report::LocksReport::default(),
        }
    }

    /// The lane of thread `thread` (its index in the recording), if it has one.
    pub fn lane_of(&self, thread: u32) -> Option<usize> {
        self.lane_index.get(&thread).copied()
    }
}

/// A recording's activity by thread, from its scan: `(thread index, chunks)`.
pub type ThreadActivity = Vec<(u32, Vec<flightrec_format::ChunkActivity>)>;
