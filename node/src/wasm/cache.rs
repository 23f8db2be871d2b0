//! Modules by content: a piece names its module by SHA-256, and a worker
//! fetches the bytes at most once (then keeps them on disk, least recently
//! used out past a size bound) and compiles them at most once (then keeps
//! the compiled module in memory), however many pieces and jobs use it.
//!
//! Pieces that need a module nobody has fetched yet wait for the one fetch
//! in progress instead of starting their own: the first takes the module's
//! slot lock, the others block on it and then find the module there. A
//! module that could not be had (a failed fetch, bytes that do not
//! compile) leaves no slot behind, so the next piece tries again: a failed
//! fetch may succeed, an invalid module fails the same way each time.
//!
//! Loads of different modules go on at once, but the bytes they hold are
//! bounded node-wide (see [`ByteBudget`]): past the bound, a load waits.

use super::budget::ByteBudget;
use super::sandbox::{Guest, GuestError, Sandbox};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// A module's name: the SHA-256 of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub [u8; 32]);

impl ModuleId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> ModuleId {
        ModuleId(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleId({self})")
    }
}

/// Why a module could not be had.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// Fetching it failed (the submitter is gone, the request timed out):
    /// worth another try.
    #[error("fetching module {id}: {reason}")]
    Fetch {
        /// The module.
        id: ModuleId,
        /// What went wrong.
        reason: String,
    },
    /// The bytes fetched are not the module asked for.
    #[error("module {id}: the bytes fetched hash to {got}")]
    WrongBytes {
        /// The module asked for.
        id: ModuleId,
        /// What the bytes hash to.
        got: ModuleId,
    },
    /// The module is there and cannot be compiled.
    #[error(transparent)]
    Guest(#[from] GuestError),
}

/// What the cache did, for figures and tests.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Modules fetched from another peer.
    pub fetches: AtomicU64,
    /// Modules compiled.
    pub compiles: AtomicU64,
}

/// Compiled modules kept in memory at most (least recently used out).
pub(super) const COMPILED_KEPT: usize = 16;

/// Modules of the largest size a node loads at once at most (more if they
/// are smaller): a bound on the memory their bytes take (see [`ByteBudget`]).
pub(super) const LOADING_MODULES: u64 = 2;

/// The module cache of one node.
pub struct ModuleCache {
    sandbox: Sandbox,
    /// Where module bytes are kept; `None`: in memory only (nothing kept
    /// across restarts).
    dir: Option<PathBuf>,
    /// Bytes on disk at most.
    max_disk: u64,
    /// One slot per module ever asked for, holding it once compiled.
    slots: Mutex<HashMap<ModuleId, Arc<Mutex<Option<Guest>>>>>,
    /// The bytes of the modules being loaded at once, at most
    /// [`LOADING_MODULES`] of the largest size.
    loading: ByteBudget,
    /// Compiled modules, most recently used last.
    recent: Mutex<Vec<ModuleId>>,
    /// The last use time given to a file on disk (see [`ModuleCache::touch`]).
    last_touch: Mutex<SystemTime>,
    /// Counters.
    pub stats: CacheStats,
}

impl ModuleCache {
    /// A cache compiling with `sandbox`, keeping bytes in `dir` (created if
    /// absent) up to `max_disk` bytes.
    pub fn new(sandbox: Sandbox, dir: Option<PathBuf>, max_disk: u64) -> std::io::Result<ModuleCache> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(ModuleCache {
            loading: ByteBudget::new(LOADING_MODULES * sandbox.limits().module as u64),
            sandbox,
            dir,
            max_disk,
            slots: Mutex::default(),
            recent: Mutex::default(),
            last_touch: Mutex::new(SystemTime::UNIX_EPOCH),
            stats: CacheStats::default(),
        })
    }

    /// The sandbox modules are compiled and run in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Module `id`, compiled: from memory, else from disk, else from
    /// `fetch` (called at most once per module while it stays cached).
    /// Blocks: call it on a blocking thread.
    pub fn guest(&self, id: ModuleId, fetch: impl FnOnce() -> Result<Vec<u8>, String>) -> Result<Guest, CacheError> {
        let mut fetch = Some(fetch);
        loop {
            let slot = self.slots.lock().expect("cache lock").entry(id).or_default().clone();
            // A panic while a slot was held (a fetch that panicked) leaves
            // it empty, which is a state like any other: carry on.
            let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(guest) = held.as_ref() {
                self.used(id);
                return Ok(guest.clone());
            }
            // A load that failed while this piece waited dropped the slot,
            // and a later piece may be loading the module on a new one:
            // wait on that one, so that one load of a module runs at a time.
            if !self.slots.lock().expect("cache lock").get(&id).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                continue;
            }
            let fetch = fetch.take().expect("a piece loads its module once: every load returns");
            return self.load_into(id, &slot, &mut held, fetch);
        }
    }

    /// Loads module `id` into `held`, the slot it holds locked; on failure
    /// the slot is dropped.
    fn load_into(
        &self,
        id: ModuleId,
        slot: &Arc<Mutex<Option<Guest>>>,
        held: &mut Option<Guest>,
        fetch: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<Guest, CacheError> {
        match self.load(id, fetch) {
            Ok(guest) => {
                *held = Some(guest.clone());
                self.used(id);
                Ok(guest)
            }
            Err(e) => {
                // A module that could not be had keeps no slot: a submitter
                // sending garbage under ever new ids would otherwise grow
                // the map for the node's life.
                let mut slots = self.slots.lock().expect("cache lock");
                if slots.get(&id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
                    slots.remove(&id);
                }
                Err(e)
            }
        }
    }

    /// Module `id`'s bytes (kept on disk, else fetched and kept), compiled.
    /// Its bytes count against [`ModuleCache::loading`] until compiled:
    /// as much as the largest module while they are being had, then their
    /// size.
    fn load(&self, id: ModuleId, fetch: impl FnOnce() -> Result<Vec<u8>, String>) -> Result<Guest, CacheError> {
        let mut share = self.loading.take(self.sandbox.limits().module as u64);
        let bytes = match self.read_kept(id) {
            Some(bytes) => bytes,
            None => {
                let bytes = fetch().map_err(|reason| CacheError::Fetch { id, reason })?;
                self.stats.fetches.fetch_add(1, Ordering::Relaxed);
                let got = ModuleId::of(&bytes);
                if got != id {
                    return Err(CacheError::WrongBytes { id, got });
                }
                self.keep(id, &bytes);
                bytes
            }
        };
        share.shrink_to(bytes.len() as u64);
        let guest = self.sandbox.compile(&bytes)?;
        self.stats.compiles.fetch_add(1, Ordering::Relaxed);
        Ok(guest)
    }

    /// Modules with a slot, compiled or being loaded.
    #[cfg(test)]
    pub(super) fn slots(&self) -> usize {
        self.slots.lock().expect("cache lock").len()
    }

    /// Pieces holding module `id`'s slot: loading into it or waiting on it.
    #[cfg(test)]
    pub(super) fn holders(&self, id: ModuleId) -> usize {
        self.slots.lock().expect("cache lock").get(&id).map_or(0, |s| Arc::strong_count(s) - 1)
    }

    /// Loads waiting for their share of the bytes being loaded.
    #[cfg(test)]
    pub(super) fn loads_waiting(&self) -> usize {
        self.loading.waiting()
    }

    /// Marks `id` most recently used and drops the compiled modules past
    /// [`COMPILED_KEPT`] (their bytes stay on disk).
    fn used(&self, id: ModuleId) {
        let mut recent = self.recent.lock().expect("cache lock");
        recent.retain(|r| *r != id);
        recent.push(id);
        if recent.len() > COMPILED_KEPT {
            let old = recent.remove(0);
            self.slots.lock().expect("cache lock").remove(&old);
        }
    }

    fn path(&self, id: ModuleId) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{id}.wasm")))
    }

    /// The module's bytes if kept on disk and intact (a damaged file is
    /// removed, so the module is fetched again).
    fn read_kept(&self, id: ModuleId) -> Option<Vec<u8>> {
        let path = self.path(id)?;
        let bytes = std::fs::read(&path).ok()?;
        if ModuleId::of(&bytes) != id {
            tracing::warn!(path = %path.display(), "cached module damaged; fetching it again");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        self.touch(&path);
        Some(bytes)
    }

    /// Keeps the bytes on disk (written whole, then renamed into place),
    /// then evicts the least recently used modules past the size bound. A
    /// disk that refuses only costs a later fetch.
    fn keep(&self, id: ModuleId, bytes: &[u8]) {
        let (Some(dir), Some(path)) = (&self.dir, self.path(id)) else { return };
        let tmp = dir.join(format!(".{id}.{}.tmp", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not keep a module on disk");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        self.touch(&path);
        evict(dir, self.max_disk, &path);
    }

    /// Records a use of `path` as its modification time, which eviction
    /// sorts by. Strictly later than the last one given: the file system's
    /// clock is coarse, and two modules stored within one tick would
    /// otherwise tie.
    fn touch(&self, path: &Path) {
        let mut last = self.last_touch.lock().expect("cache lock");
        let now = SystemTime::now().max(*last + Duration::from_micros(1));
        *last = now;
        let _ = std::fs::File::options().append(true).open(path).and_then(|f| f.set_modified(now));
    }
}

/// Removes the least recently used `.wasm` files of `dir` until they total
/// at most `max` bytes, never `keep` (the module just stored).
fn evict(dir: &Path, max: u64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}
