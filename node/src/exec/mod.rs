//! Commands on the mesh: GNU parallel across a trusted LAN.
//!
//! A node whose owner started it with `--allow-exec` runs the `exec` task:
//! each piece is one command line, run in a process group of its own, in a
//! fresh directory, with a cleared environment; its stdout, stderr, exit
//! code and run time come back. `meshwork run exec` builds the command
//! lines from its inputs as parallel does and prints their outputs.
//!
//! - [`placeholders`]: parallel's replacement strings (`{}`, `{#}`, `{.}`, ...).
//! - [`process`]: running one command with a timeout, a cancel and capped output.
//! - [`task`]: the `exec` task and the worker's policy (`--exec-allow`, `--exec-user`, `--exec-dir`).
//! - [`halt`]: when `--halt` stops a run.
//! - [`joblog`]: `--joblog`, in parallel's format.

pub mod halt;
pub mod joblog;
pub mod placeholders;
pub mod process;
pub mod task;

pub use task::{Exec, ExecOutput, ExecPiece, ExecPolicy};
