//! NATs and relays on the connections (`--nated`, see `reach` for the
//! rules): which way a dial goes, what a relayed message costs, hole
//! punches, and circuits handed on as they free up. Without `--nated`
//! every call here is a no-op and draws nothing.

use super::{Ev, Msg, Sim};
use crate::network::End;
use meshwork_protocol::wire::Request;
use std::time::Duration;

impl Sim<'_> {
    /// `a` dials `b` over `e`: may it open now? Not when `b` is NATed and
    /// its relay has no circuit free (the pair then waits for one).
    pub(super) fn dial(&mut self, a: u32, b: u32, e: End) -> bool {
        self.reach.as_mut().is_none_or(|r| r.dial(a, b, e.link).is_some())
    }

    /// Connection `e` of `a` and `b` opened (in its epoch `epoch`): a
    /// relayed one tries a hole punch after a relayed round trip (DCUtR's
    /// CONNECT and its answer) and a direct latency (the simultaneous dial).
    pub(super) fn opened(&mut self, a: u32, b: u32, e: End, epoch: u32) {
        let Some(reach) = self.reach.as_mut() else { return };
        reach.opened(e.link);
        if reach.via(e.link).is_none() {
            return;
        }
        let mut wait = Duration::ZERO;
        for _ in 0..5 {
            wait += self.net.latency(&mut self.rng);
        }
        self.queue.push(self.now + wait, Ev::Punch { a, b, epoch });
    }

    /// The delay of `msg` sent now over `e` to `to`: one latency, or over
    /// a relay two, with the relay's forwarding queue in between. Counts
    /// the pieces it carries.
    pub(super) fn hop(&mut self, e: End, to: u32, msg: &Msg) -> Duration {
        let lat = self.net.latency(&mut self.rng);
        let Some(reach) = self.reach.as_mut() else { return lat };
        if let Msg::Request(_, Request::Run(run)) = msg {
            reach.carried(e.link, to, run.pieces.len() as u64);
        }
        let Some(r) = reach.via(e.link) else { return lat };
        let leaves = reach.forward(r, self.now + lat);
        leaves.since(self.now) + self.net.latency(&mut self.rng)
    }

    /// The hole punch of `a` and `b` (if their relayed connection of
    /// `epoch` is still up): direct from now on if it works.
    pub(super) fn punch(&mut self, a: u32, b: u32, epoch: u32) {
        let Some(e) = self.net.end(a, b) else { return };
        let link = *self.net.link(e);
        let Some(reach) = self.reach.as_mut() else { return };
        if !link.up || link.epoch != epoch || reach.via(e.link).is_none() {
            return;
        }
        if reach.punch(a, b) {
            self.free_circuit(e);
        }
    }

    /// Connection `e` no longer needs its circuit (punched or closed): the
    /// pairs waiting for that relay dial again while it has circuits free.
    pub(super) fn free_circuit(&mut self, e: End) {
        let Some(r) = self.reach.as_mut().and_then(|reach| reach.release(e.link)) else { return };
        loop {
            let net = &self.net;
            let link_of = |a, b| net.end(a, b).map_or(usize::MAX, |e| e.link);
            let Some((a, b)) = self.reach.as_mut().and_then(|reach| reach.next_waiting(r, link_of)) else { return };
            self.redial(a, b);
        }
    }
}
