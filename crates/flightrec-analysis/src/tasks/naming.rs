//! What a task is called: its name from its root span, its label among look-alikes, and
//! the tokio task id of each record of a stream (for readers that hold no records).

use rustc_hash::FxHashMap as HashMap;

use flightrec_format::meta::tokio_task;
use flightrec_format::{FieldValue, Record, RecordKind, Value};

use super::{task_of, Task, TokioTask};
use crate::names::Names;

pub(super) fn tokio_info(fields: &[FieldValue]) -> TokioTask {
    let get = |i: usize| fields.iter().find(|f| f.index as usize == i);
    let id = match get(tokio_task::TASK_ID as usize).map(|f| &f.value) {
        Some(Value::U64(v)) => *v,
        Some(Value::I64(v)) => *v as u64,
        _ => 0,
    };
    let spawned_at = match (get(1), get(2)) {
        (Some(file), Some(line)) => {
            Some(format!("{}:{}", file.value.to_text(), line.value.to_text()))
        }
        (Some(file), None) => Some(file.value.to_text()),
        _ => None,
    };
    TokioTask {
        id,
        spawned_at,
        runs_fields: Vec::new(),
    }
}

/// A task's name from its root span alone: `task 17` for a tokio task, else the span's
/// name and fields (`request id=3`). What the exporters name a task's track.
pub fn task_name(names: &Names<'_>, callsite: Option<u32>, fields: &[FieldValue]) -> String {
    let cs = callsite.and_then(|c| names.callsite(c));
    if cs.is_some_and(tokio_task::is) {
        return format!("task {}", tokio_info(fields).id);
    }
    let mut s = names.callsite_name(callsite).to_string();
    if let Some(c) = callsite {
        for f in fields {
            s.push(' ');
            s.push_str(&names.field_name(c, f.index));
            s.push('=');
            s.push_str(&f.value.to_text());
        }
    }
    s
}

/// A task's one-line label: [`task_name`], and for a tokio task the name of the span it
/// runs, if any (`task 17 · request`).
pub fn label(names: &Names<'_>, task: &Task) -> String {
    let fields = task.fields(&names.recording().records);
    let mut s = task_name(names, names.span_callsite(task.span), &fields);
    if let Some(tokio) = &task.tokio {
        if let Some(runs) = runs_span(task) {
            s.push_str(" · ");
            s.push_str(&task_name(
                names,
                names.span_callsite(runs),
                &tokio.runs_fields,
            ));
        }
    }
    s
}

/// Tells equal labels apart: labels that occur more than once (two connections from one
/// peer, two requests with the same fields) get `#1`, `#2`… in order, so a finding or a
/// lane naming two of them names two.
pub fn tell_apart(labels: &mut [String]) {
    let mut count: HashMap<String, usize> = HashMap::default();
    for l in labels.iter() {
        *count.entry(l.clone()).or_default() += 1;
    }
    let mut seen: HashMap<String, usize> = HashMap::default();
    for l in labels.iter_mut() {
        if count.get(l.as_str()).is_some_and(|&n| n > 1) {
            let n = seen.entry(l.clone()).or_default();
            *n += 1;
            l.push_str(&format!(" #{n}"));
        }
    }
}

/// The span a tokio task runs: the first entered at depth 1 inside its polls.
pub(super) fn runs_span(task: &Task) -> Option<u64> {
    task.inner
        .iter()
        .filter(|i| i.depth == 1)
        .min_by_key(|i| i.begin)
        .map(|i| i.span)
}

/// The tokio task id of each record of a stream, in one streaming pass (for readers that
/// hold no records, like `cat`): the id of the task span outermost on the record's thread.
/// Memory holds the live tasks.
#[derive(Debug, Default)]
pub struct TokioIds {
    /// Live tokio task spans: span id to task id.
    live: HashMap<u64, u64>,
}

impl TokioIds {
    /// The tokio task id `r` ran in, if the `tokio` feature recorded it; takes `r` into
    /// account for the records that follow.
    pub fn observe(&mut self, names: &Names<'_>, r: &Record) -> Option<u64> {
        if r.kind == RecordKind::SpanNew && names.callsite(r.callsite).is_some_and(tokio_task::is) {
            self.live.insert(r.span, tokio_info(&r.fields.to_vec()).id);
        }
        let task = match r.kind {
            RecordKind::SpanNew | RecordKind::Close if self.live.contains_key(&r.span) => {
                Some(r.span)
            }
            _ => task_of(r),
        };
        let id = task.and_then(|s| self.live.get(&s).copied());
        if r.kind == RecordKind::Close {
            self.live.remove(&r.span);
        }
        id
    }
}
