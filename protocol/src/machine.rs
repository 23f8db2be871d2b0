//! [`Machine`]: one node's whole protocol state, worker and submitter, with
//! no I/O. See the type's docs for the call order.

use crate::config::Config;
use crate::ids::{ExecId, InboundId, JobId, PeerKey, RequestId};
use crate::job::{JobEvent, JobSpec, SubmitError};
use crate::outbox::{Action, Outbox};
use crate::peers::{DownReason, PeerEvent, PeerTable, PeerView};
use crate::scheduler::{Ctx, Scheduler};
use crate::status::{StatusAnswer, StatusQueries};
use crate::time::Time;
use crate::wire::{Advert, AdvertError, Load, Outcome, Reachability, Rejected, Request, Response, PROTOCOL_VERSION};
use crate::worker::{Origin, Worker, WorkerOut};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::time::Duration;

/// When the next advert goes out.
#[derive(Debug, Default)]
struct AdvertClock {
    seq: u64,
    last_at: Option<Time>,
    last_load: Option<Load>,
    dirty: bool,
}

/// One node's protocol state: its worker (runs pieces for anyone allowed)
/// and its scheduler (places the pieces of jobs it submits), plus what it
/// knows of its peers.
///
/// # Driving it
/// Feed every input with the current time: `handle_peer_up/down`,
/// `handle_advert`, `handle_request`, `handle_response`, `handle_failure`,
/// `handle_execution` (a local batch ended), `submit`, `cancel`,
/// `handle_timeout` (when [`poll_timeout`](Self::poll_timeout) said), and
/// [`ask_status`](Self::ask_status) for a client that wants a peer's load.
/// After each input, drain [`poll_action`](Self::poll_action),
/// [`poll_event`](Self::poll_event), [`poll_peer_event`](Self::poll_peer_event)
/// and [`poll_status`](Self::poll_status) until `None`, then re-arm the single
/// timer from `poll_timeout`. A spurious `handle_timeout` is harmless.
/// Nothing here reads a clock or the OS's randomness, so the same inputs
/// give the same outputs: the node and the simulator drive the same code.
#[derive(Debug)]
pub struct Machine {
    cfg: Config,
    rng: ChaCha8Rng,
    peers: PeerTable,
    worker: Worker,
    sched: Scheduler,
    out: Outbox,
    events: VecDeque<JobEvent>,
    status: StatusQueries,
    worker_out: Vec<WorkerOut>,
    advert: AdvertClock,
    maintenance_at: Option<Time>,
    /// When maintenance last ran, to notice that this node itself was stopped.
    maintained: Option<Time>,
}

impl Machine {
    /// A machine configured by `cfg`, starting at `now`.
    pub fn new(cfg: Config, now: Time) -> Machine {
        let worker = Worker::new(&cfg);
        let peers = PeerTable::new(cfg.me, worker.tasks().to_vec(), worker.load(), now);
        Machine {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            peers,
            worker,
            sched: Scheduler::new(&cfg),
            out: Outbox::new(cfg.me, cfg.max_message),
            events: VecDeque::new(),
            status: StatusQueries::default(),
            worker_out: Vec::new(),
            advert: AdvertClock::default(),
            maintenance_at: None,
            maintained: None,
            cfg,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A connection to `peer` opened (report every new connection: each
    /// one proves the peer alive).
    pub fn handle_peer_up(&mut self, peer: PeerKey, now: Time) {
        self.peers.peer_up(peer, now);
        // Greet it: its answer is its advert, so neither side waits for the
        // next gossiped one (and nobody else hears about the greeting).
        self.with_sched(now, |s, ctx| s.greet(peer, ctx));
        self.settle(now);
    }

    /// The last connection to `peer` closed.
    pub fn handle_peer_down(&mut self, peer: PeerKey, now: Time) {
        if self.peers.disconnected(peer, now) {
            self.with_sched(now, |s, ctx| s.peer_down(peer, &DownReason::Disconnected.to_string(), ctx));
        }
        self.worker.forget_submitter(peer, now, &mut self.worker_out);
        self.settle(now);
    }

    /// An advert from `peer` arrived (already decoded). An error means it
    /// was dropped; the driver should report it to gossipsub as rejected.
    pub fn handle_advert(&mut self, peer: PeerKey, advert: &Advert, now: Time) -> Result<(), AdvertError> {
        advert.validate()?;
        self.peers.advert(peer, advert, now)?;
        self.settle(now);
        Ok(())
    }

    /// `from` sent us request `id` (numbered by the driver).
    pub fn handle_request(&mut self, from: PeerKey, id: InboundId, request: Request, now: Time) {
        self.peers.heard(from, None, now);
        match request {
            Request::Status => self.out.respond(from, id, Response::Status(self.current_advert())),
            // The driver answers this itself (it knows the addresses).
            Request::Members => self.out.respond(from, id, Response::Members(Vec::new())),
            Request::Run(run) => {
                let proven = self.peers.advertised(from);
                let origin = Origin::Remote(from, id);
                if let Err(reason) = self.worker.accept(origin, from, run, proven, now, &mut self.worker_out) {
                    let response = Response::Rejected(Rejected { load: self.worker.load(), reason });
                    self.out.respond(from, id, response);
                }
            }
            Request::Cancel(c) => {
                self.worker.cancel(from, c.job, c.pieces.as_deref(), now, &mut self.worker_out);
                self.out.respond(from, id, Response::Cancelled(self.worker.load()));
            }
        }
        self.settle(now);
    }

    /// Our request `id` was answered.
    pub fn handle_response(&mut self, id: RequestId, response: Response, now: Time) {
        self.answer(id, response, now);
        self.settle(now);
    }

    /// Our request `id` failed (timeout, connection closed, protocol refused).
    pub fn handle_failure(&mut self, id: RequestId, cause: &str, now: Time) {
        if self.status.failed(id, cause) {
            return;
        }
        if let Some(peer) = self.with_sched(now, |s, ctx| s.on_failure(id, cause, ctx)) {
            self.down(peer, DownReason::ProbeTimeout, now);
        }
        self.settle(now);
    }

    /// Pieces of a local execution finished (their outcomes, in order,
    /// after those reported before); the next piece starts now. Optional,
    /// but only reported pieces keep their outputs when a later piece of
    /// the batch overruns its deadline.
    pub fn handle_progress(&mut self, id: ExecId, outcomes: Vec<Outcome>, now: Time) {
        self.worker.progress(id, outcomes, now);
        self.settle(now);
    }

    /// A local execution ended: the outcomes of the pieces not reported
    /// through [`handle_progress`](Self::handle_progress), in order.
    pub fn handle_execution(&mut self, id: ExecId, outcomes: Vec<Outcome>, elapsed: Duration, now: Time) {
        self.worker.finished(id, outcomes, elapsed, now, &mut self.worker_out);
        self.settle(now);
    }

    /// Time passed; `now` is at or after what `poll_timeout` returned.
    pub fn handle_timeout(&mut self, now: Time) {
        self.worker.handle_timeout(now, &mut self.worker_out);
        self.with_sched(now, |s, ctx| s.handle_deadlines(ctx));
        if self.maintenance_at.is_some_and(|t| t <= now) {
            self.maintain(now);
        }
        self.settle(now);
        if self.advert_due().is_some_and(|t| t <= now) {
            self.publish(now);
        }
    }

    /// Submits a job; its events follow through [`poll_event`](Self::poll_event).
    pub fn submit(&mut self, spec: JobSpec, now: Time) -> Result<JobId, SubmitError> {
        let id = self.with_sched(now, |s, ctx| s.submit(spec, ctx))?;
        self.settle(now);
        Ok(id)
    }

    /// Cancels a job: every peer running its pieces is told to stop, and
    /// the job finishes with [`JobError::Cancelled`](crate::JobError::Cancelled).
    pub fn cancel(&mut self, job: JobId, now: Time) {
        self.with_sched(now, |s, ctx| s.cancel(job, ctx));
        self.settle(now);
    }

    /// Asks `peer` (this node included) for its load, on a client's behalf.
    /// The answer, under the returned id, comes out of
    /// [`poll_status`](Self::poll_status); the scheduler never sees it.
    pub fn ask_status(&mut self, peer: PeerKey, now: Time) -> RequestId {
        let id = self.out.request(peer, Request::Status);
        self.status.asked(id);
        self.settle(now);
        id
    }

    /// Stops accepting new pieces and tells the mesh at once (the next
    /// advert lists no tasks). Accepted pieces still finish.
    pub fn shutdown(&mut self, now: Time) {
        self.worker.stop_accepting();
        self.publish(now);
    }

    /// The next thing for the driver to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.actions.pop_front()
    }

    /// The next change in the live mesh (a peer up or down).
    pub fn poll_peer_event(&mut self) -> Option<PeerEvent> {
        self.peers.poll_event()
    }

    /// The next job event.
    pub fn poll_event(&mut self) -> Option<JobEvent> {
        self.events.pop_front()
    }

    /// The next answer to a request of [`ask_status`](Self::ask_status).
    pub fn poll_status(&mut self) -> Option<StatusAnswer> {
        self.status.poll()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&mut self) -> Option<Time> {
        [self.advert_due(), self.maintenance_at, self.sched.next_deadline(), self.worker.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// What this node knows of its peers.
    pub fn peers(&self, now: Time) -> Vec<PeerView> {
        self.peers.views(now)
    }

    /// What this node knows of `peer`.
    pub fn peer(&self, peer: PeerKey, now: Time) -> Option<PeerView> {
        self.peers.view(peer, now)
    }

    /// This node's worker load.
    pub fn load(&self) -> Load {
        self.worker.load()
    }

    /// No job of ours in progress and no piece of anyone's accepted.
    pub fn is_idle(&self) -> bool {
        !self.sched.has_jobs() && self.worker.is_idle()
    }

    fn with_sched<R>(&mut self, now: Time, f: impl FnOnce(&mut Scheduler, &mut Ctx) -> R) -> R {
        let mut ctx = Ctx {
            cfg: &self.cfg,
            peers: &mut self.peers,
            rng: &mut self.rng,
            out: &mut self.out,
            events: &mut self.events,
            now,
        };
        f(&mut self.sched, &mut ctx)
    }

    /// Judges `peer` dead: fail over what it held. Its connections stay
    /// open (a mistaken judgement must not cut it out of the gossip mesh)
    /// and its own pieces here keep running; it is probed again later.
    /// Only the old advert-expiry rule closes them.
    fn down(&mut self, peer: PeerKey, reason: DownReason, now: Time) {
        let cause = reason.to_string();
        let expired = reason == DownReason::AdvertExpired;
        if self.peers.mark_down(peer, reason, now) {
            if expired {
                self.out.push(Action::Disconnect(peer));
            }
            self.with_sched(now, |s, ctx| s.peer_down(peer, &cause, ctx));
        }
    }

    fn maintain(&mut self, now: Time) {
        // A timer that fires far too late means this node was stopped (or
        // starved); give every peer its full time again before judging it.
        let late = self.cfg.maintenance_interval * 4 + Duration::from_millis(500);
        if self.maintained.is_some_and(|t| now.since(t) > late) {
            self.peers.restart_clocks(now);
            self.sched.restart_clocks(now);
        }
        self.maintained = Some(now);
        let busy = self.sched.has_jobs();
        let found = self.peers.maintain(now, &self.cfg, busy);
        for peer in found.expired {
            self.down(peer, DownReason::AdvertExpired, now);
        }
        for peer in found.unanswered {
            self.down(peer, DownReason::ProbeTimeout, now);
        }
        for peer in found.probe {
            self.with_sched(now, |s, ctx| s.probe(peer, ctx));
        }
        self.with_sched(now, |s, ctx| s.maintain(ctx));
        self.maintenance_at = Some(now + self.cfg.maintenance_interval);
    }

    /// Carries work between the two halves until nothing moves: requests
    /// to ourselves go to our worker, its answers to our scheduler (or to
    /// a client's Status query), and pending pieces get placed.
    fn settle(&mut self, now: Time) {
        let me = self.cfg.me;
        let mut answers: Vec<(RequestId, Response)> = Vec::new();
        loop {
            while let Some((rid, request)) = self.out.to_self.pop_front() {
                match request {
                    Request::Run(run) => {
                        if let Err(reason) =
                            self.worker.accept(Origin::Local(rid), me, run, true, now, &mut self.worker_out)
                        {
                            answers.push((rid, Response::Rejected(Rejected { load: self.worker.load(), reason })));
                        }
                    }
                    Request::Cancel(c) => {
                        self.worker.cancel(me, c.job, c.pieces.as_deref(), now, &mut self.worker_out);
                        answers.push((rid, Response::Cancelled(self.worker.load())));
                    }
                    Request::Status => answers.push((rid, Response::Status(self.current_advert()))),
                    Request::Members => answers.push((rid, Response::Members(Vec::new()))),
                }
            }
            for out in self.worker_out.drain(..) {
                match out {
                    WorkerOut::Respond(Origin::Remote(to, id), response) => self.out.respond(to, id, response),
                    WorkerOut::Respond(Origin::Local(rid), response) => answers.push((rid, response)),
                    WorkerOut::Execute(e) => self.out.push(Action::Execute(e)),
                    WorkerOut::Abort(id) => self.out.push(Action::Abort(id)),
                }
            }
            self.peers.set_local_load(self.worker.load(), now);
            for (rid, response) in answers.drain(..) {
                self.answer(rid, response, now);
            }
            self.with_sched(now, |s, ctx| s.place(ctx));
            if self.out.to_self.is_empty() && self.worker_out.is_empty() {
                break;
            }
        }
        if self.advert.last_load != Some(self.worker.load()) {
            self.advert.dirty = true;
        }
        if self.maintenance_at.is_none() && (self.sched.has_jobs() || self.peers.len() > 1) {
            self.maintenance_at = Some(now + self.cfg.maintenance_interval);
        }
    }

    /// Hands the answer to our request `id` to whoever asked: a client's
    /// Status query, or else the scheduler.
    fn answer(&mut self, id: RequestId, response: Response, now: Time) {
        if let Some(response) = self.status.answered(id, response) {
            self.with_sched(now, |s, ctx| s.on_response(id, response, ctx));
        }
    }

    fn advert_due(&self) -> Option<Time> {
        let (interval, debounce) = self.cfg.advert_pace(self.peers.mesh_size());
        Some(match self.advert.last_at {
            None => Time::ZERO,
            Some(t) if self.advert.dirty => t + debounce,
            Some(t) => t + interval,
        })
    }

    /// The advert this node would publish now (also its answer to Status).
    fn current_advert(&self) -> Advert {
        let load = self.worker.load();
        let (interval, _) = self.cfg.advert_pace(self.peers.mesh_size());
        Advert {
            version: PROTOCOL_VERSION,
            seq: self.advert.seq,
            slots: load.slots,
            running: load.running,
            queued: load.queued,
            capacity: load.capacity,
            tasks: self.worker.tasks().to_vec(),
            interval_ms: interval.as_millis().min(u32::MAX as u128) as u32,
            mesh: self.peers.live_count() + 1,
            // Only the network layer knows it: the node fills it in before
            // gossiping the advert (node/src/driver); Status answers leave it out.
            reachability: Reachability::Unknown,
        }
    }

    fn publish(&mut self, now: Time) {
        self.advert.seq += 1;
        self.advert.last_at = Some(now);
        self.advert.last_load = Some(self.worker.load());
        self.advert.dirty = false;
        let advert = self.current_advert();
        self.out.push(Action::Publish(advert));
    }
}
