//! Freeing what a reader is done with off its main thread.
//!
//! A decoded recording of millions of records is millions of allocations: freeing it and
//! its analysis takes a good part of a second, after the answer is already written. The
//! reader hands them to [`Aside`], which frees them on a thread of its own while the reader
//! goes on; a process that ends meanwhile leaves the freeing to the kernel.

use std::thread::JoinHandle;

/// At most one value being freed at a time (see [`Aside::drop_later`]).
#[derive(Default)]
pub struct Aside(Option<JoinHandle<()>>);

impl Aside {
    /// Frees `value` on a thread of its own, once whatever was set aside before is freed.
    /// A reader that calls [`Aside::wait`] before reading its next recording holds one at
    /// a time.
    pub fn drop_later<T: Send + 'static>(&mut self, value: T) {
        self.wait();
        // When no thread can be had, `spawn` drops the closure, and `value` with it, here.
        self.0 = std::thread::Builder::new()
            .name("flightrec-free".into())
            .spawn(move || drop(value))
            .ok();
    }

    /// Waits until what was set aside is freed.
    pub fn wait(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn what_is_set_aside_is_freed_and_the_next_waits_for_it() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut aside = Aside::default();
        aside.drop_later(Counted(drops.clone()));
        // Setting a second aside first waits for the first to be freed.
        aside.drop_later(Counted(drops.clone()));
        assert!(drops.load(Ordering::SeqCst) >= 1);
        aside.wait();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}
