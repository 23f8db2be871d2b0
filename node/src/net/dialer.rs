//! Where peers can be reached and when to dial them again: a bounded
//! address book, the `--join` addresses, and redials with backoff.
//!
//! Redials are for members worth having back: a worker whose connection
//! dropped while it still advertised tasks, or a join address not yet
//! reached. Short-lived clients (`meshwork run`, `meshwork peers`) announce
//! no tasks when they leave, so nobody keeps dialling them; every redial
//! backs off (1 s, 2 s, 4 s … 30 s) and a lost peer is given up after five
//! minutes (discovery brings it back if it returns): the schedule of
//! [`meshwork_protocol::redial`], which the simulator models too.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use meshwork_protocol::redial::{FIRST as REDIAL_FIRST, GIVE_UP as REDIAL_FOR, MAX as REDIAL_MAX};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Addresses kept per peer (the most recent).
const ADDRS_PER_PEER: usize = 8;
/// Peers whose addresses are kept; the least recently seen go first.
const MAX_PEERS: usize = 4096;

/// When to try a target again.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    since: Instant,
    next: Instant,
    delay: Duration,
}

impl Backoff {
    /// First try after `wait`, then after 1 s, 2 s, 4 s … [`REDIAL_MAX`].
    fn new(now: Instant, wait: Duration) -> Backoff {
        Backoff { since: now, next: now + wait, delay: REDIAL_FIRST / 2 }
    }

    /// Due now? Then the next try waits twice as long.
    fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.delay = (self.delay * 2).min(REDIAL_MAX);
        self.next = now + self.delay;
        true
    }
}

#[derive(Debug)]
struct Entry {
    addrs: Vec<Multiaddr>,
    seen: u64,
}

/// The address book and the redial schedule.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    book: HashMap<PeerId, Entry>,
    clock: u64,
    lost: HashMap<PeerId, Backoff>,
    joins: Vec<(Multiaddr, Backoff)>,
}

/// What is due for a dial now.
#[derive(Debug, Default)]
pub(crate) struct Due {
    /// Known peers, to dial at their remembered addresses.
    pub(crate) peers: Vec<(PeerId, Vec<Multiaddr>)>,
    /// Join addresses not yet reached.
    pub(crate) joins: Vec<Multiaddr>,
}

impl Dialer {
    /// Notes that `peer` was seen at `addr` (bounded: old addresses and
    /// long-unseen peers are dropped).
    pub(crate) fn remember(&mut self, peer: PeerId, addr: Multiaddr) {
        self.clock += 1;
        let entry = self.book.entry(peer).or_insert_with(|| Entry { addrs: Vec::new(), seen: 0 });
        entry.seen = self.clock;
        if let Some(i) = entry.addrs.iter().position(|a| *a == addr) {
            entry.addrs.remove(i);
        }
        entry.addrs.push(addr);
        if entry.addrs.len() > ADDRS_PER_PEER {
            entry.addrs.remove(0);
        }
        if self.book.len() > MAX_PEERS {
            self.evict();
        }
    }

    /// Where `peer` was seen, most recent last.
    pub(crate) fn addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.book.get(peer).map(|e| e.addrs.clone()).unwrap_or_default()
    }

    fn evict(&mut self) {
        let lost = &self.lost;
        let oldest =
            self.book.iter().filter(|(p, _)| !lost.contains_key(p)).min_by_key(|(_, e)| e.seen).map(|(p, _)| *p);
        if let Some(p) = oldest {
            self.book.remove(&p);
        }
    }

    /// A join address to dial until connected.
    pub(crate) fn join(&mut self, addr: Multiaddr, now: Instant) {
        // Dialled once already by the caller.
        self.joins.push((addr, Backoff::new(now, REDIAL_FIRST)));
    }

    /// A member worth having (back) is not connected: dial it, with
    /// backoff, for a while. With no address of ours for it, the dial asks
    /// the behaviours (Kademlia, mDNS) where it is.
    pub(crate) fn lost(&mut self, peer: PeerId, now: Instant) {
        self.lost.entry(peer).or_insert_with(|| Backoff::new(now, Duration::ZERO));
    }

    /// Is `addr`, by which `peer` was reached, one of the join addresses?
    pub(crate) fn is_join(&self, peer: &PeerId, addr: &Multiaddr) -> bool {
        let bare = |a: &Multiaddr| a.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect::<Multiaddr>();
        self.joins.iter().any(|(j, _)| peer_of(j).map_or(bare(j) == bare(addr), |id| id == *peer))
    }

    /// Connected to `peer`: nothing to redial.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        self.lost.remove(peer);
    }

    /// Peers being redialled now.
    pub(crate) fn redialling(&self) -> usize {
        self.lost.len()
    }

    /// What to dial now; `connected` says whether a peer is connected
    /// already, `joined` whether a join address reached its node.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        connected: impl Fn(&PeerId) -> bool,
        joined: impl Fn(&Multiaddr) -> bool,
    ) -> Due {
        let mut due = Due::default();
        self.lost.retain(|p, b| !connected(p) && now.duration_since(b.since) < REDIAL_FOR);
        for (peer, backoff) in self.lost.iter_mut() {
            if backoff.due(now) {
                let addrs = self.book.get(peer).map(|e| e.addrs.clone()).unwrap_or_default();
                due.peers.push((*peer, addrs));
            }
        }
        for (addr, backoff) in self.joins.iter_mut() {
            if !joined(addr) && backoff.due(now) {
                due.joins.push(addr.clone());
            }
        }
        due
    }
}

/// The peer id a `/p2p/` address names, if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| if let Protocol::P2p(id) = p { Some(id) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn redials_back_off_and_give_up() {
        let mut d = Dialer::default();
        let p = PeerId::random();
        d.remember(p, addr(1));
        let t0 = Instant::now();
        d.lost(p, t0);
        let mut dials = Vec::new();
        let mut t = t0;
        while t < t0 + REDIAL_FOR + Duration::from_secs(60) {
            if !d.due(t, |_| false, |_| false).peers.is_empty() {
                dials.push(t.duration_since(t0).as_secs());
            }
            t += Duration::from_millis(250);
        }
        assert_eq!(&dials[..6], &[0, 1, 3, 7, 15, 31], "doubling waits: {dials:?}");
        assert!(dials.windows(2).all(|w| w[1] - w[0] <= REDIAL_MAX.as_secs()), "{dials:?}");
        assert!(*dials.last().unwrap() < REDIAL_FOR.as_secs(), "given up after {REDIAL_FOR:?}: {dials:?}");
        assert!(dials.len() < 15, "{} dials in five minutes", dials.len());
        assert_eq!(d.redialling(), 0);
    }

    #[test]
    fn connected_peers_are_not_redialled() {
        let mut d = Dialer::default();
        let (known, other) = (PeerId::random(), PeerId::random());
        d.remember(known, addr(1));
        let t0 = Instant::now();
        d.lost(known, t0);
        d.lost(other, t0);
        let due = d.due(t0 + Duration::from_secs(2), |p| *p == known, |_| false);
        assert_eq!(due.peers, vec![(other, Vec::new())], "only the unconnected one, addresses left to discovery");
        assert_eq!(d.redialling(), 1);
    }

    #[test]
    fn the_address_book_is_bounded() {
        let mut d = Dialer::default();
        let p = PeerId::random();
        for port in 0..100 {
            d.remember(p, addr(port));
        }
        assert_eq!(d.addrs(&p).len(), ADDRS_PER_PEER);
        assert_eq!(d.addrs(&p).last(), Some(&addr(99)));
        for _ in 0..MAX_PEERS + 10 {
            d.remember(PeerId::random(), addr(1));
        }
        assert_eq!(d.book.len(), MAX_PEERS);
        assert!(d.addrs(&p).is_empty(), "the least recently seen went first");
    }
}
