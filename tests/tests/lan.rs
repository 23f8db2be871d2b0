//! meshwork on a LAN: real `meshwork` processes in network namespaces on a
//! bridge (see `meshwork_tests::lab`), finding each other by mDNS, sharing
//! jobs, and surviving dead, cut off, hung, lossy and partitioned hosts.
//! Needs root (skipped with a message otherwise); the labs run one at a
//! time. Timing figures are printed with `eprintln!` (`--nocapture`).

use meshwork_tests::lab::{all_live, short, wait_nodes, Lab, Node, Outcome};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of a whole job.
const JOB: Duration = Duration::from_secs(90);

fn ids(nodes: &[Node]) -> Vec<String> {
    nodes.iter().map(|n| n.peer.clone()).collect()
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Waits until every node sees every other one live (its last line about
/// it is `peer-up`); returns when the last of those lines arrived (`since`
/// at the earliest). On timeout the failure names the pairs still apart.
fn wait_full_mesh(nodes: &mut [Node], since: Instant, timeout: Duration) -> Instant {
    let peers = ids(nodes);
    let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
    let done = wait_nodes(nodes, "every node up at every other", timeout, |ns| {
        let all: Vec<&Node> = ns.iter().collect();
        all_live(&all, &peers, since)
    });
    done.unwrap_or_else(|e| {
        let apart: Vec<String> = nodes
            .iter()
            .flat_map(|w| nodes.iter().filter(move |p| p.peer != w.peer).map(move |p| (w, p)))
            .filter(|(w, p)| w.live_since(&p.peer).is_none())
            .map(|(w, p)| format!("host {} does not see host {}", w.host, p.host))
            .collect();
        panic!("{e}: {}", apart.join(", "))
    })
}

/// Starts a node (`extra` arguments) on each of `hosts`, one at a time, each
/// once the previous ones see each other by mDNS.
fn start_mesh(lab: &Lab, hosts: &[usize], extra: &[&str]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for h in hosts {
        nodes.push(lab.node(*h, extra));
        let since = nodes[0].started;
        wait_full_mesh(&mut nodes, since, T);
    }
    nodes
}

/// A lab of `n` hosts, a node on each (`extra` arguments), all seeing each other.
fn mesh(n: usize, extra: &[&str]) -> Option<(Lab, Vec<Node>)> {
    let lab = Lab::new(n)?;
    let hosts: Vec<usize> = (0..n).collect();
    let nodes = start_mesh(&lab, &hosts, extra);
    Some((lab, nodes))
}

/// A successful job's outcome (panics with its output otherwise).
fn finished(job: &mut meshwork_tests::lab::Job) -> Outcome {
    let out = job.finish(JOB).unwrap();
    assert_eq!(out.code, 0, "meshwork run failed: {}\n{}", out.json, out.stderr_text());
    out
}

/// Peer ids that got pieces.
fn workers(out: &Outcome) -> BTreeSet<String> {
    out.per_peer().into_iter().filter(|(_, n)| *n > 0).map(|(p, _)| p).collect()
}

fn per_peer_text(out: &Outcome) -> String {
    out.per_peer().iter().map(|(p, n)| format!("{} {n}", short(p))).collect::<Vec<_>>().join(", ")
}

/// Every piece counted once: the per-peer counts add up to the pieces.
fn assert_counted_once(out: &Outcome, pieces: u64) {
    let sum: u64 = out.per_peer().iter().map(|(_, n)| n).sum();
    assert_eq!(sum, pieces, "pieces per peer add up to the job's pieces: {}", out.json);
    assert_eq!(out.summary("pieces"), Some(pieces));
}

/// 40 pieces of 200 ms from a submitter waiting for 4 peers, each placement
/// explained, no speculative backups (so the retries are the fault's).
const SLEEP_JOB: [&str; 9] =
    ["--min-peers", "4", "--explain", "--no-backups", "sleep", "--ms", "200", "--pieces", "40"];

#[test]
fn lan_nodes_find_each_other_by_mdns_and_a_late_host_is_seen_by_all() {
    let Some(lab) = Lab::new(5) else { return };
    let mut nodes = lab.nodes(&[0, 1, 2, 3], &["--slots", "1"]);
    let started = nodes.iter().map(|n| n.started).min().unwrap();
    let listening = nodes.iter().map(|n| n.listening).max().unwrap();
    let all = wait_full_mesh(&mut nodes, started, T);
    let took = all.saturating_duration_since(listening);
    eprintln!(
        "discovery: 4 hosts all up (12 peer-up lines) {} after the last one listened ({} after they were started)",
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
    let Some((lab, nodes)) = mesh(4, &["--slots", "1"]) else { return };
    // The submitter is a peer of its own that only submits (`--slots 0`), so
    // the workers are the 4 hosts' nodes and it waits for all 4.
    let mut job = lab.run(0, &["--min-peers", "4", "primes", "--to", "2000000", "--pieces", "32"]);
    let out = finished(&mut job);
    assert_eq!(out.result("count"), Some(148_933), "{}", out.json);
    assert_counted_once(&out, 32);
    let all: BTreeSet<String> = ids(&nodes).into_iter().collect();
    assert_eq!(workers(&out), all, "every host's node got pieces: {}", out.json);
    eprintln!("spread: primes below 2,000,000 in {:.2}s over 4 hosts: {}", out.wall_s(), per_peer_text(&out));
}

#[test]
fn lan_a_host_killed_mid_job_has_its_pieces_replaced() {
    let Some((lab, mut nodes)) = mesh(4, &["--slots", "1"]) else { return };
    let victim = nodes[2].peer.clone();
    let mut job = lab.run(0, &SLEEP_JOB);
    job.wait_placed_on(&victim, T).unwrap();
    nodes[2].proc.signal(libc::SIGKILL);
    let killed = Instant::now();
    let out = finished(&mut job);
    assert_eq!(out.result("total_ms"), Some(40 * 200), "{}", out.json);
    assert_counted_once(&out, 40);
    assert!(out.summary("retries") > Some(0), "{}", out.json);
    let line =
        out.failed_on(&victim).unwrap_or_else(|| panic!("no retry of the victim's pieces:\n{}", out.stderr_text()));
    let replaced = line.at.saturating_duration_since(killed);
    let others = [0, 1, 3];
    let down = wait_nodes(&mut nodes, "the others marking the victim down", T, |ns| {
        others.iter().map(|i| ns[*i].down_after(&victim, killed)).collect::<Option<Vec<_>>>()
    })
    .unwrap();
    let last_down = down.iter().map(|(at, _)| at.saturating_duration_since(killed)).max().unwrap();
    eprintln!(
        "kill -9: pieces re-placed {} after the kill ({:?}); other hosts marked it down within {} ({}); job {:.2}s, retries {}",
        secs(replaced),
        line.text,
        secs(last_down),
        down[0].1,
        out.wall_s(),
        out.summary("retries").unwrap()
    );
    assert!(replaced < Duration::from_secs(3), "re-placement took {replaced:?}");
}

#[test]
fn lan_a_host_whose_cable_is_cut_mid_job_is_dropped_then_rejoins() {
    let Some((lab, mut nodes)) = mesh(4, &["--slots", "1"]) else { return };
    let victim = nodes[2].peer.clone();
    let mut job = lab.run(0, &SLEEP_JOB);
    job.wait_placed_on(&victim, T).unwrap();
    lab.cut(2);
    let cut = Instant::now();
    let out = finished(&mut job);
    assert_eq!(out.result("total_ms"), Some(40 * 200), "{}", out.json);
    assert_counted_once(&out, 40);
    let line =
        out.failed_on(&victim).unwrap_or_else(|| panic!("no retry of the cut host's pieces:\n{}", out.stderr_text()));
    let replaced = line.at.saturating_duration_since(cut);
    let others = [0, 1, 3];
    let down = wait_nodes(&mut nodes, "the others marking the cut host down", T, |ns| {
        others.iter().map(|i| ns[*i].down_after(&victim, cut)).collect::<Option<Vec<_>>>()
    })
    .unwrap();
    let last_down = down.iter().map(|(at, _)| at.saturating_duration_since(cut)).max().unwrap();
    let reasons: BTreeSet<&str> = down.iter().map(|(_, why)| why.as_str()).collect();
    eprintln!(
        "cable cut: pieces re-placed {} after the cut ({:?}); the 3 others marked it down within {} ({reasons:?}); job {:.2}s",
        secs(replaced),
        line.text,
        secs(last_down),
        out.wall_s()
    );
    assert!(replaced < Duration::from_secs(6), "re-placement took {replaced:?}");
    assert!(last_down < Duration::from_secs(6), "marking it down took {last_down:?}");

    lab.restore(2);
    let restored = Instant::now();
    let back = wait_full_mesh(&mut nodes, restored, T).saturating_duration_since(restored);
    eprintln!("cable cut: after the cable returned, all 4 hosts saw each other again within {}", secs(back));
    assert!(back < Duration::from_secs(8), "rejoining took {back:?}");
}

#[test]
fn lan_a_host_stopped_mid_job_is_dropped_recovers_and_late_results_are_ignored() {
    let Some((lab, mut nodes)) = mesh(4, &["--slots", "1"]) else { return };
    let victim = nodes[2].peer.clone();
    // 80 pieces of 200 ms on 4 slots: the job outlives the detection and the
    // resumption, so whatever the resumed host still sends for its old pieces
    // arrives while the job runs; the result must count each piece once.
    let mut job =
        lab.run(0, &["--min-peers", "4", "--explain", "--no-backups", "sleep", "--ms", "200", "--pieces", "80"]);
    job.wait_placed_on(&victim, T).unwrap();
    nodes[2].proc.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let on = format!(" failed on {}: ", short(&victim));
    let line = job.wait_stderr("a retry of the stopped host's pieces", T, |t| t.contains(&on)).unwrap();
    let replaced = line.at.saturating_duration_since(stopped);
    // Resume it only once the others have given up on it too.
    let others = [0, 1, 3];
    let down = wait_nodes(&mut nodes, "the others marking the stopped host down", T, |ns| {
        others.iter().map(|i| ns[*i].down_after(&victim, stopped)).collect::<Option<Vec<_>>>()
    })
    .unwrap();
    let last_down = down.iter().map(|(at, _)| at.saturating_duration_since(stopped)).max().unwrap();
    nodes[2].proc.signal(libc::SIGCONT);
    let resumed = Instant::now();
    let out = finished(&mut job);
    assert_eq!(out.result("total_ms"), Some(80 * 200), "{}", out.json);
    assert_counted_once(&out, 80);
    assert!(out.summary("retries") > Some(0), "{}", out.json);
    // Up again at every other node, and every other node up again at it.
    let back = wait_full_mesh(&mut nodes, resumed, T).saturating_duration_since(resumed);
    eprintln!(
        "SIGSTOP: pieces re-placed {} after the stop ({:?}); others marked it down within {} ({}); \
         after SIGCONT it and the others saw each other again within {}; job {:.2}s, retries {}, duplicates ignored {}, total exact",
        secs(replaced),
        line.text,
        secs(last_down),
        down[0].1,
        secs(back),
        out.wall_s(),
        out.summary("retries").unwrap(),
        out.summary("duplicates_ignored").unwrap_or(0)
    );
    assert!(replaced < Duration::from_secs(6), "re-placement took {replaced:?}");
    assert!(back < Duration::from_secs(8), "recovery took {back:?}");
}

#[test]
fn lan_a_job_completes_with_thirty_percent_packet_loss_on_one_host() {
    let Some((lab, _nodes)) = mesh(4, &["--slots", "1"]) else { return };
    let args = ["--min-peers", "4", "sleep", "--ms", "200", "--pieces", "40"];
    let clean = finished(&mut lab.run(0, &args));
    assert_eq!(clean.result("total_ms"), Some(8000), "{}", clean.json);
    lab.loss(3, 30);
    let lossy = finished(&mut lab.run(0, &args));
    lab.heal_loss(3);
    assert_eq!(lossy.result("total_ms"), Some(8000), "{}", lossy.json);
    assert_counted_once(&lossy, 40);
    eprintln!(
        "30% loss on 1 of 4 hosts: job {:.2}s vs {:.2}s without loss ({:.2}x); retries {}, backups {} ({} won); per peer: {}",
        lossy.wall_s(),
        clean.wall_s(),
        lossy.wall_s() / clean.wall_s(),
        lossy.summary("retries").unwrap_or(0),
        lossy.summary("backups").unwrap_or(0),
        lossy.summary("backups_won").unwrap_or(0),
        per_peer_text(&lossy)
    );
}

#[test]
fn lan_both_halves_of_a_partition_keep_working_and_the_mesh_heals() {
    let Some((lab, mut nodes)) = mesh(4, &["--slots", "1"]) else { return };
    let halves = [[0, 1], [2, 3]];
    lab.partition(&halves[0], &halves[1]);
    let split = Instant::now();
    let ids = ids(&nodes);
    let apart = wait_nodes(&mut nodes, "each half marking the other down", T, |ns| {
        let mut last = split;
        for (mine, theirs) in [(halves[0], halves[1]), (halves[1], halves[0])] {
            for w in mine {
                for t in theirs {
                    last = last.max(ns[w].down_after(&ids[t], split)?.0);
                }
            }
        }
        Some(last)
    })
    .unwrap()
    .saturating_duration_since(split);
    eprintln!("partition: each half marked the other down within {}", secs(apart));

    let args = ["--min-peers", "2", "sleep", "--ms", "100", "--pieces", "20"];
    let mut jobs = [lab.run(halves[0][0], &args), lab.run(halves[1][0], &args)];
    for (half, job) in halves.iter().zip(&mut jobs) {
        let out = finished(job);
        assert_eq!(out.result("total_ms"), Some(2000), "{}", out.json);
        assert_counted_once(&out, 20);
        let mine: BTreeSet<String> = half.iter().map(|i| ids[*i].clone()).collect();
        assert_eq!(workers(&out), mine, "the job of half {half:?} ran on that half's hosts: {}", out.json);
        eprintln!("partition: half {half:?} ran its job alone in {:.2}s: {}", out.wall_s(), per_peer_text(&out));
    }

    lab.heal_partition();
    let healed = Instant::now();
    let back = wait_full_mesh(&mut nodes, healed, T).saturating_duration_since(healed);
    eprintln!("partition: healed; every node saw every other again within {}", secs(back));
    assert!(back < Duration::from_secs(10), "healing took {back:?}");
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
        ns[0].proc.seen.iter().find(|l| l.starts_with("peer-up ")).cloned()
    });
    assert!(heard.is_err(), "mDNS crossed subnets: {heard:?}");
    drop(alone);

    let joined = lab.node(b, &["--slots", "1", "--join", &nodes[0].addr]);
    let (b_peer, b_listening) = (joined.peer.clone(), joined.listening);
    nodes.push(joined);
    let up = wait_full_mesh(&mut nodes, b_listening, T).saturating_duration_since(b_listening);
    eprintln!(
        "subnets: the subnet-B host ({}) joined host 0's node ({}, routed through host 3) and all 4 nodes saw \
         each other {} after it listened",
        lab.host(b).ip,
        lab.host(0).ip,
        secs(up)
    );

    let mut job = lab.run(1, &["--min-peers", "4", "sleep", "--ms", "100", "--pieces", "40"]);
    let out = finished(&mut job);
    assert_eq!(out.result("total_ms"), Some(4000), "{}", out.json);
    assert_counted_once(&out, 40);
    assert!(workers(&out).contains(&b_peer), "the subnet-B host got pieces: {}", out.json);
    eprintln!("subnets: a job from subnet A in {:.2}s: {}", out.wall_s(), per_peer_text(&out));
}
