//! # meshwork-simulations
//!
//! A single-threaded discrete-event simulation, in virtual time, of
//! thousands of meshwork nodes, each driving the very same
//! [`meshwork_protocol::Machine`] the real node runs: scheduling, retries,
//! backups and placement are the protocol's, never re-implemented here.
//! The simulator only carries messages, runs pieces at each node's speed,
//! and breaks things (crashes, hangs, partitions, churn, loss).
//!
//! `meshwork simulate` calls [`run_cli`]; tests call [`run`] and read the
//! [`Report`]. The same seed and options give byte-identical reports. The node's `--real` harness runs the same [`SimConfig`] and
//! [`Plan`] on real nodes and feeds a [`Recorder`], so both reports come
//! from one place.
//!
//! Modules:
//! - `args`: [`SimArgs`], the options (clap), the repro command line.
//! - `config`: [`SimConfig`], a run as plain data; how it sets up machines and jobs.
//! - `plan`: [`Plan`], what the seed draws before the run: pieces, node speeds, churn.
//! - `dist`: [`Dist`], distributions of durations and speeds; durations and fractions.
//! - `scenario`: scripted faults read from `--scenario`.
//! - `queue`: the event queue (virtual time, then insertion order).
//! - `network`: latency, loss, partitions, FIFO connections with epochs.
//! - `reach`: [`ReachConfig`], NATed nodes, relays and their circuits, hole punching.
//! - `hosts`: IP addresses and gossipsub's IP-colocation penalty.
//! - `gossip`: how an advert spreads (a gossipsub mesh of 4 to 8, lazy gossip).
//! - `node`: one simulated node: its machine, life, executions.
//! - `sim`: the event loop (`sim::links`: connections; `sim::adverts`:
//!   publishing; `sim::faults`: crashes, hangs, churn...).
//! - `jobs`: the submitted jobs and the invariants checked on them.
//! - `ledger`: each node's life, to judge down-judgements and presence.
//! - `recorder`: [`Recorder`], fed by either harness, makes the [`RunReport`].
//! - `trace`: the `--trace` lines and their FNV-1a hash.
//! - `report`: [`Report`] as text and JSON.
//! - `placement`: `--placement-only`, balls into bins with the protocol's chooser.
//! - `plot`: the `--plot` SVG.
//! - `run`: [`run`], [`emit`], [`run_cli`], [`SimOutcome`].
//! - `error`: [`SimError`].

#![warn(missing_docs, unreachable_pub)]

mod args;
mod config;
mod dist;
mod error;
mod gossip;
mod hosts;
mod jobs;
mod ledger;
mod network;
mod node;
mod placement;
mod plan;
mod plot;
mod queue;
mod reach;
mod recorder;
mod report;
mod run;
mod scenario;
mod sim;
mod trace;

pub use args::{Outputs, SimArgs};
pub use config::SimConfig;
pub use dist::{parse_duration, parse_fraction, Dist, DistError, Kind, Shape};
pub use error::SimError;
pub use jobs::{piece_cost, piece_input};
pub use plan::{ChurnKind, NodeDraw, Plan, Step, REPLACE_AFTER};
pub use reach::ReachConfig;
pub use recorder::{NodeSample, Recorder};
pub use report::{Faults, JobSummary, LoadSummary, Messages, PlacementReport, ReachReport, Report, RunReport, Sample};
pub use run::{emit, run, run_cli, run_with_timelines, SimOutcome};
pub use scenario::{parse as parse_scenario, Fault, ScenarioError, Scripted};
