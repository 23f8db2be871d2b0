//! Ctrl-C for commands that must always answer it (`meshwork run`): the
//! first SIGINT cancels whatever the command is doing (starting its peer,
//! waiting for others, the job, the merge) and a second one exits at once
//! with 130. The first one says so at once ("cancelling…"), whatever the
//! command is doing, so a person knows the second is there.
//!
//! The second one is handled inside the signal handler itself, so it works
//! even while the runtime's one thread is busy (a large merge runs on it):
//! a handler installed through tokio alone would only be seen once that
//! thread comes back to the runtime.

use super::EXIT_CANCELLED;
use anyhow::Context;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// What the first Ctrl-C prints on stderr, from the signal handler itself.
const CANCELLING: &str = "cancelling… (Ctrl-C again exits at once)";

/// SIGINT, caught from [`Interrupt::install`] on.
#[derive(Debug)]
pub(super) struct Interrupt {
    /// SIGINTs received so far, counted by the handler.
    count: Arc<AtomicU32>,
    /// Wakes the runtime when one arrives.
    wake: Signal,
}

impl Interrupt {
    /// Catches SIGINT from now on: call it before anything that can take
    /// time, since until then Ctrl-C kills the process without a word.
    pub(super) fn install() -> anyhow::Result<Interrupt> {
        let count = Arc::new(AtomicU32::new(0));
        let seen = count.clone();
        let line = format!("\n{CANCELLING}\n").into_bytes();
        let count_or_exit = move || {
            if seen.fetch_add(1, Ordering::SeqCst) >= 1 {
                // SAFETY: _exit(2) is async-signal-safe.
                unsafe { libc::_exit(EXIT_CANCELLED.into()) }
            }
            // SAFETY: write(2) is async-signal-safe; the bytes were
            // allocated before the handler was installed and live as long
            // as it does. A short or failed write only loses the message.
            unsafe { libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len()) };
        };
        // Registered before tokio's own action (added by the first `signal()`
        // for SIGINT in this process, just below): the registry runs actions
        // in the order they were registered, so the count is up to date by
        // the time the runtime is woken.
        // SAFETY: the action only touches an atomic and calls write(2) and
        // _exit(2), all async-signal-safe; SIGINT is not one of the signals the registry forbids.
        unsafe { signal_hook_registry::register(libc::SIGINT, count_or_exit) }
            .context("installing the Ctrl-C handler")?;
        let wake = signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
        Ok(Interrupt { count, wake })
    }

    /// Has Ctrl-C been pressed (without waiting)? True even when it came
    /// while the runtime's thread was busy and nothing has been woken yet.
    pub(super) fn pressed(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// Resolves once Ctrl-C has been pressed (at once if it already was).
    /// Cancel-safe: a `select!` may drop it and call it again.
    pub(super) async fn pressed_once(&mut self) {
        while !self.pressed() {
            if self.wake.recv().await.is_none() {
                // The runtime is going away: nothing can wake us any more.
                std::future::pending::<()>().await;
            }
        }
    }
}
