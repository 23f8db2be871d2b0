//! What `meshwork run` shows on a terminal before and while its job runs
//! (issue 11, rough edges: progress), through a pseudo-terminal: "finding
//! peers…" at once, "placed N pieces on M peers" as soon as pieces go out
//! (long before the first is done), then a bar with the job's length; never
//! a bar without one (`0/0 [=====]`). Through a pipe, none of it.

use meshwork_tests::node_proc::local_mesh;
use meshwork_tests::procs::{Proc, Spawn, Stderr};
use std::time::Duration;

/// A wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// The whole run: two rounds of 1.5 s pieces and the wait for peers.
const RUN: Duration = Duration::from_secs(120);

/// `meshwork run` of four 1.5 s pieces on two one-slot workers, its
/// stderr going to `stderr`; everything it wrote there.
fn run_on_two_workers(stderr: Stderr) -> String {
    let workers = local_mesh(2, &[], T);
    let args = [
        "run",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--join",
        &workers[0].addr,
        "--slots",
        "0",
        "--min-peers",
        "2",
        "--wait",
        "30",
        "sleep",
        "--ms",
        "1500",
        "--pieces",
        "4",
    ];
    let mut run = Proc::spawn(&Spawn { stderr, die_with_parent: true, ..Spawn::default() }, &args);
    let (code, out) = run.output(RUN).unwrap();
    assert_eq!(code, 0, "{out}\n{}", run.stderr());
    run.stderr()
}

#[test]
fn a_terminal_is_told_what_happens_before_the_first_piece_is_done() {
    let shown = run_on_two_workers(Stderr::Terminal);
    for what in ["finding peers…", " pieces on 2 peers", "/4 pieces ["] {
        assert!(shown.contains(what), "{what:?} on the terminal:\n{shown:?}");
    }
    let placed = shown.find(" pieces on 2 peers").unwrap();
    assert!(shown.find("finding peers…").unwrap() < placed, "peers found, then pieces placed:\n{shown:?}");
    assert!(placed < shown.find("/4 pieces [").unwrap(), "pieces placed, then the bar:\n{shown:?}");
    assert!(!shown.contains("0/0"), "a bar without a length:\n{shown:?}");
    assert!(shown.contains("4 pieces in "), "and the summary at the end:\n{shown:?}");
}

#[test]
fn a_pipe_gets_no_status_line() {
    let shown = run_on_two_workers(Stderr::Pipe);
    for what in ["finding peers", "placed", "pieces ["] {
        assert!(!shown.contains(what), "{what:?} in a pipe:\n{shown}");
    }
    assert!(shown.contains("4 pieces in "), "the summary:\n{shown}");
}
