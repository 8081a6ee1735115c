//! The command line: formats, stdin, and one clear line of error for bad input.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::*;

fn sample_dump() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = scratch();
    let rec = recorder(dir.path(), "cli", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        let span = tracing::info_span!("request", id = 7u64);
        let _g = span.enter();
        tracing::warn!(user = "ada", attempts = 3u64, "login failed");
    });
    let dump = rec.snapshot().unwrap();
    (dir, dump)
}

#[test]
fn dump_names_follow_the_convention() {
    let (_dir, dump) = sample_dump();
    let name = dump.file_name().unwrap().to_str().unwrap();
    let pid = std::process::id().to_string();
    let parts: Vec<&str> = name.trim_end_matches(".flightrec").split('-').collect();
    assert_eq!(parts[0], "cli");
    assert_eq!(parts[1], pid);
    assert!(parts[2].ends_with('Z') && parts[2].contains('T'), "{name}");
    assert_eq!(parts[3], "snapshot");
}

#[test]
fn cat_prints_fmt_like_text_and_complete_json() {
    let (_dir, dump) = sample_dump();
    let out = flightrec(&["cat", dump.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.contains("login failed")).unwrap();
    assert!(line.contains(" WARN "), "{line}");
    assert!(
        line.contains("request{id=7}: "),
        "span context with its fields missing: {line}"
    );
    // Lifecycle records are left out of the text unless asked for; the trigger has a line.
    assert_eq!(text.lines().count(), 2, "{text}");
    let with_spans = flightrec(&["cat", "--spans", dump.to_str().unwrap()]);
    let with_spans = String::from_utf8(with_spans.stdout).unwrap();
    assert_eq!(with_spans.lines().count(), 6, "{with_spans}");
    assert!(with_spans.contains("span_new request#"), "{with_spans}");
    // The snapshot's trigger is a line of its own, at its time (after the records).
    let snap = flightrec(&["cat", dump.to_str().unwrap()]);
    assert!(
        line.contains("user=\"ada\"") && line.contains("attempts=3"),
        "{line}"
    );

    let snap = String::from_utf8(snap.stdout).unwrap();
    assert!(
        snap.lines()
            .last()
            .unwrap()
            .contains(" TRIGGER snapshot requested by the application"),
        "{snap}"
    );
    let records = cat_json(&dump);
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["span_new", "enter", "event", "exit", "close"]);
    let ev = &records[2];
    for key in [
        "ts", "tid", "thread", "kind", "level", "target", "name", "file", "line", "span", "parent",
        "fields", "spans",
    ] {
        assert!(ev.get(key).is_some(), "missing key {key} in {ev}");
    }
    let span = records[0]["span"].as_u64().unwrap();
    assert_eq!(ev["parent"], span);
    assert_eq!(ev["spans"], serde_json::json!([span]));
    assert_eq!(ev["fields"]["message"], "login failed");
    assert_eq!(ev["fields"]["attempts"], 3);
    assert_eq!(ev["level"], "WARN");
    assert_eq!(records[0]["fields"]["id"], 7);
    assert!(
        ev["ts"].as_i64().unwrap() > 1_700_000_000_000_000_000,
        "ts is not Unix ns"
    );
}

#[test]
fn cat_and_info_read_standard_input() {
    let (_dir, dump) = sample_dump();
    let bytes = std::fs::read(&dump).unwrap();
    let mut child = Command::new(flightrec_bin())
        .args(["info", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("service:     cli"), "{text}");
    let present = cat_json(&dump).len();
    assert!(present > 0);
    assert!(
        text.contains(&format!("records:     {present} present, 0 overwritten")),
        "{text}"
    );
    assert!(
        text.contains("snapshot requested by the application"),
        "{text}"
    );
}

fn assert_clear_failure(args: &[&str], needle: &str) {
    let out = flightrec(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
}

#[test]
fn bad_files_and_flags_get_one_clear_error() {
    let dir = scratch();
    let random = dir.path().join("random.bin");
    std::fs::write(&random, b"this is not a ring file at all, just some bytes").unwrap();
    let short = dir.path().join("short.flightrec");
    std::fs::write(&short, flightrec_format::layout::MAGIC).unwrap();
    let bad_zstd = dir.path().join("bad.flightrec");
    std::fs::write(&bad_zstd, [0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3, 4, 5]).unwrap();
    let missing = dir.path().join("missing.flightrec");

    assert_clear_failure(&["cat", missing.to_str().unwrap()], "No such file");
    assert_clear_failure(&["cat", random.to_str().unwrap()], "not a flightrec ring");
    assert_clear_failure(&["info", short.to_str().unwrap()], "truncated");
    assert_clear_failure(
        &["cat", "--json", bad_zstd.to_str().unwrap()],
        "corrupt dump",
    );
    assert_clear_failure(&["cat", "--no-such-flag", "x"], "unexpected argument");
    let out = flightrec(&["cat", random.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().count(),
        1,
        "one line of error"
    );
}

#[test]
fn info_reports_process_and_threads() {
    let (_dir, dump) = sample_dump();
    let info = info_json(&dump);
    assert_eq!(info["service"], "cli");
    assert_eq!(info["pid"], std::process::id());
    assert_eq!(info["kind"], "dump");
    assert_eq!(info["trigger"]["reason"], "snapshot");
    assert_eq!(info["records"], 5);
    assert!(!info["host"].as_str().unwrap().is_empty());
    assert!(info["exe"].as_str().unwrap().contains("e2e"));
    assert_eq!(info["threads"].as_array().unwrap().len(), 1);
}

#[test]
fn the_demo_runs_its_race_until_it_bites_and_shows_the_interleaving() {
    let dir = scratch();
    let out = flightrec(&["demo", "--no-view", "--dir", dir.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("The race bit."), "{text}");
    let guilty = &text[text
        .find("The guilty interleaving")
        .expect("an interleaving")..];
    let lines: Vec<&str> = guilty
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(lines.first().unwrap().contains("cache hit"), "{guilty}");
    assert!(lines.last().unwrap().contains("price vanished"), "{guilty}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("refresher") && l.contains("cleared")),
        "the refresher's clear sits between the hit and the read: {guilty}"
    );
    let dumps: Vec<_> = dumps_in(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-panic.flightrec"))
        .collect();
    assert!(!dumps.is_empty());
    let info = info_json(&dumps[0]);
    assert_eq!(info["trigger"]["reason"], "panic");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked at"),
        "no raw panic message"
    );
}

#[test]
fn view_refuses_missing_files_non_dumps_and_taken_ports_with_one_line() {
    let dir = scratch();
    let not_a_dump = dir.path().join("notes.txt");
    std::fs::write(&not_a_dump, "just text").unwrap();
    let missing = dir.path().join("missing.flightrec");
    assert_clear_failure(&["view", missing.to_str().unwrap()], "No such file");
    assert_clear_failure(
        &["view", not_a_dump.to_str().unwrap()],
        "not a flightrec recording",
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    assert_clear_failure(
        &["view", dir.path().to_str().unwrap(), "--port", &port],
        "cannot listen",
    );
    for args in [
        vec!["view", missing.to_str().unwrap()],
        vec!["view", dir.path().to_str().unwrap(), "--port", &port],
    ] {
        let err = String::from_utf8(flightrec(&args).stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The async demo's dump read as text: requests' spans with their fields, no lifecycle
/// lines, the three `tokio-worker`s told apart by tid, and the panic a line of its own.
/// Both demos with their race fixed are correct programs: their recordings give no
/// finding about their code.
#[test]
fn the_demos_with_their_race_fixed_give_no_finding() {
    for scenario in [&["demo"][..], &["demo", "--async"][..]] {
        let dir = scratch();
        let mut args = scenario.to_vec();
        args.extend([
            "--fixed",
            "--no-view",
            "--dir",
            dir.path().to_str().unwrap(),
        ]);
        let out = flightrec(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{scenario:?}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("No race with the fix in"),
            "{scenario:?}: {text}"
        );
        assert!(
            !text.contains("The guilty interleaving"),
            "{scenario:?}: {text}"
        );
        let dumps = dumps_in(dir.path());
        assert_eq!(dumps.len(), 1, "{dumps:?}");
        // None of the kinds about structure. The kinds about time are left out: on a
        // loaded machine a poll of the async shop can be preempted past 10 ms, a real
        // blocked worker that says nothing of the code.
        let checked = flightrec(&[
            "check",
            "--ignore",
            "blocking_poll",
            "--ignore",
            "lock_wait",
            "--ignore",
            "stuck",
            dumps[0].to_str().unwrap(),
        ]);
        assert_eq!(
            checked.status.code(),
            Some(0),
            "{scenario:?}: {}",
            String::from_utf8_lossy(&checked.stdout)
        );
    }
}

#[test]
fn cat_of_the_async_demo_reads_like_fmt_with_workers_told_apart() {
    let dir = scratch();
    let out = flightrec(&[
        "demo",
        "--async",
        "--no-view",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let demo_text = String::from_utf8_lossy(&out.stdout);
    let dump = dumps_in(dir.path()).pop().expect("the demo's dump");
    let out = flightrec(&["cat", dump.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(" request{") && l.contains("id=") && l.contains("event=")),
        "no request span with its fields"
    );
    for word in [" span_new ", " enter ", " exit ", " close "] {
        assert!(
            !text.contains(word),
            "a lifecycle line ({word}) in the text"
        );
    }
    let workers: std::collections::HashSet<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with("tokio-worker["))
        .collect();
    assert!(workers.len() >= 2, "{workers:?}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" TRIGGER ")).count(),
        1,
        "one trigger line"
    );
    let trigger = text.lines().find(|l| l.contains(" TRIGGER ")).unwrap();
    assert_eq!(trigger.matches("thread").count(), 1, "{trigger}");
    // The demo's own text tells the workers apart too.
    let guilty = &demo_text[demo_text.find("The guilty interleaving").unwrap()..];
    assert!(guilty.contains("on tokio-worker["), "{guilty}");
}

/// `demo --fixed` serving its recording says what the page opens on: the whole recording,
/// not a selection it does not make (there is no interleaving to select).
#[test]
fn the_fixed_demo_says_it_opens_the_whole_recording() {
    use std::io::BufRead;
    for scenario in [&["demo"][..], &["demo", "--async"][..]] {
        let dir = scratch();
        let mut child = Command::new(flightrec_bin())
            .args(scenario)
            .args(["--fixed", "--port", "0", "--dir"])
            .arg(dir.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.starts_with("Opening") {
                    let _ = tx.send(line);
                    return;
                }
            }
        });
        // The fixed service runs two seconds first; a loaded machine gets a generous wait.
        let line = rx.recv_timeout(std::time::Duration::from_secs(120));
        let _ = child.kill();
        let _ = child.wait();
        let line = line.unwrap_or_else(|_| panic!("{scenario:?}: no line saying what opens"));
        assert!(!line.contains("selected"), "{scenario:?}: {line}");
        assert!(line.contains("whole recording"), "{scenario:?}: {line}");
    }
}
