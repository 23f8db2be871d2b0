//! WebAssembly tasks: a user's own program, compiled to a WASI preview 1
//! command module, run on the mesh's workers in a sandbox.
//!
//! - [`sandbox`]: compiling a module and running one piece in it, with
//!   every limit (memory, output, time through the piece's cancel flag).
//! - [`cache`]: modules by SHA-256, fetched and compiled once per node.
//! - [`shelf`]: the modules a submitter offers, and the protocol workers fetch them with.
//! - [`task`]: the `wasm` task the scheduler runs like any other.
//! - `pipe`: a guest's stdout and stderr, capped.
//! - `ticker`: the epoch clock that lets a running guest be interrupted.

pub mod cache;
mod pipe;
pub mod sandbox;
pub mod shelf;
pub mod task;
mod ticker;

pub use cache::{CacheError, ModuleCache, ModuleId};
pub use sandbox::{Guest, GuestError, Limits, PieceCall, Sandbox};
pub use task::{ModuleFetcher, Wasm, WasmJob, WasmPiece};

#[cfg(test)]
mod tests;
