//! Stall recovery (issue 20, item 2: "a link that stalled for ~3 s never
//! recovers"), with real `meshwork` processes on loopback: a 3-node mesh
//! runs a job from a `meshwork run` process while one node is stopped
//! (SIGSTOP) for 2, 4 or 10 s, or while the submitter itself is stopped.
//!
//! A stall shorter than the probe rule (1 s of silence, then a probe
//! unanswered for 2 s) changes nothing. A longer one makes the submitter
//! judge the node down and re-place its pieces; the other nodes, which have
//! no work there, only see it go quiet. Either way, once it resumes it is
//! live everywhere again, takes pieces again in the same job, and nobody
//! says `peer_down` during a 30 s watch afterwards; a new job still uses
//! it. Every job runs `sleep`, whose pieces answer with their own index and
//! whose merge checks each came back once, in order.

use meshwork_tests::events::JobEvent;
use meshwork_tests::node_proc::{downs_within, local_mesh, wait_all_live};
use meshwork_tests::run_proc::{RunOutput, RunProc};
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of a whole job.
const JOB: Duration = Duration::from_secs(90);
/// After a stall, nobody may say `peer_down` for this long (a deliberate
/// observation window, read through the nodes' output).
const WATCH: Duration = Duration::from_secs(30);
/// Length of every piece, in ms.
const PIECE_MS: u64 = 200;

/// A `sleep` job of `pieces` pieces from a `meshwork run` joined to `join`,
/// waiting for all 3 nodes, no speculative backups (so every retry is a
/// down judgement's).
fn sleep_job(join: &str, pieces: u64) -> RunProc {
    let (pieces, ms) = (pieces.to_string(), PIECE_MS.to_string());
    RunProc::start_local(join, &["--min-peers", "3", "--no-backups", "sleep", "--ms", &ms, "--pieces", &pieces])
}

/// The finished job, exact: every piece once, the right total.
fn finished(job: &mut RunProc, pieces: u64) -> RunOutput {
    let out = job.finish(JOB).unwrap();
    out.assert_exact(pieces);
    assert_eq!(out.result("total_ms"), Some(pieces * PIECE_MS), "{}", out.json);
    out
}

/// Node 2 stops for `stall` while it holds pieces of a job from a
/// submitter joined through node 0; see the module documentation.
fn a_node_stopped_for(stall: Duration) {
    let mut nodes = local_mesh(3, &[], T);
    let start = Instant::now();
    let victim = nodes[2].peer.clone();
    // About 8 s of work besides the stall: at 5 pieces a second per slot,
    // 2 slots while it is stopped, 3 otherwise.
    let pieces = 10 * (stall.as_secs() + 8);
    let mut job = sleep_job(&nodes[0].addr, pieces);
    job.wait_placed_on(&victim, start, T).unwrap();
    nodes[2].proc.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let during = downs_within(&mut nodes, start, stall, |_| true);
    nodes[2].proc.signal(libc::SIGCONT);
    let resumed = Instant::now();
    assert!(during.is_empty(), "peer_down while node 2 was stopped: {during:?}");

    // Its adverts are heard again: live at every other node, and they at it.
    let live = wait_all_live(&mut nodes, resumed, T).unwrap() - resumed;
    let again = job.wait_placed_on(&victim, resumed, T).unwrap().at - resumed;
    let out = finished(&mut job, pieces);
    let elsewhere: Vec<_> = out.retries().into_iter().filter(|r| r.2 != victim).collect();
    assert!(elsewhere.is_empty(), "pieces retried away from a node that was not stopped: {elsewhere:?}");
    let retried = out.retried_on(&victim);
    let quiet = (0..2).filter_map(|i| nodes[i].quiet_after(&victim, stopped)).max();
    eprintln!(
        "stall {stall:?}: {} of the stopped node's pieces re-placed (first {} after the stop); the others saw it \
         quiet: {}; after SIGCONT everybody live again within {}, pieces placed on it again after {}; \
         duplicates ignored {}; job {:.2}s",
        retried.len(),
        retried.first().map_or("-".into(), |r| format!("{:.2}s", (r.0 - stopped).as_secs_f64())),
        quiet.map_or("no".into(), |q| format!("after {:.2}s", (q - stopped).as_secs_f64())),
        secs(live),
        secs(again),
        out.summary("duplicates_ignored").unwrap_or(0),
        out.wall_s()
    );
    if stall < Duration::from_secs(3) {
        // Shorter than 1 s of silence plus a 2 s probe timeout: nothing judged.
        assert!(retried.is_empty(), "a {stall:?} stall was judged a death: {retried:?}");
    } else {
        assert!(!retried.is_empty(), "a {stall:?} stall went unnoticed by the submitter: {}", out.json);
    }
    // Its answers for the pieces it held come once it resumes, on the
    // connections that stayed open: ignored and counted, never merged.
    assert_eq!(out.summary("duplicates_ignored"), Some(retried.len() as u64), "{}", out.json);
    assert!(again < Duration::from_secs(5), "it took {again:?} to get pieces again");

    let downs = downs_within(&mut nodes, start, WATCH, |_| true);
    assert!(downs.is_empty(), "peer_down after a {stall:?} stall: {downs:?}");
    // Nodes on one loopback reach each other: AutoNAT, probing every 10 s
    // all along, must never have judged one behind a NAT (its dial-back
    // connections once piled up past the per-peer limit and did).
    for n in &nodes {
        assert!(!n.reachabilities().contains(&"behind-nat"), "{} judged itself behind NAT", n.label);
    }
    let out = finished(&mut sleep_job(&nodes[1].addr, 15), 15);
    assert!(out.pieces_of(&victim) > 0, "a new job used the node that stalled: {}", out.json);
    assert_eq!(out.summary("retries"), Some(0), "{}", out.json);
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

#[test]
fn a_node_stopped_for_2s_recovers_and_nobody_judges_it_down() {
    a_node_stopped_for(Duration::from_secs(2));
}

#[test]
fn a_node_stopped_for_4s_is_replaced_by_its_submitter_only_and_recovers() {
    a_node_stopped_for(Duration::from_secs(4));
}

#[test]
fn a_node_stopped_for_10s_is_replaced_by_its_submitter_only_and_recovers() {
    a_node_stopped_for(Duration::from_secs(10));
}

#[test]
fn a_submitter_stopped_mid_job_for_4s_judges_nobody_down_and_its_job_is_exact() {
    let mut nodes = local_mesh(3, &[], T);
    let start = Instant::now();
    let pieces = 60;
    let mut job = sleep_job(&nodes[0].addr, pieces);
    let progress = |e: &JobEvent| matches!(e, JobEvent::Progress { done, .. } if *done >= 6);
    job.wait_event("6 pieces done", start, T, progress).unwrap();
    job.proc.signal(libc::SIGSTOP);
    let during = downs_within(&mut nodes, start, Duration::from_secs(4), |_| true);
    job.proc.signal(libc::SIGCONT);
    let resumed = Instant::now();
    assert!(during.is_empty(), "peer_down while the submitter was stopped: {during:?}");
    let out = finished(&mut job, pieces);
    eprintln!(
        "submitter stopped 4s: job {:.2}s, retries {}, duplicates ignored {}, ended {} after SIGCONT",
        out.wall_s(),
        out.summary("retries").unwrap_or(0),
        out.summary("duplicates_ignored").unwrap_or(0),
        secs(out.took.saturating_sub(resumed - job.started))
    );
    // Its own timers fired late: it must blame itself, not its workers.
    assert_eq!(out.retries(), Vec::new(), "the resumed submitter judged a worker down");
    assert_eq!(out.summary("duplicates_ignored"), Some(0), "{}", out.json);
    let downs = downs_within(&mut nodes, start, Duration::from_secs(2), |_| true);
    assert!(downs.is_empty(), "{downs:?}");
}
