//! Failures that repeat (issue 13): a piece whose failure will be the same
//! on every peer (a wasm guest's exit code) fails its job as soon as two
//! peers said so, or the only peer that runs the task said so twice,
//! instead of being retried on every peer; one peer that lies about it
//! cannot fail a job.

use super::harness::{piece, Net, REPEATS};
use crate::*;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

/// Lets adverts flow until node 0 knows every other node.
fn warm(net: &mut Net) {
    let n = net.nodes.len();
    let known = |net: &Net| net.nodes[0].peers(net.now).iter().filter(|p| p.load.is_some()).count() == n - 1;
    assert!(net.run_until(5 * SEC, known));
}

/// `n` pieces of 10 ms, those in `repeating` failing in a way that repeats;
/// attempts enough for every node to fail each piece in turn.
fn job(n: u32, repeating: &[u32]) -> JobSpec {
    let inputs = (0..n).map(|i| piece(10_000 + i as u64, if repeating.contains(&i) { REPEATS } else { 0 })).collect();
    JobSpec { max_attempts: 10, ..JobSpec::new("t", inputs) }
}

/// Times each piece was retried.
fn retries(net: &Net, piece: u32) -> usize {
    net.events.iter().filter(|(_, e)| matches!(e, JobEvent::Retried { piece: p, .. } if *p == piece)).count()
}

#[test]
fn a_failure_that_repeats_fails_the_job_once_a_second_peer_reports_it() {
    let mut net = Net::new(4, 7, |_, _| {});
    warm(&mut net);
    let id = net.submit(0, job(20, &[5]));
    let err = net.run_job(0, id, 10 * SEC).expect_err("piece 5 cannot succeed");
    let JobError::Repeats { failures } = &err else { panic!("not a repeating failure: {err}") };
    assert_eq!(failures.len(), 2, "{err}");
    assert!(failures.iter().all(|(p, _, cause)| *p == 5 && cause == "exited with code 3"), "{err}");
    assert_ne!(failures[0].1, failures[1].1, "two peers said so: {err}");
    assert_eq!(retries(&net, 5), 1, "tried on two peers, not on all four");
    assert!(err.to_string().contains("exited with code 3"), "{err}");
}

#[test]
fn one_peer_lying_that_every_piece_repeats_cannot_fail_a_job() {
    let mut net = Net::new(3, 8, |_, _| {});
    net.state[2].claims_repeats = true;
    warm(&mut net);
    let spec = job(30, &[]);
    let inputs = spec.inputs.clone();
    let id = net.submit(0, spec);
    let out = net.run_job(0, id, 10 * SEC).unwrap_or_else(|e| panic!("a liar failed the job: {e}"));
    assert_eq!(out.outputs, inputs);
    assert!(net.executed[2] >= 2, "the liar took pieces and failed them: {}", net.executed[2]);
    assert_eq!(out.stats.per_peer.get(&PeerKey(2)), None, "{:?}", out.stats);
}

#[test]
fn the_only_peer_that_runs_the_task_fails_the_job_on_its_second_report() {
    // Node 0 submits and is the only worker: the repeating piece comes
    // back to it once (it is not banned from it), then the job fails
    // rather than stall until the stall timeout.
    let mut net = Net::new(1, 9, |_, _| {});
    let id = net.submit(0, job(1, &[0]));
    let err = net.run_job(0, id, 10 * SEC).expect_err("piece 0 cannot succeed");
    let JobError::Repeats { failures } = &err else { panic!("not a repeating failure: {err}") };
    assert_eq!(failures.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(), [(0, PeerKey(0)), (0, PeerKey(0))]);
    assert_eq!(net.executed[0], 2);
    assert!(net.now.since(Time::ZERO) < SEC, "failed at once, not after the stall timeout ({:?})", net.now);
}
