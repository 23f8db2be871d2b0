//! Connections: requests and responses carried over them (FIFO, latency,
//! loss, partitions), and their opening and closing: a machine's
//! `Disconnect` (old rule), redials, and a node going away.

use super::{Ev, Msg, Sim};
use crate::network::{End, Network};
use crate::node::Life;
use meshwork_protocol::wire::{Request, Response};
use meshwork_protocol::{redial, InboundId, RequestId};
use rand::Rng;
use std::time::Duration;

impl Sim<'_> {
    pub(super) fn send(&mut self, n: u32, to: u32, rid: RequestId, request: Request) {
        self.rec.messages().requests += 1;
        let Some(e) = self.net.end(n, to) else {
            let at = self.now + self.net.latency(&mut self.rng);
            self.queue.push(at, Ev::Failed { node: n, rid });
            return;
        };
        if !self.net.reachable(n, to) {
            return;
        }
        let link = *self.net.link(e);
        if !link.up {
            let at = self.now + self.net.latency(&mut self.rng);
            self.queue.push(at, Ev::Failed { node: n, rid });
            return;
        }
        self.carry(e, n, to, link.epoch, Msg::Request(rid, request));
    }

    /// Puts `msg` on connection `e` from `from` to `to`: lost with the
    /// configured probability, else delivered after a latency and after
    /// whatever that connection already carries (FIFO, like TCP).
    fn carry(&mut self, e: End, from: u32, to: u32, epoch: u32, msg: Msg) {
        if self.net.lost(&mut self.rng) {
            self.rec.messages().lost += 1;
            return;
        }
        let delay = self.hop(e, to, &msg);
        let at = self.net.fifo(e, Network::other(e), self.now, delay);
        self.queue.push(at, Ev::Msg { to, from, epoch, msg });
    }

    pub(super) fn respond(&mut self, n: u32, id: InboundId, response: Response) {
        self.rec.messages().responses += 1;
        let Some(inb) = self.nodes[n as usize].inbound.remove(&id.0) else { return };
        let Some(e) = self.net.end(n, inb.from) else { return };
        let link = *self.net.link(e);
        if !link.up || link.epoch != inb.epoch || !self.net.reachable(n, inb.from) {
            return;
        }
        self.carry(e, n, inb.from, link.epoch, Msg::Response(inb.rid, response));
    }

    /// `n` judged `peer` dead and closes their connection (the old rule):
    /// both ends see it close after a latency, and `n` redials after two.
    pub(super) fn disconnect(&mut self, n: u32, peer: u32) {
        self.rec.disconnected(n, peer, self.now);
        let Some(e) = self.net.end(n, peer) else { return };
        let lat = self.net.latency(&mut self.rng);
        let link = *self.net.link(e);
        if link.up {
            let epoch = self.net.close(e);
            self.free_circuit(e);
            let mine = self.net.fifo(e, e.side, self.now, lat);
            self.queue.push(mine, Ev::Down { node: n, peer, epoch });
            let theirs = self.net.fifo(e, Network::other(e), self.now, lat);
            self.queue.push(theirs, Ev::Down { node: peer, peer: n, epoch });
        } else if !self.net.current(e, e.side, link.epoch) {
            // Closed by the other end's death while we were cut off: now we know.
            let epoch = link.epoch;
            let mine = self.net.fifo(e, e.side, self.now, lat);
            self.queue.push(mine, Ev::Down { node: n, peer, epoch });
        }
        self.queue.push(self.now + lat.saturating_mul(2), Ev::Redial { a: n, b: peer });
    }

    /// Reconnects `a` and `b` if both are alive and can reach each other;
    /// otherwise waits for a resume or a heal.
    pub(super) fn redial(&mut self, a: u32, b: u32) {
        let Some(e) = self.net.end(a, b) else { return };
        if self.net.link(e).up {
            return;
        }
        let (na, nb) = (&self.nodes[a as usize], &self.nodes[b as usize]);
        if na.life == Life::Gone || nb.life == Life::Gone {
            return;
        }
        if na.hung || nb.hung || !self.net.reachable(a, b) {
            if !self.net.link(e).redial {
                self.net.link_mut(e).redial = true;
                self.redials.push((a, b));
            }
            return;
        }
        if !self.dial(a, b, e) {
            return;
        }
        self.net.open(e);
        self.net.link_mut(e).redial = false;
        let epoch = self.net.link(e).epoch;
        self.opened(a, b, e, epoch);
        let lat = self.net.latency(&mut self.rng);
        let at_a = self.net.fifo(e, e.side, self.now, lat);
        self.queue.push(at_a, Ev::Up { node: a, peer: b, epoch });
        let at_b = self.net.fifo(e, Network::other(e), self.now, lat);
        self.queue.push(at_b, Ev::Up { node: b, peer: a, epoch });
    }

    /// Tries the waiting redials again, each within the real node's first
    /// redial wait ([`redial::FIRST`]).
    pub(super) fn retry_redials(&mut self) {
        for (a, b) in std::mem::take(&mut self.redials) {
            if let Some(e) = self.net.end(a, b) {
                self.net.link_mut(e).redial = false;
            }
            let wait = Duration::from_micros(self.rng.random_range(0..redial::FIRST.as_micros() as u64));
            self.queue.push(self.now + wait, Ev::Redial { a, b });
        }
    }

    /// Closes every connection of `n`, which is gone (crashed or left):
    /// its peers see the close after a latency, unless cut off from it.
    pub(super) fn close_all(&mut self, n: u32) {
        self.nodes[n as usize].kill(self.now);
        self.backlog.remove(&n);
        self.net.remove_node(n);
        let net = &self.net;
        self.gossip.leave(n, net.len(), &mut self.rng, |p| net.present(p));
        for p in self.net.linked(n).collect::<Vec<_>>() {
            let Some(e) = self.net.end(n, p) else { continue };
            self.net.link_mut(e).redial = false;
            if !self.net.link(e).up {
                continue;
            }
            let epoch = self.net.close(e);
            self.free_circuit(e);
            if self.net.reachable(n, p) {
                let lat = self.net.latency(&mut self.rng);
                let at = self.net.fifo(e, Network::other(e), self.now, lat);
                self.queue.push(at, Ev::Down { node: p, peer: n, epoch });
            }
        }
    }
}
