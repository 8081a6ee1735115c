//! Which dumps a directory keeps: a rule that depends on the dumps there, not on who
//! wrote or collected them.
//!
//! A service's dumps are grouped by the trigger in their names. **Each trigger keeps its
//! own newest `keep`**: a burst of snapshots or stalls never pushes a crash out. Over the
//! byte budget, dumps go oldest first in rank order: snapshots, signal and exit dumps
//! first, then stalls, and the evidence of a death last (crash, panic, and rings collected
//! from killed processes, named `none`). The newest dump of each trigger always stays.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::dump::sanitize;

/// How many dumps, and how many bytes of them, a service keeps in a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Dumps kept per trigger.
    pub keep_per_trigger: usize,
    /// Bytes all of a service's dumps may take.
    pub max_bytes: u64,
}

impl Quota {
    /// The quota a recorder wrote into its ring, if it did.
    pub fn recorded(settings: &crate::layout::RingSettings) -> Option<Quota> {
        settings.retain.map(|(keep, max_bytes)| Quota {
            keep_per_trigger: keep as usize,
            max_bytes,
        })
    }
}

/// Retention unless told otherwise: 20 dumps per trigger, 512 MiB per service.
pub const DEFAULT_QUOTA: Quota = Quota {
    keep_per_trigger: 20,
    max_bytes: 512 << 20,
};

/// The order in which dumps give way to the byte budget: lower ranks go first.
fn rank(trigger: &str) -> u8 {
    match trigger {
        "crash" | "panic" | "none" | "unknown" => 2,
        "stall" => 1,
        _ => 0,
    }
}

/// The trigger word of a dump's file name (`svc-12-20261206T…Z-crash-1.flightrec` gives
/// `crash`), or `None` for a name that is not a dump's.
pub fn trigger_of(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".flightrec")?;
    let mut parts = stem.rsplit('-');
    let last = parts.next()?;
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        // `-N`, added when the name was taken.
        parts.next()
    } else {
        Some(last)
    }
}

/// The service of a dump's file name (`svc-12-20261206T…Z-crash-1.flightrec` gives
/// `svc`): everything before its pid, time and trigger.
pub fn service_of(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".flightrec")?;
    let numbered = stem
        .rsplit('-')
        .next()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    let mut rest = stem;
    for _ in 0..(3 + numbered as usize) {
        rest = &rest[..rest.rfind('-')?];
    }
    Some(rest)
}

/// Applies each dump's quota to its service (dumps just written or collected, each in its
/// own directory); returns the dumps deleted.
pub fn prune_services_of(dumps: &[(PathBuf, Quota)]) -> Vec<PathBuf> {
    let mut done = std::collections::BTreeSet::new();
    let mut deleted = Vec::new();
    for (d, quota) in dumps {
        let (Some(dir), Some(name)) = (d.parent(), d.file_name()) else {
            continue;
        };
        let Some(service) = service_of(&name.to_string_lossy()).map(str::to_owned) else {
            continue;
        };
        if done.insert((dir.to_path_buf(), service.clone())) {
            deleted.extend(prune(dir, &service, *quota));
        }
    }
    deleted
}

struct Held {
    modified: SystemTime,
    len: u64,
    path: PathBuf,
    trigger: String,
}

/// Deletes `service`'s dumps in `dir` beyond the quota; returns those deleted.
pub fn prune(dir: &Path, service: &str, quota: Quota) -> Vec<PathBuf> {
    let prefix = format!("{}-", sanitize(service));
    let mut dumps: Vec<Held> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) {
                return None;
            }
            let trigger = trigger_of(&name)?.to_owned();
            let m = e.metadata().ok()?;
            Some(Held {
                modified: m.modified().ok()?,
                len: m.len(),
                path: e.path(),
                trigger,
            })
        })
        .collect();
    // Newest first; the name (which holds the time) breaks ties within a clock tick.
    dumps.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.path.cmp(&a.path))
    });
    let mut doomed = vec![false; dumps.len()];
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    let mut newest_of_its_trigger = vec![false; dumps.len()];
    for (i, d) in dumps.iter().enumerate() {
        let n = seen.entry(&d.trigger).or_default();
        newest_of_its_trigger[i] = *n == 0;
        doomed[i] = *n >= quota.keep_per_trigger.max(1);
        *n += 1;
    }
    let mut total: u64 = dumps
        .iter()
        .zip(&doomed)
        .filter(|(_, &x)| !x)
        .map(|(d, _)| d.len)
        .sum();
    // Oldest first within each rank, lowest rank first.
    let mut order: Vec<usize> = (0..dumps.len()).rev().collect();
    order.sort_by_key(|&i| rank(&dumps[i].trigger));
    for i in order {
        if total <= quota.max_bytes {
            break;
        }
        if !doomed[i] && !newest_of_its_trigger[i] {
            doomed[i] = true;
            total -= dumps[i].len;
        }
    }
    dumps
        .into_iter()
        .zip(doomed)
        .filter(|(_, x)| *x)
        .filter(|(d, _)| std::fs::remove_file(&d.path).is_ok())
        .map(|(d, _)| d.path)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TriggerReason;

    #[test]
    fn the_trigger_is_read_from_the_name() {
        assert_eq!(
            trigger_of("svc-12-20261206T195148.123Z-crash.flightrec"),
            Some("crash")
        );
        assert_eq!(
            trigger_of("my-svc-12-20261206T195148.123Z-none-3.flightrec"),
            Some("none")
        );
        assert_eq!(trigger_of("notes.txt"), None);
        assert_eq!(
            service_of("my_svc-12-20261206T195148.123Z-none-3.flightrec"),
            Some("my_svc")
        );
        assert_eq!(
            service_of("svc-12-20261206T195148.123Z-crash.flightrec"),
            Some("svc")
        );
    }

    // Files and zstd's C code: nothing for Miri to check, and its isolation refuses both.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn each_trigger_keeps_its_newest_and_snapshots_never_push_out_a_crash() {
        let dir = std::env::temp_dir().join(format!("flightrec-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dump = |reason, byte: u8| {
            let p = crate::dump::write(&dir, "svc", 1, reason, &mut vec![byte; 1000]).unwrap();
            // Distinct modification times, in order.
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + byte as u64);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
            p
        };
        let crash = dump(TriggerReason::Crash, 1);
        let killed = dump(TriggerReason::None, 2);
        let snaps: Vec<PathBuf> = (3..9).map(|b| dump(TriggerReason::Api, b)).collect();
        std::fs::write(dir.join("other-1-x-snapshot.flightrec"), b"not ours").unwrap();
        let quota = |keep, max_bytes| Quota {
            keep_per_trigger: keep,
            max_bytes,
        };
        let deleted = prune(&dir, "svc", quota(4, u64::MAX));
        assert_eq!(
            deleted,
            vec![snaps[1].clone(), snaps[0].clone()],
            "the oldest snapshots go"
        );
        assert!(crash.exists() && killed.exists());
        // Over budget: snapshots go first, down to the newest one; then the older evidence.
        let size = std::fs::metadata(&crash).unwrap().len();
        let deleted = prune(&dir, "svc", quota(10, 3 * size));
        assert_eq!(deleted.len(), 3, "{deleted:?}");
        assert!(crash.exists() && killed.exists() && snaps[5].exists());
        let deleted = prune(&dir, "svc", quota(10, 1));
        assert!(deleted.is_empty(), "the newest of each trigger stays");
        assert!(dir.join("other-1-x-snapshot.flightrec").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
