//! `flightrec export`: a dump as a Perfetto protobuf trace or a Chrome trace-event JSON file.
//!
//! Both formats are written from the same walk over the recording, in two streaming passes
//! over the dump's records (see `flightrec_format::Scan::records`); neither pass holds the
//! records, so memory grows with the number of spans, not of records.
//!
//! 1. `Plan` reads the stream once to learn what cannot be known while writing: which
//!    spans exit out of nesting order on some thread (they go on their own async tracks so
//!    they cannot break the thread's slice nesting), which spans are entered on more than
//!    one thread (their entries are linked by a flow), and which `follows_from` links can
//!    be drawn as flows.
//! 2. `walk` reads it again and turns it into slice begins and ends, instants and flow
//!    steps for a `Sink`, closing what the data leaves open: spans already entered when a
//!    thread's surviving data begins start at its first record, and spans still entered
//!    at the end end at the recording's last timestamp.

#[cfg(test)]
mod agreement;
mod chrome;
mod perfetto;

use std::collections::HashMap;
use std::io::Write;
use std::num::NonZeroU64;
use std::path::Path;

use anyhow::Context as _;
use flightrec_analysis::findings::{findings, Finding, Thresholds};
use flightrec_analysis::{merge_fields, Placement, SpanPlan, SpanWalker, Step, StepKind};
use flightrec_format::{FieldValue, Record, RecordKind, Recording, TriggerReason};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Perfetto's protobuf trace (open in ui.perfetto.dev).
    Perfetto,
    /// The Chrome trace-event JSON format (chrome://tracing, Perfetto, speedscope).
    Chrome,
    /// Parquet tables, one file per table per recording (docs/tables.md).
    Parquet,
}

/// `flightrec export DUMP... --format F -o OUT`: one recording, or several as one trace with
/// a process each, aligned on wall-clock time.
/// Where an export goes: `-o` as given, or in the current directory, named after the first
/// input with the format's extension (`dir/dump.flightrec` -> `./dump.pftrace`; several
/// inputs: `./dump-merged.pftrace`), as a compiler or an archiver puts what it makes where
/// it is run, not beside its input (which may be a read-only dump directory).
/// The second value says whether to print the path (it was not given).
pub fn default_output(
    inputs: &[std::path::PathBuf],
    format: Format,
    given: Option<std::path::PathBuf>,
) -> anyhow::Result<(std::path::PathBuf, bool)> {
    if let Some(o) = given {
        return Ok((o, false));
    }
    let first = &inputs[0];
    if first.as_os_str() == "-" {
        anyhow::bail!(
            "reading standard input: say where to write with -o FILE (or -o - for standard output)"
        );
    }
    let ext = match format {
        Format::Perfetto => "pftrace",
        Format::Chrome => "json",
        Format::Parquet => "tables",
    };
    let stem = first
        .file_stem()
        .map_or_else(|| "export".into(), |s| s.to_string_lossy().into_owned());
    let name = if inputs.len() > 1 {
        format!("{stem}-merged.{ext}")
    } else {
        format!("{stem}.{ext}")
    };
    let here = std::env::current_dir().context("finding the current directory")?;
    Ok((here.join(name), true))
}

/// With `with_findings`, each recording's findings are instants on its process track.
pub fn run(
    inputs: &[std::path::PathBuf],
    format: Format,
    output: &Path,
    with_findings: bool,
) -> anyhow::Result<()> {
    check_output(output)?;
    if let [input] = inputs {
        return run_one(input, format, output, with_findings);
    }
    if inputs.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        anyhow::bail!("standard input (-) can be given once");
    }
    let images = inputs
        .iter()
        .map(|i| flightrec_format::read_image(i).with_context(|| i.display().to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scans = inputs
        .iter()
        .zip(&images)
        .map(|(i, image)| image.scan().with_context(|| i.display().to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (i, s) in inputs.iter().zip(&scans) {
        crate::warn_if_damaged(i, &s.recording);
    }
    let found: Vec<Vec<Finding>> = inputs
        .iter()
        .zip(&images)
        .map(|(i, image)| {
            findings_of(image, with_findings).with_context(|| i.display().to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    let recs: Vec<&Recording> = scans.iter().map(|s| &s.recording).collect();
    let hidden = indicatif::ProgressBar::hidden();
    let plans: Vec<SpanPlan> = scans
        .iter()
        .map(|s| plan(&s.recording, s.records(), &hidden))
        .collect();
    // One process per recording: names say which (with the host when there are several),
    // and a pid seen twice (two hosts) is made unique so the processes stay apart.
    let with_host = flightrec_analysis::merge::several_hosts(&recs);
    let mut pids_seen = std::collections::HashSet::new();
    let ids: Vec<(u32, String)> = recs
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let mut pid = r.process.pid;
            if !pids_seen.insert(pid) {
                pid = 1_000_000_000 + k as u32 * 1_000_000 + pid % 1_000_000;
            }
            (pid, flightrec_analysis::merge::process_label(r, with_host))
        })
        .collect();
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        match format {
            Format::Perfetto => {
                for (k, (scan, plan)) in scans.iter().zip(&plans).enumerate() {
                    let rec = &scan.recording;
                    let slot = perfetto::TraceSlot {
                        pid: Some(ids[k].0 as i32),
                        process_name: Some(ids[k].1.clone()),
                        ..perfetto::TraceSlot::nth(k)
                    };
                    let mut sink = perfetto::PerfettoSink::in_slot(rec, &mut *out, slot);
                    walk(rec, scan.records(), plan, &found[k], &mut sink, &hidden)?;
                    sink.finish()?;
                }
                Ok(())
            }
            Format::Chrome => {
                let origin = plans.iter().map(|p| p.start_ts).min().unwrap_or(0);
                out.write_all(b"{\"traceEvents\":[\n")?;
                for (k, (scan, plan)) in scans.iter().zip(&plans).enumerate() {
                    let rec = &scan.recording;
                    let (pid, name) = ids[k].clone();
                    let mut sink =
                        chrome::ChromeSink::part(rec, origin, pid, Some(name), &mut *out, k == 0)?;
                    walk(rec, scan.records(), plan, &found[k], &mut sink, &hidden)?;
                    sink.finish_part()?;
                }
                let processes: Vec<serde_json::Value> = recs
                    .iter()
                    .zip(&ids)
                    .map(|(r, (pid, name))| {
                        serde_json::json!({
                            "name": name, "service": r.process.service, "host": r.process.host,
                            "pid": r.process.pid, "trace_pid": pid,
                            "trigger": r.trigger.reason.slug(),
                        })
                    })
                    .collect();
                let other = serde_json::json!({
                    "origin_unix_ns": origin,
                    "processes": processes,
                    "clock": if with_host {
                        "aligned on each host's wall clock: only as good as the hosts' clock sync"
                    } else {
                        "one host's wall clock"
                    },
                });
                chrome::ChromeSink::finish_all(out, &other)
            }
            Format::Parquet => anyhow::bail!("parquet is written as tables (tables::export)"),
        }
    };
    write_output(output, write)
}

/// `flightrec export DUMP --format F -o OUT`.
fn run_one(input: &Path, format: Format, output: &Path, with_findings: bool) -> anyhow::Result<()> {
    let image = flightrec_format::read_image(input).with_context(|| input.display().to_string())?;
    let found = findings_of(&image, with_findings).with_context(|| input.display().to_string())?;
    let scan = image.scan().with_context(|| input.display().to_string())?;
    crate::warn_if_damaged(input, &scan.recording);
    let total: u64 = scan.recording.threads.iter().map(|t| t.records).sum();
    // Two passes over the records; the bar counts both.
    let progress = indicatif::ProgressBar::new(total * 2);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} exporting [{bar:40}] {percent}% ({eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // Below a million records there is nothing to wait for.
    if total < 1_000_000 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let rec = &scan.recording;
    let plan = plan(rec, scan.records(), &progress);
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        match format {
            Format::Perfetto => {
                let mut sink = perfetto::PerfettoSink::new(rec, out);
                walk(rec, scan.records(), &plan, &found, &mut sink, &progress)?;
                sink.finish()
            }
            Format::Chrome => {
                let mut sink = chrome::ChromeSink::new(rec, &plan, out)?;
                walk(rec, scan.records(), &plan, &found, &mut sink, &progress)?;
                sink.finish()
            }
            Format::Parquet => anyhow::bail!("parquet is written as tables (tables::export)"),
        }
    };
    write_output(output, write)?;
    progress.finish_and_clear();
    Ok(())
}

/// Writes through `write` to stdout (`-`) or to `output`, the latter under a temporary name
/// renamed when complete.
fn write_output(
    output: &Path,
    write: impl Fn(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        write(&mut out)?;
        out.flush()?;
    } else {
        // A nameless file in the same directory, linked into place when complete: an
        // export that fails (a full disk) or is killed leaves no half-written file behind.
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Errors name the user's path, never the temporary one.
        let tmp = crate::output_file::OutputFile::new_in(dir)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", output.display(), io_reason(&e)))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, tmp.file());
        write(&mut out).with_context(|| format!("cannot write {}", output.display()))?;
        out.flush()
            .with_context(|| format!("cannot write {}", output.display()))?;
        drop(out);
        tmp.persist(output)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", output.display(), io_reason(&e)))?;
    }
    Ok(())
}

/// Refuses, before any work, an output that cannot be written: a directory, or a file in a
/// directory that does not exist.
fn check_output(output: &Path) -> anyhow::Result<()> {
    if output.as_os_str() == "-" {
        return Ok(());
    }
    if output.is_dir() {
        anyhow::bail!(
            "cannot write {}: it is a directory (give a file name)",
            output.display()
        );
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot write {}: there is no directory {}",
            output.display(),
            dir.display()
        );
    }
    Ok(())
}

/// An I/O error's reason without the path the library attached to it.
fn io_reason(e: &std::io::Error) -> String {
    std::io::Error::from(e.kind()).to_string()
}

/// The first pass (see `flightrec_analysis::spans`), counted on the progress bar.
pub fn plan(
    rec: &Recording,
    records: impl Iterator<Item = Record>,
    progress: &indicatif::ProgressBar,
) -> SpanPlan {
    let mut plan = SpanPlan::for_recording(rec);
    for (n, r) in records.enumerate() {
        if n % PROGRESS_STEP == PROGRESS_STEP - 1 {
            progress.inc(PROGRESS_STEP as u64);
        }
        plan.observe(&r);
    }
    plan.finish(&rec.trigger);
    plan
}

/// Where a slice or instant is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// The process-wide track (the trigger).
    Process,
    /// A thread's own track, by thread index: properly nested slices.
    Thread(u32),
    /// A span that exits out of nesting order, as entered on one thread (by index).
    Async { span: u64, thread: u32 },
    /// An async task's own track (see `SpanPlan::is_task`), holding its polls; each poll
    /// names the thread (by index) that ran it.
    Task { span: u64, thread: u32 },
}

/// One step of a flow (an arrow between slices or instants, possibly across threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowStep {
    pub id: u64,
    pub role: FlowRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowRole {
    Start,
    Step,
    End,
}

/// What a format writes. Slices on one track arrive properly nested and in time order.
pub trait Sink {
    fn begin(&mut self, b: &Slice<'_>) -> anyhow::Result<()>;
    fn end(&mut self, ts: i64, track: Track, span: u64) -> anyhow::Result<()>;
    fn instant(&mut self, i: &Instant<'_>) -> anyhow::Result<()>;
}

/// A span's entry on a track.
pub struct Slice<'a> {
    pub ts: i64,
    pub track: Track,
    pub span: u64,
    /// The span's callsite, when known.
    pub callsite: Option<u32>,
    /// The span's fields (from its creation and later `record`s), when they survived.
    pub fields: &'a [FieldValue],
    pub flows: &'a [FlowStep],
}

/// An event (or a `follows_from` link, the trigger, or a finding) at one moment.
pub struct Instant<'a> {
    pub ts: i64,
    pub track: Track,
    /// The event or link; none for the trigger and for a finding.
    pub record: Option<&'a Record>,
    /// A finding (`flightrec check`'s), on the process track at its last evidence.
    pub finding: Option<&'a Finding>,
    pub flows: &'a [FlowStep],
}

/// The second pass's state, beside the shared span walker: what only the formats need.
struct Walk<'p> {
    plan: &'p SpanPlan,
    rec: &'p Recording,
    /// Per cause span: `follows_from` links to it seen so far.
    links_made: HashMap<u64, usize>,
    /// Each live span's fields (from its creation and later `record`s).
    fields: HashMap<u64, Vec<FieldValue>>,
    /// Tasks with a poll open on their own track, and the thread running it. A span entered
    /// on two threads at once (not a real task's poll) shows its first entry there only.
    polling: HashMap<u64, u32>,
    flows: Vec<FlowStep>,
}

/// The track a step's placement is drawn on.
fn track(s: &Step) -> Track {
    match s.placement {
        Placement::Nested { .. } => Track::Thread(s.thread),
        Placement::Own => Track::Async {
            span: s.span,
            thread: s.thread,
        },
    }
}

impl Walk<'_> {
    fn step(&mut self, sink: &mut dyn Sink, s: Step) -> anyhow::Result<()> {
        // A task's poll: its span entered outermost on a thread.
        let is_poll = s.placement == Placement::Nested { depth: 0 } && self.plan.is_task(s.span);
        if s.kind == StepKind::End {
            sink.end(s.ts, track(&s), s.span)?;
            if is_poll && self.polling.get(&s.span) == Some(&s.thread) {
                self.polling.remove(&s.span);
                let task = Track::Task {
                    span: s.span,
                    thread: s.thread,
                };
                sink.end(s.ts, task, s.span)?;
            }
            return Ok(());
        }
        self.flows.clear();
        if let Some(facts) = self.plan.facts(s.span).filter(|f| f.moved) {
            // A hand-over: the span's entries on different threads, linked by one flow.
            let role = match s.entry {
                1 => FlowRole::Start,
                k if k >= facts.enters => FlowRole::End,
                _ => FlowRole::Step,
            };
            self.flows.push(FlowStep {
                id: span_flow_id(s.span),
                role,
            });
        }
        if s.entry == 1 {
            for &id in self.plan.follow_links(s.span) {
                self.flows.push(FlowStep {
                    id: follow_flow_id(id),
                    role: FlowRole::Start,
                });
            }
        }
        let callsite = self.rec.span_callsites.get(&s.span).copied();
        let fields = self.fields.get(&s.span).map_or(&[][..], |f| f.as_slice());
        sink.begin(&Slice {
            ts: s.ts,
            track: track(&s),
            span: s.span,
            callsite,
            fields,
            flows: &self.flows,
        })?;
        if is_poll && !self.polling.contains_key(&s.span) {
            self.polling.insert(s.span, s.thread);
            sink.begin(&Slice {
                ts: s.ts,
                track: Track::Task {
                    span: s.span,
                    thread: s.thread,
                },
                span: s.span,
                callsite,
                fields,
                flows: &[],
            })?;
        }
        Ok(())
    }

    fn follows_from(&mut self, sink: &mut dyn Sink, r: &Record) -> anyhow::Result<()> {
        self.flows.clear();
        if let Some(cause) = r.follows().map(NonZeroU64::get) {
            let ids = self.plan.follow_links(cause);
            // The plan numbered this cause's drawable links in the order they were made.
            let made = self.links_made.entry(cause).or_insert(0);
            if let Some(&id) = ids.get(*made) {
                self.flows.push(FlowStep {
                    id: follow_flow_id(id),
                    role: FlowRole::End,
                });
            }
            *made += 1;
        }
        sink.instant(&Instant {
            ts: r.ts,
            track: Track::Thread(r.thread),
            record: Some(r),
            finding: None,
            flows: &self.flows,
        })
    }
}

/// The second pass: turns records into slices and instants for `sink`.
pub fn walk(
    rec: &Recording,
    records: impl Iterator<Item = Record>,
    plan: &SpanPlan,
    found: &[Finding],
    sink: &mut dyn Sink,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    // Each finding at its last evidence (where it was complete), in time order among the
    // records.
    let mut at_ts: Vec<(i64, &Finding)> = found
        .iter()
        .filter_map(|f| Some((f.records.last()?.ts, f)))
        .collect();
    at_ts.sort_by_key(|(ts, _)| *ts);
    let mut next_finding = 0;
    let mut w = Walk {
        plan,
        rec,
        links_made: HashMap::new(),
        fields: HashMap::new(),
        polling: HashMap::new(),
        flows: Vec::new(),
    };
    let mut spans = SpanWalker::new(plan);
    let trigger = &rec.trigger;
    let mut trigger_pending = trigger.reason != TriggerReason::None && trigger.wall_ns > 0;
    let trigger_instant = Instant {
        ts: trigger.wall_ns,
        track: Track::Process,
        record: None,
        finding: None,
        flows: &[],
    };
    // Steps are collected per record, then written: the walker cannot call the sink
    // itself, whose errors must stop the export.
    let mut steps: Vec<Step> = Vec::new();
    for (n, r) in records.enumerate() {
        if n % PROGRESS_STEP == PROGRESS_STEP - 1 {
            progress.inc(PROGRESS_STEP as u64);
        }
        if trigger_pending && trigger.wall_ns <= r.ts {
            trigger_pending = false;
            sink.instant(&trigger_instant)?;
        }
        while let Some(&(ts, f)) = at_ts.get(next_finding).filter(|(ts, _)| *ts < r.ts) {
            next_finding += 1;
            sink.instant(&finding_instant(ts, f))?;
        }
        if matches!(r.kind, RecordKind::SpanNew | RecordKind::SpanRecord) {
            merge_fields(w.fields.entry(r.span).or_default(), &r.fields);
        }
        spans.push(&r, &mut |s| steps.push(s));
        for s in steps.drain(..) {
            w.step(sink, s)?;
        }
        match r.kind {
            RecordKind::Event => sink.instant(&Instant {
                ts: r.ts,
                track: Track::Thread(r.thread),
                record: Some(&r),
                finding: None,
                flows: &[],
            })?,
            RecordKind::Close => {
                w.fields.remove(&r.span);
            }
            RecordKind::FollowsFrom => w.follows_from(sink, &r)?,
            _ => {}
        }
    }
    if trigger_pending {
        sink.instant(&trigger_instant)?;
    }
    for &(ts, f) in &at_ts[next_finding..] {
        sink.instant(&finding_instant(ts, f))?;
    }
    // Close what is still open at the end of the data.
    spans.finish(&mut |s| steps.push(s));
    for s in steps.drain(..) {
        w.step(sink, s)?;
    }
    Ok(())
}

fn finding_instant(ts: i64, f: &Finding) -> Instant<'_> {
    Instant {
        ts,
        track: Track::Process,
        record: None,
        finding: Some(f),
        flows: &[],
    }
}

/// A finding's instant's title in both formats.
pub fn finding_title(f: &Finding) -> String {
    format!("{} {}: {}", f.severity.slug(), f.kind.slug(), f.title)
}

/// The findings of the recording in `image`, when asked for: the one step of an export
/// that decodes the recording whole (the reading model's memory, as `info`), before the
/// streaming passes begin.
fn findings_of(image: &flightrec_format::Image, wanted: bool) -> anyhow::Result<Vec<Finding>> {
    if !wanted {
        return Ok(Vec::new());
    }
    let rec = image.decode()?;
    Ok(findings(&rec, &Thresholds::default()))
}

/// Records between progress bar updates.
const PROGRESS_STEP: usize = 65_536;

/// Flow ids: a span's hand-overs use even ids, `follows_from` links odd ones.
fn span_flow_id(span: u64) -> u64 {
    span.wrapping_mul(2)
}

fn follow_flow_id(n: u64) -> u64 {
    n.wrapping_mul(2) | 1
}

/// The trigger's title in both formats.
pub fn trigger_title(rec: &Recording) -> String {
    format!("flightrec trigger: {}", rec.trigger.reason.slug())
}
