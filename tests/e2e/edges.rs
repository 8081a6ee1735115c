//! The edges a new user runs into: clean exits that must raise no alarm, a snapshot signal
//! the recorder does not listen for, where dumps go, and the exact messages of the
//! command line for missing files, unwritable outputs, cut dumps and closed pipes.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_EDGES_CHILD_DIR";

/// A recorder kept for the life of the process (as `init()` keeps it), with everything on.
fn leaked_recorder() -> Option<&'static tracing_flightrec::Recorder> {
    let dir = std::env::var(CHILD_DIR).ok()?;
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir)
        .service("edge")
        .capacity(1 << 20)
        .stall_threshold(None)
        .build()
        .unwrap();
    let rec: &'static tracing_flightrec::Recorder = Box::leak(Box::new(rec));
    let d = dispatch(rec);
    tracing::dispatcher::with_default(&d, || tracing::info!(step = 1u64, "working"));
    Some(rec)
}

/// Child: records, then returns (the test harness returns from `main`).
#[test]
#[ignore = "child process of the edge tests"]
fn returning_child() {
    if leaked_recorder().is_some() {
        println!("ready");
    }
}

/// Child: records, then calls `std::process::exit`.
#[test]
#[ignore = "child process of the edge tests"]
fn exiting_child() {
    if leaked_recorder().is_some() {
        println!("ready");
        std::process::exit(0);
    }
}

/// Child: records, then waits to be killed or signalled.
#[test]
#[ignore = "child process of the edge tests"]
fn waiting_child() {
    if leaked_recorder().is_some() {
        println!("ready");
        std::thread::sleep(Duration::from_secs(120));
    }
}

#[test]
fn a_clean_exit_leaves_no_alarm_but_a_kill_still_gives_its_dump() {
    for (name, clean) in [
        ("edges::returning_child", true),
        ("edges::exiting_child", true),
        ("edges::waiting_child", false),
    ] {
        let dir = scratch();
        let mut c = child(name, &[(CHILD_DIR, dir.path())]);
        wait_for(&mut c, "ready");
        if !clean {
            c.kill().unwrap();
        }
        let status = c.wait().unwrap();
        assert_eq!(status.success(), clean, "{name}: {status:?}");
        // A clean exit removes its ring at once; a killed process's stays as evidence.
        assert_eq!(
            rings_in(dir.path()).len(),
            usize::from(!clean),
            "{name}: the ring stays only after a kill"
        );
        let next = recorder(dir.path(), "next", 1 << 20);
        if clean {
            assert!(
                next.collected().is_empty(),
                "{name}: {:?}",
                next.collected()
            );
            assert!(dumps_in(dir.path()).is_empty(), "{name}");
        } else {
            assert_eq!(next.collected().len(), 1, "{name}");
            let rec = flightrec_format::open(&next.collected()[0]).unwrap();
            assert!(rec.records.iter().any(|r| r
                .fields
                .iter()
                .any(|f| f.value == flightrec_format::Value::U64(1))));
        }
        // Only the new recorder's ring is left: the closed one went quietly.
        assert_eq!(
            rings_in(dir.path()),
            [next.ring_path().to_path_buf()],
            "{name}"
        );
    }
}

#[test]
fn snapshot_refuses_a_signal_the_recorder_does_not_listen_for_and_the_process_lives() {
    let dir = scratch();
    let mut c = child("edges::waiting_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    let pid = c.id().to_string();
    let out = flightrec(&["snapshot", "--signal", "USR2", &pid]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "flightrec: process {pid}'s recorder takes snapshots on SIGUSR1, not SIGUSR2; \
             refusing to send SIGUSR2, which could kill it (leave out --signal)\n"
        )
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(c.try_wait().unwrap().is_none(), "the process died");
    // The signal it does listen for works, with or without --signal.
    for args in [
        vec!["snapshot", &pid],
        vec!["snapshot", "--signal", "usr1", &pid],
    ] {
        let out = flightrec(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(dumps_in(dir.path()).len(), 2);
    let _ = c.kill();
    let _ = c.wait();
}

/// Child: a recorder configured from the environment only.
#[test]
#[ignore = "child process of the edge tests"]
fn env_child() {
    if std::env::var_os(CHILD_DIR).is_none() {
        return;
    }
    let rec = tracing_flightrec::Recorder::builder()
        .service("envy")
        .capacity(1 << 20)
        .stall_threshold(None)
        .build()
        .unwrap();
    let rec = Box::leak(Box::new(rec));
    println!("ring {}", rec.ring_path().display());
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
}

/// Runs `env_child` with `env`, takes a snapshot with the tool, and returns the ring's and
/// the dump's paths.
fn ring_and_dump(env: &[(&str, &Path)]) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "edges::env_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env_remove("FLIGHTREC_DIR")
    .env_remove("FLIGHTREC_DUMP_DIR")
    .env_remove("XDG_STATE_HOME")
    .env_remove("XDG_RUNTIME_DIR")
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut c = c.spawn().unwrap();
    let mut lines = std::io::BufReader::new(c.stdout.take().unwrap()).lines();
    let ring = loop {
        let l = lines.next().expect("child output").unwrap();
        if let Some(p) = l.split("ring ").nth(1) {
            break std::path::PathBuf::from(p.trim());
        }
    };
    while !lines
        .next()
        .expect("child output")
        .unwrap()
        .ends_with("ready")
    {}
    let out = flightrec(&["snapshot", &c.id().to_string()]);
    let _ = c.kill();
    let _ = c.wait();
    let _ = std::fs::remove_file(&ring);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    (ring, dump)
}

#[test]
fn dumps_default_to_a_persistent_directory_apart_from_the_ring_and_can_be_sent_elsewhere() {
    let (runtime, state, dumps) = (scratch(), scratch(), scratch());
    let ring_dir = runtime.path().join("flightrec");
    // Default: the ring on the runtime directory (tmpfs), dumps under XDG_STATE_HOME.
    let (ring, dump) = ring_and_dump(&[
        (CHILD_DIR, runtime.path()),
        ("XDG_RUNTIME_DIR", runtime.path()),
        ("XDG_STATE_HOME", state.path()),
    ]);
    assert_eq!(ring.parent().unwrap(), ring_dir);
    assert_eq!(dump.parent().unwrap(), state.path().join("flightrec"));
    // FLIGHTREC_DUMP_DIR wins; `flightrec snapshot` finds the dump there.
    let (ring, dump) = ring_and_dump(&[
        (CHILD_DIR, runtime.path()),
        ("XDG_RUNTIME_DIR", runtime.path()),
        ("XDG_STATE_HOME", state.path()),
        ("FLIGHTREC_DUMP_DIR", dumps.path()),
    ]);
    assert_eq!(ring.parent().unwrap(), ring_dir);
    assert_eq!(dump.parent().unwrap(), dumps.path());
    // FLIGHTREC_DIR (like `.dir()`) names both, unless FLIGHTREC_DUMP_DIR is set.
    let both = scratch();
    let (ring, dump) = ring_and_dump(&[
        (CHILD_DIR, runtime.path()),
        ("XDG_STATE_HOME", state.path()),
        ("FLIGHTREC_DIR", both.path()),
    ]);
    assert_eq!(ring.parent().unwrap(), both.path());
    assert_eq!(dump.parent().unwrap(), both.path());
}

fn stderr_of(args: &[&str]) -> (bool, String) {
    let out = flightrec(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A small dump to poke at.
fn a_dump(dir: &Path) -> std::path::PathBuf {
    let rec = recorder(dir, "poke", 1 << 20);
    let d = dispatch(&rec);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..5000u64 {
            tracing::info!(
                i,
                text = "some words to make the dump a little longer",
                "event"
            );
        }
    });
    rec.snapshot().unwrap()
}

#[test]
fn missing_files_and_directories_say_so_once() {
    let dir = scratch();
    let d = dir.path().display().to_string();
    assert_eq!(
        stderr_of(&["cat", "/nonexistent/file.flightrec"]),
        (
            false,
            "flightrec: cannot read /nonexistent/file.flightrec: No such file or directory (os error 2)\n"
                .to_string()
        )
    );
    assert_eq!(
        stderr_of(&["info", &d]),
        (
            false,
            format!("flightrec: cannot read {d}: Is a directory (os error 21)\n")
        )
    );
}

#[test]
fn export_names_the_users_path_and_what_is_wrong_with_it() {
    let dir = scratch();
    let dump = a_dump(dir.path());
    let dump = dump.to_str().unwrap();
    let d = dir.path().display().to_string();
    assert_eq!(
        stderr_of(&["export", dump, "--format", "perfetto", "-o", "/nonexistent/dir/out.pf"]),
        (
            false,
            "flightrec: cannot write /nonexistent/dir/out.pf: there is no directory /nonexistent/dir\n"
                .to_string()
        )
    );
    assert_eq!(
        stderr_of(&["export", dump, "--format", "chrome", "-o", &d]),
        (
            false,
            format!("flightrec: cannot write {d}: it is a directory (give a file name)\n")
        )
    );
}

#[test]
fn collect_writes_the_file_it_is_told_and_refuses_a_dump() {
    let dir = scratch();
    let mut c = child("edges::waiting_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    c.kill().unwrap();
    c.wait().unwrap();
    let ring = rings_in(dir.path()).pop().unwrap();
    let target = dir.path().join("mine.flightrec");
    let out = flightrec(&[
        "collect",
        ring.to_str().unwrap(),
        "--keep-ring",
        "-o",
        target.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        target.to_str().unwrap()
    );
    assert_eq!(
        dumps_in(dir.path()),
        std::slice::from_ref(&target),
        "exactly the file asked for"
    );
    flightrec_format::open(&target).unwrap();
    // Again: the file exists now, and collect never replaces one.
    assert_eq!(
        stderr_of(&[
            "collect",
            ring.to_str().unwrap(),
            "-o",
            target.to_str().unwrap()
        ]),
        (
            false,
            format!(
                "flightrec: {} already exists; collect never replaces a file\n",
                target.display()
            )
        )
    );
    assert_eq!(
        stderr_of(&["collect", target.to_str().unwrap()]),
        (
            false,
            format!(
                "flightrec: {} is already a dump: read it with cat, info, export or view \
                 (collect turns a dead process's .flightrec-ring into one)\n",
                target.display()
            )
        )
    );
}

/// A cut dump of a big ring that held little counts as missing only what had been written:
/// the 64 MiB of ring space that never held a record are not "missing".
#[test]
fn a_cut_dump_counts_missing_written_bytes_not_the_rings_empty_space() {
    let dir = scratch();
    let rec = recorder(dir.path(), "roomy", 64 << 20);
    let d = dispatch(&rec);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..20_000u64 {
            tracing::info!(
                i,
                text = "words that do not compress away entirely",
                "event"
            );
        }
    });
    let dump = rec.snapshot().unwrap();
    drop(rec);
    let bytes = std::fs::read(&dump).unwrap();
    let cut = dir.path().join("cut.flightrec");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let whole = info_json(&dump);
    let written: u64 = whole["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["records"].as_u64().unwrap())
        .sum();
    let info = info_json(&cut);
    let missing = info["damage"]["missing_bytes"].as_u64().unwrap();
    // 20 000 records of under 100 bytes each, in whole chunks: at most a few MiB written.
    assert!(written == 20_000 && missing > 0, "{info}");
    assert!(missing < 4 << 20, "{missing} bytes counted missing: {info}");
    let out = flightrec(&["cat", cut.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("of written data missing"), "{err}");
    assert!(!err.contains(" MiB missing") || missing >= 1 << 20, "{err}");
}

#[test]
fn a_dump_cut_short_decodes_what_it_holds_and_counts_the_rest_as_damage() {
    let dir = scratch();
    let dump = a_dump(dir.path());
    let bytes = std::fs::read(&dump).unwrap();
    let cut = dir.path().join("cut.flightrec");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let rec = flightrec_format::open(&cut).unwrap();
    let full = flightrec_format::open(&dump).unwrap();
    assert!(!rec.records.is_empty() && rec.records.len() < full.records.len());
    assert!(rec.damage.missing_bytes > 0, "{:?}", rec.damage);
    let info = info_json(&cut);
    assert!(
        info["damage"]["missing_bytes"].as_u64().unwrap() > 0,
        "{info}"
    );
    let out = flightrec(&["cat", cut.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("some words"));
}

#[test]
fn random_bytes_in_a_ring_count_as_damage_never_as_overwritten() {
    let dir = scratch();
    let rec = quiet_builder(dir.path(), "noisy", 1 << 20)
        .keep_ring(true)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    on_threads(&d, 3, "t", |t| {
        for i in 0..20u64 {
            tracing::info!(t, i, "few");
        }
    });
    let ring = rec.ring_path().to_path_buf();
    drop(d);
    drop(rec);
    let mut bytes = std::fs::read(&ring).unwrap();
    let g = flightrec_format::layout::Geometry::for_capacity(1 << 20, None).unwrap();
    // Noise over every chunk that holds data (the threads' chunks are among the first).
    let start = g.chunks_offset as usize;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in &mut bytes[start..start + 16 * g.chunk_size as usize] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let noisy = dir.path().join("noisy.flightrec-ring");
    std::fs::write(&noisy, &bytes).unwrap();
    let info = info_json(&noisy);
    let threads = info["threads"].as_array().unwrap();
    assert!(!threads.is_empty());
    for t in threads {
        assert_eq!(t["fully_overwritten"], false, "{t}");
        if t["records"] == 0 {
            assert_eq!(t["lost_to_damage"], true, "{t}");
        }
    }
    let text = flightrec(&["info", noisy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("? (damaged)"), "{text}");
    assert!(!text.contains(" all "), "{text}");
}

/// Reads one line of `flightrec ARGS`, closes the pipe, and returns its status and stderr.
fn read_one_line_then_close(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut c = Command::new(flightrec_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (c.wait().unwrap(), err)
}

#[test]
fn a_closed_pipe_ends_every_command_quietly_with_status_0() {
    let dir = scratch();
    // Enough output to fill the pipe many times over.
    let rec = recorder(dir.path(), "pipe", 4 << 20);
    let d = dispatch(&rec);
    tracing::dispatcher::with_default(&d, || {
        for i in 0..60_000u64 {
            tracing::info!(i, "line");
        }
    });
    let dump = rec.snapshot().unwrap();
    let dump = dump.to_str().unwrap();
    for args in [
        vec!["cat", dump],
        vec!["cat", "--json", dump],
        vec!["export", dump, "--format", "chrome", "-o", "-"],
    ] {
        let (status, err) = read_one_line_then_close(&args);
        assert!(status.success(), "{args:?}: {status:?} {err}");
        assert_eq!(err, "", "{args:?}");
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn every_command_and_argument_has_a_description() {
    let help = |args: &[&str]| String::from_utf8(flightrec(args).stdout).unwrap();
    assert!(help(&["snapshot", "--help"]).contains("<PID>  The process to dump"));
    assert!(help(&["watch", "--help"]).contains("<DIR>  The directory of ring files to watch"));
    let view = help(&["view", "--help"]);
    assert!(
        view.contains("The port to listen on; 0 takes a free one [default: 0]"),
        "{view}"
    );
    assert!(!view.contains("(default: a free one)"), "{view}");
}

#[test]
fn the_demo_keeps_only_its_dump_and_says_where() {
    let dir = scratch();
    let out = Command::new(flightrec_bin())
        .args(["demo", "--no-view", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        stdout.contains(&format!("The dump is kept at {}", left[0].display())),
        "{stdout}"
    );
}

/// A process's peak resident memory since its exec, in bytes (`VmHWM`). Read while it
/// lives: `wait4`'s `ru_maxrss` would also count the test process's memory, which the child
/// shared until its exec.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// Peak memory of `flightrec ARGS` once its output has begun (the recording is read by
/// then); it then runs to the end.
fn peak_once_output_starts(args: &[&std::ffi::OsStr]) -> u64 {
    let mut child = Command::new(flightrec_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    if out.read_exact(&mut first).is_err() {
        let status = child.wait().unwrap();
        panic!("flightrec {args:?} wrote nothing: {status}");
    }
    // Blocked on the full pipe or still writing: either way it has read the recording.
    let peak = vm_hwm(child.id());
    std::io::copy(&mut out, &mut std::io::sink()).unwrap();
    assert!(child.wait().unwrap().success());
    peak
}

/// Peak memory of `flightrec view FILE` once it has answered for the recording.
fn viewer_peak(file: &Path) -> u64 {
    let mut child = Command::new(flightrec_bin())
        .arg("view")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line[line.find("http://").unwrap()..].trim().to_string();
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    write!(
        conn,
        "GET /api/dumps/0/meta HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let peak = vm_hwm(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    peak
}

/// Reading a big ring that holds little costs memory in proportion to what it holds, not
/// to its capacity: the readers keep only the chunks in use.
#[test]
fn reading_a_big_ring_that_holds_little_costs_little_memory() {
    let dir = scratch();
    const CAPACITY: u64 = 256 << 20;
    let rec = recorder(dir.path(), "roomy", CAPACITY);
    on_threads(&dispatch(&rec), 2, "w", |t| {
        for i in 0..20_000u64 {
            tracing::info!(i, t, "small");
        }
    });
    let ring = rec.ring_path().to_path_buf();
    // The ring compressed as it streams by: a dump's body, without holding the image here.
    let dump = dir.path().join("roomy.flightrec");
    zstd::stream::copy_encode(
        std::fs::File::open(&ring).unwrap(),
        std::fs::File::create(&dump).unwrap(),
        1,
    )
    .unwrap();
    let limit = 48 << 20;
    for args in [
        vec!["cat".as_ref(), "--json".as_ref(), dump.as_os_str()],
        vec!["cat".as_ref(), ring.as_os_str()],
        vec![
            "export".as_ref(),
            dump.as_os_str(),
            "--format".as_ref(),
            "perfetto".as_ref(),
            "-o".as_ref(),
            "-".as_ref(),
        ],
    ] {
        let peak = peak_once_output_starts(&args);
        assert!(
            peak < limit,
            "{args:?} peaked at {} MiB reading a {} MiB ring",
            peak >> 20,
            CAPACITY >> 20
        );
    }
    let peak = viewer_peak(&dump);
    assert!(peak < limit, "the viewer peaked at {} MiB", peak >> 20);
}
