//! The ledger: what happened to each node and when, as the harness
//! reports it (joins, crashes, leaves, hangs, partitions). It answers two
//! questions for the report: was a down-judgement false, and how long was
//! each node present (the denominator of utilization).
//!
//! A judgement at node `a` that peer `b` is down is false when, at that
//! moment, `b` is present, not hung, not leaving or gone, and on `a`'s side
//! of any partition. Probes that a hang or a partition left unanswered may
//! still time out just after it ends, so for [`AFTERMATH`] after a hang of
//! `b` or a partition ends, judgements are put down to it. A judgement
//! made by a node that was itself hung is not excused: the protocol is
//! meant to restart its clocks rather than blame its peers.

use meshwork_protocol::Time;
use std::time::Duration;

/// How long after a hang or partition ends a judgement is still its doing:
/// the longest probe timeout the protocol uses.
pub(crate) const AFTERMATH: Duration = Duration::from_secs(10);

/// One node's life.
#[derive(Clone, Debug)]
struct Life {
    joined: Time,
    gone: Option<Time>,
    leaving: bool,
    hung: bool,
    /// When its last hang ended.
    resumed: Option<Time>,
}

impl Life {
    fn new(joined: Time) -> Life {
        Life { joined, gone: None, leaving: false, hung: false, resumed: None }
    }
}

/// Every node's life, and the partition in force.
#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    lives: Vec<Life>,
    /// Partition group of each node listed (others: group 0); empty when none.
    groups: Vec<u32>,
    healed: Option<Time>,
}

impl Ledger {
    /// `nodes` nodes present from the start.
    pub(crate) fn new(nodes: u32) -> Ledger {
        Ledger { lives: vec![Life::new(Time::ZERO); nodes as usize], groups: Vec::new(), healed: None }
    }

    fn life(&mut self, n: u32) -> Option<&mut Life> {
        self.lives.get_mut(n as usize).filter(|l| l.gone.is_none())
    }

    /// Node `n` joined (the next number); false if `n` is not the next one.
    pub(crate) fn joined(&mut self, n: u32, now: Time) -> bool {
        let next = n as usize == self.lives.len();
        if next {
            self.lives.push(Life::new(now));
        }
        next
    }

    /// Node `n` crashed, or finished leaving; false if it was not present.
    pub(crate) fn gone(&mut self, n: u32, now: Time) -> bool {
        self.life(n).map(|l| l.gone = Some(now)).is_some()
    }

    /// Node `n` began a graceful leave; false if it was not running.
    pub(crate) fn leaving(&mut self, n: u32) -> bool {
        self.life(n).filter(|l| !l.leaving).map(|l| l.leaving = true).is_some()
    }

    /// Node `n` stopped (`hung`) or resumed; false if nothing changed.
    pub(crate) fn hang(&mut self, n: u32, hung: bool, now: Time) -> bool {
        let Some(l) = self.life(n).filter(|l| l.hung != hung) else { return false };
        l.hung = hung;
        if !hung {
            l.resumed = Some(now);
        }
        true
    }

    /// The network is cut into `groups` (unlisted nodes are in the first).
    pub(crate) fn partition(&mut self, groups: &[Vec<u32>]) {
        let len = groups.iter().flatten().max().map_or(0, |m| *m as usize + 1);
        self.groups = vec![0; len];
        for (g, members) in groups.iter().enumerate() {
            for n in members {
                self.groups[*n as usize] = g as u32;
            }
        }
    }

    /// The partition ended.
    pub(crate) fn heal(&mut self, now: Time) {
        self.groups.clear();
        self.healed = Some(now);
    }

    fn group(&self, n: u32) -> u32 {
        self.groups.get(n as usize).copied().unwrap_or(0)
    }

    /// Is `n` present (joined, not crashed or gone)?
    pub(crate) fn present(&self, n: u32) -> bool {
        self.lives.get(n as usize).is_some_and(|l| l.gone.is_none())
    }

    /// Is `n` present and neither hung nor leaving?
    pub(crate) fn running(&self, n: u32) -> bool {
        self.lives.get(n as usize).is_some_and(|l| l.gone.is_none() && !l.hung && !l.leaving)
    }

    /// Was `a`'s judgement at `now` that `b` is down false?
    pub(crate) fn is_false_down(&self, a: u32, b: u32, now: Time) -> bool {
        let Some(life) = self.lives.get(b as usize) else { return false };
        let calm = |end: Option<Time>| end.is_none_or(|t| now.since(t) >= AFTERMATH);
        self.running(b) && self.group(a) == self.group(b) && calm(life.resumed) && calm(self.healed)
    }

    /// Microseconds node `n` was present, until `end` at the latest.
    pub(crate) fn present_us(&self, n: u32, end: Time) -> u64 {
        self.lives
            .get(n as usize)
            .map_or(0, |l| l.gone.unwrap_or(end).min(end).since(l.joined.min(end)).as_micros() as u64)
    }

    /// Nodes so far, gone ones included.
    pub(crate) fn len(&self) -> u32 {
        self.lives.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Time {
        Time::from_micros(s * 1_000_000)
    }

    #[test]
    fn only_a_healthy_reachable_peer_is_falsely_judged() {
        let mut l = Ledger::new(6);
        assert!(l.is_false_down(0, 1, t(1)));
        assert!(l.gone(1, t(1)) && !l.gone(1, t(2)), "once");
        assert!(!l.is_false_down(0, 1, t(2)), "crashed");
        assert!(l.leaving(2) && !l.leaving(2));
        assert!(!l.is_false_down(0, 2, t(2)), "leaving");
        assert!(l.hang(3, true, t(2)));
        assert!(!l.is_false_down(0, 3, t(3)), "hung");
        assert!(l.hang(3, false, t(4)));
        assert!(!l.is_false_down(0, 3, t(5)), "a probe sent during the hang");
        assert!(l.is_false_down(0, 3, t(14)));
        l.partition(&[vec![0], vec![4]]);
        assert!(!l.is_false_down(0, 4, t(20)) && l.is_false_down(0, 5, t(20)));
        l.heal(t(21));
        assert!(!l.is_false_down(0, 4, t(22)) && l.is_false_down(0, 4, t(31)));
        assert!(!l.is_false_down(0, 9, t(31)), "unknown nodes are never falsely judged");
    }

    #[test]
    fn presence_runs_from_joining_to_going() {
        let mut l = Ledger::new(1);
        assert!(l.joined(1, t(2)) && !l.joined(5, t(2)));
        l.gone(0, t(3));
        assert_eq!((l.present_us(0, t(10)), l.present_us(1, t(10))), (3_000_000, 8_000_000));
        assert_eq!(l.present_us(1, t(1)), 0, "joined after the end");
        assert_eq!(l.len(), 2);
    }
}
