//! What an operator scrapes from a node (`GET /metrics`, see API.md).
//!
//! Most figures are read when Prometheus asks, from what the node keeps
//! anyway ([`Client::stats`], [`Client::load`], [`Client::peers`]): nothing
//! is counted twice, and a scrape costs three round trips to the driver.
//! What nothing counted before, the driver tallies in a [`WorkStats`]
//! (pieces this node's worker ran, retries and backups of the jobs it
//! submitted, RPC round trips), handed out with the other [`NodeStats`].
//!
//! [`Metrics`] holds a registry for the families a longer-lived part of
//! the node owns itself (the job service: jobs by state, job durations,
//! store size): it registers them once, and they are encoded with the
//! snapshot on every scrape.
//!
//! [`NodeStats`]: crate::client::NodeStats

use crate::client::{Client, RunError};
use meshwork_protocol::wire::{Load, Outcome, Request};
use prometheus_client::encoding::{text, DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Upper bounds of the RPC round-trip buckets, in seconds: ×4 from 100 µs
/// (a Status on loopback) to 105 s (a long batch), then +Inf.
pub const ROUND_TRIP_BUCKETS: [f64; 11] =
    [0.0001, 0.0004, 0.0016, 0.0064, 0.0256, 0.1024, 0.4096, 1.6384, 6.5536, 26.2144, 104.8576];

/// How a piece this node ran ended, as the `outcome` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceOutcome {
    /// It produced an output.
    Done,
    /// It failed (task error, panic, a guest's trap).
    Failed,
    /// It was stopped before it ended (job cancelled, piece backed up elsewhere).
    Cancelled,
}

impl PieceOutcome {
    fn of(outcome: &Outcome) -> PieceOutcome {
        match outcome {
            Outcome::Done { .. } => PieceOutcome::Done,
            Outcome::Failed(_) | Outcome::Repeats(_) => PieceOutcome::Failed,
            Outcome::Cancelled => PieceOutcome::Cancelled,
        }
    }

    fn label(self) -> &'static str {
        match self {
            PieceOutcome::Done => "done",
            PieceOutcome::Failed => "failed",
            PieceOutcome::Cancelled => "cancelled",
        }
    }
}

/// Round trips of one kind of request: counts per bucket of
/// [`ROUND_TRIP_BUCKETS`] (the last is +Inf), not cumulative.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RoundTrips {
    /// Count per bucket.
    pub buckets: [u64; ROUND_TRIP_BUCKETS.len() + 1],
    /// Sum of all round trips, in microseconds.
    pub sum_us: u64,
}

impl RoundTrips {
    fn record(&mut self, took: Duration) {
        let s = took.as_secs_f64();
        let i = ROUND_TRIP_BUCKETS.iter().position(|b| s <= *b).unwrap_or(ROUND_TRIP_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum_us += took.as_micros() as u64;
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// What the driver tallies for the metrics because nothing else did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkStats {
    /// Pieces this node's worker ran, by task and outcome.
    pub pieces: BTreeMap<String, BTreeMap<PieceOutcome, u64>>,
    /// Pieces of jobs this node submitted that failed on a peer and were
    /// sent again, by task.
    pub retried: BTreeMap<String, u64>,
    /// Backup copies of stragglers launched by jobs this node submitted
    /// (counted when the job succeeds: only its result says), by task.
    pub backed_up: BTreeMap<String, u64>,
    /// Answered RPC requests, by kind (`status`, `run`, `cancel`): from
    /// sending to the answer (a `run` includes executing the batch).
    pub round_trips: BTreeMap<&'static str, RoundTrips>,
}

impl WorkStats {
    /// `outcomes` of pieces of `task` that this node's worker ran.
    pub(crate) fn ran(&mut self, task: &str, outcomes: &[Outcome]) {
        if outcomes.is_empty() {
            return;
        }
        let by_outcome = match self.pieces.get_mut(task) {
            Some(m) => m,
            None => self.pieces.entry(task.to_string()).or_default(),
        };
        for o in outcomes {
            *by_outcome.entry(PieceOutcome::of(o)).or_default() += 1;
        }
    }

    /// A request of `kind` was answered `took` after it was sent.
    pub(crate) fn answered(&mut self, kind: &'static str, took: Duration) {
        self.round_trips.entry(kind).or_default().record(took);
    }
}

/// The `request` label of a request's round trips.
pub(crate) fn request_kind(request: &Request) -> &'static str {
    match request {
        Request::Status => "status",
        Request::Run(_) => "run",
        Request::Cancel(_) => "cancel",
        Request::Members => "members",
    }
}

/// The node's metrics: a registry for the families other parts of the node
/// own (see the module doc), encoded with a snapshot of the node's own
/// figures on each scrape.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// No families of its own yet.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// The registry to register long-lived families into (before the
    /// metrics are shared with the HTTP server). Name them `meshwork_...`.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The metrics in the OpenMetrics text format that Prometheus scrapes:
    /// a snapshot of `client`'s node, then the registered families.
    pub async fn scrape(&self, client: &Client) -> Result<String, RunError> {
        let snapshot = Snapshot {
            stats: client.stats().await?,
            load: client.load().await?,
            live_peers: client.peers().await?.iter().filter(|p| p.is_live()).count() as u64,
        };
        let mut now = Registry::default();
        now.register_collector(Box::new(snapshot));
        let mut out = String::new();
        // Writing to a String cannot fail, nor can the encoders on their own.
        let encoded = text::encode_registry(&mut out, &now)
            .and(text::encode_registry(&mut out, &self.registry))
            .and(text::encode_eof(&mut out));
        debug_assert!(encoded.is_ok(), "encoding metrics failed");
        Ok(out)
    }
}

/// The node's figures at one scrape.
#[derive(Debug)]
struct Snapshot {
    stats: crate::client::NodeStats,
    load: Load,
    live_peers: u64,
}

impl prometheus_client::collector::Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (s, w) = (&self.stats, &self.stats.work);
        let mut pieces =
            encoder.encode_descriptor("meshwork_pieces", "Pieces this node's worker ran", None, MetricType::Counter)?;
        for (task, outcomes) in &w.pieces {
            for (outcome, n) in outcomes {
                let labels = [("task", task.as_str()), ("outcome", outcome.label())];
                ConstCounter::new(*n).encode(pieces.encode_family(&labels)?)?;
            }
        }
        for (name, help, by_task) in [
            ("meshwork_pieces_retried", "Pieces of this node's jobs sent again after a failure", &w.retried),
            ("meshwork_pieces_backed_up", "Backup copies of stragglers launched by this node's jobs", &w.backed_up),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (task, n) in by_task {
                ConstCounter::new(*n).encode(family.encode_family(&[("task", task.as_str())])?)?;
            }
        }
        let mut rtt = encoder.encode_descriptor(
            "meshwork_rpc_round_trip",
            "Answered RPC requests, from sending to the answer (a run includes executing the batch)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (kind, trips) in &w.round_trips {
            let bounds = ROUND_TRIP_BUCKETS.iter().copied().chain([f64::INFINITY]);
            let buckets: Vec<(f64, u64)> = bounds.zip(trips.buckets).collect();
            rtt.encode_family(&[("request", *kind)])?.encode_histogram::<NoLabelSet>(
                trips.sum_us as f64 / 1e6,
                trips.count(),
                &buckets,
                None,
            )?;
        }
        let counters = [
            ("meshwork_rpc_requests_sent", "RPC requests sent", s.requests_sent),
            ("meshwork_rpc_responses_sent", "RPC responses sent", s.responses_sent),
            (
                "meshwork_rpc_refused",
                "Inbound RPC frames refused (malformed, oversized, over budget)",
                s.malformed_requests,
            ),
            ("meshwork_adverts_published", "Load adverts published", s.adverts_published),
            ("meshwork_adverts_invalid", "Adverts dropped by validation", s.invalid_adverts),
            ("meshwork_peers_marked_down", "Peers the health checks judged down", s.marked_down),
            ("meshwork_dials", "Outgoing dials started", s.dials),
            ("meshwork_modules_served", "wasm modules sent to peers", s.modules_served),
        ];
        for (name, help, v) in counters {
            ConstCounter::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let served = "Bytes of wasm modules sent to peers";
        let bytes =
            encoder.encode_descriptor("meshwork_modules_served", served, Some(&Unit::Bytes), MetricType::Counter)?;
        ConstCounter::new(s.module_bytes_served).encode(bytes)?;
        let help = "Bytes of RPC frames (requests and answers), by direction";
        let mut traffic = encoder.encode_descriptor("meshwork_rpc", help, Some(&Unit::Bytes), MetricType::Counter)?;
        for (direction, n) in [("in", s.rpc_bytes_in), ("out", s.rpc_bytes_out)] {
            ConstCounter::new(n).encode(traffic.encode_family(&[("direction", direction)])?)?;
        }
        let held = "Bytes inbound RPC frames hold now";
        let bytes = encoder.encode_descriptor("meshwork_rpc_buffered", held, Some(&Unit::Bytes), MetricType::Gauge)?;
        ConstGauge::new(s.buffered_bytes as i64).encode(bytes)?;
        let gauges = [
            ("meshwork_live_peers", "Workers live now (connected, advertising, not down)", self.live_peers),
            ("meshwork_connections", "Open connections", s.connections),
            ("meshwork_redialling", "Lost peers being dialled again", s.redialling),
            ("meshwork_slots", "Pieces this node runs at once", u64::from(self.load.slots)),
            ("meshwork_running", "Slots busy now", u64::from(self.load.running)),
            ("meshwork_queued", "Pieces queued here now", u64::from(self.load.queued)),
        ];
        for (name, help, v) in gauges {
            ConstGauge::new(v as i64).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_fall_in_the_first_bucket_that_holds_them() {
        let mut r = RoundTrips::default();
        r.record(Duration::from_micros(100));
        r.record(Duration::from_micros(101));
        r.record(Duration::from_secs(1000));
        assert_eq!(r.buckets[0], 1, "100 µs is within the first bound");
        assert_eq!(r.buckets[1], 1);
        assert_eq!(r.buckets[ROUND_TRIP_BUCKETS.len()], 1, "past the last bound: +Inf");
        assert_eq!((r.count(), r.sum_us), (3, 1_000_000_201));
    }

    #[test]
    fn outcomes_are_counted_by_task() {
        let mut w = WorkStats::default();
        let done = Outcome::Done { output: Vec::new(), conclusive: false };
        w.ran("primes", &[done.clone(), Outcome::Failed("x".into()), Outcome::Repeats("y".into()), done]);
        w.ran("noop", &[Outcome::Cancelled]);
        let primes = &w.pieces["primes"];
        assert_eq!((primes[&PieceOutcome::Done], primes[&PieceOutcome::Failed]), (2, 2));
        assert_eq!(w.pieces["noop"][&PieceOutcome::Cancelled], 1);
    }
}
