//! The lock rules: deadlocks, lock-order inversions (lockdep) and long lock waits, from
//! the one lock replay ([`LockState`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::lock_ops::duration;
use crate::locks::{LockInterval, LockState, OrderEdge};

use super::{Context, Finding, Kind, Severity, MAX_PER_KIND};

impl Context<'_> {
    pub(super) fn deadlocks(&self, locks: &LockState) -> Vec<Finding> {
        locks
            .deadlocks
            .iter()
            .map(|cycle| {
                let mut f = self.finding(
                    Kind::Deadlock,
                    Severity::Error,
                    // The kind is printed beside the title: the title says only who waits.
                    crate::locks::describe_deadlock(&self.names, cycle),
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
                    let waits_why = if cycle.len() == 1 {
                        "asks for it again, still holding it".to_string()
                    } else {
                        "waits for a lock another thread of the cycle holds".to_string()
                    };
                    f.records.extend(
                        took.and_then(|i| self.evidence(i, format!("took {label}")))
                            .into_iter()
                            .chain(waits.and_then(|i| self.evidence(i, waits_why))),
                    );
                }
                f.records.sort_by_key(|e| e.ts);
                f
            })
            .collect()
    }

    /// Cycles in the graph of lock-order edges (lockdep), each once, except those a
    /// deadlock finding already tells.
    pub(super) fn lock_order(&self, locks: &LockState) -> Vec<Finding> {
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
                let at = self
                    .rec
                    .records
                    .get(e.taken_record)
                    .and_then(|r| self.names.place(r))
                    .map_or(String::new(), |p| format!(" at {p}"));
                format!(
                    "{} took {}{at} while holding {}",
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

    pub(super) fn lock_waits(&self, locks: &LockState, threshold: u64) -> Vec<Finding> {
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
                // Who held it when the wait began: another thread, else the waiter itself
                // (a second `lock()` while its own guard lives).
                let held_then = |h: &&LockInterval| {
                    !h.waiting
                        && h.lock == w.lock
                        && h.begin <= w.begin
                        && h.end >= w.begin
                        && !(h.shared && w.shared)
                };
                let holder = locks
                    .intervals
                    .iter()
                    .filter(held_then)
                    .find(|h| h.thread != w.thread)
                    .or_else(|| {
                        locks
                            .intervals
                            .iter()
                            .filter(held_then)
                            .find(|h| h.thread == w.thread)
                    });
                let ns = (w.end - w.begin).max(0) as u64;
                let mut f = self.finding(
                    Kind::LockWait,
                    Severity::Note,
                    format!(
                        "{thread} waited {}{} for {lock}{}",
                        duration(ns),
                        if w.open { " (still waiting)" } else { "" },
                        holder.map_or(String::new(), |h| if h.thread == w.thread {
                            ", which it held itself".to_string()
                        } else {
                            format!(", held by {}", self.names.thread_label(h.thread))
                        })
                    ),
                );
                f.locks.push(lock.clone());
                f.threads.push(thread);
                if let Some(h) = holder {
                    if h.thread != w.thread {
                        f.threads.push(self.names.thread_label(h.thread));
                    }
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
}
