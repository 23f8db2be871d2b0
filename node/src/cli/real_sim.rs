//! `meshwork simulate --real`: the job a simulation describes, run on real
//! libp2p nodes in this process (loopback TCP, mDNS off), with the same
//! faults, reported in the same shape.
//!
//! Each node runs on its own thread with its own single-threaded runtime, so
//! faults are faithful: a crash drops the runtime (its sockets close, as
//! when a process is killed), a hang blocks the thread (connections stay
//! open and nothing answers, as with SIGSTOP). Pieces sleep for their cost
//! divided by their node's speed, so dozens of nodes fit on two cores.

use super::PeerOpts;
use crate::client::Client;
use crate::node::{Node, NodeConfig};
use crate::tasks::builtin_registry;
use anyhow::{bail, Context};
use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use meshwork_protocol::JobEvent;
use meshwork_simulations::{
    draw_plot, parse_scenario, Fault, Faults, JobSummary, LoadSummary, Messages, Report, RunReport, Sample, SimArgs,
};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often node loads are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// A churned node's replacement joins this long after it left.
const REPLACE_AFTER: Duration = Duration::from_secs(1);

/// A synthetic piece: its index and its cost at speed 1.
#[derive(Serialize, Deserialize)]
struct Piece {
    index: u32,
    cost_us: u64,
}

/// Sleeps each piece's cost divided by this node's speed; returns its index.
struct Synthetic {
    speed: f64,
}

impl Task for Synthetic {
    const NAME: &'static str = "synthetic";
    type Input = Vec<u64>;
    type Piece = Piece;
    type Output = u32;
    type Result = u32;

    fn split(&self, costs: &Vec<u64>) -> Result<Vec<Piece>, TaskError> {
        Ok(costs.iter().enumerate().map(|(i, c)| Piece { index: i as u32, cost_us: *c }).collect())
    }

    fn run(&self, piece: Piece, cancel: &CancelFlag) -> Result<u32, TaskError> {
        let until = Instant::now() + Duration::from_secs_f64(piece.cost_us as f64 / 1e6 / self.speed);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            cancel.check()?;
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
        Ok(piece.index)
    }

    /// Every piece exactly once and in order, or the job's result is wrong.
    fn merge(&self, costs: &Vec<u64>, outputs: Vec<u32>) -> Result<u32, TaskError> {
        let wrong = outputs.len() != costs.len() || outputs.iter().enumerate().any(|(i, o)| *o != i as u32);
        if wrong {
            return Err(TaskError::Failed(format!(
                "{} outputs for {} pieces, or out of order",
                outputs.len(),
                costs.len()
            )));
        }
        Ok(outputs.len() as u32)
    }
}

/// What the thread of a node is told.
enum Ctl {
    /// Stop answering until the sender is dropped or sends.
    Hang(std_mpsc::Receiver<()>),
    /// Drop everything at once.
    Crash,
    /// Shut down cleanly.
    Leave,
}

/// A node on its own thread.
struct RealNode {
    client: Client,
    addr: Multiaddr,
    slots: u32,
    ctl: mpsc::UnboundedSender<Ctl>,
    resume: Option<std_mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RealNode {
    /// Starts a node with `speed` on a thread of its own.
    async fn start(cfg: NodeConfig, slots: u32) -> anyhow::Result<RealNode> {
        let (ctl, mut ctl_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(anyhow::Error::from(e)))),
            };
            rt.block_on(async move {
                let node = match Node::start(cfg).await {
                    Ok(n) => n,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let _ = ready_tx.send(Ok((node.client(), node.listen_addrs()[0].clone())));
                while let Some(ctl) = ctl_rx.recv().await {
                    match ctl {
                        // Blocks this runtime: the node is frozen, its sockets open.
                        Ctl::Hang(resume) => drop(resume.recv()),
                        Ctl::Crash => return,
                        Ctl::Leave => return node.shutdown().await,
                    }
                }
            });
        });
        let (client, addr) = ready_rx.await.context("a node thread died while starting")??;
        Ok(RealNode { client, addr, slots, ctl, resume: None, thread: Some(thread) })
    }

    fn send(&mut self, ctl: Ctl) {
        let _ = self.ctl.send(ctl);
    }

    fn hang(&mut self) {
        let (tx, rx) = std_mpsc::channel();
        self.resume = Some(tx);
        self.send(Ctl::Hang(rx));
    }

    fn resume(&mut self) {
        self.resume = None;
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.resume = None;
        self.send(Ctl::Crash);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The mesh and its fault bookkeeping.
struct Mesh {
    nodes: Vec<Option<RealNode>>,
    speeds: Vec<f64>,
    rng: rand_chacha::ChaCha8Rng,
    args: SimArgs,
    peer: PeerOpts,
    faults: Faults,
}

impl Mesh {
    fn config(&self, speed: f64, join: Option<Multiaddr>) -> anyhow::Result<NodeConfig> {
        let mut cfg = self.peer.node_config(Keypair::generate_ed25519(), self.args.slots)?;
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")];
        cfg.behaviour.mdns = false;
        cfg.transport.quic = false;
        cfg.join = join.into_iter().collect();
        cfg.protocol.policy = self.args.policy;
        cfg.protocol.advert_interval = self.args.advert_interval;
        let mut registry = builtin_registry();
        registry.register(Synthetic { speed });
        cfg.registry = registry;
        Ok(cfg)
    }

    async fn add(&mut self) -> anyhow::Result<()> {
        let speed = self.args.speeds.sample(&mut self.rng).max(0.01);
        let join = self.nodes.iter().flatten().next().map(|n| n.addr.clone());
        let node = RealNode::start(self.config(speed, join)?, self.args.slots).await?;
        self.nodes.push(Some(node));
        self.speeds.push(speed);
        Ok(())
    }

    fn node(&mut self, i: u32) -> Option<&mut RealNode> {
        self.nodes.get_mut(i as usize).and_then(Option::as_mut)
    }

    async fn apply(&mut self, fault: &Fault) -> anyhow::Result<()> {
        match fault {
            Fault::Crash(ids) => ids.iter().for_each(|i| {
                self.faults.crashes += 1;
                drop(self.nodes.get_mut(*i as usize).and_then(Option::take));
            }),
            Fault::Leave(ids) => ids.iter().for_each(|i| {
                self.faults.leaves += 1;
                if let Some(mut n) = self.nodes.get_mut(*i as usize).and_then(Option::take) {
                    n.send(Ctl::Leave);
                    // Its thread finishes the shutdown; joining would stall the run.
                    n.thread.take();
                }
            }),
            Fault::Hang(ids) => ids.iter().for_each(|i| {
                self.faults.hangs += 1;
                if let Some(n) = self.node(*i) {
                    n.hang();
                }
            }),
            Fault::Resume(ids) => ids.iter().for_each(|i| {
                if let Some(n) = self.node(*i) {
                    n.resume();
                }
            }),
            Fault::Join(k) => {
                for _ in 0..*k {
                    self.faults.joins += 1;
                    self.add().await?;
                }
            }
            Fault::Partition(_) | Fault::Heal => {
                bail!("partitions need separate networks: use the LAN lab (tests/tests/lan.rs), not --real")
            }
        }
        Ok(())
    }
}

/// Runs the job on real nodes and prints the report; returns whether the job was right.
pub(super) async fn run(args: &SimArgs, peer: &PeerOpts) -> anyhow::Result<bool> {
    if args.placement_only || args.submitters != 1 {
        bail!("--real runs one job from one submitter (no --placement-only, --submitters 1)");
    }
    if args.nodes == 0 || args.nodes > 200 {
        bail!("--real starts between 1 and 200 nodes in this process");
    }
    eprintln!(
        "real mode: {} nodes on loopback; --latency, --loss and --advert-delay are the real network's",
        args.nodes
    );
    let mut script = match &args.scenario {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            parse_scenario(&text, 1).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let costs: Vec<u64> = (0..args.pieces).map(|_| args.piece_cost.sample_micros(&mut rng)).collect();
    let mut mesh = Mesh {
        nodes: Vec::new(),
        speeds: Vec::new(),
        rng,
        args: args.clone(),
        peer: peer.clone(),
        faults: Faults::default(),
    };
    for _ in 0..args.nodes {
        mesh.add().await?;
    }
    let capacity: f64 = mesh.speeds.iter().map(|s| s * args.slots as f64).sum();
    let fastest = mesh.speeds.iter().copied().fold(0.0, f64::max);
    let ideal_s = (costs.iter().sum::<u64>() as f64 / capacity)
        .max(costs.iter().copied().max().unwrap_or(0) as f64 / fastest)
        / 1e6;
    add_churn(&mut script, &mut mesh, ideal_s);
    let submitter = mesh.nodes[0].as_ref().map(|n| n.client.clone()).context("no submitter")?;
    wait_for_mesh(&submitter, args.nodes as usize - 1).await?;

    let done = Arc::new(AtomicU32::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let job = {
        let (c, costs, done, retried) = (submitter.clone(), costs.clone(), done.clone(), retried.clone());
        tokio::spawn(async move {
            let opts = crate::client::JobOptions::default();
            c.run(&Synthetic { speed: 1.0 }, &costs, &opts, move |_, e| match e {
                JobEvent::Progress { done: d, .. } => done.store(*d, Ordering::Relaxed),
                JobEvent::Retried { .. } => drop(retried.fetch_add(1, Ordering::Relaxed)),
                _ => {}
            })
            .await
        })
    };
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    let mut next = 0;
    tokio::pin!(job);
    let outcome = loop {
        tokio::select! {
            r = &mut job => break r?,
            _ = tick.tick() => {
                while let Some(s) = script.get(next).filter(|s| s.at <= start.elapsed()) {
                    let fault = s.fault.clone();
                    next += 1;
                    mesh.apply(&fault).await?;
                }
                samples.push(sample(&mesh, start.elapsed(), done.load(Ordering::Relaxed)).await);
            }
        }
    };
    let makespan = start.elapsed().as_secs_f64();
    // A node still hung cannot report its counters.
    mesh.nodes.iter_mut().flatten().for_each(RealNode::resume);
    let report =
        report(args, &mesh, outcome, makespan, ideal_s, samples, &costs, retried.load(Ordering::Relaxed)).await;
    let passed = report.violations.is_empty();
    if let Some(path) = &args.plot {
        draw_plot(path, &report)?;
    }
    let report = Report::Run(Box::new(report));
    println!("{}", if args.json { report.to_json() } else { report.to_text() });
    Ok(passed)
}

/// Churn: crashes and graceful leaves, alternately, of random non-submitters,
/// spread over the ideal makespan, each replaced a second later.
fn add_churn(script: &mut Vec<meshwork_simulations::Scripted>, mesh: &mut Mesh, ideal_s: f64) {
    let events = (mesh.args.churn * mesh.args.nodes as f64).round() as u32;
    for e in 0..events {
        let at = Duration::from_secs_f64(mesh.rng.random_range(0.0..ideal_s.max(0.001)));
        let victim = mesh.rng.random_range(1..mesh.args.nodes.max(2));
        let fault = if e % 2 == 0 { Fault::Crash(vec![victim]) } else { Fault::Leave(vec![victim]) };
        script.push(meshwork_simulations::Scripted { at, fault, line: 0 });
        script.push(meshwork_simulations::Scripted { at: at + REPLACE_AFTER, fault: Fault::Join(1), line: 0 });
    }
    script.sort_by_key(|s| s.at);
}

/// Waits until the submitter sees `others` live peers (at most 30 s).
async fn wait_for_mesh(c: &Client, others: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = c.peers().await?.iter().filter(|p| p.is_live()).count();
        if live >= others {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {live} of {others} nodes joined within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sample(mesh: &Mesh, at: Duration, done: u32) -> Sample {
    let mut utils = Vec::new();
    let mut loads = Vec::new();
    for n in mesh.nodes.iter().flatten().filter(|n| n.resume.is_none()) {
        if let Ok(load) = n.client.load().await {
            utils.push(load.running as f64 / n.slots.max(1) as f64);
            loads.push(load.outstanding());
        }
    }
    utils.sort_by(f64::total_cmp);
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    Sample {
        t_s: at.as_secs_f64(),
        util_min: utils.first().copied().unwrap_or(0.0),
        util_median: utils.get(utils.len() / 2).copied().unwrap_or(0.0),
        util_max: utils.last().copied().unwrap_or(0.0),
        util_mean: mean(&utils),
        load_max: loads.iter().copied().max().unwrap_or(0),
        load_mean: mean(&loads.iter().map(|l| *l as f64).collect::<Vec<_>>()),
        done: done as u64,
    }
}

#[allow(clippy::too_many_arguments)]
async fn report(
    args: &SimArgs,
    mesh: &Mesh,
    outcome: Result<(u32, crate::client::JobReport), crate::client::RunError>,
    makespan_s: f64,
    ideal_s: f64,
    samples: Vec<Sample>,
    costs: &[u64],
    retried: u64,
) -> RunReport {
    let mut messages = Messages::default();
    let mut faults = mesh.faults.clone();
    for n in mesh.nodes.iter().flatten() {
        if let Ok(s) = n.client.stats().await {
            messages.requests += s.requests_sent;
            messages.responses += s.responses_sent;
            messages.adverts += s.adverts_published;
            faults.marked_down += s.marked_down;
        }
    }
    messages.total = messages.requests + messages.responses + messages.adverts;
    messages.per_piece = messages.total as f64 / costs.len().max(1) as f64;
    let mut violations = Vec::new();
    let (job, report) = match &outcome {
        Ok((n, r)) => {
            if *n as usize != costs.len() {
                violations.push(format!("{n} pieces merged of {}", costs.len()));
            }
            (
                JobSummary {
                    submitter: 0,
                    pieces: costs.len() as u32,
                    outcome: "ok".into(),
                    error: None,
                    makespan_s: Some(r.wall_s),
                    done: *n,
                },
                Some(r),
            )
        }
        Err(e) => {
            violations.push(format!("the job failed: {e}"));
            (
                JobSummary {
                    submitter: 0,
                    pieces: costs.len() as u32,
                    outcome: "failed".into(),
                    error: Some(e.to_string()),
                    makespan_s: None,
                    done: 0,
                },
                None,
            )
        }
    };
    let with_work: Vec<&Sample> = samples.iter().filter(|s| s.load_mean > 0.0).collect();
    let avg = |f: &dyn Fn(&Sample) -> f64| {
        if with_work.is_empty() {
            0.0
        } else {
            with_work.iter().map(|s| f(s)).sum::<f64>() / with_work.len() as f64
        }
    };
    RunReport {
        command: format!("{} --real", args.repro_command()),
        nodes: args.nodes,
        pieces: args.pieces,
        submitters: 1,
        seed: args.seed,
        policy: args.policy.to_string(),
        makespan_s: outcome.is_ok().then_some(makespan_s),
        ideal_s,
        makespan_over_ideal: outcome.is_ok().then_some(makespan_s / ideal_s.max(f64::MIN_POSITIVE)),
        jobs: vec![job],
        pieces_retried: report.map_or(retried, |r| r.retries as u64),
        backups_launched: report.map_or(0, |r| r.backups as u64),
        backups_won: report.map_or(0, |r| r.backups_won as u64),
        duplicates_ignored: report.map_or(0, |r| r.duplicates_ignored as u64),
        pieces_lost: if outcome.is_ok() { 0 } else { costs.len() as u64 },
        messages,
        utilization_mean: avg(&|s| s.util_mean),
        load: LoadSummary {
            sample_interval_s: SAMPLE_EVERY.as_secs_f64(),
            peak: samples.iter().map(|s| s.load_max).max().unwrap_or(0),
            max_over_mean: avg(&|s| s.load_max as f64) / avg(&|s| s.load_mean).max(f64::MIN_POSITIVE),
            max_mean: avg(&|s| s.load_max as f64),
        },
        faults,
        events: 0,
        trace_lines: 0,
        trace_hash: String::new(),
        violations,
        samples,
    }
}
