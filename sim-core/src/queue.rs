//! The event queue: pending events ordered by (time, sequence number).
//!
//! Two events at the same instant come out in the order they were scheduled
//! (DESIGN.md, determinism rule 2), because every event gets the next value
//! of a counter and ties on time are broken by it.
//!
//! Most events of a model are scheduled a constant delay ahead (a link hop,
//! an attempt timeout), so events of one such class arrive in time order.
//! Besides the binary heap the queue keeps a few FIFO *lanes*, each sorted by
//! (time, sequence number): a new event is appended to the lane whose last
//! event is the latest one not after it (best fit, an empty lane if none
//! fits), and only an event earlier than the back of every lane goes into the
//! heap. A lane stays sorted because its new entry is not earlier than its
//! back and has a larger sequence number; [`EventQueue::pop`] takes the
//! smallest (time, seq) of the heap top and the lane fronts. The order is
//! the same total order as a single heap, whichever container an event sits
//! in: only the cost changes (an O(1) push and pop instead of O(log n)).
//!
//! Cancellation is O(1): the event's payload leaves its slot at once and the
//! heap or lane entry becomes a tombstone that [`EventQueue::pop`] skips.
//! Timeouts are scheduled for almost every request and usually cancelled, so
//! tombstones would pile up; when they outnumber live events the heap and
//! the lanes are compacted in one O(n) pass, which keeps memory within a
//! constant factor of the live events and the cost O(1) amortized per
//! cancellation.
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
use std::collections::{BinaryHeap, VecDeque};

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

/// One heap or lane entry. The payload lives in `slots`, so sifting moves 24
/// bytes whatever the event type is.
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
    /// FIFO lanes, each sorted by (time, seq): see the module documentation.
    lanes: [VecDeque<Entry>; LANES],
    slots: Vec<Slot<E>>,
    free_slots: Vec<u32>,
    seq_next: u64,
    /// Where [`EventQueue::peek_time`] found the earliest live entry, for the
    /// [`EventQueue::pop`] that usually follows; cleared by any change.
    peeked: Option<Source>,
    /// Heap and lane entries whose event was cancelled and not yet skipped or
    /// compacted.
    tombstones: usize,
}

/// FIFO lanes beside the heap. Every schedule and pop scans them all, so
/// they are few: four take the link hops and timeouts of the seed cascade
/// (about half of its events; the random compute times go to the heap).
/// Eight also took the compute times, but made the engine bench's hold
/// workload (random delays only) 1.3x slower.
const LANES: usize = 4;

/// Where the earliest entry sits.
#[derive(Debug, Clone, Copy)]
enum Source {
    Heap,
    Lane(usize),
}

/// Below this many tombstones compaction is not worth a pass over the heap.
const TOMBSTONES_MIN_FOR_COMPACTION: usize = 1024;

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// Bytes one pending event holds: its payload slot and its heap or lane
    /// entry.
    /// (A cancelled event's heap entry lingers as a tombstone until it is
    /// skipped or compacted: at most one per live entry, beyond the first
    /// 1024.)
    pub const BYTES_PER_EVENT: usize = std::mem::size_of::<Slot<E>>() + std::mem::size_of::<Entry>();

    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            lanes: Default::default(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            seq_next: 0,
            peeked: None,
            tombstones: 0,
        }
    }

    /// An empty queue with room for `capacity` pending events.
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(capacity),
            lanes: Default::default(),
            slots: Vec::with_capacity(capacity),
            free_slots: Vec::new(),
            seq_next: 0,
            peeked: None,
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
        self.peeked = None;
        let entry = Entry { time, seq, slot };
        match self.lane_for(time) {
            Some(lane) => self.lanes[lane].push_back(entry),
            None => self.heap.push(entry),
        }
        EventId { slot, seq }
    }

    /// The lane an event at `time` can join without breaking its order: the
    /// one whose back is the latest not after `time` (keeping the other lanes
    /// free for earlier events), else an empty one; `None` means the heap.
    #[inline]
    fn lane_for(&self, time: SimTime) -> Option<usize> {
        let mut best: Option<(usize, SimTime)> = None;
        let mut empty = None;
        for (index, lane) in self.lanes.iter().enumerate() {
            match lane.back() {
                Some(back) if back.time <= time && best.is_none_or(|(_, t)| back.time > t) => {
                    best = Some((index, back.time));
                }
                Some(_) => {}
                None => empty = empty.or(Some(index)),
            }
        }
        best.map(|(index, _)| index).or(empty)
    }

    /// Where the smallest (time, seq) entry, live or cancelled, sits.
    #[inline]
    fn earliest(&self) -> Option<(Source, Entry)> {
        let mut earliest = self.heap.peek().map(|&entry| (Source::Heap, entry));
        for (index, lane) in self.lanes.iter().enumerate() {
            if let Some(&front) = lane.front()
                && earliest.is_none_or(|(_, e)| (front.time, front.seq) < (e.time, e.seq))
            {
                earliest = Some((Source::Lane(index), front));
            }
        }
        earliest
    }

    /// Removes and returns the front entry of `source`, which has one.
    #[inline]
    fn remove(&mut self, source: Source) -> Entry {
        let entry = match source {
            Source::Heap => self.heap.pop(),
            Source::Lane(index) => self.lanes[index].pop_front(),
        };
        entry.expect("the source has a front entry")
    }

    /// Cancels a pending event and returns it; `None` if it already ran or
    /// was cancelled.
    pub fn cancel(&mut self, id: EventId) -> Option<E> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.seq != id.seq {
            return None;
        }
        let event = slot.event.take()?;
        self.peeked = None;
        self.free_slots.push(id.slot);
        self.tombstones += 1;
        if self.tombstones >= TOMBSTONES_MIN_FOR_COMPACTION && self.tombstones * 2 > self.entries_held() {
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
        if let Some(source) = self.peeked.take() {
            let entry = self.remove(source);
            let event = self.slots[entry.slot as usize].event.take().expect("peek_time saw it live");
            self.free_slots.push(entry.slot);
            return Some((entry.time, event));
        }
        while let Some((source, entry)) = self.earliest() {
            self.remove(source);
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
        while let Some((source, entry)) = self.earliest() {
            let slot = &self.slots[entry.slot as usize];
            if slot.seq == entry.seq && slot.event.is_some() {
                self.peeked = Some(source);
                return Some(entry.time);
            }
            self.remove(source);
            self.tombstones -= 1;
        }
        None
    }

    /// Number of pending (not cancelled) events.
    pub fn len(&self) -> usize {
        self.entries_held() - self.tombstones
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap and lane entries held, live and cancelled: what the queue's
    /// memory grows with.
    pub fn entries_held(&self) -> usize {
        self.heap.len() + self.lanes.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Slots allocated for payloads (the high-water mark of pending events).
    pub fn slots_allocated(&self) -> usize {
        self.slots.len()
    }

    /// Drops every tombstone from the heap and the lanes in one pass (a
    /// lane keeps its order).
    fn compact(&mut self) {
        let slots = &self.slots;
        let live =
            |entry: &Entry| slots[entry.slot as usize].seq == entry.seq && slots[entry.slot as usize].event.is_some();
        self.heap.retain(live);
        for lane in &mut self.lanes {
            lane.retain(live);
        }
        self.tombstones = 0;
        debug_assert_eq!(self.entries_held(), self.slots.len() - self.free_slots.len());
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

    /// Entries in the lanes (the rest are in the heap).
    fn lane_entries<E>(queue: &EventQueue<E>) -> usize {
        queue.lanes.iter().map(VecDeque::len).sum()
    }

    #[test]
    fn lanes_and_heap_pop_in_time_then_seq_order() {
        // Two constant-delay classes (they fill lanes) and out-of-order
        // events that only the heap takes once every lane is busy.
        let mut queue = EventQueue::new();
        let mut expect = Vec::new();
        for i in 0..200u64 {
            for (delay, tag) in [(500, 0), (5_000, 1), (0, 2)] {
                let time = SimTime::from_nanos(i * 100 + delay);
                let seq = expect.len() as u64;
                queue.schedule(time, (seq, tag));
                expect.push((time, seq));
            }
            // Descending times: each fits no lane, so the heap takes it.
            let time = SimTime::from_nanos(100_000 - i * 7);
            let seq = expect.len() as u64;
            queue.schedule(time, (seq, 3));
            expect.push((time, seq));
        }
        assert!(lane_entries(&queue) > 0 && !queue.heap.is_empty(), "both containers are used");
        expect.sort();
        let mut got = Vec::new();
        while let Some((time, (seq, _))) = queue.pop() {
            got.push((time, seq));
        }
        assert_eq!(got, expect);
    }

    #[test]
    fn an_event_cancelled_in_a_lane_never_runs() {
        let mut queue = EventQueue::new();
        let ids: Vec<_> = (0..10u64).map(|i| queue.schedule(SimTime::from_secs(i), i)).collect();
        assert_eq!(lane_entries(&queue), 10, "a time-ordered stream goes to the lanes");
        assert_eq!(queue.cancel(ids[0]), Some(0)); // at a lane front
        assert_eq!(queue.cancel(ids[5]), Some(5)); // inside a lane
        assert_eq!(queue.cancel(ids[5]), None);
        assert_eq!(queue.len(), 8);
        assert_eq!(queue.peek_time(), Some(SimTime::from_secs(1)));
        let order: Vec<u64> = std::iter::from_fn(|| queue.pop().map(|(_, i)| i)).collect();
        assert_eq!(order, [1, 2, 3, 4, 6, 7, 8, 9]);
        assert_eq!(queue.entries_held(), 0);
    }

    #[test]
    fn tombstones_in_lanes_are_compacted() {
        // Timeouts a constant 30 s ahead all sit in a lane and are all
        // cancelled: compaction must drop them from the lane.
        let mut queue = EventQueue::new();
        let mut held_max = 0;
        for i in 0..100_000u64 {
            let id = queue.schedule(SimTime::from_millis(i) + SimDuration::from_secs(30), i);
            assert_eq!(queue.cancel(id), Some(i));
            held_max = held_max.max(queue.entries_held());
        }
        assert!(queue.is_empty());
        assert!(held_max <= TOMBSTONES_MIN_FOR_COMPACTION, "lanes grew to {held_max}");
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
