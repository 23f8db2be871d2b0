//! The `wasm` task: an ordinary job of the scheduler whose pieces name a
//! module by hash and carry its stdin; a worker gets the module from its
//! [`ModuleCache`] (fetching it from the submitter the first time) and runs
//! the piece in the sandbox.

use super::cache::{CacheError, ModuleCache, ModuleId};
use super::sandbox::{GuestError, PieceCall, Sandbox};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::sync::{Arc, OnceLock};

/// Gets a module's bytes from the peer that offers it (the submitter).
/// Blocks: it is called on the thread that runs the piece.
pub trait ModuleFetcher: Send + Sync {
    /// The bytes of module `id`, asked of `from` (a peer id's bytes).
    fn fetch(&self, from: &[u8], id: ModuleId) -> Result<Vec<u8>, String>;
}

/// One piece of a wasm job, as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmPiece {
    /// The module's SHA-256.
    pub module: ByteBuf,
    /// Who offers the module: the submitter's peer id, as bytes.
    pub from: ByteBuf,
    /// argv\[1..\].
    pub args: Vec<String>,
    /// The piece's stdin.
    pub stdin: ByteBuf,
    /// Its index and the job's piece count (`MESHWORK_PIECE`, `MESHWORK_PIECES`).
    pub index: u32,
    /// See `index`.
    pub count: u32,
}

/// A wasm job, on the submitter.
#[derive(Clone, Debug)]
pub struct WasmJob {
    /// The module's id (its bytes are offered to the workers meanwhile).
    pub module: ModuleId,
    /// The submitter's peer id, as bytes.
    pub from: Vec<u8>,
    /// argv\[1..\] of every piece.
    pub args: Vec<String>,
    /// Each piece's stdin, in order.
    pub inputs: Vec<Vec<u8>>,
}

/// The task, with the node's module cache and a way to fetch modules.
#[derive(Clone)]
pub struct Wasm {
    cache: Arc<LazyCache>,
    fetcher: Arc<dyn ModuleFetcher>,
}

/// A module cache made when the first wasm piece needs it: the compiler and
/// runtime it sets up would cost every idle node about 1.7 MB of resident
/// memory, wasm or not.
struct LazyCache {
    make: Box<dyn Fn() -> Result<ModuleCache, String> + Send + Sync>,
    cell: OnceLock<Result<Arc<ModuleCache>, String>>,
}

impl LazyCache {
    fn get(&self) -> Result<&ModuleCache, TaskError> {
        match self.cell.get_or_init(|| (self.make)().map(Arc::new)) {
            Ok(cache) => Ok(cache),
            Err(e) => Err(TaskError::Failed(format!("this node cannot run wasm: {e}"))),
        }
    }
}

impl Wasm {
    /// The task over `cache`, fetching with `fetcher`.
    pub fn new(cache: Arc<ModuleCache>, fetcher: Arc<dyn ModuleFetcher>) -> Wasm {
        let cell = OnceLock::from(Ok(cache));
        let make = Box::new(|| Err("the cache was given".to_string()));
        Wasm { cache: Arc::new(LazyCache { make, cell }), fetcher }
    }

    /// The task with a cache `make` builds when the first piece arrives.
    pub fn lazy(
        make: impl Fn() -> Result<ModuleCache, String> + Send + Sync + 'static,
        fetcher: Arc<dyn ModuleFetcher>,
    ) -> Wasm {
        Wasm { cache: Arc::new(LazyCache { make: Box::new(make), cell: OnceLock::new() }), fetcher }
    }

    /// The task as a submitter uses it: to split and merge (its node runs
    /// its own pieces with the node's own instance).
    pub fn for_submitting(sandbox: Sandbox) -> Wasm {
        let cache = ModuleCache::new(sandbox, None, 0).expect("a cache without a directory creates nothing");
        Wasm::new(Arc::new(cache), Arc::new(NoFetch))
    }
}

/// The fetcher of a task that only splits and merges.
struct NoFetch;

impl ModuleFetcher for NoFetch {
    fn fetch(&self, _: &[u8], id: ModuleId) -> Result<Vec<u8>, String> {
        Err(format!("module {id}: a submitting instance fetches nothing"))
    }
}

impl Task for Wasm {
    const NAME: &'static str = "wasm";
    type Input = WasmJob;
    type Piece = WasmPiece;
    type Output = ByteBuf;
    type Result = Vec<Vec<u8>>;
    const MAY_RUN_INLINE: bool = false;

    fn split(&self, job: &WasmJob) -> Result<Vec<WasmPiece>, TaskError> {
        if job.inputs.is_empty() {
            return Err(TaskError::Invalid("a wasm job needs at least one piece".into()));
        }
        let count = job.inputs.len() as u32;
        Ok((job.inputs.iter().enumerate())
            .map(|(i, stdin)| WasmPiece {
                module: ByteBuf::from(job.module.0.to_vec()),
                from: ByteBuf::from(job.from.clone()),
                args: job.args.clone(),
                stdin: ByteBuf::from(stdin.clone()),
                index: i as u32,
                count,
            })
            .collect())
    }

    fn run(&self, piece: WasmPiece, cancel: &CancelFlag) -> Result<ByteBuf, TaskError> {
        let id: [u8; 32] = piece
            .module
            .as_slice()
            .try_into()
            .map_err(|_| TaskError::Failed(format!("a module id has 32 bytes, not {}", piece.module.len())))?;
        let id = ModuleId(id);
        let cache = self.cache.get()?;
        let guest = cache.guest(id, || self.fetcher.fetch(&piece.from, id)).map_err(|e| match e {
            CacheError::Guest(g) => guest_error(g),
            other => TaskError::Failed(other.to_string()),
        })?;
        let call =
            PieceCall { args: &piece.args, piece: piece.index, pieces: piece.count, stdin: &piece.stdin, seed: id.0 };
        cache.sandbox().run(&guest, &call, cancel).map(ByteBuf::from).map_err(guest_error)
    }

    fn merge(&self, _job: &WasmJob, outputs: Vec<ByteBuf>) -> Result<Vec<Vec<u8>>, TaskError> {
        Ok(outputs.into_iter().map(ByteBuf::into_vec).collect())
    }
}

/// A guest's failure as the task reports it: one that repeats fails the
/// job (see [`GuestError::repeats`]) instead of being retried on every peer.
fn guest_error(e: GuestError) -> TaskError {
    match e {
        GuestError::Cancelled => TaskError::Cancelled,
        e if e.repeats() => TaskError::Repeats(e.to_string()),
        e => TaskError::Failed(e.to_string()),
    }
}

/// How long a piece waits for its module before it fails (and is retried).
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Fetches modules through the node's [`Client`](crate::Client), from the
/// piece's thread (an executor thread: never the runtime's own).
#[derive(Debug, Default)]
pub struct ClientFetcher {
    node: std::sync::OnceLock<(crate::Client, tokio::runtime::Handle)>,
}

impl ClientFetcher {
    /// Fetches through `client` from now on (set once the node is started).
    pub fn set(&self, client: crate::Client, runtime: tokio::runtime::Handle) {
        let _ = self.node.set((client, runtime));
    }
}

impl ModuleFetcher for ClientFetcher {
    fn fetch(&self, from: &[u8], id: ModuleId) -> Result<Vec<u8>, String> {
        let (client, runtime) = self.node.get().ok_or("the node has not started")?;
        let peer = libp2p::PeerId::from_bytes(from).map_err(|e| format!("the piece names no valid submitter: {e}"))?;
        // The timer is made inside the runtime: it needs the runtime's clock.
        let fetched =
            runtime.block_on(async { tokio::time::timeout(FETCH_TIMEOUT, client.fetch_module(peer, id)).await });
        fetched.map_err(|_| format!("module {id} did not arrive from {peer} within {FETCH_TIMEOUT:?}"))?
    }
}
