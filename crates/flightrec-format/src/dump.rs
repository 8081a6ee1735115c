//! Dump files: a ring image, zstd-compressed, written under a temporary name and linked
//! into place only when complete, named `<service>-<pid>-<UTC time>-<reason>.flightrec`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::TriggerReason;

/// Why a dump could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot compress the dump: {0}")]
    Compress(String),
    #[error("cannot write the dump {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Compresses `image` and writes it into `dir`; returns the dump's path. Never replaces an
/// existing file: a name already taken gets a `-N` suffix.
pub fn write(
    dir: &Path,
    service: &str,
    pid: u32,
    reason: TriggerReason,
    image: &[u8],
) -> Result<PathBuf, DumpError> {
    write_compressed(dir, service, pid, reason, &compress(image)?)
}

/// An image compressed as a dump holds it.
pub fn compress(image: &[u8]) -> Result<Vec<u8>, DumpError> {
    zstd::bulk::compress(image, 3).map_err(|e| DumpError::Compress(e.to_string()))
}

/// `write`, for an image already compressed by [`compress`].
pub fn write_compressed(
    dir: &Path,
    service: &str,
    pid: u32,
    reason: TriggerReason,
    compressed: &[u8],
) -> Result<PathBuf, DumpError> {
    let stamp = compact_utc(SystemTime::now());
    let stem = format!("{}-{}-{}-{}", sanitize(service), pid, stamp, reason.slug());
    // Unique per call, not just per process: two threads that panic in the same millisecond
    // each write their own dump, and neither may clobber or remove the other's file.
    static NEXT_TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT_TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{stem}.{}.{n}.tmp", std::process::id()));
    let write_err = |source| DumpError::Write {
        path: tmp.clone(),
        source,
    };
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(compressed)?;
        f.sync_data()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    // Link under the final name without replacing anything: dumps never overwrite each other.
    for n in 0..1000 {
        let name = if n == 0 {
            format!("{stem}.flightrec")
        } else {
            format!("{stem}-{n}.flightrec")
        };
        let path = dir.join(name);
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(DumpError::Write { path, source: e });
            }
        }
    }
    let _ = std::fs::remove_file(&tmp);
    Err(DumpError::Write {
        path: dir.to_path_buf(),
        source: std::io::Error::other("1000 dumps with the same name and time"),
    })
}

/// `2026-11-23T05:55:54.123Z` without the separators that trouble file names.
fn compact_utc(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// Keeps a service name usable in a file name.
pub fn sanitize(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("svc{s}")
    } else {
        s
    }
}

/// Whether the process that owns a ring file is still alive. A recorder holds an exclusive
/// lock on its ring for as long as it runs; the kernel releases it when the process dies,
/// however it dies. Returns an error only if the file cannot be opened.
pub fn owner_alive(ring: &Path) -> std::io::Result<bool> {
    let f = std::fs::File::open(ring)?;
    match f.try_lock() {
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Why a ring could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("the process owning {0} is still running; take a snapshot of it instead (flightrec snapshot PID)")]
    OwnerAlive(PathBuf),
    #[error(transparent)]
    Read(#[from] crate::FormatError),
    #[error(transparent)]
    Dump(#[from] DumpError),
}

/// Turns the ring file of a dead process into a dump in `out_dir`. The ring file is left as
/// it is. The dump keeps whatever trigger the process recorded before dying (none, for a
/// SIGKILL or the OOM killer).
pub fn collect(ring: &Path, out_dir: &Path) -> Result<PathBuf, CollectError> {
    let alive = owner_alive(ring).map_err(|source| crate::FormatError::Io {
        path: ring.display().to_string(),
        source,
    })?;
    if alive {
        return Err(CollectError::OwnerAlive(ring.to_path_buf()));
    }
    let mut image = crate::read_dense_image(ring)?;
    let rec = crate::decode(&image)?;
    let flags = crate::layout::get_u32(&image, crate::layout::header::FLAGS).unwrap_or(0);
    crate::layout::put_u32(
        &mut image,
        crate::layout::header::FLAGS,
        flags | crate::layout::FLAG_DUMP,
    );
    // Bytes past a chunk's committed length may be half-written records of the dead
    // process: the decoder never reads them, and they compress away when zeroed.
    zero_uncommitted(&mut image);
    Ok(write(
        out_dir,
        &rec.process.service,
        rec.process.pid,
        rec.trigger.reason,
        &image,
    )?)
}

/// Marks a dead process's ring as collected (now), so no recorder, `watch` or `collect`
/// turns it into a dump a second time. For a ring kept after `collect`.
pub fn mark_collected(ring: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        .max(1);
    let file = std::fs::OpenOptions::new().write(true).open(ring)?;
    file.write_all_at(
        &now.to_le_bytes(),
        crate::layout::header::COLLECTED_WALL_NS as u64,
    )
}

fn zero_uncommitted(image: &mut [u8]) {
    use crate::layout::{chunk, get_u32, get_u64, header, CHUNK_HEADER_SIZE};
    let chunk_size = get_u32(image, header::CHUNK_SIZE).unwrap_or(0) as usize;
    let count = get_u32(image, header::CHUNK_COUNT).unwrap_or(0) as usize;
    let start = get_u64(image, header::CHUNKS_OFFSET).unwrap_or(0) as usize;
    if chunk_size <= CHUNK_HEADER_SIZE {
        return;
    }
    for c in 0..count {
        let off = start + c * chunk_size;
        let Some(ch) = image.get_mut(off..off + chunk_size) else {
            return;
        };
        let committed = get_u32(ch, chunk::COMMITTED_LEN).unwrap_or(0) as usize;
        let end = (CHUNK_HEADER_SIZE + committed).min(chunk_size);
        ch[end..].fill(0);
    }
}

/// Deletes the oldest dumps of `service` in `dir` beyond the newest `keep`, and beyond
/// `max_bytes` in total. The newest dump is always kept. Returns the dumps deleted.
pub fn prune(dir: &Path, service: &str, keep: usize, max_bytes: u64) -> Vec<PathBuf> {
    let prefix = format!("{}-", sanitize(service));
    let mut dumps: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(".flightrec")
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    // Newest first; the name (which holds the time) breaks ties within a clock tick.
    dumps.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.2.cmp(&a.2)));
    let mut total = 0u64;
    let mut deleted = Vec::new();
    for (i, (_, len, path)) in dumps.into_iter().enumerate() {
        total = total.saturating_add(len);
        if i > 0 && (i >= keep || total > max_bytes) && std::fs::remove_file(&path).is_ok() {
            deleted.push(path);
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)]
    fn the_head_of_a_dump_describes_it_without_its_chunks() {
        let dir = std::env::temp_dir().join(format!("flightrec-head-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = crate::testing::sample_image(3);
        let dump = write(&dir, "head", 1, TriggerReason::Api, &image).unwrap();
        let ring = dir.join("head-1.flightrec-ring");
        std::fs::write(&ring, &image).unwrap();
        let chunks = crate::layout::get_u64(&image, crate::layout::header::CHUNKS_OFFSET).unwrap();
        for path in [&dump, &ring] {
            let head = crate::read_head(path).unwrap();
            assert_eq!(head.len() as u64, chunks, "header and meta log only");
            assert_eq!(head[..], image[..chunks as usize]);
            let scan = crate::scan(&head).unwrap();
            assert_eq!(scan.recording.process.service, "seed");
            assert_eq!(scan.recording.threads[0].name, "main");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Found by the demo: two threads panicking at once both lost their dump, because their
    /// temporary files had the same name.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn simultaneous_dumps_in_one_process_all_land_under_distinct_names() {
        let dir = std::env::temp_dir().join(format!("flightrec-simul-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = crate::testing::sample_image(3);
        let barrier = std::sync::Barrier::new(8);
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        write(&dir, "simul", 1, TriggerReason::Panic, &image)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().expect("every dump is written"))
                .collect()
        });
        let distinct: std::collections::HashSet<_> = paths.iter().collect();
        assert_eq!(distinct.len(), 8);
        for p in &paths {
            assert_eq!(crate::read_dense_image(p).unwrap(), image);
        }
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0, "no temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // Files and zstd's C code: nothing for Miri to check, and its isolation refuses both.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn prune_keeps_the_newest_within_count_and_budget() {
        let dir = std::env::temp_dir().join(format!("flightrec-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut written = Vec::new();
        for i in 0..6 {
            let p = write(&dir, "svc", 1, TriggerReason::Api, &vec![i as u8; 1000]).unwrap();
            written.push(p);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::write(dir.join("other-1-x-snapshot.flightrec"), b"not ours").unwrap();
        let deleted = prune(&dir, "svc", 4, u64::MAX);
        assert_eq!(deleted.len(), 2);
        assert!(
            deleted.iter().all(|d| written[..2].contains(d)),
            "the oldest go first"
        );
        let deleted = prune(&dir, "svc", 10, 1);
        assert_eq!(deleted.len(), 3, "over budget: all but the newest");
        assert!(written[5].exists() && dir.join("other-1-x-snapshot.flightrec").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
