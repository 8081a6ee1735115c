//! Where everything lives in a ring file.
//!
//! A ring file (and the decompressed body of a dump, which is a copy of one) is:
//!
//! ```text
//! [ FileHeader: HEADER_SIZE bytes ][ meta log: meta_capacity bytes ][ chunk 0 ][ chunk 1 ] ...
//! ```
//!
//! All integers are little-endian. Fields that live writers update concurrently are
//! 8-byte aligned so the writer can treat them as atomics in place; the offsets below are
//! the single source of truth for both the writer (`flightrec`) and the decoder.

/// First eight bytes of every ring file and of every decompressed dump.
pub const MAGIC: [u8; 8] = *b"FLTREC\0\x01";
/// Bumped on any incompatible change to this module or to `record`.
pub const FORMAT_VERSION: u32 = 3;
/// The first bytes of a zstd frame; a dump starts with these.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Size of the file header region; the meta log starts right after it.
pub const HEADER_SIZE: usize = 4096;
/// Size of the per-chunk header at the start of every chunk.
pub const CHUNK_HEADER_SIZE: usize = 64;
/// Chunks are between these sizes (inclusive) and a multiple of 64 bytes.
pub const MIN_CHUNK_SIZE: usize = 1024;
/// A record's length is a `u16`, so a chunk's payload must fit in one.
pub const MAX_CHUNK_SIZE: usize = 64 * 1024;
/// Largest ring a decoder accepts (and a recorder creates).
pub const MAX_FILE_SIZE: u64 = 1 << 32;

/// Offsets of the file header's fields.
pub mod header {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_SIZE: usize = 12;
    pub const FILE_SIZE: usize = 16;
    pub const CHUNK_SIZE: usize = 24;
    pub const CHUNK_COUNT: usize = 28;
    pub const META_OFFSET: usize = 32;
    pub const META_CAPACITY: usize = 40;
    pub const CHUNKS_OFFSET: usize = 48;
    pub const PID: usize = 56;
    /// `CLOCK_TSC` or `CLOCK_MONOTONIC_NS`.
    pub const CLOCK_KIND: usize = 60;
    /// Clock anchor taken when the recorder started: ticks, CLOCK_MONOTONIC ns and Unix ns
    /// read back to back.
    pub const ANCHOR_TICKS: usize = 64;
    pub const ANCHOR_MONO_NS: usize = 72;
    pub const ANCHOR_WALL_NS: usize = 80;
    /// Ticks per second measured at start-up (f64 bits); a fallback when a file holds no
    /// later anchor to fit against.
    pub const TICKS_PER_SEC: usize = 88;
    /// `FLAG_*` bits.
    pub const FLAGS: usize = 96;

    /// Bytes of the meta log that are complete. Updated with release ordering after the
    /// bytes; its own cache line.
    pub const META_COMMITTED_LEN: usize = 128;
    /// The history on disk (`crate::history`): chunks the recorder's history thread wrote
    /// there, and chunks it left out (its CPU budget spent, or the disk too slow or full
    /// for it to keep up). 0 in rings without history and of older writers. On the meta
    /// log length's line, which writers do not touch on their path.
    pub const HISTORY_ARCHIVED: usize = 136;
    pub const HISTORY_SKIPPED: usize = 144;
    /// In an image read with its history ([`crate::Image::attach_history`]), how many of
    /// its chunks came from the history; 0 in a file.
    pub const HISTORY_ATTACHED: usize = 152;
    /// Chunks retired, counted by each writer after it retires one (u64): the history
    /// thread looks at the chunks only when this moved. Written once a chunk, never on a
    /// record's path.
    pub const RETIRED_CHUNKS: usize = 160;
    /// Monotonic chunk-claim counter: chunk `c % chunk_count` is tried by claim `c`, and a
    /// chunk claimed by claim `c` gets sequence number `c + 1`. Its own cache line.
    pub const CLAIM_CURSOR: usize = 192;
    /// Next thread index to hand out. Its own cache line.
    pub const NEXT_THREAD_INDEX: usize = 256;
    /// Next block of `SPAN_ID_BLOCK` span ids to hand out. Its own cache line.
    pub const NEXT_SPAN_BLOCK: usize = 320;

    /// The trigger block: why the last dump of this ring was taken (or why it died).
    pub const TRIGGER_REASON: usize = 384;
    pub const TRIGGER_SIGNAL: usize = 388;
    pub const TRIGGER_FAULT_ADDR: usize = 392;
    pub const TRIGGER_TID: usize = 400;
    pub const TRIGGER_TICKS: usize = 408;
    pub const TRIGGER_WALL_NS: usize = 416;
    pub const TRIGGER_MSG_LEN: usize = 424;
    pub const TRIGGER_MSG: usize = 428;
    pub const TRIGGER_MSG_CAP: usize = 896 - TRIGGER_MSG;

    /// A second clock anchor written into a dump when it is taken; with the start anchor
    /// it pins the tick rate over the whole recording.
    pub const DUMP_TICKS: usize = 896;
    pub const DUMP_MONO_NS: usize = 904;
    pub const DUMP_WALL_NS: usize = 912;
    /// Chunks the dumper saw recycled under it while copying (their copy was dropped).
    pub const DUMP_CHUNKS_RECYCLED: usize = 920;
    /// Where the stack area starts (see [`super::stacks`]): right after the chunk pool, or 0
    /// when the ring has none (older writers, or stacks turned off).
    pub const STACKS_OFFSET: usize = 928;
    /// How many capture slots the stack area has (u32).
    pub const STACK_SLOTS: usize = 936;
    /// Set to 1 by `flightrec snapshot --stacks` before it signals the process: the next
    /// snapshot captures every thread's stack. The dumper clears it.
    pub const STACKS_WANTED: usize = 944;

    /// The copy gate, while a dumper copies the live ring oldest chunk first: chunks whose
    /// sequence number is at least this value are not yet copied and must not be recycled.
    /// 0 when no copy is under way. Its own cache line. Always 0 in a dump.
    pub const COPY_GATE: usize = 960;
    /// The signal the recorder takes snapshots on: `SNAPSHOT_SIGNAL_RECORDED | signo`, with
    /// signo 0 when it listens for none. 0 in files of older writers (not recorded).
    pub const SNAPSHOT_SIGNAL: usize = 1024;
    /// Unix ns of a clean shutdown (the recorder dropped, or the process exiting through
    /// `exit`); 0 while the process runs, and forever if it died without exiting.
    pub const CLOSED_WALL_NS: usize = 1032;
    /// Where the recorder writes its dumps (they may live apart from the ring): a length
    /// here, the path's bytes at `DUMP_DIR` (at most `DUMP_DIR_CAP`; 0 when not recorded).
    pub const DUMP_DIR_LEN: usize = 1040;
    /// The stop signal (SIGTERM, SIGINT or SIGHUP) the process received, stored by the
    /// recorder's handler before it hands the signal on; 0 when none arrived. With
    /// `STOP_TICKS`, the tick it arrived at.
    pub const STOP_SIGNAL: usize = 1048;
    pub const STOP_TICKS: usize = 1056;
    /// Unix ns at which `flightrec collect --keep-ring` turned this (dead) ring into a dump;
    /// 0 when never collected. A collected ring is never collected again.
    pub const COLLECTED_WALL_NS: usize = 1064;
    /// The recorder's retention (`RingSettings::retain_per_trigger`, `retain_bytes`), so
    /// that whoever collects its ring prunes its service's dumps by its own rule: dumps
    /// kept per trigger (u32; 0 when not recorded), then their byte budget (u64).
    pub const RETAIN_PER_TRIGGER: usize = 1072;
    pub const RETAIN_BYTES: usize = 1080;
    pub const DUMP_DIR: usize = 1088;
    pub const DUMP_DIR_CAP: usize = super::HEADER_SIZE - DUMP_DIR;
}

/// The stack area, after the chunk pool: a module list, then capture slots.
///
/// ```text
/// [ modules: MODULES_SIZE bytes ][ slot 0: SLOT_SIZE bytes ][ slot 1 ] ...
/// ```
///
/// The module list is text, one module per line (`start end bias build-id path`, numbers in
/// hex, `-` for no build-id), its committed length in its first 8 bytes. It is written by
/// ordinary threads (at start, and by a dumper before it captures) and only read by dumps.
///
/// A slot holds one thread's registers and the top of its stack, written by a signal
/// handler on that thread. Its `STATE` word says whose it is: a dumper moves it from `FREE`
/// to `REQUESTED` (naming the thread), the handler from `REQUESTED` (or, for a crash,
/// `FREE`) to `WRITING` and then `DONE`; a dumper that gives up on a thread moves it from
/// `REQUESTED` to `UNANSWERED`, so a late handler writes nothing.
pub mod stacks {
    pub const MODULES_SIZE: usize = 64 << 10;
    /// The module list's committed length (u64); the text follows.
    pub const MODULES_LEN: usize = 0;
    pub const MODULES_TEXT: usize = 8;

    pub const SLOT_HEADER_SIZE: usize = 512;
    /// Bytes of stack a slot holds, from the stack pointer up.
    pub const STACK_CAP: usize = 64 << 10;
    pub const SLOT_SIZE: usize = SLOT_HEADER_SIZE + STACK_CAP;
    /// Most slots a reader accepts.
    pub const MAX_SLOTS: u32 = 1024;

    /// Offsets of a slot's fields, relative to the slot's start.
    pub const STATE: usize = 0;
    pub const TID: usize = 8;
    /// `REASON_*` (u32), then the signal a crash capture ran for (u32).
    pub const REASON: usize = 16;
    pub const SIGNAL: usize = 20;
    /// Tick when the handler ran.
    pub const TICKS: usize = 24;
    /// Address of the first stack byte held (the stack pointer), and how many are held.
    pub const STACK_START: usize = 32;
    pub const STACK_LEN: usize = 40;
    /// `ARCH_*` (u32), then how many registers follow at `REGS` (u32).
    pub const ARCH: usize = 48;
    pub const REG_COUNT: usize = 52;
    /// The registers, 8 bytes each, in the kernel's `ucontext` order for the arch.
    pub const REGS: usize = 64;
    pub const MAX_REGS: usize = (NAME - REGS) / 8;
    /// The thread's name as the kernel has it (16 bytes, NUL-padded).
    pub const NAME: usize = 448;
    pub const NAME_LEN: usize = 16;

    pub const FREE: u64 = 0;
    pub const REQUESTED: u64 = 1;
    pub const WRITING: u64 = 2;
    pub const DONE: u64 = 3;
    pub const UNANSWERED: u64 = 4;

    pub const REASON_CRASH: u32 = 1;
    pub const REASON_STALL: u32 = 2;
    pub const REASON_SNAPSHOT: u32 = 3;

    /// x86-64: 23 registers in `gregs` order (r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx,
    /// rsp, rip, eflags, csgsfs, err, trapno, oldmask, cr2).
    pub const ARCH_X86_64: u32 = 1;
    pub const X86_64_RBP: usize = 10;
    pub const X86_64_RSP: usize = 15;
    pub const X86_64_RIP: usize = 16;

    /// Bytes of a stack area with `slots` slots (0 for none).
    pub const fn area_size(slots: u32) -> u64 {
        if slots == 0 {
            0
        } else {
            (MODULES_SIZE + slots as usize * SLOT_SIZE) as u64
        }
    }
}

/// Set in `header::SNAPSHOT_SIGNAL` by writers that record their snapshot signal.
pub const SNAPSHOT_SIGNAL_RECORDED: u64 = 1 << 32;

/// Value of `header::CLOCK_KIND`: timestamps are x86 TSC ticks.
pub const CLOCK_TSC: u32 = 1;
/// Value of `header::CLOCK_KIND`: timestamps are CLOCK_MONOTONIC nanoseconds.
pub const CLOCK_MONOTONIC_NS: u32 = 2;

/// `header::FLAGS` bit: this image is a dump (a consistent copy), not a live ring.
pub const FLAG_DUMP: u32 = 1;

/// Span ids are handed to threads in blocks of this many, so that creating a span does
/// not touch a shared counter.
pub const SPAN_ID_BLOCK: u64 = 1024;

/// Offsets of a chunk header's fields, relative to the chunk's start.
pub mod chunk {
    /// `state::pack(seq, phase)`.
    pub const STATE: usize = 0;
    /// Bytes of the payload holding complete records. Stored with release ordering after
    /// the record bytes; a reader never looks past it.
    pub const COMMITTED_LEN: usize = 8;
    /// Index of the thread owning the chunk (see the meta log's thread entries).
    pub const THREAD_INDEX: usize = 12;
    pub const OS_TID: usize = 16;
    /// How many records the owning thread had attempted before this chunk's first one.
    pub const THREAD_SEQ_START: usize = 24;
    /// The owning thread's drop count, kept current while it owns the chunk.
    pub const DROPPED_TOTAL: usize = 32;
    /// Tick and CLOCK_MONOTONIC anchor read when the chunk was claimed.
    pub const CLAIM_TICKS: usize = 40;
    pub const CLAIM_MONO_NS: usize = 48;
    /// The owning thread's drop count when it claimed this chunk.
    pub const DROPPED_BEFORE: usize = 56;
}

/// A chunk header's fields as plain values: the one description of the header that the
/// writer's atomic view (`flightrec`'s `ChunkHeader`, checked against `chunk` at compile
/// time), the dumper and the decoder share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkFields {
    pub state: u64,
    pub committed_len: u32,
    pub thread_index: u32,
    pub os_tid: u64,
    pub thread_seq_start: u64,
    pub dropped_total: u64,
    pub claim_ticks: u64,
    pub claim_mono_ns: u64,
    pub dropped_before: u64,
}

impl ChunkFields {
    /// Reads the header at the start of `chunk`; `None` if `chunk` is too short.
    pub fn read(chunk: &[u8]) -> Option<ChunkFields> {
        Some(ChunkFields {
            state: get_u64(chunk, chunk::STATE)?,
            committed_len: get_u32(chunk, chunk::COMMITTED_LEN)?,
            thread_index: get_u32(chunk, chunk::THREAD_INDEX)?,
            os_tid: get_u64(chunk, chunk::OS_TID)?,
            thread_seq_start: get_u64(chunk, chunk::THREAD_SEQ_START)?,
            dropped_total: get_u64(chunk, chunk::DROPPED_TOTAL)?,
            claim_ticks: get_u64(chunk, chunk::CLAIM_TICKS)?,
            claim_mono_ns: get_u64(chunk, chunk::CLAIM_MONO_NS)?,
            dropped_before: get_u64(chunk, chunk::DROPPED_BEFORE)?,
        })
    }

    /// Writes the header at the start of `chunk` (at least `CHUNK_HEADER_SIZE` bytes).
    pub fn write(&self, chunk: &mut [u8]) {
        put_u64(chunk, chunk::STATE, self.state);
        put_u32(chunk, chunk::COMMITTED_LEN, self.committed_len);
        put_u32(chunk, chunk::THREAD_INDEX, self.thread_index);
        put_u64(chunk, chunk::OS_TID, self.os_tid);
        put_u64(chunk, chunk::THREAD_SEQ_START, self.thread_seq_start);
        put_u64(chunk, chunk::DROPPED_TOTAL, self.dropped_total);
        put_u64(chunk, chunk::CLAIM_TICKS, self.claim_ticks);
        put_u64(chunk, chunk::CLAIM_MONO_NS, self.claim_mono_ns);
        put_u64(chunk, chunk::DROPPED_BEFORE, self.dropped_before);
    }
}

/// The chunk state word: a sequence number and a phase in one atomic `u64`.
pub mod state {
    /// Never claimed since the file was created.
    pub const FREE: u64 = 0;
    /// Being (re)initialised by a claimer; readers skip it.
    pub const CLAIMING: u64 = 1;
    /// The current chunk of a live thread; never recycled.
    pub const ACTIVE: u64 = 2;
    /// Holds data of a thread that has moved on; may be recycled.
    pub const RETIRED: u64 = 3;

    pub const fn pack(seq: u64, phase: u64) -> u64 {
        (seq << 2) | phase
    }
    pub const fn seq(word: u64) -> u64 {
        word >> 2
    }
    pub const fn phase(word: u64) -> u64 {
        word & 3
    }
}

/// Reads a little-endian `u16` at `off`, if in bounds.
pub fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
/// Reads a little-endian `u32` at `off`, if in bounds.
pub fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}
/// Reads a little-endian `u64` at `off`, if in bounds.
pub fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}
/// Writes a little-endian `u32` at `off`. Panics when out of bounds (writer-side only).
pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
/// Writes a little-endian `u64` at `off`. Panics when out of bounds (writer-side only).
pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// What a running recorder wrote into its ring's header about itself, for the tools that
/// act on a live or dead process (`flightrec snapshot`, `collect`, `watch`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RingSettings {
    /// The snapshot signal: `None` when the writer did not record it (an older version),
    /// `Some(None)` when it listens for none.
    pub snapshot_signal: Option<Option<i32>>,
    /// Unix ns of a clean shutdown; `None` while running or after a crash or a kill.
    pub closed_wall_ns: Option<u64>,
    /// Where dumps go, when recorded.
    pub dump_dir: Option<std::path::PathBuf>,
    /// The stop signal (SIGTERM, SIGINT, SIGHUP) the process received, if any: it was
    /// told to stop, so its ring is no evidence of a death.
    pub stop_signal: Option<u32>,
    /// Unix ns at which `flightrec collect --keep-ring` made a dump of this ring.
    pub collected_wall_ns: Option<u64>,
    /// The recorder's retention: dumps kept per trigger, and their byte budget.
    pub retain: Option<(u32, u64)>,
}

impl RingSettings {
    /// The process ended as asked (a clean exit, or a stop signal), or its ring was already
    /// turned into a dump: a dead owner's ring is then removed quietly, not collected.
    pub fn needs_no_dump(&self) -> bool {
        self.closed_wall_ns.is_some()
            || self.stop_signal.is_some()
            || self.collected_wall_ns.is_some()
    }
}

impl RingSettings {
    /// Reads the settings from a header (the first `HEADER_SIZE` bytes of a ring or image).
    /// Anything out of range reads as not recorded.
    pub fn parse(head: &[u8]) -> RingSettings {
        let sig = get_u64(head, header::SNAPSHOT_SIGNAL).unwrap_or(0);
        let snapshot_signal = (sig & SNAPSHOT_SIGNAL_RECORDED != 0).then(|| {
            let n = (sig & 0xffff_ffff) as i32;
            (n != 0).then_some(n)
        });
        let closed = get_u64(head, header::CLOSED_WALL_NS).unwrap_or(0);
        let len = get_u64(head, header::DUMP_DIR_LEN).unwrap_or(0) as usize;
        let dump_dir = (len > 0 && len <= header::DUMP_DIR_CAP)
            .then(|| head.get(header::DUMP_DIR..header::DUMP_DIR + len))
            .flatten()
            .map(|b| {
                use std::os::unix::ffi::OsStrExt;
                std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b))
            });
        let stop = get_u64(head, header::STOP_SIGNAL).unwrap_or(0);
        RingSettings {
            snapshot_signal,
            closed_wall_ns: (closed != 0).then_some(closed),
            dump_dir,
            stop_signal: (stop != 0 && stop < 128).then_some(stop as u32),
            collected_wall_ns: get_u64(head, header::COLLECTED_WALL_NS).filter(|&n| n != 0),
            retain: get_u32(head, header::RETAIN_PER_TRIGGER)
                .filter(|&n| n != 0)
                .zip(get_u64(head, header::RETAIN_BYTES)),
        }
    }
}

/// Geometry of a ring: how a file of a given capacity is divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Everything: header, meta log, chunk pool and stack area.
    pub file_size: u64,
    pub meta_offset: u64,
    pub meta_capacity: u64,
    pub chunks_offset: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    /// Capture slots in the stack area after the chunk pool (0: no stack area).
    pub stack_slots: u32,
}

impl Geometry {
    /// Divides `capacity` bytes: 1/32 for the meta log (at least 64 KiB, at most 4 MiB),
    /// the rest in chunks of `capacity / 1024` clamped to 4..=64 KiB, so a default 16 MiB
    /// ring has about a thousand 16 KiB chunks: enough for thread pools of hundreds.
    pub fn for_capacity(capacity: u64, chunk_size: Option<u32>) -> Option<Geometry> {
        if capacity > MAX_FILE_SIZE {
            return None;
        }
        let meta_capacity = (capacity / 32).clamp(64 << 10, 4 << 20);
        let chunk_size = match chunk_size {
            Some(c) => c as u64,
            None => (capacity / 1024).clamp(4 << 10, 64 << 10),
        };
        let chunk_size = chunk_size / 64 * 64;
        if !(MIN_CHUNK_SIZE as u64..=MAX_CHUNK_SIZE as u64).contains(&chunk_size) {
            return None;
        }
        let chunks_offset = HEADER_SIZE as u64 + meta_capacity;
        let chunk_count = capacity.checked_sub(chunks_offset)? / chunk_size;
        if chunk_count < 2 || chunk_count > u32::MAX as u64 {
            return None;
        }
        Some(Geometry {
            file_size: chunks_offset + chunk_count * chunk_size,
            meta_offset: HEADER_SIZE as u64,
            meta_capacity,
            chunks_offset,
            chunk_size: chunk_size as u32,
            chunk_count: chunk_count as u32,
            stack_slots: 0,
        })
    }

    /// The same ring with a stack area of `slots` capture slots after the chunk pool.
    pub fn with_stack_slots(mut self, slots: u32) -> Geometry {
        let slots = slots.min(stacks::MAX_SLOTS);
        self.file_size = self.stacks_offset() + stacks::area_size(slots);
        self.stack_slots = slots;
        self
    }

    /// Where the stack area starts: the end of the chunk pool.
    pub fn stacks_offset(&self) -> u64 {
        self.chunks_offset + self.chunk_count as u64 * self.chunk_size as u64
    }

    /// Byte offset of chunk `i`.
    pub fn chunk_offset(&self, i: u32) -> u64 {
        self.chunks_offset + i as u64 * self.chunk_size as u64
    }

    /// Writes the static part of a fresh header into `b` (at least `HEADER_SIZE` bytes).
    pub fn write_header(&self, b: &mut [u8], pid: u32, clock: &ClockAnchor) {
        b[..HEADER_SIZE].fill(0);
        b[header::MAGIC..header::MAGIC + 8].copy_from_slice(&MAGIC);
        put_u32(b, header::VERSION, FORMAT_VERSION);
        put_u32(b, header::HEADER_SIZE, HEADER_SIZE as u32);
        put_u64(b, header::FILE_SIZE, self.file_size);
        put_u32(b, header::CHUNK_SIZE, self.chunk_size);
        put_u32(b, header::CHUNK_COUNT, self.chunk_count);
        put_u64(b, header::META_OFFSET, self.meta_offset);
        put_u64(b, header::META_CAPACITY, self.meta_capacity);
        put_u64(b, header::CHUNKS_OFFSET, self.chunks_offset);
        put_u32(b, header::PID, pid);
        put_u32(b, header::CLOCK_KIND, clock.kind);
        put_u64(b, header::ANCHOR_TICKS, clock.ticks);
        put_u64(b, header::ANCHOR_MONO_NS, clock.mono_ns);
        put_u64(b, header::ANCHOR_WALL_NS, clock.wall_ns);
        put_u64(b, header::TICKS_PER_SEC, clock.ticks_per_sec.to_bits());
        if self.stack_slots > 0 {
            put_u64(b, header::STACKS_OFFSET, self.stacks_offset());
            put_u32(b, header::STACK_SLOTS, self.stack_slots);
        }
        // The first span block is reserved so that span id 0 can mean "none".
        put_u64(b, header::NEXT_SPAN_BLOCK, 1);
    }
}

/// A clock reading taken back to back on the tick source, CLOCK_MONOTONIC and the wall clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockAnchor {
    pub kind: u32,
    pub ticks: u64,
    pub mono_ns: u64,
    pub wall_ns: u64,
    pub ticks_per_sec: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_geometry_has_a_thousand_chunks() {
        let g = Geometry::for_capacity(16 << 20, None).unwrap();
        assert_eq!(g.chunk_size, 16 << 10);
        assert!(g.chunk_count > 990, "{g:?}");
        assert!(g.file_size <= 16 << 20);
        assert_eq!(g.chunk_offset(0), g.chunks_offset);
    }

    #[test]
    fn tiny_or_huge_capacities_are_refused() {
        assert!(Geometry::for_capacity(4096, None).is_none());
        assert!(Geometry::for_capacity(MAX_FILE_SIZE + 1, None).is_none());
        assert!(Geometry::for_capacity(1 << 20, Some(512)).is_none());
    }

    #[test]
    fn state_word_round_trips() {
        let w = state::pack(12345, state::RETIRED);
        assert_eq!(state::seq(w), 12345);
        assert_eq!(state::phase(w), state::RETIRED);
    }

    #[test]
    fn chunk_fields_write_where_the_offsets_say_and_read_back() {
        let f = ChunkFields {
            state: 1,
            committed_len: 2,
            thread_index: 3,
            os_tid: 4,
            thread_seq_start: 5,
            dropped_total: 6,
            claim_ticks: 7,
            claim_mono_ns: 8,
            dropped_before: 9,
        };
        let mut b = vec![0u8; CHUNK_HEADER_SIZE];
        f.write(&mut b);
        assert_eq!(ChunkFields::read(&b), Some(f));
        assert_eq!(get_u64(&b, chunk::DROPPED_BEFORE), Some(9));
        assert_eq!(get_u32(&b, chunk::THREAD_INDEX), Some(3));
        assert_eq!(ChunkFields::read(&b[..CHUNK_HEADER_SIZE - 1]), None);
    }
}
