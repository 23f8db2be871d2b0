//! [`Plan`]: what a run is made of, drawn from its seed before anything
//! happens: the cost of every piece, the speed of every node (those that
//! join later too, in order of joining), the ideal makespan, and when the
//! churn strikes. The simulator and the `--real` harness both draw their
//! runs from a plan, so the same seed gives them the same pieces, the same
//! nodes and the same churn, and their reports can be held side by side.
//!
//! Draws come from separate streams of the seed (pieces and nodes; churn
//! times and victims), so a harness that draws more of one (more joins) does not
//! shift the other.

use crate::config::SimConfig;
use crate::jobs::piece_input;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// A churned node's replacement joins this long after it went.
pub const REPLACE_AFTER: Duration = Duration::from_secs(1);
/// Slowest speed a node is given (a draw of 0 would never finish a piece).
const MIN_SPEED: f64 = 0.01;
/// Stream of churn times and victims.
const CHURN_STREAM: u64 = 1;
/// Stream the simulator carries messages with.
pub(crate) const NETWORK_STREAM: u64 = 2;
/// Stream of the reachability model (who is NATed, which relay).
pub(crate) const REACH_STREAM: u64 = 3;

/// A node as drawn: its speed, and the seed of its machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeDraw {
    /// Work per second relative to speed 1.
    pub speed: f64,
    /// Seed of its `Machine`.
    pub seed: u64,
}

/// What a churn event does to its victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChurnKind {
    /// It is killed.
    Crash,
    /// It shuts down gracefully.
    Leave,
}

/// Something the run does at a set time, whoever drives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Submitter `s` submits its job.
    Submit(u32),
    /// Scripted fault number `i` (of [`SimConfig::script`]).
    Script(usize),
    /// Churn event number `i` (see [`Plan::churn_kind`]); its replacement
    /// joins [`REPLACE_AFTER`] later.
    Churn(usize),
}

/// The run before it starts.
#[derive(Debug)]
pub struct Plan {
    /// Cost of each piece at speed 1, µs, per submitter.
    pub jobs: Vec<Vec<u64>>,
    /// The nodes at the start.
    pub initial: Vec<NodeDraw>,
    /// Lower bound on the makespan: the work over the capacity of the nodes
    /// at the start, or the longest piece on the fastest node if larger.
    pub ideal: Duration,
    /// The same, unrounded, in seconds.
    pub ideal_s: f64,
    /// When each churn event strikes, in order (see [`Plan::schedule`]).
    pub churn_at: Vec<Duration>,
    draws: ChaCha8Rng,
    speeds: crate::dist::Dist,
    churn: ChaCha8Rng,
}

impl Plan {
    /// Draws the run `cfg` describes.
    pub fn new(cfg: &SimConfig) -> Plan {
        let mut draws = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut churn = ChaCha8Rng::seed_from_u64(cfg.seed);
        churn.set_stream(CHURN_STREAM);
        let k = cfg.submitters.max(1);
        let jobs: Vec<Vec<u64>> = (0..k)
            .map(|s| {
                let n = cfg.pieces / k + u32::from(s < cfg.pieces % k);
                (0..n).map(|_| cfg.piece_cost.sample_micros(&mut draws)).collect()
            })
            .collect();
        let mut plan = Plan {
            jobs,
            initial: Vec::new(),
            ideal: Duration::ZERO,
            ideal_s: 0.0,
            churn_at: Vec::new(),
            draws,
            speeds: cfg.speeds,
            churn,
        };
        plan.initial = (0..cfg.nodes).map(|_| plan.next_node()).collect();
        let work: u64 = plan.jobs.iter().flatten().sum();
        let longest = plan.jobs.iter().flatten().copied().max().unwrap_or(0);
        let capacity: f64 = plan.initial.iter().map(|d| d.speed * cfg.slots as f64).sum();
        let fastest = plan.initial.iter().map(|d| d.speed).fold(MIN_SPEED, f64::max);
        let ideal_us = (work as f64 / capacity).max(longest as f64 / fastest);
        plan.ideal_s = ideal_us / 1e6;
        plan.ideal = Duration::from_micros(ideal_us.ceil() as u64);
        let events = (cfg.churn * cfg.nodes as f64).round() as usize;
        let span = plan.ideal.as_micros() as u64;
        plan.churn_at = (0..events).map(|_| Duration::from_micros(plan.churn.random_range(0..=span))).collect();
        plan.churn_at.sort_unstable();
        plan
    }

    /// What happens when, in time order: submissions (submitter `s` at
    /// `s × --stagger`), scripted faults, churn.
    pub fn schedule(&self, cfg: &SimConfig) -> Vec<(Duration, Step)> {
        let mut steps: Vec<(Duration, Step)> = (0..cfg.submitters)
            .map(|s| (cfg.stagger.saturating_mul(s), Step::Submit(s)))
            .chain(cfg.script.iter().enumerate().map(|(i, s)| (s.at, Step::Script(i))))
            .chain(self.churn_at.iter().enumerate().map(|(i, at)| (*at, Step::Churn(i))))
            .collect();
        steps.sort_by_key(|(at, _)| *at);
        steps
    }

    /// The next node to exist (the initial ones first, then each joiner).
    pub fn next_node(&mut self) -> NodeDraw {
        let speed = self.speeds.sample(&mut self.draws).max(MIN_SPEED);
        NodeDraw { speed, seed: self.draws.random() }
    }

    /// What churn event `i` does: crashes and leaves alternate.
    pub fn churn_kind(i: usize) -> ChurnKind {
        if i.is_multiple_of(2) {
            ChurnKind::Crash
        } else {
            ChurnKind::Leave
        }
    }

    /// The victim of a churn event: a random node in `first..len` that is
    /// `eligible` (running, not hung, not leaving); `None` if there is none.
    pub fn victim(&mut self, first: u32, len: u32, eligible: impl Fn(u32) -> bool) -> Option<u32> {
        if len <= first {
            return None;
        }
        for _ in 0..64 {
            let n = self.churn.random_range(first..len);
            if eligible(n) {
                return Some(n);
            }
        }
        (first..len).find(|n| eligible(*n))
    }

    /// The inputs of submitter `s`'s job: piece `i` carries its cost, its
    /// job and its index (so an output in the wrong place cannot pass).
    pub fn inputs(&self, s: u32) -> Vec<Vec<u8>> {
        let costs = self.jobs.get(s as usize).map_or(&[][..], Vec::as_slice);
        costs.iter().enumerate().map(|(i, c)| piece_input(*c, s, i as u32)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimArgs;

    fn plan(words: &[&str]) -> Plan {
        Plan::new(&SimArgs::try_parse_from(words).unwrap().config().unwrap())
    }

    #[test]
    fn a_seed_draws_one_plan() {
        let a = plan(&["--nodes", "10", "--pieces", "95", "--submitters", "3", "--churn", "40%"]);
        let b = plan(&["--nodes", "10", "--pieces", "95", "--submitters", "3", "--churn", "40%"]);
        assert_eq!(a.jobs, b.jobs);
        assert_eq!(a.initial, b.initial);
        assert_eq!(a.churn_at, b.churn_at);
        assert_eq!(a.jobs.iter().map(Vec::len).collect::<Vec<_>>(), [32, 32, 31]);
        assert_eq!(a.churn_at.len(), 4);
        assert!(a.churn_at.iter().all(|t| *t <= a.ideal));
        let c = plan(&["--nodes", "10", "--pieces", "95", "--submitters", "3", "--churn", "40%", "--seed", "2"]);
        assert_ne!(a.jobs, c.jobs);
    }

    #[test]
    fn the_ideal_is_work_over_capacity_or_the_longest_piece() {
        let p = plan(&["--nodes", "4", "--pieces", "8", "--piece-cost", "fixed:1s", "--slots", "2"]);
        assert_eq!(p.ideal, Duration::from_secs(1));
        let p = plan(&["--nodes", "4", "--pieces", "2", "--piece-cost", "fixed:1s"]);
        assert_eq!(p.ideal, Duration::from_secs(1), "one piece on the fastest node");
    }

    #[test]
    fn victims_are_eligible_and_from_their_own_stream() {
        let mut p = plan(&["--nodes", "10"]);
        let before = p.next_node();
        let mut q = plan(&["--nodes", "10"]);
        assert_eq!(q.victim(1, 10, |n| n == 7), Some(7));
        assert_eq!(q.next_node(), before, "picking victims does not shift node draws");
        assert_eq!(p.victim(1, 10, |_| false), None);
        assert_eq!(p.victim(5, 5, |_| true), None);
    }
}
