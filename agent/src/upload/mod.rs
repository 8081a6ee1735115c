//! `flightrec upload DUMP... --to s3://bucket/prefix`: dumps shipped to S3-compatible object
//! storage, with `object_store`, configured by the standard AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`).
//!
//! Keys are laid out for listing by service, day and host:
//! `<prefix>/<service>/<yyyy-mm-dd>/<host>-<pid>-<time>-<reason>.flightrec`, and the header's
//! fields travel as object metadata. Beside each dump, a small summary object
//! (`….summary.json`, see [`listing::Summary`]) is what a listing reads, a page at a time.
//! With `--tables`, the dump's Parquet tables go under Hive-style partitions,
//! `<prefix>/tables/<table>/service=<s>/date=<yyyy-mm-dd>/<recording id>.parquet`, for
//! engines to query the fleet in place.
//!
//! Each object is one PUT: under its final key it is complete or absent. The dump goes
//! first, then its tables, then its summary. A local dump is deleted only when asked, and
//! only once everything asked for was confirmed.

mod cache;
mod listing;

pub use crate::dump_names::{day, dump_name, facts, safe, DumpFacts};

pub use cache::cache_budget;
pub use listing::{list_remote, parse_time, ListFilter, Summary};

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

/// `<prefix>/<service>/<yyyy-mm-dd>/<host>-<pid>-<time>-<reason>.flightrec`.
///
/// Built once, part by part, as the store's own path: each part of the user's prefix is
/// encoded as the store will hold it (`..` and `%` included), so the key printed, listed,
/// fetched and stored is one and the same.
pub fn key(dest: &Destination, f: &DumpFacts) -> StorePath {
    StorePath::from_iter(dest.prefix.split('/').map(str::to_string).chain([
        safe(&f.service),
        day(f.time_ns),
        format!("{}.flightrec", dump_name(f)),
    ]))
}

/// The summary object's key: the dump's, `.summary.json` for `.flightrec`.
pub fn summary_key(dump_key: &StorePath) -> StorePath {
    let k = dump_key.as_ref();
    let stem = k.strip_suffix(".flightrec").unwrap_or(k);
    // Already the store's encoding: parsed, not encoded again.
    StorePath::parse(format!("{stem}.summary.json")).unwrap_or_else(|_| StorePath::from(stem))
}

/// A table's key: `<prefix>/tables/<table>/service=<s>/date=<yyyy-mm-dd>/<id>.parquet`,
/// the layout engines read as Hive partitions.
pub fn table_key(dest: &Destination, table: &str, f: &DumpFacts, id: &str) -> StorePath {
    StorePath::from_iter(dest.prefix.split('/').map(str::to_string).chain([
        "tables".to_string(),
        table.to_string(),
        format!("service={}", safe(&f.service)),
        format!("date={}", day(f.time_ns)),
        format!("{id}.parquet"),
    ]))
}

/// One PUT of `bytes` to `key`, tried as [`with_tries`] says.
async fn put(
    store: &dyn ObjectStore,
    dest: &Destination,
    what: &str,
    key: &StorePath,
    bytes: Vec<u8>,
    opts: PutOptions,
) -> anyhow::Result<()> {
    let limit = time_for(bytes.len() as u64);
    let payload = PutPayload::from(bytes);
    with_tries(dest, what, limit, || {
        store.put_opts(key, payload.clone(), opts.clone())
    })
    .await?;
    Ok(())
}

/// Uploads one dump (and, with `tables`, its tables), then its summary; returns the dump's
/// key. Each object appears whole or not at all. When the tables cannot be made or sent,
/// the dump stays uploaded, its summary says it has no tables, and the error says so.
pub async fn upload_one(
    store: &dyn ObjectStore,
    dest: &Destination,
    path: &Path,
    tables: bool,
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
    let what = format!("uploading {}", path.display());
    put(store, dest, &what, &key, bytes, opts).await?;
    let mut summary = Summary::of(&f);
    let tables_failed = if tables {
        match upload_tables(store, dest, path, &f).await {
            Ok(kinds) => {
                summary.tables = true;
                summary.findings = Some(kinds);
                None
            }
            Err(e) => Some(e),
        }
    } else {
        None
    };
    let body = serde_json::to_vec(&summary)?;
    let what = format!("uploading the summary of {}", path.display());
    let summary_sent = put(
        store,
        dest,
        &what,
        &summary_key(&key),
        body,
        PutOptions::default(),
    )
    .await;
    if let Some(e) = tables_failed {
        anyhow::bail!(
            "uploaded {} to s3://{}/{key}, but not its tables: {e:#}",
            path.display(),
            dest.bucket
        );
    }
    summary_sent?;
    Ok(key.to_string())
}

/// Writes the dump's tables into a temporary directory (`TMPDIR`), then sends each under
/// its partition; returns the kinds of its findings.
async fn upload_tables(
    store: &dyn ObjectStore,
    dest: &Destination,
    path: &Path,
    f: &DumpFacts,
) -> anyhow::Result<Vec<String>> {
    let image = flightrec_format::read_image(path).with_context(|| path.display().to_string())?;
    let tmp = tempfile::Builder::new()
        .prefix("flightrec-tables-")
        .tempdir()
        .context("making a directory for the tables (TMPDIR)")?;
    let made =
        crate::tables::write_recording(path, &image, tmp.path(), crate::tables::IdFrom::Bucket)?;
    drop(image);
    for w in &made.written {
        let bytes = std::fs::read(&w.path).with_context(|| w.path.display().to_string())?;
        let key = table_key(dest, w.table, f, &made.id);
        let what = format!("uploading the {} table of {}", w.table, path.display());
        put(store, dest, &what, &key, bytes, PutOptions::default()).await?;
    }
    Ok(made.finding_kinds)
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
    tables: bool,
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
        let key = rt.block_on(upload_one(store.as_ref(), &dest, f, tables))?;
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
    tables: bool,
    state: PathBuf,
    sent: std::collections::HashSet<String>,
}

impl Shipper {
    pub fn new(dir: &Path, to: &str, delete_after: bool, tables: bool) -> anyhow::Result<Shipper> {
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
            tables,
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
                    .block_on(upload_one(self.store.as_ref(), &self.dest, &d, self.tables))
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

#[cfg(test)]
mod tests {
    use super::*;

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
