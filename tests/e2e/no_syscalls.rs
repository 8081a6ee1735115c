//! The hot path makes no syscall: a writer thread under a seccomp filter (any syscall but
//! read, write, exit and sigreturn kills the process) writes fifty thousand records,
//! claiming and recycling chunks as it goes. A lock that blocked would be a futex syscall,
//! and an allocation that grew the heap an mmap or brk: both would kill it too.
//!
//! (Seccomp's strict mode would be simpler, but it also disables RDTSC, our clock.)
//!
//! This file holds the only `unsafe` outside the ring: the libc calls seccomp needs.

use std::process::Command;

use crate::helpers::*;

const CHILD_DIR: &str = "FLIGHTREC_SECCOMP_CHILD_DIR";

fn events(i: u64, span: &tracing::Span) {
    let _g = span.enter();
    tracing::info!(a = i, b = 7u64, "literal message");
    tracing::info!(service = "checkout", i, "with a str field");
    tracing::debug!(items = ?[i, i + 1], "with a Debug field");
}

/// Installs a seccomp filter on the calling thread that kills the process on any syscall
/// but read, write, exit and rt_sigreturn. Returns 0 on success.
fn only_read_write_exit() -> i32 {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        op(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        op(JEQ_K, 4, 0, libc::SYS_read as u32),
        op(JEQ_K, 3, 0, libc::SYS_write as u32),
        op(JEQ_K, 2, 0, libc::SYS_exit as u32),
        op(JEQ_K, 1, 0, libc::SYS_rt_sigreturn as u32),
        op(RET_K, 0, 0, RET_KILL_PROCESS),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes only integers. PR_SET_SECCOMP reads `prog`
    // and the filter it points to, both alive for the call; the kernel copies them.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            return -1;
        }
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    }
}

#[test]
#[ignore = "child process of no_syscalls; does nothing when run directly"]
fn seccomp_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rec = tracing_flightrec::Recorder::builder()
        .dir(dir)
        .service("seccomp")
        .capacity(256 << 10)
        .chunk_size(1024)
        .build()
        .unwrap();
    let d = dispatch(&rec);
    let mut fds = [0i32; 2];
    // SAFETY: pipe() writes two descriptors into the array, which we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [read_fd, write_fd] = fds;
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&d, || {
            let span = tracing::info_span!("strict");
            for i in 0..200 {
                events(i, &span); // registers thread and callsites, claims a chunk
            }
            let rc = only_read_write_exit();
            let verdict: &[u8] = if rc == 0 {
                for i in 0..50_000 {
                    events(i, &span);
                }
                b"ok"
            } else {
                b"no-seccomp"
            };
            // SAFETY: writes from a live slice to a pipe descriptor this process owns.
            unsafe { libc::write(write_fd, verdict.as_ptr().cast(), verdict.len()) };
            // SAFETY: ends this thread only (exit, not exit_group: the only exit strict mode
            // allows). Nothing on its stack is needed by anyone after this point.
            unsafe { libc::syscall(libc::SYS_exit, 0) };
        })
    });
    let mut buf = [0u8; 16];
    // SAFETY: reads into a live buffer of the given length from a descriptor we own.
    let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
    println!(
        "verdict:{}",
        String::from_utf8_lossy(&buf[..n.max(0) as usize])
    );
    let ring = flightrec_format::open(rec.ring_path()).unwrap();
    let t = ring.threads.iter().find(|t| t.records > 0).unwrap();
    println!("attempted:{}", t.records + t.overwritten + t.dropped);
    std::process::exit(0);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn the_hot_path_makes_no_syscall_even_when_claiming_chunks() {
    let dir = scratch();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "no_syscalls::seccomp_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    use std::os::unix::process::ExitStatusExt;
    assert_ne!(
        out.status.signal(),
        Some(libc::SIGSYS),
        "a syscall on the hot path: seccomp killed the writer"
    );
    assert!(
        stdout.contains("verdict:ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Everything the strict thread wrote is accounted for (and the ring wrapped many times).
    let attempted = (200 + 50_000) * 5 + 1; // enter, three events, exit; one span_new
    assert!(
        stdout.contains(&format!("attempted:{attempted}")),
        "{stdout}"
    );
}
