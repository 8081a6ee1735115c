//! The lock-record vocabulary: which records are `tracing_flightrec::sync`'s lock events, what each
//! says, and their words. [`crate::names`] titles lock records with it and
//! [`crate::locks`] replays them; neither needs the other for it.

use flightrec_format::meta::lock;
use flightrec_format::{Callsite, Record, RecordKind, Recording, Value};

/// A recorded lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// Its id in the recording (its callsite).
    pub id: u32,
    pub name: String,
    /// `Mutex`, `RwLock` or `tokio::Mutex`.
    pub kind: String,
    /// Where it was made: `file:line`.
    pub place: Option<String>,
}

/// What one lock event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOp {
    Wait {
        shared: bool,
    },
    Acquired {
        shared: bool,
        waited_ns: u64,
    },
    Released {
        shared: bool,
        held_ns: u64,
    },
    /// A thread began to wait on a condvar.
    CondWait,
    /// Its condvar wait returned.
    CondWoke,
    /// A thread notified a condvar's waiters (one, or `all`).
    Notify {
        all: bool,
    },
    /// A thread found a channel empty and began to wait to receive.
    RecvWait,
    /// It received (after waiting `waited_ns`, 0 when a message was there).
    Received {
        waited_ns: u64,
    },
    /// A thread sent on a channel.
    Sent,
}

/// The lock event `r` is, if it is one (`callsite` is `r`'s callsite): the lock's id and
/// what happened.
pub fn lock_op(callsite: Option<&Callsite>, r: &Record) -> Option<(u32, LockOp)> {
    if r.kind != RecordKind::Event || !callsite.is_some_and(lock::is) {
        return None;
    }
    let get = |i: u8| {
        r.fields
            .iter()
            .find(|f| f.index == i)
            .and_then(|f| match f.value {
                Value::U64(v) => Some(v),
                Value::I64(v) => Some(v as u64),
                _ => None,
            })
    };
    let ns = get(lock::NS).unwrap_or(0);
    let op = match lock::operation(get(lock::OP)?) {
        lock::op::WAIT => LockOp::Wait { shared: false },
        lock::op::WAIT_SHARED => LockOp::Wait { shared: true },
        lock::op::ACQUIRED => LockOp::Acquired {
            shared: false,
            waited_ns: ns,
        },
        lock::op::ACQUIRED_SHARED => LockOp::Acquired {
            shared: true,
            waited_ns: ns,
        },
        lock::op::RELEASED => LockOp::Released {
            shared: false,
            held_ns: ns,
        },
        lock::op::RELEASED_SHARED => LockOp::Released {
            shared: true,
            held_ns: ns,
        },
        lock::op::COND_WAIT => LockOp::CondWait,
        lock::op::COND_WOKE => LockOp::CondWoke,
        lock::op::NOTIFY_ONE => LockOp::Notify { all: false },
        lock::op::NOTIFY_ALL => LockOp::Notify { all: true },
        lock::op::RECV_WAIT => LockOp::RecvWait,
        lock::op::RECEIVED => LockOp::Received { waited_ns: ns },
        lock::op::SENT => LockOp::Sent,
        _ => return None,
    };
    Some((r.callsite, op))
}

/// Where in the code a lock event's `lock()` call is (for a wait or an acquisition): the
/// `lock_site` callsite its `op` field names above the operation (recordings from before
/// sites were recorded have none).
pub fn acquisition_site(r: &Record) -> Option<u32> {
    r.fields
        .iter()
        .find(|f| f.index == lock::OP)
        .and_then(|f| match f.value {
            Value::U64(v) => lock::site(v),
            _ => None,
        })
}

/// Every lock the recording describes, by id.
pub fn locks(rec: &Recording) -> Vec<LockInfo> {
    let mut out: Vec<LockInfo> = rec
        .callsites
        .values()
        .filter(|c| lock::is(c))
        .map(|c| LockInfo {
            id: c.id,
            name: c.name.clone(),
            kind: c.module.clone().unwrap_or_else(|| lock::MUTEX.into()),
            place: c.file.as_ref().map(|f| match c.line {
                Some(l) => format!("{f}:{l}"),
                None => f.clone(),
            }),
        })
        .collect();
    out.sort_by_key(|l| l.id);
    out
}

/// A lock event's title: "waits for `cache`", "took `cache` after 3.2 µs", "let go of `cache`
/// after 1.1 ms"; `label` is the lock's [`crate::Names::lock_label`].
pub fn op_title(label: &str, op: LockOp) -> String {
    let shared = |s: bool| if s { " (shared)" } else { "" };
    match op {
        LockOp::Wait { shared: s } => format!("waits for {label}{}", shared(s)),
        LockOp::Acquired {
            shared: s,
            waited_ns,
        } if waited_ns > 0 => format!(
            "took {label}{} after waiting {}",
            shared(s),
            duration(waited_ns)
        ),
        LockOp::Acquired { shared: s, .. } => format!("took {label}{}", shared(s)),
        LockOp::Released { shared: s, held_ns } => {
            format!("let go of {label}{} after {}", shared(s), duration(held_ns))
        }
        LockOp::CondWait => format!("waits on {label}"),
        LockOp::CondWoke => format!("woke on {label}"),
        LockOp::Notify { all: false } => format!("notified one waiter of {label}"),
        LockOp::Notify { all: true } => format!("notified every waiter of {label}"),
        LockOp::RecvWait => format!("waits to receive on {label}"),
        LockOp::Received { waited_ns } if waited_ns > 0 => {
            format!("received on {label} after waiting {}", duration(waited_ns))
        }
        LockOp::Received { .. } => format!("received on {label}"),
        LockOp::Sent => format!("sent on {label}"),
    }
}

/// A duration in the unit that reads best.
pub fn duration(ns: u64) -> String {
    match ns {
        n if n < 1_000 => format!("{n} ns"),
        n if n < 1_000_000 => format!("{:.1} µs", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1} ms", n as f64 / 1e6),
        n => format!("{:.2} s", n as f64 / 1e9),
    }
}
