//! Triggers that arrive while a dump is being written fold into it: two threads that panic
//! moments apart leave one dump, whose trigger is the first panic and which lists both.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_FOLDING_CHILD_DIR";

/// Child: fills a 64 MiB ring with hard-to-compress records (so its dump takes a good
/// fraction of a second to copy and compress), then thread `first` panics, and thread
/// `second` panics as soon as it sees the first panic's dump under way
/// (`Recorder::dump_under_way`), so that it arrives while that dump can still take it in.
#[test]
#[ignore = "child process of the folding test"]
fn two_panics_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    // Quiet, and installed first: the recorder's hook chains before it.
    std::panic::set_hook(Box::new(|_| {}));
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir)
        .service("fold")
        .capacity(64 << 20)
        .snapshot_signal(None)
        .stall_threshold(None)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    let d2 = d.clone();
    let _ = std::thread::Builder::new()
        .name("filler".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d2, || {
                let mut x: u64 = 0x9e3779b97f4a7c15;
                for _ in 0..1_500_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    tracing::info!(a = x, b = x.rotate_left(17), c = x.rotate_left(31), "noise");
                }
            })
        })
        .unwrap()
        .join();
    std::thread::scope(|scope| {
        let spawn = |name: &str, wait: bool| {
            let (d, rec) = (d.clone(), &rec);
            std::thread::Builder::new()
                .name(name.into())
                .spawn_scoped(scope, move || {
                    tracing::dispatcher::with_default(&d, || {
                        tracing::info!("about to fail");
                        if wait {
                            wait_for_a_dump_under_way(rec);
                            panic!("the second failure");
                        }
                        panic!("the first failure");
                    })
                })
                .unwrap()
        };
        let second = spawn("second", true);
        let first = spawn("first", false);
        assert!(first.join().is_err() && second.join().is_err());
    });
    println!("done");
}

/// Waits (60 s at most) until a dump is under way and would take a trigger in: from the
/// first panic until that dump holds its last copy (its copy and its compression, a good
/// fraction of a second for this ring), not only while its chunks are copied.
fn wait_for_a_dump_under_way(rec: &tracing_flightrec::Recorder) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rec.dump_under_way() {
        assert!(Instant::now() < deadline, "no dump was ever under way");
        std::thread::yield_now();
    }
}

#[test]
fn two_panics_moments_apart_fold_into_one_dump_named_after_the_first() {
    let dir = scratch();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "folding::two_panics_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        // Resolving a backtrace in each panic hook would add its own (varying) delay
        // before each dump; the fold does not depend on it, the test's timing would.
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "{out:?}"
    );
    let dumps = dumps_in(dir.path());
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let info = info_json(&dumps[0]);
    let trigger = info["trigger"]["description"].as_str().unwrap();
    assert!(
        trigger.starts_with("thread 'first' [") && trigger.ends_with("the first failure"),
        "{trigger}"
    );
    let folded = info["folded_triggers"].as_array().unwrap();
    assert_eq!(folded.len(), 1, "{info}");
    assert_eq!(folded[0]["reason"], "panic");
    let second_tid = info["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "second")
        .unwrap()["tid"]
        .clone();
    assert_eq!(folded[0]["tid"], second_tid);
    let second = folded[0]["description"].as_str().unwrap();
    assert!(second.ends_with("the second failure"), "{second}");
    // Both panics' own records are in the dump, the first before the second.
    let text = String::from_utf8(flightrec(&["info", dumps[0].to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("also:        thread 'second' ["), "{text}");
    let (mut first_at, mut second_at) = (None, None);
    cat_json_each(&dumps[0], |r| {
        let m = r["fields"]["message"].as_str().unwrap_or("").to_string();
        if m.contains("panicked") && m.contains("the first failure") {
            first_at = r["ts"].as_i64();
        }
        if m.contains("panicked") && m.contains("the second failure") {
            second_at = r["ts"].as_i64();
        }
    });
    assert!(first_at.unwrap() < second_at.unwrap());
}
