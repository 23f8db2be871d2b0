//! The worker half of a node: accepts batches, queues them, hands them to
//! the driver to execute on free slots, enforces piece deadlines, answers
//! with results. One batch occupies one slot and runs its pieces in order,
//! so a batch of tiny pieces costs one wake-up, not one per piece.
//!
//! Deadlines are per piece: each piece has `piece_timeout` from when it
//! starts. Drivers report pieces as they finish ([`Worker::progress`]), so
//! when one piece overruns, the pieces done before it are answered with
//! their outputs, it fails, and those after it (never started) are
//! answered `Cancelled` for the submitter to place again. Finished work is
//! never thrown away.
//!
//! Slots are shared fairly between submitters (issue 19: one submitter's
//! huge pieces held every slot of a mesh while another's job timed out):
//!
//! - a free slot goes to the oldest queued batch of the submitter running
//!   the fewest batches, not to the oldest batch overall;
//! - a submitter that waits while running less than its share (the slots
//!   divided among the submitters with work here, rounded up) takes a slot
//!   back from one running more than its share: that one's most recently
//!   accepted running batch is aborted, its finished pieces keep their
//!   outputs and the others are answered `Cancelled` for its submitter to
//!   place again (preemption only ever costs a piece in progress);
//! - when the queue is full, a newcomer's batch pushes out the most recent
//!   queued batch of the submitter holding the most pieces, as long as that
//!   one would still hold more (answered `Cancelled` too);
//! - a submitter the node has not heard advertise (not yet proven a
//!   member) gets pieces of at most [`Config::max_stranger_piece_timeout`].
//!
//! With one slot there is no share to take back: a running piece keeps it
//! until it ends or its deadline passes.

use crate::config::{AcceptFrom, Config};
use crate::ids::{ExecId, InboundId, JobId, PeerKey, RequestId};
use crate::time::{human, Time};
use crate::wire::{
    Load, Outcome, PieceInput, PieceResult, RejectReason, Response, Results, RunRequest, PROTOCOL_VERSION,
};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

/// A batch the driver should execute now, on a thread that may block.
#[derive(Debug)]
#[must_use]
pub struct Execution {
    /// Report the outcome with this id.
    pub id: ExecId,
    /// Registered task name.
    pub task: String,
    /// Pieces to run in order; report one [`Outcome`] per piece, same order.
    pub pieces: Vec<PieceInput>,
    /// Deadline of one piece from when it starts; the machine aborts the
    /// batch when one overruns it and answers for it (report finished
    /// pieces with `Machine::handle_progress` so their outputs are kept).
    pub piece_timeout: Duration,
}

/// Who asked for a batch, so the answer goes back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A remote submitter's request.
    Remote(PeerKey, InboundId),
    /// Our own scheduler's request to ourselves.
    Local(RequestId),
}

/// What the worker wants done.
#[derive(Debug)]
pub(crate) enum WorkerOut {
    Respond(Origin, Response),
    Execute(Execution),
    Abort(ExecId),
}

#[derive(Debug)]
enum State {
    Queued,
    /// Running; `deadline` is the running piece's (it started at
    /// `deadline - timeout`).
    Running {
        deadline: Time,
    },
}

#[derive(Debug)]
struct Exec {
    origin: Origin,
    submitter: PeerKey,
    job: JobId,
    task: String,
    pieces: Vec<u32>,
    /// Taken when the batch starts.
    inputs: Vec<PieceInput>,
    /// Outcomes of the pieces finished so far, in order.
    done: Vec<Outcome>,
    timeout: Duration,
    state: State,
}

/// Accepted work and free slots.
#[derive(Debug)]
pub(crate) struct Worker {
    slots: u32,
    /// Hard cap on accepted pieces; the working limit is [`Worker::limit`].
    capacity: u32,
    /// Work to keep queued per slot (the submitters' batch target).
    batch_target: Duration,
    /// Measured execution time of one piece (EWMA, µs), any task.
    piece_us: Option<u64>,
    per_submitter: u32,
    max_timeout: Duration,
    /// The piece deadline for submitters not proven members.
    max_stranger_timeout: Duration,
    tasks: Vec<String>,
    accept: AcceptFrom,
    accepting: bool,
    execs: FxHashMap<ExecId, Exec>,
    queue: VecDeque<ExecId>,
    running: u32,
    outstanding: u32,
    /// Pieces accepted from each submitter.
    per_peer: FxHashMap<PeerKey, u32>,
    /// Running batches of each submitter.
    running_by: FxHashMap<PeerKey, u32>,
    /// When each submitter last had a batch started (a count of starts),
    /// so submitters running equally many take turns.
    last_start: FxHashMap<PeerKey, u64>,
    starts: u64,
    deadlines: BinaryHeap<Reverse<(Time, ExecId)>>,
    next_id: u64,
}

impl Worker {
    pub(crate) fn new(cfg: &Config) -> Worker {
        Worker {
            slots: cfg.slots,
            capacity: cfg.capacity,
            batch_target: cfg.batch_target,
            piece_us: None,
            per_submitter: cfg.max_pieces_per_submitter,
            max_timeout: cfg.max_piece_timeout,
            max_stranger_timeout: cfg.max_stranger_piece_timeout,
            tasks: cfg.tasks.clone(),
            accept: cfg.accept_from.clone(),
            accepting: true,
            execs: FxHashMap::default(),
            queue: VecDeque::new(),
            running: 0,
            outstanding: 0,
            per_peer: FxHashMap::default(),
            running_by: FxHashMap::default(),
            last_start: FxHashMap::default(),
            starts: 0,
            deadlines: BinaryHeap::new(),
            next_id: 1,
        }
    }

    /// The load this worker reports.
    pub(crate) fn load(&self) -> Load {
        Load {
            slots: self.slots,
            running: self.running,
            queued: self.outstanding.saturating_sub(self.running),
            capacity: self.limit().max(self.outstanding),
        }
    }

    /// Pieces it accepts at once: one running and one waiting per slot for
    /// long pieces; for short ones about twice the submitters' batch target
    /// of work per slot, with room to spare so a submitter's slightly older
    /// estimate of piece time is not refused. Never more than the hard cap.
    fn limit(&self) -> u32 {
        let target = self.batch_target.as_micros() as u64;
        let per_slot = match self.piece_us {
            Some(us) if us < target => (4 * target / us.max(1)).clamp(2, u32::MAX as u64) as u32,
            _ => 2,
        };
        self.slots.saturating_mul(per_slot).min(self.capacity).max(self.slots)
    }

    /// Tasks it runs (none without slots, or once shutting down).
    pub(crate) fn tasks(&self) -> &[String] {
        if self.slots == 0 || !self.accepting {
            &[]
        } else {
            &self.tasks
        }
    }

    /// Stops accepting new batches (shutdown); accepted ones still finish.
    pub(crate) fn stop_accepting(&mut self) {
        self.accepting = false;
    }

    /// Takes a batch or says why not. `proven`: the node heard `from`
    /// advertise (or it is this node itself); other submitters' pieces get
    /// at most the stranger's deadline.
    pub(crate) fn accept(
        &mut self,
        origin: Origin,
        from: PeerKey,
        req: RunRequest,
        proven: bool,
        now: Time,
        out: &mut Vec<WorkerOut>,
    ) -> Result<(), RejectReason> {
        let n = req.pieces.len() as u32;
        let from_peer = self.per_peer.get(&from).copied().unwrap_or(0);
        if req.version != PROTOCOL_VERSION {
            return Err(RejectReason::VersionMismatch(PROTOCOL_VERSION));
        }
        if !self.accepting {
            return Err(RejectReason::ShuttingDown);
        }
        if !self.tasks().contains(&req.task) {
            return Err(RejectReason::UnknownTask);
        }
        if !self.accept.allows(from) {
            return Err(RejectReason::NotAllowed);
        }
        if from_peer.saturating_add(n) > self.per_submitter {
            return Err(RejectReason::Busy);
        }
        self.make_room(from, n, out);
        if self.outstanding.saturating_add(n) > self.limit() {
            return Err(RejectReason::Busy);
        }
        let max_timeout = if proven { self.max_timeout } else { self.max_timeout.min(self.max_stranger_timeout) };
        let id = ExecId(self.next_id);
        self.next_id += 1;
        self.outstanding += n;
        *self.per_peer.entry(from).or_default() += n;
        let exec = Exec {
            origin,
            submitter: from,
            job: req.job,
            task: req.task,
            pieces: req.pieces.iter().map(|p| p.piece).collect(),
            inputs: req.pieces,
            done: Vec::new(),
            timeout: Duration::from_millis(req.piece_timeout_ms).min(max_timeout),
            state: State::Queued,
        };
        self.execs.insert(id, exec);
        self.queue.push_back(id);
        self.start(now, out);
        self.preempt(now, out);
        Ok(())
    }

    /// Makes room in the queue for `n` pieces of `from`: answers queued
    /// batches (never started) of the submitter holding the most pieces,
    /// most recent first, while it would still hold more than `from` does
    /// with these. A submitter keeps the queue to itself only while
    /// nobody else wants it.
    fn make_room(&mut self, from: PeerKey, n: u32, out: &mut Vec<WorkerOut>) {
        while self.outstanding.saturating_add(n) > self.limit() {
            let theirs = self.per_peer.get(&from).copied().unwrap_or(0).saturating_add(n);
            let hog = self.per_peer.iter().filter(|(p, _)| **p != from).max_by_key(|(p, held)| (**held, Reverse(**p)));
            let Some((&hog, &held)) = hog else { return };
            if held <= theirs {
                return;
            }
            let queued = |id: &ExecId| self.execs.get(id).is_some_and(|e| e.submitter == hog);
            let Some(at) = self.queue.iter().rposition(queued) else { return };
            let Some(exec) = self.queue.remove(at).and_then(|id| self.execs.remove(&id)) else { return };
            self.answer_all(exec, Outcome::Cancelled, out);
        }
    }

    /// Starts queued batches on free slots, each time the oldest batch of
    /// the submitter running the fewest (of those, the one whose turn came
    /// longest ago).
    fn start(&mut self, now: Time, out: &mut Vec<WorkerOut>) {
        // Batches answered while queued (cancelled, pushed out) leave their ids.
        self.queue.retain(|id| self.execs.contains_key(id));
        while self.running < self.slots {
            let next = self
                .queue
                .iter()
                .enumerate()
                .filter_map(|(at, id)| Some((at, self.execs.get(id)?.submitter)))
                .min_by_key(|&(at, s)| {
                    (self.running_by.get(&s).copied().unwrap_or(0), self.last_start.get(&s).copied().unwrap_or(0), at)
                });
            let Some(id) = next.and_then(|(at, _)| self.queue.remove(at)) else { break };
            let Some(exec) = self.execs.get_mut(&id) else { continue };
            let deadline = now + exec.timeout;
            exec.state = State::Running { deadline };
            self.deadlines.push(Reverse((deadline, id)));
            self.running += 1;
            *self.running_by.entry(exec.submitter).or_default() += 1;
            self.starts += 1;
            self.last_start.insert(exec.submitter, self.starts);
            out.push(WorkerOut::Execute(Execution {
                id,
                task: exec.task.clone(),
                pieces: std::mem::take(&mut exec.inputs),
                piece_timeout: exec.timeout,
            }));
        }
    }

    /// Takes slots back for submitters that wait while running less than
    /// their share, from those running more (see the module docs).
    fn preempt(&mut self, now: Time, out: &mut Vec<WorkerOut>) {
        while self.running >= self.slots && !self.queue.is_empty() {
            // Every submitter with pieces here, running or queued, wants slots.
            let share = self.slots.div_ceil(self.per_peer.len().max(1) as u32);
            let runs = |p: &PeerKey| self.running_by.get(p).copied().unwrap_or(0);
            let starved = self.queue.iter().filter_map(|id| self.execs.get(id)).any(|e| runs(&e.submitter) < share);
            let hog = self.running_by.iter().filter(|(_, n)| **n > share).max_by_key(|(p, n)| (**n, Reverse(**p)));
            let (true, Some((&hog, _))) = (starved, hog) else { return };
            let running = |e: &Exec| e.submitter == hog && matches!(e.state, State::Running { .. });
            let Some(id) = self.execs.iter().filter(|(_, e)| running(e)).map(|(id, _)| *id).max() else { return };
            let Some(mut exec) = self.execs.remove(&id) else { return };
            out.push(WorkerOut::Abort(id));
            let mut outcomes = std::mem::take(&mut exec.done);
            outcomes.resize(exec.pieces.len(), Outcome::Cancelled);
            self.answer(exec, outcomes, out);
            self.start(now, out);
        }
    }

    /// Pieces of `id` finished (outcomes in order, after those reported
    /// before); the next one starts now, with a deadline of its own.
    pub(crate) fn progress(&mut self, id: ExecId, outcomes: Vec<Outcome>, now: Time) {
        let Some(exec) = self.execs.get_mut(&id) else { return };
        if !matches!(exec.state, State::Running { .. }) || outcomes.is_empty() {
            return;
        }
        exec.done.extend(outcomes);
        let deadline = now + exec.timeout;
        exec.state = State::Running { deadline };
        self.deadlines.push(Reverse((deadline, id)));
    }

    /// The driver finished executing `id`: the outcomes of the pieces not
    /// reported by [`progress`](Self::progress), in order. Returns whether
    /// it was still expected (not answered by a deadline).
    pub(crate) fn finished(
        &mut self,
        id: ExecId,
        outcomes: Vec<Outcome>,
        elapsed: Duration,
        now: Time,
        out: &mut Vec<WorkerOut>,
    ) -> bool {
        let Some(mut exec) = self.execs.remove(&id) else { return false };
        let sample = elapsed.as_micros() as u64 / exec.pieces.len().max(1) as u64;
        self.piece_us = Some(self.piece_us.map_or(sample, |us| (us * 7 + sample) / 8));
        exec.done.extend(outcomes);
        let mut outcomes = std::mem::take(&mut exec.done).into_iter();
        let pieces = exec
            .pieces
            .iter()
            .map(|&piece| PieceResult {
                piece,
                outcome: outcomes.next().unwrap_or_else(|| Outcome::Failed("the worker returned no outcome".into())),
            })
            .collect();
        self.release(&exec);
        let results = Results { load: self.load(), exec_us: elapsed.as_micros() as u64, pieces };
        out.push(WorkerOut::Respond(exec.origin, Response::Results(results)));
        self.start(now, out);
        true
    }

    /// Frees what `exec` held.
    fn release(&mut self, exec: &Exec) {
        let n = exec.pieces.len() as u32;
        if matches!(exec.state, State::Running { .. }) {
            self.running -= 1;
            if let Some(c) = self.running_by.get_mut(&exec.submitter) {
                *c -= 1;
                if *c == 0 {
                    self.running_by.remove(&exec.submitter);
                }
            }
        }
        self.outstanding -= n;
        if let Some(c) = self.per_peer.get_mut(&exec.submitter) {
            *c -= n;
            if *c == 0 {
                self.per_peer.remove(&exec.submitter);
                self.last_start.remove(&exec.submitter);
            }
        }
    }

    /// Cancels pieces of `job` from `from` (`None`: all of them). Queued
    /// batches are answered at once; running ones are aborted and answer
    /// when the driver returns them.
    pub(crate) fn cancel(
        &mut self,
        from: PeerKey,
        job: JobId,
        pieces: Option<&[u32]>,
        now: Time,
        out: &mut Vec<WorkerOut>,
    ) {
        let mut hit: Vec<ExecId> = self
            .execs
            .iter()
            .filter(|(_, e)| e.submitter == from && e.job == job)
            .filter(|(_, e)| pieces.is_none_or(|ps| e.pieces.iter().all(|p| ps.contains(p))))
            .map(|(id, _)| *id)
            .collect();
        hit.sort_unstable();
        for id in hit {
            let running = matches!(self.execs.get(&id).map(|e| &e.state), Some(State::Running { .. }));
            if running {
                out.push(WorkerOut::Abort(id));
            } else if let Some(exec) = self.execs.remove(&id) {
                self.answer_all(exec, Outcome::Cancelled, out);
            }
        }
        self.start(now, out);
    }

    /// Cancels everything `from` submitted (it went away).
    pub(crate) fn forget_submitter(&mut self, from: PeerKey, now: Time, out: &mut Vec<WorkerOut>) {
        let mut jobs: Vec<JobId> = self.execs.values().filter(|e| e.submitter == from).map(|e| e.job).collect();
        jobs.sort_unstable();
        jobs.dedup();
        for job in jobs {
            self.cancel(from, job, None, now, out);
        }
    }

    /// Answers every piece of `exec` with `outcome` and frees it.
    fn answer_all(&mut self, exec: Exec, outcome: Outcome, out: &mut Vec<WorkerOut>) {
        let outcomes = vec![outcome; exec.pieces.len()];
        self.answer(exec, outcomes, out);
    }

    /// Answers the pieces of `exec` with `outcomes`, in order, and frees it.
    fn answer(&mut self, exec: Exec, outcomes: Vec<Outcome>, out: &mut Vec<WorkerOut>) {
        self.release(&exec);
        let pieces = exec.pieces.iter().zip(outcomes).map(|(&piece, outcome)| PieceResult { piece, outcome }).collect();
        out.push(WorkerOut::Respond(exec.origin, Response::Results(Results { load: self.load(), exec_us: 0, pieces })));
    }

    /// Aborts batches past their deadline, answering for them so the slot
    /// frees even if the task never looks at its cancellation flag.
    pub(crate) fn handle_timeout(&mut self, now: Time, out: &mut Vec<WorkerOut>) {
        while let Some(Reverse((deadline, id))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let current = matches!(self.execs.get(&id), Some(Exec { state: State::Running { deadline: d }, .. }) if *d == deadline);
            if !current {
                continue;
            }
            let Some(mut exec) = self.execs.remove(&id) else { continue };
            out.push(WorkerOut::Abort(id));
            // Done pieces keep their outputs; the one running failed; the
            // rest never started.
            let why = format!("piece deadline of {} passed on the worker", human(exec.timeout));
            let mut outcomes = std::mem::take(&mut exec.done);
            if outcomes.len() < exec.pieces.len() {
                outcomes.push(Outcome::Failed(why));
            }
            outcomes.resize(exec.pieces.len(), Outcome::Cancelled);
            self.answer(exec, outcomes, out);
        }
        self.start(now, out);
    }

    /// When the next batch deadline falls (dropping those of finished batches).
    pub(crate) fn next_deadline(&mut self) -> Option<Time> {
        while let Some(Reverse((t, id))) = self.deadlines.peek().copied() {
            if matches!(self.execs.get(&id), Some(Exec { state: State::Running { deadline }, .. }) if *deadline == t) {
                return Some(t);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Has nothing accepted.
    pub(crate) fn is_idle(&self) -> bool {
        self.execs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PieceInput, RunRequest};

    fn run(timeout_ms: u64, pieces: u32) -> RunRequest {
        RunRequest {
            version: PROTOCOL_VERSION,
            job: JobId(1),
            task: "t".into(),
            piece_timeout_ms: timeout_ms,
            pieces: (0..pieces).map(|piece| PieceInput { piece, input: vec![] }).collect(),
        }
    }

    fn results(out: &[WorkerOut]) -> Vec<Outcome> {
        out.iter()
            .find_map(|o| match o {
                WorkerOut::Respond(_, Response::Results(r)) => {
                    Some(r.pieces.iter().map(|p| p.outcome.clone()).collect())
                }
                _ => None,
            })
            .expect("an answer")
    }

    /// A light piece, then a heavy one that overruns its own deadline: the
    /// light one's output comes back, the heavy one fails, the third (never
    /// started) is cancelled, all at the heavy piece's deadline.
    #[test]
    fn a_piece_that_overruns_does_not_take_finished_pieces_with_it() {
        let mut cfg = Config::new(PeerKey(0), 1).with_slots(2);
        cfg.tasks = vec!["t".into()];
        let mut w = Worker::new(&cfg);
        let ms = |n| Time::ZERO + Duration::from_millis(n);
        let mut out = Vec::new();
        w.accept(Origin::Remote(PeerKey(1), InboundId(1)), PeerKey(1), run(200, 3), true, ms(0), &mut out).unwrap();
        let Some(WorkerOut::Execute(e)) = out.pop() else { panic!("not started") };
        let light = Outcome::Done { output: vec![7], conclusive: false };
        w.progress(e.id, vec![light.clone()], ms(10));
        w.handle_timeout(ms(205), &mut out);
        assert!(out.is_empty(), "the heavy piece started at 10 ms: its deadline is 210 ms, not 200");
        w.handle_timeout(ms(211), &mut out);
        let got = results(&out);
        assert_eq!(got[0], light, "the finished piece keeps its output");
        assert!(matches!(&got[1], Outcome::Failed(why) if why.contains("deadline")), "{got:?}");
        assert_eq!(got[2], Outcome::Cancelled);
        assert!(out.iter().any(|o| matches!(o, WorkerOut::Abort(id) if *id == e.id)));
        assert!(w.is_idle(), "the slot is free");
    }

    #[test]
    fn outcomes_reported_as_progress_and_at_the_end_are_joined_in_order() {
        let mut cfg = Config::new(PeerKey(0), 1).with_slots(2);
        cfg.tasks = vec!["t".into()];
        let mut w = Worker::new(&cfg);
        let mut out = Vec::new();
        w.accept(Origin::Remote(PeerKey(1), InboundId(1)), PeerKey(1), run(1000, 3), true, Time::ZERO, &mut out)
            .unwrap();
        let Some(WorkerOut::Execute(e)) = out.pop() else { panic!("not started") };
        let done = |b| Outcome::Done { output: vec![b], conclusive: false };
        w.progress(e.id, vec![done(0), done(1)], Time::ZERO);
        assert!(w.finished(e.id, vec![done(2)], Duration::from_millis(1), Time::ZERO, &mut out));
        assert_eq!(results(&out), vec![done(0), done(1), done(2)]);
    }

    /// A worker for task "t" with `slots` slots.
    fn worker(slots: u32) -> Worker {
        let mut cfg = Config::new(PeerKey(0), 1).with_slots(slots);
        cfg.tasks = vec!["t".into()];
        Worker::new(&cfg)
    }

    /// Submits a one-piece batch from `from` (proven, 1 h deadline).
    fn submit(w: &mut Worker, from: u32, out: &mut Vec<WorkerOut>) -> Result<(), RejectReason> {
        let origin = Origin::Remote(PeerKey(from), InboundId(from.into()));
        w.accept(origin, PeerKey(from), run(3_600_000, 1), true, Time::ZERO, out)
    }

    /// The submitters whose batches `out` starts, in order.
    fn started(w: &Worker, out: &[WorkerOut]) -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                WorkerOut::Execute(e) => Some(w.execs[&e.id].submitter.0),
                _ => None,
            })
            .collect()
    }

    /// The submitters `out` answers `Cancelled` (pushed out or preempted).
    fn cancelled(out: &[WorkerOut]) -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                WorkerOut::Respond(Origin::Remote(p, _), Response::Results(r))
                    if r.pieces.iter().all(|p| p.outcome == Outcome::Cancelled) =>
                {
                    Some(p.0)
                }
                _ => None,
            })
            .collect()
    }

    /// A freed slot goes to the submitter running the fewest batches,
    /// not to the oldest batch.
    #[test]
    fn a_free_slot_goes_to_the_submitter_running_the_fewest() {
        let mut w = worker(1);
        let mut out = Vec::new();
        let done = |w: &mut Worker, out: &mut Vec<WorkerOut>| {
            let id = out.iter().find_map(|o| if let WorkerOut::Execute(e) = o { Some(e.id) } else { None });
            out.clear();
            let finished = vec![Outcome::Done { output: vec![], conclusive: false }];
            // Tiny pieces: the worker then queues many batches per slot.
            assert!(w.finished(id.expect("one started"), finished, Duration::from_micros(1), Time::ZERO, out));
        };
        submit(&mut w, 1, &mut out).unwrap();
        done(&mut w, &mut out);
        for _ in 0..3 {
            submit(&mut w, 1, &mut out).unwrap();
        }
        submit(&mut w, 2, &mut out).unwrap();
        assert_eq!(started(&w, &out), vec![1]);
        done(&mut w, &mut out);
        assert_eq!(started(&w, &out), vec![2], "the second submitter's batch jumps submitter 1's queue");
    }

    /// Submitter 1 holds both slots with long pieces; submitter 2 arrives
    /// and takes one back at once. Then nobody is over its share: no more
    /// preemption, whoever submits.
    #[test]
    fn a_waiting_submitter_takes_back_its_share_of_slots() {
        let mut w = worker(2);
        let mut out = Vec::new();
        for _ in 0..3 {
            submit(&mut w, 1, &mut out).unwrap();
        }
        assert_eq!(started(&w, &out), vec![1, 1]);
        let newest = out.iter().filter_map(|o| if let WorkerOut::Execute(e) = o { Some(e.id) } else { None }).max();
        out.clear();
        submit(&mut w, 2, &mut out).unwrap();
        assert!(out.iter().any(|o| matches!(o, WorkerOut::Abort(id) if Some(*id) == newest)), "{out:?}");
        assert_eq!(cancelled(&out), vec![1], "the preempted batch is answered, to be placed again");
        assert_eq!(started(&w, &out), vec![2]);
        out.clear();
        submit(&mut w, 2, &mut out).unwrap();
        assert!(out.is_empty(), "each runs its share: nothing preempted: {out:?}");
    }

    /// With one slot there is no share to take back: the running batch stays.
    #[test]
    fn one_slot_is_never_preempted() {
        let mut w = worker(1);
        let mut out = Vec::new();
        submit(&mut w, 1, &mut out).unwrap();
        out.clear();
        submit(&mut w, 2, &mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
    }

    /// Submitter 1 fills the whole queue; submitter 2's batch pushes out
    /// its most recent queued one instead of being refused as busy.
    #[test]
    fn a_full_queue_makes_room_for_another_submitter() {
        let mut w = worker(1);
        let mut out = Vec::new();
        while submit(&mut w, 1, &mut out).is_ok() {}
        assert_eq!(submit(&mut w, 1, &mut out), Err(RejectReason::Busy), "full for submitter 1 itself");
        out.clear();
        submit(&mut w, 2, &mut out).unwrap();
        assert_eq!(cancelled(&out), vec![1]);
        assert_eq!(w.per_peer[&PeerKey(2)], 1);
    }

    /// A submitter not proven a member gets the stranger's deadline, not
    /// the hour it asked for.
    #[test]
    fn a_strangers_piece_gets_the_strangers_deadline() {
        let mut w = worker(2);
        let mut out = Vec::new();
        let origin = |p: u32| Origin::Remote(PeerKey(p), InboundId(p.into()));
        w.accept(origin(1), PeerKey(1), run(3_600_000, 1), false, Time::ZERO, &mut out).unwrap();
        w.accept(origin(2), PeerKey(2), run(3_600_000, 1), true, Time::ZERO, &mut out).unwrap();
        let timeouts: Vec<Duration> = out
            .iter()
            .filter_map(|o| if let WorkerOut::Execute(e) = o { Some(e.piece_timeout) } else { None })
            .collect();
        let cfg = Config::new(PeerKey(0), 1);
        assert_eq!(timeouts, vec![cfg.max_stranger_piece_timeout, Duration::from_secs(3600)]);
    }
}
