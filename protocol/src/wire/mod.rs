//! The wire: every message meshwork peers exchange, as serde types carried in
//! CBOR. `PROTOCOL.md` at the repository root is the human-readable spec of
//! exactly these types; `tests` in this module check its hex examples.
//!
//! - [`Advert`]: published on the gossipsub topic [`ADVERT_TOPIC`].
//! - [`Request`] / [`Response`]: the RPC protocol [`RPC_PROTOCOL`], as
//!   numbered [`RequestFrame`]s and [`ResponseFrame`]s on one long-lived
//!   stream per requester and peer, framed by [`frame`].

mod cbor;
pub mod frame;
mod validate;

pub use cbor::{from_cbor, to_cbor, CborError};
pub use validate::{
    decode_advert, valid_task_name, AdvertError, MAX_ADVERT_BYTES, MAX_CAPACITY, MAX_INTERVAL_MS, MAX_MESH, MAX_SLOTS,
    MAX_TASKS, MAX_TASK_NAME,
};

use crate::ids::JobId;
use serde::{Deserialize, Serialize};

/// Version of the messages below. A peer rejects adverts and run requests of
/// another version (see PROTOCOL.md, "Versioning"). Version 2: a Status
/// answer carries the whole [`Advert`]; adverts carry their interval and the
/// sender's count of the mesh.
pub const PROTOCOL_VERSION: u16 = 2;

/// libp2p protocol id of the RPC streams.
pub const RPC_PROTOCOL: &str = "/meshwork/rpc/2";

/// Gossipsub topic (an `IdentTopic`: the raw string) carrying load adverts.
pub const ADVERT_TOPIC: &str = "meshwork/load/2";

/// Kademlia protocol id, our own so we never mix with the public DHT.
pub const KAD_PROTOCOL: &str = "/meshwork/kad/2";

/// A peer's current load as it reports it in every response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Pieces it runs at once (0: it runs none, e.g. `meshwork peers`).
    pub slots: u32,
    /// Slots busy now (at most `slots`).
    pub running: u32,
    /// Accepted pieces waiting for a slot.
    pub queued: u32,
    /// Most pieces it accepts at once (running + queued); more are rejected.
    pub capacity: u32,
}

impl Load {
    /// Pieces accepted and not yet answered.
    pub fn outstanding(&self) -> u32 {
        self.running.saturating_add(self.queued)
    }
}

/// A load advert, published at least every advert interval and at once
/// (debounced) when the load changes, and sent directly as the answer to
/// [`Request::Status`]. The interval grows with the mesh (see
/// [`Advert::interval_ms`]) so that a node hears a bounded number of adverts
/// per second whatever the mesh size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u16,
    /// Increases with every advert of one run of a node.
    pub seq: u64,
    /// See [`Load::slots`].
    pub slots: u32,
    /// See [`Load::running`].
    pub running: u32,
    /// See [`Load::queued`].
    pub queued: u32,
    /// See [`Load::capacity`].
    pub capacity: u32,
    /// Names of the tasks this peer runs.
    pub tasks: Vec<String>,
    /// The sender's longest gap until its next advert, in milliseconds.
    /// Receivers consider its load figure stale ("quiet") after three of
    /// these without hearing from it. 0 (or absent): 1000.
    #[serde(default)]
    pub interval_ms: u32,
    /// How many nodes the sender counts in the mesh, itself included. Nodes
    /// size their advert interval from the largest count a live peer
    /// reports, so a node that sees only part of the mesh still advertises
    /// at the mesh's pace. 0 (or absent): unknown.
    #[serde(default)]
    pub mesh: u32,
    /// Whether other peers can dial the sender (what its AutoNAT probes
    /// found). Absent: unknown (older senders, and nodes that have not
    /// probed yet); omitted when unknown, so such adverts encode as before.
    #[serde(default, skip_serializing_if = "Reachability::is_unknown")]
    pub reachability: Reachability,
}

/// Whether peers can dial a node, as its AutoNAT probes found: peers it
/// asked dialled it back (public) or could not (behind a NAT or firewall;
/// it is then reached through a relay).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reachability {
    /// Peers dialled it back.
    Public,
    /// Peers could not dial it back: behind a NAT or firewall.
    BehindNat,
    /// Not probed yet, or no peer could tell (also any value a later
    /// version may add).
    #[default]
    #[serde(other)]
    Unknown,
}

impl Reachability {
    /// True for [`Reachability::Unknown`].
    pub fn is_unknown(&self) -> bool {
        *self == Reachability::Unknown
    }

    /// How `meshwork peers` says it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "reachable",
            Reachability::BehindNat => "behind NAT",
        }
    }
}

impl Advert {
    /// The load part of the advert.
    pub fn load(&self) -> Load {
        Load { slots: self.slots, running: self.running, queued: self.queued, capacity: self.capacity }
    }
}

/// An RPC request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Health probe and greeting (sent on every new connection): answered
    /// with [`Response::Status`].
    Status,
    /// Run a batch of pieces of one job.
    Run(RunRequest),
    /// Stop pieces of a job (all of them when `pieces` is `None`).
    Cancel(CancelRequest),
    /// Who else is in the mesh: answered with [`Response::Members`]. A node
    /// that joins through `--join` asks the node it joined, then dials them
    /// all, so it sees the whole mesh at once instead of one DHT lookup or
    /// one advert at a time. Answered by the network layer (addresses are
    /// its business), never by the state machine.
    Members,
}

/// A request on an RPC stream: the requester numbers its requests, and the
/// answer to each comes back on the same stream with the same number, in
/// any order (a Status is answered at once, a batch when its pieces end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// The requester's number for it, unique on the stream.
    pub id: u64,
    /// The request.
    pub request: Request,
}

/// The answer to the [`RequestFrame`] with the same `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame {
    /// The request's number.
    pub id: u64,
    /// The answer.
    pub response: Response,
}

/// One member of the mesh, as [`Response::Members`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its libp2p peer id, as bytes (the multihash).
    #[serde(with = "serde_bytes")]
    pub peer: Vec<u8>,
    /// Where it listens, each a multiaddr as bytes.
    pub addrs: Vec<serde_bytes::ByteBuf>,
}

/// Most members one answer lists.
pub const MAX_MEMBERS: usize = 1024;
/// Most addresses listed per member.
pub const MAX_MEMBER_ADDRS: usize = 4;

/// A batch of pieces of one job, all of one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// [`PROTOCOL_VERSION`] of the submitter.
    pub version: u16,
    /// The submitter's job.
    pub job: JobId,
    /// Registered task name.
    pub task: String,
    /// Deadline for one piece once it starts, in milliseconds.
    pub piece_timeout_ms: u64,
    /// The pieces, run in this order.
    pub pieces: Vec<PieceInput>,
}

/// One piece's input, as the task's `split` encoded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceInput {
    /// Index of the piece in its job.
    pub piece: u32,
    /// CBOR of the task's piece type.
    #[serde(with = "serde_bytes")]
    pub input: Vec<u8>,
}

/// Stop pieces of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// The submitter's job.
    pub job: JobId,
    /// Only these pieces; `None` cancels every piece of the job.
    pub pieces: Option<Vec<u32>>,
}

/// An RPC response; each carries the worker's load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Status`]: the advert the worker would publish now.
    Status(Advert),
    /// Answer to [`Request::Run`] once every piece of the batch ended.
    Results(Results),
    /// The batch was not accepted; nothing of it ran.
    Rejected(Rejected),
    /// Answer to [`Request::Cancel`].
    Cancelled(Load),
    /// Answer to [`Request::Members`]: live members other than the two
    /// talking, at most [`MAX_MEMBERS`], each with at most
    /// [`MAX_MEMBER_ADDRS`] addresses.
    Members(Vec<Member>),
}

impl Response {
    /// The worker's load this answer reports, if it reports one.
    pub fn load(&self) -> Option<Load> {
        match self {
            Response::Status(a) => Some(a.load()),
            Response::Cancelled(l) => Some(*l),
            Response::Results(r) => Some(r.load),
            Response::Rejected(r) => Some(r.load),
            Response::Members(_) => None,
        }
    }
}

/// Outcomes of a batch, in any order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Results {
    /// The worker's load after the batch.
    pub load: Load,
    /// Time spent executing the batch, in microseconds (for batch sizing).
    pub exec_us: u64,
    /// One entry per piece of the batch.
    pub pieces: Vec<PieceResult>,
}

/// The outcome of one piece.
///
/// On the wire an [`Outcome::Repeats`] is a `Failed` outcome with
/// `repeats: true` beside it (the field is absent otherwise), so that a
/// peer that predates the flag reads it as an ordinary failure, and a
/// result from such a peer reads as one.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "WirePieceResult<Outcome>")]
pub struct PieceResult {
    /// Index of the piece in its job.
    pub piece: u32,
    /// What happened.
    pub outcome: Outcome,
}

/// A [`PieceResult`] as it is encoded.
#[derive(Serialize, Deserialize)]
struct WirePieceResult<O> {
    piece: u32,
    outcome: O,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    repeats: bool,
}

impl From<WirePieceResult<Outcome>> for PieceResult {
    fn from(w: WirePieceResult<Outcome>) -> PieceResult {
        let outcome = match w.outcome {
            Outcome::Failed(cause) if w.repeats => Outcome::Repeats(cause),
            other => other,
        };
        PieceResult { piece: w.piece, outcome }
    }
}

impl Serialize for PieceResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let failed;
        let (outcome, repeats) = match &self.outcome {
            Outcome::Repeats(cause) => {
                failed = Outcome::Failed(cause.clone());
                (&failed, true)
            }
            other => (other, false),
        };
        WirePieceResult { piece: self.piece, outcome, repeats }.serialize(serializer)
    }
}

/// What happened to one piece.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It ran. `conclusive` ends the whole job early (e.g. hash-search found a nonce).
    Done {
        /// CBOR of the task's output type.
        #[serde(with = "serde_bytes")]
        output: Vec<u8>,
        /// The task says this output settles the job.
        conclusive: bool,
    },
    /// It failed: task error, panic, undecodable input, deadline.
    Failed(String),
    /// It failed in a way that will repeat wherever it runs (a wasm
    /// guest's trap or exit code, an invalid module): the submitter fails
    /// the job rather than retry the piece on every peer. Encoded as
    /// `Failed` with a flag beside it (see [`PieceResult`]).
    #[serde(skip)]
    Repeats(String),
    /// It was cancelled before it ended.
    Cancelled,
}

/// A refused batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The worker's load.
    pub load: Load,
    /// Why.
    pub reason: RejectReason,
}

/// Why a worker refused a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// It is full (capacity, or the per-submitter limit); try elsewhere.
    Busy,
    /// It does not run this task.
    UnknownTask,
    /// This submitter is not in its `--accept-from` list.
    NotAllowed,
    /// The request's protocol version is not the worker's (carried here).
    VersionMismatch(u16),
    /// It is shutting down.
    ShuttingDown,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::Busy => write!(f, "busy"),
            RejectReason::UnknownTask => write!(f, "does not run this task"),
            RejectReason::NotAllowed => write!(f, "refuses work from this submitter (--accept-from)"),
            RejectReason::VersionMismatch(v) => {
                write!(f, "speaks protocol version {v}, we speak {PROTOCOL_VERSION}")
            }
            RejectReason::ShuttingDown => write!(f, "is shutting down"),
        }
    }
}

#[cfg(test)]
mod tests;
