//! Scripted faults (`--scenario FILE`): one event per line, e.g.
//!
//! ```text
//! # time  event      nodes
//! 3s      crash      17
//! 3s      hang       20-22,40     # SIGSTOP: silent, connections stay
//! 4s      resume     20-22,40
//! 5s      partition  0-499|500-999
//! 8s      heal
//! 6s      leave      12           # graceful: shutdown, finish, go
//! 7s      join       3            # three new nodes
//! ```
//!
//! Node sets are numbers and ranges joined by commas. In a partition,
//! nodes no group names (and nodes that join later) are in the first group.

use crate::dist::parse_duration;
use std::time::Duration;

/// A scenario line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScenarioError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What happens at a scripted time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The nodes are killed: their connections close.
    Crash(Vec<u32>),
    /// The nodes stop (SIGSTOP): nothing answers, connections stay up.
    Hang(Vec<u32>),
    /// Hung nodes continue (SIGCONT).
    Resume(Vec<u32>),
    /// The nodes shut down gracefully and leave once their pieces are done.
    Leave(Vec<u32>),
    /// This many fresh nodes join.
    Join(u32),
    /// Groups that cannot exchange messages (connections stay up).
    Partition(Vec<Vec<u32>>),
    /// The partition ends.
    Heal,
}

/// One scripted event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scripted {
    /// When (virtual time since the start).
    pub at: Duration,
    /// What.
    pub fault: Fault,
    /// Its line in the file (for errors found while running).
    pub line: usize,
}

/// Reads a scenario; `submitters` may not be crashed, hung or made to leave.
pub fn parse(text: &str, submitters: u32) -> Result<Vec<Scripted>, ScenarioError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let err = |message: String| ScenarioError { line, message };
        let mut words = content.split_whitespace();
        let (Some(time), Some(verb)) = (words.next(), words.next()) else {
            return Err(err(format!("{content:?}: expected TIME EVENT [NODES], e.g. \"3s crash 17\"")));
        };
        let at = parse_duration(time).map_err(|e| err(e.to_string()))?;
        let arg = words.next();
        if let Some(extra) = words.next() {
            return Err(err(format!("unexpected {extra:?} after the event's argument")));
        }
        let need = |what: &str| arg.ok_or_else(|| err(format!("{verb} needs {what}")));
        let nodes = |what: &str| -> Result<Vec<u32>, ScenarioError> {
            let set = node_set(need(what)?).map_err(err)?;
            if let Some(s) = set.iter().find(|n| **n < submitters) {
                return Err(err(format!("node {s} is a submitter; submitters do not fail (nodes 0..{submitters})")));
            }
            Ok(set)
        };
        let fault = match verb {
            "crash" => Fault::Crash(nodes("nodes")?),
            "hang" => Fault::Hang(nodes("nodes")?),
            "resume" => Fault::Resume(nodes("nodes")?),
            "leave" => Fault::Leave(nodes("nodes")?),
            "join" => {
                let n = need("a count")?;
                Fault::Join(n.parse().map_err(|_| err(format!("{n:?} is not a count of nodes")))?)
            }
            "partition" => {
                let groups: Result<Vec<Vec<u32>>, String> = need("groups")?.split('|').map(node_set).collect();
                let groups = groups.map_err(err)?;
                if groups.len() < 2 {
                    return Err(err("a partition needs at least two groups, e.g. 0-9|10-19".into()));
                }
                Fault::Partition(groups)
            }
            "heal" => {
                if let Some(a) = arg {
                    return Err(err(format!("heal takes no argument, got {a:?}")));
                }
                Fault::Heal
            }
            other => {
                return Err(err(format!(
                    "unknown event {other:?} (expected crash, hang, resume, leave, join, partition or heal)"
                )))
            }
        };
        out.push(Scripted { at, fault, line });
    }
    out.sort_by_key(|s| s.at);
    Ok(out)
}

/// Parses `3,5-9,12` into node numbers, in order, without repeats.
fn node_set(s: &str) -> Result<Vec<u32>, String> {
    let num = |t: &str| t.trim().parse::<u32>().map_err(|_| format!("{t:?} is not a node number"));
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{part:?}: range runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_event_and_skips_comments() {
        let text = "# a comment\n3s crash 17\n\n3s hang 20-22,40 # trailing\n4s resume 20\n5s partition 0-4|5-9\n\
                    8s heal\n6s leave 12\n7s join 3\n";
        let s = parse(text, 1).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].fault, Fault::Crash(vec![17]));
        assert_eq!(s[1].fault, Fault::Hang(vec![20, 21, 22, 40]));
        assert_eq!(s[3].fault, Fault::Partition(vec![(0..5).collect(), (5..10).collect()]));
        assert_eq!(s.last().unwrap().fault, Fault::Heal, "sorted by time");
        assert_eq!(s[0].line, 2);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("1s crash 3\n2s crsh 4\n", 1).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("line 2: unknown event \"crsh\""), "{e}");
        assert!(parse("1s crash 0", 1).unwrap_err().message.contains("submitter"));
        assert!(parse("1 crash 3", 1).unwrap_err().message.contains("unit"));
        assert!(parse("1s partition 0-4", 1).unwrap_err().message.contains("two groups"));
        assert!(parse("1s join x", 1).unwrap_err().message.contains("count"));
        assert!(parse("1s crash", 1).unwrap_err().message.contains("needs nodes"));
    }
}
