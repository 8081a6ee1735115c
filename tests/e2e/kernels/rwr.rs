//! Read-write-read, after GoKer's RWR kernels: a thread holding a read asks for another
//! while a writer waits; std's `RwLock` queues the second read behind the writer, which
//! waits for the first read. Each shape keeps its first guard alive another way.

use std::sync::Arc;

use tracing_flightrec::sync::RwLock;

use super::{turn, Spawner};

/// Returns once a writer waits on `rw` (a read no longer gets in past it): polled gently,
/// as each try is two records and the ring must keep the first read.
fn until_a_writer_queues<T>(rw: &RwLock<T>) {
    while let Ok(g) = rw.try_read() {
        drop(g);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Runs `reader` (given the lock and "I hold my first read") on one thread and, once it
/// holds its first read, a writer on another.
fn with_writer(s: &Spawner, name: &'static str, reader: fn(&RwLock<Vec<u64>>, &dyn Fn())) {
    let rw = Arc::new(RwLock::named(name, vec![1u64, 2]));
    let (read_tx, read_rx) = turn();
    let r = rw.clone();
    s.spawn("reader", move || {
        reader(&r, &|| read_tx.send(()).unwrap());
    });
    read_rx.recv().unwrap();
    s.spawn("writer", move || {
        rw.write().unwrap().push(3);
    });
}

/// The first read is a `match` scrutinee: its guard lives through the arms.
pub(super) fn rwr_match_bug(s: &Spawner) {
    with_writer(s, "index", |rw, holding| match rw.read().unwrap().first() {
        Some(_) => {
            holding();
            until_a_writer_queues(rw);
            let _ = rw.read().unwrap().len();
        }
        None => holding(),
    });
}

pub(super) fn rwr_match_fix(s: &Spawner) {
    with_writer(s, "index", |rw, holding| {
        let first = rw.read().unwrap().first().copied();
        holding();
        if first.is_some() {
            let _ = rw.read().unwrap().len();
        }
    });
}

/// A `for` over the guard's items reads again for each item.
pub(super) fn rwr_for_bug(s: &Spawner) {
    with_writer(s, "peers", |rw, holding| {
        for (n, _) in rw.read().unwrap().iter().enumerate() {
            if n == 0 {
                holding();
                until_a_writer_queues(rw);
            }
            let _ = rw.read().unwrap().len();
        }
    });
}

pub(super) fn rwr_for_fix(s: &Spawner) {
    with_writer(s, "peers", |rw, holding| {
        let items: Vec<u64> = rw.read().unwrap().clone();
        holding();
        for _ in items {
            let _ = rw.read().unwrap().len();
        }
    });
}

/// A closure called under the first read reads again.
pub(super) fn rwr_callback_bug(s: &Spawner) {
    with_writer(s, "config", |rw, holding| {
        let size = || rw.read().unwrap().len();
        let first = rw.read().unwrap();
        holding();
        until_a_writer_queues(rw);
        let _ = first.len() + size();
    });
}

pub(super) fn rwr_callback_fix(s: &Spawner) {
    with_writer(s, "config", |rw, holding| {
        let size = || rw.read().unwrap().len();
        let first = rw.read().unwrap().len();
        holding();
        let _ = first + size();
    });
}
