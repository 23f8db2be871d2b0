//! Ctrl-C on `meshwork run` (issue 11, item 1), with real processes on
//! loopback: SIGINT cancels the job whatever the run is doing, the workers
//! stop its pieces, and the run exits 130; a second SIGINT exits at once.
//!
//! Mid-job, the pieces are 2-minute `sleep`s on three one-slot workers,
//! each holding one running and one queued: a run that ignored Ctrl-C, or
//! workers that kept going, would be seen busy for minutes, so the bounds
//! below (seconds) are far from anything a slow machine could cause. An
//! in-process observer reads the workers' own counters (Status), which is
//! how the test knows the pieces run before it presses Ctrl-C: without
//! `--explain` the run prints nothing until a piece is done.

use meshwork_tests::events::{JobEvent, NodeEvent};
use meshwork_tests::guests::{scratch, write_wat};
use meshwork_tests::node_proc::{local_mesh, wait_nodes, NodeProc};
use meshwork_tests::observer::Observer;
use meshwork_tests::procs::{Line, Stream};
use meshwork_tests::run_proc::{Local, RunProc};
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// From SIGINT to the run's exit, and to every worker idle: well under a
/// second on an idle machine, and nothing like the pieces' two minutes.
const PROMPT: Duration = Duration::from_secs(10);

/// Ctrl-C once every worker runs a piece of the job; see the module doc.
fn ctrl_c_mid_job(explain: bool) {
    let workers = local_mesh(3, &[], T);
    let ids: Vec<&str> = workers.iter().map(|w| w.peer.as_str()).collect();
    let observer = Observer::join(&workers[0].addr, &ids, T).unwrap();
    let how = Local { explain, ..Local::default() };
    let args = ["--min-peers", "3", "sleep", "--ms", "120000", "--pieces", "6"];
    let mut run = RunProc::start_local_as(&workers[0].addr, how, &args);
    observer.wait_loads(&ids, "a piece running on every worker", T, |l| l.running == 1).unwrap();
    run.proc.signal(libc::SIGINT);
    let pressed = Instant::now();
    let out = run.finish(PROMPT).unwrap_or_else(|e| panic!("the run after Ctrl-C: {e}"));
    let exited = pressed.elapsed();
    assert_eq!(out.code, 130, "exit code after Ctrl-C: {}", out.stderr_text());
    assert_eq!(out.json, serde_json::Value::Null, "a cancelled run prints no result");
    let idle = observer
        .wait_loads(&ids, "every worker idle", PROMPT, |l| l.running == 0 && l.queued == 0)
        .unwrap_or_else(|e| panic!("the workers after Ctrl-C: {e}"));
    eprintln!(
        "Ctrl-C mid-job (--explain {explain}): exit 130 after {:.2}s, every worker idle {:.2}s after the run exited",
        exited.as_secs_f64(),
        idle.as_secs_f64()
    );
}

#[test]
fn ctrl_c_mid_job_stops_every_remote_piece_and_exits_130() {
    ctrl_c_mid_job(true);
}

/// The issue's case: without `--explain` the run used to learn its job's
/// id only from the first finished piece, and ignored Ctrl-C until then.
#[test]
fn ctrl_c_before_any_piece_is_done_without_explain_stops_every_remote_piece_and_exits_130() {
    ctrl_c_mid_job(false);
}

/// Ctrl-C while the run still waits for peers (`--min-peers 5 --wait 30`
/// with one worker there): no job yet, nothing to cancel but the wait.
#[test]
fn ctrl_c_while_waiting_for_peers_exits_130_at_once() {
    let mut worker = vec![NodeProc::start_local("worker", None, &[])];
    let started = Instant::now();
    // With a slot of its own the run advertises, so the worker says when
    // it has joined: from then on it is waiting for four more peers.
    let how = Local { slots: 1, ..Local::default() };
    let mut run = RunProc::start_local_as(&worker[0].addr, how, &["--min-peers", "5", "sleep", "--pieces", "4"]);
    let joined = |ns: &[NodeProc]| {
        ns[0].events.iter().any(|e| e.at >= started && matches!(e.event, NodeEvent::PeerUp { .. })).then_some(())
    };
    wait_nodes(&mut worker, "the run live at the worker", T, joined).unwrap();
    run.proc.signal(libc::SIGINT);
    let pressed = Instant::now();
    let out = run.finish(PROMPT).unwrap_or_else(|e| panic!("the run after Ctrl-C: {e}"));
    assert_eq!(out.code, 130, "exit code after Ctrl-C: {}", out.stderr_text());
    assert_eq!(out.json, serde_json::Value::Null, "a cancelled run prints no result");
    eprintln!("Ctrl-C while waiting for peers: exit 130 after {:.2}s", pressed.elapsed().as_secs_f64());
}

/// A second Ctrl-C exits at once, even while the first cannot be acted on:
/// here the job is done and its `--reduce` module, which never returns,
/// holds the thread that would notice the first. The run says
/// "cancelling…" at the first (so the test knows it arrived) and must exit
/// with 130 at the second; without that it would spin for ever.
#[test]
fn a_second_ctrl_c_exits_at_once_while_the_first_cannot_be_acted_on() {
    let dir = scratch("cancel-twice");
    let echo = write_wat("quiet", r#"(module (func (export "_start")))"#, &dir);
    let endless = write_wat("endless", r#"(module (func (export "_start") (loop $l (br $l))))"#, &dir);
    let workers = local_mesh(2, &[], T);
    let (echo, endless) = (echo.to_str().unwrap(), endless.to_str().unwrap());
    let args = ["--min-peers", "2", "wasm", echo, "--range", "0..4", "--pieces", "4", "--reduce", endless];
    let mut run = RunProc::start_local(&workers[0].addr, &args);
    let all_done = |e: &JobEvent| matches!(e, JobEvent::Progress { done, total } if done == total);
    run.wait_event("every piece done", run.started, T, all_done).unwrap();
    // The reducer starts as soon as the last piece is in, and never ends.
    run.proc.signal(libc::SIGINT);
    let cancelling = |l: &Line| l.stream == Stream::Stderr && l.text.contains("cancelling…");
    run.proc.wait_for("\"cancelling…\" after the first Ctrl-C", T, cancelling).unwrap();
    run.proc.signal(libc::SIGINT);
    let pressed = Instant::now();
    let out = run.finish(PROMPT).unwrap_or_else(|e| panic!("the run after a second Ctrl-C: {e}"));
    assert_eq!(out.code, 130, "exit code after a second Ctrl-C: {}", out.stderr_text());
    assert_eq!(out.json, serde_json::Value::Null, "a cancelled run prints no result");
    eprintln!("second Ctrl-C during an endless reducer: exit 130 after {:.2}s", pressed.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}
