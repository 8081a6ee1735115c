//! Findings, e2e: each kind on a real program that has the bug without failing, and on its
//! correct twin, which must give no finding of that kind; `flightrec check`'s exit codes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tracing_flightrec::sync::Mutex;

use crate::helpers::*;

/// Runs `f` on a thread named `name` recording into `d` (a first event registers the
/// thread with this recorder before any lock event).
pub(crate) fn on_thread(d: &tracing::Dispatch, name: &str, f: impl FnOnce() + Send + 'static) {
    let d = d.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                tracing::info!("start");
                f()
            })
        })
        .unwrap()
        .join()
        .unwrap();
}

/// `flightrec check ARGS`: exit code and stdout.
pub(crate) fn check(args: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = flightrec(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `info --json`'s findings of `kind`.
pub(crate) fn findings_of(dump: &Path, kind: &str) -> Vec<Json> {
    info_json(dump)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .cloned()
        .collect()
}

/// Two threads, one after the other, each taking `ledger` and `audit`; the second in the
/// opposite order when `inverted`. Nothing deadlocks: the first is done before the second
/// starts.
fn two_orders(dir: &Path, inverted: bool) -> PathBuf {
    let rec = recorder(dir, "orders", 4 << 20);
    let d = dispatch(&rec);
    let ledger = Arc::new(Mutex::named("ledger", 0u64));
    let audit = Arc::new(Mutex::named("audit", 0u64));
    let (l, a) = (ledger.clone(), audit.clone());
    on_thread(&d, "posting", move || {
        let mut l = l.lock().unwrap();
        let mut a = a.lock().unwrap();
        *l += 1;
        *a += 1;
    });
    let (l, a) = (ledger.clone(), audit.clone());
    on_thread(&d, "auditor", move || {
        if inverted {
            let mut a = a.lock().unwrap();
            let mut l = l.lock().unwrap();
            *a += 1;
            *l += 1;
        } else {
            let mut l = l.lock().unwrap();
            let mut a = a.lock().unwrap();
            *l += 1;
            *a += 1;
        }
    });
    rec.snapshot().unwrap()
}

#[test]
fn a_lock_order_inversion_is_found_though_it_never_deadlocked() {
    let dir = scratch();
    let dump = two_orders(dir.path(), true);
    let found = findings_of(&dump, "lock_order");
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["severity"], "warning");
    let locks: Vec<&str> = f["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        locks.contains(&"`ledger`") && locks.contains(&"`audit`"),
        "{f}"
    );
    let threads = f["threads"].to_string();
    assert!(
        threads.contains("posting") && threads.contains("auditor"),
        "{f}"
    );
    // The evidence: each thread's two takings, in time order, pointing at real records.
    let records = cat_json(&dump);
    let evidence = f["records"].as_array().unwrap();
    assert_eq!(evidence.len(), 4, "{f}");
    for e in evidence {
        let r = &records[e["record"].as_u64().unwrap() as usize];
        assert_eq!(r["ts"], e["ts"], "{e} is not record {r}");
        assert!(e["title"].as_str().unwrap().starts_with("took "), "{e}");
    }
    // Each acquisition at its own code site (`#[track_caller]`): the four `lock()` calls,
    // not where the locks were made; the title names where the inverted takings were.
    let places: std::collections::BTreeSet<&str> = evidence
        .iter()
        .map(|e| e["place"].as_str().unwrap())
        .collect();
    assert_eq!(places.len(), 4, "{f}");
    let made_at = |name: &str| {
        info_json(&dump)["locks"]["locks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .map(|l| l["place"].as_str().unwrap().to_string())
            .unwrap()
    };
    for p in &places {
        assert!(p.contains("tests/e2e/findings.rs:"), "{p}");
        assert_ne!(*p, made_at("ledger"));
        assert_ne!(*p, made_at("audit"));
    }
    let title = f["title"].as_str().unwrap();
    assert_eq!(title.matches(" at ").count(), 2, "{title}");
    assert!(
        places.iter().filter(|p| title.contains(*p)).count() == 2,
        "{title}"
    );
    assert!(findings_of(&dump, "deadlock").is_empty());
    let (code, text) = check(&[dump.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("warning lock_order: lock order inversion"),
        "{text}"
    );
    // Each evidence line says its role, then the record's title only where the role does not
    // already say it (never "took `ledger` while holding `audit`: took `ledger`").
    let mut evidence = 0;
    for line in text.lines().filter(|l| l.starts_with("    ")) {
        evidence += 1;
        let body = line.split("  at ").next().unwrap();
        if let [_, role, title] = body.splitn(3, ": ").collect::<Vec<_>>()[..] {
            assert!(!role.contains(title), "a doubled evidence line: {line}");
        }
    }
    assert!(evidence >= 2, "{text}");
    // Filters: this kind left out, nothing else to say.
    assert_eq!(
        check(&["--ignore", "lock_order", dump.to_str().unwrap()]).0,
        0
    );
    assert_eq!(check(&["--kind", "stuck", dump.to_str().unwrap()]).0, 0);
}

#[test]
fn one_lock_order_everywhere_is_no_finding() {
    let dir = scratch();
    let dump = two_orders(dir.path(), false);
    assert!(findings_of(&dump, "lock_order").is_empty());
    let (code, text) = check(&[dump.to_str().unwrap()]);
    assert_eq!((code, text.as_str()), (0, ""));
}

/// `requests` instrumented requests on a 2-worker tokio runtime, each waiting 30 ms:
/// blocking its worker (`std::thread::sleep`) or not (`tokio::time::sleep`).
fn requests(dir: &Path, blocking: bool) -> PathBuf {
    use tracing::Instrument;
    let rec = recorder(dir, "async", 4 << 20);
    let d = dispatch(&rec);
    let rt = recording_runtime(&d);
    let _main = tracing::dispatcher::set_default(&d);
    rt.block_on(async {
        let handles: Vec<_> = (0..4u64)
            .map(|id| {
                tokio::spawn(
                    async move {
                        tracing::info!("checking the lot");
                        if blocking {
                            std::thread::sleep(Duration::from_millis(30));
                        } else {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                        }
                        tracing::info!("ticket sold");
                    }
                    .instrument(tracing::info_span!("request", id)),
                )
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    drop(rt);
    rec.snapshot().unwrap()
}

#[test]
fn a_blocking_sleep_in_an_async_handler_is_a_blocking_poll() {
    let dir = scratch();
    let dump = requests(dir.path(), true);
    let found = findings_of(&dump, "blocking_poll");
    assert_eq!(found.len(), 4, "one per request: {found:?}");
    for f in &found {
        assert!(
            f["tasks"][0].as_str().unwrap().starts_with("request"),
            "{f}"
        );
        assert!(
            f["title"].as_str().unwrap().contains("blocked worker"),
            "{f}"
        );
        // The poll, from its beginning to its end, with what happened inside it.
        let told: Vec<(&str, &str)> = f["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["role"].as_str().unwrap(), e["title"].as_str().unwrap()))
            .collect();
        assert_eq!(
            told,
            [
                ("the poll began", "request"),
                ("inside the poll", "checking the lot"),
                ("inside the poll", "ticket sold"),
                ("the poll ended", "request"),
            ],
            "{f}"
        );
    }
    assert_eq!(check(&[dump.to_str().unwrap()]).0, 1);
}

#[test]
fn an_awaited_sleep_in_an_async_handler_is_no_finding() {
    let dir = scratch();
    let dump = requests(dir.path(), false);
    // Below the 30 ms a blocking sleep would hold its worker, above what a loaded machine's
    // preemption adds to a short poll.
    let (code, text) = check(&["--blocking-poll", "25", dump.to_str().unwrap()]);
    assert_eq!((code, text.as_str()), (0, ""));
}

/// A thread that writes a record and then stays silent, inside a span or not, until the
/// snapshot has been taken 300 ms later.
fn silent_thread(dir: &Path, in_span: bool) -> PathBuf {
    let rec = recorder(dir, "silent", 1 << 20);
    let d = dispatch(&rec);
    let (said, heard) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("importer".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                let span = in_span.then(|| tracing::info_span!("import", file = "a.csv").entered());
                tracing::info!("reading");
                said.send(()).unwrap();
                // Silent until the snapshot is taken.
                let _ = released.recv();
                drop(span);
            })
        })
        .unwrap();
    heard.recv().unwrap();
    // The silence the finding is about: longer than the threshold the checks use (200 ms).
    std::thread::sleep(Duration::from_millis(300));
    let dump = rec.snapshot().unwrap();
    release.send(()).unwrap();
    worker.join().unwrap();
    dump
}

#[test]
fn a_thread_silent_inside_a_span_is_stuck_and_one_outside_is_not() {
    let dir = scratch();
    let dump = silent_thread(dir.path(), true);
    let (code, text) = check(&["--stuck", "200", dump.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("warning stuck: importer wrote nothing"),
        "{text}"
    );
    assert!(text.contains("inside import"), "{text}");
    // With a threshold longer than the silence, no finding (however long the machine took
    // to take the snapshot).
    assert_eq!(check(&["--stuck", "600000", dump.to_str().unwrap()]).0, 0);

    let dir = scratch();
    let dump = silent_thread(dir.path(), false);
    let (code, text) = check(&["--stuck", "200", dump.to_str().unwrap()]);
    assert_eq!((code, text.as_str()), (0, ""));
}

/// A thread waits for `ledger` while another holds it, or takes it after.
fn contended(dir: &Path, wait: bool) -> PathBuf {
    let rec = recorder(dir, "contended", 1 << 20);
    let d = dispatch(&rec);
    let ledger = Arc::new(Mutex::named("ledger", 0u64));
    let (taken, holding) = std::sync::mpsc::channel();
    let (waiter_tid, waiting) = std::sync::mpsc::channel::<u64>();
    let l = ledger.clone();
    let d2 = d.clone();
    let holder = std::thread::Builder::new()
        .name("holder".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d2, || {
                tracing::info!("start");
                let mut g = l.lock().unwrap();
                taken.send(()).unwrap();
                if wait {
                    // Hold it until the waiter sleeps on it, then 100 ms more: the wait
                    // is longer than the 50 ms the check asks, however loaded the machine.
                    let tid = waiting.recv().unwrap();
                    let blocked = std::time::Instant::now() + Duration::from_secs(60);
                    while !std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
                        .is_ok_and(|w| w.contains("futex"))
                    {
                        assert!(
                            std::time::Instant::now() < blocked,
                            "the waiter never blocked"
                        );
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                *g += 1;
            })
        })
        .unwrap();
    holding.recv().unwrap();
    let holder = if wait {
        Some(holder)
    } else {
        holder.join().unwrap();
        None
    };
    let l = ledger.clone();
    on_thread(&d, "waiter", move || {
        let tid: u64 = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name()?.to_str()?.parse().ok())
            .unwrap_or(0);
        let _ = waiter_tid.send(tid);
        *l.lock().unwrap() += 1;
    });
    if let Some(h) = holder {
        h.join().unwrap();
    }
    rec.snapshot().unwrap()
}

#[test]
fn a_long_lock_wait_names_the_holder_and_no_wait_is_no_finding() {
    let dir = scratch();
    let dump = contended(dir.path(), true);
    let (code, text) = check(&["--lock-wait", "50", dump.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("note lock_wait: waiter waited"), "{text}");
    assert!(text.contains("for `ledger`, held by holder"), "{text}");

    let dir = scratch();
    let dump = contended(dir.path(), false);
    let (code, text) = check(&["--lock-wait", "50", dump.to_str().unwrap()]);
    assert_eq!((code, text.as_str()), (0, ""));
}

#[test]
fn check_exits_2_on_what_it_cannot_read_and_checks_directories() {
    let dir = scratch();
    let bad = dir.path().join("junk.flightrec");
    std::fs::write(&bad, b"not a recording at all").unwrap();
    let out = flightrec(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let missing = dir.path().join("gone.flightrec");
    assert_eq!(
        flightrec(&["check", missing.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    // A directory: each recording in it checked.
    let orders = scratch();
    two_orders(orders.path(), true);
    let (code, text) = check(&[orders.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(text.matches("lock_order").count(), 1, "{text}");
    // An unknown kind is a usage error.
    assert_eq!(
        flightrec(&["check", "--kind", "bogus", "x"]).status.code(),
        Some(2)
    );
}

/// `check` as a CI gate fails closed: a path holding no recording, files named as
/// recordings that are not, and a recording of which nothing survives exit 2, each said in a
/// line; a damaged recording exits 3 unless `--partial` accepts it.
#[test]
fn check_fails_closed_on_nothing_garbage_and_damage() {
    let stderr_of = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // An empty directory.
    let empty = scratch();
    let out = flightrec(&["check", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("holds no recording"),
        "{}",
        stderr_of(&out)
    );
    // A directory of things that are not recordings.
    let junk = scratch();
    std::fs::write(junk.path().join("notes.txt"), b"some text").unwrap();
    std::fs::write(junk.path().join("noise.bin"), [7u8; 4096]).unwrap();
    std::fs::write(junk.path().join("x.flightrec"), b"").unwrap();
    std::fs::write(junk.path().join("garbage.flightrec"), [0x5au8; 1000]).unwrap();
    let out = flightrec(&["check", junk.path().to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("not a recording").count(), 2, "{err}");
    assert!(err.lines().all(|l| l.starts_with("flightrec: ")), "{err}");
    // A dump, cut: to nothing that survives, and to a part.
    let dir = scratch();
    let rec = recorder(dir.path(), "cut", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        for i in 0..20_000u64 {
            tracing::info!(i, text = "words that do not all compress away", "event");
        }
    });
    let dump = rec.snapshot().unwrap();
    drop(rec);
    let bytes = std::fs::read(&dump).unwrap();
    let (code, text) = check(&[dump.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    // A ring file cut where its chunks begin (its header and names survive, no record
    // does), and a dump cut inside its header.
    let kept = scratch();
    let rec = quiet_builder(kept.path(), "kept", 1 << 20)
        .keep_ring(true)
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!("one record"));
    let ring = rec.ring_path().to_path_buf();
    drop(rec);
    let ring_bytes = std::fs::read(&ring).unwrap();
    let chunks_at = flightrec_format::layout::get_u64(
        &ring_bytes,
        flightrec_format::layout::header::CHUNKS_OFFSET,
    )
    .unwrap() as usize;
    let nothing = dir.path().join("nothing.flightrec-ring");
    std::fs::write(&nothing, &ring_bytes[..chunks_at + 10]).unwrap();
    let headless = dir.path().join("headless.flightrec");
    std::fs::write(&headless, &bytes[..200]).unwrap();
    for cut in [&nothing, &headless] {
        let out = flightrec(&["check", cut.to_str().unwrap()]);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", cut.display());
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let out = flightrec(&["check", nothing.to_str().unwrap()]);
    assert!(
        stderr_of(&out).contains("no record survives"),
        "{}",
        stderr_of(&out)
    );
    let part = dir.path().join("part.flightrec");
    std::fs::write(&part, &bytes[..bytes.len() * 3 / 5]).unwrap();
    let out = flightrec(&["check", part.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is damaged (the file is cut"), "{err}");
    let out = flightrec(&["check", "--partial", part.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("is damaged"),
        "the damage is still said"
    );
}

/// `cargo test --test TEST` of the small crate in `tests/keep-check`, with `FLIGHTREC_KEEP=1`
/// when `keep`; the dumps it left in `dir`.
fn cargo_test_keep_check(dir: &Path, test: &str, keep: bool) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["test", "--quiet", "--test", test, "--manifest-path"])
        .arg(root.join("tests/keep-check/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/keep-check"))
        .env("FLIGHTREC_DIR", dir)
        .env_remove("FLIGHTREC_DUMP_DIR")
        .env_remove("FLIGHTREC_KEEP");
    if keep {
        cmd.env("FLIGHTREC_KEEP", "1");
    }
    let out = cmd.output().expect("running cargo test");
    assert!(
        out.status.success(),
        "the crate's tests pass: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dumps_in(dir)
}

#[test]
fn kept_recordings_of_a_passing_cargo_test_make_check_name_its_lock_order_inversion() {
    let dir = scratch();
    let dumps = cargo_test_keep_check(dir.path(), "transfers", true);
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert!(
        dumps[0].to_str().unwrap().ends_with("-exit.flightrec"),
        "{dumps:?}"
    );
    assert_eq!(info_json(&dumps[0])["trigger"]["reason"], "exit");
    let (code, text) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("lock_order"), "{text}");
    assert!(
        text.contains("`checking`") && text.contains("`savings`"),
        "{text}"
    );
    // Without FLIGHTREC_KEEP the clean end leaves nothing behind.
    let dir = scratch();
    assert_eq!(
        cargo_test_keep_check(dir.path(), "transfers", false),
        Vec::<PathBuf>::new()
    );
    assert!(rings_in(dir.path()).is_empty());
}

/// A correct key-value server's test suite (connection spans around command spans, the
/// state's address logged inside and outside the lock, a key deleted between two GETs on
/// purpose), kept with FLIGHTREC_KEEP: `check` passes.
#[test]
fn a_correct_servers_kept_test_suite_passes_check() {
    let dir = scratch();
    let dumps = cargo_test_keep_check(dir.path(), "kv_server", true);
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let (code, text) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

/// A suite whose tests only call `test_recorder()` (no recorder of their own, no
/// subscriber) is recorded whole under FLIGHTREC_KEEP: one dump for the test binary, in
/// which `check` finds the inversion that two tests made together. Without FLIGHTREC_KEEP
/// it records nothing and leaves nothing.
#[test]
fn a_suite_calling_test_recorder_is_recorded_as_one_kept_dump() {
    let dir = scratch();
    let dumps = cargo_test_keep_check(dir.path(), "one_recorder", true);
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    // Named after the test target, not the binary's hashed file name.
    let name = dumps[0].file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("one_recorder-"), "{name}");
    assert_eq!(info_json(&dumps[0])["trigger"]["reason"], "exit");
    let (code, text) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("lock_order"), "{text}");
    let dir = scratch();
    assert_eq!(
        cargo_test_keep_check(dir.path(), "one_recorder", false),
        Vec::<PathBuf>::new()
    );
    assert!(rings_in(dir.path()).is_empty());
}
