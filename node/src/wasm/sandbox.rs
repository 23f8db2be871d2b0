//! Running one piece in a WebAssembly guest: a WASI preview 1 command
//! module (`_start`) reads the piece on stdin and writes its output on
//! stdout, and can touch nothing else.
//!
//! What the guest gets: argv, two environment variables (`MESHWORK_PIECE`,
//! `MESHWORK_PIECES`), in-memory stdin/stdout/stderr, a random source and
//! clocks that are the same on every run of the same piece (so a retried or
//! backed-up piece gives the same output), no directories and no sockets.
//! What stops it: a memory cap (`StoreLimits`), caps on what it writes, and
//! epoch interruption, which checks the piece's [`CancelFlag`] every
//! millisecond while it runs (cancel and `--max-piece-time` both set it).
//!
//! Every piece gets a fresh instance (nothing of one piece can leak into
//! the next), from wasmtime's pooling allocator: memories, tables and
//! instance state are reserved once per sandbox and reused, so making an
//! instance costs microseconds (`meshwork bench wasm` measures it).

use super::pipe::CappedPipe;
use super::ticker::Ticker;
use meshwork_protocol::task::CancelFlag;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolConcurrencyLimitError,
    PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::random::Deterministic;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, I32Exit, WasiCtxBuilder};

/// What one guest may use. Every limit has a default and a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of one instance, bytes.
    pub memory: usize,
    /// A module's size, bytes (checked before it is compiled).
    pub module: usize,
    /// What a piece may write to stdout, bytes.
    pub output: usize,
    /// What a piece may write to stderr, bytes (its last lines are kept
    /// for the error message of a failed piece).
    pub stderr: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory: 256 << 20, module: 64 << 20, output: 64 << 20, stderr: 64 << 10 }
    }
}

/// Why a guest did not produce its piece's output.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GuestError {
    /// The module is over [`Limits::module`].
    #[error("module of {size} bytes exceeds the {limit}-byte limit")]
    ModuleTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid module, or it imports what WASI preview 1
    /// does not give, or it has no `_start`.
    #[error("invalid module: {0}")]
    Invalid(String),
    /// The guest trapped (including out of memory, stack overflow and
    /// writing past its output cap).
    #[error("trapped: {reason}{}", stderr_tail(.stderr))]
    Trapped {
        /// wasmtime's description of the trap.
        reason: String,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
    /// The guest exited with a non-zero code.
    #[error("exited with code {code}{}", stderr_tail(.stderr))]
    Exit {
        /// Its exit code.
        code: i32,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
    /// The piece was cancelled (job cancelled, or over its time limit).
    #[error("cancelled")]
    Cancelled,
    /// Every instance of the sandbox's pool is in use (pieces that were
    /// just cancelled may hold some for a moment).
    #[error("this node runs {0} guests at most at once, and all are in use")]
    Busy(u32),
}

impl GuestError {
    /// Will the same module fail the same way on any worker? (Everything
    /// but a cancellation or a full pool: the guest is deterministic, so a
    /// trap or an exit code repeats, and retrying it on every peer would
    /// only waste them.)
    pub fn repeats(&self) -> bool {
        !matches!(self, GuestError::Cancelled | GuestError::Busy(_))
    }
}

fn stderr_tail(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr ends with: {stderr}")
    }
}

/// Lines of stderr kept in a [`GuestError`].
const STDERR_LINES: usize = 5;

/// A compiled module with its imports resolved, ready to run any number
/// of pieces.
#[derive(Clone)]
pub struct Guest {
    pre: InstancePre<State>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest").field("name", &self.pre.module().name()).finish_non_exhaustive()
    }
}

/// What a piece's guest needs besides its module.
#[derive(Clone, Debug, Default)]
pub struct PieceCall<'a> {
    /// argv\[1..\] (argv\[0\] is the module's name).
    pub args: &'a [String],
    /// Index of the piece, in `MESHWORK_PIECE`.
    pub piece: u32,
    /// Pieces in the job, in `MESHWORK_PIECES`.
    pub pieces: u32,
    /// Its stdin.
    pub stdin: &'a [u8],
    /// Seeds the guest's random source (the module's hash, so two modules
    /// do not share a sequence).
    pub seed: [u8; 32],
}

/// The per-store state: WASI and the memory limiter.
struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// Compiles modules and runs pieces; one per node, shared by every piece.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    linker: Arc<Linker<State>>,
    ticker: Arc<Ticker>,
    limits: Limits,
    instances: u32,
}

/// How often a running guest is interrupted to look at its cancel flag.
const TICK: Duration = Duration::from_millis(1);

impl Sandbox {
    /// A sandbox enforcing `limits`, running at most `instances` guests at
    /// once. Each of them reserves (not commits) about 4 GiB of address
    /// space for its memory, so that guests' memory accesses need no bounds
    /// checks.
    pub fn new(limits: Limits, instances: u32) -> Result<Sandbox, GuestError> {
        let instances = instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(instances)
            .total_memories(instances)
            .total_tables(instances)
            // Async stacks are never used (guests run synchronously), but
            // the pool makes them: 1000 of them, by default, cost the first
            // piece of a node a thousand mprotect calls.
            .total_stacks(instances)
            .total_component_instances(0)
            .max_memory_size(limits.memory)
            // A C guest's stack and heap start: kept mapped from piece to piece.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(1 << 16);
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| GuestError::Invalid(format!("wasm engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)
            .map_err(|e| GuestError::Invalid(format!("WASI: {e}")))?;
        let ticker = Arc::new(Ticker::new(engine.weak(), TICK));
        Ok(Sandbox { engine, linker: Arc::new(linker), ticker, limits, instances })
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Guests running now (tests wait on it to know a guest has started).
    #[cfg(test)]
    pub(super) fn running(&self) -> usize {
        self.ticker.active()
    }

    /// Compiles `bytes` (a `.wasm` binary). CPU-heavy: call it off the
    /// network thread, once per module (see [`super::cache`]).
    pub fn compile(&self, bytes: &[u8]) -> Result<Guest, GuestError> {
        if bytes.len() > self.limits.module {
            return Err(GuestError::ModuleTooLarge { size: bytes.len(), limit: self.limits.module });
        }
        let module = Module::from_binary(&self.engine, bytes).map_err(|e| GuestError::Invalid(format!("{e:#}")))?;
        if !matches!(module.get_export("_start"), Some(ExternType::Func(_))) {
            return Err(GuestError::Invalid("no `_start`: not a WASI command module".into()));
        }
        // Every import resolved now: a module asking for more than WASI
        // preview 1 gives is refused before any piece of it runs.
        let pre = self.linker.instantiate_pre(&module).map_err(|e| GuestError::Invalid(format!("{e:#}")))?;
        Ok(Guest { pre })
    }

    /// Runs one piece: its stdout, or why there is none.
    pub fn run(&self, guest: &Guest, call: &PieceCall<'_>, cancel: &CancelFlag) -> Result<Vec<u8>, GuestError> {
        cancel.check().map_err(|_| GuestError::Cancelled)?;
        let stdout = CappedPipe::new(self.limits.output);
        let stderr = CappedPipe::new(self.limits.stderr);
        let wasi = self.wasi(call, &stdout, &stderr);
        let limits = StoreLimitsBuilder::new().memory_size(self.limits.memory).trap_on_grow_failure(true).build();
        let mut store = Store::new(&self.engine, State { wasi, limits });
        store.limiter(|s| &mut s.limits);
        let flag = cancel.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if flag.is_cancelled() { UpdateDeadline::Interrupt } else { UpdateDeadline::Continue(1) })
        });
        let start = guest
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .map_err(|e| match e.downcast_ref::<PoolConcurrencyLimitError>() {
                Some(_) => GuestError::Busy(self.instances),
                None => GuestError::Trapped { reason: format!("starting the guest: {e:#}"), stderr: String::new() },
            })?;
        // The epoch ticks (and the cancel flag is looked at) from here on.
        let running = self.ticker.running();
        let outcome = start.call(&mut store, ());
        drop(running);
        drop(store);
        let tail = || last_lines(&stderr.contents(), STDERR_LINES);
        match outcome {
            Ok(()) => Ok(stdout.contents()),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => Ok(stdout.contents()),
                Some(I32Exit(code)) => Err(GuestError::Exit { code: *code, stderr: tail() }),
                None if cancel.is_cancelled() => Err(GuestError::Cancelled),
                None => {
                    let reason = match e.downcast_ref::<Trap>() {
                        Some(trap) => trap.to_string(),
                        None => format!("{e:#}"),
                    };
                    Err(GuestError::Trapped { reason, stderr: tail() })
                }
            },
        }
    }

    /// The guest's whole world: argv, two variables, pipes, a random
    /// source and clocks fixed by the piece.
    fn wasi(&self, call: &PieceCall<'_>, stdout: &CappedPipe, stderr: &CappedPipe) -> WasiP1Ctx {
        let mut argv = vec!["guest".to_string()];
        argv.extend(call.args.iter().cloned());
        let mut seed = Sha256::new();
        seed.update(call.seed);
        seed.update(call.piece.to_le_bytes());
        let seed = seed.finalize().to_vec();
        WasiCtxBuilder::new()
            .args(&argv)
            .env("MESHWORK_PIECE", call.piece.to_string())
            .env("MESHWORK_PIECES", call.pieces.to_string())
            .stdin(MemoryInputPipe::new(call.stdin.to_vec()))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .secure_random(Deterministic::new(seed.clone()))
            .insecure_random(Deterministic::new(seed))
            .insecure_random_seed(0)
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .build_p1()
    }
}

/// Clocks that read the same on every run: wall time is the Unix epoch,
/// the monotonic clock zero. A guest that times itself learns nothing, and
/// its output cannot depend on when or where it ran.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The last `n` lines of `bytes`, lossily decoded.
fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
