//! A bound on the bytes of modules a node holds while loading them.
//!
//! Pieces of different modules load them at once, one per executor slot,
//! and each module may be as large as [`Limits::module`](super::Limits):
//! without a bound, a worker with many slots asked for many large modules
//! would hold slots × 64 MiB of module bytes. A load takes its share of a
//! node-wide budget before it fetches (waiting, not failing, while the
//! budget is spent) and gives it back once the module is compiled.

use std::sync::{Condvar, Mutex, PoisonError};

/// Bytes to share between loads.
#[derive(Debug)]
pub(super) struct ByteBudget {
    total: u64,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug)]
struct State {
    free: u64,
    /// Loads waiting for bytes (tests wait on it to know a load is held back).
    waiting: usize,
}

impl ByteBudget {
    /// A budget of `total` bytes.
    pub(super) fn new(total: u64) -> ByteBudget {
        ByteBudget { total, state: Mutex::new(State { free: total, waiting: 0 }), freed: Condvar::new() }
    }

    /// Takes `bytes` (at most the whole budget, so that any load can go
    /// ahead alone), waiting until they are free.
    pub(super) fn take(&self, bytes: u64) -> Share<'_> {
        let bytes = bytes.min(self.total);
        let mut state = self.lock();
        state.waiting += 1;
        while state.free < bytes {
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.waiting -= 1;
        state.free -= bytes;
        Share { budget: self, bytes }
    }

    /// Loads waiting for their bytes now.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.lock().waiting
    }

    fn give(&self, bytes: u64) {
        self.lock().free += bytes;
        self.freed.notify_all();
    }

    /// The state, even after a panic elsewhere: every change to it is a
    /// single update, never left half made.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Bytes taken from a [`ByteBudget`], given back when dropped.
#[derive(Debug)]
pub(super) struct Share<'a> {
    budget: &'a ByteBudget,
    bytes: u64,
}

impl Share<'_> {
    /// Keeps only `bytes` of the share (once a module's size is known),
    /// giving the rest back at once.
    pub(super) fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            self.budget.give(self.bytes - bytes);
            self.bytes = bytes;
        }
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}
