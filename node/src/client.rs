//! [`Client`]: a cloneable handle to a running node. Every call is a
//! [`Command`] to the driver with a oneshot for the reply; the driver is the
//! only owner of the swarm and the machine.

use crate::net::nat::{Path, PieceCounts};
use crate::net::peer_map::PeerNames;
use crate::wasm::service::ModuleCommand;
use crate::wasm::ModuleId;
use libp2p::{Multiaddr, PeerId};
use meshwork_protocol::task::{decode_outputs, encode_pieces, Task, TaskError};
use meshwork_protocol::wire::{Load, Reachability};
use meshwork_protocol::{JobError, JobEvent, JobId, JobOutput, JobSpec, PeerView, SubmitError};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A request to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    /// `Err(None)`: the node is shutting down.
    Submit {
        spec: JobSpec,
        events: mpsc::UnboundedSender<JobEvent>,
        reply: oneshot::Sender<Result<JobId, Option<SubmitError>>>,
    },
    Cancel(JobId),
    /// A peer's load, asked with a Status request (the machine's
    /// [`ask_status`](meshwork_protocol::Machine::ask_status)).
    Status(PeerId, oneshot::Sender<Result<Load, String>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// The `--join` addresses whose last dial failed, and why.
    JoinFailures(oneshot::Sender<Vec<(Multiaddr, String)>>),
    /// The members joined nodes listed, and whether a list is awaited.
    MembersMet(oneshot::Sender<(Vec<PeerId>, bool)>),
    Load(oneshot::Sender<Load>),
    Stats(oneshot::Sender<NodeStats>),
    Shutdown(oneshot::Sender<()>),
    /// Offering, withdrawing and fetching wasm modules.
    Modules(ModuleCommand),
}

/// A peer joined or left the live mesh (connected and advertising).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeshEvent {
    /// It is live (again).
    PeerUp(PeerId),
    /// It is no longer usable, and why.
    PeerDown(PeerId, String),
    /// A live worker's adverts stopped: it gets no new work until heard.
    PeerQuiet(PeerId),
    /// A quiet worker was heard again.
    PeerHeard(PeerId),
    /// This node's reachability changed (AutoNAT's verdict).
    Reachability(Reachability),
    /// This node listens through a relay, at this address.
    Relayed(Multiaddr),
    /// A hole punch (DCUtR) to a peer we were connected to through a
    /// relay ended: a direct connection, or why not.
    HolePunch(PeerId, Result<(), String>),
    /// Pieces from a peer now come over this path (or these are its first).
    PiecePath(PeerId, Path),
    /// The last connection to a peer that sent us pieces closed: how many
    /// came over each path.
    PiecesFrom(PeerId, PieceCounts),
}

/// Counters of things a node refused or noticed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeStats {
    /// Adverts dropped by validation.
    pub invalid_adverts: u64,
    /// Inbound RPC frames refused (malformed, truncated, oversized, over the byte budget).
    pub malformed_requests: u64,
    /// Answers to requests we were not waiting for.
    pub unsolicited_responses: u64,
    /// Bytes inbound RPC frames hold right now.
    pub buffered_bytes: u64,
    /// Bytes of RPC frames read and written (requests and answers, both ways).
    pub rpc_bytes_in: u64,
    /// See `rpc_bytes_in`.
    pub rpc_bytes_out: u64,
    /// Peers the health checks judged down.
    pub marked_down: u64,
    /// RPC requests sent.
    pub requests_sent: u64,
    /// RPC responses sent.
    pub responses_sent: u64,
    /// Adverts published.
    pub adverts_published: u64,
    /// Peers being dialled again now (lost workers, with backoff).
    pub redialling: u64,
    /// Open connections.
    pub connections: u64,
    /// Outgoing dials started, by anyone in the node (redials, joins,
    /// discovery, Kademlia).
    pub dials: u64,
    /// wasm modules sent to peers that asked for them.
    pub modules_served: u64,
    /// The bytes of those modules.
    pub module_bytes_served: u64,
    /// Pieces run, retries, backups and round trips, for the metrics.
    pub work: crate::metrics::WorkStats,
}

/// One row of `meshwork peers`.
#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: String,
    /// Addresses it was seen at.
    pub addresses: Vec<String>,
    /// Has a connection to us.
    pub connected: bool,
    /// Why it is considered down, if it is.
    pub down: Option<String>,
    /// Its adverts stopped: its load figure is stale and it gets no new
    /// work until it answers a probe.
    pub quiet: bool,
    /// Slots, from its last advert.
    pub slots: Option<u32>,
    /// Busy slots.
    pub running: Option<u32>,
    /// Queued pieces.
    pub queued: Option<u32>,
    /// Tasks it runs.
    pub tasks: Vec<String>,
    /// Age of its last advert, in milliseconds.
    pub advert_age_ms: Option<u64>,
    /// Round-trip time, in microseconds.
    pub rtt_us: Option<u64>,
    /// The version it runs, as it says (`meshwork/0.1.0 (abc1234)`), while connected.
    pub version: Option<String>,
    /// Whether peers can dial it, as it advertised (`public`,
    /// `behind-nat`, `unknown`).
    pub reachability: Reachability,
    /// How we are connected to it (`direct`, `relayed`), while connected.
    pub path: Option<Path>,
}

impl PeerInfo {
    pub(crate) fn new(peer: PeerId, addresses: Vec<Multiaddr>, version: Option<String>, view: PeerView) -> PeerInfo {
        PeerInfo {
            peer_id: peer.to_string(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            connected: view.connected,
            down: view.down.map(|d| d.to_string()),
            quiet: view.quiet,
            slots: view.load.map(|l| l.slots),
            running: view.load.map(|l| l.running),
            queued: view.load.map(|l| l.queued),
            tasks: view.tasks,
            advert_age_ms: view.advert_age.map(|d| d.as_millis() as u64),
            rtt_us: view.rtt.map(|d| d.as_micros() as u64),
            version,
            reachability: Reachability::Unknown,
            path: None,
        }
    }

    /// A live worker: connected, advertising tasks, not judged down.
    pub fn is_live(&self) -> bool {
        self.connected && self.down.is_none() && !self.tasks.is_empty()
    }
}

/// Per-job limits.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// Failures of one piece that fail the job.
    pub max_attempts: u32,
    /// Deadline of one piece.
    pub piece_timeout: Duration,
    /// How long a job nobody can take waits before failing.
    pub stall_timeout: Duration,
    /// Report every placement decision.
    pub explain: bool,
    /// Speculative backups of stragglers.
    pub backups: bool,
}

impl Default for JobOptions {
    fn default() -> JobOptions {
        let spec = JobSpec::new("x", Vec::new());
        JobOptions {
            max_attempts: spec.max_attempts,
            piece_timeout: spec.piece_timeout,
            stall_timeout: spec.stall_timeout,
            explain: false,
            backups: true,
        }
    }
}

/// What a finished job reports besides its result.
#[derive(Clone, Debug, Serialize)]
pub struct JobReport {
    /// The job id (hex).
    pub job: String,
    /// Pieces in the job.
    pub pieces: u32,
    /// Submit to result, in seconds.
    pub wall_s: f64,
    /// Pieces each peer completed, by peer id.
    pub pieces_per_peer: Vec<(String, u32)>,
    /// Pieces sent again after a failure.
    pub retries: u32,
    /// Backup copies launched.
    pub backups: u32,
    /// Backups that won.
    pub backups_won: u32,
    /// Batches a peer held past their overdue deadline (their pieces were
    /// backed up early and the peer lost trust).
    pub overdue_batches: u32,
    /// Late or duplicate results ignored.
    pub duplicates_ignored: u32,
    /// Results for pieces never given.
    pub unsolicited: u32,
    /// Batches refused by workers.
    pub rejections: u32,
    /// Batches sent.
    pub batches: u32,
    /// Seconds the workers spent executing this job's batches, as they
    /// report it (all copies; compare with `wall_s` × slots for idle time).
    pub exec_s: f64,
    /// wasm modules this node sent to workers while the job ran (absent
    /// when none: built-in tasks need none, and a worker fetches a module
    /// once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modules_sent: Option<ModulesSent>,
}

/// Modules a submitter sent during a job.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct ModulesSent {
    /// Modules sent (one per worker that fetched one).
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl JobReport {
    fn new(job: JobId, out: &JobOutput, names: &PeerNames) -> JobReport {
        let s = &out.stats;
        JobReport {
            job: job.to_string(),
            pieces: s.pieces,
            wall_s: s.elapsed.as_secs_f64(),
            pieces_per_peer: s.per_peer.iter().map(|(k, n)| (names.name(*k), *n)).collect(),
            retries: s.retries,
            backups: s.backups,
            backups_won: s.backups_won,
            overdue_batches: s.overdue,
            duplicates_ignored: s.duplicates,
            unsolicited: s.unsolicited,
            rejections: s.rejections,
            batches: s.batches,
            exec_s: s.exec.as_secs_f64(),
            modules_sent: None,
        }
    }
}

/// Why a job did not produce a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The node stopped (or is stopping) before the job ended.
    #[error("the node stopped before the job ended")]
    NodeGone,
    /// The job was refused before it started.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The task could not split its input or merge its outputs.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The job failed; `message` names peers by peer id.
    #[error("{message}")]
    Job {
        /// What failed.
        error: JobError,
        /// `error` in words.
        message: String,
    },
}

/// A handle to a running node.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    names: PeerNames,
    me: PeerId,
    mesh_events: broadcast::Sender<MeshEvent>,
}

impl Client {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        names: PeerNames,
        me: PeerId,
        mesh_events: broadcast::Sender<MeshEvent>,
    ) -> Client {
        Client { tx, names, me, mesh_events }
    }

    /// Peers going up and down from now on.
    pub fn mesh_events(&self) -> broadcast::Receiver<MeshEvent> {
        self.mesh_events.subscribe()
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.me
    }

    /// Peer-key names, to read [`JobEvent`]s.
    pub fn names(&self) -> &PeerNames {
        &self.names
    }

    async fn ask<R>(&self, make: impl FnOnce(oneshot::Sender<R>) -> Command) -> Result<R, RunError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| RunError::NodeGone)?;
        rx.await.map_err(|_| RunError::NodeGone)
    }

    /// Every peer the node knows.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, RunError> {
        self.ask(Command::Peers).await
    }

    /// The `--join` addresses a dial of which failed, and why the last one
    /// did (connection refused, wrong peer id, handshake failed …). A later
    /// success shows in [`Client::peers`], not here.
    pub async fn join_failures(&self) -> Result<Vec<(Multiaddr, String)>, RunError> {
        self.ask(Command::JoinFailures).await
    }

    /// The members the nodes this one joined through listed (it dials
    /// each), and whether a list is still awaited.
    pub async fn members_met(&self) -> Result<(Vec<PeerId>, bool), RunError> {
        self.ask(Command::MembersMet).await
    }

    /// Sends a Status request to `peer` and returns the load it reports.
    pub async fn status(&self, peer: PeerId) -> Result<Result<Load, String>, RunError> {
        self.ask(|reply| Command::Status(peer, reply)).await
    }

    /// This node's own worker load.
    pub async fn load(&self) -> Result<Load, RunError> {
        self.ask(Command::Load).await
    }

    /// The node's counters.
    pub async fn stats(&self) -> Result<NodeStats, RunError> {
        self.ask(Command::Stats).await
    }

    /// Serves `bytes` to the peers (a wasm job's module) until withdrawn;
    /// returns its id.
    pub async fn offer_module(&self, bytes: Arc<Vec<u8>>) -> ModuleId {
        let id = ModuleId::of(&bytes);
        let _ = self.tx.send(Command::Modules(ModuleCommand::Offer(bytes))).await;
        id
    }

    /// A job using module `id` ended.
    pub async fn withdraw_module(&self, id: ModuleId) {
        let _ = self.tx.send(Command::Modules(ModuleCommand::Withdraw(id))).await;
    }

    /// Module `id`'s bytes, asked of `from`.
    pub async fn fetch_module(&self, from: PeerId, id: ModuleId) -> Result<Vec<u8>, String> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Modules(ModuleCommand::Fetch { from, id, reply });
        self.tx.send(command).await.map_err(|_| "the node is shutting down".to_string())?;
        answer.await.map_err(|_| "the node is shutting down".to_string())?
    }

    /// Asks the node to stop and waits until it has.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }

    /// Submits a raw job; its events arrive on the returned channel, ending with `Finished`.
    pub async fn submit(&self, spec: JobSpec) -> Result<(JobId, mpsc::UnboundedReceiver<JobEvent>), RunError> {
        let (events, rx) = mpsc::unbounded_channel();
        let id = self.ask(|reply| Command::Submit { spec, events, reply }).await?;
        match id {
            Ok(id) => Ok((id, rx)),
            Err(Some(e)) => Err(e.into()),
            Err(None) => Err(RunError::NodeGone),
        }
    }

    /// Cancels a job: every peer running its pieces is told to stop.
    pub async fn cancel(&self, job: JobId) {
        let _ = self.tx.send(Command::Cancel(job)).await;
    }

    /// Runs `task` on `input` across the mesh: split here, pieces on the
    /// least-loaded peers, merge here. `on_event` sees every job event
    /// (progress, retries, placements with `explain`).
    pub async fn run<T: Task>(
        &self,
        task: &T,
        input: &T::Input,
        opts: &JobOptions,
        on_event: impl FnMut(JobId, &JobEvent),
    ) -> Result<(T::Result, JobReport), RunError> {
        self.run_until(task, input, opts, on_event, std::future::pending()).await
    }

    /// [`run`](Self::run), cancelling the job once `stop` resolves (Ctrl-C):
    /// from the moment it is submitted, not only once an event has named
    /// it. A cancelled job ends with [`JobError::Cancelled`] as soon as a
    /// Cancel request to every peer holding its pieces is on its way.
    pub async fn run_until<T: Task>(
        &self,
        task: &T,
        input: &T::Input,
        opts: &JobOptions,
        mut on_event: impl FnMut(JobId, &JobEvent),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(T::Result, JobReport), RunError> {
        let pieces = task.split(input)?;
        let mut spec = JobSpec::new(T::NAME, encode_pieces::<T>(&pieces));
        drop(pieces);
        spec.max_attempts = opts.max_attempts;
        spec.piece_timeout = opts.piece_timeout;
        spec.stall_timeout = opts.stall_timeout;
        spec.explain = opts.explain;
        spec.backups = opts.backups;
        spec.early_exit = T::EARLY_EXIT;
        let served = |s: NodeStats| (s.modules_served, s.module_bytes_served);
        let before = served(self.stats().await?);
        let (id, mut events) = self.submit(spec).await?;
        tokio::pin!(stop);
        let mut stopped = false;
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = &mut stop, if !stopped => {
                    stopped = true;
                    self.cancel(id).await;
                    continue;
                }
            };
            let Some(event) = event else { break };
            on_event(id, &event);
            if let JobEvent::Finished { result, .. } = event {
                let out = result.map_err(|error| {
                    let message = error.describe(&|k| self.names.name(k));
                    RunError::Job { error, message }
                })?;
                let mut report = JobReport::new(id, &out, &self.names);
                let after = served(self.stats().await?);
                let (count, bytes) = (after.0 - before.0, after.1 - before.1);
                report.modules_sent = (count > 0).then_some(ModulesSent { count, bytes });
                let outputs = decode_outputs::<T>(&out.outputs)?;
                let result = task.merge(input, outputs)?;
                return Ok((result, report));
            }
        }
        Err(RunError::NodeGone)
    }
}
