//! What every simulation test checks, in one place.

use meshwork_simulations::{run, Report, RunReport, SimArgs};

/// Runs a simulation with these options (as on the command line).
pub fn simulate(words: &[&str]) -> (SimArgs, RunReport) {
    let args = SimArgs::try_parse_from(words).unwrap_or_else(|e| panic!("bad options {words:?}: {e}"));
    let outcome = run(&args).unwrap_or_else(|e| panic!("simulation failed to run: {e}"));
    match outcome.report {
        Report::Run(r) => (args, *r),
        Report::Placement(_) => panic!("expected a full simulation"),
    }
}

/// The invariants of every run: nothing lost, every job ended (succeeded
/// or failed loudly), no retry on a peer that failed the piece itself,
/// outputs equal inputs. Panics with the repro command when one broke.
pub fn check(args: &SimArgs, r: &RunReport) {
    let repro = args.repro_command();
    assert!(r.violations.is_empty(), "invariants broken: {:#?}\nrepro: {repro}", r.violations);
    assert_eq!(r.pieces_lost, 0, "pieces lost\nrepro: {repro}");
    for j in &r.jobs {
        assert_ne!(j.outcome, "unfinished", "job {} did not end\nrepro: {repro}", j.submitter);
        if j.outcome == "failed" {
            assert!(j.error.is_some(), "job {} failed silently\nrepro: {repro}", j.submitter);
        }
    }
}

/// [`check`], and every job succeeded.
pub fn check_ok(args: &SimArgs, r: &RunReport) {
    check(args, r);
    for j in &r.jobs {
        assert_eq!(j.outcome, "ok", "job {} failed: {:?}\nrepro: {}", j.submitter, j.error, args.repro_command());
        assert_eq!(j.done, j.pieces, "job {}\nrepro: {}", j.submitter, args.repro_command());
    }
}
