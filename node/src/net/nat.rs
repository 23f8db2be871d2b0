//! Beyond one LAN: what a node knows about NATs, relays and the path its
//! connections take.
//!
//! - Reachability: AutoNAT asks peers to dial us back; its verdict is
//!   ours ([`Reachability`]), published in our adverts, and what peers
//!   advertised is kept for `meshwork peers`.
//! - Relays: a worker not known to be public listens through up to
//!   [`MAX_RELAYS`] peers that serve circuit relay v2 (found by identify,
//!   whether we joined through them or met them through Kademlia or the
//!   member list), so that submitters can reach it through them. Once
//!   AutoNAT says it is public it gives those listeners up. A node that
//!   runs nothing (`meshwork run`'s submit-only node) never needs to be
//!   dialled and takes no relay slot: in the lab, every short-lived
//!   submitter that did left a relayed address behind, and the dials of
//!   later nodes to those dead addresses used up the relay's per-IP circuit
//!   budget until a live worker could no longer be reached.
//! - Paths: every connection is direct or relayed. When a direct one to a
//!   peer opens (DCUtR punched a hole, or either side dialled it), the
//!   relayed ones are closed, so the RPC stream (opened on a random
//!   connection) moves to the direct one: requests that were on the relay
//!   fail and the machine re-places them, as after any lost connection.
//! - Pieces received are counted per peer and path, and a piece too large
//!   for the byte limit of the only (relayed) circuit to a peer is refused
//!   before it is sent ([`Nat::relay_only_limit`]).

use crate::net::behaviour::Behaviour;
use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{autonat, identify, relay, Multiaddr, PeerId, Swarm};
use meshwork_protocol::wire::Reachability;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Relays a node behind a NAT listens through at most.
pub const MAX_RELAYS: usize = 2;

/// What a node serving as a relay (`meshwork node --relay`) allows. The
/// defaults keep a relay safe to leave on: at most 16 circuits at once
/// (4 per peer), each closed after 10 minutes or 32 MiB, whichever comes
/// first; reservations are libp2p's defaults (128, 4 per peer, rate-limited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// Circuits relayed at once, in all.
    pub max_circuits: usize,
    /// Circuits relayed at once per peer.
    pub max_circuits_per_peer: usize,
    /// How long one circuit lasts at most.
    pub circuit_duration: Duration,
    /// Bytes one circuit carries at most.
    pub circuit_bytes: u64,
}

impl Default for RelayLimits {
    fn default() -> RelayLimits {
        RelayLimits {
            max_circuits: 16,
            max_circuits_per_peer: 4,
            circuit_duration: Duration::from_secs(600),
            circuit_bytes: 32 << 20,
        }
    }
}

impl RelayLimits {
    /// libp2p's relay configuration with these limits.
    pub fn config(&self) -> relay::Config {
        relay::Config {
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_duration: self.circuit_duration,
            max_circuit_bytes: self.circuit_bytes,
            ..relay::Config::default()
        }
    }
}

/// The way a connection goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// Straight to the peer (possibly through a NAT hole DCUtR punched).
    Direct,
    /// Through a circuit relay.
    Relayed,
}

impl Path {
    /// The path of a connection with this endpoint.
    fn of(endpoint: &ConnectedPoint) -> Path {
        if endpoint.is_relayed() {
            Path::Relayed
        } else {
            Path::Direct
        }
    }

    /// Its name in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Relayed => "relayed",
        }
    }
}

/// Pieces received from one peer, by path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PieceCounts {
    /// Over a direct connection.
    pub direct: u64,
    /// Over a relayed one.
    pub relayed: u64,
}

/// One open connection.
#[derive(Debug)]
struct Conn {
    path: Path,
    /// For a relayed connection, the relay it goes through.
    relay: Option<PeerId>,
    /// For a connection we dialled, the address dialled.
    dialled: Option<Multiaddr>,
}

/// The NAT, relay and path state of a node (owned by the driver).
#[derive(Debug, Default)]
pub(crate) struct Nat {
    /// Whether this node listens through relays (it runs pieces).
    relayed: bool,
    reachability: Reachability,
    /// Peers we listen through (their relay), with the listener.
    relays: HashMap<PeerId, ListenerId>,
    /// Every open connection, by peer.
    conns: HashMap<PeerId, HashMap<ConnectionId, Conn>>,
    /// Where we dialled peers directly (a relay's address for its circuits).
    dialled: HashMap<PeerId, Multiaddr>,
    /// Pieces received per peer, and the path the last ones took.
    pieces: HashMap<PeerId, (PieceCounts, Path)>,
    /// What peers advertised.
    advertised: HashMap<PeerId, Reachability>,
    /// Byte limit per circuit of the relays we opened circuits through.
    relay_limits: HashMap<PeerId, u64>,
    /// Byte limit of the circuits peers opened to us.
    inbound_limits: HashMap<PeerId, u64>,
    /// Connections we dialled back for AutoNAT, closed once due.
    dial_backs: Vec<(Instant, ConnectionId)>,
}

/// How long a connection dialled back for AutoNAT stays open: long enough
/// for the probed peer to finish its side of the handshake (closed at
/// once, it saw a broken pipe and warned of a failed handshake).
const DIAL_BACK_KEPT: Duration = Duration::from_secs(5);

impl Nat {
    /// The state of a node that runs pieces (`worker`: it listens through
    /// relays when it may need to) or not.
    pub(crate) fn new(worker: bool) -> Nat {
        Nat { relayed: worker, ..Nat::default() }
    }

    /// Our reachability as AutoNAT last judged it.
    pub(crate) fn reachability(&self) -> Reachability {
        self.reachability
    }

    /// What `peer` last advertised.
    pub(crate) fn advertised(&self, peer: &PeerId) -> Reachability {
        self.advertised.get(peer).copied().unwrap_or_default()
    }

    /// `peer` advertised `r`.
    pub(crate) fn heard(&mut self, peer: PeerId, r: Reachability) {
        self.advertised.insert(peer, r);
    }

    /// How we are connected to `peer` now: direct if any connection is.
    pub(crate) fn path(&self, peer: &PeerId) -> Option<Path> {
        let conns = self.conns.get(peer)?;
        if conns.values().any(|c| c.path == Path::Direct) {
            Some(Path::Direct)
        } else {
            conns.values().next().map(|c| c.path)
        }
    }

    /// A connection opened. A direct one makes the relayed ones to the
    /// same peer redundant: they are closed (see the module documentation).
    pub(crate) fn connected(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let path = Path::of(endpoint);
        let addr = match endpoint {
            ConnectedPoint::Dialer { address, .. } => address,
            ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr,
        };
        if let (Path::Direct, ConnectedPoint::Dialer { address, .. }) = (path, endpoint) {
            self.dialled.insert(peer, address.clone());
        }
        let conns = self.conns.entry(peer).or_default();
        let relay = (path == Path::Relayed).then(|| relay_of(addr)).flatten();
        let dialled = match endpoint {
            ConnectedPoint::Dialer { address, .. } => Some(address.clone()),
            ConnectedPoint::Listener { .. } => None,
        };
        conns.insert(id, Conn { path, relay, dialled });
        if path == Path::Direct {
            let relayed: Vec<ConnectionId> =
                conns.iter().filter(|(_, c)| c.path == Path::Relayed).map(|(id, _)| *id).collect();
            for c in relayed {
                tracing::info!(%peer, "direct connection open: closing the relayed one");
                swarm.close_connection(c);
            }
        }
    }

    /// A connection closed. When it was the last one to `peer`, returns
    /// the pieces it sent us (if any), which are then forgotten.
    pub(crate) fn closed(&mut self, peer: PeerId, id: ConnectionId) -> Option<PieceCounts> {
        let conns = self.conns.get_mut(&peer)?;
        conns.remove(&id);
        if !conns.is_empty() {
            return None;
        }
        self.conns.remove(&peer);
        self.inbound_limits.remove(&peer);
        self.pieces.remove(&peer).map(|(counts, _)| counts)
    }

    /// `peer` sent us `n` pieces. Returns the path if it differs from the
    /// last pieces' (or these are its first).
    pub(crate) fn pieces(&mut self, peer: PeerId, n: u64) -> Option<Path> {
        let path = self.path(&peer).unwrap_or(Path::Direct);
        let (counts, last) = self.pieces.entry(peer).or_insert((PieceCounts::default(), path));
        let first = counts.direct + counts.relayed == 0;
        match path {
            Path::Direct => counts.direct += n,
            Path::Relayed => counts.relayed += n,
        }
        let changed = first || *last != path;
        *last = path;
        changed.then_some(path)
    }

    /// The byte limit of the circuit a message to `peer` must go through,
    /// when every connection to it is relayed and the relay set one.
    pub(crate) fn relay_only_limit(&self, peer: &PeerId) -> Option<u64> {
        let conns = self.conns.get(peer)?;
        if conns.is_empty() || conns.values().any(|c| c.path == Path::Direct) {
            return None;
        }
        let through = conns.values().filter_map(|c| c.relay.and_then(|r| self.relay_limits.get(&r)));
        through.chain(self.inbound_limits.get(peer)).min().copied()
    }

    /// What identify said about `peer`: a relay is listened through if we
    /// may need one.
    pub(crate) fn identified(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, info: &identify::Info) {
        let serves = info.protocols.contains(&relay::HOP_PROTOCOL_NAME);
        if !serves
            || !self.relayed
            || self.reachability == Reachability::Public
            || self.relays.len() >= MAX_RELAYS
            || self.relays.contains_key(&peer)
        {
            return;
        }
        let Some(base) = self.dialled.get(&peer).cloned().or_else(|| usable(&info.listen_addrs)) else {
            tracing::debug!(%peer, "a relay without a usable address");
            return;
        };
        let addr = without_peer(&base).with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
        match swarm.listen_on(addr.clone()) {
            Ok(listener) => {
                tracing::info!(relay = %peer, %addr, "listening through a relay");
                self.relays.insert(peer, listener);
            }
            Err(e) => tracing::warn!(relay = %peer, %addr, error = %e, "cannot listen through a relay"),
        }
    }

    /// A listener closed: if it was a relay's, another may take its place
    /// (the same relay again once it reconnects and identifies).
    pub(crate) fn listener_closed(&mut self, listener: ListenerId) {
        self.relays.retain(|_, l| *l != listener);
    }

    /// As an AutoNAT server, we dialled `peer` back at `address` to tell it
    /// whether it can be reached, and it can: that connection has done its
    /// work, so it is closed a few seconds later. Left open (the swarm keeps idle connections
    /// for an hour), every probe added one, the peer's next dial back went
    /// over the per-peer connection limit, and the peer judged itself
    /// behind NAT on a plain LAN (and warned of a failed handshake).
    fn close_dial_back(&mut self, peer: PeerId, address: &Multiaddr) {
        let Some(conns) = self.conns.get(&peer) else { return };
        if conns.len() < 2 {
            return;
        }
        let newest = conns.iter().filter(|(_, c)| c.dialled.as_ref() == Some(address)).map(|(id, _)| *id).max();
        if let Some(id) = newest {
            tracing::debug!(%peer, %address, "AutoNAT dial back done: closing its connection soon");
            self.dial_backs.push((Instant::now() + DIAL_BACK_KEPT, id));
        }
    }

    /// Closes the AutoNAT dial-back connections that are due.
    pub(crate) fn close_dial_backs(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        self.dial_backs.retain(|(due, id)| {
            let keep = *due > now;
            if !keep {
                swarm.close_connection(*id);
            }
            keep
        });
    }

    /// AutoNAT's verdict. Returns our new reachability if it changed; a
    /// public node stops listening through relays.
    pub(crate) fn on_autonat(&mut self, swarm: &mut Swarm<Behaviour>, event: autonat::Event) -> Option<Reachability> {
        let new = match event {
            autonat::Event::StatusChanged { new, .. } => new,
            autonat::Event::InboundProbe(autonat::InboundProbeEvent::Response { peer, address, .. }) => {
                self.close_dial_back(peer, &address);
                return None;
            }
            _ => return None,
        };
        let r = match new {
            autonat::NatStatus::Public(_) => Reachability::Public,
            autonat::NatStatus::Private => Reachability::BehindNat,
            autonat::NatStatus::Unknown => Reachability::Unknown,
        };
        if r == self.reachability {
            return None;
        }
        self.reachability = r;
        if r == Reachability::Public {
            for (relay, listener) in self.relays.drain() {
                tracing::info!(%relay, "reachable: no longer listening through the relay");
                swarm.remove_listener(listener);
            }
        }
        Some(r)
    }

    /// What the relay client said: the limits of circuits.
    pub(crate) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal: false, limit } => {
                tracing::debug!(relay = %relay_peer_id, ?limit, "relay reservation accepted");
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, limit } => {
                if let Some(bytes) = limit.and_then(|l| l.data_in_bytes()) {
                    self.relay_limits.insert(relay_peer_id, bytes);
                }
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, limit } => {
                if let Some(bytes) = limit.and_then(|l| l.data_in_bytes()) {
                    self.inbound_limits.insert(src_peer_id, bytes);
                }
            }
            relay::client::Event::ReservationReqAccepted { .. } => {}
        }
    }
}

/// Whether `addr` goes through a relay (has a `/p2p-circuit` part).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// The relay in a relayed address (`.../p2p/<relay>/p2p-circuit/...`).
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

/// `addr` without its `/p2p/<peer>` parts.
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    addr.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect()
}

/// An address to reach a relay at, from what it listens on: not loopback,
/// not itself relayed.
fn usable(addrs: &[Multiaddr]) -> Option<Multiaddr> {
    addrs
        .iter()
        .find(|a| {
            !is_relayed(a)
                && !a.iter().any(|p| match p {
                    Protocol::Ip4(ip) => ip.is_loopback() || ip.is_unspecified(),
                    Protocol::Ip6(ip) => ip.is_loopback() || ip.is_unspecified(),
                    _ => false,
                })
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_of_a_relayed_address_is_the_peer_before_the_circuit() {
        let relay = PeerId::random();
        let dst = PeerId::random();
        let a: Multiaddr = format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{dst}").parse().unwrap();
        assert_eq!(relay_of(&a), Some(relay));
        let direct: Multiaddr = format!("/ip4/10.0.0.1/tcp/4001/p2p/{dst}").parse().unwrap();
        assert_eq!(relay_of(&direct), None);
    }

    #[test]
    fn a_relay_is_reached_at_an_address_that_is_neither_loopback_nor_relayed() {
        let addrs: Vec<Multiaddr> = ["/ip4/127.0.0.1/tcp/1", "/ip4/0.0.0.0/tcp/1", "/ip4/10.0.0.2/tcp/1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(usable(&addrs), Some("/ip4/10.0.0.2/tcp/1".parse().unwrap()));
        assert_eq!(usable(&addrs[..2]), None);
    }

    #[test]
    fn pieces_are_counted_by_path_and_a_change_of_path_is_reported() {
        let mut nat = Nat::default();
        let peer = PeerId::random();
        let relayed = Conn { path: Path::Relayed, relay: None, dialled: None };
        nat.conns.entry(peer).or_default().insert(ConnectionId::new_unchecked(1), relayed);
        assert_eq!(nat.pieces(peer, 2), Some(Path::Relayed), "the first pieces say their path");
        assert_eq!(nat.pieces(peer, 1), None);
        let direct = Conn { path: Path::Direct, relay: None, dialled: None };
        nat.conns.entry(peer).or_default().insert(ConnectionId::new_unchecked(2), direct);
        assert_eq!(nat.pieces(peer, 4), Some(Path::Direct));
        assert_eq!(nat.closed(peer, ConnectionId::new_unchecked(1)), None, "one connection is left");
        assert_eq!(nat.closed(peer, ConnectionId::new_unchecked(2)), Some(PieceCounts { direct: 4, relayed: 3 }));
    }

    #[test]
    fn only_a_peer_reached_through_relays_alone_has_a_circuit_limit() {
        let mut nat = Nat::default();
        let (peer, relay) = (PeerId::random(), PeerId::random());
        nat.relay_limits.insert(relay, 4096);
        let conns = nat.conns.entry(peer).or_default();
        conns.insert(ConnectionId::new_unchecked(1), Conn { path: Path::Relayed, relay: Some(relay), dialled: None });
        assert_eq!(nat.relay_only_limit(&peer), Some(4096));
        let conns = nat.conns.entry(peer).or_default();
        conns.insert(ConnectionId::new_unchecked(2), Conn { path: Path::Direct, relay: None, dialled: None });
        assert_eq!(nat.relay_only_limit(&peer), None);
    }
}
