//! The resource limits README's "Security" section lists as tested, as a
//! user sets them: on a real `meshwork node` process, against real
//! `meshwork run` and `meshwork peers` processes on loopback.
//! (`--max-message` is tested in security.rs.)

use meshwork_tests::node_proc::NodeProc;
use meshwork_tests::observer::Observer;
use meshwork_tests::procs::{Proc, Spawn, Stderr};
use meshwork_tests::run_proc::{RunOutput, RunProc};
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of a whole job.
const JOB: Duration = Duration::from_secs(120);

/// A `sleep` job of `pieces` pieces of `ms` from a run joined to `worker`.
fn sleep_job(worker: &NodeProc, pieces: u64, ms: u64) -> RunProc {
    let (pieces, ms) = (pieces.to_string(), ms.to_string());
    RunProc::start_local(&worker.addr, &["--min-peers", "1", "sleep", "--ms", &ms, "--pieces", &pieces])
}

/// The finished `sleep` job, exact: every piece once, on `worker`.
fn finished_on(job: &mut RunProc, worker: &NodeProc, pieces: u64, ms: u64) -> RunOutput {
    let out = job.finish(JOB).unwrap();
    out.assert_exact(pieces);
    assert_eq!(out.result("total_ms"), Some(pieces * ms), "{}", out.json);
    assert_eq!(out.pieces_of(&worker.peer), pieces, "{}", out.json);
    out
}

/// `--max-pieces-per-peer 1` on a two-slot worker: one submitter's pieces
/// run one at a time (the job takes at least the sum of its pieces, where
/// two at a time would take half), while two submitters use both slots.
#[test]
fn a_worker_runs_at_most_max_pieces_per_peer_of_one_submitter_at_once() {
    let worker = NodeProc::start_local("worker", None, &["--slots", "2", "--max-pieces-per-peer", "1"]);
    let (pieces, ms) = (4, 2000);
    let out = finished_on(&mut sleep_job(&worker, pieces, ms), &worker, pieces, ms);
    let serial = Duration::from_millis(pieces * ms).as_secs_f64();
    assert!(out.wall_s() >= serial, "{pieces} pieces of {ms} ms took {:.2}s: run two at a time", out.wall_s());
    eprintln!(
        "one submitter: {pieces} pieces of {ms} ms in {:.2}s, {} batches refused as busy",
        out.wall_s(),
        out.summary("rejections").unwrap_or(0)
    );

    // The limit is per submitter: two of them fill both slots.
    let observer = Observer::join(&worker.addr, &[&worker.peer], T).unwrap();
    let mut jobs = [sleep_job(&worker, pieces, ms), sleep_job(&worker, pieces, ms)];
    observer.wait_loads(&[&worker.peer], "a piece of each submitter running", T, |l| l.running == 2).unwrap();
    for job in &mut jobs {
        finished_on(job, &worker, pieces, ms);
    }
}

/// `--max-piece-time 2`: a piece asking for ten minutes is failed after 2 s
/// and its slot is free at once; the worker goes on serving.
#[test]
fn a_piece_running_past_max_piece_time_is_failed_and_its_slot_freed() {
    let worker = NodeProc::start_local("worker", None, &["--max-piece-time", "2"]);
    let observer = Observer::join(&worker.addr, &[&worker.peer], T).unwrap();
    let mut job = RunProc::start_local(
        &worker.addr,
        &["--min-peers", "1", "--max-attempts", "1", "sleep", "--ms", "600000", "--pieces", "1"],
    );
    observer.wait_loads(&[&worker.peer], "the piece running", T, |l| l.running == 1).unwrap();
    let out = job.finish(T).unwrap_or_else(|e| panic!("a ten-minute piece on a worker allowing 2 s: {e}"));
    // Nothing else could fail it this soon: the run's own deadline is 300 s.
    assert_eq!(out.code, 1, "{}", out.stderr_text());
    assert!(out.json["error"].is_string(), "{}", out.json);
    let load = observer.load(&worker.peer).unwrap();
    assert_eq!((load.running, load.queued), (0, 0), "the worker once the piece was failed: {load:?}");
    eprintln!("runaway piece: the run ended {:.2}s after it started: {}", out.took.as_secs_f64(), out.json["error"]);
    finished_on(&mut sleep_job(&worker, 3, 100), &worker, 3, 100);
}

/// `--max-connections 1`: with a run connected, `meshwork peers` through
/// the same node hears nothing (exit 3), and the run's job goes on there.
#[test]
fn a_node_at_max_connections_refuses_more_and_keeps_serving_those_it_has() {
    let worker = NodeProc::start_local("worker", None, &["--max-connections", "1"]);
    // 40 pieces of 500 ms on one slot: 20 s, far longer than the refusal.
    let (pieces, ms) = (40, 500);
    let mut job = sleep_job(&worker, pieces, ms);
    job.wait_placed_on(&worker.peer, job.started, T).unwrap();
    let args =
        ["peers", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", &worker.addr, "--json", "--wait", "3"];
    let mut peers = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &args);
    let (code, table) = peers.output(T).unwrap();
    let refused = Instant::now();
    // Not reached: `peers` says so, naming the address, rather than list nobody.
    let err = peers.stderr();
    assert_eq!((code, table.as_str()), (3, ""), "a second peer reached a node allowing one connection: {err}");
    assert!(err.contains(&format!("cannot reach the mesh: --join {}", worker.addr)), "{err}");
    eprintln!("max connections: {err}");
    let out = finished_on(&mut job, &worker, pieces, ms);
    let after = out.placed_on_after(&worker.peer, refused);
    assert!(after > 0, "no piece placed on the node after it refused a connection: {}", out.json);
    eprintln!("max connections: second peer refused; {after} pieces placed on the node after that");
}
