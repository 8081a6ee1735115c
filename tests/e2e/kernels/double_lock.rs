//! Double locks: one thread asks again for a lock whose guard it still holds.

use std::sync::Arc;

use tracing_flightrec::sync::{Mutex, RwLock};

use super::{map, turn, Spawner};

pub(super) fn match_guard_bug(s: &Spawner) {
    let m = map();
    s.spawn("t", move || match m.lock().unwrap().get(&1).copied() {
        Some(_) => {}
        None => {
            m.lock().unwrap().insert(1, 1);
        }
    });
}

pub(super) fn match_guard_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let found = m.lock().unwrap().get(&1).copied();
        if found.is_none() {
            m.lock().unwrap().insert(1, 1);
        }
    });
}

pub(super) fn if_let_guard_bug(s: &Spawner) {
    let m = map();
    // Edition 2021: the scrutinee's guard lives through the `else` block.
    s.spawn("t", move || {
        if let Some(v) = m.lock().unwrap().get(&1).copied() {
            let _ = v;
        } else {
            m.lock().unwrap().insert(1, 1);
        }
    });
}

pub(super) fn if_let_guard_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let found = m.lock().unwrap().get(&1).copied();
        if let Some(v) = found {
            let _ = v;
        } else {
            m.lock().unwrap().insert(1, 1);
        }
    });
}

struct Account {
    balance: Mutex<u64>,
}

impl Account {
    fn deposit(&self, n: u64) {
        let mut b = self.balance.lock().unwrap();
        *b += n;
        self.audit(); // locks `balance` again
    }
    fn deposit_fixed(&self, n: u64) {
        {
            let mut b = self.balance.lock().unwrap();
            *b += n;
        }
        self.audit();
    }
    fn audit(&self) {
        let b = self.balance.lock().unwrap();
        tracing::info!(balance = *b, "audited");
    }
}

pub(super) fn helper_relock_bug(s: &Spawner) {
    let a = Account {
        balance: Mutex::named("balance", 0),
    };
    s.spawn("t", move || a.deposit(5));
}

pub(super) fn helper_relock_fix(s: &Spawner) {
    let a = Account {
        balance: Mutex::named("balance", 0),
    };
    s.spawn("t", move || a.deposit_fixed(5));
}

pub(super) fn reassigned_guard_bug(s: &Spawner) {
    let m = Arc::new(Mutex::named("counter", 0u64));
    // The right side runs before the old guard drops.
    s.spawn("t", move || {
        let mut g = m.lock().unwrap();
        *g += 1;
        g = m.lock().unwrap();
        *g += 1;
    });
}

pub(super) fn reassigned_guard_fix(s: &Spawner) {
    let m = Arc::new(Mutex::named("counter", 0u64));
    s.spawn("t", move || {
        let mut g = m.lock().unwrap();
        *g += 1;
        drop(g);
        g = m.lock().unwrap();
        *g += 1;
    });
}

pub(super) fn closure_relock_bug(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let g = m.lock().unwrap();
        let lookup = |k: u64| m.lock().unwrap().get(&k).copied();
        let _ = (g.len(), lookup(1));
    });
}

pub(super) fn closure_relock_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let len = m.lock().unwrap().len();
        let lookup = |k: u64| m.lock().unwrap().get(&k).copied();
        let _ = (len, lookup(1));
    });
}

pub(super) fn remove_then_insert_bug(s: &Spawner) {
    let m = map();
    s.spawn("t", move || match m.lock().unwrap().remove(&1) {
        Some(v) => {
            let _ = v;
        }
        None => {
            m.lock().unwrap().insert(1, 0);
        }
    });
}

pub(super) fn remove_then_insert_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let mut g = m.lock().unwrap();
        if g.remove(&1).is_none() {
            g.insert(1, 0);
        }
    });
}

pub(super) fn read_then_write_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        let r = rw.read().unwrap();
        if *r == 0 {
            *rw.write().unwrap() = 1; // an "upgrade" std does not have
        }
    });
}

pub(super) fn read_then_write_fix(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        let zero = *rw.read().unwrap() == 0;
        if zero {
            let mut w = rw.write().unwrap();
            if *w == 0 {
                *w = 1;
            }
        }
    });
}

pub(super) fn write_then_read_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        let mut w = rw.write().unwrap();
        *w += 1;
        let r = rw.read().unwrap();
        let _ = *r;
    });
}

pub(super) fn write_then_read_fix(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        {
            let mut w = rw.write().unwrap();
            *w += 1;
        }
        let r = rw.read().unwrap();
        let _ = *r;
    });
}

/// Read, write, read: the second read waits behind the queued writer.
pub(super) fn rwr_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("table", 0u64));
    let (read_tx, read_rx) = turn();
    let (queued_tx, queued_rx) = turn();
    let r1 = rw.clone();
    s.spawn("reader", move || {
        let first = r1.read().unwrap();
        read_tx.send(()).unwrap();
        queued_rx.recv().unwrap();
        // Until the writer is queued, a read still gets in (std lets none past a waiting
        // writer): the second read is asked once one no longer does.
        while let Ok(g) = r1.try_read() {
            drop(g);
            // Polled gently: each try is two records, and the ring must keep the first read.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let again = r1.read().unwrap();
        let _ = (*first, *again);
    });
    read_rx.recv().unwrap();
    let w = rw.clone();
    s.spawn("writer", move || {
        queued_tx.send(()).unwrap();
        *w.write().unwrap() += 1;
    });
}

pub(super) fn rwr_fix(s: &Spawner) {
    let rw = Arc::new(RwLock::named("table", 0u64));
    let (read_tx, read_rx) = turn();
    let r1 = rw.clone();
    s.spawn("reader", move || {
        let both = {
            let first = r1.read().unwrap();
            *first
        };
        read_tx.send(()).unwrap();
        let again = r1.read().unwrap();
        let _ = (both, *again);
    });
    read_rx.recv().unwrap();
    let w = rw.clone();
    s.spawn("writer", move || {
        *w.write().unwrap() += 1;
    });
}

pub(super) fn while_let_bug(s: &Spawner) {
    let q = Arc::new(Mutex::named("queue", vec![1u64, 2]));
    // The scrutinee's guard lives through the loop's body.
    s.spawn("t", move || {
        while let Some(job) = q.lock().unwrap().pop() {
            q.lock().unwrap().push(job * 10);
        }
    });
}

pub(super) fn while_let_fix(s: &Spawner) {
    let q = Arc::new(Mutex::named("queue", vec![1u64, 2]));
    s.spawn("t", move || loop {
        let job = q.lock().unwrap().pop();
        let Some(job) = job else { break };
        if job < 10 {
            q.lock().unwrap().push(job * 10);
        }
    });
}

pub(super) fn for_iter_bug(s: &Spawner) {
    let m = map();
    m.lock().unwrap().insert(1, 1);
    s.spawn("t", move || {
        for (k, _) in m.lock().unwrap().iter() {
            m.lock().unwrap().get(k);
        }
    });
}

pub(super) fn for_iter_fix(s: &Spawner) {
    let m = map();
    m.lock().unwrap().insert(1, 1);
    s.spawn("t", move || {
        let keys: Vec<u64> = m.lock().unwrap().keys().copied().collect();
        for k in keys {
            m.lock().unwrap().get(&k);
        }
    });
}

pub(super) fn match_len_bug(s: &Spawner) {
    let m = map();
    s.spawn("t", move || match m.lock().unwrap().len() {
        0 => {
            m.lock().unwrap().insert(0, 0);
        }
        n => {
            m.lock().unwrap().insert(n as u64, 0);
        }
    });
}

pub(super) fn match_len_fix(s: &Spawner) {
    let m = map();
    // An `if` condition's guard is gone before the block runs.
    s.spawn("t", move || {
        if m.lock().unwrap().is_empty() {
            m.lock().unwrap().insert(0, 0);
        }
    });
}

pub(super) fn same_statement_bug(s: &Spawner) {
    let m = map();
    // The guard lives to the end of the statement, where the fallback locks again.
    s.spawn("t", move || {
        let v = m
            .lock()
            .unwrap()
            .get(&1)
            .copied()
            .unwrap_or_else(|| m.lock().unwrap().len() as u64);
        let _ = v;
    });
}

pub(super) fn same_statement_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let found = m.lock().unwrap().get(&1).copied();
        let v = found.unwrap_or_else(|| m.lock().unwrap().len() as u64);
        let _ = v;
    });
}

struct Registry {
    hooks: Mutex<Vec<u64>>,
}

impl Registry {
    fn fire(&self, relock: bool) {
        let hooks = self.hooks.lock().unwrap();
        for &h in hooks.iter() {
            if relock {
                self.register(h + 1); // a hook that registers another, under the lock
            }
        }
    }
    fn fire_fixed(&self) {
        let hooks: Vec<u64> = self.hooks.lock().unwrap().clone();
        for h in hooks {
            self.register(h + 1);
        }
    }
    fn register(&self, h: u64) {
        self.hooks.lock().unwrap().push(h);
    }
}

pub(super) fn callback_bug(s: &Spawner) {
    let r = Registry {
        hooks: Mutex::named("hooks", vec![1]),
    };
    s.spawn("t", move || r.fire(true));
}

pub(super) fn callback_fix(s: &Spawner) {
    let r = Registry {
        hooks: Mutex::named("hooks", vec![1]),
    };
    s.spawn("t", move || r.fire_fixed());
}

struct Flusher {
    log: Arc<Mutex<Vec<u64>>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(0);
    }
}

pub(super) fn drop_relock_bug(s: &Spawner) {
    let log = Arc::new(Mutex::named("log", Vec::new()));
    s.spawn("t", move || {
        let f = Flusher { log: log.clone() };
        let mut g = log.lock().unwrap();
        g.push(1);
        drop(f); // its `drop` locks `log`, still held here
    });
}

pub(super) fn drop_relock_fix(s: &Spawner) {
    let log = Arc::new(Mutex::named("log", Vec::new()));
    s.spawn("t", move || {
        let f = Flusher { log: log.clone() };
        log.lock().unwrap().push(1);
        drop(f);
    });
}

fn depth(m: &Mutex<u64>, n: u64, hold: bool) {
    if n == 0 {
        return;
    }
    if hold {
        let mut g = m.lock().unwrap();
        *g += 1;
        depth(m, n - 1, hold);
    } else {
        *m.lock().unwrap() += 1;
        depth(m, n - 1, hold);
    }
}

pub(super) fn recursion_bug(s: &Spawner) {
    let m = Arc::new(Mutex::named("depth", 0u64));
    s.spawn("t", move || depth(&m, 3, true));
}

pub(super) fn recursion_fix(s: &Spawner) {
    let m = Arc::new(Mutex::named("depth", 0u64));
    s.spawn("t", move || depth(&m, 3, false));
}

pub(super) fn write_twice_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        let mut w = rw.write().unwrap();
        *w += 1;
        *rw.write().unwrap() += 1;
    });
}

pub(super) fn write_twice_fix(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        let mut w = rw.write().unwrap();
        *w += 2;
    });
}

fn validate(rw: &RwLock<u64>) -> bool {
    *rw.read().unwrap() < 100
}

pub(super) fn read_helper_write_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("settings", 0u64));
    s.spawn("t", move || {
        let mut w = rw.write().unwrap();
        if validate(&rw) {
            *w += 1;
        }
    });
}

pub(super) fn read_helper_write_fix(s: &Spawner) {
    let rw = Arc::new(RwLock::named("settings", 0u64));
    s.spawn("t", move || {
        let ok = validate(&rw);
        let mut w = rw.write().unwrap();
        if ok {
            *w += 1;
        }
    });
}

fn lookup(rw: &RwLock<u64>) -> u64 {
    *rw.read().unwrap()
}

/// Read-write-read through a helper: the reader's helper reads again while a writer waits.
pub(super) fn rwr_helper_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("routes", 0u64));
    let (read_tx, read_rx) = turn();
    let r1 = rw.clone();
    s.spawn("reader", move || {
        let first = r1.read().unwrap();
        read_tx.send(()).unwrap();
        while let Ok(g) = r1.try_read() {
            drop(g);
            // Polled gently: each try is two records, and the ring must keep the first read.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = (*first, lookup(&r1));
    });
    read_rx.recv().unwrap();
    s.spawn("writer", move || {
        *rw.write().unwrap() += 1;
    });
}

pub(super) fn rwr_helper_fix(s: &Spawner) {
    let rw = Arc::new(RwLock::named("routes", 0u64));
    let (read_tx, read_rx) = turn();
    let r1 = rw.clone();
    s.spawn("reader", move || {
        let first = *r1.read().unwrap();
        read_tx.send(()).unwrap();
        let _ = (first, lookup(&r1));
    });
    read_rx.recv().unwrap();
    s.spawn("writer", move || {
        *rw.write().unwrap() += 1;
    });
}

struct Session {
    state: Mutex<u64>,
}

impl Session {
    fn state(&self) -> tracing_flightrec::sync::MutexGuard<'_, u64> {
        self.state.lock().unwrap()
    }
    fn touch(&self) {
        *self.state() += 1;
    }
}

pub(super) fn getter_guard_bug(s: &Spawner) {
    let session = Session {
        state: Mutex::named("session", 0),
    };
    s.spawn("t", move || {
        let st = session.state();
        if *st == 0 {
            session.touch(); // the getter's guard is still alive in `st`
        }
    });
}

pub(super) fn getter_guard_fix(s: &Spawner) {
    let session = Session {
        state: Mutex::named("session", 0),
    };
    s.spawn("t", move || {
        let zero = *session.state() == 0;
        if zero {
            session.touch();
        }
    });
}
