//! Filling each table from one decoded recording, through the reading layer.

use std::collections::HashMap;
use std::io::BufWriter;

use flightrec_analysis::findings::{Finding, Replay, Thresholds};
use flightrec_analysis::tasks::task_of;
use flightrec_analysis::Analysis;
use flightrec_analysis::{Names, Placement, SpanPlan, Tasks, TokioIds};
use flightrec_format::{Record, RecordKind, Recording, TriggerReason};
use parquet::data_type::ByteArray;
use parquet::file::metadata::KeyValue;

use super::columns::{text, text_owned, Rows, TableFile};
use super::schema::*;

type Sink = BufWriter<std::fs::File>;

/// A recording's id: its dump's name in the bucket, without the extension
/// (`<host>-<pid>-<yyyymmdd>T<hhmmss+ns>Z-<trigger>`), unique per dump.
pub fn recording_id(rec: &Recording) -> String {
    crate::dump_names::dump_name(&crate::dump_names::DumpFacts::of(rec))
}

fn open<T: Rows + Default>(
    out: Sink,
    rec: &Recording,
    id: &str,
) -> anyhow::Result<TableFile<Sink, T>> {
    let meta = vec![
        KeyValue::new(
            "flightrec.schema_version".into(),
            SCHEMA_VERSION.to_string(),
        ),
        KeyValue::new("flightrec.recording_id".into(), id.to_string()),
        KeyValue::new("flightrec.service".into(), rec.process.service.clone()),
    ];
    Ok(TableFile::new(out, T::default(), meta)?)
}

/// Writes the footer and flushes the file: a write error (a full disk) is returned here.
fn close<T: Rows>(t: TableFile<Sink, T>) -> anyhow::Result<u64> {
    Ok(t.finish()?)
}

/// Per-callsite strings, made once: most columns repeat a few values.
struct CallsiteText {
    level: ByteArray,
    target: ByteArray,
    name: ByteArray,
    file: Option<ByteArray>,
    line: Option<i32>,
}

/// What every row of a recording shares.
struct Common<'r> {
    rec: &'r Recording,
    names: Names<'r>,
    id: ByteArray,
    process: ByteArray,
    /// By thread index.
    threads: Vec<Option<(ByteArray, i64)>>,
    callsites: HashMap<u32, CallsiteText>,
    /// Field names by callsite and index.
    field_names: HashMap<(u32, u8), ByteArray>,
}

impl<'r> Common<'r> {
    fn new(rec: &'r Recording, id: &str) -> Common<'r> {
        let names = Names::new(rec);
        let callsites = rec
            .callsites
            .iter()
            .map(|(&k, c)| {
                (
                    k,
                    CallsiteText {
                        level: text(c.level.as_str()),
                        target: text(&c.target),
                        name: text(&c.name),
                        file: c.file.as_deref().map(text),
                        line: c.line.map(|l| l as i32),
                    },
                )
            })
            .collect();
        Common {
            rec,
            names,
            id: text(id),
            process: text(&flightrec_analysis::merge::process_label(rec, true)),
            threads: Vec::new(),
            callsites,
            field_names: HashMap::new(),
        }
    }

    fn thread(&mut self, index: u32) -> (ByteArray, i64) {
        let i = index as usize;
        if self.threads.len() <= i {
            self.threads.resize(i + 1, None);
        }
        let names = &self.names;
        self.threads[i]
            .get_or_insert_with(|| {
                let (name, tid) = names.thread(index);
                (text(name), tid as i64)
            })
            .clone()
    }

    fn field_name(&mut self, callsite: u32, index: u8) -> ByteArray {
        let names = &self.names;
        self.field_names
            .entry((callsite, index))
            .or_insert_with(|| text(&names.field_name(callsite, index)))
            .clone()
    }

    fn start<T: Rows>(
        &self,
        t: &mut TableFile<Sink, T>,
        id: impl Fn(&mut T) -> [&mut super::columns::Str; 2],
    ) {
        let [a, b] = id(&mut t.rows);
        a.push(self.id.clone());
        b.push(self.process.clone());
    }
}

/// Writes the six tables (in [`super::TABLES`] order) into `files`; returns their row
/// counts, and the kinds of the recording's findings.
pub fn write_all(
    rec: &Recording,
    id: &str,
    files: Vec<Sink>,
) -> anyhow::Result<(Vec<u64>, Vec<String>)> {
    let mut files = files.into_iter();
    let mut next = || files.next().expect("one file per table");
    let (f_recordings, f_records, f_spans, f_tasks, f_locks, f_findings) =
        (next(), next(), next(), next(), next(), next());
    // The records on one thread; on another, what the reading layer resolves from them
    // (spans, tasks, the lock replay and the findings, which share it): the two halves
    // take about as long.
    let (records, derived) = std::thread::scope(|scope| {
        let derived = scope.spawn(|| -> anyhow::Result<([u64; 4], Vec<String>)> {
            let mut c = Common::new(rec, id);
            let plan = SpanPlan::of_recording(rec);
            let entries = flightrec_analysis::entries_of_plan(&plan, &rec.records);
            let spans = write_spans(&mut c, &plan, &entries, open(f_spans, rec, id)?)?;
            let tasks = Analysis::tasks_of_spans(rec, &entries, &plan);
            drop(entries);
            let analysis =
                Analysis::from_parts(tasks, Replay::of(rec), &[], &Thresholds::default());
            let (found, locks) = (&analysis.findings, &analysis.locks);
            let task_rows = write_tasks(&mut c, &analysis.tasks, open(f_tasks, rec, id)?)?;
            let lock_rows = write_locks(&mut c, locks, open(f_locks, rec, id)?)?;
            let finding_rows = write_findings(&mut c, found, open(f_findings, rec, id)?)?;
            let mut kinds: Vec<String> = found.iter().map(|f| f.kind.slug().to_string()).collect();
            kinds.sort();
            kinds.dedup();
            Ok(([spans, task_rows, lock_rows, finding_rows], kinds))
        });
        let records = write_records(&mut Common::new(rec, id), open(f_records, rec, id)?);
        let derived = derived
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        anyhow::Ok((records?, derived?))
    })?;
    let ([spans, task_rows, locks, found], kinds) = derived;
    let counts = [records, spans, task_rows, locks, found];
    let one = write_recording_row(&Common::new(rec, id), counts, open(f_recordings, rec, id)?)?;
    Ok((vec![one, records, spans, task_rows, locks, found], kinds))
}

/// The `recordings` table's one row; `counts` are the other tables' rows, in their order.
fn write_recording_row(
    c: &Common<'_>,
    [records, spans, task_rows, locks, found]: [u64; 5],
    mut t: TableFile<Sink, RecordingRows>,
) -> anyhow::Result<u64> {
    let rec = c.rec;
    let r = &mut t.rows;
    let p = &rec.process;
    r.recording_id.push(c.id.clone());
    r.process.push(c.process.clone());
    r.service.push(text(&p.service));
    r.host.push(text(&p.host));
    r.pid.push(i64::from(p.pid));
    r.exe.push(text(&p.exe));
    let build_id = rec
        .modules
        .iter()
        .find(|m| m.path == p.exe)
        .or(rec.modules.first())
        .map(|m| m.build_id.as_str())
        .filter(|b| !b.is_empty());
    r.build_id.push_opt(build_id.map(text));
    let trig = &rec.trigger;
    let none = trig.reason == TriggerReason::None;
    r.trigger.push(text(trig.reason.slug()));
    r.trigger_detail
        .push_opt((!none).then(|| text(&trig.describe())));
    r.trigger_time
        .push_opt((!none && trig.wall_ns > 0).then_some(trig.wall_ns));
    r.start.push(rec.start_wall_ns);
    r.first_record.push_opt(rec.records.first().map(|r| r.ts));
    r.end.push_opt(rec.records.last().map(|r| r.ts));
    r.records.push(records as i64);
    r.threads.push(rec.threads.len() as i64);
    r.span_entries.push(spans as i64);
    r.tasks.push(task_rows as i64);
    r.lock_intervals.push(locks as i64);
    r.findings.push(found as i64);
    r.overwritten
        .push(rec.threads.iter().map(|t| t.overwritten).sum::<u64>() as i64);
    r.dropped
        .push(rec.threads.iter().map(|t| t.dropped).sum::<u64>() as i64);
    r.damaged.push(rec.damage.is_damaged());
    r.file_size.push(rec.file_size as i64);
    r.clock.push(text(rec.clock));
    t.row_done()?;
    close(t)
}

fn write_records(c: &mut Common<'_>, mut t: TableFile<Sink, RecordRows>) -> anyhow::Result<u64> {
    let rec = c.rec;
    let mut tokio_ids = TokioIds::default();
    let kinds: Vec<ByteArray> = [
        RecordKind::Event,
        RecordKind::SpanNew,
        RecordKind::SpanRecord,
        RecordKind::Enter,
        RecordKind::Exit,
        RecordKind::Close,
        RecordKind::FollowsFrom,
        RecordKind::Context,
    ]
    .into_iter()
    .map(|k| text(k.as_str()))
    .collect();
    for (seq, r) in rec.records.iter().enumerate() {
        let tokio = tokio_ids.observe(&c.names, r);
        let (thread, tid) = c.thread(r.thread);
        c.start(&mut t, |rows| [&mut rows.recording_id, &mut rows.process]);
        let rows = &mut t.rows;
        rows.seq.push(seq as i64);
        rows.ts.push(r.ts);
        rows.thread.push(thread);
        rows.tid.push(tid);
        rows.task.push_opt(task_of(r).map(|s| s as i64));
        rows.tokio_task.push_opt(tokio.map(|s| s as i64));
        rows.kind.push(kinds[r.kind as usize - 1].clone());
        let cs = c.callsites.get(&r.callsite);
        rows.level.push_opt(cs.map(|c| c.level.clone()));
        rows.target.push_opt(cs.map(|c| c.target.clone()));
        rows.name.push_opt(cs.map(|c| c.name.clone()));
        rows.file.push_opt(cs.and_then(|c| c.file.clone()));
        rows.line.push_opt(cs.and_then(|c| c.line));
        let is_span = r.kind != RecordKind::Event;
        rows.span.push_opt(is_span.then_some(r.span as i64));
        rows.parent.push_opt(r.parent().map(|p| p.get() as i64));
        rows.follows.push_opt(r.follows().map(|f| f.get() as i64));
        rows.spans.push_list(r.spans.iter().map(|&s| s as i64));
        write_fields(c, r, rows);
        t.rows.truncated.push(r.truncated);
        t.row_done()?;
    }
    close(t)
}

/// The event's message (its first field named `message`) apart; the other fields as a
/// map of name to text.
fn write_fields(c: &mut Common<'_>, r: &Record, rows: &mut RecordRows) {
    let mut message = None;
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for f in &r.fields {
        let name = c.field_name(r.callsite, f.index);
        if r.kind == RecordKind::Event && message.is_none() && name.data() == b"message" {
            message = Some(text_owned(f.value.to_text()));
            continue;
        }
        keys.push(name);
        values.push(text_owned(f.value.to_text()));
    }
    rows.message.push_opt(message);
    rows.field_keys.push_list(keys);
    rows.field_values.push_list(values);
}

fn write_spans(
    c: &mut Common<'_>,
    plan: &SpanPlan,
    entries: &[flightrec_analysis::Entry],
    mut t: TableFile<Sink, SpanRows>,
) -> anyhow::Result<u64> {
    let rec = c.rec;
    let mut span_text: HashMap<u64, (ByteArray, Option<ByteArray>)> = HashMap::new();
    let (poll, entry) = (text("poll"), text("entry"));
    for e in entries {
        let stack: &[u64] = e
            .enter_record
            .map_or(&[], |i| &rec.records[i as usize].spans[..]);
        let outer: Vec<u64> = stack.iter().copied().filter(|&s| s != e.span).collect();
        let (name, target) = span_text
            .entry(e.span)
            .or_insert_with(|| {
                let cs = c
                    .names
                    .span_callsite(e.span)
                    .and_then(|k| c.rec.callsites.get(&k));
                (
                    text(c.names.span_name(e.span)),
                    cs.map(|cs| text(&cs.target)),
                )
            })
            .clone();
        let (thread, tid) = c.thread(e.thread);
        c.start(&mut t, |rows| [&mut rows.recording_id, &mut rows.process]);
        let rows = &mut t.rows;
        rows.span.push(e.span as i64);
        rows.name.push(name);
        rows.target.push_opt(target);
        let is_poll = outer.is_empty() && plan.is_task(e.span);
        rows.kind
            .push(if is_poll { poll.clone() } else { entry.clone() });
        rows.begin.push(e.begin);
        rows.end.push(e.end);
        rows.duration_ns.push(e.end.saturating_sub(e.begin));
        rows.thread.push(thread);
        rows.tid.push(tid);
        rows.task.push_opt(
            outer
                .first()
                .copied()
                .or(e.enter_record.map(|_| e.span))
                .map(|s| s as i64),
        );
        let depth = match e.placement {
            Placement::Nested { depth } => depth,
            Placement::Own => outer.len() as u32,
        };
        rows.depth.push(depth as i32);
        rows.parent.push_opt(outer.last().map(|&s| s as i64));
        rows.own_track.push(e.placement == Placement::Own);
        rows.open_at_end.push(e.open_at_end);
        rows.enter_seq.push_opt(e.enter_record.map(|i| i as i64));
        t.row_done()?;
    }
    close(t)
}

fn write_tasks(
    c: &mut Common<'_>,
    tasks: &Tasks,
    mut t: TableFile<Sink, TaskRows>,
) -> anyhow::Result<u64> {
    for (k, task) in tasks.list.iter().enumerate() {
        c.start(&mut t, |rows| [&mut rows.recording_id, &mut rows.process]);
        let rows = &mut t.rows;
        rows.task.push(task.span as i64);
        rows.name
            .push(text(&flightrec_analysis::tasks::label(&c.names, task)));
        rows.tokio_task
            .push_opt(task.tokio.as_ref().map(|k| k.id as i64));
        rows.spawned_at.push_opt(
            task.tokio
                .as_ref()
                .and_then(|k| k.spawned_at.as_deref())
                .map(text),
        );
        rows.is_async.push(task.is_async);
        rows.created.push_opt(task.created());
        rows.closed.push_opt(task.closed());
        rows.polls.push(task.polls.len() as i64);
        let lens = task.polls.iter().map(|p| p.end.saturating_sub(p.begin));
        rows.busy_ns.push(lens.clone().sum());
        rows.max_poll_ns.push(lens.max().unwrap_or(0));
        rows.workers.push(task.workers().len() as i32);
        rows.records.push(tasks.records_of(k).len() as i64);
        t.row_done()?;
    }
    close(t)
}

fn write_locks(
    c: &mut Common<'_>,
    state: &flightrec_analysis::LockState,
    mut t: TableFile<Sink, LockRows>,
) -> anyhow::Result<u64> {
    let rec = c.rec;
    let mut labels: HashMap<u32, ByteArray> = HashMap::new();
    let (hold, wait) = (text("hold"), text("wait"));
    for l in &state.intervals {
        let label = labels
            .entry(l.lock)
            .or_insert_with(|| text(&c.names.lock_label(l.lock)))
            .clone();
        let (thread, tid) = c.thread(l.thread);
        let task = l
            .begin_record
            .or(l.end_record)
            .and_then(|i| task_of(&rec.records[i]));
        c.start(&mut t, |rows| [&mut rows.recording_id, &mut rows.process]);
        let rows = &mut t.rows;
        rows.lock.push(i64::from(l.lock));
        rows.label.push(label);
        rows.kind.push(if l.waiting {
            wait.clone()
        } else {
            hold.clone()
        });
        rows.shared.push(l.shared);
        rows.thread.push(thread);
        rows.tid.push(tid);
        rows.task.push_opt(task.map(|s| s as i64));
        rows.begin.push(l.begin);
        rows.end.push(l.end);
        rows.duration_ns.push(l.end.saturating_sub(l.begin));
        rows.open_at_end.push(l.open);
        rows.begin_seq.push_opt(l.begin_record.map(|i| i as i64));
        rows.end_seq.push_opt(l.end_record.map(|i| i as i64));
        t.row_done()?;
    }
    close(t)
}

fn write_findings(
    c: &mut Common<'_>,
    found: &[Finding],
    mut t: TableFile<Sink, FindingRows>,
) -> anyhow::Result<u64> {
    for (k, f) in found.iter().enumerate() {
        c.start(&mut t, |rows| [&mut rows.recording_id, &mut rows.process]);
        let rows = &mut t.rows;
        rows.finding.push(k as i32);
        rows.kind.push(text(f.kind.slug()));
        rows.severity.push(text(f.severity.slug()));
        rows.title.push(text(&f.title));
        rows.object.push_opt(f.object.as_deref().map(text));
        rows.locks.push_list(f.locks.iter().map(|s| text(s)));
        rows.threads.push_list(f.threads.iter().map(|s| text(s)));
        rows.evidence
            .push_list(f.records.iter().map(|e| e.record as i64));
        rows.first.push_opt(f.records.first().map(|e| e.ts));
        rows.last.push_opt(f.records.last().map(|e| e.ts));
        t.row_done()?;
    }
    close(t)
}
