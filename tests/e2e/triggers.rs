//! Triggers, each against a real child process: the snapshot signal, a storm of it, panics
//! (unwinding and aborting), and rings left by SIGKILL collected by the next recorder or by
//! `flightrec collect`.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use flightrec_format::{RecordKind, TriggerReason, Value};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_TRIGGER_CHILD_DIR";

fn child_recorder() -> Option<tracing_flightrec::Recorder> {
    let dir = std::env::var(CHILD_DIR).ok()?;
    Some(
        tracing_flightrec::Recorder::builder()
            .dir(dir)
            .service("trig")
            .capacity(4 << 20)
            .build()
            .unwrap(),
    )
}

/// Child: four threads writing numbered events at full speed, forever.
#[test]
#[ignore = "child process of the trigger tests"]
fn writer_child() {
    let Some(rec) = child_recorder() else { return };
    let d = dispatch(&rec);
    // "ready" only once every writer has written: a test may kill the child right after.
    let started = std::sync::Arc::new(std::sync::Barrier::new(5));
    for t in 0..4u64 {
        let (d, started) = (d.clone(), started.clone());
        std::thread::Builder::new()
            .name(format!("w{t}"))
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    tracing::info!(t, seq = 0u64, "write");
                    started.wait();
                    for seq in 1u64.. {
                        tracing::info!(t, seq, "write");
                    }
                })
            })
            .unwrap();
    }
    started.wait();
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
}

/// Child: four threads writing numbered events at full speed until a line on stdin pauses
/// them (they stay alive, holding their chunks); prints "ready" once they have written the
/// ring over several times (so every dump is of a full ring), "paused" once none writes.
#[test]
#[ignore = "child process of the trigger tests"]
fn pausable_writer_child() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let Some(rec) = child_recorder() else { return };
    let d = dispatch(&rec);
    let pause = std::sync::Arc::new(AtomicBool::new(false));
    let parked = std::sync::Arc::new(AtomicUsize::new(0));
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = std::sync::Arc::new(std::sync::Barrier::new(5));
    for t in 0..4u64 {
        let (d, started, pause, parked, written) = (
            d.clone(),
            started.clone(),
            pause.clone(),
            parked.clone(),
            written.clone(),
        );
        std::thread::Builder::new()
            .name(format!("w{t}"))
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    tracing::info!(t, seq = 0u64, "write");
                    started.wait();
                    let mut seq = 1u64;
                    while !pause.load(Ordering::Relaxed) {
                        tracing::info!(t, seq, "write");
                        seq += 1;
                        if seq.is_multiple_of(1024) {
                            written.fetch_add(1024, Ordering::Relaxed);
                        }
                    }
                    parked.fetch_add(1, Ordering::SeqCst);
                    std::thread::park();
                })
            })
            .unwrap();
    }
    started.wait();
    // A 4 MiB ring holds about 75 000 of these records: four times that fills it over.
    while written.load(Ordering::Relaxed) < 300_000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    pause.store(true, Ordering::Relaxed);
    while parked.load(Ordering::SeqCst) < 4 {
        std::thread::yield_now();
    }
    println!("paused");
    std::thread::sleep(Duration::from_secs(120));
}

fn panic_child(abort: bool) {
    let Some(rec) = child_recorder() else { return };
    if abort {
        // What `panic = "abort"` does: run the hook chain, then abort.
        let hooks = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hooks(info);
            std::process::abort();
        }));
    }
    let d = dispatch(&rec);
    let worker = std::thread::Builder::new()
        .name("doomed".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                for step in 0..5u64 {
                    tracing::info!(step, "working");
                }
                let answer = 42;
                panic!("boom {answer}");
            })
        })
        .unwrap();
    assert!(worker.join().is_err());
    println!("survived");
}

#[test]
#[ignore = "child process of the trigger tests"]
fn panic_unwind_child() {
    panic_child(false);
}

#[test]
#[ignore = "child process of the trigger tests"]
fn panic_abort_child() {
    panic_child(true);
}

/// Each thread's `seq` values: a contiguous run per writer thread.
fn check_runs(rec: &flightrec_format::Recording) -> usize {
    let mut runs: std::collections::HashMap<u32, Vec<u64>> = Default::default();
    for r in rec.records.iter().filter(|r| r.kind == RecordKind::Event) {
        if let Some(Value::U64(seq)) = r.fields.get(2).map(|f| f.value.clone()) {
            runs.entry(r.thread).or_default().push(seq);
        }
    }
    for (t, seqs) in &runs {
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "thread {t}: not contiguous"
        );
    }
    runs.len()
}

#[test]
fn usr1_makes_a_dump_within_a_second_while_writers_run() {
    let dir = scratch();
    let mut c = child("triggers::writer_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    let start = Instant::now();
    let out = flightrec(&["snapshot", &c.id().to_string()]);
    let took = start.elapsed();
    let _ = c.kill();
    let _ = c.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(1), "the dump took {took:?}");
    let path = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(path.trim());
    assert!(
        path.to_str().unwrap().ends_with("-signal.flightrec"),
        "{path:?}"
    );
    let rec = flightrec_format::open(path).unwrap();
    assert_eq!(rec.trigger.reason, TriggerReason::Signal);
    assert_eq!(rec.trigger.signal, libc::SIGUSR1 as u32);
    assert_eq!(check_runs(&rec), 4, "all four writers are in the dump");
    let info = flightrec(&["info", path.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("snapshot requested by signal SIGUSR1"));
}

#[test]
fn a_storm_of_200_signals_leaves_the_process_alive_and_every_dump_whole() {
    let dir = scratch();
    let mut c = child("triggers::writer_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    let pid = Pid::from_raw(c.id() as i32);
    for _ in 0..200 {
        kill(pid, Signal::SIGUSR1).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        c.try_wait().unwrap().is_none(),
        "the storm killed the process"
    );
    let _ = c.kill();
    let _ = c.wait();
    let dumps = dumps_in(dir.path());
    assert!(
        !dumps.is_empty() && dumps.len() <= 200,
        "{} dumps",
        dumps.len()
    );
    for d in &dumps {
        let rec = flightrec_format::open(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        assert!(
            !rec.damage.is_damaged(),
            "{}: {:?}",
            d.display(),
            rec.damage
        );
        check_runs(&rec);
    }
}

fn check_panic_dump(dir: &std::path::Path, file: &str) {
    let dumps: Vec<_> = dumps_in(dir)
        .into_iter()
        .filter(|p| p.to_str().unwrap().ends_with("-panic.flightrec"))
        .collect();
    assert_eq!(dumps.len(), 1, "one panic dump");
    let rec = flightrec_format::open(&dumps[0]).unwrap();
    assert_eq!(rec.trigger.reason, TriggerReason::Panic);
    assert!(
        rec.trigger.message.contains("boom 42"),
        "{}",
        rec.trigger.message
    );
    assert!(
        rec.trigger.message.contains(file),
        "{}",
        rec.trigger.message
    );
    assert!(
        rec.trigger.message.contains("doomed"),
        "{}",
        rec.trigger.message
    );
    let doomed = rec
        .threads
        .iter()
        .find(|t| t.name == "doomed")
        .unwrap()
        .index;
    let mine: Vec<_> = rec.records.iter().filter(|r| r.thread == doomed).collect();
    // Five steps, the panic event, and its backtrace when RUST_BACKTRACE asks for one.
    assert!(mine.len() == 6 || mine.len() == 7, "{} records", mine.len());
    let panic_ev = mine[5];
    if let Some(bt) = mine.get(6) {
        let cs = &rec.callsites[&bt.callsite];
        assert_eq!(cs.target, "flightrec::panic");
        assert!(cs.fields.iter().any(|f| f == "backtrace"), "{cs:?}");
    }
    // The panic is stamped where it happened, not after its backtrace was resolved.
    let last_step = mine[4].ts;
    assert!(
        panic_ev.ts - last_step < 50_000_000,
        "the panic event is {} ms after the last step",
        (panic_ev.ts - last_step) / 1_000_000
    );
    assert!((rec.trigger.wall_ns - panic_ev.ts).abs() < 50_000_000);
    let cs = &rec.callsites[&panic_ev.callsite];
    assert_eq!(cs.target, "flightrec::panic");
    let field = |name: &str| {
        panic_ev
            .fields
            .iter()
            .find(|f| cs.fields[f.index as usize] == name)
            .map(|f| f.value.clone())
    };
    assert_eq!(field("panic_message"), Some(Value::Debug("boom 42".into())));
    assert!(matches!(field("location"), Some(Value::Debug(l)) if l.contains(file)));
}

#[test]
fn a_panic_with_unwinding_leaves_a_dump_with_the_panic_and_what_led_to_it() {
    let dir = scratch();
    // With a backtrace to resolve, which is slow: the panic must still be stamped on time.
    let mut c = child(
        "triggers::panic_unwind_child",
        &[
            (CHILD_DIR, dir.path()),
            ("RUST_BACKTRACE", std::path::Path::new("1")),
        ],
    );
    wait_for(&mut c, "survived");
    assert!(c.wait().unwrap().success());
    check_panic_dump(dir.path(), "triggers.rs");
}

/// `FLIGHTREC_KEEP=1` and a panic give one dump of the recording, the panic's: no second
/// `exit` dump of the same records (with every finding in it twice).
#[test]
fn a_panic_under_keep_leaves_the_panic_dump_only() {
    let dir = scratch();
    let mut c = child(
        "triggers::panic_unwind_child",
        &[
            (CHILD_DIR, dir.path()),
            ("FLIGHTREC_KEEP", std::path::Path::new("1")),
        ],
    );
    wait_for(&mut c, "survived");
    assert!(c.wait().unwrap().success());
    let dumps = dumps_in(dir.path());
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert!(
        dumps[0].to_str().unwrap().ends_with("-panic.flightrec"),
        "{dumps:?}"
    );
}

#[test]
fn a_panic_that_aborts_leaves_a_dump_too() {
    let dir = scratch();
    let c = child("triggers::panic_abort_child", &[(CHILD_DIR, dir.path())]);
    let status = c.wait_with_output().unwrap().status;
    assert_eq!(status.signal(), Some(libc::SIGABRT));
    check_panic_dump(dir.path(), "triggers.rs");
}

/// The real thing: a program built with `panic = "abort"` (tests/panic-abort), built here
/// with cargo into its own target directory.
#[test]
fn a_program_built_with_panic_abort_leaves_a_dump() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = root.join("tests/panic-abort/Cargo.toml");
    let target = root.join("target/panic-abort");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap();
    assert!(build.success(), "building tests/panic-abort");
    let dir = scratch();
    let out = std::process::Command::new(target.join("debug/flightrec-panic-abort"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_panic_dump(dir.path(), "main.rs");
}

#[test]
fn after_sigkill_the_next_recorder_collects_the_dead_ring() {
    let dir = scratch();
    let mut c = child("triggers::writer_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    std::thread::sleep(Duration::from_millis(50));
    let dead_pid = c.id();
    c.kill().unwrap();
    c.wait().unwrap();
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir.path())
        .service("next")
        .capacity(1 << 20)
        .snapshot_signal(None)
        .panic_hook(false)
        .build()
        .unwrap();
    assert_eq!(rec.collected().len(), 1);
    let dump = &rec.collected()[0];
    assert!(dump.to_str().unwrap().contains(&format!("-{dead_pid}-")));
    let old = flightrec_format::open(dump).unwrap();
    assert_eq!(old.process.pid, dead_pid);
    assert_eq!(old.trigger.reason, TriggerReason::None);
    assert!(old.trigger.describe().contains("killed without warning"));
    assert_eq!(check_runs(&old), 4);
    assert!(!dir
        .path()
        .join(format!("trig-{dead_pid}.flightrec-ring"))
        .exists());
}

#[test]
fn collect_refuses_a_live_ring_and_dumps_a_dead_one() {
    let dir = scratch();
    let mut c = child("triggers::writer_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    let ring = dir.path().join(format!("trig-{}.flightrec-ring", c.id()));
    let live = flightrec(&["collect", ring.to_str().unwrap()]);
    assert!(!live.status.success());
    assert!(String::from_utf8_lossy(&live.stderr).contains("still running"));
    c.kill().unwrap();
    c.wait().unwrap();
    let out = flightrec(&["collect", ring.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8(out.stdout).unwrap();
    let rec = flightrec_format::open(std::path::Path::new(dump.trim())).unwrap();
    assert!(rec.is_dump);
    assert_eq!(check_runs(&rec), 4);
    assert!(!ring.exists(), "collect removes the ring it dumped");
}

#[test]
fn snapshot_of_a_pid_without_a_recorder_or_no_pid_is_a_clear_error() {
    // A process of its own (this test binary has recorders of other tests in it).
    let mut plain = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let out = flightrec(&["snapshot", &plain.id().to_string(), "--timeout", "0.2"]);
    let _ = plain.kill();
    let _ = plain.wait();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no flightrec recorder"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = flightrec(&["snapshot", "999999999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process with pid"));
}

#[test]
fn watch_collects_a_process_that_never_restarts() {
    let dir = scratch();
    let mut watcher = std::process::Command::new(flightrec_bin())
        .args(["watch", "--interval", "0.05"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = child("triggers::writer_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        dumps_in(dir.path()).is_empty(),
        "watch collected a live ring"
    );
    let dead_pid = c.id();
    c.kill().unwrap();
    c.wait().unwrap();
    let mut line = String::new();
    let start = Instant::now();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watcher.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = watcher.kill();
    let _ = watcher.wait();
    // Collected while watch runs, not left behind: a generous bound, since a loaded
    // machine can take seconds to schedule the scan and write the dump.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "watch took {:?}",
        start.elapsed()
    );
    let rec = flightrec_format::open(std::path::Path::new(line.trim())).unwrap();
    assert_eq!(rec.process.pid, dead_pid);
    assert_eq!(check_runs(&rec), 4);
    assert!(!dir
        .path()
        .join(format!("trig-{dead_pid}.flightrec-ring"))
        .exists());
}

/// Four writers at full speed into a 4 MiB ring, and `flightrec snapshot` 100 times
/// (`FLIGHTREC_SNAPSHOT_RUNS=N` for more): every dump holds all four threads, each as one
/// contiguous run, and at least 90% of the records the same ring holds once the writers
/// are paused. The copy gate is what makes this hold at any write rate.
#[test]
fn snapshots_under_full_load_hold_the_whole_ring() {
    use std::io::Write as _;
    let runs: usize = std::env::var("FLIGHTREC_SNAPSHOT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = scratch();
    let mut c = child_with_stdin(
        "triggers::pausable_writer_child",
        &[(CHILD_DIR, dir.path())],
    );
    wait_for(&mut c, "ready");
    let pid = c.id().to_string();
    let snapshot = || {
        let out = flightrec(&["snapshot", &pid, "--timeout", "60"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let rec = flightrec_format::open(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(!rec.damage.is_damaged(), "{path:?}: {:?}", rec.damage);
        assert_eq!(check_runs(&rec), 4, "all four writers are in {path:?}");
        rec.records.len()
    };
    let mut counts: Vec<usize> = (0..runs).map(|_| snapshot()).collect();
    writeln!(c.stdin.as_mut().unwrap()).unwrap();
    wait_for(&mut c, "paused");
    let full = snapshot();
    let _ = c.kill();
    let _ = c.wait();
    counts.sort_unstable();
    let (min, median, max) = (counts[0], counts[runs / 2], counts[runs - 1]);
    eprintln!(
        "{runs} snapshots under load: records min {min} median {median} max {max}; paused ring {full} ({:.1}% at min)",
        100.0 * min as f64 / full as f64
    );
    assert!(
        min * 10 >= full * 9,
        "a dump under load held {min} records, the paused ring {full}"
    );
}

/// The writer child with its stderr piped, and `FLIGHTREC_ANNOUNCE` as given.
fn writer_child_with_stderr(dir: &std::path::Path, announce: Option<&str>) -> std::process::Child {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "triggers::writer_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_DIR, dir)
    .env_remove("FLIGHTREC_ANNOUNCE")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    if let Some(a) = announce {
        c.env("FLIGHTREC_ANNOUNCE", a);
    }
    c.spawn().unwrap()
}

/// A dump made by a recorder from the builder says so on stderr, in one line naming its
/// kind and path (the user would otherwise have to know the default dump directory);
/// `FLIGHTREC_ANNOUNCE=0` silences it. `info` of that dump does not call its ending
/// "not recorded": the process was running when it was taken.
#[test]
fn a_signal_dump_announces_itself_on_stderr_unless_silenced() {
    use std::io::Read;
    for announce in [None, Some("0")] {
        let dir = scratch();
        let mut c = writer_child_with_stderr(dir.path(), announce);
        wait_for(&mut c, "ready");
        let out = flightrec(&["snapshot", &c.id().to_string()]);
        assert!(out.status.success(), "{out:?}");
        let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let _ = c.kill();
        let _ = c.wait();
        let mut stderr = String::new();
        c.stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("flightrec:"))
            .collect();
        match announce {
            None => assert_eq!(
                lines,
                [format!("flightrec: signal dump written to {path}")],
                "{stderr}"
            ),
            Some(_) => assert!(lines.is_empty(), "{stderr}"),
        }
        let info = flightrec(&["info", &path]);
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            text.contains("ended:       still running when the dump was taken"),
            "{text}"
        );
        assert!(!text.contains("not recorded"), "{text}");
    }
}
