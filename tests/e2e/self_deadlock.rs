//! The most common Rust deadlock: a `match` whose scrutinee reads through
//! `state.lock().unwrap()` keeps that guard alive to the end of the `match`, and an arm that
//! locks the same mutex again waits for itself forever. `check` names it a deadlock, at both
//! `lock()` calls; the fixed twin (the value copied out first) gives no finding.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tracing_flightrec::sync::Mutex;

use crate::helpers::*;

type Store = Arc<Mutex<HashMap<String, u64>>>;

/// The bug: the guard made in the scrutinee lives through the arms.
fn get_or_insert_buggy(state: &Store, key: &str) -> u64 {
    match state.lock().unwrap().get(key).copied() {
        Some(v) => v,
        None => {
            let mut s = state.lock().unwrap();
            s.insert(key.to_string(), 1);
            1
        }
    }
}

/// The fix: the value is copied out, and the guard dropped, before the `match`.
fn get_or_insert_fixed(state: &Store, key: &str) -> u64 {
    let found = state.lock().unwrap().get(key).copied();
    match found {
        Some(v) => v,
        None => {
            let mut s = state.lock().unwrap();
            s.insert(key.to_string(), 1);
            1
        }
    }
}

fn waits_in(dump: &Path) -> usize {
    let rec = flightrec_format::open(dump).unwrap();
    let names = flightrec_analysis::Names::new(&rec);
    rec.records
        .iter()
        .filter(|r| {
            matches!(
                names.lock_op(r),
                Some((_, flightrec_analysis::lock_ops::LockOp::Wait { .. }))
            )
        })
        .count()
}

/// In a child process: its handler thread stays blocked forever.
#[test]
fn a_double_lock_through_a_match_guard_is_a_deadlock_at_both_lock_calls() {
    run_in_child(
        "self_deadlock::a_double_lock_through_a_match_guard_is_a_deadlock_at_both_lock_calls_child",
    );
}

#[test]
#[ignore = "child process of self_deadlock::a_double_lock_through_a_match_guard_is_a_deadlock_at_both_lock_calls"]
fn a_double_lock_through_a_match_guard_is_a_deadlock_at_both_lock_calls_child() {
    if !in_child() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "double_lock", 1 << 20);
    let d = dispatch(&rec);
    let state: Store = Arc::new(Mutex::new(HashMap::new()));
    {
        let (d, state) = (d.clone(), state.clone());
        // Never returns: the thread waits for itself.
        std::thread::Builder::new()
            .name("handler".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let _s = tracing::info_span!("command", name = "GET", key = "k").entered();
                    get_or_insert_buggy(&state, "k");
                })
            })
            .unwrap();
    }
    let dump = dump_when(&rec, |d| waits_in(d) > 0);
    let out = flightrec(&["check", dump.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let first_lock = line_of("match state.lock().unwrap().get(key).copied()");
    let second_lock = line_of("let mut s = state.lock().unwrap();");
    let deadlock = text
        .split("\n\n")
        .find(|p| p.contains("deadlock"))
        .unwrap_or_else(|| panic!("no deadlock in:\n{text}"));
    assert!(
        deadlock.contains("handler waits for") && deadlock.contains("which it holds itself"),
        "{deadlock}"
    );
    for line in [first_lock, second_lock] {
        assert!(
            deadlock.contains(&format!("self_deadlock.rs:{line}")),
            "line {line} is not in:\n{deadlock}"
        );
    }
}

/// The line where `code` first appears in this file (in `get_or_insert_buggy`, which comes
/// first).
fn line_of(code: &str) -> u32 {
    let src = include_str!("self_deadlock.rs");
    src.lines().position(|l| l.contains(code)).unwrap() as u32 + 1
}

#[test]
fn the_fixed_twin_under_many_threads_gives_no_finding() {
    let dir = scratch();
    let rec = recorder(dir.path(), "double_lock_fixed", 1 << 20);
    let state: Store = Arc::new(Mutex::new(HashMap::new()));
    on_threads(&dispatch(&rec), 4, "handler", move |t| {
        for i in 0..200u64 {
            let key = format!("k{}", (i + t as u64) % 7);
            let _s = tracing::info_span!("command", name = "GET", key = key.as_str()).entered();
            get_or_insert_fixed(&state, &key);
        }
    });
    let dump = rec.snapshot().unwrap();
    let out = flightrec(&["check", dump.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Read, write, read: a thread holding a read asks for another while a writer waits. std's
/// `RwLock` queues the second read behind the waiting writer, which waits for the first
/// read: a deadlock of two threads and one lock.
/// In a child process: its reader and writer stay blocked forever.
#[test]
fn a_read_asked_again_behind_a_waiting_writer_is_a_deadlock() {
    run_in_child("self_deadlock::a_read_asked_again_behind_a_waiting_writer_is_a_deadlock_child");
}

#[test]
#[ignore = "child process of self_deadlock::a_read_asked_again_behind_a_waiting_writer_is_a_deadlock"]
fn a_read_asked_again_behind_a_waiting_writer_is_a_deadlock_child() {
    if !in_child() {
        return;
    }
    let dir = scratch();
    let rec = recorder(dir.path(), "rwr", 1 << 20);
    let d = dispatch(&rec);
    let table = Arc::new(tracing_flightrec::sync::RwLock::named("table", 0u64));
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    let (queued_tx, queued_rx) = std::sync::mpsc::channel::<()>();
    {
        let (d, table) = (d.clone(), table.clone());
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let first = table.read().unwrap();
                    read_tx.send(()).unwrap();
                    queued_rx.recv().unwrap();
                    let again = table.read().unwrap(); // never: the writer is queued
                    let _ = (*first, *again);
                })
            })
            .unwrap();
    }
    read_rx.recv().unwrap();
    {
        let (d, table) = (d.clone(), table.clone());
        std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    *table.write().unwrap() += 1; // never: the reader holds a read
                })
            })
            .unwrap();
    }
    // The second read once the writer's wait is recorded; the dump once both are.
    let _ = dump_when(&rec, |dump| waits_in(dump) >= 1);
    queued_tx.send(()).unwrap();
    let dump = dump_when(&rec, |dump| waits_in(dump) >= 2);
    let out = flightrec(&["check", "--kind", "deadlock", dump.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "reader holds a read of `table` and asks for another, queued behind writer's write"
        ),
        "{text}"
    );
}
