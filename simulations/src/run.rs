//! The entry points: [`run`] (options in, [`SimOutcome`] out), [`emit`] (a
//! report out, as `meshwork simulate` prints it, for the simulator and
//! `--real` alike) and [`run_cli`] (both).

use crate::args::{Outputs, SimArgs};
use crate::config::SimConfig;
use crate::error::SimError;
use crate::plan::Plan;
use crate::recorder::Recorder;
use crate::report::Report;
use crate::sim::Sim;
use crate::{placement, plot};
use meshwork_protocol::timeline::Timeline;
use std::io::Write;
use std::time::{Duration, Instant};

/// A run's report, and what it cost in wall time (not part of the report,
/// which depends only on the options).
#[derive(Clone, Debug)]
pub struct SimOutcome {
    /// The deterministic report.
    pub report: Report,
    /// Wall time of the run.
    pub wall: Duration,
    /// Simulated events processed.
    pub events: u64,
}

impl SimOutcome {
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
/// The trace is written as it runs; the plot is [`emit`]'s.
pub fn run(args: &SimArgs) -> Result<SimOutcome, SimError> {
    run_keeping(args, false).map(|(outcome, _)| outcome)
}

/// Like [`run`], and each job's timeline (`simulate --serve` shows them as
/// the node's dashboard shows a real job's). Not for `--placement-only`,
/// which runs no jobs.
pub fn run_with_timelines(args: &SimArgs) -> Result<(SimOutcome, Vec<Timeline>), SimError> {
    run_keeping(args, true)
}

fn run_keeping(args: &SimArgs, timelines: bool) -> Result<(SimOutcome, Vec<Timeline>), SimError> {
    let started = Instant::now();
    let cfg = args.config()?;
    let outputs = args.outputs();
    if args.placement_only() {
        if outputs.plot.is_some() || outputs.trace.is_some() || args.has_scenario() || cfg.reach.is_some() {
            return Err(SimError::Args("--placement-only takes no --plot, --trace, --scenario or --nated".into()));
        }
        let report = placement::run(&cfg, args.repro_command());
        let events = report.pieces as u64;
        return Ok((SimOutcome { report: Report::Placement(report), wall: started.elapsed(), events }, Vec::new()));
    }
    let plan = Plan::new(&cfg);
    let mut recorder = Recorder::new(&cfg, &plan, outputs.trace.as_deref())?;
    if timelines {
        recorder.keep_timelines();
    }
    let done = Sim::new(&cfg, plan, recorder).run()?;
    let timelines = done.recorder.timelines(done.end);
    let mut report = done.recorder.finish(done.end, args.repro_command(), done.events)?;
    report.reach = done.reach;
    if let Some(reach) = report.reach.as_mut() {
        reach.public_makespan_s = all_public(&cfg)?;
    }
    let outcome = SimOutcome { report: Report::Run(Box::new(report)), wall: started.elapsed(), events: done.events };
    Ok((outcome, timelines))
}

/// The makespan of the run `cfg` describes with every node public (the
/// same draws: the reachability model has a stream of its own), to set a
/// `--nated` run against.
fn all_public(cfg: &SimConfig) -> Result<Option<f64>, SimError> {
    let public = SimConfig { reach: None, ..cfg.clone() };
    let plan = Plan::new(&public);
    let recorder = Recorder::new(&public, &plan, None)?;
    let done = Sim::new(&public, plan, recorder).run()?;
    Ok(done.recorder.finish(done.end, String::new(), done.events)?.makespan_s)
}

/// Writes `report` where `outputs` say: the plot if asked, then the report
/// on stdout (JSON with `--json`). Returns whether every invariant held.
pub fn emit(report: &Report, outputs: &Outputs) -> Result<bool, SimError> {
    if let (Some(path), Report::Run(r)) = (&outputs.plot, report) {
        plot::draw(path, r)?;
    }
    let text = if outputs.json { report.to_json() + "\n" } else { report.to_text() };
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not the run's failure.
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    Ok(report.violations().is_empty())
}

/// Runs, [`emit`]s, prints the timing on stderr and, if an invariant
/// broke, the command that repeats the run. Returns whether every
/// invariant held.
pub fn run_cli(args: &SimArgs) -> Result<bool, SimError> {
    let outcome = run(args)?;
    let passed = emit(&outcome.report, &args.outputs())?;
    eprintln!("{}", outcome.timing());
    if !passed {
        eprintln!("invariant broken; to repeat this run: {}", args.repro_command());
    }
    Ok(passed)
}
