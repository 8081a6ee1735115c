//! The tick source: the x86 TSC where there is one (a few ns, no syscall), CLOCK_MONOTONIC
//! through `Instant` elsewhere.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use flightrec_format::layout::{ClockAnchor, CLOCK_MONOTONIC_NS, CLOCK_TSC};

/// The process-wide origin of the `mono_ns` values stored in the ring.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Reads the tick source.
#[inline(always)]
pub(crate) fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions: it reads a counter and touches no memory. It is
        // present on every x86_64 CPU.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        mono_ns()
    }
}

/// Nanoseconds of CLOCK_MONOTONIC since the process-wide origin, plus one (so 0 can mean
/// "no reading"). Read through the vDSO: no syscall.
pub(crate) fn mono_ns() -> u64 {
    origin().elapsed().as_nanos() as u64 + 1
}

/// CPU time the calling thread has used, in ns (0 if it cannot be read): what the history
/// thread's spending is counted in, so that time it spends preempted or waiting on the disk
/// costs it nothing.
pub(crate) fn thread_cpu_ns() -> u64 {
    cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time the whole process has used, in ns (0 if it cannot be read): what the history
/// thread's budget is a share of.
pub(crate) fn process_cpu_ns() -> u64 {
    cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration; the CPU-time
    // clocks are always supported on Linux; on failure `ts` stays zero.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Which clock `ticks` reads.
pub(crate) fn kind() -> u32 {
    if cfg!(target_arch = "x86_64") {
        CLOCK_TSC
    } else {
        CLOCK_MONOTONIC_NS
    }
}

/// Takes an anchor (ticks, monotonic, wall read back to back) without measuring the rate.
pub(crate) fn anchor_now() -> ClockAnchor {
    let mono_ns = mono_ns();
    let ticks = ticks();
    let wall_ns = wall_ns();
    ClockAnchor {
        kind: kind(),
        ticks,
        mono_ns,
        wall_ns,
        ticks_per_sec: 0.0,
    }
}

/// A (ticks, monotonic ns) pair read as close together as this thread can: the monotonic
/// read bracketed by two tick reads, the tightest of a few tries, so a preemption in the
/// middle of one (likely on a loaded machine) does not skew the pair.
fn tight_pair() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..8 {
        let t0 = ticks();
        let m = mono_ns();
        let t1 = ticks();
        let width = t1.wrapping_sub(t0);
        if width < best.0 {
            best = (width, t0 + width / 2, m);
        }
    }
    (best.1, best.2)
}

/// Takes an anchor and measures the tick rate over about a millisecond, so a ring that dies
/// soon after start can still convert ticks to time (and lock durations can be written in
/// ns). Each end of the measurement is a tight (ticks, monotonic) pair.
pub(crate) fn calibrate() -> ClockAnchor {
    let mut a = anchor_now();
    if a.kind == CLOCK_MONOTONIC_NS {
        a.ticks_per_sec = 1e9;
        return a;
    }
    let (t0, m0) = tight_pair();
    let start = Instant::now();
    while start.elapsed().as_micros() < 1000 {
        std::hint::spin_loop();
    }
    let (t1, m1) = tight_pair();
    let dt = t1.wrapping_sub(t0) as f64;
    let dm = m1.saturating_sub(m0) as f64;
    if dm > 0.0 && dt > 0.0 {
        a.ticks_per_sec = dt / dm * 1e9;
    }
    a
}
