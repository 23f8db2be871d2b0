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
//! [`Report`]. The same seed and options give byte-identical reports.
//!
//! Modules:
//! - `args`: [`SimArgs`], the options (clap), and the repro command line.
//! - `dist`: [`Dist`], distributions of durations and speeds; durations and fractions.
//! - `scenario`: scripted faults read from `--scenario`.
//! - `queue`: the event queue (virtual time, then insertion order).
//! - `network`: latency, loss, partitions, FIFO connections with epochs.
//! - `node`: one simulated node: its machine, life, executions.
//! - `sim`: the event loop; carries every machine's actions, follows job events.
//! - `jobs`: the submitted jobs and the invariants checked on them.
//! - `trace`: the `--trace` lines and their FNV-1a hash.
//! - `report`: [`Report`] as text and JSON.
//! - `placement`: `--placement-only`, balls into bins with the protocol's chooser.
//! - `plot`: the `--plot` SVG.
//! - `run`: [`run`], [`run_cli`], [`Outcome`].
//! - `error`: [`SimError`].

#![warn(missing_docs, unreachable_pub)]

mod args;
mod dist;
mod error;
mod jobs;
mod network;
mod node;
mod placement;
mod plot;
mod queue;
mod report;
mod run;
mod scenario;
mod sim;
mod trace;

pub use args::SimArgs;
pub use dist::{parse_duration, parse_fraction, Dist, DistError, Kind, Shape};
pub use error::SimError;
pub use plot::draw as draw_plot;
pub use report::{Faults, JobSummary, LoadSummary, Messages, PlacementReport, Report, RunReport, Sample};
pub use run::{run, run_cli, Outcome};
pub use scenario::{parse as parse_scenario, Fault, ScenarioError, Scripted};
