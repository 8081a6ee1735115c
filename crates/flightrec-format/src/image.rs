//! Reading a ring file or dump into memory in proportion to the data it holds.
//!
//! A ring's capacity is mostly `FREE` chunks until it wraps: a 1 GiB ring holding 10 MB of
//! records is 99% zeros. The reader streams the file (decompressing a dump as it goes) and
//! keeps the header, the meta log and only the chunks in use, back to back; `scan` then
//! finds each kept chunk by its index. Nothing is trusted: a header whose geometry does not
//! add up makes the reader keep the bytes as they are, for `scan` to reject.

use std::io::Read;
use std::path::Path;

use crate::decode::{scan_parts, ChunkLayout};
use crate::layout::{self, chunk, header, state, HEADER_SIZE};
use crate::seal::{SealCheck, Trailer, TrailerCheck, Verifier};
use crate::{FormatError, Recording, Scan};

/// A ring image as read: the header and meta log, then the chunks in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Dense: the file's bytes as read. Sparse: the first `chunks_offset` bytes, then the
    /// chunks listed in `kept`, in that order.
    bytes: Vec<u8>,
    /// How many bytes of the file were read (less than the header's file size when the
    /// file or dump was cut short).
    logical_len: u64,
    /// For a sparse image, the indices of the chunks held, ascending; `None` when `bytes`
    /// is the file itself.
    kept: Option<Vec<u32>>,
    /// For a sparse image, the bytes after the chunk pool (the stack area), as read.
    tail: Vec<u8>,
    /// For a sparse image, its seal as checked while it streamed past (a dense image is
    /// checked when scanned).
    seal: Option<SealCheck>,
    /// The zstd error that ended decompression early, when it was not a cut (a corrupt
    /// frame, or its checksum failed).
    compression_error: Option<String>,
}

/// How many records [`Image::decode_counting`] decodes between two progress calls.
pub const PROGRESS_EVERY: u64 = 1 << 16;

impl Image {
    /// An image that is the file's bytes as they are.
    pub fn dense(bytes: Vec<u8>) -> Image {
        Image {
            logical_len: bytes.len() as u64,
            bytes,
            kept: None,
            tail: Vec::new(),
            seal: None,
            compression_error: None,
        }
    }

    /// Checks and indexes the image (see [`crate::scan()`]).
    pub fn scan(&self) -> Result<Scan<'_>, FormatError> {
        let layout = match &self.kept {
            None => ChunkLayout::Dense,
            Some(kept) => ChunkLayout::Sparse {
                kept,
                tail: &self.tail,
            },
        };
        let scanned = scan_parts(&self.bytes, self.logical_len, layout, self.seal.clone());
        // An unusable header behind a zstd failure: the failure is the cause.
        let mut scan = match (scanned, &self.compression_error) {
            (Err(_), Some(z)) => return Err(FormatError::BadCompression(z.clone())),
            (scanned, _) => scanned?,
        };
        scan.recording.damage.compression_corrupt = self.compression_error.clone();
        Ok(scan)
    }

    /// Decodes the image (see [`crate::decode()`]).
    pub fn decode(&self) -> Result<Recording, FormatError> {
        self.decode_counting(|_, _| {})
    }

    /// [`Image::decode`], telling `progress(decoded, expected)` how far it is every
    /// [`PROGRESS_EVERY`] records (for a reader's progress bar); `expected` is what the
    /// threads' counts announce, which damage can make wrong.
    pub fn decode_counting(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Recording, FormatError> {
        let mut scan = self.scan()?;
        // Room for every record at once: growing by doubling would copy millions of
        // records and touch twice the memory. The count is bounded by what the bytes
        // could hold, so a lying count cannot ask for more.
        let counted: u64 = scan
            .recording
            .threads
            .iter()
            .fold(0u64, |n, t| n.saturating_add(t.records));
        let room = (counted as usize).min(self.bytes.len() / 8);
        let mut records = Vec::with_capacity(room);
        for r in scan.records() {
            records.push(r);
            if (records.len() as u64).is_multiple_of(PROGRESS_EVERY) {
                progress(records.len() as u64, counted);
            }
        }
        progress(records.len() as u64, counted);
        scan.recording.records = records;
        Ok(scan.recording)
    }

    /// The bytes held in memory.
    pub fn held_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Reads an uncompressed ring image from `r`, keeping only the chunks in use. `cut_ok`:
    /// a read error after the header ends the image where it happened (a dump cut short)
    /// instead of failing.
    pub fn read_sparse(mut r: impl Read, cut_ok: bool) -> std::io::Result<Image> {
        let mut bytes = vec![0u8; HEADER_SIZE];
        // The header itself must read: without it nothing can be made of the rest.
        let got = read_up_to(&mut r, &mut bytes, false)?;
        bytes.truncate(got);
        let geometry = (got == HEADER_SIZE && bytes[..8] == layout::MAGIC)
            .then(|| SparseGeometry::of(&bytes))
            .flatten();
        let Some(g) = geometry else {
            // Not something to take apart: keep it as it is (bounded), for `scan` to judge.
            (&mut r)
                .take(layout::MAX_FILE_SIZE.saturating_sub(got as u64))
                .read_to_end(&mut bytes)
                .or_else(|e| if cut_ok { Ok(0) } else { Err(e) })?;
            return Ok(Image::dense(bytes));
        };
        let mut logical_len = got as u64;
        let mut verifier = Verifier::new(&bytes);
        // The header and meta log.
        let want = g.chunks_offset - HEADER_SIZE as u64;
        let before = bytes.len();
        (&mut r)
            .take(want)
            .read_to_end(&mut bytes)
            .or_else(|e| if cut_ok { Ok(0) } else { Err(e) })?;
        logical_len += (bytes.len() - before) as u64;
        verifier.feed(&bytes[before..]);
        let mut kept = Vec::new();
        if bytes.len() as u64 == g.chunks_offset {
            let mut buf = vec![0u8; g.chunk_size as usize];
            for i in 0..g.chunk_count {
                let n = read_up_to(&mut r, &mut buf, cut_ok)?;
                logical_len += n as u64;
                verifier.feed(&buf[..n]);
                if n < buf.len() {
                    break;
                }
                let word = layout::get_u64(&buf, chunk::STATE).unwrap_or(0);
                if state::phase(word) != state::FREE {
                    bytes.extend_from_slice(&buf);
                    kept.push(i);
                }
            }
        }
        // What follows the chunk pool is the stack area, kept (bounded by the largest area
        // a reader accepts), up to the declared size; the rest counts as read. A stream
        // longer than its header declares is refused by `read_image` for dumps.
        let rest = g.file_size.saturating_sub(logical_len);
        let mut tail = Vec::new();
        let pool_end = g.chunks_offset + g.chunk_count as u64 * g.chunk_size as u64;
        let area_max = if logical_len == pool_end {
            layout::stacks::area_size(layout::stacks::MAX_SLOTS)
        } else {
            0 // cut short inside the pool: no area to speak of
        };
        logical_len += (&mut r)
            .take(rest.min(area_max))
            .read_to_end(&mut tail)
            .or_else(|e| if cut_ok { Ok(0) } else { Err(e) })? as u64;
        verifier.feed(&tail);
        let rest = g.file_size.saturating_sub(logical_len);
        let mut past_area = VerifyingSink(&mut verifier);
        logical_len += std::io::copy(&mut (&mut r).take(rest), &mut past_area).or_else(|e| {
            if cut_ok {
                Ok(0)
            } else {
                Err(e)
            }
        })?;
        Ok(Image {
            bytes,
            logical_len,
            kept: Some(kept),
            tail,
            seal: Some(verifier.finish()),
            compression_error: None,
        })
    }
}

impl Image {
    /// Adds the chunks of the history in `dir` ([`crate::history`]) to this image of a ring
    /// file, after the ring's own, as more chunks of the same ring: every reader then reads
    /// the ring and its history as one recording. A chunk the ring still holds is not added
    /// twice (a chunk's sequence number names it), and the oldest are left out when the
    /// whole would pass the largest image a reader accepts. A dump, or an image that was not
    /// read whole as a ring, is left as it is. Returns how many chunks were added.
    pub fn attach_history(&mut self, dir: &Path) -> u64 {
        let Some(g) = SparseGeometry::of(&self.bytes) else {
            return 0;
        };
        let flags = layout::get_u32(&self.bytes, header::FLAGS).unwrap_or(0);
        let Image {
            bytes,
            kept,
            logical_len,
            ..
        } = self;
        let Some(kept) = kept.as_mut() else {
            return 0;
        };
        if flags & layout::FLAG_DUMP != 0 || *logical_len < g.file_size || !dir.is_dir() {
            return 0;
        }
        let size = g.chunk_size as u64;
        let ring_seqs = (0..kept.len())
            .filter_map(|k| {
                let at = g.chunks_offset as usize + k * size as usize;
                layout::get_u64(bytes, at + chunk::STATE).map(state::seq)
            })
            .collect();
        let room = crate::history::room(g.file_size, size, g.chunk_count);
        let mut next = g.chunk_count;
        let added = crate::history::append_to_ring(dir, size as usize, &ring_seqs, room, |c| {
            bytes.extend_from_slice(c);
            kept.push(next);
            next += 1;
        });
        crate::history::grow_header(bytes, added, size);
        *logical_len += added * size;
        added
    }
}

/// Bytes read past what the image keeps: checked, then dropped.
struct VerifyingSink<'v>(&'v mut Verifier);

impl std::io::Write for VerifyingSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reader that remembers the first error its inner reader gave (a sparse read of a dump
/// takes any error after the header as the end of the data, and must still say why).
struct ErrorLatch<R> {
    inner: R,
    first_error: Option<std::io::Error>,
}

impl<R: Read> Read for ErrorLatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.first_error.is_none() && e.kind() != std::io::ErrorKind::Interrupted {
                self.first_error = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// The header fields a sparse read needs, when they are consistent.
struct SparseGeometry {
    file_size: u64,
    chunks_offset: u64,
    chunk_size: u32,
    chunk_count: u32,
}

impl SparseGeometry {
    fn of(head: &[u8]) -> Option<SparseGeometry> {
        let g = SparseGeometry {
            file_size: layout::get_u64(head, header::FILE_SIZE)?,
            chunks_offset: layout::get_u64(head, header::CHUNKS_OFFSET)?,
            chunk_size: layout::get_u32(head, header::CHUNK_SIZE)?,
            chunk_count: layout::get_u32(head, header::CHUNK_COUNT)?,
        };
        let pool = (g.chunk_count as u64).checked_mul(g.chunk_size as u64)?;
        let ok = g.file_size <= layout::MAX_FILE_SIZE
            && g.chunks_offset >= HEADER_SIZE as u64
            && (layout::MIN_CHUNK_SIZE..=layout::MAX_CHUNK_SIZE).contains(&(g.chunk_size as usize))
            && g.chunks_offset.checked_add(pool)? <= g.file_size;
        ok.then_some(g)
    }
}

/// Fills `buf` as far as the reader allows; returns how much was read. With `cut_ok`, a
/// read error ends the data like end of file.
fn read_up_to(r: &mut impl Read, buf: &mut [u8], cut_ok: bool) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) if cut_ok => break,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads a ring file or a dump from `path` ("-" for stdin), holding only the chunks in use
/// (see the module's documentation). A dump that decompresses to more than its header
/// declares is refused; one cut short yields what decompressed, the rest counted missing.
pub fn read_image(path: &Path) -> Result<Image, FormatError> {
    let io = |source| FormatError::Io {
        path: path.display().to_string(),
        source,
    };
    let input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(io)?)
    };
    let mut image = load(input, io)?;
    if path.as_os_str() != "-" {
        image.attach_history(&crate::history::dir_of(path));
    }
    Ok(image)
}

impl Image {
    /// [`read_image`] over bytes in memory: a ring file's or a dump's.
    pub fn from_bytes(raw: &[u8]) -> Result<Image, FormatError> {
        load(raw, |source| FormatError::Io {
            path: "<memory>".into(),
            source,
        })
    }
}

fn load(
    mut input: impl Read,
    io: impl Fn(std::io::Error) -> FormatError,
) -> Result<Image, FormatError> {
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut input, &mut magic, false).map_err(&io)?;
    let chained = std::io::Cursor::new(magic).take(got as u64).chain(input);
    if got == 4 && crate::zstd_magic_damaged(magic) {
        return Err(crate::damaged_zstd_magic());
    }
    if got < 4 || magic != layout::ZSTD_MAGIC {
        return Image::read_sparse(chained, false).map_err(io);
    }
    let zerr = |e: std::io::Error| FormatError::BadCompression(e.to_string());
    let dec = zstd::stream::read::Decoder::new(TrailerCheck::new(chained)).map_err(zerr)?;
    let mut dec = ErrorLatch {
        inner: dec,
        first_error: None,
    };
    // After the header, a decompression error ends the data: what came out is kept. The
    // input running out is a dump cut short; any other error is corruption.
    let mut image = Image::read_sparse(&mut dec, true).map_err(zerr)?;
    // Reading on to the frame's end is what checks zstd's own checksum.
    let more = matches!(dec.read(&mut [0u8; 1]), Ok(n) if n > 0);
    let error = dec.first_error.take();
    // Whatever the decoder left unread, then the trailer's verdict on every compressed byte.
    let mut rest = dec.inner.finish();
    let trailer = match std::io::copy(&mut rest, &mut std::io::sink()) {
        Ok(_) => rest.get_ref().verdict(),
        Err(_) => Trailer::Missing,
    };
    let whole = image.logical_len >= layout::get_u64(&image.bytes, header::FILE_SIZE).unwrap_or(0);
    let sealed = || match &image.seal {
        Some(s) => s.sealed,
        None => crate::seal::check(&image.bytes).sealed,
    };
    let changed = "its compressed bytes changed";
    image.compression_error = match error {
        // The input ran out: a cut, unless the trailer says the bytes changed, or the
        // image is whole and only what follows it failed.
        Some(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => match trailer {
            Trailer::Changed => Some(changed.into()),
            _ if whole && image.bytes.len() >= HEADER_SIZE => Some("its end is damaged".into()),
            _ => None,
        },
        Some(e) if image.bytes.len() < HEADER_SIZE => return Err(zerr(e)),
        Some(e) => Some(e.to_string()),
        None if more => None,
        None => match trailer {
            Trailer::Matches => None,
            Trailer::Changed => Some(changed.into()),
            Trailer::Missing if sealed() => {
                Some("its closing checksum is missing or damaged".into())
            }
            Trailer::Missing => None,
        },
    };
    if let Err(e) = check_dump_header(&image, more) {
        if let Some(z) = &image.compression_error {
            return Err(FormatError::BadCompression(z.clone()));
        }
        // A header that does not add up, in a dump whose header checksum fails: the cause
        // is the corruption, and that is what to say.
        let seal = image
            .seal
            .clone()
            .unwrap_or_else(|| crate::seal::check(&image.bytes));
        if seal.mismatched.contains(&crate::seal::Section::Head) {
            return Err(FormatError::ChecksumMismatch(
                crate::seal::Section::Head.describe(),
            ));
        }
        return Err(e);
    }
    Ok(image)
}

/// What a decompressed dump's header must say of itself: a ring's magic, a size in range,
/// and no more bytes than that size (`more`: the stream went on past what was read).
fn check_dump_header(image: &Image, more: bool) -> Result<(), FormatError> {
    if image.bytes.len() < HEADER_SIZE {
        return Err(FormatError::Truncated {
            len: image.bytes.len() as u64,
        });
    }
    if image.bytes[..8] != layout::MAGIC {
        return Err(FormatError::NotARing);
    }
    let declared = layout::get_u64(&image.bytes, header::FILE_SIZE).unwrap_or(0);
    if declared > layout::MAX_FILE_SIZE || declared < HEADER_SIZE as u64 {
        return Err(FormatError::BadHeader("file size"));
    }
    let longer = image.logical_len > declared || (image.logical_len == declared && more);
    if longer {
        return Err(FormatError::DumpTooLarge { declared });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_image;

    fn sparse(bytes: &[u8]) -> Image {
        Image::read_sparse(bytes, false).unwrap()
    }

    #[test]
    fn a_sparse_read_decodes_like_the_dense_image_and_leaves_free_chunks_out() {
        let dense = sample_image(3);
        // Free the second chunk: the sparse image leaves it out.
        let g = layout::get_u64(&dense, header::CHUNKS_OFFSET).unwrap() as usize;
        let size = layout::get_u32(&dense, header::CHUNK_SIZE).unwrap() as usize;
        let mut one_free = dense.clone();
        one_free[g + size..g + 2 * size].fill(0);
        for img in [dense, one_free] {
            let s = sparse(&img);
            assert_eq!(s.decode().unwrap(), crate::decode(&img).unwrap());
        }
        let s = sparse(&{
            let mut b = sample_image(3);
            b[g + size..g + 2 * size].fill(0);
            b
        });
        assert_eq!(s.held_bytes(), g + size, "the free chunk is not held");
    }

    #[test]
    #[cfg_attr(miri, ignore = "zstd is C, which Miri cannot run")]
    fn a_dump_reads_sparse_whole_or_cut_short_as_it_decodes_dense() {
        let img = sample_image(3);
        let dump = zstd::bulk::compress(&img, 3).unwrap();
        for len in [dump.len(), dump.len() - 10, dump.len() / 2] {
            let raw = &dump[..len];
            let dense = crate::image_from_bytes(raw.to_vec()).map(|i| crate::decode(&i));
            let sparse = Image::from_bytes(raw).map(|i| i.decode());
            match (dense, sparse) {
                (Ok(Ok(a)), Ok(Ok(b))) => assert_eq!(a, b, "cut at {len}"),
                (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "cut at {len}"),
            }
        }
    }

    #[test]
    fn every_truncation_reads_sparse_as_it_decodes_dense() {
        let img = sample_image(3);
        // Under Miri, a sample of the lengths: each decode is thousands of times slower.
        let step = if cfg!(miri) { 97 } else { 1 };
        for len in (0..img.len()).step_by(step) {
            let cut = &img[..len];
            let dense = crate::decode(cut);
            let sparse = sparse(cut).decode();
            match (dense, sparse) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "cut at {len}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "cut at {len}"),
                (a, b) => panic!("cut at {len}: dense {a:?}, sparse {b:?}"),
            }
        }
    }
}
