//! Channels that record themselves: `std::sync::mpsc` with the same methods, whose sends
//! and blocking receives are written into the ring, so that a receive nothing will ever
//! end (its senders stuck themselves, on a lock the receiver holds, say) is named from a
//! dump.
//!
//! ```
//! let (tx, rx) = tracing_flightrec::sync::mpsc::channel::<u64>();
//! tx.send(7).unwrap();
//! assert_eq!(rx.recv().unwrap(), 7);
//! ```
//!
//! A channel is a callsite of its own, like a lock (`flightrec_format::meta::lock`, kind
//! `Channel`). A send costs one record; a receive that finds a message costs one, one that
//! waits costs two (the wait, at the `recv` call, and the message received).

use std::panic::Location;
use std::sync::mpsc::{self, RecvError, RecvTimeoutError, SendError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use flightrec_format::meta::lock;

use super::LockMeta;
use crate::ring::clock;

/// A new unbounded channel, named after where it is made.
#[track_caller]
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let meta = Arc::new(LockMeta::new(None, lock::CHANNEL, "mpsc"));
    let (tx, rx) = mpsc::channel();
    (
        Sender {
            inner: tx,
            meta: meta.clone(),
        },
        Receiver { inner: rx, meta },
    )
}

/// A new unbounded channel with a name, as the dump and the viewer will call it.
#[track_caller]
pub fn named_channel<T>(name: impl Into<String>) -> (Sender<T>, Receiver<T>) {
    let meta = Arc::new(LockMeta::new(Some(name.into()), lock::CHANNEL, "mpsc"));
    let (tx, rx) = mpsc::channel();
    (
        Sender {
            inner: tx,
            meta: meta.clone(),
        },
        Receiver { inner: rx, meta },
    )
}

/// Behaves as `std::sync::mpsc::Sender`; a send records itself.
pub struct Sender<T> {
    inner: mpsc::Sender<T>,
    meta: Arc<LockMeta>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            inner: self.inner.clone(),
            meta: self.meta.clone(),
        }
    }
}

impl<T> Sender<T> {
    /// Sends `value`; records the send when it was delivered (a receiver still exists).
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let at = Location::caller();
        let now = clock::ticks();
        self.inner.send(value)?;
        // Stamped before the send, so the send comes before its receipt in the recording.
        self.meta.record(lock::op::SENT, now, None, Some(at));
        Ok(())
    }
}

/// Behaves as `std::sync::mpsc::Receiver`; a receive that has to wait records its wait and
/// what ended it.
pub struct Receiver<T> {
    inner: mpsc::Receiver<T>,
    meta: Arc<LockMeta>,
}

impl<T> Receiver<T> {
    /// Waits for a message; `Err` when every sender is gone.
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_at(Location::caller())
    }

    fn recv_at(&self, at: &'static Location<'static>) -> Result<T, RecvError> {
        match self.inner.try_recv() {
            Ok(v) => {
                self.meta
                    .record(lock::op::RECEIVED, clock::ticks(), None, Some(at));
                return Ok(v);
            }
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) => {}
        }
        let start = clock::ticks();
        self.meta.record(lock::op::RECV_WAIT, start, None, Some(at));
        let r = self.inner.recv();
        // Received, or every sender gone: either way the wait ended.
        self.meta
            .record(lock::op::RECEIVED, clock::ticks(), Some(start), Some(at));
        r
    }

    /// `recv`, giving up after `timeout`.
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let at = Location::caller();
        match self.inner.try_recv() {
            Ok(v) => {
                self.meta
                    .record(lock::op::RECEIVED, clock::ticks(), None, Some(at));
                return Ok(v);
            }
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        let start = clock::ticks();
        self.meta.record(lock::op::RECV_WAIT, start, None, Some(at));
        let r = self.inner.recv_timeout(timeout);
        self.meta
            .record(lock::op::RECEIVED, clock::ticks(), Some(start), Some(at));
        r
    }

    /// A message if one is there, never waiting.
    #[track_caller]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let at = Location::caller();
        let v = self.inner.try_recv()?;
        self.meta
            .record(lock::op::RECEIVED, clock::ticks(), None, Some(at));
        Ok(v)
    }

    /// Every message until the senders are gone, each received as by [`Receiver::recv`]
    /// (recorded at the `iter` call).
    #[track_caller]
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let at = Location::caller();
        std::iter::from_fn(move || self.recv_at(at).ok())
    }
}
