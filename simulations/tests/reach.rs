//! The reachability model (`--nated`): NATed nodes are reached over a
//! relay's circuits until a hole punch makes the connection direct; a
//! relay carries at most `--relay-circuits` at once; nobody NATed means
//! the run without the model.

mod common;
use common::{check_ok, simulate};
use meshwork_simulations::{ReachReport, RunReport};

fn reach(r: &RunReport) -> &ReachReport {
    r.reach.as_ref().expect("--nated reports on NATs and relays")
}

#[test]
fn nobody_nated_is_the_run_without_the_model() {
    let base = ["--nodes", "60", "--pieces", "2000", "--submitters", "2", "--churn", "10%", "--loss", "0.1%"];
    let (_, plain) = simulate(&base);
    let mut words = base.to_vec();
    words.extend(["--nated", "0%", "--relays", "2"]);
    let (args, r) = simulate(&words);
    check_ok(&args, &r);
    assert_eq!(r.trace_hash, plain.trace_hash, "the same events, in the same order");
    assert_eq!(r.makespan_s, plain.makespan_s);
    let n = reach(&r);
    assert_eq!((n.nated, n.circuits, n.punches, n.pieces_relayed), (0, 0, 0, 0));
    assert_eq!(n.public_makespan_s, plain.makespan_s, "the all-public run is this very run");
    assert!(plain.reach.is_none() && !serde_json::to_string(&plain).unwrap().contains("\"reach\""));
}

#[test]
fn without_relays_nated_workers_get_nothing_from_a_public_submitter() {
    let (args, r) = simulate(&["--nodes", "60", "--pieces", "600", "--nated", "50%", "--seed", "1"]);
    check_ok(&args, &r);
    let n = reach(&r);
    assert_eq!(n.submitters_nated, 0, "seed 1 draws the submitter public");
    assert!(n.nated > 10, "{n:?}");
    assert_eq!((n.relays, n.circuits, n.pieces_relayed, n.pieces_to_nated), (0, 0, 0, 0), "{n:?}");
    assert_eq!(n.never_reached, n.nated, "no NATed worker was reachable");
    assert!(n.pieces_direct >= 600 - 60, "the public ones ran the job: {n:?}");
    let (m, p) = (r.makespan_s.unwrap(), n.public_makespan_s.unwrap());
    assert!(m > 1.5 * p, "half the mesh idle: {m} against {p} all public");
}

#[test]
fn symmetric_nats_keep_traffic_between_nated_nodes_relayed() {
    let (args, r) = simulate(&[
        "--nodes",
        "100",
        "--pieces",
        "1000",
        "--nated",
        "90%",
        "--symmetric",
        "100%",
        "--relays",
        "2",
        "--relay-circuits",
        "1000",
    ]);
    check_ok(&args, &r);
    let n = reach(&r);
    assert_eq!(n.submitters_nated, 1, "seed 1 draws the submitter NATed");
    assert_eq!(n.never_reached, 0, "circuits enough for everyone: {n:?}");
    assert_eq!(n.punched, 0, "no punch works between symmetric NATs: {n:?}");
    assert_eq!(n.punches, n.circuits, "each relayed connection tried once");
    assert!(n.pieces_relayed > 500, "{n:?}");
    assert_eq!(n.pieces_relayed, n.pieces_to_nated, "every piece to a NATed worker went over a relay");
    assert!(n.relay_messages.iter().all(|m| *m > 0), "both relays carried traffic: {n:?}");
}

#[test]
fn a_relay_carries_at_most_its_circuits_and_hands_them_on() {
    let (args, r) = simulate(&[
        "--nodes",
        "60",
        "--pieces",
        "600",
        "--nated",
        "60%",
        "--symmetric",
        "0%",
        "--relays",
        "2",
        "--relay-circuits",
        "3",
    ]);
    check_ok(&args, &r);
    let n = reach(&r);
    assert_eq!(n.relay_peak_circuits.len(), 2);
    assert!(n.relay_peak_circuits.iter().all(|p| *p <= 3), "{n:?}");
    assert!(n.circuits_refused > 0, "more NATed nodes than circuits: {n:?}");
    assert!(n.circuits > 6, "circuits freed by punches were handed on: {n:?}");
    assert_eq!(n.punched, n.punches, "cone NATs only: every punch works");
    assert_eq!(n.never_reached, 0, "every waiting pair got a circuit in the end: {n:?}");
    assert!(n.pieces_to_nated > 0 && n.pieces_direct > n.pieces_relayed, "{n:?}");
}

#[test]
fn the_same_seed_gives_the_same_nated_run() {
    let words = [
        "--nodes",
        "80",
        "--pieces",
        "1500",
        "--submitters",
        "3",
        "--churn",
        "10%",
        "--nated",
        "70%",
        "--relays",
        "3",
        "--relay-circuits",
        "5",
        "--seed",
        "4",
    ];
    let (args, a) = simulate(&words);
    check_ok(&args, &a);
    let (_, b) = simulate(&words);
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert!(reach(&a).circuits > 0 && a.faults.crashes > 0, "relays and churn both at work");
}
