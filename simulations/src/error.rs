//! [`SimError`]: why a simulation could not run (as opposed to a run that
//! broke an invariant, which is reported in its [`Report`](crate::Report)).

use crate::scenario::ScenarioError;
use std::path::PathBuf;

/// Why a simulation could not run or write its outputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The options do not describe a run.
    #[error("invalid options: {0}")]
    Args(String),
    /// The scenario file could not be read.
    #[error("cannot read the scenario {}: {source}", path.display())]
    ReadScenario {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A scenario line is wrong.
    #[error("scenario {}, {source}", path.display())]
    Scenario {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong.
        #[source]
        source: ScenarioError,
    },
    /// A scenario event names a node that does not exist when it happens.
    #[error("scenario line {line}: node {node} does not exist at {at} ({nodes} nodes so far)")]
    NoSuchNode {
        /// The scenario line.
        line: usize,
        /// The node named.
        node: u32,
        /// When the event happens.
        at: meshwork_protocol::Time,
        /// Nodes that existed then.
        nodes: usize,
    },
    /// The trace or the plot could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The plot could not be drawn.
    #[error("cannot draw the plot {}: {message}", path.display())]
    Plot {
        /// The file.
        path: PathBuf,
        /// What the plotting library said.
        message: String,
    },
}
