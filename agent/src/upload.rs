//! `flightrec upload DUMP... --to s3://bucket/prefix`: dumps shipped to S3-compatible object
//! storage, with `object_store`, configured by the standard AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`).
//!
//! Keys are laid out for listing by service, day and host:
//! `<prefix>/<service>/<yyyy-mm-dd>/<host>-<pid>-<time>-<reason>.flightrec`, and the header's
//! fields travel as object metadata, so a listing needs no download. Each dump is one PUT:
//! the object under its final key is complete or absent. A local dump is deleted only when
//! asked, and only once its upload is confirmed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};

/// Where uploads go: a bucket and a key prefix.
#[derive(Debug, Clone)]
pub struct Destination {
    pub bucket: String,
    pub prefix: String,
}

impl Destination {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> anyhow::Result<Destination> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow::anyhow!("{url}: not an s3:// URL (s3://bucket/prefix)"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            anyhow::bail!("{url}: no bucket (s3://bucket/prefix)");
        }
        if !valid_bucket(bucket) {
            anyhow::bail!(
                "{url}: {bucket:?} is not a valid bucket name (3 to 63 lowercase letters, \
                 digits, dots and hyphens, starting and ending with a letter or digit)"
            );
        }
        Ok(Destination {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// S3's bucket naming rules, checked before object_store builds a request from the name
/// (which it cannot always do: a space in the name made it panic).
fn valid_bucket(b: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(b.chars().next())
        && edge(b.chars().last())
}

/// The endpoint the AWS variables name (`AWS_ENDPOINT_URL`, else `AWS_ENDPOINT`), checked:
/// an http(s) URL with a host and a valid port. Errors print it with its credentials
/// redacted, as everything that prints it does.
fn endpoint() -> anyhow::Result<Option<url::Url>> {
    let Some((var, raw)) = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .into_iter()
        .find_map(|v| std::env::var(v).ok().map(|s| (v, s)))
    else {
        return Ok(None);
    };
    let shown = redact(&raw);
    let url = url::Url::parse(&raw)
        .map_err(|e| anyhow::anyhow!("{var}={shown}: not a usable URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("{var}={shown}: not an http:// or https:// URL with a host");
    }
    Ok(Some(url))
}

/// `raw` with any user name and password replaced by `***` (the last `@` ends them, since a
/// password may hold a `/`).
pub fn redact(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => format!("{}***{}", &raw[..s + 3], &raw[at..]),
        _ => raw.to_string(),
    }
}

/// How many times a request that gets no answer is sent.
pub const TRIES: u32 = 3;

/// How long one request may go unanswered before it is sent again: `FLIGHTREC_S3_TIMEOUT`
/// seconds, default 10.
pub fn request_timeout() -> Duration {
    std::env::var("FLIGHTREC_S3_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0 && *s < 3600.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// How long a request carrying or fetching `bytes` may take: [`request_timeout`] for the
/// answer, plus a second per MiB (a store slower than 1 MiB/s counts as silent).
pub fn time_for(bytes: u64) -> Duration {
    request_timeout() + Duration::from_secs_f64(bytes as f64 / f64::from(1u32 << 20))
}

/// Runs `op` (one request to the store) up to [`TRIES`] times while it does not complete
/// within `limit` ([`time_for`] its size); an answer, error or not, ends it. A store that
/// accepts but never answers then fails in one line, in bounded time.
async fn with_tries<T, Fut>(
    dest: &Destination,
    what: &str,
    limit: Duration,
    mut op: impl FnMut() -> Fut,
) -> anyhow::Result<T>
where
    Fut: std::future::Future<Output = Result<T, object_store::Error>>,
{
    for _ in 0..TRIES {
        match tokio::time::timeout(limit, op()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => anyhow::bail!("{what}: {}", reason(dest, &e)),
            Err(_) => continue,
        }
    }
    anyhow::bail!(
        "{what}: no answer from the store at {} within {} s, {TRIES} tries",
        shown_endpoint(),
        (limit.as_secs_f64() * 10.0).round() / 10.0
    )
}

/// The endpoint for messages, credentials redacted.
fn shown_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .map_or_else(|_| "the default AWS endpoint".into(), |e| redact(&e))
}

/// The store for `dest`, from the AWS variables. Transient errors (a refused connection, a
/// 5xx) are retried with backoff, twice; a request with no answer is cut after
/// [`request_timeout`] (see [`with_tries`]), so an unreachable store fails with one line,
/// not never.
pub fn store(dest: &Destination) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let limit = request_timeout();
    let retry = object_store::RetryConfig {
        max_retries: (TRIES - 1) as usize,
        retry_timeout: limit * TRIES,
        ..Default::default()
    };
    endpoint()?;
    // Client options replace those `from_env` read: AWS_ALLOW_HTTP is applied here again.
    let allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let s3 = AmazonS3Builder::from_env()
        .with_bucket_name(&dest.bucket)
        .with_retry(retry)
        .with_client_options(
            object_store::ClientOptions::new()
                .with_allow_http(allow_http)
                .with_connect_timeout(limit.min(Duration::from_secs(5)))
                // A whole request (a big body included) is bounded by `with_tries`, which
                // says so; this only stops one that outlives everything.
                .with_timeout(Duration::from_secs(3600)),
        )
        .build()
        // The builder's errors name settings, never the secret's value.
        .context("configuring the S3 store (AWS_* variables)")?;
    Ok(Arc::new(s3))
}

/// What the key and the metadata of a dump say, from its header.
pub struct DumpFacts {
    pub service: String,
    pub host: String,
    pub pid: u32,
    pub reason: String,
    /// When it was taken (the trigger, else the recorder's start), ns since the Unix epoch.
    pub time_ns: i64,
    pub size: u64,
}

pub fn facts(path: &Path) -> anyhow::Result<DumpFacts> {
    let head = flightrec_format::read_head(path).with_context(|| path.display().to_string())?;
    let scan = flightrec_format::scan(&head).with_context(|| path.display().to_string())?;
    let r = scan.recording;
    let size = std::fs::metadata(path)
        .with_context(|| path.display().to_string())?
        .len();
    Ok(DumpFacts {
        service: r.process.service,
        host: r.process.host,
        pid: r.process.pid,
        reason: r.trigger.reason.slug().to_string(),
        time_ns: if r.trigger.wall_ns > 0 {
            r.trigger.wall_ns
        } else {
            r.start_wall_ns
        },
        size,
    })
}

/// A key part made safe: anything but letters, digits, `.`, `_` and `-` becomes `_`.
fn safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// `<prefix>/<service>/<yyyy-mm-dd>/<host>-<pid>-<time>-<reason>.flightrec`.
///
/// Built once, part by part, as the store's own path: each part of the user's prefix is
/// encoded as the store will hold it (`..` and `%` included), so the key printed, listed,
/// fetched and stored is one and the same.
pub fn key(dest: &Destination, f: &DumpFacts) -> StorePath {
    let t = std::time::UNIX_EPOCH + Duration::from_nanos(f.time_ns.max(0) as u64);
    // To the nanosecond: dumps of one process within one millisecond keep keys of their own
    // (an object under a taken key would replace another dump).
    let stamp = humantime::format_rfc3339_nanos(t).to_string(); // 2026-11-23T17:43:22.995123456Z
    let day = &stamp[..10];
    let time = stamp[11..].replace([':', '.'], "");
    let name = format!(
        "{}-{}-{}-{}.flightrec",
        safe(&f.host),
        f.pid,
        format_args!("{}T{}", day.replace('-', ""), time),
        safe(&f.reason)
    );
    StorePath::from_iter(dest.prefix.split('/').map(str::to_string).chain([
        safe(&f.service),
        day.to_string(),
        name,
    ]))
}

/// Uploads one dump; returns its key. The object appears whole or not at all.
pub async fn upload_one(
    store: &dyn ObjectStore,
    dest: &Destination,
    path: &Path,
) -> anyhow::Result<String> {
    let f = facts(path)?;
    let key = key(dest, &f);
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let mut attributes = Attributes::new();
    for (k, v) in [
        ("service", f.service.clone()),
        ("host", f.host.clone()),
        ("pid", f.pid.to_string()),
        ("trigger", f.reason.clone()),
        ("time-ns", f.time_ns.to_string()),
        ("size", f.size.to_string()),
    ] {
        attributes.insert(Attribute::Metadata(k.into()), v.into());
    }
    attributes.insert(
        Attribute::ContentType,
        "application/vnd.flightrec.dump".into(),
    );
    let opts = PutOptions {
        attributes,
        ..PutOptions::default()
    };
    let payload = PutPayload::from(bytes);
    let limit = time_for(f.size);
    with_tries(
        dest,
        &format!("uploading {}", path.display()),
        limit,
        || store.put_opts(&key, payload.clone(), opts.clone()),
    )
    .await?;
    Ok(key.to_string())
}

/// Why an upload failed, in a few words (never a credential).
fn reason(dest: &Destination, e: &object_store::Error) -> String {
    let text = e.to_string();
    let endpoint = shown_endpoint();
    if matches!(e, object_store::Error::NotFound { .. })
        || text.contains("NoSuchBucket")
        || text.contains("404 Not Found")
    {
        return format!("bucket {} not found at {endpoint}", dest.bucket);
    }
    if text.contains("error sending request") || text.contains("connect") {
        return format!("cannot reach the store at {endpoint} ({TRIES} tries)");
    }
    if text.contains("403") || text.contains("Forbidden") || text.contains("InvalidAccessKeyId") {
        return format!(
            "access denied to bucket {} (check the AWS credentials)",
            dest.bucket
        );
    }
    let line = text.lines().next().unwrap_or("").to_string();
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// `flightrec upload`: each dump in turn; stops at the first that fails, keeping it (and the
/// rest) on disk.
pub fn run(
    files: &[PathBuf],
    to: &str,
    delete_after: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let dest = Destination::parse(to)?;
    for f in files {
        if !f.is_file() {
            anyhow::bail!("{}: no such dump", f.display());
        }
    }
    let store = store(&dest)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the uploader")?;
    for f in files {
        let key = rt.block_on(upload_one(store.as_ref(), &dest, f))?;
        writeln!(
            out,
            "uploaded {} to s3://{}/{key}",
            f.display(),
            dest.bucket
        )?;
        if delete_after {
            std::fs::remove_file(f)
                .with_context(|| format!("uploaded, but cannot delete {}", f.display()))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `watch --upload`: sends each dump found once, remembering what it sent in
/// `<dir>/.flightrec-uploaded` (one file name per line) so a restart does not send again.
pub struct Shipper {
    dest: Destination,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    delete_after: bool,
    state: PathBuf,
    sent: std::collections::HashSet<String>,
}

impl Shipper {
    pub fn new(dir: &Path, to: &str, delete_after: bool) -> anyhow::Result<Shipper> {
        let dest = Destination::parse(to)?;
        let store = store(&dest)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the uploader")?;
        let state = dir.join(".flightrec-uploaded");
        let sent = std::fs::read_to_string(&state)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        Ok(Shipper {
            dest,
            store,
            rt,
            delete_after,
            state,
            sent,
        })
    }

    /// Uploads the dumps in `dirs` not sent yet. A failure is said in one line and the dump
    /// kept for the next call; returns whether everything was sent.
    pub fn ship(&mut self, dirs: &[PathBuf], out: &mut impl Write) -> anyhow::Result<bool> {
        let mut all = true;
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut dumps: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "flightrec"))
                .collect();
            dumps.sort();
            for d in dumps {
                let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
                let Some(name) = name else { continue };
                if self.sent.contains(&name) {
                    continue;
                }
                match self
                    .rt
                    .block_on(upload_one(self.store.as_ref(), &self.dest, &d))
                {
                    Ok(key) => {
                        writeln!(
                            out,
                            "uploaded {} to s3://{}/{key}",
                            d.display(),
                            self.dest.bucket
                        )?;
                        out.flush()?;
                        let mut f = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&self.state)
                            .with_context(|| {
                                format!("recording uploads in {}", self.state.display())
                            })?;
                        writeln!(f, "{name}")?;
                        self.sent.insert(name);
                        if self.delete_after {
                            if let Err(e) = std::fs::remove_file(&d) {
                                eprintln!(
                                    "flightrec: uploaded, but cannot delete {}: {e}",
                                    d.display()
                                );
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("flightrec: {e:#} (kept; tried again at the next scan)");
                        all = false;
                    }
                }
            }
        }
        Ok(all)
    }
}

/// Which listed dumps `view s3://…` shows.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub service: Option<String>,
    pub host: Option<String>,
    pub trigger: Option<String>,
    /// ns since the Unix epoch, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl ListFilter {
    fn keeps(&self, r: &flightrec_viewer::RemoteDump) -> bool {
        self.service.as_ref().is_none_or(|s| &r.service == s)
            && self.host.as_ref().is_none_or(|h| &r.host == h)
            && self.trigger.as_ref().is_none_or(|t| &r.trigger == t)
            && self.since.is_none_or(|t| r.time_ns >= t)
            && self.until.is_none_or(|t| r.time_ns <= t)
    }
}

/// Parses a time for `--since`/`--until`: RFC 3339 (`2026-11-23T10:02:00Z`).
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| anyhow::anyhow!("{s}: not a time like 2026-11-23T10:02:00Z ({e})"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64))
}

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

/// Lists the dumps under `url` (from their metadata: one HEAD each, nothing downloaded)
/// that `filter` keeps, each with its size and cache path, and a fetcher that downloads one
/// into its cache path when it is opened.
pub fn list_remote(
    url: &str,
    filter: &ListFilter,
) -> anyhow::Result<(flightrec_viewer::RemoteListing, flightrec_viewer::Fetch)> {
    use futures_util::TryStreamExt as _;
    let dest = Destination::parse(url)?;
    let store = store(&dest)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the lister")?;
    let cache = cache_dir().join(safe(&dest.bucket));
    // The prefix encoded part by part, as `key` encodes it for an upload.
    let prefix = (!dest.prefix.is_empty()).then(|| StorePath::from(dest.prefix.as_str()));
    let listed = rt.block_on(async {
        let objects: Vec<object_store::ObjectMeta> =
            with_tries(&dest, &format!("listing {url}"), request_timeout(), || {
                store.list(prefix.as_ref()).try_collect()
            })
            .await?;
        let mut out = Vec::new();
        for o in objects {
            if !o.location.as_ref().ends_with(".flightrec") {
                continue;
            }
            let head = with_tries(
                &dest,
                &format!("reading {}", o.location),
                request_timeout(),
                || {
                    store.get_opts(
                        &o.location,
                        object_store::GetOptions {
                            head: true,
                            ..Default::default()
                        },
                    )
                },
            )
            .await?;
            let meta = |k: &str| {
                head.attributes
                    .get(&Attribute::Metadata(k.to_string().into()))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            let r = flightrec_viewer::RemoteDump {
                key: o.location.to_string(),
                service: meta("service"),
                host: meta("host"),
                pid: meta("pid").parse().unwrap_or(0),
                trigger: meta("trigger"),
                time_ns: meta("time-ns").parse().unwrap_or(0),
                size: o.size,
            };
            if filter.keeps(&r) {
                let path = cache.join(cache_name(&r.key));
                out.push((r, o.size, path));
            }
        }
        Ok::<_, anyhow::Error>(out)
    })?;
    let fetch: flightrec_viewer::Fetch = Arc::new(move |r: &flightrec_viewer::RemoteDump| {
        fetch_one(store.as_ref(), &dest, r, &cache).map_err(|e| format!("{e:#}"))
    });
    Ok((listed, fetch))
}

/// Downloads one dump into the cache (whole, under a temporary name, then renamed), and
/// trims the cache to its budget.
fn fetch_one(
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

    #[test]
    fn credentials_are_redacted_and_bucket_names_checked() {
        assert_eq!(
            redact("http://minio:Passw0rd@host:9000/x"),
            "http://***@host:9000/x"
        );
        assert_eq!(redact("http://u:p/w@h:1"), "http://***@h:1");
        assert_eq!(redact("http://host:9000"), "http://host:9000");
        for good in ["flight", "keys-0", "a.b-c"] {
            assert!(valid_bucket(good), "{good}");
        }
        for bad in ["bu cket", "ab", "Upper", "-lead", "trail.", &"x".repeat(64)] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }
}
