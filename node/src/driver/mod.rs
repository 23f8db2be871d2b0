//! The driver: the one task that owns the libp2p [`Swarm`] and the
//! [`Machine`], a thin loop like quinn's endpoint driver. It turns swarm
//! events, client commands, finished executions and the machine's timer
//! into machine inputs, and carries the machine's outputs to the RPC
//! streams, gossip, the executor and the clients. It decides nothing about
//! placement, retries, merging or what to answer: the machine does. Where
//! peers are and when to dial them belongs to [`Reach`]; how the node stops
//! belongs to [`Shutdown`].

mod shutdown;

use crate::client::{Command, MeshEvent, NodeStats, PeerInfo};
use crate::executor::{ExecEvent, Executor};
use crate::metrics::request_kind;
use crate::net::behaviour::{advert_topic, Behaviour, BehaviourEvent};
use crate::net::nat::Nat;
use crate::net::peer_map::{PeerMap, PeerNames};
use crate::net::reach::{Reach, REDIAL_TICK};
use crate::net::rpc::{Budget, FrameError, Inbound, OutboundId, Rpc, RpcEvent};
use crate::wasm::service::ModuleService;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::identify;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use meshwork_protocol::task::Registry;
use meshwork_protocol::wire::{decode_advert, to_cbor, AdvertError, Load, Request};
use meshwork_protocol::{
    Action, Config, InboundId, JobEvent, JobId, Machine, PeerEvent, RequestId, StatusAnswer, Time,
};
use shutdown::{Shutdown, Stop};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Everything the driver runs with, settled before it starts.
#[derive(Debug)]
pub(crate) struct DriverConfig {
    /// The machine's configuration, complete (seed, tasks, accepted
    /// submitters as keys of `peers`, message limit).
    pub(crate) machine: Config,
    /// Peer ids ↔ keys, with every key `machine` names already assigned.
    pub(crate) peers: PeerMap,
    /// What the executor runs.
    pub(crate) registry: Registry,
    /// Bytes inbound RPC frames may hold at once.
    pub(crate) inbound_budget: usize,
    /// How long a shutting-down node lets accepted pieces finish.
    pub(crate) shutdown_grace: Duration,
    /// How long the loop polls without sleeping after an RPC message.
    pub(crate) busy_poll: Duration,
    /// Known members of the mesh to join.
    pub(crate) join: Vec<Multiaddr>,
}

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
    /// The machine's requests in flight, by the RPC's number for them,
    /// with their kind and when they were sent (for the round-trip metric).
    outbound: HashMap<OutboundId, (RequestId, &'static str, Instant)>,
    /// Requests the machine is to answer, by the number it knows them by.
    inbound: HashMap<InboundId, Inbound>,
    next_inbound: u64,
    /// Our jobs' event channels, with their task (a metric label).
    jobs: HashMap<JobId, (String, mpsc::UnboundedSender<JobEvent>)>,
    /// Clients waiting for a peer's Status, by the machine's request.
    statuses: HashMap<RequestId, oneshot::Sender<Result<Load, String>>>,
    reach: Reach,
    /// Reachability, relays and connection paths.
    nat: Nat,
    /// wasm modules offered and fetched.
    modules: ModuleService,
    listen: Vec<Multiaddr>,
    stats: NodeStats,
    grace: Duration,
    stopping: Option<Shutdown>,
    mesh_events: broadcast::Sender<MeshEvent>,
    /// Until when the loop polls for I/O instead of sleeping: `busy_poll`
    /// after the last RPC message sent or received.
    busy_until: Instant,
    busy_poll: Duration,
}

impl Driver {
    /// A driver for `swarm` (listening already), dialling the join
    /// addresses of `cfg` at once.
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        cfg: DriverConfig,
        commands: mpsc::Receiver<Command>,
    ) -> Result<Driver, libp2p_stream::AlreadyRegistered> {
        let epoch = Instant::now();
        let me = *swarm.local_peer_id();
        let control = swarm.behaviour().rpc.new_control();
        let budget = Budget::new(cfg.inbound_budget);
        let (rpc, rpc_events) = Rpc::start(control, cfg.machine.max_message, budget)?;
        let nat = Nat::new(cfg.machine.slots > 0);
        let machine = Machine::new(cfg.machine, Time::ZERO);
        let (executor, finished) = Executor::new(cfg.registry);
        let mut driver = Driver {
            swarm,
            machine,
            epoch,
            peers: cfg.peers,
            commands,
            executor,
            finished,
            rpc,
            rpc_events,
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: 1,
            jobs: HashMap::new(),
            statuses: HashMap::new(),
            reach: Reach::default(),
            nat,
            modules: ModuleService::new(me),
            listen: Vec::new(),
            stats: NodeStats::default(),
            grace: cfg.shutdown_grace,
            stopping: None,
            mesh_events: broadcast::channel(1024).0,
            busy_until: epoch,
            busy_poll: cfg.busy_poll,
        };
        for addr in cfg.join {
            driver.reach.join(&mut driver.swarm, addr);
        }
        Ok(driver)
    }

    pub(crate) fn names(&self) -> PeerNames {
        self.peers.names()
    }

    /// Where peer up/down events go.
    pub(crate) fn mesh_events(&self) -> broadcast::Sender<MeshEvent> {
        self.mesh_events.clone()
    }

    fn now(&self) -> Time {
        Time::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Runs until shut down. `ready` gets the listen addresses once every
    /// listener reported one (or the error of the first that failed).
    pub(crate) async fn run(
        mut self,
        mut waiting: Vec<ListenerId>,
        ready: oneshot::Sender<std::io::Result<Vec<Multiaddr>>>,
    ) {
        let mut ready = Some(ready);
        let mut redial = tokio::time::interval(REDIAL_TICK);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            self.drain();
            if self.stop_if_due() {
                break;
            }
            timer.as_mut().reset(self.next_wakeup().into());
            tokio::select! {
                event = futures::StreamExt::select_next_some(&mut self.swarm) => {
                    if let SwarmEvent::NewListenAddr { listener_id, .. } | SwarmEvent::ListenerClosed { listener_id, .. } = &event {
                        waiting.retain(|l| l != listener_id);
                    }
                    if let SwarmEvent::ListenerError { error, .. } = event {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(error));
                        }
                    } else {
                        self.on_swarm(event);
                    }
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
                    self.rpc_traffic();
                    let now = self.now();
                    self.on_rpc(event, now);
                }
                Some(event) = self.finished.recv() => {
                    let now = self.now();
                    match event {
                        ExecEvent::Progress { id, outcomes } => {
                            self.executor.tally(id, &outcomes, &mut self.stats.work);
                            self.machine.handle_progress(id, outcomes, now)
                        }
                        ExecEvent::Finished { id, outcomes, elapsed } => {
                            self.executor.tally(id, &outcomes, &mut self.stats.work);
                            self.executor.ended(id, elapsed);
                            self.machine.handle_execution(id, outcomes, elapsed, now);
                        }
                    }
                }
                _ = &mut timer => {
                    let now = self.now();
                    self.machine.handle_timeout(now);
                }
                // Yields to the runtime, which then polls for I/O without
                // sleeping: an answer arriving now is read at once.
                () = tokio::task::yield_now(), if Instant::now() < self.busy_until => {}
                _ = redial.tick(), if self.stopping.is_none() => {
                    self.reach.redial(&mut self.swarm);
                    self.nat.close_dial_backs(&mut self.swarm);
                }
            }
        }
    }

    /// An RPC message went out or came in: an answer or the next request
    /// may follow within a round trip, so poll rather than sleep a while.
    fn rpc_traffic(&mut self) {
        self.busy_until = Instant::now() + self.busy_poll;
    }

    /// When the loop must wake with nothing else happening: the machine's
    /// timer, or the next look at a shutdown in progress.
    fn next_wakeup(&mut self) -> Instant {
        let machine = self.machine.poll_timeout().map(|at| self.epoch + Duration::from_micros(at.as_micros()));
        let shutdown = self.stopping.as_ref().map(|s| s.next_check(Instant::now()));
        machine.into_iter().chain(shutdown).min().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    /// Carries out every action of the machine and forwards its events and answers.
    fn drain(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Send { to, id, request } => match self.peers.id(to) {
                    Some(peer) => {
                        if let Some(why) = self.too_large_for_relay(peer, &request) {
                            tracing::warn!(%peer, "{why}");
                            self.machine.handle_failure(id, &why, self.now());
                            continue;
                        }
                        let kind = request_kind(&request);
                        let oid = self.rpc.request(peer, request);
                        self.rpc_traffic();
                        self.outbound.insert(oid, (id, kind, Instant::now()));
                        self.stats.requests_sent += 1;
                    }
                    None => self.machine.handle_failure(id, "unknown peer", self.now()),
                },
                Action::Respond { id, response, .. } => {
                    if let Some(to) = self.inbound.remove(&id) {
                        // False: the requester's stream is gone; nothing to tell it.
                        if self.rpc.answer(to, response) {
                            self.rpc_traffic();
                            self.stats.responses_sent += 1;
                        }
                    }
                }
                Action::Publish(mut advert) => {
                    advert.reachability = self.nat.reachability();
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
                        self.reach.lost(peer);
                    }
                }
            }
        }
        while let Some(event) = self.machine.poll_peer_event() {
            let mesh_event = match event {
                PeerEvent::Up(key) => {
                    let peer = self.peers.id(key);
                    if let Some(peer) = peer {
                        self.swarm.behaviour_mut().gate.prove(peer);
                    }
                    peer.map(MeshEvent::PeerUp)
                }
                PeerEvent::Down(key, reason) => {
                    self.stats.marked_down += 1;
                    if let Some(peer) = self.peers.id(key) {
                        tracing::info!(%peer, %reason, "peer down");
                    }
                    self.peers.id(key).map(|p| MeshEvent::PeerDown(p, reason.to_string()))
                }
                PeerEvent::Quiet(key) => self.peers.id(key).map(MeshEvent::PeerQuiet),
                PeerEvent::Heard(key) => self.peers.id(key).map(MeshEvent::PeerHeard),
            };
            if let Some(e) = mesh_event {
                // Err: nobody is listening, which is fine.
                let _ = self.mesh_events.send(e);
            }
        }
        while let Some(event) = self.machine.poll_event() {
            let job = event.job();
            let finished = matches!(event, JobEvent::Finished { .. });
            if let Some((task, tx)) = self.jobs.get(&job) {
                let work = &mut self.stats.work;
                match &event {
                    JobEvent::Retried { .. } => *work.retried.entry(task.clone()).or_default() += 1,
                    JobEvent::Finished { result: Ok(out), .. } if out.stats.backups > 0 => {
                        *work.backed_up.entry(task.clone()).or_default() += u64::from(out.stats.backups)
                    }
                    _ => {}
                }
                let _ = tx.send(event);
            }
            if finished {
                self.jobs.remove(&job);
            }
        }
        while let Some(StatusAnswer { id, load }) = self.machine.poll_status() {
            if let Some(reply) = self.statuses.remove(&id) {
                let _ = reply.send(load.map_err(|e| e.to_string()));
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
                let task = spec.task.clone();
                let result = self.machine.submit(spec, now).map_err(Some);
                if let Ok(id) = result {
                    self.jobs.insert(id, (task, events));
                }
                let _ = reply.send(result);
            }
            Command::Cancel(job) => self.machine.cancel(job, now),
            Command::Status(peer, reply) => {
                let key = self.peers.key(peer);
                let id = self.machine.ask_status(key, now);
                self.statuses.insert(id, reply);
            }
            Command::Load(reply) => {
                let _ = reply.send(self.machine.load());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            Command::JoinFailures(reply) => {
                let _ = reply.send(self.reach.join_failures());
            }
            Command::MembersMet(reply) => {
                let _ = reply.send(self.reach.members_met());
            }
            Command::Stats(reply) => {
                let stats = NodeStats {
                    buffered_bytes: self.rpc.buffered() as u64,
                    rpc_bytes_in: self.rpc.traffic().0,
                    rpc_bytes_out: self.rpc.traffic().1,
                    redialling: self.reach.redialling() as u64,
                    connections: self.swarm.network_info().connection_counters().num_established() as u64,
                    modules_served: self.modules.served().modules,
                    module_bytes_served: self.modules.served().bytes,
                    ..self.stats.clone()
                };
                let _ = reply.send(stats);
            }
            Command::Shutdown(reply) => self.begin_shutdown(Some(reply)),
            Command::Modules(command) => self.modules.command(&mut self.swarm.behaviour_mut().modules, command),
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        self.machine
            .peers(self.now())
            .into_iter()
            .filter_map(|view| {
                let peer = self.peers.id(view.peer)?;
                let info = PeerInfo::new(peer, self.reach.addrs(&peer), self.reach.version(&peer), view);
                Some(PeerInfo { reachability: self.nat.advertised(&peer), path: self.nat.path(&peer), ..info })
            })
            .collect()
    }

    /// Why `request` must not go to `peer`: it carries pieces and is larger
    /// than the byte limit of the relay circuit that is our only way to it
    /// (the relay would cut the circuit midway). None if it may go.
    fn too_large_for_relay(&self, peer: PeerId, request: &Request) -> Option<String> {
        let Request::Run(run) = request else { return None };
        let limit = self.nat.relay_only_limit(&peer)?;
        let size = to_cbor(request).len() as u64;
        (size > limit).then(|| {
            format!(
                "{} piece(s) of {size} bytes exceed the relay's limit of {limit} bytes per circuit, our only \
                 connection to this peer (no direct connection: hole punching failed or is not done)",
                run.pieces.len()
            )
        })
    }

    /// Tells whoever listens (the `meshwork node` report).
    fn tell(&self, event: MeshEvent) {
        // Err: nobody is listening, which is fine.
        let _ = self.mesh_events.send(event);
    }

    /// Stops taking work, tells the mesh and cancels our own jobs; the
    /// loop ends when [`Shutdown`] says.
    fn begin_shutdown(&mut self, reply: Option<oneshot::Sender<()>>) {
        if self.stopping.is_none() {
            tracing::debug!("shutting down: no new work, finishing accepted pieces");
            let now = self.now();
            self.machine.shutdown(now);
            let jobs: Vec<JobId> = self.jobs.keys().copied().collect();
            for job in jobs {
                self.machine.cancel(job, now);
            }
            self.stopping = Some(Shutdown::new(Instant::now(), self.grace));
        }
        if let (Some(shutdown), Some(r)) = (&mut self.stopping, reply) {
            shutdown.wait(r);
        }
    }

    /// Ends a shutdown that is due: cancels what still runs, leaves the
    /// mesh and tells the waiters. True if the loop is to end.
    fn stop_if_due(&mut self) -> bool {
        let Some(shutdown) = &self.stopping else { return false };
        let Some(stop) = shutdown.due(Instant::now(), self.machine.is_idle()) else { return false };
        if stop == Stop::GraceOver {
            let cancelled = self.executor.abort_all();
            tracing::info!(cancelled, "grace period over: cancelling the pieces still running");
        }
        let _ = self.swarm.behaviour_mut().load_gossip.unsubscribe(&advert_topic());
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        if let Some(shutdown) = self.stopping.take() {
            shutdown.stopped();
        }
        true
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = self.now();
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                if crate::net::nat::is_relayed(&address) {
                    self.tell(MeshEvent::Relayed(address.clone()));
                }
                let me = *self.swarm.local_peer_id();
                self.listen.push(address.with_p2p(me).unwrap_or_else(|a| a));
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                self.nat.connected(&mut self.swarm, peer_id, connection_id, &endpoint);
                self.reach.connected(&mut self.rpc, peer_id, &endpoint, num_established.get() == 1);
                // Every new connection, not only the first: it proves the
                // peer alive even if an older one has gone quiet.
                let key = self.peers.key(peer_id);
                self.machine.handle_peer_up(key, now);
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } if num_established > 0 => {
                self.nat.closed(peer_id, connection_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, cause, .. } => {
                if let Some(counts) = self.nat.closed(peer_id, connection_id) {
                    self.tell(MeshEvent::PiecesFrom(peer_id, counts));
                }
                tracing::debug!(peer = %peer_id, cause = ?cause, "disconnected");
                let key = self.peers.key(peer_id);
                // A worker that left announced it (no tasks); one that still
                // advertised tasks dropped out and is worth having back.
                let worker = self.machine.peer(key, now).is_some_and(|v| !v.tasks.is_empty());
                self.machine.handle_peer_down(key, now);
                self.reach.disconnected(&mut self.swarm, peer_id, self.stopping.is_none() && worker);
            }
            SwarmEvent::Dialing { .. } => self.stats.dials += 1,
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                self.reach.incoming_failed(&send_back_addr, &error)
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
                self.reach.dial_failed(peer_id, &error);
            }
            SwarmEvent::Behaviour(BehaviourEvent::LoadGossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let Some(source) = message.source else { return };
                let acceptance = self.on_advert(source, &message.data, now);
                // A worker heard of but not connected is worth a dial; a
                // client's advert (it runs nothing; say, its leaving one,
                // which can arrive after its connection closed) is not.
                let key = self.peers.key(source);
                let works = self.machine.peer(key, now).is_some_and(|v| !v.tasks.is_empty());
                if acceptance == MessageAcceptance::Accept {
                    self.swarm.behaviour_mut().gate.prove(source);
                    if works {
                        self.reach.heard_of(&self.swarm, source);
                    }
                }
                let _ = self.swarm.behaviour_mut().load_gossip.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
            }
            SwarmEvent::Behaviour(BehaviourEvent::Modules(event)) => {
                self.modules.on_event(&mut self.swarm.behaviour_mut().modules, event)
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => self.nat.listener_closed(listener_id),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(event)) => {
                if let Some(r) = self.nat.on_autonat(&mut self.swarm, event) {
                    tracing::info!(reachability = r.as_str(), "reachability changed");
                    self.tell(MeshEvent::Reachability(r));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => self.nat.on_relay_client(event),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => tracing::debug!(?event, "relay"),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => {
                let peer = event.remote_peer_id;
                let result = event.result.map(|_| ()).map_err(|e| e.to_string());
                match &result {
                    Ok(()) => tracing::info!(%peer, "hole punched: direct connection"),
                    Err(error) => tracing::info!(%peer, %error, "hole punching failed: staying relayed"),
                }
                self.tell(MeshEvent::HolePunch(peer, result));
            }
            SwarmEvent::Behaviour(event) => {
                if let BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) = &event {
                    self.nat.identified(&mut self.swarm, *peer_id, info);
                }
                self.reach.on_discovery(&mut self.swarm, event)
            }
            _ => {}
        }
    }

    /// Hands an advert gossiped by `source` to the machine; what to tell gossipsub of it.
    fn on_advert(&mut self, source: PeerId, data: &[u8], now: Time) -> MessageAcceptance {
        let error = match decode_advert(data) {
            Ok(advert) => {
                self.nat.heard(source, advert.reachability);
                let key = self.peers.key(source);
                match self.machine.handle_advert(key, &advert, now) {
                    Ok(()) => return MessageAcceptance::Accept,
                    Err(AdvertError::Stale { .. }) => return MessageAcceptance::Ignore,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
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
                let members = self.reach.members(live.filter_map(|v| self.peers.id(v.peer)), peer);
                self.rpc.answer(from, members);
            }
            RpcEvent::Request { peer, from, request } => {
                if let Request::Run(run) = &request {
                    if let Some(path) = self.nat.pieces(peer, run.pieces.len() as u64) {
                        self.tell(MeshEvent::PiecePath(peer, path));
                    }
                }
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
                match self.outbound.remove(&id) {
                    Some((id, kind, sent)) => {
                        self.stats.work.answered(kind, sent.elapsed());
                        self.machine.handle_response(id, response, now)
                    }
                    None => self.reach.answered(&mut self.swarm, id, response),
                }
            }
            RpcEvent::Refused { peer, error } => {
                // A stream that failed is not worth a warning: every stranger
                // greeted that does not speak the RPC protocol (or left
                // mid-greeting) fails one, and a flood of them would flood
                // the log.
                match error {
                    FrameError::Io(_) => tracing::debug!(%peer, %error, "an RPC stream failed mid-frame"),
                    _ => tracing::warn!(%peer, %error, "refused an RPC frame; stream closed"),
                }
                self.stats.malformed_requests += 1;
            }
            RpcEvent::Opened { .. } | RpcEvent::InboundClosed { .. } | RpcEvent::OutboundClosed { .. } => {}
        }
    }

    /// Our request `id` will never be answered: its stream ended.
    fn lost(&mut self, id: OutboundId, error: &str, now: Time) {
        match self.outbound.remove(&id) {
            Some((id, ..)) => self.machine.handle_failure(id, error, now),
            None => self.reach.failed(id),
        }
    }
}
