//! Starting a node: build the swarm, listen, dial the `--join` addresses,
//! and spawn the driver that owns it all. What comes back is a [`Node`]:
//! its peer id, its listen addresses and a [`Client`].

use crate::client::Client;
use crate::driver::{Driver, DriverConfig};
use crate::exec::{Exec, ExecPolicy};
use crate::net::behaviour::{Behaviour, BehaviourConfig, BehaviourError};
use crate::net::peer_map::PeerMap;
use crate::net::transport::{self, TransportConfig};
use crate::wasm::task::ClientFetcher;
use crate::wasm::{Limits, ModuleCache, Sandbox, Wasm};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId, SwarmBuilder};
use meshwork_protocol::task::Registry;
use meshwork_protocol::{AcceptFrom, Config};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's identity.
    pub keypair: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Known nodes of the mesh to join.
    pub join: Vec<Multiaddr>,
    /// Tasks this node runs (and may submit).
    pub registry: Registry,
    /// Peers whose pieces this node runs (`None`: any member of the mesh).
    pub accept_from: Option<Vec<PeerId>>,
    /// State-machine knobs; `me`, `seed`, `tasks`, `accept_from` and
    /// `max_message` are set by [`Node::start`] (from the fields here).
    pub protocol: Config,
    /// Behaviour limits and switches (mDNS, message size, connections).
    pub behaviour: BehaviourConfig,
    /// Transports (pnet key, QUIC, memory).
    pub transport: TransportConfig,
    /// How long a shutting-down node lets accepted pieces finish.
    pub shutdown_grace: Duration,
    /// How long the node polls the network without sleeping after each
    /// RPC message it sends or receives (zero: never).
    pub busy_poll: Duration,
    /// Run wasm tasks, with these limits and this module cache (`None`:
    /// `--no-wasm`, the node neither runs nor advertises them).
    pub wasm: Option<WasmConfig>,
    /// Run commands (`--allow-exec`) under this policy (`None`: the node
    /// neither runs nor advertises the `exec` task).
    pub exec: Option<ExecPolicy>,
}

/// How a node runs wasm tasks.
#[derive(Clone, Debug, Default)]
pub struct WasmConfig {
    /// What one guest may use.
    pub limits: Limits,
    /// Where fetched modules are kept (`None`: in memory only).
    pub cache_dir: Option<PathBuf>,
    /// Bytes of modules kept on disk at most.
    pub cache_bytes: u64,
}

/// [`NodeConfig::busy_poll`] by default: a remote round trip takes
/// 100–200 µs here, so the answer to a request usually arrives within it
/// and is read without the wake-up of a sleeping CPU (measured in
/// docs/benchmarks.md). A node with no RPC traffic never polls.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(150);

impl NodeConfig {
    /// Defaults: listen on every interface (TCP and QUIC, ephemeral ports),
    /// mDNS on, one slot per core.
    pub fn new(keypair: Keypair, registry: Registry) -> NodeConfig {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        NodeConfig {
            keypair,
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".parse().expect("valid"),
                "/ip4/0.0.0.0/udp/0/quic-v1".parse().expect("valid"),
            ],
            join: Vec::new(),
            registry,
            accept_from: None,
            protocol: Config::new(meshwork_protocol::PeerKey(0), 0).with_slots(cores),
            behaviour: BehaviourConfig::default(),
            transport: TransportConfig { psk: None, quic: true },
            shutdown_grace: Duration::from_secs(3),
            busy_poll: DEFAULT_BUSY_POLL,
            wasm: Some(WasmConfig { cache_bytes: 1 << 30, ..WasmConfig::default() }),
            exec: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The transports could not be built (the noise handshake's keys).
    #[error("building transports")]
    Transport(#[source] libp2p::noise::Error),
    /// The behaviours could not be built.
    #[error("building behaviours")]
    Behaviour(#[from] BehaviourError),
    /// DNS resolution could not be set up from the system's configuration.
    #[error("setting up DNS")]
    Dns(#[source] std::io::Error),
    /// A listen address was refused.
    #[error("listening on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: libp2p::TransportError<std::io::Error>,
    },
    /// A listener failed before it reported an address.
    #[error("listener failed")]
    Listener(#[source] std::io::Error),
    /// The RPC protocol was registered twice.
    #[error("accepting RPC streams")]
    Rpc(#[from] libp2p_stream::AlreadyRegistered),
    /// The node's task ended while it was starting.
    #[error("the node stopped while starting")]
    Stopped,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    client: Client,
    listen: Vec<Multiaddr>,
    task: JoinHandle<()>,
}

impl Node {
    /// Builds and starts a node; returns once it listens on every address asked for.
    pub async fn start(cfg: NodeConfig) -> Result<Node, StartError> {
        let me = cfg.keypair.public().to_peer_id();
        let (relayed, relay_client) = libp2p::relay::client::new(me);
        let transport = transport::build(&cfg.keypair, &cfg.transport, relayed).map_err(StartError::Transport)?;
        let behaviour = Behaviour::new(&cfg.keypair, &cfg.behaviour, relay_client)?;
        let mut swarm = SwarmBuilder::with_existing_identity(cfg.keypair.clone())
            .with_tokio()
            .with_other_transport(|_| transport)
            .unwrap_or_else(|never| match never {})
            .with_dns()
            .map_err(StartError::Dns)?
            .with_behaviour(|_| behaviour)
            .unwrap_or_else(|never| match never {})
            // Liveness is tracked by the machine; libp2p must not drop quiet
            // peers. Substreams negotiate lazily: a request is sent with its
            // protocol proposal instead of a round trip later (every
            // meshwork peer speaks every meshwork protocol).
            .with_swarm_config(|c| {
                c.with_idle_connection_timeout(Duration::from_secs(3600))
                    .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
            })
            .build();
        let mut listeners = Vec::new();
        for addr in &cfg.listen {
            let id =
                swarm.listen_on(addr.clone()).map_err(|source| StartError::Listen { addr: addr.clone(), source })?;
            listeners.push(id);
        }
        let mut registry = cfg.registry.clone();
        let fetcher = Arc::new(ClientFetcher::default());
        if let Some(w) = cfg.wasm.clone() {
            let slots = cfg.protocol.slots;
            let make = move || {
                // Twice the slots: a cancelled piece's guest may hold its
                // instance for a moment after its slot has been given again.
                let sandbox = Sandbox::new(w.limits, slots.saturating_mul(2)).map_err(|e| e.to_string())?;
                ModuleCache::new(sandbox, w.cache_dir.clone(), w.cache_bytes)
                    .map_err(|e| format!("creating the module cache: {e}"))
            };
            registry.register(Wasm::lazy(make, fetcher.clone()));
        }
        if let Some(policy) = cfg.exec.clone() {
            registry.register(Exec::new(policy, me.to_bytes()));
        }
        let mut peers = PeerMap::new(me);
        let mut machine = cfg.protocol.clone();
        machine.me = peers.key(me);
        machine.seed = rand::random();
        machine.tasks = registry.names();
        machine.max_message = cfg.behaviour.max_message;
        machine.accept_from = match &cfg.accept_from {
            None => AcceptFrom::Any,
            Some(ids) => AcceptFrom::Only(ids.iter().map(|id| peers.key(*id)).collect()),
        };
        tracing::debug!(seed = machine.seed, "state machine seeded");
        let driver_cfg = DriverConfig {
            machine,
            peers,
            registry,
            inbound_budget: cfg.behaviour.inbound_budget,
            shutdown_grace: cfg.shutdown_grace,
            busy_poll: cfg.busy_poll,
            join: cfg.join.clone(),
        };
        let (tx, rx) = mpsc::channel(256);
        let (ready_tx, ready_rx) = oneshot::channel();
        let driver = Driver::new(swarm, driver_cfg, rx)?;
        let names = driver.names();
        let mesh_events = driver.mesh_events();
        let task = tokio::spawn(async move { driver.run(listeners, ready_tx).await });
        let listen = ready_rx.await.map_err(|_| StartError::Stopped)?.map_err(StartError::Listener)?;
        let client = Client::new(tx, names, me, mesh_events);
        fetcher.set(client.clone(), tokio::runtime::Handle::current());
        Ok(Node { client, listen, task })
    }

    /// A handle to talk to the node.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.client.peer_id()
    }

    /// The addresses it listens on, each ending in `/p2p/<peer id>`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen
    }

    /// Shuts the node down cleanly and waits for it.
    pub async fn shutdown(self) {
        self.client.shutdown().await;
        let _ = self.task.await;
    }

    /// Waits until the node stops (after [`Client::shutdown`]).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}
