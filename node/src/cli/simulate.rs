//! `meshwork simulate`: the mesh at a scale you do not own. Without `--real`
//! the `meshwork-simulations` crate runs thousands of simulated nodes, each
//! the real state machine, in virtual time; with `--real` the same run (the
//! same pieces, node speeds, faults and churn, drawn from the same seed) goes
//! on real libp2p nodes in this process (see `real_sim`). Either way the
//! report comes from the crate's `Recorder`, so the two read alike.

use super::{checks, real_sim, usage, MeshOpts, NetOpts, PeerOpts, UsageError, EXIT_FAILED};
use crate::http;
use crate::service::{JobState, JobView};
use clap::Args;
use meshwork_protocol::timeline::{Outcome, Timeline};
use meshwork_simulations::{JobSummary, Report, SimArgs};
use std::collections::BTreeMap;
use std::net::SocketAddr;
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
    /// When the run ends, serve its jobs' timelines on the dashboard page
    /// a node serves, at ADDR (default 127.0.0.1:7070, or a free port if
    /// that is taken), until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1)]
    pub serve: Option<Option<SocketAddr>>,
}

pub(super) async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    check(&args.sim)?;
    if let Some(addr) = args.serve {
        if args.real || args.sim.placement_only() {
            return Err(
                UsageError("--serve shows a simulated run's jobs: not with --real or --placement-only".into()).into()
            );
        }
        return serve(args.sim, addr).await;
    }
    let passed = if args.real {
        let peer = PeerOpts { net: NetOpts { no_mdns: true, ..NetOpts::default() }, mesh: args.mesh.clone() };
        real_sim::run(&args.sim, &peer).await?
    } else {
        // Virtual time, single-threaded: off the async runtime.
        tokio::task::spawn_blocking(move || meshwork_simulations::run_cli(&args.sim)).await??
    };
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(EXIT_FAILED) })
}

/// Runs the simulation, prints its report, and serves its jobs on the
/// dashboard until Ctrl-C.
async fn serve(sim: SimArgs, addr: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let title = sim.repro_command();
    let outputs = sim.outputs();
    let (outcome, timelines) =
        tokio::task::spawn_blocking(move || meshwork_simulations::run_with_timelines(&sim)).await??;
    let passed = meshwork_simulations::emit(&outcome.report, &outputs)?;
    eprintln!("{}", outcome.timing());
    let jobs = match &outcome.report {
        Report::Run(r) => r.jobs.iter().zip(&timelines).map(|(j, t)| job_view(j, t)).collect(),
        Report::Placement(_) => Vec::new(),
    };
    let listener = http::bind(addr).await?;
    eprintln!("dashboard http://{} (Ctrl-C to stop)", listener.local_addr()?);
    let app = http::dashboard::simulation_app(http::dashboard::SimulatedRun { title, jobs, timelines });
    tokio::select! {
        served = http::serve(listener, app) => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(EXIT_FAILED) })
}

/// A simulated job as the dashboard's job list shows a node's: times in ms
/// of virtual time, from 0.
fn job_view(j: &JobSummary, t: &Timeline) -> JobView {
    let mut per_peer = BTreeMap::new();
    for s in t.spans.iter().filter(|s| matches!(s.outcome, Outcome::Done | Outcome::BackupWon)) {
        *per_peer.entry(t.peers[s.peer as usize].clone()).or_default() += 1;
    }
    JobView {
        id: u64::from(j.submitter) + 1,
        task: format!("simulated job of node {}", j.submitter),
        args: Vec::new(),
        state: match j.outcome.as_str() {
            "ok" => JobState::Done,
            "failed" => JobState::Failed,
            _ => JobState::Running,
        },
        done: j.done,
        pieces: j.pieces,
        retries: t.count(Outcome::Retried) as u32,
        backups: t.spans.iter().filter(|s| s.backup).count() as u32,
        per_peer,
        submitted_ms: 0,
        finished_ms: Some(t.elapsed_us / 1000),
        error: j.error.clone(),
    }
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
