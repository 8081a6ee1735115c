//! Findings: the bug a recording shows, named, with the records that show it. One place,
//! read by `info`, `check` and (later) the viewer.
//!
//! The kinds, whose names (`Kind::slug`) are the contract:
//! - `deadlock`: the wait-for cycle among `flightrec::sync` locks when the data ends.
//! - `lock_order`: lockdep's rule. A thread took L2 while holding L1, and some thread took
//!   L1 while holding L2 (or a longer cycle): reported even when it never deadlocked.
//! - `blocking_poll`: a poll of an async task (a span entry on a thread that polls tasks)
//!   longer than a threshold: a task that blocked its worker.
//! - `lock_wait`: a wait for a lock longer than a threshold, with who held it.
//! - `stuck`: a thread inside a span that wrote nothing for longer than a threshold
//!   before the data ends.
//!
//! What they cannot see: synchronisation that is not recorded (std's locks, atomics,
//! channels) orders nothing here, and locks held by tasks across awaits (`tokio::Mutex`)
//! are left out of the lock order, which is about threads.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use flightrec_format::{Record, RecordKind, Recording};

use crate::lock_ops::duration;
use crate::locks::{complete_thread, data_end, LockInterval, LockState, LockTracker, OrderEdge};
use crate::names::Names;
use crate::spans::{entries, Placement};
use crate::tasks::{label as task_label, Tasks};

/// What kind of bug a finding is. The slugs are the contract (`info --json`, `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deadlock,
    LockOrder,
    BlockingPoll,
    LockWait,
    Stuck,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Deadlock,
        Kind::LockOrder,
        Kind::BlockingPoll,
        Kind::LockWait,
        Kind::Stuck,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Kind::Deadlock => "deadlock",
            Kind::LockOrder => "lock_order",
            Kind::BlockingPoll => "blocking_poll",
            Kind::LockWait => "lock_wait",
            Kind::Stuck => "stuck",
        }
    }

    /// The kind a slug names.
    pub fn parse(slug: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.slug() == slug)
    }
}

/// How bad a finding is; findings are ranked by it, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth a look: slow, or idle where it should not be.
    Note,
    /// A bug that has not bitten in this recording, or a stall of others.
    Warning,
    /// It bit: threads that will never move again.
    Error,
}

impl Severity {
    pub fn slug(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A record that is evidence for a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Its position in the recording (what `cat --json` and the viewer number records by).
    pub record: usize,
    /// ns since the Unix epoch.
    pub ts: i64,
    pub thread: String,
    pub task: Option<String>,
    pub title: String,
    /// `file:line` of its callsite, when recorded.
    pub place: Option<String>,
    /// What it shows: "took `a`", "waited", "held it"...
    pub role: String,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    /// One line: what happened.
    pub title: String,
    /// The object involved (`field=value`), if any.
    pub object: Option<String>,
    /// The locks involved, as people read them.
    pub locks: Vec<String>,
    pub threads: Vec<String>,
    pub tasks: Vec<String>,
    pub processes: Vec<String>,
    /// The records that show it, in time order.
    pub records: Vec<Evidence>,
}

/// Thresholds of the kinds that are about time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A poll longer than this blocks its worker (`blocking_poll`); default 10 ms.
    pub blocking_poll_ns: u64,
    /// A lock wait longer than this is reported (`lock_wait`); default 100 ms.
    pub lock_wait_ns: u64,
    /// A thread inside a span silent this long before the end is stuck; default 1 s.
    pub stuck_ns: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            blocking_poll_ns: 10_000_000,
            lock_wait_ns: 100_000_000,
            stuck_ns: 1_000_000_000,
        }
    }
}

/// The names tokio gives its worker threads (older and newer releases).
const TOKIO_WORKER_NAMES: [&str; 2] = ["tokio-runtime-worker", "tokio-rt-worker"];

/// Evidence records at most per finding: enough to read the story, few enough to print.
const MAX_EVIDENCE: usize = 12;

/// Findings at most per kind: one bug seen a thousand times is one finding, told once.
const MAX_PER_KIND: usize = 20;

/// The findings of `rec` (its records in memory), worst first.
pub fn findings(rec: &Recording, thresholds: &Thresholds) -> Vec<Finding> {
    let names = Names::new(rec);
    let mut tracker = LockTracker::with_intervals();
    for r in &rec.records {
        tracker.observe(&names, r);
    }
    let end = data_end(rec);
    let locks = tracker.finish(end, |t| complete_thread(rec, t));
    let tasks = Tasks::of(rec);
    let cx = Context {
        rec,
        names,
        tasks: &tasks,
    };
    let mut out = Vec::new();
    out.extend(cx.deadlocks(&locks));
    out.extend(cx.lock_order(&locks));
    out.extend(cx.blocking_polls(thresholds.blocking_poll_ns));
    out.extend(cx.lock_waits(&locks, thresholds.lock_wait_ns));
    out.extend(cx.stuck(end, thresholds.stuck_ns));
    // Worst first; within a severity, in the order the kinds are listed, then by time.
    out.sort_by_key(|f| {
        (
            std::cmp::Reverse(f.severity),
            f.kind,
            f.records.first().map_or(i64::MAX, |e| e.ts),
        )
    });
    out
}

/// What every rule reads.
struct Context<'r> {
    rec: &'r Recording,
    names: Names<'r>,
    tasks: &'r Tasks,
}

impl Context<'_> {
    fn process(&self) -> Vec<String> {
        let p = &self.rec.process;
        vec![format!("{}[{}]", p.service, p.pid)]
    }

    fn evidence(&self, record: usize, role: impl Into<String>) -> Option<Evidence> {
        let r: &Record = self.rec.records.get(record)?;
        let cs = self.names.callsite(r.callsite);
        Some(Evidence {
            record,
            ts: r.ts,
            thread: self.names.thread_label(r.thread),
            task: self
                .tasks
                .of_record(record)
                .map(|t| task_label(&self.names, &self.tasks.list[t])),
            title: self.names.title(r).into_owned(),
            place: cs.and_then(|c| {
                let f = c.file.as_ref()?;
                Some(match c.line {
                    Some(l) => format!("{f}:{l}"),
                    None => f.clone(),
                })
            }),
            role: role.into(),
        })
    }

    fn finding(&self, kind: Kind, severity: Severity, title: String) -> Finding {
        Finding {
            kind,
            severity,
            title,
            object: None,
            locks: Vec::new(),
            threads: Vec::new(),
            tasks: Vec::new(),
            processes: self.process(),
            records: Vec::new(),
        }
    }

    fn deadlocks(&self, locks: &LockState) -> Vec<Finding> {
        locks
            .deadlocks
            .iter()
            .map(|cycle| {
                let mut f = self.finding(
                    Kind::Deadlock,
                    Severity::Error,
                    format!(
                        "deadlock: {}",
                        crate::locks::describe_deadlock(&self.names, cycle)
                    ),
                );
                for step in cycle {
                    f.threads.push(self.names.thread_label(step.thread));
                    f.locks.push(self.names.lock_label(step.waits_for));
                    let took = locks
                        .holds
                        .iter()
                        .find(|h| h.thread == step.thread && h.lock == step.holds)
                        .and_then(|h| h.record);
                    let waits = locks
                        .waits
                        .iter()
                        .find(|w| w.thread == step.thread)
                        .map(|w| w.record);
                    let label = self.names.lock_label(step.holds);
                    f.records.extend(
                        took.and_then(|i| self.evidence(i, format!("took {label}")))
                            .into_iter()
                            .chain(waits.and_then(|i| {
                                self.evidence(
                                    i,
                                    "waits for a lock another thread of the cycle holds",
                                )
                            })),
                    );
                }
                f.records.sort_by_key(|e| e.ts);
                f
            })
            .collect()
    }

    /// Cycles in the graph of lock-order edges (lockdep), each once, except those a
    /// deadlock finding already tells.
    fn lock_order(&self, locks: &LockState) -> Vec<Finding> {
        let mut by_held: BTreeMap<u32, Vec<&OrderEdge>> = BTreeMap::new();
        for e in &locks.order {
            by_held.entry(e.held).or_default().push(e);
        }
        let deadlocked: HashSet<BTreeSet<u32>> = locks
            .deadlocks
            .iter()
            .map(|c| c.iter().map(|s| s.holds).collect())
            .collect();
        let mut seen: HashSet<Vec<u32>> = HashSet::new();
        let mut out = Vec::new();
        for &start in by_held.keys() {
            // Depth-first from `start` over locks above it (each cycle found once, from its
            // lowest lock), paths of at most four locks.
            let mut stack: Vec<(u32, Vec<&OrderEdge>)> = vec![(start, Vec::new())];
            while let Some((at, path)) = stack.pop() {
                for &e in by_held.get(&at).into_iter().flatten() {
                    if e.taken == start {
                        let mut cycle = path.clone();
                        cycle.push(e);
                        let key: Vec<u32> = cycle.iter().map(|e| e.held).collect();
                        let set: BTreeSet<u32> = key.iter().copied().collect();
                        if seen.insert(key) && !deadlocked.contains(&set) {
                            out.push(self.order_finding(&cycle));
                        }
                    } else if e.taken > start
                        && path.len() < 3
                        && !path.iter().any(|p| p.held == e.taken)
                    {
                        let mut next = path.clone();
                        next.push(e);
                        stack.push((e.taken, next));
                    }
                }
            }
            if out.len() >= MAX_PER_KIND {
                break;
            }
        }
        out
    }

    fn order_finding(&self, cycle: &[&OrderEdge]) -> Finding {
        let lock = |l: u32| self.names.lock_label(l);
        let steps: Vec<String> = cycle
            .iter()
            .map(|e| {
                format!(
                    "{} took {} while holding {}",
                    self.names.thread_label(e.thread),
                    lock(e.taken),
                    lock(e.held)
                )
            })
            .collect();
        let mut f = self.finding(
            Kind::LockOrder,
            Severity::Warning,
            format!(
                "lock order inversion (a deadlock waiting to happen): {}",
                steps.join("; ")
            ),
        );
        for e in cycle {
            f.locks.push(lock(e.held));
            let t = self.names.thread_label(e.thread);
            if !f.threads.contains(&t) {
                f.threads.push(t);
            }
            if let Some(i) = e.held_record {
                f.records
                    .extend(self.evidence(i, format!("took {}", lock(e.held))));
            }
            f.records.extend(self.evidence(
                e.taken_record,
                format!("took {} while holding {}", lock(e.taken), lock(e.held)),
            ));
        }
        f.records.sort_by_key(|e| e.ts);
        f.records.dedup_by_key(|e| e.record);
        f
    }

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

    fn blocking_polls(&self, threshold: u64) -> Vec<Finding> {
        let workers = self.worker_threads();
        let mut out = Vec::new();
        for task in &self.tasks.list {
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
                let label = task_label(&self.names, task);
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
                let inside = task.records.iter().copied().filter(|&i| {
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

    fn lock_waits(&self, locks: &LockState, threshold: u64) -> Vec<Finding> {
        let mut long: Vec<&LockInterval> = locks
            .intervals
            .iter()
            .filter(|l| l.waiting && l.end.saturating_sub(l.begin).max(0) as u64 > threshold)
            .collect();
        long.sort_by_key(|l| std::cmp::Reverse(l.end - l.begin));
        long.truncate(MAX_PER_KIND);
        long.into_iter()
            .map(|w| {
                let lock = self.names.lock_label(w.lock);
                let thread = self.names.thread_label(w.thread);
                // Who held it when the wait began.
                let holder = locks.intervals.iter().find(|h| {
                    !h.waiting
                        && h.lock == w.lock
                        && h.thread != w.thread
                        && h.begin <= w.begin
                        && h.end >= w.begin
                });
                let ns = (w.end - w.begin).max(0) as u64;
                let mut f = self.finding(
                    Kind::LockWait,
                    Severity::Note,
                    format!(
                        "{thread} waited {}{} for {lock}{}",
                        duration(ns),
                        if w.open { " (still waiting)" } else { "" },
                        holder.map_or(String::new(), |h| format!(
                            ", held by {}",
                            self.names.thread_label(h.thread)
                        ))
                    ),
                );
                f.locks.push(lock.clone());
                f.threads.push(thread);
                if let Some(h) = holder {
                    f.threads.push(self.names.thread_label(h.thread));
                    if let Some(i) = h.begin_record {
                        f.records.extend(self.evidence(i, format!("took {lock}")));
                    }
                }
                if let Some(i) = w.begin_record {
                    f.records.extend(self.evidence(i, "began to wait"));
                }
                if let Some(i) = w.end_record {
                    f.records.extend(self.evidence(i, "got it"));
                }
                f.records.sort_by_key(|e| e.ts);
                f
            })
            .collect()
    }

    fn stuck(&self, end: i64, threshold: u64) -> Vec<Finding> {
        let open = entries(&self.rec.records, &self.rec.trigger)
            .into_iter()
            .filter(|e| e.open_at_end && matches!(e.placement, Placement::Nested { .. }));
        let mut by_thread: BTreeMap<u32, Vec<crate::spans::Entry>> = BTreeMap::new();
        for e in open {
            by_thread.entry(e.thread).or_default().push(e);
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
}
