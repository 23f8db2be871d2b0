//! The task model: how a job is split into pieces, how a piece runs, how
//! outputs merge. Pure functions over serde types; the node runs `run` on a
//! blocking pool, the submitter calls `split` and `merge`.

use crate::wire::{from_cbor, to_cbor};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why a task could not do its part.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The job's input is not acceptable (`split`).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The piece could not be computed.
    #[error("{0}")]
    Failed(String),
    /// The piece failed in a way that will repeat on any worker (a wasm
    /// guest's trap or exit code): the job fails instead of retrying it
    /// on every peer (see [`Outcome::Repeats`](crate::wire::Outcome::Repeats)).
    #[error("{0}")]
    Repeats(String),
    /// The piece saw its cancellation flag and stopped.
    #[error("cancelled")]
    Cancelled,
    /// A piece or output did not decode as the task's type.
    #[error("undecodable {what}: {reason}")]
    Decode {
        /// "input" or "output".
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
}

/// Set when a piece should stop (job cancelled, done early, or deadline).
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> CancelFlag {
        CancelFlag::default()
    }
    /// Asks the piece to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Has stopping been asked for? Long pieces check this every few ms.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// `Err(Cancelled)` once stopping has been asked for, for use with `?`.
    pub fn check(&self) -> Result<(), TaskError> {
        if self.is_cancelled() {
            Err(TaskError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A kind of job meshwork can run. Every node registers the same tasks by
/// [`Task::NAME`]; pieces and outputs travel as CBOR of the associated types.
pub trait Task: Send + Sync + 'static {
    /// Registered name (`[a-z0-9_-]`), used on the wire and on the CLI.
    const NAME: &'static str;
    /// What the user asks for; stays on the submitter.
    type Input;
    /// One piece's input; travels to the worker.
    type Piece: Serialize + DeserializeOwned;
    /// One piece's output; travels back.
    type Output: Serialize + DeserializeOwned;
    /// The job's merged result.
    type Result;

    /// Cuts the job into pieces (on the submitter).
    fn split(&self, input: &Self::Input) -> Result<Vec<Self::Piece>, TaskError>;
    /// Computes one piece (on a worker, on a blocking thread). Long pieces
    /// check `cancel` every few milliseconds.
    fn run(&self, piece: Self::Piece, cancel: &CancelFlag) -> Result<Self::Output, TaskError>;
    /// Merges outputs, in piece order, into the result (on the submitter).
    /// After a conclusive output ended the job early, only the outputs that
    /// arrived are passed.
    fn merge(&self, input: &Self::Input, outputs: Vec<Self::Output>) -> Result<Self::Result, TaskError>;
    /// Can one output settle the whole job ([`Task::is_conclusive`])? Only
    /// then does the submitter honour a worker's claim that an output is
    /// conclusive, so a lying worker cannot cut other jobs short.
    const EARLY_EXIT: bool = false;

    /// May a piece run on the node's network thread once the task's pieces
    /// have proved tiny? Not if a piece can wait on the network itself (a
    /// wasm piece may fetch its module): it would wait on the very thread
    /// that has to carry the answer.
    const MAY_RUN_INLINE: bool = true;

    /// Does this output settle the whole job (the other pieces get cancelled)?
    fn is_conclusive(&self, _output: &Self::Output) -> bool {
        false
    }
}

/// A piece's output as the worker sends it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceOutput {
    /// CBOR of the task's output.
    pub bytes: Vec<u8>,
    /// See [`Task::is_conclusive`].
    pub conclusive: bool,
}

/// The worker's view of a task: bytes in, bytes out, type erased.
pub trait Runner: Send + Sync {
    /// Decodes the piece, runs it, encodes the output.
    fn run_encoded(&self, input: &[u8], cancel: &CancelFlag) -> Result<PieceOutput, TaskError>;

    /// See [`Task::MAY_RUN_INLINE`].
    fn may_run_inline(&self) -> bool;
}

impl<T: Task> Runner for T {
    fn run_encoded(&self, input: &[u8], cancel: &CancelFlag) -> Result<PieceOutput, TaskError> {
        let piece: T::Piece =
            from_cbor(input).map_err(|e| TaskError::Decode { what: "input", reason: e.to_string() })?;
        let output = self.run(piece, cancel)?;
        let conclusive = self.is_conclusive(&output);
        Ok(PieceOutput { bytes: to_cbor(&output), conclusive })
    }

    fn may_run_inline(&self) -> bool {
        T::MAY_RUN_INLINE
    }
}

/// Encodes a job's pieces for the wire.
pub fn encode_pieces<T: Task>(pieces: &[T::Piece]) -> Vec<Vec<u8>> {
    pieces.iter().map(to_cbor).collect()
}

/// Decodes the outputs a job returned, in piece order.
pub fn decode_outputs<T: Task>(outputs: &[Vec<u8>]) -> Result<Vec<T::Output>, TaskError> {
    outputs
        .iter()
        .map(|o| from_cbor(o).map_err(|e| TaskError::Decode { what: "output", reason: e.to_string() }))
        .collect()
}

/// Tasks by name, as a worker runs them.
#[derive(Clone, Default)]
pub struct Registry {
    runners: BTreeMap<String, Arc<dyn Runner>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }
    /// Registers `task` under [`Task::NAME`], replacing any task of that name.
    pub fn register<T: Task>(&mut self, task: T) -> &mut Registry {
        self.runners.insert(T::NAME.to_string(), Arc::new(task));
        self
    }
    /// The runner of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Runner>> {
        self.runners.get(name).cloned()
    }
    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.runners.keys().cloned().collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.runners.keys()).finish()
    }
}
