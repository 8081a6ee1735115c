//! Locks and the wait-for graph, from a dump alone: the one lock model every reader uses.
//!
//! `tracing_flightrec::sync`'s locks record, as events of a callsite per lock (see
//! `flightrec_format::meta::lock` and [`crate::lock_ops`]), when a thread begins to wait for
//! a lock, when it gets it and when it lets it go. One streaming pass (`LockTracker`, run
//! by [`crate::Analysis`] alone) follows who holds what and who waits for what, and yields,
//! in one [`LockState`]:
//! - per-lock statistics;
//! - every hold and wait as an interval (when asked for);
//! - at the end of the data, the wait-for graph: a thread waiting for a lock points at the
//!   threads holding it. A cycle in it is a deadlock.
//!
//! `info`, the viewer's lanes and lock pages, and the findings all read this one replay, so
//! they cannot disagree about a lock.

use std::collections::{BTreeMap, HashMap};

use flightrec_format::{Record, Recording};

pub use crate::lock_ops::{duration, lock_op, locks, op_title, LockInfo, LockOp};
use crate::names::Names;

/// A thread holding a lock when the data ends, since when (ns since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub thread: u32,
    pub lock: u32,
    pub shared: bool,
    pub since: i64,
    /// The taking's record (its position among the records fed to the tracker), when it
    /// survived.
    pub record: Option<usize>,
}

/// A thread waiting for a lock when the data ends, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub thread: u32,
    pub lock: u32,
    pub shared: bool,
    pub since: i64,
    /// The wait's record (its position among the records fed to the tracker).
    pub record: usize,
}

/// One step of a deadlock: `thread` holds `holds` and waits for `waits_for`, which the next
/// step's thread holds (the last step's, the first's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleStep {
    pub thread: u32,
    /// What the previous thread of the cycle waits for: held by this one, or (`queued`)
    /// asked for by its write, queued ahead of the previous thread's read.
    pub holds: u32,
    pub waits_for: u32,
    /// Since when it has waited.
    pub since: i64,
    /// It does not hold `holds`: its waiting write is queued ahead of the previous
    /// thread's read (the read-write-read deadlock of a writer-preferring `RwLock`).
    pub queued: bool,
}

/// Per lock, over the whole recording: how often it was taken, waited for, and how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LockStats {
    pub acquisitions: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    pub total_wait_ns: u64,
    pub max_wait_ns: u64,
    pub total_hold_ns: u64,
    pub max_hold_ns: u64,
}

/// What the lock records of a recording amount to: who holds what and who waits for what
/// when the data ends, the cycles among them, per-lock statistics and (when the tracker was
/// asked for them) every hold and wait as an interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockState {
    pub holds: Vec<Hold>,
    pub waits: Vec<Wait>,
    /// Each deadlock once, told from the thread whose wait began first.
    pub deadlocks: Vec<Vec<CycleStep>>,
    pub stats: BTreeMap<u32, LockStats>,
    /// Lock order, as lockdep keeps it: each pair of locks (held, then taken) seen, once,
    /// with the first time it was seen.
    pub order: Vec<OrderEdge>,
    /// Every hold and wait in the order they ended, those still open last (ending at the
    /// data's end); empty unless made by `LockTracker::with_intervals` (as the analysis
    /// makes it).
    pub intervals: Vec<LockInterval>,
}

/// A thread took `taken` while it held `held`: the order the two locks were taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderEdge {
    pub held: u32,
    pub taken: u32,
    pub thread: u32,
    /// The records of the held lock's taking (when it survived) and of this taking.
    pub held_record: Option<usize>,
    pub taken_record: usize,
    pub at: i64,
}

/// A stretch of time a thread held or waited for a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockInterval {
    pub thread: u32,
    pub lock: u32,
    /// Waiting for it, else holding it.
    pub waiting: bool,
    pub shared: bool,
    /// When the record that began it was lost (overwritten, dropped), `end` less the
    /// duration its last record measured.
    pub begin: i64,
    pub end: i64,
    /// Still holding or waiting when the data ends (`end` is then the data's end).
    pub open: bool,
    /// The records that began and ended it, when they survived.
    pub begin_record: Option<usize>,
    pub end_record: Option<usize>,
}

/// The streaming pass: feed it every record in time order, then [`LockTracker::finish`].
///
/// The rules, once for every reader:
/// - a wait ends when the same thread gets the same lock; its length is measured on the
///   timeline. When its `wait` record was lost, the length the writer measured stands in,
///   and the wait is counted all the same;
/// - a release ends the hold of that lock its own thread took last, else (a guard moved to
///   another thread) any thread's; when no taking of it survived, the length the writer
///   measured stands in;
/// - what is still held or waited for at the end is open.
#[derive(Debug, Default)]
pub(crate) struct LockTracker {
    /// Per thread, the locks it holds (in the order taken).
    held: HashMap<u32, Vec<Hold>>,
    waiting: HashMap<u32, Wait>,
    stats: BTreeMap<u32, LockStats>,
    /// Closed holds and waits, when asked for.
    intervals: Option<Vec<LockInterval>>,
    order: Vec<OrderEdge>,
    /// The lock pairs in `order`.
    ordered: std::collections::HashSet<(u32, u32)>,
    /// Records fed so far: the next record's position.
    seen: usize,
}

impl LockTracker {
    /// A tracker that also keeps every hold and wait as an interval.
    pub fn with_intervals() -> LockTracker {
        LockTracker {
            intervals: Some(Vec::new()),
            ..LockTracker::default()
        }
    }

    fn interval(&mut self, i: LockInterval) {
        if let Some(v) = self.intervals.as_mut() {
            v.push(i);
        }
    }

    /// The locks `thread` holds after the records fed so far: each lock with the position
    /// of the record that took it (which tells two holds of one lock apart) and whether the
    /// hold is shared. Holds whose taking was lost are not known until they end.
    pub fn held_by(&self, thread: u32) -> impl Iterator<Item = (u32, usize, bool)> + '_ {
        self.held
            .get(&thread)
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h.lock, h.record?, h.shared)))
    }

    /// Feeds the next record. Feed every record, in time order: record positions in the
    /// answers count them.
    pub fn observe(&mut self, names: &Names<'_>, r: &Record) {
        let at = self.seen;
        self.seen += 1;
        let Some((lock, op)) = names.lock_op(r) else {
            return;
        };
        let thread = r.thread;
        match op {
            LockOp::Wait { shared } => {
                self.waiting.insert(
                    thread,
                    Wait {
                        thread,
                        lock,
                        shared,
                        since: r.ts,
                        record: at,
                    },
                );
            }
            LockOp::Acquired { shared, waited_ns } => {
                // The wait, from the timeline when its start survived (the same clock as
                // every timestamp), else as the writer measured it.
                let mut waited_ns = waited_ns;
                let mut wait_began = r.ts.saturating_sub(waited_ns.min(i64::MAX as u64) as i64);
                let mut wait_shared = shared;
                let mut wait_record = None;
                if let Some(w) = self.waiting.get(&thread).filter(|w| w.lock == lock) {
                    waited_ns = r.ts.saturating_sub(w.since).max(0) as u64;
                    wait_began = w.since;
                    wait_shared = w.shared;
                    wait_record = Some(w.record);
                    self.waiting.remove(&thread);
                }
                if waited_ns > 0 {
                    self.interval(LockInterval {
                        thread,
                        lock,
                        waiting: true,
                        shared: wait_shared,
                        begin: wait_began,
                        end: r.ts,
                        open: false,
                        begin_record: wait_record,
                        end_record: Some(at),
                    });
                }
                let held = self.held.entry(thread).or_default();
                // Lock order: what this thread holds was taken before this lock. Locks
                // held by tasks across awaits (tokio's) are not held by the thread, and
                // two shared holds never block each other.
                if !is_task_lock(names, lock) {
                    for h in held.iter() {
                        if h.lock == lock
                            || (h.shared && shared)
                            || is_task_lock(names, h.lock)
                            || !self.ordered.insert((h.lock, lock))
                        {
                            continue;
                        }
                        self.order.push(OrderEdge {
                            held: h.lock,
                            taken: lock,
                            thread,
                            held_record: h.record,
                            taken_record: at,
                            at: r.ts,
                        });
                    }
                }
                held.push(Hold {
                    thread,
                    lock,
                    shared,
                    since: r.ts,
                    record: Some(at),
                });
                let s = self.stats.entry(lock).or_default();
                s.acquisitions += 1;
                if waited_ns > 0 {
                    s.contended += 1;
                }
                s.total_wait_ns += waited_ns;
                s.max_wait_ns = s.max_wait_ns.max(waited_ns);
            }
            LockOp::Released { shared, held_ns } => {
                // A guard may move to another thread and be dropped there: release whichever
                // holder of this lock took it last.
                let holder = self
                    .held
                    .get(&thread)
                    .and_then(|v| v.iter().rposition(|h| h.lock == lock))
                    .map(|i| (thread, i))
                    .or_else(|| {
                        let mut found: Vec<(u32, usize)> = self
                            .held
                            .iter()
                            .filter_map(|(&t, v)| {
                                v.iter().rposition(|h| h.lock == lock).map(|i| (t, i))
                            })
                            .collect();
                        // The same answer whatever the map's order.
                        found.sort_unstable();
                        found.first().copied()
                    });
                let hold = match holder.and_then(|(t, i)| Some(self.held.get_mut(&t)?.remove(i))) {
                    Some(h) => h,
                    None => Hold {
                        thread,
                        lock,
                        shared,
                        since: r.ts.saturating_sub(held_ns.min(i64::MAX as u64) as i64),
                        record: None,
                    },
                };
                let held_ns = r.ts.saturating_sub(hold.since).max(0) as u64;
                self.interval(LockInterval {
                    thread: hold.thread,
                    lock,
                    waiting: false,
                    shared: hold.shared,
                    begin: hold.since,
                    end: r.ts,
                    open: false,
                    begin_record: hold.record,
                    end_record: Some(at),
                });
                let s = self.stats.entry(lock).or_default();
                s.total_hold_ns += held_ns;
                s.max_hold_ns = s.max_hold_ns.max(held_ns);
            }
            // A condvar is no lock: what it does to its mutex is recorded as the mutex's.
            LockOp::CondWait
            | LockOp::CondWoke
            | LockOp::Notify { .. }
            | LockOp::RecvWait
            | LockOp::Received { .. }
            | LockOp::Sent => {}
        }
    }

    /// The state at the end of the data (`data_end`, ns since the Unix epoch, where open
    /// intervals end), with cycles only among threads `complete` says lost no records (a
    /// thread that dropped or lost records may seem to hold or wait for what it no longer
    /// does, and a cycle through it would be made up).
    pub fn finish(self, data_end: i64, complete: impl Fn(u32) -> bool) -> LockState {
        let mut holds: Vec<Hold> = self.held.into_values().flatten().collect();
        holds.sort_by_key(|h| (h.thread, h.since, h.lock));
        let mut waits: Vec<Wait> = self.waiting.into_values().collect();
        waits.sort_by_key(|w| w.thread);
        let intervals_kept = self.intervals.is_some();
        let mut intervals = self.intervals.unwrap_or_default();
        if intervals_kept {
            let open = |thread, lock, waiting, shared, since: i64, record| LockInterval {
                thread,
                lock,
                waiting,
                shared,
                begin: since,
                end: data_end.max(since),
                open: true,
                begin_record: record,
                end_record: None,
            };
            intervals.extend(
                waits
                    .iter()
                    .map(|w| open(w.thread, w.lock, true, w.shared, w.since, Some(w.record))),
            );
            intervals.extend(
                holds
                    .iter()
                    .map(|h| open(h.thread, h.lock, false, h.shared, h.since, h.record)),
            );
        }
        let sure_holds: Vec<Hold> = holds
            .iter()
            .copied()
            .filter(|h| complete(h.thread))
            .collect();
        let sure_waits: Vec<Wait> = waits
            .iter()
            .copied()
            .filter(|w| complete(w.thread))
            .collect();
        let deadlocks = cycles(&sure_holds, &sure_waits);
        LockState {
            holds,
            waits,
            deadlocks,
            stats: self.stats,
            order: self.order,
            intervals,
        }
    }
}

/// Whether `lock` is held by a task rather than a thread (`tokio::Mutex`: held across
/// awaits, while its thread runs other tasks).
pub fn is_task_lock(names: &Names<'_>, lock: u32) -> bool {
    names
        .callsite(lock)
        .and_then(|c| c.module.as_deref())
        .is_some_and(|k| k == flightrec_format::meta::lock::TOKIO_MUTEX)
}

/// Where `rec`'s data ends: its last record, or its trigger when later. In a recording that
/// lost data (cut short, chunks lost or unreadable), what survived ends at its last record:
/// the silence after it is the damage's, not the threads', and no rule may measure it.
pub fn data_end(rec: &Recording) -> i64 {
    let last = rec.records.iter().map(|r| r.ts).max().unwrap_or(0);
    let d = &rec.damage;
    let lost = d.cut || d.missing_bytes > 0 || d.missing_chunks > 0 || d.bad_chunks > 0;
    if lost {
        last
    } else {
        last.max(rec.trigger.wall_ns)
    }
}

/// Whether a thread's records in `rec` are all there: none dropped, no gap.
pub fn complete_thread(rec: &Recording, thread: u32) -> bool {
    rec.threads
        .iter()
        .find(|t| t.index == thread)
        .is_some_and(|t| t.dropped == 0 && t.gaps == 0)
}

/// Cycles in the wait-for graph: a waiting thread points at every thread holding the lock it
/// waits for (exclusively, or any holder when it wants exclusive access).
fn cycles(holds: &[Hold], waits: &[Wait]) -> Vec<Vec<CycleStep>> {
    let wait_of: HashMap<u32, &Wait> = waits.iter().map(|w| (w.thread, w)).collect();
    // The thread a waiting thread waits on: the first blocking holder, else, for a read, a
    // writer queued before it (std's `RwLock` lets no new reader past a waiting writer: the
    // read-write-read deadlock). `true` when it is such a queued writer.
    let blocker = |w: &Wait| -> Option<(u32, bool)> {
        holds
            .iter()
            .find(|h| h.lock == w.lock && h.thread != w.thread && !(h.shared && w.shared))
            .map(|h| (h.thread, false))
            .or_else(|| {
                waits
                    .iter()
                    .filter(|v| w.shared && !v.shared && v.lock == w.lock && v.thread != w.thread)
                    .find(|v| v.since <= w.since)
                    .map(|v| (v.thread, true))
            })
    };
    let mut out: Vec<Vec<CycleStep>> = Vec::new();
    let mut threads: Vec<u32> = wait_of.keys().copied().collect();
    threads.sort_unstable();
    // A cycle of one: a thread waiting for a lock it holds itself (a second `lock()` of a
    // mutex whose guard still lives, a write asked while holding a read, a read asked
    // while holding the write). It waits forever, whoever else holds the lock.
    for &t in &threads {
        let w = wait_of[&t];
        let own = holds
            .iter()
            .any(|h| h.thread == t && h.lock == w.lock && !(h.shared && w.shared));
        if own {
            out.push(vec![CycleStep {
                thread: t,
                holds: w.lock,
                waits_for: w.lock,
                since: w.since,
                queued: false,
            }]);
        }
    }
    let self_locked: Vec<u32> = out.iter().map(|c| c[0].thread).collect();
    for &start in &threads {
        if self_locked.contains(&start) {
            continue;
        }
        let mut path: Vec<u32> = vec![start];
        let mut queued: Vec<bool> = Vec::new();
        let mut t = start;
        while let Some((next, behind)) = wait_of.get(&t).and_then(|w| blocker(w)) {
            queued.push(behind);
            if next == start {
                // A cycle back to `start`: record it once (found from its lowest thread).
                if path.iter().all(|&p| p >= start) {
                    // Thread i waits for lock i, held by thread i + 1; so it holds what
                    // thread i - 1 waits for.
                    let k = path.len();
                    let mut steps: Vec<CycleStep> = (0..k)
                        .map(|i| {
                            let w = wait_of[&path[i]];
                            CycleStep {
                                thread: path[i],
                                holds: wait_of[&path[(i + k - 1) % k]].lock,
                                waits_for: w.lock,
                                since: w.since,
                                queued: queued[(i + k - 1) % k],
                            }
                        })
                        .collect();
                    // Told from the thread that got stuck first: the start of the story,
                    // and the same telling for the same data.
                    let first = (0..k)
                        .min_by_key(|&i| (steps[i].since, steps[i].thread))
                        .unwrap_or(0);
                    steps.rotate_left(first);
                    out.push(steps);
                }
                break;
            }
            if path.contains(&next) || path.len() > threads.len() {
                break;
            }
            path.push(next);
            t = next;
        }
    }
    out
}

/// A deadlock in words: "importer holds `import_lock` and waits for `logging_lock`, held by
/// logger, which holds `logging_lock` and waits for `import_lock`, held by importer".
pub fn describe_deadlock(names: &Names<'_>, cycle: &[CycleStep]) -> String {
    let thread = |t: u32| names.thread_label(t);
    let lock = |l: u32| names.lock_label(l);
    let Some(first) = cycle.first() else {
        return String::new();
    };
    if let [only] = cycle {
        return format!(
            "{} waits for {}, which it holds itself",
            thread(only.thread),
            lock(only.waits_for)
        );
    }
    if let [a, b] = cycle {
        if a.queued || b.queued {
            let (reader, writer) = if b.queued { (a, b) } else { (b, a) };
            return format!(
                "{} holds a read of {} and asks for another, queued behind {}'s write, which \
                 waits for {}'s read to end",
                thread(reader.thread),
                lock(reader.waits_for),
                thread(writer.thread),
                thread(reader.thread)
            );
        }
    }
    let mut s = format!(
        "{} holds {} and waits for {}",
        thread(first.thread),
        lock(first.holds),
        lock(first.waits_for)
    );
    for step in &cycle[1..] {
        s.push_str(&format!(
            ", held by {}, which holds {} and waits for {}",
            thread(step.thread),
            lock(step.holds),
            lock(step.waits_for)
        ));
    }
    s.push_str(&format!(", held by {}", thread(first.thread)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-thread cycle is found once, told from the thread whose wait began first,
    /// whichever thread index is lower.
    #[test]
    fn a_cycle_is_told_from_the_first_thread_stuck() {
        let holds = [
            Hold {
                thread: 1,
                lock: 10,
                shared: false,
                since: 100,
                record: None,
            },
            Hold {
                thread: 2,
                lock: 20,
                shared: false,
                since: 110,
                record: None,
            },
        ];
        for (t1_since, first) in [(300, 2), (200, 1)] {
            let waits = [
                Wait {
                    thread: 1,
                    lock: 20,
                    shared: false,
                    since: t1_since,
                    record: 0,
                },
                Wait {
                    thread: 2,
                    lock: 10,
                    shared: false,
                    since: 250,
                    record: 1,
                },
            ];
            let found = cycles(&holds, &waits);
            assert_eq!(found.len(), 1, "{found:?}");
            let c = &found[0];
            assert_eq!(c[0].thread, first, "{c:?}");
            assert_eq!(c.len(), 2);
            // Each step holds what the other waits for.
            assert_eq!(c[0].holds, c[1].waits_for);
            assert_eq!(c[1].holds, c[0].waits_for);
        }
        // No cycle when one of the waits is for a free lock.
        let waits = [Wait {
            thread: 1,
            lock: 20,
            shared: false,
            since: 1,
            record: 0,
        }];
        assert!(cycles(&holds, &waits).is_empty());
    }

    /// Read, write, read: the reader's second read waits behind the queued writer, which
    /// waits for the reader's first read. Without the writer, the second read is no wait
    /// in a cycle.
    #[test]
    fn a_read_queued_behind_a_waiting_writer_closes_a_cycle() {
        let holds = [Hold {
            thread: 1,
            lock: 10,
            shared: true,
            since: 100,
            record: None,
        }];
        let writer = Wait {
            thread: 2,
            lock: 10,
            shared: false,
            since: 200,
            record: 0,
        };
        let again = Wait {
            thread: 1,
            lock: 10,
            shared: true,
            since: 300,
            record: 1,
        };
        let found = cycles(&holds, &[writer, again]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].iter().any(|s| s.queued), "{found:?}");
        assert!(cycles(&holds, &[again]).is_empty());
        // A writer that began to wait after the read did not block it.
        let late = Wait {
            since: 400,
            ..writer
        };
        assert!(cycles(&holds, &[late, again]).is_empty());
    }

    /// A thread waiting for a lock it holds is a cycle of one; a reader asking to read
    /// again while it holds a read is not (two shared holds never block each other).
    #[test]
    fn a_thread_waiting_for_its_own_lock_is_a_cycle_of_one() {
        let hold = |shared| Hold {
            thread: 3,
            lock: 10,
            shared,
            since: 100,
            record: Some(0),
        };
        let wait = |shared| Wait {
            thread: 3,
            lock: 10,
            shared,
            since: 200,
            record: 1,
        };
        for (held_shared, wait_shared, deadlock) in [
            (false, false, true),
            (true, false, true),
            (false, true, true),
            (true, true, false),
        ] {
            let found = cycles(&[hold(held_shared)], &[wait(wait_shared)]);
            assert_eq!(found.len(), usize::from(deadlock), "{found:?}");
            if deadlock {
                assert_eq!(found[0][0].holds, found[0][0].waits_for);
            }
        }
    }
}
