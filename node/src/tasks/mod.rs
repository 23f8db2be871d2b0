//! The built-in tasks every meshwork node registers, so any node can run any
//! piece of them without installing anything.
//!
//! Each module holds one task: the unit struct implementing
//! [`Task`], its input, piece, output and result types, the clap arguments of
//! its `meshwork run <task>` subcommand and the rendering of its result.
//!
//! - [`primes`]: counts primes in a range by trial division (the CPU-bound benchmark).
//! - [`mandelbrot`]: renders the Mandelbrot set to a grayscale PNG in bands of rows.
//! - [`hash_search`]: finds a nonce whose SHA-256 has enough leading zero bits; ends early.
//! - [`wordcount`]: counts the words of a text file, chunk by chunk.
//! - [`noop`]: pieces that do nothing, to measure the mesh's own overhead.
//! - [`sleep`]: pieces that sleep, to exercise placement, cancellation and deadlines.
//!
//! [`builtin_registry`] is what a worker runs; [`run_locally`] runs a whole
//! job in this process, the "single machine" reference of tests and benchmarks.

pub mod hash_search;
pub mod mandelbrot;
pub mod noop;
pub mod primes;
pub mod sleep;
pub mod wordcount;

use meshwork_protocol::task::{decode_outputs, encode_pieces, CancelFlag, Registry, Runner, Task, TaskError};

/// Largest piece or output a built-in task makes (mandelbrot bands,
/// wordcount chunks), in bytes: half the default RPC frame limit, so one
/// always fits in a message with room to spare.
pub const MAX_PIECE_BYTES: usize = 8 * 1024 * 1024;

/// Most pieces a built-in job may have: more only costs memory and
/// scheduling without adding parallelism any mesh can use.
pub const MAX_PIECES: u32 = 1_000_000;

/// Name and one-line description of every built-in task, for `meshwork tasks`.
pub const BUILTINS: &[(&str, &str)] = &[
    (primes::Primes::NAME, "count the primes in [--from, --to) by trial division"),
    (mandelbrot::Mandelbrot::NAME, "render the Mandelbrot set to a grayscale PNG"),
    (hash_search::HashSearch::NAME, "find a nonce whose SHA-256 has --difficulty leading zero bits"),
    (wordcount::Wordcount::NAME, "count the words of a text file and list the most frequent"),
    (noop::Noop::NAME, "pieces that do nothing (measures the mesh's overhead)"),
    (sleep::Sleep::NAME, "pieces that sleep --ms milliseconds each"),
];

/// A job's result as the CLI shows it: a line for people, a value for `--json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// One human-readable line (no trailing newline).
    pub text: String,
    /// The same result as a JSON object.
    pub json: serde_json::Value,
    /// A file the result is (the PNG of `mandelbrot`): `meshwork run`
    /// has already written it where `--out` said; the job service keeps
    /// it for `meshwork result -o`.
    pub file: Option<ResultFile>,
}

/// A result that is a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultFile {
    /// A name to save it under.
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A registry holding every built-in task, as each worker registers them.
pub fn builtin_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(primes::Primes)
        .register(mandelbrot::Mandelbrot)
        .register(hash_search::HashSearch)
        .register(wordcount::Wordcount)
        .register(noop::Noop)
        .register(sleep::Sleep);
    registry
}

/// Runs a whole job in this process, one piece after another, through the
/// same CBOR round trips a mesh job takes, so a type that does not survive
/// the wire fails here too.
///
/// Like the mesh, it stops at the first conclusive output and merges only
/// the outputs produced so far: the reference does no more work than a
/// single machine would.
pub fn run_locally<T: Task>(task: &T, input: &T::Input) -> Result<T::Result, TaskError> {
    let pieces = task.split(input)?;
    let mut outputs = Vec::with_capacity(pieces.len());
    for piece in encode_pieces::<T>(&pieces) {
        let output = task.run_encoded(&piece, &CancelFlag::new())?;
        outputs.push(output.bytes);
        if T::EARLY_EXIT && output.conclusive {
            break;
        }
    }
    task.merge(input, decode_outputs::<T>(&outputs)?)
}

/// The check every task makes of `--pieces`, in the CLI's words.
fn check_pieces(pieces: u32) -> Result<(), String> {
    if !(1..=MAX_PIECES).contains(&pieces) {
        return Err(format!("--pieces must be between 1 and {MAX_PIECES}"));
    }
    Ok(())
}

/// Adds up counts that came back from workers. A count is whatever a peer
/// sent, so an overflow is a failed job, not a panic.
fn checked_sum(counts: impl IntoIterator<Item = u64>) -> Result<u64, TaskError> {
    counts.into_iter().try_fold(0u64, |total, n| {
        total.checked_add(n).ok_or_else(|| TaskError::Failed("outputs add up to more than 2^64".to_string()))
    })
}

/// The `i`-th of `n` equal parts of `[start, end)`, computed in `u128` so the
/// products cannot overflow. Consecutive parts tile the range exactly.
fn equal_part(start: u64, end: u64, i: u64, n: u64) -> (u64, u64) {
    let len = u128::from(end - start);
    let at = |k: u64| start + (len * u128::from(k) / u128::from(n)) as u64;
    (at(i), at(i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshwork_protocol::wire::valid_task_name;

    #[test]
    fn registry_and_builtins_list_the_same_valid_names() {
        let mut listed: Vec<String> = BUILTINS.iter().map(|(name, _)| name.to_string()).collect();
        listed.sort();
        assert_eq!(builtin_registry().names(), listed);
        assert_eq!(listed.len(), 6);
        assert!(listed.iter().all(|name| valid_task_name(name)), "{listed:?}");
    }

    #[test]
    fn equal_parts_tile_the_range() {
        let parts: Vec<_> = (0..3).map(|i| equal_part(10, 20, i, 3)).collect();
        assert_eq!(parts, vec![(10, 13), (13, 16), (16, 20)]);
    }

    #[test]
    fn equal_parts_do_not_overflow_near_u64_max() {
        let (lo, hi) = equal_part(0, u64::MAX, 63, 64);
        assert_eq!(hi, u64::MAX);
        assert_eq!(lo, 63 * (1 << 58) - 1);
    }

    #[test]
    fn checked_sum_adds_and_refuses_overflow() {
        assert_eq!(checked_sum([1, 2, 3]), Ok(6));
        assert!(matches!(checked_sum([u64::MAX, 1]), Err(TaskError::Failed(_))));
    }

    #[test]
    fn run_locally_reports_invalid_input() {
        let err = run_locally(&noop::Noop, &noop::NoopInput { pieces: 0 }).unwrap_err();
        assert_eq!(err, TaskError::Invalid("--pieces must be between 1 and 1000000".to_string()));
    }
}
