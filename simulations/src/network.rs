//! The network model: latency, loss, partitions, and the connections
//! between submitters and every other node.
//!
//! Only submitters talk to other nodes (workers answer, they never ask), so
//! a connection exists between each submitter and each other node: a
//! fully connected LAN mesh as far as the protocol can tell. A connection
//! is FIFO in each direction like TCP: a message never overtakes an earlier
//! one, and the close of a connection arrives after what was sent on it.
//! Each close bumps the connection's epoch; a side that has been told of a
//! close no longer takes messages from before it.
//!
//! A partition is a cut cable: messages between groups vanish, but
//! connections stay up, so only health probes and advert expiry notice.

use crate::dist::Dist;
use meshwork_protocol::Time;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// One submitter–node connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Link {
    /// The connection is open.
    pub(crate) up: bool,
    /// Closes so far.
    pub(crate) epoch: u32,
    /// Closes each side has been told of (0: the lower node).
    seen: [u32; 2],
    /// Last delivery time towards each side (FIFO).
    clock: [Time; 2],
    /// A redial waits for the two sides to reach each other again.
    pub(crate) redial: bool,
}

/// Where a connection is and which end a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct End {
    /// Index of the connection.
    pub(crate) link: usize,
    /// 0: the lower-numbered node, 1: the other.
    pub(crate) side: usize,
}

/// Latency, loss, partitions and connections.
#[derive(Debug)]
pub(crate) struct Network {
    latency: Dist,
    loss: f64,
    /// Submitters: nodes `0..submitters`.
    submitters: u32,
    /// `links[hi * submitters + lo]`: the connection of submitter `lo` and node `hi > lo`.
    links: Vec<Link>,
    /// Partition group of each node; empty when there is no partition.
    groups: Vec<u32>,
}

impl Network {
    pub(crate) fn new(latency: Dist, loss: f64, submitters: u32) -> Network {
        Network { latency, loss, submitters, links: Vec::new(), groups: Vec::new() }
    }

    /// Makes room for the connections of node `n` (called for every new node, in order).
    pub(crate) fn add_node(&mut self) {
        self.links.extend(std::iter::repeat_n(Link::default(), self.submitters as usize));
    }

    /// The connection between `a` and `b`, seen from `a`'s end.
    pub(crate) fn end(&self, a: u32, b: u32) -> Option<End> {
        let (lo, hi) = (a.min(b), a.max(b));
        (lo < self.submitters && lo != hi)
            .then(|| End { link: hi as usize * self.submitters as usize + lo as usize, side: usize::from(a != lo) })
    }

    pub(crate) fn link(&self, e: End) -> &Link {
        &self.links[e.link]
    }

    pub(crate) fn link_mut(&mut self, e: End) -> &mut Link {
        &mut self.links[e.link]
    }

    /// The other node's side.
    pub(crate) fn other(e: End) -> usize {
        1 - e.side
    }

    /// One latency sample.
    pub(crate) fn latency(&self, rng: &mut ChaCha8Rng) -> Duration {
        Duration::from_micros(self.latency.sample_micros(rng))
    }

    /// Does this message get lost?
    pub(crate) fn lost(&self, rng: &mut ChaCha8Rng) -> bool {
        self.loss > 0.0 && rng.random::<f64>() < self.loss
    }

    /// When something sent now over `e` reaches `side`: after `delay`, and
    /// never before what was sent earlier the same way.
    pub(crate) fn fifo(&mut self, e: End, side: usize, now: Time, delay: Duration) -> Time {
        let link = &mut self.links[e.link];
        let at = (now + delay).max(link.clock[side]);
        link.clock[side] = at;
        at
    }

    /// Has `side` not yet been told that connection `epoch` closed?
    pub(crate) fn current(&self, e: End, side: usize, epoch: u32) -> bool {
        self.links[e.link].seen[side] == epoch
    }

    /// `side` was told of the close that ended `epoch - 1`.
    pub(crate) fn saw_close(&mut self, e: End, side: usize, epoch: u32) {
        let seen = &mut self.links[e.link].seen[side];
        *seen = (*seen).max(epoch);
    }

    /// Can `a` and `b` exchange messages?
    pub(crate) fn reachable(&self, a: u32, b: u32) -> bool {
        self.group(a) == self.group(b)
    }

    fn group(&self, n: u32) -> u32 {
        self.groups.get(n as usize).copied().unwrap_or(0)
    }

    /// Cuts the network into `groups` (nodes not listed are in the first).
    pub(crate) fn partition(&mut self, groups: &[Vec<u32>], nodes: usize) {
        self.groups = vec![0; nodes];
        for (g, members) in groups.iter().enumerate() {
            for &n in members {
                if let Some(slot) = self.groups.get_mut(n as usize) {
                    *slot = g as u32;
                }
            }
        }
    }

    /// Ends the partition.
    pub(crate) fn heal(&mut self) {
        self.groups.clear();
    }

    /// Is a partition in force?
    pub(crate) fn partitioned(&self) -> bool {
        !self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn connections_are_shared_and_fifo() {
        let mut net = Network::new(Dist::parse_duration("fixed:1ms").unwrap(), 0.0, 2);
        for _ in 0..5 {
            net.add_node();
        }
        assert_eq!(net.end(0, 3).map(|e| e.link), net.end(3, 0).map(|e| e.link));
        assert_ne!(net.end(0, 3).unwrap().side, net.end(3, 0).unwrap().side);
        assert!(net.end(0, 1).is_some(), "submitters are connected to each other");
        assert!(net.end(2, 3).is_none(), "workers are not connected to each other");
        assert!(net.end(1, 1).is_none());
        let e = net.end(0, 3).unwrap();
        let t = Time::from_micros(100);
        let first = net.fifo(e, 1, t, Duration::from_millis(5));
        let second = net.fifo(e, 1, t, Duration::from_millis(1));
        assert!(second >= first, "a later message does not overtake");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(net.latency(&mut rng), Duration::from_millis(1));
        assert!(!net.lost(&mut rng));
    }

    #[test]
    fn partitions_cut_between_groups_only() {
        let mut net = Network::new(Dist::parse_duration("fixed:1ms").unwrap(), 0.0, 1);
        net.partition(&[vec![0, 1], vec![2, 3]], 5);
        assert!(net.reachable(0, 1));
        assert!(!net.reachable(1, 2));
        assert!(net.reachable(0, 4), "unlisted nodes are in the first group");
        assert!(net.reachable(0, 9), "so are nodes that join later");
        net.heal();
        assert!(net.reachable(1, 2) && !net.partitioned());
    }
}
