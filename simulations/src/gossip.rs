//! Gossip of load adverts, as the node runs gossipsub
//! (`node/src/net/behaviour.rs`): flood publish on, a mesh of D = 4.
//!
//! - Every node is connected to every other (the real mesh is fully
//!   connected; see `network` for which connections are modelled).
//! - The publisher sends one copy straight to each peer it is connected to
//!   (flood publish).
//! - Each node forwards the first copy it accepts to its mesh peers, D of
//!   them chosen at random when it joins (fixed afterwards; gossipsub's
//!   heartbeat would repair a mesh peer that died, here it is simply
//!   skipped), never back to the publisher. Later copies are duplicates
//!   and dropped.
//! - Each copy takes its own latency plus `--advert-delay` (one hop) and is
//!   lost with `--loss`. A copy from a sender the receiver graylists
//!   (`hosts`) is ignored, and so is one across a partition. Hung nodes
//!   forward nothing.
//!
//! So a node receives up to 1 + D copies and misses an advert only if all
//! of them are lost or ignored. Only the nodes that hold the publisher in
//! their peer tables get the advert as a machine input (see
//! `sim::adverts`); for them [`Gossip::spread`] computes when
//! their first copy arrives, following forwarders up to [`DEPTH`] hops
//! behind them (a path of more hops matters only if every shorter one was
//! lost). Nothing is queued per copy: only one arrival per target. Copies
//! are counted for every node in one pass, as if each node's first copy
//! were the publisher's own (it is, unless that copy was lost or ignored).

use meshwork_protocol::Time;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use std::time::Duration;

/// Mesh peers each node forwards to (gossipsub's `mesh_n` in the node).
pub(crate) const MESH_D: usize = 4;
/// Forwarding hops followed behind each target.
const DEPTH: usize = 2;
/// An empty mesh slot.
const NONE: u32 = u32::MAX;

/// What gossip needs to know of the rest of the simulation.
pub(crate) trait World {
    /// Nodes so far (numbered from 0), gone ones included.
    fn len(&self) -> u32;
    /// Is `n` present (not crashed or gone)?
    fn present(&self, n: u32) -> bool;
    /// Does `n` forward what it receives (present and not hung)?
    fn forwards(&self, n: u32) -> bool;
    /// Are `a` and `b` connected?
    fn connected(&self, a: u32, b: u32) -> bool;
    /// Does `to` take a copy `from` sends now (connected, reachable, not graylisted)?
    fn accepts(&self, to: u32, from: u32) -> bool;
    /// The delay of one copy, or `None` if it is lost.
    fn copy_delay(&mut self) -> Option<Duration>;
}

/// Where one advert went.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Spread {
    /// Each target reached and when its first copy arrives.
    pub(crate) arrivals: Vec<(u32, Time)>,
    /// Copies sent over connections, all nodes included.
    pub(crate) copies: u64,
}

/// The gossip mesh.
#[derive(Debug, Default)]
pub(crate) struct Gossip {
    /// The mesh peers of each node.
    mesh: Vec<[u32; MESH_D]>,
    /// The nodes that have each node in their mesh.
    fed_by: Vec<Vec<u32>>,
    /// Mesh peers of each node that are present.
    live_mesh: Vec<u8>,
}

impl Gossip {
    /// The mesh of nodes `0..nodes`, each picking D others at random.
    pub(crate) fn new(nodes: u32, rng: &mut ChaCha8Rng) -> Gossip {
        let mut g = Gossip::default();
        for n in 0..nodes {
            g.join(n, nodes, rng, |_| true);
        }
        g
    }

    /// Node `n` joins the mesh, picking D of the nodes `0..len` that are `present`.
    pub(crate) fn join(&mut self, n: u32, len: u32, rng: &mut ChaCha8Rng, present: impl Fn(u32) -> bool) {
        let others = (0..len).filter(|p| *p != n && present(*p)).count();
        let mut mesh = [NONE; MESH_D];
        let mut picked = 0;
        if others <= MESH_D {
            for p in (0..len).filter(|p| *p != n && present(*p)) {
                mesh[picked] = p;
                picked += 1;
            }
        } else {
            while picked < MESH_D {
                let p = rng.random_range(0..len);
                if p != n && present(p) && !mesh.contains(&p) {
                    mesh[picked] = p;
                    picked += 1;
                }
            }
        }
        let needed = (n.max(len.saturating_sub(1))) as usize + 1;
        if self.mesh.len() < needed {
            self.mesh.resize(needed, [NONE; MESH_D]);
            self.fed_by.resize(needed, Vec::new());
            self.live_mesh.resize(needed, 0);
        }
        for p in mesh.iter().filter(|p| **p != NONE) {
            self.fed_by[*p as usize].push(n);
        }
        self.mesh[n as usize] = mesh;
        self.live_mesh[n as usize] = picked as u8;
    }

    /// Node `n` is gone: the nodes meshed with it forward to one peer fewer.
    pub(crate) fn leave(&mut self, n: u32) {
        for f in self.fed_by.get(n as usize).into_iter().flatten() {
            self.live_mesh[*f as usize] -= 1;
        }
    }

    /// An advert `from` publishes `now`: when each of `targets` gets its
    /// first copy, and how many copies the whole mesh sends.
    pub(crate) fn spread(&self, from: u32, targets: &[u32], now: Time, world: &mut impl World) -> Spread {
        // The targets, then the forwarders up to DEPTH hops behind them.
        let mut set: Vec<u32> = Vec::with_capacity(targets.len());
        let mut index: FxHashMap<u32, usize> = FxHashMap::default();
        let mut add = |n: u32, set: &mut Vec<u32>| {
            if let std::collections::hash_map::Entry::Vacant(v) = index.entry(n) {
                v.insert(set.len());
                set.push(n);
            }
        };
        for t in targets.iter().filter(|t| **t != from) {
            add(*t, &mut set);
        }
        let reached = set.len();
        let mut level = 0..reached;
        for _ in 0..DEPTH {
            let end = set.len();
            for i in level {
                let x = set[i] as usize;
                for q in self.fed_by.get(x).into_iter().flatten() {
                    if *q != from && world.forwards(*q) {
                        add(*q, &mut set);
                    }
                }
            }
            level = end..set.len();
        }
        // Direct copies, then copies from forwarders (one draw per copy).
        let mut at: Vec<Option<Time>> = set
            .iter()
            .map(|x| if world.accepts(*x, from) { world.copy_delay().map(|d| now + d) } else { None })
            .collect();
        let mut edges = Vec::new();
        for (xi, x) in set.iter().enumerate() {
            for q in self.fed_by.get(*x as usize).into_iter().flatten() {
                let Some(&qi) = index.get(q) else { continue };
                if *q != from && world.forwards(*q) && world.accepts(*x, *q) {
                    if let Some(d) = world.copy_delay() {
                        edges.push((qi, xi, d));
                    }
                }
            }
        }
        for _ in 0..DEPTH {
            for &(qi, xi, d) in &edges {
                if let Some(t) = at[qi].map(|t| t + d) {
                    if at[xi].is_none_or(|a| t < a) {
                        at[xi] = Some(t);
                    }
                }
            }
        }
        let arrivals = set[..reached].iter().zip(&at).filter_map(|(x, t)| t.map(|t| (*x, t))).collect();
        Spread { arrivals, copies: self.copies(from, world) }
    }

    /// Copies of one advert of `from`: one to each peer it is connected
    /// to, and each node that accepts it forwards it to its present mesh
    /// peers other than the publisher.
    fn copies(&self, from: u32, world: &impl World) -> u64 {
        let mut copies = 0u64;
        for r in 0..world.len() {
            if r == from || !world.present(r) || !world.connected(from, r) {
                continue;
            }
            copies += 1;
            if world.forwards(r) && world.accepts(r, from) {
                let mesh = &self.mesh[r as usize];
                copies += self.live_mesh[r as usize] as u64 - u64::from(mesh.contains(&from));
            }
        }
        copies
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Ten connected nodes, every copy 1 ms; `refused` (to, from) copies are ignored.
    struct Lan {
        refused: Vec<(u32, u32)>,
        lose_all: bool,
    }

    impl World for Lan {
        fn len(&self) -> u32 {
            10
        }
        fn present(&self, _: u32) -> bool {
            true
        }
        fn forwards(&self, _: u32) -> bool {
            true
        }
        fn connected(&self, a: u32, b: u32) -> bool {
            a != b
        }
        fn accepts(&self, to: u32, from: u32) -> bool {
            to != from && !self.refused.contains(&(to, from))
        }
        fn copy_delay(&mut self) -> Option<Duration> {
            (!self.lose_all).then_some(Duration::from_millis(1))
        }
    }

    fn mesh() -> Gossip {
        Gossip::new(10, &mut ChaCha8Rng::seed_from_u64(1))
    }

    const MS: u64 = 1000;

    #[test]
    fn each_node_meshes_with_d_others() {
        let g = mesh();
        for (n, m) in g.mesh.iter().enumerate() {
            let mut peers: Vec<u32> = m.to_vec();
            peers.sort_unstable();
            peers.dedup();
            assert_eq!(peers.len(), MESH_D, "node {n}: {m:?}");
            assert!(!m.contains(&(n as u32)) && !m.contains(&NONE));
        }
        let small = Gossip::new(3, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(small.live_mesh, [2, 2, 2], "a small mesh takes everyone");
    }

    #[test]
    fn the_publishers_copy_comes_first_and_every_hop_is_counted() {
        let g = mesh();
        let s = g.spread(0, &[1, 2, 3], Time::ZERO, &mut Lan { refused: vec![], lose_all: false });
        let at = Time::from_micros(MS);
        assert_eq!(s.arrivals, [(1, at), (2, at), (3, at)]);
        let forwards = 9 * MESH_D as u64 - g.fed_by[0].len() as u64;
        assert_eq!(s.copies, 9 + forwards, "flood to 9 peers, each forwards to its mesh but the publisher");
    }

    #[test]
    fn an_ignored_copy_is_made_up_by_a_forwarded_one_and_all_lost_is_missed() {
        let g = mesh();
        let target = (1..10).find(|t| g.fed_by[*t as usize].iter().any(|q| *q != 0)).unwrap();
        let mut lan = Lan { refused: vec![(target, 0)], lose_all: false };
        let s = g.spread(0, &[target], Time::ZERO, &mut lan);
        assert_eq!(s.arrivals, [(target, Time::from_micros(2 * MS))], "one hop more");
        lan.refused = (0..10).map(|from| (target, from)).collect();
        assert!(g.spread(0, &[target], Time::ZERO, &mut lan).arrivals.is_empty(), "it ignores everyone");
        let s = g.spread(0, &[target], Time::ZERO, &mut Lan { refused: vec![], lose_all: true });
        assert!(s.arrivals.is_empty());
        assert!(s.copies >= 9, "lost copies were still sent");
    }
}
