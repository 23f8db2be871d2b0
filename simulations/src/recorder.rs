//! [`Recorder`]: the one owner of a run's report. Whoever drives the run,
//! the simulator in virtual time or the node's `--real` harness on real
//! nodes, feeds it the same things as they happen: job events, peers
//! judged up or down, faults, and samples of the nodes' busy time and load.
//! The recorder checks the jobs' invariants, writes the trace, counts the
//! faults and the false down-judgements (see `ledger`), and computes
//! every figure of the [`RunReport`] the same way for both.
//!
//! Times are [`Time`] since the start of the run (the harness converts
//! real elapsed time). Nodes are numbered as the harness numbers them:
//! `0..nodes` at the start, then each joiner, in order.

use crate::config::SimConfig;
use crate::dist::format_duration;
use crate::error::SimError;
use crate::jobs::JobTrack;
use crate::ledger::Ledger;
use crate::plan::Plan;
use crate::report::{Faults, JobSummary, LoadSummary, Messages, RunReport, Sample};
use crate::trace::Trace;
use meshwork_protocol::timeline::{Timeline, TimelineBuilder};
use meshwork_protocol::{JobEvent, Time};
use std::path::Path;
use std::time::Duration;

/// Samples are at least this far apart.
const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// `t` in seconds since the start.
fn secs(t: Time) -> f64 {
    t.as_micros() as f64 / 1e6
}

/// One node at a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSample {
    /// Which node.
    pub node: u32,
    /// Slot time spent running pieces since it joined, µs (the simulator
    /// knows it exactly; `--real` sums running slots × the sample interval).
    pub busy_us: u64,
    /// Pieces it has accepted and not answered.
    pub load: u32,
}

/// Follows a run and makes its report.
#[derive(Debug)]
pub struct Recorder {
    nodes: u32,
    pieces: u32,
    submitters: u32,
    seed: u64,
    policy: String,
    slots: u32,
    ideal_s: f64,
    sample_interval: Duration,
    jobs: Vec<JobTrack>,
    unfinished: usize,
    ledger: Ledger,
    faults: Faults,
    messages: Messages,
    samples: Vec<Sample>,
    /// Busy time of each node at its last sample.
    busy: Vec<u64>,
    trace: Trace,
    violations: Vec<String>,
    /// Each job's timeline, when asked for ([`Recorder::keep_timelines`]).
    timelines: Option<Vec<TimelineBuilder>>,
}

impl Recorder {
    /// A recorder for the run `cfg` and `plan` describe, writing the trace
    /// to `trace` if given (it is hashed either way).
    pub fn new(cfg: &SimConfig, plan: &Plan, trace: Option<&Path>) -> Result<Recorder, SimError> {
        let trace = Trace::new(trace)
            .map_err(|source| SimError::Write { path: trace.map(Path::to_path_buf).unwrap_or_default(), source })?;
        let jobs: Vec<JobTrack> =
            plan.jobs.iter().enumerate().map(|(s, c)| JobTrack::new(s as u32, c.clone())).collect();
        let ideal_per_sample = Duration::from_millis((plan.ideal.as_millis() / 1000) as u64);
        Ok(Recorder {
            nodes: cfg.nodes,
            pieces: cfg.pieces,
            submitters: cfg.submitters,
            seed: cfg.seed,
            policy: cfg.policy.to_string(),
            slots: cfg.slots.max(1),
            ideal_s: plan.ideal_s,
            sample_interval: MIN_SAMPLE_INTERVAL.max(ideal_per_sample),
            unfinished: jobs.len(),
            jobs,
            ledger: Ledger::new(cfg.nodes),
            faults: Faults::default(),
            messages: Messages::default(),
            samples: Vec::new(),
            busy: vec![0; cfg.nodes as usize],
            trace,
            violations: Vec::new(),
            timelines: None,
        })
    }

    /// How often to call [`sample`](Self::sample): every 100 ms, or a
    /// thousandth of the ideal makespan if that is longer.
    pub fn sample_interval(&self) -> Duration {
        self.sample_interval
    }

    /// Builds each job's timeline (for `simulate --serve`). Its jobs must
    /// stream their outputs: the harness asks [`keeps_timelines`](Self::keeps_timelines).
    pub fn keep_timelines(&mut self) {
        let new = |j: &JobTrack| TimelineBuilder::new(j.costs.len() as u32, Time::ZERO);
        self.timelines = Some(self.jobs.iter().map(new).collect());
    }

    /// Whether the run builds timelines, whose jobs stream their outputs.
    pub fn keeps_timelines(&self) -> bool {
        self.timelines.is_some()
    }

    /// Each job's timeline at `now` (none unless kept), peers named `node <n>`.
    pub fn timelines(&self, now: Time) -> Vec<Timeline> {
        self.timelines.iter().flatten().map(|b| b.timeline(now)).collect()
    }

    /// Jobs not yet finished.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// The message counters, for the harness to add to.
    pub fn messages(&mut self) -> &mut Messages {
        &mut self.messages
    }

    /// An invariant broke in a way only the harness can see.
    pub fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    /// The run gave up at `limit` with jobs unfinished.
    pub fn gave_up(&mut self, limit: Duration) {
        self.violations.push(format!(
            "jobs unfinished at the time limit of {} (use --time-limit to wait longer)",
            format_duration(limit)
        ));
    }

    /// Submitter `s` submitted its job.
    pub fn submitted(&mut self, s: u32, now: Time) {
        if let Some(job) = self.jobs.get_mut(s as usize) {
            job.started = now;
            if let Some(b) = self.timelines.as_mut().and_then(|t| t.get_mut(s as usize)) {
                *b = TimelineBuilder::new(job.costs.len() as u32, now);
            }
        }
        self.trace.event(now.as_micros(), "submitted", |l| l.num("job", s));
    }

    /// An event of submitter `s`'s job (peers numbered as nodes, outputs
    /// as the piece inputs they must equal).
    pub fn job_event(&mut self, s: u32, ev: &JobEvent, now: Time) {
        let t = now.as_micros();
        let Some(job) = self.jobs.get_mut(s as usize) else { return };
        job.on_event(ev, now, &mut self.violations);
        if let Some(b) = self.timelines.as_mut().and_then(|t| t.get_mut(s as usize)) {
            b.event(ev, now, &|k| format!("node {}", k.0));
        }
        match ev {
            JobEvent::Placed { peer, pieces, choice, backup, .. } => {
                let kind = if *backup { "backup" } else { "placed" };
                self.trace.event(t, kind, |l| {
                    l.num("job", s).num("peer", peer.0).list("pieces", pieces).num("load", choice.chosen.load)
                });
            }
            JobEvent::Retried { piece, peer, cause, .. } => {
                self.trace.event(t, "retried", |l| {
                    l.num("job", s).num("piece", piece).num("peer", peer.0).str("cause", &cause.to_string())
                });
            }
            JobEvent::Refused { peer, reason, .. } => {
                self.trace
                    .event(t, "refused", |l| l.num("job", s).num("peer", peer.0).str("reason", &reason.to_string()));
            }
            JobEvent::Unplaceable { piece, why, .. } => {
                self.trace
                    .event(t, "unplaceable", |l| l.num("job", s).num("piece", piece).str("why", &why.to_string()));
            }
            JobEvent::Progress { done, .. } => self.trace.event(t, "done", |l| l.num("job", s).num("pieces", done)),
            // Streamed only for timelines: Progress says what is done.
            JobEvent::Output { .. } => {}
            JobEvent::Finished { result, .. } => {
                self.unfinished = self.unfinished.saturating_sub(1);
                self.trace.event(t, "finished", |l| match result {
                    Ok(out) => l.num("job", s).str("outcome", "ok").num("pieces", job.outputs(out).len()),
                    Err(e) => l.num("job", s).str("outcome", "failed").str("error", &e.to_string()),
                });
            }
        }
    }

    /// Node `a` sees peer `b` live (again).
    pub fn peer_up(&mut self, a: u32, b: u32, now: Time) {
        self.trace.event(now.as_micros(), "peer_up", |l| l.num("node", a).num("peer", b));
    }

    /// Node `a` judged peer `b` down, for `reason`.
    pub fn peer_down(&mut self, a: u32, b: u32, reason: &str, now: Time) {
        let wrong = self.ledger.is_false_down(a, b, now);
        self.faults.marked_down += 1;
        self.faults.false_downs += u64::from(wrong);
        self.trace.event(now.as_micros(), "peer_down", |l| {
            let l = l.num("node", a).num("peer", b).str("reason", reason);
            if wrong {
                l.num("false", true)
            } else {
                l
            }
        });
    }

    /// Node `a` closed its connections to `b`, judging it dead (old rule).
    pub fn disconnected(&mut self, a: u32, b: u32, now: Time) {
        self.faults.disconnects += 1;
        self.trace.event(now.as_micros(), "disconnect", |l| l.num("node", a).num("peer", b));
    }

    /// Node `n` was killed (ignored if it was not present).
    pub fn crashed(&mut self, n: u32, now: Time) {
        if self.ledger.gone(n, now) {
            self.faults.crashes += 1;
            self.trace.event(now.as_micros(), "crash", |l| l.num("node", n));
        }
    }

    /// Node `n` began to leave gracefully (ignored if it was not running).
    pub fn leaving(&mut self, n: u32, now: Time) {
        if self.ledger.leaving(n) {
            self.faults.leaves += 1;
            self.trace.event(now.as_micros(), "leave", |l| l.num("node", n));
        }
    }

    /// Node `n` finished leaving and is gone.
    pub fn left(&mut self, n: u32, now: Time) {
        if self.ledger.gone(n, now) {
            self.trace.event(now.as_micros(), "left", |l| l.num("node", n));
        }
    }

    /// Node `n`, the next number, joined.
    pub fn joined(&mut self, n: u32, now: Time) {
        if self.ledger.joined(n, now) {
            self.faults.joins += 1;
            self.busy.push(0);
            self.trace.event(now.as_micros(), "join", |l| l.num("node", n));
        }
    }

    /// Node `n` stopped (SIGSTOP) or, with `hung` false, resumed.
    pub fn hang(&mut self, n: u32, hung: bool, now: Time) {
        if self.ledger.hang(n, hung, now) {
            self.faults.hangs += u32::from(hung);
            self.trace.event(now.as_micros(), if hung { "hang" } else { "resume" }, |l| l.num("node", n));
        }
    }

    /// The network was cut into `groups`.
    pub fn partitioned(&mut self, groups: &[Vec<u32>], now: Time) {
        self.ledger.partition(groups);
        self.faults.partitions += 1;
        let sizes: Vec<u32> = groups.iter().map(|g| g.len() as u32).collect();
        self.trace.event(now.as_micros(), "partition", |l| l.list("groups", &sizes));
    }

    /// The partition ended.
    pub fn healed(&mut self, now: Time) {
        self.ledger.heal(now);
        self.trace.event(now.as_micros(), "heal", |l| l);
    }

    /// Is `n` present, not hung and not leaving (a churn victim may be chosen among these)?
    pub fn running(&self, n: u32) -> bool {
        self.ledger.running(n)
    }

    /// Nodes so far, gone ones included.
    pub fn node_count(&self) -> u32 {
        self.ledger.len()
    }

    /// Samples the nodes: utilization since the last sample (per node:
    /// busy slot time over slot time) and load, over the nodes present.
    /// Nodes that are gone may be passed too: only their busy time counts
    /// (towards [`RunReport::utilization_mean`]).
    pub fn sample(&mut self, now: Time, nodes: impl IntoIterator<Item = NodeSample>) {
        let dt = self.samples.last().map_or(0.0, |s| now.as_micros() as f64 - s.t_s * 1e6);
        let slot_time = dt * self.slots as f64;
        let (mut utils, mut loads) = (Vec::new(), Vec::new());
        for n in nodes {
            let present = self.ledger.present(n.node);
            let Some(prev) = self.busy.get_mut(n.node as usize) else { continue };
            if !present {
                *prev = n.busy_us;
                continue;
            }
            if slot_time > 0.0 {
                utils.push((n.busy_us.saturating_sub(*prev) as f64 / slot_time).min(1.0));
            }
            *prev = n.busy_us;
            loads.push(n.load);
        }
        utils.sort_by(f64::total_cmp);
        let pick = |q: f64| utils.get(((utils.len().saturating_sub(1)) as f64 * q).round() as usize).copied();
        let mean = |sum: f64, n: usize| if n == 0 { 0.0 } else { sum / n as f64 };
        self.samples.push(Sample {
            t_s: secs(now),
            util_min: pick(0.0).unwrap_or(0.0),
            util_median: pick(0.5).unwrap_or(0.0),
            util_max: pick(1.0).unwrap_or(0.0),
            util_mean: mean(utils.iter().sum(), utils.len()),
            load_max: loads.iter().copied().max().unwrap_or(0),
            load_mean: mean(loads.iter().map(|l| *l as f64).sum(), loads.len()),
            done: self.jobs.iter().map(|j| j.done as u64).sum(),
        });
    }

    /// The report of the run, which ended at `end`: `command` repeats it,
    /// `events` is what the harness processed (0 if it does not count).
    pub fn finish(mut self, end: Time, command: String, events: u64) -> Result<RunReport, SimError> {
        self.trace.finish().map_err(|(path, source)| SimError::Write { path, source })?;
        let ended: Vec<Option<f64>> = self.jobs.iter().map(|j| j.end.as_ref().map(|e| secs(e.at))).collect();
        let makespan_s = ended.iter().all(Option::is_some).then(|| ended.iter().flatten().copied().fold(0.0, f64::max));
        let jobs = self
            .jobs
            .iter()
            .map(|j| JobSummary {
                submitter: j.submitter,
                pieces: j.costs.len() as u32,
                outcome: match &j.end {
                    None => "unfinished",
                    Some(e) if e.error.is_some() => "failed",
                    Some(_) => "ok",
                }
                .to_string(),
                error: j.end.as_ref().and_then(|e| e.error.clone()),
                makespan_s: j.end.as_ref().map(|e| e.at.since(j.started).as_secs_f64()),
                done: j.done,
            })
            .collect();
        let present_us: u64 = (0..self.ledger.len()).map(|n| self.ledger.present_us(n, end)).sum();
        let capacity = present_us as f64 * self.slots as f64;
        let busy: u64 = self.busy.iter().sum();
        let m = &mut self.messages;
        m.total = m.requests + m.responses + m.advert_copies.unwrap_or(m.adverts) + m.gossip_iwants.unwrap_or(0);
        m.per_piece = if self.pieces == 0 { 0.0 } else { m.total as f64 / self.pieces as f64 };
        m.per_node_per_s = if present_us == 0 { 0.0 } else { m.total as f64 / (present_us as f64 / 1e6) };
        let load = self.load();
        let jobs_of = &self.jobs;
        Ok(RunReport {
            command,
            nodes: self.nodes,
            pieces: self.pieces,
            submitters: self.submitters,
            seed: self.seed,
            policy: self.policy,
            makespan_s,
            ideal_s: self.ideal_s,
            makespan_over_ideal: makespan_s.filter(|_| self.ideal_s > 0.0).map(|m| m / self.ideal_s),
            jobs,
            pieces_retried: jobs_of.iter().map(|j| j.retries as u64).sum(),
            backups_launched: jobs_of.iter().map(|j| j.backups as u64).sum(),
            backups_won: jobs_of.iter().filter_map(|j| j.end.as_ref()).map(|e| e.backups_won as u64).sum(),
            duplicates_ignored: jobs_of.iter().filter_map(|j| j.end.as_ref()).map(|e| e.duplicates as u64).sum(),
            pieces_lost: jobs_of.iter().map(|j| if j.end.is_none() { j.costs.len() as u64 } else { j.lost }).sum(),
            messages: self.messages,
            utilization_mean: if capacity > 0.0 { (busy as f64 / capacity).min(1.0) } else { 0.0 },
            load,
            faults: self.faults,
            events,
            trace_lines: self.trace.lines(),
            trace_hash: format!("{:016x}", self.trace.hash()),
            violations: self.violations,
            reach: None,
            samples: self.samples,
        })
    }

    /// Load per node over the samples with work in flight.
    fn load(&self) -> LoadSummary {
        let with_work: Vec<&Sample> = self.samples.iter().filter(|s| s.load_mean > 0.0).collect();
        let mean_of = |f: &dyn Fn(&Sample) -> f64| {
            if with_work.is_empty() {
                0.0
            } else {
                with_work.iter().map(|s| f(s)).sum::<f64>() / with_work.len() as f64
            }
        };
        LoadSummary {
            sample_interval_s: self.sample_interval.as_secs_f64(),
            peak: self.samples.iter().map(|s| s.load_max).max().unwrap_or(0),
            max_over_mean: mean_of(&|s| s.load_max as f64) / mean_of(&|s| s.load_mean).max(f64::MIN_POSITIVE),
            max_mean: mean_of(&|s| s.load_max as f64),
        }
    }
}
