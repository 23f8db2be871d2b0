//! The submitter half of a node: places pieces on peers, tracks every batch
//! in flight, and turns answers, failures, deadlines and lost peers into
//! progress, retries, backups and, at the end, a job's result.
//!
//! Every path that ends a batch goes through [`Inflight::end`], which also
//! gives the peer's in-flight count back, so the load estimate cannot drift.

use crate::config::Config;
use crate::ids::{JobId, PeerKey, RequestId};
use crate::job::{FailureCause, Job, JobError, JobEvent, JobOutput, JobSpec, PieceFailure, SubmitError};
use crate::outbox::Outbox;
use crate::peers::{Depth, PeerTable};
use crate::policy::{Choice, Chooser};
use crate::time::Time;
use crate::wire::{
    valid_task_name, CancelRequest, Outcome, PieceInput, RejectReason, Rejected, Request, Response, Results,
    RunRequest, PROTOCOL_VERSION,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Duration;

/// The parts of the machine the scheduler works through.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) peers: &'a mut PeerTable,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) out: &'a mut Outbox,
    pub(crate) events: &'a mut VecDeque<JobEvent>,
    pub(crate) now: Time,
}

/// A batch of pieces sent to one peer.
#[derive(Debug)]
struct Batch {
    job: JobId,
    peer: PeerKey,
    pieces: Vec<u32>,
    sent: Time,
    deadline: Time,
    backup: bool,
    /// Held past its overdue deadline (its peer was blamed once for it).
    overdue: bool,
}

/// A request of ours awaiting its answer.
#[derive(Debug)]
enum Pending {
    Batch(Batch),
    Probe(PeerKey),
    /// A Status sent to a peer that just connected: its answer is welcome,
    /// its silence judges nothing (a node busy forming connections with a
    /// whole mesh may answer late).
    Greeting(PeerKey),
    Cancel(PeerKey),
}

/// Requests in flight, and batches given up on whose late answers we still
/// recognise (to count them as duplicates rather than strangers).
#[derive(Debug, Default)]
struct Inflight {
    requests: FxHashMap<RequestId, Pending>,
    retired: FxHashMap<RequestId, JobId>,
    deadlines: BinaryHeap<Reverse<(Time, RequestId)>>,
}

impl Inflight {
    /// Ends the batch `rid`, giving its pieces back to the peer's count.
    fn end(&mut self, rid: RequestId, job: &mut Job, ctx: &mut Ctx) -> Option<Batch> {
        match self.requests.remove(&rid) {
            Some(Pending::Batch(b)) => {
                job.batches.remove(&rid);
                ctx.peers.add_inflight(b.peer, b.pieces.len() as u32, false, ctx.now);
                Some(b)
            }
            Some(other) => {
                self.requests.insert(rid, other);
                None
            }
            None => None,
        }
    }

    /// Like [`end`](Self::end), but a late answer will still be recognised.
    fn give_up(&mut self, rid: RequestId, job: &mut Job, ctx: &mut Ctx) -> Option<Batch> {
        let b = self.end(rid, job, ctx)?;
        self.retired.insert(rid, b.job);
        Some(b)
    }

    fn batch(&self, rid: RequestId) -> Option<&Batch> {
        match self.requests.get(&rid) {
            Some(Pending::Batch(b)) => Some(b),
            _ => None,
        }
    }

    fn batch_mut(&mut self, rid: RequestId) -> Option<&mut Batch> {
        match self.requests.get_mut(&rid) {
            Some(Pending::Batch(b)) => Some(b),
            _ => None,
        }
    }

    fn send(&mut self, job: &mut Job, peer: PeerKey, pieces: Vec<u32>, backup: bool, choice: Choice, ctx: &mut Ctx) {
        let n = pieces.len();
        let inputs =
            pieces.iter().map(|&p| PieceInput { piece: p, input: job.spec.inputs[p as usize].clone() }).collect();
        let request = Request::Run(RunRequest {
            version: PROTOCOL_VERSION,
            job: job.id,
            task: job.spec.task.clone(),
            piece_timeout_ms: job.spec.piece_timeout.as_millis() as u64,
            pieces: inputs,
        });
        let rid = ctx.out.request(peer, request);
        for &p in &pieces {
            job.states[p as usize].hold(rid);
        }
        job.batches.insert(rid);
        job.stats.batches += 1;
        let deadline = ctx.now + job.spec.piece_timeout.saturating_mul(n as u32);
        self.deadlines.push(Reverse((deadline, rid)));
        ctx.peers.add_inflight(peer, n as u32, true, ctx.now);
        if job.spec.explain {
            ctx.events.push_back(JobEvent::Placed { job: job.id, peer, pieces: pieces.clone(), choice, backup });
        }
        self.requests.insert(
            rid,
            Pending::Batch(Batch { job: job.id, peer, pieces, sent: ctx.now, deadline, backup, overdue: false }),
        );
    }

    fn cancel(&mut self, peer: PeerKey, job: JobId, pieces: Option<Vec<u32>>, ctx: &mut Ctx) {
        let rid = ctx.out.request(peer, Request::Cancel(CancelRequest { job, pieces }));
        self.requests.insert(rid, Pending::Cancel(peer));
    }
}

/// Jobs this node submitted and everything in flight for them.
#[derive(Debug)]
pub(crate) struct Scheduler {
    chooser: Chooser,
    jobs: BTreeMap<JobId, Job>,
    inflight: Inflight,
    /// Measured execution time of one piece per task (EWMA, µs).
    piece_us: FxHashMap<String, u64>,
    /// When this node last resumed after being stopped: batches are not
    /// judged on time that passed while it could not hear their answers.
    resumed: Time,
}

impl Scheduler {
    pub(crate) fn new(cfg: &Config) -> Scheduler {
        Scheduler {
            chooser: Chooser::new(cfg.policy).preferring(cfg.me),
            jobs: BTreeMap::new(),
            inflight: Inflight::default(),
            piece_us: FxHashMap::default(),
            resumed: Time::ZERO,
        }
    }

    pub(crate) fn has_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    pub(crate) fn submit(&mut self, spec: JobSpec, ctx: &mut Ctx) -> Result<JobId, SubmitError> {
        if !valid_task_name(&spec.task) {
            return Err(SubmitError::TaskName(spec.task));
        }
        if spec.inputs.len() > u32::MAX as usize {
            return Err(SubmitError::TooManyPieces(spec.inputs.len()));
        }
        if let Some((i, input)) = spec.inputs.iter().enumerate().find(|(_, i)| i.len() > ctx.cfg.max_batch_bytes) {
            return Err(SubmitError::PieceTooLarge {
                piece: i as u32,
                len: input.len(),
                limit: ctx.cfg.max_batch_bytes,
            });
        }
        let id = loop {
            let id = JobId(ctx.rng.random());
            if !self.jobs.contains_key(&id) {
                break id;
            }
        };
        ctx.peers.index_task(&spec.task, ctx.now);
        let job = Job::new(id, spec, ctx.now);
        let empty = job.total() == 0;
        self.jobs.insert(id, job);
        if empty {
            self.finish(id, None, ctx);
        }
        Ok(id)
    }

    pub(crate) fn cancel(&mut self, id: JobId, ctx: &mut Ctx) {
        self.fail(id, JobError::Cancelled, ctx);
    }

    /// Places pending pieces until no job can place more.
    pub(crate) fn place(&mut self, ctx: &mut Ctx) {
        let ids: Vec<JobId> = self.jobs.iter().filter(|(_, j)| j.pending_len() > 0).map(|(id, _)| *id).collect();
        let mut active = ids;
        while !active.is_empty() {
            active.retain(|id| self.place_one(*id, ctx));
        }
    }

    /// Places one batch of job `id`; false when it cannot place any.
    fn place_one(&mut self, id: JobId, ctx: &mut Ctx) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else { return false };
        let Some(front) = job.next_pending() else { return false };
        let task = &job.spec.task;
        let peers = &*ctx.peers;
        let choice =
            self.chooser.choose(peers.open(task), |p| peers.candidate(p), |p| job.may_place(front, p), ctx.rng);
        let Some(choice) = choice else { return false };
        let peer = choice.chosen.peer;
        let max = peers.room(peer, task, ctx.now).min(peers.depth(task).batch).min(ctx.cfg.max_batch).max(1) as usize;
        let mut pieces = Vec::with_capacity(max.min(job.pending_len()));
        let mut bytes = 0usize;
        while let Some(p) = job.next_pending() {
            let len = job.spec.inputs[p as usize].len() + 16;
            let fits = pieces.is_empty() || (bytes + len <= ctx.cfg.max_batch_bytes && job.may_place(p, peer));
            if pieces.len() == max || !fits {
                break;
            }
            job.take_pending();
            bytes += len;
            pieces.push(p);
        }
        job.stalled_since = None;
        self.inflight.send(job, peer, pieces, false, choice, ctx);
        true
    }

    /// A request of ours was answered.
    pub(crate) fn on_response(&mut self, rid: RequestId, response: Response, ctx: &mut Ctx) {
        let load = response.load();
        match self.inflight.requests.get(&rid) {
            None => {
                if let Some(job) = self.inflight.retired.remove(&rid) {
                    self.count_late(job, &response);
                }
            }
            Some(Pending::Probe(peer)) | Some(Pending::Cancel(peer)) | Some(Pending::Greeting(peer)) => {
                let peer = *peer;
                self.inflight.requests.remove(&rid);
                match &response {
                    Response::Status(advert) => ctx.peers.status(peer, rid, advert, ctx.now),
                    _ => ctx.peers.heard(peer, load, ctx.now),
                }
            }
            Some(Pending::Batch(b)) => {
                let job_id = b.job;
                let Some(job) = self.jobs.get_mut(&job_id) else {
                    self.inflight.requests.remove(&rid);
                    return;
                };
                let Some(b) = self.inflight.end(rid, job, ctx) else { return };
                ctx.peers.heard(b.peer, load, ctx.now);
                match response {
                    Response::Results(r) => self.on_results(rid, b, r, ctx),
                    Response::Rejected(r) => self.on_rejected(rid, b, r, ctx),
                    Response::Status(_) | Response::Cancelled(_) | Response::Members(_) => {
                        self.fail_pieces(rid, b, FailureCause::WrongAnswer, Ban::Yes, ctx)
                    }
                }
            }
        }
    }

    /// Results that came after we gave up on their batch are ignored.
    fn count_late(&mut self, job: JobId, response: &Response) {
        if let (Some(job), Response::Results(r)) = (self.jobs.get_mut(&job), response) {
            job.stats.duplicates +=
                r.pieces.iter().filter(|p| matches!(p.outcome, Outcome::Done { .. })).count() as u32;
        }
    }

    fn on_results(&mut self, rid: RequestId, b: Batch, r: Results, ctx: &mut Ctx) {
        let Some(job) = self.jobs.get_mut(&b.job) else { return };
        ctx.peers.answered_batch(b.peer);
        job.stats.exec += Duration::from_micros(r.exec_us);
        job.piece_times.record(ctx.now.since(b.sent) / b.pieces.len().max(1) as u32);
        let n = r.pieces.len().max(1) as u64;
        let mean_index = b.pieces.iter().map(|&p| p as f64).sum::<f64>() / b.pieces.len().max(1) as f64;
        job.observe(mean_index, (r.exec_us / n) as f64);
        let task = job.spec.task.clone();
        let est = self.piece_us.entry(task.clone()).or_insert(r.exec_us / n);
        *est = (*est * 7 + r.exec_us / n) / 8;
        ctx.peers.set_depth(&task, Depth::for_piece_time(*est, ctx.cfg.batch_target, ctx.cfg.max_batch), ctx.now);

        let mut failures = Vec::new();
        let mut losers = Vec::new();
        let mut conclusive = None;
        for pr in r.pieces {
            let Some(state) = job.states.get_mut(pr.piece as usize) else {
                job.stats.unsolicited += 1;
                continue;
            };
            if !state.holds(rid) {
                if state.done {
                    job.stats.duplicates += 1;
                } else {
                    job.stats.unsolicited += 1;
                }
                continue;
            }
            state.release(rid);
            match pr.outcome {
                Outcome::Done { output, conclusive: c } => {
                    state.done = true;
                    if let Some(other) = state.other_holder(rid) {
                        state.release(other);
                        losers.push((other, pr.piece));
                    }
                    // A streamed output is handed over once, in its event,
                    // and not kept: a long job's outputs never pile up here.
                    if job.spec.stream {
                        ctx.events.push_back(JobEvent::Output { job: job.id, piece: pr.piece, peer: b.peer, output });
                    } else {
                        job.outputs[pr.piece as usize] = Some(output);
                    }
                    job.done += 1;
                    *job.stats.per_peer.entry(b.peer).or_default() += 1;
                    job.stats.backups_won += b.backup as u32;
                    if c && job.spec.early_exit && conclusive.is_none() {
                        conclusive = Some(pr.piece);
                    }
                }
                Outcome::Failed(cause) => failures.push((pr.piece, FailureCause::Worker(cause), false)),
                Outcome::Repeats(cause) => failures.push((pr.piece, FailureCause::Worker(cause), true)),
                Outcome::Cancelled => requeue(job, pr.piece),
            }
        }
        for &p in &b.pieces {
            if job.states[p as usize].holds(rid) {
                job.states[p as usize].release(rid);
                failures.push((p, FailureCause::Missing, false));
            }
        }
        let id = job.id;
        ctx.events.push_back(JobEvent::Progress { job: id, done: job.done, total: job.total() });
        let fatal = failures.into_iter().find_map(|(p, cause, repeats)| {
            if repeats {
                repeat_failed(job, p, b.peer, cause, ctx)
            } else {
                piece_failed(job, p, b.peer, cause, Ban::Yes, ctx).map(JobError::PieceFailed)
            }
        });
        for (other, piece) in losers {
            self.cancel_copy(id, other, piece, ctx);
        }
        self.end_if_decided(id, fatal, conclusive, ctx);
    }

    /// Ends job `id` if a piece failed for good, a conclusive output came, or all are done.
    fn end_if_decided(&mut self, id: JobId, fatal: Option<JobError>, conclusive: Option<u32>, ctx: &mut Ctx) {
        let Some(job) = self.jobs.get(&id) else { return };
        if let Some(error) = fatal {
            self.fail(id, error, ctx);
        } else if conclusive.is_some() || job.done == job.total() {
            self.finish(id, conclusive, ctx);
        }
    }

    fn on_rejected(&mut self, rid: RequestId, b: Batch, r: Rejected, ctx: &mut Ctx) {
        let Some(job) = self.jobs.get_mut(&b.job) else { return };
        job.stats.rejections += 1;
        for &p in b.pieces.iter().rev() {
            let state = &mut job.states[p as usize];
            state.release(rid);
            if b.backup {
                state.backed_up = false;
            }
            requeue(job, p);
        }
        if r.reason == RejectReason::Busy {
            ctx.peers.cool_down(b.peer, r.load, ctx.now + ctx.cfg.busy_backoff, ctx.now);
        } else if !job.refused.contains(&b.peer) {
            job.refused.push(b.peer);
            ctx.events.push_back(JobEvent::Refused { job: job.id, peer: b.peer, reason: r.reason });
        }
    }

    /// Every piece of `b` that it still holds failed with `cause`.
    fn fail_pieces(&mut self, rid: RequestId, b: Batch, cause: FailureCause, ban: Ban, ctx: &mut Ctx) {
        let Some(job) = self.jobs.get_mut(&b.job) else { return };
        let mut fatal = None;
        for &p in &b.pieces {
            let state = &mut job.states[p as usize];
            if state.holds(rid) {
                state.release(rid);
                fatal = fatal.or(piece_failed(job, p, b.peer, cause.clone(), ban, ctx).map(JobError::PieceFailed));
            }
        }
        let id = job.id;
        self.end_if_decided(id, fatal, None, ctx);
    }

    /// A request could not be delivered or answered. Returns the peer when
    /// it was a health probe (the peer is then judged down).
    pub(crate) fn on_failure(&mut self, rid: RequestId, cause: &str, ctx: &mut Ctx) -> Option<PeerKey> {
        match self.inflight.requests.get(&rid) {
            Some(Pending::Probe(peer)) => {
                let peer = *peer;
                self.inflight.requests.remove(&rid);
                Some(peer)
            }
            Some(Pending::Cancel(_)) | Some(Pending::Greeting(_)) => {
                self.inflight.requests.remove(&rid);
                None
            }
            Some(Pending::Batch(b)) => {
                let job_id = b.job;
                let Some(job) = self.jobs.get_mut(&job_id) else {
                    self.inflight.requests.remove(&rid);
                    return None;
                };
                if let Some(b) = self.inflight.end(rid, job, ctx) {
                    // The peer dropped this request (it refused a frame over its
                    // limit, or its stream broke): the pieces try elsewhere.
                    // A peer that went away altogether is judged by `peer_down`.
                    self.fail_pieces(rid, b, FailureCause::Request(cause.to_string()), Ban::Yes, ctx);
                }
                None
            }
            None => {
                self.inflight.retired.remove(&rid);
                None
            }
        }
    }

    /// `peer` is gone: everything it held fails over to other peers.
    pub(crate) fn peer_down(&mut self, peer: PeerKey, cause: &str, ctx: &mut Ctx) {
        let mut rids: Vec<RequestId> = self
            .inflight
            .requests
            .iter()
            .filter(|(_, p)| {
                matches!(p, Pending::Batch(b) if b.peer == peer)
                    || matches!(p, Pending::Probe(q) | Pending::Cancel(q) | Pending::Greeting(q) if *q == peer)
            })
            .map(|(rid, _)| *rid)
            .collect();
        rids.sort_unstable();
        for rid in rids {
            match self.inflight.batch(rid).map(|b| b.job) {
                Some(job_id) => {
                    let Some(job) = self.jobs.get_mut(&job_id) else { continue };
                    if let Some(b) = self.inflight.give_up(rid, job, ctx) {
                        self.fail_pieces(rid, b, FailureCause::PeerDown(cause.to_string()), Ban::No, ctx);
                    }
                }
                None => {
                    self.inflight.requests.remove(&rid);
                }
            }
        }
    }

    /// Greets `peer`, which just connected: a Status whose answer is its advert.
    pub(crate) fn greet(&mut self, peer: PeerKey, ctx: &mut Ctx) {
        let rid = ctx.out.request(peer, Request::Status);
        self.inflight.requests.insert(rid, Pending::Greeting(peer));
    }

    /// Sends a health probe to `peer`.
    pub(crate) fn probe(&mut self, peer: PeerKey, ctx: &mut Ctx) {
        let rid = ctx.out.request(peer, Request::Status);
        self.inflight.requests.insert(rid, Pending::Probe(peer));
        ctx.peers.probing(peer, rid, ctx.now);
    }

    /// Fails batches whose deadline passed.
    pub(crate) fn handle_deadlines(&mut self, ctx: &mut Ctx) {
        while let Some(Reverse((t, rid))) = self.inflight.deadlines.peek().copied() {
            if t > ctx.now {
                break;
            }
            self.inflight.deadlines.pop();
            let Some(b) = self.inflight.batch(rid) else { continue };
            let (job_id, peer) = (b.job, b.peer);
            let Some(job) = self.jobs.get_mut(&job_id) else { continue };
            let timeout = job.spec.piece_timeout;
            let Some(b) = self.inflight.give_up(rid, job, ctx) else { continue };
            self.inflight.cancel(peer, job_id, Some(b.pieces.clone()), ctx);
            self.fail_pieces(rid, b, FailureCause::Deadline(timeout), Ban::Yes, ctx);
        }
    }

    /// When the next batch deadline falls.
    pub(crate) fn next_deadline(&mut self) -> Option<Time> {
        while let Some(Reverse((t, rid))) = self.inflight.deadlines.peek().copied() {
            if self.inflight.batch(rid).is_some_and(|b| b.deadline == t) {
                return Some(t);
            }
            self.inflight.deadlines.pop();
        }
        None
    }

    /// Periodic work: backups of stragglers and jobs nobody can take.
    pub(crate) fn maintain(&mut self, ctx: &mut Ctx) {
        let ids: Vec<JobId> = self.jobs.keys().copied().collect();
        for id in ids {
            self.launch_backups(id, ctx);
            self.check_stall(id, ctx);
        }
    }

    /// This node was stopped and just resumed: time in flight so far says
    /// nothing about its batches' peers.
    pub(crate) fn restart_clocks(&mut self, now: Time) {
        self.resumed = now;
    }

    /// Copies pieces of slow batches onto another peer with room; the first
    /// result wins. A batch is slow when it is a straggler (once nothing is
    /// left to place, older than the median piece time allows) or overdue
    /// (see [`Config::overdue_factor`]): an overdue batch's peer also loses
    /// trust, once per batch, whether or not the job makes backups.
    fn launch_backups(&mut self, id: JobId, ctx: &mut Ctx) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let cfg = ctx.cfg;
        let mut rids: Vec<RequestId> = job.batches.iter().copied().collect();
        rids.sort_unstable();
        for rid in rids {
            let Some(b) = self.inflight.batch_mut(rid) else { continue };
            if b.backup {
                continue;
            }
            let age = ctx.now.since(b.sent.max(self.resumed));
            let n = b.pieces.len();
            let overdue = job.overdue_after(n, cfg.overdue_factor, cfg.overdue_slack).is_some_and(|t| age > t);
            if overdue && !b.overdue {
                b.overdue = true;
                job.stats.overdue += 1;
                ctx.peers.overdue(b.peer, ctx.now);
            }
            let straggler = job.pending_len() == 0
                && job.straggler_after(n, cfg.backup_percent, cfg.backup_min_samples).is_some_and(|t| age >= t);
            if !job.spec.backups || !(overdue || straggler) {
                continue;
            }
            let (holder, pieces) = (b.peer, b.pieces.clone());
            for p in pieces {
                let state = job.states[p as usize];
                if state.done || state.backed_up || state.held() != 1 {
                    continue;
                }
                let peers = &*ctx.peers;
                let choice = self.chooser.choose(
                    peers.open(&job.spec.task),
                    |q| peers.candidate(q),
                    |q| q != holder && job.may_place(p, q),
                    ctx.rng,
                );
                let Some(choice) = choice else { return };
                job.states[p as usize].backed_up = true;
                job.stats.backups += 1;
                let peer = choice.chosen.peer;
                self.inflight.send(job, peer, vec![p], true, choice, ctx);
            }
        }
    }

    /// A job with pending pieces, nothing in flight and no peer that could
    /// ever take them (as opposed to peers that are merely full) is stalled;
    /// past its stall timeout it fails with the reason.
    fn check_stall(&mut self, id: JobId, ctx: &mut Ctx) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let Some(piece) = job.next_pending() else { return };
        if !job.batches.is_empty() {
            job.stalled_since = None;
            return;
        }
        let job_ref = &*job;
        let (waiting, why) = ctx.peers.why_not(&job.spec.task, |p| exclusion(job_ref, piece, p), ctx.now);
        if waiting {
            job.stalled_since = None;
            return;
        }
        let since = *job.stalled_since.get_or_insert_with(|| {
            if job.spec.explain {
                ctx.events.push_back(JobEvent::Unplaceable { job: id, piece, why: why.clone() });
            }
            ctx.now
        });
        let waited = ctx.now.since(since);
        if waited >= job.spec.stall_timeout {
            self.fail(id, JobError::Stalled { piece, waited, why }, ctx);
        }
    }

    /// Cancels the losing copy `rid` of a piece that finished elsewhere.
    fn cancel_copy(&mut self, job_id: JobId, rid: RequestId, piece: u32, ctx: &mut Ctx) {
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        let Some(b) = self.inflight.batch(rid) else { return };
        let peer = b.peer;
        let unfinished = b.pieces.iter().any(|&p| job.states[p as usize].holds(rid));
        if unfinished {
            self.inflight.cancel(peer, job_id, Some(vec![piece]), ctx);
        } else if let Some(b) = self.inflight.give_up(rid, job, ctx) {
            self.inflight.cancel(peer, job_id, Some(b.pieces), ctx);
        }
    }

    /// Stops everything still in flight for a job that ended.
    fn wind_down(&mut self, job: &mut Job, ctx: &mut Ctx) {
        let mut rids: Vec<RequestId> = job.batches.iter().copied().collect();
        rids.sort_unstable();
        let mut peers = Vec::new();
        for rid in rids {
            if let Some(b) = self.inflight.give_up(rid, job, ctx) {
                if !peers.contains(&b.peer) {
                    peers.push(b.peer);
                }
            }
        }
        for peer in peers {
            self.inflight.cancel(peer, job.id, None, ctx);
        }
        self.inflight.retired.retain(|_, j| *j != job.id);
    }

    fn finish(&mut self, id: JobId, conclusive: Option<u32>, ctx: &mut Ctx) {
        let Some(mut job) = self.jobs.remove(&id) else { return };
        self.wind_down(&mut job, ctx);
        let stats = job.finish_stats(ctx.now);
        let outputs = job.take_outputs();
        ctx.events.push_back(JobEvent::Finished { job: id, result: Ok(JobOutput { outputs, conclusive, stats }) });
    }

    fn fail(&mut self, id: JobId, error: JobError, ctx: &mut Ctx) {
        let Some(mut job) = self.jobs.remove(&id) else { return };
        self.wind_down(&mut job, ctx);
        ctx.events.push_back(JobEvent::Finished { job: id, result: Err(error) });
    }
}

/// Why `peer` may not get `piece` of `job`, if it may not.
fn exclusion(job: &Job, piece: u32, peer: PeerKey) -> Option<&'static str> {
    if job.refused.contains(&peer) {
        Some("refused this job")
    } else if job.failed_on(piece, peer) {
        Some("failed this piece before")
    } else {
        None
    }
}

/// Puts `piece` back at the front of the queue unless it is done or still running elsewhere.
fn requeue(job: &mut Job, piece: u32) {
    let state = job.states[piece as usize];
    if !state.done && state.held() == 0 {
        job.put_back(piece);
    }
}

/// Whether a failure keeps the piece away from the peer for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ban {
    /// The peer failed the piece itself (error, deadline, nonsense answer,
    /// a request it dropped).
    Yes,
    /// The peer went away holding it (connection, probes): once it is back
    /// it may have the piece again.
    No,
}

/// Records a failure of `piece` on `peer`. Returns the failure when the
/// piece has now failed `max_attempts` times (the job must fail).
fn piece_failed(
    job: &mut Job,
    piece: u32,
    peer: PeerKey,
    cause: FailureCause,
    ban: Ban,
    ctx: &mut Ctx,
) -> Option<PieceFailure> {
    let state = job.states[piece as usize];
    if state.done {
        return None;
    }
    let extra = job.history.entry(piece).or_default();
    extra.causes.push((peer, cause.clone()));
    if ban == Ban::Yes {
        extra.banned.push(peer);
    }
    if state.held() > 0 {
        return None;
    }
    job.states[piece as usize].failures += 1;
    if job.states[piece as usize].failures >= job.spec.max_attempts {
        return Some(PieceFailure { piece, causes: extra.causes.clone() });
    }
    job.put_back(piece);
    job.stats.retries += 1;
    ctx.events.push_back(JobEvent::Retried { job: job.id, piece, peer, cause, banned: ban == Ban::Yes });
    None
}

/// Records a failure of `piece` that `peer` says will repeat wherever it
/// runs. Returns the job's error once two distinct peers reported such a
/// failure (of any piece: one lying peer cannot fail a job), or the same
/// peer twice when no other peer can run the task. Until then the piece is
/// retried like after any failure; on the only peer that runs the task it
/// may run again, so that peer can confirm.
fn repeat_failed(job: &mut Job, piece: u32, peer: PeerKey, cause: FailureCause, ctx: &mut Ctx) -> Option<JobError> {
    if job.states[piece as usize].done {
        return None;
    }
    job.repeats.push((piece, peer, cause.to_string()));
    let alone = ctx.peers.runners(&job.spec.task, |p| job.refused.contains(&p)) < 2;
    let confirmed = if alone {
        job.repeats.iter().filter(|(_, p, _)| *p == peer).count() >= 2
    } else {
        job.repeats.iter().any(|(_, p, _)| *p != peer)
    };
    if confirmed {
        return Some(JobError::Repeats { failures: job.repeats.clone() });
    }
    let ban = if alone { Ban::No } else { Ban::Yes };
    piece_failed(job, piece, peer, cause, ban, ctx).map(JobError::PieceFailed)
}
