//! Findings on the shape real servers have: a span per connection (`#[instrument]` on the
//! connection handler) around a span per command, one mutex around the state, and the
//! state's address logged as the README suggests, inside the lock and (as every connection
//! closes) outside it. A check and an act belong together only within one command; two
//! commands on one long connection are two operations; a mention after the guards are
//! dropped is not an unguarded access.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use tracing::{info, info_span};
use tracing_flightrec::sync::Mutex;

use crate::helpers::*;

type Db = Arc<Mutex<HashMap<String, u64>>>;

/// GET in one hold: the value read and logged under the lock.
fn get(db: &Db, addr: &str, key: &str) -> Option<u64> {
    let _c = info_span!("command", name = "GET", key).entered();
    let g = db.lock().unwrap();
    let v = g.get(key).copied();
    info!(db = %addr, key, "get");
    v
}

/// INCR: read, then write. `split`: in two holds (the bug: another connection can write
/// between them); else in one.
fn incr(
    db: &Db,
    addr: &str,
    key: &str,
    split: bool,
    between: Option<(&Sender<()>, &Receiver<()>)>,
) {
    let _c = info_span!("command", name = "INCR", key).entered();
    if split {
        let old = {
            let g = db.lock().unwrap();
            let old = g.get(key).copied().unwrap_or(0);
            info!(db = %addr, key, old, "read for incr");
            old
        };
        if let Some((tx, rx)) = between {
            tx.send(()).unwrap();
            rx.recv().unwrap();
        }
        let mut g = db.lock().unwrap();
        g.insert(key.to_string(), old + 1);
        info!(db = %addr, key, new = old + 1, "wrote incr");
    } else {
        let mut g = db.lock().unwrap();
        let old = g.get(key).copied().unwrap_or(0);
        info!(db = %addr, key, old, "read for incr");
        g.insert(key.to_string(), old + 1);
        info!(db = %addr, key, new = old + 1, "wrote incr");
        drop(g);
        if let Some((tx, rx)) = between {
            tx.send(()).unwrap();
            rx.recv().unwrap();
        }
    }
}

/// One client connection runs `commands` inside its connection span; another connection
/// (the "expirer") deletes the key, holding the lock, at the point the first hands it the
/// turn.
fn server(
    dir: &Path,
    commands: impl FnOnce(&Db, &str, (&Sender<()>, &Receiver<()>)) + Send + 'static,
) -> PathBuf {
    let rec = recorder(dir, "kv", 4 << 20);
    let d = dispatch(&rec);
    let db: Db = Arc::new(Mutex::named("db", HashMap::new()));
    db.lock().unwrap().insert("k".into(), 1);
    let addr = format!("{:p}", Arc::as_ptr(&db));
    let (go_tx, go_rx) = turn();
    let (done_tx, done_rx) = turn();
    let (c, a) = (db.clone(), addr.clone());
    let client = spawn_on(&d, "conn-1", move || {
        let _conn = info_span!("connection", peer = "127.0.0.1:50001").entered();
        commands(&c, &a, (&go_tx, &done_rx));
        info!(db = %a, "connection closed");
    });
    let (c, a) = (db.clone(), addr.clone());
    let expirer = spawn_on(&d, "conn-2", move || {
        let _conn = info_span!("connection", peer = "127.0.0.1:50002").entered();
        if go_rx.recv().is_ok() {
            let _c = info_span!("command", name = "DEL", key = "k").entered();
            let mut g = c.lock().unwrap();
            g.remove("k");
            info!(db = %a, key = "k", "deleted");
            drop(g);
        }
        let _ = done_tx.send(());
        // Every connection mentions the state as it closes, after its guards are gone.
        info!(db = %a, "connection closed");
    });
    client.join().unwrap();
    expirer.join().unwrap();
    rec.snapshot().unwrap()
}

fn kinds(dump: &Path) -> Vec<String> {
    info_json(dump)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The server's own test of expiry: two GETs on one connection, the key deleted between
/// them on purpose. Correct code: no finding (it was an `atomicity` finding when the
/// connection's span was taken as the request).
#[test]
fn two_commands_on_one_connection_with_a_write_between_are_no_finding() {
    let dir = scratch();
    let dump = server(dir.path(), |db, addr, (go, done)| {
        assert_eq!(get(db, addr, "k"), Some(1));
        go.send(()).unwrap();
        done.recv().unwrap();
        assert_eq!(get(db, addr, "k"), None);
    });
    assert_eq!(kinds(&dump), Vec::<String>::new());
}

#[test]
fn a_read_modify_write_split_across_two_holds_in_one_command_is_atomicity_at_both() {
    let dir = scratch();
    let dump = server(dir.path(), |db, addr, between| {
        incr(db, addr, "k", true, Some(between));
    });
    let found = crate::findings::findings_of(&dump, "atomicity");
    assert_eq!(found.len(), 1, "{found:?}");
    let evidence: Vec<(&str, &str)> = found[0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["role"].as_str().unwrap(), e["title"].as_str().unwrap()))
        .collect();
    assert_eq!(evidence.len(), 3, "{evidence:?}");
    let (check, between, act) = (evidence[0], evidence[1], evidence[2]);
    assert!(
        check.0.starts_with("checked db=") && check.1 == "read for incr",
        "{evidence:?}"
    );
    assert!(
        between.0.contains("between the two holds") && between.1 == "deleted",
        "{evidence:?}"
    );
    assert!(
        act.0.starts_with("acted on db=") && act.1 == "wrote incr",
        "{evidence:?}"
    );
}

#[test]
fn the_same_read_modify_write_in_one_hold_is_no_finding() {
    let dir = scratch();
    let dump = server(dir.path(), |db, addr, between| {
        incr(db, addr, "k", false, Some(between));
        // And the next command on the connection reads what the other connection left.
        get(db, addr, "k");
    });
    assert_eq!(kinds(&dump), Vec::<String>::new());
}

/// Three test servers in one process, one after the other, each with its own state and
/// mutex (made at one place), whose states happen to reuse one heap address: three
/// objects, not one touched under three different locks.
#[test]
fn states_of_successive_servers_at_a_reused_address_are_different_objects() {
    fn new_db() -> Db {
        Arc::new(Mutex::named("db", HashMap::new()))
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "kv_suite", 4 << 20);
    let d = dispatch(&rec);
    // What `{:p}` of each server's state printed: the allocator gave each the same block.
    let reused = "0x7f00dead1000";
    for server in 0..3 {
        let db = new_db();
        let handles: Vec<_> = (0..2)
            .map(|conn| {
                let db = db.clone();
                spawn_on(&d, &format!("s{server}-conn{conn}"), move || {
                    let _conn = info_span!("connection", conn).entered();
                    for _ in 0..3 {
                        let _c = info_span!("command", name = "SET", key = "k").entered();
                        let mut g = db.lock().unwrap();
                        g.insert("k".into(), conn);
                        info!(db = reused, key = "k", "set");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
    let dump = rec.snapshot().unwrap();
    assert_eq!(kinds(&dump), Vec::<String>::new());
}

/// The correct server under load: eight connections, each running a hundred commands (GET,
/// SET, INCR in one hold), each command logging the state's address inside the lock and
/// again after dropping its guard, every connection mentioning it as it closes, and keys
/// shared between connections. `check` passes.
#[test]
fn a_correct_server_under_load_from_many_connections_passes_check() {
    let dir = scratch();
    let rec = recorder(dir.path(), "kv_load", 16 << 20);
    let d = dispatch(&rec);
    let db: Db = Arc::new(Mutex::named("db", HashMap::new()));
    let addr = format!("{:p}", Arc::as_ptr(&db));
    let conns: Vec<_> = (0..8u64)
        .map(|c| {
            let (db, addr) = (db.clone(), addr.clone());
            spawn_on(&d, &format!("conn-{c}"), move || {
                let _conn = info_span!("connection", peer = c).entered();
                for i in 0..100u64 {
                    let key = format!("k{}", (c * 7 + i) % 5);
                    match i % 3 {
                        0 => {
                            get(&db, &addr, &key);
                        }
                        1 => {
                            let _c =
                                info_span!("command", name = "SET", key = key.as_str()).entered();
                            let mut g = db.lock().unwrap();
                            g.insert(key.clone(), i);
                            info!(db = %addr, key = key.as_str(), "set");
                            drop(g);
                            info!(db = %addr, key = key.as_str(), "set done, lock released");
                        }
                        _ => incr(&db, &addr, &key, false, None),
                    }
                }
                info!(db = %addr, "connection closed");
            })
        })
        .collect();
    for c in conns {
        c.join().unwrap();
    }
    let dump = rec.snapshot().unwrap();
    let out = flightrec(&["check", dump.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Two connections from one peer have one span label; a finding about both names two
/// (`#1`, `#2`), never "by connection peer=…, and without it by connection peer=…".
#[test]
fn two_connections_from_one_peer_are_told_apart_in_a_finding() {
    let dir = scratch();
    let rec = recorder(dir.path(), "kv", 4 << 20);
    let d = dispatch(&rec);
    let db: Db = Arc::new(Mutex::named("db", HashMap::new()));
    let addr = format!("{:p}", Arc::as_ptr(&db));
    let (go_tx, go_rx) = turn();
    let (done_tx, done_rx) = turn();
    let (c, a) = (db.clone(), addr.clone());
    let guarded = spawn_on(&d, "conn-1", move || {
        let _conn = info_span!("connection", peer = "127.0.0.1").entered();
        for n in 0..3u64 {
            let mut g = c.lock().unwrap();
            g.insert("k".into(), n);
            info!(db = %a, n, "set");
            drop(g);
            if n == 0 {
                go_tx.send(()).unwrap();
                done_rx.recv().unwrap();
            }
        }
    });
    let a = addr.clone();
    let unguarded = spawn_on(&d, "conn-2", move || {
        let _conn = info_span!("connection", peer = "127.0.0.1").entered();
        go_rx.recv().unwrap();
        // The bug: the state read without its lock.
        info!(db = %a, "peeked");
        done_tx.send(()).unwrap();
    });
    guarded.join().unwrap();
    unguarded.join().unwrap();
    let dump = rec.snapshot().unwrap();
    let info = info_json(&dump);
    let found = info["findings"].as_array().unwrap();
    let f = found
        .iter()
        .find(|f| f["kind"] == "inconsistent_locking")
        .unwrap_or_else(|| panic!("no inconsistent_locking in {found:#?}"));
    let title = f["title"].as_str().unwrap();
    assert!(
        title.contains("connection peer=127.0.0.1 #1")
            && title.contains("connection peer=127.0.0.1 #2"),
        "{title}"
    );
}
