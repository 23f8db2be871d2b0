//! `sleep`: pieces that sleep, to exercise placement, deadlines and
//! cancellation with pieces of a known length and no CPU load.
//!
//! A piece sleeps in steps of at most [`STEP`] and looks at its cancellation
//! flag between steps, so a cancelled job frees its slots within a step.

use super::{check_pieces, checked_sum, Rendered};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use std::time::{Duration, Instant};

/// Longest sleep between two looks at the cancellation flag.
pub const STEP: Duration = Duration::from_millis(5);

/// The `sleep` task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

/// A `sleep` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepInput {
    /// Milliseconds each piece sleeps.
    pub ms: u32,
    /// Pieces in the job.
    pub pieces: u32,
}

/// Run pieces that sleep --ms milliseconds each.
#[derive(clap::Args, Debug, Clone)]
pub struct SleepArgs {
    /// Milliseconds each piece sleeps.
    #[arg(long, default_value_t = 100)]
    pub ms: u32,
    /// Number of pieces.
    #[arg(long, default_value_t = 8)]
    pub pieces: u32,
}

impl SleepArgs {
    /// The job these arguments ask for, or why they are not acceptable.
    pub fn input(&self) -> anyhow::Result<SleepInput> {
        check_pieces(self.pieces).map_err(anyhow::Error::msg)?;
        Ok(SleepInput { ms: self.ms, pieces: self.pieces })
    }
}

/// The result as `meshwork run sleep` prints it.
pub fn render(input: &SleepInput, total_ms: &u64) -> anyhow::Result<Rendered> {
    Ok(Rendered {
        text: format!("{} pieces slept {total_ms} ms in all", input.pieces),
        json: serde_json::json!({ "task": Sleep::NAME, "ms": input.ms, "pieces": input.pieces, "total_ms": total_ms }),
    })
}

impl Task for Sleep {
    const NAME: &'static str = "sleep";
    type Input = SleepInput;
    /// Milliseconds to sleep.
    type Piece = u32;
    /// Milliseconds slept.
    type Output = u64;
    /// Milliseconds slept by all pieces together.
    type Result = u64;

    fn split(&self, input: &SleepInput) -> Result<Vec<u32>, TaskError> {
        check_pieces(input.pieces).map_err(TaskError::Invalid)?;
        Ok(vec![input.ms; input.pieces as usize])
    }

    fn run(&self, ms: u32, cancel: &CancelFlag) -> Result<u64, TaskError> {
        let deadline = Instant::now() + Duration::from_millis(ms.into());
        loop {
            cancel.check()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(ms.into());
            }
            std::thread::sleep(left.min(STEP));
        }
    }

    fn merge(&self, _input: &SleepInput, slept: Vec<u64>) -> Result<u64, TaskError> {
        checked_sum(slept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::run_locally;

    #[test]
    fn a_piece_sleeps_as_long_as_asked() {
        let started = Instant::now();
        assert_eq!(Sleep.run(30, &CancelFlag::new()), Ok(30));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn merge_adds_up_the_sleeps() {
        assert_eq!(run_locally(&Sleep, &SleepInput { ms: 2, pieces: 3 }), Ok(6));
    }

    #[test]
    fn a_cancelled_piece_returns_at_once() {
        let cancel = CancelFlag::new();
        cancel.cancel();
        let started = Instant::now();
        assert_eq!(Sleep.run(60_000, &cancel), Err(TaskError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn cancelling_stops_a_sleeping_piece() {
        let cancel = CancelFlag::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                cancel.cancel();
            })
        };
        let started = Instant::now();
        assert_eq!(Sleep.run(60_000, &cancel), Err(TaskError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(10));
        canceller.join().unwrap();
    }

    #[test]
    fn arguments_are_checked() {
        let err = SleepArgs { ms: 1, pieces: 0 }.input().unwrap_err();
        assert_eq!(err.to_string(), "--pieces must be between 1 and 1000000");
        assert_eq!(SleepArgs { ms: 7, pieces: 2 }.input().unwrap(), SleepInput { ms: 7, pieces: 2 });
    }
}
