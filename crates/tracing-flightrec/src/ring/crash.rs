//! Fatal signals: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and SIGTRAP. The handler runs on
//! the thread's alternate signal stack (std gives one to every thread it starts, so stack
//! overflows are caught too). It only does async-signal-safe work: atomic stores into the
//! mapped ring's trigger block (signal, faulting address, thread, tick), then it restores the
//! previous handler and lets the signal happen again, so the process dies as it would have
//! (same signal, same report from the previous handler, core dump where enabled). The ring file, already crash-consistent, becomes the dump when it is
//! collected.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;

use flightrec_format::layout::header;
use flightrec_format::TriggerReason;

use super::{clock, Ring};

const SIGNALS: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGTRAP,
];

/// The header of the ring whose trigger block a crash marks; null when none. Set when a
/// recorder with crash capture starts, cleared when its ring is unmapped.
static CRASH_RING: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// The handlers that were installed before ours, one per entry of `SIGNALS`. Written once,
/// under `INSTALL`, before our handler is installed; only read afterwards.
struct PreviousActions(UnsafeCell<[MaybeUninit<libc::sigaction>; SIGNALS.len()]>);
// SAFETY: written only inside `INSTALL.call_once`, before any handler that reads it can run;
// read-only afterwards.
unsafe impl Sync for PreviousActions {}
static PREVIOUS: PreviousActions =
    PreviousActions(UnsafeCell::new([MaybeUninit::uninit(); SIGNALS.len()]));
static INSTALL: Once = Once::new();

/// Makes crashes mark `ring`'s trigger block (the most recent ring wins) and installs the
/// handlers, once per process.
pub(crate) fn watch(ring: &Ring) {
    CRASH_RING.store(ring.base, Ordering::Release);
    INSTALL.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: sigaction with a zeroed struct (a valid all-defaults value), our
            // handler (an extern "C" fn with the SA_SIGINFO signature), and a pointer to our
            // own slot for the previous action, which no handler reads before this returns
            // (ours is not installed for `sig` until this very call).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fatal_signal as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let slot = (*PREVIOUS.0.get())[i].as_mut_ptr();
                libc::sigaction(sig, &action, slot);
            }
        }
    });
}

/// Stops marking `ring` (it is about to be unmapped).
pub(crate) fn unwatch(ring: &Ring) {
    let _ = CRASH_RING.compare_exchange(
        ring.base,
        std::ptr::null_mut(),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

extern "C" fn on_fatal_signal(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    let base = CRASH_RING.load(Ordering::Acquire);
    if !base.is_null() {
        let word = |off: usize| {
            // SAFETY: `base` is the header of a ring that is still mapped (it is cleared
            // before unmapping), `off` is one of the 8-aligned trigger-block offsets below,
            // within the header; the words are only ever accessed atomically.
            unsafe { &*(base.add(off) as *const AtomicU64) }
        };
        let reason = TriggerReason::Crash.code() as u64 | (sig as u64) << 32;
        // Only the first crash counts: a stack overflow that the next handler turns into an
        // abort is still a SIGSEGV.
        if word(header::TRIGGER_REASON)
            .compare_exchange(0, reason, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
            let addr = unsafe { (*info).si_addr() } as u64;
            word(header::TRIGGER_FAULT_ADDR).store(addr, Ordering::Relaxed);
            // SAFETY: gettid is async-signal-safe and has no preconditions.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
            word(header::TRIGGER_TID).store(tid, Ordering::Relaxed);
            word(header::TRIGGER_TICKS).store(clock::ticks(), Ordering::Release);
            // The crashing thread's registers and stack, for the dump (async-signal-safe:
            // see `stacks`).
            super::stacks::capture_crash(sig, ctx);
        }
    }
    if let Some(i) = SIGNALS.iter().position(|&s| s == sig) {
        // A fault the CPU raised (SEGV, BUS, ILL, FPE from the kernel) happens again when
        // this handler returns, now with the previous handler and the real siginfo: Rust's
        // own stack-overflow report, say, still works. Anything else (abort, a breakpoint,
        // a signal sent with kill) is raised again.
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let from_fault =
            unsafe { (*info).si_code } > 0 && sig != libc::SIGTRAP && sig != libc::SIGABRT;
        // SAFETY: restores the action saved when ours was installed (initialised by then:
        // this handler is only reachable after that sigaction call). A re-raised signal is
        // blocked until this handler returns, then goes to the previous handler or kills
        // the process with the default action.
        unsafe {
            let previous = (*PREVIOUS.0.get())[i].as_ptr();
            libc::sigaction(sig, previous, std::ptr::null_mut());
            if !from_fault {
                libc::raise(sig);
            }
        }
    }
}
