//! Progress on long reads: while a big recording is read, decoded and analysed, a line on
//! stderr says which step it is in, with a bar over the records while they are decoded.
//! Drawn only on a terminal (nothing when stderr is piped or redirected), and only for
//! inputs big enough to take about a second: a small dump reads without a flicker.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Input bytes from which a read takes about a second on a small machine (a dump of about
/// 1 M records): below, nothing is drawn.
const SHOW_FROM_BYTES: u64 = 8 << 20;

/// Set (to anything) to draw for inputs of any size, still only on a terminal.
const ALWAYS: &str = "FLIGHTREC_PROGRESS_ALWAYS";

/// The progress of reading one recording.
pub(crate) struct Reading {
    bar: ProgressBar,
    /// The bar shows the records' count once decoding starts.
    counting: bool,
}

impl Reading {
    /// Starts showing the read of `path` (as a spinner until the records are counted).
    pub(crate) fn start(path: &Path) -> Reading {
        let big = std::env::var_os(ALWAYS).is_some()
            || std::fs::metadata(path).is_ok_and(|m| m.len() >= SHOW_FROM_BYTES);
        let bar = ProgressBar::new_spinner();
        if !big || !std::io::stderr().is_terminal() {
            // Nothing to draw: no ticker thread either.
            return Reading {
                bar: ProgressBar::hidden(),
                counting: true,
            };
        }
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("reading {}", path.display()));
        // Each step is drawn as it begins, whatever the refresh rate lets through.
        bar.force_draw();
        bar.enable_steady_tick(Duration::from_millis(100));
        Reading {
            bar,
            counting: false,
        }
    }

    /// Decodes `image`, the bar following the records.
    pub(crate) fn decode(
        &mut self,
        image: &flightrec_format::Image,
    ) -> Result<flightrec_format::Recording, flightrec_format::FormatError> {
        image.decode_counting(|done, expected| {
            if !self.counting {
                self.counting = true;
                self.bar.set_length(expected.max(done));
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} decoding records [{bar:40}] {human_pos}/{human_len} ({eta} left)",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                self.bar.set_length(expected.max(done));
                self.bar.set_position(done);
                self.bar.force_draw();
            }
            self.bar.set_length(expected.max(done));
            self.bar.set_position(done);
        })
    }

    /// The records are in: the rest is one step, said in words (`finding bugs`).
    pub(crate) fn step(&self, what: &str) {
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(what.to_string());
        self.bar.force_draw();
    }
}

impl Reading {
    /// Runs `f` (which prints on stderr) with the line out of its way.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }
}

impl Drop for Reading {
    /// The line is gone once the answer is printed.
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
