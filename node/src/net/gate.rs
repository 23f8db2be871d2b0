//! The gate: how many connections strangers may hold.
//!
//! Anyone who can reach a node's port can open connections to it with
//! fresh identities, and every one costs the node a handshake, memory and
//! a share of identify, Kademlia and gossip work. libp2p's
//! `connection_limits` (in [`behaviour`](super::behaviour)) caps totals and
//! connections per peer, but a fresh identity per connection passes the
//! per-peer cap and the totals are shared with members. The gate tells
//! strangers from members: a peer is *proven* once the node heard an advert
//! of it (gossiped, or the answer to the greeting every new connection
//! gets); until then each of its inbound connections counts against
//!
//! - a cap per remote IP address ([`GateConfig::max_unproven_per_ip`]),
//!   pending handshakes included, so one machine cannot take all the
//!   room (loopback is exempt: a local mesh is many honest nodes on one
//!   address, and no remote attacker can use it);
//! - a cap on all of them ([`GateConfig::max_unproven`]). When it is
//!   reached, a newcomer replaces the oldest stranger that has had
//!   [`GateConfig::grace`] to prove itself and did not; if none has, the
//!   newcomer is refused. An honest peer proves itself within a round trip
//!   or two of connecting, so strangers that never do are the ones closed.
//!
//! Connections we dialled are ours and never count. With `--secret-file`
//! (pnet) none of this is reached: without the key no handshake completes.

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The gate's limits.
#[derive(Clone, Copy, Debug)]
pub struct GateConfig {
    /// Most inbound connections (and pending handshakes) from peers not
    /// yet proven, per remote IP address other than loopback.
    pub max_unproven_per_ip: usize,
    /// Most inbound connections from peers not yet proven, in all. Room
    /// for a join of many nodes at once (each is a stranger for its first
    /// moments, and two dialling each other at once make two connections).
    pub max_unproven: usize,
    /// How long a stranger keeps its connection against newcomers: long
    /// enough for a node starting on a busy machine to answer its greeting.
    pub grace: Duration,
}

impl Default for GateConfig {
    fn default() -> GateConfig {
        GateConfig { max_unproven_per_ip: 8, max_unproven: 256, grace: Duration::from_secs(10) }
    }
}

/// Why the gate refused a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The remote address holds its share already.
    #[error("{0} already holds {1} connections from peers not yet proven")]
    PerIp(IpAddr, usize),
    /// Every stranger's place is taken by one still in its grace period.
    #[error("{0} connections from peers not yet proven, none past its grace period")]
    Full(usize),
}

/// A stranger's inbound connection.
#[derive(Debug)]
struct Stranger {
    peer: PeerId,
    ip: Option<IpAddr>,
    since: Instant,
}

/// The behaviour; see the module docs.
#[derive(Debug)]
pub struct Gate {
    cfg: GateConfig,
    proven: HashSet<PeerId>,
    /// Handshakes in progress and the address they come from.
    pending: HashMap<ConnectionId, IpAddr>,
    /// Established inbound connections of peers not proven, oldest first
    /// (connection ids grow).
    strangers: BTreeMap<ConnectionId, Stranger>,
    /// Pending handshakes plus strangers' connections, per counted address.
    per_ip: HashMap<IpAddr, usize>,
    close: VecDeque<(PeerId, ConnectionId)>,
    waker: Option<Waker>,
}

impl Gate {
    /// A gate with limits `cfg`.
    pub fn new(cfg: GateConfig) -> Gate {
        Gate {
            cfg,
            proven: HashSet::new(),
            pending: HashMap::new(),
            strangers: BTreeMap::new(),
            per_ip: HashMap::new(),
            close: VecDeque::new(),
            waker: None,
        }
    }

    /// `peer` showed it is a member (an advert of it was heard): its
    /// connections no longer count, for as long as it stays connected.
    pub fn prove(&mut self, peer: PeerId) {
        if !self.proven.insert(peer) {
            return;
        }
        let mine: Vec<ConnectionId> =
            self.strangers.iter().filter(|(_, s)| s.peer == peer).map(|(id, _)| *id).collect();
        for id in mine {
            self.forget(id);
        }
    }

    /// Strangers' inbound connections held now.
    pub fn strangers(&self) -> usize {
        self.strangers.len()
    }

    fn forget(&mut self, id: ConnectionId) {
        if let Some(ip) = self.strangers.remove(&id).and_then(|s| s.ip) {
            self.release(ip);
        }
    }

    fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Lets in connection `id` of `peer`, its handshake done at `now`, or
    /// says why not. Its handshake's place becomes its connection's if it
    /// is a stranger.
    fn admit(&mut self, id: ConnectionId, peer: PeerId, now: Instant) -> Result<(), Refused> {
        let ip = self.pending.remove(&id);
        if self.proven.contains(&peer) {
            if let Some(ip) = ip {
                self.release(ip);
            }
            return Ok(());
        }
        if let Err(refused) = self.make_room(now) {
            if let Some(ip) = ip {
                self.release(ip);
            }
            return Err(refused);
        }
        self.strangers.insert(id, Stranger { peer, ip, since: now });
        Ok(())
    }

    /// Makes room for one more stranger: closes the oldest one past its
    /// grace period, or says why there is no room.
    fn make_room(&mut self, now: Instant) -> Result<(), Refused> {
        if self.strangers.len() < self.cfg.max_unproven {
            return Ok(());
        }
        let oldest = self.strangers.iter().next().filter(|(_, s)| now.duration_since(s.since) >= self.cfg.grace);
        let Some((&id, s)) = oldest else { return Err(Refused::Full(self.strangers.len())) };
        tracing::debug!(peer = %s.peer, "closing a connection of a peer that never proved itself, to make room");
        self.close.push_back((s.peer, id));
        self.forget(id);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        Ok(())
    }
}

/// The IP address of `addr` if it counts against a per-address cap
/// (loopback does not).
fn counted_ip(addr: &Multiaddr) -> Option<IpAddr> {
    let ip = addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })?;
    (!ip.is_loopback()).then_some(ip)
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = counted_ip(remote) else { return Ok(()) };
        let held = self.per_ip.get(&ip).copied().unwrap_or(0);
        if held >= self.cfg.max_unproven_per_ip {
            return Err(ConnectionDenied::new(Refused::PerIp(ip, held)));
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.pending.insert(id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(id, peer, Instant::now()).map_err(|refused| {
            tracing::debug!(%peer, %remote, %refused, "connection refused");
            ConnectionDenied::new(refused)
        })?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                if let Some(ip) = self.pending.remove(&connection_id) {
                    self.release(ip);
                }
                // Refused after it was let in here (another behaviour said no).
                self.forget(connection_id);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { peer_id, connection_id, remaining_established, .. }) => {
                self.forget(connection_id);
                if remaining_established == 0 {
                    self.proven.remove(&peer_id);
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some((peer_id, id)) = self.close.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection { peer_id, connection: CloseConnection::One(id) });
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/4000").parse().unwrap()
    }

    fn local() -> Multiaddr {
        addr("10.0.0.1")
    }

    /// Lets a connection from `ip` through both stages, its handshake done
    /// at `now`; whether it got in.
    fn connect_at(gate: &mut Gate, n: usize, peer: PeerId, ip: &str, now: Instant) -> bool {
        let id = ConnectionId::new_unchecked(n);
        gate.handle_pending_inbound_connection(id, &local(), &addr(ip)).is_ok() && gate.admit(id, peer, now).is_ok()
    }

    fn connect(gate: &mut Gate, n: usize, peer: PeerId, ip: &str) -> bool {
        connect_at(gate, n, peer, ip, Instant::now())
    }

    #[test]
    fn one_address_gets_its_share_and_proven_peers_do_not_count() {
        let mut gate = Gate::new(GateConfig { max_unproven_per_ip: 2, ..GateConfig::default() });
        let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        assert!(connect(&mut gate, 1, peers[0], "192.0.2.1"));
        assert!(connect(&mut gate, 2, peers[1], "192.0.2.1"));
        assert!(!connect(&mut gate, 3, peers[2], "192.0.2.1"), "a third stranger from one address");
        assert!(connect(&mut gate, 4, peers[2], "192.0.2.2"), "another address has its own share");
        gate.prove(peers[0]);
        assert!(connect(&mut gate, 5, peers[3], "192.0.2.1"), "a proven peer's place is free again");
        for n in 6..20 {
            assert!(connect(&mut gate, n, PeerId::random(), "127.0.0.1"), "loopback is not capped per address");
        }
    }

    #[test]
    fn when_full_a_newcomer_replaces_the_oldest_stranger_past_its_grace() {
        let grace = Duration::from_secs(3);
        let mut gate = Gate::new(GateConfig { max_unproven_per_ip: 100, max_unproven: 3, grace });
        let t0 = Instant::now();
        let first = PeerId::random();
        assert!(connect_at(&mut gate, 1, first, "192.0.2.1", t0));
        for n in 2..4 {
            assert!(connect_at(&mut gate, n, PeerId::random(), "192.0.2.1", t0));
        }
        let soon = t0 + grace / 2;
        assert!(!connect_at(&mut gate, 4, PeerId::random(), "192.0.2.1", soon), "full, nobody past its grace");
        gate.prove(first);
        assert!(connect_at(&mut gate, 5, PeerId::random(), "192.0.2.1", soon), "a proven peer left room");
        let later = t0 + grace;
        assert!(connect_at(&mut gate, 6, PeerId::random(), "192.0.2.1", later), "the oldest stranger makes room");
        assert_eq!(gate.strangers(), 3);
        assert_eq!(gate.close.len(), 1, "one stranger is closed");
        assert_eq!(gate.close[0].1, ConnectionId::new_unchecked(2), "the oldest stranger is closed");
    }
}
