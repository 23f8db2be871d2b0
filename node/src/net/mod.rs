//! Networking: everything libp2p.
//!
//! - [`transport`]: TCP/QUIC/memory stacks, with pnet for private meshes.
//! - [`muxer`]: yamux, with windows that keep every peer's frames under rust-yamux's limit.
//! - [`behaviour`]: the composed behaviour (discovery, load gossip, RPC, health).
//! - [`dht`]: Kademlia, offering a bounded number of addresses per dial.
//! - [`gate`]: how many connections peers not yet proven may hold.
//! - `rpc`: the RPC protocol on long-lived streams, its frames and byte budget.
//! - [`identity`]: keypair files.
//! - [`nat`]: reachability (AutoNAT), relays, and which path connections and pieces take.
//! - `reach`: where peers are (what discovery says) and every dial the node makes.
//! - `dialer`: the bounded address book, `--join` addresses, redials with backoff.
//! - `peer_map`: libp2p peer ids ↔ the state machine's peer keys.

pub mod behaviour;
pub mod dht;
pub(crate) mod dialer;
pub mod gate;
pub mod identity;
pub(crate) mod members;
pub mod muxer;
pub mod nat;
pub mod peer_map;
pub(crate) mod reach;
pub(crate) mod rpc;
pub mod transport;
