//! The gossipsub parameters adverts travel with: the node configures
//! gossipsub with them (`node/src/net/behaviour.rs`) and the simulator
//! models gossip with them (`simulations/src/gossip.rs`), so the two
//! cannot drift apart. Plain numbers: nothing here knows libp2p.

use std::time::Duration;

/// Mesh peers a node aims for (`mesh_n`): it publishes and forwards each
/// advert to its mesh peers only (flood publishing is off).
pub const MESH_N: usize = 4;
/// Below this many mesh peers the heartbeat grafts more, up to [`MESH_N`] (`mesh_n_low`).
pub const MESH_N_LOW: usize = 3;
/// Above this many mesh peers the heartbeat prunes, down to [`MESH_N`] (`mesh_n_high`).
pub const MESH_N_HIGH: usize = 8;
/// Peers outside the mesh a node sends IHAVE to each heartbeat
/// (`gossip_lazy`; `gossip_factor` is 0, so never more).
pub const GOSSIP_LAZY: usize = 3;
/// Heartbeats after its arrival during which a message is announced in
/// IHAVE (`history_gossip`).
pub const HISTORY_GOSSIP: usize = 3;
/// The gossipsub heartbeat (`heartbeat_interval`): mesh upkeep and lazy gossip.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
