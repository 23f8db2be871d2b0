//! The C guests of `examples/wasm/`, built with a real wasm32-wasi compiler
//! and run piece by piece in the node's sandbox, with the reducers merging
//! their outputs: the prime counter finds the built-in `primes` count, the
//! word-frequency counter the built-in `wordcount` counts.

use meshwork::tasks::run_locally;
use meshwork::tasks::wordcount::{Wordcount, WordcountInput};
use meshwork::wasm::{Guest, Limits, PieceCall, Sandbox};
use meshwork_protocol::task::CancelFlag;
use meshwork_tests::guests::{build_c, scratch};
use std::path::PathBuf;

struct Guests {
    sandbox: Sandbox,
}

impl Guests {
    fn new() -> Guests {
        Guests { sandbox: Sandbox::new(Limits::default(), 1).unwrap() }
    }

    fn compile(&self, name: &str) -> Guest {
        let dir = scratch(&format!("guest-{name}"));
        let bytes = std::fs::read(build_c(name, &dir)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        self.sandbox.compile(&bytes).unwrap()
    }

    /// Runs `guest` on every piece (in order) and returns their outputs.
    fn pieces(&self, guest: &Guest, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        (inputs.iter().enumerate())
            .map(|(i, stdin)| {
                let call = PieceCall { stdin, piece: i as u32, pieces: inputs.len() as u32, ..PieceCall::default() };
                self.sandbox.run(guest, &call, &CancelFlag::new()).unwrap()
            })
            .collect()
    }

    /// Runs the reducer on the outputs, concatenated in piece order.
    fn reduce(&self, reducer: &Guest, outputs: &[Vec<u8>]) -> String {
        let all = outputs.concat();
        let call = PieceCall { stdin: &all, ..PieceCall::default() };
        String::from_utf8(self.sandbox.run(reducer, &call, &CancelFlag::new()).unwrap()).unwrap()
    }
}

#[test]
fn the_c_prime_counter_finds_the_primes_below_twenty_million_in_pieces() {
    let guests = Guests::new();
    let (primes, sum) = (guests.compile("primes"), guests.compile("sum"));
    let step = 20_000_000 / 16;
    let ranges: Vec<Vec<u8>> = (0..16).map(|i| format!("{} {}\n", i * step, (i + 1) * step).into_bytes()).collect();
    let outputs = guests.pieces(&primes, &ranges);
    // Each piece its own count: primes thin out, so later ranges hold fewer.
    let counts: Vec<u64> = outputs.iter().map(|o| String::from_utf8_lossy(o).trim().parse().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] > w[1]), "{counts:?}");
    assert_eq!(guests.reduce(&sum, &outputs).trim(), "1270607");
}

#[test]
fn the_c_word_counter_agrees_with_the_built_in_wordcount() {
    let guests = Guests::new();
    let (wordfreq, merge) = (guests.compile("wordfreq"), guests.compile("merge_counts"));
    let text = sample_text();
    let file = write_temp("words.txt", &text);
    // Cut at whitespace into 7 pieces, as `--lines` would.
    let lines: Vec<&str> = text.lines().collect();
    let inputs: Vec<Vec<u8>> =
        lines.chunks(lines.len().div_ceil(7)).map(|c| (c.join("\n") + "\n").into_bytes()).collect();
    let merged = guests.reduce(&merge, &guests.pieces(&wordfreq, &inputs));
    let counts: Vec<(String, u64)> = merged
        .lines()
        .map(|l| {
            let (n, w) = l.split_once(' ').unwrap();
            (w.to_string(), n.parse().unwrap())
        })
        .collect();
    let native = run_locally(&Wordcount, &WordcountInput { file: file.clone(), top: usize::MAX, pieces: 4 }).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(counts.len() as u64, native.distinct);
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), native.total_words);
    assert_eq!(counts, native.top);
}

/// Deterministic ASCII text: words of a small vocabulary in skewed
/// frequencies, mixed case, punctuation and digits.
fn sample_text() -> String {
    let vocab = ["the", "Mesh", "node", "piece", "job", "wasm", "guest", "x86", "peer", "Load", "merge", "a1b2"];
    let mut state = 7u64;
    let mut text = String::new();
    for line in 0..400 {
        for _ in 0..(5 + line % 9) {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (state >> 33) as usize;
            // Two draws in three from the first four words: a skewed count.
            let word = if r.is_multiple_of(3) { r / 3 % vocab.len() } else { r % 4 };
            text.push_str(vocab[word]);
            text.push_str(if r.is_multiple_of(7) { ", " } else { " " });
        }
        text.push_str(".\n");
    }
    text
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("meshwork-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}
