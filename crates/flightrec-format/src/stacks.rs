//! The stack area of a ring image, read: the loaded modules, and the threads' registers and
//! stack bytes that capture handlers wrote (see [`crate::layout::stacks`]). Nothing here is
//! unwound or symbolised; that is the reading layer's work, outside the process.

use crate::layout::{get_u32, get_u64, stacks as s};

/// A module (the executable or a shared library) mapped in the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModule {
    /// Address range of its loaded segments.
    pub start: u64,
    pub end: u64,
    /// What was added to the addresses stated in the file (the load bias).
    pub bias: u64,
    /// The GNU build-id, hex; empty when it has none.
    pub build_id: String,
    pub path: String,
}

/// Why a thread's stack was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureReason {
    /// The thread crashed; the handler of the fatal signal captured it.
    Crash,
    /// The thread was stalled when the watchdog dumped.
    Stall,
    /// A snapshot asked for every thread's stack.
    Snapshot,
    Unknown(u32),
}

/// What came of asking a thread for its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// Its handler wrote registers and stack.
    Captured,
    /// It did not answer the capture signal in time (it blocks the signal, or never ran).
    Unanswered,
    /// Its handler had started but not finished when the dump was taken: nothing usable.
    Incomplete,
}

/// One thread's captured registers and stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackCapture {
    pub tid: u64,
    /// The thread's name as the kernel had it (empty when the capture did not run).
    pub name: String,
    pub reason: CaptureReason,
    pub outcome: CaptureOutcome,
    /// The signal for a crash capture, else 0.
    pub signal: u32,
    /// Ticks when the handler ran (0 when it did not).
    pub ticks: u64,
    /// `layout::stacks::ARCH_*`.
    pub arch: u32,
    pub regs: Vec<u64>,
    /// Address of `stack[0]`.
    pub stack_start: u64,
    pub stack: Vec<u8>,
}

impl StackCapture {
    /// Instruction pointer, stack pointer and frame pointer, for a captured x86-64 thread.
    pub fn pc_sp_fp(&self) -> Option<(u64, u64, u64)> {
        (self.arch == s::ARCH_X86_64 && self.regs.len() > s::X86_64_RIP).then(|| {
            (
                self.regs[s::X86_64_RIP],
                self.regs[s::X86_64_RSP],
                self.regs[s::X86_64_RBP],
            )
        })
    }
}

/// Reads a stack area (`area` may be cut short: what is missing is not there). Slots that
/// are free, or whose fields do not add up, are left out.
pub fn parse_area(area: &[u8], slots: u32) -> (Vec<LoadedModule>, Vec<StackCapture>) {
    let modules = area
        .get(..s::MODULES_SIZE.min(area.len()))
        .map(parse_modules)
        .unwrap_or_default();
    let mut captures = Vec::new();
    for i in 0..slots.min(s::MAX_SLOTS) as usize {
        let at = s::MODULES_SIZE + i * s::SLOT_SIZE;
        let Some(slot) = area.get(at..(at + s::SLOT_SIZE).min(area.len())) else {
            break;
        };
        if let Some(c) = parse_slot(slot) {
            captures.push(c);
        }
    }
    (modules, captures)
}

fn parse_slot(slot: &[u8]) -> Option<StackCapture> {
    let outcome = match get_u64(slot, s::STATE)? {
        s::DONE => CaptureOutcome::Captured,
        s::UNANSWERED | s::REQUESTED => CaptureOutcome::Unanswered,
        s::WRITING => CaptureOutcome::Incomplete,
        _ => return None,
    };
    let reason = match get_u32(slot, s::REASON)? {
        s::REASON_CRASH => CaptureReason::Crash,
        s::REASON_STALL => CaptureReason::Stall,
        s::REASON_SNAPSHOT => CaptureReason::Snapshot,
        n => CaptureReason::Unknown(n),
    };
    let mut c = StackCapture {
        tid: get_u64(slot, s::TID)?,
        name: String::new(),
        reason,
        outcome,
        signal: get_u32(slot, s::SIGNAL)?,
        ticks: 0,
        arch: 0,
        regs: Vec::new(),
        stack_start: 0,
        stack: Vec::new(),
    };
    if outcome == CaptureOutcome::Captured {
        c.ticks = get_u64(slot, s::TICKS)?;
        c.arch = get_u32(slot, s::ARCH)?;
        let n = (get_u32(slot, s::REG_COUNT)? as usize).min(s::MAX_REGS);
        c.regs = (0..n)
            .map(|r| get_u64(slot, s::REGS + 8 * r))
            .collect::<Option<_>>()?;
        let name = slot.get(s::NAME..s::NAME + s::NAME_LEN)?;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        c.name = String::from_utf8_lossy(&name[..end]).into_owned();
        c.stack_start = get_u64(slot, s::STACK_START)?;
        let len = (get_u64(slot, s::STACK_LEN)? as usize).min(s::STACK_CAP);
        let bytes = slot.get(s::SLOT_HEADER_SIZE..)?;
        c.stack = bytes[..len.min(bytes.len())].to_vec();
    }
    Some(c)
}

/// Parses the module list's text; lines that do not parse are skipped.
fn parse_modules(block: &[u8]) -> Vec<LoadedModule> {
    let Some(len) = get_u64(block, s::MODULES_LEN) else {
        return Vec::new();
    };
    let end = (s::MODULES_TEXT as u64)
        .saturating_add(len)
        .min(block.len() as u64) as usize;
    let text = String::from_utf8_lossy(&block[s::MODULES_TEXT.min(end)..end]);
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(5, ' ');
            let hex = |t: Option<&str>| t.and_then(|t| u64::from_str_radix(t, 16).ok());
            let start = hex(it.next())?;
            let end = hex(it.next())?;
            let bias = hex(it.next())?;
            let build_id = match it.next()? {
                "-" => String::new(),
                b if b.bytes().all(|c| c.is_ascii_hexdigit()) => b.to_string(),
                _ => return None,
            };
            let path = it.next()?.to_string();
            (start <= end).then_some(LoadedModule {
                start,
                end,
                bias,
                build_id,
                path,
            })
        })
        .collect()
}

/// One line of the module list, as a writer formats it.
pub fn module_line(m: &LoadedModule) -> String {
    format!(
        "{:x} {:x} {:x} {} {}\n",
        m.start,
        m.end,
        m.bias,
        if m.build_id.is_empty() {
            "-"
        } else {
            &m.build_id
        },
        m.path.replace('\n', " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{put_u32, put_u64};

    #[test]
    fn modules_and_slots_read_back_and_junk_is_skipped() {
        let mut area = vec![0u8; s::MODULES_SIZE + 3 * s::SLOT_SIZE];
        let m = LoadedModule {
            start: 0x1000,
            end: 0x2000,
            bias: 0x1000,
            build_id: "abcd".into(),
            path: "/bin/x y".into(),
        };
        let text = format!(
            "{}garbage line\n{}",
            module_line(&m),
            "5 4 0 - /bad-range\n"
        );
        area[s::MODULES_TEXT..s::MODULES_TEXT + text.len()].copy_from_slice(text.as_bytes());
        put_u64(&mut area, s::MODULES_LEN, text.len() as u64);
        // Slot 0: done; slot 1: free; slot 2: unanswered.
        let slot = s::MODULES_SIZE;
        put_u64(&mut area, slot + s::STATE, s::DONE);
        put_u64(&mut area, slot + s::TID, 77);
        put_u32(&mut area, slot + s::REASON, s::REASON_CRASH);
        put_u32(&mut area, slot + s::SIGNAL, 11);
        put_u32(&mut area, slot + s::ARCH, s::ARCH_X86_64);
        put_u32(&mut area, slot + s::REG_COUNT, 23);
        put_u64(&mut area, slot + s::REGS + 8 * s::X86_64_RIP, 0x1234);
        put_u64(&mut area, slot + s::STACK_START, 0x7000);
        put_u64(&mut area, slot + s::STACK_LEN, 16);
        area[slot + s::SLOT_HEADER_SIZE] = 9;
        let third = s::MODULES_SIZE + 2 * s::SLOT_SIZE;
        put_u64(&mut area, third + s::STATE, s::UNANSWERED);
        put_u64(&mut area, third + s::TID, 78);
        put_u32(&mut area, third + s::REASON, s::REASON_STALL);
        let (mods, caps) = parse_area(&area, 3);
        assert_eq!(mods, vec![m]);
        assert_eq!(caps.len(), 2);
        assert_eq!(caps[0].tid, 77);
        assert_eq!(caps[0].reason, CaptureReason::Crash);
        assert_eq!(caps[0].pc_sp_fp().unwrap().0, 0x1234);
        assert_eq!(caps[0].stack.len(), 16);
        assert_eq!(caps[0].stack[0], 9);
        assert_eq!(caps[1].outcome, CaptureOutcome::Unanswered);
        assert!(caps[1].stack.is_empty());
        // Cut short anywhere: no panic, less data.
        for cut in [0, 5, s::MODULES_SIZE + 100, area.len() - 1] {
            let _ = parse_area(&area[..cut], 3);
        }
    }
}

#[cfg(test)]
mod decoded {
    /// A ring with a stack area decodes into its modules and captures, with the capture's
    /// time on the recording's clock; cut anywhere, it still decodes.
    #[test]
    fn a_ring_with_a_stack_area_decodes_its_stacks() {
        let img = crate::testing::sample_image_with_stacks(3);
        let rec = crate::decode(&img).unwrap();
        assert!(!rec.damage.is_damaged(), "{:?}", rec.damage);
        assert_eq!(rec.modules.len(), 1);
        assert_eq!(rec.modules[0].path, "/bin/seed");
        assert_eq!(rec.stacks.len(), 1);
        let (ts, c) = &rec.stacks[0];
        assert_eq!((c.tid, c.name.as_str(), c.stack.len()), (7, "main", 64));
        assert!(ts.is_some_and(|t| t > rec.start_wall_ns));
        let step = if cfg!(miri) { img.len() / 3 + 1 } else { 997 };
        for cut in (0..img.len()).step_by(step) {
            let _ = crate::decode(&img[..cut]);
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes in a stack area, with any slot count, read without panicking, and no
        /// capture claims more stack than a slot holds.
        #[test]
        #[cfg_attr(miri, ignore = "hundreds of 200 KiB cases: too slow under Miri")]
        fn any_stack_area_reads_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..(3 * s::SLOT_SIZE + s::MODULES_SIZE)),
            slots in 0u32..2000,
            states in proptest::collection::vec(0u64..6, 3),
        ) {
            let mut area = bytes;
            // Make some slots look in use, so their fields get read.
            for (i, st) in states.iter().enumerate() {
                let at = s::MODULES_SIZE + i * s::SLOT_SIZE;
                if area.len() >= at + 8 {
                    area[at..at + 8].copy_from_slice(&st.to_le_bytes());
                }
            }
            let (_, caps) = parse_area(&area, slots);
            for c in caps {
                prop_assert!(c.stack.len() <= s::STACK_CAP);
                prop_assert!(c.regs.len() <= s::MAX_REGS);
            }
        }
    }
}
