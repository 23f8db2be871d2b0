//! [`SimArgs`]: the options of `meshwork simulate`, and the one-line
//! command that repeats a run ([`SimArgs::repro_command`]).

use crate::dist::{format_duration, parse_duration, parse_fraction, Dist};
use clap::{Args, Parser};
use meshwork_protocol::Policy;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Simulates a mesh of `--nodes` peers in virtual time, each running the
/// real `meshwork_protocol::Machine`, and reports how a job of `--pieces`
/// pieces went.
#[derive(Clone, Debug, PartialEq, Args)]
pub struct SimArgs {
    /// Nodes at the start, submitters included.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub nodes: u32,
    /// Pieces in all, split evenly over the submitters' jobs.
    #[arg(long, default_value_t = 10_000, value_name = "M")]
    pub pieces: u32,
    /// Work in one piece at speed 1: fixed:X, uniform:A..B, lognormal:MEDIAN,SIGMA or exp:MEAN, with units us/ms/s.
    #[arg(long, default_value = "uniform:50ms..150ms", value_name = "DIST", value_parser = Dist::parse_duration)]
    pub piece_cost: Dist,
    /// Speed factor of each node (a piece takes cost / speed), e.g. uniform:0.5..2 or lognormal:1,0.3.
    #[arg(long, default_value = "fixed:1", value_name = "DIST", value_parser = Dist::parse_number)]
    pub speeds: Dist,
    /// Pieces each node runs at once.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub slots: u32,
    /// One-way message latency, jitter included, e.g. fixed:1ms or lognormal:500us,0.3.
    #[arg(long, default_value = "uniform:200us..1ms", value_name = "DIST", value_parser = Dist::parse_duration)]
    pub latency: Dist,
    /// Probability that a message (request, response or advert) is lost, e.g. 0.01 or 1%.
    #[arg(long, default_value = "0", value_name = "P", value_parser = parse_fraction)]
    pub loss: f64,
    /// Longest gap between two load adverts of a node (their expiry is three times this).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    pub advert_interval: Duration,
    /// Extra delay of adverts on top of latency (gossip hops): how stale the submitters' view is.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    pub advert_delay: Duration,
    /// Fraction of nodes that fail during the run (e.g. 5%): half crash, half leave gracefully, each
    /// replaced by a fresh node about 1 s later; spread over the ideal makespan. Submitters never fail.
    #[arg(long, default_value = "0", value_name = "P", value_parser = parse_fraction)]
    pub churn: f64,
    /// Scripted faults, one per line: "3s crash 17", "3s hang 17", "4s resume 17", "6s leave 12",
    /// "7s join 3", "5s partition 0-499|500-999", "8s heal"; '#' starts a comment.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Placement policy: p2c, least-loaded, random or round-robin.
    #[arg(long, default_value = "p2c", value_name = "POLICY", value_parser = parse_policy)]
    pub policy: Policy,
    /// Nodes that each submit a job of pieces/submitters pieces at the start (nodes 0..K).
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub submitters: u32,
    /// Submitter i submits its job at i × this (default: all at the start). Jobs that arrive
    /// one after another while stale adverts describe the earlier ones are where policies differ.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    pub stagger: Duration,
    /// Seed of every random draw: the same seed and options give the same run.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// A piece failing this many times fails its job.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub max_attempts: u32,
    /// Deadline of one piece (`meshwork run` defaults to 300s; shorter here so lossy runs end).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub piece_timeout: Duration,
    /// Do not launch speculative backups of straggling pieces.
    #[arg(long)]
    pub no_backups: bool,
    /// Give up at this virtual time (an invariant failure) [default: 20 × the ideal makespan + 300s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG of node utilization and job completion over time.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Write one JSON object per notable event (placement, completion, retry, churn...).
    #[arg(long, value_name = "FILE.jsonl")]
    pub trace: Option<PathBuf>,
    /// Only place pieces one by one on idle nodes with exact loads (balls into bins), no execution.
    #[arg(long)]
    pub placement_only: bool,
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

/// `simulate` alone, to parse [`SimArgs`] from a list of words.
#[derive(Parser)]
#[command(name = "simulate")]
struct Command {
    #[command(flatten)]
    args: SimArgs,
}

impl Default for SimArgs {
    fn default() -> SimArgs {
        SimArgs::try_parse_from(std::iter::empty::<OsString>()).expect("the defaults parse")
    }
}

impl SimArgs {
    /// Parses options as the command line gives them (without the command name).
    pub fn try_parse_from<I, T>(args: I) -> Result<SimArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let words = std::iter::once(OsString::from("simulate")).chain(args.into_iter().map(Into::into));
        Command::try_parse_from(words).map(|c| c.args)
    }

    /// The options that differ from the defaults, as command-line words,
    /// `--seed` first (always present).
    pub fn to_words(&self) -> Vec<String> {
        let d = SimArgs::default();
        let mut w = vec!["--seed".to_string(), self.seed.to_string()];
        let mut opt = |name: &str, differs: bool, value: String| {
            if differs {
                w.push(format!("--{name}"));
                w.push(value);
            }
        };
        opt("nodes", self.nodes != d.nodes, self.nodes.to_string());
        opt("pieces", self.pieces != d.pieces, self.pieces.to_string());
        opt("piece-cost", self.piece_cost != d.piece_cost, self.piece_cost.to_string());
        opt("speeds", self.speeds != d.speeds, self.speeds.to_string());
        opt("slots", self.slots != d.slots, self.slots.to_string());
        opt("latency", self.latency != d.latency, self.latency.to_string());
        opt("loss", self.loss != d.loss, self.loss.to_string());
        opt("advert-interval", self.advert_interval != d.advert_interval, format_duration(self.advert_interval));
        opt("advert-delay", self.advert_delay != d.advert_delay, format_duration(self.advert_delay));
        opt("churn", self.churn != d.churn, self.churn.to_string());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        opt("scenario", self.scenario.is_some(), path(&self.scenario));
        opt("policy", self.policy != d.policy, self.policy.to_string());
        opt("submitters", self.submitters != d.submitters, self.submitters.to_string());
        opt("stagger", self.stagger != d.stagger, format_duration(self.stagger));
        opt("max-attempts", self.max_attempts != d.max_attempts, self.max_attempts.to_string());
        opt("piece-timeout", self.piece_timeout != d.piece_timeout, format_duration(self.piece_timeout));
        opt("time-limit", self.time_limit.is_some(), self.time_limit.map(format_duration).unwrap_or_default());
        opt("plot", self.plot.is_some(), path(&self.plot));
        opt("trace", self.trace.is_some(), path(&self.trace));
        for (flag, on) in
            [("--no-backups", self.no_backups), ("--json", self.json), ("--placement-only", self.placement_only)]
        {
            if on {
                w.push(flag.to_string());
            }
        }
        w
    }

    /// The one-line command that repeats this run:
    /// `meshwork simulate --seed S <the other options>`.
    pub fn repro_command(&self) -> String {
        let words: Vec<String> = self.to_words().iter().map(|w| shell_quote(w)).collect();
        format!("meshwork simulate {}", words.join(" "))
    }
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_quote(w: &str) -> String {
    let plain = !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_.,:/%=+@".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_back_to_the_same_args() {
        let a = SimArgs::try_parse_from([
            "--nodes",
            "200",
            "--piece-cost",
            "lognormal:10ms,0.5",
            "--churn",
            "5%",
            "--policy",
            "least-loaded",
            "--trace",
            "my trace.jsonl",
            "--json",
        ])
        .unwrap();
        assert_eq!(SimArgs::try_parse_from(a.to_words()).unwrap(), a);
        let cmd = a.repro_command();
        assert!(cmd.starts_with("meshwork simulate --seed 1 --nodes 200 "), "{cmd}");
        assert!(cmd.contains("'my trace.jsonl'"), "{cmd}");
        assert_eq!(SimArgs::default().repro_command(), "meshwork simulate --seed 1");
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let e = SimArgs::try_parse_from(["--latency", "fixed:3"]).unwrap_err().to_string();
        assert!(e.contains("needs a unit"), "{e}");
        let e = SimArgs::try_parse_from(["--policy", "fastest"]).unwrap_err().to_string();
        assert!(e.contains("unknown policy"), "{e}");
    }
}
