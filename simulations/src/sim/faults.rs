//! Breaking things: crashes, graceful leaves, joins, hangs, partitions,
//! from the scenario script or from churn. Each fault is also handed to
//! the recorder, which counts it and judges later down-judgements by it.

use super::{Ev, Sim};
use crate::error::SimError;
use crate::node::Life;
use crate::plan::{ChurnKind, Plan, REPLACE_AFTER};
use crate::scenario::{Fault, Scripted};

impl Sim<'_> {
    fn crash(&mut self, n: u32) {
        if self.nodes[n as usize].life == Life::Gone {
            return;
        }
        self.rec.crashed(n, self.now);
        self.close_all(n);
    }

    /// Graceful leave: shutdown now, go once what was accepted is answered.
    fn leave(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        if node.life != Life::Up || node.hung {
            return;
        }
        node.life = Life::Leaving;
        self.rec.leaving(n, self.now);
        self.with_machine(n, |m, now| m.shutdown(now));
        self.drain(n);
    }

    /// A fresh node joins: it connects to every submitter and meshes into the gossip.
    pub(super) fn join(&mut self) {
        let draw = self.plan.next_node();
        let n = self.add_node(draw);
        self.rec.joined(n, self.now);
        let net = &self.net;
        self.gossip.join(n, net.len(), &mut self.rng, |p| net.present(p));
        for s in 0..self.k {
            self.redial(n, s);
        }
        self.drain(n);
    }

    fn hang(&mut self, n: u32, hung: bool) {
        let node = &mut self.nodes[n as usize];
        if node.life == Life::Gone || node.hung == hung {
            return;
        }
        node.hung = hung;
        self.net.freeze(n, hung);
        self.rec.hang(n, hung, self.now);
        if hung {
            return;
        }
        for ev in self.backlog.remove(&n).unwrap_or_default() {
            self.queue.push(self.now, ev);
        }
        self.retry_redials();
    }

    pub(super) fn script(&mut self, i: usize) {
        let Scripted { fault, line, .. } = self.cfg.script[i].clone();
        let exists = |sim: &mut Sim, nodes: &[u32]| match nodes.iter().find(|n| **n as usize >= sim.nodes.len()) {
            Some(&node) => {
                sim.fatal = Some(SimError::NoSuchNode { line, node, at: sim.now, nodes: sim.nodes.len() });
                false
            }
            None => true,
        };
        match fault {
            Fault::Crash(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.crash(n)),
            Fault::Hang(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.hang(n, true)),
            Fault::Resume(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.hang(n, false)),
            Fault::Leave(ns) if exists(self, &ns) => ns.into_iter().for_each(|n| self.leave(n)),
            Fault::Join(count) => {
                for _ in 0..count {
                    self.join();
                }
            }
            Fault::Partition(groups) => {
                self.rec.partitioned(&groups, self.now);
                self.net.partition(&groups, self.nodes.len());
            }
            Fault::Heal => {
                if self.net.partitioned() {
                    self.rec.healed(self.now);
                    self.net.heal();
                    self.retry_redials();
                }
            }
            Fault::Crash(_) | Fault::Hang(_) | Fault::Resume(_) | Fault::Leave(_) => {}
        }
    }

    /// Churn event `i`: a random running non-submitter crashes or leaves
    /// (see [`Plan::churn_kind`]); a fresh node joins a second later.
    pub(super) fn churn(&mut self, i: usize) {
        // Relays do not fail in the model (see `reach`).
        let relay = |n: u32| self.reach.as_ref().is_some_and(|r| r.is_relay(n));
        let eligible = |n: u32| self.nodes[n as usize].life == Life::Up && !self.nodes[n as usize].hung && !relay(n);
        let len = self.nodes.len() as u32;
        let Some(v) = self.plan.victim(self.k, len, eligible) else { return };
        match Plan::churn_kind(i) {
            ChurnKind::Crash => self.crash(v),
            ChurnKind::Leave => self.leave(v),
        }
        self.queue.push(self.now + REPLACE_AFTER, Ev::Join);
    }
}
