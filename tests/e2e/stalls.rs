//! The stall watchdog against a real deadlock inside the logging pipeline: one thread holds
//! the logging lock and wants lock B, another holds B and logs. A thread asleep inside a span
//! is reported too (a watchdog cannot tell it from a deadlock); an idle thread outside any
//! span is not.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use flightrec_format::TriggerReason;
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::Layer;

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_STALL_CHILD_DIR";

/// A logging layer with a lock, like a writer behind a mutex. An event with a `want_b`
/// field also takes lock B while holding the logging lock.
struct LockingLayer {
    log: Arc<Mutex<()>>,
    b: Arc<Mutex<()>>,
    both_held: Arc<Barrier>,
}

impl<S: tracing::Subscriber> Layer<S> for LockingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let _log = self.log.lock().unwrap();
        if event.metadata().fields().field("want_b").is_some() {
            self.both_held.wait();
            let _b = self.b.lock().unwrap(); // never: the other thread holds B and wants the log
        }
    }
}

#[test]
#[ignore = "child process of the stall test"]
fn deadlock_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rec = stall_recorder(dir, "stall");
    let b = Arc::new(Mutex::new(()));
    let both_held = Arc::new(Barrier::new(2));
    let locking = LockingLayer {
        log: Arc::new(Mutex::new(())),
        b: b.clone(),
        both_held: both_held.clone(),
    };
    let d = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(rec.layer())
            .with(locking),
    );
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        let d = d.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || tracing::dispatcher::with_default(&d, f))
            .unwrap()
    };
    spawn(
        "holds-log",
        Box::new(|| {
            let span = tracing::info_span!("checkout");
            let _g = span.enter();
            tracing::info!(want_b = true, "taking lock B while logging");
        }),
    );
    let (b2, held2) = (b.clone(), both_held.clone());
    spawn(
        "holds-b",
        Box::new(move || {
            let _b = b2.lock().unwrap();
            let span = tracing::info_span!("refresh_cache");
            let _g = span.enter();
            held2.wait();
            tracing::info!("logging while holding lock B");
        }),
    );
    spawn(
        "sleeper",
        Box::new(|| {
            let span = tracing::info_span!("nap");
            let _g = span.enter();
            tracing::info!("going to sleep");
            std::thread::sleep(Duration::from_secs(60));
        }),
    );
    spawn(
        "idler",
        Box::new(|| {
            tracing::info!("nothing to do");
            std::thread::sleep(Duration::from_secs(60));
        }),
    );
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_deadlock_in_the_logging_pipeline_still_gets_a_stall_dump() {
    let dir = scratch();
    let mut c = child("stalls::deadlock_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    // Within the threshold and 2 s.
    let dump = stall_dump_in(dir.path(), Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    let _ = c.kill();
    let _ = c.wait();
    let rec = flightrec_format::open(&dump).unwrap();
    assert_eq!(rec.trigger.reason, TriggerReason::Stall);
    let m = &rec.trigger.message;
    assert!(m.contains("holds-log") && m.contains("in checkout"), "{m}");
    assert!(
        m.contains("holds-b") && m.contains("in refresh_cache"),
        "{m}"
    );
    assert!(m.contains("sleeper") && m.contains("in nap"), "{m}");
    assert!(
        !m.contains("idler"),
        "an idle thread outside any span is not stalled: {m}"
    );
    assert!(m.contains("a deadlock, or a long wait"), "{m}");
    // One dump per episode, not one per watchdog tick.
    assert_eq!(
        dumps_in(dir.path())
            .iter()
            .filter(|p| p.to_str().unwrap().ends_with("-stall.flightrec"))
            .count(),
        1
    );
    let info = flightrec(&["info", dump.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("stall watchdog"));
}
