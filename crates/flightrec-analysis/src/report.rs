//! What an [`Analysis`] says, as data every reader writes out alike: `info --json`,
//! `check --json` and the viewer's meta serialise these types (with [`Finding`] for the
//! findings), so that they cannot disagree on a lock's statistics, who holds what at the
//! end, or how many tasks there were.

use flightrec_format::Recording;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::findings::Finding;
use crate::lock_ops::locks;
use crate::locks::{describe_deadlock, LockState, LockStats};
use crate::names::Names;
use crate::tasks::Tasks;

/// The findings, the locks and the tasks of a recording, as every reader writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Worst first.
    pub findings: Vec<Finding>,
    pub locks: LocksReport,
    pub tasks: TasksReport,
}

impl Report {
    /// What `analysis` says of `rec`.
    pub fn of(rec: &Recording, analysis: &Analysis) -> Report {
        Report {
            findings: analysis.findings.clone(),
            locks: LocksReport::of(rec, &analysis.locks),
            tasks: TasksReport::of(&analysis.tasks),
        }
    }
}

/// A thread, as the lock tables name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadRef {
    /// Its index in the recording.
    pub index: u32,
    pub name: String,
    pub tid: u64,
}

/// Every recorded lock with its statistics, who holds and waits for what when the data
/// ends, and the deadlocks among them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LocksReport {
    pub locks: Vec<LockRow>,
    pub holds: Vec<PartyRow>,
    pub waits: Vec<PartyRow>,
    pub deadlocks: Vec<DeadlockRow>,
}

/// One lock and its statistics over the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockRow {
    /// Its id (its callsite).
    pub id: u32,
    pub name: String,
    /// `Mutex`, `RwLock` or `tokio::Mutex`.
    pub kind: String,
    /// Where it was made: `file:line`.
    pub place: Option<String>,
    #[serde(flatten)]
    pub stats: LockStats,
}

/// A thread holding (or waiting for) a lock when the data ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartyRow {
    pub thread: ThreadRef,
    pub lock: u32,
    pub lock_name: String,
    pub shared: bool,
    /// ns since the Unix epoch.
    pub since: i64,
}

/// A wait-for cycle when the data ends, in words and step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadlockRow {
    pub description: String,
    pub cycle: Vec<CycleRow>,
}

/// One thread of a deadlock: it holds `holds` and waits for `waits_for`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleRow {
    pub thread: ThreadRef,
    pub holds: u32,
    pub holds_name: String,
    pub waits_for: u32,
    pub waits_for_name: String,
    pub since: i64,
}

impl LocksReport {
    /// `other`'s locks after these (recordings opened together, with apart ids).
    pub fn extend(&mut self, other: LocksReport) {
        self.locks.extend(other.locks);
        self.holds.extend(other.holds);
        self.waits.extend(other.waits);
        self.deadlocks.extend(other.deadlocks);
    }

    /// The locks of `rec`, as `state` (its lock replay) found them.
    pub fn of(rec: &Recording, state: &LockState) -> LocksReport {
        let names = Names::new(rec);
        let thread = |t: u32| {
            let (name, tid) = names.thread(t);
            ThreadRef {
                index: t,
                name: name.to_string(),
                tid,
            }
        };
        let party = |thread_index: u32, lock: u32, shared: bool, since: i64| PartyRow {
            thread: thread(thread_index),
            lock,
            lock_name: names.lock_name(lock),
            shared,
            since,
        };
        LocksReport {
            locks: locks(rec)
                .into_iter()
                .map(|l| LockRow {
                    stats: state.stats.get(&l.id).copied().unwrap_or_default(),
                    id: l.id,
                    name: l.name,
                    kind: l.kind,
                    place: l.place,
                })
                .collect(),
            holds: state
                .holds
                .iter()
                .map(|h| party(h.thread, h.lock, h.shared, h.since))
                .collect(),
            waits: state
                .waits
                .iter()
                .map(|w| party(w.thread, w.lock, w.shared, w.since))
                .collect(),
            deadlocks: state
                .deadlocks
                .iter()
                .map(|c| DeadlockRow {
                    description: describe_deadlock(&names, c),
                    cycle: c
                        .iter()
                        .map(|s| CycleRow {
                            thread: thread(s.thread),
                            holds: s.holds,
                            holds_name: names.lock_name(s.holds),
                            waits_for: s.waits_for,
                            waits_for_name: names.lock_name(s.waits_for),
                            since: s.since,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// How many requests and tasks the recording holds, and of what sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TasksReport {
    /// Requests and tasks in all.
    pub total: usize,
    /// Those polled as futures (an instrumented future's root span, or a tokio task).
    pub async_tasks: usize,
    /// Those recorded by the `tokio` feature.
    pub tokio: usize,
    /// Still open when the data ends.
    pub open: usize,
    /// Polls in all.
    pub polls: usize,
    /// Some task was polled on more than one thread (tasks hop between workers).
    pub hop: bool,
}

impl TasksReport {
    /// The counts of `tasks`.
    pub fn of(tasks: &Tasks) -> TasksReport {
        let list = &tasks.list;
        TasksReport {
            total: list.len(),
            async_tasks: list.iter().filter(|t| t.is_async).count(),
            tokio: list.iter().filter(|t| t.tokio.is_some()).count(),
            open: list.iter().filter(|t| t.closed().is_none()).count(),
            polls: list.iter().map(|t| t.polls.len()).sum(),
            hop: tasks.hop_threads(),
        }
    }
}
