//! `--halt`, as GNU parallel spells it: when to stop a run early.

use std::fmt;

/// When to stop: `now,fail=1`, `soon,fail=10%`, `now,success=1`, `never`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Halt {
    /// Count failures (`fail=`) or successes (`success=`).
    pub on: Count,
    /// How many, or what share of the pieces done.
    pub at: Threshold,
}

/// What a halt counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Pieces that failed for good (after `--retries`).
    Fail,
    /// Pieces that succeeded.
    Success,
}

/// How many trigger a halt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// This many.
    Number(u64),
    /// This percentage of the pieces done so far (at least 3 done, as in parallel).
    Percent(f64),
}

impl Halt {
    /// Parses `now,fail=N`, `soon,fail=N%`, `now,success=N` or `never`
    /// (`None`). `soon` stops like `now`: the pieces still running are
    /// cancelled, because a mesh has already sent the next ones out.
    pub fn parse(s: &str) -> Result<Option<Halt>, String> {
        if s == "never" {
            return Ok(None);
        }
        let bad = || format!("--halt takes now,fail=N, soon,fail=N%, now,success=N or never, not {s:?}");
        let (when, rule) = s.split_once(',').ok_or_else(bad)?;
        if when != "now" && when != "soon" {
            return Err(bad());
        }
        let (what, value) = rule.split_once('=').ok_or_else(bad)?;
        let on = match what {
            "fail" => Count::Fail,
            "success" => Count::Success,
            _ => return Err(bad()),
        };
        let at = match value.strip_suffix('%') {
            Some(p) => match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Threshold::Percent(p),
                _ => return Err(bad()),
            },
            None => match value.parse::<u64>() {
                Ok(n) if n > 0 => Threshold::Number(n),
                _ => return Err(bad()),
            },
        };
        Ok(Some(Halt { on, at }))
    }

    /// Should the run stop, with `failed` and `succeeded` pieces done?
    pub fn reached(&self, failed: u64, succeeded: u64) -> bool {
        let counted = match self.on {
            Count::Fail => failed,
            Count::Success => succeeded,
        };
        let done = failed + succeeded;
        match self.at {
            Threshold::Number(n) => counted >= n,
            Threshold::Percent(p) => done >= 3 && counted as f64 * 100.0 >= p * done as f64,
        }
    }
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.on {
            Count::Fail => "fail",
            Count::Success => "success",
        };
        match self.at {
            Threshold::Number(n) => write!(f, "{what}={n}"),
            Threshold::Percent(p) => write!(f, "{what}={p}%"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_parallel_takes_and_refuses_the_rest() {
        let h = |s| Halt::parse(s).unwrap().unwrap();
        assert_eq!(h("now,fail=1"), Halt { on: Count::Fail, at: Threshold::Number(1) });
        assert_eq!(h("soon,fail=10%"), Halt { on: Count::Fail, at: Threshold::Percent(10.0) });
        assert_eq!(h("now,success=2"), Halt { on: Count::Success, at: Threshold::Number(2) });
        assert_eq!(Halt::parse("never"), Ok(None));
        for bad in ["now", "later,fail=1", "now,fail=0", "now,fail=x", "now,oops=1", "now,fail=101%"] {
            assert!(Halt::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_and_shares_trigger_as_in_parallel() {
        let h = |s| Halt::parse(s).unwrap().unwrap();
        assert!(!h("now,fail=2").reached(1, 50));
        assert!(h("now,fail=2").reached(2, 0));
        assert!(h("now,success=1").reached(0, 1));
        // A share needs three pieces done.
        assert!(!h("soon,fail=10%").reached(1, 1));
        assert!(h("soon,fail=10%").reached(1, 9));
        assert!(!h("soon,fail=10%").reached(1, 10));
    }
}
