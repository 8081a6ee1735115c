//! Dumps: a consistent copy of the live ring, compressed with zstd, written under a
//! temporary name and linked into place only when complete.

use std::sync::atomic::Ordering;

use flightrec_format::layout::get_u32;
use flightrec_format::layout::{header, put_u32, put_u64, state, FLAG_DUMP};
use flightrec_format::Trigger;

use crate::ring::protocol::{ChunkPool, CopyGate, ReadOutcome};
use crate::ring::{clock, Ring};
use crate::Error;

/// How often a chunk recycled under the copier is copied again (it then holds newer data).
const RECOPY_ATTEMPTS: usize = 3;

/// How long a copy behind the gate waits for a claimer to hand a listed chunk back.
const GATED_RETRY_LIMIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Takes a consistent copy of the ring while writers keep writing: the header, the committed
/// meta log, and every chunk whose copy the seqlock check accepts. Returns the image and how
/// many chunks were given up.
///
/// The copy closes the copy gate and takes chunks oldest first, the order claimers recycle
/// in, opening the gate behind itself: a writer never recycles a chunk that is still to be
/// copied, so the dump holds what the ring held when it was asked, at any write rate.
/// Writers that find nothing to claim meanwhile drop records and count them; they never
/// wait. If another copy holds the gate, this one goes newest first instead, so what a
/// racing recycler takes is the oldest data and each thread keeps a contiguous run of its
/// newest records.
pub(crate) fn consistent_copy(ring: &Ring) -> (Vec<u8>, u32) {
    let g = ring.geometry;
    let mut image = vec![0u8; g.file_size as usize];
    // Closed before the chunks are listed, so every chunk listed below is protected.
    let gate = CopyGate::close(ring);
    ring.copy_header(&mut image);
    put_u64(&mut image, header::COPY_GATE, 0);
    let mut order: Vec<(u64, u64)> = (0..ring.chunk_count())
        .filter_map(|i| {
            // Acquire: a claimer whose gate check missed the close did its CAS before
            // the close (see `protocol::claim`), and this load then sees it.
            let w = ring.chunk(i).state.load(Ordering::Acquire);
            let p = state::phase(w);
            (p == state::ACTIVE || p == state::RETIRED).then_some((state::seq(w), i))
        })
        .collect();
    if gate.is_some() {
        order.sort_unstable();
    } else {
        order.sort_unstable_by(|a, b| b.cmp(a));
    }
    let mut given_up = 0;
    for (seq, i) in order {
        let off = g.chunk_offset(i as u32) as usize;
        let dst = &mut image[off..off + g.chunk_size as usize];
        let mut outcome = Err(ReadOutcome::Recycled);
        if gate.is_some() {
            // Behind the gate a listed chunk cannot be recycled; a claimer may hold it for a
            // moment before handing it back (`Busy`, or `Recycled` with the seqlock seeing
            // that moment). Read again until it is back, within a bound that only a claimer
            // stopped mid-claim (a crashed thread) could exhaust.
            let deadline = std::time::Instant::now() + GATED_RETRY_LIMIT;
            loop {
                outcome = ring.copy_chunk(i, dst);
                let transient = matches!(outcome, Err(ReadOutcome::Busy | ReadOutcome::Recycled));
                if !transient || std::time::Instant::now() >= deadline {
                    break;
                }
                std::thread::yield_now();
            }
        } else {
            for _ in 0..RECOPY_ATTEMPTS {
                outcome = ring.copy_chunk(i, dst);
                if outcome != Err(ReadOutcome::Recycled) {
                    break;
                }
            }
        }
        match outcome {
            Ok(v) => {
                v.write(dst);
                // Bytes past the committed length may be half-written records: clear them
                // so the dump holds nothing a reader could misread, and compresses well.
                let end = flightrec_format::layout::CHUNK_HEADER_SIZE + v.committed_len as usize;
                dst[end..].fill(0);
            }
            // Without the gate, a chunk being claimed holds nothing of the ring as it was.
            Err(ReadOutcome::Empty) => dst.fill(0),
            Err(ReadOutcome::Busy) if gate.is_none() => dst.fill(0),
            Err(ReadOutcome::Recycled | ReadOutcome::Busy) => {
                dst.fill(0);
                given_up += 1;
            }
        }
        if let Some(gate) = &gate {
            gate.copied(seq);
        }
    }
    drop(gate);
    // After the chunks, not before: entries appended while they were copied are named by
    // records in them.
    ring.copy_meta(&mut image);
    (image, given_up)
}

/// A consistent copy of `ring` (with its stack area, stamped with the dump's clock anchor
/// and `trigger`), compressed as a dump holds it.
pub(crate) fn copy_compressed(
    ring: &Ring,
    trigger: &Trigger,
    session: Option<&crate::ring::stacks::Session<'_>>,
) -> Result<Vec<u8>, Error> {
    let (mut image, given_up) = consistent_copy(ring);
    crate::ring::stacks::copy_area(ring, &mut image, session.is_some());
    // The history on disk comes along (the ring's stack area moves after it), up to a
    // bound: this copy is held in the process that asked for the dump.
    flightrec_format::history::extend_ring_file(
        &mut image,
        &flightrec_format::history::dir_of(&ring.path),
        crate::history::MAX_IN_DUMP,
    );
    let now = clock::anchor_now();
    put_u64(&mut image, header::DUMP_TICKS, now.ticks);
    put_u64(&mut image, header::DUMP_MONO_NS, now.mono_ns);
    put_u64(&mut image, header::DUMP_WALL_NS, now.wall_ns);
    put_u32(&mut image, header::DUMP_CHUNKS_RECYCLED, given_up);
    let flags = get_u32(&image, header::FLAGS).unwrap_or(0) | FLAG_DUMP;
    put_u32(&mut image, header::FLAGS, flags);
    trigger.write(&mut image, now.ticks);
    Ok(flightrec_format::dump::compress(&mut image)?)
}
