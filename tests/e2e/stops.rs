//! Routine stops are not deaths: a service stopped by SIGTERM (under the default
//! disposition, or through its own `tokio::signal` handler) and then restarted leaves no
//! dump and no warning, while one killed with SIGKILL is still collected with its warning.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

const MODE: &str = "FLIGHTREC_STOPS_MODE";

/// Child: a service set up by `tracing_flightrec::init()` (ring and dumps in `FLIGHTREC_DIR`), which
/// then waits according to `FLIGHTREC_STOPS_MODE`:
/// - `default`: sleeps, leaving SIGTERM's default action alone;
/// - `tokio`: waits for SIGTERM through `tokio::signal`, then returns (a graceful stop);
/// - `tokio-first`: the same, with tokio's handler registered before the recorder's;
/// - `once`: returns at once (a restart that looks at what the last run left);
/// - `carry-on`: reloads on SIGHUP and goes on serving (see `carry_on`).
#[test]
#[ignore = "child process of the stop tests"]
fn stopping_service() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let early = (mode == "tokio-first").then(|| {
        let _guard = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap()
    });
    if mode == "carry-on" {
        return carry_on(&runtime);
    }
    tracing_flightrec::init().unwrap();
    tracing::info!(mode = mode.as_str(), "serving");
    match mode.as_str() {
        "default" => {
            println!("ready");
            std::thread::sleep(Duration::from_secs(120));
        }
        "tokio" | "tokio-first" => runtime.block_on(async {
            let mut term = match early {
                Some(t) => t,
                None => tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .unwrap(),
            };
            println!("ready");
            term.recv().await;
            tracing::info!("stopping gracefully");
        }),
        _ => println!("ready"),
    }
}

/// A service that handles SIGHUP (a reload) and carries on, with a stop grace of 5 s: long
/// enough for a test on a loaded machine to see the stop before it is forgotten.
fn carry_on(runtime: &tokio::runtime::Runtime) {
    use tracing_subscriber::prelude::*;
    let rec = tracing_flightrec::Recorder::builder()
        .service("stopper")
        .stop_grace(Duration::from_secs(5))
        .build()
        .unwrap();
    tracing_subscriber::registry().with(rec.layer()).init();
    runtime.block_on(async {
        let mut hup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
        println!("ready");
        loop {
            hup.recv().await;
            tracing::info!("configuration reloaded");
        }
    });
}

fn start(dir: &Path, mode: &str) -> std::process::Child {
    start_with(dir, mode, None)
}

/// `start`, with dumps going to `dump_dir` when given (else beside the ring).
fn start_with(dir: &Path, mode: &str, dump_dir: Option<&Path>) -> std::process::Child {
    // Through `env --default-signal`: a test run under `nohup` ignores SIGHUP, and a child
    // would inherit that, and never see the reload these services are sent.
    let mut c = Command::new("env");
    c.arg("--default-signal=HUP")
        .arg(std::env::current_exe().unwrap());
    c.args([
        "stops::stopping_service",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(MODE, mode)
    .env("FLIGHTREC_DIR", dir)
    .env("FLIGHTREC_SERVICE", "stopper")
    .env("FLIGHTREC_CAPACITY", "1M")
    .env("RUST_LOG", "info")
    .env_remove("FLIGHTREC_DUMP_DIR")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(d) = dump_dir {
        c.env("FLIGHTREC_DUMP_DIR", d);
    }
    c.spawn().expect("spawning the service")
}

/// Starts the service once more and returns what it printed (its fmt output, which
/// `tracing_flightrec::init` sends to stderr, included).
fn restart(dir: &Path) -> String {
    let out = start(dir, "once").wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    printed(&out)
}

/// Everything a child printed: its stdout, then its stderr.
fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn signal(c: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).unwrap();
}

fn sigterm(c: &std::process::Child) {
    signal(c, nix::sys::signal::Signal::SIGTERM);
}

/// Waits (generously) for the child to end and returns its status and what it printed
/// (stdout, then stderr, both drained).
fn wait_end(mut c: std::process::Child) -> (std::process::ExitStatus, String) {
    let mut s = String::new();
    c.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    c.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            return (status, s);
        }
        assert!(Instant::now() < deadline, "the child did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const WARNING: &str = "died without a dump";

#[test]
fn sigterm_under_the_default_action_ends_the_process_and_the_restart_is_quiet() {
    let dir = scratch();
    let mut c = start(dir.path(), "default");
    wait_for(&mut c, "ready");
    sigterm(&c);
    let (status, _) = wait_end(c);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    // The ring stays (no exit ran), marked with the stop.
    let rings = rings_in(dir.path());
    assert_eq!(rings.len(), 1);
    let info = info_json(&rings[0]);
    assert_eq!(info["ending"]["how"], "stopped", "{info}");
    assert_eq!(info["ending"]["signal_name"], "SIGTERM", "{info}");
    let text = flightrec(&["info", rings[0].to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("ended:       stopped by SIGTERM"));

    let printed = restart(dir.path());
    assert!(!printed.contains(WARNING), "{printed}");
    assert!(
        dumps_in(dir.path()).is_empty(),
        "{:?}",
        dumps_in(dir.path())
    );
    // The stopped ring went quietly, and the restart's own clean exit removed its ring.
    assert!(
        rings_in(dir.path()).is_empty(),
        "{:?}",
        rings_in(dir.path())
    );
}

#[test]
fn sigterm_handled_by_the_service_itself_is_a_graceful_stop_and_the_restart_is_quiet() {
    for mode in ["tokio", "tokio-first"] {
        let dir = scratch();
        let mut c = start(dir.path(), mode);
        wait_for(&mut c, "ready");
        sigterm(&c);
        let (status, _) = wait_end(c);
        // The application's own handling ran: it returned from main.
        assert!(status.success(), "{mode}: {status:?}");
        // A clean exit removes its ring at once.
        assert!(rings_in(dir.path()).is_empty(), "{mode}");
        let printed = restart(dir.path());
        assert!(!printed.contains(WARNING), "{mode}: {printed}");
        assert!(dumps_in(dir.path()).is_empty(), "{mode}");
    }
}

#[test]
fn sigkill_is_still_collected_with_its_warning() {
    let dir = scratch();
    let mut c = start(dir.path(), "default");
    wait_for(&mut c, "ready");
    c.kill().unwrap();
    let (status, _) = wait_end(c);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let info = info_json(&rings_in(dir.path())[0]);
    assert_eq!(info["ending"]["how"], "unrecorded", "{info}");
    let printed = restart(dir.path());
    assert!(printed.contains(WARNING), "{printed}");
    let dumps = dumps_in(dir.path());
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert!(dumps[0].to_str().unwrap().ends_with("-none.flightrec"));
}

#[test]
fn a_kept_ring_says_it_closed_cleanly() {
    let dir = scratch();
    let rec = quiet_builder(dir.path(), "kept", 1 << 20)
        .keep_ring(true)
        .build()
        .unwrap();
    let ring = rec.ring_path().to_path_buf();
    drop(rec);
    let info = info_json(&ring);
    assert_eq!(info["ending"]["how"], "closed", "{info}");
    assert!(info["ending"]["ts"].as_i64().unwrap() > 0);
    let text = String::from_utf8(flightrec(&["info", ring.to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("ended:       exited cleanly"), "{text}");
    assert!(
        text.contains("trigger:     none (no dump was asked for)"),
        "{text}"
    );

    // Not kept: dropping the recorder removes the file.
    let rec = recorder(dir.path(), "gone", 1 << 20);
    let ring = rec.ring_path().to_path_buf();
    assert!(ring.exists());
    drop(rec);
    assert!(!ring.exists());
}

#[test]
fn collect_then_a_restart_gives_one_dump() {
    let dir = scratch();
    let dumps = scratch();
    for keep in [false, true] {
        let mut c = start_with(dir.path(), "default", Some(dumps.path()));
        wait_for(&mut c, "ready");
        c.kill().unwrap();
        wait_end(c);
        let ring = rings_in(dir.path()).pop().unwrap();
        let mut args = vec!["collect", ring.to_str().unwrap()];
        if keep {
            args.push("--keep-ring");
        }
        let out = flightrec(&args);
        assert!(out.status.success(), "{out:?}");
        let dump = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        // Into the service's own dump directory, as its ring recorded it.
        assert_eq!(dump.parent(), Some(dumps.path()), "{}", dump.display());
        assert_eq!(ring.exists(), keep, "keep={keep}");
        if keep {
            // Kept, but never collected twice.
            let again = flightrec(&["collect", ring.to_str().unwrap()]);
            assert!(!again.status.success());
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(err.contains("already collected"), "{err}");
        }
        let out = start_with(dir.path(), "once", Some(dumps.path()))
            .wait_with_output()
            .unwrap();
        let printed = printed(&out);
        assert!(!printed.contains(WARNING), "keep={keep}: {printed}");
        assert_eq!(
            dumps_in(dumps.path()).len(),
            1 + usize::from(keep),
            "keep={keep}"
        );
        assert!(rings_in(dir.path()).is_empty(), "keep={keep}");
    }
}

#[test]
fn a_stop_signal_the_service_carries_on_after_is_forgotten_and_a_later_kill_is_a_death() {
    let dir = scratch();
    let mut c = start(dir.path(), "carry-on");
    wait_for(&mut c, "ready");
    signal(&c, nix::sys::signal::Signal::SIGHUP);
    let ring = rings_in(dir.path()).pop().unwrap();
    // Read in this process (no command started per look), so that the stop, marked for the
    // 5 s grace, is seen however loaded the machine is.
    let ending = || flightrec_format::open(&ring).unwrap().ending;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut saw_stop = false;
    loop {
        match ending() {
            flightrec_format::Ending::Stopped { .. } => saw_stop = true,
            flightrec_format::Ending::Unrecorded if saw_stop => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the stop was never forgotten (seen: {saw_stop})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Still serving after the reload: now a kill is a death.
    assert!(c.try_wait().unwrap().is_none());
    c.kill().unwrap();
    wait_end(c);
    let printed = restart(dir.path());
    assert!(printed.contains(WARNING), "{printed}");
    assert_eq!(dumps_in(dir.path()).len(), 1);
}
