//! A full disk and an unwritable directory: a clear error, no crash, the ring intact, and a
//! later try succeeds once there is room again.
//!
//! These need root (to mount a small tmpfs, and to drop to another user so that permission
//! bits apply): CI and the development machines run as root. Elsewhere they say so and
//! pass, unless FLIGHTREC_REQUIRE_ROOT is set (`scripts/test.sh` sets it): then a test that
//! cannot run fails.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use crate::helpers::*;

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Says why a test cannot run here, and fails when FLIGHTREC_REQUIRE_ROOT asks for it to.
pub(crate) fn skip(why: &str) {
    assert!(
        std::env::var_os("FLIGHTREC_REQUIRE_ROOT").is_none(),
        "FLIGHTREC_REQUIRE_ROOT is set, but this test cannot run: {why}"
    );
    not_run(why);
}

/// A small tmpfs, unmounted on drop.
pub(crate) struct SmallFs(tempfile::TempDir);

impl SmallFs {
    pub(crate) fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    pub(crate) fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_gives_a_clear_error_and_leaves_the_ring_intact() {
    if !is_root() {
        skip("needs root to mount a small tmpfs");
        return;
    }
    // Room for the 1 MiB ring and its stack area (about 1.1 MiB), and little more.
    let Some(fs) = SmallFs::mount("2560k") else {
        skip("this environment does not allow mounting a tmpfs");
        return;
    };
    let rec = recorder(fs.0.path(), "full", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        for i in 0..2000u64 {
            tracing::info!(i, "before the disk filled up");
        }
    });
    // Fill the rest of the filesystem.
    let filler = fs.0.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    while f.write_all(&[0xAB; 64 << 10]).is_ok() {}
    drop(f);

    let err = rec.snapshot().expect_err("a dump cannot fit");
    let msg = err.to_string();
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(msg.contains("cannot write the dump"), "{msg}");
    let leftovers: Vec<_> = std::fs::read_dir(fs.0.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.ends_with(".flightrec"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial dumps left behind: {leftovers:?}"
    );

    let ring = flightrec_format::open(rec.ring_path()).unwrap();
    assert!(!ring.damage.is_damaged());
    assert_eq!(
        ring.records.len(),
        2001,
        "the ring is intact, plus the failure"
    );
    let failure = ring.records.last().unwrap();
    let cs = &ring.callsites[&failure.callsite];
    assert_eq!(
        (cs.target.as_str(), cs.name.as_str(), cs.level),
        ("flightrec", "dump failed", flightrec_format::Level::Error)
    );
    assert!(
        matches!(failure.fields.get(1).map(|f| f.value), Some(flightrec_format::Value::Str(e)) if e.contains("No space left"))
    );

    std::fs::remove_file(&filler).unwrap();
    let dump = rec.snapshot().expect("a later try, with room again");
    assert_eq!(flightrec_format::open(&dump).unwrap().records.len(), 2001);
    drop(rec);
}

const CHILD_DIR: &str = "FLIGHTREC_RO_CHILD_DIR";

/// Child: drops to `nobody` (so permission bits apply), records, then snapshots each time a
/// line arrives on stdin.
#[test]
#[ignore = "child process of the read-only directory test"]
fn unprivileged_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    // SAFETY: setgid/setuid with constant ids, before any other thread exists.
    unsafe {
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    let rec = recorder(std::path::Path::new(&dir), "ro", 1 << 20);
    tracing::dispatcher::with_default(&dispatch(&rec), || {
        for i in 0..500u64 {
            tracing::info!(i, "recorded");
        }
    });
    println!("ready");
    let mut line = String::new();
    for attempt in ["first", "second"] {
        line.clear();
        std::io::stdin().read_line(&mut line).unwrap();
        match rec.snapshot() {
            Ok(p) => println!("{attempt}: ok {}", p.display()),
            Err(e) => println!("{attempt}: error {e}"),
        }
    }
    let ring = flightrec_format::open(rec.ring_path()).unwrap();
    println!("ring: {} records", ring.records.len());
}

#[test]
fn an_unwritable_directory_gives_a_clear_error_and_a_later_try_works() {
    if !is_root() {
        skip("needs root to drop to another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "disk::unprivileged_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&mut c, "ready");
    let mut stdin = c.stdin.take().unwrap();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut next = || {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l
    };
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    writeln!(stdin, "go").unwrap();
    let first = next();
    assert!(
        first.starts_with("first: error cannot write the dump"),
        "{first}"
    );
    assert!(first.contains("Permission denied"), "{first}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    writeln!(stdin, "go").unwrap();
    let second = next();
    assert!(second.starts_with("second: ok "), "{second}");
    assert_eq!(
        next().trim(),
        "ring: 501 records",
        "the 500 events and the failure"
    );
    assert!(c.wait().unwrap().success());
}
