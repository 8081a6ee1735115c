//! Model-checked tests of the chunk protocol. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p tracing-flightrec --lib --release`.
//!
//! Payload bytes are modelled as relaxed atomic words: the protocol must make a reader's
//! accepted copy consistent without relying on any ordering of the payload accesses
//! themselves, which is exactly what the real (volatile, non-atomic) copy gets.

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::protocol::{self, ChunkHeader, ChunkPool, Claimant, Claimed, CopyGate, ReadOutcome};
use flightrec_format::layout::state;

struct Pool {
    chunks: Vec<ChunkHeader>,
    /// Two payload words per chunk.
    payload: Vec<[AtomicU64; 2]>,
    cursor: AtomicU64,
    gate: AtomicU64,
}

impl Pool {
    fn new(n: usize) -> Pool {
        Pool {
            chunks: (0..n).map(|_| ChunkHeader::new()).collect(),
            payload: (0..n)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            cursor: AtomicU64::new(0),
            gate: AtomicU64::new(0),
        }
    }

    /// The owner writes a record whose two words both name its claim, then commits it.
    fn write_record(&self, c: Claimed) {
        let p = &self.payload[c.index as usize];
        p[0].store(c.seq, Ordering::Relaxed);
        p[1].store(c.seq, Ordering::Relaxed);
        protocol::commit(self.chunk(c.index), 16);
    }
}

impl ChunkPool for Pool {
    fn chunk_count(&self) -> u64 {
        self.chunks.len() as u64
    }
    fn chunk(&self, index: u64) -> &ChunkHeader {
        &self.chunks[index as usize]
    }
    fn cursor(&self) -> &AtomicU64 {
        &self.cursor
    }
    fn copy_gate(&self) -> &AtomicU64 {
        &self.gate
    }
}

fn who(thread_index: u32) -> Claimant {
    Claimant {
        thread_index,
        os_tid: thread_index as u64,
        thread_seq_start: 0,
        dropped_before: 0,
        ticks: 1,
        mono_ns: 1,
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// A reader racing a recycler either throws its copy away or gets one in which every
/// committed byte belongs to the claim its header names.
#[test]
fn a_reader_never_accepts_a_copy_torn_by_a_recycle() {
    model(|| {
        let pool = Arc::new(Pool::new(1));
        let first = protocol::claim(&*pool, &who(0)).unwrap();
        pool.write_record(first);
        protocol::retire(pool.chunk(first.index), first);

        let p = pool.clone();
        let recycler = thread::spawn(move || {
            if let Some(c) = protocol::claim(&*p, &who(1)) {
                p.write_record(c);
            }
        });
        let mut words = [0u64; 2];
        let got = protocol::read(pool.chunk(0), |len| {
            if len >= 16 {
                words[0] = pool.payload[0][0].load(Ordering::Relaxed);
                words[1] = pool.payload[0][1].load(Ordering::Relaxed);
            }
        });
        match got {
            Ok(view) => {
                let seq = state::seq(view.state);
                if view.committed_len >= 16 {
                    assert_eq!(words, [seq, seq], "accepted a torn copy");
                }
                assert_eq!(view.thread_index as u64 + 1, seq, "header of another claim");
            }
            Err(ReadOutcome::Recycled) | Err(ReadOutcome::Empty) | Err(ReadOutcome::Busy) => {}
        }
        recycler.join().unwrap();
    });
}

/// Two threads claiming at once never get the same chunk.
#[test]
fn concurrent_claims_get_distinct_chunks() {
    model(|| {
        let pool = Arc::new(Pool::new(2));
        let p = pool.clone();
        let other = thread::spawn(move || protocol::claim(&*p, &who(1)));
        let mine = protocol::claim(&*pool, &who(0));
        let theirs = other.join().unwrap();
        let (a, b) = (mine.unwrap(), theirs.unwrap());
        assert_ne!(a.index, b.index);
        assert_ne!(a.seq, b.seq);
    });
}

/// A chunk that is some thread's current chunk is never taken from it, however hard
/// another thread churns through the pool.
#[test]
fn an_active_chunk_is_never_recycled() {
    model(|| {
        let pool = Arc::new(Pool::new(2));
        let idle = protocol::claim(&*pool, &who(0)).unwrap();
        pool.write_record(idle);
        let p = pool.clone();
        let busy = thread::spawn(move || {
            let mut last: Option<Claimed> = None;
            for _ in 0..2 {
                if let Some(c) = protocol::claim(&*p, &who(1)) {
                    assert_ne!(c.index, idle.index);
                    if let Some(old) = last.replace(c) {
                        protocol::retire(p.chunk(old.index), old);
                    }
                }
            }
        });
        busy.join().unwrap();
        let view = protocol::read(pool.chunk(idle.index), |_| {}).unwrap();
        assert_eq!(state::seq(view.state), idle.seq);
        assert_eq!(view.committed_len, 16);
    });
}

/// A copier that closes the gate and copies oldest first never has a listed chunk
/// recycled under it, even by a claim racing with the close, and every copy is whole. A
/// claimer may hold a protected chunk for a moment (`Busy`) before handing it back.
#[test]
fn a_claim_racing_the_gate_never_recycles_an_uncopied_chunk() {
    model(|| {
        let pool = Arc::new(Pool::new(2));
        for t in 0..2 {
            let c = protocol::claim(&*pool, &who(t)).unwrap();
            pool.write_record(c);
            protocol::retire(pool.chunk(c.index), c);
        }
        let p = pool.clone();
        let claimer = thread::spawn(move || {
            if let Some(c) = protocol::claim(&*p, &who(2)) {
                p.write_record(c);
            }
        });
        let gate = CopyGate::close(&*pool).unwrap();
        let mut order: Vec<(u64, u64)> = (0..2)
            .filter_map(|i| {
                let w = pool.chunk(i).state.load(Ordering::Acquire);
                (state::phase(w) == state::RETIRED).then_some((state::seq(w), i))
            })
            .collect();
        order.sort_unstable();
        for (seq, i) in order {
            loop {
                let mut words = [0u64; 2];
                match protocol::read(pool.chunk(i), |len| {
                    if len >= 16 {
                        words[0] = pool.payload[i as usize][0].load(Ordering::Relaxed);
                        words[1] = pool.payload[i as usize][1].load(Ordering::Relaxed);
                    }
                }) {
                    Ok(view) => {
                        assert_eq!(
                            state::seq(view.state),
                            seq,
                            "a listed chunk was recycled behind the gate"
                        );
                        assert_eq!(view.committed_len, 16);
                        assert_eq!(words, [seq, seq], "accepted a torn copy");
                        break;
                    }
                    Err(ReadOutcome::Busy) | Err(ReadOutcome::Recycled) => thread::yield_now(),
                    Err(ReadOutcome::Empty) => panic!("a listed chunk was emptied"),
                }
            }
            gate.copied(seq);
        }
        drop(gate);
        claimer.join().unwrap();
    });
}

/// Threads keep spans in a two-slot table at once, one of them replacing its span after
/// closing it: no insert that succeeded is lost or mixed with another, and a closed span is
/// gone. (Entries are handed to other threads as spans are: after the insert.)
#[test]
fn span_table_entries_never_mix_or_vanish() {
    use super::span_table::{SpanEntry, SpanTable};
    model(|| {
        let table = Arc::new(SpanTable::new(2));
        let t = table.clone();
        let other = thread::spawn(move || {
            let e = SpanEntry {
                id: 20,
                callsite: 2,
            };
            if t.insert(2, e) {
                assert_eq!(t.get(2), Some(e));
                t.take(2);
                assert_eq!(t.get(2), None);
            }
            let e = SpanEntry {
                id: 40,
                callsite: 4,
            };
            t.insert(4, e)
        });
        let e = SpanEntry {
            id: 10,
            callsite: 1,
        };
        let mine = table.insert(1, e);
        if mine {
            assert_eq!(table.get(1), Some(e));
        }
        let theirs = other.join().unwrap();
        if mine {
            assert_eq!(table.get(1), Some(e), "an entry was lost");
        }
        if theirs {
            assert_eq!(
                table.get(4),
                Some(SpanEntry {
                    id: 40,
                    callsite: 4
                })
            );
        }
        assert!(mine || theirs, "a two-slot table refused both");
    });
}
