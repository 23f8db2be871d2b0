//! The node as a service: jobs given to a long-running node (through its
//! HTTP API, `meshwork submit`) belong to the node, not to a terminal. Each
//! is on disk (`store`) before it is acknowledged, with every piece output
//! as it comes back; after a crash and a restart with the same data
//! directory the node resumes its unfinished jobs, running only the pieces
//! whose outputs it does not have.
//!
//! - [`store`]: the redb file of jobs, inputs and outputs.
//! - [`kind`]: a job's task from its name and `meshwork run` arguments.
//! - [`metrics`]: jobs by state, job durations and the store's size.
//!
//! A finished job keeps its record, result and result file until the
//! node's [`Retention`] lets it go; its piece outputs go when it ends.
//!
//! The failpoint `service::before-store` (the `fail` crate, set through
//! the `FAILPOINTS` environment variable) runs just before a batch of
//! outputs is written: the tests abort the process there, to prove that
//! outputs which came back but were not yet written are run again.

pub mod kind;
pub mod metrics;
pub mod store;
mod timeline;

use crate::client::Client;
use kind::{Kind, Parse};
use meshwork_protocol::{JobError, JobEvent, JobId, JobSpec, PeerKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
pub use store::{FileMeta, JobRecord, JobState, Retention, Store, StoreError};
use tokio::sync::broadcast;

/// Why the service refused a request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The task or its arguments are wrong (the CLI's words).
    #[error("{0}")]
    Invalid(String),
    /// No job with this id.
    #[error("no job {0}")]
    NotFound(u64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A job's result: a line, a JSON value and, for some tasks, a file.
#[derive(Clone, Debug)]
pub struct JobResult {
    /// The line people read.
    pub text: String,
    /// The same result as JSON.
    pub json: serde_json::Value,
    /// What the result file is; [`Service::file`] has its bytes.
    pub file: Option<FileMeta>,
}

/// A job as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobView {
    /// Its id on this node.
    pub id: u64,
    /// The task and its arguments.
    pub task: String,
    /// See `task`.
    pub args: Vec<String>,
    /// Where it is.
    pub state: JobState,
    /// Pieces done and in all.
    pub done: u32,
    /// See `done`.
    pub pieces: u32,
    /// Pieces retried (in this node's run of it: a resumed job counts anew).
    pub retries: u32,
    /// Backup copies of stragglers launched (likewise).
    #[serde(default)]
    pub backups: u32,
    /// Pieces done per peer (likewise).
    pub per_peer: BTreeMap<String, u32>,
    /// Submitted and finished, ms since the Unix epoch.
    pub submitted_ms: u64,
    /// See `submitted_ms`.
    pub finished_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Something happened to job `id` (its view now).
#[derive(Clone, Debug)]
pub struct Update(pub JobView);

/// What the service knows of a running job beyond its record.
#[derive(Debug, Default)]
struct Live {
    job: Option<JobId>,
    done: u32,
    retries: u32,
    backups: u32,
    /// By peer key: names (base58 of the peer id) are made only when shown.
    per_peer: HashMap<PeerKey, u32>,
    timeline: Option<meshwork_protocol::timeline::TimelineBuilder>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    store: Store,
    parse: Parse,
    retention: Retention,
    live: Mutex<HashMap<u64, Live>>,
    /// Jobs that ended but whose end the store could not write (a full
    /// disk): shown as they ended; after a restart they run again.
    unsaved: Mutex<HashMap<u64, JobRecord>>,
    updates: broadcast::Sender<Update>,
    metrics: metrics::JobMetrics,
    timelines: timeline::Finished,
}

/// The node's jobs.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Service {
    /// Opens the store in `dir`, lets go of the finished jobs `retention`
    /// does not keep, and resumes its unfinished jobs on the node behind
    /// `client`; `parse` builds a job's task from its arguments.
    pub fn start(client: Client, dir: &Path, parse: Parse, retention: Retention) -> Result<Service, StoreError> {
        let store = Store::open(dir)?;
        store.prune(retention, now_ms())?;
        let (updates, _) = broadcast::channel(1024);
        let inner = Inner {
            client,
            store,
            parse,
            retention,
            live: Mutex::default(),
            unsaved: Mutex::default(),
            updates,
            metrics: metrics::JobMetrics::default(),
            timelines: timeline::Finished::default(),
        };
        let service = Service { inner: Arc::new(inner) };
        for record in service.inner.store.jobs()? {
            if record.state.finished() {
                continue;
            }
            match (service.inner.parse)(&record.task, &record.args) {
                Ok(kind) => {
                    tracing::info!(job = record.id, task = %record.task, "resuming a job");
                    service.spawn(record, kind);
                }
                Err(e) => service.inner.end(record, Err(format!("cannot resume: {e:#}"))),
            }
        }
        Ok(service)
    }

    /// Takes a job of `task` with `args` (as `meshwork run <task>` takes
    /// them): on disk when this returns, running from then on.
    pub fn submit(&self, task: &str, args: &[String]) -> Result<JobView, ServiceError> {
        let kind = (self.inner.parse)(task, args).map_err(|e| ServiceError::Invalid(format!("{e:#}")))?;
        let inputs = kind.inputs().map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let record = self.inner.store.add(kind.task(), args, &inputs, now_ms())?;
        let view = self.inner.view(&record);
        self.spawn(record, kind);
        Ok(view)
    }

    fn spawn(&self, record: JobRecord, kind: Box<dyn Kind>) {
        self.inner.lock().insert(record.id, Live::default());
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let outcome = inner.run(&record, &*kind).await;
            inner.end(record, outcome);
        });
    }

    /// Job `id`.
    pub fn job(&self, id: u64) -> Result<JobView, ServiceError> {
        let record = self.inner.record(id)?;
        Ok(self.inner.view(&record))
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobView>, ServiceError> {
        let unsaved = self.inner.unsaved.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let jobs = self.inner.store.jobs()?;
        Ok(jobs.iter().map(|r| self.inner.view(unsaved.get(&r.id).unwrap_or(r))).collect())
    }

    /// Job `id`'s result, once it is done.
    pub fn result(&self, id: u64) -> Result<Option<JobResult>, ServiceError> {
        let record = self.inner.record(id)?;
        Ok(record.result.map(|(text, json)| JobResult {
            text,
            json: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
            file: record.file,
        }))
    }

    /// Job `id`'s result file, when its result is one.
    pub fn file(&self, id: u64) -> Result<Option<(FileMeta, Vec<u8>)>, ServiceError> {
        let record = self.inner.record(id)?;
        let Some(meta) = record.file else { return Ok(None) };
        Ok(self.inner.store.file(id)?.map(|bytes| (meta, bytes)))
    }

    /// Removes every finished job (`meshwork jobs --prune`); their ids.
    pub fn prune(&self) -> Result<Vec<u64>, ServiceError> {
        Ok(self.inner.store.prune(Retention::NONE, now_ms())?)
    }

    /// Registers the service's metrics (see [`metrics`]) in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry, self.clone());
    }

    /// Cancels job `id` if it runs; whether it did.
    pub async fn cancel(&self, id: u64) -> Result<bool, ServiceError> {
        let job = self.inner.lock().get(&id).and_then(|l| l.job);
        match job {
            Some(job) => {
                self.inner.client.cancel(job).await;
                Ok(true)
            }
            None => self.job(id).map(|_| false),
        }
    }

    /// Every change to any job, from now on.
    pub fn updates(&self) -> broadcast::Receiver<Update> {
        self.inner.updates.subscribe()
    }
}

impl Inner {
    /// Job `id` as it is: the store's record, or how it ended if the store
    /// could not take that.
    fn record(&self, id: u64) -> Result<JobRecord, ServiceError> {
        if let Some(ended) = self.unsaved.lock().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(ended.clone());
        }
        self.store.get(id)?.ok_or(ServiceError::NotFound(id))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Live>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn view(&self, r: &JobRecord) -> JobView {
        let live = self.lock();
        let live = live.get(&r.id);
        JobView {
            id: r.id,
            task: r.task.clone(),
            args: r.args.clone(),
            state: r.state,
            done: if r.state == JobState::Done { r.pieces } else { live.map_or(0, |l| l.done) },
            pieces: r.pieces,
            retries: live.map_or(r.retries, |l| l.retries),
            backups: live.map_or(r.backups, |l| l.backups),
            per_peer: live.map_or_else(|| r.per_peer.clone(), |l| self.names(&l.per_peer)),
            submitted_ms: r.submitted_ms,
            finished_ms: r.finished_ms,
            error: r.error.clone(),
        }
    }

    /// Counts by peer, by peer name.
    fn names(&self, by_key: &HashMap<PeerKey, u32>) -> BTreeMap<String, u32> {
        by_key.iter().map(|(k, n)| (self.client.names().name(*k), *n)).collect()
    }

    fn publish(&self, record: &JobRecord) {
        let _ = self.updates.send(Update(self.view(record)));
    }

    /// Runs the pieces of `record` that have no stored output, storing
    /// each output as it comes, then merges them all.
    async fn run(&self, record: &JobRecord, kind: &dyn Kind) -> Result<crate::tasks::Rendered, String> {
        let inputs = self.store.inputs(record.id).map_err(|e| e.to_string())?;
        let mut done = vec![false; inputs.len()];
        for (piece, _) in self.store.outputs(record.id).map_err(|e| e.to_string())? {
            done[piece as usize] = true;
        }
        let remaining: Vec<u32> = (0..inputs.len() as u32).filter(|&i| !done[i as usize]).collect();
        let have = inputs.len() as u32 - remaining.len() as u32;
        if !remaining.is_empty() {
            let mut spec = JobSpec::new(kind.task(), remaining.iter().map(|&i| inputs[i as usize].clone()).collect());
            spec.stream = true;
            spec.explain = true; // Placed events: the timeline's spans
            spec.early_exit = kind.early_exit();
            let (job, mut events) = self.client.submit(spec).await.map_err(|e| e.to_string())?;
            self.lock().entry(record.id).or_default().job = Some(job);
            self.timeline_start(record.id, remaining.len() as u32);
            loop {
                let Some(first) = events.recv().await else { return Err("the node stopped".into()) };
                // Outputs that arrived together are written in one commit;
                // what the API shows moves only once they are on disk.
                let (mut batch, mut ran_on) = (Vec::new(), Vec::new());
                let (mut progress, mut retries, mut backups, mut end) = (None, 0, 0, None);
                for event in std::iter::once(first).chain(std::iter::from_fn(|| events.try_recv().ok())) {
                    self.timeline_event(record.id, &event);
                    match event {
                        JobEvent::Output { piece, peer, output, .. } => {
                            batch.push((remaining[piece as usize], output));
                            ran_on.push(peer);
                        }
                        JobEvent::Progress { done, .. } => progress = Some(have + done),
                        JobEvent::Retried { .. } => retries += 1,
                        JobEvent::Placed { backup: true, pieces, .. } => backups += pieces.len() as u32,
                        JobEvent::Finished { result, .. } => end = Some(result),
                        _ => {}
                    }
                }
                if !batch.is_empty() {
                    fail::fail_point!("service::before-store", |_| std::process::abort());
                    if let Err(e) = self.store.save_outputs(record.id, &batch) {
                        self.client.cancel(job).await;
                        return Err(format!("storing outputs: {e}"));
                    }
                }
                {
                    let mut live = self.lock();
                    let live = live.entry(record.id).or_default();
                    for peer in ran_on {
                        *live.per_peer.entry(peer).or_default() += 1;
                    }
                    live.retries += retries;
                    live.backups += backups;
                    live.done = progress.unwrap_or(live.done);
                }
                self.publish(record);
                match end {
                    Some(Ok(_)) => break,
                    Some(Err(JobError::Cancelled)) => return Err(CANCELLED.into()),
                    Some(Err(e)) => return Err(e.describe(&|k| self.client.names().name(k))),
                    None => {}
                }
            }
        }
        let outputs = self.store.outputs(record.id).map_err(|e| e.to_string())?;
        kind.finish(outputs.into_iter().map(|(_, o)| o).collect()).map_err(|e| format!("{e:#}"))
    }

    /// Records how job `record` ended, and lets go of the finished jobs
    /// the retention does not keep.
    fn end(&self, mut record: JobRecord, outcome: Result<crate::tasks::Rendered, String>) {
        let now = now_ms();
        record.finished_ms = Some(now);
        if let Some(live) = self.lock().remove(&record.id) {
            record.retries = live.retries;
            record.backups = live.backups;
            record.per_peer = self.names(&live.per_peer);
            self.timeline_end(record.id, live.timeline);
        }
        let mut file = None;
        match outcome {
            Ok(r) => {
                record.state = JobState::Done;
                record.result = Some((r.text, r.json.to_string()));
                if let Some(f) = r.file {
                    let (name, content_type) = (f.name.to_string(), f.content_type.to_string());
                    record.file = Some(FileMeta { name, content_type, bytes: f.bytes.len() as u64 });
                    file = Some(f.bytes);
                }
            }
            Err(e) if e == CANCELLED => record.state = JobState::Cancelled,
            Err(e) => {
                record.state = JobState::Failed;
                record.error = Some(e);
            }
        }
        self.metrics.ended(&record);
        // A second try may find the space the first one freed.
        let written =
            self.store.finish(&record, file.as_deref()).or_else(|_| self.store.finish(&record, file.as_deref()));
        if let Err(e) = written {
            tracing::error!(job = record.id, error = %e, "could not store how a job ended");
            let why = format!("(not written to the store: {e}; it runs again when the node restarts)");
            record.error = Some(record.error.take().map_or(why.clone(), |err| format!("{err} {why}")));
            self.unsaved.lock().unwrap_or_else(PoisonError::into_inner).insert(record.id, record.clone());
        }
        match self.store.prune(self.retention, now) {
            Ok(gone) if !gone.is_empty() => tracing::debug!(jobs = ?gone, "finished jobs let go (retention)"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not let go of old jobs"),
        }
        self.publish(&record);
    }
}

/// How a cancelled job's run ends.
const CANCELLED: &str = "cancelled";
