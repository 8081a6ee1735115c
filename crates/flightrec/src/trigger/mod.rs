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
    pub(crate) fn dump_with_stacks(
        &self,
        trigger: &Trigger,
        tids: &[u64],
        reason: u32,
    ) -> Result<PathBuf, Error> {
        let session = if tids.is_empty() {
            None
        } else {
            crate::ring::stacks::capture(&self.ring, tids, reason)
        };
        let written = crate::snapshot::write_dump(
            &self.ring,
            &self.dir,
            &self.service,
            self.pid,
            trigger,
            session.as_ref(),
        );
        drop(session);
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
