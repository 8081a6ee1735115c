//! Channel kernels, after the PLDI 2020 study's blocking channel bugs: a receive nothing
//! will end, because every thread that sends on the channel is blocked itself.

use std::sync::Arc;

use tracing_flightrec::sync::mpsc::named_channel;
use tracing_flightrec::sync::Mutex;

use super::{turn, Spawner};

/// A handler waits for its worker's reply holding the lock the worker needs to make it.
pub(super) fn recv_under_lock_bug(s: &Spawner) {
    recv_under_lock(s, true);
}

pub(super) fn recv_under_lock_fix(s: &Spawner) {
    recv_under_lock(s, false);
}

fn recv_under_lock(s: &Spawner, hold: bool) {
    let state = Arc::new(Mutex::named("state", 0u64));
    let (tx, rx) = named_channel::<u64>("replies");
    let (go_tx, go_rx) = turn();
    let st = state.clone();
    s.spawn("worker", move || {
        tx.send(0).unwrap();
        go_rx.recv().unwrap();
        let v = *st.lock().unwrap();
        let _ = tx.send(v);
    });
    s.spawn("handler", move || {
        let _ = rx.recv().unwrap();
        let g = state.lock().unwrap();
        go_tx.send(()).unwrap();
        if !hold {
            drop(g);
            let _ = rx.recv();
        } else {
            let _ = rx.recv();
            drop(g);
        }
    });
}

/// Two threads that answer each other: after a first exchange, each waits to receive
/// before it sends (the fix sends first).
pub(super) fn each_waits_for_the_other_bug(s: &Spawner) {
    exchange(s, false);
}

pub(super) fn each_waits_for_the_other_fix(s: &Spawner) {
    exchange(s, true);
}

fn exchange(s: &Spawner, send_first: bool) {
    let (to_b, from_a) = named_channel::<u64>("a to b");
    let (to_a, from_b) = named_channel::<u64>("b to a");
    let (ready_tx, ready_rx) = turn();
    s.spawn("a", move || {
        to_b.send(1).unwrap();
        let _ = from_b.recv().unwrap();
        ready_rx.recv().unwrap();
        if send_first {
            to_b.send(2).unwrap();
        }
        let _ = from_b.recv();
        if !send_first {
            let _ = to_b.send(2);
        }
    });
    s.spawn("b", move || {
        let _ = from_a.recv().unwrap();
        to_a.send(1).unwrap();
        ready_tx.send(()).unwrap();
        if send_first {
            to_a.send(2).unwrap();
        }
        let _ = from_a.recv();
        if !send_first {
            let _ = to_a.send(2);
        }
    });
}
