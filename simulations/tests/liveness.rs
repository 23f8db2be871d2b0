//! Liveness with gossip as the node runs it. The old rule (a peer is dead
//! when its adverts stop for 3 s) together with gossipsub's IP-colocation
//! penalty reproduces the failure of the real mesh on one machine: past 15
//! nodes on one IP every node ignores every advert, judges every peer dead
//! and closes its connections. The current rule (death is a closed
//! connection or unanswered probes) judges no healthy peer dead, with the
//! penalty or without, on one IP or thousands.

mod common;
use common::{check, check_ok, simulate};
use meshwork_protocol::gossip::{MESH_N_HIGH, MESH_N_LOW};
use meshwork_simulations::RunReport;

/// Every node submits one 30 s piece, so every node judges every other for 30 s.
fn one_ip(nodes: u32, old_rule: bool) -> RunReport {
    let n = nodes.to_string();
    let mut words = vec![
        "--nodes",
        &n,
        "--submitters",
        &n,
        "--pieces",
        &n,
        "--piece-cost",
        "fixed:30s",
        "--piece-timeout",
        "60s",
        "--hosts",
        "1",
        "--colocation-penalty",
    ];
    if old_rule {
        words.extend(["--advert-expiry", "3s"]);
    }
    let (args, r) = simulate(&words);
    check(&args, &r);
    r
}

#[test]
fn the_old_rule_on_one_ip_judges_healthy_peers_dead_past_fifteen_nodes() {
    for nodes in [8, 12] {
        let r = one_ip(nodes, true);
        assert_eq!(r.faults.false_downs, 0, "{nodes} nodes: {:?}", r.faults);
        assert_eq!(r.faults.disconnects, 0, "{nodes} nodes");
    }
    for nodes in [16, 20] {
        let r = one_ip(nodes, true);
        let pairs = (nodes * (nodes - 1)) as u64;
        assert!(r.faults.false_downs >= pairs, "{nodes} nodes: every pair, again and again: {:?}", r.faults);
        assert_eq!(r.faults.false_downs, r.faults.marked_down, "{nodes} nodes: nobody was really down");
        assert!(r.faults.disconnects >= pairs, "{nodes} nodes: {:?}", r.faults);
        assert!(r.messages.adverts_delivered < Some(r.messages.adverts), "{nodes} nodes: adverts were ignored");
    }
}

#[test]
fn the_current_rule_judges_no_healthy_peer_dead_even_when_adverts_are_ignored() {
    for nodes in [16, 20] {
        let r = one_ip(nodes, false);
        assert_eq!(r.faults.marked_down, 0, "{nodes} nodes: {:?}", r.faults);
        assert_eq!(r.faults.disconnects, 0);
        assert_eq!(r.messages.adverts_delivered, Some(0), "{nodes} nodes: every advert was graylisted");
        assert!(r.jobs.iter().all(|j| j.outcome == "ok"));
    }
}

#[test]
fn a_large_mesh_under_churn_judges_only_the_departed_down() {
    let (args, r) = simulate(&[
        "--nodes",
        "1000",
        "--pieces",
        "30000",
        "--speeds",
        "uniform:0.5..2",
        "--slots",
        "2",
        "--churn",
        "5%",
        "--loss",
        "0.1%",
    ]);
    check_ok(&args, &r);
    assert_eq!(r.faults.false_downs, 0, "{:?}\nrepro: {}", r.faults, args.repro_command());
    assert_eq!(r.faults.crashes + r.faults.leaves, 50);
    assert!(r.faults.marked_down >= 50, "the submitter saw each departure: {:?}", r.faults);
    // No flood publish: each node that gets an advert sends it to its mesh
    // peers (3 to 8) but the one it came from, and every node gets it.
    let (adverts, copies) = (r.messages.adverts, r.messages.advert_copies.unwrap());
    assert!(copies <= adverts * 1000 * MESH_N_HIGH as u64, "only mesh peers get copies: {:?}", r.messages);
    assert!(copies >= adverts * 950 * (MESH_N_LOW as u64 - 1), "every node forwards: {:?}", r.messages);
}
