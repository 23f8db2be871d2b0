//! # meshwork
//!
//! A meshwork node: the libp2p swarm and the tokio loop that drive the
//! sans-IO [`meshwork_protocol::Machine`], the built-in tasks, and the
//! `meshwork` command line.
//!
//! Modules:
//! - [`node`]: [`Node::start`](node::Node::start) and its [`NodeConfig`](node::NodeConfig).
//! - [`client`]: [`Client`](client::Client), the handle everything else talks to the node through.
//! - `driver`: the one task that owns the swarm and the machine.
//! - `net`: transports, behaviours, the RPC codec, identities, peer-id mapping.
//! - `executor`: runs pieces on tokio's blocking pool, contains panics.
//! - [`tasks`]: the built-in tasks (`primes`, `mandelbrot`, ...).
//! - [`wasm`]: WebAssembly tasks: the sandbox a user's module runs in.
//! - [`exec`]: commands on the mesh (`--allow-exec`, `meshwork run exec`).
//! - [`service`]: jobs a long-running node owns and keeps on disk.
//! - [`http`]: the node's local HTTP API (`meshwork node`), see API.md.
//! - [`metrics`]: what `GET /metrics` reports.
//! - [`cli`]: the `meshwork` subcommands.

#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod client;
mod driver;
pub mod exec;
mod executor;
pub mod http;
pub mod metrics;
pub mod net;
pub mod node;
pub mod service;
pub mod tasks;
pub mod wasm;

pub use client::{Client, JobOptions, JobReport, MeshEvent, NodeStats, PeerInfo, RunError};
pub use node::{Node, NodeConfig, StartError, WasmConfig};
