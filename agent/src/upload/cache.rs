//! The local cache of dumps fetched from object storage: whole files under a hash of their
//! key, trimmed to a budget, least recently fetched first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;

use super::{safe, time_for, with_tries, Destination};

/// The local cache of fetched dumps: `$XDG_CACHE_HOME/flightrec/s3` (else
/// `~/.cache/flightrec/s3`), or `FLIGHTREC_CACHE_DIR`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FLIGHTREC_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("flightrec").join("s3")
}

/// Most bytes the cache keeps; the least recently fetched go first.
const CACHE_BYTES: u64 = 1 << 30;

/// Downloads one dump into the cache (whole, under a temporary name, then renamed), and
/// trims the cache to its budget.
pub(super) fn fetch_one(
    store: &dyn ObjectStore,
    dest: &Destination,
    r: &flightrec_viewer::RemoteDump,
    cache: &Path,
) -> anyhow::Result<PathBuf> {
    let path = cache.join(cache_name(&r.key));
    // A cached copy is used only while it is the object listed (same size); a dump
    // replaced in the store is fetched again.
    if std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == r.size) {
        return Ok(path);
    }
    std::fs::create_dir_all(cache).with_context(|| cache.display().to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the fetcher")?;
    // The key as listed is already the store's encoding: parsed, not encoded again.
    let location =
        StorePath::parse(r.key.as_str()).unwrap_or_else(|_| StorePath::from(r.key.as_str()));
    let limit = time_for(r.size);
    let bytes = rt.block_on(with_tries(
        dest,
        &format!("fetching {}", r.key),
        limit,
        || async { store.get(&location).await?.bytes().await },
    ))?;
    let tmp = tempfile::NamedTempFile::new_in(cache).context("writing the cache")?;
    std::fs::write(tmp.path(), &bytes).context("writing the cache")?;
    tmp.persist(&path).context("writing the cache")?;
    trim_cache(cache, &path);
    Ok(path)
}

/// The cache file of a key: a hash of the whole key (so two keys never share a file, such
/// as `a/b` and `a%b`), then its last part for people to read.
pub fn cache_name(key: &str) -> String {
    // FNV-1a, 64 bits: stable across builds, so a cache outlives an upgrade.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let tail = key.rsplit('/').next().unwrap_or("");
    format!("{h:016x}-{}", safe(tail))
}

/// The cache's budget in bytes: `FLIGHTREC_CACHE_BYTES`, default 1 GiB.
pub fn cache_budget() -> u64 {
    std::env::var("FLIGHTREC_CACHE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CACHE_BYTES)
}

/// Files this process fetched, and when: pinned for `PIN_FOR`, so recordings opened
/// together are not evicted by each other's fetches while the viewer reads them.
static FETCHED: std::sync::Mutex<Vec<(PathBuf, std::time::Instant)>> =
    std::sync::Mutex::new(Vec::new());
const PIN_FOR: Duration = Duration::from_secs(600);

/// Deletes the oldest cached dumps (never `keep`, nor one this process fetched in the last
/// ten minutes) while the cache holds more than its budget.
fn trim_cache(cache: &Path, keep: &Path) {
    let budget = cache_budget();
    let pinned: Vec<PathBuf> = {
        let mut fetched = FETCHED.lock().unwrap_or_else(|e| e.into_inner());
        fetched.retain(|(_, at)| at.elapsed() < PIN_FOR);
        fetched.push((keep.to_path_buf(), std::time::Instant::now()));
        fetched.iter().map(|(p, _)| p.clone()).collect()
    };
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (_, size, p) in files {
        if total <= budget {
            break;
        }
        if !pinned.contains(&p) && std::fs::remove_file(&p).is_ok() {
            total -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_keys_never_share_a_cache_file() {
        let flat = "fleet%probe%2026-12-05%vm-13216-1.flightrec";
        let nested = "fleet/probe/2026-12-05/vm-13216-1.flightrec";
        assert_ne!(cache_name(flat), cache_name(nested));
        assert!(cache_name(nested).ends_with("-vm-13216-1.flightrec"));
        assert_eq!(cache_name(nested), cache_name(nested), "stable");
    }
}
