//! The checksums a dump carries inside its image, so that damage anywhere in it is told
//! from data: one XXH3 checksum per section (the header, the names, the chunk pool, the
//! stack area and whatever follows), written when the dump is made and checked by every
//! reader as the bytes stream past. The header's section has a fixed size, so a damaged
//! header is caught even when the sizes it states are wrong.
//!
//! They sit in the header (see [`fields`]), so a dump decompressed, changed and compressed
//! again still fails its check; zstd's own frame checksum guards the compressed bytes. A
//! live ring is never sealed: it is crash-consistent by construction, and its writers pay
//! nothing for this.

use std::hash::Hasher as _;

use twox_hash::XxHash3_64;

use crate::layout::{self, header, HEADER_SIZE};

/// Offsets of the seal's fields in the file header (after `header::COPY_GATE`, on its
/// cache line: a live ring never writes them, so its writers never see them change).
pub mod fields {
    /// [`super::SEAL_MAGIC`] in a sealed image, 0 in a live ring or an older dump.
    pub const MARKER: usize = 968;
    /// XXH3 of the header (`HEADER_SIZE` bytes, with the seal's fields zeroed).
    pub const HEADER: usize = 976;
    /// XXH3 of the meta log.
    pub const META: usize = 984;
    /// XXH3 of the chunk pool.
    pub const CHUNKS: usize = 992;
    /// XXH3 of everything after the chunk pool (the stack area).
    pub const REST: usize = 1000;
    /// Where the seal's fields end.
    pub const END: usize = 1008;
}

/// The marker of a sealed image: many bits set, so no single flipped bit makes it 0.
pub const SEAL_MAGIC: u32 = 0x5EA1_D0C5;

/// A part of an image with its own checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// The file header.
    Head,
    /// The meta log (names, threads, trigger).
    Meta,
    /// The chunk pool (the records).
    Chunks,
    /// The stack area.
    Rest,
}

impl Section {
    /// The section in words.
    pub fn describe(self) -> &'static str {
        match self {
            Section::Head => "the header",
            Section::Meta => "the names",
            Section::Chunks => "the records",
            Section::Rest => "the stacks",
        }
    }
}

/// Writes the seal into `image` (a whole, dense image about to be compressed).
pub fn seal(image: &mut [u8]) {
    if image.len() < HEADER_SIZE {
        return;
    }
    layout::put_u32(image, fields::MARKER, SEAL_MAGIC);
    let mut v = Verifier::new(&image[..HEADER_SIZE]);
    v.feed(&image[HEADER_SIZE..]);
    let [head, meta, chunks, rest] = v.sums();
    layout::put_u32(image, fields::MARKER, SEAL_MAGIC);
    layout::put_u64(image, fields::HEADER, head);
    layout::put_u64(image, fields::META, meta);
    layout::put_u64(image, fields::CHUNKS, chunks);
    layout::put_u64(image, fields::REST, rest);
}

/// The zstd skippable frame a dump ends with: magic, payload length (8), then the XXH3
/// of every compressed byte before it. zstd readers skip it; ours checks it, so that even
/// a flipped bit that decompresses to the same bytes is caught.
pub const TRAILER_MAGIC: [u8; 4] = 0x184D_2A5Eu32.to_le_bytes();
/// Bytes of the trailer frame.
pub const TRAILER_LEN: usize = 16;

/// The trailer frame for `compressed` (a whole zstd frame).
pub fn trailer(compressed: &[u8]) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..4].copy_from_slice(&TRAILER_MAGIC);
    t[4..8].copy_from_slice(&8u32.to_le_bytes());
    t[8..].copy_from_slice(&XxHash3_64::oneshot(compressed).to_le_bytes());
    t
}

/// A reader of a compressed dump that checksums what passes through it, all but the last
/// `TRAILER_LEN` bytes, which it keeps: at the end they should be the trailer.
pub struct TrailerCheck<R> {
    inner: R,
    hasher: XxHash3_64,
    window: Vec<u8>,
}

impl<R> TrailerCheck<R> {
    pub fn new(inner: R) -> TrailerCheck<R> {
        TrailerCheck {
            inner,
            hasher: XxHash3_64::with_seed(0),
            window: Vec::with_capacity(2 * TRAILER_LEN),
        }
    }

    /// What the trailer says, once every byte was read.
    pub fn verdict(&self) -> Trailer {
        let w = &self.window;
        let is_trailer =
            w.len() == TRAILER_LEN && w[..4] == TRAILER_MAGIC && w[4..8] == 8u32.to_le_bytes();
        if !is_trailer {
            Trailer::Missing
        } else if w[8..] == self.hasher.finish().to_le_bytes() {
            Trailer::Matches
        } else {
            Trailer::Changed
        }
    }
}

/// What a dump's trailer said of its compressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trailer {
    /// They are as written.
    Matches,
    /// No trailer: an older dump, a cut one, or a damaged trailer.
    Missing,
    /// They changed.
    Changed,
}

impl<R: std::io::Read> std::io::Read for TrailerCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.window.extend_from_slice(&buf[..n]);
        if self.window.len() > TRAILER_LEN {
            let out = self.window.len() - TRAILER_LEN;
            self.hasher.write(&self.window[..out]);
            self.window.drain(..out);
        }
        Ok(n)
    }
}

/// What the checksums of an image said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealCheck {
    /// The image carries a seal (a dump from this version on).
    pub sealed: bool,
    /// Sections read whole whose checksum does not match, in order.
    pub mismatched: Vec<Section>,
}

/// Checks the seal of a whole image in memory.
pub fn check(image: &[u8]) -> SealCheck {
    if image.len() < HEADER_SIZE {
        return SealCheck::default();
    }
    let mut v = Verifier::new(&image[..HEADER_SIZE]);
    v.feed(&image[HEADER_SIZE..]);
    v.finish()
}

/// Checks an image's seal as its bytes stream past: [`Verifier::new`] with the header,
/// then [`Verifier::feed`] with every following byte, in order.
pub struct Verifier {
    marker: u32,
    expected: [u64; 4],
    hashers: [XxHash3_64; 4],
    /// Bytes seen so far, the header included.
    pos: u64,
    /// Where the chunk pool starts and ends, and the image's declared end: clamped so
    /// that a damaged header still splits the stream somewhere (the header's own check
    /// fails then).
    meta_end: u64,
    pool_end: u64,
    file_end: u64,
}

impl Verifier {
    /// Starts with the header (the first `HEADER_SIZE` bytes of the image).
    pub fn new(head: &[u8]) -> Verifier {
        let get64 = |at| layout::get_u64(head, at).unwrap_or(0);
        let get32 = |at| layout::get_u32(head, at).unwrap_or(0);
        let file_end = get64(header::FILE_SIZE);
        let meta_end = get64(header::CHUNKS_OFFSET)
            .clamp(HEADER_SIZE as u64, file_end.max(HEADER_SIZE as u64));
        let pool = get32(header::CHUNK_COUNT) as u64 * get32(header::CHUNK_SIZE) as u64;
        let pool_end = meta_end.saturating_add(pool).min(file_end.max(meta_end));
        let mut v = Verifier {
            marker: get32(fields::MARKER),
            expected: [
                get64(fields::HEADER),
                get64(fields::META),
                get64(fields::CHUNKS),
                get64(fields::REST),
            ],
            hashers: std::array::from_fn(|_| XxHash3_64::with_seed(0)),
            pos: 0,
            meta_end,
            pool_end,
            file_end,
        };
        let mut h = head[..head.len().min(HEADER_SIZE)].to_vec();
        if h.len() >= fields::END {
            h[fields::MARKER..fields::END].fill(0);
        }
        v.feed(&h);
        v
    }

    /// The next bytes of the image.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.marker == 0 {
            self.pos += bytes.len() as u64;
            return;
        }
        while !bytes.is_empty() {
            let (section, end) = if self.pos < HEADER_SIZE as u64 {
                (0, HEADER_SIZE as u64)
            } else if self.pos < self.meta_end {
                (1, self.meta_end)
            } else if self.pos < self.pool_end {
                (2, self.pool_end)
            } else {
                (3, u64::MAX)
            };
            let n = (end - self.pos).min(bytes.len() as u64) as usize;
            self.hashers[section].write(&bytes[..n]);
            self.pos += n as u64;
            bytes = &bytes[n..];
        }
    }

    fn sums(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.hashers[i].finish())
    }

    /// The verdict, for the bytes fed so far: a section not read whole (a cut image) is
    /// not judged; its loss is counted as cut elsewhere.
    pub fn finish(&self) -> SealCheck {
        if self.marker == 0 {
            return SealCheck::default();
        }
        let sums = self.sums();
        let ends = [
            HEADER_SIZE as u64,
            self.meta_end,
            self.pool_end,
            self.file_end,
        ];
        let sections = [Section::Head, Section::Meta, Section::Chunks, Section::Rest];
        let head_bad = self.marker != SEAL_MAGIC || sums[0] != self.expected[0];
        // A header that fails its check says nothing trustworthy about where the other
        // sections lie: it alone is named.
        let mismatched = if head_bad {
            vec![Section::Head]
        } else {
            (1..4)
                .filter(|&i| self.pos >= ends[i] && sums[i] != self.expected[i])
                .map(|i| sections[i])
                .collect()
        };
        SealCheck {
            sealed: true,
            mismatched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_image_checks_and_any_flipped_bit_is_caught() {
        let mut image = crate::testing::sample_image(3);
        assert_eq!(
            check(&image),
            SealCheck::default(),
            "unsealed: nothing to say"
        );
        seal(&mut image);
        let clean = check(&image);
        assert!(clean.sealed && clean.mismatched.is_empty(), "{clean:?}");
        // Every 97th byte, each bit in turn: the sections cover the whole image.
        let stride = if cfg!(miri) { 4099 } else { 97 };
        for at in (0..image.len()).step_by(stride) {
            let mut bad = image.clone();
            bad[at] ^= 1 << (at % 8);
            let c = check(&bad);
            assert!(!c.mismatched.is_empty(), "a flip at {at} went unnoticed");
        }
    }

    #[test]
    fn streaming_in_pieces_gives_the_same_verdict() {
        let mut image = crate::testing::sample_image(2);
        seal(&mut image);
        let chunks = layout::get_u64(&image, header::CHUNKS_OFFSET).unwrap() as usize;
        image[chunks + 100] ^= 4;
        let mut v = Verifier::new(&image[..HEADER_SIZE]);
        for piece in image[HEADER_SIZE..].chunks(777) {
            v.feed(piece);
        }
        assert_eq!(v.finish().mismatched, vec![Section::Chunks]);
        assert_eq!(v.finish(), check(&image));
    }
}
