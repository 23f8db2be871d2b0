//! Short jobs use the whole mesh (issue 11, item 6), with real processes
//! on loopback: a run waits until the peers it finds stop coming (not
//! only until the first is there), so even a short job places pieces on
//! every node, and its summary says how many peers it saw and how many it
//! used.
//!
//! Three of the four nodes are started only once the run is live at the
//! first, one after the other, as peers come in over mDNS or through a
//! join node still hearing of them: a run that started its job as soon
//! as one peer was there would be done (eight 50 ms pieces) before the
//! others were.

use meshwork_tests::events::NodeEvent;
use meshwork_tests::node_proc::{wait_nodes, NodeProc};
use meshwork_tests::procs::Spawn;
use meshwork_tests::run_proc::RunProc;
use std::time::{Duration, Instant};

/// A wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);

#[test]
fn a_short_job_places_pieces_on_every_node_of_four_that_come_while_it_waits() {
    let mut nodes = vec![NodeProc::start_local("node 0", None, &[])];
    let join = nodes[0].addr.clone();
    // With a slot of its own the run advertises, so node 0 says when the
    // run has joined; --wait is only the bound of the wait.
    let args = [
        "run",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--join",
        &join,
        "--slots",
        "1",
        "--wait",
        "20",
        "--json",
        "sleep",
        "--ms",
        "50",
        "--pieces",
        "8",
    ];
    let started = Instant::now();
    let mut run = RunProc::spawn(Spawn { die_with_parent: true, ..Spawn::default() }, "meshwork run".into(), &args);
    let joined = |ns: &[NodeProc]| {
        ns[0].events.iter().any(|e| e.at >= started && matches!(e.event, NodeEvent::PeerUp { .. })).then_some(())
    };
    wait_nodes(&mut nodes, "the run live at node 0", T, joined).unwrap();
    for i in 1..4 {
        nodes.push(NodeProc::start_local(&format!("node {i}"), Some(&join), &[]));
    }
    let out = run.finish(T).unwrap();
    out.assert_exact(8);
    let idle: Vec<&str> = nodes.iter().filter(|n| out.pieces_of(&n.peer) == 0).map(|n| n.label.as_str()).collect();
    assert!(idle.is_empty(), "{idle:?} ran no piece: {}\n{}", out.json, out.stderr_text());
    assert_eq!(out.summary("peers_seen"), Some(5), "four nodes and the run itself: {}", out.json);
}
