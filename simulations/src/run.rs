//! The entry points: [`run`] (options in, [`Outcome`] out) and [`run_cli`]
//! (the same, printed the way `meshwork simulate` prints it).

use crate::args::SimArgs;
use crate::error::SimError;
use crate::jobs::JobTrack;
use crate::node::Life;
use crate::report::{JobSummary, LoadSummary, Report, RunReport};
use crate::sim::{Finished, Sim};
use crate::trace::Trace;
use crate::{placement, plot, scenario};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::time::{Duration, Instant};

/// A run's report, and what it cost in wall time (not part of the report,
/// which depends only on the options).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The deterministic report.
    pub report: Report,
    /// Wall time of the run.
    pub wall: Duration,
    /// Simulated events processed.
    pub events: u64,
}

impl Outcome {
    /// Did every invariant hold?
    pub fn passed(&self) -> bool {
        self.report.violations().is_empty()
    }

    /// The timing line for stderr: wall time and simulated events per second.
    pub fn timing(&self) -> String {
        let secs = self.wall.as_secs_f64();
        let rate = if secs > 0.0 { self.events as f64 / secs } else { 0.0 };
        format!("simulated {} events in {secs:.2}s wall ({rate:.0} events/s)", self.events)
    }
}

/// Runs the simulation (or the placement-only experiment) `args` describe.
pub fn run(args: &SimArgs) -> Result<Outcome, SimError> {
    let started = Instant::now();
    validate(args)?;
    if args.placement_only {
        let report = placement::run(args);
        let events = report.pieces as u64;
        return Ok(Outcome { report: Report::Placement(report), wall: started.elapsed(), events });
    }
    let script = match &args.scenario {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| SimError::ReadScenario { path: path.clone(), source })?;
            scenario::parse(&text, args.submitters)
                .map_err(|source| SimError::Scenario { path: path.clone(), source })?
        }
    };
    let trace = Trace::new(args.trace.as_deref())
        .map_err(|source| SimError::Write { path: args.trace.clone().unwrap_or_default(), source })?;

    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let k = args.submitters;
    let jobs: Vec<JobTrack> = (0..k)
        .map(|s| {
            let n = args.pieces / k + u32::from(s < args.pieces % k);
            JobTrack::new(s, (0..n).map(|_| args.piece_cost.sample_micros(&mut rng)).collect())
        })
        .collect();
    let work: u64 = jobs.iter().flat_map(|j| &j.costs).sum();
    let longest = jobs.iter().flat_map(|j| &j.costs).copied().max().unwrap_or(0);
    let sim = Sim::new(args, rng, jobs, script, trace);
    let speeds = sim.speeds();
    let capacity: f64 = speeds.iter().map(|s| s * args.slots as f64).sum();
    let fastest = speeds.iter().copied().fold(0.0, f64::max);
    let ideal_us = (work as f64 / capacity).max(longest as f64 / fastest);
    let ideal = Duration::from_micros(ideal_us.ceil() as u64);

    let mut done = sim.run(ideal)?;
    done.trace.finish().map_err(|(path, source)| SimError::Write { path, source })?;
    let events = done.events;
    let report = build(args, done, ideal_us / 1e6);
    if let Some(path) = &args.plot {
        plot::draw(path, &report)?;
    }
    Ok(Outcome { report: Report::Run(Box::new(report)), wall: started.elapsed(), events })
}

/// Runs, prints the report on stdout (JSON with `--json`), the timing on
/// stderr and, if an invariant broke, the command that repeats the run.
/// Returns whether every invariant held.
pub fn run_cli(args: &SimArgs) -> Result<bool, SimError> {
    let outcome = run(args)?;
    let text = if args.json { outcome.report.to_json() + "\n" } else { outcome.report.to_text() };
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not the simulation's failure.
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    eprintln!("{}", outcome.timing());
    if !outcome.passed() {
        eprintln!("invariant broken; to repeat this run: {}", args.repro_command());
    }
    Ok(outcome.passed())
}

fn validate(args: &SimArgs) -> Result<(), SimError> {
    let bad = |m: &str| Err(SimError::Args(m.to_string()));
    if args.nodes == 0 {
        return bad("--nodes must be at least 1");
    }
    if args.slots == 0 {
        return bad("--slots must be at least 1");
    }
    if args.submitters == 0 || args.submitters > args.nodes {
        return bad("--submitters must be between 1 and --nodes");
    }
    if args.max_attempts == 0 {
        return bad("--max-attempts must be at least 1");
    }
    if args.advert_interval.is_zero() {
        return bad("--advert-interval must be above 0");
    }
    if args.placement_only && (args.plot.is_some() || args.trace.is_some() || args.scenario.is_some()) {
        return bad("--placement-only takes no --plot, --trace or --scenario");
    }
    Ok(())
}

/// Turns what the simulation left into its report.
fn build(args: &SimArgs, done: Finished, ideal_s: f64) -> RunReport {
    let Finished { now, nodes, jobs, trace, mut messages, faults, samples, sample_interval, events, violations } = done;
    let ended: Vec<Option<f64>> = jobs.iter().map(|j| j.end.as_ref().map(|e| e.at.as_micros() as f64 / 1e6)).collect();
    let makespan_s = ended.iter().all(Option::is_some).then(|| ended.iter().flatten().copied().fold(0.0, f64::max));
    let took = |j: &JobTrack| j.end.as_ref().map(|e| e.at.since(j.started).as_secs_f64());
    let summaries = jobs
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
            makespan_s: took(j),
            done: j.done,
        })
        .collect();
    let (mut busy, mut capacity) = (0u64, 0f64);
    for n in &nodes {
        busy += n.busy(now);
        let until = if n.life == Life::Gone { n.left.unwrap_or(now) } else { now };
        capacity += n.slots as f64 * until.since(n.joined).as_micros() as f64;
    }
    let with_work: Vec<_> = samples.iter().filter(|s| s.load_mean > 0.0).collect();
    let mean_of = |f: &dyn Fn(&crate::report::Sample) -> f64| {
        if with_work.is_empty() {
            0.0
        } else {
            with_work.iter().map(|s| f(s)).sum::<f64>() / with_work.len() as f64
        }
    };
    let load = LoadSummary {
        sample_interval_s: sample_interval.as_secs_f64(),
        peak: samples.iter().map(|s| s.load_max).max().unwrap_or(0),
        max_over_mean: mean_of(&|s| s.load_max as f64) / mean_of(&|s| s.load_mean).max(f64::MIN_POSITIVE),
        max_mean: mean_of(&|s| s.load_max as f64),
    };
    messages.per_piece = if args.pieces == 0 { 0.0 } else { messages.total as f64 / args.pieces as f64 };
    RunReport {
        command: args.repro_command(),
        nodes: args.nodes,
        pieces: args.pieces,
        submitters: args.submitters,
        seed: args.seed,
        policy: args.policy.to_string(),
        makespan_s,
        ideal_s,
        makespan_over_ideal: makespan_s.filter(|_| ideal_s > 0.0).map(|m| m / ideal_s),
        jobs: summaries,
        pieces_retried: jobs.iter().map(|j| j.retries as u64).sum(),
        backups_launched: jobs.iter().map(|j| j.backups as u64).sum(),
        backups_won: jobs.iter().filter_map(|j| j.end.as_ref()).map(|e| e.backups_won as u64).sum(),
        duplicates_ignored: jobs.iter().filter_map(|j| j.end.as_ref()).map(|e| e.duplicates as u64).sum(),
        pieces_lost: jobs.iter().map(|j| if j.end.is_none() { j.costs.len() as u64 } else { j.lost }).sum(),
        messages,
        utilization_mean: if capacity > 0.0 { busy as f64 / capacity } else { 0.0 },
        load,
        faults,
        events,
        trace_lines: trace.lines(),
        trace_hash: format!("{:016x}", trace.hash()),
        violations,
        samples,
    }
}
