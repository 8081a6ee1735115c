//! What makes a dump: the snapshot signal (a dedicated dumper thread), panics (a chained
//! hook), and rings left by processes that died without a word (collected at start).

pub(crate) mod panic;
pub(crate) mod signal;
pub(crate) mod stall;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use flightrec_format::{Trigger, TriggerReason};

use crate::layer::Shared;
use crate::Error;

/// A trigger block stamped now.
pub(crate) fn trigger(reason: TriggerReason, signal: u32, tid: u64, message: String) -> Trigger {
    let wall_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    Trigger {
        reason,
        signal,
        fault_addr: 0,
        tid,
        wall_ns,
        message,
    }
}

impl Shared {
    /// Writes a dump of the ring with `trigger`, then deletes the service's oldest dumps
    /// beyond the retention limits. A failure is also recorded in the ring as an ERROR
    /// event (see `record_dump_failure`), so a dump triggered by a signal, a stall or a
    /// panic does not fail silently.
    pub(crate) fn dump(&self, trigger: &Trigger) -> Result<PathBuf, Error> {
        self.dump_with_stacks(trigger, &[], 0)
    }

    /// As `dump`, with the native stacks of the threads `tids` captured first (at most
    /// `stacks::ANSWER_TIMEOUT` waiting for them); `reason` is a
    /// `layout::stacks::REASON_*`.
    ///
    /// One dump at a time: a trigger that arrives while another thread copies and
    /// compresses a dump (two requests panicking 5 ms apart) folds into that dump instead
    /// of making its own. The dump is then copied again, so it holds what the folded
    /// trigger recorded before it asked; the earliest trigger is the dump's own, and each
    /// other one is recorded (a `trigger folded` event, with its time and thread) before
    /// that copy. A folded trigger's caller gets the same path. Once the last copy is
    /// taken, a new trigger waits for the dump to be written and then makes its own.
    pub(crate) fn dump_with_stacks(
        &self,
        trigger: &Trigger,
        tids: &[u64],
        reason: u32,
    ) -> Result<PathBuf, Error> {
        let me = crate::layer::os_tid();
        {
            let mut q = self.dumps.state.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(writer) = q.writer {
                if writer == me {
                    // A trigger inside our own dump (a panic while writing it): waiting
                    // would wait for ourselves.
                    return Err(Error::DumpInProgress);
                }
                let folds = !q.sealed;
                if folds {
                    q.pending.push(trigger.clone());
                }
                let generation = q.generation;
                while q.generation == generation {
                    q = self.dumps.done.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if folds {
                    return q.last.clone().ok_or(Error::DumpInProgress);
                }
                // Too late to fold into that one (it was being written out): our own.
            }
            q.writer = Some(me);
        }
        let session = if tids.is_empty() {
            None
        } else {
            crate::ring::stacks::capture(&self.ring, tids, reason)
        };
        let mut primary = trigger.clone();
        let compressed = loop {
            let compressed =
                crate::snapshot::copy_compressed(&self.ring, &primary, session.as_ref());
            let newly = {
                let mut q = self.dumps.state.lock().unwrap_or_else(|e| e.into_inner());
                q.sealed = q.pending.is_empty() || compressed.is_err();
                std::mem::take(&mut q.pending)
            };
            if newly.is_empty() || compressed.is_err() {
                break compressed;
            }
            for t in newly {
                let later = if t.wall_ns < primary.wall_ns {
                    std::mem::replace(&mut primary, t)
                } else {
                    t
                };
                self.record_trigger_folded(&later);
            }
        };
        drop(session);
        let written = compressed.and_then(|c| {
            flightrec_format::dump::write_compressed(
                &self.dir,
                &self.service,
                self.pid,
                primary.reason,
                &c,
            )
            .map_err(Error::from)
        });
        {
            let mut q = self.dumps.state.lock().unwrap_or_else(|e| e.into_inner());
            q.writer = None;
            q.sealed = false;
            q.generation += 1;
            q.last = written.as_ref().ok().cloned();
            self.dumps.done.notify_all();
        }
        match written {
            Ok(path) => {
                flightrec_format::dump::prune(
                    &self.dir,
                    &self.service,
                    self.keep_dumps,
                    self.dump_budget,
                );
                Ok(path)
            }
            Err(e) => {
                self.record_dump_failure(trigger.reason.slug(), &e.to_string());
                Err(e)
            }
        }
    }
}

/// One dump at a time, and the triggers that fold into it (see `Shared::dump_with_stacks`).
#[derive(Default)]
pub(crate) struct DumpQueue {
    state: std::sync::Mutex<DumpQueueState>,
    /// Notified when a dump is written (or failed).
    done: std::sync::Condvar,
}

#[derive(Default)]
struct DumpQueueState {
    /// The thread writing a dump now.
    writer: Option<u64>,
    /// Triggers folded into the dump under way since its last copy.
    pending: Vec<Trigger>,
    /// The dump under way holds its last copy: a trigger now waits for it, then makes its
    /// own.
    sealed: bool,
    /// Dumps finished so far: what a folded trigger waits to see change.
    generation: u64,
    /// The last dump written (`None` when it failed).
    last: Option<PathBuf>,
}

/// Collects the rings in `dir` whose owner is dead (their lock is free) into dumps in
/// `dump_dir`, and removes those ring files. Returns the dumps written. A ring that cannot
/// be read or dumped is left where it is for a later attempt. A ring whose process ended
/// as asked (it exited, dropped its recorder, or got a stop signal such as SIGTERM) is
/// removed without a dump: nothing went wrong there.
pub(crate) fn collect_dead_rings(
    dir: &std::path::Path,
    dump_dir: &std::path::Path,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dumps = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "flightrec-ring") {
            continue;
        }
        if !matches!(flightrec_format::dump::owner_alive(&path), Ok(false)) {
            continue;
        }
        if flightrec_format::ring_settings(&path).is_ok_and(|s| s.needs_no_dump()) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Ok(dump) = flightrec_format::dump::collect(&path, dump_dir) {
            let _ = std::fs::remove_file(&path);
            dumps.push(dump);
        }
    }
    dumps
}

/// The tids of every thread of this process, those writing into `ring` first: when there
/// are more threads than capture slots, the recording's own threads keep theirs.
pub(crate) fn all_threads(ring: &crate::ring::Ring) -> Vec<u64> {
    use crate::ring::protocol::ChunkPool as _;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut tids: Vec<u64> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let writing: std::collections::HashSet<u64> = (0..ring.geometry.chunk_count as u64)
        .filter(|&i| {
            let w = ring
                .chunk(i)
                .state
                .load(std::sync::atomic::Ordering::Acquire);
            flightrec_format::layout::state::phase(w) == flightrec_format::layout::state::ACTIVE
        })
        .map(|i| {
            ring.chunk(i)
                .os_tid
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .collect();
    tids.sort_by_key(|t| !writing.contains(t));
    tids
}
