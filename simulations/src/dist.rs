//! Random distributions given on the command line (`--piece-cost`,
//! `--latency`, `--speeds`) and the durations and fractions of the other
//! options: parsing with one-line errors, sampling from the run's one RNG,
//! and printing back in the same syntax (for the repro command).
//!
//! Syntax: `fixed:X`, `uniform:A..B`, `lognormal:MEDIAN,SIGMA`, `exp:MEAN`.
//! Durations need a unit (`us`, `ms`, `s`); speeds are plain numbers.

use rand::Rng;
use std::time::Duration;

/// Why a distribution, duration or fraction did not parse.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// Not one of the known shapes.
    #[error("{0:?}: expected fixed:X, uniform:A..B, lognormal:MEDIAN,SIGMA or exp:MEAN")]
    Shape(String),
    /// A duration without a unit.
    #[error("{0:?}: a duration needs a unit: us, ms or s (e.g. 10ms)")]
    Unit(String),
    /// Not a number.
    #[error("{0:?} is not a number")]
    Number(String),
    /// A number outside what the option allows.
    #[error("{0:?}: {1}")]
    Range(String, &'static str),
}

/// What a distribution's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Durations, held in microseconds.
    Duration,
    /// Plain numbers (speed factors).
    Number,
}

/// The shape of a distribution, in base units (µs for durations).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// Always this value.
    Fixed(f64),
    /// Uniform between the two bounds.
    Uniform(f64, f64),
    /// Log-normal: `median × e^(sigma × N(0,1))`.
    LogNormal {
        /// The median.
        median: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Exponential with this mean.
    Exp(f64),
}

/// A distribution of durations or of numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dist {
    /// Its shape.
    pub shape: Shape,
    /// What its values are.
    pub kind: Kind,
}

impl Dist {
    /// Parses a distribution of durations (`uniform:1ms..100ms`).
    pub fn parse_duration(s: &str) -> Result<Dist, DistError> {
        Dist::parse(s, Kind::Duration)
    }

    /// Parses a distribution of positive numbers (`lognormal:1,0.3`).
    pub fn parse_number(s: &str) -> Result<Dist, DistError> {
        let d = Dist::parse(s, Kind::Number)?;
        if d.min() <= 0.0 {
            return Err(DistError::Range(s.to_string(), "values must be above 0"));
        }
        Ok(d)
    }

    fn parse(s: &str, kind: Kind) -> Result<Dist, DistError> {
        let value = |v: &str| match kind {
            Kind::Duration => parse_micros(v.trim()),
            Kind::Number => parse_number(v.trim()),
        };
        let (name, rest) = s.split_once(':').ok_or_else(|| DistError::Shape(s.to_string()))?;
        let shape = match name.trim() {
            "fixed" => Shape::Fixed(value(rest)?),
            "uniform" => {
                let (a, b) = rest.split_once("..").ok_or_else(|| DistError::Shape(s.to_string()))?;
                let (a, b) = (value(a)?, value(b)?);
                if a > b {
                    return Err(DistError::Range(s.to_string(), "the lower bound is above the upper one"));
                }
                Shape::Uniform(a, b)
            }
            "lognormal" => {
                let (m, sigma) = rest.split_once(',').ok_or_else(|| DistError::Shape(s.to_string()))?;
                let sigma = parse_number(sigma.trim())?;
                if sigma < 0.0 {
                    return Err(DistError::Range(s.to_string(), "sigma must not be negative"));
                }
                Shape::LogNormal { median: value(m)?, sigma }
            }
            "exp" => Shape::Exp(value(rest)?),
            _ => return Err(DistError::Shape(s.to_string())),
        };
        let d = Dist { shape, kind };
        if d.min() < 0.0 {
            return Err(DistError::Range(s.to_string(), "values must not be negative"));
        }
        Ok(d)
    }

    /// A sample (µs for durations; never negative).
    pub fn sample<R: Rng>(&self, rng: &mut R) -> f64 {
        let v = match self.shape {
            Shape::Fixed(x) => x,
            Shape::Uniform(a, b) => a + (b - a) * rng.random::<f64>(),
            Shape::LogNormal { median, sigma } => median * (sigma * normal(rng)).exp(),
            Shape::Exp(mean) => -mean * (1.0 - rng.random::<f64>()).ln(),
        };
        v.max(0.0)
    }

    /// A sample of a duration distribution, in whole microseconds.
    pub fn sample_micros<R: Rng>(&self, rng: &mut R) -> u64 {
        self.sample(rng).round() as u64
    }

    /// The smallest value the shape's parameters mention (for validation).
    fn min(&self) -> f64 {
        match self.shape {
            Shape::Fixed(x) | Shape::Exp(x) | Shape::Uniform(x, _) => x,
            Shape::LogNormal { median, .. } => median,
        }
    }
}

impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |x: f64| match self.kind {
            Kind::Duration => format_micros(x),
            Kind::Number => format!("{x}"),
        };
        match self.shape {
            Shape::Fixed(x) => write!(f, "fixed:{}", v(x)),
            Shape::Uniform(a, b) => write!(f, "uniform:{}..{}", v(a), v(b)),
            Shape::LogNormal { median, sigma } => write!(f, "lognormal:{},{sigma}", v(median)),
            Shape::Exp(m) => write!(f, "exp:{}", v(m)),
        }
    }
}

/// A standard normal sample (Box-Muller).
fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn parse_number(s: &str) -> Result<f64, DistError> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(DistError::Number(s.to_string())),
    }
}

/// Parses `10ms`, `1.5s`, `250us` into microseconds.
fn parse_micros(s: &str) -> Result<f64, DistError> {
    let units = [("us", 1.0), ("µs", 1.0), ("ms", 1e3), ("s", 1e6)];
    let (num, scale) = units
        .iter()
        .find_map(|(u, scale)| s.strip_suffix(u).map(|n| (n, *scale)))
        .ok_or_else(|| DistError::Unit(s.to_string()))?;
    Ok(parse_number(num.trim())? * scale)
}

/// Prints microseconds in the largest unit that keeps them exact.
pub(crate) fn format_micros(us: f64) -> String {
    if us != 0.0 && us % 1e6 == 0.0 {
        format!("{}s", us / 1e6)
    } else if us != 0.0 && us % 1e3 == 0.0 {
        format!("{}ms", us / 1e3)
    } else {
        format!("{us}us")
    }
}

/// Parses one duration (`500ms`, `1s`), for clap.
pub fn parse_duration(s: &str) -> Result<Duration, DistError> {
    let us = parse_micros(s.trim())?;
    if us < 0.0 {
        return Err(DistError::Range(s.to_string(), "must not be negative"));
    }
    Ok(Duration::from_micros(us.round() as u64))
}

/// Prints a duration as [`parse_duration`] reads it.
pub(crate) fn format_duration(d: Duration) -> String {
    format_micros(d.as_micros() as f64)
}

/// Parses a fraction: `0.05` or `5%`, between 0 and 1, for clap.
pub fn parse_fraction(s: &str) -> Result<f64, DistError> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => parse_number(p.trim())? / 100.0,
        None => parse_number(t)?,
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(DistError::Range(s.to_string(), "must be between 0 and 1 (or 0% and 100%)"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn parses_and_prints_back() {
        for s in ["fixed:10ms", "uniform:1ms..100ms", "lognormal:10ms,0.5", "exp:250us", "fixed:1s"] {
            assert_eq!(Dist::parse_duration(s).unwrap().to_string(), s);
        }
        for s in ["fixed:1", "uniform:0.5..2", "lognormal:1,0.3"] {
            assert_eq!(Dist::parse_number(s).unwrap().to_string(), s);
        }
        assert_eq!(Dist::parse_duration("fixed:1.5s").unwrap().shape, Shape::Fixed(1_500_000.0));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(matches!(Dist::parse_duration("fixed:10"), Err(DistError::Unit(_))));
        assert!(matches!(Dist::parse_duration("gauss:10ms"), Err(DistError::Shape(_))));
        assert!(matches!(Dist::parse_duration("uniform:5ms..1ms"), Err(DistError::Range(..))));
        assert!(matches!(Dist::parse_number("fixed:0"), Err(DistError::Range(..))));
        assert!(matches!(Dist::parse_number("fixed:x"), Err(DistError::Number(_))));
        assert!(Dist::parse_duration("fixed:10").unwrap_err().to_string().contains("needs a unit"));
        assert_eq!(parse_fraction("5%"), Ok(0.05));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("150%").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn samples_stay_in_range_and_center() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let u = Dist::parse_duration("uniform:1ms..3ms").unwrap();
        let mean = (0..10_000).map(|_| u.sample(&mut rng)).inspect(|v| assert!((1e3..=3e3).contains(v))).sum::<f64>()
            / 10_000.0;
        assert!((mean - 2e3).abs() < 50.0, "{mean}");
        let ln = Dist::parse_number("lognormal:1,0.5").unwrap();
        let mut v: Vec<f64> = (0..10_001).map(|_| ln.sample(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        assert!((v[5_000] - 1.0).abs() < 0.05, "median {}", v[5_000]);
    }
}
