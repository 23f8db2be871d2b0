//! `primes`: counts the primes in `[from, to)`.
//!
//! The kernel is, step for step, `count_primes_range` of the Python
//! reference the benchmarks compare meshwork with: trial division of each odd
//! number by the odd primes up to its square root, those primes found per
//! piece by a small sieve. It is deliberately not the fastest way to count
//! primes: the benchmark compares systems running the same work.

use super::{check_pieces, checked_sum, equal_part, Rendered};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use serde::{Deserialize, Serialize};

/// Largest `--to`. Each piece sieves up to `isqrt(hi)` (16 MiB here), and a
/// worker must not be made to allocate more than that by a peer's piece.
pub const MAX_TO: u64 = 1 << 48;

/// Numbers a piece scans between two looks at its cancellation flag (even,
/// so every block starts on an odd number).
const CANCEL_EVERY: u64 = 1 << 16;

/// The `primes` task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Primes;

/// A `primes` job: count the primes in `[from, to)` in `pieces` ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimesInput {
    /// First number of the range.
    pub from: u64,
    /// End of the range (excluded).
    pub to: u64,
    /// Ranges the job is cut into (fewer if the range has fewer numbers).
    pub pieces: u32,
}

/// One piece: count the primes in `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimesPiece {
    /// First number of the piece's range.
    pub lo: u64,
    /// End of the piece's range (excluded).
    pub hi: u64,
}

/// Count the primes in [--from, --to) by trial division.
#[derive(clap::Args, Debug, Clone)]
pub struct PrimesArgs {
    /// First number of the range.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// End of the range (excluded).
    #[arg(long)]
    pub to: u64,
    /// Number of equal ranges the job is cut into.
    #[arg(long, default_value_t = 64)]
    pub pieces: u32,
}

impl PrimesArgs {
    /// The job these arguments ask for, or why they are not acceptable.
    pub fn input(&self) -> anyhow::Result<PrimesInput> {
        let input = PrimesInput { from: self.from, to: self.to, pieces: self.pieces };
        validate(&input).map_err(anyhow::Error::msg)?;
        Ok(input)
    }
}

/// The checks of [`PrimesArgs::input`] and [`Primes::split`], in the CLI's words.
fn validate(input: &PrimesInput) -> Result<(), String> {
    check_pieces(input.pieces)?;
    if input.to <= input.from {
        return Err("--to must be greater than --from".to_string());
    }
    if input.to > MAX_TO {
        return Err(format!("--to must be at most {MAX_TO}"));
    }
    Ok(())
}

/// The result as `meshwork run primes` prints it.
pub fn render(input: &PrimesInput, count: &u64) -> anyhow::Result<Rendered> {
    Ok(Rendered {
        text: format!("{count} primes in [{}, {})", input.from, input.to),
        json: serde_json::json!({ "task": Primes::NAME, "from": input.from, "to": input.to, "count": count }),
        file: None,
    })
}

impl Task for Primes {
    const NAME: &'static str = "primes";
    type Input = PrimesInput;
    type Piece = PrimesPiece;
    type Output = u64;
    type Result = u64;

    /// Cuts the range into equal ranges, at most one per number so that no
    /// piece travels for nothing.
    fn split(&self, input: &PrimesInput) -> Result<Vec<PrimesPiece>, TaskError> {
        validate(input).map_err(TaskError::Invalid)?;
        let n = u64::from(input.pieces).min(input.to - input.from);
        let piece = |i| {
            let (lo, hi) = equal_part(input.from, input.to, i, n);
            PrimesPiece { lo, hi }
        };
        Ok((0..n).map(piece).collect())
    }

    fn run(&self, piece: PrimesPiece, cancel: &CancelFlag) -> Result<u64, TaskError> {
        if piece.hi > MAX_TO {
            return Err(TaskError::Failed(format!("piece ends at {}, beyond the largest --to {MAX_TO}", piece.hi)));
        }
        count_primes(piece.lo, piece.hi, cancel)
    }

    fn merge(&self, _input: &PrimesInput, counts: Vec<u64>) -> Result<u64, TaskError> {
        checked_sum(counts)
    }
}

/// Counts the primes in `[lo, hi)` exactly as the Python reference does.
/// `hi` must be at most [`MAX_TO`] (the sieve is `isqrt(hi)` bytes).
fn count_primes(lo: u64, hi: u64, cancel: &CancelFlag) -> Result<u64, TaskError> {
    let lo = lo.max(2);
    if hi <= lo {
        return Ok(0);
    }
    let odd_primes = odd_primes_up_to((hi - 1).isqrt());
    let mut count = u64::from(lo <= 2 && 2 < hi);
    let mut block = lo | 1;
    while block < hi {
        cancel.check()?;
        let end = block.saturating_add(CANCEL_EVERY).min(hi);
        count += (block..end).step_by(2).filter(|&n| is_odd_prime(n, &odd_primes)).count() as u64;
        block = end;
    }
    Ok(count)
}

/// Whether the odd number `n` is prime, given the odd primes up to at least
/// `isqrt(n)`: it is, unless one of them up to its square root divides it.
fn is_odd_prime(n: u64, odd_primes: &[u64]) -> bool {
    for &p in odd_primes {
        if p * p > n {
            return true;
        }
        if n.is_multiple_of(p) {
            return false;
        }
    }
    true
}

/// The odd primes up to `r`, by the sieve of Eratosthenes.
fn odd_primes_up_to(r: u64) -> Vec<u64> {
    let r = r as usize;
    let mut is_prime = vec![true; r + 1];
    for i in 2..=r.isqrt() {
        if is_prime[i] {
            for multiple in (i * i..=r).step_by(i) {
                is_prime[multiple] = false;
            }
        }
    }
    (3..=r).filter(|&p| is_prime[p]).map(|p| p as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::run_locally;

    fn count(from: u64, to: u64, pieces: u32) -> u64 {
        run_locally(&Primes, &PrimesInput { from, to, pieces }).unwrap()
    }

    fn naive_is_prime(n: u64) -> bool {
        n >= 2 && (2..n).all(|d| !n.is_multiple_of(d))
    }

    #[test]
    fn counts_match_known_values_of_pi() {
        assert_eq!(count(0, 100_000, 64), 9_592);
        assert_eq!(count(0, 1_000_000, 64), 78_498);
        assert_eq!(count(0, 2_000_000, 64), 148_933);
    }

    #[test]
    fn counts_a_small_range() {
        assert_eq!(count(10, 20, 64), 4);
    }

    #[test]
    fn every_small_range_matches_a_naive_count() {
        let cancel = CancelFlag::new();
        for lo in 0..60 {
            for hi in lo..60 {
                let expected = (lo..hi).filter(|&n| naive_is_prime(n)).count() as u64;
                assert_eq!(count_primes(lo, hi, &cancel), Ok(expected), "[{lo}, {hi})");
            }
        }
    }

    #[test]
    fn piece_count_does_not_change_the_result() {
        assert_eq!(count(1_000, 300_000, 1), count(1_000, 300_000, 64));
        assert_eq!(count(1_000, 300_000, 1), 25_997 - 168); // pi(300000) - pi(1000)
    }

    #[test]
    fn blocks_between_cancel_checks_cover_everything() {
        // Spans several CANCEL_EVERY blocks with primes near block edges.
        let lo = 3 * CANCEL_EVERY - 10;
        let hi = 3 * CANCEL_EVERY + 10;
        let expected = (lo..hi).filter(|&n| naive_is_prime(n)).count() as u64;
        assert_eq!(count_primes(lo, hi, &CancelFlag::new()), Ok(expected));
    }

    #[test]
    fn pieces_tile_the_range_and_never_outnumber_it() {
        let pieces = Primes.split(&PrimesInput { from: 5, to: 105, pieces: 7 }).unwrap();
        assert_eq!(pieces.len(), 7);
        assert_eq!(pieces[0].lo, 5);
        assert_eq!(pieces[6].hi, 105);
        assert!(pieces.windows(2).all(|w| w[0].hi == w[1].lo));
        assert_eq!(Primes.split(&PrimesInput { from: 0, to: 3, pieces: 64 }).unwrap().len(), 3);
    }

    #[test]
    fn a_cancelled_piece_stops() {
        let cancel = CancelFlag::new();
        cancel.cancel();
        assert_eq!(Primes.run(PrimesPiece { lo: 0, hi: 1_000_000 }, &cancel), Err(TaskError::Cancelled));
    }

    #[test]
    fn a_piece_beyond_the_limit_is_refused() {
        let piece = PrimesPiece { lo: u64::MAX - 10, hi: u64::MAX };
        assert!(matches!(Primes.run(piece, &CancelFlag::new()), Err(TaskError::Failed(_))));
    }

    #[test]
    fn arguments_are_checked() {
        let args = |from, to, pieces| PrimesArgs { from, to, pieces }.input().map_err(|e| e.to_string());
        assert_eq!(args(5, 5, 64), Err("--to must be greater than --from".to_string()));
        assert_eq!(args(0, 10, 0), Err("--pieces must be between 1 and 1000000".to_string()));
        assert_eq!(args(0, MAX_TO + 1, 1), Err(format!("--to must be at most {MAX_TO}")));
        assert_eq!(args(0, 10, 2), Ok(PrimesInput { from: 0, to: 10, pieces: 2 }));
    }

    #[test]
    fn render_says_how_many() {
        let rendered = render(&PrimesInput { from: 10, to: 20, pieces: 1 }, &4).unwrap();
        assert_eq!(rendered.text, "4 primes in [10, 20)");
        assert_eq!(rendered.json["count"], 4);
    }
}
