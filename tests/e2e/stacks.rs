//! Native stacks on request: `flightrec snapshot --stacks` captures every thread, a thread
//! blocked in a syscall and one spinning without records alike, and names a thread that
//! blocks the capture signal as not answering, without holding the dump up.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_STACKS_CHILD_DIR";

#[inline(never)]
fn block_in_read(mut r: std::io::PipeReader) {
    let mut b = [0u8; 1];
    let _ = r.read(&mut b); // blocks: nobody writes
}

#[inline(never)]
fn spin_forever() {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

#[inline(never)]
fn park_deaf() {
    loop {
        std::thread::park();
    }
}

#[test]
#[ignore = "child process of the stacks test"]
fn stacks_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir)
        .service("stacks")
        .capacity(1 << 20)
        .stall_threshold(None)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    let (reader, writer) = std::io::pipe().unwrap();
    let started = std::sync::Arc::new(std::sync::Barrier::new(4));
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        let (d, started) = (d.clone(), started.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || tracing::info!("started"));
                started.wait();
                f()
            })
            .unwrap()
    };
    spawn("reader", Box::new(move || block_in_read(reader)));
    spawn("spinner", Box::new(spin_forever));
    spawn(
        "deaf",
        Box::new(|| {
            // SAFETY: a zeroed sigset made empty, then the capture signal added and blocked
            // for this thread only.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, tracing_flightrec::capture_signal());
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            park_deaf()
        }),
    );
    started.wait();
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
    drop(writer);
}

/// Whether process `pid`'s thread named `name` is in a state `ok` accepts (its state letter
/// from `/proc/…/stat`, and its `wchan`: where in the kernel it sleeps).
fn thread_is(pid: u32, name: &str, ok: impl Fn(char, &str) -> bool) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
        if read("comm").trim() != name {
            return false;
        }
        let stat = read("stat");
        // The state follows the command name's closing parenthesis.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .unwrap_or('?');
        ok(state, &read("wchan"))
    })
}

#[test]
fn snapshot_with_stacks_covers_blocked_and_spinning_threads_and_names_a_deaf_one() {
    let dir = scratch();
    let mut c = child("stacks::stacks_child", &[(CHILD_DIR, dir.path())]);
    wait_for(&mut c, "ready");
    let pid = c.id().to_string();
    // "ready" comes after the threads start, not once they are where the test looks for
    // them: wait until the reader sleeps in the pipe's read and the spinner runs.
    let settled = Instant::now() + Duration::from_secs(60);
    while !(thread_is(c.id(), "reader", |stat, wchan| {
        stat == 'S' && wchan.contains("pipe_read")
    }) && thread_is(c.id(), "spinner", |stat, _| stat == 'R'))
    {
        assert!(
            Instant::now() < settled,
            "the child's threads never settled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let asked = Instant::now();
    let out = flightrec(&["snapshot", &pid, "--stacks"]);
    let took = asked.elapsed();
    // The request is consumed: the next plain snapshot has no stacks.
    let plain = flightrec(&["snapshot", &pid]);
    let _ = c.kill();
    let _ = c.wait();
    assert!(plain.status.success());
    let plain = String::from_utf8(plain.stdout).unwrap();
    let j: serde_json::Value =
        serde_json::from_slice(&flightrec(&["info", "--json", plain.trim()]).stdout).unwrap();
    assert_eq!(
        j["stacks"].as_array().map(Vec::len),
        Some(0),
        "{}",
        j["stacks"]
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The deaf thread costs the dump its 1 s answer bound, no more (slack for a busy machine).
    assert!(took < Duration::from_secs(8), "{took:?}");
    let dump = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let info = flightrec(&["info", "--json", &dump]);
    let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let stacks = j["stacks"].as_array().unwrap();
    let of = |thread: &str| {
        stacks
            .iter()
            .find(|s| s["thread"] == thread)
            .unwrap_or_else(|| panic!("no stack for {thread}: {stacks:?}"))
    };
    let through = |thread: &str, function: &str| {
        let s = of(thread);
        assert_eq!(s["reason"], "snapshot", "{s}");
        assert_eq!(s["outcome"], "captured", "{s}");
        let frames = s["frames"].as_array().unwrap();
        assert!(
            frames.iter().any(|f| f["function"]
                .as_str()
                .is_some_and(|f| f.ends_with(function))),
            "{thread} should be in {function}: {:?}",
            frames.iter().map(|f| &f["text"]).collect::<Vec<_>>()
        );
    };
    through("reader", "stacks::block_in_read");
    through("spinner", "stacks::spin_forever");
    // The blocked reader is inside the read syscall, below our function.
    let reader = of("reader")["frames"].as_array().unwrap().clone();
    let at = reader
        .iter()
        .position(|f| {
            f["function"]
                .as_str()
                .is_some_and(|f| f.ends_with("block_in_read"))
        })
        .unwrap();
    assert!(at > 0, "frames below block_in_read: {reader:?}");
    let deaf = of("deaf");
    assert_eq!(deaf["outcome"], "unanswered", "{deaf}");
    assert!(deaf["frames"].as_array().unwrap().is_empty());
    // The main thread, which never recorded anything, is captured too, by its kernel name.
    assert!(
        stacks.iter().filter(|s| s["outcome"] == "captured").count() >= 3,
        "{stacks:?}"
    );
    let text = String::from_utf8_lossy(&flightrec(&["info", &dump]).stdout).into_owned();
    assert!(
        text.contains("deaf (tid") && text.contains("did not answer the capture signal"),
        "{text}"
    );
}

/// `FLIGHTREC_STACKS=1` makes every snapshot of the process carry all threads' stacks,
/// without `--stacks`.
#[test]
fn flightrec_stacks_in_the_environment_gives_every_snapshot_its_stacks() {
    let dir = scratch();
    let mut c = child(
        "stacks::stacks_child",
        &[
            (CHILD_DIR, dir.path()),
            ("FLIGHTREC_STACKS", std::path::Path::new("1")),
        ],
    );
    wait_for(&mut c, "ready");
    let out = flightrec(&["snapshot", &c.id().to_string()]);
    let _ = c.kill();
    let _ = c.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8(out.stdout).unwrap();
    let j: serde_json::Value =
        serde_json::from_slice(&flightrec(&["info", "--json", dump.trim()]).stdout).unwrap();
    let stacks = j["stacks"].as_array().unwrap();
    for thread in ["reader", "spinner"] {
        assert!(
            stacks
                .iter()
                .any(|s| s["thread"] == thread && s["outcome"] == "captured"),
            "{thread}: {stacks:?}"
        );
    }
}
