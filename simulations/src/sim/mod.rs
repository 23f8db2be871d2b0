//! The event loop: one queue of events in virtual time, each handed to
//! the node it concerns; after every input the node's [`Machine`] is
//! drained (its actions carried through the network model, its job and
//! peer events handed to the [`Recorder`]) and its one timer re-armed.
//! Nothing here decides placement, retries, backups or liveness: the
//! machines do.
//!
//! The rest of the simulator's work is split by what it touches:
//! `links` carries requests and responses and opens and closes
//! connections, `circuits` routes them over relays (`--nated`), `adverts`
//! gossips adverts, `faults` breaks things.

mod adverts;
mod circuits;
mod faults;
mod links;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::gossip::Gossip;
use crate::network::Network;
use crate::node::{Inbound, Life, Node};
use crate::plan::{NodeDraw, Plan, Step, NETWORK_STREAM};
use crate::queue::Queue;
use crate::reach::Reach;
use crate::recorder::{NodeSample, Recorder};
use crate::report::ReachReport;
use meshwork_protocol::wire::{Advert, Request, Response};
use meshwork_protocol::{Action, Config, ExecId, InboundId, Machine, PeerEvent, PeerKey, RequestId, Time};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use std::rc::Rc;

/// The one task every simulated node runs.
pub(crate) const TASK: &str = "sim";

/// A message on a connection.
#[derive(Debug)]
enum Msg {
    Request(RequestId, Request),
    Response(RequestId, Response),
}

/// Something that happens at a point of virtual time.
#[derive(Debug)]
enum Ev {
    /// A request or response arrives over the connection of `epoch`.
    Msg { to: u32, from: u32, epoch: u32, msg: Msg },
    /// The first copy of an advert reaches a node whose peer table holds its publisher.
    Advert { to: u32, from: u32, advert: Rc<Advert> },
    /// A request could not be sent (no connection).
    Failed { node: u32, rid: RequestId },
    /// An execution ends (if it still ends now).
    Exec { node: u32, id: ExecId },
    /// A node's timer (if still armed for `at`).
    Timer { node: u32, at: Time },
    /// The connection to `peer` closed (the close that made `epoch`).
    Down { node: u32, peer: u32, epoch: u32 },
    /// A connection to `peer` opened (while its epoch is `epoch`).
    Up { node: u32, peer: u32, epoch: u32 },
    /// Try to reconnect `a` and `b`.
    Redial { a: u32, b: u32 },
    /// `a` and `b` try to punch a hole (their relayed connection of `epoch`).
    Punch { a: u32, b: u32, epoch: u32 },
    /// A step of the plan's schedule.
    Step(Step),
    /// A fresh node joins (a churn replacement).
    Join,
    /// Take a sample of the run.
    Sample,
}

impl Ev {
    /// The node that handles it, if one does.
    fn node(&self) -> Option<u32> {
        match self {
            Ev::Msg { to, .. } | Ev::Advert { to, .. } => Some(*to),
            Ev::Failed { node, .. }
            | Ev::Exec { node, .. }
            | Ev::Timer { node, .. }
            | Ev::Down { node, .. }
            | Ev::Up { node, .. } => Some(*node),
            Ev::Redial { .. } | Ev::Punch { .. } | Ev::Step(_) | Ev::Join | Ev::Sample => None,
        }
    }
}

/// What a finished simulation hands back: the recorder, when it ended, and
/// how many events it processed.
pub(crate) struct Finished {
    pub(crate) recorder: Recorder,
    pub(crate) end: Time,
    pub(crate) events: u64,
    /// What NATs and relays did (`--nated`).
    pub(crate) reach: Option<ReachReport>,
}

/// The whole simulated mesh.
pub(crate) struct Sim<'a> {
    cfg: &'a SimConfig,
    plan: Plan,
    rec: Recorder,
    now: Time,
    rng: ChaCha8Rng,
    queue: Queue<Ev>,
    nodes: Vec<Node>,
    /// Submitters: nodes `0..k`.
    k: u32,
    net: Network,
    /// NATed nodes and relays (`--nated`).
    reach: Option<Reach>,
    gossip: Gossip,
    /// Events of hung nodes, replayed when they resume.
    backlog: FxHashMap<u32, Vec<Ev>>,
    /// Connections waiting to be redialled (a side hung or cut off).
    redials: Vec<(u32, u32)>,
    events: u64,
    limit: Time,
    fatal: Option<SimError>,
}

impl<'a> Sim<'a> {
    /// Builds the mesh `plan` describes at t = 0 (nothing connected or submitted yet).
    pub(crate) fn new(cfg: &'a SimConfig, plan: Plan, rec: Recorder) -> Sim<'a> {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(NETWORK_STREAM);
        let mut sim = Sim {
            cfg,
            rec,
            now: Time::ZERO,
            queue: Queue::new(),
            nodes: Vec::with_capacity(plan.initial.len() + plan.churn_at.len()),
            k: cfg.submitters,
            net: Network::new(cfg.latency, cfg.loss, cfg.submitters, cfg.colocation_penalty),
            reach: cfg.reach.clone().map(|r| Reach::new(r, cfg.seed, cfg.submitters)),
            gossip: Gossip::default(),
            backlog: FxHashMap::default(),
            redials: Vec::new(),
            events: 0,
            limit: Time::ZERO,
            fatal: None,
            rng,
            plan,
        };
        let m = sim.rec.messages();
        (m.advert_copies, m.gossip_iwants, m.adverts_delivered) = (Some(0), Some(0), Some(0));
        for draw in sim.plan.initial.clone() {
            sim.add_node(draw);
        }
        if let Some(r) = sim.reach.as_mut() {
            r.reserve_all();
        }
        sim.gossip = Gossip::new(cfg.nodes, &mut sim.rng);
        sim
    }

    /// A new node as drawn, its machine configured as the run says.
    fn add_node(&mut self, draw: NodeDraw) -> u32 {
        let idx = self.nodes.len() as u32;
        let mut cfg = self.cfg.tune(Config::new(PeerKey(idx), draw.seed));
        cfg.tasks = vec![TASK.to_string()];
        self.nodes.push(Node::new(Machine::new(cfg, self.now), draw.speed));
        self.net.add_node(self.cfg.host_of(idx));
        if let Some(r) = self.reach.as_mut() {
            r.add_node();
        }
        idx
    }

    /// Connects, submits, queues the faults, and runs until every job ended
    /// (or the time limit).
    pub(crate) fn run(mut self) -> Result<Finished, SimError> {
        self.limit = Time::ZERO + self.cfg.give_up_after(self.plan.ideal);
        if let (Some(asked), Some(r)) = (self.cfg.reach.as_ref().map(|c| c.relays), self.reach.as_ref()) {
            if r.relay_count() < asked {
                let m = format!("--relays {asked}: only {} worker(s) drawn public", r.relay_count());
                return Err(SimError::Args(m));
            }
        }
        let (n, k) = (self.nodes.len() as u32, self.k);
        for s in 0..k {
            for other in (0..n).filter(|o| *o != s && (*o >= k || *o > s)) {
                if let Some(e) = self.net.end(s, other) {
                    if !self.dial(s, other, e) {
                        continue;
                    }
                    self.net.open(e);
                    self.opened(s, other, e, self.net.link(e).epoch);
                }
                self.with_machine(s, |m, now| m.handle_peer_up(PeerKey(other), now));
                self.with_machine(other, |m, now| m.handle_peer_up(PeerKey(s), now));
            }
        }
        for i in 0..n {
            self.drain(i);
        }
        for (at, step) in self.plan.schedule(self.cfg) {
            self.queue.push(Time::ZERO + at, Ev::Step(step));
        }
        self.queue.push(Time::ZERO, Ev::Sample);

        while self.rec.unfinished() > 0 && self.fatal.is_none() {
            let Some((t, ev)) = self.queue.pop() else {
                self.rec.violation(format!("nothing left to happen at {} with jobs unfinished", self.now));
                break;
            };
            if t > self.limit {
                self.rec.gave_up(self.limit.since(Time::ZERO));
                break;
            }
            self.now = t;
            self.events += 1;
            self.dispatch(ev);
        }
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        self.sample();
        let (net, k) = (&self.net, self.k);
        let reach =
            self.reach.as_ref().map(|r| r.report(|n| (0..k).filter_map(|s| net.end(s, n)).map(|e| e.link).collect()));
        Ok(Finished { recorder: self.rec, end: self.now, events: self.events, reach })
    }

    /// Submitter `s` submits its job.
    fn submit(&mut self, s: u32) {
        let mut spec = self.cfg.job_spec(TASK, self.plan.inputs(s));
        // Timelines need each piece's completion (the report does not).
        spec.stream = self.rec.keeps_timelines();
        self.rec.submitted(s, self.now);
        if let Some(Err(e)) = self.with_machine(s, |m, now| m.submit(spec, now)) {
            self.fatal = Some(SimError::Args(format!("the job of node {s} was refused: {e}")));
        }
        self.drain(s);
    }

    /// Runs `f` on `node`'s machine (if it has one) at the current time.
    fn with_machine<R>(&mut self, node: u32, f: impl FnOnce(&mut Machine, Time) -> R) -> Option<R> {
        let now = self.now;
        self.nodes[node as usize].machine.as_mut().map(|m| f(m, now))
    }

    fn dispatch(&mut self, ev: Ev) {
        if let Some(n) = ev.node() {
            let node = &self.nodes[n as usize];
            if node.life == Life::Gone {
                return;
            }
            if node.hung {
                self.backlog.entry(n).or_default().push(ev);
                return;
            }
        }
        match ev {
            Ev::Msg { to, from, epoch, msg } => self.deliver(to, from, epoch, msg),
            Ev::Advert { to, from, advert } => {
                *self.rec.messages().adverts_delivered.get_or_insert(0) += 1;
                // A stale (reordered) advert is refused by the machine; nothing to do.
                let _ = self.with_machine(to, |m, now| m.handle_advert(PeerKey(from), &advert, now));
                self.drain(to);
            }
            Ev::Failed { node, rid } => {
                self.with_machine(node, |m, now| m.handle_failure(rid, "not connected", now));
                self.drain(node);
            }
            Ev::Exec { node, id } => {
                let now = self.now;
                if let Some((outcomes, elapsed)) = self.nodes[node as usize].finish(id, now) {
                    self.with_machine(node, |m, now| m.handle_execution(id, outcomes, elapsed, now));
                    self.drain(node);
                }
            }
            Ev::Timer { node, at } => {
                if self.nodes[node as usize].timer != Some(at) {
                    return;
                }
                self.nodes[node as usize].timer = None;
                self.with_machine(node, |m, now| {
                    if m.poll_timeout().is_some_and(|due| due <= now) {
                        m.handle_timeout(now);
                    }
                });
                self.drain(node);
            }
            Ev::Down { node, peer, epoch } => {
                if let Some(e) = self.net.end(node, peer) {
                    self.net.saw_close(e, e.side, epoch);
                }
                self.with_machine(node, |m, now| m.handle_peer_down(PeerKey(peer), now));
                self.drain(node);
            }
            Ev::Up { node, peer, epoch } => {
                let current =
                    self.net.end(node, peer).map(|e| *self.net.link(e)).is_some_and(|l| l.up && l.epoch == epoch);
                if current {
                    self.with_machine(node, |m, now| m.handle_peer_up(PeerKey(peer), now));
                    self.drain(node);
                }
            }
            Ev::Redial { a, b } => self.redial(a, b),
            Ev::Punch { a, b, epoch } => self.punch(a, b, epoch),
            Ev::Step(Step::Submit(s)) => self.submit(s),
            Ev::Step(Step::Script(i)) => self.script(i),
            Ev::Step(Step::Churn(i)) => self.churn(i),
            Ev::Join => self.join(),
            Ev::Sample => {
                self.sample();
                self.queue.push(self.now + self.rec.sample_interval(), Ev::Sample);
            }
        }
    }

    /// A request or response reaches `to`, unless cut off or from a closed connection.
    fn deliver(&mut self, to: u32, from: u32, epoch: u32, msg: Msg) {
        let Some(e) = self.net.end(to, from) else { return };
        if !self.net.reachable(from, to) || !self.net.current(e, e.side, epoch) {
            return;
        }
        match msg {
            Msg::Request(rid, request) => {
                let id = self.nodes[to as usize].receive(Inbound { from, rid, epoch });
                self.with_machine(to, |m, now| m.handle_request(PeerKey(from), InboundId(id), request, now));
            }
            Msg::Response(rid, response) => {
                self.with_machine(to, |m, now| m.handle_response(rid, response, now));
            }
        }
        self.drain(to);
    }

    /// Carries out everything `n`'s machine asked for, hands its job and
    /// peer events to the recorder, re-arms its timer, and lets a leaving
    /// node go once idle.
    fn drain(&mut self, n: u32) {
        while let Some(action) = self.with_machine(n, |m, _| m.poll_action()).flatten() {
            self.act(n, action);
        }
        while let Some(ev) = self.with_machine(n, |m, _| m.poll_event()).flatten() {
            self.rec.job_event(n, &ev, self.now);
        }
        while let Some(ev) = self.with_machine(n, |m, _| m.poll_peer_event()).flatten() {
            match ev {
                PeerEvent::Up(p) => self.rec.peer_up(n, p.0, self.now),
                PeerEvent::Down(p, why) => self.rec.peer_down(n, p.0, &why.to_string(), self.now),
                PeerEvent::Quiet(_) | PeerEvent::Heard(_) => {}
            }
        }
        let node = &mut self.nodes[n as usize];
        let Some(m) = node.machine.as_mut() else { return };
        if let Some(due) = m.poll_timeout() {
            let due = due.max(self.now);
            if node.timer.is_none_or(|armed| due < armed) {
                node.timer = Some(due);
                self.queue.push(due, Ev::Timer { node: n, at: due });
            }
        }
        if node.life == Life::Leaving && m.is_idle() {
            self.rec.left(n, self.now);
            self.close_all(n);
        }
    }

    fn act(&mut self, n: u32, action: Action) {
        match action {
            Action::Send { to, id, request } => self.send(n, to.0, id, request),
            Action::Respond { id, response, .. } => self.respond(n, id, response),
            Action::Publish(advert) => self.publish(n, advert),
            Action::Execute(e) => {
                let id = e.id;
                let end = self.nodes[n as usize].start(e, self.now);
                self.queue.push(end, Ev::Exec { node: n, id });
            }
            Action::Abort(id) => {
                if self.nodes[n as usize].abort(id, self.now) {
                    self.queue.push(self.now, Ev::Exec { node: n, id });
                }
            }
            Action::Disconnect(peer) => self.disconnect(n, peer.0),
        }
    }

    /// Hands every node's busy time and load to the recorder (gone nodes
    /// too: their busy time still counts).
    fn sample(&mut self) {
        let now = self.now;
        let nodes = self.nodes.iter().enumerate().map(|(i, n)| NodeSample {
            node: i as u32,
            busy_us: n.busy(now),
            load: n.load(),
        });
        self.rec.sample(now, nodes);
    }
}
