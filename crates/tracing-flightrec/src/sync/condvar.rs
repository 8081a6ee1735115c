//! A condition variable that records its waits and notifications, so that a wait nobody
//! will end (a notification sent before anyone waited, and lost) is named from a dump.

use std::panic::Location;
use std::sync::{LockResult, PoisonError};
use std::time::Duration;

use flightrec_format::meta::lock;

use super::{LockMeta, MutexGuard};
use crate::ring::clock;

/// Behaves as `std::sync::Condvar`, with [`super::Mutex`]'s guards. A wait records the
/// mutex's release, the wait (at the `wait` call), and, when it returns, the wake and the
/// mutex's acquisition; `notify_one` and `notify_all` record themselves.
pub struct Condvar {
    meta: LockMeta,
    inner: std::sync::Condvar,
}

impl Default for Condvar {
    #[track_caller]
    fn default() -> Self {
        Condvar::new()
    }
}

impl Condvar {
    /// A new condvar, named after where it is made.
    #[track_caller]
    pub fn new() -> Condvar {
        Condvar {
            meta: LockMeta::new(None, lock::CONDVAR, "Condvar"),
            inner: std::sync::Condvar::new(),
        }
    }

    /// A new condvar with a name, as the dump and the viewer will call it.
    #[track_caller]
    pub fn named(name: impl Into<String>) -> Condvar {
        Condvar {
            meta: LockMeta::new(Some(name.into()), lock::CONDVAR, "Condvar"),
            inner: std::sync::Condvar::new(),
        }
    }

    /// Releases the guard's mutex and waits to be notified, then takes the mutex again.
    #[track_caller]
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let at = Location::caller();
        self.waiting(guard, at, |std_guard| {
            let r = self.inner.wait(std_guard);
            (r.is_err(), r.unwrap_or_else(PoisonError::into_inner))
        })
        .map_or_else(|g| Err(PoisonError::new(g)), Ok)
    }

    /// `wait`, giving up after `timeout`; the flag says whether it timed out.
    #[track_caller]
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, std::sync::WaitTimeoutResult)> {
        let at = Location::caller();
        let mut timed_out = None;
        let r = self.waiting(guard, at, |std_guard| {
            let r = self.inner.wait_timeout(std_guard, timeout);
            let poisoned = r.is_err();
            let (g, t) = r.unwrap_or_else(PoisonError::into_inner);
            timed_out = Some(t);
            (poisoned, g)
        });
        let t = timed_out.expect("the wait ran");
        match r {
            Ok(g) => Ok((g, t)),
            Err(g) => Err(PoisonError::new((g, t))),
        }
    }

    /// `wait` until `condition` is false (checked first, and after each wake).
    #[track_caller]
    pub fn wait_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        let at = Location::caller();
        let mut poisoned = false;
        while condition(&mut *guard) {
            match self.waiting(guard, at, |std_guard| {
                let r = self.inner.wait(std_guard);
                (r.is_err(), r.unwrap_or_else(PoisonError::into_inner))
            }) {
                Ok(g) => guard = g,
                Err(g) => {
                    poisoned = true;
                    guard = g;
                }
            }
        }
        if poisoned {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Wakes one waiter.
    #[track_caller]
    pub fn notify_one(&self) {
        let at = Location::caller();
        self.meta
            .record(lock::op::NOTIFY_ONE, clock::ticks(), None, Some(at));
        self.inner.notify_one();
    }

    /// Wakes every waiter.
    #[track_caller]
    pub fn notify_all(&self) {
        let at = Location::caller();
        self.meta
            .record(lock::op::NOTIFY_ALL, clock::ticks(), None, Some(at));
        self.inner.notify_all();
    }

    /// Records the wait around `wait` (which gets the std guard and gives it back, saying
    /// whether the mutex was poisoned): the mutex released, the wait, the wake, the mutex
    /// taken again. `Err` carries the guard of a poisoned mutex.
    fn waiting<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        at: &'static Location<'static>,
        wait: impl FnOnce(std::sync::MutexGuard<'a, T>) -> (bool, std::sync::MutexGuard<'a, T>),
    ) -> Result<MutexGuard<'a, T>, MutexGuard<'a, T>> {
        let mutex = guard.lock;
        let std_guard = guard
            .inner
            .take()
            .expect("a usable guard holds its std guard");
        let start = clock::ticks();
        // The guard is taken apart: its release is recorded here, not by its drop.
        mutex
            .meta
            .record(lock::op::RELEASED, start, Some(guard.since), None);
        drop(guard);
        self.meta.record(lock::op::COND_WAIT, start, None, Some(at));
        let (poisoned, std_guard) = wait(std_guard);
        let now = clock::ticks();
        self.meta
            .record(lock::op::COND_WOKE, now, Some(start), None);
        // Acquired again as `lock()` records it, at the `wait` call.
        let g = mutex.guard(std_guard, None, at);
        if poisoned {
            Err(g)
        } else {
            Ok(g)
        }
    }
}
