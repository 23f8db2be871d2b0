//! meshwork on a LAN: real `meshwork` processes in network namespaces on a
//! bridge (see `meshwork_tests::lab`), finding each other by mDNS, sharing
//! jobs, and surviving dead, cut off, hung, lossy and partitioned hosts.
//! Every test reads the processes' JSON events (`meshwork node --json`,
//! `meshwork run --json --explain`), never their wording.
//!
//! Liveness as the nodes judge it: a killed host closes its connections,
//! so everybody sees it down at once. A hung or cut-off host is judged down
//! only by the submitter whose pieces it holds (its probes go unanswered);
//! that submitter re-places the pieces, and everybody else only sees the
//! host go quiet. Once it is back nobody says `peer_down`, and it takes
//! pieces again. Every fault test runs `sleep`, whose pieces answer with
//! their own index and whose merge checks each came back once, in order.
//!
//! Needs root, `ip netns` and `nft` (skipped with a message otherwise, and
//! failed under `CI=true`); the labs run one at a time. Timing figures are
//! printed with `eprintln!` (`--nocapture`).

use meshwork_tests::events::JobEvent;
use meshwork_tests::lab::Lab;
use meshwork_tests::node_proc::{all_live, downs_within, short, wait_all_live, wait_nodes, NodeProc};
use meshwork_tests::run_proc::{RunOutput, RunProc};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of a whole job.
const JOB: Duration = Duration::from_secs(90);
/// How long, after a fault is over, nobody may say `peer_down`.
const CALM: Duration = Duration::from_secs(5);

fn ids(nodes: &[NodeProc]) -> Vec<String> {
    nodes.iter().map(|n| n.peer.clone()).collect()
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Starts a node (`extra` arguments) on each of `hosts`, one at a time, each
/// once the previous ones see each other by mDNS.
fn start_mesh(lab: &Lab, hosts: &[usize], extra: &[&str]) -> Vec<NodeProc> {
    let mut nodes: Vec<NodeProc> = Vec::new();
    for h in hosts {
        nodes.push(lab.node(*h, extra));
        let since = nodes[0].started;
        wait_all_live(&mut nodes, since, T).unwrap();
    }
    nodes
}

/// A lab of `n` hosts, a one-slot node on each, all seeing each other.
fn mesh(n: usize) -> Option<(Lab, Vec<NodeProc>)> {
    let lab = Lab::new(n)?;
    let hosts: Vec<usize> = (0..n).collect();
    let nodes = start_mesh(&lab, &hosts, &["--slots", "1"]);
    Some((lab, nodes))
}

/// Peer ids that got pieces.
fn workers(out: &RunOutput) -> BTreeSet<String> {
    out.per_peer().into_iter().filter(|(_, n)| *n > 0).map(|(p, _)| p).collect()
}

fn per_peer_text(out: &RunOutput) -> String {
    out.per_peer().iter().map(|(p, n)| format!("{} {n}", short(p))).collect::<Vec<_>>().join(", ")
}

/// A finished `sleep` job of `pieces` pieces of `ms`: exit 0, every piece
/// counted once, the total right.
fn finished_sleep(job: &mut RunProc, pieces: u64, ms: u64) -> RunOutput {
    let out = job.finish(JOB).unwrap();
    out.assert_exact(pieces);
    assert_eq!(out.result("total_ms"), Some(pieces * ms), "{}", out.json);
    out
}

/// Panics unless every retry of the job was of a piece held by `victim`
/// (a retry anywhere else is a healthy host judged down), and returns them.
fn retries_only_on(out: &RunOutput, victim: &str) -> Vec<(Instant, u32, String)> {
    let elsewhere: Vec<_> = out.retries().into_iter().filter(|r| r.2 != victim).collect();
    assert!(elsewhere.is_empty(), "pieces retried away from healthy hosts: {elsewhere:?}");
    let on = out.retried_on(victim);
    assert_eq!(out.summary("retries"), Some(on.len() as u64), "every retry is an event: {}", out.json);
    on
}

/// Panics if a node said `peer_down` since `since` (about anyone but
/// `except`), watching `window` more.
fn assert_no_downs(nodes: &mut [NodeProc], since: Instant, window: Duration, except: Option<&str>, when: &str) {
    let downs = downs_within(nodes, since, window, |p| Some(p) != except);
    assert!(downs.is_empty(), "peer_down {when}: {downs:?}");
}

#[test]
fn lan_nodes_find_each_other_by_mdns_and_a_late_host_is_seen_by_all() {
    let Some(lab) = Lab::new(5) else { return };
    let mut nodes = lab.nodes(&[0, 1, 2, 3], &["--slots", "1"]);
    let started = nodes.iter().map(|n| n.started).min().unwrap();
    let listening = nodes.iter().map(|n| n.listening).max().unwrap();
    let all = wait_all_live(&mut nodes, started, T).unwrap();
    let took = all.saturating_duration_since(listening);
    eprintln!(
        "discovery: 4 hosts all up (12 peer_up events) {} after the last one listened ({} after they were started)",
        secs(took),
        secs(all - started)
    );
    assert!(took < Duration::from_secs(2), "4 hosts took {took:?} to see each other");

    nodes.push(lab.node(4, &["--slots", "1"]));
    let late = nodes.last().unwrap();
    let (late_peer, late_started, late_listening) = (late.peer.clone(), late.started, late.listening);
    let seen = wait_nodes(&mut nodes, "the 5th host seen by all (and seeing all)", T, |ns| {
        let (old, new) = ns.split_at(4);
        let by_old = all_live(&old.iter().collect::<Vec<_>>(), &[&late_peer], late_started)?;
        let old_ids: Vec<&str> = old.iter().map(|n| n.peer.as_str()).collect();
        let by_new = all_live(&[&new[0]], &old_ids, late_started)?;
        Some((by_old, by_new))
    })
    .unwrap();
    let (by_old, by_new) =
        (seen.0.saturating_duration_since(late_listening), seen.1.saturating_duration_since(late_listening));
    eprintln!(
        "discovery: a 5th host seen by all 4 {} after it listened; it saw all 4 after {}",
        secs(by_old),
        secs(by_new)
    );
    assert!(by_old < Duration::from_secs(2) && by_new < Duration::from_secs(2), "{by_old:?} / {by_new:?}");
}

#[test]
fn lan_a_job_from_one_host_is_spread_over_every_host() {
    let Some((lab, nodes)) = mesh(4) else { return };
    // The submitter is a peer of its own that only submits (`--slots 0`), so
    // the workers are the 4 hosts' nodes and it waits for all 4.
    let mut job = lab.run(0, &["--min-peers", "4", "primes", "--to", "2000000", "--pieces", "32"]);
    let out = job.finish(JOB).unwrap();
    out.assert_exact(32);
    assert_eq!(out.result("count"), Some(148_933), "{}", out.json);
    let all: BTreeSet<String> = ids(&nodes).into_iter().collect();
    assert_eq!(workers(&out), all, "every host's node got pieces: {}", out.json);
    eprintln!("spread: primes below 2,000,000 in {:.2}s over 4 hosts: {}", out.wall_s(), per_peer_text(&out));
}

#[test]
fn lan_a_host_killed_mid_job_is_down_everywhere_at_once_and_its_pieces_are_replaced() {
    let Some((lab, mut nodes)) = mesh(4) else { return };
    let start = Instant::now();
    let victim = nodes[2].peer.clone();
    let mut job = lab.run(0, &["--min-peers", "4", "--no-backups", "sleep", "--ms", "200", "--pieces", "40"]);
    job.wait_placed_on(&victim, start, T).unwrap();
    nodes[2].proc.signal(libc::SIGKILL);
    let killed = Instant::now();
    let out = finished_sleep(&mut job, 40, 200);
    let retried = retries_only_on(&out, &victim);
    assert!(!retried.is_empty(), "the victim's pieces were retried: {}", out.json);
    // A killed process sends nothing late.
    assert_eq!(out.summary("duplicates_ignored"), Some(0), "{}", out.json);
    let replaced = retried[0].0.saturating_duration_since(killed);

    let others = [0, 1, 3];
    let down = wait_nodes(&mut nodes, "the others seeing the victim down", T, |ns| {
        others.iter().map(|i| ns[*i].down_after(&victim, killed)).collect::<Option<Vec<_>>>()
    })
    .unwrap();
    let last_down = down.iter().map(|(at, _)| at.saturating_duration_since(killed)).max().unwrap();
    eprintln!(
        "kill -9: pieces re-placed {} after the kill ({} retried: {:?}); the 3 others saw it down within {} ({:?}); \
         job {:.2}s",
        secs(replaced),
        retried.len(),
        retried[0].2,
        secs(last_down),
        down[0].1,
        out.wall_s()
    );
    assert!(down.iter().all(|(_, why)| why == "connection closed"), "{down:?}");
    assert!(replaced < Duration::from_secs(1), "re-placement took {replaced:?}");
    assert!(last_down < Duration::from_secs(1), "seeing it down took {last_down:?}");
    assert_no_downs(&mut nodes, start, CALM, Some(&victim), "about a host that was not killed");
}

/// How a host hangs in [`a_hung_host`].
#[derive(Clone, Copy, Debug)]
enum Hang {
    /// Its bridge port goes down.
    Cut,
    /// Its node process is stopped (SIGSTOP).
    Stop,
}

impl Hang {
    fn begin(self, lab: &Lab, host: usize, node: &NodeProc) {
        match self {
            Hang::Cut => lab.cut(host),
            Hang::Stop => node.proc.signal(libc::SIGSTOP),
        }
    }

    fn end(self, lab: &Lab, host: usize, node: &NodeProc) {
        match self {
            Hang::Cut => lab.restore(host),
            Hang::Stop => node.proc.signal(libc::SIGCONT),
        }
    }
}

/// What [`a_hung_host`] measured.
struct Hung {
    out: RunOutput,
    /// The victim's pieces retried elsewhere.
    retried: usize,
}

/// A 4-host mesh runs 240 pieces of 200 ms from host 0 (about 13 s); host 2
/// hangs once it holds pieces, and stays hung until every other node has
/// seen it quiet. Checks the submitter alone judged it down and re-placed
/// its pieces, the others only saw it quiet, it took pieces again in the
/// same job once back, the result is exact, and nobody said `peer_down`
/// from the start until [`CALM`] after everything was live again.
fn a_hung_host(hang: Hang) -> Option<Hung> {
    let (lab, mut nodes) = mesh(4)?;
    let start = Instant::now();
    let (v, victim) = (2, nodes[2].peer.clone());
    let mut job = lab.run(0, &["--min-peers", "4", "--no-backups", "sleep", "--ms", "200", "--pieces", "240"]);
    job.wait_placed_on(&victim, start, T).unwrap();
    hang.begin(&lab, v, &nodes[v]);
    let hung = Instant::now();

    let retried_on_victim = |e: &JobEvent| matches!(e, JobEvent::Retried { peer, .. } if *peer == victim);
    let retry = job.wait_event("the hung host's pieces retried", hung, T, retried_on_victim).unwrap();
    let replaced = retry.at - hung;
    let others = [0, 1, 3];
    let quiet = wait_nodes(&mut nodes, "the other nodes seeing the hung host quiet", T, |ns| {
        others.iter().map(|i| ns[*i].quiet_after(&victim, hung)).collect::<Option<Vec<_>>>()
    })
    .unwrap();
    let last_quiet = quiet.iter().max().unwrap().duration_since(hung);
    hang.end(&lab, v, &nodes[v]);
    let back = Instant::now();

    let again = job.wait_placed_on(&victim, back, T).unwrap().at - back;
    let out = finished_sleep(&mut job, 240, 200);
    let retried = retries_only_on(&out, &victim).len();
    let live = wait_all_live(&mut nodes, back, T).unwrap() - back;
    assert_no_downs(&mut nodes, start, CALM, None, "while a host hung, or after it came back");
    eprintln!(
        "{hang:?}: the submitter re-placed the hung host's pieces {} after the fault ({retried} retried, {:?}); \
         the 3 other nodes saw it quiet within {} and nobody said peer_down; once back it took pieces again \
         after {}, every node saw every other live again within {}; job {:.2}s, {} pieces on the victim, \
         duplicates ignored {}",
        secs(replaced),
        match &retry.event {
            JobEvent::Retried { cause, .. } => cause.as_str(),
            _ => "",
        },
        secs(last_quiet),
        secs(again),
        secs(live),
        out.wall_s(),
        out.pieces_of(&victim),
        out.summary("duplicates_ignored").unwrap_or(0)
    );
    assert!(replaced < Duration::from_secs(4), "re-placement took {replaced:?}");
    assert!(again < Duration::from_secs(5), "taking pieces again took {again:?}");
    Some(Hung { out, retried })
}

#[test]
fn lan_a_host_whose_cable_is_cut_is_replaced_by_its_submitter_only_and_back_once_restored() {
    let Some(Hung { out, retried }) = a_hung_host(Hang::Cut) else { return };
    // Its answers were sent into the cut; TCP delivers them once the cable is
    // back, while the job still runs: counted as duplicates, never merged.
    assert_eq!(out.summary("duplicates_ignored"), Some(retried as u64), "{}", out.json);
}

#[test]
fn lan_a_host_stopped_mid_job_is_replaced_by_its_submitter_only_and_its_late_results_are_ignored() {
    let Some(Hung { out, retried }) = a_hung_host(Hang::Stop) else { return };
    // The submitter keeps its connections to a peer it judged down, so the
    // stopped worker's answers for its old pieces arrive once it resumes:
    // each is counted as a duplicate and ignored, none as unsolicited.
    assert_eq!(out.summary("duplicates_ignored"), Some(retried as u64), "{}", out.json);
}

#[test]
fn lan_a_job_completes_with_thirty_percent_packet_loss_on_one_host_which_takes_part() {
    let Some((lab, mut nodes)) = mesh(4) else { return };
    let start = Instant::now();
    let lossy_peer = nodes[3].peer.clone();
    let args = ["--min-peers", "4", "sleep", "--ms", "200", "--pieces", "40"];
    let clean = finished_sleep(&mut lab.run(0, &args), 40, 200);
    assert_eq!(clean.summary("retries"), Some(0), "{}", clean.json);
    lab.loss(3, 30);
    let lossy = finished_sleep(&mut lab.run(0, &args), 40, 200);
    lab.heal_loss(3);
    let retried = retries_only_on(&lossy, &lossy_peer).len() as u64;
    let (backups, won, dups) = (
        lossy.summary("backups").unwrap(),
        lossy.summary("backups_won").unwrap(),
        lossy.summary("duplicates_ignored").unwrap(),
    );
    eprintln!(
        "30% loss on 1 of 4 hosts: job {:.2}s vs {:.2}s without loss ({:.2}x); retries {retried}, backups {backups} \
         ({won} won), duplicates ignored {dups}; per peer: {}",
        lossy.wall_s(),
        clean.wall_s(),
        lossy.wall_s() / clean.wall_s(),
        per_peer_text(&lossy)
    );
    assert!(lossy.pieces_of(&lossy_peer) > 0, "the lossy host took part: {}", lossy.json);
    assert!(won <= backups, "{}", lossy.json);
    // Every late copy is of a piece retried or backed up, and was not merged.
    assert!(dups <= retried + backups, "{}", lossy.json);
    assert_no_downs(&mut nodes, start, Duration::ZERO, None, "from a node with no work during the loss");
}

#[test]
fn lan_both_halves_of_a_partition_keep_working_and_the_mesh_heals() {
    let Some((lab, mut nodes)) = mesh(4) else { return };
    let start = Instant::now();
    let halves = [[0, 1], [2, 3]];
    lab.partition(&halves[0], &halves[1]);
    let split = Instant::now();
    let ids = ids(&nodes);
    let apart = wait_nodes(&mut nodes, "each half seeing the other quiet", T, |ns| {
        let mut last = split;
        for (mine, theirs) in [(halves[0], halves[1]), (halves[1], halves[0])] {
            for w in mine {
                for t in theirs {
                    last = last.max(ns[w].quiet_after(&ids[t], split)?);
                }
            }
        }
        Some(last)
    })
    .unwrap()
    .saturating_duration_since(split);
    eprintln!("partition: each half saw the other quiet within {}", secs(apart));

    let args = ["--min-peers", "2", "--no-backups", "sleep", "--ms", "100", "--pieces", "20"];
    let mut jobs = [lab.run(halves[0][0], &args), lab.run(halves[1][0], &args)];
    for (half, job) in halves.iter().zip(&mut jobs) {
        let out = finished_sleep(job, 20, 100);
        assert_eq!(out.summary("retries"), Some(0), "nobody of half {half:?} judged down: {}", out.json);
        let mine: BTreeSet<String> = half.iter().map(|i| ids[*i].clone()).collect();
        assert_eq!(workers(&out), mine, "the job of half {half:?} ran on that half's hosts: {}", out.json);
        eprintln!("partition: half {half:?} ran its job alone in {:.2}s: {}", out.wall_s(), per_peer_text(&out));
    }

    lab.heal_partition();
    let healed = Instant::now();
    let back = wait_all_live(&mut nodes, healed, T).unwrap().saturating_duration_since(healed);
    eprintln!("partition: healed; every node saw every other live again within {}", secs(back));
    assert!(back < Duration::from_secs(10), "healing took {back:?}");
    assert_no_downs(&mut nodes, start, CALM, None, "during or after the partition");
}

#[test]
fn lan_a_host_on_another_subnet_joins_through_a_router_and_gets_pieces() {
    // Hosts 0-2 run nodes on subnet A; host 3 only routes between A and B.
    let Some(mut lab) = Lab::new(4) else { return };
    let b = lab.add_subnet_b(3, 1)[0];
    let mut nodes = start_mesh(&lab, &[0, 1, 2], &["--slots", "1"]);

    // mDNS does not cross the router: alone, the subnet-B node finds nobody.
    let mut alone = vec![lab.node(b, &["--slots", "1"])];
    let heard = wait_nodes(&mut alone, "a peer found by mDNS across the router", Duration::from_millis(2500), |ns| {
        ns[0].events.iter().find(|e| e.event.peer().is_some()).map(|e| e.event.clone())
    });
    assert!(heard.is_err(), "mDNS crossed subnets: {heard:?}");
    drop(alone);

    let joined = lab.node(b, &["--slots", "1", "--join", &nodes[0].addr]);
    let (b_peer, b_listening) = (joined.peer.clone(), joined.listening);
    nodes.push(joined);
    let up = wait_all_live(&mut nodes, b_listening, T).unwrap().saturating_duration_since(b_listening);
    eprintln!(
        "subnets: the subnet-B host ({}) joined host 0's node ({}, routed through host 3) and all 4 nodes saw \
         each other {} after it listened",
        lab.host(b).ip,
        lab.host(0).ip,
        secs(up)
    );

    let mut job = lab.run(1, &["--min-peers", "4", "sleep", "--ms", "100", "--pieces", "40"]);
    let out = finished_sleep(&mut job, 40, 100);
    assert!(workers(&out).contains(&b_peer), "the subnet-B host got pieces: {}", out.json);
    eprintln!("subnets: a job from subnet A in {:.2}s: {}", out.wall_s(), per_peer_text(&out));
}
