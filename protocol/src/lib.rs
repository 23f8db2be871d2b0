//! # meshwork-protocol
//!
//! Everything meshwork peers say to each other and every decision a node
//! makes, with no I/O: no sockets, no tokio, no clock, no OS randomness.
//! The node (`meshwork` crate) drives a [`Machine`] from its tokio loop and
//! libp2p swarm; the simulator (`meshwork-simulations`) drives the very same
//! [`Machine`] in virtual time. A behaviour shown in simulation is the
//! behaviour shipped.
//!
//! Modules:
//! - [`wire`]: messages (adverts, RPC requests and responses), CBOR, framing, validation.
//! - [`task`]: the `Task` trait (split, run, merge) and the registry of runners.
//! - [`policy`]: placement policies (p2c and the ones it is compared with).
//! - `machine`: [`Machine`], the state machine; it owns
//!   - `peers`: what is known of each peer (load, liveness, room per task),
//!   - `worker`: accepted batches, slots, deadlines,
//!   - `scheduler` and `job`: placement, retries, backups, merging order,
//!   - `outbox`: the [`Action`]s for the driver,
//!   - `message_limit`: results too large for one message become failures,
//!   - `status`: Status requests asked for a client, and their answers.
//! - [`config`]: the knobs, with defaults for a LAN.
//! - [`gossip`]: the gossipsub parameters adverts travel with, shared by
//!   the node's gossipsub and the simulator's model of it.
//! - [`redial`]: when a lost peer is dialled again, shared by the node's
//!   dialer and the simulator's model of it.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod gossip;
mod histogram;
mod ids;
mod job;
mod machine;
mod message_limit;
mod outbox;
mod peers;
pub mod policy;
pub mod redial;
mod scheduler;
mod status;
pub mod task;
mod time;
pub mod timeline;
pub mod wire;
mod worker;

pub use config::{AcceptFrom, Config};
pub use histogram::Histogram;
pub use ids::{ExecId, InboundId, JobId, PeerKey, RequestId};
pub use job::{FailureCause, JobError, JobEvent, JobOutput, JobSpec, JobStats, PieceFailure, SubmitError, Unplaceable};
pub use machine::Machine;
pub use outbox::Action;
pub use peers::{DownReason, PeerEvent, PeerView};
pub use policy::Policy;
pub use status::{StatusAnswer, StatusError};
pub use time::{human, Time};
pub use worker::Execution;

#[cfg(test)]
mod tests;
