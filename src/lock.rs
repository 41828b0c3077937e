//! The shards' mutex: one whose waiters sleep until it is free.
//!
//! `parking_lot`'s mutex, when contended, spins and then calls `sched_yield` a few times before
//! it sleeps. On a machine with more runnable threads than cores, a yield can hand the core to
//! another thread for a whole time slice (milliseconds), long after the lock was released: on a
//! 2-core machine writing at 100,000 upserts a second, the shards' yields were a large part of
//! the upserts' tail (docs/BENCHMARKS.md). The standard library's mutex spins briefly without
//! yielding and then waits on a futex, woken as soon as the lock is released.
//!
//! A panic while the lock is held does not poison it: critical sections leave their state
//! whole before anything that could panic, as with `parking_lot`.

use std::sync::{MutexGuard, PoisonError};

/// A mutual exclusion lock; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::sync::Mutex::new(value))
    }

    /// Waits for the lock and takes it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_under_the_lock_does_not_poison_it() {
        let lock = std::sync::Arc::new(Mutex::new(1));
        let held = std::sync::Arc::clone(&lock);
        let panicked = std::thread::spawn(move || {
            let _guard = held.lock();
            std::panic::resume_unwind(Box::new("under the lock"));
        })
        .join();
        assert!(panicked.is_err());
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), 2);
    }
}
