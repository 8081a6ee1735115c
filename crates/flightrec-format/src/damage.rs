//! What could not be read of an image, counted, and said in words, by kind: cut (bytes
//! missing), checksum mismatch (bytes changed), malformed (bytes that do not parse).

use crate::seal::Section;

/// Counts of what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Damage {
    /// The image is shorter than its header says.
    pub cut: bool,
    /// Bytes that were written (the meta log's committed part, chunks that claims reached)
    /// and are missing from a cut image; ring space that never held anything is not
    /// counted.
    pub missing_bytes: u64,
    /// Chunks that lie (partly) beyond the end of the image.
    pub missing_chunks: u64,
    /// Chunks whose header is inconsistent; all their records are lost.
    pub bad_chunks: u64,
    /// Chunks that ended in bytes that do not parse as a record; the records before them
    /// are kept.
    pub bad_chunk_tails: u64,
    /// Chunks being re-initialised when the image was taken (expected, not damage).
    pub claiming_chunks: u64,
    /// Chunks the dumper saw recycled under it while copying a live ring.
    pub recycled_during_copy: u64,
    /// The meta log stopped parsing before its committed end.
    pub meta_damaged: bool,
    /// Sections of a sealed dump whose checksum does not match (see [`crate::seal`]):
    /// their bytes changed after the dump was written.
    pub checksum_mismatch: Vec<Section>,
    /// The compressed dump failed zstd's own check (a corrupt frame or a frame checksum
    /// mismatch): what decompressed before the failure is kept.
    pub compression_corrupt: Option<String>,
}

impl Damage {
    /// Whether anything was actually damaged (as opposed to merely in flux).
    pub fn is_damaged(&self) -> bool {
        self.cut
            || self.missing_bytes > 0
            || self.missing_chunks > 0
            || self.bad_chunks > 0
            || self.bad_chunk_tails > 0
            || self.meta_damaged
            || !self.checksum_mismatch.is_empty()
            || self.compression_corrupt.is_some()
    }

    /// Whether bytes were changed, not just lost: a checksum failed.
    pub fn is_corrupt(&self) -> bool {
        !self.checksum_mismatch.is_empty() || self.compression_corrupt.is_some()
    }

    /// What is missing, in words (`the file is cut: 812 KiB missing, 52 chunks lost`), or
    /// `None` when nothing is damaged.
    pub fn describe(&self) -> Option<String> {
        if !self.is_damaged() {
            return None;
        }
        let plural = |n: u64, one: &str, many: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {many}")
            }
        };
        let mut kinds = Vec::new();
        if self.is_corrupt() {
            let mut what: Vec<String> = self
                .checksum_mismatch
                .iter()
                .map(|s| s.describe().to_string())
                .collect();
            if let Some(z) = &self.compression_corrupt {
                what.push(format!("the compressed data ({z})"));
            }
            kinds.push(format!("checksum mismatch in {}", what.join(" and ")));
        }
        // A zstd failure ends decompression where it happens: what follows is lost, not cut.
        let lost_to_corruption = self.compression_corrupt.is_some();
        let mut cut = Vec::new();
        if self.missing_bytes > 0 {
            cut.push(format!(
                "{} of written data missing",
                human_bytes(self.missing_bytes)
            ));
        }
        if self.missing_chunks > 0 {
            cut.push(plural(self.missing_chunks, "chunk lost", "chunks lost"));
        }
        if !cut.is_empty() {
            let verb = if lost_to_corruption {
                "unreadable after it"
            } else {
                "the file is cut"
            };
            kinds.push(format!("{verb}: {}", cut.join(", ")));
        } else if self.cut && !lost_to_corruption {
            kinds.push("the file is cut, after everything written".into());
        }
        let mut malformed = Vec::new();
        if self.bad_chunks > 0 {
            malformed.push(plural(
                self.bad_chunks,
                "chunk unreadable",
                "chunks unreadable",
            ));
        }
        if self.bad_chunk_tails > 0 {
            malformed.push(plural(
                self.bad_chunk_tails,
                "chunk ends in unreadable bytes",
                "chunks end in unreadable bytes",
            ));
        }
        if self.meta_damaged {
            malformed.push("the names table is damaged (some names unknown)".into());
        }
        if !malformed.is_empty() {
            kinds.push(format!("malformed: {}", malformed.join(", ")));
        }
        Some(kinds.join("; "))
    }
}

/// A byte count for people: `812 KiB`, `3.1 MiB`.
fn human_bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f < KIB {
        format!("{n} bytes")
    } else if f < KIB * KIB {
        format!("{:.0} KiB", f / KIB)
    } else if f < KIB * KIB * KIB {
        format!("{:.1} MiB", f / (KIB * KIB))
    } else {
        format!("{:.1} GiB", f / (KIB * KIB * KIB))
    }
}
