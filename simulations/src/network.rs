//! The network model: latency, loss, partitions, IP addresses, and the
//! connections.
//!
//! The real mesh is fully connected. Here only the connections that carry
//! requests are modelled one by one: those between each submitter and
//! every other node (workers answer, they never ask). Connections between
//! two workers exist implicitly while both are present; they carry only
//! gossip (see `gossip`) and never close.
//!
//! A modelled connection is FIFO in each direction like TCP: a message
//! never overtakes an earlier one, and the close of a connection arrives
//! after what was sent on it. Each close bumps the connection's epoch; a
//! side that has been told of a close no longer takes messages from before
//! it. Opening and closing go through [`Network::open`] and
//! [`Network::close`], which keep the per-IP connection counts of `hosts`.
//!
//! A partition is a cut cable: messages between groups vanish, but
//! connections stay up, so only health probes (and, under the old rule,
//! advert expiry) notice.

use crate::dist::Dist;
use crate::hosts::Hosts;
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

/// Latency, loss, partitions, addresses and connections.
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
    /// Nodes not crashed or gone.
    present: Vec<bool>,
    /// Hung nodes: their sockets stay open, they read and forward nothing.
    frozen: Vec<bool>,
    pub(crate) hosts: Hosts,
}

impl Network {
    pub(crate) fn new(latency: Dist, loss: f64, submitters: u32, penalty: bool) -> Network {
        Network {
            latency,
            loss,
            submitters,
            links: Vec::new(),
            groups: Vec::new(),
            present: Vec::new(),
            frozen: Vec::new(),
            hosts: Hosts::new(penalty),
        }
    }

    /// Adds node `n` (the next number) on IP `host`; its connections start closed.
    pub(crate) fn add_node(&mut self, host: u32) -> u32 {
        let n = self.present.len() as u32;
        self.links.extend(std::iter::repeat_n(Link::default(), self.submitters as usize));
        self.present.push(true);
        self.frozen.push(false);
        self.hosts.add(host);
        for p in self.linked(n).filter(|p| self.present[*p as usize]).collect::<Vec<_>>() {
            self.hosts.link(n, p, false);
        }
        n
    }

    /// Node `n` crashed or left: it no longer counts anywhere.
    pub(crate) fn remove_node(&mut self, n: u32) {
        let closed: Vec<u32> = self
            .linked(n)
            .filter(|p| self.present[*p as usize])
            .filter(|p| self.end(n, *p).is_some_and(|e| !self.links[e.link].up))
            .collect();
        self.present[n as usize] = false;
        self.frozen[n as usize] = false;
        self.hosts.gone(n, closed.into_iter());
    }

    /// The nodes `n` has a modelled connection with.
    pub(crate) fn linked(&self, n: u32) -> impl Iterator<Item = u32> {
        let (k, len) = (self.submitters, self.present.len() as u32);
        let others = if n < k { 0..len } else { 0..k.min(len) };
        others.filter(move |p| *p != n)
    }

    /// The connection between `a` and `b`, seen from `a`'s end.
    pub(crate) fn end(&self, a: u32, b: u32) -> Option<End> {
        let (lo, hi) = (a.min(b), a.max(b));
        (lo < self.submitters && lo != hi)
            .then(|| End { link: hi as usize * self.submitters as usize + lo as usize, side: usize::from(a != lo) })
    }

    /// The two nodes of a connection, lower first.
    fn nodes_of(&self, e: End) -> (u32, u32) {
        let k = self.submitters as usize;
        ((e.link % k) as u32, (e.link / k) as u32)
    }

    pub(crate) fn link(&self, e: End) -> &Link {
        &self.links[e.link]
    }

    pub(crate) fn link_mut(&mut self, e: End) -> &mut Link {
        &mut self.links[e.link]
    }

    /// Opens connection `e` (a no-op if open).
    pub(crate) fn open(&mut self, e: End) {
        if self.links[e.link].up {
            return;
        }
        self.links[e.link].up = true;
        self.counted(e, true);
    }

    /// Closes connection `e`, starting a new epoch; returns it (a no-op if closed).
    pub(crate) fn close(&mut self, e: End) -> u32 {
        let link = &mut self.links[e.link];
        if link.up {
            link.up = false;
            link.epoch += 1;
            self.counted(e, false);
        }
        self.links[e.link].epoch
    }

    fn counted(&mut self, e: End, up: bool) {
        let (a, b) = self.nodes_of(e);
        if self.present[a as usize] && self.present[b as usize] {
            self.hosts.link(a, b, up);
        }
    }

    /// Is node `n` present (not crashed or gone)?
    pub(crate) fn present(&self, n: u32) -> bool {
        self.present.get(n as usize).copied().unwrap_or(false)
    }

    /// Nodes so far, gone ones included.
    pub(crate) fn len(&self) -> u32 {
        self.present.len() as u32
    }

    /// Stops (hung) or resumes node `n`.
    pub(crate) fn freeze(&mut self, n: u32, frozen: bool) {
        self.frozen[n as usize] = frozen;
    }

    /// Is `n` present and not hung?
    pub(crate) fn running(&self, n: u32) -> bool {
        self.present(n) && !self.frozen[n as usize]
    }

    /// Are `a` and `b` connected (a modelled connection that is open, or
    /// two present workers)?
    pub(crate) fn connected(&self, a: u32, b: u32) -> bool {
        match self.end(a, b) {
            Some(e) => self.links[e.link].up,
            None => a != b && self.present(a) && self.present(b),
        }
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
        let mut net = Network::new(Dist::parse_duration("fixed:1ms").unwrap(), 0.0, 2, false);
        for h in 0..5 {
            net.add_node(h);
        }
        assert_eq!(net.end(0, 3).map(|e| e.link), net.end(3, 0).map(|e| e.link));
        assert_ne!(net.end(0, 3).unwrap().side, net.end(3, 0).unwrap().side);
        assert!(net.end(0, 1).is_some(), "submitters are connected to each other");
        assert!(net.end(2, 3).is_none(), "connections between workers are not modelled");
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
        let mut net = Network::new(Dist::parse_duration("fixed:1ms").unwrap(), 0.0, 1, false);
        net.partition(&[vec![0, 1], vec![2, 3]], 5);
        assert!(net.reachable(0, 1));
        assert!(!net.reachable(1, 2));
        assert!(net.reachable(0, 4), "unlisted nodes are in the first group");
        assert!(net.reachable(0, 9), "so are nodes that join later");
        net.heal();
        assert!(net.reachable(1, 2) && !net.partitioned());
    }

    #[test]
    fn opening_and_closing_keep_the_colocation_counts() {
        let mut net = Network::new(Dist::parse_duration("fixed:1ms").unwrap(), 0.0, 1, true);
        for _ in 0..4 {
            net.add_node(0);
        }
        assert_eq!(net.hosts.peers_on(0, 0), 0, "the submitter's connections start closed");
        assert_eq!(net.hosts.peers_on(2, 0), 2, "workers are connected to each other");
        for p in 1..4 {
            let e = net.end(0, p).unwrap();
            net.open(e);
        }
        assert_eq!(net.hosts.peers_on(0, 0), 3);
        let e = net.end(3, 0).unwrap();
        assert_eq!(net.close(e), 1);
        assert_eq!(net.close(e), 1, "closing twice is one close");
        assert!(!net.connected(0, 3) && net.connected(1, 3));
        assert_eq!((net.hosts.peers_on(0, 0), net.hosts.peers_on(3, 0)), (2, 2));
        net.remove_node(3);
        assert_eq!((net.hosts.peers_on(0, 0), net.hosts.peers_on(1, 0)), (2, 2));
        assert!(!net.connected(1, 3) && !net.running(3));
    }
}
