//! Ids as objects: a connection id (`conn = 7`) its pool only ever hands out and takes
//! back under the pool's lock, used by another thread without the lock, is
//! `inconsistent_locking`; the same use under the lock is nothing; and per-request data
//! (`user`, `sku`, a `request_id` stored in one hold) logged by an audit thread outside the
//! lock stays silent, however the values coincide.

use std::path::PathBuf;
use std::sync::Arc;

use tracing::info;
use tracing_flightrec::sync::Mutex;

use crate::findings::findings_of;
use crate::findings_objects::kinds;
use crate::helpers::*;

/// The pool checks connection 7 out and back in, under its lock, three times; after the
/// first round a reporter thread queries the connection, holding the pool's lock or not.
fn pool(dir: &std::path::Path, reporter_locks: bool) -> PathBuf {
    let rec = recorder(dir, "pool", 4 << 20);
    let d = dispatch(&rec);
    let pool = Arc::new(Mutex::named("pool", vec![7u64]));
    let (go_tx, go_rx) = turn();
    let (done_tx, done_rx) = turn();
    let p = pool.clone();
    let owner = spawn_on(&d, "pool", move || {
        info!("pool up");
        for round in 0..3 {
            let mut free = p.lock().unwrap();
            let conn = free.pop().unwrap();
            info!(conn, "checked out");
            drop(free);
            let mut free = p.lock().unwrap();
            info!(conn, "checked in");
            free.push(conn);
            drop(free);
            if round == 0 {
                go_tx.send(()).unwrap();
                done_rx.recv().unwrap();
            }
        }
    });
    let p = pool.clone();
    let reporter = spawn_on(&d, "reporter", move || {
        info!("reporter up");
        go_rx.recv().unwrap();
        if reporter_locks {
            let _g = p.lock().unwrap();
            info!(conn = 7u64, "query on the connection");
        } else {
            // The bug: a connection used without the pool's lock.
            info!(conn = 7u64, "query on the connection");
        }
        done_tx.send(()).unwrap();
    });
    owner.join().unwrap();
    reporter.join().unwrap();
    rec.snapshot().unwrap()
}

#[test]
fn a_connection_id_used_without_its_pools_lock_is_inconsistent_locking() {
    let dir = scratch();
    let dump = pool(dir.path(), false);
    let found = findings_of(&dump, "inconsistent_locking");
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f["object"], "conn=7");
    let title = f["title"].as_str().unwrap();
    assert!(
        title.contains("holding `pool` by pool") && title.contains("without it by reporter"),
        "{title}"
    );
}

#[test]
fn a_connection_id_used_under_its_pools_lock_is_no_finding() {
    let dir = scratch();
    let dump = pool(dir.path(), true);
    assert_eq!(kinds(&dump), Vec::<String>::new());
}

/// A worker stores each request under the store's lock, in one hold (its `request_id`
/// once, `user` and `sku` in every hold); an audit thread logs the same values without the
/// lock. Per-request data: no finding.
#[test]
fn per_request_ids_and_data_an_audit_thread_logs_outside_the_lock_are_no_finding() {
    let dir = scratch();
    let rec = recorder(dir.path(), "store", 4 << 20);
    let d = dispatch(&rec);
    let store = Arc::new(Mutex::named("store", Vec::<u64>::new()));
    let (go_tx, go_rx) = turn();
    let (done_tx, done_rx) = turn();
    let s = store.clone();
    let worker = spawn_on(&d, "worker", move || {
        info!("worker up");
        for request_id in [41u64, 42, 43] {
            let mut g = s.lock().unwrap();
            g.push(request_id);
            info!(request_id, user = 5u64, sku = "A-1", "stored");
            drop(g);
            if request_id == 42 {
                go_tx.send(()).unwrap();
                done_rx.recv().unwrap();
            }
        }
    });
    let audit = spawn_on(&d, "audit", move || {
        info!("audit up");
        go_rx.recv().unwrap();
        info!(request_id = 42u64, user = 5u64, sku = "A-1", "audited");
        done_tx.send(()).unwrap();
    });
    worker.join().unwrap();
    audit.join().unwrap();
    let dump = rec.snapshot().unwrap();
    assert_eq!(kinds(&dump), Vec::<String>::new());
}
