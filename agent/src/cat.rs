//! `flightrec cat`: records in global time order, as text like tracing's fmt output or as
//! one JSON object per line.

use std::fmt::Write as _;
use std::io::Write;
use std::num::NonZeroU64;

use flightrec_analysis::{Names, TokioIds};
use flightrec_format::{Record, RecordKind, Recording, Scan, Value};
use serde_json::{json, Map, Value as Json};

/// Several recordings' records in one time order, each line naming its process
/// (`service[pid]`, with `@host` when they come from several hosts); in JSON, a `process`
/// key. Memory: the images, and one record per recording.
pub fn run_merged(
    scans: &[Scan<'_>],
    as_json: bool,
    show_spans: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let recs: Vec<&Recording> = scans.iter().map(|s| &s.recording).collect();
    let with_host = flightrec_analysis::merge::several_hosts(&recs);
    let labels: Vec<String> = recs
        .iter()
        .map(|r| flightrec_analysis::merge::process_label(r, with_host))
        .collect();
    let names: Vec<Names<'_>> = recs.iter().map(|r| Names::new(r)).collect();
    let mut tokio_ids: Vec<TokioIds> = recs.iter().map(|_| TokioIds::default()).collect();
    let mut texts: Vec<TextState> = recs.iter().map(|r| TextState::new(r, show_spans)).collect();
    let streams = scans.iter().map(|s| s.records()).collect();
    let mut line = String::new();
    for (i, r) in flightrec_analysis::merge::merge_by_time(streams) {
        let (rec, names) = (recs[i], &names[i]);
        let task = tokio_ids[i].observe(names, &r);
        if !as_json {
            // Each recording's trigger, at its time among everyone's records.
            for (k, t) in texts.iter_mut().enumerate() {
                if let Some(trigger) = t.trigger_due(r.ts) {
                    writeln!(out, "{} {trigger}", labels[k])?;
                }
            }
        }
        if as_json {
            let mut j = record_json(rec, names, &r);
            j["task"] = json!(task);
            j["process"] = json!({
                "index": i, "service": rec.process.service, "pid": rec.process.pid,
                "host": rec.process.host,
            });
            serde_json::to_writer(&mut *out, &j)?;
        } else {
            line.clear();
            line.push_str(&labels[i]);
            line.push(' ');
            if !texts[i].line(rec, names, &r, &mut line) {
                continue;
            }
            out.write_all(line.as_bytes())?;
        }
        out.write_all(b"\n")?;
    }
    if !as_json {
        for (k, t) in texts.iter_mut().enumerate() {
            if let Some(trigger) = t.trigger_due(i64::MAX) {
                writeln!(out, "{} {trigger}", labels[k])?;
            }
        }
    }
    Ok(())
}

/// Streams the records: memory stays bounded by the image, whatever it holds.
pub fn run(
    scan: &Scan<'_>,
    as_json: bool,
    show_spans: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let rec = &scan.recording;
    let names = Names::new(rec);
    let mut line = String::new();
    let mut tokio_ids = TokioIds::default();
    let mut text = TextState::new(rec, show_spans);
    for r in scan.records() {
        let r = &r;
        line.clear();
        let task = tokio_ids.observe(&names, r);
        if as_json {
            let mut j = record_json(rec, &names, r);
            j["task"] = json!(task);
            serde_json::to_writer(&mut *out, &j)?;
        } else {
            if let Some(trigger) = text.trigger_due(r.ts) {
                writeln!(out, "{trigger}")?;
            }
            if !text.line(rec, &names, r, &mut line) {
                continue;
            }
            out.write_all(line.as_bytes())?;
        }
        out.write_all(b"\n")?;
    }
    if !as_json {
        if let Some(trigger) = text.trigger_due(i64::MAX) {
            writeln!(out, "{trigger}")?;
        }
    }
    // After the records, the native stacks captured into the dump (text only: the JSON
    // lines stay one record each; `info --json` has the stacks as data).
    if !as_json && !rec.stacks.is_empty() {
        let stacks = flightrec_analysis::stacks::stacks(rec);
        writeln!(out, "-- native stacks ({}) --", stacks.len())?;
        out.write_all(flightrec_analysis::stacks::render(&stacks).as_bytes())?;
        if let Some(hint) = flightrec_analysis::stacks::lines_hint(rec, &stacks) {
            writeln!(out, "  ({hint})")?;
        }
    }
    Ok(())
}

/// RFC 3339 UTC with nanoseconds.
pub fn format_ts(ns: i64) -> String {
    if ns < 0 {
        return format!("{ns}ns");
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::I64(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I128(x) => {
            i64::try_from(x.get()).map_or_else(|_| json!(x.to_string()), |x| json!(x))
        }
        Value::U128(x) => {
            u64::try_from(x.get()).map_or_else(|_| json!(x.to_string()), |x| json!(x))
        }
        Value::F64(x) => {
            serde_json::Number::from_f64(*x).map_or_else(|| json!(x.to_string()), Json::Number)
        }
        Value::Bool(x) => json!(x),
        Value::Str(s) | Value::Debug(s) | Value::Error(s) => json!(s),
        Value::Bytes(b) => json!(b),
    }
}

fn value_text(v: &Value, out: &mut String) {
    let _ = match v {
        Value::I64(x) => write!(out, "{x}"),
        Value::U64(x) => write!(out, "{x}"),
        Value::I128(x) => write!(out, "{x}"),
        Value::U128(x) => write!(out, "{x}"),
        Value::F64(x) => write!(out, "{x}"),
        Value::Bool(x) => write!(out, "{x}"),
        Value::Str(s) => write!(out, "{s:?}"),
        Value::Debug(s) | Value::Error(s) => write!(out, "{s}"),
        Value::Bytes(b) => write!(out, "{b:02x?}"),
    };
}

pub fn record_json(rec: &Recording, names: &Names<'_>, r: &Record) -> Json {
    let cs = rec.callsites.get(&r.callsite);
    let (thread, tid) = names.thread(r.thread);
    let mut fields = Map::new();
    for f in &r.fields {
        fields.insert(
            names.field_name(r.callsite, f.index).into_owned(),
            value_json(&f.value),
        );
    }
    let is_span = r.kind != RecordKind::Event;
    let mut o = json!({
        "ts": r.ts,
        "tid": tid,
        "thread": thread,
        "kind": r.kind.as_str(),
        "level": cs.map(|c| c.level.as_str()),
        "target": cs.map(|c| c.target.as_str()),
        "name": cs.map(|c| c.name.as_str()),
        "file": cs.and_then(|c| c.file.as_deref()),
        "line": cs.and_then(|c| c.line),
        "span": if is_span { json!(r.span) } else { Json::Null },
        "parent": r.parent(),
        "fields": fields,
        "spans": &*r.spans,
    });
    if let Some(f) = r.follows() {
        o["follows"] = json!(f);
    }
    if r.truncated {
        o["truncated"] = json!(true);
    }
    o
}

/// What a text line needs beyond its record: each live span's fields (from its creation
/// and later `record` calls), so a line shows `order{sku=7}:` as tracing's fmt layer does;
/// whether lifecycle records are shown; and the trigger, printed once at its time.
pub struct TextState {
    span_fields: std::collections::HashMap<u64, String>,
    show_spans: bool,
    /// The trigger's time and its line, until printed.
    trigger: Option<(i64, String)>,
}

impl TextState {
    pub fn new(rec: &Recording, show_spans: bool) -> TextState {
        let t = &rec.trigger;
        let trigger = (t.reason != flightrec_format::TriggerReason::None).then(|| {
            let ts = if t.wall_ns > 0 { t.wall_ns } else { i64::MAX };
            (
                ts,
                format!(
                    "{} TRIGGER {}",
                    if t.wall_ns > 0 {
                        format_ts(t.wall_ns)
                    } else {
                        "(time unknown)".into()
                    },
                    t.describe()
                ),
            )
        });
        TextState {
            span_fields: Default::default(),
            show_spans,
            trigger,
        }
    }

    /// The trigger's line, once, when a record at `ts` comes after it.
    pub fn trigger_due(&mut self, ts: i64) -> Option<String> {
        if self.trigger.as_ref().is_some_and(|(at, _)| *at < ts) {
            return self.trigger.take().map(|(_, line)| line);
        }
        None
    }

    /// Writes `r`'s line into `out` (cleared by the caller) and says whether there is one:
    /// lifecycle records (`span_new`, `enter`, `exit`, `close`, `follows_from`, `record`)
    /// only update the span fields unless `show_spans`.
    pub fn line(
        &mut self,
        rec: &Recording,
        names: &Names<'_>,
        r: &Record,
        out: &mut String,
    ) -> bool {
        match r.kind {
            RecordKind::SpanNew | RecordKind::SpanRecord => {
                let fields = self.span_fields.entry(r.span).or_default();
                for f in &r.fields {
                    if !fields.is_empty() {
                        fields.push(' ');
                    }
                    let _ = write!(fields, "{}=", names.field_name(r.callsite, f.index));
                    value_text(&f.value, fields);
                }
            }
            _ => {}
        }
        if r.kind != RecordKind::Event && !self.show_spans {
            if r.kind == RecordKind::Close {
                self.span_fields.remove(&r.span);
            }
            return false;
        }
        text_line(rec, names, r, &self.span_fields, out);
        if r.kind == RecordKind::Close {
            self.span_fields.remove(&r.span);
        }
        true
    }
}

/// `TIME LEVEL thread[tid] span{k=v}:span: target: message key=value ...`; a lock event in
/// words (`waits for `cache``), by its lock's label.
fn text_line(
    rec: &Recording,
    names: &Names<'_>,
    r: &Record,
    span_fields: &std::collections::HashMap<u64, String>,
    out: &mut String,
) {
    let cs = rec.callsites.get(&r.callsite);
    let (thread, tid) = names.thread(r.thread);
    let level = cs.map_or("?", |c| c.level.as_str());
    let _ = write!(out, "{} {level:>5} {thread}[{tid}] ", format_ts(r.ts));
    for s in r.spans.iter() {
        out.push_str(names.span_name(*s));
        if let Some(f) = span_fields.get(s).filter(|f| !f.is_empty()) {
            let _ = write!(out, "{{{f}}}");
        }
        out.push(':');
    }
    if !r.spans.is_empty() {
        out.push(' ');
    }
    let target = cs.map_or("?", |c| c.target.as_str());
    let _ = write!(out, "{target}: ");
    if let Some((id, op)) = names.lock_op(r) {
        out.push_str(&flightrec_analysis::locks::op_title(
            &names.lock_label(id),
            op,
        ));
        return;
    }
    if r.kind != RecordKind::Event {
        let _ = write!(
            out,
            "{} {}#{}",
            r.kind.as_str(),
            names.span_name(r.span),
            r.span
        );
        if let Some(f) = r.follows().map(NonZeroU64::get) {
            let _ = write!(out, " follows {}#{f}", names.span_name(f));
        }
    }
    let mut first = r.kind == RecordKind::Event;
    for f in &r.fields {
        let name = names.field_name(r.callsite, f.index);
        if name == "message" && first {
            value_text_plain(&f.value, out);
        } else {
            if !first || r.kind != RecordKind::Event {
                out.push(' ');
            }
            let _ = write!(out, "{name}=");
            value_text(&f.value, out);
        }
        first = false;
    }
    if r.truncated {
        out.push_str(" [truncated]");
    }
}

/// Messages print bare, as tracing's fmt layer prints them.
fn value_text_plain(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => out.push_str(s),
        v => value_text(v, out),
    }
}
