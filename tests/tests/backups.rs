//! Speculative backups with real processes on loopback: a worker slowed
//! to a twentieth of its speed (stopped 95 ms of every 100 ms, as a CPU
//! quota would hold it) is still live and answers its probes within a
//! tenth of a second, so nobody judges it down; its pieces are simply late.
//! Once nothing is left to place, the submitter copies them to the fast
//! workers, the first result wins, and the count is exact.
//!
//! The margin is wide: the two fast workers run the other pieces in about
//! three piece-times, the backup in one more, while the slow worker needs
//! twenty for its first piece.

use meshwork_tests::events::JobEvent;
use meshwork_tests::node_proc::local_mesh;
use meshwork_tests::procs::Throttle;
use meshwork_tests::run_proc::RunProc;
use std::time::Duration;

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of the whole job.
const JOB: Duration = Duration::from_secs(120);
/// The job: primes below `TO`, in `PIECES` pieces of distinct ranges.
const TO: u64 = 20_000_000;
const PIECES: u64 = 6;
/// π(20,000,000).
const PRIMES: u64 = 1_270_607;

#[test]
fn a_slowed_worker_has_its_pieces_backed_up_and_the_first_result_wins() {
    let nodes = local_mesh(3, &[], T);
    let slow = nodes[2].peer.clone();
    let throttle = Throttle::start(&nodes[2].proc, Duration::from_millis(5), Duration::from_millis(100));
    let (to, pieces) = (TO.to_string(), PIECES.to_string());
    let mut run =
        RunProc::start_local(&nodes[0].addr, &["--min-peers", "3", "primes", "--to", &to, "--pieces", &pieces]);
    let out = run.finish(JOB).unwrap();
    drop(throttle);
    out.assert_exact(PIECES);
    assert_eq!(out.result("count"), Some(PRIMES), "{}", out.json);

    // Pieces placed on the slow worker, and the backups: each a copy of one
    // of its pieces, on another worker.
    let placed = |backup: bool, on_slow: bool| -> Vec<u32> {
        let pick = |e: &JobEvent| match e {
            JobEvent::Placed { peer, pieces, backup: b } if *b == backup && (*peer == slow) == on_slow => {
                Some(pieces.clone())
            }
            _ => None,
        };
        out.events.iter().filter_map(|e| pick(&e.event)).flatten().collect()
    };
    let (slow_pieces, copies) = (placed(false, true), placed(true, false));
    assert_eq!(placed(true, true), Vec::<u32>::new(), "backups placed on the slow worker itself");
    assert!(
        copies.iter().any(|p| slow_pieces.contains(p)),
        "none of the slow worker's pieces {slow_pieces:?} was backed up"
    );
    let backups = out.summary("backups").unwrap_or(0);
    let won = out.summary("backups_won").unwrap_or(0);
    assert_eq!(backups, copies.len() as u64, "{}", out.json);
    assert!(won >= 1, "no backup won against a worker at a twentieth of its speed: {}", out.json);
    // It was slow, not dead: nothing was re-placed for a failure.
    assert_eq!(out.retries(), Vec::new(), "the slow worker was judged down: {}", out.stderr_text());
    eprintln!(
        "slowed worker: held pieces {slow_pieces:?}, backed up {copies:?}; {backups} backups, {won} won, \
         {} duplicates ignored; job {:.2}s",
        out.summary("duplicates_ignored").unwrap_or(0),
        out.wall_s()
    );
}
