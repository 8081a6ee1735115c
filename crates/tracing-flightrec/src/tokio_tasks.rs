//! tokio's tasks, recorded through the runtime's task hooks (the `tokio` feature, which needs
//! `--cfg tokio_unstable`, as tokio's hooks do).
//!
//! A task is recorded as a span of flightrec's own `tokio_task` callsite (see
//! `flightrec_format::meta::tokio_task`): created at spawn with the task id and where it
//! was spawned, entered on the worker for each poll, exited after it, closed when the task
//! terminates. Spans the task enters nest inside its polls, so every reader that
//! reconstructs spans sees the task as the outermost span of whatever it ran, with no
//! record kind of its own. Each hook writes one fixed-size record, as an event does.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use flightrec_format::meta::tokio_task;
use flightrec_format::record::{tag, Encoder, RecordKind, PARENT_ROOT};
use tokio::runtime::{Builder, TaskMeta};

use crate::layer::span_op;
use crate::ring::clock;
use crate::ring::span_table::{SpanEntry, SpanTable};
use crate::ring::writer::{with_writer, EnteredBy};
use crate::shared::Shared;
use crate::Recorder;

/// Live tasks by tokio task id: our span id for each.
struct Tasks {
    shared: Arc<Shared>,
    callsite: u32,
    table: SpanTable,
    /// Tasks the table had no room for (tens of thousands alive at once): a lock on the
    /// poll path of those tasks only.
    overflow: Mutex<HashMap<u64, SpanEntry>>,
}

/// tokio's task id as a number. `tokio::task::Id` shows it only through `Display` and
/// `Hash`; its `Hash` writes the number with one `write_u64`, which this hasher keeps.
#[derive(Default)]
struct IdCapture(u64);

impl Hasher for IdCapture {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not how tokio hashes an id today; still give a stable number.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

fn task_id(meta: &TaskMeta<'_>) -> u64 {
    let mut h = IdCapture::default();
    meta.id().hash(&mut h);
    h.finish()
}

impl Tasks {
    fn lookup(&self, task: u64) -> Option<SpanEntry> {
        self.table.get(task).or_else(|| self.lookup_overflow(task))
    }

    #[cold]
    fn lookup_overflow(&self, task: u64) -> Option<SpanEntry> {
        let map = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&task).copied()
    }

    fn spawned(&self, meta: &TaskMeta<'_>) {
        let task = task_id(meta);
        let at = meta.spawned_at();
        let ticks = clock::ticks();
        let callsite = self.callsite;
        let span = with_writer(&self.shared.ring, |w| {
            let span = w.next_span_id();
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::SpanNew, callsite, ticks);
                e.id(span);
                e.id(PARENT_ROOT);
                e.field_u64(0, task);
                e.field_bytes(1, tag::STR, at.file().as_bytes());
                e.field_u64(2, u64::from(at.line()));
                e.finish()
            });
            span
        });
        if let Some(span) = span {
            let entry = SpanEntry { id: span, callsite };
            if !self.table.insert(task, entry) {
                let mut map = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
                map.insert(task, entry);
            }
        }
    }

    fn before_poll(&self, meta: &TaskMeta<'_>) {
        if let Some(s) = self.lookup(task_id(meta)) {
            span_op(&self.shared, RecordKind::Enter, s.id, s.callsite, |w| {
                w.push_span(s.id, s.callsite, EnteredBy::default())
            });
        }
    }

    fn after_poll(&self, meta: &TaskMeta<'_>) {
        if let Some(s) = self.lookup(task_id(meta)) {
            span_op(&self.shared, RecordKind::Exit, s.id, s.callsite, |w| {
                w.pop_span(s.id)
            });
        }
    }

    fn terminated(&self, meta: &TaskMeta<'_>) {
        let task = task_id(meta);
        let s = match self.table.take(task) {
            Some(s) => s,
            None => {
                let gone = {
                    let mut map = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
                    map.remove(&task)
                };
                let Some(s) = gone else { return };
                s
            }
        };
        // A task aborted during its poll terminates before the poll's end hook runs, which
        // will then not find it: end the poll here.
        let entered = with_writer(&self.shared.ring, |w| w.is_entered(s.id)).unwrap_or(false);
        if entered {
            span_op(&self.shared, RecordKind::Exit, s.id, s.callsite, |w| {
                w.pop_span(s.id)
            });
        }
        span_op(&self.shared, RecordKind::Close, s.id, s.callsite, |_| {});
    }
}

/// Slots for live tasks before some go to the locked overflow map.
const TASK_TABLE_SLOTS: usize = 1 << 16;

impl Recorder {
    /// Records the tasks of the runtime `builder` builds: each task's spawn (id and
    /// location), every poll on the worker that ran it, and its termination.
    ///
    /// ```ignore
    /// let mut builder = tokio::runtime::Builder::new_multi_thread();
    /// recorder.record_tokio_tasks(&mut builder).enable_all().build()?;
    /// ```
    pub fn record_tokio_tasks<'b>(&self, builder: &'b mut Builder) -> &'b mut Builder {
        let callsite = self.shared.callsites.synthetic(
            &self.shared.ring,
            flightrec_format::Callsite {
                id: 0,
                is_span: true,
                level: flightrec_format::Level::Info,
                target: tokio_task::TARGET.into(),
                name: tokio_task::NAME.into(),
                file: Some(file!().into()),
                line: None,
                module: Some(module_path!().into()),
                fields: tokio_task::FIELDS.iter().map(|f| f.to_string()).collect(),
            },
        );
        let tasks = Arc::new(Tasks {
            shared: self.shared.clone(),
            callsite,
            table: SpanTable::new(TASK_TABLE_SLOTS),
            overflow: Mutex::new(HashMap::new()),
        });
        let (a, b, c, d) = (tasks.clone(), tasks.clone(), tasks.clone(), tasks);
        builder
            .on_task_spawn(move |m| a.spawned(m))
            .on_before_task_poll(move |m| b.before_poll(m))
            .on_after_task_poll(move |m| c.after_poll(m))
            .on_task_terminate(move |m| d.terminated(m))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use flightrec_analysis::{Names, TokioIds};
    use flightrec_format::RecordKind;
    use tracing::Instrument;
    use tracing_subscriber::prelude::*;

    const REQUESTS: u64 = 40;

    /// Every task's spawn, polls (on the workers that ran them) and termination are
    /// recorded, including the odd lives: a task aborted in the middle of its life, one
    /// that panics inside a poll, and one still pending when the dump is taken.
    #[test]
    fn the_hooks_record_spawn_polls_on_workers_and_termination() {
        let dir = tempfile::tempdir().unwrap();
        let rec = crate::Recorder::builder()
            .dir(dir.path())
            .service("hooks")
            .capacity(8 << 20)
            .snapshot_signal(None)
            .panic_hook(false)
            .crash_handler(false)
            .stall_threshold(None)
            .build()
            .unwrap();
        let d = tracing::Dispatch::new(tracing_subscriber::registry().with(rec.layer()));
        let on_workers = d.clone();
        let mut builder = ::tokio::runtime::Builder::new_multi_thread();
        rec.record_tokio_tasks(&mut builder)
            .worker_threads(3)
            .thread_name("worker")
            .enable_all()
            .on_thread_start(move || {
                std::mem::forget(tracing::dispatcher::set_default(&on_workers))
            });
        let rt = builder.build().unwrap();
        let (pending_id, aborted_id, panicked_id, request_ids) =
            tracing::dispatcher::with_default(&d, || {
                rt.block_on(async {
                    let shared =
                        std::sync::Arc::new(crate::sync::tokio::Mutex::named("total", 0u64));
                    let handles: Vec<_> = (0..REQUESTS)
                        .map(|id| {
                            let shared = shared.clone();
                            ::tokio::spawn(
                                async move {
                                    for step in 0..4u64 {
                                        ::tokio::task::yield_now().await;
                                        *shared.lock().await += 1;
                                        tracing::info!(id, step, "step");
                                        std::thread::sleep(Duration::from_micros(50));
                                        ::tokio::time::sleep(Duration::from_micros(100)).await;
                                    }
                                    ::tokio::task::id()
                                }
                                .instrument(tracing::info_span!("request", id)),
                            )
                        })
                        .collect();
                    let pending = ::tokio::spawn(std::future::pending::<()>());
                    let (started_tx, started_rx) = ::tokio::sync::oneshot::channel();
                    let aborted = ::tokio::spawn(async move {
                        tracing::info!("aborted task polled");
                        let _ = started_tx.send(());
                        std::future::pending::<()>().await
                    });
                    started_rx.await.unwrap();
                    aborted.abort();
                    let aborted_id = aborted.id();
                    assert!(aborted.await.unwrap_err().is_cancelled());
                    let panicking = ::tokio::spawn(async {
                        ::tokio::task::yield_now().await;
                        tracing::info!("about to panic");
                        panic!("inside a poll");
                    });
                    let panicked_id = panicking.id();
                    assert!(panicking.await.unwrap_err().is_panic());
                    let mut ids = Vec::new();
                    for h in handles {
                        ids.push(h.await.unwrap());
                    }
                    (pending.id(), aborted_id, panicked_id, ids)
                })
            });
        let num = |id: ::tokio::task::Id| id.to_string().parse::<u64>().unwrap();
        // tokio runs the terminate hook after the task's `JoinHandle` is told: a dump taken
        // at once may be too early for the last tasks' ends. Wait for them.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (r, tasks) = loop {
            let dump = rec.snapshot().unwrap();
            let r = flightrec_format::open(&dump).unwrap();
            let tasks = flightrec_analysis::Analysis::of(&r, &Default::default()).tasks;
            let closed = |id: u64| {
                tasks
                    .list
                    .iter()
                    .any(|t| t.tokio.as_ref().is_some_and(|k| k.id == id) && t.closed().is_some())
            };
            let ended = closed(num(panicked_id)) && request_ids.iter().all(|&id| closed(num(id)));
            if ended || std::time::Instant::now() > deadline {
                break (r, tasks);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(rt);
        let names = Names::new(&r);
        let by_tokio = |id: u64| {
            tasks
                .list
                .iter()
                .find(|t| t.tokio.as_ref().is_some_and(|k| k.id == id))
                .unwrap_or_else(|| panic!("no task {id}"))
        };
        let mut workers = HashSet::new();
        for (n, &id) in request_ids.iter().enumerate() {
            let t = by_tokio(num(id));
            let at = t.tokio.as_ref().unwrap().spawned_at.clone().unwrap();
            assert!(at.starts_with(file!()), "{at}");
            assert!(t.created().is_some() && t.closed().is_some());
            assert!(t.polls.len() >= 5, "request {n}: {:?}", t.polls);
            for p in &t.polls {
                let (name, _) = names.thread(p.thread);
                assert_eq!(name, "worker");
                workers.insert(p.thread);
            }
            // The request span nests inside the task's polls, and the task is named after it,
            // with the fields it was made with (by the spawner, before the task existed).
            assert!(t
                .inner
                .iter()
                .any(|i| i.depth == 1 && names.span_name(i.span) == "request"));
            assert_eq!(
                flightrec_analysis::tasks::label(&names, t),
                format!("task {} · request id={n}", num(id))
            );
            let steps = tasks
                .records_of(tasks.position(t.span).unwrap())
                .filter(|&i| r.records[i].kind == RecordKind::Event)
                .filter(|&i| names.lock_op(&r.records[i]).is_none())
                .count();
            assert_eq!(steps, 4, "request {n}");
        }
        assert!(!workers.is_empty());
        // Aborted after one poll: closed, with its event.
        let aborted = by_tokio(num(aborted_id));
        assert!(aborted.closed().is_some() && !aborted.polls.is_empty());
        // Panicked inside its second poll: that poll ended, and the task closed.
        let panicked = by_tokio(num(panicked_id));
        assert!(panicked.closed().is_some(), "{panicked:?}");
        assert!(panicked.polls.len() >= 2, "{panicked:?}");
        assert!(panicked.polls.iter().all(|p| !p.open_at_end));
        // Never ends: created, polled, not closed.
        let pending = by_tokio(num(pending_id));
        assert_eq!(pending.closed(), None);
        assert!(!pending.polls.is_empty());
        // The streaming rule (`cat`'s) gives each record the task the whole-recording rule
        // gives it.
        let mut ids = TokioIds::default();
        let mut attributed = 0;
        for (i, x) in r.records.iter().enumerate() {
            let streamed = ids.observe(&names, x);
            assert_eq!(streamed, tasks.tokio_id(i), "record {i}: {x:?}");
            let lock_event = names.lock_op(x).is_some();
            if x.kind == RecordKind::Event && streamed.is_some() && !lock_event {
                attributed += 1;
            }
        }
        assert_eq!(attributed, REQUESTS as usize * 4 + 2);
        // The requests' shared tokio Mutex: every acquisition released, none left held.
        let total = flightrec_analysis::locks::locks(&r)
            .into_iter()
            .find(|l| l.name == "total")
            .unwrap();
        assert_eq!(total.kind, "tokio::Mutex");
        let state = flightrec_analysis::Analysis::of(&r, &Default::default()).locks;
        assert_eq!(state.stats[&total.id].acquisitions, REQUESTS * 4);
        assert!(state.holds.iter().all(|h| h.lock != total.id));
    }
}
