//! The job service's part of `GET /metrics`: jobs by state and the store's
//! size (read from the store at each scrape, so they are right after a
//! restart too), and how long jobs took (a histogram of this run's jobs).

use super::{JobRecord, JobState, Service};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The label of a job state.
fn label(state: JobState) -> &'static str {
    match state {
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

/// The `state` label.
type StateLabel = [(&'static str, &'static str); 1];

/// What the service counts as jobs end.
#[derive(Debug)]
pub(super) struct JobMetrics {
    /// Seconds from submission to the end, by how the job ended.
    durations: Family<StateLabel, Histogram, fn() -> Histogram>,
}

impl Default for JobMetrics {
    fn default() -> JobMetrics {
        // ×4 from 10 ms to ~12 h.
        let new: fn() -> Histogram = || Histogram::new(exponential_buckets(0.01, 4.0, 12));
        JobMetrics { durations: Family::new_with_constructor(new) }
    }
}

impl JobMetrics {
    /// Job `record` ended.
    pub(super) fn ended(&self, record: &JobRecord) {
        let took = record.finished_ms.unwrap_or(record.submitted_ms).saturating_sub(record.submitted_ms);
        self.durations.get_or_create(&[("state", label(record.state))]).observe(took as f64 / 1000.0);
    }

    /// Registers the durations, and the jobs and store size of `service`.
    pub(super) fn register(&self, registry: &mut Registry, service: Service) {
        let help = "Jobs from submission to their end, by how they ended";
        registry.register_with_unit("meshwork_job_duration", help, Unit::Seconds, self.durations.clone());
        registry.register_collector(Box::new(Stored(service)));
    }
}

/// Reads the jobs by state and the store's size at each scrape.
#[derive(Debug)]
struct Stored(Service);

impl prometheus_client::collector::Collector for Stored {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = &self.0.inner.store;
        let mut counts = [0i64; 4];
        let states = [JobState::Running, JobState::Done, JobState::Failed, JobState::Cancelled];
        match store.jobs() {
            Ok(jobs) => {
                for job in jobs {
                    counts[states.iter().position(|s| *s == job.state).expect("every state is listed")] += 1;
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the job store"),
        }
        let mut jobs =
            encoder.encode_descriptor("meshwork_jobs", "Jobs in the store, by state", None, MetricType::Gauge)?;
        for (state, n) in states.iter().zip(counts) {
            ConstGauge::new(n).encode(jobs.encode_family(&[("state", label(*state))])?)?;
        }
        let help = "Size of the job store on disk";
        let size = encoder.encode_descriptor("meshwork_store_size", help, Some(&Unit::Bytes), MetricType::Gauge)?;
        ConstGauge::new(store.size_bytes() as i64).encode(size)
    }
}
