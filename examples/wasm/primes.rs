//! A meshwork wasm task in Rust: counts the primes in [lo, hi), like
//! `primes.c` (same contract, same kernel).
//!
//! Contract (WASI preview 1 command): the piece arrives on stdin as
//! "lo hi\n" (what `meshwork run wasm --range A..B --pieces N` sends), the
//! count goes to stdout as one decimal line; bad input exits with code 2.
//!
//! Built with Debian's rustc and its wasm32 standard library (with rustup:
//! `rustup target add wasm32-wasip1`, the target's name from Rust 1.78 on):
//!
//!   apt-get install -y rustc libstd-rust-dev-wasm32
//!   /usr/bin/rustc --target wasm32-wasi -C opt-level=3 -C strip=symbols -o primes-rs.wasm primes.rs

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut input = String::new();
    let range = std::io::stdin().read_to_string(&mut input).ok().and_then(|_| parse(&input));
    match range {
        Some((lo, hi)) => {
            println!("{}", count_primes(lo, hi));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("expected \"lo hi\" on stdin");
            ExitCode::from(2)
        }
    }
}

/// The two numbers of "lo hi".
fn parse(input: &str) -> Option<(u64, u64)> {
    let mut words = input.split_whitespace().map(str::parse::<u64>);
    Some((words.next()?.ok()?, words.next()?.ok()?))
}

/// The primes in [lo, hi): trial division of the odd numbers by the odd
/// primes up to the square root of `hi`, found by a sieve.
fn count_primes(lo: u64, hi: u64) -> u64 {
    let lo = lo.max(2);
    if hi <= lo {
        return 0;
    }
    let odd = odd_primes_up_to(isqrt(hi - 1));
    let two = u64::from(lo <= 2 && 2 < hi);
    let is_prime = |n: u64| odd.iter().take_while(|&&p| p * p <= n).all(|&p| n % p != 0);
    two + ((lo | 1)..hi).step_by(2).filter(|&n| is_prime(n)).count() as u64
}

/// The odd primes up to `r`, by the sieve of Eratosthenes.
fn odd_primes_up_to(r: u64) -> Vec<u64> {
    let r = r as usize;
    let mut composite = vec![false; r + 1];
    let mut i = 2;
    while i * i <= r {
        if !composite[i] {
            (i * i..=r).step_by(i).for_each(|m| composite[m] = true);
        }
        i += 1;
    }
    (3..=r).filter(|&p| !composite[p]).map(|p| p as u64).collect()
}

/// The integer square root of `n`.
fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}
