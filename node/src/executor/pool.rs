//! Threads for pieces, kept apart from the network loop.
//!
//! CPU-bound pieces filling every core must not delay the thread that
//! answers probes and forwards adverts, or healthy nodes look dead. Pieces
//! therefore run on threads of their own at a lower scheduling priority
//! (`nice` +10: the kernel gives a waking network thread the core first),
//! never on the async runtime's threads. The pool grows when every thread
//! is busy (a runaway piece past its deadline must not hold up the next
//! one) and a thread idle for a while exits.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Nice value of piece threads (0 is normal, 19 the lowest priority).
pub(crate) const PIECE_NICE: i32 = 10;
/// An idle thread exits after this long.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// A growing pool of low-priority threads.
#[derive(Clone, Default)]
pub(crate) struct PiecePool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PiecePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiecePool").finish_non_exhaustive()
    }
}

impl PiecePool {
    /// Runs `job` on an idle piece thread, or a new one if none is idle.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        let mut q = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.jobs.push_back(Box::new(job));
        // Enough idle threads for every queued job: wake one.
        if q.idle >= q.jobs.len() {
            self.shared.ready.notify_one();
            return;
        }
        drop(q);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new().name("meshwork-piece".into()).spawn(move || {
            lower_priority();
            work(&shared);
        });
        if let Err(e) = spawned {
            // The job stays queued; the next idle thread takes it.
            tracing::error!(error = %e, "cannot start a piece thread");
        }
    }
}

/// Takes jobs until none came for [`KEEP_ALIVE`].
fn work(shared: &Shared) {
    let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(job) = q.jobs.pop_front() {
            drop(q);
            job();
            q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        q.idle += 1;
        let (guard, timeout) = shared.ready.wait_timeout(q, KEEP_ALIVE).unwrap_or_else(PoisonError::into_inner);
        q = guard;
        q.idle -= 1;
        if timeout.timed_out() && q.jobs.is_empty() {
            return;
        }
    }
}

/// Lowers the calling thread's priority to [`PIECE_NICE`]. On Linux a nice
/// value belongs to the thread, so the network loop keeps its own.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread, no pointers.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, PIECE_NICE) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the priority of a piece thread");
    }
}

/// The nice value of the calling thread.
#[cfg(test)]
fn current_nice() -> i32 {
    // SAFETY: as above.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn pieces_run_at_low_priority_and_the_pool_grows_when_busy() {
        let pool = PiecePool::default();
        let (tx, rx) = channel();
        let (release, hold) = channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        // One job blocks its thread; a second one must still run at once.
        let h = hold.clone();
        pool.spawn(move || {
            let _ = h.lock().unwrap().recv();
        });
        let t = tx.clone();
        pool.spawn(move || t.send(current_nice()).unwrap());
        let nice = rx.recv_timeout(Duration::from_secs(10)).expect("the second job ran beside the blocked one");
        assert_eq!(nice, PIECE_NICE);
        assert_eq!(current_nice(), 0, "the caller's priority is untouched");
        release.send(()).unwrap();
        // An idle thread is reused.
        for _ in 0..20 {
            let t = tx.clone();
            pool.spawn(move || t.send(current_nice()).unwrap());
        }
        for _ in 0..20 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), PIECE_NICE);
        }
    }
}
