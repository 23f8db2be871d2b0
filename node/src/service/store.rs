//! The node's job store: every job it was given, its pieces' inputs and
//! every output that came back, in one redb file in the data directory, so
//! a job outlives the process that runs it (redb commits are ACID: a crash
//! mid-write leaves the last commit, never a torn one).
//!
//! A new job is synced to the disk before it is acknowledged. Outputs,
//! ends and pruning are written at once (a killed process loses none of
//! them) but synced lazily (`Durability::Eventual`): after a power cut the
//! store is still whole, and the worst case is pieces that run again.

use redb::{Database, Durability, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// The store's format. A store of another format is refused, not guessed at.
/// 2: a job's inputs in one row, outputs one row per batch.
pub const FORMAT: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// A job's piece inputs, all in one row (CBOR of a list of byte strings).
const INPUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("inputs");
/// A job's outputs, one row per batch written, keyed by the batch's first
/// piece (a piece is in one batch only): CBOR of `(piece, output)` pairs.
/// A row per batch rather than per piece keeps a piece's cost in the
/// store to a share of one B-tree insert.
const OUTPUTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("outputs");
/// A finished job's result file (a PNG), by job.
const FILES: TableDefinition<u64, &[u8]> = TableDefinition::new("files");

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or the file could not be created or opened.
    #[error("opening the job store {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<redb::Error>,
    },
    /// The file was written by another version of meshwork.
    #[error(
        "the job store {path} has format {found}, this meshwork reads format {FORMAT}: \
         move it aside (or give another --data-dir) to start afresh"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u64,
    },
    /// A read or write failed (a full disk, an I/O error).
    #[error("job store: {0}")]
    Io(#[from] Box<redb::Error>),
    /// A record did not decode.
    #[error("job store: a damaged record: {0}")]
    Damaged(String),
    /// After an I/O error the store could not be opened again.
    #[error("the job store is closed after an I/O error (restart the node): {0}")]
    Closed(String),
}

/// Shorthand for the many redb error types: all become [`StoreError::Io`].
fn io(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Io(Box::new(e.into()))
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Its pieces are running (or will again, after a restart).
    Running,
    /// Done; its result is stored.
    Done,
    /// It failed; its error is stored.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl JobState {
    /// Done, failed or cancelled: nothing more will happen to it.
    pub fn finished(self) -> bool {
        self != JobState::Running
    }
}

/// A job as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its number in this store.
    pub id: u64,
    /// The task.
    pub task: String,
    /// Its arguments, as `meshwork run <task>` takes them.
    pub args: Vec<String>,
    /// Pieces in all.
    pub pieces: u32,
    /// Where it is.
    pub state: JobState,
    /// When it was submitted, ms since the Unix epoch.
    pub submitted_ms: u64,
    /// When it finished.
    pub finished_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its merged result: a line for people and a JSON value (as text).
    pub result: Option<(String, String)>,
    /// Pieces retried, and pieces done per peer (by name), once it finished.
    #[serde(default)]
    pub retries: u32,
    /// See `retries`.
    #[serde(default)]
    pub per_peer: BTreeMap<String, u32>,
    /// Backup copies of stragglers launched, once it finished.
    #[serde(default)]
    pub backups: u32,
    /// Its result file, when the task makes one (its bytes are stored apart).
    #[serde(default)]
    pub file: Option<FileMeta>,
}

/// What a result file is: its bytes are in the store's `files` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// A name to save it under (`mandelbrot.png`).
    pub name: String,
    /// Its media type (`image/png`).
    pub content_type: String,
    /// Its size.
    pub bytes: u64,
}

/// Which finished jobs are kept: the newest `keep_jobs`, and none that
/// finished longer than `keep_for` ago. Running jobs are always kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Most finished jobs kept.
    pub keep_jobs: usize,
    /// Longest a finished job is kept.
    pub keep_for: Duration,
}

impl Default for Retention {
    /// The last thousand finished jobs, for thirty days.
    fn default() -> Retention {
        Retention { keep_jobs: 1000, keep_for: Duration::from_secs(30 * 86_400) }
    }
}

impl Retention {
    /// Nothing finished is kept: `meshwork jobs --prune`.
    pub const NONE: Retention = Retention { keep_jobs: 0, keep_for: Duration::ZERO };

    /// Whether a finished job, `newer` finished jobs after it, finished at
    /// `finished_ms`, goes at `now_ms`.
    fn drops(&self, newer: usize, finished_ms: u64, now_ms: u64) -> bool {
        newer >= self.keep_jobs || now_ms.saturating_sub(finished_ms) > self.keep_for.as_millis() as u64
    }
}

/// The store.
///
/// After an I/O error (a full disk) redb refuses every later operation
/// until the database is opened again: [`Store::read`] and
/// [`Store::write`] do that at once, so the error fails the one operation
/// (the job being written) and the store carries on from its last commit.
#[derive(Debug)]
pub struct Store {
    /// `None` when opening it again after an I/O error failed.
    db: RwLock<Option<Database>>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("jobs.redb");
        let open_err = |source: redb::Error| StoreError::Open { path: path.clone(), source: Box::new(source) };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.into()))?;
        let db = Database::create(&path).map_err(|e| open_err(e.into()))?;
        let store = Store { db: RwLock::new(Some(db)), path: path.clone() };
        let found = store.format()?;
        match found {
            None | Some(FORMAT) => store.init(found.is_none())?,
            Some(found) => return Err(StoreError::Format { path, found }),
        }
        Ok(store)
    }

    /// Runs `f` in a read transaction.
    fn read<T>(&self, f: impl FnOnce(ReadTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let result = {
            let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
            let db = db.as_ref().ok_or_else(|| StoreError::Closed("see the error before".into()))?;
            db.begin_read().map_err(io).and_then(f)
        };
        self.reopen_after(result)
    }

    /// Runs `f` in a write transaction and commits what it did, synced to
    /// the disk, or nothing if it fails.
    fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.write_as(Durability::Immediate, f)
    }

    /// [`Store::write`], synced as `durability` says.
    fn write_as<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = {
            let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
            let db = db.as_ref().ok_or_else(|| StoreError::Closed("see the error before".into()))?;
            db.begin_write().map_err(io).and_then(|mut tx| {
                tx.set_durability(durability);
                let value = f(&tx)?;
                tx.commit().map_err(io)?;
                Ok(value)
            })
        };
        self.reopen_after(result)
    }

    /// Opens the database again after an I/O error, which redb would
    /// otherwise repeat for every later operation; passes `result` on.
    fn reopen_after<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Io(e)) = &result {
            tracing::warn!(error = %e, "job store: an I/O error; opening it again");
            let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
            // The old handle goes first: it holds the file's lock.
            *db = None;
            match Database::create(&self.path) {
                Ok(fresh) => *db = Some(fresh),
                Err(e) => tracing::error!(error = %e, "the job store cannot be opened again: it keeps no more jobs"),
            }
        }
        result
    }

    fn format(&self) -> Result<Option<u64>, StoreError> {
        self.read(|tx| {
            let meta = match tx.open_table(META) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(io(e)),
            };
            Ok(meta.get("format").map_err(io)?.map(|v| v.value()))
        })
    }

    /// Every table, so readers find them (a table added since the store
    /// was made is added to it), and for a `new` store its format.
    fn init(&self, new: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            if new {
                tx.open_table(META).map_err(io)?.insert("format", FORMAT).map_err(io)?;
            }
            tx.open_table(JOBS).map_err(io)?;
            tx.open_table(INPUTS).map_err(io)?;
            tx.open_table(OUTPUTS).map_err(io)?;
            tx.open_table(FILES).map_err(io)?;
            Ok(())
        })
    }

    /// Adds a job of `task` with `args` and its pieces' `inputs`, running;
    /// it is on disk when this returns.
    pub fn add(&self, task: &str, args: &[String], inputs: &[Vec<u8>], now_ms: u64) -> Result<JobRecord, StoreError> {
        self.write(|tx| {
            let mut jobs = tx.open_table(JOBS).map_err(io)?;
            let id = jobs.last().map_err(io)?.map_or(1, |(k, _)| k.value() + 1);
            let record = JobRecord {
                id,
                task: task.to_string(),
                args: args.to_vec(),
                pieces: inputs.len() as u32,
                state: JobState::Running,
                submitted_ms: now_ms,
                finished_ms: None,
                error: None,
                result: None,
                retries: 0,
                per_peer: BTreeMap::new(),
                backups: 0,
                file: None,
            };
            jobs.insert(id, encode(&record).as_slice()).map_err(io)?;
            let inputs: Vec<&serde_bytes::Bytes> = inputs.iter().map(|i| serde_bytes::Bytes::new(i)).collect();
            tx.open_table(INPUTS).map_err(io)?.insert(id, encode(&inputs).as_slice()).map_err(io)?;
            Ok(record)
        })
    }

    /// Job `id`'s result file, if it has one.
    pub fn file(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|tx| {
            let files = tx.open_table(FILES).map_err(io)?;
            let found = files.get(id).map_err(io)?;
            Ok(found.map(|v| v.value().to_vec()))
        })
    }

    /// Writes how job `record` ended, with its result file's bytes, and
    /// drops its piece outputs (the result holds what they gave; and when
    /// a full disk failed the job, dropping them frees the space), in one
    /// commit.
    pub fn finish(&self, record: &JobRecord, file: Option<&[u8]>) -> Result<(), StoreError> {
        let id = record.id;
        self.write_as(Durability::Eventual, |tx| {
            tx.open_table(OUTPUTS).map_err(io)?.retain_in((id, 0)..=(id, u32::MAX), |_, _| false).map_err(io)?;
            tx.open_table(JOBS).map_err(io)?.insert(id, encode(record).as_slice()).map_err(io)?;
            if let Some(bytes) = file {
                tx.open_table(FILES).map_err(io)?.insert(id, bytes).map_err(io)?;
            }
            Ok(())
        })
    }

    /// Stores outputs of job `id`'s pieces, all in one commit.
    pub fn save_outputs(&self, id: u64, outputs: &[(u32, Vec<u8>)]) -> Result<(), StoreError> {
        let Some(first) = outputs.iter().map(|(piece, _)| *piece).min() else { return Ok(()) };
        let batch: Vec<(u32, &serde_bytes::Bytes)> =
            outputs.iter().map(|(piece, output)| (*piece, serde_bytes::Bytes::new(output))).collect();
        self.write_as(Durability::Eventual, |tx| {
            tx.open_table(OUTPUTS).map_err(io)?.insert((id, first), encode(&batch).as_slice()).map_err(io)?;
            Ok(())
        })
    }

    /// Job `id`'s piece inputs, in order.
    pub fn inputs(&self, id: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|tx| {
            let row = tx.open_table(INPUTS).map_err(io)?.get(id).map_err(io)?;
            let Some(row) = row else { return Ok(Vec::new()) };
            let inputs: Vec<serde_bytes::ByteBuf> = decode(row.value())?;
            Ok(inputs.into_iter().map(serde_bytes::ByteBuf::into_vec).collect())
        })
    }

    /// Job `id`'s outputs so far, by piece.
    pub fn outputs(&self, id: u64) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let mut outputs = self.read(|tx| {
            let table = tx.open_table(OUTPUTS).map_err(io)?;
            let mut outputs = Vec::new();
            for row in table.range((id, 0)..=(id, u32::MAX)).map_err(io)? {
                let batch: Vec<(u32, serde_bytes::ByteBuf)> = decode(row.map_err(io)?.1.value())?;
                outputs.extend(batch.into_iter().map(|(piece, output)| (piece, output.into_vec())));
            }
            Ok(outputs)
        })?;
        outputs.sort_unstable_by_key(|(piece, _)| *piece);
        Ok(outputs)
    }

    /// Job `id`, if the store has it.
    pub fn get(&self, id: u64) -> Result<Option<JobRecord>, StoreError> {
        self.read(|tx| {
            let jobs = tx.open_table(JOBS).map_err(io)?;
            let found = jobs.get(id).map_err(io)?;
            found.map(|v| decode(v.value())).transpose()
        })
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.read(|tx| {
            let jobs = tx.open_table(JOBS).map_err(io)?;
            let all = jobs.iter().map_err(io)?.rev();
            all.map(|entry| decode(entry.map_err(io)?.1.value())).collect()
        })
    }

    /// Removes the finished jobs `keep` does not keep at `now_ms`, with
    /// their inputs, outputs and files, in one commit; their ids.
    pub fn prune(&self, keep: Retention, now_ms: u64) -> Result<Vec<u64>, StoreError> {
        let mut finished = 0;
        let mut drop = Vec::new();
        for job in self.jobs()? {
            if let (true, Some(at)) = (job.state.finished(), job.finished_ms) {
                if keep.drops(finished, at, now_ms) {
                    drop.push(job.id);
                }
                finished += 1;
            }
        }
        if drop.is_empty() {
            return Ok(drop);
        }
        self.write_as(Durability::Eventual, |tx| {
            let (mut jobs, mut files) = (tx.open_table(JOBS).map_err(io)?, tx.open_table(FILES).map_err(io)?);
            let mut inputs = tx.open_table(INPUTS).map_err(io)?;
            let mut outputs = tx.open_table(OUTPUTS).map_err(io)?;
            for &id in &drop {
                jobs.remove(id).map_err(io)?;
                files.remove(id).map_err(io)?;
                inputs.remove(id).map_err(io)?;
                outputs.retain_in((id, 0)..=(id, u32::MAX), |_, _| false).map_err(io)?;
            }
            Ok(())
        })?;
        Ok(drop)
    }

    /// The store file's size on disk.
    pub fn size_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

fn encode(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("records, inputs and outputs always encode");
    bytes
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    ciborium::from_reader(bytes).map_err(|e| StoreError::Damaged(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("meshwork-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_job_its_inputs_and_outputs_survive_reopening() {
        let d = dir("reopen");
        let args = vec!["--to".to_string(), "100".to_string()];
        let inputs = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        {
            let store = Store::open(&d).unwrap();
            let job = store.add("primes", &args, &inputs, 7).unwrap();
            assert_eq!((job.id, job.pieces, job.state), (1, 3, JobState::Running));
            store.save_outputs(1, &[(2, b"z".to_vec()), (0, b"x".to_vec())]).unwrap();
            assert_eq!(store.add("noop", &[], &inputs[..1], 8).unwrap().id, 2);
        }
        let store = Store::open(&d).unwrap();
        assert_eq!(store.inputs(1).unwrap(), inputs);
        assert_eq!(store.outputs(1).unwrap(), vec![(0, b"x".to_vec()), (2, b"z".to_vec())]);
        assert_eq!(store.outputs(2).unwrap(), vec![], "another job's outputs are its own");
        let ids: Vec<u64> = store.jobs().unwrap().iter().map(|j| j.id).collect();
        assert_eq!(ids, vec![2, 1], "newest first");
        let mut done = store.get(1).unwrap().unwrap();
        done.state = JobState::Done;
        done.result = Some(("25 primes".into(), "{}".into()));
        done.finished_ms = Some(9);
        store.finish(&done, Some(b"png")).unwrap();
        assert_eq!(store.get(1).unwrap().unwrap(), done);
        assert_eq!(store.file(1).unwrap().as_deref(), Some(&b"png"[..]));
        assert_eq!(store.outputs(1).unwrap(), Vec::<(u32, Vec<u8>)>::new(), "a finished job's outputs go");
        assert_eq!(store.prune(Retention::NONE, 10).unwrap(), vec![1], "only the finished job goes");
        assert_eq!((store.get(1).unwrap(), store.inputs(1).unwrap().len(), store.file(1).unwrap()), (None, 0, None));
        assert_eq!(store.outputs(1).unwrap(), vec![]);
        assert_eq!(store.inputs(2).unwrap().len(), 1, "removing one job keeps the others");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn retention_keeps_the_newest_finished_jobs_within_their_age() {
        let d = dir("retention");
        let store = Store::open(&d).unwrap();
        let day = 86_400_000;
        // Jobs 1..=6 finished on days 1..=6; job 7 still runs (from day 0).
        for id in 1..=7u64 {
            let mut job = store.add("noop", &[], &[], 0).unwrap();
            if id < 7 {
                job.state = JobState::Done;
                job.finished_ms = Some(id * day);
            }
            store.finish(&job, None).unwrap();
        }
        let keep = Retention { keep_jobs: 4, keep_for: Duration::from_millis(3 * day + 1) };
        // On day 7, jobs 6..3 are the newest four; of them, 3 is 4 days old.
        assert_eq!(store.prune(keep, 7 * day).unwrap(), vec![3, 2, 1]);
        let left: Vec<u64> = store.jobs().unwrap().iter().map(|j| j.id).collect();
        assert_eq!(left, vec![7, 6, 5, 4], "the running job stays whatever its age");
        assert_eq!(store.prune(keep, 7 * day).unwrap(), Vec::<u64>::new(), "pruning again removes nothing");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_store_of_another_format_is_refused_with_what_to_do() {
        let d = dir("format");
        {
            let store = Store::open(&d).unwrap();
            let newer = |tx: &WriteTransaction| -> Result<(), StoreError> {
                tx.open_table(META).map_err(io)?.insert("format", FORMAT + 1).map_err(io)?;
                Ok(())
            };
            store.write(newer).unwrap();
        }
        let err = Store::open(&d).unwrap_err().to_string();
        assert!(err.contains(&format!("has format {}", FORMAT + 1)) && err.contains("--data-dir"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
