//! The node's job store: every job it was given, its pieces' inputs and
//! every output that came back, in one redb file in the data directory, so
//! a job outlives the process that runs it (redb commits are ACID: a crash
//! mid-write leaves the last commit, never a torn one).

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The store's format. A store of another format is refused, not guessed at.
pub const FORMAT: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
const INPUTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("inputs");
const OUTPUTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("outputs");

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
    pub per_peer: std::collections::BTreeMap<String, u32>,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("jobs.redb");
        let open_err = |source: redb::Error| StoreError::Open { path: path.clone(), source: Box::new(source) };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.into()))?;
        let db = Database::create(&path).map_err(|e| open_err(e.into()))?;
        let store = Store { db };
        let found = store.format()?;
        match found {
            None => store.init()?,
            Some(FORMAT) => {}
            Some(found) => return Err(StoreError::Format { path, found }),
        }
        Ok(store)
    }

    fn format(&self) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let meta = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        Ok(meta.get("format").map_err(io)?.map(|v| v.value()))
    }

    /// A new store: its format, and every table (so readers find them).
    fn init(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(io)?;
        tx.open_table(META).map_err(io)?.insert("format", FORMAT).map_err(io)?;
        tx.open_table(JOBS).map_err(io)?;
        tx.open_table(INPUTS).map_err(io)?;
        tx.open_table(OUTPUTS).map_err(io)?;
        tx.commit().map_err(io)
    }

    /// Adds a job of `task` with `args` and its pieces' `inputs`, running;
    /// it is on disk when this returns.
    pub fn add(&self, task: &str, args: &[String], inputs: &[Vec<u8>], now_ms: u64) -> Result<JobRecord, StoreError> {
        let tx = self.db.begin_write().map_err(io)?;
        let record = {
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
                per_peer: Default::default(),
            };
            jobs.insert(id, encode(&record).as_slice()).map_err(io)?;
            let mut table = tx.open_table(INPUTS).map_err(io)?;
            for (i, input) in inputs.iter().enumerate() {
                table.insert((id, i as u32), input.as_slice()).map_err(io)?;
            }
            record
        };
        tx.commit().map_err(io)?;
        Ok(record)
    }

    /// Writes `record` over the stored one.
    pub fn update(&self, record: &JobRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(io)?;
        tx.open_table(JOBS).map_err(io)?.insert(record.id, encode(record).as_slice()).map_err(io)?;
        tx.commit().map_err(io)
    }

    /// Stores outputs of job `id`'s pieces, all in one commit.
    pub fn save_outputs(&self, id: u64, outputs: &[(u32, Vec<u8>)]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(io)?;
        {
            let mut table = tx.open_table(OUTPUTS).map_err(io)?;
            for (piece, output) in outputs {
                table.insert((id, *piece), output.as_slice()).map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    /// Job `id`'s piece inputs, in order.
    pub fn inputs(&self, id: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.pieces(INPUTS, id)?.into_iter().map(|(_, v)| v).collect())
    }

    /// Job `id`'s outputs so far, by piece.
    pub fn outputs(&self, id: u64) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        self.pieces(OUTPUTS, id)
    }

    fn pieces(&self, table: TableDefinition<(u64, u32), &[u8]>, id: u64) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(table).map_err(io)?;
        let range = table.range((id, 0)..=(id, u32::MAX)).map_err(io)?;
        range
            .map(|entry| {
                let (k, v) = entry.map_err(io)?;
                Ok((k.value().1, v.value().to_vec()))
            })
            .collect()
    }

    /// Job `id`, if the store has it.
    pub fn get(&self, id: u64) -> Result<Option<JobRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let jobs = tx.open_table(JOBS).map_err(io)?;
        let found = jobs.get(id).map_err(io)?;
        found.map(|v| decode(v.value())).transpose()
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let jobs = tx.open_table(JOBS).map_err(io)?;
        let all = jobs.iter().map_err(io)?.rev();
        all.map(|entry| decode(entry.map_err(io)?.1.value())).collect()
    }

    /// Removes job `id` with its inputs and outputs.
    pub fn remove(&self, id: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(io)?;
        tx.open_table(JOBS).map_err(io)?.remove(id).map_err(io)?;
        for table in [INPUTS, OUTPUTS] {
            tx.open_table(table).map_err(io)?.retain_in((id, 0)..=(id, u32::MAX), |_, _| false).map_err(io)?;
        }
        tx.commit().map_err(io)
    }
}

fn encode(record: &JobRecord) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(record, &mut bytes).expect("a record always encodes");
    bytes
}

fn decode(bytes: &[u8]) -> Result<JobRecord, StoreError> {
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
        store.update(&done).unwrap();
        assert_eq!(store.get(1).unwrap().unwrap(), done);
        store.remove(1).unwrap();
        assert_eq!((store.get(1).unwrap(), store.inputs(1).unwrap().len()), (None, 0));
        assert_eq!(store.inputs(2).unwrap().len(), 1, "removing one job keeps the others");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_store_of_another_format_is_refused_with_what_to_do() {
        let d = dir("format");
        {
            let store = Store::open(&d).unwrap();
            let tx = store.db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert("format", FORMAT + 1).unwrap();
            tx.commit().unwrap();
        }
        let err = Store::open(&d).unwrap_err().to_string();
        assert!(err.contains(&format!("has format {}", FORMAT + 1)) && err.contains("--data-dir"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
