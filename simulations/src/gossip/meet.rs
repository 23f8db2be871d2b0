//! The arrival at one target, found by searching from both ends: forward
//! from the publisher along the copies it and each forwarder send, and
//! backward from the target along the copies that could reach it, until
//! the two meet on the fastest path. A mesh is an expander, so each side
//! reaches a small part of it, where a forward search alone would reach
//! half the mesh on average before the target.

use super::{Delays, World};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// One side of the search. A node's entry is valid only while its stamp is
/// the current search's.
#[derive(Debug, Default)]
struct Side {
    /// `search` when a path is known (`dist` holds the shortest so far).
    offered: Vec<u32>,
    /// `search` when its shortest path is final.
    settled: Vec<u32>,
    /// Shortest path known, µs.
    dist: Vec<u64>,
    /// (µs, node) of the paths known.
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Side {
    fn begin(&mut self, len: usize, start: u32, search: u32) {
        if self.offered.len() < len {
            self.offered.resize(len, 0);
            self.settled.resize(len, 0);
            self.dist.resize(len, 0);
        }
        self.heap.clear();
        self.offer(start, 0, search);
    }

    fn known(&self, n: u32, search: u32) -> Option<u64> {
        (self.offered[n as usize] == search).then(|| self.dist[n as usize])
    }

    fn offer(&mut self, n: u32, d: u64, search: u32) {
        if self.known(n, search).is_none_or(|old| d < old) {
            self.offered[n as usize] = search;
            self.dist[n as usize] = d;
            self.heap.push(Reverse((d, n)));
        }
    }

    /// The nearest node not yet settled, and its distance.
    fn top(&mut self, search: u32) -> Option<(u64, u32)> {
        while let Some(&Reverse((d, n))) = self.heap.peek() {
            if self.settled[n as usize] != search {
                return Some((d, n));
            }
            self.heap.pop();
        }
        None
    }
}

/// Scratch space of [`meet`], kept between adverts.
#[derive(Debug, Default)]
pub(super) struct Meet {
    search: u32,
    forward: Side,
    backward: Side,
}

/// How long the first copy of an advert `from` publishes takes to reach
/// `to` through `mesh`, or `None` if every path is lost or ignored.
pub(super) fn meet(
    m: &mut Meet,
    mesh: &[Vec<u32>],
    from: u32,
    to: u32,
    delays: &mut Delays,
    world: &mut impl World,
) -> Option<Duration> {
    m.search += 1;
    let s = m.search;
    let len = world.len() as usize;
    m.forward.begin(len, from, s);
    m.backward.begin(len, to, s);
    let mut best = u64::MAX;
    // Once a side has settled every node it can, `best` is final.
    while let (Some((df, f)), Some((db, b))) = (m.forward.top(s), m.backward.top(s)) {
        if df.saturating_add(db) >= best {
            break;
        }
        if df <= db {
            m.forward.settled[f as usize] = s;
            if f != from && !world.forwards(f) {
                continue;
            }
            for &y in &mesh[f as usize] {
                if y == from {
                    continue;
                }
                let Some(w) = delays.draw(f, y, world) else { continue };
                let d = df + w.as_micros() as u64;
                m.forward.offer(y, d, s);
                if let Some(rest) = m.backward.known(y, s) {
                    best = best.min(d + rest);
                }
            }
        } else {
            m.backward.settled[b as usize] = s;
            if b == from {
                continue;
            }
            for &p in &mesh[b as usize] {
                if p != from && !world.forwards(p) {
                    continue;
                }
                let Some(w) = delays.draw(p, b, world) else { continue };
                let d = db + w.as_micros() as u64;
                m.backward.offer(p, d, s);
                if let Some(start) = m.forward.known(p, s) {
                    best = best.min(start + d);
                }
            }
        }
    }
    (best < u64::MAX).then(|| Duration::from_micros(best))
}
