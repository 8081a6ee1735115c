//! The tables' schemas, as `docs/tables.md` documents them: one struct per table, its
//! leaves in schema order. Changing a schema is a change of `SCHEMA_VERSION` and of the
//! document.
//!
//! Conventions: times are `TIMESTAMP(NANOS, UTC)`, durations `_ns` int64; ids the recording
//! gives (span, task, lock) are unsigned 64-bit; every table begins with `recording_id`
//! and `process`, so tables of many dumps union cleanly.

use super::columns::{Bool, Column, Rows, Str, I32, I64};

/// Bumped when a column is added, removed or changes meaning.
pub const SCHEMA_VERSION: &str = "1";

macro_rules! table {
    ($name:ident, $schema:expr, delta: [$($delta:expr),*], { $($field:ident: $ty:ty = $make:expr),* $(,)? }) => {
        pub struct $name {
            $(pub $field: $ty,)*
        }
        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $make,)* }
            }
        }
        impl Rows for $name {
            const SCHEMA: &'static str = $schema;
            const DELTA: &'static [&'static str] = &[$($delta),*];
            fn columns(&mut self) -> Vec<&mut dyn Column> {
                vec![$(&mut self.$field,)*]
            }
        }
    };
}

table!(RecordingRows, "message recordings {
    required binary recording_id (STRING);
    required binary process (STRING);
    required binary service (STRING);
    required binary host (STRING);
    required int64 pid (INTEGER(64,false));
    required binary exe (STRING);
    optional binary build_id (STRING);
    required binary trigger (STRING);
    optional binary trigger_detail (STRING);
    optional int64 trigger_time (TIMESTAMP(NANOS,true));
    required int64 start (TIMESTAMP(NANOS,true));
    optional int64 first_record (TIMESTAMP(NANOS,true));
    optional int64 end (TIMESTAMP(NANOS,true));
    required int64 records (INTEGER(64,false));
    required int64 threads (INTEGER(64,false));
    required int64 span_entries (INTEGER(64,false));
    required int64 tasks (INTEGER(64,false));
    required int64 lock_intervals (INTEGER(64,false));
    required int64 findings (INTEGER(64,false));
    required int64 overwritten (INTEGER(64,false));
    required int64 dropped (INTEGER(64,false));
    required boolean damaged;
    required int64 file_size (INTEGER(64,false));
    required binary clock (STRING);
}", delta: [], {
    recording_id: Str = Str::required(),
    process: Str = Str::required(),
    service: Str = Str::required(),
    host: Str = Str::required(),
    pid: I64 = I64::required(),
    exe: Str = Str::required(),
    build_id: Str = Str::optional(),
    trigger: Str = Str::required(),
    trigger_detail: Str = Str::optional(),
    trigger_time: I64 = I64::optional(),
    start: I64 = I64::required(),
    first_record: I64 = I64::optional(),
    end: I64 = I64::optional(),
    records: I64 = I64::required(),
    threads: I64 = I64::required(),
    span_entries: I64 = I64::required(),
    tasks: I64 = I64::required(),
    lock_intervals: I64 = I64::required(),
    findings: I64 = I64::required(),
    overwritten: I64 = I64::required(),
    dropped: I64 = I64::required(),
    damaged: Bool = Bool::required(),
    file_size: I64 = I64::required(),
    clock: Str = Str::required(),
});

table!(RecordRows, "message records {
    required binary recording_id (STRING);
    required binary process (STRING);
    required int64 seq (INTEGER(64,false));
    required int64 ts (TIMESTAMP(NANOS,true));
    required binary thread (STRING);
    required int64 tid (INTEGER(64,false));
    optional int64 task (INTEGER(64,false));
    optional int64 tokio_task (INTEGER(64,false));
    required binary kind (STRING);
    optional binary level (STRING);
    optional binary target (STRING);
    optional binary name (STRING);
    optional binary file (STRING);
    optional int32 line (INTEGER(32,false));
    optional int64 span (INTEGER(64,false));
    optional int64 parent (INTEGER(64,false));
    optional int64 follows (INTEGER(64,false));
    required group spans (LIST) { repeated group list { required int64 element (INTEGER(64,false)); } }
    optional binary message (STRING);
    required group fields (MAP) { repeated group key_value {
        required binary key (STRING);
        required binary value (STRING);
    } }
    required boolean truncated;
}", delta: ["seq", "ts", "task", "span", "parent", "follows", "spans.list.element"], {
    recording_id: Str = Str::required(),
    process: Str = Str::required(),
    seq: I64 = I64::required(),
    ts: I64 = I64::required(),
    thread: Str = Str::required(),
    tid: I64 = I64::required(),
    task: I64 = I64::optional(),
    tokio_task: I64 = I64::optional(),
    kind: Str = Str::required(),
    level: Str = Str::optional(),
    target: Str = Str::optional(),
    name: Str = Str::optional(),
    file: Str = Str::optional(),
    line: I32 = I32::optional(),
    span: I64 = I64::optional(),
    parent: I64 = I64::optional(),
    follows: I64 = I64::optional(),
    spans: I64 = I64::repeated(),
    message: Str = Str::optional(),
    field_keys: Str = Str::repeated(),
    field_values: Str = Str::repeated(),
    truncated: Bool = Bool::required(),
});

table!(SpanRows, "message spans {
    required binary recording_id (STRING);
    required binary process (STRING);
    required int64 span (INTEGER(64,false));
    required binary name (STRING);
    optional binary target (STRING);
    required binary kind (STRING);
    required int64 begin (TIMESTAMP(NANOS,true));
    required int64 end (TIMESTAMP(NANOS,true));
    required int64 duration_ns;
    required binary thread (STRING);
    required int64 tid (INTEGER(64,false));
    optional int64 task (INTEGER(64,false));
    required int32 depth (INTEGER(32,false));
    optional int64 parent (INTEGER(64,false));
    required boolean own_track;
    required boolean open_at_end;
    optional int64 enter_seq (INTEGER(64,false));
}", delta: ["span", "begin", "end", "duration_ns", "task", "parent", "enter_seq"], {
    recording_id: Str = Str::required(),
    process: Str = Str::required(),
    span: I64 = I64::required(),
    name: Str = Str::required(),
    target: Str = Str::optional(),
    kind: Str = Str::required(),
    begin: I64 = I64::required(),
    end: I64 = I64::required(),
    duration_ns: I64 = I64::required(),
    thread: Str = Str::required(),
    tid: I64 = I64::required(),
    task: I64 = I64::optional(),
    depth: I32 = I32::required(),
    parent: I64 = I64::optional(),
    own_track: Bool = Bool::required(),
    open_at_end: Bool = Bool::required(),
    enter_seq: I64 = I64::optional(),
});

table!(TaskRows, "message tasks {
    required binary recording_id (STRING);
    required binary process (STRING);
    required int64 task (INTEGER(64,false));
    required binary name (STRING);
    optional int64 tokio_task (INTEGER(64,false));
    optional binary spawned_at (STRING);
    required boolean is_async;
    optional int64 created (TIMESTAMP(NANOS,true));
    optional int64 closed (TIMESTAMP(NANOS,true));
    required int64 polls (INTEGER(64,false));
    required int64 busy_ns;
    required int64 max_poll_ns;
    required int32 workers (INTEGER(32,false));
    required int64 records (INTEGER(64,false));
}", delta: ["task", "created", "closed", "busy_ns", "max_poll_ns", "records"], {
    recording_id: Str = Str::required(),
    process: Str = Str::required(),
    task: I64 = I64::required(),
    name: Str = Str::required(),
    tokio_task: I64 = I64::optional(),
    spawned_at: Str = Str::optional(),
    is_async: Bool = Bool::required(),
    created: I64 = I64::optional(),
    closed: I64 = I64::optional(),
    polls: I64 = I64::required(),
    busy_ns: I64 = I64::required(),
    max_poll_ns: I64 = I64::required(),
    workers: I32 = I32::required(),
    records: I64 = I64::required(),
});

table!(LockRows, "message locks {
    required binary recording_id (STRING);
    required binary process (STRING);
    required int64 lock (INTEGER(64,false));
    required binary label (STRING);
    required binary kind (STRING);
    required boolean shared;
    required binary thread (STRING);
    required int64 tid (INTEGER(64,false));
    optional int64 task (INTEGER(64,false));
    required int64 begin (TIMESTAMP(NANOS,true));
    required int64 end (TIMESTAMP(NANOS,true));
    required int64 duration_ns;
    required boolean open_at_end;
    optional int64 begin_seq (INTEGER(64,false));
    optional int64 end_seq (INTEGER(64,false));
}", delta: ["begin", "end", "duration_ns", "begin_seq", "end_seq", "task"], {
    recording_id: Str = Str::required(),
    process: Str = Str::required(),
    lock: I64 = I64::required(),
    label: Str = Str::required(),
    kind: Str = Str::required(),
    shared: Bool = Bool::required(),
    thread: Str = Str::required(),
    tid: I64 = I64::required(),
    task: I64 = I64::optional(),
    begin: I64 = I64::required(),
    end: I64 = I64::required(),
    duration_ns: I64 = I64::required(),
    open_at_end: Bool = Bool::required(),
    begin_seq: I64 = I64::optional(),
    end_seq: I64 = I64::optional(),
});

table!(FindingRows, "message findings {
    required binary recording_id (STRING);
    required binary process (STRING);
    required int32 finding (INTEGER(32,false));
    required binary kind (STRING);
    required binary severity (STRING);
    required binary title (STRING);
    optional binary object (STRING);
    required group locks (LIST) { repeated group list { required binary element (STRING); } }
    required group threads (LIST) { repeated group list { required binary element (STRING); } }
    required group evidence (LIST) { repeated group list { required int64 element (INTEGER(64,false)); } }
    optional int64 first (TIMESTAMP(NANOS,true));
    optional int64 last (TIMESTAMP(NANOS,true));
}", delta: [], {
    recording_id: Str = Str::required(),
    process: Str = Str::required(),
    finding: I32 = I32::required(),
    kind: Str = Str::required(),
    severity: Str = Str::required(),
    title: Str = Str::required(),
    object: Str = Str::optional(),
    locks: Str = Str::repeated(),
    threads: Str = Str::repeated(),
    evidence: I64 = I64::repeated(),
    first: I64 = I64::optional(),
    last: I64 = I64::optional(),
});
