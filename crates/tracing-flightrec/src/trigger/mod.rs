//! What makes a dump: the snapshot signal (a dedicated dumper thread), panics (a chained
//! hook), and rings left by processes that died without a word (collected at start).

pub(crate) mod panic;
pub(crate) mod signal;
pub(crate) mod stall;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use flightrec_format::{Trigger, TriggerReason};

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

/// Collects the rings in `dir` whose owner is dead (and that no other collector has
/// claimed) into dumps in `dump_dir`, removes those ring files and applies retention to
/// their services (each by its recorder's rule, `quota` for rings that recorded none). Returns the dumps written and those retention removed. A ring that
/// cannot be read or dumped is left where it is for a later attempt. A ring whose process
/// ended as asked (it exited, dropped its recorder, or got a stop signal such as SIGTERM)
/// is removed without a dump: nothing went wrong there.
pub(crate) fn collect_dead_rings(
    dir: &std::path::Path,
    dump_dir: &std::path::Path,
    quota: flightrec_format::retention::Quota,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    use flightrec_format::collect::{collect_dead, rings_in, Collected};
    let mut dumps = Vec::new();
    for ring in rings_in(dir) {
        if let Ok(Collected::Dump(dump, theirs)) = collect_dead(&ring, |_| dump_dir.to_path_buf()) {
            dumps.push((dump, theirs.unwrap_or(quota)));
        }
    }
    let removed = flightrec_format::retention::prune_services_of(&dumps);
    (dumps.into_iter().map(|(d, _)| d).collect(), removed)
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
