//! Runs the machine's executions on the piece pool (low-priority threads
//! apart from the network loop, see `pool`), one thread per batch (a batch
//! holds one slot), with a cancellation flag per batch and panics contained
//! to the piece that raised them.

mod pool;

use meshwork_protocol::task::{CancelFlag, Registry, TaskError};
use meshwork_protocol::wire::Outcome;
use meshwork_protocol::{ExecId, Execution};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use pool::PiecePool;

/// An execution that ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) id: ExecId,
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) elapsed: Duration,
}

#[derive(Debug)]
pub(crate) struct Executor {
    registry: Registry,
    done: mpsc::UnboundedSender<Finished>,
    flags: HashMap<ExecId, CancelFlag>,
    pool: PiecePool,
}

impl Executor {
    pub(crate) fn new(registry: Registry) -> (Executor, mpsc::UnboundedReceiver<Finished>) {
        let (done, rx) = mpsc::unbounded_channel();
        (Executor { registry, done, flags: HashMap::new(), pool: PiecePool::default() }, rx)
    }

    /// Starts `e` on the piece pool; its [`Finished`] arrives on the channel.
    pub(crate) fn spawn(&mut self, e: Execution) {
        let flag = CancelFlag::new();
        self.flags.insert(e.id, flag.clone());
        let runner = self.registry.get(&e.task);
        let done = self.done.clone();
        self.pool.spawn(move || {
            let start = Instant::now();
            let outcomes = e
                .pieces
                .iter()
                .map(|piece| {
                    if flag.is_cancelled() {
                        return Outcome::Cancelled;
                    }
                    let Some(runner) = &runner else {
                        return Outcome::Failed(format!("task {:?} is not registered here", e.task));
                    };
                    match catch_unwind(AssertUnwindSafe(|| runner.run_encoded(&piece.input, &flag))) {
                        Ok(Ok(out)) => Outcome::Done { output: out.bytes, conclusive: out.conclusive },
                        Ok(Err(TaskError::Cancelled)) => Outcome::Cancelled,
                        Ok(Err(err)) => Outcome::Failed(err.to_string()),
                        Err(panic) => Outcome::Failed(format!("task panicked: {}", panic_message(&panic))),
                    }
                })
                .collect();
            // The receiver is gone only when the node is shutting down.
            let _ = done.send(Finished { id: e.id, outcomes, elapsed: start.elapsed() });
        });
    }

    /// Sets the cancellation flag of a running execution.
    pub(crate) fn abort(&mut self, id: ExecId) {
        if let Some(flag) = self.flags.get(&id) {
            flag.cancel();
        }
    }

    /// Forgets an execution that ended.
    pub(crate) fn ended(&mut self, id: ExecId) {
        self.flags.remove(&id);
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
