//! Crowding attacks on one node of a two-node mesh (issue 19), with real
//! `meshwork node` and `meshwork run` processes:
//!
//! - a connection flood, from a host of a lab of network namespaces (one
//!   address, as one attacking machine has): hundreds of fresh identities
//!   holding connections and hundreds of bare TCP connections holding
//!   handshake places, while an honest submitter on another host runs a
//!   job through the attacked node;
//! - a slot hog, on loopback: a greedy submitter keeps every slot of the
//!   mesh busy with huge pieces and a long piece timeout while an honest
//!   one runs a job.
//!
//! In both the honest job must give its exact count within twice the time
//! the same work takes on a quiet mesh, measured in the same test, and
//! nobody may judge a member down. Each job counts the primes of its own
//! range, so a result from the wrong job or a lost piece shows.

use meshwork::net::gate::GateConfig;
use meshwork_tests::events::JobEvent;
use meshwork_tests::flood::{Flood, FloodSpec};
use meshwork_tests::lab::Lab;
use meshwork_tests::node_proc::{local_mesh, wait_all_live, NodeProc};
use meshwork_tests::one_at_a_time;
use meshwork_tests::procs::Proc;
use meshwork_tests::run_proc::{RunOutput, RunProc};
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of one honest job.
const JOB: Duration = Duration::from_secs(60);
/// Pieces of an honest job.
const PIECES: u64 = 8;
/// Ranges of honest jobs of about equal work and their prime counts:
/// π(2·10⁶) = 148,933, π(4·10⁶) = 283,146.
const RANGES: [(u64, u64, u64); 2] = [(0, 2_000_000, 148_933), (2_000_000, 4_000_000, 134_213)];

/// The arguments of an honest `primes` job over `RANGES[i]`.
fn honest_args(i: usize) -> Vec<String> {
    let (from, to, _) = RANGES[i];
    ["--min-peers", "2", "primes", "--from", &from.to_string(), "--to", &to.to_string()]
        .into_iter()
        .map(String::from)
        .chain(["--pieces".into(), PIECES.to_string()])
        .collect()
}

/// Waits for the honest job over `RANGES[i]` and checks its count.
fn honest_result(mut run: RunProc, i: usize) -> RunOutput {
    let out = run.finish(JOB).unwrap();
    out.assert_exact(PIECES);
    assert_eq!(out.result("count"), Some(RANGES[i].2), "the count of range {:?}: {}", RANGES[i], out.json);
    out
}

/// Pieces `run` placed on `peer` so far (backups included).
fn placed_on(run: &RunProc, peer: &str) -> usize {
    let on = |e: &JobEvent| match e {
        JobEvent::Placed { peer: p, pieces, .. } if p == peer => pieces.len(),
        _ => 0,
    };
    run.events.iter().map(|e| on(&e.event)).sum()
}

/// Fails if either node judged the other down since `since`; returns
/// every `peer_down` line printed since then (strangers included).
fn assert_no_member_down(nodes: &mut [NodeProc], since: Instant) -> usize {
    nodes.iter_mut().for_each(NodeProc::pump);
    let members: Vec<String> = nodes.iter().map(|n| n.peer.clone()).collect();
    for n in nodes.iter() {
        let downs: Vec<_> = n.downs_after(since).into_iter().filter(|(_, p, _)| members.contains(p)).collect();
        assert!(downs.is_empty(), "{} judged a member down: {:?}", n.label, downs);
    }
    nodes.iter().map(|n| n.downs_after(since).len()).sum()
}

/// Share of a core `proc` used over `window` (a deliberate measuring period).
fn cpu_share(proc: &Proc, window: Duration) -> f64 {
    let before = proc.cpu_seconds().unwrap_or(0.0);
    std::thread::sleep(window);
    (proc.cpu_seconds().unwrap_or(0.0) - before) / window.as_secs_f64()
}

/// Waits until `node` is back to idle: under a tenth of a core over a
/// second and RSS within 16 MiB of `idle_kib`. Returns how long that took.
fn wait_idle(node: &NodeProc, idle_kib: u64, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let cpu = cpu_share(&node.proc, Duration::from_secs(1));
        let rss = node.proc.rss_kib().unwrap_or(u64::MAX);
        if cpu < 0.1 && rss <= idle_kib + 16 * 1024 {
            eprintln!("{}: back to {cpu:.2} of a core, RSS {rss} KiB (idle {idle_kib} KiB)", node.label);
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{} not back to idle after {timeout:?}: {cpu:.2} of a core, RSS {rss} KiB (idle {idle_kib} KiB)",
            node.label
        );
    }
}

/// Polls `what` every 20 ms until it holds, or fails after `timeout`.
fn wait(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn strangers_flooding_a_node_from_one_address_do_not_crowd_out_a_submitter() {
    let _serial = one_at_a_time();
    let Some(lab) = Lab::new(4) else { return };
    let since = Instant::now();
    let mut nodes = lab.nodes(&[0, 1], &["--slots", "1"]);
    wait_all_live(&mut nodes, since, T).unwrap();
    // The submitter joins through the attacked node, and only through it
    // (no mDNS: the node cannot find it and dial it instead).
    let join = nodes[0].addr.clone();
    let job = |i: usize| {
        let args = [vec!["--no-mdns".to_string(), "--join".into(), join.clone()], honest_args(i)].concat();
        honest_result(lab.run(2, &args.iter().map(String::as_str).collect::<Vec<_>>()), i)
    };
    let normal = job(0).took;
    let idle_kib = nodes[0].proc.rss_kib().unwrap();

    let attack = Instant::now();
    let spec =
        FloodSpec { netns: Some(lab.host(3).ns.clone()), target: nodes[0].addr.clone(), identities: 300, stalled: 300 };
    let flood = Flood::start(spec.clone()).unwrap();
    // Every flooder has had its go: it holds a place or was turned away.
    wait("every flooder to have tried", T, || flood.open() + flood.stalled() + flood.refused() >= 600);
    let during = job(1).took;
    eprintln!(
        "a quiet mesh: {normal:?}; during the flood: {during:?} ({} connections and {} handshakes held, {} refused)",
        flood.open(),
        flood.stalled(),
        flood.refused()
    );
    let downs = assert_no_member_down(&mut nodes, attack);
    eprintln!("peer_down lines during the flood: {downs}, none about a member");
    assert!(during <= 2 * normal, "the job took {during:?} during the flood, {normal:?} on a quiet mesh");
    let cap = GateConfig::default().max_unproven_per_ip;
    wait("the flood to hold no more than the gate lets one address have", T, || flood.open() + flood.stalled() <= cap);
    let peak_kib = nodes[0].proc.rss_kib().unwrap();
    flood.stop();
    let idle_in = wait_idle(&nodes[0], idle_kib, T);
    eprintln!("RSS idle {idle_kib} KiB, {peak_kib} KiB under the flood; idle again {idle_in:?} after it ended");
}

#[test]
fn a_submitter_hogging_every_slot_with_huge_pieces_leaves_another_its_share() {
    let _serial = one_at_a_time();
    let mut nodes = local_mesh(2, &["--slots", "2"], T);
    let join = nodes[0].addr.clone();
    let job = |i: usize| {
        let args = honest_args(i);
        honest_result(RunProc::start_local(&join, &args.iter().map(String::as_str).collect::<Vec<_>>()), i)
    };
    let normal = job(0).took;

    // Pieces that take an hour each, and it asks for an hour. They sleep
    // rather than compute: what is measured is the slots they hold, not
    // two CPU-bound jobs sharing this machine's cores (fairly shared,
    // those halve each other's speed whatever the worker does).
    let attack = Instant::now();
    let greedy_job = ["--min-peers", "2", "--piece-timeout", "3600", "sleep", "--ms", "3600000", "--pieces", "8"];
    let mut greedy = RunProc::start_local(&join, &greedy_job);
    let workers = [nodes[0].peer.clone(), nodes[1].peer.clone()];
    wait("the greedy submitter to fill every slot", T, || {
        greedy.pump();
        workers.iter().all(|w| placed_on(&greedy, w) >= 2)
    });
    let during = job(1).took;
    eprintln!("a quiet mesh: {normal:?}; while another submitter hogs every slot: {during:?}");
    greedy.pump();
    assert!(greedy.proc.pump(), "the greedy job still runs (it was not simply finished)");
    assert_no_member_down(&mut nodes, attack);
    assert!(during <= 2 * normal, "the job took {during:?} beside the greedy one, {normal:?} alone");
}
