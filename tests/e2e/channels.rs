//! `tracing_flightrec::sync::mpsc`: a receive whose senders are all blocked (the handler
//! waits for a reply holding the lock its worker needs to make it) is named `no_send`, at
//! the receive, the worker's last send and the lock it waits for. The fixed handler (the
//! guard dropped before the receive) gives no finding, and neither does a receive whose
//! sender is merely busy elsewhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, info_span};
use tracing_flightrec::sync::mpsc::{named_channel, Receiver, Sender};
use tracing_flightrec::sync::Mutex;

use crate::helpers::*;

fn check(dump: &Path) -> (Option<i32>, String) {
    let out = flightrec(&["check", "--stuck", "50", dump.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A worker that makes one reply, then, when told, a second one under the `db` lock.
fn worker(
    d: &tracing::Dispatch,
    db: &Arc<Mutex<u64>>,
    replies: Sender<u64>,
    go: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    let db = db.clone();
    spawn_on(d, "worker", move || {
        let _s = info_span!("jobs").entered();
        replies.send(1).unwrap();
        go.recv().unwrap();
        let v = *db.lock().unwrap();
        info!(v, "made the reply");
        let _ = replies.send(v + 1);
    })
}

/// The handler takes its first reply, then takes `db` and tells the worker to go;
/// `hold_while_receiving` is the bug: it waits for the second reply still holding `db`.
fn handler(
    d: &tracing::Dispatch,
    db: &Arc<Mutex<u64>>,
    replies: Receiver<u64>,
    go: std::sync::mpsc::Sender<()>,
    hold_while_receiving: bool,
) -> std::thread::JoinHandle<()> {
    let db = db.clone();
    spawn_on(d, "handler", move || {
        let _s = info_span!("request").entered();
        assert_eq!(replies.recv().unwrap(), 1);
        let g = db.lock().unwrap();
        go.send(()).unwrap();
        if hold_while_receiving {
            let _second = replies.recv();
            drop(g);
        } else {
            drop(g);
            assert_eq!(replies.recv().unwrap(), 1);
        }
    })
}

/// The handler and its worker on `rec`'s dispatcher, sharing a `db` lock and a `replies`
/// channel; `hold_while_receiving` is the handler's bug.
fn serve(
    rec: &tracing_flightrec::Recorder,
    hold_while_receiving: bool,
) -> (std::thread::JoinHandle<()>, std::thread::JoinHandle<()>) {
    let d = dispatch(rec);
    let db = Arc::new(Mutex::named("db", 0));
    let (tx, rx) = named_channel("replies");
    let (go_tx, go_rx) = turn();
    let w = worker(&d, &db, tx, go_rx);
    let h = handler(&d, &db, rx, go_tx, hold_while_receiving);
    (w, h)
}

/// In a child process: its two threads stay blocked forever.
#[test]
fn a_receive_whose_sender_waits_for_the_receivers_lock_is_no_send() {
    run_in_child("channels::a_receive_whose_sender_waits_for_the_receivers_lock_is_no_send_child");
}

#[test]
#[ignore = "child process of channels::a_receive_whose_sender_waits_for_the_receivers_lock_is_no_send"]
fn a_receive_whose_sender_waits_for_the_receivers_lock_is_no_send_child() {
    if !in_child() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "no_send", 1 << 20);
    let _threads = serve(&rec, true);
    let dump = dump_when(&rec, |dump| check(dump).1.contains(" no_send: "));
    let (code, text) = check(&dump);
    assert_eq!(code, Some(1), "{text}");
    let para = text
        .split("\n\n")
        .find(|p| p.contains(" no_send: "))
        .unwrap();
    assert!(
        para.contains("handler waits to receive on `replies`")
            && para.contains("worker waits for `db`, held by handler"),
        "{para}"
    );
    for role in [
        "began to wait, and nothing was sent after",
        "its last send on `replies`",
        "blocked here, to the end",
    ] {
        assert!(para.contains(role), "{role} in {para}");
    }
    // Each record at its call: the receive, the send and the lock.
    let source = include_str!("channels.rs");
    for place in para.lines().filter_map(|l| l.rsplit_once("  at ")) {
        let line: usize = place.1.rsplit_once(':').unwrap().1.parse().unwrap();
        let text = source.lines().nth(line - 1).unwrap();
        assert!(
            [".recv()", ".send(", ".lock()"]
                .iter()
                .any(|c| text.contains(c)),
            "{} is at `{text}`",
            place.1
        );
    }
}

#[test]
fn the_handler_that_lets_go_before_receiving_gives_nothing() {
    let dir = scratch();
    let rec = recorder(dir.path(), "send_ok", 1 << 20);
    let (w, h) = serve(&rec, false);
    w.join().unwrap();
    h.join().unwrap();
    let dump: PathBuf = rec.snapshot().unwrap();
    let (code, text) = check(&dump);
    assert_eq!(code, Some(0), "{text}");
}

/// A handler waits for a reply its worker has not made yet: the worker is busy (here,
/// waiting for something flightrec does not record), not blocked on anything recorded.
#[test]
fn a_receive_whose_sender_is_busy_is_no_finding() {
    let dir = scratch();
    let rec = recorder(dir.path(), "send_busy", 1 << 20);
    let d = dispatch(&rec);
    let (tx, rx) = named_channel::<u64>("replies");
    let (go_tx, go_rx) = turn();
    let w = spawn_on(&d, "worker", move || {
        info!("worker up");
        tx.send(1).unwrap();
        go_rx.recv().unwrap();
        tx.send(2).unwrap();
    });
    let h = spawn_on(&d, "handler", move || {
        let _s = info_span!("request").entered();
        assert_eq!(rx.iter().take(2).count(), 2);
    });
    let mut seen: Option<Instant> = None;
    let dump = dump_when(&rec, |dump| {
        let r = flightrec_format::open(dump).unwrap();
        let names = flightrec_analysis::Names::new(&r);
        let waiting = r.records.last().is_some_and(|x| {
            matches!(
                names.lock_op(x),
                Some((_, flightrec_analysis::lock_ops::LockOp::RecvWait))
            )
        });
        waiting && seen.get_or_insert_with(Instant::now).elapsed() >= Duration::from_millis(150)
    });
    let (_, text) = check(&dump);
    assert!(!text.contains("no_send"), "{text}");
    go_tx.send(()).unwrap();
    w.join().unwrap();
    h.join().unwrap();
}

const STALL_CHILD_DIR: &str = "FLIGHTREC_CHANNELS_STALL_DIR";

/// The handler-and-worker deadlock under the stall watchdog (the test's child process).
#[test]
#[ignore = "child process of channels::the_stall_watchdog_says_what_a_receive_waits_on"]
fn stalled_receive_child() {
    let Ok(dir) = std::env::var(STALL_CHILD_DIR) else {
        return;
    };
    let rec = stall_recorder(dir, "stalled");
    let _threads = serve(&rec, true);
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
}

/// The watchdog's stall dump says the handler waits on the channel, and the worker for
/// the lock.
#[test]
fn the_stall_watchdog_says_what_a_receive_waits_on() {
    let dir = scratch();
    let mut c = child(
        "channels::stalled_receive_child",
        &[(STALL_CHILD_DIR, dir.path())],
    );
    wait_for(&mut c, "ready");
    let dump = stall_dump_in(dir.path(), Duration::from_secs(60));
    let _ = c.kill();
    let _ = c.wait();
    let m = flightrec_format::open(&dump).unwrap().trigger.message;
    assert!(m.contains("in request, waiting on `replies`"), "{m}");
    assert!(m.contains("in jobs, waiting for `db`"), "{m}");
}
