//! Findings: the bug a recording shows, named, with the records that show it. One place,
//! read by `info`, `check` and the viewer.
//!
//! The kinds, whose names (`Kind::slug`) are the contract:
//! - `deadlock`: the wait-for cycle among `tracing_flightrec::sync` locks when the data ends.
//! - `interleaving`: a failure (a record at WARN or above) in a request S carrying an
//!   object K, where another thread, task or process touched K after S's earlier record on
//!   it: the failure, explained.
//! - `lock_order`: lockdep's rule. A thread took L2 while holding L1, and some thread took
//!   L1 while holding L2 (or a longer cycle): reported even when it never deadlocked.
//! - `atomicity`: a check-then-act split across two holds of one lock, with another
//!   thread's hold that touched the object falling between them.
//! - `inconsistent_locking`: Eraser's lockset. An object shared between threads or tasks
//!   whose touches hold no lock in common, though some hold one.
//! - `blocking_poll`: a poll of an async task (a span entry on a thread that polls tasks)
//!   longer than a threshold: a task that blocked its worker.
//! - `lock_wait`: a wait for a lock longer than a threshold, with who held it.
//! - `stuck`: a thread inside a span that wrote nothing for longer than a threshold
//!   before the data ends.
//! - `no_notify`: a condvar wait no notification followed before the end.
//! - `no_send`: a receive on a recorded channel whose senders are all blocked.
//!
//! What an object is, for these rules, is said in [`objects`].
//!
//! What they cannot see: synchronisation that is not recorded (std's locks, atomics,
//! std's channels) orders nothing here, and locks held by tasks across awaits (`tokio::Mutex`)
//! are left out of the lock order and the locksets, which are about threads.

mod channels;
mod locking;
mod lockset;
pub mod objects;
#[cfg(test)]
mod tests;
mod timing;
mod waits;

use flightrec_format::{Record, Recording};

use crate::locks::{complete_thread, data_end, LockState, LockTracker};
use crate::names::Names;
use crate::tasks::Tasks;

/// What kind of bug a finding is. The slugs are the contract (`info --json`, `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deadlock,
    Interleaving,
    LockOrder,
    Atomicity,
    InconsistentLocking,
    BlockingPoll,
    LockWait,
    Stuck,
    NoNotify,
    NoSend,
}

/// A kind is written as its slug.
impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.slug())
    }
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Deadlock,
        Kind::NoNotify,
        Kind::NoSend,
        Kind::Interleaving,
        Kind::LockOrder,
        Kind::Atomicity,
        Kind::InconsistentLocking,
        Kind::BlockingPoll,
        Kind::LockWait,
        Kind::Stuck,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Kind::Deadlock => "deadlock",
            Kind::Interleaving => "interleaving",
            Kind::Atomicity => "atomicity",
            Kind::InconsistentLocking => "inconsistent_locking",
            Kind::LockOrder => "lock_order",
            Kind::BlockingPoll => "blocking_poll",
            Kind::LockWait => "lock_wait",
            Kind::Stuck => "stuck",
            Kind::NoNotify => "no_notify",
            Kind::NoSend => "no_send",
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

/// A severity is written as its slug.
impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.slug())
    }
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// One finding, as every reader shows it: `check --json`, `info --json`, the viewer's meta
/// and the findings table carry this type, serialised alike.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// Records of the same story left out, only counted (other workers' touches of the
    /// object between, which a reader need not see to follow what happened).
    #[serde(rename = "omitted_records")]
    pub omitted: u64,
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

/// Evidence records at most per finding: enough to read the story, few enough to print.
const MAX_EVIDENCE: usize = 12;

/// Findings at most per kind: one bug seen a thousand times is one finding, told once.
const MAX_PER_KIND: usize = 20;

/// The findings of `rec` (its records in memory), worst first.
pub fn findings(rec: &Recording, thresholds: &Thresholds) -> Vec<Finding> {
    findings_of_processes(rec, &[], thresholds)
}

/// The findings of a merged recording (`crate::merge`): `processes[k]` names recording
/// `k`'s process, whose threads are those `crate::merge::local_thread` maps home. With no
/// labels, `rec` is one process.
pub fn findings_of_processes(
    rec: &Recording,
    processes: &[String],
    thresholds: &Thresholds,
) -> Vec<Finding> {
    crate::Analysis::of_processes(rec, processes, thresholds).findings
}

/// The one pass over the records the rules read, which needs no tasks (so a reader can
/// resolve the tasks beside it, on another core): the lock replay, with intervals; beside it
/// what objects were touched under which holds (the replay's live state at each record);
/// and the triggers that folded into the recording.
pub struct Replay<'r> {
    rec: &'r Recording,
    pub locks: LockState,
    touches: objects::Touches<'r>,
    waits: waits::Waits,
    pub folded: Vec<crate::triggers::FoldedTrigger>,
}

impl<'r> Replay<'r> {
    pub fn of(rec: &'r Recording) -> Replay<'r> {
        let names = Names::new(rec);
        let mut tracker = LockTracker::with_intervals();
        let mut touches = objects::Touches::new(rec, &names);
        let mut waits = waits::Waits::default();
        let mut folded = Vec::new();
        for (i, r) in rec.records.iter().enumerate() {
            tracker.observe(&names, r);
            touches.observe(&names, &tracker, i, r);
            if let Some(op) = names.lock_op(r) {
                waits.observe(i, r.thread, op);
            }
            folded.extend(crate::triggers::folded_trigger(&names, r));
        }
        let locks = tracker.finish(data_end(rec), |t| complete_thread(rec, t));
        Replay {
            rec,
            locks,
            touches,
            waits,
            folded,
        }
    }

    /// The findings, given the recording's tasks (`processes` as in
    /// [`findings_of_processes`]), worst first.
    pub fn findings(
        &self,
        tasks: &Tasks,
        processes: &[String],
        thresholds: &Thresholds,
    ) -> Vec<Finding> {
        let passed = (&self.locks, &self.touches, &self.waits);
        rules(self.rec, tasks, passed, processes, thresholds)
    }
}

fn rules(
    rec: &Recording,
    tasks: &Tasks,
    (locks, touches, waits): (&LockState, &objects::Touches<'_>, &waits::Waits),
    processes: &[String],
    thresholds: &Thresholds,
) -> Vec<Finding> {
    let names = Names::new(rec);
    let end = data_end(rec);
    let cx = Context {
        rec,
        names,
        tasks,
        task_labels: std::cell::OnceCell::new(),
    };
    let mut out = Vec::new();
    out.extend(cx.deadlocks(locks));
    out.extend(cx.interleavings(touches));
    out.extend(cx.lock_order(locks));
    out.extend(cx.atomicity(touches));
    out.extend(cx.inconsistent_locking(touches));
    out.extend(cx.blocking_polls(thresholds.blocking_poll_ns));
    out.extend(cx.lock_waits(locks, thresholds.lock_wait_ns));
    out.extend(cx.stuck(end, thresholds.stuck_ns));
    out.extend(cx.unnotified_waits(waits, end, thresholds.stuck_ns));
    out.extend(cx.unsent_receives(locks, waits, end, thresholds.stuck_ns));
    for f in &mut out {
        f.processes = cx.processes_of(f, processes);
    }
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
    /// Each task's label, told apart from its look-alikes (`Tasks::labels`): made when a
    /// finding first names a task (a recording of millions of requests and no finding
    /// labels none).
    task_labels: std::cell::OnceCell<Vec<String>>,
}

impl Context<'_> {
    /// The processes a finding's records come from: in a merged recording, by their
    /// threads; else the one process.
    fn processes_of(&self, f: &Finding, labels: &[String]) -> Vec<String> {
        if labels.is_empty() {
            let p = &self.rec.process;
            return vec![format!("{}[{}]", p.service, p.pid)];
        }
        let mut out: Vec<String> = Vec::new();
        for e in &f.records {
            let Some(r) = self.rec.records.get(e.record) else {
                continue;
            };
            let k = crate::merge::recording_of_thread(r.thread);
            if let Some(l) = labels.get(k) {
                if !out.contains(l) {
                    out.push(l.clone());
                }
            }
        }
        out
    }

    /// Task `t`'s label (its position in `tasks.list`).
    fn task_label(&self, t: usize) -> String {
        self.task_labels
            .get_or_init(|| self.tasks.labels(&self.names))[t]
            .clone()
    }

    fn evidence(&self, record: usize, role: impl Into<String>) -> Option<Evidence> {
        let r: &Record = self.rec.records.get(record)?;
        Some(Evidence {
            record,
            ts: r.ts,
            thread: self.names.thread_label(r.thread),
            task: self.tasks.of_record(record).map(|t| self.task_label(t)),
            title: self.names.title(r).into_owned(),
            place: self.names.place(r),
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
            processes: Vec::new(),
            records: Vec::new(),
            omitted: 0,
        }
    }
}
