//! `kill -USR1 <pid>` makes a dump. The signal handler (signal-hook's) only records the
//! signal and wakes the dumper thread through a pipe; the dumper copies and compresses the
//! ring while application threads keep writing. Signals that arrive during a dump coalesce
//! into one more dump.

use std::sync::Arc;
use std::thread::JoinHandle;

use flightrec_format::TriggerReason;
use signal_hook::iterator::{Handle, Signals};

use crate::shared::Shared;

/// The dumper thread; stopped and joined on drop.
pub(crate) struct Dumper {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Dumper {
    pub(crate) fn start(shared: Arc<Shared>, signal: i32) -> std::io::Result<Dumper> {
        let mut signals = Signals::new([signal])?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("flightrec-dumper".into())
            .spawn(move || loop {
                // Blocks until at least one signal is pending; a burst arrives as one wake-up.
                let got = signals.wait().next();
                if signals.is_closed() {
                    return;
                }
                if let Some(sig) = got {
                    // Never calls tracing: the dump must not depend on the logging pipeline.
                    let t = super::trigger(TriggerReason::Signal, sig as u32, 0, String::new());
                    // Every thread's stack when the process asks for it (FLIGHTREC_STACKS=1)
                    // or `flightrec snapshot --stacks` did (a flag in the ring's header).
                    let wanted = shared
                        .ring
                        .header_word(flightrec_format::layout::header::STACKS_WANTED)
                        .swap(0, std::sync::atomic::Ordering::AcqRel)
                        != 0;
                    if wanted || shared.stacks_on_snapshot {
                        let _ = shared.dump_with_stacks(
                            &t,
                            &super::all_threads(&shared.ring),
                            flightrec_format::layout::stacks::REASON_SNAPSHOT,
                        );
                    } else {
                        let _ = shared.dump(&t);
                    }
                }
            })?;
        Ok(Dumper {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for Dumper {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
