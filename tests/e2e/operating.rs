//! Smaller edges of operating flightrec: `info` of several files, `export` without `-o`,
//! demo runs that reuse one directory, and default directories without `$USER`.

use std::process::Command;

use crate::helpers::*;

fn two_dumps(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let rec = recorder(dir, "ops", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        tracing::info!(n = 1u64, "one");
        tracing::info!(n = 2u64, "two");
    });
    let a = rec.snapshot().unwrap();
    let b = rec.snapshot().unwrap();
    (a, b)
}

#[test]
fn info_takes_several_files_and_says_what_each_thread_covers() {
    let dir = scratch();
    let (a, b) = two_dumps(dir.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = flightrec(&["info", a, b]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("file:        ").count(), 2, "{text}");
    assert!(text.contains("covers"), "{text}");
    let out = flightrec(&["info", "--json", a, b]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = v.as_array().expect("an array for several files");
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["file"], b);
    let t = &all[0]["threads"][0];
    assert_eq!(
        t["covers_ns"].as_i64().unwrap(),
        t["last_ts"].as_i64().unwrap() - t["first_ts"].as_i64().unwrap()
    );
}

/// Without `-o`, an export goes to the current directory (not beside its input, whose
/// directory may be read-only or another user's), named after the first input, and the
/// command prints where.
#[test]
fn export_without_o_writes_to_the_current_directory_and_prints_where() {
    let dir = scratch();
    let (a, b) = two_dumps(dir.path());
    let here = scratch();
    let export = |args: &[&str]| {
        Command::new(flightrec_bin())
            .args(args)
            .current_dir(here.path())
            .output()
            .unwrap()
    };
    let out = export(&["export", a.to_str().unwrap(), "--format", "perfetto"]);
    assert!(out.status.success(), "{out:?}");
    let stem = a.file_stem().unwrap().to_str().unwrap();
    let written = here.path().join(format!("{stem}.pftrace"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        written.to_str().unwrap()
    );
    assert!(std::fs::metadata(&written).unwrap().len() > 0);
    assert!(!a.with_extension("pftrace").exists());
    let out = export(&[
        "export",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "chrome",
    ]);
    assert!(out.status.success(), "{out:?}");
    let merged = here.path().join(format!("{stem}-merged.json"));
    assert!(merged.exists(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = export(&["export", "-", "--format", "chrome"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("-o"), "{err}");
}

#[test]
fn demo_runs_reuse_one_directory_under_the_state_dir() {
    let state = scratch();
    for _ in 0..2 {
        let out = Command::new(flightrec_bin())
            .args(["demo", "--async", "--no-view"])
            .env("XDG_STATE_HOME", state.path())
            .env_remove("FLIGHTREC_DIR")
            .env_remove("FLIGHTREC_DUMP_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let demo = state.path().join("flightrec").join("demo-async");
    assert_eq!(dumps_in(&demo).len(), 1, "{:?}", dumps_in(&demo));
    assert_eq!(std::fs::read_dir(&demo).unwrap().count(), 1);
}

/// Child: a recorder with the default directories; prints where its ring and dumps go.
#[test]
#[ignore = "child process of the operating tests"]
fn default_dirs_child() {
    if std::env::var_os("FLIGHTREC_OPS_CHILD").is_none() {
        return;
    }
    let rec = tracing_flightrec::Recorder::builder()
        .service("nouser")
        .capacity(256 << 10)
        .snapshot_signal(None)
        .stall_threshold(None)
        .build()
        .unwrap();
    println!("ring {}", rec.ring_path().display());
    println!("dumps {}", rec.dir().display());
}

#[test]
fn without_user_the_default_directories_are_named_after_the_uid() {
    use std::os::unix::fs::MetadataExt;
    let state = scratch();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "operating::default_dirs_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FLIGHTREC_OPS_CHILD", "1")
        .env_remove("USER")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("FLIGHTREC_DIR")
        .env_remove("FLIGHTREC_DUMP_DIR")
        .env("XDG_STATE_HOME", state.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let ring = text
        .lines()
        .find_map(|l| l.split("ring ").nth(1))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        ring.contains(&format!("flightrec-uid-{uid}/nouser-")),
        "{ring}"
    );
    // A clean exit removed the ring itself.
    assert!(!std::path::Path::new(ring).exists());
}

#[test]
fn the_index_dates_a_dump_by_when_its_data_ends() {
    let dir = scratch();
    let rec = recorder(dir.path(), "late", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || tracing::info!("early"));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let dump = rec.snapshot().unwrap();
    drop(rec);
    let head = flightrec_format::read_head(&dump).unwrap();
    let taken =
        flightrec_format::layout::get_u64(&head, flightrec_format::layout::header::DUMP_WALL_NS)
            .unwrap();
    let server = start_viewer(&[dir.path()], &[]);
    let (status, body) = http_get(&server.host, "/api/dumps");
    drop(server);
    assert!(status.contains(" 200"), "{status}");
    let index: serde_json::Value = serde_json::from_str(&body).unwrap();
    let row = &index["dumps"][0];
    assert_eq!(row["time"], taken.to_string(), "{index}");
    let start = flightrec_format::open(&dump).unwrap().start_wall_ns;
    assert!(taken as i64 > start + 50_000_000);
}
