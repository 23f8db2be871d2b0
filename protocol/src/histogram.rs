//! A small log-scale histogram of durations: constant memory whatever the
//! number of samples, quantiles within about 10%. Used for the median piece
//! time that triggers speculative backups.

use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: u32 = 8;
const BUCKETS: usize = 64 * SUB as usize;

/// Durations in microseconds, bucketed by their logarithm.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { counts: Box::new([0; BUCKETS]), total: 0 }
    }
}

impl Histogram {
    /// Adds a sample.
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        self.counts[bucket(us)] += 1;
        self.total += 1;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0.0..=1.0), as its bucket's upper bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c as u64;
            if seen >= rank {
                return Some(Duration::from_micros(upper(i)));
            }
        }
        None
    }
}

fn bucket(us: u64) -> usize {
    let exp = 63 - us.leading_zeros();
    let frac = if exp >= 3 { (us >> (exp - 3)) & (SUB as u64 - 1) } else { (us << (3 - exp)) & (SUB as u64 - 1) };
    (exp * SUB + frac as u32) as usize
}

fn upper(i: usize) -> u64 {
    let exp = i as u32 / SUB;
    let frac = i as u64 % SUB as u64;
    let base = 1u64 << exp;
    base + ((frac + 1) * base) / SUB as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_close() {
        let mut h = Histogram::default();
        for ms in 1..=101u64 {
            h.record(Duration::from_millis(ms));
        }
        let m = h.quantile(0.5).unwrap().as_micros() as f64;
        assert!((m - 51_000.0).abs() / 51_000.0 < 0.15, "median {m}");
        assert!(h.quantile(1.0).unwrap() >= Duration::from_millis(101));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
