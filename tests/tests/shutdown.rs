//! A node asked to stop while it runs a long piece for someone else: it
//! lets the piece run for its grace period, then cancels it and stops,
//! rather than waiting for the piece (issue 12, item 2).
//!
//! As a process (`meshwork node`, SIGTERM or SIGINT by PID), it exits
//! within the grace period (3 s) plus slack while a 10-minute piece runs.
//! In-process, where nothing ends the piece's thread for it, the piece
//! must see its cancellation flag once the grace period is over.

use meshwork::{JobOptions, Node};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use meshwork_tests::node_proc::NodeProc;
use meshwork_tests::observer::Observer;
use meshwork_tests::run_proc::RunProc;
use meshwork_tests::{local_config, wait_connected, wait_until};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// `meshwork node`'s shutdown grace period.
const GRACE: Duration = Duration::from_secs(3);
/// Past the grace period, for a loaded machine to finish stopping: far
/// below the piece's ten minutes.
const SLACK: Duration = Duration::from_secs(5);

/// `signal` to a worker running a 10-minute `sleep` piece of a run's job.
fn a_node_with_a_long_piece_exits_within_its_grace_period(signal: i32) {
    let mut worker = NodeProc::start_local("worker", None, &[]);
    let observer = Observer::join(&worker.addr, &[&worker.peer], T).unwrap();
    let args = ["--min-peers", "1", "sleep", "--ms", "600000", "--pieces", "1"];
    let _run = RunProc::start_local(&worker.addr, &args);
    observer.wait_loads(&[&worker.peer], "the piece running on the worker", T, |l| l.running == 1).unwrap();
    worker.proc.signal(signal);
    let sent = Instant::now();
    let (code, _) =
        worker.proc.output(GRACE + SLACK).unwrap_or_else(|e| panic!("{} after signal {signal}: {e}", worker.label));
    assert_eq!(code, 0, "{} exit code after signal {signal}", worker.label);
    eprintln!("signal {signal} with a 10-minute piece running: exited after {:.2}s", sent.elapsed().as_secs_f64());
}

#[test]
fn sigterm_stops_a_node_running_a_long_piece_within_its_grace_period() {
    a_node_with_a_long_piece_exits_within_its_grace_period(libc::SIGTERM);
}

#[test]
fn sigint_stops_a_node_running_a_long_piece_within_its_grace_period() {
    a_node_with_a_long_piece_exits_within_its_grace_period(libc::SIGINT);
}

/// Pieces of [`Hold`] running now, and pieces that saw their cancellation.
static HOLDING: AtomicU32 = AtomicU32::new(0);
static CANCELLED: AtomicU32 = AtomicU32::new(0);

/// A task whose one piece runs until it is cancelled (at most a minute,
/// so a broken build does not leave a thread behind for long).
struct Hold;

impl Task for Hold {
    const NAME: &'static str = "hold";
    type Input = ();
    type Piece = ();
    type Output = ();
    type Result = ();

    fn split(&self, _: &()) -> Result<Vec<()>, TaskError> {
        Ok(vec![()])
    }

    fn run(&self, _: (), cancel: &CancelFlag) -> Result<(), TaskError> {
        HOLDING.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if cancel.is_cancelled() {
                CANCELLED.fetch_add(1, Ordering::SeqCst);
                return Err(TaskError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn merge(&self, _: &(), _: Vec<()>) -> Result<(), TaskError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_node_cancels_the_pieces_still_running_when_its_grace_period_ends() {
    let grace = Duration::from_millis(500);
    let mut cfg = local_config(1);
    cfg.registry.register(Hold);
    cfg.shutdown_grace = grace;
    let worker = Node::start(cfg).await.unwrap();
    let mut cfg = local_config(0);
    cfg.registry.register(Hold);
    cfg.join = vec![worker.listen_addrs()[0].clone()];
    let submitter = Node::start(cfg).await.unwrap();
    let nodes = [worker, submitter];
    wait_connected(&nodes, T).await.unwrap();
    let [worker, submitter] = nodes;
    let client = submitter.client();
    let job = tokio::spawn(async move { client.run(&Hold, &(), &JobOptions::default(), |_, _| {}).await });
    wait_until("the piece running on the worker", T, || async { HOLDING.load(Ordering::SeqCst) == 1 }).await.unwrap();

    let asked = Instant::now();
    tokio::time::timeout(grace + SLACK, worker.shutdown()).await.expect("the worker stopped after its grace period");
    let stopped = asked.elapsed();
    assert!(stopped >= grace, "the piece had its grace period: stopped after {stopped:?}");
    let seen = wait_until("the piece cancelled", SLACK, || async { CANCELLED.load(Ordering::SeqCst) == 1 })
        .await
        .unwrap_or_else(|e| panic!("the worker stopped after {stopped:?} and left its piece running: {e}"));
    eprintln!(
        "stopped {:.2}s after shutdown, the piece saw its cancellation {:.3}s later",
        stopped.as_secs_f64(),
        seen.as_secs_f64()
    );
    job.abort();
    submitter.shutdown().await;
}
