//! Adverts: where a publication goes, by the gossip model in `gossip`.
//!
//! Only nodes whose peer tables hold the publisher get it as a machine
//! input: submitters hear every advert, workers hear the submitters' (they
//! are connected to nothing else that matters to them). Ten thousand
//! workers' tables of each other would not fit in memory, and no worker
//! places work, so nothing is lost; every copy and IWANT is still counted
//! (see `gossip`).

use super::{Ev, Sim};
use crate::gossip::World;
use crate::network::Network;
use meshwork_protocol::wire::Advert;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::rc::Rc;
use std::time::Duration;

impl Sim<'_> {
    /// `n` publishes `advert`: its first copy reaches each target when the
    /// gossip model says.
    pub(super) fn publish(&mut self, n: u32, advert: Advert) {
        let targets: Vec<u32> = if n < self.k {
            (0..self.net.len()).filter(|t| *t != n && self.net.present(*t)).collect()
        } else {
            (0..self.k).collect()
        };
        let mut world = Mesh { net: &self.net, rng: &mut self.rng, hop: self.cfg.hop_delay, lost: 0 };
        let spread = self.gossip.spread(n, &targets, self.now, &mut world);
        let lost = world.lost;
        let m = self.rec.messages();
        m.adverts += 1;
        m.lost += lost;
        *m.advert_copies.get_or_insert(0) += spread.copies;
        *m.gossip_iwants.get_or_insert(0) += spread.iwants;
        let advert = Rc::new(advert);
        for (to, at) in spread.arrivals {
            self.queue.push(at, Ev::Advert { to, from: n, advert: advert.clone() });
        }
    }
}

/// The simulated network as gossip sees it.
struct Mesh<'a> {
    net: &'a Network,
    rng: &'a mut ChaCha8Rng,
    hop: Duration,
    lost: u64,
}

impl World for Mesh<'_> {
    fn len(&self) -> u32 {
        self.net.len()
    }

    fn present(&self, n: u32) -> bool {
        self.net.present(n)
    }

    fn forwards(&self, n: u32) -> bool {
        self.net.running(n)
    }

    fn accepts(&self, to: u32, from: u32) -> bool {
        self.net.connected(from, to) && self.net.reachable(from, to) && !self.net.hosts.graylists(to, from)
    }

    fn copy_delay(&mut self, from: u32, to: u32) -> Option<Duration> {
        self.control_delay(from, to).map(|d| d + self.hop)
    }

    fn control_delay(&mut self, _: u32, _: u32) -> Option<Duration> {
        if self.net.lost(self.rng) {
            self.lost += 1;
            return None;
        }
        Some(self.net.latency(self.rng))
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }
}
