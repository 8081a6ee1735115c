//! History on disk: chunks a live ring's writers gave up, compressed one by one into a
//! bounded directory beside the ring, so that a recording reaches back further than the
//! ring holds.
//!
//! A history directory (`<ring file>.history`, see [`dir_of`]) holds segment files named
//! by the sequence number of their first chunk (20 digits, so names sort as numbers) with
//! the extension [`SEGMENT_EXT`]. A segment is [`SEGMENT_MAGIC`], then frames; a frame is
//! the length of what follows (`u32`, little-endian), then one zstd frame, with its
//! checksum, of one chunk: its header and its committed payload (the zeros after them are
//! left out), laid out by columns ([`columns`]), which compresses about 1.6 times smaller
//! than the records as the ring holds them. (A segment that begins [`SEGMENT_MAGIC_V1`],
//! from a recorder before columns, holds each chunk as it is; readers read both.) Segments are only ever appended to, so a process killed while appending
//! leaves at most its last frame cut, which a reader drops. The writer keeps the directory
//! under its byte budget by deleting whole segments, oldest first.
//!
//! A reader of a ring file reads its history with it ([`crate::Image::attach_history`]):
//! the history's chunks join the ring's as more chunks of the same ring, and the decoder
//! reads them as it reads any chunk (a thread's chunks are ordered by sequence number, and a
//! missing chunk is a hole in its history like any other).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::layout::{self, chunk, CHUNK_HEADER_SIZE};

pub mod columns;

pub use columns::Columns;

/// The first bytes of every segment file a recorder writes: its frames hold chunks packed
/// by [`Columns::pack`].
pub const SEGMENT_MAGIC: [u8; 8] = *b"FLTRHIS\x02";
/// The first bytes of a segment whose frames hold chunks as they are (the first version).
pub const SEGMENT_MAGIC_V1: [u8; 8] = *b"FLTRHIS\x01";
/// The extension of segment files.
pub const SEGMENT_EXT: &str = "seg";
/// The longest frame a reader accepts: a chunk is at most `MAX_CHUNK_SIZE` bytes, and zstd
/// adds little to incompressible bytes.
const MAX_FRAME: usize = layout::MAX_CHUNK_SIZE + 4096;

/// The history directory of the ring file `ring`.
pub fn dir_of(ring: &Path) -> PathBuf {
    let mut name = ring.as_os_str().to_owned();
    name.push(".history");
    PathBuf::from(name)
}

/// The name of the segment whose first chunk has sequence number `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:020}.{SEGMENT_EXT}")
}

/// The segment files in `dir`, oldest first; none when it cannot be read.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, SEGMENT_EXT)
}

/// The files in `dir` whose extension is `ext`, sorted by name; none when `dir` cannot be
/// read. (Ring files are listed by it too.)
pub(crate) fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// One chunk as a frame of a [`SEGMENT_MAGIC`] segment: its header and committed payload
/// (`chunk` may be longer; what follows the committed payload is left out), packed by
/// `columns` (laid out by columns when `by_columns`, as it is otherwise) and compressed by
/// `z`, after its length.
pub fn encode_frame(
    chunk_bytes: &[u8],
    z: &mut zstd::bulk::Compressor<'_>,
    columns: &mut Columns,
    by_columns: bool,
) -> std::io::Result<Vec<u8>> {
    let committed = layout::get_u32(chunk_bytes, chunk::COMMITTED_LEN).unwrap_or(0) as usize;
    let chunk_bytes = &chunk_bytes[..(CHUNK_HEADER_SIZE + committed).min(chunk_bytes.len())];
    let packed = match by_columns {
        true => columns.pack(chunk_bytes),
        false => columns.plain(chunk_bytes),
    };
    let packed = z.compress(packed)?;
    let mut frame = Vec::with_capacity(4 + packed.len());
    frame.extend_from_slice(&(packed.len() as u32).to_le_bytes());
    frame.extend_from_slice(&packed);
    Ok(frame)
}

/// A recording's history on disk, as far as its image tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryCounts {
    /// Chunks read from the history with the ring (0: none was read with it).
    pub attached: u64,
    /// Chunks the recorder's history thread wrote to disk, and chunks it left out (its
    /// budget spent, or the disk too slow or full); both 0 without history.
    pub archived: u64,
    pub skipped: u64,
}

/// What reading a history found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRead {
    /// Chunks handed on.
    pub chunks: u64,
    /// Frames that were cut or did not decompress to a chunk (a segment's reading ends at
    /// the first).
    pub bad_frames: u64,
}

/// Reads the chunks of the history in `dir`, oldest segment first, and hands each to
/// `chunk` as `chunk_size` bytes (its header, its payload, zeros), skipping the first
/// `skip`. Nothing is trusted: a frame that is cut, too long, or does not decompress to at
/// most `chunk_size` bytes ends its segment and is counted.
pub fn read_chunks(
    dir: &Path,
    chunk_size: usize,
    skip: u64,
    mut chunk: impl FnMut(&[u8]),
) -> HistoryRead {
    let mut read = HistoryRead::default();
    let mut seen = 0u64;
    let mut z = zstd::bulk::Decompressor::new().ok();
    let mut buf = vec![0u8; chunk_size];
    // A packed chunk is at most one byte longer than the chunk.
    let mut unpacked = vec![0u8; chunk_size + 1];
    for seg in segments(dir) {
        let Ok(file) = std::fs::File::open(&seg) else {
            continue;
        };
        let mut r = std::io::BufReader::new(file);
        let mut magic = [0u8; 8];
        let by_columns = match r.read_exact(&mut magic) {
            Ok(()) if magic == SEGMENT_MAGIC => true,
            Ok(()) if magic == SEGMENT_MAGIC_V1 => false,
            _ => {
                read.bad_frames += 1;
                continue;
            }
        };
        let mut packed = Vec::new();
        loop {
            let mut len = [0u8; 4];
            match r.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(_) => {
                    read.bad_frames += 1;
                    break;
                }
            }
            let len = u32::from_le_bytes(len) as usize;
            if len > MAX_FRAME {
                read.bad_frames += 1;
                break;
            }
            packed.resize(len, 0);
            if r.read_exact(&mut packed).is_err() {
                read.bad_frames += 1;
                break;
            }
            seen += 1;
            if seen <= skip {
                continue;
            }
            let n = match by_columns {
                true => z
                    .as_mut()
                    .and_then(|z| z.decompress_to_buffer(&packed, &mut unpacked[..]).ok())
                    .and_then(|n| columns::unpack(&unpacked[..n], &mut buf)),
                false => z
                    .as_mut()
                    .and_then(|z| z.decompress_to_buffer(&packed, &mut buf[..]).ok()),
            };
            match n {
                Some(n) if n >= CHUNK_HEADER_SIZE => {
                    // zstd may write scratch bytes past what it decompressed (its copies
                    // run over by up to a word or so), and the chunk before may have been
                    // longer: the chunk's unused tail is zeros.
                    buf[n..].fill(0);
                    chunk(&buf);
                    read.chunks += 1;
                }
                _ => {
                    read.bad_frames += 1;
                    break;
                }
            }
        }
    }
    read
}

/// Appends the history in `dir` to a ring's chunks: `ring_seqs` are the sequence numbers
/// of the chunks the ring holds (not added twice), `room` how many chunks may be added (the
/// newest are kept). `push` gets each chunk to add. Returns how many were added.
pub(crate) fn append_to_ring(
    dir: &Path,
    chunk_size: usize,
    ring_seqs: &std::collections::HashSet<u64>,
    room: u64,
    mut push: impl FnMut(&[u8]),
) -> u64 {
    let skip = count_frames(dir).saturating_sub(room);
    let mut added = 0u64;
    read_chunks(dir, chunk_size, skip, |c| {
        let word = layout::get_u64(c, chunk::STATE).unwrap_or(0);
        let phase = layout::state::phase(word);
        let written = phase == layout::state::ACTIVE || phase == layout::state::RETIRED;
        if written && !ring_seqs.contains(&layout::state::seq(word)) && added < room {
            push(c);
            added += 1;
        }
    });
    added
}

/// How many chunks a ring of `file_size` bytes and `chunk_count` chunks of `chunk_size`
/// can be given before it passes the largest image a reader accepts.
pub(crate) fn room(file_size: u64, chunk_size: u64, chunk_count: u32) -> u64 {
    (layout::MAX_FILE_SIZE.saturating_sub(file_size) / chunk_size.max(1))
        .min(u64::from(u32::MAX - chunk_count))
}

/// Rewrites a header (`head`, at least `HEADER_SIZE` bytes) for `added` more chunks after
/// the pool: the pool, the file and the stack area's place grow, and the header says how
/// many chunks came from the history.
pub(crate) fn grow_header(head: &mut [u8], added: u64, chunk_size: u64) {
    use crate::layout::header;
    let grown = added * chunk_size;
    let count = layout::get_u32(head, header::CHUNK_COUNT).unwrap_or(0);
    layout::put_u32(head, header::CHUNK_COUNT, count + added as u32);
    let size = layout::get_u64(head, header::FILE_SIZE).unwrap_or(0);
    layout::put_u64(head, header::FILE_SIZE, size + grown);
    let stacks = layout::get_u64(head, header::STACKS_OFFSET).unwrap_or(0);
    if stacks != 0 {
        layout::put_u64(head, header::STACKS_OFFSET, stacks + grown);
    }
    layout::put_u64(head, header::HISTORY_ATTACHED, added);
}

/// Adds the chunks of the history in `dir` to `image`, the whole bytes of a ring file, as
/// [`crate::Image::attach_history`] does for the image a reader holds: for turning a ring
/// and its history into one dump. At most `max_bytes` of chunks are added, the newest.
/// Returns how many chunks were added; none when `image` is not a whole ring file (a dump,
/// a cut file, a header that does not add up).
pub fn extend_ring_file(image: &mut Vec<u8>, dir: &Path, max_bytes: u64) -> u64 {
    use crate::layout::header;
    let h64 = |off| layout::get_u64(image, off).unwrap_or(0);
    let h32 = |off| layout::get_u32(image, off).unwrap_or(0);
    let (file_size, offset) = (h64(header::FILE_SIZE), h64(header::CHUNKS_OFFSET));
    let (size, count) = (u64::from(h32(header::CHUNK_SIZE)), h32(header::CHUNK_COUNT));
    let pool_end = offset.saturating_add(size.saturating_mul(u64::from(count)));
    let usable = image.len() as u64 == file_size
        && image.len() >= layout::HEADER_SIZE
        && image[..8] == layout::MAGIC
        && h32(header::FLAGS) & layout::FLAG_DUMP == 0
        && (layout::MIN_CHUNK_SIZE as u64..=layout::MAX_CHUNK_SIZE as u64).contains(&size)
        && offset >= layout::HEADER_SIZE as u64
        && pool_end <= file_size
        && dir.is_dir();
    if !usable {
        return 0;
    }
    let ring_seqs = (0..u64::from(count))
        .filter_map(|i| layout::get_u64(image, (offset + i * size) as usize + chunk::STATE))
        .filter(|w| layout::state::phase(*w) != layout::state::FREE)
        .map(layout::state::seq)
        .collect();
    let tail = image.split_off(pool_end as usize);
    let room = room(file_size, size, count).min(max_bytes / size);
    let added = append_to_ring(dir, size as usize, &ring_seqs, room, |c| {
        image.extend_from_slice(c)
    });
    image.extend_from_slice(&tail);
    grow_header(image, added, size);
    added
}

/// How many frames the history in `dir` holds whole (their lengths read, not decompressed).
pub fn count_frames(dir: &Path) -> u64 {
    let mut n = 0;
    for seg in segments(dir) {
        let Ok(file) = std::fs::File::open(&seg) else {
            continue;
        };
        let total = file.metadata().map_or(0, |m| m.len());
        let mut r = std::io::BufReader::new(file);
        let mut magic = [0u8; 8];
        if r.read_exact(&mut magic).is_err()
            || (magic != SEGMENT_MAGIC && magic != SEGMENT_MAGIC_V1)
        {
            continue;
        }
        let mut at = 8u64;
        loop {
            let mut len = [0u8; 4];
            if r.read_exact(&mut len).is_err() {
                break;
            }
            let len = u32::from_le_bytes(len) as u64;
            if len > MAX_FRAME as u64 || at + 4 + len > total {
                break;
            }
            if r.seek_relative(len as i64).is_err() {
                break;
            }
            at += 4 + len;
            n += 1;
        }
    }
    n
}

/// The bytes of the history in `dir` on disk.
pub fn disk_bytes(dir: &Path) -> u64 {
    segments(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ChunkFields;

    fn chunk(seq: u64, payload: &[u8], size: usize) -> Vec<u8> {
        let mut c = vec![0u8; size];
        ChunkFields {
            state: layout::state::pack(seq, layout::state::RETIRED),
            committed_len: payload.len() as u32,
            ..ChunkFields::default()
        }
        .write(&mut c);
        c[CHUNK_HEADER_SIZE..CHUNK_HEADER_SIZE + payload.len()].copy_from_slice(payload);
        c
    }

    fn segment(dir: &Path, first: u64, chunks: &[Vec<u8>]) -> PathBuf {
        let mut z = zstd::bulk::Compressor::new(1).unwrap();
        z.include_checksum(true).unwrap();
        let mut bytes = SEGMENT_MAGIC.to_vec();
        let mut columns = Columns::default();
        for c in chunks {
            bytes.extend(encode_frame(c, &mut z, &mut columns, true).unwrap());
        }
        let path = dir.join(segment_name(first));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flightrec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn chunks_come_back_whole_oldest_segment_first_after_the_skipped_ones() {
        let dir = temp_dir("history-order");
        let a: Vec<Vec<u8>> = (1..=3).map(|s| chunk(s, &[s as u8; 40], 1024)).collect();
        let b: Vec<Vec<u8>> = (10..=11).map(|s| chunk(s, &[s as u8; 7], 1024)).collect();
        segment(&dir, 10, &b);
        segment(&dir, 1, &a);
        let mut got = Vec::new();
        let read = read_chunks(&dir, 1024, 1, |c| got.push(c.to_vec()));
        assert_eq!(
            read,
            HistoryRead {
                chunks: 4,
                bad_frames: 0
            }
        );
        let want: Vec<Vec<u8>> = a[1..].iter().chain(&b).cloned().collect();
        assert_eq!(got, want);
        assert_eq!(count_frames(&dir), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A history written before columns (each chunk as it is) reads as it did.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_first_version_segment_reads_beside_a_new_one() {
        let dir = temp_dir("history-v1");
        let old: Vec<Vec<u8>> = (1..=2).map(|s| chunk(s, &[s as u8; 50], 1024)).collect();
        let mut bytes = SEGMENT_MAGIC_V1.to_vec();
        for c in &old {
            let packed = zstd::bulk::compress(&c[..CHUNK_HEADER_SIZE + 50], 1).unwrap();
            bytes.extend((packed.len() as u32).to_le_bytes());
            bytes.extend(packed);
        }
        std::fs::write(dir.join(segment_name(1)), bytes).unwrap();
        let new = vec![chunk(3, &[3; 60], 1024)];
        segment(&dir, 3, &new);
        let mut got = Vec::new();
        let read = read_chunks(&dir, 1024, 0, |c| got.push(c.to_vec()));
        assert_eq!((read.chunks, read.bad_frames), (3, 0));
        assert_eq!(got, [&old[..], &new[..]].concat());
        assert_eq!(count_frames(&dir), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What a process killed while appending leaves: the last frame cut at any byte. The
    /// frames before it read; the cut one is dropped and counted; nothing panics.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_segment_cut_anywhere_in_its_last_frame_reads_up_to_it() {
        let dir = temp_dir("history-cut");
        let chunks: Vec<Vec<u8>> = (1..=2).map(|s| chunk(s, &[7; 300], 2048)).collect();
        let path = segment(&dir, 1, &chunks);
        let whole = std::fs::read(&path).unwrap();
        let first_end = 8 + 4 + u32::from_le_bytes(whole[8..12].try_into().unwrap()) as usize;
        for cut in first_end + 1..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let mut got = Vec::new();
            let read = read_chunks(&dir, 2048, 0, |c| got.push(c.to_vec()));
            assert_eq!(got, chunks[..1], "cut at {cut}");
            assert_eq!(read.chunks, 1);
            assert_eq!(count_frames(&dir), 1, "cut at {cut}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_frame_larger_than_a_chunk_or_not_zstd_ends_its_segment() {
        let dir = temp_dir("history-bad");
        let good = chunk(1, &[1; 100], 1024);
        let path = segment(&dir, 1, &[good.clone(), chunk(2, &[2; 2000], 4096)]);
        let mut got = 0;
        let read = read_chunks(&dir, 1024, 0, |_| got += 1);
        assert_eq!(
            (got, read.bad_frames),
            (1, 1),
            "a 4 KiB chunk in a 1 KiB ring"
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let read = read_chunks(&dir, 4096, 0, |_| {});
        assert_eq!(
            read,
            HistoryRead {
                chunks: 1,
                bad_frames: 1
            }
        );
        std::fs::write(dir.join(segment_name(5)), b"not a segment").unwrap();
        assert_eq!(read_chunks(&dir, 4096, 0, |_| {}).bad_frames, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
