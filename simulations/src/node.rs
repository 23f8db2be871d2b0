//! One simulated node: its [`Machine`], whether it is alive, hung or
//! leaving, the requests it must answer, and its executions. A batch runs
//! its pieces one after the other at the node's speed; an abort stops it
//! at once, the pieces finished by then done and the rest cancelled (as the
//! node's executor does when the cancellation flag is set).

use crate::jobs::piece_cost;
use meshwork_protocol::wire::{Outcome, PieceInput};
use meshwork_protocol::{ExecId, Execution, Machine, RequestId, Time};
use rustc_hash::FxHashMap;
use std::time::Duration;

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    /// Running.
    Up,
    /// Shut down: finishes what it accepted, then goes.
    Leaving,
    /// Crashed or left.
    Gone,
}

/// A request to answer: who sent it, their number for it, and the
/// connection it came on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inbound {
    pub(crate) from: u32,
    pub(crate) rid: RequestId,
    pub(crate) epoch: u32,
}

/// A batch being executed.
#[derive(Debug)]
struct Running {
    id: ExecId,
    start: Time,
    end: Time,
    aborted: bool,
    pieces: Vec<PieceInput>,
}

/// One node of the simulation.
#[derive(Debug)]
pub(crate) struct Node {
    /// `None` once gone.
    pub(crate) machine: Option<Machine>,
    pub(crate) life: Life,
    /// Stopped (SIGSTOP): its events wait until it resumes.
    pub(crate) hung: bool,
    pub(crate) speed: f64,
    /// The wake-up queued for it.
    pub(crate) timer: Option<Time>,
    pub(crate) inbound: FxHashMap<u64, Inbound>,
    next_inbound: u64,
    running: Vec<Running>,
    /// Slot time of executions that ended, µs.
    busy_us: u64,
}

impl Node {
    pub(crate) fn new(machine: Machine, speed: f64) -> Node {
        Node {
            machine: Some(machine),
            life: Life::Up,
            hung: false,
            speed,
            timer: None,
            inbound: FxHashMap::default(),
            next_inbound: 1,
            running: Vec::new(),
            busy_us: 0,
        }
    }

    /// Numbers an inbound request and remembers how to answer it.
    pub(crate) fn receive(&mut self, inbound: Inbound) -> u64 {
        let id = self.next_inbound;
        self.next_inbound += 1;
        self.inbound.insert(id, inbound);
        id
    }

    /// Starts executing `e`; returns when it ends.
    pub(crate) fn start(&mut self, e: Execution, now: Time) -> Time {
        let cost: u64 = e.pieces.iter().map(|p| piece_cost(&p.input)).sum();
        let end = now + self.run_time(cost);
        self.running.push(Running { id: e.id, start: now, end, aborted: false, pieces: e.pieces });
        end
    }

    fn run_time(&self, cost_us: u64) -> Duration {
        Duration::from_micros((cost_us as f64 / self.speed).ceil() as u64)
    }

    /// Sets the cancellation flag of `id`: it ends now. False if it is not running.
    pub(crate) fn abort(&mut self, id: ExecId, now: Time) -> bool {
        match self.running.iter_mut().find(|r| r.id == id && !r.aborted) {
            Some(r) if r.end > now => {
                r.end = now;
                r.aborted = true;
                true
            }
            _ => false,
        }
    }

    /// Execution `id` ends now (if it does): its outcomes and run time.
    pub(crate) fn finish(&mut self, id: ExecId, now: Time) -> Option<(Vec<Outcome>, Duration)> {
        let i = self.running.iter().position(|r| r.id == id && r.end == now)?;
        let r = self.running.swap_remove(i);
        let elapsed = r.end.since(r.start);
        self.busy_us += elapsed.as_micros() as u64;
        let mut cost = 0u64;
        let outcomes = r
            .pieces
            .into_iter()
            .map(|p| {
                cost += piece_cost(&p.input);
                if r.aborted && r.start + self.run_time(cost) > r.end {
                    Outcome::Cancelled
                } else {
                    Outcome::Done { output: p.input, conclusive: false }
                }
            })
            .collect();
        Some((outcomes, elapsed))
    }

    /// Busy slot time so far, µs.
    pub(crate) fn busy(&self, now: Time) -> u64 {
        self.busy_us + self.running.iter().map(|r| now.since(r.start).as_micros() as u64).sum::<u64>()
    }

    /// Pieces accepted and not answered.
    pub(crate) fn load(&self) -> u32 {
        self.machine.as_ref().map_or(0, |m| m.load().outstanding())
    }

    /// The node dies now: executions stop, nothing is answered.
    pub(crate) fn kill(&mut self, now: Time) {
        self.busy_us = self.busy(now);
        self.running.clear();
        self.inbound.clear();
        self.machine = None;
        self.timer = None;
        self.life = Life::Gone;
        self.hung = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::piece_input;
    use meshwork_protocol::{Config, PeerKey};

    fn node(speed: f64) -> Node {
        Node::new(Machine::new(Config::new(PeerKey(0), 1), Time::ZERO), speed)
    }

    fn exec(costs: &[u64]) -> Execution {
        let pieces = costs
            .iter()
            .enumerate()
            .map(|(i, c)| PieceInput { piece: i as u32, input: piece_input(*c, 0, 0) })
            .collect();
        Execution { id: ExecId(7), task: "sim".into(), pieces, piece_timeout: Duration::from_secs(1) }
    }

    #[test]
    fn a_batch_takes_its_cost_over_the_speed() {
        let mut n = node(2.0);
        let end = n.start(exec(&[1000, 3000]), Time::ZERO);
        assert_eq!(end, Time::from_micros(2000));
        assert!(n.finish(ExecId(7), Time::from_micros(1999)).is_none(), "not yet");
        let (outcomes, elapsed) = n.finish(ExecId(7), end).unwrap();
        assert_eq!(elapsed, Duration::from_micros(2000));
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Done { .. })));
        assert_eq!(n.busy(end), 2000);
    }

    #[test]
    fn an_abort_cancels_the_pieces_not_done() {
        let mut n = node(1.0);
        n.start(exec(&[1000, 1000, 1000]), Time::ZERO);
        let now = Time::from_micros(1500);
        assert!(n.abort(ExecId(7), now));
        assert!(!n.abort(ExecId(7), now), "once");
        let (outcomes, elapsed) = n.finish(ExecId(7), now).unwrap();
        assert_eq!(elapsed, Duration::from_micros(1500));
        assert!(matches!(outcomes[0], Outcome::Done { .. }));
        assert!(matches!(outcomes[1], Outcome::Cancelled));
        assert!(matches!(outcomes[2], Outcome::Cancelled));
        assert!(n.finish(ExecId(7), Time::from_micros(3000)).is_none(), "the original end is stale");
    }
}
