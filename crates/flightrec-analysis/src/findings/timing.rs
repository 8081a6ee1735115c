//! The rules about time: polls that block their worker, threads stuck inside a span, and
//! condvar waits no notification followed.

use std::collections::{BTreeMap, HashSet};

use flightrec_format::RecordKind;

use crate::lock_ops::duration;

use super::waits::Waits;
use super::{Context, Finding, Kind, Severity, MAX_EVIDENCE, MAX_PER_KIND};

/// The names tokio gives its worker threads (older and newer releases).
const TOKIO_WORKER_NAMES: [&str; 2] = ["tokio-runtime-worker", "tokio-rt-worker"];

impl Context<'_> {
    /// Threads that poll async tasks: those a task was polled on more than once or that
    /// ran a hop of one, tokio's workers, and those of tokio tasks the `tokio` feature
    /// recorded. An outermost span entry there is a poll.
    fn worker_threads(&self) -> HashSet<u32> {
        let mut workers: HashSet<u32> = self
            .tasks
            .list
            .iter()
            .filter(|t| t.is_async)
            .flat_map(|t| t.polls.iter().map(|p| p.thread))
            .collect();
        workers.extend(
            self.rec
                .threads
                .iter()
                .filter(|t| TOKIO_WORKER_NAMES.iter().any(|n| t.name.starts_with(n)))
                .map(|t| t.index),
        );
        workers
    }

    pub(super) fn blocking_polls(&self, threshold: u64) -> Vec<Finding> {
        let workers = self.worker_threads();
        let mut out = Vec::new();
        for (t, task) in self.tasks.list.iter().enumerate() {
            for p in &task.polls {
                let ns = p.end.saturating_sub(p.begin).max(0) as u64;
                if !p.outermost
                    || p.starts_before_data
                    || p.open_at_end
                    || ns <= threshold
                    || !workers.contains(&p.thread)
                {
                    continue;
                }
                let label = self.task_label(t);
                let worker = self.names.thread_label(p.thread);
                let mut f = self.finding(
                    Kind::BlockingPoll,
                    Severity::Warning,
                    format!(
                        "{label} blocked worker {worker} for {} in one poll (more than {}): \
                         nothing else could run there meanwhile",
                        duration(ns),
                        duration(threshold)
                    ),
                );
                f.threads.push(worker);
                f.tasks.push(label);
                let inside = self.tasks.records_of(t).filter(|&i| {
                    let r = &self.rec.records[i];
                    r.thread == p.thread && r.ts >= p.begin && r.ts <= p.end
                });
                for i in inside.take(MAX_EVIDENCE) {
                    let r = &self.rec.records[i];
                    let role = match r.kind {
                        RecordKind::Enter if r.span == task.span => "the poll began",
                        RecordKind::Exit if r.span == task.span => "the poll ended",
                        _ => "inside the poll",
                    };
                    f.records.extend(self.evidence(i, role));
                }
                out.push(f);
                if out.len() >= MAX_PER_KIND {
                    return out;
                }
            }
        }
        out
    }

    pub(super) fn stuck(&self, end: i64, threshold: u64) -> Vec<Finding> {
        let mut by_thread: BTreeMap<u32, Vec<crate::spans::Entry>> = BTreeMap::new();
        for e in &self.tasks.open_at_end {
            by_thread.entry(e.thread).or_default().push(*e);
        }
        let mut out = Vec::new();
        for (thread, spans) in by_thread {
            let Some(t) = self.rec.threads.iter().find(|t| t.index == thread) else {
                continue;
            };
            let Some(last) = t.last_ts else { continue };
            let silent = end.saturating_sub(last).max(0) as u64;
            if silent <= threshold {
                continue;
            }
            let label = self.names.thread_label(thread);
            let inside: Vec<&str> = spans.iter().map(|e| self.names.span_name(e.span)).collect();
            let mut f = self.finding(
                Kind::Stuck,
                Severity::Warning,
                format!(
                    "{label} wrote nothing for the last {} of the recording, inside {}",
                    duration(silent),
                    inside.join(" › ")
                ),
            );
            f.threads.push(label);
            for e in &spans {
                if let Some(i) = e.enter_record {
                    f.records
                        .extend(self.evidence(i as usize, "entered, never left"));
                }
            }
            if let Some(i) = self.rec.records.iter().rposition(|r| r.thread == thread) {
                f.records.extend(self.evidence(i, "its last record"));
            }
            f.records.sort_by_key(|e| e.ts);
            f.records.dedup_by_key(|e| e.record);
            out.push(f);
            if out.len() >= MAX_PER_KIND {
                break;
            }
        }
        out
    }

    /// Threads waiting on a condvar at the end of the data, inside a span (an operation
    /// blocked, not an idle worker waiting for work), for longer than `threshold`, with no
    /// notification of that condvar since their wait began: nothing will wake them. A
    /// notification just before the wait found nobody waiting and was lost.
    pub(super) fn unnotified_waits(&self, waits: &Waits, end: i64, threshold: u64) -> Vec<Finding> {
        let mut out = Vec::new();
        for (&thread, &(cv, at)) in &waits.cond_waiting {
            let wait = &self.rec.records[at];
            let notes = waits.notified.get(&cv).map_or(&[][..], Vec::as_slice);
            let after = notes.iter().any(|&n| n > at);
            let waited = end.saturating_sub(wait.ts).max(0) as u64;
            if after || wait.spans.is_empty() || waited <= threshold {
                continue;
            }
            let label = self.names.thread_label(thread);
            let cv_label = self.names.lock_label(cv);
            let lost = notes.iter().rev().find(|&&n| n < at).copied();
            let mut f = self.finding(
                Kind::NoNotify,
                Severity::Error,
                format!(
                    "{label} waits on {cv_label} for the last {} of the recording, and no \
                     notify came after its wait began{}",
                    duration(waited),
                    if lost.is_some() {
                        " (the last one came before it, found nobody waiting, and was lost)"
                    } else {
                        ""
                    }
                ),
            );
            f.threads.push(label);
            f.locks.push(cv_label);
            if let Some(n) = lost {
                f.records
                    .extend(self.evidence(n, "notified before anyone waited"));
            }
            f.records
                .extend(self.evidence(at, "began to wait, and nothing notified after"));
            out.push(f);
            if out.len() >= MAX_PER_KIND {
                break;
            }
        }
        out
    }
}
