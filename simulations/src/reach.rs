//! The reachability model (`--nated`): which nodes sit behind a NAT, the
//! relays they reserve a slot on, the circuits those relays carry, and
//! whether hole punching (DCUtR) turns a relayed connection into a direct
//! one. It models what the node's AutoNAT, circuit relay v2 and DCUtR
//! behaviours do to the connections the simulator models (submitter–node,
//! see `network`); scheduling stays the machines'.
//!
//! The rules, per modelled connection, from the side that dials it (a
//! submitter at the start, a joiner or a redialling node later):
//! - to a public node: direct, as without the model (a NATed node dials
//!   out through its NAT like anyone).
//! - to a NATed node: over a circuit of the relay it reserved a slot on
//!   (one latency to the relay, the relay's forwarding queue, one latency
//!   on), if that relay has a circuit free; otherwise the pair waits, unconnected,
//!   for a circuit of that relay to free up (no relay at all: forever).
//! - a relayed connection tries a hole punch one relayed round trip and
//!   one direct latency after it opens. It succeeds when either end is
//!   public (the NATed end dials the public one) or both ends are behind
//!   endpoint-independent ("cone") NATs; a symmetric NAT on both-NATed
//!   pairs keeps the connection relayed. A punched connection frees its
//!   circuit; a closed connection frees it too.
//!
//! Not modelled: the relay's other limits (circuits per peer, the circuit
//! rate limits per dialer and per IP, reservations: every NATed node gets a
//! slot, a circuit's bytes and duration), relays failing (they are kept out
//! of churn), gossip over relays (adverts spread as without the model).
//!
//! Draws come from their own stream of the seed, so `--nated 0` is the
//! run without the model, event for event.

use crate::plan::REACH_STREAM;
use crate::report::ReachReport;
use meshwork_protocol::Time;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::time::Duration;

/// The options of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ReachConfig {
    /// Probability that a node is behind a NAT.
    pub nated: f64,
    /// Probability that a NATed node's NAT is symmetric (no hole punching).
    pub symmetric: f64,
    /// Public non-submitter nodes that serve as relays (the first ones drawn public).
    pub relays: u32,
    /// Circuits one relay carries at once.
    pub relay_circuits: u32,
    /// Time a relay spends forwarding one message; messages queue behind each other.
    pub relay_delay: Duration,
}

/// How a node is reachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nat {
    /// A public address: anyone can dial it.
    Public,
    /// Behind an endpoint-independent NAT: hole punching works.
    Cone,
    /// Behind a symmetric NAT: hole punching with another NATed node fails.
    Symmetric,
}

/// The model's state during a run, and what it counted.
#[derive(Debug)]
pub(crate) struct Reach {
    cfg: ReachConfig,
    rng: ChaCha8Rng,
    /// Submitters: nodes `0..submitters`.
    submitters: u32,
    nat: Vec<Nat>,
    /// Relay index (into `relays`) each NATed node reserved a slot on.
    slot: Vec<Option<u32>>,
    /// Node number of each relay.
    relays: Vec<u32>,
    /// The relay carrying each relayed connection (by link index).
    circuits: FxHashMap<usize, u32>,
    /// Circuits open on each relay.
    open: Vec<u32>,
    /// When each relay is done forwarding what it has been handed.
    busy_until: Vec<Time>,
    /// Connections waiting for a circuit of each relay, `(dialer, listener)`.
    waiting: Vec<VecDeque<(u32, u32)>>,
    /// Links in `waiting`.
    queued: FxHashSet<usize>,
    /// Links that were ever open.
    reached: FxHashSet<usize>,
    counts: ReachReport,
}

impl Reach {
    pub(crate) fn new(cfg: ReachConfig, seed: u64, submitters: u32) -> Reach {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(REACH_STREAM);
        let counts = ReachReport {
            relay_circuits: cfg.relay_circuits,
            relay_delay_us: cfg.relay_delay.as_micros() as u64,
            ..ReachReport::default()
        };
        Reach {
            cfg,
            rng,
            submitters,
            nat: Vec::new(),
            slot: Vec::new(),
            relays: Vec::new(),
            circuits: FxHashMap::default(),
            open: Vec::new(),
            busy_until: Vec::new(),
            waiting: Vec::new(),
            queued: FxHashSet::default(),
            reached: FxHashSet::default(),
            counts,
        }
    }

    /// Draws how the next node (number `nat.len()`) is reachable. Until
    /// there are `--relays` relays, a public non-submitter becomes one; a
    /// NATed node reserves a slot on a relay drawn at random (none yet:
    /// see [`Reach::reserve_all`]).
    pub(crate) fn add_node(&mut self) {
        let n = self.nat.len() as u32;
        let nat = if self.rng.random::<f64>() < self.cfg.nated {
            if self.rng.random::<f64>() < self.cfg.symmetric {
                Nat::Symmetric
            } else {
                Nat::Cone
            }
        } else {
            Nat::Public
        };
        self.nat.push(nat);
        self.slot.push(None);
        match nat {
            Nat::Public if n >= self.submitters && (self.relays.len() as u32) < self.cfg.relays => {
                self.relays.push(n);
                self.open.push(0);
                self.busy_until.push(Time::ZERO);
                self.waiting.push(VecDeque::new());
                self.counts.relay_peak_circuits.push(0);
                self.counts.relay_messages.push(0);
            }
            Nat::Public => {}
            Nat::Cone | Nat::Symmetric => {
                self.reserve(n);
                self.counts.nated += 1;
                self.counts.symmetric += u32::from(nat == Nat::Symmetric);
                self.counts.submitters_nated += u32::from(n < self.submitters);
            }
        }
    }

    /// Gives every NATed node without a slot one, once the initial nodes
    /// (and so the relays) exist.
    pub(crate) fn reserve_all(&mut self) {
        for n in 0..self.nat.len() as u32 {
            self.reserve(n);
        }
    }

    fn reserve(&mut self, n: u32) {
        if self.nat[n as usize] != Nat::Public && self.slot[n as usize].is_none() && !self.relays.is_empty() {
            self.slot[n as usize] = Some(self.rng.random_range(0..self.relays.len() as u32));
        }
    }

    /// Relays there are (fewer than asked when too few nodes were drawn public).
    pub(crate) fn relay_count(&self) -> u32 {
        self.relays.len() as u32
    }

    /// Is node `n` a relay?
    pub(crate) fn is_relay(&self, n: u32) -> bool {
        self.relays.contains(&n)
    }

    /// `dialer` dials `listener` over link `link`: `Some(None)` direct,
    /// `Some(Some(r))` over a circuit of relay `r` (taken now), `None` no
    /// circuit free: the pair waits for one (see [`Reach::release`]).
    pub(crate) fn dial(&mut self, dialer: u32, listener: u32, link: usize) -> Option<Option<u32>> {
        if self.nat[listener as usize] == Nat::Public {
            return Some(None);
        }
        let relay = self.slot[listener as usize];
        match relay.filter(|r| self.open[*r as usize] < self.cfg.relay_circuits) {
            Some(r) => {
                self.open[r as usize] += 1;
                let peak = &mut self.counts.relay_peak_circuits[r as usize];
                *peak = (*peak).max(self.open[r as usize]);
                self.circuits.insert(link, r);
                self.counts.circuits += 1;
                Some(Some(r))
            }
            None => {
                self.counts.circuits_refused += 1;
                if let Some(r) = relay {
                    if self.queued.insert(link) {
                        self.waiting[r as usize].push_back((dialer, listener));
                    }
                }
                None
            }
        }
    }

    /// Link `link` opened (directly or over a circuit).
    pub(crate) fn opened(&mut self, link: usize) {
        self.reached.insert(link);
    }

    /// The relay carrying link `link`, if it is relayed.
    pub(crate) fn via(&self, link: usize) -> Option<u32> {
        self.circuits.get(&link).copied()
    }

    /// A message reaches relay `r` at `at`: when it leaves, after what the
    /// relay was already forwarding.
    pub(crate) fn forward(&mut self, r: u32, at: Time) -> Time {
        let i = r as usize;
        let leaves = at.max(self.busy_until[i]) + self.cfg.relay_delay;
        self.busy_until[i] = leaves;
        self.counts.relay_messages[i] += 1;
        leaves
    }

    /// Counts `pieces` sent to `to` over link `link`.
    pub(crate) fn carried(&mut self, link: usize, to: u32, pieces: u64) {
        if self.circuits.contains_key(&link) {
            self.counts.pieces_relayed += pieces;
        } else {
            self.counts.pieces_direct += pieces;
        }
        if self.nat[to as usize] != Nat::Public {
            self.counts.pieces_to_nated += pieces;
        }
    }

    /// `a` and `b` try a hole punch: does it succeed?
    pub(crate) fn punch(&mut self, a: u32, b: u32) -> bool {
        let (x, y) = (self.nat[a as usize], self.nat[b as usize]);
        let ok = x == Nat::Public || y == Nat::Public || (x == Nat::Cone && y == Nat::Cone);
        self.counts.punches += 1;
        self.counts.punched += u64::from(ok);
        ok
    }

    /// Link `link` no longer uses its circuit (punched or closed): returns
    /// the relay that has a circuit free now, if it was relayed.
    pub(crate) fn release(&mut self, link: usize) -> Option<u32> {
        let r = self.circuits.remove(&link)?;
        self.open[r as usize] -= 1;
        Some(r)
    }

    /// The next pair waiting for a circuit of relay `r`, while it has one free.
    pub(crate) fn next_waiting(&mut self, r: u32, link_of: impl Fn(u32, u32) -> usize) -> Option<(u32, u32)> {
        if self.open[r as usize] >= self.cfg.relay_circuits {
            return None;
        }
        let pair = self.waiting[r as usize].pop_front()?;
        self.queued.remove(&link_of(pair.0, pair.1));
        Some(pair)
    }

    /// What the model counted; `links` gives each NATed node's links to
    /// the submitters, to count the nodes some submitter never reached.
    pub(crate) fn report(&self, links: impl Fn(u32) -> Vec<usize>) -> ReachReport {
        let mut r = self.counts.clone();
        r.relays = self.relays.len() as u32;
        r.never_reached = (0..self.nat.len() as u32)
            .filter(|n| self.nat[*n as usize] != Nat::Public)
            .filter(|n| links(*n).iter().any(|l| !self.reached.contains(l)))
            .count() as u32;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(nated: f64, symmetric: f64, relays: u32, circuits: u32) -> Reach {
        let cfg = ReachConfig { nated, symmetric, relays, relay_circuits: circuits, relay_delay: Duration::ZERO };
        let mut r = Reach::new(cfg, 1, 1);
        for _ in 0..50 {
            r.add_node();
        }
        r.reserve_all();
        r
    }

    #[test]
    fn public_listeners_are_direct_and_nated_ones_take_a_circuit() {
        let mut r = reach(0.5, 0.0, 2, 1);
        let public: Vec<u32> = (1..50).filter(|n| r.nat[*n as usize] == Nat::Public).collect();
        let nated: Vec<u32> = (1..50).filter(|n| r.nat[*n as usize] != Nat::Public).collect();
        assert_eq!(r.relay_count(), 2);
        assert!(r.relays.iter().all(|n| public.contains(n)), "relays are public workers");
        assert_eq!(r.dial(0, public[0], 100), Some(None));
        let first = r.dial(0, nated[0], 101).expect("a free circuit").expect("relayed");
        assert_eq!(r.via(101), Some(first));
        let same_relay = nated[1..].iter().copied().find(|n| r.slot[*n as usize] == Some(first)).unwrap();
        assert_eq!(r.dial(0, same_relay, 102), None, "one circuit per relay here: full");
        assert_eq!(r.next_waiting(first, |_, _| 102), None, "still full");
        assert_eq!(r.release(101), Some(first));
        assert_eq!(r.next_waiting(first, |_, _| 102), Some((0, same_relay)));
        assert_eq!(r.counts.relay_peak_circuits[first as usize], 1);
    }

    #[test]
    fn punching_fails_only_between_two_nats_one_symmetric() {
        let mut r = reach(0.0, 0.0, 0, 0);
        r.nat[1..4].copy_from_slice(&[Nat::Cone, Nat::Symmetric, Nat::Cone]);
        assert!(r.punch(0, 2), "public and symmetric: the NATed end dials out");
        assert!(r.punch(1, 3), "two cone NATs");
        assert!(!r.punch(1, 2), "cone and symmetric");
        assert_eq!((r.counts.punches, r.counts.punched), (3, 2));
    }

    #[test]
    fn without_relays_a_nated_listener_is_unreachable() {
        let mut r = reach(1.0, 0.0, 0, 16);
        assert_eq!(r.relay_count(), 0);
        assert_eq!(r.dial(0, 5, 7), None);
        assert!(r.waiting.is_empty() && r.counts.circuits_refused == 1);
    }
}
