//! The composed libp2p behaviour. Fields are named by role; each becomes a
//! variant of the generated `BehaviourEvent` the driver matches on. (That
//! generated enum has no docs of its own, hence the `allow` below.)
#![allow(missing_docs)]

use crate::net::dht::Dht;
use crate::net::gate::{Gate, GateConfig};
use crate::net::nat::RelayLimits;
use crate::wasm::service::ModuleBehaviour;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds, TopicScoreParams,
};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, connection_limits, dcutr, identify, mdns, memory_connection_limits, relay, StreamProtocol};
use meshwork_protocol::gossip::{GOSSIP_LAZY, HEARTBEAT, HISTORY_GOSSIP, MESH_N, MESH_N_HIGH, MESH_N_LOW};
use meshwork_protocol::wire::{ADVERT_TOPIC, KAD_PROTOCOL, MAX_ADVERT_BYTES};
use std::time::Duration;

/// Identify's protocol version string; peers with another one are not ours.
pub const IDENTIFY_PROTOCOL: &str = "/meshwork/id/2";

/// Limits and switches of the behaviours.
#[derive(Clone, Debug)]
pub struct BehaviourConfig {
    /// Run mDNS discovery on the LAN.
    pub mdns: bool,
    /// Largest RPC message, in bytes.
    pub max_message: usize,
    /// Bytes inbound RPC frames may hold at once, across all peers: a
    /// frame that would pass it is refused and its stream closed.
    pub inbound_budget: usize,
    /// Most established connections in all.
    pub max_connections: u32,
    /// Most established connections per peer.
    pub max_connections_per_peer: u32,
    /// Connections of peers not yet proven (see `net::gate`).
    pub gate: GateConfig,
    /// Refuse new connections above this fraction of system memory in use.
    pub max_memory_fraction: f64,
    /// Largest wasm module fetched from a peer, in bytes.
    pub max_module: usize,
    /// Serve as a circuit relay with these limits (`--relay`).
    pub relay: Option<RelayLimits>,
}

impl Default for BehaviourConfig {
    fn default() -> BehaviourConfig {
        BehaviourConfig {
            mdns: true,
            max_message: meshwork_protocol::wire::frame::DEFAULT_MAX_MESSAGE,
            inbound_budget: 2 * meshwork_protocol::wire::frame::DEFAULT_MAX_MESSAGE,
            max_connections: 1024,
            // Two peers that find each other by mDNS at once dial each other
            // at once: two connections per pair, and with a limit of one
            // libp2p can refuse both, leaving the pair apart ~0.5 s. A
            // third: a relayed connection and the direct one DCUtR opens
            // beside it (the relayed one is then closed: `net::nat`). A
            // fourth: an AutoNAT dial back, open for a few seconds (also
            // `net::nat`); refused, it made the peer think itself behind NAT.
            max_connections_per_peer: 4,
            gate: GateConfig::default(),
            max_memory_fraction: 0.9,
            max_module: crate::wasm::Limits::default().module,
            relay: None,
        }
    }
}

/// Why the behaviours could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BehaviourError {
    /// mDNS could not open its socket.
    #[error("starting mDNS")]
    Mdns(#[source] std::io::Error),
    /// Gossipsub refused its configuration (its errors are strings).
    #[error("gossipsub {0}")]
    Gossip(String),
    /// Gossipsub could not subscribe to the advert topic.
    #[error("subscribing to the advert topic")]
    Subscribe(#[from] gossipsub::SubscriptionError),
}

/// Everything a meshwork node runs on each connection.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connection count limits.
    pub limits: connection_limits::Behaviour,
    /// Connection limits for peers not yet proven members.
    pub gate: Gate,
    /// Refuses connections when memory runs short.
    pub memory: memory_connection_limits::Behaviour,
    /// Exchanges listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// LAN discovery.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Mesh-wide discovery from a `--join` address.
    pub discovery: Dht,
    /// Load adverts.
    pub load_gossip: gossipsub::Behaviour,
    /// The RPC streams (see `net::rpc`).
    pub rpc: libp2p_stream::Behaviour,
    /// wasm modules fetched from the submitter (see `wasm::shelf`).
    pub modules: ModuleBehaviour,
    /// Whether peers can dial us back (see `net::nat`).
    pub autonat: autonat::Behaviour,
    /// Relaying circuits for peers behind NATs (`--relay`).
    pub relay: Toggle<relay::Behaviour>,
    /// Listening and dialling through relays.
    pub relay_client: relay::client::Behaviour,
    /// Replacing a relayed connection by a direct one (hole punching).
    pub dcutr: dcutr::Behaviour,
}

impl Behaviour {
    /// Builds the behaviour for `key`, with the relay client whose
    /// transport is part of the swarm's (see [`transport::build`](super::transport::build)).
    pub fn new(
        key: &Keypair,
        cfg: &BehaviourConfig,
        relay_client: relay::client::Behaviour,
    ) -> Result<Behaviour, BehaviourError> {
        let me = key.public().to_peer_id();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(cfg.max_connections))
            .with_max_established_per_peer(Some(cfg.max_connections_per_peer))
            .with_max_pending_incoming(Some(128));
        let mdns = if cfg.mdns {
            // Fast queries and a short TTL so a healed partition is seen within
            // about a second (the defaults take minutes).
            let c = mdns::Config {
                ttl: Duration::from_secs(6),
                query_interval: Duration::from_secs(1),
                ..Default::default()
            };
            Some(mdns::tokio::Behaviour::new(c, me).map_err(BehaviourError::Mdns)?)
        } else {
            None
        };
        let mut kad_cfg = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
        kad_cfg.set_query_timeout(Duration::from_secs(10));
        // libp2p's default. Members learn each other from the joined node's
        // member list and gossip, not from the DHT; every bootstrap is a
        // handful of lookups answered by each peer they reach, and at 30 s
        // the bootstraps of an idle 50-node mesh cost a fifth of its CPU.
        kad_cfg.set_periodic_bootstrap_interval(Some(Duration::from_secs(300)));
        // Only the meshwork peers identify verified enter the routing table
        // (`net::reach`), with a few addresses each: never a peer some
        // lookup's answer named, which the DHT would keep and dial.
        kad_cfg.set_kbucket_inserts(kad::BucketInserts::Manual);
        let mut discovery = kad::Behaviour::with_config(me, MemoryStore::new(me), kad_cfg);
        // Client mode until an external address is confirmed would hide LAN
        // nodes from each other: every meshwork node serves the DHT.
        discovery.set_mode(Some(kad::Mode::Server));
        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(limits),
            gate: Gate::new(cfg.gate),
            memory: memory_connection_limits::Behaviour::with_max_percentage(cfg.max_memory_fraction),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("meshwork/{}", env!("MESHWORK_VERSION")))
                    .with_push_listen_addr_updates(true),
            ),
            mdns: mdns.into(),
            discovery: Dht::new(discovery),
            load_gossip: gossip(key)?,
            rpc: libp2p_stream::Behaviour::new(),
            modules: crate::wasm::shelf::behaviour(cfg.max_module),
            autonat: autonat::Behaviour::new(me, autonat_config()),
            relay: cfg.relay.map(|limits| relay_server(me, limits)).into(),
            relay_client,
            dcutr: dcutr::Behaviour::new(me),
        })
    }
}

/// AutoNAT, asked soon and often enough that a node knows within seconds
/// of joining whether peers can dial it (libp2p's defaults wait 15 s, then
/// 90 s between probes). Private addresses count: a mesh on a LAN, or a
/// lab of network namespaces, is reachable on them; "public" means peers
/// of this mesh can dial the node, not that the whole internet can.
fn autonat_config() -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(1),
        retry_interval: Duration::from_secs(10),
        refresh_interval: Duration::from_secs(300),
        throttle_server_period: Duration::from_secs(5),
        // Longer than the swarm's connection timeout (10 s), which bounds the
        // server's dial back: a NAT that drops the dial silently is reported
        // as such instead of the probe timing out first.
        timeout: Duration::from_secs(15),
        only_global_ips: false,
        ..autonat::Config::default()
    }
}

/// The relay of a `--relay` node. It serves whatever AutoNAT says: left
/// to itself, libp2p's relay stops offering circuits whenever AutoNAT
/// loses confidence in its address, and in the NAT lab one failed dial
/// back (of several that succeeded) was enough for every later peer to
/// find no relay. Whoever asks for `--relay` says the node is reachable.
fn relay_server(me: libp2p::PeerId, limits: RelayLimits) -> relay::Behaviour {
    let mut relay = relay::Behaviour::new(me, limits.config());
    relay.set_status(Some(relay::Status::Enable));
    relay
}

/// The advert topic.
pub fn advert_topic() -> IdentTopic {
    IdentTopic::new(ADVERT_TOPIC)
}

/// What gossipsub's decoder accepts, in bytes: its default (64 KiB), never
/// the advert limit. libp2p-gossipsub 0.50.1 compares the limit with its
/// whole read buffer, not with one frame: a peer's backlog of small frames
/// arriving at once (after a cut cable or a stalled process) fills that
/// buffer 8 KiB a read, on top of a partial frame, and with an 8 KiB limit
/// the stream was refused and never reopened, so the node went deaf to that
/// peer's gossip for good. The advert limit is per topic instead.
const MAX_GOSSIP_FRAME: usize = 64 * 1024;

/// Message ids one IHAVE announces at most. An id is about 73 bytes on the
/// wire (the publisher's peer id and a sequence number), so 150 keep an
/// IHAVE under gossipsub's 16 KiB cap on the control part of one frame; a
/// larger one is refused by the receiver, with the same deafness as above.
const MAX_IHAVE_IDS: usize = 150;

/// Gossipsub for adverts: signed, validated by the application before they
/// are forwarded, and scored so a peer sending invalid adverts is cut off.
///
/// The numbers are `meshwork_protocol::gossip`'s, which the simulator
/// models gossip with (`simulations/src/gossip.rs`). Sized so what one
/// node hears does not grow with the mesh: the protocol bounds the adverts the whole mesh publishes (see `Config::advert_pace`),
/// and each reaches a node about `mesh_n` times (once per mesh neighbour:
/// no flood publishing, whose fan-out is every connected peer) plus lazy
/// gossip to a fixed `gossip_lazy` peers a heartbeat (not a share of all
/// peers, which would grow with the mesh). Every copy costs a signature
/// check, the largest part of an idle node's CPU.
fn gossip(key: &Keypair) -> Result<gossipsub::Behaviour, BehaviourError> {
    let config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(MAX_GOSSIP_FRAME)
        .max_transmit_size_for_topic(MAX_ADVERT_BYTES * 2, advert_topic().hash())
        .max_control_messages_sent(MAX_IHAVE_IDS)
        .mesh_n(MESH_N)
        .mesh_n_low(MESH_N_LOW)
        .mesh_n_high(MESH_N_HIGH)
        .mesh_outbound_min(1)
        .flood_publish(false)
        .gossip_lazy(GOSSIP_LAZY)
        .gossip_factor(0.0)
        .history_gossip(HISTORY_GOSSIP)
        .heartbeat_interval(HEARTBEAT)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .build()
        .map_err(|e| BehaviourError::Gossip(format!("config: {e}")))?;
    let mut gossip = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
        .map_err(|e| BehaviourError::Gossip(e.to_string()))?;
    // No IP-colocation penalty: many nodes behind one address (one machine,
    // one NAT) are normal in a meshwork mesh, and with the default penalty
    // a node seeing more than 14 peers on one IP graylisted them all, so
    // their adverts were ignored. Membership is guarded by the pre-shared
    // key and noise identities, not by addresses.
    let mut params = PeerScoreParams { ip_colocation_factor_weight: 0.0, ..PeerScoreParams::default() };
    let topic = TopicScoreParams {
        topic_weight: 1.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.9,
        // Adverts are few and regular: do not punish a quiet mesh for them.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        ..TopicScoreParams::default()
    };
    params.topics.insert(advert_topic().hash(), topic);
    gossip
        .with_peer_score(params, PeerScoreThresholds::default())
        .map_err(|e| BehaviourError::Gossip(format!("scoring: {e}")))?;
    gossip.subscribe(&advert_topic())?;
    Ok(gossip)
}
