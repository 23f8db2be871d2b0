//! `meshwork simulate --real`: the run a simulation describes, on real
//! libp2p nodes in this process (loopback TCP, mDNS off). The pieces, the
//! nodes' speeds and the churn come from the same `Plan` as the simulator's,
//! the machines and jobs are set up by the same `SimConfig`, and the report
//! is made by the same `Recorder`, fed here with what the real nodes do.
//! This file only runs the nodes and breaks them.
//!
//! Each node runs on its own thread with its own single-threaded runtime, so
//! faults are faithful: a crash drops the runtime (its sockets close, as
//! when a process is killed), a hang blocks the thread (connections stay
//! open and nothing answers, as with SIGSTOP). Pieces sleep for their cost
//! divided by their node's speed, so dozens of nodes fit on two cores.

use super::PeerOpts;
use crate::client::{Client, MeshEvent};
use crate::net::peer_map::PeerNames;
use crate::node::{Node, NodeConfig};
use crate::tasks::builtin_registry;
use anyhow::{bail, Context};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use meshwork_protocol::wire::{from_cbor, to_cbor};
use meshwork_protocol::{JobEvent, PeerKey, Time};
use meshwork_simulations::{
    emit, piece_cost, ChurnKind, Fault, NodeSample, Plan, Recorder, Report, SimArgs, SimConfig, Step, REPLACE_AFTER,
};
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// Most nodes started in this process.
const MAX_NODES: u32 = 200;
/// Why `--real` runs no partitions.
const PARTITIONS: &str = "partitions need separate networks: use the LAN lab (tests/tests/lan.rs), not --real";
/// How long the nodes get to find each other before the run starts.
const MESH_DEADLINE: Duration = Duration::from_secs(60);

/// Sleeps each piece's cost (carried in its input) divided by this node's
/// speed, and gives the input back as its output. Jobs are submitted as
/// the plan's raw pieces, so `split` and `merge` are never called.
struct Synthetic {
    speed: f64,
}

impl Task for Synthetic {
    const NAME: &'static str = "synthetic";
    type Input = ();
    type Piece = ByteBuf;
    type Output = ByteBuf;
    type Result = ();

    fn split(&self, _: &()) -> Result<Vec<ByteBuf>, TaskError> {
        Ok(Vec::new())
    }

    fn run(&self, piece: ByteBuf, cancel: &CancelFlag) -> Result<ByteBuf, TaskError> {
        let cost = Duration::from_micros(piece_cost(&piece));
        let until = Instant::now() + cost.div_f64(self.speed);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            cancel.check()?;
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
        Ok(piece)
    }

    fn merge(&self, _: &(), _: Vec<ByteBuf>) -> Result<(), TaskError> {
        Ok(())
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
    ctl: mpsc::UnboundedSender<Ctl>,
    resume: Option<std_mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RealNode {
    /// Starts a node on a thread of its own.
    async fn start(cfg: NodeConfig) -> anyhow::Result<RealNode> {
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
                    Err(e) => return drop(ready_tx.send(Err(e.into()))),
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
        Ok(RealNode { client, addr, ctl, resume: None, thread: Some(thread) })
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

    fn hung(&self) -> bool {
        self.resume.is_some()
    }

    /// Has a leaving node finished its shutdown?
    fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
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

/// A node's slot: running, leaving (finishing what it accepted), or gone.
enum Slot {
    Running(RealNode),
    Leaving(RealNode),
    Gone,
}

impl Slot {
    fn node(&self) -> Option<&RealNode> {
        match self {
            Slot::Running(n) | Slot::Leaving(n) => Some(n),
            Slot::Gone => None,
        }
    }
}

/// A node's view of the mesh changed (`Err`: it changed faster than we
/// listened and this many changes were lost), tagged with the node and
/// when it came.
type Heard = (u32, Instant, Result<MeshEvent, u64>);

/// Something due at a point of the run: a step of the plan, or a
/// churned node's replacement.
#[derive(Clone, Copy, Debug)]
enum Due {
    Step(Step),
    Join,
}

/// The mesh: its nodes, numbered as the simulator numbers them, and what
/// the recorder needs to know of them.
struct Mesh {
    cfg: SimConfig,
    peer: PeerOpts,
    plan: Plan,
    rec: Recorder,
    start: Instant,
    slots: Vec<Slot>,
    ids: HashMap<PeerId, u32>,
    /// Busy slot time of each node so far, summed at each sample, µs.
    busy: Vec<u64>,
    /// Slots running at each node's last sample.
    running: Vec<u32>,
    sampled_at: Time,
    /// Node events.
    mesh_tx: mpsc::UnboundedSender<Heard>,
    /// Job events, tagged with the submitter and when they came.
    jobs_tx: mpsc::UnboundedSender<(u32, Instant, JobEvent)>,
    forwarders: JoinSet<()>,
}

impl Mesh {
    /// Time since the run started.
    fn now(&self) -> Time {
        self.at(Instant::now())
    }

    /// `t` as time since the run started (events are stamped where they
    /// arrive, so a busy harness loop does not delay them).
    fn at(&self, t: Instant) -> Time {
        Time::from_micros(t.saturating_duration_since(self.start).as_micros() as u64)
    }

    /// Starts the next node the plan draws, joined to the first one still running.
    async fn add(&mut self) -> anyhow::Result<u32> {
        let draw = self.plan.next_node();
        let mut cfg = self.peer.node_config(Keypair::generate_ed25519(), self.cfg.slots)?;
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")];
        cfg.behaviour.mdns = false;
        cfg.transport.quic = false;
        // Many nodes share these cores: none may spin.
        cfg.busy_poll = std::time::Duration::ZERO;
        cfg.join = self.slots.iter().find_map(|s| s.node()).map(|n| n.addr.clone()).into_iter().collect();
        cfg.protocol = self.cfg.tune(cfg.protocol);
        let mut registry = builtin_registry();
        registry.register(Synthetic { speed: draw.speed });
        cfg.registry = registry;
        let node = RealNode::start(cfg).await?;
        let n = self.slots.len() as u32;
        self.ids.insert(node.client.peer_id(), n);
        let mut events = node.client.mesh_events();
        let tx = self.mesh_tx.clone();
        self.forwarders.spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ev) => drop(tx.send((n, Instant::now(), Ok(ev)))),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                        drop(tx.send((n, Instant::now(), Err(k))))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        self.slots.push(Slot::Running(node));
        self.busy.push(0);
        self.running.push(0);
        Ok(n)
    }

    fn running_node(&mut self, n: u32) -> Option<&mut RealNode> {
        match self.slots.get_mut(n as usize) {
            Some(Slot::Running(node)) => Some(node),
            _ => None,
        }
    }

    fn crash(&mut self, n: u32) {
        let now = self.now();
        if let Some(slot) = self.slots.get_mut(n as usize).filter(|s| s.node().is_some()) {
            *slot = Slot::Gone;
            self.rec.crashed(n, now);
        }
    }

    fn leave(&mut self, n: u32) {
        let now = self.now();
        let Some(slot) = self.slots.get_mut(n as usize) else { return };
        if !matches!(slot, Slot::Running(node) if !node.hung()) {
            return;
        }
        if let Slot::Running(mut node) = std::mem::replace(slot, Slot::Gone) {
            node.send(Ctl::Leave);
            *slot = Slot::Leaving(node);
            self.rec.leaving(n, now);
        }
    }

    fn hang(&mut self, n: u32, hung: bool) {
        let now = self.now();
        let Some(node) = self.running_node(n) else { return };
        if node.hung() == hung {
            return;
        }
        if hung {
            node.hang();
        } else {
            node.resume();
        }
        self.rec.hang(n, hung, now);
    }

    async fn join(&mut self) -> anyhow::Result<()> {
        let n = self.add().await?;
        let now = self.now();
        self.rec.joined(n, now);
        Ok(())
    }

    async fn apply(&mut self, fault: &Fault) -> anyhow::Result<()> {
        match fault {
            Fault::Crash(ids) => ids.iter().for_each(|n| self.crash(*n)),
            Fault::Leave(ids) => ids.iter().for_each(|n| self.leave(*n)),
            Fault::Hang(ids) => ids.iter().for_each(|n| self.hang(*n, true)),
            Fault::Resume(ids) => ids.iter().for_each(|n| self.hang(*n, false)),
            Fault::Join(k) => {
                for _ in 0..*k {
                    self.join().await?;
                }
            }
            Fault::Partition(_) | Fault::Heal => bail!("{PARTITIONS}"),
        }
        Ok(())
    }

    /// Submitter `s` submits its job: the plan's pieces, raw.
    async fn submit(&mut self, s: u32) -> anyhow::Result<()> {
        let inputs = self.plan.inputs(s).into_iter().map(|i| to_cbor(&ByteBuf::from(i))).collect();
        let spec = self.cfg.job_spec(Synthetic::NAME, inputs);
        let Some(node) = self.running_node(s) else { bail!("submitter {s} is not running") };
        let client = node.client.clone();
        let (_, mut events) = client.submit(spec).await.with_context(|| format!("submitter {s}"))?;
        let now = self.now();
        self.rec.submitted(s, now);
        let (tx, names, ids) = (self.jobs_tx.clone(), client.names().clone(), self.ids.clone());
        self.forwarders.spawn(async move {
            while let Some(ev) = events.recv().await {
                if tx.send((s, Instant::now(), renumber(ev, &names, &ids))).is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    /// Hands the recorder each present node's busy time and load (asked of
    /// all nodes at once: one slow node must not hold up the others).
    async fn sample(&mut self) {
        let now = self.now();
        let dt = now.since(self.sampled_at).as_micros() as u64;
        self.sampled_at = now;
        let asked: Vec<(usize, Client)> = (self.slots.iter().enumerate())
            .filter_map(|(i, s)| s.node().filter(|n| !n.hung()).map(|n| (i, n.client.clone())))
            .collect();
        let loads = futures::future::join_all(asked.iter().map(|(_, c)| c.load())).await;
        let mut samples = Vec::with_capacity(asked.len());
        for ((i, _), load) in asked.into_iter().zip(loads) {
            let Ok(load) = load else { continue };
            self.busy[i] += self.running[i] as u64 * dt;
            self.running[i] = load.running;
            samples.push(NodeSample { node: i as u32, busy_us: self.busy[i], load: load.outstanding() });
        }
        self.rec.sample(now, samples);
    }

    /// Leaving nodes whose shutdown finished are gone.
    fn reap(&mut self) {
        let now = self.now();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if matches!(slot, Slot::Leaving(n) if n.finished()) {
                *slot = Slot::Gone;
                self.rec.left(i as u32, now);
            }
        }
    }

    /// Churn event `i`: a random running non-submitter crashes or leaves; a
    /// replacement joins a second later (returned as the time it is due).
    fn churn(&mut self, i: usize) -> Option<Duration> {
        let (k, len) = (self.cfg.submitters, self.slots.len() as u32);
        let (rec, slots) = (&self.rec, &self.slots);
        let eligible = |n: u32| rec.running(n) && matches!(&slots[n as usize], Slot::Running(node) if !node.hung());
        let victim = self.plan.victim(k, len, eligible)?;
        match Plan::churn_kind(i) {
            ChurnKind::Crash => self.crash(victim),
            ChurnKind::Leave => self.leave(victim),
        }
        Some(self.start.elapsed() + REPLACE_AFTER)
    }

    /// Runs the agenda from now on, feeding the recorder, until every job
    /// ended or the time limit passed.
    async fn drive(
        &mut self,
        mut agenda: Vec<(Duration, Due)>,
        limit: Duration,
        mesh_rx: &mut mpsc::UnboundedReceiver<Heard>,
        jobs_rx: &mut mpsc::UnboundedReceiver<(u32, Instant, JobEvent)>,
    ) -> anyhow::Result<()> {
        self.start = Instant::now();
        let start = tokio::time::Instant::from_std(self.start);
        let mut tick = tokio::time::interval(self.rec.sample_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while self.rec.unfinished() > 0 {
            // Latest first, so the next one due is the last.
            agenda.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
            let next = agenda.last().map(|(at, _)| start + *at);
            tokio::select! {
                Some((s, at, ev)) = jobs_rx.recv() => {
                    let at = self.at(at);
                    self.rec.job_event(s, &ev, at);
                }
                Some((n, at, ev)) = mesh_rx.recv() => {
                    let at = self.at(at);
                    self.peer_event(n, &ev, at);
                }
                _ = tick.tick() => {
                    self.reap();
                    self.sample().await;
                }
                _ = tokio::time::sleep_until(next.unwrap_or(start)), if next.is_some() => {
                    while let Some((_, due)) = agenda.pop_if(|(at, _)| start + *at <= tokio::time::Instant::now()) {
                        if let Some(join_at) = self.act(due).await? {
                            agenda.push((join_at, Due::Join));
                        }
                    }
                }
                _ = tokio::time::sleep_until(start + limit) => {
                    self.rec.gave_up(limit);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Node `n` saw a peer go up or down at `now` (or missed `k` such events).
    fn peer_event(&mut self, n: u32, ev: &Result<MeshEvent, u64>, now: Time) {
        match ev {
            Err(k) => self.rec.violation(format!("node {n} missed {k} peer events: down-judgements are undercounted")),
            Ok(MeshEvent::PeerUp(p)) => {
                if let Some(b) = self.ids.get(p) {
                    self.rec.peer_up(n, *b, now);
                }
            }
            Ok(MeshEvent::PeerDown(p, why)) => {
                if let Some(b) = self.ids.get(p) {
                    self.rec.peer_down(n, *b, why, now);
                }
            }
            // Reachability, relay and path events are not about liveness.
            Ok(_) => {}
        }
    }

    /// Does what is due; a churn event returns when its replacement joins.
    async fn act(&mut self, due: Due) -> anyhow::Result<Option<Duration>> {
        match due {
            Due::Step(Step::Submit(s)) => self.submit(s).await?,
            Due::Step(Step::Script(i)) => {
                let fault = self.cfg.script[i].fault.clone();
                self.apply(&fault).await?;
            }
            Due::Step(Step::Churn(i)) => return Ok(self.churn(i)),
            Due::Join => self.join().await?,
        }
        Ok(None)
    }

    /// Takes a last sample and adds up the message counters of the nodes
    /// still there (a crashed node's are lost with it; a hung one is resumed
    /// to answer).
    async fn count_messages(&mut self) {
        for slot in &mut self.slots {
            if let Slot::Running(n) = slot {
                n.resume();
            }
        }
        self.sample().await;
        let clients: Vec<Client> = self.slots.iter().filter_map(Slot::node).map(|n| n.client.clone()).collect();
        for client in clients {
            if let Ok(s) = client.stats().await {
                let m = self.rec.messages();
                m.requests += s.requests_sent;
                m.responses += s.responses_sent;
                m.adverts += s.adverts_published;
            }
        }
    }
}

/// A job event with peers numbered as nodes and outputs decoded back to
/// the pieces' inputs, as the recorder checks them.
fn renumber(ev: JobEvent, names: &PeerNames, ids: &HashMap<PeerId, u32>) -> JobEvent {
    let node = |k: PeerKey| names.id(k).and_then(|id| ids.get(&id)).map_or(k, |n| PeerKey(*n));
    match ev {
        JobEvent::Placed { job, peer, pieces, choice, backup } => {
            JobEvent::Placed { job, peer: node(peer), pieces, choice, backup }
        }
        JobEvent::Retried { job, piece, peer, cause, banned } => {
            JobEvent::Retried { job, piece, peer: node(peer), cause, banned }
        }
        JobEvent::Refused { job, peer, reason } => JobEvent::Refused { job, peer: node(peer), reason },
        JobEvent::Finished { job, result: Ok(mut out) } => {
            for o in &mut out.outputs {
                if let Ok(bytes) = from_cbor::<ByteBuf>(o) {
                    *o = bytes.into_vec();
                }
            }
            JobEvent::Finished { job, result: Ok(out) }
        }
        other => other,
    }
}

/// Refuses what real nodes on one machine cannot run.
fn check(args: &SimArgs, cfg: &SimConfig) -> anyhow::Result<()> {
    if args.placement_only() {
        bail!("--real runs jobs; --placement-only is a simulation only");
    }
    if cfg.nodes > MAX_NODES {
        bail!("--real starts at most {MAX_NODES} nodes in this process");
    }
    if cfg.colocation_penalty {
        bail!("--colocation-penalty models a gossipsub setting the node no longer has; use the simulator");
    }
    if cfg.hosts.is_some() {
        bail!("--hosts: every real node is on 127.0.0.1");
    }
    if cfg.reach.is_some() {
        bail!("--nated models NATs and relays in the simulator; real nodes on 127.0.0.1 are all public");
    }
    if cfg.script.iter().any(|s| matches!(s.fault, Fault::Partition(_) | Fault::Heal)) {
        bail!("{PARTITIONS}");
    }
    Ok(())
}

/// Waits until every submitter sees every other node live.
async fn wait_for_mesh(mesh: &Mesh, mesh_rx: &mut mpsc::UnboundedReceiver<Heard>) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + MESH_DEADLINE;
    let others = mesh.cfg.nodes as usize - 1;
    loop {
        let mut fewest = others;
        for s in 0..mesh.cfg.submitters {
            let Some(node) = mesh.slots[s as usize].node() else { continue };
            let live = node.client.peers().await?.iter().filter(|p| p.is_live()).count();
            fewest = fewest.min(live);
        }
        if fewest >= others {
            return Ok(());
        }
        // Ask again when a node's view changes (or every 100 ms).
        let woken = tokio::time::timeout(Duration::from_millis(100), mesh_rx.recv());
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            bail!("a submitter saw only {fewest} of {others} nodes within {MESH_DEADLINE:?}");
        }
    }
}

/// Runs the run `args` describe on real nodes and prints the report;
/// returns whether every invariant held.
pub(super) async fn run(args: &SimArgs, peer: &PeerOpts) -> anyhow::Result<bool> {
    let cfg = args.config()?;
    check(args, &cfg)?;
    eprintln!(
        "real mode: {} nodes on loopback; --latency, --loss and --advert-delay are the real network's",
        cfg.nodes
    );
    let outputs = args.outputs();
    let plan = Plan::new(&cfg);
    let rec = Recorder::new(&cfg, &plan, outputs.trace.as_deref())?;
    let agenda: Vec<(Duration, Due)> = plan.schedule(&cfg).into_iter().map(|(at, s)| (at, Due::Step(s))).collect();
    let limit = cfg.give_up_after(plan.ideal);
    let (mesh_tx, mut mesh_rx) = mpsc::unbounded_channel();
    let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel();
    let mut mesh = Mesh {
        plan,
        cfg,
        peer: peer.clone(),
        rec,
        start: Instant::now(),
        slots: Vec::new(),
        ids: HashMap::new(),
        busy: Vec::new(),
        running: Vec::new(),
        sampled_at: Time::ZERO,
        mesh_tx,
        jobs_tx,
        forwarders: JoinSet::new(),
    };
    for _ in 0..mesh.cfg.nodes {
        mesh.add().await?;
    }
    wait_for_mesh(&mesh, &mut mesh_rx).await?;
    while mesh_rx.try_recv().is_ok() {}

    mesh.drive(agenda, limit, &mut mesh_rx, &mut jobs_rx).await?;
    mesh.count_messages().await;
    let end = mesh.now();
    let report = mesh.rec.finish(end, format!("{} --real", args.repro_command()), 0)?;
    Ok(emit(&Report::Run(Box::new(report)), &outputs)?)
}
