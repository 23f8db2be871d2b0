//! The `meshwork` command line. One module per subcommand; options shared
//! by every command that starts a peer live in [`PeerOpts`], the checks
//! clap runs on argument values while parsing in `checks`, and joining a
//! mesh with a deadline in `mesh`.

mod bench;
pub(crate) mod checks;
mod completions;
mod demo;
mod exec_cmd;
mod interrupt;
mod jobs_cmd;
mod keygen;
mod limits;
mod mesh;
mod node_cmd;
mod peers_cmd;
mod progress;
mod real_sim;
mod run_cmd;
mod simulate;
mod tasks_cmd;

pub use run_cmd::job_kind;

use crate::net::behaviour::BehaviourConfig;
use crate::net::transport::TransportConfig;
use crate::node::NodeConfig;
use crate::tasks::builtin_registry;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub(crate) use peers_cmd::mesh_nodes;

/// Exit code: the job failed (or a command's work did).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the mesh could not be reached or a node could not start.
pub const EXIT_MESH: u8 = 3;
/// Exit code: cancelled with Ctrl-C.
pub const EXIT_CANCELLED: u8 = 130;

/// meshwork: a peer-to-peer compute mesh. Every machine runs the same
/// binary; nodes find each other (mDNS on a LAN, `--join` from elsewhere),
/// gossip their load, and any node can split a job into pieces, run them on
/// the least-loaded peers and merge the results.
#[derive(Debug, Parser)]
#[command(
    name = "meshwork",
    version = env!("MESHWORK_VERSION"),
    propagate_version = true,
    after_help = "Exit codes: 0 done; 1 the job (or the command's work) failed; 2 bad arguments \
(checked before anything starts); 3 no mesh (a --join address not reached, fewer than \
--min-peers peers, or a node could not start); 130 cancelled with Ctrl-C."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How log lines (stderr) are written: text for people, or one JSON
    /// object per line for log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// The form of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event, coloured only on a terminal.
    Text,
    /// One JSON object per event (`timestamp`, `level`, `fields`, `target`).
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node until Ctrl-C or SIGTERM, printing its listen addresses.
    Node(node_cmd::NodeArgs),
    /// Join the mesh briefly and list its peers with their load.
    // It runs no pieces: the options about whose pieces a node runs, and
    // for how long, do not apply.
    #[command(
        mut_arg("accept_from", |a| a.hide(true)),
        mut_arg("max_pieces_per_peer", |a| a.hide(true)),
        mut_arg("max_piece_time", |a| a.hide(true))
    )]
    Peers(peers_cmd::PeersArgs),
    /// Run a job on the mesh and print its result.
    Run(run_cmd::RunArgs),
    /// Give a job to a running node (its HTTP API), which keeps it on disk
    /// and runs it without this terminal; print its id.
    Submit(jobs_cmd::SubmitArgs),
    /// List the jobs a node was given, newest first.
    Jobs(jobs_cmd::JobsArgs),
    /// Show a job's state.
    Status(jobs_cmd::JobArgs),
    /// Wait for a job to end and print its result.
    Wait(jobs_cmd::JobArgs),
    /// Print a finished job's result.
    Result(jobs_cmd::ResultArgs),
    /// Cancel a job.
    Cancel(jobs_cmd::JobArgs),
    /// List the built-in tasks.
    Tasks,
    /// Write a new pre-shared key for a private mesh.
    Keygen(keygen::KeygenArgs),
    /// Start a local mesh of real nodes on this machine and run a job on it.
    Demo(demo::DemoArgs),
    /// Measure the peer-baseline workloads (noop, primes, single, fault) on a
    /// 2-node mesh on this machine; one JSON line each.
    Bench(bench::BenchArgs),
    /// Simulate a mesh in virtual time (thousands of nodes, the real
    /// scheduler), or with --real on real nodes in this process.
    Simulate(Box<simulate::SimulateArgs>),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(completions::CompletionsArgs),
}

impl Cli {
    /// Runs the command; errors are reported by the caller as one line.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Node(a) => node_cmd::run(a).await,
            Command::Peers(a) => peers_cmd::run(a).await,
            Command::Run(a) => run_cmd::run(a).await,
            // Blocking HTTP calls: off the runtime's threads.
            Command::Submit(a) => blocking(move || jobs_cmd::submit(a)).await,
            Command::Jobs(a) => blocking(move || jobs_cmd::jobs(a)).await,
            Command::Status(a) => blocking(move || jobs_cmd::status(a)).await,
            Command::Wait(a) => blocking(move || jobs_cmd::wait(a)).await,
            Command::Result(a) => blocking(move || jobs_cmd::result(a)).await,
            Command::Cancel(a) => blocking(move || jobs_cmd::cancel(a)).await,
            Command::Tasks => tasks_cmd::run(),
            Command::Keygen(a) => keygen::run(a),
            Command::Demo(a) => demo::run(a).await,
            Command::Simulate(a) => simulate::run(*a).await,
            Command::Bench(a) => bench::run(a).await,
            Command::Completions(a) => completions::run(a),
        }
    }
}

/// Options of every command that starts a peer: where it is on the
/// network, and the rest.
#[derive(Debug, Clone, Args)]
pub struct PeerOpts {
    /// Addresses: listen, join, mDNS.
    #[command(flatten, next_help_heading = "Mesh options")]
    pub net: NetOpts,
    /// Private mesh and limits.
    #[command(flatten, next_help_heading = "Mesh options")]
    pub mesh: MeshOpts,
}

/// Where a peer listens and how it finds the mesh (not options of
/// `simulate --real`, whose nodes are on loopback and join each other).
#[derive(Debug, Clone, Default, Args)]
pub struct NetOpts {
    /// Address to listen on (repeatable) [default: all interfaces, TCP and
    /// QUIC, ephemeral ports].
    #[arg(long = "listen", value_name = "MULTIADDR", global = true)]
    pub listen: Vec<Multiaddr>,
    /// A node of an existing mesh to join (repeatable), e.g.
    /// /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...; the rest of the mesh is
    /// found through it.
    #[arg(long = "join", value_name = "MULTIADDR", global = true)]
    pub join: Vec<Multiaddr>,
    /// Do not use mDNS (it multicasts on every interface); use --join.
    #[arg(long, global = true)]
    pub no_mdns: bool,
    /// After each RPC message, poll the network without sleeping for this
    /// many microseconds, so that an answer arriving meanwhile is read at
    /// once (waking a sleeping CPU costs tens of microseconds on a VM).
    /// Costs at most this much CPU per message; 0 turns it off.
    #[arg(long, default_value_t = 150, value_name = "MICROS", global = true)]
    pub busy_poll: u64,
}

/// The pre-shared key of a private mesh, and limits.
#[derive(Debug, Clone, Args)]
pub struct MeshOpts {
    /// Private mesh: the pre-shared key file written by `meshwork keygen`.
    /// Only nodes with the same key can connect; QUIC is turned off.
    #[arg(long, value_name = "PATH", env = "MESHWORK_SECRET_FILE", global = true, value_parser = checks::readable_file)]
    pub secret_file: Option<PathBuf>,
    /// Limits and who may submit work.
    #[command(flatten)]
    pub limits: limits::LimitOpts,
}

impl PeerOpts {
    /// A node configuration with these options, `slots` slots and `key`.
    pub fn node_config(&self, key: Keypair, slots: u32) -> anyhow::Result<NodeConfig> {
        let mut cfg = NodeConfig::new(key, builtin_registry());
        if !self.net.listen.is_empty() {
            cfg.listen = self.net.listen.clone();
        }
        cfg.join = self.net.join.clone();
        cfg.busy_poll = Duration::from_micros(self.net.busy_poll);
        cfg.protocol = cfg.protocol.with_slots(slots);
        cfg.protocol.max_piece_timeout = self.mesh.limits.max_piece_time()?;
        if let Some(n) = self.mesh.limits.max_pieces_per_peer {
            cfg.protocol.max_pieces_per_submitter = n;
        }
        cfg.protocol.max_batch_bytes = self.mesh.limits.max_message / 2;
        cfg.accept_from = self.mesh.limits.allowed()?;
        cfg.behaviour = BehaviourConfig {
            mdns: !self.net.no_mdns,
            max_message: self.mesh.limits.max_message,
            max_connections: self.mesh.limits.max_connections,
            ..BehaviourConfig::default()
        };
        let psk = match &self.mesh.secret_file {
            Some(path) => Some(keygen::read(path)?),
            None => None,
        };
        if psk.is_some() {
            cfg.listen.retain(|a| !a.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::QuicV1)));
            if cfg.listen.is_empty() {
                anyhow::bail!("a private mesh (--secret-file) cannot use QUIC: give a TCP --listen address");
            }
        }
        cfg.transport = TransportConfig { psk, quic: true };
        Ok(cfg)
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking(f: impl FnOnce() -> anyhow::Result<ExitCode> + Send + 'static) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(f).await.context("a command's thread panicked")?
}

/// Slots to use: `--slots` or the number of cores.
pub fn slots_or_cores(slots: Option<u32>) -> u32 {
    slots.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as u32)
}

/// Waits for SIGINT or SIGTERM.
pub async fn terminated() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// A peer id shortened for people (scripts get full ids with `--json`).
pub fn short(peer: &str) -> String {
    if peer.len() > 12 {
        format!("…{}", &peer[peer.len() - 8..])
    } else {
        peer.to_string()
    }
}

/// The tasks `meshwork run` knows, one per line with what each does: said
/// after an unknown task's error, so the next try can be right.
pub fn task_list() -> String {
    use clap::CommandFactory;
    let cli = Cli::command();
    let Some(run) = cli.find_subcommand("run") else { return String::new() };
    let tasks: Vec<String> = run
        .get_subcommands()
        .filter(|t| !t.is_hide_set())
        .map(|t| format!("  {:<12} {}", t.get_name(), t.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    format!("Tasks:\n{}", tasks.join("\n"))
}

/// Bad arguments: reported like clap's own errors (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `e`, caused by the arguments, as a [`UsageError`] (its context chain
/// kept in the message).
pub(crate) fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(UsageError(format!("{e:#}")))
}
