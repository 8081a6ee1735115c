//! Blocking-bug kernels, after published ones (Go's GoKer double-lock, AB-BA and RWR
//! kernels, the Rust lockbud tool's double-lock toys, the PLDI 2020 study of Rust
//! concurrency bugs' condvar cases), written in Rust with `tracing_flightrec::sync`: each
//! bug must be named with its kind, and each correct twin must give no finding.
//!
//! A bug's threads block forever (they are left blocked); the harness checks the recording
//! until the finding shows, with a generous deadline. A twin's threads finish, then its
//! recording is checked once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_flightrec::sync::Mutex;

use crate::helpers::*;

mod channels;
mod condvar;
mod double_lock;
mod order;
mod rwr;

use channels::*;
use condvar::*;
use double_lock::*;
use order::*;
use rwr::*;

pub(crate) use crate::helpers::turn;

pub(crate) type Map = Mutex<HashMap<u64, u64>>;

/// A kernel: its name, the kind its bug must be named, and the two programs (each runs on
/// its own threads, spawned through `spawn`).
struct Kernel {
    name: &'static str,
    kind: &'static str,
    bug: fn(&Spawner),
    fix: fn(&Spawner),
}

/// Spawns threads recording into one recorder.
pub(crate) struct Spawner {
    d: tracing::Dispatch,
    handles: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Spawner {
    pub(crate) fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) {
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

pub(crate) fn map() -> Arc<Map> {
    Arc::new(Mutex::named("map", HashMap::new()))
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
        name: "double lock: while-let guard",
        kind: "deadlock",
        bug: while_let_bug,
        fix: while_let_fix,
    },
    Kernel {
        name: "double lock: for over a guard",
        kind: "deadlock",
        bug: for_iter_bug,
        fix: for_iter_fix,
    },
    Kernel {
        name: "double lock: match on a length",
        kind: "deadlock",
        bug: match_len_bug,
        fix: match_len_fix,
    },
    Kernel {
        name: "double lock: one statement's fallback",
        kind: "deadlock",
        bug: same_statement_bug,
        fix: same_statement_fix,
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
        name: "double lock: a callback registers",
        kind: "deadlock",
        bug: callback_bug,
        fix: callback_fix,
    },
    Kernel {
        name: "double lock: a drop relocks",
        kind: "deadlock",
        bug: drop_relock_bug,
        fix: drop_relock_fix,
    },
    Kernel {
        name: "double lock: a getter's guard kept",
        kind: "deadlock",
        bug: getter_guard_bug,
        fix: getter_guard_fix,
    },
    Kernel {
        name: "double lock: recursion",
        kind: "deadlock",
        bug: recursion_bug,
        fix: recursion_fix,
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
        name: "rwlock: write twice",
        kind: "deadlock",
        bug: write_twice_bug,
        fix: write_twice_fix,
    },
    Kernel {
        name: "rwlock: a helper reads under the write",
        kind: "deadlock",
        bug: read_helper_write_bug,
        fix: read_helper_write_fix,
    },
    Kernel {
        name: "RWR: read behind a queued writer",
        kind: "deadlock",
        bug: rwr_bug,
        fix: rwr_fix,
    },
    Kernel {
        name: "RWR: a helper reads behind a queued writer",
        kind: "deadlock",
        bug: rwr_helper_bug,
        fix: rwr_helper_fix,
    },
    Kernel {
        name: "AB-BA: two mutexes",
        kind: "deadlock",
        bug: abba_bug,
        fix: abba_fix,
    },
    Kernel {
        name: "AB-BA: two opposite transfers",
        kind: "deadlock",
        bug: transfer_bug,
        fix: transfer_fix,
    },
    Kernel {
        name: "AB-BA: three philosophers",
        kind: "deadlock",
        bug: three_cycle_bug,
        fix: three_cycle_fix,
    },
    Kernel {
        name: "AB-BA: four philosophers",
        kind: "deadlock",
        bug: four_philosophers_bug,
        fix: four_philosophers_fix,
    },
    Kernel {
        name: "AB-BA: five philosophers",
        kind: "deadlock",
        bug: five_philosophers_bug,
        fix: five_philosophers_fix,
    },
    Kernel {
        name: "AB-BA: two rwlocks",
        kind: "deadlock",
        bug: abba_rwlock_bug,
        fix: abba_rwlock_fix,
    },
    Kernel {
        name: "AB-BA: a mutex and an rwlock",
        kind: "deadlock",
        bug: mixed_abba_bug,
        fix: mixed_abba_fix,
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
    Kernel {
        name: "condvar: checked, then waited",
        kind: "no_notify",
        bug: check_then_wait_bug,
        fix: check_then_wait_fix,
    },
    Kernel {
        name: "RWR: the first read a match scrutinee",
        kind: "deadlock",
        bug: rwr_match_bug,
        fix: rwr_match_fix,
    },
    Kernel {
        name: "RWR: a for over the first read",
        kind: "deadlock",
        bug: rwr_for_bug,
        fix: rwr_for_fix,
    },
    Kernel {
        name: "RWR: a closure reads under the first read",
        kind: "deadlock",
        bug: rwr_callback_bug,
        fix: rwr_callback_fix,
    },
    Kernel {
        name: "channel: a receive under the lock its sender needs",
        kind: "no_send",
        bug: recv_under_lock_bug,
        fix: recv_under_lock_fix,
    },
    Kernel {
        name: "channel: two threads each wait for the other's message",
        kind: "no_send",
        bug: each_waits_for_the_other_bug,
        fix: each_waits_for_the_other_fix,
    },
];

/// Runs `program` on a fresh recorder; for a bug, checks until `kind` is named (the
/// threads are left blocked); for a twin, joins its threads and checks once. Returns the
/// kinds `check` named and, for a bug, the places of its `kind` findings' records.
fn run(program: fn(&Spawner), kind: &str, bug: bool) -> (Vec<String>, Vec<String>) {
    let dir = scratch();
    let rec = recorder(dir.path(), "kernel", 4 << 20);
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
            let report = String::from_utf8_lossy(&out.stdout);
            let places = if bug {
                places_of(&report, path, kind)
            } else {
                Vec::new()
            };
            // Blocked threads keep the ring's mapping: removing its files harms nothing.
            drop(dir);
            return (kinds, places);
        }
        std::fs::remove_file(&dump).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `file:line` of every record of the `kind` findings in `check`'s text `report` of
/// `dump` (a paragraph per finding, its records indented, each ending `  at PLACE`).
fn places_of(report: &str, dump: &str, kind: &str) -> Vec<String> {
    let mut places = Vec::new();
    let mut inside = false;
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix(dump).and_then(|r| r.strip_prefix(": ")) {
            inside = rest.split_whitespace().nth(1) == Some(&format!("{kind}:"));
        } else if inside && line.starts_with("    ") {
            if line.trim_start().starts_with('…') {
                continue;
            }
            let place = line.rsplit_once("  at ").map_or("(no place)", |(_, p)| p);
            places.push(place.to_string());
        }
    }
    places
}

/// Whether `place` (`…/tests/e2e/kernels/FILE.rs:LINE`) is a line of the kernels that
/// calls a lock or condvar operation: where a thread took, waited or notified, never where
/// the lock was made.
fn is_call_site(place: &str) -> bool {
    let Some((file, line)) = place.rsplit_once(':') else {
        return false;
    };
    let Some(rel) = file.split("tests/e2e/").nth(1) else {
        return false;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e")
        .join(rel);
    let (Ok(text), Ok(line)) = (std::fs::read_to_string(path), line.parse::<usize>()) else {
        return false;
    };
    let Some(source) = text.lines().nth(line.saturating_sub(1)) else {
        return false;
    };
    [
        ".lock()",
        ".read()",
        ".write()",
        ".wait(",
        ".wait_while(",
        "notify_",
        ".send(",
        ".recv()",
    ]
    .iter()
    .any(|call| source.contains(call))
}

/// Every kernel's bug named with its kind, every twin silent. The table in the README's
/// findings section quotes this test's count.
/// In a child process: every bug leaves its threads blocked forever.
#[test]
fn every_kernel_is_named_and_every_twin_is_silent() {
    run_in_child("kernels::every_kernel_is_named_and_every_twin_is_silent_child");
}

#[test]
#[ignore = "child process of kernels::every_kernel_is_named_and_every_twin_is_silent"]
fn every_kernel_is_named_and_every_twin_is_silent_child() {
    if !in_child() {
        return;
    }
    let mut failures = Vec::new();
    for k in KERNELS {
        let (named, places) = run(k.bug, k.kind, true);
        if !named.iter().any(|n| n == k.kind) {
            failures.push(format!("{}: bug named {named:?}, not {}", k.name, k.kind));
        }
        // Every record shown is placed where the thread called the lock or the condvar.
        let wrong: Vec<&String> = places.iter().filter(|p| !is_call_site(p)).collect();
        if places.is_empty() || !wrong.is_empty() {
            failures.push(format!("{}: records placed at {wrong:?}", k.name));
        }
        let (twin, _) = run(k.fix, k.kind, false);
        if !twin.is_empty() {
            failures.push(format!("{}: the correct twin got {twin:?}", k.name));
        }
    }
    assert!(
        KERNELS.len() >= 35,
        "the corpus holds {} kernels",
        KERNELS.len()
    );
    assert!(
        failures.is_empty(),
        "{} kernels:\n{}",
        KERNELS.len(),
        failures.join("\n")
    );
}
