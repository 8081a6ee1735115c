//! The state a recorder shares with its layers, locks, task hooks and triggers, and the
//! one way a dump is made of it (one at a time, later triggers folding in).

use std::path::PathBuf;
use std::sync::Arc;

use flightrec_format::record::{Encoder, RecordKind, PARENT_ROOT};
use flightrec_format::Trigger;

use crate::callsites::CallsiteTable;
use crate::ring::writer::{os_tid, with_writer};
use crate::ring::{clock, Ring};
use crate::Error;

/// State shared by a recorder, its layers and its triggers.
pub(crate) struct Shared {
    pub(crate) ring: Arc<Ring>,
    pub(crate) callsites: CallsiteTable,
    /// Where dumps go and what they are named after.
    pub(crate) dir: std::path::PathBuf,
    pub(crate) service: String,
    pub(crate) pid: u32,
    /// Retention of the service's dumps in `dir`.
    pub(crate) quota: flightrec_format::retention::Quota,
    /// flightrec's own "dump failed" callsite (fields: message, error, reason).
    pub(crate) dump_failed: u32,
    /// flightrec's own "trigger folded" callsite (fields: message, trigger, reason): a
    /// trigger that arrived while a dump was being written, and went into that dump.
    pub(crate) trigger_folded: u32,
    /// The dump being written, if any, and the triggers that folded into it.
    pub(crate) dumps: DumpQueue,
    /// A recording that ends cleanly is kept as a dump (`Builder::keep_on_exit`,
    /// `FLIGHTREC_KEEP=1`)...
    pub(crate) keep_on_exit: bool,
    /// ...once: when the recorder is dropped, or at `exit` for one never dropped.
    pub(crate) kept: std::sync::atomic::AtomicBool,
    /// A panic's dump was written: the recording is not kept again at its end.
    pub(crate) panic_dumped: std::sync::atomic::AtomicBool,
    /// Snapshots capture every thread's native stack (`Builder::stacks_on_snapshot`, or
    /// `FLIGHTREC_STACKS=1`).
    pub(crate) stacks_on_snapshot: bool,
    /// Each dump written is announced with one line on stderr (`Builder::announce_dumps`).
    pub(crate) announce: bool,
}

impl Shared {
    /// Records that a dump failed, as an ERROR event in the ring, written directly (never
    /// through tracing, which may be what is stuck). It shows in the next dump, or when the
    /// ring is collected.
    /// Records (on the dump writer's thread) that `t`, a later trigger than the dump's own,
    /// folded into the dump under way: its description, reason, thread and time.
    pub(crate) fn record_trigger_folded(&self, t: &flightrec_format::Trigger) {
        let ticks = clock::ticks();
        let description = t.describe();
        with_writer(&self.ring, |w| {
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::Event, self.trigger_folded, ticks);
                e.id(PARENT_ROOT);
                e.field_bytes(
                    0,
                    flightrec_format::record::tag::STR,
                    b"trigger folded into this dump",
                );
                e.field_bytes(
                    1,
                    flightrec_format::record::tag::STR,
                    description.as_bytes(),
                );
                e.field_bytes(
                    2,
                    flightrec_format::record::tag::STR,
                    t.reason.slug().as_bytes(),
                );
                e.field_u64(3, t.tid);
                e.field_i64(4, t.wall_ns);
                e.finish()
            })
        });
    }

    pub(crate) fn record_dump_failure(&self, reason: &str, error: &str) {
        let ticks = clock::ticks();
        with_writer(&self.ring, |w| {
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::Event, self.dump_failed, ticks);
                e.id(PARENT_ROOT);
                e.field_bytes(0, flightrec_format::record::tag::STR, b"dump failed");
                e.field_bytes(1, flightrec_format::record::tag::STR, error.as_bytes());
                e.field_bytes(2, flightrec_format::record::tag::STR, reason.as_bytes());
                e.finish()
            })
        });
    }
}

impl Shared {
    /// Writes a dump of the ring with `trigger`, then deletes the service's oldest dumps
    /// beyond the retention limits. A failure is also recorded in the ring as an ERROR
    /// event (see `record_dump_failure`), so a dump triggered by a signal, a stall or a
    /// panic does not fail silently.
    pub(crate) fn dump(&self, trigger: &Trigger) -> Result<PathBuf, Error> {
        self.dump_with_stacks(trigger, &[], 0)
    }

    /// As `dump`, with the native stacks of the threads `tids` captured first (at most
    /// `stacks::ANSWER_TIMEOUT` waiting for them); `reason` is a
    /// `layout::stacks::REASON_*`.
    ///
    /// One dump at a time: a trigger that arrives while another thread copies and
    /// compresses a dump (two requests panicking 5 ms apart) folds into that dump instead
    /// of making its own. The dump is then copied again, so it holds what the folded
    /// trigger recorded before it asked; the earliest trigger is the dump's own, and each
    /// other one is recorded (a `trigger folded` event, with its time and thread) before
    /// that copy. A folded trigger's caller gets the same path. Once the last copy is
    /// taken, a new trigger waits for the dump to be written and then makes its own.
    pub(crate) fn dump_with_stacks(
        &self,
        trigger: &Trigger,
        tids: &[u64],
        reason: u32,
    ) -> Result<PathBuf, Error> {
        let me = os_tid();
        {
            let mut q = self.dumps.state.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(writer) = q.writer {
                if writer == me {
                    // A trigger inside our own dump (a panic while writing it): waiting
                    // would wait for ourselves.
                    return Err(Error::DumpInProgress);
                }
                let folds = !q.sealed;
                if folds {
                    q.pending.push(trigger.clone());
                }
                let generation = q.generation;
                while q.generation == generation {
                    q = self.dumps.done.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if folds {
                    return q.last.clone().ok_or(Error::DumpInProgress);
                }
                // Too late to fold into that one (it was being written out): our own.
            }
            q.writer = Some(me);
        }
        let session = if tids.is_empty() {
            None
        } else {
            crate::ring::stacks::capture(&self.ring, tids, reason)
        };
        let mut primary = trigger.clone();
        let compressed = loop {
            let compressed =
                crate::snapshot::copy_compressed(&self.ring, &primary, session.as_ref());
            let newly = {
                let mut q = self.dumps.state.lock().unwrap_or_else(|e| e.into_inner());
                q.sealed = q.pending.is_empty() || compressed.is_err();
                std::mem::take(&mut q.pending)
            };
            if newly.is_empty() || compressed.is_err() {
                break compressed;
            }
            for t in newly {
                let later = if t.wall_ns < primary.wall_ns {
                    std::mem::replace(&mut primary, t)
                } else {
                    t
                };
                self.record_trigger_folded(&later);
            }
        };
        drop(session);
        let written = compressed.and_then(|c| {
            flightrec_format::dump::write_compressed(
                &self.dir,
                &self.service,
                self.pid,
                primary.reason,
                &c,
            )
            .map_err(Error::from)
        });
        {
            let mut q = self.dumps.state.lock().unwrap_or_else(|e| e.into_inner());
            q.writer = None;
            q.sealed = false;
            q.generation += 1;
            q.last = written.as_ref().ok().cloned();
            self.dumps.done.notify_all();
        }
        match written {
            Ok(path) => {
                if self.announce {
                    crate::ring::write_stderr(&format!(
                        "flightrec: {} dump written to {}\n",
                        primary.reason.slug(),
                        path.display()
                    ));
                }
                let pruned =
                    flightrec_format::retention::prune(&self.dir, &self.service, self.quota);
                if self.announce {
                    announce_pruned(&pruned);
                }
                Ok(path)
            }
            Err(e) => {
                self.record_dump_failure(trigger.reason.slug(), &e.to_string());
                Err(e)
            }
        }
    }
}

/// One dump at a time, and the triggers that fold into it (see `Shared::dump_with_stacks`).
#[derive(Default)]
pub(crate) struct DumpQueue {
    state: std::sync::Mutex<DumpQueueState>,
    /// Notified when a dump is written (or failed).
    done: std::sync::Condvar,
}

impl DumpQueue {
    /// A dump is being copied or compressed, and a trigger arriving now folds into it.
    pub(crate) fn folds_now(&self) -> bool {
        let q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        q.writer.is_some() && !q.sealed
    }
}

#[derive(Default)]
struct DumpQueueState {
    /// The thread writing a dump now.
    writer: Option<u64>,
    /// Triggers folded into the dump under way since its last copy.
    pending: Vec<Trigger>,
    /// The dump under way holds its last copy: a trigger now waits for it, then makes its
    /// own.
    sealed: bool,
    /// Dumps finished so far: what a folded trigger waits to see change.
    generation: u64,
    /// The last dump written (`None` when it failed).
    last: Option<PathBuf>,
}

impl Shared {
    /// The clean end of a recording asked to be kept: a dump with trigger `exit`, once.
    pub(crate) fn keep_at_end(&self) {
        if !self.keep_on_exit || self.kept.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        // One dump per recording: a panic's dump already holds it.
        if self.panic_dumped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let t = crate::trigger::trigger(
            flightrec_format::TriggerReason::Exit,
            0,
            os_tid(),
            String::new(),
        );
        // A failure is recorded in the ring by `dump`; at the end there is no one to tell.
        let _ = self.dump(&t);
    }
}

/// Recordings to keep at `exit` (those never dropped: `init()` leaks its recorder).
static KEEP_AT_EXIT: std::sync::Mutex<Vec<std::sync::Weak<Shared>>> =
    std::sync::Mutex::new(Vec::new());

/// Keeps `shared`'s recording as a dump if the process exits before it is dropped.
/// One line on stderr per dump retention removed.
pub(crate) fn announce_pruned(pruned: &[PathBuf]) {
    for p in pruned {
        crate::ring::write_stderr(&format!(
            "flightrec: retention removed the dump {}\n",
            p.display()
        ));
    }
}

pub(crate) fn keep_at_exit(shared: &Arc<Shared>) {
    let mut list = KEEP_AT_EXIT.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|s| s.strong_count() > 0);
    list.push(Arc::downgrade(shared));
    drop(list);
    crate::ring::before_close_at_exit(keep_all_at_exit);
}

fn keep_all_at_exit() {
    // `try_lock`, as the ring's exit hook: never hang an exit on a list being changed.
    let Ok(list) = KEEP_AT_EXIT.try_lock() else {
        return;
    };
    let alive: Vec<Arc<Shared>> = list.iter().filter_map(std::sync::Weak::upgrade).collect();
    drop(list);
    for s in alive {
        s.keep_at_end();
    }
}
