//! Native stacks: a thread's registers and the top of its stack, copied by a signal handler
//! on that thread into the ring's stack area (see `flightrec_format::layout::stacks`).
//! Unwinding and symbolising happen later, outside the process, from the dump.
//!
//! Two ways in:
//! - **Another thread** (a stalled one, or every thread for a snapshot with stacks): a
//!   dumper marks a slot `REQUESTED` for the thread's tid and sends it the capture signal
//!   (`tgkill`). The handler, on that thread, finds its slot, fills it and marks it `DONE`.
//!   The dumper waits at most [`ANSWER_TIMEOUT`]; a thread that has not answered by then
//!   (it blocks the signal, say) has its slot marked `UNANSWERED`, which a late handler
//!   respects, and the dump goes on.
//! - **A crash**: the fatal-signal handler takes a `FREE` slot for its own thread, from its
//!   `ucontext`, before it lets the signal kill the process.
//!
//! The handler does only async-signal-safe work: atomic loads, stores and compare-exchanges
//! on the mapped ring, `gettid`, `getpid`, a clock read, and `process_vm_readv` on its own
//! process to copy the stack. That syscall is the "trust nothing" part: a stack pointer that
//! points at unmapped memory (a stack overflow's guard page, a corrupt register) makes it
//! copy less, where a plain load would fault inside the handler.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use flightrec_format::layout::stacks as s;
use flightrec_format::LoadedModule;

use super::{clock, Ring};

/// How long a dumper waits for threads to answer the capture signal.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// The stack area a crash is captured into: the most recent ring with one, like the ring
/// whose trigger block a crash marks. Null when none; cleared before the ring is unmapped.
static CRASH_AREA: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// Slots in `CRASH_AREA`'s stack area.
static CRASH_SLOTS: AtomicU32 = AtomicU32::new(0);
/// The stack area of the capture session under way (several recorders may live in one
/// process: the answers go to the ring that asked). Null between sessions, so a handler
/// that runs late writes nothing.
static SESSION_AREA: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static SESSION_SLOTS: AtomicU32 = AtomicU32::new(0);
static INSTALL: Once = Once::new();
/// Serialises capture sessions in this process: a session's slots are its own until it
/// releases them, and nobody copies a slot's bytes while a handler may be writing them.
static SESSION: Mutex<()> = Mutex::new(());
/// Serialises writes of the module list with copies of it.
static MODULES: Mutex<()> = Mutex::new(());

/// The signal that asks a thread for its stack: a real-time signal glibc leaves to
/// applications (SIGRTMIN+5), so it queues and never collides with SIGUSR1 or profilers'
/// SIGPROF.
pub fn capture_signal() -> libc::c_int {
    libc::SIGRTMIN() + 5
}

impl Ring {
    /// The word at `off` of the stack area, as an atomic; `None` when out of the area.
    fn area_word(&self, off: usize) -> Option<&AtomicU64> {
        let g = &self.geometry;
        let len = s::area_size(g.stack_slots) as usize;
        if !off.is_multiple_of(8) || off + 8 > len {
            return None;
        }
        // SAFETY: the stack area lies within the mapping (`file_size` = its offset + its
        // size), starts 64-aligned (the chunk pool's end: a 64-aligned offset plus a
        // multiple of 64-byte chunks) from an aligned base, and `off` is 8-aligned and in
        // bounds, so the address is valid and aligned for an AtomicU64 for as long as
        // `self` lives. Every access to the area goes through such atomics (or the kernel,
        // in `process_vm_readv`, under the slot protocol).
        Some(unsafe { &*(self.base.add(g.stacks_offset() as usize + off) as *const AtomicU64) })
    }

    /// The stack area's first byte.
    fn stack_area(&self) -> *mut u8 {
        self.base
            .wrapping_add(self.geometry.stacks_offset() as usize)
    }

    fn slot_word(&self, slot: u32, field: usize) -> &AtomicU64 {
        let off = s::MODULES_SIZE + slot as usize * s::SLOT_SIZE + field;
        self.area_word(off)
            .expect("slot field within the stack area")
    }
}

/// Makes captures go into `ring`'s stack area (when it has one), records its modules, and
/// installs the capture handler, once per process.
pub(crate) fn watch(ring: &Ring) {
    if ring.geometry.stack_slots == 0 {
        return;
    }
    write_modules(ring);
    CRASH_SLOTS.store(0, Ordering::Release);
    CRASH_AREA.store(ring.stack_area(), Ordering::Release);
    CRASH_SLOTS.store(ring.geometry.stack_slots, Ordering::Release);
    INSTALL.call_once(|| {
        // SAFETY: sigaction with a zeroed struct (all defaults), our handler (an extern "C"
        // fn with the SA_SIGINFO signature). SA_RESTART: a thread asked in the middle of a
        // blocking `read` goes back to it. SA_ONSTACK: a thread with an alternate stack
        // answers on it, so `rsp` in its context is still its own stack.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_capture_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(capture_signal(), &action, std::ptr::null_mut());
        }
    });
}

/// Stops capturing into `ring` (it is about to be unmapped).
pub(crate) fn unwatch(ring: &Ring) {
    if ring.geometry.stack_slots == 0 {
        return;
    }
    if CRASH_AREA
        .compare_exchange(
            ring.stack_area(),
            std::ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
    {
        CRASH_SLOTS.store(0, Ordering::Release);
    }
}

/// Writes the list of loaded modules into the stack area (an ordinary thread: it allocates).
pub(crate) fn write_modules(ring: &Ring) {
    if ring.geometry.stack_slots == 0 {
        return;
    }
    let mut text = String::new();
    for m in loaded_modules() {
        let line = flightrec_format::stacks::module_line(&m);
        if text.len() + line.len() > s::MODULES_SIZE - s::MODULES_TEXT {
            break;
        }
        text.push_str(&line);
    }
    let _g = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    let len = ring.area_word(s::MODULES_LEN).expect("modules block");
    len.store(0, Ordering::Release);
    let bytes = text.as_bytes();
    for (i, w) in bytes.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..w.len()].copy_from_slice(w);
        if let Some(a) = ring.area_word(s::MODULES_TEXT + 8 * i) {
            a.store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
    }
    len.store(bytes.len() as u64, Ordering::Release);
}

/// The modules mapped in this process, from the dynamic linker: each object's load bias,
/// the range of its loadable segments, its GNU build-id and its path.
fn loaded_modules() -> Vec<LoadedModule> {
    let mut out: Vec<LoadedModule> = Vec::new();
    extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and
        // `data` is the `&mut Vec` given below, alive and not otherwise borrowed meanwhile.
        let (info, out) = unsafe { (&*info, &mut *(data as *mut Vec<LoadedModule>)) };
        let bias = info.dlpi_addr;
        let mut lo = u64::MAX;
        let mut hi = 0u64;
        let mut build_id = String::new();
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type == libc::PT_LOAD {
                lo = lo.min(bias.wrapping_add(ph.p_vaddr));
                hi = hi.max(bias.wrapping_add(ph.p_vaddr + ph.p_memsz));
            } else if ph.p_type == libc::PT_NOTE && build_id.is_empty() {
                // SAFETY: a loaded PT_NOTE segment is mapped at bias + p_vaddr for p_memsz
                // bytes (it lies inside a PT_LOAD segment).
                let notes = unsafe {
                    std::slice::from_raw_parts(
                        bias.wrapping_add(ph.p_vaddr) as *const u8,
                        ph.p_memsz as usize,
                    )
                };
                build_id = gnu_build_id(notes).unwrap_or_default();
            }
        }
        let path = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null dlpi_name is a NUL-terminated string.
            unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }
                .to_string_lossy()
                .into_owned()
        };
        if lo < hi {
            out.push(LoadedModule {
                start: lo,
                end: hi,
                bias,
                build_id,
                path,
            });
        }
        0
    }
    // SAFETY: `each` matches the callback signature and only uses `data` as the Vec.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut out as *mut _ as *mut libc::c_void) };
    // The executable comes first, with an empty name.
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    for m in &mut out {
        if m.path.is_empty() {
            m.path = exe.clone();
        }
    }
    // The vDSO has no file to read; everything else is a path.
    out.retain(|m| m.path.starts_with('/'));
    out
}

/// The GNU build-id in a block of ELF notes, hex.
fn gnu_build_id(mut notes: &[u8]) -> Option<String> {
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let align4 = |n: usize| n.div_ceil(4) * 4;
    while notes.len() >= 12 {
        let namesz = u32_at(notes, 0)? as usize;
        let descsz = u32_at(notes, 4)? as usize;
        let kind = u32_at(notes, 8)?;
        let name = notes.get(12..12 + namesz)?;
        let desc_at = 12 + align4(namesz);
        let desc = notes.get(desc_at..desc_at + descsz)?;
        if kind == 3 && name.starts_with(b"GNU") {
            return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
        }
        notes = notes.get(desc_at + align4(descsz)..)?;
    }
    None
}

/// A capture session: its slots hold the threads' stacks until the dump is copied; dropping
/// it frees them (the crash slot excepted).
pub(crate) struct Session<'r> {
    ring: &'r Ring,
    _serial: MutexGuard<'static, ()>,
}

/// Asks each thread in `tids` for its stack (never the calling thread) and waits for the
/// answers, at most `ANSWER_TIMEOUT`. Returns `None` when the ring has no stack area.
pub(crate) fn capture<'r>(ring: &'r Ring, tids: &[u64], reason: u32) -> Option<Session<'r>> {
    let slots = ring.geometry.stack_slots;
    if slots == 0 || !INSTALL.is_completed() {
        return None;
    }
    let serial = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    write_modules(ring);
    // Answers go to this ring until the session ends (the session borrows it: it stays
    // mapped meanwhile).
    SESSION_SLOTS.store(0, Ordering::Release);
    SESSION_AREA.store(ring.stack_area(), Ordering::Release);
    SESSION_SLOTS.store(slots, Ordering::Release);
    // SAFETY: getpid and gettid have no preconditions.
    let (pid, me) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid) as u64) };
    let mut asked: Vec<(u64, u32)> = Vec::new();
    let mut next_slot = 0u32;
    let mut seen = std::collections::HashSet::new();
    for &tid in tids {
        if tid == me || tid == 0 || !seen.insert(tid) {
            continue;
        }
        // A free slot, taken through a state the handler ignores while its fields are set.
        let slot = (next_slot..slots).find(|&i| {
            ring.slot_word(i, s::STATE)
                .compare_exchange(s::FREE, s::UNANSWERED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        let Some(slot) = slot else {
            break; // every slot taken: the rest go without
        };
        next_slot = slot + 1;
        ring.slot_word(slot, s::TID).store(tid, Ordering::Relaxed);
        ring.slot_word(slot, s::REASON)
            .store(reason as u64, Ordering::Relaxed);
        ring.slot_word(slot, s::STATE)
            .store(s::REQUESTED, Ordering::Release);
        // SAFETY: tgkill with our own pid only reaches threads of this process; the capture
        // handler is installed (`INSTALL` completed), so the signal never kills.
        let sent =
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid as libc::pid_t, capture_signal()) };
        if sent == 0 {
            asked.push((tid, slot));
        } else {
            // The thread is gone.
            ring.slot_word(slot, s::STATE)
                .store(s::FREE, Ordering::Release);
        }
    }
    // Wait for the answers, within the bound; the dump is never held up longer.
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let pending = |slot: u32| {
        matches!(
            ring.slot_word(slot, s::STATE).load(Ordering::Acquire),
            s::REQUESTED | s::WRITING
        )
    };
    let mut rounds = 0u32;
    while asked.iter().any(|&(_, slot)| pending(slot)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        rounds += 1;
        if rounds.is_multiple_of(10) {
            // A thread that ended after it was signalled never answers: free its slot
            // rather than wait the whole bound for it.
            asked.retain(|&(tid, slot)| {
                let gone = pending(slot)
                    && !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
                    && ring
                        .slot_word(slot, s::STATE)
                        .compare_exchange(
                            s::REQUESTED,
                            s::FREE,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok();
                !gone
            });
        }
    }
    for &(_, slot) in &asked {
        let st = ring.slot_word(slot, s::STATE);
        if st
            .compare_exchange(
                s::REQUESTED,
                s::UNANSWERED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // A handler that started finishes within microseconds (a bounded copy).
            let grace = Instant::now() + Duration::from_millis(100);
            while st.load(Ordering::Acquire) == s::WRITING && Instant::now() < grace {
                std::thread::yield_now();
            }
        }
    }
    Some(Session {
        ring,
        _serial: serial,
    })
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // Late handlers find no session and write nothing.
        SESSION_SLOTS.store(0, Ordering::Release);
        SESSION_AREA.store(std::ptr::null_mut(), Ordering::Release);
        for i in 0..self.ring.geometry.stack_slots {
            let reason = self.ring.slot_word(i, s::REASON).load(Ordering::Relaxed) as u32;
            let st = self.ring.slot_word(i, s::STATE);
            if reason != s::REASON_CRASH && st.load(Ordering::Acquire) != s::WRITING {
                st.store(s::FREE, Ordering::Release);
            }
        }
    }
}

/// Copies the stack area into `image` (a whole-ring buffer): the module list, and every
/// slot in use: a finished capture whole, others their header (who, why, what came of it).
/// Without a session of its own the caller's copy waits for any session to end.
pub(crate) fn copy_area(ring: &Ring, image: &mut [u8], in_session: bool) {
    let g = &ring.geometry;
    if g.stack_slots == 0 {
        return;
    }
    let _serial = (!in_session).then(|| SESSION.lock().unwrap_or_else(|e| e.into_inner()));
    let base = g.stacks_offset() as usize;
    let mut put = |off: usize, v: u64| {
        if let Some(d) = image.get_mut(base + off..base + off + 8) {
            d.copy_from_slice(&v.to_le_bytes());
        }
    };
    {
        let _m = MODULES.lock().unwrap_or_else(|e| e.into_inner());
        let len = ring
            .area_word(s::MODULES_LEN)
            .map_or(0, |w| w.load(Ordering::Acquire))
            .min((s::MODULES_SIZE - s::MODULES_TEXT) as u64) as usize;
        put(s::MODULES_LEN, len as u64);
        for i in 0..len.div_ceil(8) {
            let off = s::MODULES_TEXT + 8 * i;
            put(
                off,
                ring.area_word(off).map_or(0, |w| w.load(Ordering::Relaxed)),
            );
        }
    }
    for i in 0..g.stack_slots {
        let state = ring.slot_word(i, s::STATE).load(Ordering::Acquire);
        if state == s::FREE {
            continue;
        }
        let slot = s::MODULES_SIZE + i as usize * s::SLOT_SIZE;
        let words = if state == s::DONE {
            let len = ring.slot_word(i, s::STACK_LEN).load(Ordering::Relaxed) as usize;
            (s::SLOT_HEADER_SIZE + len.min(s::STACK_CAP)).div_ceil(8)
        } else {
            s::REGS / 8
        };
        for w in 1..words {
            put(
                slot + 8 * w,
                ring.slot_word(i, 8 * w).load(Ordering::Relaxed),
            );
        }
        put(slot + s::STATE, state);
    }
}

extern "C" fn on_capture_signal(
    _sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    let area = SESSION_AREA.load(Ordering::Acquire);
    let slots = SESSION_SLOTS.load(Ordering::Acquire);
    if area.is_null() {
        return;
    }
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
    for i in 0..slots {
        let slot = SlotRef { area, slot: i };
        let state = slot.word(s::STATE);
        if state.load(Ordering::Acquire) == s::REQUESTED
            && slot.word(s::TID).load(Ordering::Relaxed) == tid
            && state
                .compare_exchange(
                    s::REQUESTED,
                    s::WRITING,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            slot.fill(ctx);
            state.store(s::DONE, Ordering::Release);
            return;
        }
    }
}

/// For the fatal-signal handler: captures the crashing thread into a free slot.
/// Async-signal-safe, as `on_capture_signal`.
pub(crate) fn capture_crash(sig: libc::c_int, ctx: *mut libc::c_void) {
    let area = CRASH_AREA.load(Ordering::Acquire);
    let slots = CRASH_SLOTS.load(Ordering::Acquire);
    if area.is_null() {
        return;
    }
    for i in 0..slots {
        let slot = SlotRef { area, slot: i };
        let state = slot.word(s::STATE);
        if state
            .compare_exchange(s::FREE, s::WRITING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: gettid has no preconditions and is async-signal-safe.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
            slot.word(s::TID).store(tid, Ordering::Relaxed);
            slot.word(s::REASON).store(
                s::REASON_CRASH as u64 | (sig as u64) << 32,
                Ordering::Relaxed,
            );
            slot.fill(ctx);
            state.store(s::DONE, Ordering::Release);
            return;
        }
    }
}

/// A slot of the published stack area, for the handlers (which have no `&Ring`).
struct SlotRef {
    area: *mut u8,
    slot: u32,
}

impl SlotRef {
    fn word(&self, field: usize) -> &AtomicU64 {
        // SAFETY: `area` is the published base of a live ring's stack area (a crash area is
        // cleared before its ring is unmapped; a session's while the session borrows the
        // ring) with at least `slot + 1` slots (the count is zeroed before the area is
        // replaced and stored after it; readers load the area first); `field` is an
        // 8-aligned offset within a slot; the area is 64-aligned.
        unsafe {
            &*(self
                .area
                .add(s::MODULES_SIZE + self.slot as usize * s::SLOT_SIZE + field)
                as *const AtomicU64)
        }
    }

    /// Registers from `ctx` (the handler's ucontext), then the stack from the stack
    /// pointer up, through `process_vm_readv` so an unmapped page ends the copy instead of
    /// faulting.
    fn fill(&self, ctx: *mut libc::c_void) {
        self.word(s::TICKS).store(clock::ticks(), Ordering::Relaxed);
        let mut name = [0u8; s::NAME_LEN];
        // SAFETY: PR_GET_NAME writes at most 16 bytes (NUL included) into `name`; prctl is
        // a plain syscall.
        unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
        for (i, w) in name.chunks_exact(8).enumerate() {
            let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            self.word(s::NAME + 8 * i).store(v, Ordering::Relaxed);
        }
        #[cfg(target_arch = "x86_64")]
        let sp = {
            // SAFETY: the kernel passes a valid ucontext_t to an SA_SIGINFO handler.
            let gregs = unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs };
            let n = gregs.len().min(s::MAX_REGS);
            for (r, v) in gregs.iter().take(n).enumerate() {
                self.word(s::REGS + 8 * r)
                    .store(*v as u64, Ordering::Relaxed);
            }
            self.word(s::ARCH)
                .store(s::ARCH_X86_64 as u64 | (n as u64) << 32, Ordering::Relaxed);
            gregs[libc::REG_RSP as usize] as u64
        };
        #[cfg(not(target_arch = "x86_64"))]
        let sp = {
            let _ = ctx;
            0u64
        };
        let dst = self.word(s::SLOT_HEADER_SIZE) as *const AtomicU64 as *mut u8;
        let (start, copied) = if sp == 0 {
            (0, 0)
        } else {
            // A stack overflow leaves the stack pointer in the guard page: what the caller
            // frames need (the return addresses) is in the pages above it.
            const PAGE: u64 = 4096;
            let mut found = (sp, 0);
            for k in 0..=16u64 {
                let from = if k == 0 { sp } else { (sp / PAGE + k) * PAGE };
                let got = copy_stack(from, dst);
                if got > 0 {
                    found = (from, got);
                    break;
                }
            }
            found
        };
        self.word(s::STACK_START).store(start, Ordering::Relaxed);
        self.word(s::STACK_LEN)
            .store(copied as u64, Ordering::Relaxed);
    }
}

/// Copies up to `STACK_CAP` bytes from `sp` up into `dst`, one remote iovec per page so the
/// copy stops at the first unmapped page. Returns the bytes copied.
fn copy_stack(sp: u64, dst: *mut u8) -> usize {
    const PAGE: u64 = 4096;
    const MAX_IOV: usize = s::STACK_CAP / PAGE as usize + 1;
    let mut remote = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOV];
    let mut n = 0;
    let mut at = sp;
    let end = sp.saturating_add(s::STACK_CAP as u64);
    while at < end && n < MAX_IOV {
        let next = ((at / PAGE) + 1) * PAGE;
        let stop = next.min(end);
        remote[n] = libc::iovec {
            iov_base: at as *mut libc::c_void,
            iov_len: (stop - at) as usize,
        };
        n += 1;
        at = stop;
    }
    let local = libc::iovec {
        iov_base: dst as *mut libc::c_void,
        iov_len: s::STACK_CAP,
    };
    // SAFETY: `local` is the slot's stack buffer, STACK_CAP bytes inside the mapped area,
    // which this handler owns (its slot is WRITING). The remote ranges are addresses in our
    // own process that the kernel checks: an unmapped one ends the transfer, it never
    // faults. process_vm_readv is a plain syscall, async-signal-safe.
    let got = unsafe {
        libc::process_vm_readv(
            libc::getpid(),
            &local,
            1,
            remote.as_ptr(),
            n as libc::c_ulong,
            0,
        )
    };
    got.max(0) as usize
}
