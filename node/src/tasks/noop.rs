//! `noop`: pieces that do nothing but come back, to measure what the mesh
//! itself costs per piece (placement, the wire, merging).
//!
//! Each piece carries its index and returns it; the merge checks every index
//! came back once, in order, so the task doubles as a check that the mesh
//! delivers outputs in piece order.

use super::{check_pieces, Rendered};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};

/// The `noop` task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

/// A `noop` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoopInput {
    /// Pieces in the job.
    pub pieces: u32,
}

/// Run pieces that do nothing (measures the mesh's overhead).
#[derive(clap::Args, Debug, Clone)]
pub struct NoopArgs {
    /// Number of pieces.
    #[arg(long, default_value_t = 10_000)]
    pub pieces: u32,
}

impl NoopArgs {
    /// The job these arguments ask for, or why they are not acceptable.
    pub fn input(&self) -> anyhow::Result<NoopInput> {
        check_pieces(self.pieces).map_err(anyhow::Error::msg)?;
        Ok(NoopInput { pieces: self.pieces })
    }
}

/// The result as `meshwork run noop` prints it.
pub fn render(_input: &NoopInput, pieces: &u64) -> anyhow::Result<Rendered> {
    Ok(Rendered {
        text: format!("{pieces} pieces came back in order"),
        json: serde_json::json!({ "task": Noop::NAME, "pieces": pieces }),
        file: None,
    })
}

impl Task for Noop {
    const NAME: &'static str = "noop";
    type Input = NoopInput;
    type Piece = u64;
    type Output = u64;
    type Result = u64;

    /// Piece `i` is the number `i`.
    fn split(&self, input: &NoopInput) -> Result<Vec<u64>, TaskError> {
        check_pieces(input.pieces).map_err(TaskError::Invalid)?;
        Ok((0..u64::from(input.pieces)).collect())
    }

    fn run(&self, index: u64, _cancel: &CancelFlag) -> Result<u64, TaskError> {
        Ok(index)
    }

    /// The number of pieces, once every index came back, in order.
    fn merge(&self, input: &NoopInput, outputs: Vec<u64>) -> Result<u64, TaskError> {
        let expected = u64::from(input.pieces);
        if outputs.len() as u64 != expected {
            return Err(TaskError::Failed(format!("expected {expected} outputs, got {}", outputs.len())));
        }
        if let Some((i, output)) = (0..).zip(&outputs).find(|&(i, &output)| output != i) {
            return Err(TaskError::Failed(format!("output {i} is {output}, expected {i}")));
        }
        Ok(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::run_locally;

    #[test]
    fn every_piece_comes_back() {
        assert_eq!(run_locally(&Noop, &NoopInput { pieces: 1000 }), Ok(1000));
        assert_eq!(Noop.split(&NoopInput { pieces: 3 }), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn merge_refuses_missing_or_misplaced_outputs() {
        let input = NoopInput { pieces: 3 };
        assert_eq!(Noop.merge(&input, vec![0, 1]), Err(TaskError::Failed("expected 3 outputs, got 2".to_string())));
        assert_eq!(Noop.merge(&input, vec![0, 2, 1]), Err(TaskError::Failed("output 1 is 2, expected 1".to_string())));
        assert_eq!(Noop.merge(&input, vec![0, 1, 2]), Ok(3));
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(NoopArgs { pieces: 0 }.input().unwrap_err().to_string(), "--pieces must be between 1 and 1000000");
        assert_eq!(NoopArgs { pieces: 5 }.input().unwrap(), NoopInput { pieces: 5 });
    }
}
