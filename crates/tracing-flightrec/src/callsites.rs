//! Callsite ids: each `&'static Metadata` gets a small integer, written once to the meta
//! log with its level, target, name, file, line and field names. Records carry only the id.
//!
//! Lookups (once per record) go through a fixed-size open-addressing table keyed by the
//! metadata's address: a few atomic loads, no lock. Inserts are rare (once per callsite)
//! and serialised by a mutex.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use flightrec_format::meta::{Callsite, Level, MetaBuilder};
use tracing_core::Metadata;

use crate::ring::Ring;

const TABLE_SIZE: usize = 4096;
const MAX_PROBES: usize = 32;
/// Callsites (by id, the first this many) whose message can be kept once in the meta log.
const MESSAGE_SLOTS: usize = 4096;

pub(crate) struct CallsiteTable {
    /// Metadata address, 0 when empty. Written once (release) after `ids`.
    keys: Box<[AtomicUsize]>,
    ids: Box<[AtomicU32]>,
    /// Callsites that did not fit the table (ids come from `Ring::next_callsite`).
    slow: Mutex<HashMap<usize, u32>>,
    /// `messages[id]`: the message callsite `id`'s events need not store (see
    /// `record::tag::MESSAGE`), set once its meta log entry is written, so a record that
    /// leaves its message out always comes after the entry that holds it.
    messages: Box<[OnceLock<Box<[u8]>>]>,
    /// Taken (without waiting) by the one writer that keeps a message; another writer
    /// meanwhile stores its message whole.
    keeping_message: Mutex<()>,
}

impl CallsiteTable {
    pub(crate) fn new() -> CallsiteTable {
        CallsiteTable {
            keys: (0..TABLE_SIZE).map(|_| AtomicUsize::new(0)).collect(),
            ids: (0..TABLE_SIZE).map(|_| AtomicU32::new(0)).collect(),
            slow: Mutex::new(HashMap::new()),
            messages: (0..MESSAGE_SLOTS).map(|_| OnceLock::new()).collect(),
            keeping_message: Mutex::new(()),
        }
    }

    /// Where callsite `id`'s message is kept, when it can be.
    #[inline]
    pub(crate) fn message(&self, id: u32) -> Option<&OnceLock<Box<[u8]>>> {
        self.messages.get(id as usize)
    }

    /// Makes `text`, the first message an event of callsite `id` wrote whole, the
    /// callsite's message: written to the meta log, then published, so later events of the
    /// callsite with the same text store a mark instead. Once per callsite, and never
    /// waiting: when another writer is at it, or the meta log has less than a quarter
    /// free (callsites and threads need it more), the message stays unkept.
    #[cold]
    pub(crate) fn keep_message(&self, id: u32, text: &[u8], ring: &Ring) {
        let (Some(slot), Ok(text)) = (self.message(id), std::str::from_utf8(text)) else {
            return;
        };
        let Ok(_keeping) = self.keeping_message.try_lock() else {
            return;
        };
        if slot.get().is_some() {
            return;
        }
        let mut m = MetaBuilder::default();
        m.message(id, text);
        if ring.append_meta_leaving(&m.bytes, ring.geometry.meta_capacity / 4) {
            let _ = slot.set(text.as_bytes().into());
        }
    }

    #[inline]
    fn slot(key: usize) -> usize {
        // Fibonacci hashing of the address; metadata statics are 8-aligned.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - 12)) & (TABLE_SIZE - 1)
    }

    /// The id of `meta`, registering it (and writing it to the meta log) on first sight.
    #[inline]
    pub(crate) fn id(&self, meta: &'static Metadata<'static>, ring: &Ring) -> u32 {
        let key = meta as *const Metadata<'static> as usize;
        let mut i = Self::slot(key);
        for _ in 0..MAX_PROBES {
            let k = self.keys[i].load(Ordering::Acquire);
            if k == key {
                return self.ids[i].load(Ordering::Relaxed);
            }
            if k == 0 {
                break;
            }
            i = (i + 1) & (TABLE_SIZE - 1);
        }
        self.register(meta, ring)
    }

    #[cold]
    fn register(&self, meta: &'static Metadata<'static>, ring: &Ring) -> u32 {
        let key = meta as *const Metadata<'static> as usize;
        let mut slow = self.slow.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = slow.get(&key) {
            return id;
        }
        let id = ring.next_callsite.fetch_add(1, Ordering::Relaxed);
        slow.insert(key, id);
        let mut m = MetaBuilder::default();
        m.callsite(&describe(id, meta));
        ring.append_meta(&m.bytes);
        // Publish in the lock-free table if there is room within the probe window.
        let mut i = Self::slot(key);
        for _ in 0..MAX_PROBES {
            if self.keys[i].load(Ordering::Relaxed) == 0 {
                self.ids[i].store(id, Ordering::Relaxed);
                self.keys[i].store(key, Ordering::Release);
                break;
            }
            i = (i + 1) & (TABLE_SIZE - 1);
        }
        id
    }
}

impl CallsiteTable {
    /// Registers a callsite of flightrec's own (no tracing metadata behind it), for records
    /// written without going through tracing. Returns its id.
    pub(crate) fn synthetic(&self, ring: &Ring, mut callsite: Callsite) -> u32 {
        callsite.id = ring.next_callsite.fetch_add(1, Ordering::Relaxed);
        let mut m = MetaBuilder::default();
        m.callsite(&callsite);
        ring.append_meta(&m.bytes);
        callsite.id
    }
}

fn describe(id: u32, meta: &Metadata<'_>) -> Callsite {
    let level = match *meta.level() {
        tracing_core::Level::TRACE => Level::Trace,
        tracing_core::Level::DEBUG => Level::Debug,
        tracing_core::Level::INFO => Level::Info,
        tracing_core::Level::WARN => Level::Warn,
        tracing_core::Level::ERROR => Level::Error,
    };
    Callsite {
        id,
        is_span: meta.is_span(),
        level,
        target: meta.target().to_string(),
        name: meta.name().to_string(),
        file: meta.file().map(str::to_string),
        line: meta.line(),
        module: meta.module_path().map(str::to_string),
        fields: meta.fields().iter().map(|f| f.name().to_string()).collect(),
    }
}

/// Lock acquisition sites (`#[track_caller]` locations), keyed by the location's address
/// (a static per call site): `Ring::generation << 32 | callsite id` in the ring that last
/// registered it, 0 while empty. Process-wide, as the locks are; a site used with another
/// ring is registered again there.
struct SiteTable {
    keys: [AtomicUsize; TABLE_SIZE],
    ids: [AtomicU64; TABLE_SIZE],
}

static SITES: SiteTable = SiteTable {
    keys: [const { AtomicUsize::new(0) }; TABLE_SIZE],
    ids: [const { AtomicU64::new(0) }; TABLE_SIZE],
};

/// The callsite id of lock acquisition site `at` in `ring`, registering it (a
/// `lock_site` callsite in the meta log) on first sight there; 0 when the table is full.
#[inline]
pub(crate) fn site_id(at: &'static Location<'static>, ring: &Ring) -> u32 {
    let key = at as *const Location<'static> as usize;
    let mut i = CallsiteTable::slot(key);
    for _ in 0..MAX_PROBES {
        let k = SITES.keys[i].load(Ordering::Acquire);
        if k == key {
            let v = SITES.ids[i].load(Ordering::Relaxed);
            if v >> 32 == u64::from(ring.generation) {
                return v as u32;
            }
            return register_site(i, at, ring);
        }
        if k == 0 {
            return claim_site(i, at, ring);
        }
        i = (i + 1) & (TABLE_SIZE - 1);
    }
    0
}

#[cold]
fn claim_site(slot: usize, at: &'static Location<'static>, ring: &Ring) -> u32 {
    let key = at as *const Location<'static> as usize;
    match SITES.keys[slot].compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => register_site(slot, at, ring),
        // Another site took the slot first (or this one, from another thread): look again.
        Err(_) => site_id(at, ring),
    }
}

/// Registers `at` in `ring` and remembers it in `slot`. Two threads doing so at once each
/// write a callsite for the place: both say the same, and one is remembered.
#[cold]
fn register_site(slot: usize, at: &'static Location<'static>, ring: &Ring) -> u32 {
    let id = ring.next_callsite.fetch_add(1, Ordering::Relaxed);
    let mut m = MetaBuilder::default();
    m.callsite(&Callsite {
        id,
        is_span: false,
        level: Level::Trace,
        target: flightrec_format::meta::lock_site::TARGET.into(),
        name: flightrec_format::meta::lock_site::NAME.into(),
        file: Some(at.file().into()),
        line: Some(at.line()),
        module: None,
        fields: Vec::new(),
    });
    ring.append_meta(&m.bytes);
    SITES.ids[slot].store(
        u64::from(ring.generation) << 32 | u64::from(id),
        Ordering::Relaxed,
    );
    id
}
