//! Test kit for meshwork's integration tests: in-process meshes on
//! loopback, real `meshwork` processes killed by PID, and waits with
//! deadlines (never sleeps as synchronisation).
//!
//! - [`procs`]: starting, reading, signalling and reaping `meshwork` processes.
//! - [`events`]: what `meshwork node --json` and `meshwork run --json` print, as types.
//! - [`node_proc`], [`run_proc`]: node and run processes read through those events.
//! - [`fleet`]: many node processes on loopback, read through their text output.
//! - [`observer`]: an in-process node asking those processes for their load.
//! - [`lab`]: a LAN of network namespaces, with faults.
//! - [`rogue`]: a misbehaving peer for the security tests.
//! - [`flood`]: many fresh identities holding connections to one node.
//! - [`scale_plot`]: the scale benchmark's plot.
//! - [`guests`]: wasm guests, built from examples/wasm or written in WAT.
//! - [`api`]: a node's HTTP API from a test (plain HTTP, Prometheus parsing).
//! - [`browser`]: headless Chromium through chromedriver, for the dashboard.

pub mod api;
pub mod browser;
pub mod events;
pub mod fleet;
pub mod flood;
pub mod guests;
pub mod lab;
pub mod node_proc;
pub mod observer;
pub mod procs;
pub mod rogue;
pub mod run_proc;
pub mod scale_plot;

use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use meshwork::tasks::builtin_registry;
use meshwork::{Node, NodeConfig};
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds; returns how long that took,
/// or an error naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the tests of a file that take it one at a time: each compares its
/// jobs' times or its node's memory with what they were at rest, and two
/// attacks at once on two busy cores would measure each other. (A lab of
/// network namespaces has a lock of its own, taken after this one.)
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A node config for in-process tests: loopback TCP only, no mDNS, `slots` slots.
pub fn local_config(slots: u32) -> NodeConfig {
    let mut cfg = NodeConfig::new(Keypair::generate_ed25519(), builtin_registry());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")];
    cfg.behaviour.mdns = false;
    cfg.transport.quic = false;
    cfg.protocol = cfg.protocol.with_slots(slots);
    cfg
}

/// Starts `n` in-process nodes on loopback, each joining the first.
pub async fn local_mesh(n: usize, slots: u32) -> anyhow::Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Vec::new();
    for _ in 0..n {
        let mut cfg = local_config(slots);
        if let Some(first) = nodes.first() {
            cfg.join = vec![first.listen_addrs()[0].clone()];
        }
        nodes.push(Node::start(cfg).await?);
    }
    Ok(nodes)
}

/// Waits until every node sees every other one: connected, not down, its
/// advert heard (workers and submit-only nodes alike).
pub async fn wait_connected(nodes: &[Node], timeout: Duration) -> anyhow::Result<Duration> {
    let clients: Vec<_> = nodes.iter().map(|n| n.client()).collect();
    let want = nodes.len() - 1;
    wait_until("a fully connected mesh", timeout, || {
        let clients = clients.clone();
        async move {
            for c in &clients {
                let seen = |p: &&meshwork::PeerInfo| p.connected && p.down.is_none() && p.slots.is_some();
                let live = c.peers().await.map(|p| p.iter().filter(seen).count()).unwrap_or(0);
                if live < want {
                    return false;
                }
            }
            true
        }
    })
    .await
}

/// The first TCP listen address of `node`.
pub fn tcp_addr(node: &Node) -> Multiaddr {
    node.listen_addrs()
        .iter()
        .find(|a| a.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_))))
        .cloned()
        .expect("a TCP listen address")
}

/// Waits until `client`'s row for `peer` (a peer id string) satisfies
/// `holds`; returns how long that took.
pub async fn wait_peer(
    client: &meshwork::Client,
    peer: &str,
    what: &str,
    timeout: Duration,
    holds: impl Fn(&meshwork::PeerInfo) -> bool,
) -> anyhow::Result<Duration> {
    let holds = &holds;
    wait_until(what, timeout, || async move {
        client.peers().await.map(|rows| rows.iter().any(|r| r.peer_id == peer && holds(r))).unwrap_or(false)
    })
    .await
}
