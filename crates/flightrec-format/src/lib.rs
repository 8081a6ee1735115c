//! flightrec's file format: the layout of a ring file, the encoding of records, and a
//! decoder that trusts nothing it reads.
//!
//! This crate has no dependency on `tracing`: the agent and the viewer read recordings
//! through it alone, and the writer (`flightrec`) shares its layout constants and encoder.
#![forbid(unsafe_code)]

pub mod collect;
pub mod damage;
pub mod decode;
pub mod dump;
pub mod history;
pub mod image;
pub mod layout;
pub mod meta;
pub mod record;
pub mod retention;
pub mod seal;
pub mod stacks;
#[doc(hidden)]
pub mod testing;
pub mod trigger;

use std::io::Read;
use std::path::Path;

pub use decode::{
    decode, scan, ChunkActivity, Damage, Record, RecordStream, Recording, Scan, SpanCallsites,
    SpanStack, ThreadSummary,
};
pub use image::{read_image, Image};
pub use meta::{Callsite, Level, ProcessInfo};
pub use record::{FieldValue, RecordKind, Value, Wide};
pub use stacks::{CaptureOutcome, CaptureReason, LoadedModule, StackCapture};
pub use trigger::{Ending, Trigger, TriggerReason, TRIGGER_FOLDED};

/// What can go wrong reading a ring file or a dump.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a flightrec ring or dump (bad magic number)")]
    NotARing,
    #[error("file is truncated: only {len} bytes, too short for a flightrec header")]
    Truncated { len: u64 },
    #[error("{}", unsupported_version(*.0))]
    UnsupportedVersion(u32),
    #[error("corrupt header: {0}")]
    BadHeader(&'static str),
    #[error("corrupt dump: checksum mismatch: zstd cannot decompress it: {0}")]
    BadCompression(String),
    #[error("corrupt dump: checksum mismatch in {0}: it changed after the dump was written")]
    ChecksumMismatch(&'static str),
    #[error("corrupt dump: it decompresses to more than the {declared} bytes its header declares")]
    DumpTooLarge { declared: u64 },
}

/// Reads a ring file or a dump from `path` ("-" for stdin) and returns the whole ring image
/// (decompressed if it was a dump), free chunks included: for writing it out again. Readers
/// use [`read_image`], which holds only the chunks in use. Memory stays bounded by the
/// header's declared size, which is itself capped at `layout::MAX_FILE_SIZE`.
pub fn read_dense_image(path: &Path) -> Result<Vec<u8>, FormatError> {
    let io = |source| FormatError::Io {
        path: path.display().to_string(),
        source,
    };
    let raw = if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::stdin().lock().read_to_end(&mut v).map_err(io)?;
        v
    } else {
        std::fs::read(path).map_err(io)?
    };
    image_from_bytes(raw)
}

/// Turns the bytes of a ring file or a dump into a ring image.
pub fn image_from_bytes(raw: Vec<u8>) -> Result<Vec<u8>, FormatError> {
    if let Some(magic) = raw.first_chunk::<4>() {
        if zstd_magic_damaged(*magic) {
            return Err(damaged_zstd_magic());
        }
    }
    if raw.len() >= 4 && raw[..4] == layout::ZSTD_MAGIC {
        decompress_dump(&raw)
    } else {
        Ok(raw)
    }
}

/// Whether `magic` is zstd's with one bit changed: a dump whose first byte was hit, not
/// some other file.
pub(crate) fn zstd_magic_damaged(magic: [u8; 4]) -> bool {
    (u32::from_le_bytes(magic) ^ u32::from_le_bytes(layout::ZSTD_MAGIC)).count_ones() == 1
}

pub(crate) fn damaged_zstd_magic() -> FormatError {
    FormatError::BadCompression(
        "its first bytes are zstd's magic number with one bit changed".into(),
    )
}

/// Decompresses a dump, refusing to grow past the size its own header declares.
pub fn decompress_dump(compressed: &[u8]) -> Result<Vec<u8>, FormatError> {
    let zerr = |e: std::io::Error| FormatError::BadCompression(e.to_string());
    let mut dec = zstd::stream::read::Decoder::new(compressed).map_err(zerr)?;
    let mut head = vec![0u8; layout::HEADER_SIZE];
    let mut got = 0;
    while got < head.len() {
        match dec.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(zerr(e)),
        }
    }
    head.truncate(got);
    if got < layout::HEADER_SIZE {
        return Err(FormatError::Truncated { len: got as u64 });
    }
    if head[..8] != layout::MAGIC {
        return Err(FormatError::NotARing);
    }
    let declared = layout::get_u64(&head, layout::header::FILE_SIZE).unwrap_or(0);
    if declared > layout::MAX_FILE_SIZE || declared < layout::HEADER_SIZE as u64 {
        return Err(FormatError::BadHeader("file size"));
    }
    let mut image = head;
    image.reserve_exact((declared as usize).saturating_sub(got).min(256 << 20));
    // A dump cut short (a copy interrupted, a full disk) still holds whatever decompresses:
    // `read_to_end` keeps the bytes read before the error, and the decoder counts the rest
    // as missing, as it does for a truncated ring file.
    let _cut_short = dec.take(declared - got as u64 + 1).read_to_end(&mut image);
    if image.len() as u64 > declared {
        return Err(FormatError::DumpTooLarge { declared });
    }
    Ok(image)
}

/// Reads only the start of a ring file or dump: the header and the meta log (process,
/// callsites, threads, trigger), without the chunks. `scan` of the result gives a
/// recording's description cheaply (its chunks count as missing); listing many large
/// dumps stays fast.
pub fn read_head(path: &Path) -> Result<Vec<u8>, FormatError> {
    let io = |source| FormatError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut file, &mut magic).map_err(io)?;
    let compressed = got == 4 && magic == layout::ZSTD_MAGIC;
    let read_err = |e: std::io::Error| {
        if compressed {
            FormatError::BadCompression(e.to_string())
        } else {
            io(e)
        }
    };
    let rest: Box<dyn Read> = if compressed {
        let chained = std::io::Cursor::new(magic).chain(file);
        let dec = zstd::stream::read::Decoder::new(chained)
            .map_err(|e| FormatError::BadCompression(e.to_string()))?;
        Box::new(dec)
    } else {
        Box::new(std::io::Cursor::new(magic[..got].to_vec()).chain(file))
    };
    let mut reader = rest;
    let mut head = vec![0u8; layout::HEADER_SIZE];
    let got = read_up_to(&mut reader, &mut head).map_err(read_err)?;
    head.truncate(got);
    if got < layout::HEADER_SIZE {
        return Ok(head);
    }
    let chunks = layout::get_u64(&head, layout::header::CHUNKS_OFFSET).unwrap_or(0);
    // The meta log is bounded by the format's file size cap; a hostile header gets no more.
    let want = chunks.clamp(
        layout::HEADER_SIZE as u64,
        layout::MAX_FILE_SIZE.min(64 << 20),
    );
    reader
        .take(want - layout::HEADER_SIZE as u64)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    Ok(head)
}

/// Checks that `path` is a recording whose header and meta log read: what a reader can
/// say of a file before reading its records (a file of random bytes fails here).
pub fn check_head(path: &Path) -> Result<(), FormatError> {
    let head = read_head(path)?;
    scan(&head).map(|_| ())
}

/// What a recorder wrote about itself into a ring file's header (snapshot signal, clean
/// shutdown, dump directory). Reads only the header.
pub fn ring_settings(path: &Path) -> Result<layout::RingSettings, FormatError> {
    let io = |source| FormatError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut head = vec![0u8; layout::HEADER_SIZE];
    let got = read_up_to(&mut file, &mut head).map_err(io)?;
    if got < layout::HEADER_SIZE || head[..8] != layout::MAGIC {
        return Err(FormatError::NotARing);
    }
    Ok(layout::RingSettings::parse(&head))
}

/// Fills `buf` as far as the reader allows; returns how much was read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads and decodes a ring file or dump.
pub fn open(path: &Path) -> Result<Recording, FormatError> {
    read_image(path)?.decode()
}

/// Why a file of another format version is refused, and where an older one is read.
fn unsupported_version(version: u32) -> String {
    let reads = layout::FORMAT_VERSION;
    let what = match version {
        1 => Some("fixed-size records"),
        2 => Some("whole messages in every event"),
        _ => None,
    };
    match what {
        Some(what) => format!(
            "format version {version} ({what}), which this build no longer reads (it reads \
             version {reads}): read it with the flightrec that wrote it"
        ),
        None => format!("unsupported format version {version} (this build reads version {reads})"),
    }
}
