//! Requests and tasks, without runtime hooks: the root span of an `.instrument`ed future is
//! the request, and each of its entries is a poll (on whichever worker ran it).
//!
//! A record belongs to the task whose span was outermost on its thread when it was written
//! (`Record::spans[0]`). A task's polls are the entries of that span, as `spans` places
//! them.

use std::collections::BTreeMap;

use flightrec_format::{Record, Trigger};

use crate::spans::entries;

/// One poll: the task's span entered on a thread, from `begin` to `end` (ns since the Unix
/// epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub thread: u32,
    pub begin: i64,
    pub end: i64,
}

/// A request or task: its root span, its polls in time order, and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub span: u64,
    pub polls: Vec<Poll>,
    /// Positions in the record slice, in time order.
    pub records: Vec<usize>,
}

/// The task a record belongs to: the outermost span entered on its thread, if any.
pub fn task_of(r: &Record) -> Option<u64> {
    r.spans.first().copied()
}

/// Every task with at least one record, by span id.
pub fn tasks(records: &[Record], trigger: &Trigger) -> Vec<Task> {
    let mut by_span: BTreeMap<u64, Task> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(span) = task_of(r) {
            by_span
                .entry(span)
                .or_insert_with(|| Task {
                    span,
                    polls: Vec::new(),
                    records: Vec::new(),
                })
                .records
                .push(i);
        }
    }
    for e in entries(records, trigger) {
        if let Some(t) = by_span.get_mut(&e.span) {
            t.polls.push(Poll {
                thread: e.thread,
                begin: e.begin,
                end: e.end,
            });
        }
    }
    let mut out: Vec<Task> = by_span.into_values().collect();
    for t in &mut out {
        t.polls.sort_by_key(|p| (p.begin, p.end));
    }
    out
}
