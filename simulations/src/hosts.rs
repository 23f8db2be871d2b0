//! IP addresses, and gossipsub's IP-colocation penalty as the node used to
//! configure it (`--hosts`, `--colocation-penalty`).
//!
//! Gossipsub scores every peer it is connected to. Its P6 term punishes
//! peers that share an IP address: with `n` connected peers on the IP,
//! P6 = weight × (n − threshold)² once `n` passes the threshold. The node
//! kept libp2p's defaults (weight −5, threshold 10) until it was found to
//! graylist healthy peers; below a score of −80 (the graylist threshold)
//! everything the peer sends is ignored. So a node connected to more than
//! 14 peers on one IP (−5 × 5² = −125) ignores every advert published or
//! forwarded by any of them: on one machine (all on 127.0.0.1) that is
//! every peer once the mesh passes 15 nodes.
//!
//! Only P6 is modelled. The positive terms (time in mesh, first deliveries)
//! are ignored: with the advert topic's weights they add at most a few
//! points, far from lifting −125 over −80. Two milder effects of a negative
//! score are left out too: peers below 0 are pruned from the forwarding
//! mesh, and below −50 they are not published to; both only remove
//! copies that P6's graylist already makes the receiver ignore.
//!
//! The count is kept per receiver and IP: nodes present on the IP, minus
//! the receiver itself, minus those whose connection to it is closed (only
//! connections to submitters ever close in the simulation, see `network`).
//! It is tracked only when the penalty is on.

use rustc_hash::FxHashMap;

/// P6 weight the node used.
const P6_WEIGHT: f64 = -5.0;
/// Peers on one IP before P6 applies.
const P6_THRESHOLD: f64 = 10.0;
/// Below this score a peer's messages are ignored.
const GRAYLIST_THRESHOLD: f64 = -80.0;

/// P6 of a peer sharing its IP with `n` connected peers.
pub(crate) fn p6(n: u32) -> f64 {
    let over = (n as f64 - P6_THRESHOLD).max(0.0);
    P6_WEIGHT * over * over
}

/// Which node is on which IP, and who is connected to how many peers on each.
#[derive(Debug)]
pub(crate) struct Hosts {
    penalty: bool,
    /// IP of each node.
    of: Vec<u32>,
    /// Nodes present on each IP.
    present: Vec<u32>,
    /// (node, IP): present peers on that IP whose connection to the node is closed.
    cut: FxHashMap<(u32, u32), u32>,
}

impl Hosts {
    pub(crate) fn new(penalty: bool) -> Hosts {
        Hosts { penalty, of: Vec::new(), present: Vec::new(), cut: FxHashMap::default() }
    }

    /// Node `of.len()` appears on IP `host`.
    pub(crate) fn add(&mut self, host: u32) {
        self.of.push(host);
        if self.present.len() <= host as usize {
            self.present.resize(host as usize + 1, 0);
        }
        self.present[host as usize] += 1;
    }

    /// Node `n` is gone; `closed` are the present peers whose connection
    /// to it was already closed (the others lose it through `present`).
    pub(crate) fn gone(&mut self, n: u32, closed: impl Iterator<Item = u32>) {
        let h = self.of[n as usize];
        self.present[h as usize] -= 1;
        if self.penalty {
            for p in closed {
                self.count(p, h, -1);
                self.count(n, self.of[p as usize], -1);
            }
        }
    }

    /// The connection between present nodes `a` and `b` opened (`up`) or closed.
    pub(crate) fn link(&mut self, a: u32, b: u32, up: bool) {
        if self.penalty {
            let d = if up { -1 } else { 1 };
            self.count(a, self.of[b as usize], d);
            self.count(b, self.of[a as usize], d);
        }
    }

    fn count(&mut self, n: u32, host: u32, delta: i32) {
        let c = self.cut.entry((n, host)).or_default();
        *c = c.saturating_add_signed(delta);
        if *c == 0 {
            self.cut.remove(&(n, host));
        }
    }

    /// Peers on IP `host` that present node `r` is connected to.
    pub(crate) fn peers_on(&self, r: u32, host: u32) -> u32 {
        let here = self.present.get(host as usize).copied().unwrap_or(0);
        let me = u32::from(self.of[r as usize] == host);
        let cut = self.cut.get(&(r, host)).copied().unwrap_or(0);
        here.saturating_sub(me).saturating_sub(cut)
    }

    /// Does `r` ignore what `sender` publishes or forwards (P6 below the graylist)?
    pub(crate) fn graylists(&self, r: u32, sender: u32) -> bool {
        self.penalty && p6(self.peers_on(r, self.of[sender as usize])) < GRAYLIST_THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_fourteen_peers_on_an_ip_are_graylisted() {
        assert_eq!(p6(10), 0.0);
        assert_eq!(p6(14), -80.0, "at the threshold, not below it");
        assert_eq!(p6(15), -125.0);
        for (nodes, graylisted) in [(8, false), (12, false), (15, false), (16, true), (20, true)] {
            let mut h = Hosts::new(true);
            (0..nodes).for_each(|_| h.add(0));
            assert_eq!(h.graylists(0, 1), graylisted, "{nodes} nodes on one IP");
        }
        let mut off = Hosts::new(false);
        (0..20).for_each(|_| off.add(0));
        assert!(!off.graylists(0, 1), "no penalty, no graylist");
    }

    #[test]
    fn closed_connections_and_departures_lower_the_count() {
        let mut h = Hosts::new(true);
        (0..17).for_each(|n| h.add(n % 2)); // nine on IP 0, eight on IP 1
        assert_eq!((h.peers_on(0, 0), h.peers_on(0, 1), h.peers_on(1, 0)), (8, 8, 9));
        h.link(0, 2, false);
        assert_eq!((h.peers_on(0, 0), h.peers_on(2, 0)), (7, 7));
        h.gone(2, [0].into_iter());
        assert_eq!(h.peers_on(0, 0), 7, "the closed connection to node 2 is not counted twice");
        assert_eq!(h.peers_on(4, 0), 7);
        h.link(0, 3, false);
        h.link(0, 3, true);
        assert_eq!(h.peers_on(0, 1), 8);
        assert!(h.cut.is_empty(), "nothing left over");
    }
}
