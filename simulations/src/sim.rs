//! The event loop: one queue of events in virtual time, each handed to
//! the node it concerns; after every input the node's [`Machine`] is
//! drained (its actions carried through the network model, its job events
//! checked and traced) and its one timer re-armed. Nothing here decides
//! placement, retries or backups: the machines do.

use crate::args::SimArgs;
use crate::dist::format_duration;
use crate::error::SimError;
use crate::jobs::JobTrack;
use crate::network::{End, Network};
use crate::node::{Inbound, Life, Node};
use crate::queue::Queue;
use crate::report::{Faults, Messages, Sample};
use crate::scenario::{Fault, Scripted};
use crate::trace::Trace;
use meshwork_protocol::wire::{Advert, Request, Response};
use meshwork_protocol::{
    Action, Config, ExecId, InboundId, JobEvent, JobSpec, Machine, PeerEvent, PeerKey, RequestId, Time,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use std::time::Duration;

/// The one task every simulated node runs.
pub(crate) const TASK: &str = "sim";
/// Delay between a churned node going and its replacement joining.
const REPLACE_AFTER: Duration = Duration::from_secs(1);
/// How often the real node redials a lost peer.
const REDIAL_EVERY: Duration = Duration::from_secs(1);

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
    /// A gossiped advert arrives.
    Advert { to: u32, from: u32, advert: Advert },
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
    /// Scripted fault number `i`.
    Script(usize),
    /// Churn event number `i` (even: crash, odd: leave).
    Churn(usize),
    /// A fresh node joins (a churn replacement).
    Join,
    /// Submitter `s` submits its job.
    Submit(u32),
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
            Ev::Redial { .. } | Ev::Script(_) | Ev::Churn(_) | Ev::Join | Ev::Submit(_) | Ev::Sample => None,
        }
    }
}

/// What a finished simulation hands to the report.
pub(crate) struct Finished {
    pub(crate) now: Time,
    pub(crate) nodes: Vec<Node>,
    pub(crate) jobs: Vec<JobTrack>,
    pub(crate) trace: Trace,
    pub(crate) messages: Messages,
    pub(crate) faults: Faults,
    pub(crate) samples: Vec<Sample>,
    pub(crate) sample_interval: Duration,
    pub(crate) events: u64,
    pub(crate) violations: Vec<String>,
}

/// The whole simulated mesh.
pub(crate) struct Sim<'a> {
    args: &'a SimArgs,
    now: Time,
    rng: ChaCha8Rng,
    queue: Queue<Ev>,
    nodes: Vec<Node>,
    /// Submitters: nodes `0..k`.
    k: u32,
    net: Network,
    /// Events of hung nodes, replayed when they resume.
    backlog: FxHashMap<u32, Vec<Ev>>,
    /// Connections waiting to be redialled (a side hung or cut off).
    redials: Vec<(u32, u32)>,
    jobs: Vec<JobTrack>,
    unfinished: usize,
    script: Vec<Scripted>,
    churn: usize,
    trace: Trace,
    messages: Messages,
    faults: Faults,
    samples: Vec<Sample>,
    sample_interval: Duration,
    events: u64,
    limit: Time,
    violations: Vec<String>,
    fatal: Option<SimError>,
}

impl<'a> Sim<'a> {
    /// Builds the mesh at t = 0: nodes, connections, jobs (not yet submitted).
    pub(crate) fn new(
        args: &'a SimArgs,
        rng: ChaCha8Rng,
        jobs: Vec<JobTrack>,
        script: Vec<Scripted>,
        trace: Trace,
    ) -> Sim<'a> {
        let k = args.submitters;
        let churn = (args.churn * args.nodes as f64).round() as usize;
        let mut sim = Sim {
            args,
            now: Time::ZERO,
            queue: Queue::new(),
            nodes: Vec::with_capacity(args.nodes as usize + churn),
            k,
            net: Network::new(args.latency, args.loss, k),
            backlog: FxHashMap::default(),
            redials: Vec::new(),
            unfinished: jobs.len(),
            jobs,
            script,
            churn,
            trace,
            messages: Messages::default(),
            faults: Faults::default(),
            samples: Vec::new(),
            sample_interval: Duration::from_millis(100),
            events: 0,
            limit: Time::ZERO,
            violations: Vec::new(),
            fatal: None,
            rng,
        };
        for _ in 0..args.nodes {
            sim.add_node();
        }
        sim
    }

    /// A new node with a sampled speed, its machine seeded from the run's RNG.
    fn add_node(&mut self) -> u32 {
        let idx = self.nodes.len() as u32;
        let speed = self.args.speeds.sample(&mut self.rng);
        let mut cfg = Config::new(PeerKey(idx), self.rng.random()).with_slots(self.args.slots);
        cfg.tasks = vec![TASK.to_string()];
        cfg.advert_interval = self.args.advert_interval;
        cfg.policy = self.args.policy;
        self.nodes.push(Node::new(Machine::new(cfg, self.now), speed, self.args.slots, self.now));
        self.net.add_node();
        idx
    }

    /// Speeds of the nodes at the start.
    pub(crate) fn speeds(&self) -> Vec<f64> {
        self.nodes.iter().map(|n| n.speed).collect()
    }

    /// Connects, submits, queues the faults, and runs until every job ended
    /// (or the time limit). Churn is spread over `ideal`, the ideal
    /// makespan, which also sets the sample interval and the time limit.
    pub(crate) fn run(mut self, ideal: Duration) -> Result<Finished, SimError> {
        self.sample_interval = Duration::from_millis(100).max(Duration::from_millis((ideal.as_millis() / 1000) as u64));
        let limit = self.args.time_limit.unwrap_or(ideal.saturating_mul(20) + Duration::from_secs(300));
        self.limit = Time::ZERO + limit;
        let (n, k) = (self.nodes.len() as u32, self.k);
        for s in 0..k {
            for other in (0..n).filter(|o| *o != s && (*o >= k || *o > s)) {
                if let Some(e) = self.net.end(s, other) {
                    self.net.link_mut(e).up = true;
                }
                self.with_machine(s, |m, now| m.handle_peer_up(PeerKey(other), now));
                self.with_machine(other, |m, now| m.handle_peer_up(PeerKey(s), now));
            }
        }
        for i in 0..n {
            self.after(i);
        }
        for s in 0..k {
            self.queue.push(Time::ZERO + self.args.stagger.saturating_mul(s), Ev::Submit(s));
        }
        for (i, s) in self.script.iter().enumerate() {
            self.queue.push(Time::ZERO + s.at, Ev::Script(i));
        }
        let mut churn_at: Vec<u64> =
            (0..self.churn).map(|_| self.rng.random_range(0..=ideal.as_micros() as u64)).collect();
        churn_at.sort_unstable();
        for (i, at) in churn_at.into_iter().enumerate() {
            self.queue.push(Time::from_micros(at), Ev::Churn(i));
        }
        self.queue.push(Time::ZERO, Ev::Sample);

        while self.unfinished > 0 && self.fatal.is_none() {
            let Some((t, ev)) = self.queue.pop() else {
                self.violations.push(format!("nothing left to happen at {} with jobs unfinished", self.now));
                break;
            };
            if t > self.limit {
                self.violations.push(format!(
                    "jobs unfinished at the time limit of {} (use --time-limit to wait longer)",
                    format_duration(self.limit.since(Time::ZERO))
                ));
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
        self.messages.total = self.messages.requests + self.messages.responses + self.messages.adverts;
        Ok(Finished {
            now: self.now,
            nodes: self.nodes,
            jobs: self.jobs,
            trace: self.trace,
            messages: self.messages,
            faults: self.faults,
            samples: self.samples,
            sample_interval: self.sample_interval,
            events: self.events,
            violations: self.violations,
        })
    }

    /// Submitter `s` submits its job.
    fn submit(&mut self, s: u32) {
        let job = &mut self.jobs[s as usize];
        let mut spec = JobSpec::new(TASK, job.inputs());
        spec.max_attempts = self.args.max_attempts;
        spec.piece_timeout = self.args.piece_timeout;
        spec.backups = !self.args.no_backups;
        spec.explain = true;
        job.started = self.now;
        match self.with_machine(s, |m, now| m.submit(spec, now)) {
            Some(Ok(id)) => self.jobs[s as usize].id = Some(id),
            Some(Err(e)) => self.fatal = Some(SimError::Args(format!("the job of node {s} was refused: {e}"))),
            None => {}
        }
        self.trace.event(self.now.as_micros(), "submitted", |l| l.num("job", s));
        self.after(s);
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
                if self.net.reachable(from, to) {
                    // A stale (reordered) advert is refused by the machine; nothing to do.
                    let _ = self.with_machine(to, |m, now| m.handle_advert(PeerKey(from), &advert, now));
                    self.after(to);
                }
            }
            Ev::Failed { node, rid } => {
                self.with_machine(node, |m, now| m.handle_failure(rid, "not connected", now));
                self.after(node);
            }
            Ev::Exec { node, id } => {
                let now = self.now;
                if let Some((outcomes, elapsed)) = self.nodes[node as usize].finish(id, now) {
                    self.with_machine(node, |m, now| m.handle_execution(id, outcomes, elapsed, now));
                    self.after(node);
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
                self.after(node);
            }
            Ev::Down { node, peer, epoch } => {
                if let Some(e) = self.net.end(node, peer) {
                    self.net.saw_close(e, e.side, epoch);
                }
                self.with_machine(node, |m, now| m.handle_peer_down(PeerKey(peer), now));
                self.after(node);
            }
            Ev::Up { node, peer, epoch } => {
                let current =
                    self.net.end(node, peer).map(|e| *self.net.link(e)).is_some_and(|l| l.up && l.epoch == epoch);
                if current {
                    self.with_machine(node, |m, now| m.handle_peer_up(PeerKey(peer), now));
                    self.after(node);
                }
            }
            Ev::Redial { a, b } => self.redial(a, b),
            Ev::Script(i) => self.script(i),
            Ev::Churn(i) => self.churn(i),
            Ev::Join => {
                self.join();
            }
            Ev::Submit(s) => self.submit(s),
            Ev::Sample => {
                self.sample();
                self.queue.push(self.now + self.sample_interval, Ev::Sample);
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
        self.after(to);
    }

    /// Carries out everything `n`'s machine asked for, follows its job
    /// events, re-arms its timer, and lets a leaving node go once idle.
    fn after(&mut self, n: u32) {
        while let Some(action) = self.with_machine(n, |m, _| m.poll_action()).flatten() {
            self.act(n, action);
        }
        while let Some(ev) = self.with_machine(n, |m, _| m.poll_event()).flatten() {
            self.job_event(n, ev);
        }
        while let Some(ev) = self.with_machine(n, |m, _| m.poll_peer_event()).flatten() {
            // Only submitters follow the mesh; workers know just the submitters.
            if n < self.k {
                let t = self.now.as_micros();
                match ev {
                    PeerEvent::Up(p) => self.trace.event(t, "peer_up", |l| l.num("node", n).num("peer", p.0)),
                    PeerEvent::Down(p, why) => self
                        .trace
                        .event(t, "peer_down", |l| l.num("node", n).num("peer", p.0).str("reason", &why.to_string())),
                }
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
            self.trace.event(self.now.as_micros(), "left", |l| l.num("node", n));
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

    fn send(&mut self, n: u32, to: u32, rid: RequestId, request: Request) {
        self.messages.requests += 1;
        let Some(e) = self.net.end(n, to) else {
            let at = self.now + self.net.latency(&mut self.rng);
            self.queue.push(at, Ev::Failed { node: n, rid });
            return;
        };
        if !self.net.reachable(n, to) {
            return;
        }
        let link = *self.net.link(e);
        if !link.up {
            let at = self.now + self.net.latency(&mut self.rng);
            self.queue.push(at, Ev::Failed { node: n, rid });
            return;
        }
        self.carry(e, n, to, link.epoch, Msg::Request(rid, request));
    }

    /// Puts `msg` on connection `e` from `from` to `to`: lost with the
    /// configured probability, else delivered after a latency and after
    /// whatever that connection already carries (FIFO, like TCP).
    fn carry(&mut self, e: End, from: u32, to: u32, epoch: u32, msg: Msg) {
        if self.net.lost(&mut self.rng) {
            self.messages.lost += 1;
            return;
        }
        let lat = self.net.latency(&mut self.rng);
        let at = self.net.fifo(e, Network::other(e), self.now, lat);
        self.queue.push(at, Ev::Msg { to, from, epoch, msg });
    }

    fn respond(&mut self, n: u32, id: InboundId, response: Response) {
        self.messages.responses += 1;
        let Some(inb) = self.nodes[n as usize].inbound.remove(&id.0) else { return };
        let Some(e) = self.net.end(n, inb.from) else { return };
        let link = *self.net.link(e);
        if !link.up || link.epoch != inb.epoch || !self.net.reachable(n, inb.from) {
            return;
        }
        self.carry(e, n, inb.from, link.epoch, Msg::Response(inb.rid, response));
    }

    /// Gossip: the advert reaches every submitter (the only nodes that
    /// place work, so the only ones whose peer tables matter).
    fn publish(&mut self, n: u32, advert: Advert) {
        self.messages.adverts += 1;
        for s in (0..self.k).filter(|s| *s != n) {
            if self.net.lost(&mut self.rng) {
                self.messages.lost += 1;
                continue;
            }
            if !self.net.reachable(n, s) {
                continue;
            }
            let at = self.now + self.net.latency(&mut self.rng) + self.args.advert_delay;
            self.queue.push(at, Ev::Advert { to: s, from: n, advert: advert.clone() });
        }
    }

    /// `n` judged `peer` dead: both ends see the connection close after a
    /// latency, and `n` redials it after two.
    fn disconnect(&mut self, n: u32, peer: u32) {
        self.faults.marked_down += 1;
        self.trace.event(self.now.as_micros(), "down", |l| l.num("node", n).num("peer", peer));
        let Some(e) = self.net.end(n, peer) else { return };
        let lat = self.net.latency(&mut self.rng);
        let link = *self.net.link(e);
        if link.up {
            let epoch = link.epoch + 1;
            let l = self.net.link_mut(e);
            l.up = false;
            l.epoch = epoch;
            let mine = self.net.fifo(e, e.side, self.now, lat);
            self.queue.push(mine, Ev::Down { node: n, peer, epoch });
            let theirs = self.net.fifo(e, Network::other(e), self.now, lat);
            self.queue.push(theirs, Ev::Down { node: peer, peer: n, epoch });
        } else if !self.net.current(e, e.side, link.epoch) {
            // Closed by the other end's death while we were cut off: now we know.
            let epoch = link.epoch;
            let mine = self.net.fifo(e, e.side, self.now, lat);
            self.queue.push(mine, Ev::Down { node: n, peer, epoch });
        }
        self.queue.push(self.now + lat.saturating_mul(2), Ev::Redial { a: n, b: peer });
    }

    /// Reconnects `a` and `b` if both are alive and can reach each other;
    /// otherwise waits for a resume or a heal.
    fn redial(&mut self, a: u32, b: u32) {
        let Some(e) = self.net.end(a, b) else { return };
        if self.net.link(e).up {
            return;
        }
        let (na, nb) = (&self.nodes[a as usize], &self.nodes[b as usize]);
        if na.life == Life::Gone || nb.life == Life::Gone {
            return;
        }
        if na.hung || nb.hung || !self.net.reachable(a, b) {
            if !self.net.link(e).redial {
                self.net.link_mut(e).redial = true;
                self.redials.push((a, b));
            }
            return;
        }
        let link = self.net.link_mut(e);
        link.up = true;
        link.redial = false;
        let epoch = link.epoch;
        let lat = self.net.latency(&mut self.rng);
        let at_a = self.net.fifo(e, e.side, self.now, lat);
        self.queue.push(at_a, Ev::Up { node: a, peer: b, epoch });
        let at_b = self.net.fifo(e, Network::other(e), self.now, lat);
        self.queue.push(at_b, Ev::Up { node: b, peer: a, epoch });
    }

    /// Tries the waiting redials again, each at the node's next redial tick.
    fn retry_redials(&mut self) {
        for (a, b) in std::mem::take(&mut self.redials) {
            if let Some(e) = self.net.end(a, b) {
                self.net.link_mut(e).redial = false;
            }
            let wait = Duration::from_micros(self.rng.random_range(0..REDIAL_EVERY.as_micros() as u64));
            self.queue.push(self.now + wait, Ev::Redial { a, b });
        }
    }

    /// Closes every connection of `n`, which is gone (crashed or left):
    /// its peers see the close after a latency, unless cut off from it.
    fn close_all(&mut self, n: u32) {
        self.nodes[n as usize].kill(self.now);
        self.backlog.remove(&n);
        let peers: Vec<u32> =
            if n < self.k { (0..self.nodes.len() as u32).filter(|p| *p != n).collect() } else { (0..self.k).collect() };
        for p in peers {
            let Some(e) = self.net.end(n, p) else { continue };
            let link = self.net.link_mut(e);
            link.redial = false;
            if !link.up {
                continue;
            }
            link.up = false;
            link.epoch += 1;
            let epoch = link.epoch;
            if self.net.reachable(n, p) {
                let lat = self.net.latency(&mut self.rng);
                let at = self.net.fifo(e, Network::other(e), self.now, lat);
                self.queue.push(at, Ev::Down { node: p, peer: n, epoch });
            }
        }
    }

    fn crash(&mut self, n: u32) {
        if self.nodes[n as usize].life == Life::Gone {
            return;
        }
        self.faults.crashes += 1;
        self.trace.event(self.now.as_micros(), "crash", |l| l.num("node", n));
        self.close_all(n);
    }

    /// Graceful leave: shutdown now, go once what was accepted is answered.
    fn leave(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        if node.life != Life::Up || node.hung {
            return;
        }
        node.life = Life::Leaving;
        self.faults.leaves += 1;
        self.trace.event(self.now.as_micros(), "leave", |l| l.num("node", n));
        self.with_machine(n, |m, now| m.shutdown(now));
        self.after(n);
    }

    /// A fresh node joins and connects to every submitter.
    fn join(&mut self) -> u32 {
        let n = self.add_node();
        self.faults.joins += 1;
        self.trace.event(self.now.as_micros(), "join", |l| l.num("node", n));
        for s in 0..self.k {
            self.redial(n, s);
        }
        self.after(n);
        n
    }

    fn hang(&mut self, n: u32, hung: bool) {
        let node = &mut self.nodes[n as usize];
        if node.life == Life::Gone || node.hung == hung {
            return;
        }
        node.hung = hung;
        self.trace.event(self.now.as_micros(), if hung { "hang" } else { "resume" }, |l| l.num("node", n));
        if hung {
            self.faults.hangs += 1;
            return;
        }
        for ev in self.backlog.remove(&n).unwrap_or_default() {
            self.queue.push(self.now, ev);
        }
        self.retry_redials();
    }

    fn script(&mut self, i: usize) {
        let Scripted { fault, line, .. } = self.script[i].clone();
        let exists = |sim: &mut Sim, nodes: &[u32]| match nodes.iter().find(|n| **n as usize >= sim.nodes.len()) {
            Some(&node) => {
                sim.fatal = Some(SimError::NoSuchNode { line, node, at: sim.now, nodes: sim.nodes.len() });
                false
            }
            None => true,
        };
        match fault {
            Fault::Crash(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.crash(n)),
            Fault::Hang(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.hang(n, true)),
            Fault::Resume(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.hang(n, false)),
            Fault::Leave(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.leave(n)),
            Fault::Join(count) => {
                for _ in 0..count {
                    self.join();
                }
            }
            Fault::Partition(groups) => {
                self.faults.partitions += 1;
                let sizes: Vec<u32> = groups.iter().map(|g| g.len() as u32).collect();
                self.trace.event(self.now.as_micros(), "partition", |l| l.list("groups", &sizes));
                self.net.partition(&groups, self.nodes.len());
            }
            Fault::Heal => {
                if self.net.partitioned() {
                    self.trace.event(self.now.as_micros(), "heal", |l| l);
                    self.net.heal();
                    self.retry_redials();
                }
            }
            Fault::Crash(_) | Fault::Hang(_) | Fault::Resume(_) | Fault::Leave(_) => {}
        }
    }

    /// Churn event `i`: a random running non-submitter crashes (even `i`)
    /// or leaves (odd `i`); a fresh node joins a second later.
    fn churn(&mut self, i: usize) {
        let eligible = |n: &Node| n.life == Life::Up && !n.hung;
        let len = self.nodes.len() as u32;
        if len <= self.k {
            return;
        }
        let mut victim = None;
        for _ in 0..64 {
            let n = self.rng.random_range(self.k..len);
            if eligible(&self.nodes[n as usize]) {
                victim = Some(n);
                break;
            }
        }
        let victim = victim.or_else(|| (self.k..len).find(|n| eligible(&self.nodes[*n as usize])));
        let Some(v) = victim else { return };
        if i.is_multiple_of(2) {
            self.crash(v);
        } else {
            self.leave(v);
        }
        self.queue.push(self.now + REPLACE_AFTER, Ev::Join);
    }

    /// Samples utilization and load of the nodes present.
    fn sample(&mut self) {
        let now = self.now;
        let dt = match self.samples.last() {
            Some(s) => now.as_micros() as f64 - s.t_s * 1e6,
            None => 0.0,
        };
        let mut utils = Vec::with_capacity(self.nodes.len());
        let (mut load_max, mut load_sum, mut present) = (0u32, 0u64, 0u64);
        for node in self.nodes.iter_mut().filter(|n| n.life != Life::Gone) {
            let busy = node.busy(now);
            if dt > 0.0 {
                utils.push(((busy - node.sampled_busy) as f64 / (dt * node.slots.max(1) as f64)).min(1.0));
            }
            node.sampled_busy = busy;
            let load = node.load();
            load_max = load_max.max(load);
            load_sum += load as u64;
            present += 1;
        }
        utils.sort_by(f64::total_cmp);
        let pick = |q: f64| utils.get(((utils.len().saturating_sub(1)) as f64 * q).round() as usize).copied();
        let done = self.jobs.iter().map(|j| j.done as u64).sum();
        self.samples.push(Sample {
            t_s: now.as_micros() as f64 / 1e6,
            util_min: pick(0.0).unwrap_or(0.0),
            util_median: pick(0.5).unwrap_or(0.0),
            util_max: pick(1.0).unwrap_or(0.0),
            util_mean: if utils.is_empty() { 0.0 } else { utils.iter().sum::<f64>() / utils.len() as f64 },
            load_max,
            load_mean: if present == 0 { 0.0 } else { load_sum as f64 / present as f64 },
            done,
        });
    }

    /// Follows a job event of submitter `n`: invariants, then the trace.
    fn job_event(&mut self, n: u32, ev: JobEvent) {
        let (now, t) = (self.now, self.now.as_micros());
        let Some(job) = self.jobs.get_mut(n as usize) else { return };
        job.on_event(&ev, now, &mut self.violations);
        match &ev {
            JobEvent::Placed { peer, pieces, choice, backup, .. } => {
                let ev = if *backup { "backup" } else { "placed" };
                self.trace.event(t, ev, |l| {
                    l.num("job", n).num("peer", peer.0).list("pieces", pieces).num("load", choice.chosen.load)
                });
            }
            JobEvent::Retried { piece, peer, cause, .. } => {
                self.trace.event(t, "retried", |l| {
                    l.num("job", n).num("piece", piece).num("peer", peer.0).str("cause", cause)
                });
            }
            JobEvent::Refused { peer, reason, .. } => {
                self.trace
                    .event(t, "refused", |l| l.num("job", n).num("peer", peer.0).str("reason", &reason.to_string()));
            }
            JobEvent::Unplaceable { piece, why, .. } => {
                self.trace
                    .event(t, "unplaceable", |l| l.num("job", n).num("piece", piece).str("why", &why.to_string()));
            }
            JobEvent::Progress { done, .. } => self.trace.event(t, "done", |l| l.num("job", n).num("pieces", done)),
            JobEvent::Finished { result, .. } => {
                self.unfinished -= 1;
                self.trace.event(t, "finished", |l| match result {
                    Ok(out) => l.num("job", n).str("outcome", "ok").num("pieces", out.outputs.len()),
                    Err(e) => l.num("job", n).str("outcome", "failed").str("error", &e.to_string()),
                });
            }
        }
    }
}
