//! Turning the ring of a dead process into a dump, exactly once, whoever collects it.
//!
//! A recorder holds an exclusive advisory lock (`flock`) on its ring for as long as it
//! runs. Every collector (a recorder's start-up sweep, `flightrec watch`, `flightrec
//! collect`) first *claims* a ring by taking that same lock: the kernel gives it to one of
//! them, and the others see the ring as busy and pass it by. The claimant writes the dump,
//! then removes the ring (or marks it collected) before it lets go, so a collector that
//! gets the lock after it finds the name gone or marked. A collector that dies mid-way
//! releases the lock with its life: the ring is claimable again, never lost.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::dump::{write, DumpError};
use crate::layout::{self, RingSettings};
use crate::FormatError;

/// Why a ring could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("the process owning {0} is still running (or another collector is collecting its ring); take a snapshot of it instead (flightrec snapshot PID)")]
    Busy(PathBuf),
    #[error("{0} is gone: another collector took it")]
    Gone(PathBuf),
    #[error(transparent)]
    Read(#[from] FormatError),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error("cannot remove {path} after collecting it: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A dead process's ring, locked by this collector: no other collector takes it while the
/// claim lives.
#[derive(Debug)]
pub struct Claim {
    /// Open on the claimed ring, holding its exclusive lock.
    file: File,
    path: PathBuf,
    settings: RingSettings,
}

/// Claims the ring at `ring`: `Busy` when its owner runs or another collector holds it,
/// `Gone` when it vanished (collected by someone else) between listing and claiming.
pub fn claim(ring: &Path) -> Result<Claim, CollectError> {
    let io = |source| {
        CollectError::Read(FormatError::Io {
            path: ring.display().to_string(),
            source,
        })
    };
    let file = match File::open(ring) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CollectError::Gone(ring.to_path_buf()))
        }
        Err(e) => return Err(io(e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(CollectError::Busy(ring.to_path_buf()))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // The previous claimant removed the name before letting go: the lock we got may be on
    // a file no longer reachable under `ring` (or a new file now lives there).
    if !names_same_file(ring, &file) {
        return Err(CollectError::Gone(ring.to_path_buf()));
    }
    let mut head = vec![0u8; layout::HEADER_SIZE];
    let got = read_at_start(&file, &mut head).map_err(io)?;
    if got < layout::HEADER_SIZE || head[..8] != layout::MAGIC {
        return Err(CollectError::Read(FormatError::NotARing));
    }
    Ok(Claim {
        file,
        path: ring.to_path_buf(),
        settings: RingSettings::parse(&head),
    })
}

fn names_same_file(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn read_at_start(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Claim {
    /// What the recorder wrote about itself (dump directory, clean shutdown, ...).
    pub fn settings(&self) -> &RingSettings {
        &self.settings
    }

    /// The ring's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the ring as a dump into `out_dir` and returns its path; the ring stays. The
    /// dump keeps whatever trigger the process recorded before dying (none, for a SIGKILL
    /// or the OOM killer).
    pub fn dump(&self, out_dir: &Path) -> Result<PathBuf, CollectError> {
        let mut raw = Vec::new();
        (&self.file)
            .read_to_end(&mut raw)
            .map_err(|source| FormatError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
        let mut image = crate::image_from_bytes(raw)?;
        // The history the process wrote beside its ring comes along, as one recording.
        let history = crate::history::dir_of(&self.path);
        crate::history::extend_ring_file(&mut image, &history, layout::MAX_FILE_SIZE);
        let rec = crate::decode(&image)?;
        let flags = layout::get_u32(&image, layout::header::FLAGS).unwrap_or(0);
        layout::put_u32(&mut image, layout::header::FLAGS, flags | layout::FLAG_DUMP);
        // Bytes past a chunk's committed length may be half-written records of the dead
        // process: the decoder never reads them, and they compress away when zeroed.
        zero_uncommitted(&mut image);
        Ok(write(
            out_dir,
            &rec.process.service,
            rec.process.pid,
            rec.trigger.reason,
            &mut image,
        )?)
    }

    /// Removes the ring, still holding the claim: a collector waiting for the lock then
    /// finds the name gone.
    pub fn remove(self) -> Result<(), CollectError> {
        // Only the claimed file: a new recorder may have put its ring under this name.
        if !names_same_file(&self.path, &self.file) {
            return Ok(());
        }
        std::fs::remove_file(&self.path).map_err(|source| CollectError::Remove {
            path: self.path.clone(),
            source,
        })?;
        // Its history went into the dump with it, if there was one to make.
        let _ = std::fs::remove_dir_all(crate::history::dir_of(&self.path));
        Ok(())
    }

    /// Marks the ring as collected (now), for a ring kept after its dump: no recorder,
    /// `watch` or `collect` turns it into a dump a second time.
    pub fn mark_collected(self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            .max(1);
        let file = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        file.write_all_at(&now.to_le_bytes(), layout::header::COLLECTED_WALL_NS as u64)
    }
}

/// What [`collect_dead`] did with one ring.
#[derive(Debug)]
pub enum Collected {
    /// The ring became this dump, and was removed; its recorder's retention comes along
    /// (when the recorder wrote it down).
    Dump(PathBuf, Option<crate::retention::Quota>),
    /// Its process ended as asked (or the ring was already collected): removed, no dump.
    NothingToKeep,
    /// Its owner runs, another collector has it, or it is gone: left alone.
    NotOurs,
}

/// Collects one ring if its owner is dead and no other collector has it: the dump goes to
/// the directory `dump_dir` picks from the ring's settings, and the ring is removed. A
/// ring that cannot be read or dumped is left where it is, for a later attempt.
pub fn collect_dead(
    ring: &Path,
    dump_dir: impl FnOnce(&RingSettings) -> PathBuf,
) -> Result<Collected, CollectError> {
    let claim = match claim(ring) {
        Ok(c) => c,
        Err(CollectError::Busy(_) | CollectError::Gone(_)) => return Ok(Collected::NotOurs),
        Err(e) => return Err(e),
    };
    if claim.settings().needs_no_dump() {
        claim.remove()?;
        return Ok(Collected::NothingToKeep);
    }
    let dump = claim.dump(&dump_dir(claim.settings()))?;
    let quota = crate::retention::Quota::recorded(claim.settings());
    claim.remove()?;
    Ok(Collected::Dump(dump, quota))
}

/// The ring files (`*.flightrec-ring`) in `dir`; none when it cannot be read.
pub fn rings_in(dir: &Path) -> Vec<PathBuf> {
    crate::history::files_with_extension(dir, "flightrec-ring")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Many collectors at once over the same dead rings: each ring becomes one dump, and
    /// no ring is left behind.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn concurrent_collectors_make_one_dump_per_ring() {
        let dir = std::env::temp_dir().join(format!("flightrec-claims-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let image = crate::testing::sample_image(3);
        for i in 0..30 {
            std::fs::write(dir.join(format!("svc-{i}.flightrec-ring")), &image).unwrap();
        }
        let barrier = std::sync::Barrier::new(8);
        let dumps: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let mut mine = Vec::new();
                        for ring in rings_in(&dir) {
                            if let Collected::Dump(d, _) =
                                collect_dead(&ring, |_| dir.clone()).unwrap()
                            {
                                mine.push(d);
                            }
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(dumps.len(), 30, "one dump per ring");
        assert!(rings_in(&dir).is_empty(), "no ring left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_ring_held_by_another_collector_is_busy_and_free_again_when_it_lets_go() {
        let dir = std::env::temp_dir().join(format!("flightrec-claim1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ring = dir.join("svc-1.flightrec-ring");
        std::fs::write(&ring, crate::testing::sample_image(2)).unwrap();
        let first = claim(&ring).unwrap();
        assert!(matches!(claim(&ring), Err(CollectError::Busy(_))));
        // A collector that dies mid-way: its lock goes with it.
        drop(first);
        let second = claim(&ring).unwrap();
        second.dump(&dir).unwrap();
        second.remove().unwrap();
        assert!(matches!(claim(&ring), Err(CollectError::Gone(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
