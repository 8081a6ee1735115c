//! `tracing_flightrec::sync::Condvar`: a lost wakeup (a notify sent before anyone waited,
//! and a wait with no predicate) is named `no_notify` from the dump, at the notify and the
//! wait; the correct twin (a predicate checked under the lock) and an idle worker waiting
//! for work outside any operation give nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_flightrec::sync::{Condvar, Mutex};

use crate::helpers::*;

type Queue = Arc<(Mutex<Vec<u64>>, Condvar)>;

fn queue() -> Queue {
    Arc::new((Mutex::named("queue", Vec::new()), Condvar::named("ready")))
}

/// Dumps `rec` once it holds a condvar wait begun at least `waited` before the dump.
fn dump_after_wait(rec: &tracing_flightrec::Recorder, waited: Duration) -> std::path::PathBuf {
    let mut seen: Option<Instant> = None;
    dump_when(rec, |dump| {
        let r = flightrec_format::open(dump).unwrap();
        let names = flightrec_analysis::Names::new(&r);
        let waiting = r.records.iter().any(|x| {
            matches!(
                names.lock_op(x),
                Some((_, flightrec_analysis::lock_ops::LockOp::CondWait))
            )
        });
        waiting && seen.get_or_insert_with(Instant::now).elapsed() >= waited
    })
}

/// A producer thread pushes a job and notifies (its first record binds it to `d`'s ring,
/// where its lock and condvar events then go).
fn produce(d: &tracing::Dispatch, q: &Queue) {
    let (d, q) = (d.clone(), q.clone());
    std::thread::Builder::new()
        .name("producer".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                tracing::info!("job ready");
                let (m, cv) = &*q;
                m.lock().unwrap().push(1);
                cv.notify_one();
            })
        })
        .unwrap()
        .join()
        .unwrap();
}

fn check(dump: &std::path::Path) -> (Option<i32>, String) {
    let out = flightrec(&["check", "--stuck", "50", dump.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The producer pushes a job and notifies; then the consumer, without checking the queue,
/// waits: the notify is gone, and it waits forever.
/// In a child process: its consumer stays blocked forever.
#[test]
fn a_notify_before_the_wait_is_a_lost_wakeup() {
    run_in_child("condvar::a_notify_before_the_wait_is_a_lost_wakeup_child");
}

#[test]
#[ignore = "child process of condvar::a_notify_before_the_wait_is_a_lost_wakeup"]
fn a_notify_before_the_wait_is_a_lost_wakeup_child() {
    if !in_child() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "lost_wakeup", 1 << 20);
    let d = dispatch(&rec);
    let q = queue();
    produce(&d, &q);
    {
        let (d, q) = (d.clone(), q.clone());
        std::thread::Builder::new()
            .name("consumer".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let _s = tracing::info_span!("job").entered();
                    let (m, cv) = &*q;
                    let g = m.lock().unwrap();
                    // The bug: no look at the queue before waiting.
                    let _g = cv.wait(g).unwrap();
                })
            })
            .unwrap();
    }
    let dump = dump_after_wait(&rec, Duration::from_millis(150));
    let (code, text) = check(&dump);
    assert_eq!(code, Some(1), "{text}");
    let para = text
        .split("\n\n")
        .find(|p| p.contains(" no_notify: "))
        .unwrap_or_else(|| panic!("no no_notify in:\n{text}"));
    assert!(
        para.contains("consumer waits on `ready`") && para.contains("was lost"),
        "{para}"
    );
    assert!(para.contains("notified before anyone waited"), "{para}");
    assert!(
        para.contains("began to wait, and nothing notified after"),
        "{para}"
    );
}

#[test]
fn a_wait_with_its_predicate_and_an_idle_worker_give_nothing() {
    let dir = scratch();
    let rec = recorder(dir.path(), "condvar_ok", 1 << 20);
    let d = dispatch(&rec);
    let q = queue();
    produce(&d, &q);
    // The fixed consumer looks at the queue under the lock before waiting.
    let consumer = {
        let (d, q) = (d.clone(), q.clone());
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                let _s = tracing::info_span!("job").entered();
                let (m, cv) = &*q;
                let mut g = cv
                    .wait_while(m.lock().unwrap(), |jobs| jobs.is_empty())
                    .unwrap();
                g.pop()
            })
        })
    };
    assert_eq!(consumer.join().unwrap(), Some(1));
    // A pool worker waiting for work, outside any operation, at the end of the recording.
    let idle = queue();
    {
        let (d, idle) = (d.clone(), idle.clone());
        std::thread::Builder::new()
            .name("idle-worker".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    tracing::info!("worker started");
                    let (m, cv) = &*idle;
                    let _g = cv.wait_while(m.lock().unwrap(), |jobs| jobs.is_empty());
                })
            })
            .unwrap();
    }
    let dump = dump_after_wait(&rec, Duration::from_millis(150));
    let (code, text) = check(&dump);
    assert_eq!(code, Some(0), "{text}");
    // Let the idle worker go.
    idle.0.lock().unwrap().push(0);
    idle.1.notify_all();
}
