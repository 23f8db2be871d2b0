//! Kademlia with a bound libp2p's lacks: how many addresses of one peer it
//! offers for a dial.
//!
//! libp2p-kad hands the swarm, for every dial of a peer, all the addresses
//! it has for it: those in its routing table and those any lookup's answers
//! named. An answer is up to 16 KiB, so one made-up peer can come with
//! hundreds of addresses, and a lying peer's answer of 20 such peers made
//! every lookup dial 1,400 addresses. Here a dial gets at most
//! [`MAX_DHT_ADDRS`] of them (the routing table's first, then the
//! answers'); the routing table itself keeps no more per peer (`net::reach`).

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll};

/// Addresses of one peer the DHT keeps in its routing table and offers for
/// one dial.
pub const MAX_DHT_ADDRS: usize = 8;

/// libp2p's Kademlia, offering at most [`MAX_DHT_ADDRS`] addresses per dial.
pub struct Dht(kad::Behaviour<MemoryStore>);

impl Dht {
    /// Wraps `kad`.
    pub fn new(kad: kad::Behaviour<MemoryStore>) -> Dht {
        Dht(kad)
    }
}

impl Deref for Dht {
    type Target = kad::Behaviour<MemoryStore>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Dht {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl NetworkBehaviour for Dht {
    type ConnectionHandler = <kad::Behaviour<MemoryStore> as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = kad::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0.handle_pending_inbound_connection(id, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.handle_established_inbound_connection(id, peer, local, remote)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let mut offered = self.0.handle_pending_outbound_connection(id, peer, addresses, role)?;
        offered.truncate(MAX_DHT_ADDRS);
        Ok(offered)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.0.on_swarm_event(event)
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, id: ConnectionId, event: THandlerOutEvent<Self>) {
        self.0.on_connection_handler_event(peer, id, event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx)
    }
}
