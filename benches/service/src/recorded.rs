//! What a recording variant keeps per request: bytes of flightrec's ring (read from its ring
//! file, as `flightrec info` reads one) or of dial9's trace files, and how far back
//! flightrec's ring reaches at the load it was under.

use std::path::Path;

use anyhow::Context as _;

/// One look at a live ring file, between two phases (the server idle).
#[derive(Clone, Copy, Debug)]
pub struct RingLook {
    /// Records every thread attempted since the ring began: kept, overwritten or dropped.
    pub attempted: u64,
    /// Records the ring holds now.
    pub held: u64,
    /// The bytes of the chunks that hold them.
    pub held_bytes: u64,
    /// How far back the ring reaches for its thread that reaches least far, among the
    /// threads whose oldest records were overwritten (ns); `None` before it wrapped.
    pub reach_ns: Option<u64>,
    /// The history on disk beside the ring: its bytes, and the chunks its writer wrote there
    /// and left out (0 without history).
    pub history_disk_bytes: u64,
    pub history_archived: u64,
    pub history_skipped: u64,
}

impl RingLook {
    pub fn of(path: &Path) -> anyhow::Result<RingLook> {
        let image = flightrec_format::read_image(path)
            .with_context(|| format!("reading the ring {}", path.display()))?;
        let scan = image.scan().context("scanning the ring")?;
        let chunks: u64 = scan.activity().map(|(_, c)| c.len() as u64).sum();
        let threads = &scan.recording.threads;
        Ok(RingLook {
            attempted: threads
                .iter()
                .map(|t| t.records + t.overwritten + t.dropped)
                .sum(),
            held: threads.iter().map(|t| t.records).sum(),
            held_bytes: chunks * u64::from(scan.recording.chunk_size),
            reach_ns: threads
                .iter()
                .filter(|t| t.overwritten > 0)
                .filter_map(|t| t.covers_ns())
                .min(),
            history_disk_bytes: flightrec_format::history::disk_bytes(
                &flightrec_format::history::dir_of(path),
            ),
            history_archived: scan.recording.history.archived,
            history_skipped: scan.recording.history.skipped,
        })
    }

    /// How many seconds `HISTORY_BYTES` of history on disk holds at the rate it grew from
    /// this look to `after`, `elapsed` apart.
    pub fn history_holds_s(&self, after: &RingLook, elapsed: std::time::Duration) -> f64 {
        let grew = after
            .history_disk_bytes
            .saturating_sub(self.history_disk_bytes);
        crate::HISTORY_BYTES as f64 / (grew as f64 / elapsed.as_secs_f64())
    }

    /// The ring's bytes per request over a phase that began at `before` and served
    /// `requests`: the records written per request at the ring's bytes per record.
    pub fn bytes_per_request(&self, before: &RingLook, requests: u64) -> f64 {
        let records = self.attempted.saturating_sub(before.attempted) as f64;
        let per_record = self.held_bytes as f64 / self.held.max(1) as f64;
        records * per_record / requests.max(1) as f64
    }
}
