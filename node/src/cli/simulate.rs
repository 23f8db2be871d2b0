//! `meshwork simulate`: the mesh at a scale you do not own. Without `--real`
//! the `meshwork-simulations` crate runs thousands of simulated nodes, each
//! the real state machine, in virtual time; with `--real` the same run (the
//! same pieces, node speeds, faults and churn, drawn from the same seed) goes
//! on real libp2p nodes in this process (see `real_sim`). Either way the
//! report comes from the crate's `Recorder`, so the two read alike.

use super::{real_sim, PeerOpts, EXIT_FAILED};
use clap::Args;
use meshwork_simulations::SimArgs;
use std::process::ExitCode;

/// Arguments of `meshwork simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The simulation: nodes, pieces, costs, speeds, latency, faults, policy, seed, output.
    #[command(flatten)]
    pub sim: SimArgs,
    /// Start --nodes real libp2p nodes in this process (loopback, mDNS off)
    /// instead of simulating them, and run the same jobs and faults on them.
    #[arg(long)]
    pub real: bool,
    #[command(flatten)]
    pub peer: PeerOpts,
}

pub(super) async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let passed = if args.real {
        real_sim::run(&args.sim, &args.peer).await?
    } else {
        // Virtual time, single-threaded: off the async runtime.
        tokio::task::spawn_blocking(move || meshwork_simulations::run_cli(&args.sim)).await??
    };
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(EXIT_FAILED) })
}
