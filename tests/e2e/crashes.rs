//! Fatal signals, for real: a worker thread writes five events, then dies of a null write,
//! a truncated mapping, a division by zero, an illegal instruction, a breakpoint, abort()
//! or a stack overflow. The process must die of that signal, and its ring, collected
//! afterwards, must name the signal and the thread and hold the worker's events.
//!
//! The crashes themselves need `unsafe` (and inline assembly): that is what they test.

use std::os::unix::process::ExitStatusExt;

use flightrec_format::{RecordKind, TriggerReason};

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_CRASH_CHILD_DIR";
const CHILD_HOW: &str = "FLIGHTREC_CRASH_HOW";

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // fault: overflow (the next line)
    let buf = std::hint::black_box([depth; 64]);
    // fault: overflow (the next line)
    recurse(depth + 1) + buf[3]
}

fn crash(how: &str) {
    match how {
        "segv" => {
            // SAFETY: none; this write to address 0 is meant to fault.
            // fault: segv (the next line)
            unsafe { std::ptr::write_volatile(std::ptr::null_mut::<u64>(), 1) };
        }
        "bus" => {
            let path = std::env::temp_dir().join(format!("flightrec-bus-{}", std::process::id()));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            f.set_len(4096).unwrap();
            let map = unsafe_map(&f);
            // The page behind the mapping goes.
            f.set_len(0).unwrap();
            // SAFETY: none; reading a page past the end of the file is meant to raise SIGBUS.
            // fault: bus (the next line)
            let _ = unsafe { std::ptr::read_volatile(map) };
        }
        #[cfg(target_arch = "x86_64")]
        "fpe" => {
            // SAFETY: none; an integer division by zero is meant to trap (#DE, SIGFPE).
            unsafe {
                // fault: fpe (the next line)
                std::arch::asm!("div {0}", in(reg) 0u64, inout("rax") 1u64 => _, inout("rdx") 0u64 => _);
            }
        }
        #[cfg(target_arch = "x86_64")]
        "ill" => {
            // SAFETY: none; ud2 is meant to raise SIGILL.
            // fault: ill (the next line)
            unsafe { std::arch::asm!("ud2") };
        }
        #[cfg(target_arch = "x86_64")]
        "trap" => {
            // SAFETY: none; int3 is meant to raise SIGTRAP.
            // fault: trap (the next line)
            unsafe { std::arch::asm!("int3") };
        }
        // fault: abrt (the next line)
        "abrt" => std::process::abort(),
        "overflow" => {
            std::hint::black_box(recurse(0));
        }
        other => panic!("unknown crash {other}"),
    }
}

fn unsafe_map(f: &std::fs::File) -> *const u8 {
    use std::os::fd::AsRawFd;
    // SAFETY: maps 4096 bytes of a file we own, shared and read-only; the pointer is only
    // read once, to fault.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p as *const u8
}

#[test]
#[ignore = "child process of the crash tests"]
fn crash_child() {
    let (Ok(dir), Ok(how)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_HOW)) else {
        return;
    };
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir)
        .service("crash")
        .capacity(1 << 20)
        .snapshot_signal(None)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    let worker = std::thread::Builder::new()
        .name("victim".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                for step in 0..5u64 {
                    tracing::info!(step, "about to crash");
                }
                crash(&how);
            })
        })
        .unwrap();
    let _ = worker.join();
    println!("survived a crash that should have killed the process");
}

fn crash_and_collect(how: &str, expect_signal: i32, dies_with: i32) -> String {
    crash_and_collect_with(
        &std::env::current_exe().unwrap(),
        how,
        expect_signal,
        dies_with,
    )
    .0
}

/// Runs `exe` (this test binary, or a copy of it) as the crash child; returns its stderr
/// and the collected dump (with the directory holding it), having checked the dump and the
/// crashing thread's stack.
fn crash_and_collect_with(
    exe: &std::path::Path,
    how: &str,
    expect_signal: i32,
    dies_with: i32,
) -> (String, std::path::PathBuf, tempfile::TempDir) {
    let dir = scratch();
    let c = std::process::Command::new(exe)
        .args([
            "crashes::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_HOW, how)
        .output()
        .unwrap();
    assert_eq!(c.status.signal(), Some(dies_with), "{how}: {:?}", c.status);
    let ring = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "flightrec-ring"))
        .unwrap();
    let out = flightrec(&["collect", ring.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(
        dump.to_str().unwrap().ends_with("-crash.flightrec"),
        "{dump:?}"
    );
    let rec = flightrec_format::open(&dump).unwrap();
    assert_eq!(rec.trigger.reason, TriggerReason::Crash, "{how}");
    assert_eq!(rec.trigger.signal, expect_signal as u32, "{how}");
    let victim = rec.threads.iter().find(|t| t.name == "victim").unwrap();
    assert_eq!(
        rec.trigger.tid, victim.tid,
        "{how}: the trigger names the crashing thread"
    );
    assert!(
        rec.trigger.wall_ns > rec.start_wall_ns,
        "{how}: the crash has a time"
    );
    let events = rec
        .records
        .iter()
        .filter(|r| r.thread == victim.index && r.kind == RecordKind::Event)
        .count();
    assert_eq!(events, 5, "{how}: the victim's last events");
    let info = flightrec(&["info", dump.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&info.stdout);
    let name = flightrec_format::trigger::signal_name(expect_signal as u32);
    assert!(text.contains(&format!("crashed with {name}")), "{text}");
    // The crashing thread's native stack, captured in the handler and unwound here, goes
    // through the line that faulted (marked `// fault: <how>` in this file).
    let info = flightrec(&["info", "--json", dump.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let stacks = j["stacks"].as_array().unwrap();
    let crashed = stacks
        .iter()
        .find(|s| s["reason"] == "crash")
        .unwrap_or_else(|| panic!("{how}: no crash stack in {j}"));
    assert_eq!(crashed["tid"], victim.tid, "{how}");
    assert_eq!(crashed["thread"], "victim", "{how}");
    let marked: Vec<u64> = include_str!("crashes.rs")
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == format!("// fault: {how} (the next line)"))
        .map(|(i, _)| i as u64 + 2)
        .collect();
    let frames = crashed["frames"].as_array().unwrap();
    let ours = frames
        .iter()
        .find(|f| {
            // No line: compiler-made code (a stack probe in a prologue).
            f["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("crashes.rs"))
                && f["line"].as_u64().is_some()
        })
        .unwrap_or_else(|| panic!("{how}: no frame in crashes.rs:\n{}", text_of(frames)));
    let line = ours["line"].as_u64().unwrap_or(0);
    let function = ours["function"].as_str().unwrap_or("");
    assert!(
        marked.contains(&line)
            && (function.contains("crashes::crash") || function.contains("crashes::recurse")),
        "{how}: the first frame in this file is {function} at line {line}, not a line marked \
         {marked:?}:\n{}",
        text_of(frames)
    );
    // Lines were found, so there is no advice about debug info.
    let text = flightrec(&["info", dump.to_str().unwrap()]);
    assert!(
        !String::from_utf8_lossy(&text.stdout).contains("line-tables-only"),
        "{how}"
    );
    (String::from_utf8_lossy(&c.stderr).into_owned(), dump, dir)
}

/// A release-style deployment: the binary stripped of everything (debug info and symbol
/// table), its debug info in a separate file found through `.gnu_debuglink`. The crash's
/// stack still names the faulting function and line; without the debug file it still reads,
/// as module + offset.
#[test]
fn a_stripped_binary_with_its_debug_info_apart_still_names_the_line() {
    let dir = scratch();
    let exe = dir.path().join("e2e-stripped");
    let debug = dir.path().join("e2e-stripped.debug");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{:?}: {e} (scripts/test.sh installs binutils)", args[0]));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let (objcopy, strip) = (os("objcopy"), os("strip"));
    run(&[
        &objcopy,
        &os("--only-keep-debug"),
        exe.as_os_str(),
        debug.as_os_str(),
    ]);
    run(&[&strip, &os("--strip-all"), exe.as_os_str()]);
    let link = os(&format!("--add-gnu-debuglink={}", debug.display()));
    run(&[&objcopy, &link, exe.as_os_str()]);
    let (_, dump, _kept) = crash_and_collect_with(&exe, "segv", libc::SIGSEGV, libc::SIGSEGV);
    // Without the debug file: no names, no failure; frames in the binary as module+offset.
    std::fs::remove_file(&debug).unwrap();
    let info = flightrec(&["info", "--json", dump.to_str().unwrap()]);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let crashed = j["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["reason"] == "crash")
        .unwrap();
    let frames = crashed["frames"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f["text"].as_str().unwrap().starts_with("e2e-stripped+0x")),
        "{}",
        text_of(frames)
    );
    assert!(frames
        .iter()
        .filter(|f| f["module"] == "e2e-stripped")
        .all(|f| f["line"].is_null()));
    // `info` says once why there are no lines, and what to set.
    let text = flightrec(&["info", dump.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.matches("no file or line for e2e-stripped's frames")
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("`debug = \"line-tables-only\"`"), "{text}");
}

fn text_of(frames: &[serde_json::Value]) -> String {
    frames
        .iter()
        .map(|f| f["text"].as_str().unwrap_or("?").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sigsegv_from_a_real_invalid_write() {
    let (_, dump, _kept) = crash_and_collect_with(
        &std::env::current_exe().unwrap(),
        "segv",
        libc::SIGSEGV,
        libc::SIGSEGV,
    );
    // The viewer's meta carries the crash's stack, on the victim's lane, for the crash
    // marker's details panel.
    let model = flightrec_viewer::model::Model::new(flightrec_format::open(&dump).unwrap());
    let meta = model.meta();
    let crash = meta
        .stacks
        .iter()
        .find(|s| s.reason == "crash")
        .expect("a crash stack in the meta");
    assert!(crash.answered);
    assert_eq!(crash.thread, "victim");
    assert_eq!(crash.lane, meta.trigger.as_ref().unwrap().lane);
    assert!(
        crash.frames.iter().any(|f| f.contains("crashes.rs:")),
        "{:?}",
        crash.frames
    );
}

#[test]
fn sigbus_from_a_truncated_mapping() {
    crash_and_collect("bus", libc::SIGBUS, libc::SIGBUS);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn sigfpe_from_a_division_by_zero() {
    crash_and_collect("fpe", libc::SIGFPE, libc::SIGFPE);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn sigill_from_an_illegal_instruction() {
    crash_and_collect("ill", libc::SIGILL, libc::SIGILL);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn sigtrap_from_a_breakpoint() {
    crash_and_collect("trap", libc::SIGTRAP, libc::SIGTRAP);
}

#[test]
fn sigabrt_from_abort() {
    crash_and_collect("abrt", libc::SIGABRT, libc::SIGABRT);
}

/// Rust's own stack-overflow handler (chained after ours) prints the overflow and aborts, so
/// the process dies of SIGABRT; the ring records the SIGSEGV that started it.
#[test]
fn a_stack_overflow_on_a_worker_thread() {
    let stderr = crash_and_collect("overflow", libc::SIGSEGV, libc::SIGABRT);
    assert!(
        stderr.contains("has overflowed its stack"),
        "the previous handler's report: {stderr}"
    );
}
