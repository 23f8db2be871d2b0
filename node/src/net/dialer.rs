//! Where peers can be reached and when to dial them again: a bounded
//! address book, the `--join` addresses (with why the last dial of each
//! failed, for the CLI to tell the user), and redials with backoff.
//!
//! Redials are for members worth having back: a worker whose connection
//! dropped while it still advertised tasks, or a join address not yet
//! reached. Short-lived clients (`meshwork run`, `meshwork peers`) announce
//! no tasks when they leave, so nobody keeps dialling them; every redial
//! backs off (1 s, 2 s, 4 s … 30 s) and a lost peer is given up after five
//! minutes (discovery brings it back if it returns): the schedule of
//! [`meshwork_protocol::redial`], which the simulator models too.

use libp2p::multiaddr::Protocol;
use libp2p::swarm::{DialError, ListenError};
use libp2p::{Multiaddr, PeerId, TransportError};
use meshwork_protocol::redial::{FIRST as REDIAL_FIRST, GIVE_UP as REDIAL_FOR, MAX as REDIAL_MAX};
use std::collections::HashMap;
use std::error::Error;
use std::io;
use std::time::{Duration, Instant};

/// Addresses kept per peer (the most recent), and taken from one
/// announcement of a peer's own (the first listed).
pub(crate) const ADDRS_PER_PEER: usize = 8;
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

/// A `--join` address, its redial schedule and why its last dial failed.
#[derive(Debug)]
struct Join {
    addr: Multiaddr,
    backoff: Backoff,
    failed: Option<String>,
}

/// The address book and the redial schedule.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    book: HashMap<PeerId, Entry>,
    clock: u64,
    lost: HashMap<PeerId, Backoff>,
    joins: Vec<Join>,
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

    /// `peer` left and is not worth redialling: forget where it was.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        if !self.lost.contains_key(peer) {
            self.book.remove(peer);
        }
    }

    /// A join address to dial until connected.
    pub(crate) fn join(&mut self, addr: Multiaddr, now: Instant) {
        // Dialled once already by the caller.
        self.joins.push(Join { addr, backoff: Backoff::new(now, REDIAL_FIRST), failed: None });
    }

    /// A member worth having (back) is not connected: dial it, with
    /// backoff, for a while. With no address of ours for it, the dial asks
    /// the behaviours (Kademlia, mDNS) where it is.
    pub(crate) fn lost(&mut self, peer: PeerId, now: Instant) {
        self.lost.entry(peer).or_insert_with(|| Backoff::new(now, Duration::ZERO));
    }

    /// Is `addr`, by which `peer` was reached, one of the join addresses?
    pub(crate) fn is_join(&self, peer: &PeerId, addr: &Multiaddr) -> bool {
        self.joins.iter().any(|j| peer_of(&j.addr).map_or(bare(&j.addr) == bare(addr), |id| id == *peer))
    }

    /// A dial failed: if it was one of a join address, remembers why. The
    /// peer id and addresses are the failed dial's own.
    pub(crate) fn dial_failed(&mut self, peer: Option<PeerId>, error: &DialError) {
        let dialled: Vec<Multiaddr> = match error {
            DialError::Transport(tried) => tried.iter().map(|(a, _)| bare(a)).collect(),
            DialError::WrongPeerId { address, .. } => vec![bare(address)],
            _ => Vec::new(),
        };
        for join in &mut self.joins {
            let named = peer_of(&join.addr);
            if (named.is_some() && named == peer) || dialled.contains(&bare(&join.addr)) {
                join.failed = Some(dial_failure(error));
            }
        }
    }

    /// The join addresses whose last dial failed, and why.
    pub(crate) fn join_failures(&self) -> Vec<(Multiaddr, String)> {
        self.joins.iter().filter_map(|j| Some((j.addr.clone(), j.failed.clone()?))).collect()
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
        for join in self.joins.iter_mut() {
            if !joined(&join.addr) && join.backoff.due(now) {
                due.joins.push(join.addr.clone());
            }
        }
        due
    }
}

/// The addresses worth keeping of those a peer announced as its own (its
/// identify listen addresses): at most [`ADDRS_PER_PEER`], each an IP
/// address we could dial (no DNS name to look up, no other transport),
/// never unspecified, multicast or broadcast, and on loopback only if the
/// peer is connected to us over loopback (`loopback_ok`): from anywhere
/// else its loopback is not where it is, and any number of them could make
/// us dial ourselves.
pub(crate) fn announced(addrs: Vec<Multiaddr>, loopback_ok: bool) -> Vec<Multiaddr> {
    let plausible = |a: &Multiaddr| match a.iter().next() {
        Some(Protocol::Ip4(ip)) => {
            !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || (ip.is_loopback() && !loopback_ok))
        }
        Some(Protocol::Ip6(ip)) => !(ip.is_unspecified() || ip.is_multicast() || (ip.is_loopback() && !loopback_ok)),
        _ => false,
    };
    addrs.into_iter().filter(plausible).take(ADDRS_PER_PEER).collect()
}

/// Is `addr` (a connection's remote address) on loopback?
pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(Protocol::Ip6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// The peer id a `/p2p/` address names, if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| if let Protocol::P2p(id) = p { Some(id) } else { None })
}

/// `addr` without its `/p2p/` part.
fn bare(addr: &Multiaddr) -> Multiaddr {
    addr.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect()
}

/// Why a dial failed, in the words of someone who typed `--join`: the
/// socket's own errors by name, anything after the connection was made
/// as the handshake (where a different `--secret-file` shows up).
fn dial_failure(error: &DialError) -> String {
    match error {
        DialError::WrongPeerId { obtained, .. } => format!("wrong peer id: the node there is {obtained}"),
        DialError::Transport(tried) => match tried.iter().map(|(_, e)| e).next() {
            Some(TransportError::MultiaddrNotSupported(a)) => format!("address not supported: {a}"),
            Some(TransportError::Other(e)) => match socket_error(e) {
                Some(io::ErrorKind::ConnectionRefused) => "connection refused (is a node listening there?)".into(),
                Some(io::ErrorKind::TimedOut) => "timed out".into(),
                Some(kind) => format!("cannot connect: {}", io::Error::from(kind)),
                None => format!("handshake failed ({}); does the other side use the same --secret-file?", chain(e)),
            },
            None => error.to_string(),
        },
        other => other.to_string(),
    }
}

/// Why a connection a peer opened to us failed, when it is worth telling
/// the user: a failed handshake, which is what a peer with a different
/// `--secret-file` (or none) looks like from this side. Other failures
/// (the peer hung up, a denied connection) are routine.
pub(crate) fn incoming_failure(error: &ListenError) -> Option<String> {
    match error {
        ListenError::Transport(TransportError::Other(e)) if socket_error(e).is_none() => {
            Some(format!("handshake failed ({}); does the other side use the same --secret-file?", chain(e)))
        }
        _ => None,
    }
}

/// The error kind of the socket a connection attempt failed on, if it
/// failed there (libp2p wraps it in its transports' errors).
fn socket_error(e: &io::Error) -> Option<io::ErrorKind> {
    use io::ErrorKind::*;
    let socket = |kind: &io::ErrorKind| {
        matches!(kind, ConnectionRefused | TimedOut | HostUnreachable | NetworkUnreachable | AddrNotAvailable)
    };
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if socket(&io.kind()) {
                return Some(io.kind());
            }
            // An io::Error's `source` skips the error it wraps.
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
        }
        next = err.source();
    }
    // The DNS transport folds the errors of several dials into one message
    // with no source: the OS error codes in its text are what is left.
    let text = chain(e);
    let codes = text.match_indices("(os error ").filter_map(|(at, m)| text[at + m.len()..].split(')').next());
    codes.filter_map(|n| n.parse().ok()).map(|n| io::Error::from_raw_os_error(n).kind()).find(socket)
}

/// Every message of an error chain, outermost first, on one line and
/// without repeats (libp2p's layers often say the same thing twice).
fn chain(e: &io::Error) -> String {
    let mut texts = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        texts.push(err.to_string().replace("Multiple dial errors occurred:\n - ", "").replace("\n - ", "; "));
        next = match err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in texts.iter().flat_map(|t| t.split(": ")) {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
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
    fn a_failed_join_says_why_in_the_words_of_who_typed_it() {
        let mut d = Dialer::default();
        let peer = PeerId::random();
        let join: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        d.join(join.clone(), Instant::now());
        let failed = |e: io::Error| DialError::Transport(vec![(addr(1), TransportError::Other(e))]);
        let why = |d: &Dialer| d.join_failures().into_iter().map(|(a, w)| format!("{a}: {w}")).collect::<Vec<_>>();
        // As the DNS transport reports it: one message, no sources.
        let refused =
            format!("Multiple dial errors occurred:\n - Connection refused (os error {})", libc::ECONNREFUSED);
        d.dial_failed(Some(peer), &failed(io::Error::other(refused)));
        assert_eq!(why(&d), [format!("{join}: connection refused (is a node listening there?)")]);
        let other = PeerId::random();
        d.dial_failed(Some(peer), &DialError::WrongPeerId { obtained: other, address: addr(1) });
        assert_eq!(why(&d), [format!("{join}: wrong peer id: the node there is {other}")]);
        d.dial_failed(Some(peer), &failed(io::Error::other(io::Error::other("decrypt error"))));
        assert_eq!(
            why(&d),
            [format!("{join}: handshake failed (decrypt error); does the other side use the same --secret-file?")]
        );
        // Another peer's failed dial at another address is not the join's.
        let mut d = Dialer::default();
        d.join(join.clone(), Instant::now());
        d.dial_failed(
            Some(other),
            &DialError::Transport(vec![(addr(2), TransportError::Other(io::Error::other("x")))]),
        );
        assert!(d.join_failures().is_empty());
    }

    #[test]
    fn announced_addresses_are_few_and_plausible() {
        let parse = |a: &str| a.parse::<Multiaddr>().unwrap();
        let lan = parse("/ip4/10.0.0.7/tcp/4001");
        let junk =
            ["/ip4/0.0.0.0/tcp/1", "/ip4/224.0.0.1/tcp/1", "/ip6/::/tcp/1", "/dns4/example.com/tcp/1", "/memory/5"];
        let mut addrs: Vec<Multiaddr> = junk.iter().map(|a| parse(a)).collect();
        addrs.extend([addr(1), lan.clone(), parse("/ip6/::1/tcp/1")]);
        assert_eq!(
            announced(addrs.clone(), false),
            std::slice::from_ref(&lan),
            "a peer on the LAN announcing loopback"
        );
        assert_eq!(announced(addrs, true), [addr(1), lan, parse("/ip6/::1/tcp/1")], "a peer on this machine");
        let many: Vec<Multiaddr> = (0..1000).map(addr).collect();
        assert_eq!(announced(many, true), (0..ADDRS_PER_PEER as u16).map(addr).collect::<Vec<_>>());
        assert!(is_loopback(&addr(1)) && !is_loopback(&parse("/ip4/10.0.0.7/tcp/4001")));
    }

    #[test]
    fn a_peer_that_left_is_forgotten_unless_redialled() {
        let mut d = Dialer::default();
        let (visitor, worker) = (PeerId::random(), PeerId::random());
        d.remember(visitor, addr(1));
        d.remember(worker, addr(2));
        d.lost(worker, Instant::now());
        d.forget(&visitor);
        d.forget(&worker);
        assert!(d.addrs(&visitor).is_empty());
        assert_eq!(d.addrs(&worker), [addr(2)], "still redialled at its address");
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
