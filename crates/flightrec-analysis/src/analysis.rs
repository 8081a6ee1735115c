//! The front door: what a recording means, resolved once for every reader that wants it
//! (`info`, `check`, the tables, the viewer, the demos): its tasks, the lock replay and the
//! findings, and the triggers that folded into it.
//!
//! It is built from two parts that need nothing of each other: the tasks ([`Tasks`], from
//! the span entries) and the [`Replay`] (the one pass over the records that replays the
//! locks and notes object touches). The rules then read both. `of` makes them one after the
//! other: side by side, the peaks of the two add up (72 MiB more on a 6 M-record dump) for
//! no time measured. A reader that draws or tabulates the span entries itself (the viewer,
//! the tables) resolves the tasks from them through [`Analysis::tasks_of_spans`], may run
//! the replay on another core meanwhile, and joins the two with [`Analysis::from_parts`].
//!
//! **Architecture Invariant:** tasks are resolved and locks replayed here and nowhere
//! else: no reader builds [`Tasks`] or drives a `LockTracker` itself.

use flightrec_format::Recording;

use crate::findings::{Finding, Replay, Thresholds};
use crate::locks::LockState;
use crate::names::Names;
use crate::spans::{entries_of_plan, Entry, SpanPlan};
use crate::tasks::Tasks;
use crate::triggers::FoldedTrigger;

/// A recording, resolved.
pub struct Analysis {
    pub tasks: Tasks,
    /// Holds and waits as intervals, per-lock statistics, and the wait-for graph when the
    /// data ends.
    pub locks: LockState,
    /// Worst first.
    pub findings: Vec<Finding>,
    /// The triggers that folded into the recording after its own, in record order.
    pub folded: Vec<FoldedTrigger>,
}

impl Analysis {
    /// The analysis of one process's recording.
    pub fn of(rec: &Recording, thresholds: &Thresholds) -> Analysis {
        Analysis::of_processes(rec, &[], thresholds)
    }

    /// The analysis of a merged recording, `processes[k]` naming recording `k`'s process
    /// (see [`crate::findings::findings_of_processes`]).
    pub fn of_processes(
        rec: &Recording,
        processes: &[String],
        thresholds: &Thresholds,
    ) -> Analysis {
        let plan = SpanPlan::of_recording(rec);
        let entries = entries_of_plan(&plan, &rec.records);
        let tasks = Analysis::tasks_of_spans(rec, &entries, &plan);
        drop((entries, plan));
        Analysis::from_parts(tasks, Replay::of(rec), processes, thresholds)
    }

    /// The tasks of `rec`, given the span entries the reader placed already
    /// (`entries_of_plan` of `plan`): the one place tasks are resolved. A reader that draws
    /// or tabulates the entries itself joins these with the [`Replay`] it ran beside them
    /// through [`Analysis::from_parts`].
    pub fn tasks_of_spans(rec: &Recording, entries: &[Entry], plan: &SpanPlan) -> Tasks {
        Tasks::from_parts(&rec.records, entries, plan, Names::new(rec))
    }

    /// The analysis from its two parts: the tasks ([`Analysis::tasks_of_spans`]) and the
    /// lock replay (`Replay::of` of the same recording).
    pub fn from_parts(
        tasks: Tasks,
        replay: Replay<'_>,
        processes: &[String],
        thresholds: &Thresholds,
    ) -> Analysis {
        let findings = replay.findings(&tasks, processes, thresholds);
        let Replay { locks, folded, .. } = replay;
        Analysis {
            tasks,
            locks,
            findings,
            folded,
        }
    }
}
