//! Damage speaks up: a cut recording is read as far as it goes, with one warning line on
//! stderr from every command that prints or shows it, and a file that is not a recording
//! stops `view` at start with one line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A dump of 20 000 events, and the same dump cut at half its length.
fn whole_and_cut(dir: &Path) -> (PathBuf, PathBuf) {
    let rec = recorder(dir, "cutme", 4 << 20);
    let d = dispatch(&rec);
    let began = std::time::Instant::now();
    tracing::dispatcher::with_default(&d, || {
        for i in 0..20_000u64 {
            tracing::info!(i, word = "some words", "working");
        }
    });
    // The records take at most a fifth of the recording's time, however the scheduler
    // spread them: the cut file's lanes then end early in the view, and what is drawn as
    // missing after them is wide (the browser test counts its pixels).
    let took = began.elapsed();
    while began.elapsed() < took * 5 {
        std::thread::sleep(took / 4 + std::time::Duration::from_micros(100));
    }
    let dump = rec.snapshot().unwrap();
    let bytes = std::fs::read(&dump).unwrap();
    let cut = dir.join("cut.flightrec");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    (dump, cut)
}

fn warnings(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("warning"))
        .map(str::to_string)
        .collect()
}

#[test]
fn cat_and_export_of_a_cut_dump_warn_once_and_still_print_what_survived() {
    let dir = scratch();
    let (whole, cut) = whole_and_cut(dir.path());
    let c = cut.to_str().unwrap();

    let out = flightrec(&["cat", c]);
    assert!(out.status.success(), "{out:?}");
    let w = warnings(&out.stderr);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(&format!(
            "flightrec: warning: {c} is damaged (the file is cut: "
        )),
        "{}",
        w[0]
    );
    assert!(w[0].ends_with("): the output is partial"), "{}", w[0]);
    let printed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(printed > 0);

    // The whole dump: no warning, more lines.
    let out = flightrec(&["cat", whole.to_str().unwrap()]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() > printed);

    // Merged with the whole one: the cut one is named.
    let out = flightrec(&["cat", whole.to_str().unwrap(), c]);
    assert!(out.status.success());
    assert_eq!(warnings(&out.stderr).len(), 1);

    let json = dir.path().join("cut.json");
    let out = flightrec(&[
        "export",
        c,
        "--format",
        "chrome",
        "-o",
        json.to_str().unwrap(),
    ]);
    // Written from what survived, and said by its exit status as well as on stderr.
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(warnings(&out.stderr).len(), 1, "{out:?}");
    assert!(json.exists());
    let out = flightrec(&[
        "export",
        c,
        "--format",
        "parquet",
        "-o",
        dir.path().join("cut.tables").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(warnings(&out.stderr).len(), 1, "{out:?}");
}

#[test]
fn view_of_random_bytes_fails_at_start_with_one_line() {
    let dir = scratch();
    let junk = dir.path().join("random.flightrec");
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&junk, bytes).unwrap();
    // Output goes to files, so a server that starts anyway cannot block the test on a
    // pipe; it is killed after a generous deadline.
    let (stdout, stderr) = (dir.path().join("out"), dir.path().join("err"));
    let mut server = Command::new(flightrec_bin())
        .args(["view", junk.to_str().unwrap()])
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("view of random bytes started a server");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::process::Output {
        status,
        stdout: std::fs::read(&stdout).unwrap(),
        stderr: std::fs::read(&stderr).unwrap(),
    };
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "flightrec: {}: not a flightrec recording",
            junk.display()
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no URL for nothing to show");
}

/// Starts `flightrec view ARGS`, waits for its URL, and returns the server and what it wrote
/// on stderr by then (read on a thread, until the condition holds or 60 s pass).
fn view_until(args: &[&Path], stderr_has: impl Fn(&str) -> bool) -> (std::process::Child, String) {
    let mut server = Command::new(flightrec_bin())
        .arg("view")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    assert!(url.contains("http://127.0.0.1:"), "{url}");
    let (tx, rx) = std::sync::mpsc::channel();
    let err = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stderr_has(&seen) && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push_str(&line);
            seen.push('\n');
        }
    }
    (server, seen)
}

#[test]
fn view_names_what_it_skips_in_a_directory_and_warns_of_a_cut_file() {
    let dir = scratch();
    let (_whole, cut) = whole_and_cut(dir.path());
    std::fs::write(dir.path().join("notes.flightrec"), b"not a recording").unwrap();
    let (mut server, err) = view_until(&[dir.path()], |e| e.contains("skipping"));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        err.trim(),
        format!(
            "flightrec: skipping {}: not a flightrec recording",
            dir.path().join("notes.flightrec").display()
        )
    );

    let (mut server, err) = view_until(&[&cut], |e| e.contains("damaged"));
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        err.contains(&format!("flightrec: warning: {} is damaged", cut.display())),
        "{err}"
    );
}

/// What only a browser shows: a cut recording's lanes are hatched after their last
/// surviving record ("data ends here: the file was cut"); a whole one's are not.
#[test]
fn a_cut_recording_is_drawn_as_missing_after_its_last_record() {
    if !crate::viewer::browser_available() {
        return;
    }
    let dir = scratch();
    let (whole, cut) = whole_and_cut(dir.path());
    let drawn = crate::viewer::drive("cut", &cut, serde_json::json!({}));
    assert!(drawn["cutLanes"].as_u64().unwrap() >= 1, "{drawn}");
    let hatched = drawn["hatchPixels"].as_u64().unwrap();
    let drawn = crate::viewer::drive("cut", &whole, serde_json::json!({}));
    assert_eq!(drawn["cutLanes"], 0, "{drawn}");
    // The whole one has a few pixels of that pale red too (the trigger's line and label,
    // antialiased); the cut one's hatching has thousands (3 105 against 79 when written).
    let pale = drawn["hatchPixels"].as_u64().unwrap();
    assert!(hatched > 10 * pale.max(50), "cut: {hatched}, whole: {pale}");
}

/// A thread whose records end where a cut dump ends is not stuck: the silence rules measure
/// to the end of what survived, not to the trigger. The whole dump, where the silence is
/// real, gives the finding.
#[test]
fn a_cut_dump_makes_no_thread_stuck_that_the_whole_dump_does_not_show() {
    let dir = scratch();
    let rec = recorder(dir.path(), "cutstuck", 4 << 20);
    let d = dispatch(&rec);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let waiter = {
        let d = d.clone();
        std::thread::Builder::new()
            .name("waiter".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let _s = tracing::info_span!("waiting_for_the_writer").entered();
                    tracing::info!("about to wait");
                    entered_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                })
            })
            .unwrap()
    };
    entered_rx.recv().unwrap();
    // Then another thread writes many chunks' worth, after the waiter's last record.
    tracing::dispatcher::with_default(&d, || {
        for i in 0..50_000u64 {
            tracing::info!(i, word = "filler", "writing");
        }
    });
    // The waiter stays silent well past the threshold before the dump is taken.
    let silent_from = Instant::now();
    while silent_from.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let whole = rec.snapshot().unwrap();
    go_tx.send(()).unwrap();
    waiter.join().unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.flightrec");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();

    let check = |path: &Path, partial: bool| {
        let mut args = vec!["check", "--stuck", "200", "--kind", "stuck"];
        if partial {
            args.push("--partial");
        }
        args.push(path.to_str().unwrap());
        let out = flightrec(&args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = check(&whole, false);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("waiter wrote nothing"), "{text}");
    let (code, text) = check(&cut, true);
    assert_eq!(code, Some(0), "the cut dump made a thread stuck:\n{text}");
}
