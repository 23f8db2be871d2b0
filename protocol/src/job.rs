//! A job as its submitter tracks it: the pieces, who holds each, what came
//! back, and the public types that describe a job from outside (its spec,
//! its events, its result or error).

use crate::histogram::Histogram;
use crate::ids::{JobId, PeerKey, RequestId};
use crate::policy::Choice;
use crate::time::{human, Time};
use crate::wire::RejectReason;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// What to run.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// Registered task name.
    pub task: String,
    /// One encoded input per piece.
    pub inputs: Vec<Vec<u8>>,
    /// A piece that failed this many times fails the job.
    pub max_attempts: u32,
    /// Deadline of one piece, measured from when its batch was sent.
    pub piece_timeout: Duration,
    /// A job that nobody can take (no peer runs the task, every candidate
    /// failed the piece or refused) fails after this long.
    pub stall_timeout: Duration,
    /// Emit [`JobEvent::Placed`] and [`JobEvent::Unplaceable`].
    pub explain: bool,
    /// Launch speculative backups of stragglers.
    pub backups: bool,
    /// A conclusive output ends the job early (the task allows it; see
    /// `Task::EARLY_EXIT`). Otherwise workers' conclusive flags are ignored.
    pub early_exit: bool,
    /// Emit [`JobEvent::Output`] for each piece as it is done, so a driver
    /// can show outputs while the job runs (`run exec` prints them in
    /// order, or as they come, and halts on failures) or store them (the
    /// job service). The outputs are then not kept for the job's result:
    /// its [`JobOutput::outputs`] is empty.
    pub stream: bool,
}

impl JobSpec {
    /// A job of `task` over `inputs`, with default limits.
    pub fn new(task: impl Into<String>, inputs: Vec<Vec<u8>>) -> JobSpec {
        JobSpec {
            task: task.into(),
            inputs,
            max_attempts: 3,
            piece_timeout: Duration::from_secs(300),
            stall_timeout: Duration::from_secs(10),
            explain: false,
            backups: true,
            early_exit: false,
            stream: false,
        }
    }
}

/// Something that happened to a job.
#[derive(Clone, Debug)]
pub enum JobEvent {
    /// Pieces went to a peer (only with [`JobSpec::explain`]).
    Placed {
        /// The job.
        job: JobId,
        /// Where they went.
        peer: PeerKey,
        /// Which pieces.
        pieces: Vec<u32>,
        /// The peer chosen and the candidates weighed.
        choice: Choice,
        /// A speculative copy of a straggler.
        backup: bool,
    },
    /// Nothing could be placed, and why (only with [`JobSpec::explain`]).
    Unplaceable {
        /// The job.
        job: JobId,
        /// The piece waiting.
        piece: u32,
        /// Every peer and why it cannot take the piece.
        why: Unplaceable,
    },
    /// More pieces are done.
    Progress {
        /// The job.
        job: JobId,
        /// Pieces done.
        done: u32,
        /// Pieces in all.
        total: u32,
    },
    /// A piece is done (only with [`JobSpec::stream`]); its output is
    /// given here only, not again in the job's result.
    Output {
        /// The job.
        job: JobId,
        /// The piece.
        piece: u32,
        /// Who ran it.
        peer: PeerKey,
        /// What it gave back.
        output: Vec<u8>,
    },
    /// A piece failed on a peer and goes elsewhere.
    Retried {
        /// The job.
        job: JobId,
        /// The piece.
        piece: u32,
        /// Where it failed.
        peer: PeerKey,
        /// Why.
        cause: FailureCause,
        /// The peer failed the piece itself (error, deadline), so it never
        /// gets the piece again; `false` when it only went away holding it.
        banned: bool,
    },
    /// A peer refused the job's pieces for a reason other than being busy.
    Refused {
        /// The job.
        job: JobId,
        /// Who refused.
        peer: PeerKey,
        /// Why.
        reason: RejectReason,
    },
    /// The job ended.
    Finished {
        /// The job.
        job: JobId,
        /// Its outputs, or why it failed.
        result: Result<JobOutput, JobError>,
    },
}

impl JobEvent {
    /// The job it is about.
    pub fn job(&self) -> JobId {
        match self {
            JobEvent::Placed { job, .. }
            | JobEvent::Unplaceable { job, .. }
            | JobEvent::Progress { job, .. }
            | JobEvent::Output { job, .. }
            | JobEvent::Retried { job, .. }
            | JobEvent::Refused { job, .. }
            | JobEvent::Finished { job, .. } => *job,
        }
    }
}

/// Counters of a job's life, reported in its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    /// Pieces in the job.
    pub pieces: u32,
    /// Submit to end.
    pub elapsed: Duration,
    /// Pieces each peer completed (the winning copy only).
    pub per_peer: BTreeMap<PeerKey, u32>,
    /// Pieces sent again after a failure.
    pub retries: u32,
    /// Speculative backup copies launched.
    pub backups: u32,
    /// Backups that finished first.
    pub backups_won: u32,
    /// Batches held past their overdue deadline (see
    /// [`Config::overdue_factor`](crate::Config::overdue_factor)).
    pub overdue: u32,
    /// Results ignored because the piece was already done.
    pub duplicates: u32,
    /// Results for pieces the peer was not running.
    pub unsolicited: u32,
    /// Batches refused by workers (busy or not allowed).
    pub rejections: u32,
    /// Batches sent.
    pub batches: u32,
    /// Time the workers say they spent executing the batches they answered
    /// (winning and losing copies alike): with `elapsed` and the slots it
    /// splits a job's wall time into work and idle slots.
    pub exec: Duration,
}

/// A finished job.
#[derive(Clone, Debug)]
pub struct JobOutput {
    /// Outputs in piece order; after a conclusive output ended the job
    /// early, only the pieces that had finished, still in piece order.
    /// Empty for a streamed job ([`JobSpec::stream`]): its outputs came in
    /// [`JobEvent::Output`]s.
    pub outputs: Vec<Vec<u8>>,
    /// The piece whose output ended the job early.
    pub conclusive: Option<u32>,
    /// Counters.
    pub stats: JobStats,
}

/// The causes of one piece's failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceFailure {
    /// The piece.
    pub piece: u32,
    /// Each failure: the peer and what it said (or what we saw).
    pub causes: Vec<(PeerKey, FailureCause)>,
}

/// Why one attempt at a piece failed: the worker's own words, or what the
/// submitter saw. A type rather than text so that drivers and the
/// simulator can tell the kinds apart; `Display` gives the words users see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureCause {
    /// The worker ran the piece and reported a failure (a panic, the task's
    /// error, a guest's exit code), in its words.
    Worker(String),
    /// The worker's results left the piece out.
    Missing,
    /// The worker answered the run request with something other than results.
    WrongAnswer,
    /// The request failed on its way (a broken stream, a frame the peer refused).
    Request(String),
    /// The peer went down while holding the piece, for this reason.
    PeerDown(String),
    /// No result within the piece deadline.
    Deadline(Duration),
}

impl std::fmt::Display for FailureCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureCause::Worker(words) => f.write_str(words),
            FailureCause::Missing => f.write_str("missing from the worker's results"),
            FailureCause::WrongAnswer => f.write_str("answered a run request with something else"),
            FailureCause::Request(why) => write!(f, "request failed: {why}"),
            FailureCause::PeerDown(why) => write!(f, "peer down ({why})"),
            FailureCause::Deadline(d) => write!(f, "no result within the piece deadline of {}", human(*d)),
        }
    }
}

/// Why a job failed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// A piece failed `max_attempts` times.
    #[error("{}", self.describe(&|p| p.to_string()))]
    PieceFailed(PieceFailure),
    /// No peer could take a piece for the whole stall timeout.
    #[error("{}", self.describe(&|p| p.to_string()))]
    Stalled {
        /// The piece that waited.
        piece: u32,
        /// How long.
        waited: Duration,
        /// Every peer and why not.
        why: Unplaceable,
    },
    /// Pieces failed in a way that repeats wherever they run (a wasm
    /// guest's trap or exit code), as two peers reported, or the only
    /// peer that runs the task twice.
    #[error("{}", self.describe(&|p| p.to_string()))]
    Repeats {
        /// Each report: the piece, the peer, what it said.
        failures: Vec<(u32, PeerKey, String)>,
    },
    /// Cancelled by the submitter.
    #[error("cancelled")]
    Cancelled,
}

impl JobError {
    /// The error in words, naming peers with `name` (the node uses peer ids).
    pub fn describe(&self, name: &dyn Fn(PeerKey) -> String) -> String {
        match self {
            JobError::PieceFailed(f) => {
                let causes: Vec<String> = f.causes.iter().map(|(p, c)| format!("on {}: {c}", name(*p))).collect();
                format!("piece {} failed {} times: {}", f.piece, f.causes.len(), causes.join("; "))
            }
            JobError::Stalled { piece, waited, why } => {
                format!("no peer could take piece {piece} for {}: {}", human(*waited), why.describe(name))
            }
            JobError::Repeats { failures } => {
                let each: Vec<String> =
                    failures.iter().map(|(piece, p, c)| format!("piece {piece} on {}: {c}", name(*p))).collect();
                format!("a failure that repeats on any peer: {}", each.join("; "))
            }
            JobError::Cancelled => "cancelled".to_string(),
        }
    }
}

/// Why no peer can take a piece: each reason, with the peers it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unplaceable {
    /// This node (named "this node" in descriptions).
    pub me: PeerKey,
    /// Reasons, each with the peers it applies to.
    pub reasons: Vec<(String, Vec<PeerKey>)>,
}

impl Unplaceable {
    /// The reasons in words, naming peers with `name`; long lists are counted.
    pub fn describe(&self, name: &dyn Fn(PeerKey) -> String) -> String {
        if self.reasons.is_empty() {
            return "no peers known".to_string();
        }
        let part = |(reason, peers): &(String, Vec<PeerKey>)| match peers.as_slice() {
            [one] if *one == self.me => format!("this node {reason}"),
            ps if ps.len() <= 8 => format!("{} {reason}", ps.iter().map(|p| name(*p)).collect::<Vec<_>>().join(", ")),
            ps => format!("{} peers {reason}", ps.len()),
        };
        self.reasons.iter().map(part).collect::<Vec<_>>().join("; ")
    }
}

impl std::fmt::Display for Unplaceable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(&|p| p.to_string()))
    }
}

/// Why a job could not be submitted.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The task name is not a valid name.
    #[error("invalid task name {0:?}")]
    TaskName(String),
    /// A piece's input alone is larger than a batch may be.
    #[error("piece {piece} has {len} bytes of input, more than the {limit}-byte message limit allows")]
    PieceTooLarge {
        /// The piece.
        piece: u32,
        /// Its input length.
        len: usize,
        /// The batch byte limit.
        limit: usize,
    },
    /// More pieces than a job may have.
    #[error("{0} pieces is more than the {max} a job may have", max = u32::MAX)]
    TooManyPieces(usize),
}

/// One piece's bookkeeping (kept small: a job may have millions).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PieceState {
    pub(crate) done: bool,
    pub(crate) backed_up: bool,
    pub(crate) failures: u32,
    /// Requests carrying this piece now (a second one for a backup); 0 = none.
    holders: [u64; 2],
}

impl PieceState {
    pub(crate) fn holds(&self, req: RequestId) -> bool {
        self.holders.contains(&req.0)
    }
    pub(crate) fn hold(&mut self, req: RequestId) {
        if let Some(h) = self.holders.iter_mut().find(|h| **h == 0) {
            *h = req.0;
        }
    }
    pub(crate) fn release(&mut self, req: RequestId) {
        if let Some(h) = self.holders.iter_mut().find(|h| **h == req.0) {
            *h = 0;
        }
    }
    /// Requests holding the piece other than `req`.
    pub(crate) fn other_holder(&self, req: RequestId) -> Option<RequestId> {
        self.holders.iter().find(|h| **h != 0 && **h != req.0).map(|h| RequestId(*h))
    }
    pub(crate) fn held(&self) -> usize {
        self.holders.iter().filter(|h| **h != 0).count()
    }
}

/// Rarely needed per-piece facts, kept aside.
#[derive(Clone, Debug, Default)]
pub(crate) struct PieceHistory {
    pub(crate) causes: Vec<(PeerKey, FailureCause)>,
    /// Peers that failed the piece itself (not merely went down while
    /// holding it): it never goes back to them.
    pub(crate) banned: Vec<PeerKey>,
}

/// A least-squares line through (piece index, piece time) samples.
#[derive(Clone, Debug, Default)]
struct Trend {
    n: f64,
    x: f64,
    y: f64,
    xy: f64,
    xx: f64,
}

impl Trend {
    /// Samples needed before the slope is believed.
    const MIN_SAMPLES: f64 = 4.0;

    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xy += x * y;
        self.xx += x * x;
    }

    /// Do later pieces clearly take longer: would the last of `pieces`
    /// take a quarter of a mean piece more than the first?
    fn grows(&self, pieces: usize) -> bool {
        if self.n < Self::MIN_SAMPLES {
            return false;
        }
        let var = self.n * self.xx - self.x * self.x;
        if var <= 0.0 {
            return false;
        }
        let slope = (self.n * self.xy - self.x * self.y) / var;
        slope * pieces as f64 > 0.25 * self.y / self.n
    }
}

/// A job in progress on its submitter.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: JobId,
    pub(crate) spec: JobSpec,
    pub(crate) states: Vec<PieceState>,
    pub(crate) outputs: Vec<Option<Vec<u8>>>,
    /// Pieces waiting to be placed; read through [`Job::next_pending`].
    pending: VecDeque<u32>,
    /// How piece times grow with the piece index, to place the largest first.
    trend: Trend,
    pub(crate) history: FxHashMap<u32, PieceHistory>,
    /// Peers that refused this job (not allowed, unknown task...).
    pub(crate) refused: Vec<PeerKey>,
    /// Failures that repeat wherever the piece runs, as reported: (piece, peer, cause).
    pub(crate) repeats: Vec<(u32, PeerKey, String)>,
    /// Requests carrying its pieces now.
    pub(crate) batches: FxHashSet<RequestId>,
    pub(crate) done: u32,
    pub(crate) started: Time,
    pub(crate) stalled_since: Option<Time>,
    /// Round trip of each answered batch divided by its pieces: what one
    /// piece takes from sending to answer, queueing at the worker included.
    pub(crate) piece_times: Histogram,
    pub(crate) stats: JobStats,
}

impl Job {
    pub(crate) fn new(id: JobId, spec: JobSpec, now: Time) -> Job {
        let n = spec.inputs.len();
        Job {
            id,
            states: vec![PieceState::default(); n],
            outputs: vec![None; n],
            pending: (0..n as u32).collect(),
            trend: Trend::default(),
            history: FxHashMap::default(),
            refused: Vec::new(),
            repeats: Vec::new(),
            batches: FxHashSet::default(),
            done: 0,
            started: now,
            stalled_since: None,
            piece_times: Histogram::default(),
            stats: JobStats { pieces: n as u32, ..JobStats::default() },
            spec,
        }
    }

    /// Pieces waiting to be placed.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The piece to place next. Pieces go in index order until the observed
    /// piece times show later pieces are slower; from then on the largest
    /// go first (longest-processing-time first), so the job does not end on
    /// one big piece running alone while the other workers idle.
    pub(crate) fn next_pending(&self) -> Option<u32> {
        if self.largest_first() {
            self.pending.back().copied()
        } else {
            self.pending.front().copied()
        }
    }

    /// Takes the piece [`Job::next_pending`] named.
    pub(crate) fn take_pending(&mut self) -> Option<u32> {
        if self.largest_first() {
            self.pending.pop_back()
        } else {
            self.pending.pop_front()
        }
    }

    /// Puts a piece back to be placed before the others (a retry).
    pub(crate) fn put_back(&mut self, piece: u32) {
        if self.largest_first() {
            self.pending.push_back(piece);
        } else {
            self.pending.push_front(piece);
        }
    }

    fn largest_first(&self) -> bool {
        self.trend.grows(self.states.len())
    }

    /// Records that pieces around index `piece` took `us` each.
    pub(crate) fn observe(&mut self, piece: f64, us: f64) {
        self.trend.add(piece, us);
    }

    /// Age past which a batch of `pieces` pieces is a straggler worth a
    /// backup: the median piece time times `percent` percent, per piece.
    /// `None` until `min_samples` pieces were timed.
    pub(crate) fn straggler_after(&self, pieces: usize, percent: u32, min_samples: u32) -> Option<Duration> {
        if self.piece_times.count() < min_samples as u64 {
            return None;
        }
        let median = self.piece_times.quantile(0.5)?;
        Some(median.saturating_mul(percent).saturating_mul(pieces as u32) / 100)
    }

    /// Age past which a batch of `pieces` pieces is overdue: `factor` times
    /// the slowest piece time seen, per piece, plus `slack`. `None` before
    /// the first answer (see [`Config::overdue_factor`](crate::Config::overdue_factor)).
    pub(crate) fn overdue_after(&self, pieces: usize, factor: u32, slack: Duration) -> Option<Duration> {
        let slowest = self.piece_times.quantile(1.0)?;
        Some(slowest.saturating_mul(factor).saturating_mul(pieces as u32).saturating_add(slack))
    }

    pub(crate) fn total(&self) -> u32 {
        self.states.len() as u32
    }

    /// Did `peer` fail `piece` itself before (an error, a missed deadline)?
    pub(crate) fn failed_on(&self, piece: u32, peer: PeerKey) -> bool {
        self.history.get(&piece).is_some_and(|e| e.banned.contains(&peer))
    }

    /// May `peer` get `piece`?
    pub(crate) fn may_place(&self, piece: u32, peer: PeerKey) -> bool {
        !self.refused.contains(&peer) && !self.failed_on(piece, peer)
    }

    /// The outputs in piece order (only those present after an early end).
    pub(crate) fn take_outputs(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outputs).into_iter().flatten().collect()
    }

    pub(crate) fn finish_stats(&mut self, now: Time) -> JobStats {
        self.stats.elapsed = now.since(self.started);
        self.stats.clone()
    }
}
