//! Time as the state machine sees it: a number the driver hands in.
//!
//! The machine never reads a clock. The node passes microseconds since it
//! started; the simulator passes virtual time. Both are a [`Time`].

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in microseconds since the driver's epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The driver's epoch.
    pub const ZERO: Time = Time(0);

    /// A time `us` microseconds after the epoch.
    pub const fn from_micros(us: u64) -> Time {
        Time(us)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.as_micros().min(u64::MAX as u128) as u64))
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, earlier: Time) -> Duration {
        self.since(earlier)
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}s", self.0 as f64 / 1e6)
    }
}

/// A duration as people read it in a message or a summary: `340 ms`,
/// `10.0 s`, `2 min 5 s`, `1 h 0 min` (not `10.046471s`).
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 0.01 {
        format!("{:.1} ms", secs * 1e3)
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else if secs < 59.95 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        let s = secs.round() as u64;
        format!("{} min {} s", s / 60, s % 60)
    } else {
        let m = (secs / 60.0).round() as u64;
        format!("{} h {} min", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let ms = Duration::from_millis;
        assert_eq!(human(Duration::from_micros(400)), "0.4 ms");
        assert_eq!(human(ms(340)), "340 ms");
        assert_eq!(human(Duration::from_micros(10_046_471)), "10.0 s");
        assert_eq!(human(ms(59_960)), "1 min 0 s");
        assert_eq!(human(ms(125_000)), "2 min 5 s");
        assert_eq!(human(Duration::from_secs(3600)), "1 h 0 min");
    }
}
