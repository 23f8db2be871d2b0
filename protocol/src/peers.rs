//! What this node knows of every other peer: its last advert, its load as
//! corrected by our own work in flight there, and whether it is alive.
//!
//! Liveness is judged from direct evidence only: a closed connection, or
//! health probes (Status requests) left unanswered past a timeout that
//! adapts to the peer's own answer times (the mean plus four deviations,
//! as TCP sizes its retransmission timeout). Adverts travel by gossip and
//! may be late; a peer whose adverts stop is only "quiet": its load figure
//! is stale, it gets no new work until it answers a probe, and nothing it
//! holds is failed over. A peer judged down keeps its connections (closing
//! them would take it out of the gossip mesh and start a cascade) and is
//! probed now and then, so it comes back the moment it answers.
//!
//! It also keeps, per task being scheduled, the set of peers with room for
//! more of that task ("open"), so placement is O(1) even on thousands of
//! peers. Every change to a peer's load or health goes through
//! [`PeerTable::refresh`], which keeps those sets right.

use crate::config::Config;
use crate::ids::{PeerKey, RequestId};
use crate::job::Unplaceable;
use crate::policy::Candidate;
use crate::time::Time;
use crate::wire::{Advert, AdvertError, Load};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Why a peer is considered down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// Its connection closed.
    Disconnected,
    /// No advert for longer than [`Config::advert_expiry`](crate::Config::advert_expiry)
    /// (only under that old rule).
    AdvertExpired,
    /// It did not answer a health probe in time.
    ProbeTimeout,
    /// It announced that it runs nothing any more (it is shutting down).
    Left,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DownReason::Disconnected => "connection closed",
            DownReason::AdvertExpired => "adverts stopped",
            DownReason::ProbeTimeout => "health probe unanswered",
            DownReason::Left => "left",
        })
    }
}

/// Adverts a peer may miss before its load figure counts as stale.
const QUIET_AFTER_INTERVALS: u32 = 3;
/// How often a peer judged down but still connected is probed again.
const DOWN_PROBE_EVERY: Duration = Duration::from_secs(2);
/// Probe timeouts never grow past this, however slow a peer's answers were.
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most batches (requests, so muxer streams) in flight to one peer: far
/// below the muxer's stream limit (yamux: 512 per connection, above which
/// it closes the whole connection), and plenty to keep a peer busy since
/// tiny pieces travel many to a batch.
pub(crate) const MAX_BATCHES_PER_PEER: u32 = 128;

/// Slots of a new peer believed before it has answered anything.
pub(crate) const TRUSTED_SLOTS: u32 = 8;

/// Overdue batches that count against a peer: each halves its head start
/// of [`TRUSTED_SLOTS`], so after this many it is down to one slot (never
/// zero: it can always prove itself again).
const MAX_STRIKES: u32 = 3;

/// A change in whether a peer is part of the mesh (or, while it is, in
/// whether it is heard), for drivers to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// Connected and advertising tasks (again).
    Up(PeerKey),
    /// No longer usable, and why.
    Down(PeerKey, DownReason),
    /// A live worker's adverts stopped (see [`PeerView::quiet`]): its load
    /// figure is stale, and it gets no new work until it is heard again.
    Quiet(PeerKey),
    /// A worker reported [`PeerEvent::Quiet`] was heard again. A quiet
    /// worker that goes down gets its `Down` only.
    Heard(PeerKey),
}

/// A peer's state, as drivers show it (`meshwork peers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// Who.
    pub peer: PeerKey,
    /// Has a connection (as the driver reported).
    pub connected: bool,
    /// Judged down, and why.
    pub down: Option<DownReason>,
    /// Its last reported load (advert or response).
    pub load: Option<Load>,
    /// Its adverts stopped: its load figure is stale and it gets no new work
    /// until it answers a probe (not a death: nothing is failed over).
    pub quiet: bool,
    /// Tasks its advert lists.
    pub tasks: Vec<String>,
    /// Age of its last advert.
    pub advert_age: Option<Duration>,
    /// Round trip of its last health probe.
    pub rtt: Option<Duration>,
    /// Our pieces in flight there.
    pub inflight: u32,
    /// Our batches (requests) in flight there.
    pub batches: u32,
    /// Of its advertised slots, how many we believe: trust grows with the
    /// batches it answers and shrinks when it sits on pieces.
    pub trusted_slots: u32,
}

#[derive(Clone, Debug)]
struct AdvertInfo {
    seq: u64,
    tasks: Vec<String>,
    received: Time,
    /// The gap it announced until its next advert.
    interval: Duration,
    /// The mesh size it reported.
    mesh: u32,
}

impl AdvertInfo {
    fn new(advert: &Advert, now: Time) -> AdvertInfo {
        let ms = if advert.interval_ms == 0 { 1000 } else { advert.interval_ms };
        AdvertInfo {
            seq: advert.seq,
            tasks: advert.tasks.clone(),
            received: now,
            interval: Duration::from_millis(ms as u64),
            mesh: advert.mesh,
        }
    }
}

/// Answer times of a peer's probes, smoothed as TCP smooths round trips
/// (RFC 6298), to size its probe timeout.
#[derive(Clone, Copy, Debug, Default)]
struct RoundTrip {
    /// Smoothed round trip; `None` before the first sample.
    srtt: Option<Duration>,
    /// Smoothed mean deviation.
    var: Duration,
}

impl RoundTrip {
    fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.var = rtt / 2;
            }
            Some(s) => {
                let dev = s.abs_diff(rtt);
                self.var = (self.var * 3 + dev) / 4;
                self.srtt = Some((s * 7 + rtt) / 8);
            }
        }
    }

    /// How long to wait for an answer: at least `floor`, else the mean plus
    /// four deviations (a peer that answers slowly is not dead), at most
    /// [`MAX_PROBE_TIMEOUT`].
    fn timeout(&self, floor: Duration) -> Duration {
        let adaptive = self.srtt.map_or(Duration::ZERO, |s| s + self.var * 4);
        floor.max(adaptive).min(MAX_PROBE_TIMEOUT.max(floor))
    }
}

#[derive(Clone, Debug)]
struct PeerInfo {
    connected: bool,
    down: Option<DownReason>,
    advert: Option<AdvertInfo>,
    /// Last load it reported (advert or response).
    load: Load,
    /// Our in-flight count there when it made that report.
    inflight_at_report: u32,
    /// Our pieces there now.
    inflight: u32,
    /// Our batches there now (each one request, one stream).
    batches: u32,
    /// Last time we heard of it: an advert (maybe relayed, so maybe
    /// old), an answer or a request.
    last_heard: Time,
    /// Last time it answered or asked us something directly: unlike an
    /// advert, proof that it was alive at that moment.
    last_answered: Time,
    /// Outstanding health probe and when it was sent.
    probe: Option<(RequestId, Time)>,
    /// Its probes' answer times.
    rtt: RoundTrip,
    /// Last probe answer time, for display.
    last_rtt: Option<Duration>,
    /// Quiet or down peers are probed no sooner than this.
    next_probe: Time,
    /// Its adverts stopped (see [`PeerView::quiet`]).
    quiet: bool,
    /// Quiet while live, as last reported in a [`PeerEvent`].
    reported_quiet: bool,
    /// It said "busy": leave it alone until then.
    cooldown_until: Time,
    /// Connected, advertising and not judged down (last reported in a [`PeerEvent`]).
    live: bool,
    /// Batches it answered with results since its last overdue batch:
    /// trust in its advertised slots grows with them.
    answered: u32,
    /// Batches it held past their overdue deadline (at most [`MAX_STRIKES`]).
    strikes: u32,
}

impl PeerInfo {
    fn new(now: Time) -> PeerInfo {
        PeerInfo {
            connected: false,
            down: None,
            advert: None,
            load: Load::default(),
            inflight_at_report: 0,
            inflight: 0,
            batches: 0,
            last_heard: now,
            last_answered: now,
            probe: None,
            rtt: RoundTrip::default(),
            last_rtt: None,
            next_probe: Time::ZERO,
            quiet: false,
            reported_quiet: false,
            cooldown_until: Time::ZERO,
            live: false,
            answered: 0,
            strikes: 0,
        }
    }

    /// The slots we believe it has: what it advertises, but no more than a
    /// head start of [`TRUSTED_SLOTS`] (halved by each strike) plus the
    /// batches it has answered since its last strike, so an advert claiming
    /// a huge capacity cannot attract a flood of pieces it never returns,
    /// and a peer that sat on pieces earns its trust again batch by batch.
    fn trusted_slots(&self) -> u32 {
        self.load.slots.min((TRUSTED_SLOTS >> self.strikes).saturating_add(self.answered))
    }

    /// Its load now: what it reported, minus our pieces it had then, plus ours now.
    fn estimated_load(&self) -> u32 {
        self.load.outstanding().saturating_sub(self.inflight_at_report).saturating_add(self.inflight)
    }

    fn runs(&self, task: &str) -> bool {
        self.advert.as_ref().is_some_and(|a| a.tasks.iter().any(|t| t == task))
    }

    /// Heard from (advert, answer or request): alive, and not quiet any more.
    fn heard(&mut self, now: Time) {
        self.last_heard = now;
        self.quiet = false;
        // Direct evidence of life ends a mistaken judgement (a closed
        // connection is only undone by a new one).
        if self.connected && self.down.as_ref().is_some_and(|d| *d != DownReason::Disconnected) {
            self.down = None;
        }
    }

    /// Silent for longer than it promised to be.
    fn silent_past_promise(&self, now: Time) -> bool {
        self.advert.as_ref().is_some_and(|a| now.since(self.last_heard) > a.interval * QUIET_AFTER_INTERVALS)
    }
}

/// How many pieces of a task go in one batch, and how many may be in flight
/// per slot, from the measured time of one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Depth {
    /// Pieces per batch.
    pub(crate) batch: u32,
    /// Pieces in flight per slot.
    pub(crate) per_slot: u32,
}

impl Depth {
    /// Until a piece has been timed, and for long pieces: one piece per
    /// slot, none waiting (credits are free slots).
    const UNKNOWN: Depth = Depth { batch: 1, per_slot: 1 };

    /// Pieces shorter than `target` are grouped so one batch takes about
    /// `target`; two batches per slot are then in flight, one running and
    /// one on its way. Rounded down to a power of two so it changes rarely.
    pub(crate) fn for_piece_time(piece_us: u64, target: Duration, max_batch: u32) -> Depth {
        let target_us = target.as_micros() as u64;
        if piece_us >= target_us {
            return Depth::UNKNOWN;
        }
        let n = (target_us / piece_us.max(1)).clamp(1, max_batch.max(1) as u64) as u32;
        let batch = 1 << (31 - n.leading_zeros());
        Depth { batch, per_slot: batch * 2 }
    }
}

#[derive(Clone, Debug)]
struct TaskIndex {
    depth: Depth,
    open: Vec<PeerKey>,
    pos: FxHashMap<PeerKey, usize>,
}

impl TaskIndex {
    fn set_open(&mut self, peer: PeerKey, open: bool) {
        match (open, self.pos.get(&peer).copied()) {
            (true, None) => {
                self.pos.insert(peer, self.open.len());
                self.open.push(peer);
            }
            (false, Some(i)) => {
                self.pos.remove(&peer);
                self.open.swap_remove(i);
                if let Some(moved) = self.open.get(i) {
                    self.pos.insert(*moved, i);
                }
            }
            _ => {}
        }
    }
}

/// Every peer this node knows, itself included.
#[derive(Clone, Debug)]
pub(crate) struct PeerTable {
    me: PeerKey,
    peers: FxHashMap<PeerKey, PeerInfo>,
    index: BTreeMap<String, TaskIndex>,
    events: VecDeque<PeerEvent>,
    /// Peers live now (connected, advertising, not down).
    live: u32,
    /// The largest mesh size a live peer reported: raised by each advert
    /// at once, recomputed from every peer by [`maintain`](Self::maintain)
    /// (so it also falls), because the pace it sets is read after every
    /// input and a walk over all peers there cost O(N) per event.
    reported_mesh: u32,
}

impl PeerTable {
    /// A table holding only this node, which runs `tasks` on `load.slots`.
    pub(crate) fn new(me: PeerKey, tasks: Vec<String>, load: Load, now: Time) -> PeerTable {
        let mut info = PeerInfo::new(now);
        info.connected = true;
        info.load = load;
        info.answered = u32::MAX; // ourselves: fully trusted
        info.advert = Some(AdvertInfo { seq: 0, tasks, received: now, interval: Duration::MAX, mesh: 1 });
        let mut peers = FxHashMap::default();
        peers.insert(me, info);
        PeerTable { me, peers, index: BTreeMap::new(), events: VecDeque::new(), live: 0, reported_mesh: 0 }
    }

    /// Records our own worker's exact load (it includes our own pieces).
    pub(crate) fn set_local_load(&mut self, load: Load, now: Time) {
        let me = self.me;
        if let Some(info) = self.peers.get_mut(&me) {
            info.load = load;
            info.inflight_at_report = info.inflight;
        }
        self.refresh(me, now);
    }

    /// A connection to `peer` opened (any of them: a new connection is
    /// proof of life, whatever the old ones are doing).
    pub(crate) fn peer_up(&mut self, peer: PeerKey, now: Time) {
        let info = self.peers.entry(peer).or_insert_with(|| PeerInfo::new(now));
        info.connected = true;
        info.down = None;
        info.probe = None;
        info.heard(now);
        self.refresh(peer, now);
    }

    /// Marks `peer` down; returns whether it was up (so callers act once).
    pub(crate) fn mark_down(&mut self, peer: PeerKey, reason: DownReason, now: Time) -> bool {
        if peer == self.me {
            return false;
        }
        let Some(info) = self.peers.get_mut(&peer) else { return false };
        let was_up = info.down.is_none();
        info.connected = info.connected && reason != DownReason::Disconnected;
        info.probe = None;
        if was_up {
            info.down = Some(reason);
        }
        self.refresh(peer, now);
        was_up
    }

    /// The driver reported every connection to `peer` closed. A peer that
    /// runs nothing and owes nothing (a `meshwork run` or `meshwork peers`
    /// that left, or a worker that announced it was leaving) is forgotten:
    /// a long-lived node meets thousands of such visitors, and keeping a
    /// row for each would grow without bound. If it comes back it is new.
    pub(crate) fn disconnected(&mut self, peer: PeerKey, now: Time) -> bool {
        let was_up = self.mark_down(peer, DownReason::Disconnected, now);
        let Some(info) = self.peers.get_mut(&peer) else { return was_up };
        info.connected = false;
        let works = info.advert.as_ref().is_some_and(|a| !a.tasks.is_empty());
        if !works && info.inflight == 0 && info.batches == 0 && peer != self.me {
            self.peers.remove(&peer);
            for index in self.index.values_mut() {
                index.set_open(peer, false);
            }
        }
        was_up
    }

    /// Takes an advert that passed validation; refuses one older than seen.
    pub(crate) fn advert(&mut self, peer: PeerKey, advert: &Advert, now: Time) -> Result<(), AdvertError> {
        // A late copy of a visitor's leaving advert must not bring back
        // the row its disconnection removed.
        if peer == self.me || (advert.tasks.is_empty() && !self.peers.contains_key(&peer)) {
            return Ok(());
        }
        let info = self.peers.entry(peer).or_insert_with(|| PeerInfo::new(now));
        if let Some(seen) = &info.advert {
            // A node that restarted starts its seq again; its connection closed
            // in between (down), so seq is only compared while it stays up.
            if advert.seq <= seen.seq && info.down.is_none() && info.connected {
                return Err(AdvertError::Stale { got: advert.seq, seen: seen.seq });
            }
        }
        info.advert = Some(AdvertInfo::new(advert, now));
        info.load = advert.load();
        info.inflight_at_report = info.inflight;
        info.heard(now);
        self.refresh(peer, now);
        self.note_mesh(peer, advert.mesh);
        Ok(())
    }

    /// Raises [`reported_mesh`](Self::reported_mesh) with `peer`'s report, if it is live.
    fn note_mesh(&mut self, peer: PeerKey, mesh: u32) {
        if self.peers.get(&peer).is_some_and(|i| i.live) {
            self.reported_mesh = self.reported_mesh.max(mesh);
        }
    }

    /// Has the node heard an advert of `peer` (gossiped or a probe's answer)?
    pub(crate) fn advertised(&self, peer: PeerKey) -> bool {
        self.peers.get(&peer).is_some_and(|i| i.advert.is_some())
    }

    /// `peer` answered our probe `id` with its advert: fresher than any
    /// gossiped one, so it is taken even at the same seq.
    pub(crate) fn status(&mut self, peer: PeerKey, id: RequestId, advert: &Advert, now: Time) {
        let Some(info) = self.peers.get_mut(&peer) else { return };
        if let Some((pid, sent)) = info.probe {
            if pid == id {
                let rtt = now.since(sent);
                info.rtt.sample(rtt);
                info.last_rtt = Some(rtt);
                info.probe = None;
            }
        }
        if advert.validate().is_ok() && info.advert.as_ref().is_none_or(|a| advert.seq >= a.seq) {
            info.advert = Some(AdvertInfo::new(advert, now));
            info.load = advert.load();
            info.inflight_at_report = info.inflight;
        }
        info.heard(now);
        self.refresh(peer, now);
        self.note_mesh(peer, advert.mesh);
    }

    /// `peer` answered a batch with results: trust its slots a little more.
    pub(crate) fn answered_batch(&mut self, peer: PeerKey) {
        if let Some(info) = self.peers.get_mut(&peer) {
            info.answered = info.answered.saturating_add(1);
        }
    }

    /// `peer` held a batch past its overdue deadline: it forfeits the trust
    /// its answers earned and half its head start (bounded: one slot is
    /// always left). This node's own worker is never blamed.
    pub(crate) fn overdue(&mut self, peer: PeerKey, now: Time) {
        if peer == self.me {
            return;
        }
        let Some(info) = self.peers.get_mut(&peer) else { return };
        info.answered = 0;
        info.strikes = (info.strikes + 1).min(MAX_STRIKES);
        self.refresh(peer, now);
    }

    /// `peer` answered or asked something: it is alive, and maybe reported its load.
    pub(crate) fn heard(&mut self, peer: PeerKey, load: Option<Load>, now: Time) {
        let Some(info) = self.peers.get_mut(&peer) else { return };
        info.heard(now);
        info.last_answered = now;
        if let Some(load) = load {
            info.load = load;
            info.inflight_at_report = info.inflight;
        }
        self.refresh(peer, now);
    }

    /// A batch of `pieces` pieces went to `peer` (`sent`) or ended there.
    pub(crate) fn add_inflight(&mut self, peer: PeerKey, pieces: u32, sent: bool, now: Time) {
        let Some(info) = self.peers.get_mut(&peer) else { return };
        if sent {
            info.inflight = info.inflight.saturating_add(pieces);
            info.batches = info.batches.saturating_add(1);
        } else {
            info.inflight = info.inflight.saturating_sub(pieces);
            info.batches = info.batches.saturating_sub(1);
        }
        if peer == self.me {
            // Our own worker's load moves in step with these pieces.
            info.inflight_at_report = info.inflight_at_report.min(info.inflight);
        }
        self.refresh(peer, now);
    }

    /// `peer` said it is full: skip it for `backoff`.
    pub(crate) fn cool_down(&mut self, peer: PeerKey, load: Load, until: Time, now: Time) {
        let Some(info) = self.peers.get_mut(&peer) else { return };
        info.cooldown_until = until;
        info.load = load;
        info.inflight_at_report = info.inflight;
        self.refresh(peer, now);
    }

    /// Starts (or keeps) an index of peers with room for `task`.
    pub(crate) fn index_task(&mut self, task: &str, now: Time) {
        if self.index.contains_key(task) {
            return;
        }
        let idx = TaskIndex { depth: Depth::UNKNOWN, open: Vec::new(), pos: FxHashMap::default() };
        self.index.insert(task.to_string(), idx);
        self.refresh_task(task, now);
    }

    /// Sets the depth of `task` (after a new timing); rebuilds its index if it changed.
    pub(crate) fn set_depth(&mut self, task: &str, depth: Depth, now: Time) {
        if let Some(idx) = self.index.get_mut(task) {
            if idx.depth != depth {
                idx.depth = depth;
                self.refresh_task(task, now);
            }
        }
    }

    /// The depth in force for `task`.
    pub(crate) fn depth(&self, task: &str) -> Depth {
        self.index.get(task).map_or(Depth::UNKNOWN, |i| i.depth)
    }

    /// Peers with room for more of `task`.
    pub(crate) fn open(&self, task: &str) -> &[PeerKey] {
        self.index.get(task).map_or(&[], |i| &i.open)
    }

    /// Peers (this node included) that could take pieces of `task`, now
    /// or once they have room: they run it on some slots, are connected
    /// and not judged down. Those `excluded` says are not counted.
    pub(crate) fn runners(&self, task: &str, excluded: impl Fn(PeerKey) -> bool) -> usize {
        let can = |(p, i): (&PeerKey, &PeerInfo)| {
            i.load.slots > 0 && i.connected && i.down.is_none() && i.runs(task) && !excluded(*p)
        };
        self.peers.iter().filter(|e| can(*e)).count()
    }

    /// Pieces of `task` that `peer` can take now.
    pub(crate) fn room(&self, peer: PeerKey, task: &str, now: Time) -> u32 {
        self.peers.get(&peer).map_or(0, |info| room_of(info, task, self.depth(task), now))
    }

    /// `peer` as placement weighs it.
    pub(crate) fn candidate(&self, peer: PeerKey) -> Candidate {
        let info = self.peers.get(&peer);
        Candidate { peer, load: info.map_or(0, PeerInfo::estimated_load), slots: info.map_or(0, |i| i.load.slots) }
    }

    /// Keeps `peer`'s membership of every task index right, and reports
    /// when it joins or leaves the live mesh.
    pub(crate) fn refresh(&mut self, peer: PeerKey, now: Time) {
        if let Some(info) = self.peers.get_mut(&peer).filter(|_| peer != self.me) {
            // Live: a connected worker (it advertises tasks) not judged down.
            // Visitors that run nothing (`meshwork peers`) come and go
            // without events; a worker that announces no more tasks left.
            let works = info.advert.as_ref().is_some_and(|a| !a.tasks.is_empty());
            let live = info.connected && info.down.is_none() && works;
            if live != info.live {
                info.live = live;
                if live {
                    self.live += 1;
                } else {
                    self.live -= 1;
                }
                self.events.push_back(match live {
                    true => PeerEvent::Up(peer),
                    false => PeerEvent::Down(
                        peer,
                        match (&info.down, info.connected) {
                            (Some(why), _) => why.clone(),
                            (None, true) => DownReason::Left,
                            (None, false) => DownReason::Disconnected,
                        },
                    ),
                });
            }
            let quiet = info.live && info.quiet;
            if quiet != info.reported_quiet {
                info.reported_quiet = quiet;
                if info.live {
                    self.events.push_back(if quiet { PeerEvent::Quiet(peer) } else { PeerEvent::Heard(peer) });
                }
            }
        }
        let info = self.peers.get(&peer);
        for (task, idx) in self.index.iter_mut() {
            let open = info.is_some_and(|i| room_of(i, task, idx.depth, now) > 0);
            idx.set_open(peer, open);
        }
    }

    fn refresh_task(&mut self, task: &str, now: Time) {
        let Some(idx) = self.index.get_mut(task) else { return };
        let mut keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        keys.sort_unstable();
        for peer in keys {
            idx.set_open(peer, room_of(&self.peers[&peer], task, idx.depth, now) > 0);
        }
    }

    /// Re-opens peers whose cool-down ended, marks peers quiet whose
    /// adverts stopped, and says which peers are due a probe and whose
    /// probes went unanswered (and, under the old rule, whose adverts expired).
    /// `busy`: this node has jobs, so quiet peers are worth a probe.
    pub(crate) fn maintain(&mut self, now: Time, cfg: &Config, busy: bool) -> Maintenance {
        let mut m = Maintenance::default();
        let mut keys: Vec<PeerKey> = self.peers.keys().copied().filter(|p| *p != self.me).collect();
        keys.sort_unstable();
        for peer in keys {
            let Some(info) = self.peers.get_mut(&peer) else { continue };
            let mut changed = false;
            if info.cooldown_until != Time::ZERO && info.cooldown_until <= now {
                info.cooldown_until = Time::ZERO;
                changed = true;
            }
            let probe_due = match info.probe {
                Some((_, sent)) if now.since(sent) > info.rtt.timeout(cfg.probe_timeout) => {
                    info.probe = None;
                    // It answered something else since the probe left (a
                    // batch): the probe's own answer is late, the peer is not.
                    // A gossiped advert is no such proof: it may have left
                    // before the probe did.
                    if info.down.is_none() && info.last_answered <= sent {
                        m.unanswered.push(peer);
                    }
                    false
                }
                Some(_) => false,
                None if !info.connected => false,
                None if info.down.is_some() => info.next_probe <= now,
                None => {
                    let owes = info.inflight > 0 && now.since(info.last_heard) >= cfg.probe_interval;
                    owes || (info.quiet && busy && info.next_probe <= now)
                }
            };
            if probe_due {
                info.next_probe = now + if info.down.is_some() { DOWN_PROBE_EVERY } else { cfg.probe_interval };
                m.probe.push(peer);
            }
            if info.down.is_none() {
                let expired =
                    cfg.advert_expiry.is_some_and(|d| info.advert.as_ref().is_some_and(|a| now.since(a.received) > d));
                if expired {
                    m.expired.push(peer);
                } else if !info.quiet && info.silent_past_promise(now) {
                    info.quiet = true;
                    changed = true;
                }
            }
            if changed {
                self.refresh(peer, now);
            }
        }
        self.reported_mesh = self
            .peers
            .iter()
            .filter(|(p, i)| **p != self.me && i.live)
            .filter_map(|(_, i)| i.advert.as_ref().map(|a| a.mesh))
            .max()
            .unwrap_or(0);
        m
    }

    /// This node itself was stopped for a while (its clock jumped): what it
    /// did not hear meanwhile is its own fault, so every peer gets its full
    /// time again before it is judged.
    pub(crate) fn restart_clocks(&mut self, now: Time) {
        for info in self.peers.values_mut() {
            info.last_heard = info.last_heard.max(now);
            if let Some((_, sent)) = &mut info.probe {
                *sent = now;
            }
        }
    }

    /// Notes a health probe sent to `peer`.
    pub(crate) fn probing(&mut self, peer: PeerKey, id: RequestId, now: Time) {
        if let Some(info) = self.peers.get_mut(&peer) {
            info.probe = Some((id, now));
        }
    }

    /// Nodes in the mesh as this one sees it (itself included), or the
    /// largest count a live peer reports: whoever sees more sets the pace.
    pub(crate) fn mesh_size(&self) -> u32 {
        (self.live + 1).max(self.reported_mesh)
    }

    /// Workers live now (connected, advertising tasks, not down), this node excluded.
    pub(crate) fn live_count(&self) -> u32 {
        self.live
    }

    /// Says, peer by peer, why none can take a piece of `task` now, and
    /// whether some of them may later (they are only full or cooling down:
    /// the job is waiting, not stalled). `excluded` names job-specific bans.
    pub(crate) fn why_not<'e>(
        &self,
        task: &str,
        excluded: impl Fn(PeerKey) -> Option<&'e str>,
        now: Time,
    ) -> (bool, Unplaceable) {
        let mut waiting = false;
        let mut reasons: BTreeMap<String, Vec<PeerKey>> = BTreeMap::new();
        let mut keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        keys.sort_unstable();
        for peer in keys {
            let info = &self.peers[&peer];
            let reason = if info.load.slots == 0 && info.advert.is_some() {
                "runs no pieces (0 slots)".to_string()
            } else if let Some(down) = &info.down {
                format!("down: {down}")
            } else if !info.connected {
                "not connected".to_string()
            } else if info.advert.is_none() {
                "no advert heard yet".to_string()
            } else if !info.runs(task) {
                format!("does not run {task:?}")
            } else if let Some(why) = excluded(peer) {
                why.to_string()
            } else {
                waiting = true;
                if info.quiet {
                    "quiet (no advert for a while; probing it)".to_string()
                } else if info.cooldown_until > now {
                    "said busy".to_string()
                } else {
                    format!("full ({} pieces on {} slots)", info.estimated_load(), info.load.slots)
                }
            };
            reasons.entry(reason).or_default().push(peer);
        }
        let why = Unplaceable { me: self.me, reasons: reasons.into_iter().collect() };
        (waiting, why)
    }

    /// The next change in the live mesh.
    pub(crate) fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// Peers known, this node included.
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Everything known, for display.
    pub(crate) fn views(&self, now: Time) -> Vec<PeerView> {
        let mut v: Vec<PeerView> =
            self.peers.iter().filter(|(p, _)| **p != self.me).map(|(p, i)| view_of(*p, i, now)).collect();
        v.sort_by_key(|v| v.peer);
        v
    }

    /// What is known of `peer`.
    pub(crate) fn view(&self, peer: PeerKey, now: Time) -> Option<PeerView> {
        self.peers.get(&peer).filter(|_| peer != self.me).map(|i| view_of(peer, i, now))
    }
}

/// `info` as drivers show it.
fn view_of(peer: PeerKey, i: &PeerInfo, now: Time) -> PeerView {
    PeerView {
        peer,
        connected: i.connected,
        down: i.down.clone(),
        load: i.advert.as_ref().map(|_| i.load),
        quiet: i.quiet,
        tasks: i.advert.as_ref().map(|a| a.tasks.clone()).unwrap_or_default(),
        advert_age: i.advert.as_ref().map(|a| now.since(a.received)),
        rtt: i.last_rtt,
        inflight: i.inflight,
        batches: i.batches,
        trusted_slots: i.trusted_slots(),
    }
}

/// Pieces of `task` a peer described by `info` can take now, at `depth`.
fn room_of(info: &PeerInfo, task: &str, depth: Depth, now: Time) -> u32 {
    let usable = info.connected && info.down.is_none() && !info.quiet && info.runs(task) && info.cooldown_until <= now;
    if !usable || info.batches >= MAX_BATCHES_PER_PEER {
        return 0;
    }
    let window = info.trusted_slots().saturating_mul(depth.per_slot).min(info.load.capacity);
    let room = window.saturating_sub(info.estimated_load());
    // A worker whose slots other submitters fill shares them (see
    // `worker`): with nothing of ours there, one batch asks for our share.
    if room == 0 && info.inflight == 0 && info.load.outstanding() < info.load.capacity {
        return 1;
    }
    room
}

/// What a maintenance pass found.
#[derive(Debug, Default)]
pub(crate) struct Maintenance {
    /// Adverts older than the expiry (only under the old rule).
    pub(crate) expired: Vec<PeerKey>,
    /// Probes older than their timeout.
    pub(crate) unanswered: Vec<PeerKey>,
    /// Peers to probe: silent ones owing us results, quiet ones while we
    /// have work to place, and connected ones judged down.
    pub(crate) probe: Vec<PeerKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_groups_tiny_pieces_and_leaves_long_ones_alone() {
        let target = Duration::from_millis(5);
        assert_eq!(Depth::for_piece_time(10_000, target, 4096), Depth::UNKNOWN);
        assert_eq!(Depth::for_piece_time(1_000, target, 4096), Depth { batch: 4, per_slot: 8 });
        assert_eq!(Depth::for_piece_time(0, target, 4096), Depth { batch: 4096, per_slot: 8192 });
    }

    /// An idle one-slot worker's advert for task "x".
    fn one_slot_advert(seq: u64, mesh: u32) -> Advert {
        Advert {
            version: crate::wire::PROTOCOL_VERSION,
            seq,
            slots: 1,
            running: 0,
            queued: 0,
            capacity: 4,
            tasks: vec!["x".into()],
            interval_ms: 1000,
            mesh,
            ..Advert::default()
        }
    }

    #[test]
    fn open_set_follows_load() {
        let now = Time::ZERO;
        let load = Load { slots: 2, running: 0, queued: 0, capacity: 8 };
        let mut t = PeerTable::new(PeerKey(0), vec!["x".into()], load, now);
        t.index_task("x", now);
        assert_eq!(t.open("x"), &[PeerKey(0)]);
        t.add_inflight(PeerKey(0), 1, true, now);
        t.add_inflight(PeerKey(0), 1, true, now);
        assert!(t.open("x").is_empty(), "2 pieces on 2 slots leave no room");
        t.add_inflight(PeerKey(0), 1, false, now);
        assert_eq!(t.open("x"), &[PeerKey(0)]);
        let advert = one_slot_advert(1, 2);
        t.advert(PeerKey(1), &advert, now).unwrap();
        assert_eq!(t.open("x").len(), 1, "not connected yet");
        t.peer_up(PeerKey(1), now);
        assert_eq!(t.open("x").len(), 2);
        assert!(t.advert(PeerKey(1), &advert, now).is_err(), "same seq again is stale");
        t.disconnected(PeerKey(1), now);
        assert_eq!(t.open("x"), &[PeerKey(0)]);
    }

    #[test]
    fn the_mesh_size_follows_the_largest_live_report_and_falls_when_its_reporter_goes() {
        let now = Time::ZERO;
        let load = Load { slots: 1, running: 0, queued: 0, capacity: 4 };
        let mut t = PeerTable::new(PeerKey(0), vec!["x".into()], load, now);
        let advert = one_slot_advert;
        for peer in [1, 2] {
            t.peer_up(PeerKey(peer), now);
        }
        t.advert(PeerKey(1), &advert(1, 500), now).unwrap();
        t.advert(PeerKey(2), &advert(1, 3), now).unwrap();
        assert_eq!(t.mesh_size(), 500, "a live peer that sees more sets the pace at once");
        t.disconnected(PeerKey(1), now);
        let cfg = Config::new(PeerKey(0), 0);
        t.maintain(now, &cfg, false);
        assert_eq!(t.mesh_size(), 3, "once it is gone, the next walk forgets its report");
    }

    /// A worker whose slots someone else fills gets one batch of ours, to
    /// ask for our share; not a second while that one is there.
    #[test]
    fn a_full_worker_with_nothing_of_ours_has_room_for_one_batch() {
        let now = Time::ZERO;
        let load = Load { slots: 1, running: 0, queued: 0, capacity: 4 };
        let mut t = PeerTable::new(PeerKey(0), vec![], load, now);
        t.index_task("x", now);
        t.peer_up(PeerKey(1), now);
        let busy = Advert { slots: 2, running: 2, queued: 0, capacity: 4, ..one_slot_advert(1, 2) };
        t.advert(PeerKey(1), &busy, now).unwrap();
        assert_eq!(t.room(PeerKey(1), "x", now), 1, "one batch asks for our share");
        t.add_inflight(PeerKey(1), 1, true, now);
        assert_eq!(t.room(PeerKey(1), "x", now), 0, "ours is there: no more until it ends");
        t.add_inflight(PeerKey(1), 1, false, now);
        t.advert(PeerKey(1), &Advert { seq: 2, queued: 2, ..busy }, now).unwrap();
        assert_eq!(t.room(PeerKey(1), "x", now), 0, "its queue is full: it would answer busy");
    }
}
