//! Blocking-bug kernels, after published ones (Go's GoKer double-lock, AB-BA and RWR
//! kernels, the Rust lockbud tool's double-lock toys, the PLDI 2020 study of Rust
//! concurrency bugs' condvar cases), written in Rust with `tracing_flightrec::sync`: each
//! bug must be named with its kind, and each correct twin must give no finding.
//!
//! A bug's threads block forever (they are left blocked); the harness checks the recording
//! until the finding shows, with a generous deadline. A twin's threads finish, then its
//! recording is checked once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_flightrec::sync::{Condvar, Mutex, RwLock};

use crate::helpers::*;

type Map = Mutex<HashMap<u64, u64>>;

/// A kernel: its name, the kind its bug must be named, and the two programs (each runs on
/// its own threads, spawned through `spawn`).
struct Kernel {
    name: &'static str,
    kind: &'static str,
    bug: fn(&Spawner),
    fix: fn(&Spawner),
}

/// Spawns threads recording into one recorder.
struct Spawner {
    d: tracing::Dispatch,
    handles: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Spawner {
    fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) {
        let d = self.d.clone();
        let h = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let _s = tracing::info_span!("op", thread = name_of_thread()).entered();
                    f()
                })
            })
            .unwrap();
        self.handles.lock().unwrap().push(h);
    }
}

fn name_of_thread() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

fn map() -> Arc<Map> {
    Arc::new(Mutex::named("map", HashMap::new()))
}

/// A turn from one thread to another.
fn turn() -> (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>) {
    std::sync::mpsc::channel()
}

// Double locks: one thread asks again for a mutex whose guard it still holds.

fn match_guard_bug(s: &Spawner) {
    let m = map();
    s.spawn("t", move || match m.lock().unwrap().get(&1).copied() {
        Some(_) => {}
        None => {
            m.lock().unwrap().insert(1, 1);
        }
    });
}

fn match_guard_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let found = m.lock().unwrap().get(&1).copied();
        if found.is_none() {
            m.lock().unwrap().insert(1, 1);
        }
    });
}

fn if_let_guard_bug(s: &Spawner) {
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

fn if_let_guard_fix(s: &Spawner) {
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

fn helper_relock_bug(s: &Spawner) {
    let a = Account {
        balance: Mutex::named("balance", 0),
    };
    s.spawn("t", move || a.deposit(5));
}

fn helper_relock_fix(s: &Spawner) {
    let a = Account {
        balance: Mutex::named("balance", 0),
    };
    s.spawn("t", move || a.deposit_fixed(5));
}

fn reassigned_guard_bug(s: &Spawner) {
    let m = Arc::new(Mutex::named("counter", 0u64));
    // The right side runs before the old guard drops.
    s.spawn("t", move || {
        let mut g = m.lock().unwrap();
        *g += 1;
        g = m.lock().unwrap();
        *g += 1;
    });
}

fn reassigned_guard_fix(s: &Spawner) {
    let m = Arc::new(Mutex::named("counter", 0u64));
    s.spawn("t", move || {
        let mut g = m.lock().unwrap();
        *g += 1;
        drop(g);
        g = m.lock().unwrap();
        *g += 1;
    });
}

fn closure_relock_bug(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let g = m.lock().unwrap();
        let lookup = |k: u64| m.lock().unwrap().get(&k).copied();
        let _ = (g.len(), lookup(1));
    });
}

fn closure_relock_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let len = m.lock().unwrap().len();
        let lookup = |k: u64| m.lock().unwrap().get(&k).copied();
        let _ = (len, lookup(1));
    });
}

fn remove_then_insert_bug(s: &Spawner) {
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

fn remove_then_insert_fix(s: &Spawner) {
    let m = map();
    s.spawn("t", move || {
        let mut g = m.lock().unwrap();
        if g.remove(&1).is_none() {
            g.insert(1, 0);
        }
    });
}

// RwLock: a thread that holds one side asks for the other.

fn read_then_write_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        let r = rw.read().unwrap();
        if *r == 0 {
            *rw.write().unwrap() = 1; // an "upgrade" std does not have
        }
    });
}

fn read_then_write_fix(s: &Spawner) {
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

fn write_then_read_bug(s: &Spawner) {
    let rw = Arc::new(RwLock::named("config", 0u64));
    s.spawn("t", move || {
        let mut w = rw.write().unwrap();
        *w += 1;
        let r = rw.read().unwrap();
        let _ = *r;
    });
}

fn write_then_read_fix(s: &Spawner) {
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
fn rwr_bug(s: &Spawner) {
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
            std::thread::yield_now();
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

fn rwr_fix(s: &Spawner) {
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

// Conflicting order: threads take two (or three) locks in opposite orders.

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

fn abba_bug(s: &Spawner) {
    abba(s, false)
}

fn abba_fix(s: &Spawner) {
    abba(s, true)
}

fn three_cycle(s: &Spawner, fixed: bool) {
    let locks: Vec<Arc<Mutex<u64>>> = ["fork0", "fork1", "fork2"]
        .into_iter()
        .map(|n| Arc::new(Mutex::named(n, 0)))
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(3));
    for i in 0..3 {
        let (first, second) = (i, (i + 1) % 3);
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

fn three_cycle_bug(s: &Spawner) {
    three_cycle(s, false)
}

fn three_cycle_fix(s: &Spawner) {
    three_cycle(s, true)
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

fn abba_rwlock_bug(s: &Spawner) {
    abba_rwlock(s, false)
}

fn abba_rwlock_fix(s: &Spawner) {
    abba_rwlock(s, true)
}

// Condvars: a wait nothing will end.

type Queue = Arc<(Mutex<Vec<u64>>, Condvar)>;

fn queue() -> Queue {
    Arc::new((
        Mutex::named("jobs", Vec::new()),
        Condvar::named("job_ready"),
    ))
}

fn lost_wakeup(s: &Spawner, fixed: bool) {
    let q = queue();
    let (pushed_tx, pushed_rx) = turn();
    let p = q.clone();
    s.spawn("producer", move || {
        let (m, cv) = &*p;
        m.lock().unwrap().push(1);
        cv.notify_one();
        pushed_tx.send(()).unwrap();
    });
    s.spawn("consumer", move || {
        pushed_rx.recv().unwrap();
        let (m, cv) = &*q;
        if fixed {
            let mut g = cv.wait_while(m.lock().unwrap(), |j| j.is_empty()).unwrap();
            g.pop();
        } else {
            let g = m.lock().unwrap();
            let mut g = cv.wait(g).unwrap(); // the notify came before: lost
            g.pop();
        }
    });
}

fn lost_wakeup_bug(s: &Spawner) {
    lost_wakeup(s, false)
}

fn lost_wakeup_fix(s: &Spawner) {
    lost_wakeup(s, true)
}

fn wrong_condvar(s: &Spawner, fixed: bool) {
    let q = queue();
    let other = Arc::new(Condvar::named("space_free"));
    let (waiting_tx, waiting_rx) = turn();
    let c = q.clone();
    s.spawn("consumer", move || {
        let (m, cv) = &*c;
        let g = m.lock().unwrap();
        waiting_tx.send(()).unwrap();
        let mut g = cv.wait_while(g, |j| j.is_empty()).unwrap();
        g.pop();
    });
    s.spawn("producer", move || {
        waiting_rx.recv().unwrap();
        let (m, cv) = &*q;
        m.lock().unwrap().push(1);
        if fixed {
            cv.notify_one();
        } else {
            other.notify_one(); // the wrong condvar
        }
    });
}

fn wrong_condvar_bug(s: &Spawner) {
    wrong_condvar(s, false)
}

fn wrong_condvar_fix(s: &Spawner) {
    wrong_condvar(s, true)
}

const KERNELS: &[Kernel] = &[
    Kernel {
        name: "double lock: match guard",
        kind: "deadlock",
        bug: match_guard_bug,
        fix: match_guard_fix,
    },
    Kernel {
        name: "double lock: if-let guard",
        kind: "deadlock",
        bug: if_let_guard_bug,
        fix: if_let_guard_fix,
    },
    Kernel {
        name: "double lock: helper relocks",
        kind: "deadlock",
        bug: helper_relock_bug,
        fix: helper_relock_fix,
    },
    Kernel {
        name: "double lock: reassigned guard",
        kind: "deadlock",
        bug: reassigned_guard_bug,
        fix: reassigned_guard_fix,
    },
    Kernel {
        name: "double lock: closure relocks",
        kind: "deadlock",
        bug: closure_relock_bug,
        fix: closure_relock_fix,
    },
    Kernel {
        name: "double lock: match on remove",
        kind: "deadlock",
        bug: remove_then_insert_bug,
        fix: remove_then_insert_fix,
    },
    Kernel {
        name: "rwlock: read then write",
        kind: "deadlock",
        bug: read_then_write_bug,
        fix: read_then_write_fix,
    },
    Kernel {
        name: "rwlock: write then read",
        kind: "deadlock",
        bug: write_then_read_bug,
        fix: write_then_read_fix,
    },
    Kernel {
        name: "RWR: read behind a queued writer",
        kind: "deadlock",
        bug: rwr_bug,
        fix: rwr_fix,
    },
    Kernel {
        name: "AB-BA: two mutexes",
        kind: "deadlock",
        bug: abba_bug,
        fix: abba_fix,
    },
    Kernel {
        name: "AB-BA: three philosophers",
        kind: "deadlock",
        bug: three_cycle_bug,
        fix: three_cycle_fix,
    },
    Kernel {
        name: "AB-BA: two rwlocks",
        kind: "deadlock",
        bug: abba_rwlock_bug,
        fix: abba_rwlock_fix,
    },
    Kernel {
        name: "condvar: lost wakeup",
        kind: "no_notify",
        bug: lost_wakeup_bug,
        fix: lost_wakeup_fix,
    },
    Kernel {
        name: "condvar: notify on the wrong condvar",
        kind: "no_notify",
        bug: wrong_condvar_bug,
        fix: wrong_condvar_fix,
    },
];

/// Runs `program` on a fresh recorder; for a bug, checks until `kind` is named (the
/// threads are left blocked); for a twin, joins its threads and checks once. Returns the
/// kinds `check` named.
fn run(program: fn(&Spawner), kind: &str, bug: bool) -> Vec<String> {
    let dir = scratch();
    let rec = recorder(dir.path(), "kernel", 1 << 20);
    let s = Spawner {
        d: dispatch(&rec),
        handles: Default::default(),
    };
    program(&s);
    if !bug {
        for h in s.handles.lock().unwrap().drain(..) {
            h.join().unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dump = rec.snapshot().unwrap();
        let path = dump.to_str().unwrap();
        let out = flightrec(&["check", "--stuck", "100", path]);
        // Each finding's paragraph begins `PATH: SEVERITY KIND: title`.
        let kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(path)?.strip_prefix(": "))
            .filter_map(|rest| rest.split_whitespace().nth(1))
            .map(|k| k.trim_end_matches(':').to_string())
            // Time rules are about how long a thread waited, not about the bug's shape.
            .filter(|k| k != "stuck" && k != "lock_wait")
            .collect();
        if !bug || kinds.iter().any(|k| k == kind) || Instant::now() > deadline {
            // Blocked threads keep the ring's mapping: removing its files harms nothing.
            drop(dir);
            return kinds;
        }
        std::fs::remove_file(&dump).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every kernel's bug named with its kind, every twin silent. The table in the README's
/// findings section quotes this test's count.
#[test]
fn every_kernel_is_named_and_every_twin_is_silent() {
    let mut failures = Vec::new();
    for k in KERNELS {
        let named = run(k.bug, k.kind, true);
        if !named.iter().any(|n| n == k.kind) {
            failures.push(format!("{}: bug named {named:?}, not {}", k.name, k.kind));
        }
        let twin = run(k.fix, k.kind, false);
        if !twin.is_empty() {
            failures.push(format!("{}: the correct twin got {twin:?}", k.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} kernels:\n{}",
        KERNELS.len(),
        failures.join("\n")
    );
}
