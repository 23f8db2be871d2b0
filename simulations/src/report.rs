//! What a run reports: [`Report`], as text for people and JSON for
//! scripts. A simulation's report is a function of the options, so the same
//! seed gives the same bytes; wall time lives outside it (in
//! [`SimOutcome`](crate::SimOutcome)). [`Recorder`](crate::Recorder) fills it in,
//! for the simulator and for `--real` alike.

use serde::Serialize;
use std::fmt::Write as _;

/// The report of a simulation or of a placement-only run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Report {
    /// A full simulation.
    Run(Box<RunReport>),
    /// `--placement-only`: balls into bins.
    Placement(PlacementReport),
}

impl Report {
    /// Broken invariants (empty when the run was correct).
    pub fn violations(&self) -> &[String] {
        match self {
            Report::Run(r) => &r.violations,
            Report::Placement(_) => &[],
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        match self {
            Report::Run(r) => r.to_text(),
            Report::Placement(p) => p.to_text(),
        }
    }
}

/// How one job went.
#[derive(Clone, Debug, Serialize)]
pub struct JobSummary {
    /// Its submitter node.
    pub submitter: u32,
    /// Its pieces.
    pub pieces: u32,
    /// `ok`, `failed` or `unfinished` (the run gave up first).
    pub outcome: String,
    /// The error of a failed job.
    pub error: Option<String>,
    /// Submit to end, seconds of virtual time.
    pub makespan_s: Option<f64>,
    /// Pieces done when it ended (or when the run gave up).
    pub done: u32,
}

/// Messages sent (lost ones included).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Messages {
    /// RPC requests (batches, health probes, cancels).
    pub requests: u64,
    /// RPC responses.
    pub responses: u64,
    /// Adverts published.
    pub adverts: u64,
    /// Copies of adverts sent over connections: the publisher's own and
    /// every forward (`--real` does not count them: gossipsub keeps that to itself).
    pub advert_copies: Option<u64>,
    /// IWANTs of lazy gossip repairs: a node that missed an advert asking a
    /// peer that announced it (IHAVE) for it (not counted by `--real`).
    pub gossip_iwants: Option<u64>,
    /// Adverts handed to a machine (not counted by `--real`).
    pub adverts_delivered: Option<u64>,
    /// Requests, responses, advert copies and IWANTs (advert publications in `--real`).
    pub total: u64,
    /// Total per piece.
    pub per_piece: f64,
    /// Total per node per second of presence.
    pub per_node_per_s: f64,
    /// Lost to `--loss`: requests, responses, and the gossip messages the
    /// model followed (advert copies; IHAVEs and IWANTs of lazy repairs).
    pub lost: u64,
}

/// Load (pieces accepted and not answered) per node, sampled over time.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadSummary {
    /// Seconds of virtual time between samples.
    pub sample_interval_s: f64,
    /// Highest load of any node in any sample.
    pub peak: u32,
    /// Highest load over mean load, each averaged over the samples with work.
    pub max_over_mean: f64,
    /// Mean over samples of the highest load.
    pub max_mean: f64,
}

/// Faults that happened, and how the nodes judged each other.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Faults {
    /// Nodes killed.
    pub crashes: u32,
    /// Nodes that left gracefully.
    pub leaves: u32,
    /// Nodes that joined after the start.
    pub joins: u32,
    /// Nodes stopped (SIGSTOP).
    pub hangs: u32,
    /// Partitions begun.
    pub partitions: u32,
    /// Down-judgements: a node judged a peer down (closed connection,
    /// unanswered probes, or under the old rule, expired adverts).
    pub marked_down: u64,
    /// Down-judgements of a peer that was present, not hung, not leaving and
    /// reachable (see the ledger for the grace after a hang or partition).
    pub false_downs: u64,
    /// Connections a machine closed because it judged the peer dead (old rule only).
    pub disconnects: u64,
}

/// One sample of the run over time (for the plot).
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Virtual time, seconds.
    pub t_s: f64,
    /// Busy share of each present node's slots since the previous sample: lowest.
    pub util_min: f64,
    /// ... median.
    pub util_median: f64,
    /// ... highest.
    pub util_max: f64,
    /// ... mean.
    pub util_mean: f64,
    /// Highest load of a node.
    pub load_max: u32,
    /// Mean load of a node.
    pub load_mean: f64,
    /// Pieces done, all jobs.
    pub done: u64,
}

/// The report of a full simulation.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The command that repeats this run.
    pub command: String,
    /// Nodes at the start.
    pub nodes: u32,
    /// Pieces in all.
    pub pieces: u32,
    /// Jobs (one per submitter).
    pub submitters: u32,
    /// The seed.
    pub seed: u64,
    /// The placement policy.
    pub policy: String,
    /// From the start until the last job ended, seconds (none if one did not).
    pub makespan_s: Option<f64>,
    /// Lower bound: total work / total capacity (Σ slots × speed of the nodes
    /// at the start), or the longest piece on the fastest node if larger.
    pub ideal_s: f64,
    /// makespan / ideal.
    pub makespan_over_ideal: Option<f64>,
    /// Each job.
    pub jobs: Vec<JobSummary>,
    /// Pieces sent again after a failure.
    pub pieces_retried: u64,
    /// Speculative copies launched.
    pub backups_launched: u64,
    /// Speculative copies that finished first.
    pub backups_won: u64,
    /// Results ignored because their piece was already done.
    pub duplicates_ignored: u64,
    /// Pieces neither in a merged output nor reported by a job's error (must be 0).
    pub pieces_lost: u64,
    /// Messages.
    pub messages: Messages,
    /// Busy slot time / slot time of the nodes present, until the end.
    pub utilization_mean: f64,
    /// Load per node over time.
    pub load: LoadSummary,
    /// Faults.
    pub faults: Faults,
    /// Simulated events processed (0 in `--real`).
    pub events: u64,
    /// Lines of the trace.
    pub trace_lines: u64,
    /// FNV-1a 64 of the trace, hex.
    pub trace_hash: String,
    /// Broken invariants; empty when all held.
    pub violations: Vec<String>,
    /// NATed nodes and relays (`--nated` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach: Option<ReachReport>,
    /// Samples over time (JSON only).
    pub samples: Vec<Sample>,
}

/// What NATs and relays did to a run (`--nated`). Pieces are counted as
/// sent (retries and backups included).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReachReport {
    /// Nodes behind a NAT (joiners included).
    pub nated: u32,
    /// ... of them behind a symmetric NAT.
    pub symmetric: u32,
    /// Submitters behind a NAT.
    pub submitters_nated: u32,
    /// Relays serving (fewer than asked if too few workers were public).
    pub relays: u32,
    /// Circuits one relay carries at once.
    pub relay_circuits: u32,
    /// A relay's time to forward one message, µs.
    pub relay_delay_us: u64,
    /// Circuits opened.
    pub circuits: u64,
    /// Dials of a NATed node that found no circuit free (or no relay).
    pub circuits_refused: u64,
    /// Most circuits open at once on each relay.
    pub relay_peak_circuits: Vec<u32>,
    /// Messages each relay forwarded.
    pub relay_messages: Vec<u64>,
    /// NATed nodes that some submitter never got connected to.
    pub never_reached: u32,
    /// Hole punches tried.
    pub punches: u64,
    /// ... that made the connection direct.
    pub punched: u64,
    /// Pieces sent over a direct connection.
    pub pieces_direct: u64,
    /// Pieces sent over a relay.
    pub pieces_relayed: u64,
    /// Pieces sent to NATed nodes (either way).
    pub pieces_to_nated: u64,
    /// Makespan of the same run with every node public, seconds.
    pub public_makespan_s: Option<f64>,
}

impl ReachReport {
    fn write_text(&self, s: &mut String, makespan_s: Option<f64>) {
        let _ = writeln!(
            s,
            "nat          {} nodes NATed ({} symmetric, {} submitters); {} relay(s) of {} circuits, {}us a message",
            self.nated, self.symmetric, self.submitters_nated, self.relays, self.relay_circuits, self.relay_delay_us
        );
        let peak = self.relay_peak_circuits.iter().copied().max().unwrap_or(0);
        let most = self.relay_messages.iter().copied().max().unwrap_or(0);
        let _ = writeln!(
            s,
            "relays       {} circuits ({} refused), peak {} on one relay; {} messages relayed, {} by the busiest; \
             {} NATed node(s) never reached by some submitter",
            self.circuits,
            self.circuits_refused,
            peak,
            self.relay_messages.iter().sum::<u64>(),
            most,
            self.never_reached
        );
        let sent = (self.pieces_direct + self.pieces_relayed).max(1) as f64;
        let _ = writeln!(
            s,
            "punches      {} tried, {} direct; pieces {:.1}% relayed, {:.1}% direct, {} to NATed nodes",
            self.punches,
            self.punched,
            100.0 * self.pieces_relayed as f64 / sent,
            100.0 * self.pieces_direct as f64 / sent,
            self.pieces_to_nated
        );
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}s"));
        let ratio = match (makespan_s, self.public_makespan_s) {
            (Some(m), Some(p)) if p > 0.0 => format!(" ({:.2}x)", m / p),
            _ => String::new(),
        };
        let _ =
            writeln!(s, "vs public    makespan {}, all public {}{ratio}", opt(makespan_s), opt(self.public_makespan_s));
    }
}

impl RunReport {
    fn to_text(&self) -> String {
        let mut s = String::new();
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.3}{unit}"));
        let _ = writeln!(s, "command      {}", self.command);
        let _ = writeln!(
            s,
            "mesh         {} nodes, {} pieces, {} submitter(s), policy {}, seed {}",
            self.nodes, self.pieces, self.submitters, self.policy, self.seed
        );
        let _ = writeln!(
            s,
            "makespan     {} (ideal {:.3}s, ratio {})",
            opt(self.makespan_s, "s"),
            self.ideal_s,
            opt(self.makespan_over_ideal, "")
        );
        for j in &self.jobs {
            let how = match &j.error {
                Some(e) => format!("{}: {e}", j.outcome),
                None => j.outcome.clone(),
            };
            let _ =
                writeln!(s, "job {:<8} {how}, {}/{} pieces, {}", j.submitter, j.done, j.pieces, opt(j.makespan_s, "s"));
        }
        let _ = writeln!(
            s,
            "pieces       {} retried, {} backups ({} won), {} duplicates ignored, {} lost",
            self.pieces_retried, self.backups_launched, self.backups_won, self.duplicates_ignored, self.pieces_lost
        );
        let m = &self.messages;
        let counted = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let _ = writeln!(
            s,
            "messages     {} ({} requests, {} responses, {} adverts: {} copies, {} IWANTs, {} delivered; {} lost), \
             {:.2} per piece, {:.2} per node per second",
            m.total,
            m.requests,
            m.responses,
            m.adverts,
            counted(m.advert_copies),
            counted(m.gossip_iwants),
            counted(m.adverts_delivered),
            m.lost,
            m.per_piece,
            m.per_node_per_s
        );
        let _ = writeln!(
            s,
            "utilization  {:.1}% mean; load max/mean {:.2} (every {}s), peak {}",
            self.utilization_mean * 100.0,
            self.load.max_over_mean,
            self.load.sample_interval_s,
            self.load.peak
        );
        let f = &self.faults;
        let _ = writeln!(
            s,
            "faults       {} crashed, {} left, {} joined, {} hung, {} partitions; {} judged down, {} falsely; \
             {} disconnects",
            f.crashes, f.leaves, f.joins, f.hangs, f.partitions, f.marked_down, f.false_downs, f.disconnects
        );
        if let Some(r) = &self.reach {
            r.write_text(&mut s, self.makespan_s);
        }
        let _ = writeln!(
            s,
            "events       {} simulated; trace {} lines, hash {}",
            self.events, self.trace_lines, self.trace_hash
        );
        if self.violations.is_empty() {
            let _ = writeln!(s, "invariants   all held");
        } else {
            let _ = writeln!(s, "invariants   {} BROKEN:", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(s, "  - {v}");
            }
        }
        s
    }
}

/// The report of `--placement-only`.
#[derive(Clone, Debug, Serialize)]
pub struct PlacementReport {
    /// The command that repeats this run.
    pub command: String,
    /// Bins.
    pub nodes: u32,
    /// Balls.
    pub pieces: u32,
    /// Slots per node (loads are compared per slot).
    pub slots: u32,
    /// The seed.
    pub seed: u64,
    /// The placement policy.
    pub policy: String,
    /// Most pieces on one node.
    pub max: u32,
    /// Pieces per node on average.
    pub mean: f64,
    /// max − mean.
    pub gap: f64,
    /// What theory predicts for the gap with one slot per node, when it says:
    /// p2c `ln ln n / ln 2`, random `ln n / ln ln n` (for as many pieces as nodes).
    pub predicted_gap: Option<f64>,
    /// Nodes holding each count of pieces (index: pieces).
    pub histogram: Vec<u32>,
}

impl PlacementReport {
    fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "command      {}", self.command);
        let _ = writeln!(
            s,
            "placement    {} pieces on {} nodes ({} slots each), policy {}, seed {}",
            self.pieces, self.nodes, self.slots, self.policy, self.seed
        );
        let predicted = self.predicted_gap.map_or(String::new(), |p| format!(" (theory: about {p:.2})"));
        let _ = writeln!(s, "load         max {}, mean {:.2}, gap {:.2}{predicted}", self.max, self.mean, self.gap);
        let hist: Vec<String> =
            self.histogram.iter().enumerate().filter(|(_, c)| **c > 0).map(|(k, c)| format!("{k}:{c}")).collect();
        let _ = writeln!(s, "histogram    {} (pieces:nodes)", hist.join(" "));
        s
    }
}
