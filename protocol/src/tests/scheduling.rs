//! Scheduler scenarios: placement, faults, retries, backups, cancellation.

use super::harness::{piece, Net, CONCLUSIVE, FAIL};
use crate::*;
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

fn job(inputs: Vec<Vec<u8>>) -> JobSpec {
    JobSpec::new("t", inputs)
}

fn pieces(n: usize, cost_us: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| piece(cost_us + i as u64, 0)).collect()
}

/// Lets adverts flow so every node knows every other.
fn warm(net: &mut Net) {
    let n = net.nodes.len();
    assert!(net.run_until(5 * SEC, |net| net.nodes.iter().enumerate().all(|(i, m)| m
        .peers(net.now)
        .iter()
        .filter(|p| p.load.is_some() && p.connected)
        .count()
        == n - 1
        || net.state[i].crashed)));
}

fn ok(r: Result<JobOutput, JobError>) -> JobOutput {
    r.unwrap_or_else(|e| panic!("job failed: {e}"))
}

#[test]
fn placement_spreads_pieces_over_all_nodes_and_merges_in_order() {
    let mut net = Net::new(4, 1, |_, _| {});
    warm(&mut net);
    let inputs = pieces(40, 10_000);
    let id = net.submit(0, job(inputs.clone()));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs, "outputs in piece order");
    assert_eq!(out.stats.per_peer.len(), 4, "every node ran pieces: {:?}", out.stats.per_peer);
    for (peer, n) in &out.stats.per_peer {
        assert!((6..=14).contains(n), "{peer} ran {n} of 40");
    }
    assert_eq!(out.stats.retries, 0);
    // 40 pieces of 10 ms on 4 slots: ideal 100 ms, plus latency.
    assert!(out.stats.elapsed < Duration::from_millis(140), "makespan {:?}", out.stats.elapsed);
}

#[test]
fn peer_loss_mid_piece_requeues_elsewhere() {
    let mut net = Net::new(3, 2, |_, _| {});
    warm(&mut net);
    let inputs = pieces(30, 20_000);
    let id = net.submit(0, job(inputs.clone()));
    net.run_until(Duration::from_millis(50), |_| false);
    net.crash(2);
    let crash_at = net.now;
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs);
    assert!(out.stats.retries >= 1, "the crashed node's piece was retried");
    let retried: Vec<_> = net
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            JobEvent::Retried { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    assert!(retried.iter().all(|p| *p == PeerKey(2)), "only node 2 failed pieces: {retried:?}");
    assert!(out.stats.elapsed > crash_at.since(Time::ZERO));
}

#[test]
fn a_hung_peer_is_found_by_health_probes_and_its_pieces_move() {
    let mut net = Net::new(3, 3, |_, _| {});
    warm(&mut net);
    let inputs = pieces(30, 100_000);
    let id = net.submit(0, job(inputs.clone()));
    net.run_until(Duration::from_millis(50), |_| false);
    net.hang(2, true);
    let hung_at = net.now;
    let out = ok(net.run_job(0, id, 30 * SEC));
    assert_eq!(out.outputs, inputs);
    assert_eq!(out.stats.per_peer.get(&PeerKey(2)), None, "node 2's pieces were all done elsewhere");
    let down = |n: &Net| {
        n.peer_events.iter().find_map(|(at, t, e)| {
            (*at == 0 && *e == PeerEvent::Down(PeerKey(2), DownReason::ProbeTimeout)).then_some(*t)
        })
    };
    assert!(net.run_until(10 * SEC, |n| down(n).is_some()), "node 0 judged node 2 down");
    let detect = down(&net).unwrap().since(hung_at);
    assert!(detect <= Duration::from_millis(3500), "hung peer detected after {detect:?}");
    assert!(net.disconnects.is_empty(), "a peer judged down keeps its connections: {:?}", net.disconnects);
    // Once it answers again it is back, on the same connection.
    net.hang(2, false);
    let back = |n: &Net| n.peer_events.iter().any(|(at, _, e)| *at == 0 && *e == PeerEvent::Up(PeerKey(2)));
    assert!(net.run_until(5 * SEC, |n| n.peer_events.iter().filter(|_| back(n)).count() > 0), "node 2 came back");
}

#[test]
fn a_piece_deadline_requeues_when_probes_cannot_tell() {
    // Probes effectively off: only the piece deadline can catch the hang.
    let mut net = Net::new(2, 4, |_, c| {
        c.probe_interval = 1000 * SEC;
    });
    warm(&mut net);
    let mut spec = job(pieces(4, 10_000));
    spec.piece_timeout = Duration::from_millis(500);
    spec.backups = false;
    let id = net.submit(0, spec);
    net.hang(1, true);
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.stats.per_peer.get(&PeerKey(0)), Some(&4), "everything ended on node 0");
    assert!(out.stats.retries >= 1);
}

#[test]
fn max_attempts_fails_the_job_naming_the_piece_and_causes() {
    let mut net = Net::new(4, 5, |_, _| {});
    warm(&mut net);
    let mut inputs = pieces(8, 1_000);
    inputs[5] = piece(1_000, FAIL);
    let id = net.submit(0, job(inputs));
    let err = net.run_job(0, id, 10 * SEC).unwrap_err();
    let JobError::PieceFailed(f) = &err else { panic!("{err}") };
    assert_eq!(f.piece, 5);
    assert_eq!(f.causes.len(), 3, "three attempts: {err}");
    let mut peers: Vec<_> = f.causes.iter().map(|(p, _)| *p).collect();
    peers.dedup();
    assert_eq!(peers.len(), 3, "each retry went to a new peer: {err}");
    assert!(err.to_string().contains("boom"), "{err}");
}

#[test]
fn a_piece_failing_everywhere_on_a_lone_node_stalls_then_fails() {
    let mut net = Net::new(1, 6, |_, _| {});
    let mut spec = job(vec![piece(10, FAIL)]);
    spec.stall_timeout = 2 * SEC;
    let id = net.submit(0, spec);
    let err = net.run_job(0, id, 10 * SEC).unwrap_err();
    assert!(matches!(err, JobError::Stalled { piece: 0, .. }), "{err}");
    assert!(err.to_string().contains("failed this piece before"), "{err}");
}

#[test]
fn no_peer_running_the_task_stalls_with_a_reason() {
    let mut net = Net::new(2, 7, |_, _| {});
    warm(&mut net);
    let mut spec = JobSpec::new("other", vec![piece(10, 0)]);
    spec.stall_timeout = SEC;
    spec.explain = true;
    let id = net.submit(0, spec);
    let err = net.run_job(0, id, 10 * SEC).unwrap_err();
    assert!(err.to_string().contains("does not run \"other\""), "{err}");
    assert!(net.events.iter().any(|(_, e)| matches!(e, JobEvent::Unplaceable { .. })));
}

#[test]
fn backups_fire_for_stragglers_and_the_first_result_wins() {
    // Node 1 runs at 2% speed: its piece would take 50x longer.
    let mut net = Net::new(2, 8, |_, _| {});
    net.state[1].speed_pct = 2;
    warm(&mut net);
    let inputs = pieces(20, 20_000);
    let id = net.submit(0, job(inputs.clone()));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs);
    assert!(out.stats.backups >= 1, "{:?}", out.stats);
    assert!(out.stats.backups_won >= 1, "{:?}", out.stats);
    // Without backups the slow piece alone takes 1 s.
    assert!(out.stats.elapsed < Duration::from_millis(700), "makespan {:?}", out.stats.elapsed);
    assert!(net.run_until(SEC, |n| n.cancels[1] >= 1), "the losing copy was cancelled");
}

#[test]
fn late_duplicates_are_ignored_and_counted() {
    let mut net = Net::new(2, 9, |_, _| {});
    net.state[1].speed_pct = 2;
    net.state[1].ignore_abort = true;
    warm(&mut net);
    let inputs = pieces(20, 20_000);
    let id = net.submit(0, job(inputs.clone()));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs);
    assert!(out.stats.backups_won >= 1);
    // The slow copy still finishes; the job already ended, so nothing changes.
    net.run_until(5 * SEC, |_| false);
    assert!(net.nodes.iter().all(|m| m.is_idle()));
}

#[test]
fn cancel_reaches_every_peer_running_pieces() {
    let mut net = Net::new(4, 10, |_, _| {});
    warm(&mut net);
    let id = net.submit(0, job(pieces(40, 1_000_000)));
    net.run_until(Duration::from_millis(100), |_| false);
    let busy: Vec<usize> = (1..4).filter(|i| net.executed[*i] > 0).collect();
    assert_eq!(busy.len(), 3, "all peers got work");
    net.cancel(0, id);
    assert!(matches!(net.finished(0, id), Some(Err(JobError::Cancelled))));
    assert!(net.run_until(SEC, |n| n.nodes.iter().all(|m| m.is_idle())), "every worker freed its slots");
    for i in busy {
        assert!(net.cancels[i] >= 1, "node {i} got the cancel");
    }
}

#[test]
fn a_conclusive_output_ends_the_job_and_cancels_the_rest() {
    let mut net = Net::new(3, 11, |_, _| {});
    warm(&mut net);
    let mut inputs = pieces(30, 500_000);
    inputs[1] = piece(1_000, CONCLUSIVE);
    let mut spec = job(inputs.clone());
    spec.early_exit = true;
    let id = net.submit(0, spec);
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.conclusive, Some(1));
    assert!(out.outputs.contains(&inputs[1]));
    assert!(out.stats.elapsed < Duration::from_millis(100));
    assert!(net.run_until(SEC, |n| n.nodes.iter().all(|m| m.is_idle())), "other pieces were stopped");
}

#[test]
fn tiny_pieces_are_batched() {
    let mut net = Net::new(2, 12, |_, _| {});
    warm(&mut net);
    let inputs: Vec<Vec<u8>> = (0..20_000).map(|_| piece(1, 0)).collect();
    let id = net.submit(0, job(inputs));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert!(out.stats.batches < 200, "{} batches for 20,000 pieces", out.stats.batches);
}

#[test]
fn refusals_move_pieces_to_peers_that_accept() {
    let mut net = Net::new(3, 13, |i, c| {
        if i == 2 {
            c.accept_from = AcceptFrom::Only([PeerKey(1)].into());
        }
    });
    warm(&mut net);
    let inputs = pieces(30, 5_000);
    let id = net.submit(0, job(inputs.clone()));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs);
    assert!(!out.stats.per_peer.contains_key(&PeerKey(2)));
    assert!(net.events.iter().any(|(_, e)| matches!(e, JobEvent::Refused { peer: PeerKey(2), .. })));
}

/// Whether node `at` ever reported `peer` down.
fn judged_down(net: &Net, at: usize, peer: u32) -> bool {
    net.peer_events.iter().any(|(n, _, e)| *n == at && matches!(e, PeerEvent::Down(p, _) if p.0 == peer))
}

/// What node `at` reported since `t0`, other than peers coming up (the
/// warm-up's are reported when first drained).
fn changes_seen(net: &Net, at: usize, t0: Time) -> Vec<&PeerEvent> {
    let up = |e: &PeerEvent| matches!(e, PeerEvent::Up(_));
    net.peer_events.iter().filter(|(n, when, e)| *n == at && *when >= t0 && !up(e)).map(|(_, _, e)| e).collect()
}

/// Whether node 0 holds node 2 quiet.
fn quiet(net: &Net) -> bool {
    net.nodes[0].peers(net.now).iter().any(|p| p.peer == PeerKey(2) && p.quiet)
}

/// Three warm nodes, node 2 stopped (SIGSTOP) until node 0 holds it quiet;
/// with when it was stopped.
fn node_2_gone_quiet() -> (Net, Time) {
    let mut net = Net::new(3, 14, |_, _| {});
    warm(&mut net);
    net.hang(2, true);
    let t0 = net.now;
    assert!(net.run_until(10 * SEC, quiet), "node 2 went quiet");
    (net, t0)
}

#[test]
fn a_peer_whose_adverts_stop_goes_quiet_not_down() {
    let (mut net, t0) = node_2_gone_quiet();
    let took = net.now.since(t0);
    assert!(took <= Duration::from_millis(3500), "{took:?}");
    // Quiet is not dead: no peer-down, no closed connection...
    assert!(!judged_down(&net, 0, 2));
    assert!(net.disconnects.is_empty());
    // ...but it gets no work while it is quiet.
    let inputs = pieces(20, 5_000);
    let id = net.submit(0, job(inputs.clone()));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs);
    assert_eq!(out.stats.per_peer.get(&PeerKey(2)), None, "a quiet peer got pieces: {:?}", out.stats.per_peer);
    assert_eq!(out.stats.retries, 0);
    // It answers again: no longer quiet.
    net.hang(2, false);
    assert!(net.run_until(5 * SEC, |n| !quiet(n)), "node 2 is heard again");
    // Each change was reported once, as it happened (drivers print them).
    let said = changes_seen(&net, 0, t0);
    assert_eq!(said, [&PeerEvent::Quiet(PeerKey(2)), &PeerEvent::Heard(PeerKey(2))]);
}

#[test]
fn a_quiet_peer_that_goes_down_is_reported_down_only() {
    let (mut net, t0) = node_2_gone_quiet();
    net.crash(2);
    net.run_until(2 * SEC, |_| false);
    let said = changes_seen(&net, 0, t0);
    assert_eq!(said, [&PeerEvent::Quiet(PeerKey(2)), &PeerEvent::Down(PeerKey(2), DownReason::Disconnected)]);
}

#[test]
fn lost_gossip_is_a_stale_load_figure_not_a_death() {
    let mut net = Net::new(3, 15, |_, _| {});
    warm(&mut net);
    net.gossip_lost.insert(2);
    net.run_until(10 * SEC, |_| false);
    assert!(!judged_down(&net, 0, 2) && !judged_down(&net, 1, 2), "{:?}", net.peer_events);
    // Node 0 probes the quiet node once it has work, hears its answer, and uses it.
    let inputs = pieces(60, 10_000);
    let id = net.submit(0, job(inputs.clone()));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs);
    assert!(out.stats.per_peer.get(&PeerKey(2)).is_some_and(|n| *n > 0), "{:?}", out.stats.per_peer);
    assert!(!judged_down(&net, 0, 2));
}

#[test]
fn the_old_advert_expiry_rule_judges_quiet_peers_dead() {
    // Kept so the simulator can reproduce the flapping it caused.
    let mut net = Net::new(3, 16, |_, c| c.advert_expiry = Some(3 * SEC));
    warm(&mut net);
    net.gossip_lost.insert(2);
    assert!(net.run_until(10 * SEC, |n| judged_down(n, 0, 2)));
    let view = net.nodes[0].peers(net.now).into_iter().find(|p| p.peer == PeerKey(2)).unwrap();
    assert_eq!(view.down, Some(DownReason::AdvertExpired));
    assert!(net.disconnects.iter().any(|(from, to, _)| (*from, *to) == (0, 2)), "the old rule closes connections");
}

#[test]
fn a_node_that_was_stopped_does_not_blame_its_peers() {
    let mut net = Net::new(3, 17, |_, _| {});
    warm(&mut net);
    let inputs = pieces(30, 200_000);
    let id = net.submit(0, job(inputs.clone()));
    net.run_until(Duration::from_millis(300), |_| false);
    // The submitter itself is stopped for 5 s while its pieces run elsewhere.
    net.hang(0, true);
    net.run_until(5 * SEC, |_| false);
    net.hang(0, false);
    let out = ok(net.run_job(0, id, 20 * SEC));
    assert_eq!(out.outputs, inputs);
    assert!(!judged_down(&net, 0, 1) && !judged_down(&net, 0, 2), "{:?}", net.peer_events);
    assert_eq!(out.stats.retries, 0);
}

#[test]
fn adverts_slow_down_as_the_mesh_grows() {
    let cfg = Config::new(PeerKey(0), 0);
    let pace = |n| cfg.advert_pace(n);
    assert_eq!(pace(2), (SEC, Duration::from_millis(100)));
    assert_eq!(pace(5), (SEC, Duration::from_millis(250)));
    assert_eq!(pace(50), (10 * SEC, Duration::from_millis(2500)));
    assert_eq!(pace(10_000), (60 * SEC, 60 * SEC), "capped");
    // What one node hears a second while idle stays at the budget.
    for n in [10u32, 100, 300] {
        let heard = n as f64 / pace(n).0.as_secs_f64();
        assert!((heard - cfg.advert_budget as f64).abs() < 0.01, "{n}: {heard}");
    }
}

#[test]
fn many_one_piece_jobs_never_open_more_batches_to_a_peer_than_the_cap() {
    let mut net = Net::new(2, 21, |i, c| *c = c.clone().with_slots(if i == 0 { 0 } else { 1 }));
    warm(&mut net);
    let ids: Vec<JobId> = (0..1000).map(|_| net.submit(0, job(vec![piece(1, 0)]))).collect();
    let mut most = 0;
    let all_done = net.run_until(60 * SEC, |n| {
        most = most.max(n.nodes[0].peer(PeerKey(1), n.now).map_or(0, |v| v.batches));
        ids.iter().all(|id| n.finished(0, *id).is_some())
    });
    assert!(all_done, "the jobs did not finish");
    // A worker refuses streams past 256 at once, and yamux closes a whole
    // connection past 512: a submitter must stay well below both.
    assert!(most <= 128, "{most} batches in flight to one peer");
    assert!(most >= 32, "the cap is used, not a trickle: {most}");
    for id in ids {
        ok(net.finished(0, id).unwrap().clone());
    }
}

#[test]
fn same_seed_same_run() {
    let trace = |seed| {
        let mut net = Net::new(5, seed, |_, _| {});
        warm(&mut net);
        let mut spec = job(pieces(50, 3_000));
        spec.explain = true;
        let id = net.submit(0, spec);
        let out = ok(net.run_job(0, id, 10 * SEC));
        let placed: Vec<(PeerKey, Vec<u32>)> = net
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                JobEvent::Placed { peer, pieces, .. } => Some((*peer, pieces.clone())),
                _ => None,
            })
            .collect();
        (placed, out.stats.per_peer, out.stats.elapsed)
    };
    assert_eq!(trace(21), trace(21));
    assert_ne!(trace(21), trace(22));
}

#[test]
fn an_advert_claiming_huge_capacity_cannot_attract_unbounded_work() {
    // Node 1 claims 4096 slots but is hung: it never answers a batch.
    let mut net = Net::new(2, 15, |i, c| {
        if i == 1 {
            *c = c.clone().with_slots(4096);
        }
    });
    warm(&mut net);
    net.hang(1, true);
    let mut spec = job(pieces(200, 50_000));
    spec.backups = false;
    let id = net.submit(0, spec);
    net.run_until(Duration::from_millis(300), |_| false);
    let at_liar = net.nodes[0].peers(net.now).into_iter().find(|p| p.peer == PeerKey(1)).unwrap().inflight;
    assert!(at_liar <= 8, "{at_liar} pieces sent to a peer that never answered");
    let out = ok(net.run_job(0, id, 60 * SEC));
    assert_eq!(out.outputs.len(), 200);
}

#[test]
fn conclusive_claims_are_ignored_unless_the_job_allows_an_early_exit() {
    let mut net = Net::new(2, 16, |_, _| {});
    warm(&mut net);
    let mut inputs = pieces(10, 1_000);
    inputs[3] = piece(1_000, CONCLUSIVE);
    let id = net.submit(0, job(inputs.clone()));
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.conclusive, None);
    assert_eq!(out.outputs, inputs, "every piece ran and merged");
}

#[test]
fn a_streamed_job_reports_each_output_once_before_it_finishes() {
    let mut net = Net::new(3, 18, |_, _| {});
    warm(&mut net);
    // Distinct outputs, so an output names the piece it came from.
    let inputs = pieces(30, 1_000);
    let mut spec = job(inputs.clone());
    spec.stream = true;
    let id = net.submit(0, spec);
    let out = ok(net.run_job(0, id, 10 * SEC));
    let mut streamed: Vec<(u32, Vec<u8>)> = Vec::new();
    for (_, e) in &net.events {
        match e {
            JobEvent::Output { job, piece, output, .. } if *job == id => streamed.push((*piece, output.clone())),
            JobEvent::Finished { job, .. } if *job == id => break,
            _ => {}
        }
    }
    streamed.sort();
    let expected: Vec<(u32, Vec<u8>)> = inputs.iter().cloned().enumerate().map(|(i, o)| (i as u32, o)).collect();
    assert_eq!(streamed, expected, "every piece once, with its own output, before Finished");
    assert!(out.outputs.is_empty(), "streamed outputs are not kept for the result");
}

#[test]
fn when_later_pieces_prove_slower_the_largest_go_first() {
    // Piece i costs (i + 1) ms: placed in index order, the job would end on
    // the 40 ms piece alone; largest-first ends on small ones.
    let mut net = Net::new(2, 17, |_, _| {});
    warm(&mut net);
    let inputs: Vec<Vec<u8>> = (0..40).map(|i| piece((i + 1) * 1_000, 0)).collect();
    let mut spec = job(inputs.clone());
    spec.explain = true;
    spec.backups = false;
    let id = net.submit(0, spec);
    let out = ok(net.run_job(0, id, 10 * SEC));
    assert_eq!(out.outputs, inputs);
    let order: Vec<u32> = net
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            JobEvent::Placed { pieces, .. } => Some(pieces.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(&order[..2], &[0, 1], "index order until the trend is known");
    let at = |p: u32| order.iter().position(|q| *q == p).unwrap();
    assert!(at(39) < at(20), "then largest first: {order:?}");
    assert!(*order.last().unwrap() < 20, "the job ends on a small piece: {order:?}");
    // Total work 820 ms on 2 slots: ideal 410 ms; ending on a big piece would cost ~20 ms more.
    assert!(out.stats.elapsed < Duration::from_millis(420), "makespan {:?}", out.stats.elapsed);
}
