//! What a dump is called: the facts its header gives (service, host, pid, trigger, time),
//! its name (`<host>-<pid>-<yyyymmdd>T<hhmmss+ns>Z-<trigger>`, the recording id of its
//! tables) and its day. Upload keys and table files are named from here, so the two agree.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

/// What the key and the metadata of a dump say, from its header.
pub struct DumpFacts {
    pub service: String,
    pub host: String,
    pub pid: u32,
    pub reason: String,
    /// When it was taken (the trigger, else the recorder's start), ns since the Unix epoch.
    pub time_ns: i64,
    pub size: u64,
    /// Records and threads it holds, as its chunks count them.
    pub records: u64,
    pub threads: u64,
}

impl DumpFacts {
    /// What a recording's header says (its size as the header states it).
    pub fn of(r: &flightrec_format::Recording) -> DumpFacts {
        DumpFacts {
            service: r.process.service.clone(),
            host: r.process.host.clone(),
            pid: r.process.pid,
            reason: r.trigger.reason.slug().to_string(),
            time_ns: if r.trigger.wall_ns > 0 {
                r.trigger.wall_ns
            } else {
                r.start_wall_ns
            },
            size: r.file_size,
            records: r.threads.iter().map(|t| t.records).sum(),
            threads: r.threads.len() as u64,
        }
    }
}

pub fn facts(path: &Path) -> anyhow::Result<DumpFacts> {
    let head = flightrec_format::read_head(path).with_context(|| path.display().to_string())?;
    let scan = flightrec_format::scan(&head).with_context(|| path.display().to_string())?;
    let size = std::fs::metadata(path)
        .with_context(|| path.display().to_string())?
        .len();
    Ok(DumpFacts {
        size,
        ..DumpFacts::of(&scan.recording)
    })
}

/// A key part made safe: anything but letters, digits, `.`, `_` and `-` becomes `_`.
pub fn safe(s: &str) -> String {
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

/// `yyyy-mm-dd` (UTC) of a time in ns since the Unix epoch.
pub fn day(time_ns: i64) -> String {
    stamp(time_ns)[..10].to_string()
}

/// RFC 3339 with nanoseconds: `2026-11-23T17:43:22.995123456Z`.
fn stamp(time_ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_nanos(time_ns.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

/// A dump's name, without extension: `<host>-<pid>-<yyyymmdd>T<hhmmss+ns>Z-<trigger>`.
/// To the nanosecond: dumps of one process within one millisecond keep names of their own
/// (an object under a taken key would replace another dump).
pub fn dump_name(f: &DumpFacts) -> String {
    let stamp = stamp(f.time_ns);
    let time = stamp[11..].replace([':', '.'], "");
    format!(
        "{}-{}-{}T{}-{}",
        safe(&f.host),
        f.pid,
        stamp[..10].replace('-', ""),
        time,
        safe(&f.reason)
    )
}
