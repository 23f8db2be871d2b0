//! Joining a mesh as a short-lived peer (`peers`, `run`, `demo`) and
//! waiting, with a deadline, until enough of it is visible.

use super::{usage, PeerOpts};
use crate::client::{Client, PeerInfo};
use crate::node::Node;
use anyhow::Context;
use libp2p::identity::Keypair;
use std::time::{Duration, Instant};

/// How often the peer table is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Starts a node with a fresh identity and `slots` slots.
pub(super) async fn join(opts: &PeerOpts, slots: u32) -> anyhow::Result<Node> {
    let cfg = opts.node_config(Keypair::generate_ed25519(), slots).map_err(usage)?;
    Node::start(cfg).await.context("starting a peer")
}

/// Waits until `enough` holds for the live peers, or `wait` passes; returns the last table.
pub(super) async fn wait_for(
    client: &Client,
    wait: Duration,
    enough: impl Fn(&[PeerInfo]) -> bool,
) -> anyhow::Result<Vec<PeerInfo>> {
    let deadline = Instant::now() + wait;
    loop {
        let peers: Vec<PeerInfo> = client.peers().await?.into_iter().filter(PeerInfo::is_live).collect();
        if enough(&peers) || Instant::now() >= deadline {
            return Ok(peers);
        }
        tokio::time::sleep(POLL).await;
    }
}
