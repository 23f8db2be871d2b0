//! What the service needs of a job's task beyond its name: how its input
//! is cut into pieces and how the outputs that came back are merged and
//! shown. Built from the task's name and `meshwork run` arguments, again
//! after a restart (the pieces' inputs are stored; the merge is not).

use crate::tasks::Rendered;
use meshwork_protocol::task::{decode_outputs, encode_pieces, Task, TaskError};

/// A job's task, with its input.
pub trait Kind: Send + Sync {
    /// The task's registered name.
    fn task(&self) -> &'static str;
    /// Whether a conclusive output ends the job (`Task::EARLY_EXIT`).
    fn early_exit(&self) -> bool;
    /// Each piece's encoded input.
    fn inputs(&self) -> Result<Vec<Vec<u8>>, TaskError>;
    /// The result of the outputs, in piece order (those present after an early end).
    fn finish(&self, outputs: Vec<Vec<u8>>) -> anyhow::Result<Rendered>;
}

/// Turns a task's name and `meshwork run` arguments into its [`Kind`]
/// (the CLI's parser: the service takes the same arguments).
pub type Parse = fn(&str, &[String]) -> anyhow::Result<Box<dyn Kind>>;

/// How a task's result is shown.
pub type Render<T> = fn(&<T as Task>::Input, &<T as Task>::Result) -> anyhow::Result<Rendered>;

/// A built-in task with its input and rendering.
pub struct Typed<T: Task> {
    /// The task.
    pub task: T,
    /// Its input.
    pub input: T::Input,
    /// How its result is shown.
    pub render: Render<T>,
}

impl<T: Task> Kind for Typed<T>
where
    T::Input: Send + Sync,
{
    fn task(&self) -> &'static str {
        T::NAME
    }

    fn early_exit(&self) -> bool {
        T::EARLY_EXIT
    }

    fn inputs(&self) -> Result<Vec<Vec<u8>>, TaskError> {
        Ok(encode_pieces::<T>(&self.task.split(&self.input)?))
    }

    fn finish(&self, outputs: Vec<Vec<u8>>) -> anyhow::Result<Rendered> {
        let outputs = decode_outputs::<T>(&outputs)?;
        let result = self.task.merge(&self.input, outputs)?;
        (self.render)(&self.input, &result)
    }
}
