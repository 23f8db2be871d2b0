//! Joining a mesh as a short-lived peer (`peers`, `run`, `demo`) and
//! waiting, with a deadline, until enough of it is visible: a `--join`
//! that is not reached is an error naming the address and the cause, never
//! a silent run on this machine alone.

use super::{usage, PeerOpts};
use crate::client::{Client, PeerInfo};
use crate::net::dialer::peer_of;
use crate::node::Node;
use anyhow::Context;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use std::time::{Duration, Instant};

/// How often the peer table is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Why a join address was not reached when no dial of it failed: it never
/// finished a handshake, or the node there closed the connection at once.
const NO_CONNECTION: &str = "no connection (no answer, or the node there closed it: is it at its --max-connections?)";

/// How long past its deadline a join address that has not answered at all
/// (neither connected nor failed, e.g. mid-handshake) is still given, so a
/// short `--wait` does not cut off a dial that would have succeeded.
const FIRST_ANSWER: Duration = Duration::from_secs(10);

/// Starts a node with a fresh identity and `slots` slots.
pub(super) async fn join(opts: &PeerOpts, slots: u32) -> anyhow::Result<Node> {
    let cfg = opts.node_config(Keypair::generate_ed25519(), slots).map_err(usage)?;
    Node::start(cfg).await.context("starting a peer")
}

/// Waits until one of the `--join` addresses `joins` is connected. Fails
/// once `deadline` has passed and every address has answered (or
/// [`FIRST_ANSWER`] more has passed), naming each address and why it was
/// not reached.
pub(super) async fn reach(client: &Client, joins: &[Multiaddr], deadline: Instant) -> anyhow::Result<()> {
    loop {
        let peers = client.peers().await?;
        let connected: Vec<PeerId> =
            peers.iter().filter(|p| p.connected).filter_map(|p| p.peer_id.parse().ok()).collect();
        let reached = |a: &Multiaddr| peer_of(a).map_or(!connected.is_empty(), |id| connected.contains(&id));
        if joins.iter().any(reached) {
            return Ok(());
        }
        let failures = client.join_failures().await?;
        let cause = |a: &Multiaddr| failures.iter().find(|(f, _)| f == a).map(|(_, why)| why.as_str());
        let now = Instant::now();
        if now >= deadline && (joins.iter().all(|a| cause(a).is_some()) || now >= deadline + FIRST_ANSWER) {
            let why: Vec<String> =
                joins.iter().map(|a| format!("--join {a}: {}", cause(a).unwrap_or(NO_CONNECTION))).collect();
            anyhow::bail!("cannot reach the mesh: {}", why.join("; "));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `enough` holds for the peer table (live peers and others),
/// or `deadline` passes; returns the last table.
pub(super) async fn wait_for(
    client: &Client,
    deadline: Instant,
    mut enough: impl FnMut(&[PeerInfo]) -> bool,
) -> anyhow::Result<Vec<PeerInfo>> {
    loop {
        let peers = client.peers().await?;
        if enough(&peers) || Instant::now() >= deadline {
            return Ok(peers);
        }
        tokio::time::sleep(POLL).await;
    }
}
