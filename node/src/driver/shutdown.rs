//! A node on its way out, and when it may stop.
//!
//! Shutting down stops new work at once (the machine's next advert lists
//! no tasks) and lets accepted pieces finish until the grace period ends.
//! Then whatever still runs is cancelled rather than waited for: a long
//! piece must not keep the node (or the process embedding it) alive. An
//! idle node still waits [`LEAVE_FLUSH`], so its leaving advert reaches its
//! peers before its connections close and nobody redials it. Asking to
//! shut down again only adds one more waiter.

use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// After announcing that it leaves, a node waits this long before closing
/// its connections, so the announcement is delivered and nobody redials it.
pub(crate) const LEAVE_FLUSH: Duration = Duration::from_millis(150);

/// Why a shutting-down node stops now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Nothing was left to finish.
    Finished,
    /// The grace period ended with pieces still running: cancel them.
    GraceOver,
}

/// A shutdown in progress.
#[derive(Debug)]
pub(crate) struct Shutdown {
    /// Accepted pieces may run until then.
    grace_ends: Instant,
    /// The leaving advert has been delivered by then.
    flushed: Instant,
    /// Told once the node has stopped.
    waiters: Vec<oneshot::Sender<()>>,
}

impl Shutdown {
    /// Starts a shutdown at `now` with `grace` for accepted pieces.
    pub(crate) fn new(now: Instant, grace: Duration) -> Shutdown {
        Shutdown { grace_ends: now + grace, flushed: now + LEAVE_FLUSH, waiters: Vec::new() }
    }

    /// `waiter` is told when the node has stopped.
    pub(crate) fn wait(&mut self, waiter: oneshot::Sender<()>) {
        self.waiters.push(waiter);
    }

    /// When to look at [`due`](Self::due) again if nothing else happens.
    pub(crate) fn next_check(&self, now: Instant) -> Instant {
        if now < self.flushed {
            self.flushed
        } else {
            self.grace_ends
        }
    }

    /// Whether to stop at `now`; `idle`: no job of ours and no accepted
    /// piece left.
    pub(crate) fn due(&self, now: Instant, idle: bool) -> Option<Stop> {
        if now < self.flushed {
            None
        } else if idle {
            Some(Stop::Finished)
        } else if now >= self.grace_ends {
            Some(Stop::GraceOver)
        } else {
            None
        }
    }

    /// The node has stopped: tells every waiter.
    pub(crate) fn stopped(self) {
        for w in self.waiters {
            // Err: that waiter gave up, nothing to tell.
            let _ = w.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_node_stops_once_its_leaving_advert_is_out() {
        let t0 = Instant::now();
        let s = Shutdown::new(t0, Duration::from_secs(3));
        assert_eq!(s.due(t0, true), None, "the leaving advert needs a moment");
        assert_eq!(s.next_check(t0), t0 + LEAVE_FLUSH);
        assert_eq!(s.due(t0 + LEAVE_FLUSH, true), Some(Stop::Finished));
    }

    #[test]
    fn running_pieces_get_the_grace_period_then_are_cancelled() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(3);
        let s = Shutdown::new(t0, grace);
        assert_eq!(s.due(t0 + Duration::from_secs(1), false), None, "still within the grace period");
        assert_eq!(s.next_check(t0 + Duration::from_secs(1)), t0 + grace);
        assert_eq!(s.due(t0 + Duration::from_secs(2), true), Some(Stop::Finished), "finished early");
        assert_eq!(s.due(t0 + grace, false), Some(Stop::GraceOver));
    }

    #[test]
    fn every_waiter_is_told() {
        let mut s = Shutdown::new(Instant::now(), Duration::ZERO);
        let (a, mut ra) = oneshot::channel();
        let (b, mut rb) = oneshot::channel();
        s.wait(a);
        s.wait(b);
        s.stopped();
        assert_eq!((ra.try_recv(), rb.try_recv()), (Ok(()), Ok(())));
    }
}
