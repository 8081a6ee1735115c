//! Stop signals: SIGTERM, SIGINT and SIGHUP, what systemd, Kubernetes, `docker stop` and a
//! terminal send to end a service. A process stopped that way did not die: its ring must
//! not be collected as evidence of a death at the next start. The handler records the
//! signal and its tick in the ring's header (two atomic stores) and hands the signal on, so
//! the application's own handling and the default action are exactly what they would be
//! without us:
//!
//! - a handler installed before ours is called, as the kernel would have called it;
//! - with the default action before ours, and ours still the installed handler, ours is
//!   put back to the default and the signal raised again: the process ends of it, as it
//!   would have;
//! - with the default action before ours but another handler installed over ours since
//!   (signal-hook's registry, which `tokio::signal` uses, calls the handler it replaced),
//!   the application handles the stop: ours returns and lets it;
//! - a signal ignored before us (`nohup`) stays ignored: no handler is installed for it.
//!
//! Everything in the handler is async-signal-safe: atomic stores, reading the TSC,
//! `sigaction` and `raise`.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;

use flightrec_format::layout::header;

use super::{clock, Ring};

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The header of the ring a stop signal marks; null when none. Set when a recorder starts,
/// cleared before its ring is unmapped.
static STOP_RING: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// The actions installed before ours, one per entry of `SIGNALS`.
struct PreviousActions(UnsafeCell<[MaybeUninit<libc::sigaction>; SIGNALS.len()]>);
// SAFETY: each slot is written only inside `INSTALL.call_once`, by the `sigaction` call that
// installs our handler for that signal (so before our handler can run for it), and only
// read afterwards.
unsafe impl Sync for PreviousActions {}
static PREVIOUS: PreviousActions =
    PreviousActions(UnsafeCell::new([MaybeUninit::uninit(); SIGNALS.len()]));
/// Whether our handler is installed for each entry of `SIGNALS` (and so its `PREVIOUS`
/// slot is initialised).
static INSTALLED: [AtomicBool; SIGNALS.len()] = [const { AtomicBool::new(false) }; 3];
static INSTALL: Once = Once::new();

/// Makes stop signals mark `ring` (the most recent ring wins) and installs the handlers,
/// once per process, for every stop signal but `snapshot_signal` (which makes dumps).
pub(crate) fn watch(ring: &Ring, snapshot_signal: Option<i32>) {
    STOP_RING.store(ring.base, Ordering::Release);
    INSTALL.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            if Some(sig) == snapshot_signal {
                continue;
            }
            // SAFETY: sigaction with a zeroed struct (a valid all-defaults value) holding our
            // handler (an extern "C" fn with the SA_SIGINFO signature), and our own slot for
            // the previous action, which no handler reads before this call returns (ours is
            // not installed for `sig` until this very call). The second call puts back an
            // ignored disposition exactly as it was.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_stop_signal as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let slot = (*PREVIOUS.0.get())[i].as_mut_ptr();
                if libc::sigaction(sig, &action, slot) != 0 {
                    continue;
                }
                if (*slot).sa_sigaction == libc::SIG_IGN {
                    libc::sigaction(sig, slot, std::ptr::null_mut());
                    continue;
                }
            }
            INSTALLED[i].store(true, Ordering::Release);
        }
    });
}

/// Stops marking `ring` (it is about to be unmapped).
pub(crate) fn unwatch(ring: &Ring) {
    let _ = STOP_RING.compare_exchange(
        ring.base,
        std::ptr::null_mut(),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

extern "C" fn on_stop_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let base = STOP_RING.load(Ordering::Acquire);
    if !base.is_null() {
        let word = |off: usize| {
            // SAFETY: `base` is the header of a ring that is still mapped (it is cleared
            // before unmapping); `off` is one of the 8-aligned stop-word offsets, within the
            // header; these words are only ever accessed atomically.
            unsafe { &*(base.add(off) as *const AtomicU64) }
        };
        word(header::STOP_TICKS).store(clock::ticks(), Ordering::Relaxed);
        word(header::STOP_SIGNAL).store(sig as u64, Ordering::Release);
    }
    let Some(i) = SIGNALS.iter().position(|&s| s == sig) else {
        return;
    };
    if !INSTALLED[i].load(Ordering::Acquire) {
        return;
    }
    // SAFETY: the slot was initialised when our handler was installed for `sig`
    // (`INSTALLED` says so) and is never written again.
    let previous = unsafe { &*(*PREVIOUS.0.get())[i].as_ptr() };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL {
        // SAFETY: sigaction is async-signal-safe; a zeroed struct is a valid out-parameter.
        let current = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut current);
            current.sa_sigaction
        };
        if current != on_stop_signal as *const () as usize {
            // A handler installed over ours called us as its predecessor: the application
            // handles this stop itself.
            return;
        }
        // SAFETY: restores the default action saved at install, then raises the signal
        // again: it is blocked until this handler returns, then ends the process as the
        // default action would have.
        unsafe {
            libc::sigaction(sig, previous, std::ptr::null_mut());
            libc::raise(sig);
        }
    } else if handler != libc::SIG_IGN {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: a handler installed with SA_SIGINFO has this signature; we pass on the
            // kernel's own arguments, as the kernel would have called it.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        } else {
            // SAFETY: a handler installed without SA_SIGINFO takes the signal number alone.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
    }
}
