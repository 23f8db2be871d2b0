//! `sleep`: pieces that sleep, to exercise placement, deadlines and
//! cancellation with pieces of a known length and no CPU load.
//!
//! A piece sleeps in steps of at most [`STEP`] and looks at its cancellation
//! flag between steps, so a cancelled job frees its slots within a step.
//! It answers with its own index, and merging checks every index came back
//! once and in order, so a result filed under the wrong piece, a stale one
//! or one counted twice fails the job instead of passing unnoticed.

use super::{check_pieces, checked_sum, Rendered};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use serde::{Deserialize, Serialize};
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

/// One piece: which one, and how long it sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SleepPiece {
    /// Its index in the job.
    pub index: u32,
    /// Milliseconds to sleep.
    pub ms: u32,
}

/// What a piece answers: its index and how long it slept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slept {
    /// The piece's index, as it was given.
    pub index: u32,
    /// Milliseconds slept.
    pub ms: u32,
}

/// The result as `meshwork run sleep` prints it.
pub fn render(input: &SleepInput, total_ms: &u64) -> anyhow::Result<Rendered> {
    Ok(Rendered {
        text: format!("{} pieces slept {total_ms} ms in all", input.pieces),
        json: serde_json::json!({ "task": Sleep::NAME, "ms": input.ms, "pieces": input.pieces, "total_ms": total_ms }),
        file: None,
    })
}

impl Task for Sleep {
    const NAME: &'static str = "sleep";
    type Input = SleepInput;
    type Piece = SleepPiece;
    type Output = Slept;
    /// Milliseconds slept by all pieces together.
    type Result = u64;

    fn split(&self, input: &SleepInput) -> Result<Vec<SleepPiece>, TaskError> {
        check_pieces(input.pieces).map_err(TaskError::Invalid)?;
        Ok((0..input.pieces).map(|index| SleepPiece { index, ms: input.ms }).collect())
    }

    fn run(&self, piece: SleepPiece, cancel: &CancelFlag) -> Result<Slept, TaskError> {
        let deadline = Instant::now() + Duration::from_millis(piece.ms.into());
        loop {
            cancel.check()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Slept { index: piece.index, ms: piece.ms });
            }
            std::thread::sleep(left.min(STEP));
        }
    }

    /// Every piece exactly once, in order, or the job failed.
    fn merge(&self, input: &SleepInput, slept: Vec<Slept>) -> Result<u64, TaskError> {
        if let Some((i, s)) = slept.iter().enumerate().find(|(i, s)| s.index as usize != *i) {
            return Err(TaskError::Failed(format!("output {i} came back as piece {}", s.index)));
        }
        if slept.len() != input.pieces as usize {
            return Err(TaskError::Failed(format!("{} outputs for {} pieces", slept.len(), input.pieces)));
        }
        checked_sum(slept.iter().map(|s| u64::from(s.ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::run_locally;

    #[test]
    fn a_piece_sleeps_as_long_as_asked() {
        let started = Instant::now();
        assert_eq!(Sleep.run(SleepPiece { index: 4, ms: 30 }, &CancelFlag::new()), Ok(Slept { index: 4, ms: 30 }));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn merge_adds_up_the_sleeps_and_checks_every_piece_came_back_once() {
        assert_eq!(run_locally(&Sleep, &SleepInput { ms: 2, pieces: 3 }), Ok(6));
        let input = SleepInput { ms: 2, pieces: 3 };
        let s = |index| Slept { index, ms: 2 };
        assert!(Sleep.merge(&input, vec![s(0), s(2), s(1)]).is_err(), "misfiled");
        assert!(Sleep.merge(&input, vec![s(0), s(1)]).is_err(), "missing");
        assert!(Sleep.merge(&input, vec![s(0), s(1), s(2), s(2)]).is_err(), "counted twice");
    }

    #[test]
    fn a_cancelled_piece_returns_at_once() {
        let cancel = CancelFlag::new();
        cancel.cancel();
        let started = Instant::now();
        assert_eq!(Sleep.run(SleepPiece { index: 0, ms: 60_000 }, &cancel), Err(TaskError::Cancelled));
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
        assert_eq!(Sleep.run(SleepPiece { index: 0, ms: 60_000 }, &cancel), Err(TaskError::Cancelled));
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
