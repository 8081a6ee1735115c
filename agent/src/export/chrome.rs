//! The Chrome trace-event JSON format: `{"traceEvents": [...]}`, written one event at a
//! time. Times are microseconds (with three decimals, so nanoseconds survive) since the
//! recording's first timestamp, which `otherData` gives in ns since the Unix epoch: a
//! double cannot hold epoch microseconds to the nanosecond.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::io::Write;

use flightrec_format::{FieldValue, Recording};
use serde_json::{json, Map, Value as Json};

use super::{FlowRole, FlowStep, Instant, Sink, Slice, Track};
use flightrec_analysis::{Names, SpanPlan};

pub struct ChromeSink<'r, 'o> {
    rec: &'r Recording,
    names: Names<'r>,
    out: &'o mut dyn Write,
    origin: i64,
    pid: u32,
    /// Thread index to the tid written: the OS tid, unless two threads share one.
    tids: HashMap<u32, u64>,
    /// Name and categories of each open async slice, which its end must repeat.
    async_open: HashMap<(u64, u32), Vec<(String, String)>>,
    /// Names of the slices open on each thread track, for their `E` events.
    open: HashMap<u32, Vec<String>>,
    /// The name of each task with a poll open, which the poll's end repeats.
    polls_open: HashMap<u64, String>,
}

impl<'r, 'o> ChromeSink<'r, 'o> {
    pub fn new(
        rec: &'r Recording,
        plan: &SpanPlan,
        out: &'o mut dyn Write,
    ) -> anyhow::Result<ChromeSink<'r, 'o>> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        ChromeSink::part(rec, plan.start_ts, rec.process.pid, None, out, true)
    }

    /// One of several recordings written into one trace: times from the shared `origin`,
    /// the process as `pid` (and `name`, else its service). The first part writes no
    /// leading comma; `ChromeSink::finish_all` closes the trace.
    pub fn part(
        rec: &'r Recording,
        origin: i64,
        pid: u32,
        name: Option<String>,
        out: &'o mut dyn Write,
        first: bool,
    ) -> anyhow::Result<ChromeSink<'r, 'o>> {
        let mut seen: HashMap<u64, u32> = HashMap::new();
        for t in &rec.threads {
            *seen.entry(t.tid).or_insert(0) += 1;
        }
        let tids = rec
            .threads
            .iter()
            .map(|t| {
                let tid = if seen[&t.tid] > 1 {
                    // A reused OS tid: keep the threads apart.
                    1_000_000_000 + t.index as u64
                } else {
                    t.tid
                };
                (t.index, tid)
            })
            .collect();
        let mut sink = ChromeSink {
            rec,
            names: Names::new(rec),
            out,
            origin,
            pid,
            tids,
            async_open: HashMap::new(),
            open: HashMap::new(),
            polls_open: HashMap::new(),
        };
        let pid = sink.pid;
        if !first {
            sink.out.write_all(b",\n")?;
        }
        sink.raw(&json!({
            "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": {"name": name.unwrap_or_else(|| rec.process.service.clone())},
        }))?;
        for t in &rec.threads {
            let tid = sink.tids[&t.index];
            sink.out.write_all(b",\n")?;
            sink.raw(&json!({
                "name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                "args": {"name": t.name},
            }))?;
            sink.out.write_all(b",\n")?;
            sink.raw(&json!({
                "name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                "args": {"sort_index": t.index},
            }))?;
        }
        Ok(sink)
    }

    fn raw(&mut self, v: &Json) -> anyhow::Result<()> {
        serde_json::to_writer(&mut *self.out, v)?;
        Ok(())
    }

    fn event(&mut self, v: &Json) -> anyhow::Result<()> {
        self.out.write_all(b",\n")?;
        self.raw(v)
    }

    /// Microseconds since the origin, with nanosecond digits.
    fn ts(&self, ns: i64) -> Json {
        let d = ns.saturating_sub(self.origin);
        let v: f64 = format!("{}.{:03}", d / 1000, (d % 1000).abs())
            .parse()
            .unwrap_or(d as f64 / 1000.0);
        json!(v)
    }

    fn tid(&self, track: Track) -> u64 {
        match track {
            Track::Process => 0,
            Track::Thread(t) | Track::Async { thread: t, .. } | Track::Task { thread: t, .. } => {
                self.tids.get(&t).copied().unwrap_or(t as u64)
            }
        }
    }

    /// `fields`: a record's (`&Fields`, decoded as they are read) or a span's merged ones.
    fn args(
        &self,
        callsite: u32,
        fields: impl IntoIterator<Item = impl Borrow<FieldValue>>,
    ) -> Map<String, Json> {
        fields
            .into_iter()
            .map(|f| {
                let f = f.borrow();
                (
                    self.names.field_name(callsite, f.index).into_owned(),
                    json!(f.value.to_text()),
                )
            })
            .collect()
    }

    fn category(&self, callsite: Option<u32>) -> String {
        match callsite.and_then(|c| self.names.callsite(c)) {
            Some(cs) => format!("{},{}", cs.level.as_str(), cs.target),
            None => "span".into(),
        }
    }

    fn flows(&mut self, ts: i64, tid: u64, flows: &[FlowStep]) -> anyhow::Result<()> {
        for f in flows {
            let ph = match f.role {
                FlowRole::Start => "s",
                FlowRole::Step => "t",
                FlowRole::End => "f",
            };
            let mut e = json!({
                "name": "flow", "cat": "flow", "ph": ph, "id": f.id,
                "ts": self.ts(ts), "pid": self.pid, "tid": tid,
            });
            if f.role == FlowRole::End {
                // Bind to the slice the arrow ends in, not the next one.
                e["bp"] = json!("e");
            }
            self.event(&e)?;
        }
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<()> {
        let other = json!({
            "service": self.rec.process.service,
            "host": self.rec.process.host,
            "pid": self.rec.process.pid,
            "trigger": self.rec.trigger.reason.slug(),
            "origin_unix_ns": self.origin,
        });
        ChromeSink::finish_all(self.out, &other)
    }

    /// Ends a part of a trace of several recordings.
    pub fn finish_part(self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }

    /// Closes the trace with its `otherData`.
    pub fn finish_all(out: &mut dyn Write, other: &Json) -> anyhow::Result<()> {
        write!(
            out,
            "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{other}}}\n"
        )?;
        out.flush()?;
        Ok(())
    }
}

/// A task's async id: all its polls, whichever thread ran them, on one track.
fn task_id(span: u64) -> String {
    format!("task.0x{span:x}")
}

/// An async slice's id: one per span and thread, as its track in the Perfetto export, so
/// entries of one span on two threads at once never pair up with each other's ends.
fn async_id(span: u64, thread: u32) -> String {
    format!("0x{span:x}.{thread}")
}

impl Sink for ChromeSink<'_, '_> {
    fn begin(&mut self, s: &Slice<'_>) -> anyhow::Result<()> {
        let tid = self.tid(s.track);
        if let Track::Task { span, thread } = s.track {
            // One async track per task, named after it; each poll names its worker.
            let name = flightrec_analysis::tasks::task_name(&self.names, s.callsite, s.fields);
            let (worker, worker_tid) = self.names.thread(thread);
            let e = json!({
                "name": name, "cat": "task", "ph": "b", "id": task_id(span),
                "ts": self.ts(s.ts), "pid": self.pid, "tid": tid,
                "args": {"span_id": span, "worker": worker, "worker_tid": worker_tid},
            });
            self.polls_open.insert(span, name);
            return self.event(&e);
        }
        let name = self.names.callsite_name(s.callsite).to_owned();
        let cat = self.category(s.callsite);
        let mut args = s.callsite.map_or_else(Map::new, |c| self.args(c, s.fields));
        args.insert("span_id".into(), json!(s.span));
        let mut e = json!({
            "name": name, "cat": cat, "ph": "B", "ts": self.ts(s.ts),
            "pid": self.pid, "tid": tid, "args": args,
        });
        match s.track {
            Track::Async { span, thread } => {
                e["ph"] = json!("b");
                e["id"] = json!(async_id(span, thread));
                self.async_open
                    .entry((span, thread))
                    .or_default()
                    .push((name, cat));
            }
            Track::Thread(t) => self.open.entry(t).or_default().push(name),
            Track::Process | Track::Task { .. } => {}
        }
        self.event(&e)?;
        self.flows(s.ts, tid, s.flows)
    }

    fn end(&mut self, ts: i64, track: Track, span: u64) -> anyhow::Result<()> {
        let tid = self.tid(track);
        let e = match track {
            Track::Async { span, thread } => {
                let (name, cat) = self
                    .async_open
                    .get_mut(&(span, thread))
                    .and_then(|v| v.pop())
                    .unwrap_or_else(|| ("span".into(), "span".into()));
                json!({
                    "name": name, "cat": cat, "ph": "e", "id": async_id(span, thread),
                    "ts": self.ts(ts), "pid": self.pid, "tid": tid,
                })
            }
            Track::Thread(t) => {
                let name = self.open.get_mut(&t).and_then(|v| v.pop());
                json!({
                    "name": name, "ph": "E", "ts": self.ts(ts), "pid": self.pid,
                    "tid": tid, "args": {"span_id": span},
                })
            }
            Track::Task { span, .. } => {
                let name = self
                    .polls_open
                    .remove(&span)
                    .unwrap_or_else(|| "task".into());
                json!({
                    "name": name, "cat": "task", "ph": "e", "id": task_id(span),
                    "ts": self.ts(ts), "pid": self.pid, "tid": tid,
                })
            }
            Track::Process => return Ok(()),
        };
        self.event(&e)
    }

    fn instant(&mut self, i: &Instant<'_>) -> anyhow::Result<()> {
        let tid = self.tid(i.track);
        let e = match i.record {
            None if i.finding.is_some() => {
                let f = i.finding.expect("checked");
                let records: Vec<usize> = f.records.iter().map(|e| e.record).collect();
                json!({
                    "name": super::finding_title(f), "cat": "flightrec", "ph": "i", "s": "p",
                    "ts": self.ts(i.ts), "pid": self.pid, "tid": tid,
                    "args": {"kind": f.kind.slug(), "severity": f.severity.slug(),
                             "object": f.object, "records": records},
                })
            }
            Some(r) => {
                let mut args = self.args(r.callsite, &r.fields);
                if let Some(cs) = self.names.callsite(r.callsite) {
                    if let (Some(file), Some(line)) = (&cs.file, cs.line) {
                        args.insert("source".into(), json!(format!("{file}:{line}")));
                    }
                }
                if let Some(f) = r.follows() {
                    args.insert("span_id".into(), json!(r.span));
                    args.insert("follows".into(), json!(f));
                }
                json!({
                    "name": self.names.title(r), "cat": self.category(Some(r.callsite)),
                    "ph": "i", "s": "t", "ts": self.ts(i.ts), "pid": self.pid, "tid": tid,
                    "args": args,
                })
            }
            None => {
                let t = &self.rec.trigger;
                json!({
                    "name": super::trigger_title(self.rec), "cat": "flightrec", "ph": "i", "s": "g",
                    "ts": self.ts(i.ts), "pid": self.pid, "tid": tid,
                    "args": {"reason": t.reason.slug(), "message": t.message, "tid": t.tid,
                             "signal": t.signal},
                })
            }
        };
        self.event(&e)?;
        self.flows(i.ts, tid, i.flows)
    }
}
