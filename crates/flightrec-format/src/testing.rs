//! Small valid ring images built by hand, for tests, Miri and fuzz seeds. Not a stable API.

use crate::layout::{self, chunk, header, state, ClockAnchor, Geometry, CHUNK_HEADER_SIZE};
use crate::meta::{Callsite, Level, MetaBuilder, ProcessInfo, ThreadEntry};
use crate::record::{tag, Encoder, RecordKind, Tail};

/// A callsite for tests: level INFO, target "t", no file or line.
pub fn callsite(id: u32, is_span: bool, name: &str, fields: &[&str]) -> Callsite {
    Callsite {
        id,
        is_span,
        level: Level::Info,
        target: "t".into(),
        name: name.into(),
        file: None,
        line: None,
        module: None,
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

/// A 7 KiB ring: one thread, two 1 KiB chunks each holding a span with
/// `records_per_chunk` events inside it.
pub fn sample_image(records_per_chunk: u64) -> Vec<u8> {
    let meta_capacity = 1024u64;
    let g = Geometry {
        file_size: layout::HEADER_SIZE as u64 + meta_capacity + 2 * 1024,
        meta_offset: layout::HEADER_SIZE as u64,
        meta_capacity,
        chunks_offset: layout::HEADER_SIZE as u64 + meta_capacity,
        chunk_size: 1024,
        chunk_count: 2,
        stack_slots: 0,
    };
    let mut b = vec![0u8; g.file_size as usize];
    let clock = ClockAnchor {
        kind: layout::CLOCK_TSC,
        ticks: 1000,
        mono_ns: 1,
        wall_ns: 1_700_000_000_000_000_000,
        ticks_per_sec: 3e9,
    };
    g.write_header(&mut b, 42, &clock);
    let mut m = MetaBuilder::default();
    m.process(&ProcessInfo {
        pid: 42,
        service: "seed".into(),
        host: "h".into(),
        exe: "/e".into(),
        args: vec!["a".into()],
    });
    m.callsite(&Callsite {
        id: 1,
        is_span: false,
        level: Level::Info,
        target: "t".into(),
        name: "ev".into(),
        file: Some("f.rs".into()),
        line: Some(3),
        module: None,
        fields: vec!["message".into(), "n".into()],
    });
    m.callsite(&Callsite {
        id: 2,
        is_span: true,
        level: Level::Debug,
        target: "t".into(),
        name: "sp".into(),
        file: None,
        line: None,
        module: None,
        fields: vec!["k".into()],
    });
    m.thread(&ThreadEntry {
        index: 0,
        tid: 7,
        name: "main".into(),
    });
    // Callsite 1's message: its odd events' records only mark it.
    m.message(1, "hello");
    let mo = g.meta_offset as usize;
    b[mo..mo + m.bytes.len()].copy_from_slice(&m.bytes);
    layout::put_u64(&mut b, header::META_COMMITTED_LEN, m.bytes.len() as u64);
    for c in 0..2u32 {
        let off = g.chunk_offset(c) as usize;
        let mut pos = 0;
        let payload = &mut b[off + CHUNK_HEADER_SIZE..off + 1024];
        let base_ticks = 2000 + c as u64 * 1000;
        let mut ticks = base_ticks;
        let mut put = |kind, callsite, f: &dyn Fn(&mut Encoder)| {
            let tail = Tail {
                buf: &mut payload[pos..],
                base_ticks,
                truncate_to_fit: false,
            };
            let mut e = Encoder::new(tail, kind, callsite, ticks);
            f(&mut e);
            if let Some(n) = e.finish() {
                pos += n;
            }
            ticks += 10;
        };
        put(RecordKind::Context, 0, &|e| e.varint(0));
        put(RecordKind::SpanNew, 2, &|e| {
            e.id(1024 + c as u64);
            e.id(0);
            e.field_i64(0, -1)
        });
        put(RecordKind::Enter, 2, &|e| e.id(1024 + c as u64));
        for n in 0..records_per_chunk {
            put(RecordKind::Event, 1, &|e| {
                e.id(0);
                if n % 2 == 1 {
                    e.field_message(0, &format_args!("hello"), Some(b"hello"));
                } else {
                    e.field_bytes(0, tag::STR, b"hello");
                }
                e.field_u64(1, n)
            });
        }
        put(RecordKind::Exit, 2, &|e| e.id(1024 + c as u64));
        let seq_start = c as u64 * (records_per_chunk + 3);
        layout::put_u64(
            &mut b,
            off + chunk::STATE,
            state::pack(c as u64 + 1, state::RETIRED),
        );
        layout::put_u32(&mut b, off + chunk::COMMITTED_LEN, pos as u32);
        layout::put_u64(&mut b, off + chunk::THREAD_SEQ_START, seq_start);
        layout::put_u64(&mut b, off + chunk::CLAIM_TICKS, 2000 + c as u64 * 1000);
        layout::put_u64(&mut b, off + chunk::CLAIM_MONO_NS, 1 + c as u64 * 333);
    }
    // Both chunks were claimed, as a writer's claim cursor would say.
    layout::put_u64(&mut b, header::CLAIM_CURSOR, 2);
    b
}

/// `sample_image(records_per_chunk)` with a stack area of one slot after the chunks: a
/// module list naming `/bin/seed`, and thread 7's capture (registers and 64 bytes of
/// stack), as a stall dump would hold it.
pub fn sample_image_with_stacks(records_per_chunk: u64) -> Vec<u8> {
    use crate::layout::stacks as s;
    let mut b = sample_image(records_per_chunk);
    let pool_end = b.len() as u64;
    b.resize(b.len() + s::area_size(1) as usize, 0);
    let file_size = b.len() as u64;
    layout::put_u64(&mut b, header::FILE_SIZE, file_size);
    layout::put_u64(&mut b, header::STACKS_OFFSET, pool_end);
    layout::put_u32(&mut b, header::STACK_SLOTS, 1);
    let area = pool_end as usize;
    let text = crate::stacks::module_line(&crate::stacks::LoadedModule {
        start: 0x40_0000,
        end: 0x50_0000,
        bias: 0,
        build_id: "0123456789abcdef".into(),
        path: "/bin/seed".into(),
    });
    b[area + s::MODULES_TEXT..area + s::MODULES_TEXT + text.len()].copy_from_slice(text.as_bytes());
    layout::put_u64(&mut b, area + s::MODULES_LEN, text.len() as u64);
    let slot = area + s::MODULES_SIZE;
    layout::put_u64(&mut b, slot + s::STATE, s::DONE);
    layout::put_u64(&mut b, slot + s::TID, 7);
    layout::put_u32(&mut b, slot + s::REASON, s::REASON_STALL);
    layout::put_u64(&mut b, slot + s::TICKS, 2500);
    layout::put_u32(&mut b, slot + s::ARCH, s::ARCH_X86_64);
    layout::put_u32(&mut b, slot + s::REG_COUNT, 23);
    layout::put_u64(&mut b, slot + s::REGS + 8 * s::X86_64_RIP, 0x40_1234);
    layout::put_u64(&mut b, slot + s::REGS + 8 * s::X86_64_RSP, 0x7fff_0000);
    layout::put_u64(&mut b, slot + s::STACK_START, 0x7fff_0000);
    layout::put_u64(&mut b, slot + s::STACK_LEN, 64);
    b[slot + s::NAME..slot + s::NAME + 4].copy_from_slice(b"main");
    b
}

/// One event for [`events_image`]: at `ticks` (ns, the image's clock counts ns from
/// [`EVENTS_WALL_NS`]), of `callsite`, with unsigned fields by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestEvent {
    pub ticks: u64,
    pub callsite: u32,
    pub fields: Vec<(u8, u64)>,
}

/// A field value of a [`TestRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestValue {
    U64(u64),
    Str(String),
}

/// What a [`TestRecord`] is, with what its kind carries. Span ids are the writer's: unique
/// within the recording, never 0 nor `u64::MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestRecordKind {
    /// An event inside `parent` (0: the thread's current span).
    Event {
        parent: u64,
        fields: Vec<(u8, TestValue)>,
    },
    /// A span created under `parent` (`u64::MAX`: a root).
    SpanNew {
        span: u64,
        parent: u64,
        fields: Vec<(u8, TestValue)>,
    },
    Enter(u64),
    Exit(u64),
    Close(u64),
}

/// One record for [`records_image`]: at `ticks` (ns from [`EVENTS_WALL_NS`]), of
/// `callsite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub ticks: u64,
    pub callsite: u32,
    pub kind: TestRecordKind,
}

impl From<&TestEvent> for TestRecord {
    fn from(e: &TestEvent) -> Self {
        TestRecord {
            ticks: e.ticks,
            callsite: e.callsite,
            kind: TestRecordKind::Event {
                parent: 0,
                fields: e
                    .fields
                    .iter()
                    .map(|&(i, v)| (i, TestValue::U64(v)))
                    .collect(),
            },
        }
    }
}

/// Wall-clock time (ns since the Unix epoch) of tick 0 in [`events_image`].
pub const EVENTS_WALL_NS: u64 = 1_700_000_000_000_000_000;

/// A ring image holding `threads`' events, one chunk per thread, described by `callsites`:
/// a recording of any shape of events, for property tests across readers. Each thread's
/// events must fit a 64 KiB chunk.
pub fn events_image(callsites: &[Callsite], threads: &[(ThreadEntry, Vec<TestEvent>)]) -> Vec<u8> {
    let threads: Vec<(ThreadEntry, Vec<TestRecord>)> = threads
        .iter()
        .map(|(t, events)| (t.clone(), events.iter().map(TestRecord::from).collect()))
        .collect();
    records_image(callsites, &threads)
}

/// Each thread's records with its entry: thread `k` is named `t{k}`, with tid `100 + k`.
pub fn numbered_threads(per_thread: Vec<Vec<TestRecord>>) -> Vec<(ThreadEntry, Vec<TestRecord>)> {
    per_thread
        .into_iter()
        .enumerate()
        .map(|(k, records)| {
            let entry = ThreadEntry {
                index: k as u32,
                tid: 100 + k as u64,
                name: format!("t{k}"),
            };
            (entry, records)
        })
        .collect()
}

/// A ring image holding `threads`' records (events and span lives), one chunk per thread,
/// described by `callsites`. Each thread starts outside any span and its records must fit
/// a 64 KiB chunk.
pub fn records_image(
    callsites: &[Callsite],
    threads: &[(ThreadEntry, Vec<TestRecord>)],
) -> Vec<u8> {
    const CHUNK: u64 = 64 * 1024;
    let meta_capacity = 16 * 1024u64;
    let count = threads.len().max(1) as u64;
    let g = Geometry {
        file_size: layout::HEADER_SIZE as u64 + meta_capacity + count * CHUNK,
        meta_offset: layout::HEADER_SIZE as u64,
        meta_capacity,
        chunks_offset: layout::HEADER_SIZE as u64 + meta_capacity,
        chunk_size: CHUNK as u32,
        chunk_count: count as u32,
        stack_slots: 0,
    };
    let mut b = vec![0u8; g.file_size as usize];
    let clock = ClockAnchor {
        kind: layout::CLOCK_TSC,
        ticks: 0,
        mono_ns: 0,
        wall_ns: EVENTS_WALL_NS,
        ticks_per_sec: 1e9,
    };
    g.write_header(&mut b, 42, &clock);
    let mut m = MetaBuilder::default();
    m.process(&ProcessInfo {
        pid: 42,
        service: "events".into(),
        host: "h".into(),
        exe: "/e".into(),
        args: Vec::new(),
    });
    for c in callsites {
        m.callsite(c);
    }
    for (t, _) in threads {
        m.thread(t);
    }
    let mo = g.meta_offset as usize;
    assert!(m.bytes.len() as u64 <= meta_capacity, "meta fits");
    b[mo..mo + m.bytes.len()].copy_from_slice(&m.bytes);
    layout::put_u64(&mut b, header::META_COMMITTED_LEN, m.bytes.len() as u64);
    for (c, (thread, records)) in threads.iter().enumerate() {
        let off = g.chunk_offset(c as u32) as usize;
        let first_ticks = records.first().map_or(0, |e| e.ticks);
        let payload = &mut b[off + CHUNK_HEADER_SIZE..off + CHUNK as usize];
        let mut pos = 0;
        let tail = Tail {
            buf: &mut payload[pos..],
            base_ticks: first_ticks,
            truncate_to_fit: false,
        };
        let mut e = Encoder::new(tail, RecordKind::Context, 0, first_ticks);
        e.varint(0);
        pos += e.finish().expect("a context record fits");
        for r in records {
            let tail = Tail {
                buf: &mut payload[pos..],
                base_ticks: first_ticks,
                truncate_to_fit: false,
            };
            pos += encode_test_record(tail, r).expect("a thread's records fit");
        }
        layout::put_u64(
            &mut b,
            off + chunk::STATE,
            state::pack(c as u64 + 1, state::RETIRED),
        );
        layout::put_u32(&mut b, off + chunk::COMMITTED_LEN, pos as u32);
        layout::put_u32(&mut b, off + chunk::THREAD_INDEX, thread.index);
        layout::put_u64(&mut b, off + chunk::OS_TID, thread.tid);
        layout::put_u64(&mut b, off + chunk::THREAD_SEQ_START, 0);
        layout::put_u64(&mut b, off + chunk::CLAIM_TICKS, first_ticks);
        layout::put_u64(&mut b, off + chunk::CLAIM_MONO_NS, first_ticks);
    }
    b
}

fn encode_test_record(buf: Tail<'_>, r: &TestRecord) -> Option<usize> {
    let fields = |e: &mut Encoder, fields: &[(u8, TestValue)]| {
        for (i, v) in fields {
            match v {
                TestValue::U64(v) => e.field_u64(*i as usize, *v),
                TestValue::Str(s) => e.field_bytes(*i as usize, tag::STR, s.as_bytes()),
            }
        }
    };
    let (kind, span) = match &r.kind {
        TestRecordKind::Event { parent, fields: f } => {
            let mut e = Encoder::new(buf, RecordKind::Event, r.callsite, r.ticks);
            e.id(*parent);
            fields(&mut e, f);
            return e.finish();
        }
        TestRecordKind::SpanNew {
            span,
            parent,
            fields: f,
        } => {
            let mut e = Encoder::new(buf, RecordKind::SpanNew, r.callsite, r.ticks);
            e.id(*span);
            e.id(*parent);
            fields(&mut e, f);
            return e.finish();
        }
        TestRecordKind::Enter(s) => (RecordKind::Enter, *s),
        TestRecordKind::Exit(s) => (RecordKind::Exit, *s),
        TestRecordKind::Close(s) => (RecordKind::Close, *s),
    };
    let mut e = Encoder::new(buf, kind, r.callsite, r.ticks);
    e.id(span);
    e.finish()
}
