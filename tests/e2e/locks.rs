//! `tracing_flightrec::sync`'s locks: a lock-order deadlock named from the stall dump alone, lock
//! events on the timeline, and the std behaviour kept (poisoning, try_lock, RwLock sharing).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use flightrec_format::TriggerReason;

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_LOCKS_CHILD_DIR";

/// Two threads take two recorded locks in opposite orders: "importer" holds the import lock
/// and wants the logging lock, "logger" holds the logging lock and wants the import lock.
#[test]
#[ignore = "child process of the lock-order deadlock test"]
fn lock_order_deadlock_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rec = stall_recorder(dir, "deadlock");
    let d = dispatch(&rec);
    let import_lock = Arc::new(tracing_flightrec::sync::Mutex::named("import_lock", 0u64));
    let logging_lock = Arc::new(tracing_flightrec::sync::Mutex::named(
        "logging_lock",
        Vec::<String>::new(),
    ));
    let both_held = Arc::new(Barrier::new(2));
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        let d = d.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || tracing::dispatcher::with_default(&d, f))
            .unwrap()
    };
    {
        let (a, b, barrier) = (import_lock.clone(), logging_lock.clone(), both_held.clone());
        spawn(
            "importer",
            Box::new(move || {
                let _s = tracing::info_span!("import", file = "orders.csv").entered();
                let mut imported = a.lock().unwrap();
                *imported += 1;
                tracing::info!("import started");
                barrier.wait();
                let mut log = b.lock().unwrap(); // never: the logger holds it and wants ours
                log.push("imported".into());
            }),
        );
    }
    {
        let (a, b, barrier) = (import_lock.clone(), logging_lock.clone(), both_held.clone());
        spawn(
            "logger",
            // Outside any span: the watchdog sees it stuck by its unfinished lock wait.
            Box::new(move || {
                let log = b.lock().unwrap();
                tracing::info!(lines = log.len(), "flushing the log");
                barrier.wait();
                let _imported = a.lock().unwrap(); // never
            }),
        );
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_lock_order_deadlock_is_named_from_the_stall_dump() {
    let dir = scratch();
    let mut c = child(
        "locks::lock_order_deadlock_child",
        &[(CHILD_DIR, dir.path())],
    );
    wait_for(&mut c, "ready");
    let dump = stall_dump_in(dir.path(), Duration::from_secs(30));
    let _ = c.kill();
    let _ = c.wait();
    let rec = flightrec_format::open(&dump).unwrap();
    assert_eq!(rec.trigger.reason, TriggerReason::Stall);
    // The watchdog names both threads and what each waits for, the one outside any span too.
    let m = &rec.trigger.message;
    assert!(m.starts_with("2 threads stalled"), "{m}");
    assert!(m.contains("in import, waiting for `logging_lock`"), "{m}");
    assert!(m.contains("logger (tid"), "{m}");
    assert!(m.contains("waiting for `import_lock`"), "{m}");
    let info = flightrec(&["info", dump.to_str().unwrap()]);
    assert!(info.status.success());
    let text = String::from_utf8_lossy(&info.stdout);
    let deadlock = text
        .lines()
        .find(|l| l.contains("DEADLOCK"))
        .unwrap_or_else(|| panic!("no deadlock named:\n{text}"));
    // Told from the thread that got stuck first, which the two threads race for.
    let importer_first = "importer holds `import_lock` and waits for `logging_lock`, held by \
                          logger, which holds `logging_lock` and waits for `import_lock`, held \
                          by importer";
    let logger_first = "logger holds `logging_lock` and waits for `import_lock`, held by \
                        importer, which holds `import_lock` and waits for `logging_lock`, held \
                        by logger";
    assert!(
        deadlock.contains(importer_first) || deadlock.contains(logger_first),
        "{deadlock}"
    );
    // The same as data.
    let info = flightrec(&["info", "--json", dump.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let cycles = j["locks"]["deadlocks"].as_array().unwrap();
    assert_eq!(cycles.len(), 1, "{j}");
    let mut steps: Vec<(String, String, String)> = cycles[0]["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["thread"]["name"].as_str().unwrap().to_string(),
                s["holds_name"].as_str().unwrap().to_string(),
                s["waits_for_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The cycle starts at the first thread stuck: compare it from the importer.
    let at = steps.iter().position(|s| s.0 == "importer").unwrap();
    steps.rotate_left(at);
    assert_eq!(
        steps,
        vec![
            (
                "importer".into(),
                "import_lock".into(),
                "logging_lock".into()
            ),
            ("logger".into(), "logging_lock".into(), "import_lock".into()),
        ]
    );
    let waits = j["locks"]["waits"].as_array().unwrap();
    assert_eq!(waits.len(), 2);
    // As a finding: the deadlock, the worst there is, first; its lock order is not told
    // again as an inversion.
    let findings = j["findings"].as_array().unwrap();
    assert_eq!(findings[0]["kind"], "deadlock", "{findings:?}");
    assert_eq!(findings[0]["severity"], "error");
    assert!(
        findings[0]["title"]
            .as_str()
            .unwrap()
            .contains("holds `import_lock` and waits"),
        "{findings:?}"
    );
    assert!(
        findings.iter().all(|f| f["kind"] != "lock_order"),
        "{findings:?}"
    );
    // `check` says each thing once: the kind beside a title that does not repeat it, and
    // an evidence line whose role already names its record without that record's title.
    let checked = flightrec(&["check", dump.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(text.contains("error deadlock: "), "{text}");
    assert!(!text.contains("deadlock: deadlock"), "{text}");
    for line in text.lines().filter(|l| l.contains(": took `")) {
        let (role, title) = line.rsplit_once(": took `").unwrap();
        assert!(
            !role.contains(&format!("took `{}", title.split('`').next().unwrap())),
            "a doubled evidence line: {line}"
        );
    }
    // Each stalled thread's native stack shows the line where it blocks.
    let source = include_str!("locks.rs");
    let line_of = |needle: &str| {
        source
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
            .unwrap()
    };
    let importer_line = line_of("let mut log = b.lock().unwrap(); // never");
    let logger_line = line_of("let _imported = a.lock().unwrap(); // never");
    for (thread, blocks_at) in [("importer", importer_line), ("logger", logger_line)] {
        let stack = j["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["thread"] == thread)
            .unwrap_or_else(|| panic!("no stack for {thread}: {}", j["stacks"]));
        assert_eq!(stack["reason"], "stall");
        assert_eq!(stack["outcome"], "captured");
        let frames = stack["frames"].as_array().unwrap();
        assert!(
            frames.iter().any(|f| {
                f["file"].as_str().is_some_and(|f| f.ends_with("locks.rs"))
                    && f["line"] == blocks_at
                    && f["function"]
                        .as_str()
                        .is_some_and(|f| f.contains("lock_order_deadlock_child"))
            }),
            "{thread} should block at locks.rs:{blocks_at}: {frames:?}"
        );
        // Through our lock's `lock`.
        assert!(frames.iter().any(|f| f["function"]
            .as_str()
            .is_some_and(|f| f.contains("flightrec::sync::Mutex"))));
    }
    let text =
        String::from_utf8_lossy(&flightrec(&["info", dump.to_str().unwrap()]).stdout).into_owned();
    assert!(
        text.contains("importer (tid") && text.contains("stalled"),
        "{text}"
    );
    // The viewer shows it: the banner names the cycle, each thread's lane has its hold and
    // its open wait, and arrows go from each waiter to the holder.
    if crate::viewer::browser_available() {
        let out = crate::viewer::drive(
            "deadlock",
            &dump,
            serde_json::json!({"clickWaitOn": "importer"}),
        );
        // The lock's page: what importer waits for, held at the end by logger.
        assert_eq!(out["lockTitle"], "lock logging_lock");
        let panel = out["lockPanel"].as_str().unwrap();
        assert!(
            panel.contains("held at the end by") && panel.contains("logger"),
            "{panel}"
        );
        assert!(
            panel.contains("waited for at the end by") && panel.contains("importer"),
            "{panel}"
        );
        let banner = out["banner"].as_str().unwrap();
        assert!(
            banner.contains(&format!("deadlock: {importer_first}"))
                || banner.contains(&format!("deadlock: {logger_first}")),
            "{banner}"
        );
        assert!(out["bannerClass"].as_str().unwrap().contains("bad"));
        // The stall marker's details show both stalled threads' stacks, each through the
        // line where it blocks; the importer's lane label shows its own.
        assert_eq!(out["markerTitle"], "⚡ stall");
        let marker = out["markerStacks"].as_array().unwrap();
        assert_eq!(marker.len(), 2, "{marker:?}");
        for (thread, line) in [("importer", importer_line), ("logger", logger_line)] {
            let s = marker
                .iter()
                .find(|s| s["headline"].as_str().unwrap().starts_with(thread))
                .unwrap_or_else(|| panic!("no {thread} stack: {marker:?}"));
            let at = format!("locks.rs:{line}");
            assert!(
                s["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f.as_str().unwrap().contains(&at)),
                "{thread}: {s}"
            );
        }
        let lane = out["laneStack"].as_array().unwrap();
        assert_eq!(lane.len(), 1);
        assert!(lane[0]["headline"]
            .as_str()
            .unwrap()
            .starts_with("importer"));
        let drawn = out["locks"].as_array().unwrap();
        let has = |kind: &str, lane: &str, lock: &str| {
            drawn
                .iter()
                .any(|d| d["kind"] == kind && d["lane"] == lane && d["lock"] == lock)
        };
        assert!(has("hold", "importer", "import_lock"), "{drawn:?}");
        assert!(has("hold", "logger", "logging_lock"), "{drawn:?}");
        assert!(has("wait", "importer", "logging_lock"), "{drawn:?}");
        assert!(has("wait", "logger", "import_lock"), "{drawn:?}");
        assert!(drawn
            .iter()
            .filter(|d| d["kind"] == "wait")
            .all(|d| d["open"] == true));
        let mut arrows: Vec<(String, String)> = drawn
            .iter()
            .filter(|d| d["kind"] == "cycle")
            .map(|d| {
                (
                    d["lane"].as_str().unwrap().to_string(),
                    d["holder"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        arrows.sort();
        assert_eq!(
            arrows,
            vec![
                ("importer".to_string(), "logger".to_string()),
                ("logger".to_string(), "importer".to_string())
            ]
        );
    }
    let locks = j["locks"]["locks"].as_array().unwrap();
    assert!(locks
        .iter()
        .all(|l| l["kind"] == "Mutex" && l["place"].as_str().unwrap().contains("locks.rs")));
}

/// The std behaviour is kept: `try_lock` says WouldBlock while held, a panic while holding
/// poisons the lock (and the poisoned guard still works), an RwLock shares reads; and every
/// acquisition and release is recorded, with the wait of a contended one.
#[test]
fn the_locks_behave_as_std_and_record_what_happens() {
    use std::sync::TryLockError;
    let dir = scratch();
    let rec = recorder(dir.path(), "locks", 4 << 20);
    let d = dispatch(&rec);
    let m = Arc::new(tracing_flightrec::sync::Mutex::named("counter", 0u64));
    let rw = tracing_flightrec::sync::RwLock::new(String::from("config"));
    tracing::dispatcher::with_default(&d, || {
        tracing::info!("start");
        {
            let g = m.lock().unwrap();
            assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
            drop(g);
        }
        // Contended: another thread holds it for a while.
        let held = Arc::new(Barrier::new(2));
        let (m2, held2, d2) = (m.clone(), held.clone(), d.clone());
        let t = std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d2, || {
                tracing::info!("holder");
                let mut g = m2.lock().unwrap();
                held2.wait();
                std::thread::sleep(Duration::from_millis(30));
                *g += 1;
            })
        });
        held.wait();
        *m.lock().unwrap() += 1;
        t.join().unwrap();
        // Poisoning, as std.
        let (m3, d3) = (m.clone(), d.clone());
        let _ = std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d3, || {
                tracing::info!("poisoner");
                let _g = m3.lock().unwrap();
                panic!("poison it");
            })
        })
        .join();
        assert!(m.is_poisoned());
        let g = m.lock().unwrap_err().into_inner();
        assert_eq!(*g, 2);
        drop(g);
        m.clear_poison();
        assert!(!m.is_poisoned());
        // Shared reads.
        let r1 = rw.read().unwrap();
        let r2 = rw.read().unwrap();
        assert!(matches!(rw.try_write(), Err(TryLockError::WouldBlock)));
        assert_eq!((r1.as_str(), r2.as_str()), ("config", "config"));
        drop((r1, r2));
        rw.write().unwrap().push('!');
        assert_eq!(*rw.read().unwrap(), "config!");
    });
    let dump = rec.snapshot().unwrap();
    let r = flightrec_format::open(&dump).unwrap();
    let names = flightrec_analysis::Names::new(&r);
    let locks = flightrec_analysis::locks::locks(&r);
    let counter = locks.iter().find(|l| l.name == "counter").unwrap();
    let config = locks
        .iter()
        .find(|l| l.name.starts_with("RwLock<"))
        .unwrap_or_else(|| panic!("{locks:?}"));
    assert_eq!(config.kind, "RwLock");
    assert!(config.place.as_deref().unwrap().contains("locks.rs"));
    let state = flightrec_analysis::Analysis::of(&r, &Default::default()).locks;
    assert!(state.holds.is_empty() && state.waits.is_empty());
    assert!(state.deadlocks.is_empty());
    let s = state.stats[&counter.id];
    // main twice (once contended), the other thread, the poisoner, main after poisoning.
    assert_eq!(s.acquisitions, 5, "{s:?}");
    assert!(s.contended >= 1);
    assert!(s.max_wait_ns >= 20_000_000, "waited {} ns", s.max_wait_ns);
    assert!(s.max_hold_ns >= 20_000_000, "held {} ns", s.max_hold_ns);
    let c = state.stats[&config.id];
    assert_eq!(c.acquisitions, 4);
    // Every acquisition has its release.
    let ops: Vec<_> = r.records.iter().filter_map(|x| names.lock_op(x)).collect();
    let acquired = ops
        .iter()
        .filter(|(_, o)| matches!(o, flightrec_analysis::locks::LockOp::Acquired { .. }))
        .count();
    let released = ops
        .iter()
        .filter(|(_, o)| matches!(o, flightrec_analysis::locks::LockOp::Released { .. }))
        .count();
    assert_eq!((acquired, released), (9, 9));
    // `cat` says it in words, each lock by its name, or by its type and where it was made.
    let text = String::from_utf8(flightrec(&["cat", dump.to_str().unwrap()]).stdout).unwrap();
    let lock_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" flightrec::lock: "))
        .collect();
    assert_eq!(lock_lines.len(), ops.len(), "{text}");
    assert!(lock_lines.iter().all(|l| !l.contains("op=")), "{text}");
    assert!(lock_lines.iter().any(|l| l.contains("waits for `counter`")));
    assert!(lock_lines
        .iter()
        .any(|l| l.contains("took `counter` after waiting ")));
    assert!(lock_lines
        .iter()
        .any(|l| l.contains("let go of `counter` after ")));
    let config_label = format!(
        "`{}` made at {}",
        config.name,
        config.place.as_deref().unwrap()
    );
    assert!(
        lock_lines
            .iter()
            .any(|l| l.contains(&format!("took {config_label} (shared)"))),
        "{text}"
    );
}

/// Dumps taken while eight threads lock and unlock recorded locks at full speed: no deadlock,
/// no crash, every dump decodes with its lock events, and the lock bookkeeping balances in
/// each (every thread holds at most the one lock it takes at a time).
#[test]
fn dumps_while_eight_threads_lock_at_full_speed() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let runs: usize = std::env::var("FLIGHTREC_LOCK_DUMP_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = scratch();
    let rec = recorder(dir.path(), "lock-storm", 1 << 20);
    let d = dispatch(&rec);
    let locks = Arc::new([
        tracing_flightrec::sync::Mutex::named("a", 0u64),
        tracing_flightrec::sync::Mutex::named("b", 0u64),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (d, locks, stop, ops) = (d.clone(), locks.clone(), stop.clone(), ops.clone());
            std::thread::Builder::new()
                .name(format!("locker-{t}"))
                .spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        tracing::info!("locker");
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            *locks[(n as usize + t) % 2].lock().unwrap() += 1;
                            n += 1;
                        }
                        ops.fetch_add(n, Ordering::Relaxed);
                    })
                })
                .unwrap()
        })
        .collect();
    let mut with_locks = 0;
    // Each dump captures every thread's native stack too: the capture handler interrupts
    // the lockers anywhere, inside the lock's bookkeeping included.
    let tids: std::collections::HashSet<u64> = loop {
        let r = flightrec_format::open(&rec.snapshot().unwrap()).unwrap();
        let t: std::collections::HashSet<u64> = r
            .threads
            .iter()
            .filter(|t| t.name.starts_with("locker-"))
            .map(|t| t.tid)
            .collect();
        if t.len() == 8 {
            break t;
        }
    };
    let mut stacks_seen = 0;
    for _ in 0..runs {
        let dump = rec.snapshot_with_stacks().unwrap();
        let r = flightrec_format::open(&dump).unwrap();
        // Every locker was asked and is in the dump: with registers and stack when it
        // answered (they run and none blocks the signal, so all but a thread starved of CPU
        // for the whole 1 s bound do), or named as not answering.
        let asked: std::collections::HashSet<u64> = r
            .stacks
            .iter()
            .map(|(_, c)| c.tid)
            .filter(|t| tids.contains(t))
            .collect();
        assert_eq!(
            asked.len(),
            8,
            "{:?}",
            r.stacks
                .iter()
                .map(|(_, c)| (c.tid, c.outcome))
                .collect::<Vec<_>>()
        );
        let answered = r
            .stacks
            .iter()
            .filter(|(_, c)| {
                tids.contains(&c.tid)
                    && c.outcome == flightrec_format::CaptureOutcome::Captured
                    && !c.stack.is_empty()
            })
            .count();
        stacks_seen += answered;
        let state = flightrec_analysis::Analysis::of(&r, &Default::default()).locks;
        assert!(state.deadlocks.is_empty());
        // A thread whose records were all kept (none dropped while the dump's copy gate
        // was closed, no gap) holds at most the one lock it takes at a time.
        for t in r.threads.iter().filter(|t| t.dropped == 0 && t.gaps == 0) {
            let held = state.holds.iter().filter(|h| h.thread == t.index).count();
            assert!(held <= 1, "thread {} holds {held}", t.name);
        }
        if state.stats.values().any(|s| s.acquisitions > 0) {
            with_locks += 1;
        }
        std::fs::remove_file(&dump).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let total = locks[0].lock().unwrap().to_owned() + *locks[1].lock().unwrap();
    // Each increment was one lock, and the counters saw every one: no lost updates.
    assert!(total >= ops.load(Ordering::Relaxed));
    // Measured: every one, run after run; the bound leaves room for a starved thread.
    assert!(
        stacks_seen * 100 >= runs * 8 * 99,
        "{stacks_seen} of {} stacks",
        runs * 8
    );
    assert!(
        with_locks * 10 >= runs * 9,
        "{with_locks} of {runs} dumps had lock events"
    );
}

/// Stress on real threads: 300 locks, each first used by eight threads at once. Each is
/// registered once in the ring, so its events are not split between two callsites (a race
/// between a thread's first look and its registration once let a second one in).
#[test]
fn a_lock_first_used_by_many_threads_at_once_is_registered_once() {
    const LOCKS: usize = 300;
    let dir = scratch();
    let rec = recorder(dir.path(), "firstuse", 8 << 20);
    let locks: Arc<Vec<tracing_flightrec::sync::Mutex<u64>>> = Arc::new(
        (0..LOCKS)
            .map(|i| tracing_flightrec::sync::Mutex::named(format!("l{i}"), 0))
            .collect(),
    );
    let start = Arc::new(Barrier::new(8));
    on_threads(&dispatch(&rec), 8, "t", move |_| {
        tracing::info!("ready");
        for l in locks.iter() {
            start.wait();
            *l.lock().unwrap() += 1;
        }
    });
    let dump = rec.snapshot().unwrap();
    let r = flightrec_format::open(&dump).unwrap();
    let all = flightrec_analysis::locks::locks(&r);
    assert_eq!(all.len(), LOCKS, "a lock registered twice");
    let state = flightrec_analysis::Analysis::of(&r, &Default::default()).locks;
    for l in &all {
        assert_eq!(state.stats[&l.id].acquisitions, 8, "{}", l.name);
    }
}

/// A thread records its lock events in the recorder of its own subscriber, and a thread
/// with none records none: never into another recorder of the process (a test suite, or a
/// service with two, builds many).
#[test]
fn a_thread_records_its_locks_only_in_its_own_subscribers_recorder() {
    let dir = scratch();
    let ours = recorder(dir.path(), "ours", 1 << 20);
    let d = dispatch(&ours);
    let lock = Arc::new(tracing_flightrec::sync::Mutex::named("shared_lock", 0u64));
    let l = lock.clone();
    std::thread::Builder::new()
        .name("recorded".into())
        .spawn(move || tracing::dispatcher::with_default(&d, || *l.lock().unwrap() += 1))
        .unwrap()
        .join()
        .unwrap();
    // Built after ours: the newest recorder of the process.
    let newest = recorder(dir.path(), "newest", 1 << 20);
    let l = lock.clone();
    std::thread::Builder::new()
        .name("unrecorded".into())
        .spawn(move || *l.lock().unwrap() += 1)
        .unwrap()
        .join()
        .unwrap();
    let threads_with_locks = |path: &std::path::Path| {
        let mut threads: Vec<String> = cat_json(path)
            .into_iter()
            .filter(|r| r["target"] == "flightrec::lock")
            .map(|r| r["thread"].as_str().unwrap().to_string())
            .collect();
        threads.dedup();
        threads
    };
    assert_eq!(threads_with_locks(ours.ring_path()), ["recorded"]);
    assert!(threads_with_locks(newest.ring_path()).is_empty());
}
