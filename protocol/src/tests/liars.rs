//! Silent liars (issue 20, item 1): a peer that advertises many slots,
//! takes batches and never answers them, while it answers every health
//! probe, so it is never judged down. Its batches go overdue long before
//! the piece deadline, their pieces are backed up, the liar is told to
//! cancel them and trusted with fewer slots; honest answers win trust back.

use super::harness::{piece, Net};
use crate::*;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);
/// Every piece takes 100 ms on an honest node.
const PIECE_US: u64 = 100_000;

/// Node 0 submits, node 1 works honestly (1 slot each), node 2 claims
/// 4096 slots and, if `lying`, never answers a run request.
fn mesh(seed: u64, lying: bool) -> Net {
    let mut net = Net::new(3, seed, |i, c| {
        if i == 2 {
            *c = c.clone().with_slots(4096);
        }
    });
    net.state[2].swallow_runs = lying;
    let seen_by_0 = |net: &Net| net.nodes[0].peers(net.now).iter().filter(|p| p.load.is_some()).count() == 2;
    assert!(net.run_until(5 * SEC, seen_by_0));
    net
}

/// Distinct pieces, so a merged job shows each piece's own output.
fn inputs(n: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| piece(PIECE_US + i, 0)).collect()
}

fn trusted(net: &Net, peer: u32) -> u32 {
    net.nodes[0].peer(PeerKey(peer), net.now).expect("known peer").trusted_slots
}

fn run(net: &mut Net, pieces: u64) -> JobOutput {
    let inputs = inputs(pieces);
    let id = net.submit(0, JobSpec::new("t", inputs.clone()));
    let out = net.run_job(0, id, 60 * SEC).unwrap_or_else(|e| panic!("job failed: {e}"));
    assert_eq!(out.outputs, inputs, "every piece merged once, in order");
    out
}

#[test]
fn a_silent_liar_costs_a_job_seconds_not_the_piece_timeout() {
    let mut net = mesh(40, true);
    assert_eq!(trusted(&net, 2), 8, "a new peer starts with the head start");
    let out = run(&mut net, 8);
    let took = out.stats.elapsed;
    assert!(net.swallowed[2] >= 4, "the liar took most of the job: {}", net.swallowed[2]);
    assert_eq!(out.stats.per_peer.get(&PeerKey(2)), None, "{:?}", out.stats);
    assert!(out.stats.overdue >= 1 && out.stats.backups_won >= net.swallowed[2], "{:?}", out.stats);
    assert_eq!(out.stats.retries, 0, "nothing failed: overdue pieces are backed up, not retried");
    // 8 pieces of 100 ms: overdue after 4 x 100 ms + 1 s, then run on the
    // two honest slots; the piece deadline (300 s) plays no part.
    assert!(took < 3 * SEC, "the job took {took:?} with a liar");
    assert_eq!(trusted(&net, 2), 1, "the liar is down to one slot");
    assert_eq!(trusted(&net, 1), 1, "the honest worker keeps its (one) slot");
    // Its late batches are cancelled once their pieces are done elsewhere.
    assert!(net.run_until(SEC, |n| n.cancels[2] >= 1), "the liar was told to cancel");
    assert_eq!(net.nodes[0].peer(PeerKey(2), net.now).unwrap().inflight, 0, "nothing left on the liar");
}

#[test]
fn a_peer_that_sat_on_pieces_wins_trust_back_by_answering() {
    let mut net = mesh(41, true);
    run(&mut net, 8);
    assert_eq!(trusted(&net, 2), 1);
    // It mends its ways: every answered batch is worth one more slot.
    net.state[2].swallow_runs = false;
    let out = run(&mut net, 40);
    assert!(out.stats.per_peer.get(&PeerKey(2)).is_some_and(|n| *n > 0), "{:?}", out.stats);
    assert_eq!(out.stats.overdue, 0, "{:?}", out.stats);
    assert!(trusted(&net, 2) > 4, "trust grows again: {}", trusted(&net, 2));
}

#[test]
fn an_honest_peer_four_times_slower_is_not_judged_overdue() {
    let mut net = mesh(42, false);
    net.state[2].speed_pct = 25;
    let out = run(&mut net, 16);
    assert_eq!(out.stats.overdue, 0, "{:?}", out.stats);
    assert!(trusted(&net, 2) >= 8, "trust only grew: {}", trusted(&net, 2));
}
