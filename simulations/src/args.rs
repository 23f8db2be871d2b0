//! [`SimArgs`]: the options of `meshwork simulate` as clap reads them, the
//! [`SimConfig`] they describe, and the one-line command that repeats a
//! run. That command is rendered from what clap matched (the options given
//! on the command line, as typed), so it needs no upkeep when an option is
//! added and cannot drift from the parser.

use crate::config::SimConfig;
use crate::dist::{parse_duration, parse_fraction, Dist};
use crate::error::SimError;
use crate::reach::ReachConfig;
use crate::scenario;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use meshwork_protocol::Policy;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The options themselves; [`SimArgs`] adds the words they were given as.
#[derive(Clone, Debug, PartialEq, Args)]
struct Options {
    /// Nodes at the start, submitters included.
    #[arg(long, default_value_t = 100, value_name = "N")]
    nodes: u32,
    /// Pieces in all, split evenly over the submitters' jobs.
    #[arg(long, default_value_t = 10_000, value_name = "M")]
    pieces: u32,
    /// Work in one piece at speed 1: fixed:X, uniform:A..B, lognormal:MEDIAN,SIGMA or exp:MEAN, with units us/ms/s.
    #[arg(long, default_value = "uniform:50ms..150ms", value_name = "DIST", value_parser = Dist::parse_duration)]
    piece_cost: Dist,
    /// Speed factor of each node (a piece takes cost / speed), e.g. uniform:0.5..2 or lognormal:1,0.3.
    #[arg(long, default_value = "fixed:1", value_name = "DIST", value_parser = Dist::parse_number)]
    speeds: Dist,
    /// Pieces each node runs at once.
    #[arg(long, default_value_t = 1, value_name = "K")]
    slots: u32,
    /// One-way message latency, jitter included, e.g. fixed:1ms or lognormal:500us,0.3.
    #[arg(long, default_value = "uniform:200us..1ms", value_name = "DIST", value_parser = Dist::parse_duration)]
    latency: Dist,
    /// Probability that a message (request, response or advert copy) is lost, e.g. 0.01 or 1%.
    #[arg(long, default_value = "0", value_name = "P", value_parser = parse_fraction)]
    loss: f64,
    /// Fraction of nodes behind a NAT (e.g. 60%), drawn per node from the seed, submitters included.
    /// A NATed node is reached over a circuit of its relay until hole punching makes it direct.
    #[arg(long, value_name = "P", value_parser = parse_fraction)]
    nated: Option<f64>,
    /// Fraction of the NATed nodes behind a symmetric NAT: hole punching between two NATed nodes
    /// fails when either is [default: 30%; needs --nated].
    #[arg(long, value_name = "P", value_parser = parse_fraction)]
    symmetric: Option<f64>,
    /// Public workers that serve as relays (the first drawn public) [default: 0; needs --nated].
    #[arg(long, value_name = "N")]
    relays: Option<u32>,
    /// Circuits one relay carries at once (libp2p's default limit) [default: 16; needs --nated].
    #[arg(long, value_name = "N")]
    relay_circuits: Option<u32>,
    /// Time a relay spends forwarding one message; messages queue at a busy relay
    /// [default: 50us; needs --nated].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    relay_delay: Option<Duration>,
    /// Longest gap between two load adverts of a node in a small mesh (it grows with the mesh).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    advert_interval: Duration,
    /// Extra delay of every gossip hop on top of its latency (validation, queues): how stale adverts are.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    advert_delay: Duration,
    /// Spread the nodes round-robin over K IP addresses [default: one per node, as on a LAN].
    /// The real mesh on one machine (all on 127.0.0.1) is --hosts 1.
    #[arg(long, value_name = "K")]
    hosts: Option<u32>,
    /// Model gossipsub's IP-colocation penalty as the node configured it before: a node ignores
    /// every advert copy from a peer when it is connected to more than 14 peers on that peer's IP.
    #[arg(long)]
    colocation_penalty: bool,
    /// The old liveness rule: a node judges a peer dead, and closes its connections, when no
    /// advert came from it for this long (default: the current rule, probes only).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    advert_expiry: Option<Duration>,
    /// Fraction of nodes that fail during the run (e.g. 5%): half crash, half leave gracefully, each
    /// replaced by a fresh node about 1 s later; spread over the ideal makespan. Submitters never fail.
    #[arg(long, default_value = "0", value_name = "P", value_parser = parse_fraction)]
    churn: f64,
    /// Scripted faults, one per line: "3s crash 17", "3s hang 17", "4s resume 17", "6s leave 12",
    /// "7s join 3", "5s partition 0-499|500-999", "8s heal"; '#' starts a comment.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Placement policy: p2c, least-loaded, random or round-robin.
    #[arg(long, default_value = "p2c", value_name = "POLICY", value_parser = parse_policy)]
    policy: Policy,
    /// Nodes that each submit a job of pieces/submitters pieces at the start (nodes 0..K).
    #[arg(long, default_value_t = 1, value_name = "K")]
    submitters: u32,
    /// Submitter i submits its job at i × this (default: all at the start). Jobs that arrive
    /// one after another while stale adverts describe the earlier ones are where policies differ.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    stagger: Duration,
    /// Seed of every random draw: the same seed and options give the same run.
    #[arg(long, default_value_t = 1, value_name = "S")]
    seed: u64,
    /// A piece failing this many times fails its job.
    #[arg(long, default_value_t = 3, value_name = "N")]
    max_attempts: u32,
    /// Deadline of one piece (`meshwork run` defaults to 300s; shorter here so lossy runs end).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    piece_timeout: Duration,
    /// Do not launch speculative backups of straggling pieces.
    #[arg(long)]
    no_backups: bool,
    /// Give up at this virtual time (an invariant failure) [default: 20 × the ideal makespan + 300s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    time_limit: Option<Duration>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write an SVG of node utilization and job completion over time.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Write one JSON object per notable event (placement, completion, retry, churn...).
    #[arg(long, value_name = "FILE.jsonl")]
    trace: Option<PathBuf>,
    /// Only place pieces one by one on idle nodes with exact loads (balls into bins), no execution.
    #[arg(long)]
    placement_only: bool,
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

/// Simulates a mesh of `--nodes` peers in virtual time, each running the
/// real `meshwork_protocol::Machine`, and reports how the jobs of
/// `--pieces` pieces went. Parsed by clap (flatten it into a command, or
/// use [`SimArgs::try_parse_from`]); [`SimArgs::config`] gives the run it
/// describes.
#[derive(Clone, Debug, PartialEq)]
pub struct SimArgs {
    opts: Options,
    /// The options given on the command line, as typed, in clap's order.
    given: Vec<String>,
}

/// Where a run's report goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    /// Print the report as JSON instead of text.
    pub json: bool,
    /// Draw the utilization and completion plot here.
    pub plot: Option<PathBuf>,
    /// Write the trace here.
    pub trace: Option<PathBuf>,
}

impl Args for SimArgs {
    fn augment_args(cmd: Command) -> Command {
        Options::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Options::augment_args_for_update(cmd)
    }
}

impl FromArgMatches for SimArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<SimArgs, clap::Error> {
        SimArgs::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<SimArgs, clap::Error> {
        let given = given_words(matches);
        Ok(SimArgs { opts: Options::from_arg_matches_mut(matches)?, given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.update_from_arg_matches_mut(&mut matches.clone())
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.given = given_words(matches);
        self.opts.update_from_arg_matches_mut(matches)
    }
}

/// The options of ours that `matches` got from the command line, as
/// `--name value...` words in the order the options are declared.
fn given_words(matches: &ArgMatches) -> Vec<String> {
    let ours = Options::augment_args(Command::new("simulate"));
    let mut words = Vec::new();
    for arg in ours.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        words.push(format!("--{long}"));
        if arg.get_action().takes_values() {
            words.extend(matches.get_raw(id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()));
        }
    }
    words
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
        let mut matches = SimArgs::augment_args(Command::new("simulate")).try_get_matches_from(words)?;
        SimArgs::from_arg_matches_mut(&mut matches)
    }

    /// The run these options describe (the scenario file read and parsed).
    pub fn config(&self) -> Result<SimConfig, SimError> {
        let o = &self.opts;
        let script = match &o.scenario {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| SimError::ReadScenario { path: path.clone(), source })?;
                scenario::parse(&text, o.submitters)
                    .map_err(|source| SimError::Scenario { path: path.clone(), source })?
            }
        };
        let reach = match o.nated {
            Some(nated) => Some(ReachConfig {
                nated,
                symmetric: o.symmetric.unwrap_or(0.3),
                relays: o.relays.unwrap_or(0),
                relay_circuits: o.relay_circuits.unwrap_or(16),
                relay_delay: o.relay_delay.unwrap_or(Duration::from_micros(50)),
            }),
            None if o.symmetric.is_some()
                || o.relays.is_some()
                || o.relay_circuits.is_some()
                || o.relay_delay.is_some() =>
            {
                return Err(SimError::Args(
                    "--symmetric, --relays, --relay-circuits and --relay-delay need --nated".into(),
                ));
            }
            None => None,
        };
        let cfg = SimConfig {
            nodes: o.nodes,
            pieces: o.pieces,
            piece_cost: o.piece_cost,
            speeds: o.speeds,
            slots: o.slots,
            latency: o.latency,
            loss: o.loss,
            advert_interval: o.advert_interval,
            hop_delay: o.advert_delay,
            hosts: o.hosts,
            colocation_penalty: o.colocation_penalty,
            advert_expiry: o.advert_expiry,
            churn: o.churn,
            script,
            policy: o.policy,
            submitters: o.submitters,
            stagger: o.stagger,
            seed: o.seed,
            max_attempts: o.max_attempts,
            piece_timeout: o.piece_timeout,
            backups: !o.no_backups,
            time_limit: o.time_limit,
            reach,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Where the report goes.
    pub fn outputs(&self) -> Outputs {
        Outputs { json: self.opts.json, plot: self.opts.plot.clone(), trace: self.opts.trace.clone() }
    }

    /// `--placement-only`: balls into bins instead of a simulation.
    pub fn placement_only(&self) -> bool {
        self.opts.placement_only
    }

    /// Was `--scenario` given (a file of scripted faults)?
    pub fn has_scenario(&self) -> bool {
        self.opts.scenario.is_some()
    }

    /// The one-line command that repeats this run: `meshwork simulate
    /// --seed S` and then the other options exactly as they were given.
    pub fn repro_command(&self) -> String {
        let mut words = vec!["--seed".to_string(), self.opts.seed.to_string()];
        let mut given = self.given.iter();
        while let Some(w) = given.next() {
            if w == "--seed" {
                given.next();
            } else {
                words.push(w.clone());
            }
        }
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        format!("meshwork simulate {}", quoted.join(" "))
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
    fn the_repro_command_is_what_was_given_and_parses_back() {
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
            "--advert-expiry=3s",
            "--colocation-penalty",
            "--json",
        ])
        .unwrap();
        let cmd = a.repro_command();
        assert_eq!(
            cmd,
            "meshwork simulate --seed 1 --nodes 200 --piece-cost lognormal:10ms,0.5 --colocation-penalty \
             --advert-expiry 3s --churn 5% --policy least-loaded --json --trace 'my trace.jsonl'"
        );
        let words: Vec<String> = vec![
            "--nodes",
            "200",
            "--piece-cost",
            "lognormal:10ms,0.5",
            "--advert-expiry",
            "3s",
            "--colocation-penalty",
            "--churn",
            "5%",
            "--policy",
            "least-loaded",
            "--json",
            "--trace",
            "my trace.jsonl",
            "--seed",
            "1",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let again = SimArgs::try_parse_from(&words).unwrap();
        assert_eq!(again.opts, a.opts);
        assert_eq!(again.repro_command(), cmd, "--seed moves to the front, nothing repeats");
        assert_eq!(SimArgs::default().repro_command(), "meshwork simulate --seed 1");
    }

    #[test]
    fn the_config_carries_every_model_option() {
        let a = SimArgs::try_parse_from(["--hosts", "3", "--advert-delay", "5ms", "--no-backups"]).unwrap();
        let c = a.config().unwrap();
        assert_eq!((c.hosts, c.hop_delay, c.backups), (Some(3), Duration::from_millis(5), false));
        assert_eq!((c.host_of(4), SimArgs::default().config().unwrap().host_of(4)), (1, 4));
        let c = SimArgs::try_parse_from(["--nated", "60%", "--relays", "5"]).unwrap().config().unwrap();
        let r = c.reach.expect("--nated turns the model on");
        assert_eq!((r.nated, r.symmetric, r.relays, r.relay_circuits), (0.6, 0.3, 5, 16));
        assert!(SimArgs::default().config().unwrap().reach.is_none());
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let e = SimArgs::try_parse_from(["--latency", "fixed:3"]).unwrap_err().to_string();
        assert!(e.contains("needs a unit"), "{e}");
        let e = SimArgs::try_parse_from(["--policy", "fastest"]).unwrap_err().to_string();
        assert!(e.contains("unknown policy"), "{e}");
        let e = SimArgs::try_parse_from(["--hosts", "0"]).unwrap().config().unwrap_err().to_string();
        assert!(e.contains("--hosts"), "{e}");
        let e = SimArgs::try_parse_from(["--relays", "3"]).unwrap().config().unwrap_err().to_string();
        assert!(e.contains("need --nated"), "{e}");
        let e = SimArgs::try_parse_from(["--nated", "120%"]).unwrap_err().to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
    }
}
