//! The event queue: pending events ordered by (time, sequence number).
//!
//! Two events at the same instant come out in the order they were scheduled
//! (DESIGN.md, determinism rule 2), because every event gets the next value
//! of a counter and ties on time are broken by it.
//!
//! Cancellation is O(1): the event's payload leaves its slot at once and the
//! heap entry becomes a tombstone that [`EventQueue::pop`] skips. Timeouts are
//! scheduled for almost every request and usually cancelled, so tombstones
//! would pile up; when they outnumber live events the heap is compacted in
//! one O(n) pass, which keeps memory within a constant factor of the live
//! events and the cost O(1) amortized per cancellation.
//!
//! ```
//! use stormglass_core::queue::EventQueue;
//! use stormglass_core::time::SimTime;
//!
//! let mut queue = EventQueue::new();
//! let timeout = queue.schedule(SimTime::from_secs(5), "timeout");
//! queue.schedule(SimTime::from_secs(1), "reply");
//! queue.schedule(SimTime::from_secs(1), "log");
//! assert_eq!(queue.cancel(timeout), Some("timeout"));
//! assert_eq!(queue.pop(), Some((SimTime::from_secs(1), "reply")));
//! assert_eq!(queue.pop(), Some((SimTime::from_secs(1), "log")));
//! assert_eq!(queue.pop(), None);
//! ```

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::SimTime;

/// A handle to a scheduled event, for cancelling it.
///
/// It names the event's slot and sequence number, so a handle to an event
/// that already ran or was cancelled is recognised and ignored even after
/// the slot holds another event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    slot: u32,
    seq: u64,
}

/// One heap entry. The payload lives in `slots`, so sifting moves 24 bytes
/// whatever the event type is.
#[derive(Debug, Clone, Copy)]
struct Entry {
    time: SimTime,
    seq: u64,
    slot: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, because `BinaryHeap` is a max-heap and we want the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

#[derive(Debug)]
struct Slot<E> {
    /// Sequence number of the event that holds (or last held) this slot.
    seq: u64,
    event: Option<E>,
}

/// Pending events, earliest first, ties in scheduling order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot<E>>,
    free_slots: Vec<u32>,
    seq_next: u64,
    /// Heap entries whose event was cancelled and not yet skipped or compacted.
    tombstones: usize,
}

/// Below this many tombstones compaction is not worth a pass over the heap.
const TOMBSTONES_MIN_FOR_COMPACTION: usize = 1024;

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// Bytes one pending event holds: its payload slot and its heap entry.
    /// (A cancelled event's heap entry lingers as a tombstone until it is
    /// skipped or compacted: at most one per live entry, beyond the first
    /// 1024.)
    pub const BYTES_PER_EVENT: usize = std::mem::size_of::<Slot<E>>() + std::mem::size_of::<Entry>();

    /// An empty queue.
    pub fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), slots: Vec::new(), free_slots: Vec::new(), seq_next: 0, tombstones: 0 }
    }

    /// An empty queue with room for `capacity` pending events.
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(capacity),
            slots: Vec::with_capacity(capacity),
            free_slots: Vec::new(),
            seq_next: 0,
            tombstones: 0,
        }
    }

    /// Schedules `event` at `time` and returns a handle to cancel it.
    pub fn schedule(&mut self, time: SimTime, event: E) -> EventId {
        let seq = self.seq_next;
        self.seq_next += 1;
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                let entry = &mut self.slots[slot as usize];
                debug_assert!(entry.event.is_none(), "a free slot still holds an event");
                entry.seq = seq;
                entry.event = Some(event);
                slot
            }
            None => {
                // More than 2^32 simultaneously pending events would exhaust
                // memory long before this conversion fails.
                let slot = u32::try_from(self.slots.len()).expect("more than 2^32 pending events");
                self.slots.push(Slot { seq, event: Some(event) });
                slot
            }
        };
        self.heap.push(Entry { time, seq, slot });
        EventId { slot, seq }
    }

    /// Cancels a pending event and returns it; `None` if it already ran or
    /// was cancelled.
    pub fn cancel(&mut self, id: EventId) -> Option<E> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.seq != id.seq {
            return None;
        }
        let event = slot.event.take()?;
        self.free_slots.push(id.slot);
        self.tombstones += 1;
        if self.tombstones >= TOMBSTONES_MIN_FOR_COMPACTION && self.tombstones * 2 > self.heap.len() {
            self.compact();
        }
        Some(event)
    }

    /// Whether the event behind `id` is still pending.
    pub fn is_pending(&self, id: EventId) -> bool {
        self.slots.get(id.slot as usize).is_some_and(|slot| slot.seq == id.seq && slot.event.is_some())
    }

    /// Removes and returns the earliest pending event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        while let Some(entry) = self.heap.pop() {
            let slot = &mut self.slots[entry.slot as usize];
            if slot.seq == entry.seq
                && let Some(event) = slot.event.take()
            {
                self.free_slots.push(entry.slot);
                return Some((entry.time, event));
            }
            self.tombstones -= 1;
        }
        None
    }

    /// The time of the earliest pending event, skipping cancelled ones.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        while let Some(entry) = self.heap.peek() {
            let slot = &self.slots[entry.slot as usize];
            if slot.seq == entry.seq && slot.event.is_some() {
                return Some(entry.time);
            }
            self.heap.pop();
            self.tombstones -= 1;
        }
        None
    }

    /// Number of pending (not cancelled) events.
    pub fn len(&self) -> usize {
        self.heap.len() - self.tombstones
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap entries held, live and cancelled: what the queue's memory grows with.
    pub fn entries_held(&self) -> usize {
        self.heap.len()
    }

    /// Slots allocated for payloads (the high-water mark of pending events).
    pub fn slots_allocated(&self) -> usize {
        self.slots.len()
    }

    /// Drops every tombstone from the heap in one pass.
    fn compact(&mut self) {
        let slots = &self.slots;
        self.heap
            .retain(|entry| slots[entry.slot as usize].seq == entry.seq && slots[entry.slot as usize].event.is_some());
        self.tombstones = 0;
        debug_assert_eq!(self.heap.len(), self.slots.len() - self.free_slots.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    #[test]
    fn equal_times_run_in_scheduling_order() {
        let mut queue = EventQueue::new();
        for i in 0..100u32 {
            queue.schedule(SimTime::from_secs(u64::from(i % 3)), i);
        }
        let mut last = (SimTime::ZERO, None::<u32>);
        while let Some((time, event)) = queue.pop() {
            if time == last.0
                && let Some(previous) = last.1
            {
                assert!(event > previous, "{event} after {previous} at {time}");
            }
            assert!(time >= last.0);
            last = (time, Some(event));
        }
    }

    #[test]
    fn a_stale_handle_never_cancels_the_slot_reuser() {
        let mut queue = EventQueue::new();
        let first = queue.schedule(SimTime::from_secs(1), 'a');
        assert_eq!(queue.pop(), Some((SimTime::from_secs(1), 'a')));
        let second = queue.schedule(SimTime::from_secs(2), 'b');
        assert_eq!(queue.cancel(first), None, "stale handle cancelled a new event");
        assert!(queue.is_pending(second));
        assert_eq!(queue.cancel(second), Some('b'));
        assert_eq!(queue.cancel(second), None);
        assert!(queue.is_empty());
        assert_eq!(queue.peek_time(), None);
    }

    #[test]
    fn ten_million_cancelled_timeouts_keep_memory_bounded() {
        // The request/timeout pattern: each request schedules a timeout far
        // in the future and a reply soon; the reply cancels the timeout.
        let mut queue = EventQueue::new();
        let mut now = SimTime::ZERO;
        let mut held_max = 0;
        for i in 0..10_000_000u64 {
            let timeout = queue.schedule(now + SimDuration::from_secs(30), i);
            queue.schedule(now + SimDuration::from_millis(1), i);
            assert_eq!(queue.cancel(timeout), Some(i));
            let (t, _) = queue.pop().expect("the reply is pending");
            now = t;
            held_max = held_max.max(queue.entries_held());
        }
        assert!(queue.is_empty());
        assert!(held_max <= 2 * TOMBSTONES_MIN_FOR_COMPACTION + 2, "heap grew to {held_max}");
        assert!(queue.slots_allocated() <= 2, "slots grew to {}", queue.slots_allocated());
    }

    proptest::proptest! {
        /// Against a naive model: a sorted list of (time, seq, payload).
        #[test]
        fn matches_a_sorted_list(ops in proptest::collection::vec((0u64..50, 0u8..4), 1..400)) {
            let mut queue = EventQueue::new();
            let mut model: Vec<(u64, u64, usize)> = Vec::new();
            let mut ids = Vec::new();
            for (index, &(time, op)) in ops.iter().enumerate() {
                match op {
                    0 | 1 => {
                        ids.push(queue.schedule(SimTime::from_nanos(time), index));
                        model.push((time, index as u64, index));
                    }
                    2 => {
                        // Cancel an earlier handle, possibly stale.
                        if let Some(&id) = ids.get(time as usize % ids.len().max(1)) {
                            let got = queue.cancel(id);
                            let position = model.iter().position(|&(_, _, p)| Some(p) == got);
                            if let Some(p) = position { model.remove(p); }
                            proptest::prop_assert_eq!(got.is_some(), position.is_some());
                        }
                    }
                    _ => {
                        model.sort();
                        let expect = if model.is_empty() { None } else { Some(model.remove(0)) };
                        let got = queue.pop();
                        proptest::prop_assert_eq!(got.map(|(t, p)| (t.as_nanos(), p)), expect.map(|(t, _, p)| (t, p)));
                    }
                }
                proptest::prop_assert_eq!(queue.len(), model.len());
            }
        }
    }
}
