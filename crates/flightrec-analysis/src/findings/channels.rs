//! The channel rule, `no_send`: a receive nothing will end, because every thread that sent
//! on the channel is blocked itself.

use crate::lock_ops::{duration, LockOp};
use crate::locks::LockState;

use super::waits::Waits;
use super::{Context, Finding, Kind, Severity, MAX_EVIDENCE, MAX_PER_KIND};

impl Context<'_> {
    /// Threads waiting to receive at the end of the data, inside a span, for longer than
    /// `threshold`, with nothing sent on the channel since their wait began, and whose
    /// senders (the threads that sent on it) are all blocked at the end themselves, on a
    /// lock, a condvar or a channel. A channel whose senders are unknown (nothing sent in
    /// the recording) or one of which still runs gives no finding: it may yet send.
    pub(super) fn unsent_receives(
        &self,
        locks: &LockState,
        waits: &Waits,
        end: i64,
        threshold: u64,
    ) -> Vec<Finding> {
        let (blocked, sends) = (&waits.blocked, &waits.sends);
        let mut out = Vec::new();
        for (&thread, b) in blocked {
            if b.op != LockOp::RecvWait {
                continue;
            }
            let wait = &self.rec.records[b.record];
            let waited = end.saturating_sub(wait.ts).max(0) as u64;
            let channel_sends = sends.get(&b.on).map_or(&[][..], Vec::as_slice);
            let sent_after = channel_sends.iter().any(|&(_, s)| s > b.record);
            if sent_after || wait.spans.is_empty() || waited <= threshold {
                continue;
            }
            // Each sender's last send, in order of first send; the receiver is not one.
            let mut senders: Vec<(u32, usize)> = Vec::new();
            for &(t, s) in channel_sends.iter().filter(|&&(t, _)| t != thread) {
                match senders.iter_mut().find(|(u, _)| *u == t) {
                    Some(last) => last.1 = s,
                    None => senders.push((t, s)),
                }
            }
            if senders.is_empty() || senders.iter().any(|(t, _)| !blocked.contains_key(t)) {
                continue;
            }
            let label = self.names.thread_label(thread);
            let channel = self.names.lock_label(b.on);
            let how: Vec<String> = senders
                .iter()
                .map(|(t, _)| {
                    let s = blocked[t];
                    let what = match s.op {
                        LockOp::RecvWait => "waits to receive on",
                        LockOp::CondWait => "waits on",
                        _ => "waits for",
                    };
                    // A lock's holders when the data ends: who keeps the sender waiting.
                    let holders: Vec<String> = locks
                        .holds
                        .iter()
                        .filter(|h| h.lock == s.on)
                        .map(|h| self.names.thread_label(h.thread))
                        .collect();
                    let held = if holders.is_empty() {
                        String::new()
                    } else {
                        format!(", held by {}", holders.join(" and "))
                    };
                    format!(
                        "{} {what} {}{held}",
                        self.names.thread_label(*t),
                        self.names.lock_label(s.on)
                    )
                })
                .collect();
            let mut f = self.finding(
                Kind::NoSend,
                Severity::Error,
                format!(
                    "{label} waits to receive on {channel} for the last {} of the recording, \
                     and every thread that sent on it is blocked: {}",
                    duration(waited),
                    how.join("; ")
                ),
            );
            f.threads.push(label);
            f.locks.push(channel.clone());
            f.records
                .extend(self.evidence(b.record, "began to wait, and nothing was sent after"));
            for (t, last_send) in senders.iter().take((MAX_EVIDENCE - 1) / 2) {
                let s = blocked[t];
                f.threads.push(self.names.thread_label(*t));
                let held = self.names.lock_label(s.on);
                if !f.locks.contains(&held) {
                    f.locks.push(held);
                }
                f.records
                    .extend(self.evidence(*last_send, format!("its last send on {channel}")));
                f.records
                    .extend(self.evidence(s.record, "blocked here, to the end"));
            }
            f.records.sort_by_key(|e| (e.ts, e.record));
            out.push(f);
            if out.len() >= MAX_PER_KIND {
                break;
            }
        }
        out
    }
}
