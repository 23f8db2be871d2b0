//! The submitted jobs as the simulator follows them, and the invariants
//! checked on them while they run and when they end:
//! - a finished job's outputs are its inputs, each exactly once, in order
//!   (a piece's output is its input), and its per-peer counts add up;
//! - a piece that failed on a peer (`Retried`) is next placed elsewhere;
//! - a job that did not succeed failed loudly (an error), so no piece is
//!   ever silently lost.
//!
//! A piece's input is its cost in µs, then its job and index, so an output
//! in the wrong place cannot pass for the right one.

use meshwork_protocol::{JobError, JobEvent, JobOutput, PeerKey, Time};
use rustc_hash::FxHashMap;

/// The input of piece `piece` of job `job` costing `cost_us` at speed 1
/// (the output a piece must give back, too).
pub fn piece_input(cost_us: u64, job: u32, piece: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&cost_us.to_le_bytes());
    v.extend_from_slice(&job.to_le_bytes());
    v.extend_from_slice(&piece.to_le_bytes());
    v
}

/// The cost in µs a piece input carries (0 for a malformed one).
pub fn piece_cost(input: &[u8]) -> u64 {
    input.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// How a job ended.
#[derive(Clone, Debug)]
pub(crate) struct JobEnd {
    pub(crate) at: Time,
    /// The error, if it failed.
    pub(crate) error: Option<String>,
    pub(crate) backups_won: u32,
    pub(crate) duplicates: u32,
}

/// One submitted job.
#[derive(Debug)]
pub(crate) struct JobTrack {
    /// Its submitter (also its number in traces).
    pub(crate) submitter: u32,
    /// When it was submitted.
    pub(crate) started: Time,
    /// Cost of each piece; the inputs follow from them.
    pub(crate) costs: Vec<u64>,
    pub(crate) done: u32,
    pub(crate) retries: u32,
    pub(crate) backups: u32,
    /// Pieces lost: neither in the result nor reported by an error.
    pub(crate) lost: u64,
    /// Where each retried piece failed for good (the peer is banned from
    /// it), until it is placed again.
    retried_from: FxHashMap<u32, PeerKey>,
    /// Outputs as they streamed (`JobSpec::stream`, set when timelines
    /// are kept): a streamed job's result carries none.
    streamed: Vec<Option<Vec<u8>>>,
    pub(crate) end: Option<JobEnd>,
}

impl JobTrack {
    pub(crate) fn new(submitter: u32, costs: Vec<u64>) -> JobTrack {
        JobTrack {
            submitter,
            started: Time::ZERO,
            costs,
            done: 0,
            retries: 0,
            backups: 0,
            lost: 0,
            retried_from: FxHashMap::default(),
            streamed: Vec::new(),
            end: None,
        }
    }

    /// Follows one event of the job, adding any broken invariant to `violations`.
    pub(crate) fn on_event(&mut self, ev: &JobEvent, now: Time, violations: &mut Vec<String>) {
        match ev {
            JobEvent::Placed { peer, pieces, backup, .. } => {
                self.backups += *backup as u32;
                for p in pieces {
                    if self.retried_from.remove(p) == Some(*peer) {
                        violations.push(format!(
                            "job {}: piece {p} failed on {peer} and was placed on {peer} again at {now}",
                            self.submitter
                        ));
                    }
                }
            }
            JobEvent::Retried { piece, peer, banned, .. } => {
                self.retries += 1;
                if *banned {
                    self.retried_from.insert(*piece, *peer);
                }
            }
            JobEvent::Progress { done, .. } => self.done = *done,
            JobEvent::Output { piece, output, .. } => {
                self.streamed.resize(self.costs.len(), None);
                match self.streamed.get_mut(*piece as usize) {
                    Some(slot @ None) => *slot = Some(output.clone()),
                    _ => violations.push(format!("job {}: piece {piece} streamed twice or unknown", self.submitter)),
                }
            }
            JobEvent::Finished { result, .. } => self.finish(result, now, violations),
            JobEvent::Refused { .. } | JobEvent::Unplaceable { .. } => {}
        }
    }

    fn finish(&mut self, result: &Result<JobOutput, JobError>, now: Time, violations: &mut Vec<String>) {
        if self.end.is_some() {
            violations.push(format!("job {} finished twice (again at {now})", self.submitter));
            return;
        }
        let end = match result {
            Err(e) => JobEnd { at: now, error: Some(e.to_string()), backups_won: 0, duplicates: 0 },
            Ok(out) => {
                self.check_output(out, violations);
                JobEnd { at: now, error: None, backups_won: out.stats.backups_won, duplicates: out.stats.duplicates }
            }
        };
        self.end = Some(end);
    }

    /// The job's outputs in piece order: its result's, or the ones that
    /// streamed.
    pub(crate) fn outputs<'a>(&'a self, out: &'a JobOutput) -> Vec<&'a [u8]> {
        if self.streamed.is_empty() {
            out.outputs.iter().map(Vec::as_slice).collect()
        } else {
            self.streamed.iter().flatten().map(Vec::as_slice).collect()
        }
    }

    fn check_output(&mut self, out: &JobOutput, violations: &mut Vec<String>) {
        let n = self.costs.len();
        let (given, right) = {
            let outputs = self.outputs(out);
            let inputs = self.costs.iter().enumerate().map(|(i, c)| piece_input(*c, self.submitter, i as u32));
            (outputs.len(), outputs.iter().zip(inputs).filter(|(o, i)| **o == i.as_slice()).count())
        };
        self.lost = (n - right) as u64;
        if out.conclusive.is_some() {
            violations.push(format!("job {}: ended early on a conclusive output; none was sent", self.submitter));
        }
        if given != n || right != n {
            violations
                .push(format!("job {}: {right} of {n} outputs match their inputs ({given} outputs)", self.submitter));
        }
        let counted: u64 = out.stats.per_peer.values().map(|c| *c as u64).sum();
        if counted != n as u64 {
            violations
                .push(format!("job {}: peers are credited with {counted} pieces, the job has {n}", self.submitter));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshwork_protocol::policy::{Candidate, Choice};
    use meshwork_protocol::{FailureCause, JobId, JobStats};

    fn inputs(t: &JobTrack) -> Vec<Vec<u8>> {
        t.costs.iter().enumerate().map(|(i, c)| piece_input(*c, t.submitter, i as u32)).collect()
    }

    fn placed(peer: u32, pieces: Vec<u32>) -> JobEvent {
        let c = Candidate { peer: PeerKey(peer), load: 0, slots: 1 };
        JobEvent::Placed {
            job: JobId(1),
            peer: PeerKey(peer),
            pieces,
            choice: Choice { chosen: c, considered: vec![c] },
            backup: false,
        }
    }

    #[test]
    fn a_retry_onto_the_peer_that_failed_is_caught() {
        let mut t = JobTrack::new(0, vec![10, 20]);
        let mut v = Vec::new();
        let retried =
            JobEvent::Retried { job: JobId(1), piece: 1, peer: PeerKey(5), cause: FailureCause::Missing, banned: true };
        t.on_event(&placed(5, vec![0, 1]), Time::ZERO, &mut v);
        t.on_event(&retried, Time::ZERO, &mut v);
        t.on_event(&placed(6, vec![1]), Time::ZERO, &mut v);
        assert!(v.is_empty(), "{v:?}");
        t.on_event(&retried, Time::ZERO, &mut v);
        t.on_event(&placed(5, vec![1]), Time::ZERO, &mut v);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("piece 1 failed on #5"), "{v:?}");
    }

    #[test]
    fn a_peer_that_only_went_away_may_have_its_piece_again() {
        let mut t = JobTrack::new(0, vec![10, 20]);
        let mut v = Vec::new();
        let went_away = JobEvent::Retried {
            job: JobId(1),
            piece: 1,
            peer: PeerKey(5),
            cause: FailureCause::Missing,
            banned: false,
        };
        t.on_event(&placed(5, vec![0, 1]), Time::ZERO, &mut v);
        t.on_event(&went_away, Time::ZERO, &mut v);
        t.on_event(&placed(5, vec![1]), Time::ZERO, &mut v);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn wrong_or_missing_outputs_are_lost_pieces() {
        let finished = |outputs: Vec<Vec<u8>>, credited: u32| JobEvent::Finished {
            job: JobId(1),
            result: Ok(JobOutput {
                outputs,
                conclusive: None,
                stats: JobStats { per_peer: [(PeerKey(1), credited)].into(), ..JobStats::default() },
            }),
        };
        let mut t = JobTrack::new(3, vec![10, 20, 30]);
        let mut v = Vec::new();
        t.on_event(&finished(inputs(&t), 3), Time::ZERO, &mut v);
        assert!(v.is_empty() && t.lost == 0, "{v:?}");

        let mut t = JobTrack::new(3, vec![10, 20, 30]);
        let mut swapped = inputs(&t);
        swapped.swap(0, 1);
        t.on_event(&finished(swapped, 3), Time::ZERO, &mut v);
        assert_eq!(t.lost, 2);
        assert_eq!(v.len(), 1, "{v:?}");

        let mut t = JobTrack::new(3, vec![10, 20, 30]);
        let mut v = Vec::new();
        t.on_event(&finished(inputs(&t)[..2].to_vec(), 2), Time::ZERO, &mut v);
        assert_eq!(t.lost, 1);
        assert_eq!(v.len(), 2, "missing output and short per-peer count: {v:?}");
    }

    #[test]
    fn a_loud_failure_loses_nothing() {
        let mut t = JobTrack::new(0, vec![10]);
        let mut v = Vec::new();
        t.on_event(&JobEvent::Finished { job: JobId(1), result: Err(JobError::Cancelled) }, Time::ZERO, &mut v);
        assert!(v.is_empty());
        assert_eq!(t.lost, 0);
        assert_eq!(t.end.as_ref().and_then(|e| e.error.clone()).as_deref(), Some("cancelled"));
        assert_eq!(piece_cost(&piece_input(1234, 1, 2)), 1234);
    }
}
