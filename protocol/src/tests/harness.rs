//! A small deterministic network of [`Machine`]s in virtual time, for
//! scenario tests of the state machine: latency, crashes (connections close),
//! hangs (SIGSTOP: nothing answers, nothing closes), slow nodes.
//!
//! Piece inputs are [`piece`]s: a cost in microseconds and flags; a piece's
//! output is its input, so a merged job is checked against its inputs.

use crate::wire::{Outcome, Request, Response};
use crate::*;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

/// The piece fails on every worker.
pub(crate) const FAIL: u8 = 1;
/// The piece's output settles the job.
pub(crate) const CONCLUSIVE: u8 = 2;
/// The piece fails on every worker, and the workers say it will
/// ([`Outcome::Repeats`]: a guest's exit code).
pub(crate) const REPEATS: u8 = 4;

/// Encodes a test piece: cost in µs, flags.
pub(crate) fn piece(cost_us: u64, flags: u8) -> Vec<u8> {
    let mut v = cost_us.to_le_bytes().to_vec();
    v.push(flags);
    v
}

fn parse(input: &[u8]) -> (u64, u8) {
    let cost = u64::from_le_bytes(input[..8].try_into().unwrap());
    (cost, input[8])
}

#[derive(Clone, Debug)]
enum Ev {
    Request { to: usize, from: usize, rid: RequestId, req: Request },
    Response { to: usize, rid: RequestId, resp: Response },
    Advert { to: usize, from: usize, advert: wire::Advert },
    Exec { node: usize, id: ExecId, outcomes: Vec<Outcome>, elapsed: Duration },
    Timer { node: usize, at: Time },
    Up { node: usize, peer: usize },
    Down { node: usize, peer: usize },
}

impl Ev {
    fn node(&self) -> usize {
        match self {
            Ev::Request { to, .. } | Ev::Response { to, .. } | Ev::Advert { to, .. } => *to,
            Ev::Exec { node, .. } | Ev::Timer { node, .. } | Ev::Up { node, .. } | Ev::Down { node, .. } => *node,
        }
    }
}

/// Per-node fault and speed settings.
#[derive(Clone, Debug)]
pub(crate) struct NodeState {
    pub(crate) crashed: bool,
    pub(crate) hung: bool,
    /// Pieces run at this many percent of nominal speed.
    pub(crate) speed_pct: u64,
    /// Keeps running aborted batches to the end (to produce late results).
    pub(crate) ignore_abort: bool,
    /// A silent liar: takes run requests and never answers them (its
    /// machine never sees them), while it answers everything else.
    pub(crate) swallow_runs: bool,
    /// A loud liar: says every piece it runs failed in a way that repeats.
    pub(crate) claims_repeats: bool,
    timer: Option<Time>,
    /// Events that arrived while hung, replayed on resume.
    backlog: Vec<Ev>,
    inbound: BTreeMap<InboundId, (usize, RequestId)>,
    next_inbound: u64,
    aborted: Vec<ExecId>,
}

/// The network.
pub(crate) struct Net {
    pub(crate) nodes: Vec<Machine>,
    pub(crate) state: Vec<NodeState>,
    pub(crate) now: Time,
    pub(crate) latency: Duration,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    pending: BTreeMap<u64, Ev>,
    seq: u64,
    /// Job events, by the node that submitted.
    pub(crate) events: Vec<(usize, JobEvent)>,
    /// Cancel requests each node received.
    pub(crate) cancels: Vec<u32>,
    /// Pieces each node started.
    pub(crate) executed: Vec<u32>,
    /// Pieces each silent liar took and never answered.
    pub(crate) swallowed: Vec<u32>,
    /// Connections (both directions listed).
    links: BTreeSet<(usize, usize)>,
    /// Peers going up or down, as each node saw it.
    pub(crate) peer_events: Vec<(usize, Time, PeerEvent)>,
    /// Disconnects each node asked for.
    pub(crate) disconnects: Vec<(usize, usize, Time)>,
    /// Nodes whose adverts gossip loses (their probes still get through).
    pub(crate) gossip_lost: BTreeSet<usize>,
}

impl Net {
    /// `n` fully connected nodes running task "t", each configured by `tweak`.
    pub(crate) fn new(n: usize, seed: u64, tweak: impl Fn(usize, &mut Config)) -> Net {
        let nodes = (0..n)
            .map(|i| {
                let mut cfg = Config::new(PeerKey(i as u32), seed ^ (i as u64 * 0x9e37_79b9));
                cfg.tasks = vec!["t".into()];
                tweak(i, &mut cfg);
                Machine::new(cfg, Time::ZERO)
            })
            .collect();
        let state = NodeState {
            crashed: false,
            hung: false,
            speed_pct: 100,
            ignore_abort: false,
            swallow_runs: false,
            claims_repeats: false,
            timer: None,
            backlog: Vec::new(),
            inbound: BTreeMap::new(),
            next_inbound: 1,
            aborted: Vec::new(),
        };
        let mut net = Net {
            nodes,
            state: vec![state; n],
            now: Time::ZERO,
            latency: Duration::from_micros(200),
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
            cancels: vec![0; n],
            executed: vec![0; n],
            swallowed: vec![0; n],
            disconnects: Vec::new(),
            peer_events: Vec::new(),
            links: BTreeSet::new(),
            gossip_lost: BTreeSet::new(),
        };
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    net.at(Time::ZERO, Ev::Up { node: a, peer: b });
                }
            }
        }
        for i in 0..n {
            net.drain(i);
        }
        net
    }

    fn at(&mut self, t: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.pending.insert(self.seq, ev);
    }

    fn later(&mut self, ev: Ev) {
        self.at(self.now + self.latency, ev);
    }

    /// Submits a job on `node`.
    pub(crate) fn submit(&mut self, node: usize, spec: JobSpec) -> JobId {
        let id = self.nodes[node].submit(spec, self.now).expect("valid job");
        self.drain(node);
        id
    }

    /// Cancels a job on `node`.
    pub(crate) fn cancel(&mut self, node: usize, job: JobId) {
        self.nodes[node].cancel(job, self.now);
        self.drain(node);
    }

    /// Kills `node`: its connections close (peers notice after one latency).
    pub(crate) fn crash(&mut self, node: usize) {
        self.state[node].crashed = true;
        for peer in 0..self.nodes.len() {
            if peer != node {
                self.later(Ev::Down { node: peer, peer: node });
            }
        }
    }

    /// Stops or resumes `node` (SIGSTOP / SIGCONT): connections stay open.
    pub(crate) fn hang(&mut self, node: usize, hung: bool) {
        self.state[node].hung = hung;
        if !hung {
            let backlog = std::mem::take(&mut self.state[node].backlog);
            for ev in backlog {
                self.at(self.now, ev);
            }
        }
    }

    /// Runs until `done` holds or virtual time passes `limit`; returns whether `done` held.
    pub(crate) fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while !done(self) {
            let Some(Reverse((t, seq))) = self.queue.pop() else { return false };
            if t > end {
                self.queue.push(Reverse((t, seq)));
                self.now = end;
                return false;
            }
            self.now = t;
            let ev = self.pending.remove(&seq).expect("queued event");
            self.step(ev);
        }
        true
    }

    /// The result of `job` submitted on `node`, once finished.
    pub(crate) fn finished(&self, node: usize, job: JobId) -> Option<&Result<JobOutput, JobError>> {
        self.events.iter().find_map(|(n, e)| match e {
            JobEvent::Finished { job: j, result } if *n == node && *j == job => Some(result),
            _ => None,
        })
    }

    /// Runs until `job` on `node` finishes (at most `limit`) and returns its result.
    pub(crate) fn run_job(&mut self, node: usize, job: JobId, limit: Duration) -> Result<JobOutput, JobError> {
        assert!(self.run_until(limit, |n| n.finished(node, job).is_some()), "job did not finish within {limit:?}");
        self.finished(node, job).unwrap().clone()
    }

    fn step(&mut self, ev: Ev) {
        let node = ev.node();
        if self.state[node].crashed {
            return;
        }
        if self.state[node].hung {
            self.state[node].backlog.push(ev);
            return;
        }
        let now = self.now;
        let m = &mut self.nodes[node];
        match ev {
            Ev::Request { from, rid, req, .. } => {
                let st = &mut self.state[node];
                let id = InboundId(st.next_inbound);
                st.next_inbound += 1;
                st.inbound.insert(id, (from, rid));
                match &req {
                    Request::Cancel(_) => self.cancels[node] += 1,
                    Request::Run(run) if st.swallow_runs => {
                        self.swallowed[node] += run.pieces.len() as u32;
                        return;
                    }
                    _ => {}
                }
                m.handle_request(PeerKey(from as u32), id, req, now);
            }
            Ev::Response { rid, resp, .. } => m.handle_response(rid, resp, now),
            Ev::Advert { from, advert, .. } => {
                let _ = m.handle_advert(PeerKey(from as u32), &advert, now);
                // Like the node's driver: an advert from a peer we are not
                // connected to proves it alive, so redial it.
                if self.links.insert((node, from)) {
                    self.links.insert((from, node));
                    self.later(Ev::Up { node, peer: from });
                    self.later(Ev::Up { node: from, peer: node });
                }
            }
            Ev::Exec { id, outcomes, elapsed, .. } => {
                let st = &mut self.state[node];
                let aborted = st.aborted.contains(&id) && !st.ignore_abort;
                let outcomes = if aborted { outcomes.iter().map(|_| Outcome::Cancelled).collect() } else { outcomes };
                m.handle_execution(id, outcomes, elapsed, now);
            }
            Ev::Timer { at, .. } => {
                if self.state[node].timer != Some(at) {
                    return;
                }
                self.state[node].timer = None;
                m.handle_timeout(now);
            }
            Ev::Up { peer, .. } => {
                self.links.insert((node, peer));
                m.handle_peer_up(PeerKey(peer as u32), now)
            }
            Ev::Down { peer, .. } => {
                self.links.remove(&(node, peer));
                m.handle_peer_down(PeerKey(peer as u32), now)
            }
        }
        self.drain(node);
    }

    /// Carries out everything `node` asked for and re-arms its timer.
    fn drain(&mut self, node: usize) {
        while let Some(action) = self.nodes[node].poll_action() {
            match action {
                Action::Send { to, id, request } => {
                    let to = to.0 as usize;
                    self.later(Ev::Request { to, from: node, rid: id, req: request });
                }
                Action::Respond { id, response, .. } => {
                    if let Some((to, rid)) = self.state[node].inbound.remove(&id) {
                        self.later(Ev::Response { to, rid, resp: response });
                    }
                }
                Action::Publish(_) if self.gossip_lost.contains(&node) => {}
                Action::Publish(advert) => {
                    for to in (0..self.nodes.len()).filter(|t| *t != node) {
                        self.later(Ev::Advert { to, from: node, advert: advert.clone() });
                    }
                }
                Action::Execute(e) => {
                    let mut cost = 0u64;
                    let outcomes = e
                        .pieces
                        .iter()
                        .map(|p| {
                            let (c, flags) = parse(&p.input);
                            cost += c;
                            if flags & REPEATS != 0 || self.state[node].claims_repeats {
                                Outcome::Repeats("exited with code 3".into())
                            } else if flags & FAIL != 0 {
                                Outcome::Failed("boom".into())
                            } else {
                                Outcome::Done { output: p.input.clone(), conclusive: flags & CONCLUSIVE != 0 }
                            }
                        })
                        .collect();
                    self.executed[node] += e.pieces.len() as u32;
                    let elapsed = Duration::from_micros(cost * 100 / self.state[node].speed_pct);
                    self.at(self.now + elapsed, Ev::Exec { node, id: e.id, outcomes, elapsed });
                }
                Action::Abort(id) => self.state[node].aborted.push(id),
                Action::Disconnect(peer) => {
                    let peer = peer.0 as usize;
                    self.disconnects.push((node, peer, self.now));
                    self.later(Ev::Down { node, peer });
                    self.later(Ev::Down { node: peer, peer: node });
                }
            }
        }
        while let Some(e) = self.nodes[node].poll_event() {
            self.events.push((node, e));
        }
        while let Some(e) = self.nodes[node].poll_peer_event() {
            self.peer_events.push((node, self.now, e));
        }
        if let Some(at) = self.nodes[node].poll_timeout() {
            let at = at.max(self.now);
            if self.state[node].timer != Some(at) {
                self.state[node].timer = Some(at);
                self.at(at, Ev::Timer { node, at });
            }
        }
    }
}
