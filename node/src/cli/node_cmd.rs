//! `meshwork node`: a long-running member of the mesh.

use super::{slots_or_cores, terminated, PeerOpts};
use crate::client::MeshEvent;
use crate::net::identity;
use crate::node::Node;
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::broadcast;

/// Arguments of `meshwork node`. It prints `listening <multiaddr>` for each
/// listen address, then `peer-up <peer id>` and `peer-down <peer id>
/// <reason>` as peers join and leave the live mesh.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    peer: PeerOpts,
    /// Pieces this node runs at once [default: number of cores].
    #[arg(long)]
    slots: Option<u32>,
    /// Keypair file (created with mode 0600 if absent), so the node keeps
    /// its peer id across restarts [default: <data dir>/meshwork/identity.key].
    #[arg(long, value_name = "PATH")]
    identity: Option<PathBuf>,
}

pub(super) async fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let path = args.identity.unwrap_or_else(identity::default_path);
    let key = identity::load_or_create(&path)?;
    let cfg = args.peer.node_config(key, slots_or_cores(args.slots))?;
    let node = Node::start(cfg).await.context("starting the node")?;
    let mut out = std::io::stdout().lock();
    for addr in node.listen_addrs() {
        writeln!(out, "listening {addr}")?;
    }
    out.flush()?;
    drop(out);
    tracing::info!(peer = %node.peer_id(), "node running; Ctrl-C to stop");
    let mut events = node.client().mesh_events();
    let report = async move {
        // One line per change of the live mesh, for people and scripts.
        loop {
            let line = match events.recv().await {
                Ok(MeshEvent::PeerUp(p)) => format!("peer-up {p}"),
                Ok(MeshEvent::PeerDown(p, why)) => format!("peer-down {p} {why}"),
                Err(broadcast::error::RecvError::Lagged(n)) => format!("missed {n} peer events"),
                Err(broadcast::error::RecvError::Closed) => break,
            };
            // A closed stdout must not stop the node.
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    };
    tokio::select! {
        r = terminated() => r?,
        _ = report => {}
    }
    node.shutdown().await;
    tracing::info!("node stopped");
    Ok(ExitCode::SUCCESS)
}
