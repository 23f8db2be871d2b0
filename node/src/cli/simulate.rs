//! `meshwork simulate`: the mesh at a scale you do not own. Without `--real`
//! the `meshwork-simulations` crate runs thousands of simulated nodes, each
//! the real state machine, in virtual time; with `--real` the same run (the
//! same pieces, node speeds, faults and churn, drawn from the same seed) goes
//! on real libp2p nodes in this process (see `real_sim`). Either way the
//! report comes from the crate's `Recorder`, so the two read alike.

use super::{checks, real_sim, usage, MeshOpts, NetOpts, PeerOpts, UsageError, EXIT_FAILED};
use clap::Args;
use meshwork_simulations::SimArgs;
use std::path::Path;
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
    /// With --real: a private mesh, limits (the nodes listen on loopback
    /// and join each other: no --listen, --join or mDNS here).
    #[command(flatten, next_help_heading = "With --real")]
    pub mesh: MeshOpts,
}

pub(super) async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    check(&args.sim)?;
    let passed = if args.real {
        let peer = PeerOpts { net: NetOpts { no_mdns: true, ..NetOpts::default() }, mesh: args.mesh.clone() };
        real_sim::run(&args.sim, &peer).await?
    } else {
        // Virtual time, single-threaded: off the async runtime.
        tokio::task::spawn_blocking(move || meshwork_simulations::run_cli(&args.sim)).await??
    };
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(EXIT_FAILED) })
}

/// Checks what the run reads and writes before it starts (a long run must
/// not fail at its end for want of a directory): the options describe a
/// run (the `--scenario` file read and parsed), and `--plot` and `--trace`
/// can be written. Any of it wrong is a usage error (exit code 2).
fn check(sim: &SimArgs) -> anyhow::Result<()> {
    sim.config().map_err(|e| usage(e.into()))?;
    let outputs = sim.outputs();
    if sim.placement_only() && (outputs.plot.is_some() || outputs.trace.is_some() || sim.has_scenario()) {
        return Err(UsageError("--placement-only takes no --plot, --trace or --scenario".into()).into());
    }
    let writable = |option: &str, path: &Option<std::path::PathBuf>| match path.as_deref().map(Path::to_string_lossy) {
        Some(p) => checks::writable_file(&p).map(|_| ()).map_err(|e| UsageError(format!("--{option}: {e}"))),
        None => Ok(()),
    };
    writable("plot", &outputs.plot)?;
    writable("trace", &outputs.trace)?;
    Ok(())
}
