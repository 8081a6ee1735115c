//! Untrusted input: corrupted, truncated and random files give an error or a partial decode
//! with the damage counted; never a panic, and never more records than the bytes could hold.

use std::sync::OnceLock;

use flightrec_format::{decode, image_from_bytes, layout, FormatError, Image};
use proptest::prelude::*;

use crate::helpers::*;

/// A small real ring (events with every value type, nested spans) and a dump of it.
fn samples() -> &'static (Vec<u8>, Vec<u8>) {
    static S: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    S.get_or_init(|| {
        let dir = scratch();
        let rec = recorder(dir.path(), "corrupt", 256 << 10);
        on_threads(&dispatch(&rec), 2, "c", |t| {
            for i in 0..3000u64 {
                let span = tracing::info_span!("outer", t);
                let _g = span.enter();
                let inner = tracing::debug_span!("inner", i);
                let _h = inner.enter();
                let err = std::io::Error::other("disk on fire");
                tracing::info!(i, neg = -(i as i64), big = u128::MAX, f = 0.5, ok = true, s = "text", dbg = ?Some(i), err = &err as &dyn std::error::Error, "msg");
            }
        });
        let ring = std::fs::read(rec.ring_path()).unwrap();
        let dump = std::fs::read(rec.snapshot().unwrap()).unwrap();
        (ring, dump)
    })
}

/// Decodes without panicking; checks the result is bounded by the input. For a ring (not
/// compressed), reading it sparse (only the chunks in use, as every reader does) must give
/// the same recording or the same error as the whole image. (A corrupt zstd stream yields
/// however much its decoder emits before it notices, which depends on the reads; there the
/// sparse read is only held to the same bounds.)
fn decode_bounded(bytes: Vec<u8>) {
    let len = bytes.len();
    let compressed = bytes.starts_with(&layout::ZSTD_MAGIC);
    let sparse = Image::from_bytes(&bytes).map(|i| {
        let rec = i.decode();
        if let Ok(rec) = &rec {
            assert!(rec.records.len() <= i.held_bytes() / 16 + 1);
        }
        rec
    });
    let dense = image_from_bytes(bytes).map(|image| {
        assert!(image.len() as u64 <= layout::MAX_FILE_SIZE);
        let rec = decode(&image);
        if let Ok(rec) = &rec {
            assert!(rec.records.len() <= image.len().max(len) / 16 + 1);
        }
        rec
    });
    if compressed {
        return;
    }
    match (dense, sparse) {
        (Ok(Ok(a)), Ok(Ok(b))) => {
            // (Debug when `==` says no: a flipped float can be NaN, which is never `==`.)
            let same_records =
                a.records == b.records || format!("{:?}", a.records) == format!("{:?}", b.records);
            assert!(
                same_records
                    && a.threads == b.threads
                    && a.damage == b.damage
                    && a.span_callsites == b.span_callsites
                    && a.callsites == b.callsites
                    && a.trigger == b.trigger,
                "the sparse read decodes differently"
            );
        }
        (a, b) => {
            let said = |r: Result<Result<_, FormatError>, FormatError>| match r {
                Ok(Ok(_)) => "decoded".to_string(),
                Ok(Err(e)) | Err(e) => e.to_string(),
            };
            assert_eq!(said(a), said(b), "the sparse read fails differently");
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Vec<(usize, u8)>),
    Truncate(usize),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..32).prop_map(Mutation::Flip),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..512)
        )
            .prop_map(|(a, b)| Mutation::Splice(a, b)),
    ]
}

fn apply(base: &[u8], m: &Mutation, focus_header: bool) -> Vec<u8> {
    let mut b = base.to_vec();
    // Half the flips land in the header and meta log, where one byte matters most.
    let span = if focus_header {
        (layout::HEADER_SIZE * 2).min(b.len())
    } else {
        b.len()
    };
    match m {
        Mutation::Flip(flips) => {
            for &(at, v) in flips {
                b[at % span] ^= v | 1;
            }
        }
        Mutation::Truncate(n) => b.truncate(n % (base.len() + 1)),
        Mutation::Splice(at, bytes) => {
            let at = at % b.len();
            let end = (at + bytes.len()).min(b.len());
            b[at..end].copy_from_slice(&bytes[..end - at]);
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_rings_never_panic(m in mutation(), focus in any::<bool>()) {
        decode_bounded(apply(&samples().0, &m, focus));
    }

    #[test]
    fn mutated_dumps_never_panic(m in mutation()) {
        decode_bounded(apply(&samples().1, &m, false));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..10_000), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(&layout::MAGIC);
        }
        decode_bounded(bytes);
    }
}

#[test]
fn a_cut_ring_decodes_what_it_holds_and_counts_the_rest() {
    let ring = &samples().0;
    let full = decode(ring).unwrap();
    assert!(!full.damage.is_damaged());
    // Cut in the middle of the chunk pool (the stack area follows it).
    let pool_end = layout::get_u64(ring, layout::header::STACKS_OFFSET)
        .filter(|&o| o > 0)
        .map_or(ring.len(), |o| o as usize);
    let cut = &ring[..pool_end / 2];
    let part = decode(cut).unwrap();
    assert!(part.damage.missing_bytes > 0 && part.damage.missing_chunks > 0);
    assert!(!part.records.is_empty() && part.records.len() < full.records.len());
}

#[test]
fn a_corrupted_record_is_dropped_not_misread() {
    let ring = &samples().0;
    let full = decode(ring).unwrap();
    let geometry_chunks = layout::get_u64(ring, layout::header::CHUNKS_OFFSET).unwrap() as usize;
    // Find a chunk in use and break the length of its second record.
    let chunk_size = layout::get_u32(ring, layout::header::CHUNK_SIZE).unwrap() as usize;
    let mut bad = ring.clone();
    let mut hit = false;
    for c in 0..layout::get_u32(ring, layout::header::CHUNK_COUNT).unwrap() as usize {
        let off = geometry_chunks + c * chunk_size;
        if layout::get_u32(&bad, off + layout::chunk::COMMITTED_LEN).unwrap() > 200 {
            let first = off + layout::CHUNK_HEADER_SIZE;
            let len0 = layout::get_u16(&bad, first).unwrap() as usize;
            bad[first + len0..first + len0 + 2].copy_from_slice(&3u16.to_le_bytes());
            hit = true;
            break;
        }
    }
    assert!(hit);
    let rec = decode(&bad).unwrap();
    assert_eq!(rec.damage.bad_chunk_tails, 1);
    assert!(rec.records.len() < full.records.len());
    // Every record that survived is one that was written.
    for r in &rec.records {
        assert!(
            full.records.contains(r),
            "a record that was never written: {r:?}"
        );
    }
}

/// Files of the older format versions (1: fixed-size records; 2: compact records with
/// every message whole) are refused by every reader in one line that says what the file is
/// and what reads it, never misread.
#[test]
fn an_older_version_is_refused_in_one_line_that_says_what_reads_it() {
    let dir = scratch();
    for version in [1u32, 2] {
        let mut b = samples().0.clone();
        b[layout::header::VERSION..layout::header::VERSION + 4]
            .copy_from_slice(&version.to_le_bytes());
        let path = dir.path().join(format!("old-{version}.flightrec-ring"));
        std::fs::write(&path, &b).unwrap();
        let path = path.to_str().unwrap();
        for args in [vec!["info", path], vec!["cat", path], vec!["check", path]] {
            let out = flightrec(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{args:?} accepted a version {version} file"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("format version {version} ("))
                    && stderr.contains("the flightrec that wrote it"),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn header_damage_names_the_problem() {
    let ring = &samples().0;
    let mut b = ring.clone();
    b[0] ^= 0xff;
    assert!(matches!(decode(&b), Err(FormatError::NotARing)));
    let mut b = ring.clone();
    b[layout::header::VERSION] = 99;
    assert!(matches!(
        decode(&b),
        Err(FormatError::UnsupportedVersion(99))
    ));
    let mut b = ring.clone();
    b[layout::header::CHUNK_SIZE..layout::header::CHUNK_SIZE + 4]
        .copy_from_slice(&7u32.to_le_bytes());
    assert!(matches!(decode(&b), Err(FormatError::BadHeader(_))));
    assert!(matches!(
        decode(&ring[..100]),
        Err(FormatError::Truncated { .. })
    ));
}

/// A small xorshift generator: the positions are the same on every run.
fn positions(seed: u64, len: usize, n: usize) -> Vec<(usize, u8)> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % len as u64) as usize, 1 << ((x >> 32) % 8))
        })
        .collect()
}

/// `flightrec info` of `bytes` written to a file: its exit status and everything it said.
fn info_of(dir: &std::path::Path, bytes: &[u8]) -> (bool, String) {
    let path = dir.join("flipped.flightrec");
    std::fs::write(&path, bytes).unwrap();
    let out = flightrec(&["info", path.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// One flipped bit anywhere in a dump, in its compressed bytes or in its content
/// (decompressed, flipped, compressed again without zstd's checksum), is reported as a
/// checksum mismatch: 60 tries of each, every one.
#[test]
fn every_flipped_bit_in_a_dump_is_reported_as_a_checksum_mismatch() {
    let dir = scratch();
    let (_, dump) = samples();
    let (ok, said) = info_of(dir.path(), dump);
    assert!(ok && said.contains("damage:      none"), "{said}");
    for (at, bit) in positions(0x9E37_79B9_7F4A_7C15, dump.len(), 60) {
        let mut bad = dump.clone();
        bad[at] ^= bit;
        let (_, said) = info_of(dir.path(), &bad);
        assert!(
            said.contains("checksum mismatch"),
            "compressed byte {at} of {}, bit {bit:#x}: {said}",
            dump.len()
        );
    }
    let content = image_from_bytes(dump.clone()).unwrap();
    for (at, bit) in positions(0x2545_F491_4F6C_DD1D, content.len(), 60) {
        let mut bad = content.clone();
        bad[at] ^= bit;
        let (_, said) = info_of(dir.path(), &zstd::bulk::compress(&bad, 1).unwrap());
        assert!(
            said.contains("checksum mismatch"),
            "content byte {at} of {}, bit {bit:#x}: {said}",
            content.len()
        );
    }
}
