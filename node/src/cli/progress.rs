//! What `meshwork run` shows on a terminal while a job runs, from the
//! moment it starts: "finding peers…" while it waits for the mesh, "placed
//! N pieces on M peers" once pieces go out, then a bar of pieces done with
//! an estimate of the time left. A bar appears only once the job's length
//! is known (never `0/0`), and there is no estimate before a piece is done.
//!
//! The lines come from [`Shown`], which knows nothing of terminals (unit
//! tested below); [`Status`] draws them with indicatif, only when stderr is
//! a terminal (a log file or a pipe gets the events' own lines only).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use meshwork_protocol::PeerKey;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Width of the bar, in characters.
const BAR: usize = 30;

/// What is known of a job so far, and the line that says it.
///
/// The estimate comes from the pieces in flight: a piece takes about `d`
/// (the mean time from placement to result of the pieces done so far); the
/// peers in use run `c` pieces at once (their slots); the `r` pieces left
/// need `ceil(r / c)` rounds of `d`, of which the round under way has run
/// for as long as the oldest piece in flight (at most `d`).
#[derive(Debug)]
pub(super) struct Shown {
    /// When the run began looking for peers.
    started: Instant,
    /// Pieces placed (not counting backups), and slots of each peer used.
    placed: u32,
    peers: BTreeMap<PeerKey, u32>,
    /// When each piece still in flight was placed, oldest first.
    in_flight: VecDeque<Instant>,
    /// Pieces done, and in all (known from the first result).
    done: u32,
    total: Option<u32>,
    /// Sum and count of the times from placement to result.
    took: (Duration, u32),
}

impl Shown {
    pub(super) fn new(started: Instant) -> Shown {
        Shown {
            started,
            placed: 0,
            peers: BTreeMap::new(),
            in_flight: VecDeque::new(),
            done: 0,
            total: None,
            took: (Duration::ZERO, 0),
        }
    }

    /// `pieces` went to `peer`, which has `slots`, at `now`.
    pub(super) fn placed(&mut self, peer: PeerKey, slots: u32, pieces: usize, backup: bool, now: Instant) {
        self.peers.insert(peer, slots.max(1));
        if !backup {
            self.placed += pieces as u32;
            self.in_flight.extend(std::iter::repeat_n(now, pieces));
        }
    }

    /// `done` of `total` pieces are done at `now`.
    pub(super) fn progress(&mut self, done: u32, total: u32, now: Instant) {
        for _ in self.done..done {
            // Pieces come back in about the order they went out.
            if let Some(at) = self.in_flight.pop_front() {
                self.took = (self.took.0 + now.saturating_duration_since(at), self.took.1 + 1);
            }
        }
        self.done = self.done.max(done);
        self.total = Some(total);
    }

    /// Time left, once a piece has come back.
    pub(super) fn eta(&self, now: Instant) -> Option<Duration> {
        let total = self.total?;
        if self.took.1 == 0 {
            return None;
        }
        let d = self.took.0 / self.took.1;
        let left = total.saturating_sub(self.done);
        let at_once: u32 = self.peers.values().sum::<u32>().max(1);
        let rounds = left.div_ceil(at_once);
        let under_way = self.in_flight.front().map_or(Duration::ZERO, |t| now.saturating_duration_since(*t)).min(d);
        Some((d * rounds).saturating_sub(under_way))
    }

    /// The line for `now`.
    pub(super) fn line(&self, now: Instant) -> String {
        let elapsed = whole(now.saturating_duration_since(self.started));
        match self.total {
            None if self.placed == 0 => format!("finding peers… {elapsed}"),
            None => {
                let peers = self.peers.len();
                let s = if peers == 1 { "" } else { "s" };
                format!("placed {} pieces on {peers} peer{s} {elapsed}", self.placed)
            }
            Some(total) => {
                let filled = (BAR as u64 * u64::from(self.done.min(total)) / u64::from(total.max(1))) as usize;
                let bar = format!("{}{}", "=".repeat(filled), " ".repeat(BAR - filled));
                let eta = self.eta(now).map_or_else(String::new, |e| format!(", eta {}", whole(e)));
                format!("{}/{total} pieces [{bar}] {elapsed}{eta}", self.done)
            }
        }
    }
}

/// A duration to the second, as a bar shows it ("7 s", "2 min 5 s").
fn whole(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, s / 60 % 60)
    }
}

/// [`Shown`] on stderr, redrawn in place five times a second; nothing
/// when stderr is not a terminal or `hidden`.
#[derive(Debug)]
pub(super) struct Status {
    bar: ProgressBar,
    /// Shared with the bar's ticker thread, which draws its line.
    shown: Arc<Mutex<Shown>>,
}

impl Status {
    /// Starts showing "finding peers…" (if stderr is a terminal and not `hidden`).
    pub(super) fn start(hidden: bool) -> Status {
        let shown = Arc::new(Mutex::new(Shown::new(Instant::now())));
        let drawn = shown.clone();
        let line = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let line = drawn.lock().unwrap_or_else(PoisonError::into_inner).line(Instant::now());
            let _ = w.write_str(&line);
        };
        let style = ProgressStyle::with_template("{spinner} {line}").expect("valid template").with_key("line", line);
        let target = if hidden { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(None, target).with_style(style);
        // No ticker thread for a line nobody sees.
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Status { bar, shown }
    }

    /// Whether anything is drawn (stderr is a terminal, not hidden).
    pub(super) fn visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    fn update(&self, f: impl FnOnce(&mut Shown, Instant)) {
        f(&mut self.shown.lock().unwrap_or_else(PoisonError::into_inner), Instant::now());
        self.bar.tick();
    }

    /// Pieces were placed.
    pub(super) fn placed(&self, peer: PeerKey, slots: u32, pieces: usize, backup: bool) {
        self.update(|s, now| s.placed(peer, slots, pieces, backup, now));
    }

    /// More pieces are done.
    pub(super) fn progress(&self, done: u32, total: u32) {
        self.update(|s, now| s.progress(done, total, now));
    }

    /// Prints `line` on stderr above the status line.
    pub(super) fn println(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Runs `f` (which writes to stdout or stderr) with the status line
    /// out of the way.
    pub(super) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Clears the status line for good.
    pub(super) fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn it_says_what_it_does_before_the_first_piece_is_done_and_never_draws_an_empty_bar() {
        let t0 = Instant::now();
        let mut shown = Shown::new(t0);
        assert_eq!(shown.line(t0 + S(1)), "finding peers… 1 s");
        shown.placed(PeerKey(1), 2, 4, false, t0 + S(2));
        shown.placed(PeerKey(2), 1, 2, false, t0 + S(2));
        shown.placed(PeerKey(2), 1, 1, true, t0 + S(3));
        assert_eq!(shown.line(t0 + S(3)), "placed 6 pieces on 2 peers 3 s", "backups are not pieces placed");
        assert_eq!(shown.eta(t0 + S(30)), None, "no estimate before a piece is done");
        assert!(!shown.line(t0 + S(30)).contains('['), "no bar before the job's length is known");
        shown.progress(1, 6, t0 + S(36));
        // 6 pieces of about 34 s on 3 slots: two rounds, the first one over.
        assert_eq!(shown.line(t0 + S(36)), format!("1/6 pieces [{}{}] 36 s, eta 34 s", "=".repeat(5), " ".repeat(25)));
    }

    #[test]
    fn the_estimate_counts_rounds_of_the_slots_in_use() {
        let t0 = Instant::now();
        // 100 pieces of 1 s on 8 slots: 8 at a time.
        let mut shown = Shown::new(t0);
        shown.placed(PeerKey(1), 4, 8, false, t0);
        shown.placed(PeerKey(2), 4, 8, false, t0);
        shown.progress(8, 100, t0 + S(1));
        // 92 left: 12 rounds, the one under way just begun (its oldest
        // piece was placed at t0 and has waited a full round).
        assert_eq!(shown.eta(t0 + S(1)), Some(S(11)));
        // The last round, placed when the others came back: what is left of it.
        let mut last = Shown::new(t0);
        last.placed(PeerKey(1), 6, 6, false, t0);
        last.progress(1, 6, t0 + S(34));
        assert_eq!(last.eta(t0 + S(34)), Some(Duration::ZERO), "the other five are due now, not in 5 × 34 s");
        last.placed(PeerKey(1), 6, 1, false, t0 + S(34));
        last.progress(5, 7, t0 + S(35));
        assert_eq!(last.eta(t0 + S(35)), Some(Duration::ZERO));
    }

    #[test]
    fn durations_are_shown_to_the_second() {
        assert_eq!(whole(Duration::from_millis(400)), "0 s");
        assert_eq!(whole(S(59)), "59 s");
        assert_eq!(whole(S(125)), "2 min 5 s");
        assert_eq!(whole(S(3 * 3600 + 120)), "3 h 2 min");
    }
}
