//! The clock of epoch interruption: a thread that advances the engine's
//! epoch every tick, but only while a guest runs, so an idle node does not
//! wake a thousand times a second for nothing.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use wasmtime::EngineWeak;

/// Advances an engine's epoch every tick while any [`Running`] guard lives.
#[derive(Debug)]
pub(super) struct Ticker {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Guests running now; `None` once the ticker is dropped.
    running: Mutex<Option<usize>>,
    wake: Condvar,
}

/// Keeps the ticker going while a guest runs.
#[derive(Debug)]
pub(super) struct Running {
    shared: Arc<Shared>,
}

impl Ticker {
    /// Starts the (parked) ticker thread for `engine`.
    pub(super) fn new(engine: EngineWeak, tick: Duration) -> Ticker {
        let shared = Arc::new(Shared { running: Mutex::new(Some(0)), wake: Condvar::new() });
        let seen = shared.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || loop {
                let mut running = seen.running.lock().expect("ticker lock");
                while *running == Some(0) {
                    running = seen.wake.wait(running).expect("ticker lock");
                }
                if running.is_none() {
                    return;
                }
                drop(running);
                std::thread::sleep(tick);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            })
            .expect("spawning the wasm epoch thread");
        Ticker { shared }
    }

    /// Guests running now.
    #[cfg(test)]
    pub(super) fn active(&self) -> usize {
        self.shared.running.lock().expect("ticker lock").unwrap_or(0)
    }

    /// Ticks until the returned guard is dropped.
    pub(super) fn running(&self) -> Running {
        let mut running = self.shared.running.lock().expect("ticker lock");
        if let Some(n) = running.as_mut() {
            *n += 1;
        }
        self.shared.wake.notify_one();
        Running { shared: self.shared.clone() }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(n) = self.shared.running.lock().expect("ticker lock").as_mut() {
            *n -= 1;
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.shared.running.lock().expect("ticker lock") = None;
        self.shared.wake.notify_one();
    }
}
