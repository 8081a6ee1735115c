//! The trigger block: why an image was taken, in words a person understands.

use crate::layout::{get_u32, get_u64, header, put_u32, put_u64};

/// Why a dump was written (or what is known of how the process ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerReason {
    /// Nothing recorded: a live ring, or a process that died without warning.
    None,
    /// `Recorder::snapshot()` was called.
    Api,
    /// The snapshot signal (SIGUSR1 by default) arrived.
    Signal,
    /// A thread panicked.
    Panic,
    /// A fatal signal (SIGSEGV, SIGABRT, ...) was caught.
    Crash,
    /// The stall watchdog saw threads stop making progress.
    Stall,
    /// The process ended cleanly and was asked to keep its recording (`FLIGHTREC_KEEP=1`,
    /// `Builder::keep_on_exit`): a dump of a run that went well, for `flightrec check`.
    Exit,
    /// A code this reader does not know.
    Unknown(u32),
}

impl TriggerReason {
    pub fn code(self) -> u32 {
        match self {
            TriggerReason::None => 0,
            TriggerReason::Api => 1,
            TriggerReason::Signal => 2,
            TriggerReason::Panic => 3,
            TriggerReason::Crash => 4,
            TriggerReason::Stall => 5,
            TriggerReason::Exit => 6,
            TriggerReason::Unknown(c) => c,
        }
    }
    pub fn from_code(c: u32) -> TriggerReason {
        match c {
            0 => TriggerReason::None,
            1 => TriggerReason::Api,
            2 => TriggerReason::Signal,
            3 => TriggerReason::Panic,
            4 => TriggerReason::Crash,
            5 => TriggerReason::Stall,
            6 => TriggerReason::Exit,
            c => TriggerReason::Unknown(c),
        }
    }
    /// The reason a [`TriggerReason::slug`] names (`Unknown(0)` for a word it never says).
    pub fn from_slug(word: &str) -> TriggerReason {
        match word {
            "none" => TriggerReason::None,
            "snapshot" => TriggerReason::Api,
            "signal" => TriggerReason::Signal,
            "panic" => TriggerReason::Panic,
            "crash" => TriggerReason::Crash,
            "stall" => TriggerReason::Stall,
            "exit" => TriggerReason::Exit,
            _ => TriggerReason::Unknown(0),
        }
    }

    /// The word used in dump file names.
    pub fn slug(self) -> &'static str {
        match self {
            TriggerReason::None => "none",
            TriggerReason::Api => "snapshot",
            TriggerReason::Signal => "signal",
            TriggerReason::Panic => "panic",
            TriggerReason::Crash => "crash",
            TriggerReason::Stall => "stall",
            TriggerReason::Exit => "exit",
            TriggerReason::Unknown(_) => "unknown",
        }
    }
}

/// A decoded trigger block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub reason: TriggerReason,
    pub signal: u32,
    pub fault_addr: u64,
    pub tid: u64,
    /// When it happened, ns since the Unix epoch (0 when unknown).
    pub wall_ns: i64,
    pub message: String,
}

impl Trigger {
    /// No trigger: a ring, or a dump taken without one.
    pub fn none() -> Trigger {
        Trigger {
            reason: TriggerReason::None,
            signal: 0,
            fault_addr: 0,
            tid: 0,
            wall_ns: 0,
            message: String::new(),
        }
    }

    /// Reads the trigger block; `to_unix_ns` converts its tick stamp when no wall time was
    /// stored (a signal handler can read ticks but not format time).
    pub fn read(image: &[u8], to_unix_ns: impl Fn(u64) -> i64) -> Trigger {
        let len = (get_u32(image, header::TRIGGER_MSG_LEN).unwrap_or(0) as usize)
            .min(header::TRIGGER_MSG_CAP);
        let msg = image
            .get(header::TRIGGER_MSG..header::TRIGGER_MSG + len)
            .unwrap_or(&[]);
        let wall = get_u64(image, header::TRIGGER_WALL_NS).unwrap_or(0);
        let ticks = get_u64(image, header::TRIGGER_TICKS).unwrap_or(0);
        Trigger {
            reason: TriggerReason::from_code(get_u32(image, header::TRIGGER_REASON).unwrap_or(0)),
            signal: get_u32(image, header::TRIGGER_SIGNAL).unwrap_or(0),
            fault_addr: get_u64(image, header::TRIGGER_FAULT_ADDR).unwrap_or(0),
            tid: get_u64(image, header::TRIGGER_TID).unwrap_or(0),
            wall_ns: if wall != 0 {
                wall.min(i64::MAX as u64) as i64
            } else if ticks != 0 {
                to_unix_ns(ticks)
            } else {
                0
            },
            message: String::from_utf8_lossy(msg).into_owned(),
        }
    }

    /// Writes the block into a header (a dump's copy, or the live ring's).
    pub fn write(&self, b: &mut [u8], ticks: u64) {
        put_u32(b, header::TRIGGER_REASON, self.reason.code());
        put_u32(b, header::TRIGGER_SIGNAL, self.signal);
        put_u64(b, header::TRIGGER_FAULT_ADDR, self.fault_addr);
        put_u64(b, header::TRIGGER_TID, self.tid);
        put_u64(b, header::TRIGGER_TICKS, ticks);
        put_u64(b, header::TRIGGER_WALL_NS, self.wall_ns.max(0) as u64);
        let m = self.message.as_bytes();
        let mut n = m.len().min(header::TRIGGER_MSG_CAP);
        while n > 0 && !self.message.is_char_boundary(n) {
            n -= 1;
        }
        put_u32(b, header::TRIGGER_MSG_LEN, n as u32);
        b[header::TRIGGER_MSG..header::TRIGGER_MSG + n].copy_from_slice(&m[..n]);
    }

    /// One line for people: what happened, where, when. The thread is named once: a
    /// panic's own message already names it (`thread 'worker-1' panicked at …`), so its
    /// tid goes beside that name instead of before the message.
    pub fn describe(&self) -> String {
        if self.reason == TriggerReason::Panic {
            if let Some(rest) = self.message.strip_prefix("thread '") {
                if let Some(end) = rest.find('\'') {
                    let (name, after) = rest.split_at(end);
                    return if self.tid != 0 {
                        format!("thread '{name}' [{}]{}", self.tid, &after[1..])
                    } else {
                        self.message.clone()
                    };
                }
            }
        }
        let mut s = match self.reason {
            TriggerReason::None => "none recorded (a live ring, or the process was killed without warning, e.g. SIGKILL or the OOM killer)".to_string(),
            TriggerReason::Api => "snapshot requested by the application (Recorder::snapshot)".into(),
            TriggerReason::Signal => format!("snapshot requested by signal {}", signal_name(self.signal)),
            TriggerReason::Panic => "a thread panicked".into(),
            TriggerReason::Crash => format!(
                "crashed with {} at address {:#x}",
                signal_name(self.signal),
                self.fault_addr
            ),
            TriggerReason::Stall => "the stall watchdog saw threads stop making progress".into(),
            TriggerReason::Exit => "the recording was kept when it ended cleanly (FLIGHTREC_KEEP)".into(),
            TriggerReason::Unknown(c) => format!("unknown trigger code {c}"),
        };
        if self.tid != 0 {
            s.push_str(&format!(", thread {}", self.tid));
        }
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }
}

/// The name of the event a recorder writes when a trigger arrives while a dump is being
/// copied (target `flightrec`; fields `message`, `trigger` (its description), `reason`,
/// `tid` and `at` (its time, Unix ns)): that trigger went into the dump under way, whose
/// own trigger came first.
pub const TRIGGER_FOLDED: &str = "trigger folded";

/// How the recorded process ended, as far as its ring's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Nothing recorded: still running when the image was taken, or killed without a word
    /// (SIGKILL, the OOM killer, a power loss), or crashed (see the trigger).
    Unrecorded,
    /// It exited cleanly (returned from `main`, called `exit`, or dropped its recorder).
    Closed { wall_ns: i64 },
    /// It received a stop signal (SIGTERM, SIGINT, SIGHUP), which was handed on to the
    /// application or to the default action.
    Stopped { signal: u32, wall_ns: i64 },
}

impl Ending {
    /// Reads the ending from a header; `to_unix_ns` converts the stop signal's tick.
    pub fn read(image: &[u8], to_unix_ns: impl Fn(u64) -> i64) -> Ending {
        let closed = get_u64(image, header::CLOSED_WALL_NS).unwrap_or(0);
        let stop = get_u64(image, header::STOP_SIGNAL).unwrap_or(0);
        let ticks = get_u64(image, header::STOP_TICKS).unwrap_or(0);
        let closed = closed.min(i64::MAX as u64) as i64;
        // Signal numbers are small: anything else in the word is not a recorded stop.
        match ((1..128).contains(&stop), closed) {
            (true, _) => Ending::Stopped {
                signal: stop as u32,
                wall_ns: if ticks != 0 {
                    to_unix_ns(ticks)
                } else {
                    closed
                },
            },
            (false, 0) => Ending::Unrecorded,
            (false, wall_ns) => Ending::Closed { wall_ns },
        }
    }

    /// The word for `info --json`: `unrecorded`, `closed` or `stopped`.
    pub fn slug(self) -> &'static str {
        match self {
            Ending::Unrecorded => "unrecorded",
            Ending::Closed { .. } => "closed",
            Ending::Stopped { .. } => "stopped",
        }
    }

    /// One line for people, knowing what the recording's trigger was: a dump taken from a
    /// running process (a snapshot, a panic, a stall) or kept at a clean exit has no
    /// recorded ending for a reason that is no alarm.
    pub fn describe_with(self, trigger: TriggerReason) -> String {
        match (self, trigger) {
            (
                Ending::Unrecorded,
                TriggerReason::Api
                | TriggerReason::Signal
                | TriggerReason::Panic
                | TriggerReason::Stall,
            ) => "still running when the dump was taken".into(),
            (Ending::Unrecorded, TriggerReason::Exit) => {
                "exited cleanly (the recording kept at its end)".into()
            }
            (Ending::Unrecorded, TriggerReason::Crash) => "died of the crash above".into(),
            _ => self.describe(),
        }
    }

    /// One line for people.
    pub fn describe(self) -> String {
        match self {
            Ending::Unrecorded => {
                "not recorded (still running when read, or killed without warning)".into()
            }
            Ending::Closed { .. } => "exited cleanly".into(),
            Ending::Stopped { signal, .. } => format!(
                "stopped by {} (handed on to the application or the default action)",
                signal_name(signal)
            ),
        }
    }
}

/// A signal's conventional name, for messages.
pub fn signal_name(sig: u32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_trigger(tid: u64, message: &str) -> Trigger {
        Trigger {
            reason: TriggerReason::Panic,
            tid,
            message: message.into(),
            ..Trigger::none()
        }
    }

    #[test]
    fn a_panic_names_its_thread_once() {
        let t = panic_trigger(23469, "thread 'worker-1' panicked at src/a.rs:3:5: boom");
        assert_eq!(
            t.describe(),
            "thread 'worker-1' [23469] panicked at src/a.rs:3:5: boom"
        );
        assert_eq!(t.describe().matches("thread").count(), 1);
        // Without a tid, or a message of another shape, nothing is lost.
        let t = panic_trigger(0, "thread 'w' panicked at x: y");
        assert_eq!(t.describe(), "thread 'w' panicked at x: y");
        let t = panic_trigger(7, "odd");
        assert_eq!(t.describe(), "a thread panicked, thread 7: odd");
    }

    #[test]
    fn the_ending_reads_from_the_header() {
        let mut head = vec![0u8; crate::layout::HEADER_SIZE];
        assert_eq!(Ending::read(&head, |_| 0), Ending::Unrecorded);
        put_u64(&mut head, header::CLOSED_WALL_NS, 5);
        assert_eq!(Ending::read(&head, |_| 0), Ending::Closed { wall_ns: 5 });
        put_u64(&mut head, header::STOP_SIGNAL, 15);
        put_u64(&mut head, header::STOP_TICKS, 3);
        assert_eq!(
            Ending::read(&head, |t| t as i64 * 10),
            Ending::Stopped {
                signal: 15,
                wall_ns: 30
            }
        );
        assert!(Ending::read(&head, |_| 0).describe().contains("SIGTERM"));
    }
}
