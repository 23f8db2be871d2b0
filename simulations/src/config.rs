//! [`SimConfig`]: a run as plain data, whoever drives it. The simulator
//! reads it; the `--real` harness of the node reads the same struct, and
//! both configure their machines and jobs through [`SimConfig::tune`] and
//! [`SimConfig::job_spec`], so the two can only differ in what they carry
//! (virtual or real messages), never in how the protocol is set up.

use crate::dist::Dist;
use crate::error::SimError;
use crate::reach::ReachConfig;
use crate::scenario::Scripted;
use meshwork_protocol::{Config, JobSpec, Policy};
use std::time::Duration;

/// Everything that decides a run (outputs aside).
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Nodes at the start, submitters included.
    pub nodes: u32,
    /// Pieces in all, split evenly over the submitters' jobs.
    pub pieces: u32,
    /// Work in one piece at speed 1.
    pub piece_cost: Dist,
    /// Speed factor of each node.
    pub speeds: Dist,
    /// Pieces each node runs at once.
    pub slots: u32,
    /// One-way latency of a message.
    pub latency: Dist,
    /// Probability that a message or an advert copy is lost.
    pub loss: f64,
    /// Longest gap between two adverts in a small mesh.
    pub advert_interval: Duration,
    /// Extra delay of each gossip hop.
    pub hop_delay: Duration,
    /// IP addresses the nodes are spread over, round-robin (`None`: one each).
    pub hosts: Option<u32>,
    /// Model gossipsub's IP-colocation penalty (see `hosts`).
    pub colocation_penalty: bool,
    /// The old liveness rule ([`Config::advert_expiry`]).
    pub advert_expiry: Option<Duration>,
    /// Fraction of the nodes that crash or leave during the run.
    pub churn: f64,
    /// Scripted faults, sorted by time.
    pub script: Vec<Scripted>,
    /// Placement policy.
    pub policy: Policy,
    /// Nodes `0..submitters` each submit one job.
    pub submitters: u32,
    /// Submitter i submits at i × this.
    pub stagger: Duration,
    /// Seed of every random draw.
    pub seed: u64,
    /// Failures of one piece that fail its job.
    pub max_attempts: u32,
    /// Deadline of one piece.
    pub piece_timeout: Duration,
    /// Launch speculative backups of stragglers.
    pub backups: bool,
    /// Give up at this virtual time (default: from the ideal makespan).
    pub time_limit: Option<Duration>,
    /// NATed nodes and relays (`--nated`); `None`: every node public.
    pub reach: Option<ReachConfig>,
}

impl SimConfig {
    /// Refuses what does not describe a run.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Args(m.to_string()));
        if self.nodes == 0 {
            return bad("--nodes must be at least 1");
        }
        if self.slots == 0 {
            return bad("--slots must be at least 1");
        }
        if self.submitters == 0 || self.submitters > self.nodes {
            return bad("--submitters must be between 1 and --nodes");
        }
        if self.max_attempts == 0 {
            return bad("--max-attempts must be at least 1");
        }
        if self.advert_interval.is_zero() {
            return bad("--advert-interval must be above 0");
        }
        if self.hosts == Some(0) {
            return bad("--hosts must be at least 1");
        }
        if self.advert_expiry.is_some_and(|d| d.is_zero()) {
            return bad("--advert-expiry must be above 0");
        }
        if let Some(r) = &self.reach {
            if r.relays > 0 && r.relay_circuits == 0 {
                return bad("--relay-circuits must be at least 1");
            }
        }
        Ok(())
    }

    /// The protocol knobs this run sets, applied to `cfg` (a node's own
    /// configuration in `--real`, a fresh one in the simulator).
    pub fn tune(&self, cfg: Config) -> Config {
        let mut cfg = cfg.with_slots(self.slots);
        cfg.advert_interval = self.advert_interval;
        cfg.policy = self.policy;
        cfg.advert_expiry = self.advert_expiry;
        cfg
    }

    /// The job a submitter submits: `inputs` of `task`, with this run's limits.
    pub fn job_spec(&self, task: &str, inputs: Vec<Vec<u8>>) -> JobSpec {
        let mut spec = JobSpec::new(task, inputs);
        spec.max_attempts = self.max_attempts;
        spec.piece_timeout = self.piece_timeout;
        spec.backups = self.backups;
        spec.explain = true;
        spec
    }

    /// When to give up on jobs that have not ended: `--time-limit`, or
    /// 20 × the ideal makespan + 300 s.
    pub fn give_up_after(&self, ideal: Duration) -> Duration {
        self.time_limit.unwrap_or(ideal.saturating_mul(20) + Duration::from_secs(300))
    }

    /// The IP address (host number) of node `n`: round-robin over `hosts`.
    pub fn host_of(&self, n: u32) -> u32 {
        self.hosts.map_or(n, |k| n % k.max(1))
    }
}
