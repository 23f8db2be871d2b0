//! `meshwork node`: a long-running member of the mesh.

use super::{slots_or_cores, terminated, PeerOpts};
use crate::net::identity;
use crate::node::Node;
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `meshwork node`.
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
    terminated().await?;
    node.shutdown().await;
    tracing::info!("node stopped");
    Ok(ExitCode::SUCCESS)
}
