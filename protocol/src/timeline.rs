//! A job's timeline: each copy of each piece as a span on the peer that
//! ran it, from when it was placed there to how that copy ended. Built
//! here, from the job's [`JobEvent`]s and the times the driver passes in,
//! so that the node (its dashboard) and the simulator (`simulate --serve`)
//! draw a real run and a simulated one from the same data.
//!
//! The builder needs [`JobEvent::Placed`] (a span starts: the job's spec
//! sets `explain`) and [`JobEvent::Output`] (a copy won: `stream`); spans
//! end with a retry, with the winning copy of their piece, or with the job.

use crate::ids::PeerKey;
use crate::job::{JobError, JobEvent};
use crate::time::Time;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// How one copy of a piece on one peer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still running.
    Running,
    /// The piece's first copy, done.
    Done,
    /// A speculative backup of a straggler, done before the original.
    BackupWon,
    /// Another copy of the piece finished first; this one was dropped.
    Overtaken,
    /// It failed here (an error, the deadline, the peer went down) and the
    /// piece went elsewhere.
    Retried,
    /// The piece's last failure: the job failed with it.
    Failed,
    /// The job ended (cancelled, failed elsewhere, or done early) while it ran.
    Cancelled,
}

/// One copy of one piece on one peer. Times are µs since the job started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SpanRow", from = "SpanRow")]
pub struct Span {
    /// The piece.
    pub piece: u32,
    /// The peer, as an index into [`Timeline::peers`].
    pub peer: u32,
    /// When it was placed there.
    pub start_us: u64,
    /// When it ended (for a running one: when the timeline was taken).
    pub end_us: u64,
    /// How.
    pub outcome: Outcome,
    /// A speculative copy of a straggler.
    pub backup: bool,
}

/// A span as JSON has it: `[piece, peer, start_us, end_us, outcome, backup]`.
/// A row, not an object: a 100,000-piece job's timeline is a third the size.
#[derive(Serialize, Deserialize)]
struct SpanRow(u32, u32, u64, u64, Outcome, bool);

impl From<Span> for SpanRow {
    fn from(s: Span) -> SpanRow {
        SpanRow(s.piece, s.peer, s.start_us, s.end_us, s.outcome, s.backup)
    }
}

impl From<SpanRow> for Span {
    fn from(SpanRow(piece, peer, start_us, end_us, outcome, backup): SpanRow) -> Span {
        Span { piece, peer, start_us, end_us, outcome, backup }
    }
}

/// A job's timeline at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Pieces in the job.
    pub pieces: u32,
    /// Pieces done.
    pub done: u32,
    /// µs from the start to when this timeline was taken, or to the job's end.
    pub elapsed_us: u64,
    /// The job ended.
    pub finished: bool,
    /// The peers that ran pieces, named by the driver (spans index them).
    pub peers: Vec<String>,
    /// Every copy of every piece, in the order they were placed.
    pub spans: Vec<Span>,
}

impl Timeline {
    /// Spans of each outcome, for a summary.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.spans.iter().filter(|s| s.outcome == outcome).count()
    }
}

/// Builds a [`Timeline`] from a job's events. Sans-IO: the driver passes
/// each event with the time it happened, and names peers.
#[derive(Clone, Debug)]
pub struct TimelineBuilder {
    start: Time,
    timeline: Timeline,
    peer_index: FxHashMap<PeerKey, u32>,
    /// Open spans of each piece (usually one; two while a backup runs).
    open: FxHashMap<u32, Vec<usize>>,
}

impl TimelineBuilder {
    /// A timeline of a job of `pieces` pieces submitted at `start`.
    pub fn new(pieces: u32, start: Time) -> TimelineBuilder {
        TimelineBuilder {
            start,
            timeline: Timeline { pieces, ..Timeline::default() },
            peer_index: FxHashMap::default(),
            open: FxHashMap::default(),
        }
    }

    /// Follows `event`, which happened at `now`; `name` names a peer the
    /// first time it appears.
    pub fn event(&mut self, event: &JobEvent, now: Time, name: &dyn Fn(PeerKey) -> String) {
        if self.timeline.finished {
            return;
        }
        let t = now.since(self.start).as_micros() as u64;
        self.timeline.elapsed_us = self.timeline.elapsed_us.max(t);
        match event {
            JobEvent::Placed { peer, pieces, backup, .. } => {
                let peer = self.peer(*peer, name);
                for &piece in pieces {
                    self.open.entry(piece).or_default().push(self.timeline.spans.len());
                    self.timeline.spans.push(Span {
                        piece,
                        peer,
                        start_us: t,
                        end_us: t,
                        outcome: Outcome::Running,
                        backup: *backup,
                    });
                }
            }
            JobEvent::Output { piece, peer, .. } => {
                let winner = self.peer_index.get(peer).copied();
                for i in self.open.remove(piece).unwrap_or_default() {
                    let span = &mut self.timeline.spans[i];
                    span.outcome = match (Some(span.peer) == winner, span.backup) {
                        (true, false) => Outcome::Done,
                        (true, true) => Outcome::BackupWon,
                        (false, _) => Outcome::Overtaken,
                    };
                    span.end_us = t;
                }
            }
            JobEvent::Progress { done, .. } => self.timeline.done = *done,
            JobEvent::Retried { piece, peer, .. } => {
                let Some(&peer) = self.peer_index.get(peer) else { return };
                self.close(*piece, |s| s.peer == peer, Outcome::Retried, t);
            }
            JobEvent::Finished { result, .. } => {
                let failed = match result {
                    Err(JobError::PieceFailed(f)) => Some(f.piece),
                    _ => None,
                };
                for (piece, spans) in std::mem::take(&mut self.open) {
                    let outcome = if Some(piece) == failed { Outcome::Failed } else { Outcome::Cancelled };
                    for i in spans {
                        self.timeline.spans[i].outcome = outcome;
                        self.timeline.spans[i].end_us = t;
                    }
                }
                self.timeline.finished = true;
            }
            JobEvent::Unplaceable { .. } | JobEvent::Refused { .. } => {}
        }
    }

    /// The timeline so far, taken at `now` (running spans end there).
    pub fn timeline(&self, now: Time) -> Timeline {
        let mut timeline = self.timeline.clone();
        if !timeline.finished {
            let t = now.since(self.start).as_micros() as u64;
            timeline.elapsed_us = timeline.elapsed_us.max(t);
            for spans in self.open.values() {
                for &i in spans {
                    timeline.spans[i].end_us = timeline.elapsed_us;
                }
            }
        }
        timeline
    }

    fn peer(&mut self, key: PeerKey, name: &dyn Fn(PeerKey) -> String) -> u32 {
        let peers = &mut self.timeline.peers;
        *self.peer_index.entry(key).or_insert_with(|| {
            peers.push(name(key));
            peers.len() as u32 - 1
        })
    }

    /// Ends the open spans of `piece` that `which` picks, with `outcome` at `t`.
    fn close(&mut self, piece: u32, which: impl Fn(&Span) -> bool, outcome: Outcome, t: u64) {
        let Some(open) = self.open.get_mut(&piece) else { return };
        let spans = &mut self.timeline.spans;
        open.retain(|&i| {
            if !which(&spans[i]) {
                return true;
            }
            spans[i].outcome = outcome;
            spans[i].end_us = t;
            false
        });
        if open.is_empty() {
            self.open.remove(&piece);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::JobId;
    use crate::job::{FailureCause, JobOutput, PieceFailure};
    use crate::policy::{Candidate, Choice};
    use std::time::Duration;

    const JOB: JobId = JobId(7);

    fn ms(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    fn name(k: PeerKey) -> String {
        format!("peer{}", k.0)
    }

    fn placed(peer: u32, pieces: &[u32], backup: bool) -> JobEvent {
        let chosen = Candidate { peer: PeerKey(peer), load: 0, slots: 1 };
        let choice = Choice { chosen, considered: vec![chosen] };
        JobEvent::Placed { job: JOB, peer: PeerKey(peer), pieces: pieces.to_vec(), choice, backup }
    }

    fn output(piece: u32, peer: u32) -> JobEvent {
        JobEvent::Output { job: JOB, piece, peer: PeerKey(peer), output: vec![] }
    }

    fn retried(piece: u32, peer: u32) -> JobEvent {
        let cause = FailureCause::PeerDown("killed".into());
        JobEvent::Retried { job: JOB, piece, peer: PeerKey(peer), cause, banned: false }
    }

    fn finished(result: Result<JobOutput, JobError>) -> JobEvent {
        JobEvent::Finished { job: JOB, result }
    }

    /// Feeds `(ms, event)` to a builder of a job that started at 1 s.
    fn build(pieces: u32, events: &[(u64, JobEvent)]) -> TimelineBuilder {
        let mut b = TimelineBuilder::new(pieces, ms(1000));
        for (t, e) in events {
            b.event(e, ms(1000 + t), &name);
        }
        b
    }

    fn outcomes(t: &Timeline) -> Vec<(u32, &str, Outcome, u64, u64)> {
        t.spans
            .iter()
            .map(|s| (s.piece, t.peers[s.peer as usize].as_str(), s.outcome, s.start_us / 1000, s.end_us / 1000))
            .collect()
    }

    #[test]
    fn a_killed_peers_pieces_are_retried_spans_then_done_elsewhere() {
        let b = build(
            3,
            &[
                (0, placed(1, &[0, 1], false)),
                (0, placed(2, &[2], false)),
                (40, output(2, 2)),
                (50, retried(0, 1)),
                (50, retried(1, 1)),
                (51, placed(2, &[0, 1], false)),
                (90, output(0, 2)),
            ],
        );
        let t = b.timeline(ms(1100));
        assert_eq!(t.peers, ["peer1", "peer2"]);
        assert_eq!(
            outcomes(&t),
            [
                (0, "peer1", Outcome::Retried, 0, 50),
                (1, "peer1", Outcome::Retried, 0, 50),
                (2, "peer2", Outcome::Done, 0, 40),
                (0, "peer2", Outcome::Done, 51, 90),
                (1, "peer2", Outcome::Running, 51, 100),
            ]
        );
        assert!(!t.finished);
        assert_eq!(t.elapsed_us, 100_000);
    }

    #[test]
    fn a_backup_that_wins_overtakes_the_original_and_vice_versa() {
        let b = build(
            2,
            &[
                (0, placed(1, &[0, 1], false)),
                (10, placed(2, &[0, 1], true)),
                (20, output(0, 2)),
                (30, output(1, 1)),
                (31, finished(Err(JobError::Cancelled))),
            ],
        );
        let t = b.timeline(ms(5000));
        assert_eq!(
            outcomes(&t),
            [
                (0, "peer1", Outcome::Overtaken, 0, 20),
                (1, "peer1", Outcome::Done, 0, 30),
                (0, "peer2", Outcome::BackupWon, 10, 20),
                (1, "peer2", Outcome::Overtaken, 10, 30),
            ]
        );
        assert!(t.finished);
        assert_eq!(t.elapsed_us, 31_000, "a finished timeline ends with the job, not when it is read");
    }

    #[test]
    fn the_job_ending_closes_what_still_runs() {
        let failure = PieceFailure { piece: 1, causes: vec![] };
        let b = build(
            3,
            &[
                (0, placed(1, &[0, 1, 2], false)),
                (5, output(2, 1)),
                (9, finished(Err(JobError::PieceFailed(failure)))),
                (12, output(0, 1)),
            ],
        );
        let t = b.timeline(ms(2000));
        assert_eq!(
            outcomes(&t),
            [
                (0, "peer1", Outcome::Cancelled, 0, 9),
                (1, "peer1", Outcome::Failed, 0, 9),
                (2, "peer1", Outcome::Done, 0, 5),
            ]
        );
        assert_eq!(t.count(Outcome::Cancelled), 1);
    }

    #[test]
    fn spans_serialize_as_rows_and_back() {
        let b = build(1, &[(0, placed(3, &[0], true)), (2, output(0, 3))]);
        let t = b.timeline(ms(1002));
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""spans":[[0,0,0,2000,"backup_won",true]]"#), "{json}");
        assert_eq!(serde_json::from_str::<Timeline>(&json).unwrap(), t);
    }

    #[test]
    fn a_large_job_keeps_one_span_per_copy() {
        let pieces: Vec<u32> = (0..100_000).collect();
        let mut b = TimelineBuilder::new(100_000, Time::ZERO);
        for chunk in pieces.chunks(1000) {
            b.event(&placed(chunk[0] / 1000 % 4, chunk, false), ms(1), &name);
        }
        for &p in &pieces {
            b.event(&output(p, p / 1000 % 4), ms(2 + u64::from(p) / 100), &name);
        }
        let t = b.timeline(ms(5000));
        assert_eq!(t.spans.len(), 100_000);
        assert_eq!(t.count(Outcome::Done), 100_000);
        assert_eq!(t.peers.len(), 4);
    }
}
