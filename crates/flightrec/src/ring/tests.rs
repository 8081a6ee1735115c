//! The ring over heap memory: the writer, the claim policy and the consistent copy, without
//! a file.

use std::sync::Arc;

use flightrec_format::layout::Geometry;
use flightrec_format::record::{Encoder, RecordKind};
use flightrec_format::{decode, Value};

use super::writer::ThreadWriter;
use super::Ring;
use crate::snapshot::consistent_copy;

fn ring(chunks: u64) -> Arc<Ring> {
    let g = Geometry::for_capacity(4096 + (64 << 10) + chunks * 1024, Some(1024)).unwrap();
    assert_eq!(g.chunk_count as u64, chunks);
    Arc::new(Ring::heap(g))
}

fn event(w: &mut ThreadWriter, seq: u64) -> bool {
    w.write(|buf, fit| {
        let mut e = Encoder::new(buf, RecordKind::Event, 1, seq, fit);
        e.u64(0);
        e.field_u64(0, seq);
        e.finish()
    })
}

fn seqs(image: &[u8], thread: u32) -> Vec<u64> {
    decode(image)
        .unwrap()
        .records
        .iter()
        .filter(|r| r.thread == thread)
        .map(|r| match r.fields[0].value {
            Value::U64(v) => v,
            ref v => panic!("{v:?}"),
        })
        .collect()
}

#[test]
fn a_writer_keeps_its_newest_records_as_the_pool_wraps() {
    let ring = ring(4);
    let mut w = ThreadWriter::new(ring.clone(), 0, 1);
    for i in 0..1000 {
        assert!(event(&mut w, i));
    }
    let (image, given_up) = consistent_copy(&ring);
    assert_eq!(given_up, 0);
    let got = seqs(&image, 0);
    assert_eq!(*got.last().unwrap(), 999);
    assert!(got.windows(2).all(|p| p[1] == p[0] + 1), "not contiguous");
    let rec = decode(&image).unwrap();
    assert_eq!(rec.threads[0].overwritten + got.len() as u64, 1000);
}

#[test]
fn when_every_chunk_is_held_new_threads_drop_and_count() {
    let ring = ring(2);
    let mut holders: Vec<_> = (0..2)
        .map(|t| ThreadWriter::new(ring.clone(), t, t as u64))
        .collect();
    for (t, w) in holders.iter_mut().enumerate() {
        assert!(event(w, t as u64));
    }
    // A third thread finds both chunks ACTIVE: it must not steal them.
    let mut late = ThreadWriter::new(ring.clone(), 2, 2);
    for i in 0..10 {
        assert!(!event(&mut late, i));
    }
    assert_eq!(late.dropped(), 10);
    let (image, _) = consistent_copy(&ring);
    assert_eq!(seqs(&image, 0), [0]);
    assert_eq!(seqs(&image, 1), [1]);
    // Once a holder exits, its chunk is recycled and the late thread writes again, its
    // earlier drops recorded in the chunk it gets.
    // (After a failed claim it backs off for a while instead of scanning the pool for
    // every record; those records are dropped and counted too.)
    drop(holders.pop());
    let mut attempts = 10;
    while !event(&mut late, attempts) {
        attempts += 1;
        assert!(attempts < 200, "never got the freed chunk");
    }
    let rec = decode(&consistent_copy(&ring).0).unwrap();
    let t2 = rec.threads.iter().find(|t| t.index == 2).unwrap();
    assert_eq!((t2.records, t2.dropped, t2.overwritten), (1, attempts, 0));
}

#[test]
fn the_copy_takes_chunks_newest_first_and_drops_unfinished_bytes() {
    let ring = ring(8);
    let mut a = ThreadWriter::new(ring.clone(), 0, 10);
    let mut b = ThreadWriter::new(ring.clone(), 1, 11);
    for i in 0..300 {
        event(&mut a, i);
        event(&mut b, i);
    }
    let (image, _) = consistent_copy(&ring);
    let rec = decode(&image).unwrap();
    assert!(!rec.damage.is_damaged());
    for t in 0..2 {
        let s = seqs(&image, t);
        assert_eq!(*s.last().unwrap(), 299);
        assert!(s.windows(2).all(|p| p[1] == p[0] + 1));
    }
}

#[test]
fn span_ids_are_unique_across_threads() {
    let ring = ring(4);
    let mut a = ThreadWriter::new(ring.clone(), 0, 1);
    let mut b = ThreadWriter::new(ring.clone(), 1, 2);
    let mut ids = std::collections::HashSet::new();
    for _ in 0..3000 {
        assert!(ids.insert(a.next_span_id()));
        assert!(ids.insert(b.next_span_id()));
    }
    assert!(!ids.contains(&0), "0 means no span");
}
