//! The meta log: an append-only sequence of entries describing the process, its callsites
//! and its threads. Written once per callsite and per thread (never per record), so names
//! are stored once and records refer to them by index.
//!
//! ```text
//! entry = len:u32 kind:u8 payload      (len counts the whole entry)
//! str   = len:u32 bytes
//! Process:  pid:u32 service:str host:str exe:str argc:u32 arg:str*
//! Callsite: id:u32 is_span:u8 level:u8 line:u32 target:str name:str file:str module:str
//!           nfields:u16 field:str*
//! Thread:   index:u32 tid:u64 name:str
//! ```

use crate::layout::{get_u16, get_u32, get_u64};

pub const KIND_PROCESS: u8 = 1;
pub const KIND_CALLSITE: u8 = 2;
pub const KIND_THREAD: u8 = 3;
/// A callsite's message: the text its events' `tag::MESSAGE` fields stand for.
pub const KIND_MESSAGE: u8 = 4;

/// Verbosity, as tracing orders it (TRACE is the most verbose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace = 1,
    Debug = 2,
    Info = 3,
    Warn = 4,
    Error = 5,
}

impl Level {
    pub fn from_u8(v: u8) -> Option<Level> {
        Some(match v {
            1 => Level::Trace,
            2 => Level::Debug,
            3 => Level::Info,
            4 => Level::Warn,
            5 => Level::Error,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// What the process said about itself when the recorder started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub service: String,
    pub host: String,
    pub exe: String,
    pub args: Vec<String>,
}

/// A static place in the code that emits events or creates spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callsite {
    pub id: u32,
    pub is_span: bool,
    pub level: Level,
    pub target: String,
    pub name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub module: Option<String>,
    pub fields: Vec<String>,
}

/// A thread that wrote into the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadEntry {
    pub index: u32,
    pub tid: u64,
    pub name: String,
}

/// One parsed meta entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaEntry {
    Process(ProcessInfo),
    Callsite(Callsite),
    Thread(ThreadEntry),
    /// The message of callsite `callsite`, which its events need not store.
    Message {
        callsite: u32,
        text: String,
    },
}

/// Appends entries to a byte vector; the writer copies the bytes into the ring.
#[derive(Default)]
pub struct MetaBuilder {
    pub bytes: Vec<u8>,
}

impl MetaBuilder {
    fn begin(&mut self, kind: u8) -> usize {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        self.bytes.push(kind);
        start
    }
    fn end(&mut self, start: usize) {
        let len = (self.bytes.len() - start) as u32;
        self.bytes[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        // Names are bounded so a pathological name cannot fill the log.
        let s = &s.as_bytes()[..floor(s, 4096)];
        self.bytes
            .extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(s);
    }

    pub fn process(&mut self, p: &ProcessInfo) {
        let s = self.begin(KIND_PROCESS);
        self.bytes.extend_from_slice(&p.pid.to_le_bytes());
        self.str(&p.service);
        self.str(&p.host);
        self.str(&p.exe);
        let args = &p.args[..p.args.len().min(256)];
        self.bytes
            .extend_from_slice(&(args.len() as u32).to_le_bytes());
        for a in args {
            self.str(a);
        }
        self.end(s);
    }

    pub fn callsite(&mut self, c: &Callsite) {
        let s = self.begin(KIND_CALLSITE);
        self.bytes.extend_from_slice(&c.id.to_le_bytes());
        self.bytes.push(c.is_span as u8);
        self.bytes.push(c.level as u8);
        self.bytes
            .extend_from_slice(&c.line.unwrap_or(0).to_le_bytes());
        self.str(&c.target);
        self.str(&c.name);
        self.str(c.file.as_deref().unwrap_or(""));
        self.str(c.module.as_deref().unwrap_or(""));
        let n = c.fields.len().min(u8::MAX as usize);
        self.bytes.extend_from_slice(&(n as u16).to_le_bytes());
        for f in &c.fields[..n] {
            self.str(f);
        }
        self.end(s);
    }

    /// Callsite `callsite`'s message (at most `record::MAX_VALUE_LEN` bytes: what a record
    /// holds).
    pub fn message(&mut self, callsite: u32, text: &str) {
        let s = self.begin(KIND_MESSAGE);
        self.bytes.extend_from_slice(&callsite.to_le_bytes());
        self.str(&text[..floor(text, crate::record::MAX_VALUE_LEN)]);
        self.end(s);
    }

    pub fn thread(&mut self, t: &ThreadEntry) {
        let s = self.begin(KIND_THREAD);
        self.bytes.extend_from_slice(&t.index.to_le_bytes());
        self.bytes.extend_from_slice(&t.tid.to_le_bytes());
        self.str(&t.name);
        self.end(s);
    }
}

fn floor(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut n = max;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Why the meta log stopped parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaError {
    /// Offset of the entry that did not parse.
    pub offset: usize,
}

/// Parses every complete entry in `b` (the committed part of the meta log). Returns the
/// entries and, if the log is damaged, where parsing stopped.
pub fn parse_meta(b: &[u8]) -> (Vec<MetaEntry>, Option<MetaError>) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        match parse_entry(b, pos) {
            Some((e, len)) => {
                if let Some(e) = e {
                    out.push(e);
                }
                pos += len;
            }
            None => return (out, Some(MetaError { offset: pos })),
        }
    }
    (out, None)
}

/// Parses the entry at `pos`; `Some((None, len))` for an entry of an unknown kind (skipped,
/// so newer writers can add kinds).
fn parse_entry(b: &[u8], pos: usize) -> Option<(Option<MetaEntry>, usize)> {
    let len = get_u32(b, pos)? as usize;
    if len < 5 || pos.checked_add(len)? > b.len() {
        return None;
    }
    let body = &b[pos + 5..pos + len];
    let mut r = Reader { b: body, pos: 0 };
    let e = match b[pos + 4] {
        KIND_PROCESS => {
            let pid = r.u32()?;
            let service = r.str()?;
            let host = r.str()?;
            let exe = r.str()?;
            let argc = r.u32()? as usize;
            if argc > body.len() / 4 {
                return None;
            }
            let mut args = Vec::with_capacity(argc);
            for _ in 0..argc {
                args.push(r.str()?);
            }
            Some(MetaEntry::Process(ProcessInfo {
                pid,
                service,
                host,
                exe,
                args,
            }))
        }
        KIND_CALLSITE => {
            let id = r.u32()?;
            let is_span = r.u8()? != 0;
            let level = Level::from_u8(r.u8()?)?;
            let line = r.u32()?;
            let target = r.str()?;
            let name = r.str()?;
            let file = r.str()?;
            let module = r.str()?;
            let n = r.u16()? as usize;
            if n > body.len() / 4 {
                return None;
            }
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                fields.push(r.str()?);
            }
            Some(MetaEntry::Callsite(Callsite {
                id,
                is_span,
                level,
                target,
                name,
                file: (!file.is_empty()).then_some(file),
                line: (line != 0).then_some(line),
                module: (!module.is_empty()).then_some(module),
                fields,
            }))
        }
        KIND_THREAD => {
            let index = r.u32()?;
            let tid = r.u64()?;
            let name = r.str()?;
            Some(MetaEntry::Thread(ThreadEntry { index, tid, name }))
        }
        KIND_MESSAGE => {
            let callsite = r.u32()?;
            let text = r.str()?;
            Some(MetaEntry::Message { callsite, text })
        }
        _ => None,
    };
    if e.is_some() && r.pos != body.len() {
        return None;
    }
    Some((e, len))
}

struct Reader<'b> {
    b: &'b [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let v = get_u16(self.b, self.pos)?;
        self.pos += 2;
        Some(v)
    }
    fn u32(&mut self) -> Option<u32> {
        let v = get_u32(self.b, self.pos)?;
        self.pos += 4;
        Some(v)
    }
    fn u64(&mut self) -> Option<u64> {
        let v = get_u64(self.b, self.pos)?;
        self.pos += 8;
        Some(v)
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (MetaBuilder, Vec<MetaEntry>) {
        let p = ProcessInfo {
            pid: 42,
            service: "checkout".into(),
            host: "box".into(),
            exe: "/bin/checkout".into(),
            args: vec!["--port".into(), "80".into()],
        };
        let c = Callsite {
            id: 3,
            is_span: true,
            level: Level::Warn,
            target: "app::db".into(),
            name: "query".into(),
            file: Some("src/db.rs".into()),
            line: Some(17),
            module: None,
            fields: vec!["sql".into(), "rows".into()],
        };
        let t = ThreadEntry {
            index: 1,
            tid: 999,
            name: "worker-1".into(),
        };
        let mut m = MetaBuilder::default();
        m.process(&p);
        m.callsite(&c);
        m.thread(&t);
        (
            m,
            vec![
                MetaEntry::Process(p),
                MetaEntry::Callsite(c),
                MetaEntry::Thread(t),
            ],
        )
    }

    #[test]
    fn entries_round_trip() {
        let (m, want) = sample();
        assert_eq!(parse_meta(&m.bytes), (want, None));
    }

    #[test]
    fn a_cut_log_keeps_the_complete_entries() {
        let (m, want) = sample();
        let cut = m.bytes.len() - 3;
        let (got, err) = parse_meta(&m.bytes[..cut]);
        assert_eq!(got, want[..2].to_vec());
        assert!(err.is_some());
    }
}

/// The callsite flightrec's `tokio` feature registers for tokio tasks. A task is recorded
/// as a span of this callsite: created at spawn, entered for each poll on the worker that
/// runs it, exited after the poll, closed when the task terminates. Readers recognise it
/// by target and name.
pub mod tokio_task {
    pub const TARGET: &str = "flightrec::tokio";
    pub const NAME: &str = "task";
    /// The span's fields, in this order: tokio's task id, and where it was spawned.
    pub const FIELDS: [&str; 3] = ["task.id", "spawned.file", "spawned.line"];
    /// Index of `task.id` in `FIELDS`.
    pub const TASK_ID: u8 = 0;

    /// Whether `callsite` is the tokio task callsite.
    pub fn is(callsite: &super::Callsite) -> bool {
        callsite.is_span && callsite.target == TARGET && callsite.name == NAME
    }
}

/// Locks recorded by `tracing_flightrec::sync`. Each lock is a callsite of its own, registered on its
/// first use: target [`lock::TARGET`], name the lock's name, file and line where it was made,
/// `module` its kind ([`lock::MUTEX`], [`lock::RW_LOCK`], [`lock::TOKIO_MUTEX`]), fields
/// [`lock::FIELDS`]. The callsite's id is the lock's id in the recording. What happens to it
/// is an event of that callsite: `op` (one of the `lock::op` values) and, for an acquisition,
/// how long it waited, for a release, how long it was held (`ns`).
pub mod lock {
    pub const TARGET: &str = "flightrec::lock";
    pub const FIELDS: [&str; 2] = ["op", "ns"];
    /// Indexes in `FIELDS`. `op`'s low 8 bits are the operation (`op::*`); above them, a
    /// wait or an acquisition carries the callsite id of the `lock()` call (a
    /// [`super::lock_site`] callsite; 0, or nothing in older recordings, when unknown).
    /// Read it with [`operation`] and [`site`], never by comparing the whole value.
    /// One field for both keeps the uncontended path's record as short as before.
    pub const OP: u8 = 0;
    pub const NS: u8 = 1;
    /// The bits of `op` that hold the operation; the site id is above them.
    pub const OP_BITS: u32 = 8;

    pub const MUTEX: &str = "Mutex";
    pub const RW_LOCK: &str = "RwLock";
    pub const TOKIO_MUTEX: &str = "tokio::Mutex";
    /// A condition variable (`tracing_flightrec::sync::Condvar`): its events are the
    /// `COND_*` and `NOTIFY_*` operations; the mutex it waits with records its own.
    pub const CONDVAR: &str = "Condvar";
    /// A channel (`tracing_flightrec::sync::mpsc`): its events are the `RECV_WAIT`,
    /// `RECEIVED` and `SENT` operations.
    pub const CHANNEL: &str = "Channel";

    /// What happened to a lock.
    pub mod op {
        /// A thread found the lock taken and began to wait (exclusive access).
        pub const WAIT: u64 = 1;
        /// It got the lock; `ns` is how long it waited (0: it was free).
        pub const ACQUIRED: u64 = 2;
        /// It let go; `ns` is how long it held the lock.
        pub const RELEASED: u64 = 3;
        /// The same three for shared (read) access to an `RwLock`.
        pub const WAIT_SHARED: u64 = 4;
        pub const ACQUIRED_SHARED: u64 = 5;
        pub const RELEASED_SHARED: u64 = 6;
        /// A thread began to wait on a condvar (its mutex released); the site is the
        /// `wait` call's.
        pub const COND_WAIT: u64 = 7;
        /// Its wait returned (woken, timed out, or spuriously); `ns` is how long it waited.
        pub const COND_WOKE: u64 = 8;
        /// A thread notified one waiter, or all of them.
        pub const NOTIFY_ONE: u64 = 9;
        pub const NOTIFY_ALL: u64 = 10;
        /// A thread found a channel empty and began to wait to receive; the site is the
        /// `recv` call's.
        pub const RECV_WAIT: u64 = 11;
        /// It received a message; `ns` is how long it waited (absent: nothing to wait for).
        pub const RECEIVED: u64 = 12;
        /// A thread sent a message on a channel; the site is the `send` call's.
        pub const SENT: u64 = 13;
    }

    /// The operation (`op::*`) an `op` field holds.
    pub fn operation(op_field: u64) -> u64 {
        op_field & ((1 << OP_BITS) - 1)
    }

    /// The `lock()` call's site an `op` field holds (a `lock_site` callsite id), if any.
    pub fn site(op_field: u64) -> Option<u32> {
        u32::try_from(op_field >> OP_BITS).ok().filter(|&s| s != 0)
    }

    /// Whether `callsite` is a recorded lock.
    pub fn is(callsite: &super::Callsite) -> bool {
        !callsite.is_span && callsite.target == TARGET
    }
}

/// Where locks are taken: each place in the code that takes a `tracing_flightrec::sync` lock
/// (`#[track_caller]`'s location) is a callsite of its own, with this target and name, its
/// file and line, and no fields; an acquisition names it in its `lock::SITE` field.
pub mod lock_site {
    pub const TARGET: &str = "flightrec::lock_site";
    pub const NAME: &str = "lock taken";

    /// Whether `callsite` is a lock acquisition site.
    pub fn is(callsite: &super::Callsite) -> bool {
        !callsite.is_span && callsite.target == TARGET
    }
}
