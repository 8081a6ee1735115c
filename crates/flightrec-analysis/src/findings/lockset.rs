//! The lockset rule, `inconsistent_locking`: Eraser's lockset held to the owner's
//! discipline, over the touches [`super::objects::Touches`] gathered.

use std::collections::{BTreeSet, HashSet};

use super::objects::{Actor, Touch, Touches};
use super::{Context, Finding, Kind, Severity, MAX_PER_KIND};

impl Context<'_> {
    /// Eraser's lockset, held to the owner's discipline: an object shared by threads or
    /// tasks, one of which touches it only holding a lock, and another without that lock.
    pub(super) fn inconsistent_locking(&self, touches: &Touches<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for list in touches.by_key() {
            let all: Vec<&Touch> = list.iter().map(|&t| &touches.touches[t]).collect();
            if all.iter().any(|t| t.task_lock) {
                continue;
            }
            let Some(first) = all.first() else { continue };
            let owner = self.actor(first.record);
            // Until a second thread or task touches it, the object is its creator's
            // (initialisation needs no lock): the locksets count from then on.
            let Some(from) = all.iter().position(|t| self.actor(t.record) != owner) else {
                continue;
            };
            let shared = &all[from..];
            let locksets: Vec<BTreeSet<u32>> = shared
                .iter()
                .map(|t| {
                    let thread = self.rec.records[t.record].thread;
                    t.holds
                        .iter()
                        .map(|&(l, _, _)| l)
                        .chain(touches.maybe_held(thread, t.record))
                        .collect()
                })
                .collect();
            // The owner's discipline: an actor whose every touch, once shared, held some
            // lock. Without one, no lock is known to guard the object: a mention (a log
            // line after the guard is dropped, made by every connection alike) is not an
            // access against anyone's locking.
            let actors: Vec<Actor> = shared.iter().map(|t| self.actor(t.record)).collect();
            let discipline = |a: Actor| -> BTreeSet<u32> {
                let mut own = (0..shared.len()).filter(|&n| actors[n] == a);
                let Some(first) = own.next() else {
                    return BTreeSet::new();
                };
                own.fold(locksets[first].clone(), |acc, n| {
                    acc.intersection(&locksets[n]).copied().collect()
                })
            };
            let mut disciplined = None;
            for n in 0..shared.len() {
                if disciplined.is_none() && !locksets[n].is_empty() {
                    let d = discipline(actors[n]);
                    if !d.is_empty() {
                        disciplined = Some((n, d));
                    }
                }
            }
            let Some((locked, guard)) = disciplined else {
                continue;
            };
            // Evidence: a touch by the disciplined actor, and a touch by another thread or
            // task that held none of its locks (unlocked if there is one).
            let locked_actor = actors[locked];
            let disjoint = |s: &BTreeSet<u32>| s.is_disjoint(&guard);
            let other = (0..shared.len())
                .filter(|&n| actors[n] != locked_actor)
                .filter(|&n| disjoint(&locksets[n]))
                .min_by_key(|&n| !locksets[n].is_empty());
            let Some(other) = other else { continue };
            let key_id = shared[locked].key as usize;
            if touches.key_is_id[key_id]
                && !self.id_discipline_broken(
                    touches,
                    (&all, from),
                    &guard,
                    (locked_actor, actors[other]),
                )
            {
                continue;
            }
            let key = &touches.key_names[key_id];
            out.push(self.lockset_finding(
                key,
                (shared[locked].record, &locksets[locked]),
                (shared[other].record, &locksets[other]),
            ));
            if out.len() >= MAX_PER_KIND {
                break;
            }
        }
        out
    }

    /// For an id (`conn=7`), whose values coincide far more than addresses do, the lockset
    /// must show a protocol, not a coincidence: the owner touched it only under the guard,
    /// in at least two holds (a connection checked out and back in), and the other actor
    /// never touched it under the guard (it ignores the protocol, rather than logging the
    /// id once outside it). Per-request data touched in one hold stays silent. The touches
    /// before `shared_from` (its creator's, before anyone else's) need no lock.
    fn id_discipline_broken(
        &self,
        touches: &Touches<'_>,
        (all, shared_from): (&[&Touch], usize),
        guard: &BTreeSet<u32>,
        (owner, other): (Actor, Actor),
    ) -> bool {
        let mut holds = HashSet::new();
        for (n, t) in all.iter().enumerate() {
            let actor = self.actor(t.record);
            let thread = self.rec.records[t.record].thread;
            let guarded: Vec<(u32, usize)> = t
                .holds
                .iter()
                .filter(|&&(l, _, _)| guard.contains(&l))
                .map(|&(l, h, _)| (l, h))
                .collect();
            let maybe = touches
                .maybe_held(thread, t.record)
                .any(|l| guard.contains(&l));
            if actor == owner {
                if guarded.is_empty() && n >= shared_from {
                    return false;
                }
                holds.extend(guarded);
            } else if actor == other && (!guarded.is_empty() || maybe) {
                return false;
            }
        }
        holds.len() >= 2
    }

    fn lockset_finding(
        &self,
        key: &str,
        (locked, locks): (usize, &BTreeSet<u32>),
        (other, other_locks): (usize, &BTreeSet<u32>),
    ) -> Finding {
        let labels = |s: &BTreeSet<u32>| -> Vec<String> {
            s.iter().map(|&l| self.names.lock_label(l)).collect()
        };
        let held = labels(locks).join(" and ");
        let other_who = self.actor_label(self.actor(other));
        let mut f = self.finding(
            Kind::InconsistentLocking,
            Severity::Warning,
            format!(
                "{key} is touched holding {held} by {}, and without it by {other_who}: no \
                 lock guards it everywhere",
                self.actor_label(self.actor(locked))
            ),
        );
        f.object = Some(key.to_string());
        f.locks = labels(locks);
        f.records
            .extend(self.evidence(locked, format!("touched {key} holding {held}")));
        let role = if other_locks.is_empty() {
            format!("touched {key} holding no lock")
        } else {
            format!(
                "touched {key} holding only {}",
                labels(other_locks).join(" and ")
            )
        };
        f.records.extend(self.evidence(other, role));
        f.records.sort_by_key(|e| (e.ts, e.record));
        self.people(&mut f);
        f
    }
}
