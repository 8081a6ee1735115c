//! Conflicting order: threads take locks in opposite orders.

use std::sync::Arc;

use tracing_flightrec::sync::{Mutex, RwLock};

use super::Spawner;

fn abba(s: &Spawner, fixed: bool) {
    let a = Arc::new(Mutex::named("accounts", 0u64));
    let b = Arc::new(Mutex::named("ledger", 0u64));
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (a1, b1, bar1) = (a.clone(), b.clone(), barrier.clone());
    s.spawn("transfer", move || {
        let _x = a1.lock().unwrap();
        bar1.wait();
        let _y = b1.lock().unwrap();
    });
    s.spawn("report", move || {
        if fixed {
            barrier.wait();
            let _x = a.lock().unwrap();
            let _y = b.lock().unwrap();
        } else {
            let _y = b.lock().unwrap();
            barrier.wait();
            let _x = a.lock().unwrap();
        }
    });
}

pub(super) fn abba_bug(s: &Spawner) {
    abba(s, false)
}

pub(super) fn abba_fix(s: &Spawner) {
    abba(s, true)
}

fn philosophers(s: &Spawner, n: usize, fixed: bool) {
    let locks: Vec<Arc<Mutex<u64>>> = (0..n)
        .map(|i| Arc::new(Mutex::named(format!("fork{i}"), 0)))
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(n));
    for i in 0..n {
        let (first, second) = (i, (i + 1) % n);
        // The fix: every philosopher takes the lower-numbered fork first.
        let (first, second) = if fixed && first > second {
            (second, first)
        } else {
            (first, second)
        };
        let (l1, l2, bar) = (locks[first].clone(), locks[second].clone(), barrier.clone());
        s.spawn(&format!("philosopher{i}"), move || {
            if fixed {
                bar.wait();
                let _a = l1.lock().unwrap();
                let _b = l2.lock().unwrap();
            } else {
                let _a = l1.lock().unwrap();
                bar.wait();
                let _b = l2.lock().unwrap();
            }
        });
    }
}

pub(super) fn three_cycle_bug(s: &Spawner) {
    philosophers(s, 3, false)
}

pub(super) fn three_cycle_fix(s: &Spawner) {
    philosophers(s, 3, true)
}

fn abba_rwlock(s: &Spawner, fixed: bool) {
    let a = Arc::new(RwLock::named("index", 0u64));
    let b = Arc::new(RwLock::named("store", 0u64));
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (a1, b1, bar1) = (a.clone(), b.clone(), barrier.clone());
    s.spawn("indexer", move || {
        let _x = a1.write().unwrap();
        bar1.wait();
        let _y = b1.read().unwrap();
    });
    s.spawn("compactor", move || {
        if fixed {
            barrier.wait();
            let _x = a.read().unwrap();
            let _y = b.write().unwrap();
        } else {
            let _y = b.write().unwrap();
            barrier.wait();
            let _x = a.read().unwrap();
        }
    });
}

pub(super) fn abba_rwlock_bug(s: &Spawner) {
    abba_rwlock(s, false)
}

pub(super) fn abba_rwlock_fix(s: &Spawner) {
    abba_rwlock(s, true)
}

/// A bank transfer that locks the paying account first, then the paid one: two opposite
/// transfers at once.
fn transfer(from: &Mutex<u64>, to: &Mutex<u64>, bar: &std::sync::Barrier) {
    let mut a = from.lock().unwrap();
    bar.wait();
    let mut b = to.lock().unwrap();
    *a -= 1;
    *b += 1;
}

fn transfers(s: &Spawner) {
    let alice = Arc::new(Mutex::named("alice", 100u64));
    let bob = Arc::new(Mutex::named("bob", 100u64));
    let bar = Arc::new(std::sync::Barrier::new(2));
    let (a, b, br) = (alice.clone(), bob.clone(), bar.clone());
    s.spawn("pay-bob", move || transfer(&a, &b, &br));
    s.spawn("pay-alice", move || transfer(&bob, &alice, &bar));
}

pub(super) fn transfer_bug(s: &Spawner) {
    transfers(s)
}

pub(super) fn transfer_fix(s: &Spawner) {
    // The first transfer also takes the lower address first, and meets the barrier holding
    // its first lock: the second waits at the barrier, then for that lock.
    let alice = Arc::new(Mutex::named("alice", 100u64));
    let bob = Arc::new(Mutex::named("bob", 100u64));
    let ordered = |x: &Arc<Mutex<u64>>, y: &Arc<Mutex<u64>>| {
        if (&**x as *const _ as usize) < (&**y as *const _ as usize) {
            (x.clone(), y.clone())
        } else {
            (y.clone(), x.clone())
        }
    };
    for (name, (p, q)) in [
        ("pay-bob", ordered(&alice, &bob)),
        ("pay-alice", ordered(&bob, &alice)),
    ] {
        s.spawn(name, move || {
            let mut a = p.lock().unwrap();
            let mut b = q.lock().unwrap();
            *a += 1;
            *b += 1;
        });
    }
}

pub(super) fn four_philosophers_bug(s: &Spawner) {
    philosophers(s, 4, false)
}

pub(super) fn four_philosophers_fix(s: &Spawner) {
    philosophers(s, 4, true)
}

pub(super) fn five_philosophers_bug(s: &Spawner) {
    philosophers(s, 5, false)
}

pub(super) fn five_philosophers_fix(s: &Spawner) {
    philosophers(s, 5, true)
}

pub(super) fn mixed_abba(s: &Spawner, fixed: bool) {
    let cache = Arc::new(Mutex::named("cache", 0u64));
    let schema = Arc::new(RwLock::named("schema", 0u64));
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (c1, s1, b1) = (cache.clone(), schema.clone(), barrier.clone());
    s.spawn("query", move || {
        let _r = s1.read().unwrap();
        b1.wait();
        let _c = c1.lock().unwrap();
    });
    s.spawn("migrate", move || {
        if fixed {
            barrier.wait();
            let _w = schema.write().unwrap();
            let _c = cache.lock().unwrap();
        } else {
            let _c = cache.lock().unwrap();
            barrier.wait();
            let _w = schema.write().unwrap();
        }
    });
}

pub(super) fn mixed_abba_bug(s: &Spawner) {
    mixed_abba(s, false)
}

pub(super) fn mixed_abba_fix(s: &Spawner) {
    mixed_abba(s, true)
}
