//! How a submitter judges a worker that holds its pieces, driven through
//! the real state machine (`meshwork_protocol::Machine`) in virtual time,
//! so each case is exact and repeatable: the rule is "silent for 1 s while
//! owing results, then a Status probe; no answer within the probe timeout
//! (at least 2 s) means down" (PROTOCOL.md, "Behaviour expected of a peer").

use meshwork_protocol::wire::{Advert, Load, Outcome, PieceResult, Request, Response, Results, PROTOCOL_VERSION};
use meshwork_protocol::{Action, Config, JobEvent, JobSpec, Machine, PeerEvent, PeerKey, RequestId, Time};

const ME: PeerKey = PeerKey(0);
const WORKER: PeerKey = PeerKey(1);

fn at(ms: u64) -> Time {
    Time::from_micros(ms * 1000)
}

/// One slot, one piece at a time, every second an advert.
fn worker_advert(seq: u64) -> Advert {
    Advert {
        version: PROTOCOL_VERSION,
        seq,
        slots: 1,
        running: 0,
        queued: 0,
        capacity: 1,
        tasks: vec!["sleep".into()],
        interval_ms: 1000,
        mesh: 2,
        ..Advert::default()
    }
}

/// A submit-only machine and a connected one-slot worker it has heard from.
struct Submitter {
    machine: Machine,
    /// Run requests sent to the worker and not answered yet: (id, pieces).
    runs: Vec<(RequestId, Vec<u32>)>,
    /// Status requests (greeting, probes) sent to the worker: (id, sent at).
    statuses: Vec<(RequestId, Time)>,
    downs: Vec<(Time, String)>,
    retries: Vec<(Time, u32, String)>,
    now: Time,
}

impl Submitter {
    fn new() -> Submitter {
        let machine = Machine::new(Config::new(ME, 7).with_slots(0), at(0));
        let mut s = Submitter {
            machine,
            runs: Vec::new(),
            statuses: Vec::new(),
            downs: Vec::new(),
            retries: Vec::new(),
            now: at(0),
        };
        s.machine.handle_peer_up(WORKER, at(0));
        s.machine.handle_advert(WORKER, &worker_advert(1), at(0)).unwrap();
        s.drain();
        // Answer the greeting at once.
        let (greeting, _) = s.statuses.remove(0);
        s.machine.handle_response(greeting, Response::Status(worker_advert(1)), at(1));
        s.drain();
        s
    }

    fn drain(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            if let Action::Send { to: WORKER, id, request } = action {
                match request {
                    Request::Run(run) => self.runs.push((id, run.pieces.iter().map(|p| p.piece).collect())),
                    Request::Status => self.statuses.push((id, self.now)),
                    _ => {}
                }
            }
        }
        while let Some(event) = self.machine.poll_peer_event() {
            if let PeerEvent::Down(WORKER, reason) = event {
                self.downs.push((self.now, reason.to_string()));
            }
        }
        while let Some(event) = self.machine.poll_event() {
            if let JobEvent::Retried { piece, cause, .. } = event {
                self.retries.push((self.now, piece, cause.to_string()));
            }
        }
    }

    /// Runs the machine's timers up to `until`.
    fn advance(&mut self, until: Time) {
        while let Some(t) = self.machine.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.machine.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    /// The worker answers its oldest batch at `when`.
    fn answer_batch(&mut self, when: Time) {
        self.advance(when);
        let (id, pieces) = self.runs.remove(0);
        let done = |piece| PieceResult { piece, outcome: Outcome::Done { output: vec![0], conclusive: false } };
        let load = Load { slots: 1, running: 0, queued: 0, capacity: 1 };
        let results = Results { load, exec_us: 500_000, pieces: pieces.into_iter().map(done).collect() };
        self.machine.handle_response(id, Response::Results(results), when);
        self.drain();
    }
}

#[test]
fn a_worker_that_answers_a_batch_after_a_probe_was_sent_is_not_judged_down_by_that_probe() {
    let mut s = Submitter::new();
    s.machine.submit(JobSpec::new("sleep", vec![vec![0]; 4]), s.now).unwrap();
    s.drain();
    assert_eq!(s.runs.len(), 1, "one piece placed on the one-slot worker");
    // Its piece is slow (a starved machine): after 1 s of silence the submitter probes.
    s.advance(at(1_600));
    let probes: Vec<Time> = s.statuses.iter().map(|(_, t)| *t).collect();
    assert_eq!(probes.len(), 1, "a probe after 1 s of silence: {probes:?}");
    // The probe's answer is slow too (lost once, retransmitted), but the
    // batch's answer arrives at 1.8 s: the worker is alive and gets the next piece.
    s.answer_batch(at(1_800));
    assert_eq!(s.runs.len(), 1, "the next piece went to the worker");
    // 1.7 s after that answer: it does not owe a probe answer for that long yet.
    s.advance(at(3_500));
    assert_eq!(s.downs, Vec::new(), "judged down soon after it answered a batch; probe sent at {probes:?}");
    assert_eq!(s.retries, Vec::new());
}
