//! Native stacks, resolved: each captured thread's registers and stack bytes unwound with
//! the modules' unwind tables (framehop) and symbolised with their debug info (addr2line),
//! here, outside the process that was captured.
//!
//! The module files are read from the paths the dump recorded, and used only when their
//! build-id matches the recorded one: a rebuilt binary would name the wrong functions.
//! Debug info in a separate file is looked for where distributions put it
//! (`/usr/lib/debug/.build-id/xx/rest.debug`) and next to the module (`.gnu_debuglink`).
//! When nothing can be read, frames are still given as module + offset.

use std::collections::HashMap;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flightrec_format::{CaptureOutcome, CaptureReason, LoadedModule, Recording, StackCapture};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection};

/// Linux's SIGTRAP.
const SIGTRAP: u32 = 5;

/// Most modules read for one recording.
const MAX_MODULES: usize = 1024;

/// Largest module file read.
const MAX_MODULE_BYTES: u64 = 4 << 30;

/// Most frames unwound per thread.
const MAX_FRAMES: usize = 256;

/// One frame of a resolved stack. An address covered by inlined functions gives several
/// frames, the innermost first, all but the last marked `inlined`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The instruction pointer (first frame) or return address.
    pub address: u64,
    /// The module's file name, when the address lies in one.
    pub module: Option<String>,
    /// Offset of the address in the module (as stated in its file).
    pub offset: u64,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub inlined: bool,
}

impl Frame {
    /// "function at file:line", or "module+0x1f2a" without symbols.
    pub fn describe(&self) -> String {
        let place = match (&self.file, self.line) {
            (Some(f), Some(l)) => format!(" at {f}:{l}"),
            (Some(f), None) => format!(" at {f}"),
            _ => String::new(),
        };
        match &self.function {
            Some(f) => format!("{f}{place}{}", if self.inlined { " (inlined)" } else { "" }),
            None => match &self.module {
                Some(m) => format!("{m}+{:#x}{place}", self.offset),
                None => format!("{:#x}", self.address),
            },
        }
    }
}

/// One thread's stack in a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStack {
    pub tid: u64,
    /// The recording's name for the thread, else the kernel's.
    pub thread: String,
    pub reason: CaptureReason,
    pub outcome: CaptureOutcome,
    /// The crash signal, for a crash capture.
    pub signal: u32,
    /// When the capture ran (ns since the Unix epoch).
    pub ts: Option<i64>,
    pub frames: Vec<Frame>,
    /// Why the stack may be short: the unwinder stopped early, or the stack copy ended.
    pub note: Option<String>,
}

impl ThreadStack {
    /// What happened to this thread's capture, in words, with its reason.
    pub fn headline(&self) -> String {
        let why = match self.reason {
            CaptureReason::Crash => "crashed",
            CaptureReason::Stall => "stalled",
            CaptureReason::Snapshot => "snapshot",
            CaptureReason::Unknown(_) => "captured",
        };
        let what = match self.outcome {
            CaptureOutcome::Captured => String::new(),
            CaptureOutcome::Unanswered => {
                " — did not answer the capture signal within 1 s (it blocks the signal, or \
                 could not run)"
                    .to_string()
            }
            CaptureOutcome::Incomplete => " — capture unfinished when the dump was taken".into(),
        };
        format!("{} (tid {}), {why}{what}", self.thread, self.tid)
    }
}

/// Every captured thread's stack in `rec`, unwound and symbolised. Reads module files;
/// never fails: what cannot be resolved is given as addresses.
pub fn stacks(rec: &Recording) -> Vec<ThreadStack> {
    if rec.stacks.is_empty() {
        return Vec::new();
    }
    let mut resolver = Resolver::new(&rec.modules);
    rec.stacks
        .iter()
        .map(|(ts, c)| {
            let thread = rec
                .threads
                .iter()
                .find(|t| t.tid == c.tid && !t.name.is_empty())
                .map(|t| t.name.clone())
                .unwrap_or_else(|| {
                    if c.name.is_empty() {
                        format!("tid {}", c.tid)
                    } else {
                        c.name.clone()
                    }
                });
            let (frames, note) = if c.outcome == CaptureOutcome::Captured {
                resolver.resolve(c)
            } else {
                (Vec::new(), None)
            };
            ThreadStack {
                tid: c.tid,
                thread,
                reason: c.reason,
                outcome: c.outcome,
                signal: c.signal,
                ts: *ts,
                frames,
                note,
            }
        })
        .collect()
}

/// A module file's bytes, shared by the unwind sections cut from it.
#[derive(Clone)]
struct Section {
    map: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl Deref for Section {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// Unwinds and symbolises against a recording's modules, reading each file once.
struct Resolver<'m> {
    modules: &'m [LoadedModule],
    unwinder: UnwinderX86_64<Section>,
    /// Symbolisers by module index; `None` when the module's file or debug info is unusable.
    symbols: HashMap<usize, Option<addr2line::Loader>>,
    /// Why a module could not be used, by module index (for the note).
    unusable: HashMap<usize, String>,
}

impl<'m> Resolver<'m> {
    fn new(modules: &'m [LoadedModule]) -> Resolver<'m> {
        let mut unwinder = UnwinderX86_64::new();
        let mut unusable = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (i, m) in modules.iter().enumerate() {
            // A process maps each file once: a list naming one file many times (a crafted
            // dump) does not get it read many times.
            if i >= MAX_MODULES || !seen.insert(m.path.as_str()) {
                unusable.insert(i, "listed twice, or past the module limit".to_string());
                continue;
            }
            match unwind_module(m) {
                Ok(module) => unwinder.add_module(module),
                Err(why) => {
                    unusable.insert(i, why);
                }
            }
        }
        Resolver {
            modules,
            unwinder,
            symbols: HashMap::new(),
            unusable,
        }
    }

    fn resolve(&mut self, c: &StackCapture) -> (Vec<Frame>, Option<String>) {
        let Some((pc, sp, bp)) = c.pc_sp_fp() else {
            return (
                Vec::new(),
                Some("registers of an unknown architecture".into()),
            );
        };
        let stack = &c.stack;
        let start = c.stack_start;
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let off = addr.checked_sub(start).ok_or(())? as usize;
            let b = stack.get(off..off.checked_add(8).ok_or(())?).ok_or(())?;
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| ())?))
        };
        let mut cache = CacheX86_64::<_>::new();
        let mut it = self.unwinder.iter_frames(
            pc,
            UnwindRegsX86_64::new(pc, sp, bp),
            &mut cache,
            &mut read_stack,
        );
        let mut addresses = Vec::new();
        let mut note = None;
        loop {
            match it.next() {
                Ok(Some(a)) => {
                    addresses.push(a);
                    if addresses.len() >= MAX_FRAMES {
                        note = Some(format!("more than {MAX_FRAMES} frames: cut"));
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    note = Some(format!("unwinding stopped: {e}"));
                    break;
                }
            }
        }
        let mut frames = Vec::new();
        for (n, a) in addresses.into_iter().enumerate() {
            let mut lookup = a.address_for_lookup();
            // A breakpoint (int3) leaves the instruction pointer after itself: the
            // instruction that trapped is the one before.
            if n == 0 && c.reason == CaptureReason::Crash && c.signal == SIGTRAP {
                lookup = lookup.wrapping_sub(1);
            }
            frames.extend(self.symbolise(a.address(), lookup));
        }
        if note.is_some() && !self.unusable.is_empty() {
            let why: Vec<String> = self
                .unusable
                .iter()
                .filter(|(i, _)| {
                    // Only modules the stack went through.
                    let m = &self.modules[**i];
                    frames.iter().any(|f| (m.start..m.end).contains(&f.address))
                })
                .map(|(i, w)| format!("{}: {w}", self.modules[*i].path))
                .collect();
            if !why.is_empty() {
                note = note.map(|n| format!("{n} ({})", why.join("; ")));
            }
        }
        (frames, note)
    }

    /// The frames at `address` (`lookup`: the address to look up: a return address minus
    /// one, so a call at a function's end is not given to the next function).
    fn symbolise(&mut self, address: u64, lookup: u64) -> Vec<Frame> {
        let Some(i) = self
            .modules
            .iter()
            .position(|m| (m.start..m.end).contains(&lookup))
        else {
            return vec![Frame {
                address,
                module: None,
                offset: address,
                function: None,
                file: None,
                line: None,
                inlined: false,
            }];
        };
        let m = &self.modules[i];
        let svma = lookup.wrapping_sub(m.bias);
        let base = Frame {
            address,
            module: Some(
                Path::new(&m.path)
                    .file_name()
                    .map_or_else(|| m.path.clone(), |n| n.to_string_lossy().into_owned()),
            ),
            offset: address.wrapping_sub(m.bias),
            function: None,
            file: None,
            line: None,
            inlined: false,
        };
        let usable = !self.unusable.contains_key(&i);
        let loader = self
            .symbols
            .entry(i)
            .or_insert_with(|| if usable { symboliser(m) } else { None })
            .as_ref();
        let Some(loader) = loader else {
            return vec![base];
        };
        let mut out = Vec::new();
        if let Ok(mut it) = loader.find_frames(svma) {
            while let Ok(Some(f)) = it.next() {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|n| n.demangle().ok().map(|d| d.into_owned()));
                let (file, line) = f
                    .location
                    .as_ref()
                    .map_or((None, None), |l| (l.file.map(str::to_string), l.line));
                out.push(Frame {
                    function,
                    file,
                    line,
                    inlined: true,
                    ..base.clone()
                });
            }
        }
        if let Some(last) = out.last_mut() {
            last.inlined = false;
        }
        if out.iter().all(|f| f.function.is_none()) {
            // No DWARF for it: the symbol table still names the function.
            let name = loader
                .find_symbol(svma)
                .map(|n| addr2line::demangle_auto(n.into(), None).into_owned());
            let line = out.first().and_then(|f| f.line);
            let file = out.first().and_then(|f| f.file.clone());
            return vec![Frame {
                function: name,
                file,
                line,
                ..base
            }];
        }
        out
    }
}

/// Opens a module's file, checks its build-id against the recorded one.
fn open_module(m: &LoadedModule) -> Result<Arc<Vec<u8>>, String> {
    // The path comes from the dump: never read a device, a pipe or something huge.
    let meta = std::fs::metadata(&m.path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_MODULE_BYTES {
        return Err(format!("larger than {} GiB", MAX_MODULE_BYTES >> 30));
    }
    let map = std::fs::read(&m.path).map_err(|e| format!("cannot read: {e}"))?;
    let obj = object::File::parse(&*map).map_err(|e| format!("not an object file: {e}"))?;
    if !m.build_id.is_empty() {
        let found = obj
            .build_id()
            .ok()
            .flatten()
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>());
        if found.as_deref() != Some(m.build_id.as_str()) {
            return Err("a different build (build-id differs) is at this path now".into());
        }
    }
    Ok(Arc::new(map))
}

/// A framehop module for `m`, from the unwind sections of its file.
fn unwind_module(m: &LoadedModule) -> Result<Module<Section>, String> {
    let map = open_module(m)?;
    let obj = object::File::parse(&**map).map_err(|e| e.to_string())?;
    let section = |name: &str| -> Option<(Range<u64>, Section)> {
        let s = obj.section_by_name(name)?;
        let (off, len) = s.file_range()?;
        Some((
            s.address()..s.address() + s.size(),
            Section {
                map: map.clone(),
                range: off as usize..(off + len) as usize,
            },
        ))
    };
    let split = |s: Option<(Range<u64>, Section)>| match s {
        Some((r, d)) => (Some(r), Some(d)),
        None => (None, None),
    };
    let (text_svma, text) = split(section(".text"));
    let (eh_frame_svma, eh_frame) = split(section(".eh_frame"));
    let (eh_frame_hdr_svma, eh_frame_hdr) = split(section(".eh_frame_hdr"));
    let got_svma = obj
        .section_by_name(".got")
        .map(|s| s.address()..s.address() + s.size());
    let debug_frame = section(".debug_frame").map(|(_, d)| d);
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma,
        text,
        stubs_svma: None,
        stub_helper_svma: None,
        got_svma,
        unwind_info: None,
        eh_frame_svma,
        eh_frame,
        eh_frame_hdr_svma,
        eh_frame_hdr,
        debug_frame,
        text_segment_svma: None,
        text_segment: None,
    };
    Ok(Module::new(m.path.clone(), m.start..m.end, m.bias, info))
}

/// A symboliser for `m`: its separate debug file when there is one, else the module itself.
fn symboliser(m: &LoadedModule) -> Option<addr2line::Loader> {
    let map = open_module(m).ok()?;
    let obj = object::File::parse(&**map).ok()?;
    let has_dwarf = obj.section_by_name(".debug_info").is_some();
    if !has_dwarf {
        for candidate in debug_file_candidates(m, &obj) {
            if candidate.is_file() {
                if let Ok(l) = addr2line::Loader::new(&candidate) {
                    return Some(l);
                }
            }
        }
    }
    addr2line::Loader::new(&m.path).ok()
}

/// Where separate debug info for `m` may be: by build-id, then by `.gnu_debuglink` name
/// next to the module, in its `.debug` directory, and under `/usr/lib/debug`.
fn debug_file_candidates(m: &LoadedModule, obj: &object::File<'_>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if m.build_id.len() > 2 {
        out.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &m.build_id[..2],
            &m.build_id[2..]
        )));
    }
    let dir = Path::new(&m.path).parent().unwrap_or(Path::new("/"));
    if let Ok(Some((name, _crc))) = obj.gnu_debuglink() {
        let name = String::from_utf8_lossy(name).into_owned();
        out.push(dir.join(&name));
        out.push(dir.join(".debug").join(&name));
        out.push(
            Path::new("/usr/lib/debug")
                .join(dir.strip_prefix("/").unwrap_or(dir))
                .join(&name),
        );
    }
    out
}

/// One line telling how to get files and lines, when the stacks name functions of the
/// recorded executable but no file or line for any of them: it was built without debug info
/// (Cargo's default release profile). `None` when there is nothing to say.
pub fn lines_hint(rec: &Recording, stacks: &[ThreadStack]) -> Option<String> {
    let exe = Path::new(&rec.process.exe).file_name()?.to_string_lossy();
    let mut exe_frames = stacks
        .iter()
        .flat_map(|t| &t.frames)
        .filter(|f| f.module.as_deref() == Some(&*exe))
        .peekable();
    exe_frames.peek()?;
    if exe_frames.any(|f| f.line.is_some()) {
        return None;
    }
    Some(format!(
        "no file or line for {exe}'s frames: it was built without debug info. For lines, set \
         `debug = \"line-tables-only\"` under `[profile.release]` in its Cargo.toml and rebuild"
    ))
}

/// The stacks as text, as `info` and `cat` print them: a headline per thread, then its
/// frames, numbered, innermost first.
pub fn render(stacks: &[ThreadStack]) -> String {
    let mut s = String::new();
    for t in stacks {
        s.push_str(&format!("  {}\n", t.headline()));
        for (n, f) in t.frames.iter().enumerate() {
            s.push_str(&format!("    #{n:<3} {}\n", f.describe()));
        }
        if let Some(note) = &t.note {
            s.push_str(&format!("    ({note})\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// This test binary as a module, as the recorder would list it (a PIE: its load bias is
    /// unknown here, so a made-up one; what matters is that lookups stay safe).
    fn this_binary() -> LoadedModule {
        LoadedModule {
            start: 0x5555_0000_0000,
            end: 0x5555_1000_0000,
            bias: 0x5555_0000_0000,
            build_id: String::new(),
            path: std::env::current_exe().unwrap().display().to_string(),
        }
    }

    fn capture(regs: Vec<u64>, stack: Vec<u8>) -> StackCapture {
        StackCapture {
            tid: 1,
            name: "t".into(),
            reason: CaptureReason::Stall,
            outcome: CaptureOutcome::Captured,
            signal: 0,
            ticks: 1,
            arch: flightrec_format::layout::stacks::ARCH_X86_64,
            regs,
            stack_start: 0x7fff_0000_0000,
            stack,
        }
    }

    #[test]
    fn a_hostile_module_path_is_not_read() {
        let mut rec =
            flightrec_format::decode(&flightrec_format::testing::sample_image(1)).unwrap();
        let mut zero = this_binary();
        zero.path = "/dev/zero".into();
        rec.modules = vec![zero];
        let mut regs = vec![0u64; 23];
        regs[flightrec_format::layout::stacks::X86_64_RIP] = 0x5555_0000_0010;
        rec.stacks = vec![(Some(1), capture(regs, vec![0; 64]))];
        let s = stacks(&rec);
        assert_eq!(s[0].frames[0].describe(), "zero+0x10");
    }

    #[test]
    fn missing_and_rebuilt_modules_give_module_and_offset() {
        let mut rec =
            flightrec_format::decode(&flightrec_format::testing::sample_image(1)).unwrap();
        let mut gone = this_binary();
        gone.path = "/nonexistent/flightrec-test-module".into();
        let mut rebuilt = this_binary();
        rebuilt.start = 0x6000_0000_0000;
        rebuilt.end = 0x6000_1000_0000;
        rebuilt.bias = 0x6000_0000_0000;
        rebuilt.build_id = "00112233".into();
        rec.modules = vec![gone, rebuilt];
        let mut regs = vec![0u64; 23];
        regs[flightrec_format::layout::stacks::X86_64_RIP] = 0x5555_0000_1234;
        regs[flightrec_format::layout::stacks::X86_64_RSP] = 0x7fff_0000_0000;
        rec.stacks = vec![(Some(1), capture(regs.clone(), vec![0; 64]))];
        let s = stacks(&rec);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].frames[0].describe(), "flightrec-test-module+0x1234");
        regs[flightrec_format::layout::stacks::X86_64_RIP] = 0x6000_0000_0042;
        rec.stacks = vec![(Some(1), capture(regs, vec![0; 64]))];
        let s = stacks(&rec);
        // The file at the path is another build: not trusted for names.
        assert!(s[0].frames[0].function.is_none(), "{:?}", s[0].frames);
        assert!(s[0].frames[0].describe().ends_with("+0x42"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Garbage registers and stack bytes against a real module unwind and symbolise
        /// without panicking, within the frame bound.
        #[test]
        fn garbage_captures_never_panic(
            regs in proptest::collection::vec(any::<u64>(), 0..30),
            stack in proptest::collection::vec(any::<u8>(), 0..4096),
            pc_in_module in any::<bool>(),
        ) {
            let mut rec = flightrec_format::decode(&flightrec_format::testing::sample_image(1)).unwrap();
            rec.modules = vec![this_binary()];
            let mut regs = regs;
            if pc_in_module && regs.len() > flightrec_format::layout::stacks::X86_64_RIP {
                regs[flightrec_format::layout::stacks::X86_64_RIP] =
                    0x5555_0000_0000 + regs[0] % 0x100_0000;
            }
            rec.stacks = vec![(None, capture(regs, stack))];
            let s = stacks(&rec);
            prop_assert_eq!(s.len(), 1);
            prop_assert!(s[0].frames.len() <= MAX_FRAMES * 64);
            let _ = render(&s);
        }
    }
}
