//! Short jobs use the whole mesh (issue 11, item 6), with real processes
//! on loopback: a run joined through one node waits until the peers it
//! finds through that one stop coming (not only until the first is
//! there), so even a short job places pieces on every node, and its
//! summary says how many peers it saw and how many it used.
//!
//! The other three nodes are started once the run is under way, one
//! after the other, as peers come in over mDNS or through a join node
//! that is still hearing of them. (On loopback they come fast enough that
//! a run starting with the first peer found often sees them all anyway;
//! the waiting rule itself is unit-tested in `run_cmd`.)

use meshwork_tests::node_proc::NodeProc;
use meshwork_tests::procs::Spawn;
use meshwork_tests::run_proc::RunProc;
use std::time::Duration;

/// A wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);

#[test]
fn a_short_job_with_the_default_wait_places_pieces_on_every_node_of_four() {
    let mut nodes = vec![NodeProc::start_local("node 0", None, &[])];
    let join = nodes[0].addr.clone();
    let args = [
        "run",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--join",
        &join,
        "--slots",
        "0",
        "--json",
        "sleep",
        "--ms",
        "50",
        "--pieces",
        "8",
    ];
    let mut run = RunProc::spawn(Spawn { die_with_parent: true, ..Spawn::default() }, "meshwork run".into(), &args);
    for i in 1..4 {
        nodes.push(NodeProc::start_local(&format!("node {i}"), Some(&join), &[]));
    }
    let out = run.finish(T).unwrap();
    out.assert_exact(8);
    let idle: Vec<&str> = nodes.iter().filter(|n| out.pieces_of(&n.peer) == 0).map(|n| n.label.as_str()).collect();
    assert!(idle.is_empty(), "{idle:?} ran no piece: {}\n{}", out.json, out.stderr_text());
    assert_eq!(out.summary("peers_seen"), Some(4), "{}", out.json);
    assert_eq!(out.summary("peers_used"), Some(4), "{}", out.json);
}
