//! What a recorded span needs on every enter and exit (our span id and its callsite), keyed by
//! tracing's span `Id`, without a lock or an allocation.
//!
//! `tracing-subscriber`'s registry keeps per-span data in extensions: a `RwLock` and a
//! `HashMap` per lookup, and a `Box` per insert. Entering and exiting a span is the per-poll
//! path of every async service, so the layer keeps its own table instead:
//!
//! * Open addressing over a fixed array, linear probing at most `MAX_PROBE` slots from the
//!   key's hash.
//! * A slot's `key` is `EMPTY`, `TOMBSTONE` (a span closed there), `BUSY` (a writer owns
//!   it) or a live span's `Id`. Only the writer that moved the key to `BUSY` (by CAS) writes
//!   the slot's values, then publishes the `Id` with a release store: one writer at a time.
//! * A reader loads the key (acquire), reads the values, then loads the key again. Values
//!   are written only while the key is `BUSY`, so if the key was the same `Id` before and
//!   after, the values are that span's.
//! * `Id`s are unique among live spans, a span is inserted before any thread can enter it,
//!   and removed only when it closes, after which nobody looks it up: a slot never moves.
//! * When no slot is free within `MAX_PROBE`, `insert` says so and the caller keeps the
//!   span elsewhere (the registry's extensions): the table is never the only way to fail.

use super::sync::{fence, AtomicU32, AtomicU64, Ordering};

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = u64::MAX;
const BUSY: u64 = u64::MAX - 1;

/// The bits of a registry id below its generation (see `SpanTable::home`).
const GENERATION_FREE: u64 = (1 << 48) - 1;

/// Slots looked at from a key's home slot before giving up (fewer under loom, whose state
/// space grows with every atomic access).
const MAX_PROBE: usize = if cfg!(loom) { 2 } else { 16 };

/// What a recorded span needs on enter and exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanEntry {
    /// Our span id, unique within the recording.
    pub id: u64,
    pub callsite: u32,
}

struct Slot {
    /// `EMPTY`, `TOMBSTONE`, `BUSY`, or the tracing `Id` of the span held.
    key: AtomicU64,
    /// Written only while `key` is `BUSY`.
    span: AtomicU64,
    callsite: AtomicU32,
}

pub(crate) struct SpanTable {
    slots: Box<[Slot]>,
    mask: usize,
    /// log2 of the slot count.
    bits: u32,
}

impl SpanTable {
    /// A table of `capacity` slots (rounded up to a power of two).
    pub(crate) fn new(capacity: usize) -> SpanTable {
        let n = capacity.next_power_of_two().max(MAX_PROBE);
        SpanTable {
            slots: (0..n)
                .map(|_| Slot {
                    key: AtomicU64::new(EMPTY),
                    span: AtomicU64::new(0),
                    callsite: AtomicU32::new(0),
                })
                .collect(),
            mask: n - 1,
            bits: n.trailing_zeros(),
        }
    }

    fn home(&self, key: u64) -> usize {
        // A registry id packs, from the low bits up, the slot's address in its thread's
        // shard, the shard, and the slot's generation (sharded-slab's layout, at bit 51 and
        // up by default). The home ignores the generation: the next span in the same slot,
        // on the same thread, lands where its predecessor was, in a cache line that thread
        // already holds, while other threads' shards land elsewhere. (If the layout changes,
        // placement gets worse, never wrong.) Fibonacci hashing, taking the product's top
        // bits, which every bit of the key reaches.
        let k = key & GENERATION_FREE;
        let h = (k ^ (k >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> (64 - self.bits)) as usize & self.mask
    }

    fn probe(&self, key: u64) -> impl Iterator<Item = &Slot> {
        let home = self.home(key);
        (0..MAX_PROBE).map(move |i| &self.slots[(home + i) & self.mask])
    }

    /// Keeps `entry` for the live span `key` (a tracing `Id`, never 0). False when no slot
    /// was free near its home: the caller must keep it elsewhere.
    pub(crate) fn insert(&self, key: u64, entry: SpanEntry) -> bool {
        if key == EMPTY || key >= BUSY {
            return false;
        }
        for slot in self.probe(key) {
            let k = slot.key.load(Ordering::Relaxed);
            if k != EMPTY && k != TOMBSTONE {
                continue;
            }
            if slot
                .key
                .compare_exchange(k, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // Seqlock write side: BUSY is visible before the values change.
            fence(Ordering::Release);
            slot.span.store(entry.id, Ordering::Relaxed);
            slot.callsite.store(entry.callsite, Ordering::Relaxed);
            slot.key.store(key, Ordering::Release);
            return true;
        }
        false
    }

    /// The entry of the live span `key`, if this table holds it.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<SpanEntry> {
        for slot in self.probe(key) {
            let k = slot.key.load(Ordering::Acquire);
            if k == EMPTY {
                return None;
            }
            if k != key {
                continue;
            }
            let entry = SpanEntry {
                id: slot.span.load(Ordering::Relaxed),
                callsite: slot.callsite.load(Ordering::Relaxed),
            };
            // Seqlock read side: a writer that changed the values moved the key first.
            fence(Ordering::Acquire);
            if slot.key.load(Ordering::Relaxed) == key {
                return Some(entry);
            }
            return None;
        }
        None
    }

    /// Forgets the span `key` (it closed) and returns its entry, in one probe. Its `Id` may
    /// be given to a new span afterwards.
    #[inline]
    pub(crate) fn take(&self, key: u64) -> Option<SpanEntry> {
        for slot in self.probe(key) {
            let k = slot.key.load(Ordering::Acquire);
            if k == EMPTY {
                return None;
            }
            if k == key {
                // Only the span's own close gets here; its values were published before any
                // thread could enter it, and nobody writes them while the key is live.
                let entry = SpanEntry {
                    id: slot.span.load(Ordering::Relaxed),
                    callsite: slot.callsite.load(Ordering::Relaxed),
                };
                // A plain store: while the key is live no one else writes it (inserts only
                // take EMPTY or TOMBSTONE slots), so no read-modify-write is needed.
                slot.key.store(TOMBSTONE, Ordering::Release);
                return Some(entry);
            }
        }
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_until_removed_and_a_full_neighbourhood_says_so() {
        let t = SpanTable::new(64);
        for k in 1..=40u64 {
            assert!(t.insert(
                k,
                SpanEntry {
                    id: k * 10,
                    callsite: k as u32
                }
            ));
        }
        for k in 1..=40u64 {
            assert_eq!(t.get(k).map(|e| e.id), Some(k * 10));
        }
        assert_eq!(t.get(41), None);
        assert_eq!(t.take(7).map(|e| e.id), Some(70));
        assert_eq!(t.get(7), None);
        assert_eq!(t.take(9).map(|e| e.id), Some(90));
        assert_eq!((t.get(9), t.take(9)), (None, None));
        assert_eq!(t.get(8).map(|e| e.callsite), Some(8));
        // Reused after removal.
        assert!(t.insert(7, SpanEntry { id: 1, callsite: 1 }));
        assert_eq!(t.get(7).map(|e| e.id), Some(1));
        // A table that is full refuses rather than overwrites.
        let small = SpanTable::new(16);
        let inserted = (1..=100u64)
            .filter(|&k| small.insert(k, SpanEntry { id: k, callsite: 0 }))
            .count();
        assert_eq!(inserted, 16);
        assert!((1..=100u64).all(|k| small.get(k).is_none_or(|e| e.id == k)));
    }

    /// Real threads inserting, looking up and removing their own spans while others do the
    /// same in a small table: every lookup of a live span finds exactly its own entry.
    #[test]
    fn concurrent_threads_only_ever_see_their_own_entries() {
        let t = std::sync::Arc::new(SpanTable::new(256));
        let threads: Vec<_> = (0..4u64)
            .map(|th| {
                let t = t.clone();
                std::thread::spawn(move || {
                    let mut kept = 0u64;
                    for round in 0..20_000u64 {
                        let key = 1 + th + 4 * (round % 50);
                        let entry = SpanEntry {
                            id: key * 1000 + round,
                            callsite: key as u32,
                        };
                        if t.insert(key, entry) {
                            kept += 1;
                            for _ in 0..3 {
                                assert_eq!(t.get(key), Some(entry));
                            }
                            assert_eq!(t.take(key), Some(entry));
                        }
                        assert_eq!(t.get(key), None);
                    }
                    kept
                })
            })
            .collect();
        let kept: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(kept > 0);
    }
}
