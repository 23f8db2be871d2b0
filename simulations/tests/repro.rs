//! A run that breaks an invariant says how to repeat it in one line.

use meshwork_simulations::{run, SimArgs};

#[test]
fn a_failed_run_renders_a_repro_command_that_parses_back() {
    // A time limit far below the work makes the job unfinished: a violation.
    let args = SimArgs::try_parse_from([
        "--nodes",
        "10",
        "--pieces",
        "400",
        "--seed",
        "42",
        "--churn",
        "10%",
        "--time-limit",
        "500ms",
    ])
    .unwrap();
    let outcome = run(&args).unwrap();
    assert!(!outcome.passed(), "the run should have given up");
    assert!(outcome.report.violations()[0].contains("time limit"), "{:?}", outcome.report.violations());
    let cmd = args.repro_command();
    assert_eq!(cmd, "meshwork simulate --seed 42 --nodes 10 --pieces 400 --churn 10% --time-limit 500ms");
    assert!(!cmd.contains('\n'));
    let words: Vec<&str> = cmd.split(' ').skip(2).collect();
    let again = SimArgs::try_parse_from(words).unwrap();
    assert_eq!(again, args);
    let second = run(&again).unwrap();
    assert_eq!(second.report.to_json(), outcome.report.to_json(), "the repro repeats the run exactly");
}
