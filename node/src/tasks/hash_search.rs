//! `hash-search`: finds a nonce such that SHA-256(data ‖ nonce as 8
//! big-endian bytes) starts with `difficulty` zero bits, a proof-of-work
//! style search.
//!
//! It is the task that ends early: the first piece to find a nonce is
//! conclusive and the mesh cancels the others. The search space holds 16
//! times the expected number of tries, so a miss is rare but possible.

use super::{check_pieces, equal_part, Rendered};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest `--difficulty`: its search space is 2^44 hashes already.
pub const MAX_DIFFICULTY: u32 = 40;

/// Hashes a piece computes between two looks at its cancellation flag.
const CANCEL_EVERY: u64 = 4096;

/// The `hash-search` task.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashSearch;

/// A `hash-search` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSearchInput {
    /// The data the nonce is appended to (its UTF-8 bytes).
    pub data: String,
    /// Leading zero bits the digest must have.
    pub difficulty: u32,
    /// Ranges of nonces the search is cut into.
    pub pieces: u32,
}

/// One piece: try the nonces in `[start, end)`, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashSearchPiece {
    /// The data the nonce is appended to.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Leading zero bits the digest must have.
    pub difficulty: u32,
    /// First nonce to try.
    pub start: u64,
    /// End of the nonces to try (excluded).
    pub end: u64,
}

/// The nonce found and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSearchSolution {
    /// The nonce.
    pub nonce: u64,
    /// SHA-256(data ‖ nonce), in lowercase hex.
    pub digest: String,
}

/// Find a nonce whose SHA-256 (after --data) has --difficulty BITS leading zero bits.
#[derive(clap::Args, Debug, Clone)]
pub struct HashSearchArgs {
    /// The data the nonce is appended to (its UTF-8 bytes).
    #[arg(long)]
    pub data: String,
    /// Leading zero bits the digest must have (1 to 40; each one doubles the work).
    #[arg(long, value_name = "BITS")]
    pub difficulty: u32,
    /// Number of ranges of nonces the search is cut into.
    #[arg(long, default_value_t = 64)]
    pub pieces: u32,
}

impl HashSearchArgs {
    /// The job these arguments ask for, or why they are not acceptable.
    pub fn input(&self) -> anyhow::Result<HashSearchInput> {
        let input = HashSearchInput { data: self.data.clone(), difficulty: self.difficulty, pieces: self.pieces };
        validate(&input).map_err(anyhow::Error::msg)?;
        Ok(input)
    }
}

/// The checks of [`HashSearchArgs::input`] and [`HashSearch::split`], in the
/// CLI's words.
fn validate(input: &HashSearchInput) -> Result<(), String> {
    check_pieces(input.pieces)?;
    if !(1..=MAX_DIFFICULTY).contains(&input.difficulty) {
        return Err(format!("--difficulty must be between 1 and {MAX_DIFFICULTY}"));
    }
    Ok(())
}

/// The result as `meshwork run hash-search` prints it.
pub fn render(input: &HashSearchInput, solution: &HashSearchSolution) -> anyhow::Result<Rendered> {
    Ok(Rendered {
        text: format!(
            "nonce {} gives {} ({} leading zero bits wanted)",
            solution.nonce, solution.digest, input.difficulty
        ),
        json: serde_json::json!({
            "task": HashSearch::NAME,
            "data": input.data,
            "difficulty": input.difficulty,
            "nonce": solution.nonce,
            "digest": solution.digest,
        }),
        file: None,
    })
}

impl Task for HashSearch {
    const NAME: &'static str = "hash-search";
    type Input = HashSearchInput;
    type Piece = HashSearchPiece;
    type Output = Option<u64>;
    type Result = HashSearchSolution;

    /// Cuts `[0, max(2^(difficulty+4), pieces))` into equal ranges: 16 times
    /// the expected tries, and never an empty piece.
    fn split(&self, input: &HashSearchInput) -> Result<Vec<HashSearchPiece>, TaskError> {
        validate(input).map_err(TaskError::Invalid)?;
        let n = u64::from(input.pieces);
        let space = (1u64 << (input.difficulty + 4)).max(n);
        let piece = |i| {
            let (start, end) = equal_part(0, space, i, n);
            HashSearchPiece { data: input.data.as_bytes().to_vec(), difficulty: input.difficulty, start, end }
        };
        Ok((0..n).map(piece).collect())
    }

    /// The first nonce of the range that meets the difficulty, if any.
    fn run(&self, piece: HashSearchPiece, cancel: &CancelFlag) -> Result<Option<u64>, TaskError> {
        let prefix = Sha256::new_with_prefix(&piece.data);
        let mut block = piece.start;
        while block < piece.end {
            cancel.check()?;
            let end = block.saturating_add(CANCEL_EVERY).min(piece.end);
            let hit = (block..end).find(|&nonce| leading_zero_bits(&finish(&prefix, nonce)) >= piece.difficulty);
            if hit.is_some() {
                return Ok(hit);
            }
            block = end;
        }
        Ok(None)
    }

    /// Takes the first nonce found, checking it: a worker's word is not proof.
    fn merge(&self, input: &HashSearchInput, outputs: Vec<Option<u64>>) -> Result<HashSearchSolution, TaskError> {
        let nonce = outputs.into_iter().flatten().next().ok_or_else(|| {
            TaskError::Failed(format!("no nonce with {} leading zero bits in the search space", input.difficulty))
        })?;
        let digest = finish(&Sha256::new_with_prefix(input.data.as_bytes()), nonce);
        let zeros = leading_zero_bits(&digest);
        if zeros < input.difficulty {
            return Err(TaskError::Failed(format!(
                "a worker returned nonce {nonce}, whose digest has only {zeros} leading zero bits"
            )));
        }
        Ok(HashSearchSolution { nonce, digest: hex(&digest) })
    }

    const EARLY_EXIT: bool = true;

    fn is_conclusive(&self, output: &Option<u64>) -> bool {
        output.is_some()
    }
}

/// SHA-256 of the data `prefix` has hashed, followed by `nonce` in big endian.
fn finish(prefix: &Sha256, nonce: u64) -> [u8; 32] {
    prefix.clone().chain_update(nonce.to_be_bytes()).finalize().into()
}

/// Zero bits at the start of `digest`.
fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut zeros = 0;
    for &byte in digest {
        zeros += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    zeros
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::run_locally;

    fn input(data: &str, difficulty: u32, pieces: u32) -> HashSearchInput {
        HashSearchInput { data: data.to_string(), difficulty, pieces }
    }

    /// SHA-256(data ‖ nonce), computed in one go, not through a prefix.
    fn digest_of(data: &str, nonce: u64) -> [u8; 32] {
        let mut message = data.as_bytes().to_vec();
        message.extend_from_slice(&nonce.to_be_bytes());
        Sha256::digest(&message).into()
    }

    #[test]
    fn the_nonce_found_meets_the_difficulty() {
        let solution = run_locally(&HashSearch, &input("meshwork", 8, 64)).unwrap();
        let digest = digest_of("meshwork", solution.nonce);
        assert_eq!(digest[0], 0, "nonce {} gives {digest:02x?}", solution.nonce);
        let expected_hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(solution.digest, expected_hex);
    }

    #[test]
    fn the_smallest_nonce_is_found_every_time() {
        let smallest = (0..).find(|&n| digest_of("abc", n)[0] == 0 && digest_of("abc", n)[1] < 0x40).unwrap();
        let first = run_locally(&HashSearch, &input("abc", 10, 1)).unwrap();
        let second = run_locally(&HashSearch, &input("abc", 10, 1)).unwrap();
        assert_eq!(first.nonce, smallest);
        assert_eq!(first, second);
        // Pieces scan in order and the search stops at the first hit, so many
        // pieces find the same nonce.
        assert_eq!(run_locally(&HashSearch, &input("abc", 10, 64)).unwrap(), first);
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x80, 0]), 0);
        assert_eq!(leading_zero_bits(&[0x01, 0xff]), 7);
        assert_eq!(leading_zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn hex_matches_the_known_digest_of_abc() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(hex(&digest), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn the_search_space_is_cut_without_gaps() {
        let pieces = HashSearch.split(&input("x", 4, 3)).unwrap();
        let ranges: Vec<_> = pieces.iter().map(|p| (p.start, p.end)).collect();
        assert_eq!(ranges, vec![(0, 85), (85, 170), (170, 256)]);
        let many = HashSearch.split(&input("x", 1, 100)).unwrap();
        assert!(many.iter().all(|p| p.end == p.start + 1), "100 pieces of a 32-nonce space still hold one each");
    }

    #[test]
    fn only_a_hit_is_conclusive() {
        assert!(HashSearch.is_conclusive(&Some(3)));
        assert!(!HashSearch.is_conclusive(&None));
    }

    #[test]
    fn merge_takes_the_first_hit_and_checks_it() {
        let job = input("abc", 8, 4);
        let bad = (0..).find(|&n| digest_of("abc", n)[0] != 0).unwrap();
        let merged = HashSearch.merge(&job, vec![None, Some(bad), None]);
        assert!(matches!(merged, Err(TaskError::Failed(_))), "{merged:?}");
        let good = (0..).find(|&n| digest_of("abc", n)[0] == 0).unwrap();
        assert_eq!(HashSearch.merge(&job, vec![None, Some(good), Some(0)]).unwrap().nonce, good);
        assert_eq!(
            HashSearch.merge(&job, vec![None, None]),
            Err(TaskError::Failed("no nonce with 8 leading zero bits in the search space".to_string()))
        );
    }

    #[test]
    fn a_cancelled_piece_stops() {
        let cancel = CancelFlag::new();
        cancel.cancel();
        let piece = HashSearchPiece { data: b"x".to_vec(), difficulty: 64, start: 0, end: u64::MAX };
        assert_eq!(HashSearch.run(piece, &cancel), Err(TaskError::Cancelled));
    }

    #[test]
    fn arguments_are_checked() {
        let args = |difficulty, pieces| {
            HashSearchArgs { data: "x".to_string(), difficulty, pieces }.input().map_err(|e| e.to_string())
        };
        assert_eq!(args(0, 1), Err("--difficulty must be between 1 and 40".to_string()));
        assert_eq!(args(41, 1), Err("--difficulty must be between 1 and 40".to_string()));
        assert_eq!(args(8, 0), Err("--pieces must be between 1 and 1000000".to_string()));
        assert_eq!(args(40, 64), Ok(input("x", 40, 64)));
    }
}
