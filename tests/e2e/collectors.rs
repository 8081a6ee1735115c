//! Exactly one dump per dead ring, whoever collects it, and retention that keeps the
//! evidence: killed processes' rings collected by many recorders starting at once and by
//! `watch`, and a service's later snapshots never pushing a killed process's dump out.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_COLLECTORS_CHILD_DIR";
/// Dumps per trigger the children's recorders keep (written into their rings), unless
/// `CHILD_KEEP` says how many.
const KEEP: usize = 5;
const CHILD_KEEP: &str = "FLIGHTREC_COLLECTORS_KEEP";
/// Snapshots a dying child takes before it says "ready" (none unless set).
const CHILD_SNAPSHOTS: &str = "FLIGHTREC_COLLECTORS_SNAPSHOTS";

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

fn child_builder(dir: &str) -> tracing_flightrec::Builder {
    let keep = env_number(CHILD_KEEP).unwrap_or(KEEP);
    quiet_builder(Path::new(dir), "dying", 1 << 20).keep_dumps(keep)
}

/// Child: a recorder that writes a little, says "ready" and waits to be killed.
#[test]
#[ignore = "child process of the collector tests"]
fn dying_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    // Collection off: these children only leave rings, the collectors are the others.
    let rec = child_builder(&dir)
        .collect_dead_rings(false)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..100u64 {
            tracing::info!(i, "before the kill");
        }
    });
    for _ in 0..env_number(CHILD_SNAPSHOTS).unwrap_or(0) {
        rec.snapshot().unwrap();
    }
    println!("ready");
    std::thread::sleep(std::time::Duration::from_secs(120));
}

/// Child: a recorder starting in the directory (collecting the dead rings there), then
/// ending cleanly.
#[test]
#[ignore = "child process of the collector tests"]
fn starting_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rec = child_builder(&dir).build().unwrap();
    println!("collected {}", rec.collected().len());
}

/// `n` children recording into `dir` (with `env` too), all killed once each is ready;
/// their pids.
fn killed(dir: &Path, n: usize, env: &[(&str, &Path)]) -> Vec<u32> {
    let env = [&[(CHILD_DIR, dir)], env].concat();
    let mut children: Vec<_> = (0..n)
        .map(|_| child("collectors::dying_child", &env))
        .collect();
    for c in &mut children {
        wait_for(c, "ready");
    }
    children
        .into_iter()
        .map(|mut c| {
            c.kill().unwrap();
            c.wait().unwrap();
            c.id()
        })
        .collect()
}

fn pid_of(dump: &Path) -> u32 {
    flightrec_format::open(dump).unwrap().process.pid
}

#[test]
fn fifty_dead_rings_and_eleven_collectors_at_once_make_fifty_dumps() {
    let dir = scratch();
    // Retention keeps them all: this is about collection only.
    let keep_all = [(CHILD_KEEP, Path::new("1000"))];
    let pids = killed(dir.path(), 50, &keep_all);
    assert_eq!(rings_in(dir.path()).len(), 50);
    // Ten recorders starting and one `watch`, all at once, all after the same rings.
    let starting: Vec<_> = (0..10)
        .map(|_| {
            child(
                "collectors::starting_child",
                &[(CHILD_DIR, dir.path()), keep_all[0]],
            )
        })
        .collect();
    let watch = Command::new(flightrec_bin())
        .args(["watch", "--once"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for c in starting {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let watched = watch.wait_with_output().unwrap();
    assert!(watched.status.success(), "{watched:?}");
    let dumps = dumps_in(dir.path());
    let mut dumped: Vec<u32> = dumps.iter().map(|d| pid_of(d)).collect();
    dumped.sort_unstable();
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(dumped, expected, "one dump per killed process, none twice");
    assert!(rings_in(dir.path()).is_empty(), "no ring left behind");
    // What `watch` printed exists.
    for line in String::from_utf8_lossy(&watched.stdout).lines() {
        assert!(Path::new(line).exists(), "{line} was printed and is gone");
    }
}

#[test]
fn retention_keeps_killed_processes_dumps_and_watch_prints_only_what_stays() {
    let dir = scratch();
    killed(dir.path(), KEEP + 2, &[]);
    let out = Command::new(flightrec_bin())
        .args(["watch", "--once"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let removed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("flightrec: retention removed the dump "))
        .collect();
    assert_eq!(
        printed.len(),
        KEEP,
        "the recorders' own quota: {KEEP} per trigger"
    );
    assert_eq!(removed.len(), 2, "{stderr}");
    assert!(printed.iter().all(|p| p.exists()));

    // The service goes on, and its snapshots come and go: the killed ones' dumps stay.
    let rec = quiet_builder(dir.path(), "dying", 1 << 20)
        .keep_dumps(KEEP)
        .build()
        .unwrap();
    for _ in 0..3 * KEEP {
        rec.snapshot().unwrap();
    }
    assert!(
        printed.iter().all(|p| p.exists()),
        "a snapshot pushed out a killed process's dump"
    );
    let snapshots = dumps_in(dir.path())
        .iter()
        .filter(|d| {
            let name = d.file_name().unwrap().to_string_lossy();
            flightrec_format::retention::trigger_of(&name) == Some("snapshot")
        })
        .count();
    assert_eq!(snapshots, KEEP);
}

fn trigger_of(dump: &Path) -> String {
    let name = dump.file_name().unwrap().to_string_lossy();
    flightrec_format::retention::trigger_of(&name)
        .unwrap()
        .to_string()
}

/// `scripts/test.sh --stress`: 100 processes, each taking two snapshots, then killed, in
/// rounds of 20, while recorders start in the same directory (each collecting) and `watch`
/// runs throughout. Every killed process leaves exactly one dump, retention keeps the
/// newest `keep` snapshots and every killed process's dump (within its quota), every path
/// `watch` printed still exists, and no ring is left.
#[test]
#[ignore = "stress: run by scripts/test.sh --stress"]
fn stress_dying_processes_with_collectors_and_watch() {
    const ROUNDS: usize = 5;
    const PER_ROUND: usize = 20;
    const KEEP_EACH: usize = 150;
    let dir = scratch();
    let mut watch = Command::new(flightrec_bin())
        .args(["watch", "--interval", "0.02"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watch_out = watch.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(watch_out)
            .lines()
            .map(|l| PathBuf::from(l.unwrap()))
            .collect::<Vec<_>>()
    });
    let keep = KEEP_EACH.to_string();
    let env = [
        (CHILD_KEEP, Path::new(&keep)),
        (CHILD_SNAPSHOTS, Path::new("2")),
    ];
    let mut pids = Vec::new();
    for _ in 0..ROUNDS {
        let starting: Vec<_> = (0..3)
            .map(|_| {
                child(
                    "collectors::starting_child",
                    &[(CHILD_DIR, dir.path()), env[0]],
                )
            })
            .collect();
        pids.extend(killed(dir.path(), PER_ROUND, &env));
        for c in starting {
            assert!(c.wait_with_output().unwrap().status.success());
        }
    }
    // `watch` collects what the recorders starting did not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !rings_in(dir.path()).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "rings left: {:?}",
            rings_in(dir.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    let printed = printed.join().unwrap();

    let dumps = dumps_in(dir.path());
    let mut killed_pids: Vec<u32> = dumps
        .iter()
        .filter(|d| trigger_of(d) == "none")
        .map(|d| pid_of(d))
        .collect();
    killed_pids.sort_unstable();
    pids.sort_unstable();
    assert_eq!(
        killed_pids, pids,
        "one dump per killed process: none lost, none twice"
    );
    let snapshots = dumps.iter().filter(|d| trigger_of(d) == "snapshot").count();
    assert_eq!(
        snapshots, KEEP_EACH,
        "the newest {KEEP_EACH} snapshots are kept"
    );
    for p in &printed {
        assert!(p.exists(), "watch printed {p:?}, and it is gone");
    }
}
