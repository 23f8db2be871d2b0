//! Reaching peers: where each one can be found, and every dial the node
//! makes. What tells where a peer is (mDNS, Kademlia, identify, our own
//! dials, the member list of a node we joined through) is remembered here,
//! within bounds (see [`dialer::announced`] and [`MAX_DHT_ADDRS`]),
//! and what needs a dial (a `--join` address, a newly found peer, a lost
//! worker on the [`dialer`](super::dialer)'s backoff schedule) is dialled
//! from here. The driver hands over the swarm events that concern
//! addresses and asks nothing else of it.

use crate::net::behaviour::{Behaviour, BehaviourEvent, IDENTIFY_PROTOCOL};
use crate::net::dht::MAX_DHT_ADDRS;
use crate::net::dialer::{self, Dialer};
use crate::net::members;
use crate::net::rpc::{OutboundId, Rpc};
use libp2p::core::ConnectedPoint;
use libp2p::kad::store::MemoryStore;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{identify, kad, mdns, Multiaddr, PeerId, StreamProtocol, Swarm};
use meshwork_protocol::wire::{Request, Response, KAD_PROTOCOL};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often the redial schedule is looked at.
pub(crate) const REDIAL_TICK: Duration = Duration::from_millis(250);

/// The address book, the redial schedule and the member lists asked for.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    dialer: Dialer,
    /// Member lists asked of nodes we joined through.
    members_asked: HashSet<OutboundId>,
    /// The members those lists named.
    members_met: HashSet<PeerId>,
    /// The peers connected now: as many as there are connections.
    visits: HashMap<PeerId, Visit>,
    /// When a failed incoming handshake was last logged as a warning.
    incoming_warned: Option<Instant>,
}

/// What is known of a connected peer, forgotten when it leaves.
#[derive(Debug, Default)]
struct Visit {
    /// What it said it runs (identify's agent version, e.g. `meshwork/0.1.0 (abc1234)`).
    agent: Option<String>,
    /// Connected over loopback, so its loopback addresses are plausible.
    loopback: bool,
}

/// Shortest time between two warnings about failed incoming handshakes.
const INCOMING_WARN_EVERY: Duration = Duration::from_secs(10);

/// Longest agent version kept (another peer chooses what it sends).
const MAX_AGENT: usize = 80;

impl Reach {
    /// Dials a known member of the mesh now, and again until connected.
    pub(crate) fn join(&mut self, swarm: &mut Swarm<Behaviour>, addr: Multiaddr) {
        dial_addr(swarm, &addr);
        self.dialer.join(addr, Instant::now());
    }

    /// The version `peer` runs, as it said when it connected.
    pub(crate) fn version(&self, peer: &PeerId) -> Option<String> {
        self.visits.get(peer).and_then(|v| v.agent.clone())
    }

    /// The last connection to `peer` closed. A peer worth having back
    /// (`redial`: a worker that dropped out) is redialled; any other is
    /// forgotten, here and in the DHT, so that a visitor leaves nothing
    /// behind and nothing dials it again.
    pub(crate) fn disconnected(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, redial: bool) {
        self.visits.remove(&peer);
        if redial {
            self.lost(peer);
        } else {
            self.dialer.forget(&peer);
            swarm.behaviour_mut().discovery.remove_peer(&peer);
        }
    }

    /// Where `peer` was seen, most recent last.
    pub(crate) fn addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.dialer.addrs(peer)
    }

    /// A dial failed: for a join address, remember why (see [`Reach::join_failures`]).
    pub(crate) fn dial_failed(&mut self, peer: Option<PeerId>, error: &libp2p::swarm::DialError) {
        self.dialer.dial_failed(peer, error);
    }

    /// A connection a peer opened to us failed. A failed handshake is
    /// logged at the default level (at most once per [`INCOMING_WARN_EVERY`]:
    /// a peer with the wrong key keeps redialling), so that both sides of a
    /// `--secret-file` mismatch say so, not only the dialler.
    pub(crate) fn incoming_failed(&mut self, from: &Multiaddr, error: &libp2p::swarm::ListenError) {
        let Some(why) = dialer::incoming_failure(error) else {
            tracing::debug!(%from, %error, "incoming connection failed");
            return;
        };
        let now = Instant::now();
        if self.incoming_warned.is_some_and(|t| now.duration_since(t) < INCOMING_WARN_EVERY) {
            tracing::debug!(%from, "{why}");
            return;
        }
        self.incoming_warned = Some(now);
        tracing::warn!("a peer at {from} could not connect: {why}");
    }

    /// Join addresses not reached yet, each with why its last dial failed.
    pub(crate) fn join_failures(&self) -> Vec<(Multiaddr, String)> {
        self.dialer.join_failures()
    }

    /// Peers being redialled now.
    pub(crate) fn redialling(&self) -> usize {
        self.dialer.redialling()
    }

    /// A connection to `peer` opened (`first`: its only one). Reached
    /// through a join address, it is asked who else is in the mesh.
    pub(crate) fn connected(&mut self, rpc: &mut Rpc, peer: PeerId, endpoint: &ConnectedPoint, first: bool) {
        self.visits.entry(peer).or_default().loopback |= dialer::is_loopback(endpoint.get_remote_address());
        if let ConnectedPoint::Dialer { address, .. } = endpoint {
            self.dialer.remember(peer, address.clone());
            if first && self.dialer.is_join(&peer, address) {
                tracing::debug!(%peer, "joined: asking for the members");
                self.members_asked.insert(rpc.request(peer, Request::Members));
            }
        }
        self.dialer.connected(&peer);
    }

    /// `peer`, a member worth having, is not connected: dial it, with
    /// backoff, for a while.
    pub(crate) fn lost(&mut self, peer: PeerId) {
        self.dialer.lost(peer, Instant::now());
    }

    /// `peer` proved alive (its advert arrived through gossip): connect to
    /// it directly if not connected yet.
    pub(crate) fn heard_of(&mut self, swarm: &Swarm<Behaviour>, peer: PeerId) {
        if !swarm.is_connected(&peer) && peer != *swarm.local_peer_id() {
            self.lost(peer);
        }
    }

    /// What a discovery behaviour (identify, mDNS, Kademlia) said about
    /// where peers are; other events are not about addresses and ignored.
    pub(crate) fn on_discovery(&mut self, swarm: &mut Swarm<Behaviour>, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != IDENTIFY_PROTOCOL {
                    tracing::debug!(peer = %peer_id, version = info.protocol_version, "not a meshwork peer");
                    return;
                }
                // Identified after it left: nothing to keep.
                let Some(visit) = self.visits.get_mut(&peer_id) else { return };
                visit.agent = Some(info.agent_version.chars().take(MAX_AGENT).collect());
                let addrs = dialer::announced(info.listen_addrs, visit.loopback);
                // Only meshwork peers that serve it (verified here, on a live
                // connection) enter the DHT's routing table.
                if info.protocols.contains(&StreamProtocol::new(KAD_PROTOCOL)) {
                    add_to_dht(&mut swarm.behaviour_mut().discovery, peer_id, &addrs);
                }
                for addr in addrs {
                    self.dialer.remember(peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.dialer.remember(peer, addr);
                    if !swarm.is_connected(&peer) {
                        self.dial_peer(swarm, peer);
                    }
                }
            }
            BehaviourEvent::Discovery(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(Ok(found)),
                ..
            }) => {
                // Asked only for lost peers (see `redial`): the one sought
                // is dialled, at a few of the addresses the DHT gave; the
                // others the answer names are strangers and left alone.
                let Some(info) = found.peers.into_iter().find(|p| p.peer_id.to_bytes() == found.key) else { return };
                if swarm.is_connected(&info.peer_id) {
                    return;
                }
                for addr in info.addrs.into_iter().take(dialer::ADDRS_PER_PEER) {
                    self.dialer.remember(info.peer_id, addr);
                }
                self.dial_peer(swarm, info.peer_id);
            }
            _ => {}
        }
    }

    /// The member list to answer `requester` with: `live` peers (other
    /// than it) with the addresses we know for them.
    pub(crate) fn members(&self, live: impl Iterator<Item = PeerId>, requester: PeerId) -> Response {
        Response::Members(members::list(live.map(|p| (p, self.dialer.addrs(&p))), requester))
    }

    /// The answer to our request `id`, not one of the machine's: a member
    /// list we asked for is met; anything else is dropped.
    pub(crate) fn answered(&mut self, swarm: &mut Swarm<Behaviour>, id: OutboundId, response: Response) {
        if !self.members_asked.remove(&id) {
            return;
        }
        if let Response::Members(list) = response {
            tracing::debug!(members = list.len(), "members listed");
            self.meet(swarm, members::read(list));
        }
    }

    /// Our request `id`, not one of the machine's, will never be answered.
    pub(crate) fn failed(&mut self, id: OutboundId) {
        self.members_asked.remove(&id);
    }

    /// The members the nodes we joined through listed, and whether a list
    /// is still awaited: what `meshwork peers` waits to see.
    pub(crate) fn members_met(&self) -> (Vec<PeerId>, bool) {
        (self.members_met.iter().copied().collect(), !self.members_asked.is_empty())
    }

    /// Remembers and dials the members a joined node listed.
    fn meet(&mut self, swarm: &mut Swarm<Behaviour>, members: Vec<(PeerId, Vec<Multiaddr>)>) {
        let me = *swarm.local_peer_id();
        for (peer, addrs) in members.into_iter().filter(|(p, _)| *p != me) {
            self.members_met.insert(peer);
            for addr in addrs {
                self.dialer.remember(peer, addr);
            }
            if !swarm.is_connected(&peer) {
                self.dial_peer(swarm, peer);
            }
        }
    }

    /// Dials what the redial schedule says is due.
    pub(crate) fn redial(&mut self, swarm: &mut Swarm<Behaviour>) {
        let joined = |addr: &Multiaddr| match dialer::peer_of(addr) {
            Some(peer) => swarm.is_connected(&peer),
            // Unknown without a /p2p/ part: joined once any peer is connected.
            None => swarm.connected_peers().next().is_some(),
        };
        let due = self.dialer.due(Instant::now(), |p| swarm.is_connected(p), joined);
        for (peer, addrs) in due.peers {
            if addrs.is_empty() {
                // Known only from gossip: ask the DHT where it is (the
                // answer dials it, see `on_discovery`).
                swarm.behaviour_mut().discovery.get_closest_peers(peer);
            } else {
                self.dial_peer(swarm, peer);
            }
        }
        for addr in due.joins {
            dial_addr(swarm, &addr);
        }
    }

    fn dial_peer(&self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        // A fresh port: two nodes that discover each other at the same
        // instant (mDNS) would otherwise both dial from their listen ports,
        // a TCP simultaneous open on which both handshakes fail.
        let opts = DialOpts::peer_id(peer)
            .addresses(self.dialer.addrs(&peer))
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .allocate_new_port()
            .build();
        if let Err(e) = swarm.dial(opts) {
            tracing::trace!(%peer, error = %e, "not dialled");
        }
    }
}

/// Gives the DHT `addrs` as `peer`'s, keeping at most [`MAX_DHT_ADDRS`]
/// of its addresses (the most recent; the DHT adds each connection's own).
/// libp2p-kad keeps every address it is given, sends them all in its
/// answers and dials them all: a peer announcing thousands made every
/// lookup and every dial of it that large.
fn add_to_dht(kad: &mut kad::Behaviour<MemoryStore>, peer: PeerId, addrs: &[Multiaddr]) {
    for addr in addrs {
        kad.add_address(&peer, addr.clone());
    }
    let known: Vec<Multiaddr> = kad
        .kbucket(peer)
        .and_then(|bucket| {
            bucket.iter().find(|e| *e.node.key.preimage() == peer).map(|e| e.node.value.iter().cloned().collect())
        })
        .unwrap_or_default();
    for old in &known[..known.len().saturating_sub(MAX_DHT_ADDRS)] {
        kad.remove_address(&peer, old);
    }
}

fn dial_addr(swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
    let opts = DialOpts::unknown_peer_id().address(addr.clone()).allocate_new_port().build();
    if let Err(e) = swarm.dial(opts) {
        tracing::warn!(%addr, error = %e, "cannot dial");
    }
}
