//! Locks that record themselves: drop-in replacements for `std::sync::Mutex` and `RwLock`
//! (same methods, same guards' behaviour, same poisoning) that write into the ring, at event
//! cost, when a thread begins to wait for one, when it gets it (and how long it waited), and
//! when it lets it go (and how long it held it). From a dump alone, the reading layer then
//! says who held what and who waited for what, and names a deadlock.
//!
//! ```
//! let cache = tracing_flightrec::sync::Mutex::named("cache", std::collections::HashMap::<u64, u64>::new());
//! cache.lock().unwrap().insert(1, 2);
//! ```
//!
//! A lock is a callsite of its own in each recording (see `flightrec_format::meta::lock`),
//! registered the first time it is used there. Its events go to the ring its thread records
//! into; a thread that has recorded nothing yet records into the recorder whose layer is in
//! its current subscriber, and a thread whose subscriber has none records no lock events.
//! An uncontended lock and unlock costs two records: the acquisition and the release.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LockResult, PoisonError, TryLockError, TryLockResult};

use flightrec_format::meta::lock;
use flightrec_format::record::{Encoder, RecordKind, PARENT_CONTEXTUAL};
use flightrec_format::{Callsite, Level};

use crate::layer::FlightrecLayer;
use crate::ring::writer::with_current_writer;
use crate::ring::{clock, Ring};

mod condvar;
pub mod mpsc;
pub use condvar::Condvar;

/// The ring a thread that has not recorded yet records its lock events into: the one of
/// the flightrec layer in the thread's current subscriber. A thread whose subscriber has
/// none (no subscriber, or one that does not record) records no lock events: never into
/// some other recorder of the process, which would mix one recorder's threads into
/// another's recording (a test suite builds many).
fn ring_of_current_subscriber() -> Option<Arc<Ring>> {
    tracing_core::dispatcher::get_default(|d| {
        d.downcast_ref::<FlightrecLayer>()
            .map(|layer| layer.shared.ring.clone())
    })
}

/// What a lock knows of itself, and its callsite in the ring it last recorded into.
struct LockMeta {
    /// The name given, or none for the default (its type and where it was made).
    name: Option<String>,
    kind: &'static str,
    type_name: &'static str,
    at: &'static Location<'static>,
    /// `Ring::generation << 32 | callsite`, or 0 before the first use.
    registered: AtomicU64,
}

impl LockMeta {
    #[track_caller]
    fn new(name: Option<String>, kind: &'static str, type_name: &'static str) -> LockMeta {
        LockMeta {
            name,
            kind,
            type_name,
            at: Location::caller(),
            registered: AtomicU64::new(0),
        }
    }

    /// This lock's callsite in `ring`, registering it there on first use.
    #[inline]
    fn callsite(&self, ring: &Ring) -> u32 {
        let r = self.registered.load(Ordering::Relaxed);
        if r >> 32 == u64::from(ring.generation) {
            return r as u32;
        }
        self.register(ring)
    }

    #[cold]
    fn register(&self, ring: &Ring) -> u32 {
        let seen = self.registered.load(Ordering::Acquire);
        // Another thread may have registered it since our fast path looked: use its id. (A
        // compare-exchange from this value would succeed and register the lock twice,
        // splitting its events between two callsites.)
        if seen >> 32 == u64::from(ring.generation) {
            return seen as u32;
        }
        let id = ring.next_callsite.fetch_add(1, Ordering::Relaxed);
        let mine = u64::from(ring.generation) << 32 | u64::from(id);
        // One id per lock and ring, even when threads first use it at once: the first to
        // publish its id wins, the others use it (their reserved id stays unused).
        if let Err(now) =
            self.registered
                .compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Acquire)
        {
            if now >> 32 == u64::from(ring.generation) {
                return now as u32;
            }
            // Another ring's registration raced ours: ours stands for this event only.
        }
        let name = match &self.name {
            Some(n) => n.clone(),
            None => format!("{}<{}>", self.kind, self.type_name),
        };
        let cs = Callsite {
            id,
            is_span: false,
            level: Level::Trace,
            target: lock::TARGET.into(),
            name,
            file: Some(self.at.file().into()),
            line: Some(self.at.line()),
            module: Some(self.kind.into()),
            fields: lock::FIELDS.iter().map(|f| f.to_string()).collect(),
        };
        let mut m = flightrec_format::meta::MetaBuilder::default();
        m.callsite(&cs);
        ring.append_meta(&m.bytes);
        id
    }

    /// Writes one event of this lock: `op`, a duration since `since` (ticks) if given, and
    /// for an acquisition, where in the code it was taken.
    #[inline]
    fn record(
        &self,
        op: u64,
        now: u64,
        since: Option<u64>,
        at: Option<&'static Location<'static>>,
    ) {
        with_current_writer(ring_of_current_subscriber, |w| {
            let callsite = self.callsite(&w.ring);
            let ns = since.map(|s| (now.wrapping_sub(s) as f64 * w.ring.ns_per_tick) as u64);
            let site = at.map_or(0, |at| crate::callsites::site_id(at, &w.ring));
            w.write(|tail| {
                let mut e = Encoder::new(tail, RecordKind::Event, callsite, now);
                e.id(PARENT_CONTEXTUAL);
                e.field_u64(lock::OP as usize, op | u64::from(site) << lock::OP_BITS);
                if let Some(ns) = ns {
                    e.field_u64(lock::NS as usize, ns);
                }
                e.finish()
            });
        });
    }
}

/// A mutual exclusion lock that records its waits, acquisitions and releases. Behaves as
/// `std::sync::Mutex`.
pub struct Mutex<T: ?Sized> {
    meta: LockMeta,
    inner: std::sync::Mutex<T>,
}

/// The guard of a [`Mutex`]: the lock is released (and the release recorded) when it drops.
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    lock: &'a Mutex<T>,
    /// When it was acquired, in ticks.
    since: u64,
    /// Always `Some` while the guard is usable: [`Condvar::wait`] takes it out (to hand
    /// std's condvar the std guard) only from a guard it consumes.
    inner: Option<std::sync::MutexGuard<'a, T>>,
}

impl<T> Mutex<T> {
    /// A new lock, named after its type and where it is made.
    #[track_caller]
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            meta: LockMeta::new(None, lock::MUTEX, std::any::type_name::<T>()),
            inner: std::sync::Mutex::new(value),
        }
    }

    /// A new lock with a name, as the dump and the viewer will call it.
    #[track_caller]
    pub fn named(name: impl Into<String>, value: T) -> Mutex<T> {
        Mutex {
            meta: LockMeta::new(Some(name.into()), lock::MUTEX, std::any::type_name::<T>()),
            inner: std::sync::Mutex::new(value),
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> LockResult<T> {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the lock, waiting for it if another thread holds it. The wait, if any, is
    /// recorded as it begins, so a thread stuck here shows as waiting for this lock.
    #[track_caller]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        let at = Location::caller();
        let (inner, waited_from) = match self.inner.try_lock() {
            Ok(g) => (Ok(g), None),
            Err(TryLockError::Poisoned(p)) => (Err(p), None),
            Err(TryLockError::WouldBlock) => {
                let start = clock::ticks();
                self.meta.record(lock::op::WAIT, start, None, Some(at));
                (self.inner.lock(), Some(start))
            }
        };
        self.acquired(inner, waited_from, at)
    }

    /// Acquires the lock if it is free now.
    #[track_caller]
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        let at = Location::caller();
        match self.inner.try_lock() {
            Ok(g) => Ok(self.guard(g, None, at)),
            Err(TryLockError::Poisoned(p)) => Err(TryLockError::Poisoned(PoisonError::new(
                self.guard(p.into_inner(), None, at),
            ))),
            Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
        }
    }

    fn acquired<'a>(
        &'a self,
        inner: LockResult<std::sync::MutexGuard<'a, T>>,
        waited_from: Option<u64>,
        at: &'static Location<'static>,
    ) -> LockResult<MutexGuard<'a, T>> {
        match inner {
            Ok(g) => Ok(self.guard(g, waited_from, at)),
            Err(p) => Err(PoisonError::new(self.guard(
                p.into_inner(),
                waited_from,
                at,
            ))),
        }
    }

    #[inline]
    fn guard<'a>(
        &'a self,
        inner: std::sync::MutexGuard<'a, T>,
        waited_from: Option<u64>,
        at: &'static Location<'static>,
    ) -> MutexGuard<'a, T> {
        let now = clock::ticks();
        self.meta.record(
            lock::op::ACQUIRED,
            now,
            Some(waited_from.unwrap_or(now)),
            Some(at),
        );
        MutexGuard {
            lock: self,
            since: now,
            inner: Some(inner),
        }
    }

    /// Whether a thread panicked while holding the lock.
    pub fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }

    /// Clears the poisoned state.
    pub fn clear_poison(&self) {
        self.inner.clear_poison()
    }

    /// A mutable reference to the value, without locking (`&mut self` proves exclusivity).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.inner.get_mut()
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Recorded before the std guard lets go (it drops after this), so the release is
        // written before another thread can record its acquisition. A guard a condvar
        // wait took apart recorded its own release.
        if self.inner.is_some() {
            self.lock
                .meta
                .record(lock::op::RELEASED, clock::ticks(), Some(self.since), None);
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner
            .as_deref()
            .expect("a usable guard holds its std guard")
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner
            .as_deref_mut()
            .expect("a usable guard holds its std guard")
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        if let Some(n) = &self.meta.name {
            d.field("name", n);
        }
        d.field("inner", &self.inner).finish()
    }
}

impl<T: Default> Default for Mutex<T> {
    #[track_caller]
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    #[track_caller]
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

/// A reader-writer lock that records its waits, acquisitions and releases (shared ones
/// marked as such). Behaves as `std::sync::RwLock`.
pub struct RwLock<T: ?Sized> {
    meta: LockMeta,
    inner: std::sync::RwLock<T>,
}

/// Shared access to an [`RwLock`]'s value.
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    since: u64,
    inner: std::sync::RwLockReadGuard<'a, T>,
}

/// Exclusive access to an [`RwLock`]'s value.
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    since: u64,
    inner: std::sync::RwLockWriteGuard<'a, T>,
}

impl<T> RwLock<T> {
    /// A new lock, named after its type and where it is made.
    #[track_caller]
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            meta: LockMeta::new(None, lock::RW_LOCK, std::any::type_name::<T>()),
            inner: std::sync::RwLock::new(value),
        }
    }

    /// A new lock with a name, as the dump and the viewer will call it.
    #[track_caller]
    pub fn named(name: impl Into<String>, value: T) -> RwLock<T> {
        RwLock {
            meta: LockMeta::new(Some(name.into()), lock::RW_LOCK, std::any::type_name::<T>()),
            inner: std::sync::RwLock::new(value),
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> LockResult<T> {
        self.inner.into_inner()
    }
}

/// Maps a std lock result to ours, keeping poisoning.
fn map_result<G, H>(r: LockResult<G>, f: impl FnOnce(G) -> H) -> LockResult<H> {
    match r {
        Ok(g) => Ok(f(g)),
        Err(p) => Err(PoisonError::new(f(p.into_inner()))),
    }
}

fn map_try<G, H>(r: TryLockResult<G>, f: impl FnOnce(G) -> H) -> TryLockResult<H> {
    match r {
        Ok(g) => Ok(f(g)),
        Err(TryLockError::Poisoned(p)) => {
            Err(TryLockError::Poisoned(PoisonError::new(f(p.into_inner()))))
        }
        Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, waiting while a writer holds the lock.
    #[track_caller]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let at = Location::caller();
        let (r, from) = match self.inner.try_read() {
            Ok(g) => (Ok(g), None),
            Err(TryLockError::Poisoned(p)) => (Err(p), None),
            Err(TryLockError::WouldBlock) => {
                let start = clock::ticks();
                self.meta
                    .record(lock::op::WAIT_SHARED, start, None, Some(at));
                (self.inner.read(), Some(start))
            }
        };
        map_result(r, |g| self.read_guard(g, from, at))
    }

    /// Exclusive access, waiting while anyone holds the lock.
    #[track_caller]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let at = Location::caller();
        let (r, from) = match self.inner.try_write() {
            Ok(g) => (Ok(g), None),
            Err(TryLockError::Poisoned(p)) => (Err(p), None),
            Err(TryLockError::WouldBlock) => {
                let start = clock::ticks();
                self.meta.record(lock::op::WAIT, start, None, Some(at));
                (self.inner.write(), Some(start))
            }
        };
        map_result(r, |g| self.write_guard(g, from, at))
    }

    /// Shared access if no writer holds the lock now.
    #[track_caller]
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        let at = Location::caller();
        map_try(self.inner.try_read(), |g| self.read_guard(g, None, at))
    }

    /// Exclusive access if nobody holds the lock now.
    #[track_caller]
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        let at = Location::caller();
        map_try(self.inner.try_write(), |g| self.write_guard(g, None, at))
    }

    fn read_guard<'a>(
        &'a self,
        inner: std::sync::RwLockReadGuard<'a, T>,
        from: Option<u64>,
        at: &'static Location<'static>,
    ) -> RwLockReadGuard<'a, T> {
        let now = clock::ticks();
        self.meta.record(
            lock::op::ACQUIRED_SHARED,
            now,
            Some(from.unwrap_or(now)),
            Some(at),
        );
        RwLockReadGuard {
            lock: self,
            since: now,
            inner,
        }
    }

    fn write_guard<'a>(
        &'a self,
        inner: std::sync::RwLockWriteGuard<'a, T>,
        from: Option<u64>,
        at: &'static Location<'static>,
    ) -> RwLockWriteGuard<'a, T> {
        let now = clock::ticks();
        self.meta
            .record(lock::op::ACQUIRED, now, Some(from.unwrap_or(now)), Some(at));
        RwLockWriteGuard {
            lock: self,
            since: now,
            inner,
        }
    }

    /// Whether a thread panicked while holding the lock exclusively.
    pub fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }

    /// Clears the poisoned state.
    pub fn clear_poison(&self) {
        self.inner.clear_poison()
    }

    /// A mutable reference to the value, without locking.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.inner.get_mut()
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.meta.record(
            lock::op::RELEASED_SHARED,
            clock::ticks(),
            Some(self.since),
            None,
        );
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock
            .meta
            .record(lock::op::RELEASED, clock::ticks(), Some(self.since), None);
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        if let Some(n) = &self.meta.name {
            d.field("name", n);
        }
        d.field("inner", &self.inner).finish()
    }
}

impl<T: Default> Default for RwLock<T> {
    #[track_caller]
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

/// tokio's async `Mutex`, recording as the others do (feature `tokio`). A guard held across
/// an `.await` may be released on another worker than the one that took it; the reading
/// layer pairs the release with its acquisition whichever thread records it.
#[cfg(all(feature = "tokio", tokio_unstable))]
pub mod tokio {
    use std::ops::{Deref, DerefMut};
    use std::panic::Location;

    use flightrec_format::meta::lock;

    use super::LockMeta;
    use crate::ring::clock;

    /// An async mutual exclusion lock that records its waits, acquisitions and releases.
    /// Behaves as `tokio::sync::Mutex`.
    pub struct Mutex<T: ?Sized> {
        meta: LockMeta,
        inner: ::tokio::sync::Mutex<T>,
    }

    /// The guard of a [`Mutex`].
    pub struct MutexGuard<'a, T: ?Sized> {
        lock: &'a Mutex<T>,
        since: u64,
        inner: ::tokio::sync::MutexGuard<'a, T>,
    }

    impl<T> Mutex<T> {
        /// A new lock, named after its type and where it is made.
        #[track_caller]
        pub fn new(value: T) -> Mutex<T> {
            Mutex {
                meta: LockMeta::new(None, lock::TOKIO_MUTEX, std::any::type_name::<T>()),
                inner: ::tokio::sync::Mutex::new(value),
            }
        }

        /// A new lock with a name.
        #[track_caller]
        pub fn named(name: impl Into<String>, value: T) -> Mutex<T> {
            Mutex {
                meta: LockMeta::new(
                    Some(name.into()),
                    lock::TOKIO_MUTEX,
                    std::any::type_name::<T>(),
                ),
                inner: ::tokio::sync::Mutex::new(value),
            }
        }

        /// Consumes the lock, returning the value.
        pub fn into_inner(self) -> T {
            self.inner.into_inner()
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Acquires the lock, waiting (asynchronously) while another task holds it.
        ///
        /// Where it was called is recorded with the acquisition (a plain function returning
        /// the future, so `#[track_caller]` sees the caller).
        #[track_caller]
        pub fn lock(&self) -> impl std::future::Future<Output = MutexGuard<'_, T>> {
            let at = Location::caller();
            async move { self.lock_at(at).await }
        }

        async fn lock_at(&self, at: &'static Location<'static>) -> MutexGuard<'_, T> {
            let (inner, from) = match self.inner.try_lock() {
                Ok(g) => (g, None),
                Err(_) => {
                    let start = clock::ticks();
                    self.meta.record(lock::op::WAIT, start, None, Some(at));
                    (self.inner.lock().await, Some(start))
                }
            };
            let now = clock::ticks();
            self.meta
                .record(lock::op::ACQUIRED, now, Some(from.unwrap_or(now)), Some(at));
            MutexGuard {
                lock: self,
                since: now,
                inner,
            }
        }

        /// Acquires the lock if it is free now.
        #[track_caller]
        pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, ::tokio::sync::TryLockError> {
            let at = Location::caller();
            let inner = self.inner.try_lock()?;
            let now = clock::ticks();
            self.meta
                .record(lock::op::ACQUIRED, now, Some(now), Some(at));
            Ok(MutexGuard {
                lock: self,
                since: now,
                inner,
            })
        }

        /// A mutable reference to the value, without locking.
        pub fn get_mut(&mut self) -> &mut T {
            self.inner.get_mut()
        }
    }

    impl<T: ?Sized> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            self.lock
                .meta
                .record(lock::op::RELEASED, clock::ticks(), Some(self.since), None);
        }
    }

    impl<T: ?Sized> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.inner
        }
    }
}
