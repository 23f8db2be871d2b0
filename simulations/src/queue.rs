//! The event queue: events ordered by virtual time, ties by insertion
//! order, so a run is a pure function of its inputs. The heap holds small
//! keys; the events themselves wait in a slab.

use meshwork_protocol::Time;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Events in time order.
#[derive(Debug)]
pub(crate) struct Queue<E> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
}

impl<E> Queue<E> {
    pub(crate) fn new() -> Queue<E> {
        Queue { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), seq: 0 }
    }

    /// Queues `ev` at `at` (after every event already queued at `at`).
    pub(crate) fn push(&mut self, at: Time, ev: E) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(ev);
                i
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.seq += 1;
        self.heap.push(Reverse((at.as_micros(), self.seq, slot)));
    }

    /// The earliest event.
    pub(crate) fn pop(&mut self) -> Option<(Time, E)> {
        let Reverse((at, _, slot)) = self.heap.pop()?;
        let ev = self.slab[slot as usize].take()?;
        self.free.push(slot);
        Some((Time::from_micros(at), ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_then_insertion_order() {
        let mut q = Queue::new();
        let t = Time::from_micros;
        q.push(t(5), "c");
        q.push(t(1), "a");
        q.push(t(5), "d");
        q.push(t(1), "b");
        let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }
}
