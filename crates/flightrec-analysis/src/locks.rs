//! Locks and the wait-for graph, from a dump alone.
//!
//! `flightrec::sync`'s locks record, as events of a callsite per lock (see
//! `flightrec_format::meta::lock`), when a thread begins to wait for a lock, when it gets it
//! and when it lets it go. One streaming pass ([`LockTracker`]) follows who holds what and
//! who waits for what; at the end of the data that is the wait-for graph: a thread waiting
//! for a lock points at the threads holding it. A cycle in it is a deadlock.

use std::collections::{BTreeMap, HashMap};

use flightrec_format::meta::lock;
use flightrec_format::{Record, RecordKind, Recording, Value};

use crate::names::Names;

/// A recorded lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// Its id in the recording (its callsite).
    pub id: u32,
    pub name: String,
    /// `Mutex`, `RwLock` or `tokio::Mutex`.
    pub kind: String,
    /// Where it was made: `file:line`.
    pub place: Option<String>,
}

/// What one lock event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOp {
    Wait { shared: bool },
    Acquired { shared: bool, waited_ns: u64 },
    Released { shared: bool, held_ns: u64 },
}

/// The lock event `r` is, if it is one: the lock's id and what happened.
pub fn lock_op(names: &Names<'_>, r: &Record) -> Option<(u32, LockOp)> {
    if r.kind != RecordKind::Event || !names.callsite(r.callsite).is_some_and(lock::is) {
        return None;
    }
    let get = |i: u8| {
        r.fields
            .iter()
            .find(|f| f.index == i)
            .and_then(|f| match f.value {
                Value::U64(v) => Some(v),
                Value::I64(v) => Some(v as u64),
                _ => None,
            })
    };
    let ns = get(lock::NS).unwrap_or(0);
    let op = match get(lock::OP)? {
        lock::op::WAIT => LockOp::Wait { shared: false },
        lock::op::WAIT_SHARED => LockOp::Wait { shared: true },
        lock::op::ACQUIRED => LockOp::Acquired {
            shared: false,
            waited_ns: ns,
        },
        lock::op::ACQUIRED_SHARED => LockOp::Acquired {
            shared: true,
            waited_ns: ns,
        },
        lock::op::RELEASED => LockOp::Released {
            shared: false,
            held_ns: ns,
        },
        lock::op::RELEASED_SHARED => LockOp::Released {
            shared: true,
            held_ns: ns,
        },
        _ => return None,
    };
    Some((r.callsite, op))
}

/// Every lock the recording describes, by id.
pub fn locks(rec: &Recording) -> Vec<LockInfo> {
    let mut out: Vec<LockInfo> = rec
        .callsites
        .values()
        .filter(|c| lock::is(c))
        .map(|c| LockInfo {
            id: c.id,
            name: c.name.clone(),
            kind: c.module.clone().unwrap_or_else(|| lock::MUTEX.into()),
            place: c.file.as_ref().map(|f| match c.line {
                Some(l) => format!("{f}:{l}"),
                None => f.clone(),
            }),
        })
        .collect();
    out.sort_by_key(|l| l.id);
    out
}

/// A thread holding a lock when the data ends, since when (ns since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub thread: u32,
    pub lock: u32,
    pub shared: bool,
    pub since: i64,
}

/// A thread waiting for a lock when the data ends, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub thread: u32,
    pub lock: u32,
    pub shared: bool,
    pub since: i64,
}

/// One step of a deadlock: `thread` holds `holds` and waits for `waits_for`, which the next
/// step's thread holds (the last step's, the first's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleStep {
    pub thread: u32,
    pub holds: u32,
    pub waits_for: u32,
    /// Since when it has waited.
    pub since: i64,
}

/// Per lock, over the whole recording: how often it was taken, waited for, and how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStats {
    pub acquisitions: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    pub total_wait_ns: u64,
    pub max_wait_ns: u64,
    pub total_hold_ns: u64,
    pub max_hold_ns: u64,
}

/// The locks at the end of the data: who holds what, who waits for what, and the cycles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockState {
    pub holds: Vec<Hold>,
    pub waits: Vec<Wait>,
    /// Each deadlock once, told from the thread whose wait began first.
    pub deadlocks: Vec<Vec<CycleStep>>,
    pub stats: BTreeMap<u32, LockStats>,
}

/// The streaming pass: feed it every record in time order.
#[derive(Debug, Default)]
pub struct LockTracker {
    /// Per thread, the locks it holds (in the order taken).
    held: HashMap<u32, Vec<Hold>>,
    waiting: HashMap<u32, Wait>,
    stats: BTreeMap<u32, LockStats>,
}

impl LockTracker {
    pub fn observe(&mut self, names: &Names<'_>, r: &Record) {
        let Some((lock, op)) = lock_op(names, r) else {
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
                    },
                );
            }
            LockOp::Acquired { shared, waited_ns } => {
                // The wait, from the timeline when its start survived (the same clock as
                // every timestamp), else as the writer measured it.
                let mut waited_ns = waited_ns;
                if let Some(w) = self.waiting.get(&thread).filter(|w| w.lock == lock) {
                    waited_ns = r.ts.saturating_sub(w.since).max(0) as u64;
                    self.waiting.remove(&thread);
                }
                self.held.entry(thread).or_default().push(Hold {
                    thread,
                    lock,
                    shared,
                    since: r.ts,
                });
                let s = self.stats.entry(lock).or_default();
                s.acquisitions += 1;
                if waited_ns > 0 {
                    s.contended += 1;
                }
                s.total_wait_ns += waited_ns;
                s.max_wait_ns = s.max_wait_ns.max(waited_ns);
            }
            LockOp::Released { held_ns, .. } => {
                let mut held_ns = held_ns;
                // A guard may move to another thread and be dropped there: release whichever
                // holder of this lock took it last.
                let holder = self
                    .held
                    .get(&thread)
                    .and_then(|v| v.iter().rposition(|h| h.lock == lock))
                    .map(|i| (thread, i))
                    .or_else(|| {
                        self.held.iter().find_map(|(&t, v)| {
                            v.iter().rposition(|h| h.lock == lock).map(|i| (t, i))
                        })
                    });
                if let Some((t, i)) = holder {
                    if let Some(v) = self.held.get_mut(&t) {
                        let h = v.remove(i);
                        held_ns = r.ts.saturating_sub(h.since).max(0) as u64;
                    }
                }
                let s = self.stats.entry(lock).or_default();
                s.total_hold_ns += held_ns;
                s.max_hold_ns = s.max_hold_ns.max(held_ns);
            }
        }
    }

    /// The state at the end of the data, with its cycles.
    pub fn finish(self) -> LockState {
        self.finish_trusting(|_| true)
    }

    /// As `finish`, with cycles only among threads `complete` says lost no records (a
    /// thread that dropped or lost records may seem to hold or wait for what it no longer
    /// does, and a cycle through it would be made up).
    pub fn finish_trusting(self, complete: impl Fn(u32) -> bool) -> LockState {
        let mut holds: Vec<Hold> = self.held.into_values().flatten().collect();
        holds.sort_by_key(|h| (h.thread, h.since));
        let mut waits: Vec<Wait> = self.waiting.into_values().collect();
        waits.sort_by_key(|w| w.thread);
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
        }
    }
}

impl LockState {
    /// The state of `rec`'s locks at the end of its data.
    pub fn of(rec: &Recording) -> LockState {
        let names = Names::new(rec);
        let mut t = LockTracker::default();
        for r in &rec.records {
            t.observe(&names, r);
        }
        t.finish_trusting(|thread| complete_thread(rec, thread))
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
    // The thread a waiting thread waits on (the first blocking holder).
    let blocker = |w: &Wait| {
        holds
            .iter()
            .find(|h| h.lock == w.lock && h.thread != w.thread && !(h.shared && w.shared))
    };
    let mut out: Vec<Vec<CycleStep>> = Vec::new();
    let mut threads: Vec<u32> = wait_of.keys().copied().collect();
    threads.sort_unstable();
    for &start in &threads {
        let mut path: Vec<u32> = vec![start];
        let mut t = start;
        while let Some(h) = wait_of.get(&t).and_then(|w| blocker(w)) {
            if h.thread == start {
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
            if path.contains(&h.thread) || path.len() > threads.len() {
                break;
            }
            path.push(h.thread);
            t = h.thread;
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

/// A lock event's title: "waits for `cache`", "took `cache` after 3.2 µs", "let go of `cache`
/// after 1.1 ms"; `label` is the lock's [`Names::lock_label`].
pub fn op_title(label: &str, op: LockOp) -> String {
    let shared = |s: bool| if s { " (shared)" } else { "" };
    match op {
        LockOp::Wait { shared: s } => format!("waits for {label}{}", shared(s)),
        LockOp::Acquired {
            shared: s,
            waited_ns,
        } if waited_ns > 0 => format!(
            "took {label}{} after waiting {}",
            shared(s),
            duration(waited_ns)
        ),
        LockOp::Acquired { shared: s, .. } => format!("took {label}{}", shared(s)),
        LockOp::Released { shared: s, held_ns } => {
            format!("let go of {label}{} after {}", shared(s), duration(held_ns))
        }
    }
}

/// A duration in the unit that reads best.
pub fn duration(ns: u64) -> String {
    match ns {
        n if n < 1_000 => format!("{n} ns"),
        n if n < 1_000_000 => format!("{:.1} µs", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1} ms", n as f64 / 1e6),
        n => format!("{:.2} s", n as f64 / 1e9),
    }
}

/// A stretch of time a thread held or waited for a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockInterval {
    pub thread: u32,
    pub lock: u32,
    /// Waiting for it, else holding it.
    pub waiting: bool,
    pub shared: bool,
    pub begin: i64,
    pub end: i64,
    /// Still holding or waiting when the data ends (`end` is then the data's end).
    pub open: bool,
}

/// Every hold and wait of the recording, in the order they ended; those still open end at
/// `data_end`.
pub fn lock_intervals(names: &Names<'_>, records: &[Record], data_end: i64) -> Vec<LockInterval> {
    let mut out = Vec::new();
    let mut waiting: HashMap<u32, (u32, bool, i64)> = HashMap::new();
    let mut held: HashMap<u32, Vec<(u32, bool, i64)>> = HashMap::new();
    for r in records {
        let Some((lock, op)) = lock_op(names, r) else {
            continue;
        };
        let t = r.thread;
        match op {
            LockOp::Wait { shared } => {
                waiting.insert(t, (lock, shared, r.ts));
            }
            LockOp::Acquired { shared, .. } => {
                if let Some((l, s, since)) = waiting.remove(&t) {
                    out.push(LockInterval {
                        thread: t,
                        lock: l,
                        waiting: true,
                        shared: s,
                        begin: since,
                        end: r.ts,
                        open: false,
                    });
                }
                held.entry(t).or_default().push((lock, shared, r.ts));
            }
            LockOp::Released { .. } => {
                let holder = held
                    .get(&t)
                    .and_then(|v| v.iter().rposition(|h| h.0 == lock))
                    .map(|i| (t, i))
                    .or_else(|| {
                        held.iter()
                            .find_map(|(&o, v)| v.iter().rposition(|h| h.0 == lock).map(|i| (o, i)))
                    });
                if let Some((o, i)) = holder {
                    if let Some(v) = held.get_mut(&o) {
                        let (l, s, since) = v.remove(i);
                        out.push(LockInterval {
                            thread: o,
                            lock: l,
                            waiting: false,
                            shared: s,
                            begin: since,
                            end: r.ts,
                            open: false,
                        });
                    }
                }
            }
        }
    }
    for (t, (l, s, since)) in waiting {
        out.push(LockInterval {
            thread: t,
            lock: l,
            waiting: true,
            shared: s,
            begin: since,
            end: data_end.max(since),
            open: true,
        });
    }
    for (t, v) in held {
        for (l, s, since) in v {
            out.push(LockInterval {
                thread: t,
                lock: l,
                waiting: false,
                shared: s,
                begin: since,
                end: data_end.max(since),
                open: true,
            });
        }
    }
    out
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
            },
            Hold {
                thread: 2,
                lock: 20,
                shared: false,
                since: 110,
            },
        ];
        for (t1_since, first) in [(300, 2), (200, 1)] {
            let waits = [
                Wait {
                    thread: 1,
                    lock: 20,
                    shared: false,
                    since: t1_since,
                },
                Wait {
                    thread: 2,
                    lock: 10,
                    shared: false,
                    since: 250,
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
        }];
        assert!(cycles(&holds, &waits).is_empty());
    }
}
