//! Listing a bucket's dumps a page at a time, newest first, with requests that grow with
//! the page and not with the bucket.
//!
//! The key layout does most of the work: `<prefix>/<service>/<yyyy-mm-dd>/<name>` lets a
//! listing ask for the services (one request), each service's days (one each), then only
//! the newest days' keys until a page is filled. A dump's name carries its host, pid, time
//! and trigger, so most filters apply to keys alone. Only the page's dumps are then read,
//! concurrently: each one's summary object (written at upload), or, for a dump uploaded
//! before summaries existed, its metadata (a HEAD).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as StorePath;
use object_store::{Attribute, ObjectStore};
use serde::{Deserialize, Serialize};

use super::{cache, request_timeout, safe, store, with_tries, Destination, DumpFacts};

/// Which listed dumps `view s3://…` shows.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub service: Option<String>,
    pub host: Option<String>,
    pub trigger: Option<String>,
    /// ns since the Unix epoch, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only dumps with a finding of this kind (known for dumps uploaded with `--tables`).
    pub finding: Option<String>,
    /// How many to list, newest first.
    pub limit: usize,
}

impl ListFilter {
    /// What the exact values (from a summary or metadata) must pass.
    fn keeps(&self, r: &flightrec_viewer::RemoteDump, findings: Option<&[String]>) -> bool {
        self.service.as_ref().is_none_or(|s| &r.service == s)
            && self.host.as_ref().is_none_or(|h| &r.host == h)
            && self.trigger.as_ref().is_none_or(|t| &r.trigger == t)
            && self.since.is_none_or(|t| r.time_ns >= t)
            && self.until.is_none_or(|t| r.time_ns <= t)
            && self
                .finding
                .as_ref()
                .is_none_or(|k| findings.is_some_and(|f| f.contains(k)))
    }

    /// What a key already tells (its parts are made safe, so this only narrows).
    fn may_keep(&self, k: &KeyName) -> bool {
        self.host.as_ref().is_none_or(|h| safe(h) == k.host)
            && self.trigger.as_ref().is_none_or(|t| safe(t) == k.trigger)
            && self.since.is_none_or(|t| k.time_ns >= t)
            && self.until.is_none_or(|t| k.time_ns <= t)
    }
}

/// Parses a time for `--since`/`--until`: RFC 3339 (`2026-11-23T10:02:00Z`).
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| anyhow::anyhow!("{s}: not a time like 2026-11-23T10:02:00Z ({e})"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64))
}

/// A dump's summary object, `<dump key less .flightrec>.summary.json`: what a listing
/// shows of it, exactly (keys hold the same facts made safe).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// 1.
    pub version: u32,
    pub service: String,
    pub host: String,
    pub pid: u32,
    pub trigger: String,
    /// When it was taken, ns since the Unix epoch.
    pub time_ns: i64,
    pub size: u64,
    pub records: u64,
    pub threads: u64,
    /// Whether its tables were written under `<prefix>/tables/`.
    pub tables: bool,
    /// The kinds of its findings, once each, when its tables were written (they are
    /// found then); absent otherwise.
    pub findings: Option<Vec<String>>,
}

impl Summary {
    pub fn of(f: &DumpFacts) -> Summary {
        Summary {
            version: 1,
            service: f.service.clone(),
            host: f.host.clone(),
            pid: f.pid,
            trigger: f.reason.clone(),
            time_ns: f.time_ns,
            size: f.size,
            records: f.records,
            threads: f.threads,
            tables: false,
            findings: None,
        }
    }
}

/// What a dump's name says: `<host>-<pid>-<yyyymmdd>T<hhmmss><ns>Z-<trigger>.flightrec`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyName {
    host: String,
    pid: u32,
    time_ns: i64,
    trigger: String,
}

fn parse_name(name: &str) -> Option<KeyName> {
    let stem = name.strip_suffix(".flightrec")?;
    let mut parts = stem.rsplitn(4, '-');
    let trigger = parts.next()?;
    let time = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let host = parts.next()?;
    // 20261123T174322995123456Z
    let b = time.as_bytes();
    if b.len() != 25 || b[8] != b'T' || b[24] != b'Z' {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &time[0..4],
        &time[4..6],
        &time[6..8],
        &time[9..11],
        &time[11..13],
        &time[13..15],
        &time[15..24]
    );
    Some(KeyName {
        host: host.to_string(),
        pid,
        time_ns: parse_time(&rfc).ok()?,
        trigger: trigger.to_string(),
    })
}

/// The newest `filter.limit` dumps under `url` that `filter` keeps, newest first, each with its
/// size and cache path; whether older ones may remain; and a fetcher that downloads one
/// into its cache path when it is opened.
pub fn list_remote(
    url: &str,
    filter: &ListFilter,
) -> anyhow::Result<(
    flightrec_viewer::RemoteListing,
    bool,
    flightrec_viewer::Fetch,
)> {
    let dest = Destination::parse(url)?;
    let store = store(&dest)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the lister")?;
    let cache = cache::cache_dir().join(safe(&dest.bucket));
    let (page, more) = rt.block_on(page(
        store.as_ref(),
        &dest,
        url,
        filter,
        filter.limit.max(1),
    ))?;
    let listed = page
        .into_iter()
        .map(|r| {
            let path = cache.join(cache::cache_name(&r.key));
            let size = r.size;
            (r, size, path)
        })
        .collect();
    let fetch: flightrec_viewer::Fetch = Arc::new(move |r: &flightrec_viewer::RemoteDump| {
        cache::fetch_one(store.as_ref(), &dest, r, &cache).map_err(|e| format!("{e:#}"))
    });
    Ok((listed, more, fetch))
}

/// How many dumps' summaries are read at once.
const CONCURRENT_READS: usize = 16;

/// A dump found by its key, not read yet.
struct Candidate {
    key: StorePath,
    name: KeyName,
    size: u64,
    has_summary: bool,
}

async fn page(
    store: &dyn ObjectStore,
    dest: &Destination,
    url: &str,
    filter: &ListFilter,
    limit: usize,
) -> anyhow::Result<(Vec<flightrec_viewer::RemoteDump>, bool)> {
    let root = (!dest.prefix.is_empty()).then(|| StorePath::from(dest.prefix.as_str()));
    let what = format!("listing {url}");
    let children = |at: Option<StorePath>| {
        let what = what.clone();
        async move {
            let listed = with_tries(dest, &what, request_timeout(), || {
                store.list_with_delimiter(at.as_ref())
            })
            .await?;
            anyhow::Ok(listed)
        }
    };
    // The services, then each one's days (those the time filter allows), newest first.
    let services: Vec<StorePath> = children(root.clone())
        .await?
        .common_prefixes
        .into_iter()
        .filter(|p| {
            let name = p.filename().unwrap_or("");
            filter.service.as_ref().is_none_or(|s| safe(s) == name)
        })
        .collect();
    let first_day = filter.since.map(super::day);
    let last_day = filter.until.map(super::day);
    let day_lists = futures_util::stream::iter(services.into_iter().map(|s| children(Some(s))))
        .buffer_unordered(CONCURRENT_READS)
        .try_collect::<Vec<_>>()
        .await?;
    let mut days: BTreeMap<String, Vec<StorePath>> = BTreeMap::new();
    for listed in day_lists {
        for p in listed.common_prefixes {
            let day = p.filename().unwrap_or("").to_string();
            let is_day = day.len() == 10 && parse_time(&format!("{day}T00:00:00Z")).is_ok();
            if is_day
                && first_day.as_ref().is_none_or(|f| &day >= f)
                && last_day.as_ref().is_none_or(|l| &day <= l)
            {
                days.entry(day).or_default().push(p);
            }
        }
    }
    let mut out = Vec::new();
    // Every key the walk saw, so the fallback below does not read one twice.
    let mut seen: HashSet<String> = HashSet::new();
    for (_, prefixes) in days.into_iter().rev() {
        // One day of every service: its dumps, newest first.
        let lists = futures_util::stream::iter(prefixes.into_iter().map(|p| {
            let what = what.clone();
            async move {
                with_tries(dest, &what, request_timeout(), || {
                    store.list(Some(&p)).try_collect::<Vec<_>>()
                })
                .await
            }
        }))
        .buffer_unordered(CONCURRENT_READS)
        .try_collect::<Vec<_>>()
        .await?;
        let objects: Vec<object_store::ObjectMeta> = lists.into_iter().flatten().collect();
        seen.extend(objects.iter().map(|o| o.location.to_string()));
        let summaries: HashSet<&str> = objects
            .iter()
            .filter_map(|o| o.location.as_ref().strip_suffix(".summary.json"))
            .collect();
        let mut candidates: Vec<Candidate> = objects
            .iter()
            .filter_map(|o| {
                let name = parse_name(o.location.filename()?)?;
                let stem = o.location.as_ref().strip_suffix(".flightrec")?;
                filter.may_keep(&name).then(|| Candidate {
                    key: o.location.clone(),
                    name,
                    size: o.size,
                    has_summary: summaries.contains(stem),
                })
            })
            .collect();
        candidates.sort_by(|a, b| {
            (b.name.time_ns, b.key.as_ref()).cmp(&(a.name.time_ns, a.key.as_ref()))
        });
        if fill(store, dest, filter, limit, &candidates, &mut out).await? {
            return Ok((out, true));
        }
    }
    // A page the layout did not fill: the bucket is small, or holds dumps other tools put
    // under keys of their own. One full listing finds those, newest first.
    let all: Vec<object_store::ObjectMeta> = with_tries(dest, &what, request_timeout(), || {
        store.list(root.as_ref()).try_collect::<Vec<_>>()
    })
    .await?;
    let mut others: Vec<Candidate> = all
        .into_iter()
        .filter(|o| o.location.as_ref().ends_with(".flightrec"))
        .filter(|o| !seen.contains(o.location.as_ref()))
        .map(|o| {
            let time_ns = o.last_modified.timestamp_nanos_opt().unwrap_or_default();
            let name = o.location.filename().and_then(parse_name);
            Candidate {
                name: name.unwrap_or(KeyName {
                    host: String::new(),
                    pid: 0,
                    time_ns,
                    trigger: String::new(),
                }),
                key: o.location,
                size: o.size,
                has_summary: false,
            }
        })
        .collect();
    others.sort_by(|a, b| (b.name.time_ns, b.key.as_ref()).cmp(&(a.name.time_ns, a.key.as_ref())));
    let more = fill(store, dest, filter, limit, &others, &mut out).await?;
    Ok((out, more))
}

/// Reads `candidates` (newest first) a batch at a time into `out` while the filter keeps
/// them, until `out` holds `limit`; says whether it does.
async fn fill(
    store: &dyn ObjectStore,
    dest: &Destination,
    filter: &ListFilter,
    limit: usize,
    candidates: &[Candidate],
    out: &mut Vec<flightrec_viewer::RemoteDump>,
) -> anyhow::Result<bool> {
    for batch in candidates.chunks((limit - out.len()).max(CONCURRENT_READS)) {
        let read = futures_util::stream::iter(batch.iter().map(|c| read_one(store, dest, c)))
            .buffered(CONCURRENT_READS)
            .try_collect::<Vec<_>>()
            .await?;
        for (r, findings) in read {
            if filter.keeps(&r, findings.as_deref()) {
                out.push(r);
                if out.len() == limit {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// A dump's exact facts: its summary, else (uploaded before summaries) its metadata.
async fn read_one(
    store: &dyn ObjectStore,
    dest: &Destination,
    c: &Candidate,
) -> anyhow::Result<(flightrec_viewer::RemoteDump, Option<Vec<String>>)> {
    let what = format!("reading {}", c.key);
    if c.has_summary {
        let key = super::summary_key(&c.key);
        let body = with_tries(dest, &what, request_timeout(), || async {
            store.get(&key).await?.bytes().await
        })
        .await?;
        // A summary that does not parse is no reason to hide its dump: the key's facts stand.
        if let Ok(s) = serde_json::from_slice::<Summary>(&body) {
            let r = flightrec_viewer::RemoteDump {
                key: c.key.to_string(),
                service: s.service,
                host: s.host,
                pid: s.pid,
                trigger: s.trigger,
                time_ns: s.time_ns,
                size: c.size,
            };
            return Ok((r, s.findings));
        }
    }
    let head = with_tries(dest, &what, request_timeout(), || {
        store.get_opts(
            &c.key,
            object_store::GetOptions {
                head: true,
                ..Default::default()
            },
        )
    })
    .await?;
    let meta = |k: &str| {
        head.attributes
            .get(&Attribute::Metadata(k.to_string().into()))
            .map(|v| v.to_string())
    };
    let parts: Vec<String> = c.key.parts().map(|p| p.as_ref().to_string()).collect();
    let service = parts.len().checked_sub(3).map(|i| parts[i].clone());
    let r = flightrec_viewer::RemoteDump {
        key: c.key.to_string(),
        service: meta("service").or(service).unwrap_or_default(),
        host: meta("host").unwrap_or_else(|| c.name.host.clone()),
        pid: meta("pid")
            .and_then(|p| p.parse().ok())
            .unwrap_or(c.name.pid),
        trigger: meta("trigger").unwrap_or_else(|| c.name.trigger.clone()),
        time_ns: meta("time-ns")
            .and_then(|t| t.parse().ok())
            .unwrap_or(c.name.time_ns),
        size: c.size,
    };
    Ok((r, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_name_gives_back_its_facts() {
        let f = DumpFacts {
            service: "checkout".into(),
            host: "web-1.eu".into(),
            pid: 4242,
            reason: "panic".into(),
            time_ns: 1_795_000_000_123_456_789,
            size: 0,
            records: 0,
            threads: 0,
        };
        let name = format!("{}.flightrec", crate::dump_names::dump_name(&f));
        assert_eq!(
            parse_name(&name),
            Some(KeyName {
                host: "web-1.eu".into(),
                pid: 4242,
                time_ns: f.time_ns,
                trigger: "panic".into()
            })
        );
        for bad in [
            "x.flightrec",
            "h-1-20261123T1743Z-panic.flightrec",
            "h-x-20261123T174322995123456Z-panic.flightrec",
            "h-1-20261123T174322995123456Z-panic.summary.json",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
