//! What goes in comes out: every event exactly once, in order, with exact values; exact
//! overwrite counts when the ring wraps; an idle thread's last words survive a busy one.

use std::collections::HashMap;
use std::sync::mpsc;

use crate::helpers::*;

const THREADS: usize = 8;
const PER_THREAD: u64 = 200_000;

fn write_sequences(t: usize) {
    for i in 0..PER_THREAD {
        tracing::info!(t = t as u64, seq = i, "tick");
    }
}

/// Checks every thread's events are consecutive `seq` values ending at PER_THREAD - 1;
/// returns each thread's (first seq, count).
fn collect_runs(path: &std::path::Path) -> HashMap<String, (u64, u64)> {
    let mut runs: HashMap<String, (u64, u64)> = HashMap::new();
    let mut last_ts = i64::MIN;
    cat_json_each(path, |r| {
        assert_eq!(r["kind"], "event", "{r}");
        let ts = r["ts"].as_i64().unwrap_or_else(|| panic!("no time in {r}"));
        assert!(ts >= last_ts, "records out of time order");
        last_ts = ts;
        let thread = r["thread"]
            .as_str()
            .unwrap_or_else(|| panic!("no thread in {r}"))
            .to_string();
        let t = r["fields"]["t"]
            .as_u64()
            .unwrap_or_else(|| panic!("no field t in {r}"));
        assert_eq!(
            thread,
            format!("w{t}"),
            "event attributed to the wrong thread: {r}"
        );
        assert_eq!(r["fields"]["message"], "tick");
        assert_eq!(r["level"], "INFO");
        let seq = r["fields"]["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("no field seq in {r}"));
        let run = runs.entry(thread).or_insert((seq, 0));
        assert_eq!(seq, run.0 + run.1, "a gap or a duplicate in {r}");
        run.1 += 1;
    });
    for (thread, &(first, count)) in &runs {
        assert_eq!(
            first + count,
            PER_THREAD,
            "{thread}'s newest events are missing"
        );
    }
    runs
}

#[test]
fn every_event_of_eight_threads_comes_back_once_in_order_with_exact_values() {
    let dir = scratch();
    let rec = recorder(dir.path(), "acc1", 160 << 20);
    on_threads(&dispatch(&rec), THREADS, "w", write_sequences);
    let runs = collect_runs(rec.ring_path());
    assert_eq!(runs.len(), THREADS);
    for (thread, (first, count)) in &runs {
        assert_eq!((*first, *count), (0, PER_THREAD), "{thread}");
    }
    let info = info_json(rec.ring_path());
    assert_eq!(info["overwritten"], 0);
    assert_eq!(info["dropped"], 0);
    assert_eq!(info["records"], THREADS as u64 * PER_THREAD);
}

#[test]
fn a_wrapped_ring_keeps_each_threads_newest_run_and_counts_the_rest_exactly() {
    let dir = scratch();
    // The events take about 40 MB (25 bytes each); this ring holds about a tenth of them.
    let rec = recorder(dir.path(), "acc2", 4 << 20);
    on_threads(&dispatch(&rec), THREADS, "w", write_sequences);
    let runs = collect_runs(rec.ring_path());
    let info = info_json(rec.ring_path());
    let threads = info_threads(&info);
    let total: u64 = runs.values().map(|r| r.1).sum();
    let all = THREADS as u64 * PER_THREAD;
    assert!(total > all / 20 && total < all / 5, "kept {total} of {all}");
    for (thread, (first, count)) in &runs {
        let t = &threads[thread];
        assert_eq!(
            t["overwritten"].as_u64().unwrap(),
            *first,
            "{thread}: overwritten count"
        );
        assert_eq!(t["overwritten"].as_u64().unwrap() + count, PER_THREAD);
        assert_eq!(t["dropped"], 0);
    }
    // The dump says the same as the ring file.
    let dump = rec.snapshot().unwrap();
    assert_eq!(collect_runs(&dump), runs);
}

#[test]
fn an_idle_threads_last_events_survive_ten_million_from_busy_threads() {
    let dir = scratch();
    let rec = recorder(dir.path(), "acc3", 8 << 20);
    let d = dispatch(&rec);
    let (wrote, wrote_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let idle_d = d.clone();
    let idle = std::thread::Builder::new()
        .name("idle".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&idle_d, || {
                for i in 0..10u64 {
                    tracing::warn!(last_words = i, "about to wait");
                }
                wrote.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        })
        .unwrap();
    wrote_rx.recv().unwrap();
    on_threads(&d, 4, "busy", |t| {
        for i in 0..2_500_000u64 {
            tracing::info!(t = t as u64, i, "churn");
        }
    });
    let check = |path: &std::path::Path| {
        let mut words = Vec::new();
        let mut busy = 0u64;
        cat_json_each(path, |r| {
            if r["thread"] == "idle" {
                words.push(r["fields"]["last_words"].as_u64().unwrap());
            } else {
                busy += 1;
            }
        });
        assert_eq!(
            words,
            (0..10).collect::<Vec<_>>(),
            "the idle thread's events"
        );
        let info = info_json(path);
        let overwritten = info["overwritten"].as_u64().unwrap();
        assert!(
            overwritten > 9_000_000,
            "the busy threads did not churn the ring: {overwritten}"
        );
        assert_eq!(busy + overwritten, 10_000_000);
    };
    check(&rec.snapshot().unwrap());
    check(rec.ring_path());
    release.send(()).unwrap();
    idle.join().unwrap();
}

/// An event's message is stored once per callsite when it repeats (the meta log keeps it,
/// each record a one-byte mark), and every record reads back with its own text: a literal
/// message, a formatted one whose first text comes back later, and one that never repeats.
#[test]
fn every_event_reads_back_its_own_message_whether_kept_once_or_stored_whole() {
    let dir = scratch();
    let rec = recorder(dir.path(), "messages", 1 << 20);
    let d = dispatch(&rec);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..300u64 {
            tracing::info!(i, "the same words");
            tracing::info!("count {}", i % 3);
            tracing::info!("unique {i}");
        }
    });
    let mut seen = (0u64, 0u64, 0u64);
    cat_json_each(rec.ring_path(), |r| {
        let i = seen.0;
        let message = r["fields"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"));
        match (seen.0 + seen.1 + seen.2) % 3 {
            0 => {
                assert_eq!(message, "the same words", "{r}");
                assert_eq!(r["fields"]["i"], i, "{r}");
                seen.0 += 1;
            }
            1 => {
                assert_eq!(message, format!("count {}", seen.1 % 3), "{r}");
                seen.1 += 1;
            }
            _ => {
                assert_eq!(message, format!("unique {}", seen.2), "{r}");
                seen.2 += 1;
            }
        }
    });
    assert_eq!(seen, (300, 300, 300));
    // Each callsite's first message went to the meta log once.
    let image = std::fs::read(rec.ring_path()).unwrap();
    let kept: Vec<String> = flightrec_format::decode::scan(&image)
        .unwrap()
        .kept_messages()
        .map(|(_, text)| text.to_string())
        .collect();
    let mut kept = kept;
    kept.sort();
    assert_eq!(kept, ["count 0", "the same words", "unique 0"]);
}
