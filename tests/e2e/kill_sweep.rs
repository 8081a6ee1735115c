//! Kill sweep: a child writing from four threads, with history on disk, is SIGKILLed at
//! random moments; every ring file it leaves behind must decode with its history (a frame
//! cut by the kill is dropped), and each thread's records must be a contiguous run of what
//! it wrote, with nothing invented.
//!
//! `FLIGHTREC_KILL_RUNS=N` runs N kills instead of the default 200 (stress mode).

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use flightrec_format::{RecordKind, Value};
use rand::Rng;

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_KILL_CHILD_DIR";
const PAD: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-";

/// The child: runs only when re-executed by the sweep.
#[test]
#[ignore = "child process of kill_sweep; does nothing when run directly"]
fn kill_sweep_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir)
        .service("killme")
        .capacity(1 << 20)
        .chunk_size(4096)
        .history(4 << 20)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    for t in 0..4u64 {
        let d = d.clone();
        std::thread::Builder::new()
            .name(format!("k{t}"))
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let mut i = 0u64;
                    loop {
                        let span = tracing::info_span!("batch", t, b = i / 100);
                        let _g = span.enter();
                        for _ in 0..100 {
                            let pad = &PAD[..(i % 64) as usize];
                            tracing::info!(t, seq = i, pad, "write");
                            i += 1;
                        }
                    }
                })
            })
            .unwrap();
    }
    // Killed only once the history holds something, so that every kill has one to read.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while rec.history_status().unwrap().archived == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the history wrote nothing"
        );
        std::thread::yield_now();
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
}

fn one_kill(rng: &mut impl Rng) {
    let dir = scratch();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "kill_sweep::kill_sweep_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // The harness prints "test kill_sweep_child ... " just before, on the same line.
    while !line.trim_end().ends_with("ready") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child exited before it was ready"
        );
    }
    std::thread::sleep(Duration::from_micros(rng.gen_range(0..20_000)));
    child.kill().unwrap(); // SIGKILL: no handler, no unwinding, no flush
    child.wait().unwrap();

    let ring = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "flightrec-ring"))
        .expect("the ring file survives SIGKILL");
    let image = std::fs::read(&ring).unwrap();
    // Kept for post-mortems of a failing run.
    let _ = std::fs::write(
        std::env::temp_dir().join("flightrec-kill-last.ring"),
        &image,
    );
    let rec = flightrec_format::open(&ring).expect("a killed process's ring decodes");
    let history = flightrec_format::history::dir_of(&ring);
    assert!(
        flightrec_format::history::count_frames(&history) > 0,
        "the history survives SIGKILL"
    );
    assert!(
        !rec.damage.is_damaged(),
        "damage after SIGKILL: {:?}",
        rec.damage
    );
    let mut per_thread: std::collections::HashMap<u32, Vec<(u64, u64)>> = Default::default();
    for r in rec.records.iter().filter(|r| r.kind == RecordKind::Event) {
        let cs = &rec.callsites[&r.callsite];
        let get = |name: &str| {
            r.fields
                .iter()
                .find(|f| cs.fields.get(f.index as usize).is_some_and(|n| n == name))
                .map(|f| f.value.clone())
        };
        let (Some(Value::U64(t)), Some(Value::U64(seq)), Some(Value::Str(pad))) =
            (get("t"), get("seq"), get("pad"))
        else {
            panic!("an event with invented or missing fields: {r:?}");
        };
        assert_eq!(
            &*pad,
            &PAD[..(seq % 64) as usize],
            "a field value that was never written"
        );
        assert_eq!(
            r.spans.len(),
            1,
            "events are written inside exactly one span"
        );
        per_thread.entry(r.thread).or_default().push((t, seq));
    }
    for (thread, events) in per_thread {
        let t = events[0].0;
        for w in events.windows(2) {
            assert_eq!(w[1].0, t, "thread {thread} holds another thread's events");
            assert_eq!(w[1].1, w[0].1 + 1, "thread {thread}: not a contiguous run");
        }
        let summary = rec.threads.iter().find(|s| s.index == thread).unwrap();
        assert_eq!(summary.dropped, 0);
    }
}

#[test]
fn rings_left_by_sigkill_at_random_moments_always_decode() {
    let runs: usize = std::env::var("FLIGHTREC_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut rng = rand::thread_rng();
    for _ in 0..runs {
        one_kill(&mut rng);
    }
}
