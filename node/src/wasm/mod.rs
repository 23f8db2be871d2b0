//! WebAssembly tasks: a user's own program, compiled to a WASI preview 1
//! command module, run on the mesh's workers in a sandbox.
//!
//! - [`args`]: `meshwork run wasm`: pieces from the command line, outputs merged.
//! - [`sandbox`]: compiling a module and running one piece in it, with
//!   every limit (memory, output, time through the piece's cancel flag).
//! - [`cache`]: modules by SHA-256, fetched and compiled once per node.
//! - [`shelf`]: the modules a submitter offers, and the protocol workers fetch them with.
//! - [`service`]: the driver's side of the module protocol.
//! - [`task`]: the `wasm` task the scheduler runs like any other.
//! - `budget`: a bound on the bytes of modules being loaded at once.
//! - `pipe`: a guest's stdout and stderr, capped.
//! - `ticker`: the epoch clock that lets a running guest be interrupted.

pub mod args;
mod budget;
pub mod cache;
mod pipe;
pub mod sandbox;
pub mod service;
pub mod shelf;
pub mod task;
mod ticker;

pub use cache::{CacheError, ModuleCache, ModuleId};
pub use sandbox::{Guest, GuestError, Limits, PieceCall, Sandbox};
pub use task::{ModuleFetcher, Wasm, WasmJob, WasmPiece};

#[cfg(test)]
mod tests;
