//! History on disk: a ring read with its history holds what the ring alone lost, exactly
//! once and in order; so does a snapshot; the history keeps to its size on disk, keeping
//! the newest; a killed process's ring is collected with its history into one dump.

use std::path::Path;
use std::time::{Duration, Instant};

use flightrec_format::{Recording, Value};
use tracing_flightrec::Recorder;

use crate::helpers::*;

/// Events written a batch at a time; each batch is well under half the 1 MiB ring, and the
/// writer waits for the history to take it before writing the next, so nothing is
/// recycled before the history has it.
const BATCH: u64 = 2_000;

/// Waits until the history thread has finished two more looks at the ring: everything
/// retired before this call is then written (or counted as left out).
fn history_caught_up(rec: &Recorder) {
    let start = rec.history_status().expect("history on").passes;
    let deadline = Instant::now() + Duration::from_secs(60);
    while rec.history_status().unwrap().passes < start + 2 {
        assert!(
            Instant::now() < deadline,
            "the history thread stopped looking"
        );
        std::thread::yield_now();
    }
}

/// Writes `batches` batches of events numbered from 0 on a thread of its own (which
/// retires its chunks when it ends), letting the history catch up after each.
fn write_numbered(rec: &Recorder, batches: u64, after_batch: impl Fn(&Recorder) + Sync) {
    let d = dispatch(rec);
    std::thread::scope(|s| {
        s.spawn(|| {
            tracing::dispatcher::with_default(&d, || {
                for b in 0..batches {
                    for i in b * BATCH..(b + 1) * BATCH {
                        tracing::info!(i, "numbered");
                    }
                    history_caught_up(rec);
                    after_batch(rec);
                }
            })
        });
    });
    history_caught_up(rec);
}

/// The numbers of the `numbered` events (their field `i`), in record order.
fn numbers(rec: &Recording) -> Vec<u64> {
    rec.records
        .iter()
        .filter_map(|r| {
            let cs = rec.callsites.get(&r.callsite)?;
            let i = cs.fields.iter().position(|f| f == "i")?;
            match r.fields.iter().find(|f| f.index as usize == i)?.value {
                Value::U64(i) => Some(i),
                Value::I64(i) => Some(i as u64),
                _ => None,
            }
        })
        .collect()
}

/// Whether `got` is exactly `from..=to`, said briefly when not (the lists are long).
fn assert_run(got: &[u64], from: u64, to: u64, what: &str) {
    let holes = got.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert!(
        got.first() == Some(&from) && got.last() == Some(&to) && holes == 0,
        "{what}: {} events, first {:?}, last {:?}, {holes} breaks; want {from}..={to}",
        got.len(),
        got.first(),
        got.last()
    );
}

/// A recorder with a 1 MiB ring and 16 MiB of history in `dir`.
fn with_history(dir: &Path, service: &str) -> Recorder {
    quiet_builder(dir, service, 1 << 20)
        .history(16 << 20)
        .build()
        .unwrap()
}

fn ring_of(dir: &Path) -> std::path::PathBuf {
    let rings = rings_in(dir);
    assert_eq!(rings.len(), 1, "one ring in {}", dir.display());
    rings[0].clone()
}

#[test]
fn a_ring_read_with_its_history_holds_every_event_once_and_in_order() {
    let dir = scratch();
    let rec = with_history(dir.path(), "history");
    let batches = 100;
    write_numbered(&rec, batches, |_| {});
    let ring = ring_of(dir.path());
    let alone = flightrec_format::Image::from_bytes(&std::fs::read(&ring).unwrap())
        .unwrap()
        .decode()
        .unwrap();
    let whole = flightrec_format::open(&ring).unwrap();
    let status = rec.history_status().unwrap();
    assert_eq!(status.skipped, 0, "{status:?}");
    assert!(
        numbers(&alone).len() < (batches * BATCH / 2) as usize,
        "the ring alone lost most of them"
    );
    let got = numbers(&whole);
    assert_run(
        &got,
        0,
        batches * BATCH - 1,
        "ring and history, every event once, in order",
    );
    assert!(whole.history.attached > 0);
    assert_eq!(whole.history.archived, status.archived);
    assert!(whole.threads.iter().all(|t| t.gaps == 0));
}

#[test]
fn a_snapshot_carries_the_history_and_its_counts() {
    let dir = scratch();
    let rec = with_history(dir.path(), "snap");
    let batches = 50;
    write_numbered(&rec, batches, |_| {});
    let path = rec.snapshot().unwrap();
    let dump = flightrec_format::open(&path).unwrap();
    assert_run(&numbers(&dump), 0, batches * BATCH - 1, "the snapshot");
    let info = info_json(&path);
    assert_eq!(info["history"]["attached_chunks"], dump.history.attached);
    let text = flightrec(&["info", path.to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    let line = format!(
        "history:     {} chunks read from disk",
        dump.history.attached
    );
    assert!(text.contains(&line), "{text}");
    assert!(dump.history.attached > 0);
    assert_eq!(
        dump.history.archived,
        rec.history_status().unwrap().archived
    );
    // Read again from the ring file, with its history: the same events.
    let ring = flightrec_format::open(&ring_of(dir.path())).unwrap();
    assert_eq!(numbers(&ring), numbers(&dump));
}

#[test]
fn the_history_keeps_to_its_size_and_keeps_the_newest() {
    let dir = scratch();
    let budget = 1 << 20;
    let rec = quiet_builder(dir.path(), "bounded", 1 << 20)
        .history(budget)
        .build()
        .unwrap();
    let history = flightrec_format::history::dir_of(&ring_of(dir.path()));
    let batches = 400;
    write_numbered(&rec, batches, |_| {
        let on_disk = flightrec_format::history::disk_bytes(&history);
        assert!(
            on_disk <= budget,
            "{on_disk} bytes on disk, budget {budget}"
        );
    });
    let got = numbers(&flightrec_format::open(&ring_of(dir.path())).unwrap());
    let last = batches * BATCH - 1;
    let first = got.first().copied().unwrap_or(0);
    assert!(first > 0, "the oldest were dropped to keep within the size");
    assert_run(&got, first, last, "the newest, with no hole");
}

const CHILD_DIR: &str = "FLIGHTREC_HISTORY_CHILD_DIR";

/// Child: records with history, writes numbered events, says "ready" and waits to be
/// killed.
#[test]
#[ignore = "child process of the history tests"]
fn history_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rec = quiet_builder(Path::new(&dir), "killed", 1 << 20)
        .history(16 << 20)
        .collect_dead_rings(false)
        .build()
        .unwrap();
    write_numbered(&rec, 60, |_| {});
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_killed_process_is_collected_with_its_history_into_one_dump() {
    let dir = scratch();
    let mut c = child("history::history_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    c.kill().unwrap();
    c.wait().unwrap();
    let ring = ring_of(dir.path());
    let history = flightrec_format::history::dir_of(&ring);
    assert!(history.is_dir());
    let out = flightrec(&["collect", ring.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let dump = String::from_utf8(out.stdout).unwrap();
    let rec = flightrec_format::open(Path::new(dump.trim())).unwrap();
    assert!(rec.is_dump);
    assert_run(
        &numbers(&rec),
        0,
        60 * BATCH - 1,
        "the dump, every event once, in order",
    );
    assert!(rec.history.attached > 0);
    assert!(
        !ring.exists() && !history.exists(),
        "ring and history went into the dump"
    );
}

/// A disk that fills up under the history: the chunks it cannot write are left out and
/// counted, the recorder goes on, and ring and history still read as one recording that
/// ends at the last event written.
#[test]
fn a_full_disk_leaves_chunks_out_counted_and_ring_and_history_read() {
    if !crate::disk::is_root() {
        crate::disk::skip("needs root to mount a small tmpfs");
        return;
    }
    // The 1 MiB ring and its stack area take about 2.1 MiB; the history gets the rest.
    let Some(fs) = crate::disk::SmallFs::mount("2560k") else {
        crate::disk::skip("this environment does not allow mounting a tmpfs");
        return;
    };
    let rec = with_history(fs.path(), "full");
    let batches = 100;
    write_numbered(&rec, batches, |_| {});
    let status = rec.history_status().unwrap();
    assert!(status.archived > 0 && status.skipped > 0, "{status:?}");
    let whole = flightrec_format::open(rec.ring_path()).unwrap();
    assert!(!whole.damage.is_damaged(), "{:?}", whole.damage);
    let got = numbers(&whole);
    let first = got.first().copied().unwrap_or(u64::MAX);
    assert_run(
        &got,
        first,
        batches * BATCH - 1,
        "ring and what history fitted",
    );
    // Room again: the history takes chunks again.
    let segments =
        flightrec_format::history::segments(&flightrec_format::history::dir_of(rec.ring_path()));
    for s in &segments {
        std::fs::remove_file(s).unwrap();
    }
    let before = rec.history_status().unwrap().archived;
    write_numbered(&rec, 10, |_| {});
    assert!(rec.history_status().unwrap().archived > before);
}

/// The page says, in its banner, how much of what it shows came from the history.
#[test]
fn the_viewer_says_what_came_from_the_history() {
    if !crate::viewer::browser_available() {
        return;
    }
    let dir = scratch();
    let rec = with_history(dir.path(), "viewed");
    write_numbered(&rec, 50, |_| {});
    let path = rec.snapshot().unwrap();
    let attached = flightrec_format::open(&path).unwrap().history.attached;
    assert!((1..1000).contains(&attached), "{attached} chunks");
    let r = crate::viewer::drive("cut", &path, serde_json::json!({}));
    let banner = r["banner"].as_str().unwrap();
    let line = format!("history on disk: {attached} chunks read with the ring");
    assert!(banner.contains(&line), "{banner}");
}
