//! What the rules about waits nothing ends (`no_notify`, `no_send`) read, gathered in the
//! replay's one pass over the records: the wait each thread is in when the data ends, each
//! condvar's notifications and each channel's sends.

use std::collections::BTreeMap;

use crate::lock_ops::LockOp;

/// What a thread is blocked in: a lock, a condvar or a receive (`on` is its id).
#[derive(Debug, Clone, Copy)]
pub(super) struct Blocked {
    pub on: u32,
    pub op: LockOp,
    pub record: usize,
}

#[derive(Debug, Default)]
pub(super) struct Waits {
    /// Per thread, the lock, condvar or receive it waits in at the end: a wait begins at
    /// its record and ends at the taking, the waking or the receive.
    pub blocked: BTreeMap<u32, Blocked>,
    /// Per thread, its condvar wait still open at the end (condvar, record): only a waking
    /// ends it (the taking of the mutex that follows a waking does not matter here).
    pub cond_waiting: BTreeMap<u32, (u32, usize)>,
    /// Per condvar, its notifications' records.
    pub notified: BTreeMap<u32, Vec<usize>>,
    /// Per channel, its sends (thread, record).
    pub sends: BTreeMap<u32, Vec<(u32, usize)>>,
}

impl Waits {
    /// Takes record `i`, written by `thread`, saying `op` of lock, condvar or channel `on`.
    pub fn observe(&mut self, i: usize, thread: u32, (on, op): (u32, LockOp)) {
        match op {
            LockOp::Wait { .. } | LockOp::RecvWait => {
                self.blocked.insert(thread, Blocked { on, op, record: i });
            }
            LockOp::CondWait => {
                self.blocked.insert(thread, Blocked { on, op, record: i });
                self.cond_waiting.insert(thread, (on, i));
            }
            LockOp::CondWoke => {
                self.blocked.remove(&thread);
                self.cond_waiting.remove(&thread);
            }
            LockOp::Acquired { .. } | LockOp::Received { .. } => {
                self.blocked.remove(&thread);
            }
            LockOp::Notify { .. } => self.notified.entry(on).or_default().push(i),
            LockOp::Sent => self.sends.entry(on).or_default().push((thread, i)),
            LockOp::Released { .. } => {}
        }
    }
}
