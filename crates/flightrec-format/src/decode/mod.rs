//! Turns a ring image (a ring file, or the decompressed body of a dump) into a `Recording`.
//!
//! The image is untrusted: every offset and length is checked, every allocation is bounded
//! by the image's size, and damage is counted rather than fatal wherever something useful
//! can still be read.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

pub use crate::damage::Damage;
use crate::layout::{get_u32, get_u64, header, state, ChunkFields, CLOCK_MONOTONIC_NS, FLAG_DUMP};
use crate::layout::{CHUNK_HEADER_SIZE, FORMAT_VERSION, HEADER_SIZE, MAGIC, MAX_CHUNK_SIZE};
use crate::layout::{MAX_FILE_SIZE, MIN_CHUNK_SIZE};
use crate::meta::{parse_meta, Callsite, MetaEntry, ProcessInfo};
use crate::record::{parse_record_head, RecordKind, FLAG_TRUNCATED};
use crate::record::{PARENT_CONTEXTUAL, PARENT_ROOT};
use crate::trigger::Trigger;
use crate::FormatError;

mod record;
mod span_callsites;
mod stream;
pub use record::{Record, SpanStack};
pub use span_callsites::SpanCallsites;
pub use stream::RecordStream;

/// Everything a ring image holds, resolved: names, times, span stacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub process: ProcessInfo,
    /// The image is a dump (a consistent copy) rather than a ring file.
    pub is_dump: bool,
    pub file_size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    /// When the recorder started, ns since the Unix epoch.
    pub start_wall_ns: i64,
    /// What its timestamps were read from ("TSC", "CLOCK_MONOTONIC"), placed on the wall
    /// clock by the anchors taken at start and at the dump.
    pub clock: &'static str,
    pub trigger: Trigger,
    /// How the process ended, when its ring recorded it.
    pub ending: crate::trigger::Ending,
    pub callsites: HashMap<u32, Callsite>,
    /// Threads ordered by index (the order they first wrote).
    pub threads: Vec<ThreadSummary>,
    /// User records (no chunk context records) in global time order; each thread's records
    /// keep the order that thread wrote them.
    pub records: Vec<Record>,
    /// The callsite of every span id seen (in span records or chunk context records), so
    /// span stacks can be named even when a span's creation was overwritten.
    pub span_callsites: SpanCallsites,
    pub damage: Damage,
    /// The history on disk read with the ring, and what its writer counted.
    pub history: crate::history::HistoryCounts,
    /// The modules loaded in the process when it last recorded them (for stacks).
    pub modules: Vec<crate::stacks::LoadedModule>,
    /// Threads' registers and stacks captured for this dump (a crash, a stall, a snapshot
    /// with stacks), with `ts` in ns since the Unix epoch.
    pub stacks: Vec<(Option<i64>, crate::stacks::StackCapture)>,
}

/// One thread's share of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub index: u32,
    pub tid: u64,
    pub name: String,
    /// Records of this thread present in the recording.
    pub records: u64,
    /// Records this thread wrote that are not in the recording because they were
    /// overwritten by newer data, or lay before a hole left by an overwritten chunk. With
    /// `records` and `dropped` it accounts exactly for everything the thread attempted, for
    /// every thread with at least one surviving chunk.
    pub overwritten: u64,
    /// Records this thread could not write at all (no chunk could be claimed, or the
    /// thread-local state was gone).
    pub dropped: u64,
    /// No chunk of this thread survives and the image is intact: newer data took them all,
    /// so its count of overwritten records is unknown.
    pub fully_overwritten: bool,
    /// No chunk of this thread survives and the image is damaged (bad or missing chunks):
    /// its records may have been in those, so they are counted as lost to damage, never as
    /// overwritten.
    pub lost_to_damage: bool,
    /// 1 when a hole was found in this thread's surviving chunks (an overwritten chunk
    /// between two that survived): the records before it are not shown and are counted in
    /// `overwritten`.
    pub gaps: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}

impl ThreadSummary {
    /// How much time the thread's surviving records span, in ns: how far back the ring
    /// reaches for it (what sizes a ring: bytes per record times records per second).
    pub fn covers_ns(&self) -> Option<u64> {
        Some(self.last_ts?.saturating_sub(self.first_ts?).max(0) as u64)
    }
}

/// Converts a tick count to ns since the Unix epoch.
#[derive(Debug, Clone, Copy)]
struct TimeBase {
    ticks0: u64,
    mono0: i128,
    wall0: i128,
    /// ns per tick as num/den.
    num: i128,
    den: i128,
}

impl TimeBase {
    fn to_unix_ns(self, ticks: u64) -> i64 {
        let dt = ticks as i128 - self.ticks0 as i128;
        let ns = dt.saturating_mul(self.num) / self.den;
        let mono = self.mono0.saturating_add(ns);
        let wall = self.wall0.saturating_add(mono - self.mono0);
        wall.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

struct ChunkData {
    seq: u64,
    thread_index: u32,
    os_tid: u64,
    thread_seq_start: u64,
    dropped_before: u64,
    dropped_total: u64,
    /// The chunk's records in the image: the committed bytes up to the first that do not
    /// parse.
    payload: std::ops::Range<usize>,
    /// Records other than chunk context records.
    user_records: u64,
    first_ticks: Option<u64>,
    max_ticks: u64,
}

/// A ring image checked and indexed, with its records not yet materialised.
///
/// `recording` holds everything but the records (its `records` is empty); `records()`
/// streams them in global time order, holding one pending record per thread, so memory
/// stays bounded by the image however many records it holds.
pub struct Scan<'a> {
    image: &'a [u8],
    time: TimeBase,
    /// Per thread (in `recording.threads` order): the payload ranges of its kept chunks,
    /// oldest first.
    runs: Vec<(u32, Vec<std::ops::Range<usize>>)>,
    /// Beside `runs`: each kept chunk's first and last record times (Unix ns) and its
    /// record count.
    activity: Vec<Vec<ChunkActivity>>,
    /// Callsites' messages from the meta log, which their events' `tag::MESSAGE` fields
    /// stand for.
    messages: Arc<HashMap<u32, Box<str>>>,
    pub recording: Recording,
}

/// Where a thread was active, from one chunk's records, without decoding them: what a
/// reader can draw of a recording before (or instead of) decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkActivity {
    /// The chunk's first and last record times, ns since the Unix epoch.
    pub first_ns: i64,
    pub last_ns: i64,
    pub records: u64,
}

/// Decodes a ring image. Fails only when the header itself is unusable; any other damage is
/// counted in `Recording::damage` and the rest is decoded.
pub fn decode(image: &[u8]) -> Result<Recording, FormatError> {
    let mut scan = scan(image)?;
    let records: Vec<Record> = scan.records().collect();
    scan.recording.records = records;
    Ok(scan.recording)
}

/// Where the chunks are in the bytes given to `scan_parts`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChunkLayout<'k> {
    /// The bytes are the file: chunk `i` at `chunks_offset + i * chunk_size`.
    Dense,
    /// The bytes hold the header and meta log (`chunks_offset` bytes), then only the chunks
    /// listed, in that order, back to back; every other chunk of the file was `FREE`.
    Sparse { kept: &'k [u32], tail: &'k [u8] },
}

/// Checks and indexes a ring image without materialising its records (see `Scan`). Fails
/// only when the header itself is unusable.
pub fn scan(image: &[u8]) -> Result<Scan<'_>, FormatError> {
    scan_parts(image, image.len() as u64, ChunkLayout::Dense, None)
}

/// `scan` over an image held in `image` as `layout` says; `logical_len` is how many bytes of
/// the file it stands for (what was read of it). `seal`: the image's seal as checked while
/// it was read; `None` checks it here, over `image`.
pub(crate) fn scan_parts<'a>(
    image: &'a [u8],
    logical_len: u64,
    layout: ChunkLayout<'_>,
    seal: Option<crate::seal::SealCheck>,
) -> Result<Scan<'a>, FormatError> {
    let seal = seal.unwrap_or_else(|| crate::seal::check(image));
    let head_changed = seal.mismatched.contains(&crate::seal::Section::Head);
    match scan_sealed(image, logical_len, layout, seal) {
        // A header that does not add up, in a dump whose header checksum fails: the cause
        // is the corruption, and that is what to say.
        Err(_) if head_changed => Err(FormatError::ChecksumMismatch(
            crate::seal::Section::Head.describe(),
        )),
        other => other,
    }
}

fn scan_sealed<'a>(
    image: &'a [u8],
    logical_len: u64,
    layout: ChunkLayout<'_>,
    seal: crate::seal::SealCheck,
) -> Result<Scan<'a>, FormatError> {
    if image.len() < HEADER_SIZE {
        if image.len() >= 8 && image[..8] != MAGIC {
            return Err(FormatError::NotARing);
        }
        return Err(FormatError::Truncated {
            len: image.len() as u64,
        });
    }
    if image[..8] != MAGIC {
        return Err(FormatError::NotARing);
    }
    let h = |off| get_u64(image, off).unwrap_or(0);
    let h32 = |off| get_u32(image, off).unwrap_or(0);
    let version = h32(header::VERSION);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let file_size = h(header::FILE_SIZE);
    let chunk_size = h32(header::CHUNK_SIZE) as u64;
    let chunk_count = h32(header::CHUNK_COUNT) as u64;
    let meta_offset = h(header::META_OFFSET);
    let meta_capacity = h(header::META_CAPACITY);
    let chunks_offset = h(header::CHUNKS_OFFSET);
    let bad = |what: &'static str| FormatError::BadHeader(what);
    if h32(header::HEADER_SIZE) as usize != HEADER_SIZE {
        return Err(bad("header size"));
    }
    if file_size > MAX_FILE_SIZE {
        return Err(bad("file size too large"));
    }
    if !(MIN_CHUNK_SIZE as u64..=MAX_CHUNK_SIZE as u64).contains(&chunk_size)
        || !chunk_size.is_multiple_of(64)
    {
        return Err(bad("chunk size"));
    }
    if meta_offset != HEADER_SIZE as u64
        || meta_offset.checked_add(meta_capacity) != Some(chunks_offset)
    {
        return Err(bad("meta log bounds"));
    }
    if chunks_offset
        .checked_add(chunk_count.saturating_mul(chunk_size))
        .is_none_or(|end| end > file_size)
    {
        return Err(bad("chunk pool bounds"));
    }

    // What was ever written: the committed part of the meta log, and the chunks claims
    // have reached (claim `c` tries chunk `c % chunk_count`, so chunks at or past the claim
    // cursor of a ring that never wrapped were never written). A cut counts only these
    // bytes as missing, not ring space that held nothing.
    let meta_written = h(header::META_COMMITTED_LEN).min(meta_capacity);
    let chunks_written = h(header::CLAIM_CURSOR).min(chunk_count);
    let unread = |start: u64, len: u64| {
        (start + len)
            .saturating_sub(logical_len.max(start))
            .min(len)
    };
    let mut damage = Damage {
        missing_bytes: if logical_len < file_size {
            unread(meta_offset, meta_written) + unread(chunks_offset, chunks_written * chunk_size)
        } else {
            0
        },
        cut: logical_len < file_size,
        recycled_during_copy: h32(header::DUMP_CHUNKS_RECYCLED) as u64,
        checksum_mismatch: seal.mismatched,
        ..Damage::default()
    };

    // Meta log: the committed part, clamped to its region and to what the image holds.
    let meta_len = h(header::META_COMMITTED_LEN).min(meta_capacity);
    let meta_end = (meta_offset + meta_len).min(image.len() as u64) as usize;
    if meta_offset + meta_len > image.len() as u64 {
        damage.meta_damaged = true;
    }
    let (entries, meta_err) = parse_meta(&image[meta_offset as usize..meta_end]);
    damage.meta_damaged |= meta_err.is_some();
    let mut process = ProcessInfo {
        pid: h32(header::PID),
        ..ProcessInfo::default()
    };
    let mut callsites = HashMap::new();
    let mut messages: HashMap<u32, Box<str>> = HashMap::new();
    let mut thread_names: HashMap<u32, (u64, String)> = HashMap::new();
    for e in entries {
        match e {
            MetaEntry::Process(p) => process = p,
            MetaEntry::Callsite(c) => {
                callsites.insert(c.id, c);
            }
            MetaEntry::Thread(t) => {
                thread_names.insert(t.index, (t.tid, t.name));
            }
            MetaEntry::Message { callsite, text } => {
                messages.insert(callsite, text.into());
            }
        }
    }

    // Chunks: validate each and measure what it holds; records are parsed again, lazily,
    // when streamed.
    // (span, callsite) as met, one a span's run of records in a chunk: sorted once, at
    // the end.
    let mut span_callsites: Vec<(u64, u32)> = Vec::new();
    let payload_cap = chunk_size as usize - CHUNK_HEADER_SIZE;
    let mut chunks: Vec<ChunkData> = Vec::new();
    let mut anchors: Vec<(u64, u64)> = Vec::new();
    for i in 0..chunk_count {
        let located = match layout {
            ChunkLayout::Dense => Some(chunks_offset + i * chunk_size),
            ChunkLayout::Sparse { kept, .. } => u32::try_from(i)
                .ok()
                .and_then(|i| kept.binary_search(&i).ok())
                .map(|k| chunks_offset + k as u64 * chunk_size),
        };
        let c = located.and_then(|off| {
            let off = usize::try_from(off).ok()?;
            image.get(off..off.checked_add(chunk_size as usize)?)
        });
        let Some(c) = c else {
            // Not held: a chunk the sparse reader left out because it was FREE, or one
            // beyond what was read of the file.
            if chunks_offset + (i + 1) * chunk_size > logical_len && i < chunks_written {
                damage.missing_chunks += 1;
            }
            continue;
        };
        let off = located.unwrap_or(0) as usize;
        // `c` is a whole chunk, so its header reads.
        let head = ChunkFields::read(c).unwrap_or_default();
        let word = head.state;
        match state::phase(word) {
            state::FREE => continue,
            state::CLAIMING => {
                damage.claiming_chunks += 1;
                continue;
            }
            _ => {}
        }
        let committed = head.committed_len as usize;
        if committed > payload_cap {
            damage.bad_chunks += 1;
            continue;
        }
        let payload = &c[CHUNK_HEADER_SIZE..CHUNK_HEADER_SIZE + committed];
        let base_ticks = head.claim_ticks;
        let mut pos = 0;
        let (mut user_records, mut first_ticks, mut max_ticks) = (0u64, None, 0u64);
        let mut last_span = 0u64;
        while pos < payload.len() {
            match parse_record_head(&payload[pos..], base_ticks) {
                Ok((r, n)) => {
                    pos += n;
                    if r.kind == RecordKind::Context {
                        span_callsites.extend(r.context.iter().copied());
                        continue;
                    }
                    // A span's records come in runs (new, enter, exit, close): one insert
                    // per run, not per record.
                    if r.span != 0 && r.span != last_span {
                        span_callsites.push((r.span, r.callsite));
                        last_span = r.span;
                    }
                    user_records += 1;
                    first_ticks.get_or_insert(r.ticks);
                    max_ticks = max_ticks.max(r.ticks);
                }
                Err(_) => {
                    damage.bad_chunk_tails += 1;
                    break;
                }
            }
        }
        let (claim_ticks, claim_mono) = (head.claim_ticks, head.claim_mono_ns);
        if claim_mono != 0 {
            anchors.push((claim_ticks, claim_mono));
        }
        chunks.push(ChunkData {
            seq: state::seq(word),
            thread_index: head.thread_index,
            os_tid: head.os_tid,
            thread_seq_start: head.thread_seq_start,
            dropped_before: head.dropped_before,
            dropped_total: head.dropped_total,
            payload: off + CHUNK_HEADER_SIZE..off + CHUNK_HEADER_SIZE + pos,
            user_records,
            first_ticks,
            max_ticks,
        });
    }

    let time = time_base(image, &anchors);
    let trigger = Trigger::read(image, |t| time.to_unix_ns(t));
    let ending = crate::trigger::Ending::read(image, |t| time.to_unix_ns(t));

    // Group chunks per thread, oldest first.
    chunks.sort_by_key(|c| (c.thread_index, c.seq));
    let mut threads: Vec<ThreadSummary> = Vec::new();
    let mut runs = Vec::new();
    let mut activity = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        let index = chunks[i].thread_index;
        let mut j = i;
        while j < chunks.len() && chunks[j].thread_index == index {
            j += 1;
        }
        let mut own = &chunks[i..j];
        // Keep the newest contiguous run of chunks. Recycling is oldest-first per thread
        // only approximately (a claimer can be preempted mid-claim, or pass a chunk while
        // its owner is between claiming the next one and retiring it), so a hole can open
        // in the middle of a thread's history; what lies before the newest hole is counted
        // as lost, never shown out of sequence.
        let mut gaps = 0;
        for k in (1..own.len()).rev() {
            let (prev, c) = (&own[k - 1], &own[k]);
            // Wrapping: the counts come from the file and may be hostile; a wrong sum only
            // reads as a hole.
            let expected = prev
                .thread_seq_start
                .wrapping_add(prev.user_records)
                .wrapping_add(c.dropped_before.saturating_sub(prev.dropped_before));
            if c.thread_seq_start != expected {
                gaps += 1;
                own = &own[k..];
                break;
            }
        }
        let (tid, name) = thread_names
            .remove(&index)
            .unwrap_or_else(|| (own[0].os_tid, format!("thread-{index}")));
        let first = &own[0];
        let records: u64 = own.iter().map(|c| c.user_records).sum();
        // Times are clamped to be non-decreasing per thread and the tick conversion is
        // monotonic, so the first record's ticks and the largest ticks give the range.
        let first_ticks = own.iter().find_map(|c| c.first_ticks);
        let max_ticks = own.iter().map(|c| c.max_ticks).max().unwrap_or(0);
        threads.push(ThreadSummary {
            index,
            tid,
            name,
            records,
            overwritten: first.thread_seq_start.saturating_sub(first.dropped_before),
            dropped: own.iter().map(|c| c.dropped_total).max().unwrap_or(0),
            fully_overwritten: false,
            lost_to_damage: false,
            gaps,
            first_ts: first_ticks.map(|t| time.to_unix_ns(t)),
            last_ts: first_ticks.map(|_| time.to_unix_ns(max_ticks)),
        });
        runs.push((index, own.iter().map(|c| c.payload.clone()).collect()));
        activity.push(
            own.iter()
                .filter_map(|c| {
                    c.first_ticks.map(|f| ChunkActivity {
                        first_ns: time.to_unix_ns(f),
                        last_ns: time.to_unix_ns(c.max_ticks.max(f)),
                        records: c.user_records,
                    })
                })
                .collect(),
        );
        i = j;
    }
    // Threads that registered but have no surviving chunk: overwritten, unless chunks were
    // damaged or missing, which may have been theirs.
    let damaged = damage.bad_chunks > 0 || damage.missing_chunks > 0;
    for (index, (tid, name)) in thread_names {
        threads.push(ThreadSummary {
            index,
            tid,
            name,
            records: 0,
            overwritten: 0,
            dropped: 0,
            fully_overwritten: !damaged,
            lost_to_damage: damaged,
            gaps: 0,
            first_ts: None,
            last_ts: None,
        });
    }
    threads.sort_by_key(|t| t.index);

    // The stack area, after the chunk pool, where the header says it is.
    let stack_slots = h32(header::STACK_SLOTS);
    let stacks_offset = h(header::STACKS_OFFSET);
    let area: &[u8] = if stack_slots == 0
        || stacks_offset != chunks_offset.saturating_add(chunk_count.saturating_mul(chunk_size))
    {
        &[]
    } else {
        match layout {
            ChunkLayout::Dense => image.get(stacks_offset as usize..).unwrap_or(&[]),
            ChunkLayout::Sparse { tail, .. } => tail,
        }
    };
    let (modules, captures) = crate::stacks::parse_area(area, stack_slots);

    Ok(Scan {
        image,
        time,
        runs,
        activity,
        messages: Arc::new(messages),
        recording: Recording {
            process,
            is_dump: h32(header::FLAGS) & FLAG_DUMP != 0,
            file_size,
            chunk_size: chunk_size as u32,
            chunk_count: chunk_count as u32,
            start_wall_ns: time.wall0.clamp(0, i64::MAX as i128) as i64,
            clock: match h32(header::CLOCK_KIND) {
                crate::layout::CLOCK_TSC => "TSC",
                crate::layout::CLOCK_MONOTONIC_NS => "CLOCK_MONOTONIC",
                _ => "unknown",
            },
            trigger,
            ending,
            callsites,
            threads,
            records: Vec::new(),
            span_callsites: span_callsites.into_iter().collect(),
            damage,
            history: crate::history::HistoryCounts {
                attached: h(header::HISTORY_ATTACHED),
                archived: h(header::HISTORY_ARCHIVED),
                skipped: h(header::HISTORY_SKIPPED),
            },
            modules,
            stacks: captures
                .into_iter()
                .map(|c| ((c.ticks != 0).then(|| time.to_unix_ns(c.ticks)), c))
                .collect(),
        },
    })
}

/// Fits ticks to nanoseconds. The start anchor pins the origin; the rate comes from the
/// anchors farthest apart in ticks (chunk claims and the dump anchor), falling back to the
/// rate measured at start-up when the recording is too short to fit one.
fn time_base(image: &[u8], chunk_anchors: &[(u64, u64)]) -> TimeBase {
    let h = |off| get_u64(image, off).unwrap_or(0);
    let ticks0 = h(header::ANCHOR_TICKS);
    let mono0 = h(header::ANCHOR_MONO_NS);
    let wall0 = h(header::ANCHOR_WALL_NS);
    let mut base = TimeBase {
        ticks0,
        mono0: mono0 as i128,
        wall0: wall0 as i128,
        num: 1,
        den: 1,
    };
    if get_u32(image, header::CLOCK_KIND) == Some(CLOCK_MONOTONIC_NS) {
        return base;
    }
    let mut far = (ticks0, mono0);
    let dump = (h(header::DUMP_TICKS), h(header::DUMP_MONO_NS));
    for &(t, m) in chunk_anchors.iter().chain(std::iter::once(&dump)) {
        if t > far.0 && m > far.1 {
            far = (t, m);
        }
    }
    let (dt, dm) = (far.0 - ticks0, far.1 - mono0);
    // A millisecond of wall time pins the rate to better than a part in 10^5.
    if dm >= 1_000_000 && dt > 0 && dt < (1 << 62) && dm < (1 << 62) {
        base.num = dm as i128;
        base.den = dt as i128;
        return base;
    }
    let tps = f64::from_bits(h(header::TICKS_PER_SEC));
    if tps.is_finite() && (1e6..=1e11).contains(&tps) {
        base.num = 1 << 20;
        base.den = ((tps / 1e9) * (1u64 << 20) as f64).round().max(1.0) as i128;
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_image;
    use crate::Value;

    #[test]
    fn a_hand_built_image_decodes_with_names_times_and_stacks() {
        let img = sample_image(3);
        let rec = decode(&img).unwrap();
        assert!(!rec.damage.is_damaged());
        assert_eq!(rec.process.service, "seed");
        assert_eq!(rec.threads.len(), 1);
        assert_eq!(rec.threads[0].name, "main");
        assert_eq!(rec.threads[0].records, 2 * 6);
        assert_eq!(rec.records.len(), 12);
        let ev = rec
            .records
            .iter()
            .find(|r| r.kind == RecordKind::Event)
            .unwrap();
        assert_eq!(ev.spans.as_ref(), &[1024]);
        assert_eq!(ev.parent(), NonZeroU64::new(1024));
        assert_eq!(ev.fields.get(1).unwrap().value, Value::U64(0));
        // Every event reads "hello": stored whole, or (the odd ones) put back from the
        // callsite's message the meta log keeps.
        let messages: Vec<(Value, bool)> = rec
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Event)
            .map(|r| r.fields.get(0).map(|f| (f.value, f.truncated)).unwrap())
            .collect();
        assert_eq!(messages.len(), 6);
        for (i, m) in messages.iter().enumerate() {
            let hello = if i % 3 == 1 {
                Value::Debug("hello".into())
            } else {
                Value::Str("hello".into())
            };
            assert_eq!(*m, (hello, false), "event {i}");
        }
        assert!(rec.records.windows(2).all(|w| w[0].ts <= w[1].ts));
        assert_eq!(rec.callsites[&1].name, "ev");
        assert_eq!(rec.span_callsites[&1025], 2);
    }

    /// A connection span around request spans: every record written inside the connection
    /// between requests shares one stack, however many requests came and went, and the
    /// stacks still say what was entered.
    #[test]
    fn leaving_a_span_goes_back_to_its_parents_stack() {
        use crate::testing::{callsite, numbered_threads, records_image};
        use crate::testing::{TestRecord, TestRecordKind as K};
        let at = |ticks, callsite, kind| TestRecord {
            ticks,
            callsite,
            kind,
        };
        let ev = || K::Event {
            parent: 0,
            fields: Vec::new(),
        };
        let new = |span, parent| K::SpanNew {
            span,
            parent,
            fields: Vec::new(),
        };
        let mut records = vec![at(1, 2, new(1, u64::MAX)), at(2, 2, K::Enter(1))];
        for (k, request) in (10..13).enumerate() {
            let t = 10 + 10 * k as u64;
            records.extend([
                at(t, 1, ev()),
                at(t + 1, 3, new(request, 0)),
                at(t + 2, 3, K::Enter(request)),
                at(t + 3, 1, ev()),
                at(t + 4, 3, K::Exit(request)),
                at(t + 5, 1, ev()),
            ]);
        }
        let callsites = [
            callsite(1, false, "ev", &[]),
            callsite(2, true, "connection", &[]),
            callsite(3, true, "request", &[]),
        ];
        let rec = decode(&records_image(&callsites, &numbered_threads(vec![records]))).unwrap();
        let events: Vec<&Record> = rec
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Event)
            .collect();
        let (inside_requests, between): (Vec<&Record>, Vec<&Record>) =
            events.iter().partition(|r| r.spans.len() == 2);
        assert_eq!((inside_requests.len(), between.len()), (3, 6));
        assert!(between.iter().all(|r| r.spans.as_ref() == [1]));
        assert!(between
            .iter()
            .all(|r| SpanStack::ptr_eq(&r.spans, &between[0].spans)));
        let stacks: Vec<&[u64]> = inside_requests.iter().map(|r| r.spans.as_ref()).collect();
        assert_eq!(stacks, [[1, 10], [1, 11], [1, 12]]);
    }

    /// Found by cargo-fuzz: a huge `thread_seq_start` overflowed the continuity check.
    #[test]
    fn hostile_thread_counters_do_not_overflow() {
        let mut img = sample_image(3);
        let chunks =
            crate::layout::get_u64(&img, crate::layout::header::CHUNKS_OFFSET).unwrap() as usize;
        let at = chunks + crate::layout::chunk::THREAD_SEQ_START;
        img[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let rec = decode(&img).unwrap();
        assert_eq!(rec.threads[0].gaps, 1);
        assert_eq!(rec.records.len(), 6, "only the newest chunk's run is shown");
    }

    #[test]
    fn every_truncation_of_an_image_decodes_or_errors() {
        let img = sample_image(3);
        let step = if cfg!(miri) { 97 } else { 1 };
        for len in (0..img.len()).step_by(step) {
            if let Ok(rec) = decode(&img[..len]) {
                assert!(rec.records.len() <= 12);
            }
        }
    }

    #[test]
    fn every_single_byte_flip_in_the_chunks_decodes_or_errors() {
        let img = sample_image(3);
        let start = crate::layout::HEADER_SIZE;
        let step = if cfg!(miri) { 61 } else { 1 };
        for at in (start..img.len()).step_by(step) {
            let mut b = img.clone();
            b[at] ^= 0x5a;
            if let Ok(rec) = decode(&b) {
                assert!(rec.records.len() <= 12 + 1);
            }
        }
    }
}
