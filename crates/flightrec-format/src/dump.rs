//! Dump files: a ring image, sealed and zstd-compressed, written under a temporary name
//! and linked into place only when complete, named
//! `<service>-<pid>-<UTC time>-<reason>.flightrec`.

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
    image: &mut [u8],
) -> Result<PathBuf, DumpError> {
    write_compressed(dir, service, pid, reason, &compress(image)?)
}

/// An image sealed (its checksums written into its header, see [`crate::seal`]) and
/// compressed as a dump holds it: a zstd frame that carries its own checksum, then a
/// skippable frame with the checksum of the compressed bytes.
pub fn compress(image: &mut [u8]) -> Result<Vec<u8>, DumpError> {
    crate::seal::seal(image);
    let err = |e: std::io::Error| DumpError::Compress(e.to_string());
    let mut z = zstd::bulk::Compressor::new(3).map_err(err)?;
    z.include_checksum(true).map_err(err)?;
    let mut out = z.compress(image).map_err(err)?;
    let trailer = crate::seal::trailer(&out);
    out.extend_from_slice(&trailer);
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)]
    fn the_head_of_a_dump_describes_it_without_its_chunks() {
        let dir = std::env::temp_dir().join(format!("flightrec-head-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut image = crate::testing::sample_image(3);
        let dump = write(&dir, "head", 1, TriggerReason::Api, &mut image).unwrap();
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
                        write(&dir, "simul", 1, TriggerReason::Panic, &mut image.clone())
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
            let mut sealed = image.clone();
            crate::seal::seal(&mut sealed);
            assert_eq!(crate::read_dense_image(p).unwrap(), sealed);
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
}
