//! Knobs of the state machine. Defaults suit a LAN; the simulator and tests
//! change them (e.g. shorter intervals) through the same struct.

use crate::ids::PeerKey;
use crate::policy::Policy;
use crate::wire::frame::DEFAULT_MAX_MESSAGE;
use crate::wire::MAX_CAPACITY;
use std::collections::BTreeSet;
use std::time::Duration;

/// Which submitters a worker runs pieces for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AcceptFrom {
    /// Any member of the mesh.
    #[default]
    Any,
    /// Only these peers (the driver maps its peer ids to keys up front).
    Only(BTreeSet<PeerKey>),
}

impl AcceptFrom {
    /// Does this policy let `peer` submit work?
    pub fn allows(&self, peer: PeerKey) -> bool {
        match self {
            AcceptFrom::Any => true,
            AcceptFrom::Only(set) => set.contains(&peer),
        }
    }
}

/// Everything a [`Machine`](crate::Machine) is configured with.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's own key (the driver's mapping for itself).
    pub me: PeerKey,
    /// Seed of every random choice the machine makes.
    pub seed: u64,
    /// Pieces run at once by this node's worker (0: runs none).
    pub slots: u32,
    /// Most pieces accepted at once (running + queued).
    pub capacity: u32,
    /// Tasks this node's worker runs.
    pub tasks: Vec<String>,
    /// Whose pieces this node runs.
    pub accept_from: AcceptFrom,
    /// Most pieces accepted at once from one submitter.
    pub max_pieces_per_submitter: u32,
    /// Longest deadline a submitter may ask for one piece on this worker; a
    /// piece running longer is failed and its slot freed.
    pub max_piece_timeout: Duration,
    /// Longest deadline for one piece of a submitter this node has not
    /// heard advertise (not yet proven a member of the mesh): a stranger
    /// cannot hold a slot for [`max_piece_timeout`](Self::max_piece_timeout).
    pub max_stranger_piece_timeout: Duration,
    /// Longest gap between two adverts in a small mesh. In a larger one the
    /// gap grows so the whole mesh publishes about [`advert_budget`](Self::advert_budget)
    /// adverts a second (each node hears O(1) adverts a second, not O(N)).
    pub advert_interval: Duration,
    /// Adverts per second the whole mesh aims to publish while idle.
    pub advert_budget: u32,
    /// Shortest gap between two adverts when the load changes in a small mesh.
    pub advert_debounce: Duration,
    /// Load-change adverts per second the whole mesh aims for: in a larger
    /// mesh the debounce grows so busy nodes do not flood everyone.
    pub change_budget: u32,
    /// The advert interval never grows past this.
    pub max_advert_interval: Duration,
    /// The rule meshwork used before protocol version 2, kept so the
    /// simulator can show why it was dropped: `Some(d)` judges a peer dead
    /// (and closes its connections) when its adverts stop for `d`. `None`
    /// (the default): a late advert is only a stale load figure; death is
    /// a closed connection or unanswered probes.
    pub advert_expiry: Option<Duration>,
    /// A peer owing us results that has been silent this long is probed.
    pub probe_interval: Duration,
    /// A probe unanswered this long marks its peer down (the least timeout:
    /// a peer whose answers are slow gets its mean plus four deviations).
    pub probe_timeout: Duration,
    /// Cadence of probe, backup and stall checks.
    pub maintenance_interval: Duration,
    /// Work one batch should hold per slot: tiny pieces are grouped until a
    /// batch takes about this long, so dispatch cost does not dominate.
    pub batch_target: Duration,
    /// Most pieces in one batch.
    pub max_batch: u32,
    /// Most input bytes in one batch (stays under the RPC message limit).
    pub max_batch_bytes: usize,
    /// The RPC message limit: a batch whose outputs would exceed it is
    /// answered with failures that say so instead (a clear error rather
    /// than a message the transport refuses).
    pub max_message: usize,
    /// How long a peer that answered "busy" is left alone.
    pub busy_backoff: Duration,
    /// A piece running longer than this many percent of the median piece
    /// time gets a speculative backup once nothing else is left to place.
    pub backup_percent: u32,
    /// Completed pieces needed before the median is trusted for backups.
    pub backup_min_samples: u32,
    /// A batch held longer than this many times what its pieces should
    /// take is overdue: its pieces are backed up at once (even while other
    /// pieces wait to be placed, and from the first finished piece on) and
    /// its peer loses trust. "Should take" is the slowest per-piece round
    /// trip this job has seen, times the batch's pieces: with one finished
    /// piece that one is the evidence, and more evidence only raises the
    /// bar, so an honest peer is judged overdue only when it is this many
    /// times slower than the slowest answer so far (4: well past a worker
    /// queue of a batch or two and pieces of uneven cost).
    pub overdue_factor: u32,
    /// Added to every overdue deadline: the round trip, a worker that is
    /// starting up, and the maintenance tick that notices (short pieces
    /// would otherwise be judged on noise).
    pub overdue_slack: Duration,
    /// How a peer is chosen for a batch.
    pub policy: Policy,
}

impl Config {
    /// Defaults for a node with key `me`, seeded with `seed`.
    pub fn new(me: PeerKey, seed: u64) -> Config {
        let slots = 1;
        let max_batch = 4096;
        Config {
            me,
            seed,
            slots,
            capacity: default_capacity(slots, max_batch),
            tasks: Vec::new(),
            accept_from: AcceptFrom::Any,
            max_pieces_per_submitter: u32::MAX,
            max_piece_timeout: Duration::from_secs(3600),
            max_stranger_piece_timeout: Duration::from_secs(60),
            advert_interval: Duration::from_secs(1),
            advert_budget: 5,
            advert_debounce: Duration::from_millis(100),
            change_budget: 20,
            max_advert_interval: Duration::from_secs(60),
            advert_expiry: None,
            probe_interval: Duration::from_millis(1000),
            probe_timeout: Duration::from_millis(2000),
            maintenance_interval: Duration::from_millis(250),
            batch_target: Duration::from_millis(5),
            max_batch,
            max_batch_bytes: DEFAULT_MAX_MESSAGE / 2,
            max_message: DEFAULT_MAX_MESSAGE,
            busy_backoff: Duration::from_millis(100),
            backup_percent: 200,
            backup_min_samples: 3,
            overdue_factor: 4,
            overdue_slack: Duration::from_secs(1),
            policy: Policy::P2c,
        }
    }

    /// The advert interval and the load-change debounce in a mesh of `mesh`
    /// nodes: each grows with the mesh so the whole mesh publishes about
    /// its budget of adverts a second (what one node hears stays bounded).
    pub fn advert_pace(&self, mesh: u32) -> (Duration, Duration) {
        let scaled =
            |floor: Duration, budget: u32| floor.max(Duration::from_secs_f64(mesh as f64 / budget.max(1) as f64));
        let interval =
            scaled(self.advert_interval, self.advert_budget).min(self.max_advert_interval.max(self.advert_interval));
        let debounce = scaled(self.advert_debounce, self.change_budget).min(interval);
        (interval, debounce)
    }

    /// Sets the slot count and the capacity that goes with it.
    pub fn with_slots(mut self, slots: u32) -> Config {
        self.slots = slots;
        self.capacity = default_capacity(slots, self.max_batch);
        self
    }
}

/// Room for two full batches per slot (one running, one on its way),
/// within what adverts may claim.
pub fn default_capacity(slots: u32, max_batch: u32) -> u32 {
    slots.saturating_mul(max_batch).saturating_mul(2).clamp(slots, MAX_CAPACITY.max(slots))
}
