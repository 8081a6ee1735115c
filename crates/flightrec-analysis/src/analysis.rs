//! The front door: what a recording means, resolved once for a reader that wants all of
//! it (`info`, `check`, the viewer): its tasks, the lock replay and the findings, and the
//! triggers that folded into it.
//!
//! It is built from two parts that need nothing of each other: the tasks ([`Tasks`], from
//! the spans) and the [`Replay`] (the one pass over the records that replays the locks and
//! notes object touches). The rules then read both. `of` makes them one after the other:
//! side by side, the peaks of the two add up (72 MiB more on a 6 M-record dump) for no time
//! measured; the viewer, which has its own work to do beside the replay, makes the tasks
//! itself and joins them through `from_parts`.

use flightrec_format::Recording;

use crate::findings::{Finding, Replay, Thresholds};
use crate::locks::LockState;
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
        let tasks = Tasks::of(rec);
        Analysis::from_parts(tasks, Replay::of(rec), processes, thresholds)
    }

    /// The analysis from its two parts, for a reader that resolved the tasks itself beside
    /// other work (the viewer makes them from the span entries it draws).
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
