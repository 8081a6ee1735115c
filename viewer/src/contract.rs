//! The viewer's contract with its page: the shape of every answer, typed. Times are ns
//! relative to the recording's `origin` (which travels as a string, like span ids: a
//! JavaScript number cannot hold every u64).

use serde::Serialize;

/// An error, with one line of explanation.
#[derive(Debug, Serialize)]
pub struct ErrorAnswer {
    pub error: String,
}

/// `/api/dumps`: the recordings the server knows, newest first.
#[derive(Debug, Serialize)]
pub struct DumpList {
    pub dumps: Vec<DumpSummary>,
}

/// A line of the index: what a file's header says, or why it cannot be read.
#[derive(Debug, Default, Serialize)]
pub struct DumpSummary {
    pub id: usize,
    pub file: String,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_description: Option<String>,
    /// "dump" or "ring".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// When its data ends (a dump: when it was taken; a ring: when its process exited or
    /// was stopped, else its trigger, else the recorder's start), ns since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Values the page must agree on with the server, sent rather than repeated in the page.
#[derive(Debug, Serialize)]
pub struct Constants {
    /// Bar flags (`WindowBar::Bar::flags`).
    pub flags: BarFlags,
    /// Level numbers as the answers carry them (`level` fields), 1 (TRACE) to 5 (ERROR).
    pub levels: Vec<LevelName>,
}

#[derive(Debug, Serialize)]
pub struct BarFlags {
    pub starts_before_data: u8,
    pub open_at_end: u8,
}

#[derive(Debug, Serialize)]
pub struct LevelName {
    pub level: u8,
    pub name: &'static str,
}

/// How far a read is: records decoded, of how many its threads announce (0 until the
/// decoding has begun; damage can make it wrong).
#[derive(Debug, Serialize)]
pub struct ReadProgressOut {
    pub records_read: u64,
    pub records_expected: u64,
}

/// `/api/dumps/{id}/meta`: the page's first question.
#[derive(Debug, Serialize)]
pub struct Meta {
    /// Recordings opened together are still being read: lanes show only where each thread
    /// was active (from the chunks, not the records), and a later meta will have it all.
    pub loading: bool,
    /// While `loading` a single recording: how far its read is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<ReadProgressOut>,
    pub service: String,
    pub pid: u32,
    pub host: String,
    pub exe: String,
    /// ns since the Unix epoch of relative time 0.
    pub origin: String,
    pub end: i64,
    pub records: usize,
    pub lanes: Vec<LaneMeta>,
    pub trigger: Option<TriggerMeta>,
    /// Native stacks in the dump (a crash's, the stalled threads', or a snapshot's).
    pub stacks: Vec<StackOut>,
    pub tasks: TasksMeta,
    /// Lock-order cycles among `tracing_flightrec::sync` locks when the data ends.
    pub deadlocks: Vec<DeadlockOut>,
    /// The locks as every reader gives them (`info --json`'s `locks`).
    pub locks: flightrec_analysis::report::LocksReport,
    /// The bugs the recording shows (`flightrec check`'s findings), worst first.
    pub findings: Vec<FindingOut>,
    /// Several recordings opened together: their processes, in order (empty for one).
    pub processes: Vec<ProcessOut>,
    /// They come from more than one host: aligned on their wall clocks, only as good as
    /// the hosts' clock sync.
    pub several_hosts: bool,
    pub targets: Vec<String>,
    pub damaged: bool,
    /// The history on disk read with the ring, and what it left out; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryOut>,
    pub constants: Constants,
    /// The file's name and size, when the server knows the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A recording's history on disk (`Builder::history`), counted in chunks.
#[derive(Debug, Serialize)]
pub struct HistoryOut {
    /// Read from disk with the ring.
    pub attached_chunks: u64,
    /// Written to disk by the recorder, and left out by it (its CPU budget, a failed
    /// write, or recycled before it got there): a chunk left out is a hole, and a thread
    /// reads from its newest hole on.
    pub archived_chunks: u64,
    pub skipped_chunks: u64,
}

#[derive(Debug, Serialize)]
pub struct LaneMeta {
    pub lane: usize,
    pub thread: u32,
    pub tid: u64,
    pub name: String,
    pub data_start: i64,
    pub last: i64,
    pub overwritten: u64,
    /// The file was cut (its end is missing): this thread's newest records may be lost,
    /// so after `last` its lane is drawn as missing, not idle.
    pub cut: bool,
    /// Rows of bars: nested depths, then the rows of spans on tracks of their own.
    pub depth: usize,
    pub events: usize,
    /// For several recordings opened together: which process (position in `processes`).
    pub process: Option<usize>,
}

/// One of several recordings opened together.
#[derive(Debug, Serialize)]
pub struct ProcessOut {
    pub label: String,
    pub service: String,
    pub pid: u32,
    pub host: String,
    /// What made its dump, if anything did.
    pub trigger: Option<String>,
    /// Its clock source ("TSC", "CLOCK_MONOTONIC"), placed on its host's wall clock.
    pub clock: &'static str,
    /// How far the user moved it on the common timeline (ns).
    pub shift_ns: i64,
}

#[derive(Debug, Serialize)]
pub struct TriggerMeta {
    pub reason: &'static str,
    pub description: String,
    pub message: String,
    pub t: Option<i64>,
    pub tid: u64,
    pub lane: Option<usize>,
    pub thread: Option<String>,
    pub stuck: Vec<StuckLane>,
}

/// One thread's native stack, resolved.
#[derive(Debug, Serialize)]
pub struct StackOut {
    pub tid: u64,
    /// The thread's lane, when it recorded anything.
    pub lane: Option<usize>,
    pub thread: String,
    /// "worker (tid 12), stalled", and whether it answered.
    pub headline: String,
    pub reason: &'static str,
    pub answered: bool,
    /// Innermost first: "function at file:line", or "module+0x1f2a".
    pub frames: Vec<String>,
    pub note: Option<String>,
}

/// For a stall: a lane silent well before the trigger, and the spans open at its end.
#[derive(Debug, Serialize)]
pub struct StuckLane {
    pub lane: usize,
    pub name: String,
    pub silent_ns: i64,
    pub open_spans: Vec<String>,
}

/// `/api/dumps/{id}/window`: what a view needs.
#[derive(Debug, Serialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    /// The position of `lanes[0]` among the view's lanes (the task view asks for the lanes
    /// on screen only).
    pub first: usize,
    pub lanes: Vec<LaneWindow>,
}

/// What the meta says of the recording's tasks.
#[derive(Debug, Serialize)]
pub struct TasksMeta {
    /// How many task lanes the task view has.
    pub count: usize,
    /// The counts every reader gives (`info --json`'s `tasks`); `hop` (some task was
    /// polled on more than one thread) makes the page propose the task view.
    #[serde(flatten)]
    pub report: flightrec_analysis::report::TasksReport,
}

/// `/api/dumps/{id}/tasks`: the task view's lanes, in the order asked for.
#[derive(Debug, Serialize)]
pub struct TaskList {
    pub tasks: Vec<TaskMetaOut>,
}

#[derive(Debug, Serialize)]
pub struct TaskMetaOut {
    /// The task's number (its position by start time), as object trails name it.
    pub task: usize,
    pub span: String,
    pub label: String,
    /// The root span's name (what the lanes are grouped by).
    pub name: String,
    pub start: i64,
    pub end: i64,
    /// Not closed when the data ends.
    pub open: bool,
    /// Rows of bars: polls, then the spans it entered by depth.
    pub depth: usize,
    pub polls: usize,
    /// Thread-view lanes of the workers that polled it.
    pub workers: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct LaneWindow {
    pub bars: Vec<WindowBar>,
    /// Locks held and waited for (`tracing_flightrec::sync`), in the window.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<LockBarOut>,
    /// Events one by one, when few enough...
    pub events: Vec<WindowEvent>,
    /// ...else per pixel: `[pixel start, count, most severe level]`.
    pub buckets: Vec<(i64, u32, u8)>,
    /// ns per pixel.
    pub px: i64,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum WindowBar {
    /// A run of bars narrower than a pixel: `[begin, end, row, how many]`.
    Clump(i64, i64, usize, u32),
    Bar(BarOut),
}

#[derive(Debug, Serialize)]
pub struct BarOut {
    pub b: i64,
    pub e: i64,
    /// The row in the lane.
    pub d: usize,
    pub span: String,
    pub name: String,
    pub level: u8,
    pub flags: u8,
    /// A poll in the task view: the thread-view lane of the worker that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
}

/// A stretch of time a thread held a lock, or waited for one.
#[derive(Debug, Serialize)]
pub struct LockBarOut {
    pub b: i64,
    pub e: i64,
    pub lock: u32,
    pub name: String,
    /// "hold" or "wait".
    pub kind: &'static str,
    pub shared: bool,
    /// Still held or waited for when the data ends.
    pub open: bool,
}

/// A finding as every reader writes it (`check --json`, `info --json`), and where the page
/// goes to show it: the lanes (`view`), the stretch of time its evidence covers, and where
/// each of its records is drawn (`marks`, one per record of `records`, in order).
#[derive(Debug, Serialize)]
pub struct FindingOut {
    #[serde(flatten)]
    pub finding: flightrec_analysis::findings::Finding,
    /// `tasks` when its records belong to async tasks (they read best on task lanes),
    /// else `threads`.
    pub view: &'static str,
    /// Its first and last evidence (relative ns).
    pub from: i64,
    pub to: i64,
    pub marks: Vec<FindingMark>,
}

/// Where one record of a finding's evidence is drawn.
#[derive(Debug, Serialize)]
pub struct FindingMark {
    /// The record's id (its `record`).
    pub id: usize,
    /// Relative ns.
    pub t: i64,
    pub lane: Option<usize>,
    /// Its task (`TaskMetaOut::task`), if any.
    pub task: Option<usize>,
}

/// A deadlock found in the wait-for graph at the end of the data.
#[derive(Debug, Serialize)]
pub struct DeadlockOut {
    pub description: String,
    pub steps: Vec<DeadlockStep>,
}

/// One thread of a deadlock: its lane waits for `waits_for`, held by the lane `holder`.
#[derive(Debug, Serialize)]
pub struct DeadlockStep {
    pub lane: Option<usize>,
    pub thread: String,
    pub holds: String,
    pub waits_for: String,
    pub holder: Option<usize>,
    /// Since when it has waited (relative ns).
    pub since: i64,
}

#[derive(Debug, Serialize)]
pub struct WindowEvent {
    pub id: u32,
    pub t: i64,
    pub level: u8,
    pub title: String,
}

/// A span named.
#[derive(Debug, Serialize)]
pub struct SpanRef {
    pub span: String,
    pub name: String,
}

/// A field's value, as text, with its type.
#[derive(Debug, Serialize)]
pub struct FieldOut {
    pub name: String,
    pub value: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

/// `/api/dumps/{id}/records/{n}`: everything about one record.
#[derive(Debug, Serialize)]
pub struct RecordDetails {
    pub id: usize,
    pub t: i64,
    pub ts: String,
    pub kind: &'static str,
    pub title: String,
    pub level: Option<&'static str>,
    pub target: Option<String>,
    pub name: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub thread: String,
    pub lane: Option<usize>,
    pub tid: Option<u64>,
    pub fields: Vec<FieldOut>,
    pub spans: Vec<SpanRef>,
    pub truncated: bool,
    pub span: Option<String>,
    pub follows: Option<String>,
}

/// One entry of a span on one lane.
#[derive(Debug, Serialize)]
pub struct SpanEntryOut {
    pub lane: usize,
    pub thread: String,
    pub b: i64,
    pub e: i64,
    pub d: usize,
    pub flags: u8,
    pub record: Option<u32>,
}

/// `/api/dumps/{id}/spans/{span}`: everything about one span.
#[derive(Debug, Serialize)]
pub struct SpanDetails {
    pub span: String,
    pub name: String,
    pub level: Option<&'static str>,
    pub target: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub fields: Vec<FieldOut>,
    pub parent: Option<SpanRef>,
    pub created_on: Option<String>,
    pub entries: Vec<SpanEntryOut>,
    pub follows: Vec<SpanRef>,
    pub followed_by: Vec<SpanRef>,
    pub stack: Vec<SpanRef>,
}

/// `/api/dumps/{id}/object`: every record carrying `field = value`.
#[derive(Debug, Serialize)]
pub struct ObjectTrail {
    pub field: String,
    pub value: String,
    pub records: Vec<ObjectRecord>,
    /// Over every record that carries it, not only those listed (`records` keeps the
    /// newest when `truncated`): how many, on how many threads and tasks, and how often it
    /// passed from one to another.
    pub total: usize,
    pub threads: usize,
    pub handovers: usize,
    pub tasks: usize,
    pub task_handovers: usize,
    pub truncated: bool,
}

#[derive(Debug, Serialize)]
pub struct ObjectRecord {
    pub id: usize,
    pub t: i64,
    pub kind: &'static str,
    pub lane: Option<usize>,
    pub thread: String,
    pub span: Option<String>,
    pub title: String,
    pub handover: bool,
    pub from: Option<String>,
    /// The task it belongs to (`TaskMetaOut::task`), and whether the object came from
    /// another task.
    pub task: Option<usize>,
    pub task_handover: bool,
    /// The task's label, and the label of the task it came from.
    pub task_label: Option<String>,
    pub from_task: Option<String>,
}

/// `/api/dumps/{id}/search`.
#[derive(Debug, Serialize)]
pub struct SearchHits {
    pub hits: Vec<SearchHit>,
    pub total: usize,
}

#[derive(Debug, Serialize)]
pub struct SearchHit {
    pub id: u32,
    pub t: i64,
    pub lane: Option<usize>,
}

/// `/api/dumps/{id}/locks/{lock}`: a recorded lock's page.
#[derive(Debug, Serialize)]
pub struct LockDetails {
    /// What it is and its statistics, as every reader gives them (`info --json`'s locks).
    #[serde(flatten)]
    pub row: flightrec_analysis::report::LockRow,
    /// Who holds it and who waits for it when the data ends.
    pub holders: Vec<LockParty>,
    pub waiters: Vec<LockParty>,
    /// The longest waits for it, longest first.
    pub longest_waits: Vec<LockParty>,
}

/// A thread holding or waiting for a lock, from `since` (relative ns) for `ns`.
#[derive(Debug, Serialize)]
pub struct LockParty {
    pub lane: Option<usize>,
    pub thread: String,
    pub since: i64,
    pub ns: i64,
    pub shared: bool,
}
