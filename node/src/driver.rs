//! The driver: the one task that owns the libp2p [`Swarm`] and the
//! [`Machine`]. It turns swarm events, client commands, finished executions
//! and the machine's timer into machine inputs, and the machine's actions
//! into swarm calls. It decides nothing about placement, retries or merging.

use crate::client::{Command, MeshEvent, NodeStats, PeerInfo};
use crate::executor::{ExecEvent, Executor};
use crate::net::behaviour::{advert_topic, Behaviour, BehaviourEvent, IDENTIFY_PROTOCOL};
use crate::net::dialer::{self, Dialer};
use crate::net::members;
use crate::net::peer_map::{PeerMap, PeerNames};
use crate::net::rpc::{Budget, Inbound, OutboundId, Rpc, RpcEvent};
use crate::node::{accept_policy, NodeConfig};
use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, kad, mdns, Multiaddr, PeerId, StreamProtocol, Swarm};
use meshwork_protocol::wire::{decode_advert, to_cbor, AdvertError, Load, Outcome, Request, Response, KAD_PROTOCOL};
use meshwork_protocol::{Action, Config, InboundId, JobEvent, JobId, Machine, PeerEvent, RequestId, Time};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// How often the redial schedule is looked at.
const REDIAL_TICK: Duration = Duration::from_millis(250);
/// After announcing that it leaves, a node waits this long before closing
/// its connections, so the announcement is delivered and nobody redials it.
const LEAVE_FLUSH: Duration = Duration::from_millis(150);

pub(crate) struct Driver {
    swarm: Swarm<Behaviour>,
    machine: Machine,
    epoch: Instant,
    peers: PeerMap,
    commands: mpsc::Receiver<Command>,
    executor: Executor,
    finished: mpsc::UnboundedReceiver<ExecEvent>,
    rpc: Rpc,
    rpc_events: mpsc::UnboundedReceiver<RpcEvent>,
    outbound: HashMap<OutboundId, RequestId>,
    /// Requests of the driver's own (a client's Status, a member list).
    own: HashMap<OutboundId, Own>,
    inbound: HashMap<InboundId, Inbound>,
    next_inbound: u64,
    jobs: HashMap<JobId, mpsc::UnboundedSender<JobEvent>>,
    dialer: Dialer,
    listen: Vec<Multiaddr>,
    max_message: usize,
    stats: NodeStats,
    grace: Duration,
    /// Shutting down: the grace deadline, the leave-flush deadline, and who waits.
    stopping: Option<(Instant, Instant, Vec<oneshot::Sender<()>>)>,
    mesh_events: broadcast::Sender<MeshEvent>,
}

impl Driver {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        cfg: &NodeConfig,
        mut protocol: Config,
        commands: mpsc::Receiver<Command>,
    ) -> anyhow::Result<Driver> {
        let mut peers = PeerMap::new(*swarm.local_peer_id());
        let allowed = cfg.accept_from.as_ref().map(|ids| ids.iter().map(|id| peers.key(*id)).collect());
        protocol.accept_from = accept_policy(allowed);
        let epoch = Instant::now();
        let machine = Machine::new(protocol, Time::ZERO);
        let (executor, finished) = Executor::new(cfg.registry.clone());
        let control = swarm.behaviour().rpc.new_control();
        let budget = Budget::new(cfg.behaviour.inbound_budget);
        let (rpc, rpc_events) = Rpc::start(control, cfg.behaviour.max_message, budget)?;
        Ok(Driver {
            swarm,
            machine,
            epoch,
            peers,
            commands,
            executor,
            finished,
            rpc,
            rpc_events,
            outbound: HashMap::new(),
            own: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: 1,
            jobs: HashMap::new(),
            dialer: Dialer::default(),
            listen: Vec::new(),
            max_message: cfg.behaviour.max_message,
            stats: NodeStats::default(),
            grace: cfg.shutdown_grace,
            stopping: None,
            mesh_events: broadcast::channel(1024).0,
        })
    }

    pub(crate) fn names(&self) -> PeerNames {
        self.peers.names()
    }

    /// Where peer up/down events go.
    pub(crate) fn mesh_events(&self) -> broadcast::Sender<MeshEvent> {
        self.mesh_events.clone()
    }

    /// Dials a known member of the mesh now and again until connected.
    pub(crate) fn join(&mut self, addr: Multiaddr) {
        self.dial_addr(&addr);
        self.dialer.join(addr, Instant::now());
    }

    fn now(&self) -> Time {
        Time::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Runs until shut down. `ready` gets the listen addresses once every
    /// listener reported one (or the error that stopped it).
    pub(crate) async fn run(
        mut self,
        mut waiting: Vec<ListenerId>,
        ready: oneshot::Sender<anyhow::Result<Vec<Multiaddr>>>,
    ) {
        let mut ready = Some(ready);
        let mut redial = tokio::time::interval(REDIAL_TICK);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            self.drain();
            if self.stop_if_done() {
                break;
            }
            if let Some(at) = self.machine.poll_timeout() {
                timer.as_mut().reset((self.epoch + Duration::from_micros(at.as_micros())).into());
            } else {
                timer.as_mut().reset((Instant::now() + Duration::from_secs(3600)).into());
            }
            tokio::select! {
                event = futures::StreamExt::select_next_some(&mut self.swarm) => {
                    if let SwarmEvent::NewListenAddr { listener_id, .. } | SwarmEvent::ListenerClosed { listener_id, .. } = &event {
                        waiting.retain(|l| l != listener_id);
                    }
                    if let SwarmEvent::ListenerError { error, .. } = &event {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(anyhow::anyhow!("listener failed: {error}")));
                        }
                    }
                    self.on_swarm(event);
                    if waiting.is_empty() {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(self.listen.clone()));
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => self.begin_shutdown(None),
                },
                Some(event) = self.rpc_events.recv() => {
                    let now = self.now();
                    self.on_rpc(event, now);
                }
                Some(event) = self.finished.recv() => {
                    let now = self.now();
                    match event {
                        ExecEvent::Progress { id, outcomes } => self.machine.handle_progress(id, outcomes, now),
                        ExecEvent::Finished { id, outcomes, elapsed } => {
                            self.executor.ended(id, elapsed);
                            self.machine.handle_execution(id, outcomes, elapsed, now);
                        }
                    }
                }
                _ = &mut timer => {
                    let now = self.now();
                    self.machine.handle_timeout(now);
                }
                _ = redial.tick() => self.redial(),
            }
        }
    }

    /// Carries out every action of the machine and forwards its job events.
    fn drain(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Send { to, id, request } => match self.peers.id(to) {
                    Some(peer) => {
                        let oid = self.rpc.request(peer, request);
                        self.outbound.insert(oid, id);
                        self.stats.requests_sent += 1;
                    }
                    None => self.machine.handle_failure(id, "unknown peer", self.now()),
                },
                Action::Respond { id, response, .. } => {
                    if let Some(to) = self.inbound.remove(&id) {
                        // False: the requester's stream is gone; nothing to tell it.
                        if self.rpc.answer(to, fit(response, self.max_message)) {
                            self.stats.responses_sent += 1;
                        }
                    }
                }
                Action::Publish(advert) => {
                    let topic = advert_topic();
                    match self.swarm.behaviour_mut().load_gossip.publish(topic, to_cbor(&advert)) {
                        Ok(_) => self.stats.adverts_published += 1,
                        Err(e) => tracing::trace!(error = %e, "advert not published"),
                    }
                }
                Action::Execute(e) => self.executor.spawn(e),
                Action::Abort(id) => self.executor.abort(id),
                Action::Disconnect(key) => {
                    // Only the old advert-expiry rule asks for this.
                    if let Some(peer) = self.peers.id(key) {
                        tracing::info!(%peer, "adverts stopped; closing its connections");
                        let _ = self.swarm.disconnect_peer_id(peer);
                        self.dialer.lost(peer, Instant::now());
                    }
                }
            }
        }
        while let Some(event) = self.machine.poll_peer_event() {
            let mesh_event = match event {
                PeerEvent::Up(key) => self.peers.id(key).map(MeshEvent::PeerUp),
                PeerEvent::Down(key, reason) => {
                    self.stats.marked_down += 1;
                    if let Some(peer) = self.peers.id(key) {
                        tracing::info!(%peer, %reason, "peer down");
                    }
                    self.peers.id(key).map(|p| MeshEvent::PeerDown(p, reason.to_string()))
                }
            };
            if let Some(e) = mesh_event {
                // Err: nobody is listening, which is fine.
                let _ = self.mesh_events.send(e);
            }
        }
        while let Some(event) = self.machine.poll_event() {
            let job = job_of(&event);
            let finished = matches!(event, JobEvent::Finished { .. });
            if let Some(tx) = self.jobs.get(&job) {
                let _ = tx.send(event);
            }
            if finished {
                self.jobs.remove(&job);
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Submit { spec, events, reply } => {
                if self.stopping.is_some() {
                    let _ = reply.send(Err(None));
                    return;
                }
                let result = self.machine.submit(spec, now).map_err(Some);
                if let Ok(id) = result {
                    self.jobs.insert(id, events);
                }
                let _ = reply.send(result);
            }
            Command::Cancel(job) => self.machine.cancel(job, now),
            Command::Status(peer, reply) => {
                let oid = self.rpc.request(peer, Request::Status);
                self.own.insert(oid, Own::Status(reply));
            }
            Command::Load(reply) => {
                let _ = reply.send(self.machine.load());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            Command::JoinFailures(reply) => {
                let _ = reply.send(self.dialer.join_failures());
            }
            Command::Stats(reply) => {
                let stats = NodeStats {
                    buffered_bytes: self.rpc.buffered() as u64,
                    redialling: self.dialer.redialling() as u64,
                    connections: self.swarm.network_info().connection_counters().num_established() as u64,
                    ..self.stats.clone()
                };
                let _ = reply.send(stats);
            }
            Command::Shutdown(reply) => self.begin_shutdown(Some(reply)),
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        self.machine
            .peers(self.now())
            .into_iter()
            .filter_map(|view| {
                let peer = self.peers.id(view.peer)?;
                Some(PeerInfo::new(peer, self.dialer.addrs(&peer), view))
            })
            .collect()
    }

    /// Stops taking work and tells the mesh; the loop ends once accepted
    /// pieces finished or the grace period passed.
    fn begin_shutdown(&mut self, reply: Option<oneshot::Sender<()>>) {
        let now = self.now();
        if self.stopping.is_none() {
            tracing::debug!("shutting down: no new work, finishing accepted pieces");
            self.machine.shutdown(now);
            let jobs: Vec<JobId> = self.jobs.keys().copied().collect();
            for job in jobs {
                self.machine.cancel(job, now);
            }
            // Accepted pieces may run until the grace period ends; an idle
            // node still waits a moment so its last advert (no tasks: it
            // leaves) reaches its peers before the connections close.
            self.stopping = Some((Instant::now() + self.grace, Instant::now() + LEAVE_FLUSH, Vec::new()));
        }
        if let (Some((_, _, waiters)), Some(r)) = (&mut self.stopping, reply) {
            waiters.push(r);
        }
    }

    fn stop_if_done(&mut self) -> bool {
        let Some((deadline, flushed, _)) = &self.stopping else { return false };
        let now = Instant::now();
        if now < *flushed || (!self.machine.is_idle() && now < *deadline) {
            return false;
        }
        let _ = self.swarm.behaviour_mut().load_gossip.unsubscribe(&advert_topic());
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        if let Some((_, _, waiters)) = self.stopping.take() {
            for w in waiters {
                let _ = w.send(());
            }
        }
        true
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = self.now();
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let me = *self.swarm.local_peer_id();
                self.listen.push(address.with_p2p(me).unwrap_or_else(|a| a));
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                    self.dialer.remember(peer_id, address.clone());
                    // Joined through it: ask it who else is there.
                    if num_established.get() == 1 && self.dialer.is_join(&peer_id, address) {
                        tracing::debug!(peer = %peer_id, "joined: asking for the members");
                        let oid = self.rpc.request(peer_id, Request::Members);
                        self.own.insert(oid, Own::Members);
                    }
                }
                self.dialer.connected(&peer_id);
                // Every new connection, not only the first: it proves the
                // peer alive even if an older one has gone quiet.
                let key = self.peers.key(peer_id);
                self.machine.handle_peer_up(key, now);
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                tracing::debug!(peer = %peer_id, cause = ?cause, "disconnected");
                let key = self.peers.key(peer_id);
                // A worker that left announced it (no tasks); one that still
                // advertised tasks dropped out and is worth having back.
                let worker = self.machine.peer(key, now).is_some_and(|v| !v.tasks.is_empty());
                self.machine.handle_peer_down(key, now);
                if self.stopping.is_none() && worker {
                    self.dialer.lost(peer_id, Instant::now());
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
                self.dialer.dial_failed(peer_id, &error);
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour(event, now),
            _ => {}
        }
    }

    fn on_behaviour(&mut self, event: BehaviourEvent, now: Time) {
        match event {
            BehaviourEvent::LoadGossip(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                let Some(source) = message.source else { return };
                let acceptance = match decode_advert(&message.data) {
                    Ok(advert) => {
                        let key = self.peers.key(source);
                        match self.machine.handle_advert(key, &advert, now) {
                            Ok(()) => MessageAcceptance::Accept,
                            Err(AdvertError::Stale { .. }) => MessageAcceptance::Ignore,
                            Err(e) => self.invalid_advert(source, e),
                        }
                    }
                    Err(e) => self.invalid_advert(source, e),
                };
                if acceptance == MessageAcceptance::Accept
                    && !self.swarm.is_connected(&source)
                    && source != *self.swarm.local_peer_id()
                {
                    // Its advert proves it alive: connect directly (with backoff).
                    self.dialer.lost(source, Instant::now());
                }
                let _ = self.swarm.behaviour_mut().load_gossip.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != IDENTIFY_PROTOCOL {
                    tracing::debug!(peer = %peer_id, version = info.protocol_version, "not a meshwork peer");
                    return;
                }
                let kad = StreamProtocol::new(KAD_PROTOCOL);
                let serves_kad = info.protocols.contains(&kad);
                for addr in info.listen_addrs {
                    if serves_kad {
                        self.swarm.behaviour_mut().discovery.add_address(&peer_id, addr.clone());
                    }
                    self.dialer.remember(peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.dialer.remember(peer, addr);
                    if !self.swarm.is_connected(&peer) {
                        self.dial_peer(peer);
                    }
                }
            }
            BehaviourEvent::Discovery(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(Ok(found)),
                ..
            }) => {
                for info in found.peers {
                    for addr in info.addrs {
                        self.dialer.remember(info.peer_id, addr);
                    }
                    if info.peer_id != *self.swarm.local_peer_id() && !self.swarm.is_connected(&info.peer_id) {
                        self.dial_peer(info.peer_id);
                    }
                }
            }
            BehaviourEvent::Discovery(kad::Event::RoutingUpdated { peer, addresses, .. }) => {
                for addr in addresses.iter() {
                    self.dialer.remember(peer, addr.clone());
                }
                if !self.swarm.is_connected(&peer) {
                    self.dial_peer(peer);
                }
            }
            _ => {}
        }
    }

    fn invalid_advert(&mut self, source: PeerId, error: AdvertError) -> MessageAcceptance {
        tracing::warn!(peer = %source, %error, "invalid advert dropped");
        self.stats.invalid_adverts += 1;
        MessageAcceptance::Reject
    }

    fn on_rpc(&mut self, event: RpcEvent, now: Time) {
        if let RpcEvent::OutboundClosed { peer, error, .. } = &event {
            tracing::debug!(%peer, %error, "our RPC stream ended");
        }
        for lost in self.rpc.on_event(&event) {
            let error = match &event {
                RpcEvent::OutboundClosed { error, .. } => error.clone(),
                _ => "stream closed".to_string(),
            };
            self.lost(lost, &error, now);
        }
        match event {
            RpcEvent::Request { peer, from, request: Request::Members } => {
                let live = self.machine.peers(now).into_iter().filter(|v| v.connected && v.down.is_none());
                let known = live.filter_map(|v| self.peers.id(v.peer)).map(|p| (p, self.dialer.addrs(&p)));
                let list = members::list(known, peer);
                self.rpc.answer(from, Response::Members(list));
            }
            RpcEvent::Request { peer, from, request } => {
                let id = InboundId(self.next_inbound);
                self.next_inbound += 1;
                self.inbound.insert(id, from);
                let key = self.peers.key(peer);
                self.machine.handle_request(key, id, request, now);
            }
            RpcEvent::Response { id, response } => {
                if !self.rpc.answered(id) {
                    self.stats.unsolicited_responses += 1;
                    return;
                }
                match (self.own.remove(&id), response) {
                    (Some(Own::Status(reply)), Response::Status(advert)) => drop(reply.send(Ok(advert.load()))),
                    (Some(Own::Status(reply)), other) => {
                        drop(reply.send(Err(format!("answered Status with {other:?}"))))
                    }
                    (Some(Own::Members), Response::Members(list)) => {
                        tracing::debug!(members = list.len(), "members listed");
                        self.meet(members::read(list))
                    }
                    (Some(Own::Members), _) => {}
                    (None, response) => {
                        if let Some(id) = self.outbound.remove(&id) {
                            self.machine.handle_response(id, response, now);
                        }
                    }
                }
            }
            RpcEvent::Refused { peer, error } => {
                tracing::warn!(%peer, %error, "refused an RPC frame; stream closed");
                self.stats.malformed_requests += 1;
            }
            RpcEvent::Opened { .. } | RpcEvent::InboundClosed { .. } | RpcEvent::OutboundClosed { .. } => {}
        }
    }

    /// Our request `id` will never be answered: its stream ended.
    fn lost(&mut self, id: OutboundId, error: &str, now: Time) {
        match self.own.remove(&id) {
            Some(Own::Status(reply)) => drop(reply.send(Err(error.to_string()))),
            Some(Own::Members) => {}
            None => {
                if let Some(id) = self.outbound.remove(&id) {
                    self.machine.handle_failure(id, error, now);
                }
            }
        }
    }

    /// Remembers and dials the members a joined node listed.
    fn meet(&mut self, members: Vec<(PeerId, Vec<Multiaddr>)>) {
        let me = *self.swarm.local_peer_id();
        for (peer, addrs) in members.into_iter().filter(|(p, _)| *p != me) {
            for addr in addrs {
                self.dialer.remember(peer, addr);
            }
            if !self.swarm.is_connected(&peer) {
                self.dial_peer(peer);
            }
        }
    }

    fn dial_peer(&mut self, peer: PeerId) {
        let addrs = self.dialer.addrs(&peer);
        // A fresh port: two nodes that discover each other at the same
        // instant (mDNS) would otherwise both dial from their listen ports,
        // a TCP simultaneous open on which both handshakes fail.
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .allocate_new_port()
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::trace!(%peer, error = %e, "not dialled");
        }
    }

    fn dial_addr(&mut self, addr: &Multiaddr) {
        let opts = DialOpts::unknown_peer_id().address(addr.clone()).allocate_new_port().build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::warn!(%addr, error = %e, "cannot dial");
        }
    }

    /// Dials what the redial schedule says is due.
    fn redial(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let swarm = &self.swarm;
        let joined = |addr: &Multiaddr| match dialer::peer_of(addr) {
            Some(peer) => swarm.is_connected(&peer),
            // Unknown without a /p2p/ part: joined once any peer is connected.
            None => swarm.connected_peers().next().is_some(),
        };
        let due = self.dialer.due(Instant::now(), |p| swarm.is_connected(p), joined);
        for (peer, addrs) in due.peers {
            if addrs.is_empty() {
                // Known only from gossip: ask the DHT where it is; the
                // answer updates the routing table, which dials it.
                self.swarm.behaviour_mut().discovery.get_closest_peers(peer);
            } else {
                self.dial_peer(peer);
            }
        }
        for addr in due.joins {
            self.dial_addr(&addr);
        }
    }
}

/// A request the driver sent on its own account, not the machine's.
#[derive(Debug)]
enum Own {
    /// A client asked a peer's load.
    Status(oneshot::Sender<Result<Load, String>>),
    /// Who else is in the mesh, asked of a node we joined through.
    Members,
}

fn job_of(event: &JobEvent) -> JobId {
    match event {
        JobEvent::Placed { job, .. }
        | JobEvent::Unplaceable { job, .. }
        | JobEvent::Progress { job, .. }
        | JobEvent::Retried { job, .. }
        | JobEvent::Refused { job, .. }
        | JobEvent::Finished { job, .. } => *job,
    }
}

/// Replaces outputs that would push a response over the message limit by a
/// failure that says so, so the submitter gets a clear error instead of a
/// broken stream.
fn fit(response: Response, limit: usize) -> Response {
    let Response::Results(mut results) = response else { return response };
    let size: usize = results.pieces.iter().map(|p| 32 + output_len(&p.outcome)).sum();
    if size + 64 > limit {
        for p in &mut results.pieces {
            let len = output_len(&p.outcome);
            if matches!(p.outcome, Outcome::Done { .. }) {
                p.outcome = Outcome::Failed(format!(
                    "output of {len} bytes (batch {size}) exceeds the message limit of {limit} bytes"
                ));
            }
        }
    }
    Response::Results(results)
}

fn output_len(o: &Outcome) -> usize {
    match o {
        Outcome::Done { output, .. } => output.len(),
        Outcome::Failed(s) => s.len(),
        Outcome::Cancelled => 0,
    }
}
