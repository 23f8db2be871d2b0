//! Embedding meshwork with a task of your own.
//!
//! A task is a type implementing [`Task`]: `split` cuts the job into pieces,
//! `run` computes one piece on whichever peer gets it, `merge` combines the
//! outputs. Register it (under its `NAME`) on every node that should run it.
//!
//! This example starts three nodes in this process on loopback (no mDNS),
//! each with the built-in tasks plus `sum-squares`, and runs a job on them:
//!
//! ```sh
//! cargo run -p meshwork --example custom_task
//! ```

use meshwork::tasks::builtin_registry;
use meshwork::{JobOptions, Node, NodeConfig};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Sums k² for k in [0, n), in pieces.
struct SumSquares;

/// One piece: a range of k.
#[derive(Serialize, Deserialize)]
struct Range {
    lo: u64,
    hi: u64,
}

impl Task for SumSquares {
    const NAME: &'static str = "sum-squares";
    /// (n, pieces)
    type Input = (u64, u64);
    type Piece = Range;
    type Output = u128;
    type Result = u128;

    fn split(&self, &(n, pieces): &(u64, u64)) -> Result<Vec<Range>, TaskError> {
        if pieces == 0 {
            return Err(TaskError::Invalid("pieces must be at least 1".into()));
        }
        Ok((0..pieces).map(|i| Range { lo: n * i / pieces, hi: n * (i + 1) / pieces }).collect())
    }

    fn run(&self, r: Range, cancel: &CancelFlag) -> Result<u128, TaskError> {
        let mut sum = 0u128;
        for k in r.lo..r.hi {
            if k % 1_000_000 == 0 {
                cancel.check()?;
            }
            sum += (k as u128) * (k as u128);
        }
        Ok(sum)
    }

    fn merge(&self, _: &(u64, u64), outputs: Vec<u128>) -> Result<u128, TaskError> {
        Ok(outputs.into_iter().sum())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut nodes: Vec<Node> = Vec::new();
    for _ in 0..3 {
        let mut registry = builtin_registry();
        registry.register(SumSquares);
        let mut cfg = NodeConfig::new(libp2p::identity::Keypair::generate_ed25519(), registry);
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        cfg.behaviour.mdns = false;
        cfg.protocol = cfg.protocol.with_slots(1);
        if let Some(first) = nodes.first() {
            cfg.join = vec![first.listen_addrs()[0].clone()];
        }
        nodes.push(Node::start(cfg).await?);
    }
    let client = nodes[0].client();
    // Wait (with a deadline) until the other two advertise the task.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.peers().await?.iter().filter(|p| p.is_live() && p.tasks.iter().any(|t| t == SumSquares::NAME)).count()
        < 2
    {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the other nodes did not show up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = 30_000_000u64;
    let (sum, report) = client.run(&SumSquares, &(n, 12), &JobOptions::default(), |_, _| {}).await?;
    let expected = (n as u128 - 1) * n as u128 * (2 * n as u128 - 1) / 6;
    assert_eq!(sum, expected);
    println!(
        "sum of k² for k < {n} = {sum} ({} pieces over {} peers in {:.3}s)",
        report.pieces,
        report.pieces_per_peer.len(),
        report.wall_s
    );
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
