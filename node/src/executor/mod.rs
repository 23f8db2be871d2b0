//! Runs the machine's executions: on the piece pool (low-priority threads
//! apart from the network loop, see `pool`), one thread per batch (a batch
//! holds one slot), with a cancellation flag per batch and panics contained
//! to the piece that raised them.
//!
//! Two refinements keep the node honest and quick:
//! - pieces are reported as they finish (at most every
//!   [`PROGRESS_EVERY`]), so the machine can give each piece its own
//!   deadline and keep the outputs of the ones done when a later one
//!   overruns;
//! - a task whose recent batches all ran in under [`INLINE_UNDER`] runs on
//!   the network thread itself: handing it to another thread and back
//!   would cost more than the work (two thread wake-ups on each round trip),
//!   and it is too short to hold up the loop.

mod pool;

use crate::metrics::WorkStats;
use meshwork_protocol::task::{CancelFlag, Registry, Runner, TaskError};
use meshwork_protocol::wire::{Outcome, PieceInput};
use meshwork_protocol::{ExecId, Execution};
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use pool::PiecePool;

/// Finished pieces are reported at most this often per batch.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(1);
/// A task whose last [`INLINE_AFTER`] batches each took less runs inline.
pub(crate) const INLINE_UNDER: Duration = Duration::from_micros(100);
/// Batches timed before a task may run inline.
const INLINE_AFTER: usize = 16;

/// What an execution tells the driver.
#[derive(Debug)]
pub(crate) enum ExecEvent {
    /// Pieces finished (outcomes in order, after those reported before).
    Progress { id: ExecId, outcomes: Vec<Outcome> },
    /// The batch ended: the outcomes not reported yet, and how long it took.
    Finished { id: ExecId, outcomes: Vec<Outcome>, elapsed: Duration },
}

/// A batch running now.
#[derive(Debug)]
struct Running {
    flag: CancelFlag,
    task: String,
    pieces: usize,
}

#[derive(Debug)]
pub(crate) struct Executor {
    registry: Registry,
    events: mpsc::UnboundedSender<ExecEvent>,
    running: HashMap<ExecId, Running>,
    /// Per task, the time per piece of its last batches.
    recent: HashMap<String, VecDeque<(usize, Duration)>>,
    pool: PiecePool,
}

impl Executor {
    pub(crate) fn new(registry: Registry) -> (Executor, mpsc::UnboundedReceiver<ExecEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let ex =
            Executor { registry, events, running: HashMap::new(), recent: HashMap::new(), pool: PiecePool::default() };
        (ex, rx)
    }

    /// Starts `e`; its events arrive on the channel (at once if it ran inline).
    pub(crate) fn spawn(&mut self, e: Execution) {
        let flag = CancelFlag::new();
        let inline = self.runs_inline(&e.task, e.pieces.len());
        let runner = self.registry.get(&e.task);
        self.running.insert(e.id, Running { flag: flag.clone(), task: e.task.clone(), pieces: e.pieces.len() });
        let events = self.events.clone();
        let job = move || run_batch(e, runner, &flag, &events);
        if inline {
            job();
        } else {
            self.pool.spawn(job);
        }
    }

    /// Does a batch of `pieces` of `task` run on this (the network) thread?
    /// Only a task that allows it ([`Task::MAY_RUN_INLINE`]) whose batches
    /// proved tiny.
    ///
    /// [`Task::MAY_RUN_INLINE`]: meshwork_protocol::task::Task::MAY_RUN_INLINE
    fn runs_inline(&self, task: &str, pieces: usize) -> bool {
        self.registry.get(task).is_some_and(|r| r.may_run_inline()) && self.is_tiny(task, pieces)
    }

    /// Did every one of the task's last batches take under [`INLINE_UNDER`],
    /// with no fewer pieces than `pieces`?
    fn is_tiny(&self, task: &str, pieces: usize) -> bool {
        self.recent
            .get(task)
            .is_some_and(|r| r.len() == INLINE_AFTER && r.iter().all(|(n, took)| *took < INLINE_UNDER && *n >= pieces))
    }

    /// Sets the cancellation flag of a running execution.
    pub(crate) fn abort(&mut self, id: ExecId) {
        if let Some(r) = self.running.get(&id) {
            r.flag.cancel();
        }
    }

    /// Sets the cancellation flag of every running execution (the node is
    /// stopping and will not wait for them); returns how many there were.
    pub(crate) fn abort_all(&mut self) -> usize {
        for r in self.running.values() {
            r.flag.cancel();
        }
        self.running.len()
    }

    /// Counts `outcomes` of execution `id` (before it [`ended`](Self::ended))
    /// as pieces of its task this node ran.
    pub(crate) fn tally(&self, id: ExecId, outcomes: &[Outcome], work: &mut WorkStats) {
        if let Some(r) = self.running.get(&id) {
            work.ran(&r.task, outcomes);
        }
    }

    /// Forgets an execution that ended, keeping its time.
    pub(crate) fn ended(&mut self, id: ExecId, elapsed: Duration) {
        let Some(r) = self.running.remove(&id) else { return };
        let recent = self.recent.entry(r.task).or_default();
        if recent.len() == INLINE_AFTER {
            recent.pop_front();
        }
        recent.push_back((r.pieces, elapsed));
    }
}

/// Runs a batch's pieces in order, reporting finished ones now and then.
fn run_batch(
    e: Execution,
    runner: Option<Arc<dyn Runner>>,
    flag: &CancelFlag,
    events: &mpsc::UnboundedSender<ExecEvent>,
) {
    let start = Instant::now();
    let mut reported = start;
    let mut outcomes = Vec::with_capacity(e.pieces.len());
    for piece in &e.pieces {
        if !outcomes.is_empty() && reported.elapsed() >= PROGRESS_EVERY {
            let done = std::mem::take(&mut outcomes);
            // The receiver is gone only when the node is shutting down.
            let _ = events.send(ExecEvent::Progress { id: e.id, outcomes: done });
            reported = Instant::now();
        }
        outcomes.push(run_piece(&e.task, runner.as_deref(), piece, flag));
    }
    let _ = events.send(ExecEvent::Finished { id: e.id, outcomes, elapsed: start.elapsed() });
}

/// One piece's outcome; a panic is contained to it.
fn run_piece(task: &str, runner: Option<&dyn Runner>, piece: &PieceInput, flag: &CancelFlag) -> Outcome {
    if flag.is_cancelled() {
        return Outcome::Cancelled;
    }
    let Some(runner) = runner else {
        return Outcome::Failed(format!("task {task:?} is not registered here"));
    };
    match catch_unwind(AssertUnwindSafe(|| runner.run_encoded(&piece.input, flag))) {
        Ok(Ok(out)) => Outcome::Done { output: out.bytes, conclusive: out.conclusive },
        Ok(Err(TaskError::Cancelled)) => Outcome::Cancelled,
        Ok(Err(TaskError::Repeats(why))) => Outcome::Repeats(why),
        Ok(Err(err)) => Outcome::Failed(err.to_string()),
        Err(panic) => Outcome::Failed(format!("task panicked: {}", panic_message(&panic))),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{builtin_registry, noop, sleep};
    use meshwork_protocol::task::{encode_pieces, Task};

    fn execution(id: u64, task: &str, inputs: Vec<Vec<u8>>) -> Execution {
        let pieces = inputs.into_iter().enumerate().map(|(i, input)| PieceInput { piece: i as u32, input }).collect();
        Execution { id: ExecId(id), task: task.into(), pieces, piece_timeout: Duration::from_secs(60) }
    }

    fn next(rx: &mut mpsc::UnboundedReceiver<ExecEvent>) -> ExecEvent {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match rx.try_recv() {
                Ok(e) => return e,
                Err(_) if Instant::now() < deadline => std::thread::yield_now(),
                Err(e) => panic!("no event: {e}"),
            }
        }
    }

    #[test]
    fn slow_pieces_are_reported_as_they_finish() {
        let (mut ex, mut rx) = Executor::new(builtin_registry());
        let pieces: Vec<sleep::SleepPiece> = (0..3).map(|index| sleep::SleepPiece { index, ms: 5 }).collect();
        ex.spawn(execution(1, sleep::Sleep::NAME, encode_pieces::<sleep::Sleep>(&pieces)));
        let mut reported = 0;
        loop {
            match next(&mut rx) {
                ExecEvent::Progress { outcomes, .. } => reported += outcomes.len(),
                ExecEvent::Finished { outcomes, .. } => {
                    assert_eq!(reported + outcomes.len(), 3);
                    break;
                }
            }
        }
        assert_eq!(reported, 2, "each 5 ms piece but the last was reported before the next started");
    }

    #[test]
    fn a_task_runs_inline_only_once_its_batches_proved_tiny() {
        let (mut ex, mut rx) = Executor::new(builtin_registry());
        let one = encode_pieces::<noop::Noop>(&[7]);
        for id in 0..INLINE_AFTER as u64 {
            assert!(!ex.is_tiny(noop::Noop::NAME, 1), "batch {id} ran inline before the task was timed");
            ex.spawn(execution(id, noop::Noop::NAME, one.clone()));
            let ExecEvent::Finished { id, elapsed, .. } = next(&mut rx) else { panic!("no progress expected") };
            ex.ended(id, elapsed);
        }
        assert!(ex.is_tiny(noop::Noop::NAME, 1));
        assert!(!ex.is_tiny(noop::Noop::NAME, 2), "a larger batch than timed goes to the pool");
        assert!(!ex.is_tiny(sleep::Sleep::NAME, 1), "other tasks are not affected");
        ex.spawn(execution(99, noop::Noop::NAME, one));
        assert!(matches!(rx.try_recv(), Ok(ExecEvent::Finished { id: ExecId(99), .. })), "ran before spawn returned");
    }

    /// `noop`, but its pieces may wait on the network (as a wasm piece
    /// fetching its module does).
    struct Waits;

    impl Task for Waits {
        const NAME: &'static str = "waits";
        type Input = ();
        type Piece = u32;
        type Output = u32;
        type Result = ();
        const MAY_RUN_INLINE: bool = false;

        fn split(&self, _: &()) -> Result<Vec<u32>, TaskError> {
            Ok(vec![0])
        }
        fn run(&self, piece: u32, _: &CancelFlag) -> Result<u32, TaskError> {
            Ok(piece)
        }
        fn merge(&self, _: &(), _: Vec<u32>) -> Result<(), TaskError> {
            Ok(())
        }
    }

    #[test]
    fn a_task_whose_pieces_may_wait_never_runs_inline_however_tiny() {
        let mut registry = builtin_registry();
        registry.register(Waits);
        let (mut ex, mut rx) = Executor::new(registry);
        let one = encode_pieces::<Waits>(&[7]);
        for id in 0..INLINE_AFTER as u64 {
            ex.spawn(execution(id, Waits::NAME, one.clone()));
            let ExecEvent::Finished { id, elapsed, .. } = next(&mut rx) else { panic!("no progress expected") };
            ex.ended(id, elapsed);
        }
        assert!(ex.is_tiny(Waits::NAME, 1), "its batches were tiny");
        assert!(!ex.runs_inline(Waits::NAME, 1), "yet it must stay off the network thread");
    }
}
