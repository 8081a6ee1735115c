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

mod chrome;
mod perfetto;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use flightrec_format::{FieldValue, Record, RecordKind, Recording, Scan, TriggerReason};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Perfetto's protobuf trace (open in ui.perfetto.dev).
    Perfetto,
    /// The Chrome trace-event JSON format (chrome://tracing, Perfetto, speedscope).
    Chrome,
}

/// `flightrec export DUMP --format F -o OUT`.
pub fn run(input: &Path, format: Format, output: &Path) -> anyhow::Result<()> {
    check_output(output)?;
    let image = flightrec_format::read_image(input).with_context(|| input.display().to_string())?;
    let scan = flightrec_format::scan(&image).with_context(|| input.display().to_string())?;
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
    let plan = Plan::new(&scan, &progress);
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        match format {
            Format::Perfetto => {
                let mut sink = perfetto::PerfettoSink::new(&scan.recording, out);
                walk(&scan, &plan, &mut sink, &progress)?;
                sink.finish()
            }
            Format::Chrome => {
                let mut sink = chrome::ChromeSink::new(&scan.recording, &plan, out)?;
                walk(&scan, &plan, &mut sink, &progress)?;
                sink.finish()
            }
        }
    };
    if output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        write(&mut out)?;
        out.flush()?;
    } else {
        // A temporary name in the same directory, renamed when complete: an export that
        // fails (a full disk) leaves no half-written file behind.
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Errors name the user's path, never the temporary one.
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", output.display(), io_reason(&e)))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file());
        write(&mut out).with_context(|| format!("cannot write {}", output.display()))?;
        out.flush()
            .with_context(|| format!("cannot write {}", output.display()))?;
        drop(out);
        // An export is for sharing: the usual permissions, not the temporary file's 0600.
        use std::os::unix::fs::PermissionsExt as _;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
        tmp.persist(output).map_err(|e| {
            anyhow::anyhow!("cannot write {}: {}", output.display(), io_reason(&e.error))
        })?;
    }
    progress.finish_and_clear();
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

/// What the first pass learns about spans.
#[derive(Debug, Default)]
pub struct Plan {
    /// Spans that exit out of nesting order on some thread: drawn on an async track of
    /// their own (one per span and thread).
    async_spans: HashSet<u64>,
    /// Per span: how many times it was entered, and whether on more than one thread. Kept
    /// after the span closes only where the second pass needs it (a hand-over or a
    /// `follows_from` cause), so the map holds the live spans and those.
    spans: HashMap<u64, SpanPlan>,
    /// `follows_from` links whose cause had been entered before the link was made: the
    /// cause's first entry starts a flow that the `follows_from` instant ends.
    follows: HashMap<u64, Vec<u64>>,
    /// The latest timestamp in the recording (records and trigger).
    pub end_ts: i64,
    /// The earliest timestamp in the recording.
    pub start_ts: i64,
}

#[derive(Debug, Default, Clone)]
struct SpanPlan {
    enters: u32,
    first_thread: u32,
    moved: bool,
}

/// The spans that were entered on a thread before its first surviving record (the chunk
/// context), outermost first.
fn initial_stack(r: &Record) -> &[u64] {
    let s = &r.spans[..];
    match r.kind {
        // An enter's stack already holds the span it enters.
        RecordKind::Enter if s.last() == Some(&r.span) => &s[..s.len() - 1],
        _ => s,
    }
}

impl Plan {
    pub fn new(scan: &Scan<'_>, progress: &indicatif::ProgressBar) -> Plan {
        let mut plan = Plan {
            start_ts: i64::MAX,
            end_ts: i64::MIN,
            ..Plan::default()
        };
        let mut stacks: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut next_follow_id = 0u64;
        for (n, r) in scan.records().enumerate() {
            if n % PROGRESS_STEP == PROGRESS_STEP - 1 {
                progress.inc(PROGRESS_STEP as u64);
            }
            plan.start_ts = plan.start_ts.min(r.ts);
            plan.end_ts = plan.end_ts.max(r.ts);
            let stack = stacks.entry(r.thread).or_insert_with(|| {
                let initial = initial_stack(&r).to_vec();
                for &s in &initial {
                    plan.note_enter(s, r.thread);
                }
                initial
            });
            match r.kind {
                RecordKind::Enter => {
                    plan.note_enter(r.span, r.thread);
                    if !plan.async_spans.contains(&r.span) {
                        stack.push(r.span);
                    }
                }
                RecordKind::Exit => {
                    if stack.last() == Some(&r.span) {
                        stack.pop();
                    } else if let Some(pos) = stack.iter().rposition(|&s| s == r.span) {
                        // Removing every entry of this span from the thread's track keeps
                        // the rest of it properly nested.
                        stack.remove(pos);
                        plan.async_spans.insert(r.span);
                    }
                }
                // Ids are never reused: a closed span is entered no more. Only what the
                // second pass needs is kept, so memory follows the live spans.
                RecordKind::Close
                    if plan.spans.get(&r.span).is_some_and(|s| !s.moved)
                        && !plan.follows.contains_key(&r.span) =>
                {
                    plan.spans.remove(&r.span);
                }
                RecordKind::FollowsFrom => {
                    if let Some(cause) = r.follows {
                        if plan.spans.get(&cause).is_some_and(|s| s.enters > 0) {
                            plan.follows.entry(cause).or_default().push(next_follow_id);
                            next_follow_id += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        let trigger = &scan.recording.trigger;
        if trigger.reason != TriggerReason::None && trigger.wall_ns > 0 {
            plan.end_ts = plan.end_ts.max(trigger.wall_ns);
            plan.start_ts = plan.start_ts.min(trigger.wall_ns);
        }
        if plan.start_ts > plan.end_ts {
            plan.start_ts = 0;
            plan.end_ts = 0;
        }
        plan
    }

    fn note_enter(&mut self, span: u64, thread: u32) {
        let s = self.spans.entry(span).or_insert(SpanPlan {
            enters: 0,
            first_thread: thread,
            moved: false,
        });
        s.enters += 1;
        s.moved |= s.first_thread != thread;
    }
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

/// An event (or a `follows_from` link, or the trigger) at one moment.
pub struct Instant<'a> {
    pub ts: i64,
    pub track: Track,
    pub record: Option<&'a Record>,
    pub flows: &'a [FlowStep],
}

/// The second pass's state.
struct Walk<'p> {
    plan: &'p Plan,
    rec: &'p Recording,
    /// Per thread: the spans open on its thread track, outermost first.
    stacks: HashMap<u32, Vec<u64>>,
    /// Async slices open, per (span, thread): how many entries deep.
    open_async: HashMap<(u64, u32), u32>,
    /// Per span: entries seen so far (for flow roles).
    entered: HashMap<u64, u32>,
    /// Per cause span: `follows_from` links to it seen so far.
    links_made: HashMap<u64, usize>,
    /// Each live span's fields (from its creation and later `record`s).
    fields: HashMap<u64, Vec<FieldValue>>,
    flows: Vec<FlowStep>,
}

impl Walk<'_> {
    fn enter(
        &mut self,
        sink: &mut dyn Sink,
        ts: i64,
        span: u64,
        thread: u32,
    ) -> anyhow::Result<()> {
        let n = self.entered.entry(span).or_insert(0);
        *n += 1;
        let n = *n;
        self.flows.clear();
        if let Some(sp) = self.plan.spans.get(&span) {
            if sp.moved {
                let role = match n {
                    1 => FlowRole::Start,
                    k if k >= sp.enters => FlowRole::End,
                    _ => FlowRole::Step,
                };
                self.flows.push(FlowStep {
                    id: span_flow_id(span),
                    role,
                });
            }
        }
        if n == 1 {
            for &id in self.plan.follows.get(&span).into_iter().flatten() {
                self.flows.push(FlowStep {
                    id: follow_flow_id(id),
                    role: FlowRole::Start,
                });
            }
        }
        let track = if self.plan.async_spans.contains(&span) {
            *self.open_async.entry((span, thread)).or_insert(0) += 1;
            Track::Async { span, thread }
        } else {
            self.stacks.entry(thread).or_default().push(span);
            Track::Thread(thread)
        };
        sink.begin(&Slice {
            ts,
            track,
            span,
            callsite: self.rec.span_callsites.get(&span).copied(),
            fields: self.fields.get(&span).map_or(&[], |f| f.as_slice()),
            flows: &self.flows,
        })
    }

    fn exit(&mut self, sink: &mut dyn Sink, ts: i64, span: u64, thread: u32) -> anyhow::Result<()> {
        if self.plan.async_spans.contains(&span) {
            if let Some(n) = self.open_async.get_mut(&(span, thread)).filter(|n| **n > 0) {
                *n -= 1;
                sink.end(ts, Track::Async { span, thread }, span)?;
            }
        } else {
            let stack = self.stacks.entry(thread).or_default();
            // The plan makes the span the innermost; anything else (an exit whose entry
            // was overwritten) is dropped rather than misnested.
            if stack.last() == Some(&span) {
                stack.pop();
                sink.end(ts, Track::Thread(thread), span)?;
            }
        }
        Ok(())
    }

    fn record_fields(&mut self, r: &Record) {
        let f = self.fields.entry(r.span).or_default();
        for v in &r.fields {
            match f.iter_mut().find(|o| o.index == v.index) {
                Some(o) => *o = v.clone(),
                None => f.push(v.clone()),
            }
        }
    }

    fn follows_from(&mut self, sink: &mut dyn Sink, r: &Record) -> anyhow::Result<()> {
        self.flows.clear();
        if let Some(cause) = r.follows {
            if let Some(ids) = self.plan.follows.get(&cause) {
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
        }
        sink.instant(&Instant {
            ts: r.ts,
            track: Track::Thread(r.thread),
            record: Some(r),
            flows: &self.flows,
        })
    }
}

/// The second pass: turns records into slices and instants for `sink`.
pub fn walk(
    scan: &Scan<'_>,
    plan: &Plan,
    sink: &mut dyn Sink,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let rec = &scan.recording;
    let mut w = Walk {
        plan,
        rec,
        stacks: HashMap::new(),
        open_async: HashMap::new(),
        entered: HashMap::new(),
        links_made: HashMap::new(),
        fields: HashMap::new(),
        flows: Vec::new(),
    };
    let trigger = &rec.trigger;
    let mut trigger_pending = trigger.reason != TriggerReason::None && trigger.wall_ns > 0;
    let trigger_instant = Instant {
        ts: trigger.wall_ns,
        track: Track::Process,
        record: None,
        flows: &[],
    };
    for (n, r) in scan.records().enumerate() {
        if n % PROGRESS_STEP == PROGRESS_STEP - 1 {
            progress.inc(PROGRESS_STEP as u64);
        }
        if trigger_pending && trigger.wall_ns <= r.ts {
            trigger_pending = false;
            sink.instant(&trigger_instant)?;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = w.stacks.entry(r.thread) {
            e.insert(Vec::new());
            for &s in initial_stack(&r) {
                w.enter(sink, r.ts, s, r.thread)?;
            }
        }
        match r.kind {
            RecordKind::Event => sink.instant(&Instant {
                ts: r.ts,
                track: Track::Thread(r.thread),
                record: Some(&r),
                flows: &[],
            })?,
            RecordKind::SpanNew | RecordKind::SpanRecord => w.record_fields(&r),
            RecordKind::Enter => w.enter(sink, r.ts, r.span, r.thread)?,
            RecordKind::Exit => w.exit(sink, r.ts, r.span, r.thread)?,
            RecordKind::Close => {
                w.fields.remove(&r.span);
                w.entered.remove(&r.span);
            }
            RecordKind::FollowsFrom => w.follows_from(sink, &r)?,
            RecordKind::Context => {}
        }
    }
    if trigger_pending {
        sink.instant(&trigger_instant)?;
    }
    // Close what is still open at the end of the data, innermost first.
    let mut threads: Vec<_> = w.stacks.into_iter().collect();
    threads.sort_by_key(|(t, _)| *t);
    for (thread, stack) in threads {
        for &span in stack.iter().rev() {
            sink.end(plan.end_ts, Track::Thread(thread), span)?;
        }
    }
    let mut open: Vec<_> = w.open_async.into_iter().collect();
    open.sort();
    for ((span, thread), n) in open {
        for _ in 0..n {
            sink.end(plan.end_ts, Track::Async { span, thread }, span)?;
        }
    }
    Ok(())
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

/// Names used by both formats.
pub struct Names<'r> {
    rec: &'r Recording,
}

impl<'r> Names<'r> {
    pub fn new(rec: &'r Recording) -> Names<'r> {
        Names { rec }
    }

    pub fn callsite(&self, id: u32) -> Option<&'r flightrec_format::Callsite> {
        self.rec.callsites.get(&id)
    }

    pub fn span_name(&self, callsite: Option<u32>) -> &'r str {
        callsite
            .and_then(|c| self.callsite(c))
            .map_or("span", |c| c.name.as_str())
    }

    pub fn field_name(&self, callsite: u32, index: u8) -> std::borrow::Cow<'r, str> {
        match self
            .callsite(callsite)
            .and_then(|c| c.fields.get(index as usize))
        {
            Some(n) => n.as_str().into(),
            None => format!("field{index}").into(),
        }
    }

    /// An event's title: its message, else its callsite's name.
    pub fn event_title(&self, r: &'r Record) -> std::borrow::Cow<'r, str> {
        if r.kind == RecordKind::FollowsFrom {
            return "follows_from".into();
        }
        for f in &r.fields {
            if self.field_name(r.callsite, f.index) == "message" {
                let mut s = f.value.to_text();
                if s.len() > 200 {
                    let mut cut = 200;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                    s.push('…');
                }
                return s.into();
            }
        }
        self.callsite(r.callsite)
            .map_or("event".into(), |c| c.name.as_str().into())
    }

    pub fn trigger_title(&self) -> String {
        format!("flightrec trigger: {}", self.rec.trigger.reason.slug())
    }
}
