//! Gossip of load adverts, as the node runs gossipsub
//! (`node/src/net/behaviour.rs`, with the numbers of
//! `meshwork_protocol::gossip`): no flood publishing, a mesh of
//! `MESH_N` = 4, lazy gossip to `GOSSIP_LAZY` = 3 peers a heartbeat.
//!
//! - **The mesh.** Links are symmetric, as gossipsub's GRAFT makes them.
//!   A node joining grafts random present peers until it has `MESH_N`,
//!   skipping peers that already have `MESH_N_HIGH` = 8 (their heartbeat
//!   would prune the link again), so every node ends with 4 to 8 mesh
//!   peers when there are enough nodes. When a node is gone its mesh peers
//!   drop it, and one left with fewer than `MESH_N_LOW` = 3 grafts back up
//!   to 4 (the heartbeat's upkeep, done at once here). A hung node stays in
//!   the mesh: its sockets stay open.
//! - **Mesh delivery.** The publisher sends one copy to each of its mesh
//!   peers (`flood_publish(false)`). Each node forwards the first copy it
//!   accepts to its mesh peers except the one it came from and the
//!   publisher (libp2p-gossipsub's `forward_msg` also skips peers whose
//!   duplicate arrived while the first copy was being validated; not
//!   modelled, so copies are counted slightly high); later copies are
//!   duplicates and dropped. Each copy takes
//!   its own latency plus `--advert-delay` (one hop: validation, queues)
//!   and is lost with `--loss`. A copy from a sender the receiver
//!   graylists (`hosts`) is ignored, and so is one across a partition.
//!   Hung nodes forward nothing. A node's first copy comes by the fastest
//!   path through the mesh, usually several hops (about log₄ N). Each
//!   copy's delay and loss is drawn once, when a search first needs it.
//!   [`Gossip::spread`] finds the paths by Dijkstra from the publisher,
//!   stopping once every target is reached; for a single target (a
//!   worker's advert, one submitter) `meet` searches from both ends, which
//!   reaches a small part of the mesh instead of half of it.
//! - **Lazy gossip.** Each heartbeat (`HEARTBEAT` = 1 s, at a phase each
//!   node draws when it joins) a node sends IHAVE, listing the messages it
//!   received in the last `HISTORY_GOSSIP` = 3 heartbeats, to
//!   `GOSSIP_LAZY` random peers outside its mesh (`gossip_factor` is 0); a
//!   peer missing one of them answers IWANT and gets the message (a copy,
//!   with its hop delay). Here that repairs targets that every mesh path
//!   missed (all copies lost or ignored): each node holding the advert,
//!   at each of its 3 heartbeats after it got it, picks the target with
//!   probability 3 / (its peers outside its mesh); the target's copy comes
//!   by the earliest such IHAVE → IWANT → copy whose three messages are
//!   not lost. A repaired target forwards to its mesh like any receiver.
//!   Not modelled: an IHAVE beating a mesh path that was not lost but is
//!   slower than a holder's next heartbeat and a round trip (possible with
//!   a large `--advert-delay`), and the repair of nodes that are not
//!   targets.
//!
//! Only the nodes that hold the publisher in their peer tables get the
//! advert as a machine input (see `sim::adverts`): they are the targets,
//! and only their arrivals are queued, one each. Copies are counted for
//! the whole mesh: exactly for the nodes the search from the publisher
//! reached, and as `mesh peers − 1` forwards for each other node that
//! would forward (present, running, taking the publisher's messages),
//! which a search that stopped early (or `meet`) did not follow. The
//! IWANTs and copies of lazy repairs are counted as well; the IHAVEs a
//! node sends each heartbeat regardless are not.

use meet::{meet, Meet};
use meshwork_protocol::gossip::{GOSSIP_LAZY, HEARTBEAT, HISTORY_GOSSIP, MESH_N, MESH_N_HIGH, MESH_N_LOW};
use meshwork_protocol::Time;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

mod meet;

/// No node (the publisher's "sender").
const NONE: u32 = u32::MAX;

/// What gossip needs to know of the rest of the simulation.
pub(crate) trait World {
    /// Nodes so far (numbered from 0), gone ones included.
    fn len(&self) -> u32;
    /// Is `n` present (not crashed or gone)?
    fn present(&self, n: u32) -> bool;
    /// Does `n` forward what it receives (present and not hung)?
    fn forwards(&self, n: u32) -> bool;
    /// Does `to` take a message `from` sends now (connected, reachable, not graylisted)?
    fn accepts(&self, to: u32, from: u32) -> bool;
    /// The delay of one copy of an advert `from` sends `to`, or `None` if it is lost.
    fn copy_delay(&mut self, from: u32, to: u32) -> Option<Duration>;
    /// The delay of one control message (IHAVE, IWANT) `from` sends `to`, or `None` if it is lost.
    fn control_delay(&mut self, from: u32, to: u32) -> Option<Duration>;
    /// A draw that comes true with probability `p`.
    fn chance(&mut self, p: f64) -> bool;
}

/// Where one advert went.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Spread {
    /// Each target reached and when its first copy arrives, earliest first.
    pub(crate) arrivals: Vec<(u32, Time)>,
    /// Copies sent, all nodes included (lost ones too).
    pub(crate) copies: u64,
    /// IWANTs sent for lazy repairs.
    pub(crate) iwants: u64,
}

/// The gossip mesh.
#[derive(Debug, Default)]
pub(crate) struct Gossip {
    /// The mesh peers of each node (symmetric; gone nodes removed).
    mesh: Vec<Vec<u32>>,
    /// Each node's heartbeat phase, µs into each heartbeat.
    phase: Vec<u64>,
    /// Per-node state of the current spread.
    search: Search,
    /// The same for a spread to one target.
    meet: Meet,
    /// The copies' delays of the current spread.
    delays: Delays,
}

/// Each copy's delay for the advert being spread (`None`: lost or
/// ignored), drawn once, when first needed.
#[derive(Debug, Default)]
struct Delays(FxHashMap<(u32, u32), Option<Duration>>);

impl Delays {
    /// Forgets the last advert's (and the room a large one took).
    fn clear(&mut self) {
        self.0.clear();
        self.0.shrink_to(1 << 12);
    }

    /// The delay of the copy `from` sends `to`.
    fn draw(&mut self, from: u32, to: u32, world: &mut impl World) -> Option<Duration> {
        *self
            .0
            .entry((from, to))
            .or_insert_with(|| world.accepts(to, from).then(|| world.copy_delay(from, to)).flatten())
    }
}

/// Scratch space of [`Gossip::spread`], kept between adverts. A node's
/// entry is valid for this advert only if its stamp is the current one.
#[derive(Debug, Default)]
struct Search {
    advert: u32,
    /// `advert` when reached by this one.
    reached: Vec<u32>,
    /// `advert` when a target of this one.
    target: Vec<u32>,
    /// When each reached node got its first copy, or the earliest copy on
    /// its way to it (if `offered` is `advert`).
    at: Vec<Time>,
    /// `advert` when a copy is on its way.
    offered: Vec<u32>,
    /// Nodes reached, in order.
    order: Vec<u32>,
    /// Copies on their way: (arrival, receiver, sender).
    heap: BinaryHeap<Reverse<(Time, u32, u32)>>,
    /// Targets not reached yet.
    missing: usize,
}

impl Search {
    fn begin(&mut self, len: usize) {
        self.advert += 1;
        if self.reached.len() < len {
            self.reached.resize(len, 0);
            self.target.resize(len, 0);
            self.at.resize(len, Time::ZERO);
            self.offered.resize(len, 0);
        }
        self.order.clear();
        self.heap.clear();
        self.missing = 0;
    }

    fn is_reached(&self, n: u32) -> bool {
        self.reached[n as usize] == self.advert
    }

    fn is_target(&self, n: u32) -> bool {
        self.target[n as usize] == self.advert
    }

    /// Queues a copy from `sender` reaching `n` at `at`, unless an earlier one is on its way.
    fn offer(&mut self, at: Time, n: u32, sender: u32) {
        let i = n as usize;
        if self.offered[i] != self.advert || at < self.at[i] {
            self.offered[i] = self.advert;
            self.at[i] = at;
            self.heap.push(Reverse((at, n, sender)));
        }
    }
}

impl Gossip {
    /// The mesh of nodes `0..nodes`, joining in order.
    pub(crate) fn new(nodes: u32, rng: &mut ChaCha8Rng) -> Gossip {
        let mut g = Gossip::default();
        for n in 0..nodes {
            g.join(n, nodes, rng, |_| true);
        }
        g
    }

    /// Node `n` joins: it draws its heartbeat phase and grafts peers among
    /// the nodes `0..len` that are `present`.
    pub(crate) fn join(&mut self, n: u32, len: u32, rng: &mut ChaCha8Rng, present: impl Fn(u32) -> bool) {
        let needed = (n.max(len.saturating_sub(1))) as usize + 1;
        if self.mesh.len() < needed {
            self.mesh.resize(needed, Vec::new());
            self.phase.resize(needed, 0);
        }
        self.phase[n as usize] = rng.random_range(0..HEARTBEAT.as_micros() as u64);
        self.graft(n, len, rng, &present);
    }

    /// `n` grafts random `present` peers with room (fewer than `MESH_N_HIGH`)
    /// until it has `MESH_N`, or takes all of them if there are too few.
    fn graft(&mut self, n: u32, len: u32, rng: &mut ChaCha8Rng, present: &impl Fn(u32) -> bool) {
        let wanted = MESH_N.saturating_sub(self.mesh[n as usize].len());
        if wanted == 0 {
            return;
        }
        let candidate = |g: &Gossip, p: u32| {
            p != n && present(p) && g.mesh[p as usize].len() < MESH_N_HIGH && !g.mesh[n as usize].contains(&p)
        };
        let candidates: Vec<u32> = (0..len).filter(|p| candidate(self, *p)).collect();
        if candidates.len() <= wanted {
            for p in candidates {
                self.link(n, p);
            }
            return;
        }
        let mut grafted = 0;
        while grafted < wanted {
            let p = candidates[rng.random_range(0..candidates.len())];
            if candidate(self, p) {
                self.link(n, p);
                grafted += 1;
            }
        }
    }

    fn link(&mut self, a: u32, b: u32) {
        self.mesh[a as usize].push(b);
        self.mesh[b as usize].push(a);
    }

    /// Node `n` is gone: its mesh peers drop it, and those left with fewer
    /// than `MESH_N_LOW` graft back up to `MESH_N` among the nodes `0..len`
    /// that are `present`.
    pub(crate) fn leave(&mut self, n: u32, len: u32, rng: &mut ChaCha8Rng, present: impl Fn(u32) -> bool) {
        let Some(peers) = self.mesh.get_mut(n as usize).map(std::mem::take) else { return };
        for p in peers {
            self.mesh[p as usize].retain(|q| *q != n);
            if self.mesh[p as usize].len() < MESH_N_LOW {
                self.graft(p, len, rng, &present);
            }
        }
    }

    /// An advert `from` publishes `now`: when each of `targets` gets its
    /// first copy, and how many copies and IWANTs the whole mesh sends.
    pub(crate) fn spread(&mut self, from: u32, targets: &[u32], now: Time, world: &mut impl World) -> Spread {
        // The publisher sends to each of its mesh peers.
        let mut spread = Spread { copies: self.mesh[from as usize].len() as u64, ..Spread::default() };
        self.delays.clear();
        let s = &mut self.search;
        s.begin(world.len() as usize);
        let targets: Vec<u32> = targets.iter().copied().filter(|t| *t != from && world.present(*t)).collect();
        if let [to] = targets[..] {
            // One target (a worker's advert, one submitter): search from both ends.
            if let Some(d) = meet(&mut self.meet, &self.mesh, from, to, &mut self.delays, world) {
                spread.arrivals.push((to, now + d));
                spread.copies += self.unreached_forwards(from, world);
                return spread;
            }
        }
        for t in &targets {
            if !s.is_target(*t) {
                s.target[*t as usize] = s.advert;
                s.missing += 1;
            }
        }
        s.offer(now, from, NONE);
        self.run(from, world, &mut spread);
        if self.search.missing > 0 {
            // Every mesh path to some target was lost: lazy gossip.
            let missed: Vec<u32> =
                targets.iter().copied().filter(|t| self.search.is_target(*t) && !self.search.is_reached(*t)).collect();
            for t in missed {
                self.repair(t, world, &mut spread);
            }
            self.run(from, world, &mut spread);
        }
        if !self.search.heap.is_empty() {
            // Stopped once the targets were reached: the rest forwards too.
            spread.copies += self.unreached_forwards(from, world);
        }
        spread
    }

    /// Copies the nodes the search did not reach send when they get an
    /// advert of `from`: each that would take it forwards it to its mesh
    /// peers but the sender.
    fn unreached_forwards(&self, from: u32, world: &impl World) -> u64 {
        (0..world.len())
            .filter(|r| *r != from && !self.search.is_reached(*r) && world.forwards(*r) && world.accepts(*r, from))
            .map(|r| self.mesh[r as usize].len().saturating_sub(1) as u64)
            .sum()
    }

    /// Delivers the copies on their way in order of arrival, each node
    /// forwarding its first, until every target is reached or none is left.
    fn run(&mut self, from: u32, world: &mut impl World, spread: &mut Spread) {
        let s = &mut self.search;
        while s.missing > 0 {
            let Some(Reverse((at, x, sender))) = s.heap.pop() else { return };
            if s.is_reached(x) {
                continue;
            }
            s.reached[x as usize] = s.advert;
            s.order.push(x);
            if s.is_target(x) {
                s.missing -= 1;
                spread.arrivals.push((x, at));
            }
            if x != from && !world.forwards(x) {
                continue;
            }
            for &y in &self.mesh[x as usize] {
                if y == sender || y == from {
                    continue;
                }
                spread.copies += u64::from(x != from);
                if !s.is_reached(y) {
                    if let Some(d) = self.delays.draw(x, y, world) {
                        s.offer(at + d, y, x);
                    }
                }
            }
        }
    }

    /// Lazy gossip to target `t`, which no mesh copy reached: queues the
    /// copy of the earliest IHAVE → IWANT → copy from a node that has the advert.
    fn repair(&mut self, t: u32, world: &mut impl World, spread: &mut Spread) {
        let present = (0..world.len()).filter(|n| world.present(*n)).count();
        // Each IHAVE that reaches `t`: when, whether its IWANT arrives (and
        // a copy is sent), and when that copy arrives.
        let mut offers: Vec<(Time, bool, Option<Time>, u32)> = Vec::new();
        for &h in &self.search.order {
            if !world.forwards(h) || self.mesh[t as usize].contains(&h) || !world.accepts(t, h) {
                continue;
            }
            let outside = present.saturating_sub(1 + self.mesh[h as usize].len()).max(1);
            let p = (GOSSIP_LAZY as f64 / outside as f64).min(1.0);
            let mut beat = self.next_heartbeat(h, self.search.at[h as usize]);
            for _ in 0..HISTORY_GOSSIP {
                if world.chance(p) {
                    if let Some(ihave) = world.control_delay(h, t) {
                        let asked = beat + ihave;
                        let wanted = world.control_delay(t, h).map(|w| asked + w);
                        let arrives = wanted.and_then(|w| world.copy_delay(h, t).map(|d| w + d));
                        offers.push((asked, wanted.is_some(), arrives, h));
                    }
                }
                beat = beat + HEARTBEAT;
            }
        }
        let best = offers.iter().filter_map(|(.., arrives, h)| arrives.map(|a| (a, *h))).min();
        // `t` answers each IHAVE with an IWANT until it has the advert.
        for (asked, wanted, ..) in &offers {
            if best.is_none_or(|(a, _)| *asked < a) {
                spread.iwants += 1;
                spread.copies += u64::from(*wanted);
            }
        }
        if let Some((c, h)) = best {
            self.search.offer(c, t, h);
        }
    }

    /// `n`'s first heartbeat after `t`.
    fn next_heartbeat(&self, n: u32, t: Time) -> Time {
        let (phase, period) = (self.phase[n as usize], HEARTBEAT.as_micros() as u64);
        let t = t.as_micros();
        let beats = if t < phase { 0 } else { (t - phase) / period + 1 };
        Time::from_micros(phase + beats * period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rustc_hash::FxHashMap;

    const MS: u64 = 1000;

    fn ms(n: u64) -> Time {
        Time::from_micros(n * MS)
    }

    /// A hand-built mesh: each link's one-way latency in ms, some copies lost.
    struct Graph {
        nodes: u32,
        latency: FxHashMap<(u32, u32), u64>,
        /// (from, to) copies that are lost.
        lost: Vec<(u32, u32)>,
        /// Control messages are lost too.
        lose_control: bool,
    }

    impl World for Graph {
        fn len(&self) -> u32 {
            self.nodes
        }
        fn present(&self, _: u32) -> bool {
            true
        }
        fn forwards(&self, _: u32) -> bool {
            true
        }
        fn accepts(&self, to: u32, from: u32) -> bool {
            to != from
        }
        fn copy_delay(&mut self, from: u32, to: u32) -> Option<Duration> {
            let ms = self.latency.get(&(from.min(to), from.max(to))).copied().unwrap_or(1);
            (!self.lost.contains(&(from, to))).then_some(Duration::from_millis(ms))
        }
        fn control_delay(&mut self, _: u32, _: u32) -> Option<Duration> {
            (!self.lose_control).then_some(Duration::from_millis(1))
        }
        /// In a mesh this small every peer outside the mesh is picked.
        fn chance(&mut self, p: f64) -> bool {
            p >= 1.0
        }
    }

    /// 0 ─5─ 1 ─2─ 4        the publisher 0 reaches 2, 3, 1, 4 at 1, 2, 3, 5 ms:
    /// │     │     │        1 by 0-2-3-1 (not its own link to 0), 4 by 0-2-3-1-4
    /// 1     1    10        (not by 3-4). Heartbeats of every node at whole seconds.
    /// │     │     │
    /// 2 ─1─ 3 ────┘
    fn diamond(lost: Vec<(u32, u32)>) -> (Gossip, Graph) {
        let links = [(0, 1, 5), (0, 2, 1), (1, 3, 1), (2, 3, 1), (3, 4, 10), (1, 4, 2)];
        let mut g = Gossip { mesh: vec![Vec::new(); 5], phase: vec![0; 5], ..Gossip::default() };
        for (a, b, _) in links {
            g.link(a, b);
        }
        let latency = links.iter().map(|(a, b, l)| ((*a, *b), *l)).collect();
        (g, Graph { nodes: 5, latency, lost, lose_control: false })
    }

    #[test]
    fn the_mesh_is_symmetric_with_four_to_eight_peers_each() {
        let g = Gossip::new(200, &mut ChaCha8Rng::seed_from_u64(1));
        for (n, peers) in g.mesh.iter().enumerate() {
            let mut sorted = peers.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), peers.len(), "node {n}: {peers:?}");
            assert!((MESH_N..=MESH_N_HIGH).contains(&peers.len()), "node {n}: {peers:?}");
            assert!(!peers.contains(&(n as u32)));
            assert!(peers.iter().all(|p| g.mesh[*p as usize].contains(&(n as u32))), "node {n}: not symmetric");
        }
        let small = Gossip::new(3, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(small.mesh.iter().all(|m| m.len() == 2), "a small mesh takes everyone: {:?}", small.mesh);
    }

    #[test]
    fn a_node_left_with_too_few_mesh_peers_grafts_more() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut g = Gossip::new(50, &mut rng);
        for gone in 0..10u32 {
            g.leave(gone, 50, &mut rng, |p| p >= 10);
        }
        for (n, peers) in g.mesh.iter().enumerate().skip(10) {
            assert!(peers.iter().all(|p| *p >= 10), "node {n} still meshes with a gone node: {peers:?}");
            assert!((MESH_N_LOW..=MESH_N_HIGH).contains(&peers.len()), "node {n}: {peers:?}");
        }
        assert!(g.mesh[..10].iter().all(Vec::is_empty));
    }

    #[test]
    fn an_advert_reaches_every_node_by_its_shortest_mesh_path() {
        let (mut g, mut world) = diamond(vec![]);
        let s = g.spread(0, &[1, 2, 3, 4], Time::ZERO, &mut world);
        assert_eq!(s.arrivals, [(2, ms(1)), (3, ms(2)), (1, ms(3)), (4, ms(5))]);
        // 0 → 1, 2; 2 → 3; 3 → 1, 4; 1 → 4 (not back to 3 or the publisher); 4 → 3.
        assert_eq!((s.copies, s.iwants), (7, 0), "no flood publish, no lazy gossip");
        let only_4 = g.spread(0, &[4], Time::ZERO, &mut world);
        assert_eq!(only_4.arrivals, [(4, ms(5))]);
        // Counted, not followed: each node is taken to forward to its mesh
        // but one peer, so 1 (meshed with the publisher, reached through 3)
        // is counted as sending to 3 and 4, where it sends to 4 only.
        assert_eq!(only_4.copies, 8);
        let later = g.spread(3, &[0], ms(100), &mut world);
        assert_eq!(later.arrivals, [(0, ms(102))], "3 → 2 → 0");
    }

    /// 300 nodes, every 17th hung; each link direction's latency and loss
    /// fixed, so any search sees the same copies.
    struct Fixed;

    impl World for Fixed {
        fn len(&self) -> u32 {
            300
        }
        fn present(&self, _: u32) -> bool {
            true
        }
        fn forwards(&self, n: u32) -> bool {
            n % 17 != 5
        }
        fn accepts(&self, to: u32, from: u32) -> bool {
            to != from
        }
        fn copy_delay(&mut self, from: u32, to: u32) -> Option<Duration> {
            let (from, to) = (u64::from(from), u64::from(to));
            ((from * 31 + to) % 11 != 0).then(|| Duration::from_micros((from * 7919 + to * 104_729) % 5000 + 100))
        }
        fn control_delay(&mut self, _: u32, _: u32) -> Option<Duration> {
            Some(Duration::from_millis(1))
        }
        fn chance(&mut self, _: f64) -> bool {
            true
        }
    }

    #[test]
    fn an_advert_nobody_takes_is_still_sent() {
        let (mut g, mut world) = diamond(vec![]);
        let s = g.spread(0, &[], Time::ZERO, &mut world);
        assert_eq!((s.arrivals.len(), s.copies), (0, 8), "2 from the publisher, then each node's mesh but one");
    }

    #[test]
    fn searching_from_both_ends_finds_the_fastest_path_as_one_search_does() {
        let mut g = Gossip::new(300, &mut ChaCha8Rng::seed_from_u64(3));
        for (from, to) in (0..300).map(|i| ((i * 7) % 300, (i * 13 + 1) % 300)).filter(|(f, t)| f != t) {
            let alone = g.spread(from, &[to], Time::ZERO, &mut Fixed).arrivals;
            // Two targets: the search from the publisher alone.
            let other = if (to + 1) % 300 == from { (to + 2) % 300 } else { (to + 1) % 300 };
            let both = g.spread(from, &[to, other], Time::ZERO, &mut Fixed).arrivals;
            assert_eq!(alone.first(), both.iter().find(|(n, _)| *n == to), "{from} → {to}");
        }
    }

    #[test]
    fn a_target_every_mesh_copy_missed_gets_the_advert_by_lazy_gossip() {
        // 4's mesh peers, 1 and 3, lose their copies to it. 0 and 2 hold the
        // advert, are outside 4's mesh and announce it at 1 s: IHAVE, IWANT,
        // copy, 1 ms each.
        let (mut g, mut world) = diamond(vec![(1, 4), (3, 4)]);
        let s = g.spread(0, &[4], Time::ZERO, &mut world);
        assert_eq!(s.arrivals, [(4, ms(1003))]);
        assert_eq!(s.iwants, 2, "4 answers the IHAVEs of 0 and 2 it got before its copy");
        world.lose_control = true;
        assert!(g.spread(0, &[4], Time::ZERO, &mut world).arrivals.is_empty(), "every IHAVE lost");
    }

    #[test]
    fn lazy_gossip_repairs_a_publisher_whose_mesh_copies_are_all_lost() {
        // 0's copies to 1 and 2 are lost: at its heartbeat it announces the
        // advert to 3 and 4 (outside its mesh), and they forward it on.
        let (mut g, mut world) = diamond(vec![(0, 1), (0, 2)]);
        let s = g.spread(0, &[1, 2, 3, 4], Time::ZERO, &mut world);
        assert_eq!(s.arrivals, [(3, ms(1003)), (4, ms(1003)), (1, ms(1004)), (2, ms(1004))]);
        assert_eq!(s.iwants, 2);
    }
}
