//! The event queue: pending events ordered by (time, sequence number).
//!
//! Two events at the same instant come out in the order they were scheduled
//! (ARCHITECTURE.md, invariant 2), because every event gets the next value
//! of a counter and ties on time are broken by it.
//!
//! An entry is the event's time, its sequence number, a slot index and the
//! payload inline: 16 bytes plus the payload. Popping an event touches its
//! entry and nothing else. That matters once 10^5 events are pending and the
//! heap outgrows the caches: a separate payload array, or a wider entry, cost
//! one more cache miss per event. Sequence numbers are `u32` to keep the
//! entry that small; when they run out (after 4 x 10^9 events) the pending
//! entries are renumbered 1, 2, ... in their order, which changes no order.
//!
//! Most events of a model are scheduled a constant delay ahead (a link hop,
//! an attempt timeout), so events of one such class arrive in time order.
//! Besides a heap (`heap.rs`) the queue keeps a few FIFO *lanes*, each holding
//! one *delay*: the events scheduled that far ahead of the queue's clock
//! (the time of the last event popped, which never goes back). A lane stays
//! sorted by (time, sequence number) because its new entry is the same delay
//! ahead of a clock that has not gone back, and has a larger sequence
//! number. A delay gets a lane when it comes back soon (it is among the last
//! few delays that found none) and a lane is empty; the lane left unused
//! longest is taken. Random delays almost never repeat, so they go to the
//! heap without disturbing the lanes; a caller that knows its delay is
//! random says so with [`EventQueue::schedule_random`] and skips the look
//! for a lane. [`EventQueue::pop`] takes the smallest (time, seq) of the
//! heap top and the lane fronts. The order is the same
//! total order as a single heap, whichever container an event sits in: only
//! the cost changes (an O(1) push and pop instead of O(log n)).
//!
//! Only an event scheduled with [`EventQueue::schedule_cancellable`] can be
//! cancelled; most events (link hops, compute steps, arrivals) never are,
//! and they skip the bookkeeping. A cancellable event holds a *slot* that
//! names the pending entry owning it. Cancelling is O(1): the slot is freed
//! at once and the entry becomes a tombstone that [`EventQueue::pop`] skips,
//! because its slot no longer names it. Timeouts are scheduled for almost
//! every request and usually cancelled, so tombstones would pile up; when
//! they outnumber live events the heap and the lanes are compacted in one
//! O(n) pass, which keeps memory within a constant factor of the live events
//! and the cost O(1) amortized per cancellation.
//!
//! ```
//! use stormglass_core::queue::EventQueue;
//! use stormglass_core::time::SimTime;
//!
//! let mut queue = EventQueue::new();
//! let timeout = queue.schedule_cancellable(SimTime::from_secs(5), "timeout");
//! queue.schedule(SimTime::from_secs(1), "reply");
//! queue.schedule(SimTime::from_secs(1), "log");
//! assert!(queue.cancel(timeout));
//! assert!(!queue.cancel(timeout), "cancelled once only");
//! assert_eq!(queue.pop(), Some((SimTime::from_secs(1), "reply")));
//! assert_eq!(queue.pop(), Some((SimTime::from_secs(1), "log")));
//! assert_eq!(queue.pop(), None);
//! ```

use std::num::NonZeroU64;

use crate::heap::{RankHeap, Ranked};
use crate::ring::Ring;
use crate::time::SimTime;

/// A handle to a cancellable event, for cancelling it.
///
/// It names the event's slot and the slot's generation, so a handle to an
/// event that already ran or was cancelled is recognised and ignored even
/// after the slot holds another event. Generations are never 0, which keeps
/// an `Option<EventId>` (a model's "timeout pending, if any") at 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    slot: u32,
    generation: NonZeroU64,
}

/// One heap or lane entry, payload included.
#[derive(Debug, Clone, Copy)]
struct Entry<E> {
    time: SimTime,
    seq: u32,
    /// The event's slot if it is cancellable, else [`NO_SLOT`].
    slot: u32,
    event: E,
}

/// The `slot` of an event that cannot be cancelled.
const NO_SLOT: u32 = u32::MAX;

impl<E: Copy> Ranked for Entry<E> {
    /// The (time, seq) order as one integer: comparing two is one
    /// branch-free 128-bit compare, which matters because the heap's sifting
    /// is made of comparisons whose outcome no branch predictor can guess.
    #[inline]
    fn rank(&self) -> u128 {
        (u128::from(self.time.as_nanos()) << 64) | u128::from(self.seq)
    }
}

/// The bookkeeping of one cancellable event.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Sequence number of the pending entry that owns the slot, or [`FREE`].
    owner: u32,
    /// Counts the slot's owners, so that a handle to an earlier owner is
    /// told apart.
    generation: NonZeroU64,
}

/// A slot's owner when no pending event owns it (sequence numbers start at
/// 1).
const FREE: u32 = 0;

/// Pending events, earliest first, ties in scheduling order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: RankHeap<Entry<E>>,
    /// FIFO lanes, each sorted by (time, seq): see the module documentation.
    lanes: [Ring<Entry<E>>; LANES],
    /// The lane with the smallest front: a pop from the heap leaves it as it
    /// is, so only a pop from a lane (or a new front) looks again.
    lane_first: usize,
    /// That lane's front rank ([`EMPTY_LANE`] if every lane is empty), kept
    /// beside it: every pop compares the heap's top with it.
    lane_first_rank: u128,
    /// The lane with the smallest front among the others, if known
    /// (`lane_runner_up_rank` is then not [`UNKNOWN_RANK`]): when the first
    /// lane's pop leaves it empty or behind, this lane comes first, without
    /// a scan. The link-hop lane of a model is usually emptied by its pop
    /// and refilled by the next hop, which makes the lane it overtakes the
    /// runner-up again, so most lane pops need no scan.
    lane_runner_up: usize,
    /// That lane's front rank ([`EMPTY_LANE`] if every other lane is empty),
    /// or [`UNKNOWN_RANK`]. With these two ranks, the lanes' other fronts
    /// are only needed by a scan, which is rare: it reads them from the
    /// lanes, and no pop or push keeps them.
    lane_runner_up_rank: u128,
    /// The delay each lane holds (kept while it is empty, so the delay comes
    /// back to it), in nanoseconds ahead of `clock`.
    lane_delays: [u64; LANES],
    /// The sequence number of each lane's latest entry: an empty lane taken
    /// by a new delay is the one left unused longest.
    lane_used: [u32; LANES],
    /// Delays that found no lane lately: one that comes back gets a lane.
    recent_delays: [u64; RECENT_DELAYS],
    recent_next: usize,
    /// The time of the latest event popped (never earlier than before):
    /// delays are measured from it.
    clock: SimTime,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    seq_next: u32,
    /// Where sequence numbers run out and the entries are renumbered: `u32`
    /// MAX, lower in tests.
    seq_limit: u32,
    generation_next: NonZeroU64,
    /// Heap and lane entries whose event was cancelled and not yet skipped or
    /// compacted.
    tombstones: usize,
}

/// Whether a held entry is a tombstone: cancellable, and its slot no longer
/// names it.
#[inline]
fn is_cancelled<E>(slots: &[Slot], entry: &Entry<E>) -> bool {
    entry.slot != NO_SLOT && slots[entry.slot as usize].owner != entry.seq
}

/// FIFO lanes beside the heap. Every schedule (but `schedule_random`)
/// compares its delay with each lane's, and a pop with no runner-up known
/// scans their fronts, so they are few: the seed cascade has three constant
/// delays (a link hop and two attempt timeouts), over half of its events;
/// its random compute times and arrivals go to the heap.
const LANES: usize = 4;

/// How many recent lane-less delays a new delay is compared with.
const RECENT_DELAYS: usize = 4;

/// A delay no lane holds yet (a real one would be an event at the end of
/// time, which a lane may hold as well as any other).
const NO_DELAY: u64 = u64::MAX;

/// The front rank of an empty lane: above every real rank, whose low 64
/// bits hold a `u32` sequence number.
const EMPTY_LANE: u128 = u128::MAX;

/// The runner-up lane's rank when it is not known: no real rank is 0, since
/// sequence numbers start at 1.
const UNKNOWN_RANK: u128 = 0;

/// Where the earliest entry sits.
#[derive(Debug, Clone, Copy)]
enum Source {
    Heap,
    Lane(usize),
}

/// Below this many tombstones compaction is not worth a pass over the heap.
const TOMBSTONES_MIN_FOR_COMPACTION: usize = 1024;

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    /// Bytes one pending event holds: its heap or lane entry, payload
    /// included, and for a cancellable event its slot.
    /// (A cancelled event's entry lingers as a tombstone until it is
    /// skipped or compacted: at most one per live entry, beyond the first
    /// 1024.)
    pub const BYTES_PER_EVENT: usize = std::mem::size_of::<Entry<E>>() + std::mem::size_of::<Slot>();

    /// An empty queue.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty queue with room for `capacity` pending events in its heap.
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            heap: RankHeap::with_capacity(capacity),
            lanes: [const { Ring::new() }; LANES],
            lane_first: 0,
            lane_first_rank: EMPTY_LANE,
            lane_runner_up: 0,
            lane_runner_up_rank: EMPTY_LANE,
            lane_delays: [NO_DELAY; LANES],
            lane_used: [0; LANES],
            recent_delays: [NO_DELAY; RECENT_DELAYS],
            recent_next: 0,
            clock: SimTime::ZERO,
            slots: Vec::new(),
            free_slots: Vec::new(),
            seq_next: FREE + 1,
            seq_limit: u32::MAX,
            generation_next: NonZeroU64::MIN,
            tombstones: 0,
        }
    }

    /// A queue that runs out of sequence numbers at `limit`, so tests can
    /// reach the renumbering.
    #[cfg(test)]
    fn with_seq_limit(limit: u32) -> Self {
        EventQueue { seq_limit: limit, ..Self::new() }
    }

    /// Schedules `event` at `time`; it cannot be cancelled.
    #[inline(always)] // see `push`
    pub fn schedule(&mut self, time: SimTime, event: E) {
        let seq = self.next_seq();
        self.push(Entry { time, seq, slot: NO_SLOT, event });
    }

    /// Schedules `event` at `time`, which a random delay put there: it goes
    /// to the heap without looking for a lane. Events of a delay drawn at
    /// random never share a lane, and the look for one (the lanes' delays,
    /// then the delays that lately found none) cost more than the heap's
    /// push where the heap is small. The order is the same as
    /// [`EventQueue::schedule`]'s: only the container differs.
    #[inline(always)] // see `push`
    pub fn schedule_random(&mut self, time: SimTime, event: E) {
        let seq = self.next_seq();
        self.heap.push(Entry { time, seq, slot: NO_SLOT, event });
    }

    /// Schedules `event` at `time` and returns a handle to cancel it.
    #[inline(always)] // see `push`
    pub fn schedule_cancellable(&mut self, time: SimTime, event: E) -> EventId {
        let seq = self.next_seq();
        self.generation_next = self.generation_next.checked_add(1).expect("fewer than 2^64 cancellable events");
        let owned = Slot { owner: seq, generation: self.generation_next };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                debug_assert_eq!(self.slots[slot as usize].owner, FREE, "a free slot is owned");
                self.slots[slot as usize] = owned;
                slot
            }
            None => {
                // More than 2^32 - 1 simultaneously pending cancellable events
                // would exhaust memory long before this conversion fails.
                let slot = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&slot| slot != NO_SLOT)
                    .expect("more than 2^32 - 1 pending cancellable events");
                self.slots.push(owned);
                slot
            }
        };
        self.push(Entry { time, seq, slot, event });
        EventId { slot, generation: owned.generation }
    }

    #[inline]
    fn next_seq(&mut self) -> u32 {
        if self.seq_next == self.seq_limit {
            self.renumber();
        }
        let seq = self.seq_next;
        self.seq_next += 1;
        seq
    }

    /// Always inlined: the entry is then written straight into its lane or
    /// the heap. Called, the entry went through the stack and the wide load
    /// that copies it waited on the narrow stores that built it (a failed
    /// store-to-load forward), a third of this function's time.
    #[inline(always)]
    fn push(&mut self, entry: Entry<E>) {
        match self.lane_for(entry.time) {
            Some(lane) => {
                if self.lanes[lane].len() == 0 {
                    self.new_lane_front(lane, entry.rank());
                }
                self.lane_used[lane] = entry.seq;
                self.lanes[lane].push_back(entry);
            }
            None => self.heap.push(entry),
        }
    }

    /// The lane holding the delay of an event at `time`, or one it may take;
    /// `None` means the heap (and so does a time before the clock).
    /// Always inlined, as `push` is.
    #[inline(always)]
    fn lane_for(&mut self, time: SimTime) -> Option<usize> {
        let delay = time.as_nanos().checked_sub(self.clock.as_nanos())?;
        match self.lane_delays.iter().position(|&held| held == delay) {
            Some(lane) => Some(lane),
            None => self.take_lane(delay),
        }
    }

    /// A lane for a delay none holds: an empty one, the one unused longest,
    /// if the delay is among the latest that found none (random delays,
    /// which do not come back, stay in the heap); otherwise the delay is
    /// remembered and `None` sends the event to the heap. Inlined up to the
    /// lane taking itself: a random delay comes here for every event of the
    /// heap, and the call cost more than remembering it.
    #[inline]
    fn take_lane(&mut self, delay: u64) -> Option<usize> {
        if !self.recent_delays.contains(&delay) {
            self.recent_delays[self.recent_next] = delay;
            self.recent_next = (self.recent_next + 1) % RECENT_DELAYS;
            return None;
        }
        self.take_empty_lane(delay)
    }

    /// Gives `delay`, which came back, the empty lane unused longest, if any.
    #[inline(never)]
    fn take_empty_lane(&mut self, delay: u64) -> Option<usize> {
        // Sequence numbers only grow (renumbering keeps their order), so the
        // smallest is the lane unused longest.
        let lane =
            (0..LANES).filter(|&index| self.lanes[index].len() == 0).min_by_key(|&index| self.lane_used[index])?;
        debug_assert!(self.lanes[lane].len() == 0, "a lane changes its delay while it holds events");
        self.lane_delays[lane] = delay;
        Some(lane)
    }

    /// Where the smallest (time, seq) entry, live or cancelled, sits.
    #[inline]
    fn earliest(&self) -> Option<(Source, &Entry<E>)> {
        match self.heap.peek() {
            Some(top) if top.rank() < self.lane_first_rank => Some((Source::Heap, top)),
            _ => self.lanes[self.lane_first].front().map(|front| (Source::Lane(self.lane_first), front)),
        }
    }

    /// Removes and returns the front entry of `source`, which has one.
    /// Always inlined: called, it returned the entry through memory.
    #[inline(always)]
    fn remove(&mut self, source: Source) -> Entry<E> {
        let entry = match source {
            Source::Heap => self.heap.pop(),
            Source::Lane(index) => {
                let entry = self.lanes[index].pop_front();
                self.first_lane_popped(self.lane_front(index));
                entry
            }
        };
        entry.expect("the source has a front entry")
    }

    /// Cancels a pending event; `false` if it already ran or was cancelled.
    pub fn cancel(&mut self, id: EventId) -> bool {
        if !self.is_pending(id) {
            return false;
        }
        self.free_slot(id.slot);
        self.tombstones += 1;
        if self.tombstones >= TOMBSTONES_MIN_FOR_COMPACTION && self.tombstones * 2 > self.entries_held() {
            self.compact();
        }
        true
    }

    /// Whether the event behind `id` is still pending.
    pub fn is_pending(&self, id: EventId) -> bool {
        self.slots.get(id.slot as usize).is_some_and(|slot| slot.generation == id.generation && slot.owner != FREE)
    }

    #[inline]
    fn free_slot(&mut self, slot: u32) {
        self.slots[slot as usize].owner = FREE;
        self.free_slots.push(slot);
    }

    /// Removes and returns the earliest pending event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.pop_until(SimTime::MAX)
    }

    /// Removes and returns the earliest pending event if it is due at or
    /// before `end`; `None` if none is (the queue may hold later ones).
    /// [`EventQueue::peek_time`] then [`EventQueue::pop`] do the same in two
    /// calls, each looking at the lanes and the heap.
    #[inline]
    pub fn pop_until(&mut self, end: SimTime) -> Option<(SimTime, E)> {
        loop {
            let (source, entry) = self.earliest()?;
            if entry.time > end {
                return None;
            }
            let entry = self.remove(source);
            if !is_cancelled(&self.slots, &entry) {
                return Some(self.ran(entry));
            }
            self.tombstones -= 1;
        }
    }

    /// A live entry leaves the queue: its slot, if any, is freed, and the
    /// clock moves to its time (never back: the raw queue may pop a time
    /// scheduled in the past, which went to the heap).
    #[inline]
    fn ran(&mut self, entry: Entry<E>) -> (SimTime, E) {
        if entry.slot != NO_SLOT {
            self.free_slot(entry.slot);
        }
        self.clock = self.clock.max(entry.time);
        (entry.time, entry.event)
    }

    /// The time of the earliest pending event, skipping cancelled ones.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        while let Some((source, entry)) = self.earliest() {
            if !is_cancelled(&self.slots, entry) {
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

    /// Heap and lane entries held, live and cancelled.
    pub fn entries_held(&self) -> usize {
        self.heap.len() + self.lanes.iter().map(Ring::len).sum::<usize>()
    }

    /// Entries the heap and the lanes have room for: what the queue's memory
    /// grows with, beside the slots.
    pub fn capacity(&self) -> usize {
        self.heap.capacity() + self.lanes.iter().map(Ring::capacity).sum::<usize>()
    }

    /// Slots allocated (the high-water mark of pending cancellable events).
    pub fn slots_allocated(&self) -> usize {
        self.slots.len()
    }

    /// Drops every tombstone from the heap and the lanes in one pass (a
    /// lane keeps its order).
    fn compact(&mut self) {
        let slots = &self.slots;
        let live = |entry: &Entry<E>| !is_cancelled(slots, entry);
        self.heap.retain(live);
        for lane in &mut self.lanes {
            lane.retain(live);
        }
        self.tombstones = 0;
        self.find_lane_first();
    }

    /// An empty `lane` got an entry of `rank`, its new front. A lane that
    /// overtakes the first makes the first the runner-up: the first's front
    /// was the smallest of every other lane's, the new lane having been
    /// empty. Always inlined, as `push` is.
    #[inline(always)]
    fn new_lane_front(&mut self, lane: usize, rank: u128) {
        if rank < self.lane_first_rank {
            (self.lane_runner_up, self.lane_runner_up_rank) = (self.lane_first, self.lane_first_rank);
            (self.lane_first, self.lane_first_rank) = (lane, rank);
        } else if rank < self.lane_runner_up_rank {
            (self.lane_runner_up, self.lane_runner_up_rank) = (lane, rank);
        }
    }

    /// The first lane's front moved back to `front` (a pop). It stays first
    /// if it still comes before the runner-up; otherwise a known runner-up
    /// takes its place (the next runner-up is then unknown, until a lane
    /// overtakes the first again), and only an unknown one needs a scan.
    #[inline(always)]
    fn first_lane_popped(&mut self, front: u128) {
        if front < self.lane_runner_up_rank {
            self.lane_first_rank = front;
        } else if self.lane_runner_up_rank != UNKNOWN_RANK {
            (self.lane_first, self.lane_first_rank) = (self.lane_runner_up, self.lane_runner_up_rank);
            self.lane_runner_up_rank = UNKNOWN_RANK;
        } else {
            self.find_lane_first();
        }
        debug_assert!(self.lane_order_holds(), "the first lane or its runner-up is wrong");
    }

    /// Whether `lane_first` has the smallest front and the runner-up, if
    /// known, the smallest of the others: what `new_lane_front` and
    /// `first_lane_popped` keep.
    fn lane_order_holds(&self) -> bool {
        let smallest = (0..LANES).map(|lane| self.lane_front(lane)).min();
        let others = (0..LANES).filter(|&lane| lane != self.lane_first).map(|lane| self.lane_front(lane)).min();
        self.lane_front(self.lane_first) == self.lane_first_rank
            && Some(self.lane_first_rank) == smallest
            && (self.lane_runner_up_rank == UNKNOWN_RANK
                || (others == Some(self.lane_runner_up_rank)
                    && (self.lane_runner_up_rank == EMPTY_LANE
                        || self.lane_front(self.lane_runner_up) == self.lane_runner_up_rank)))
    }

    /// The rank of `lane`'s front, [`EMPTY_LANE`] if it is empty.
    #[inline(always)]
    fn lane_front(&self, lane: usize) -> u128 {
        self.lanes[lane].front().map_or(EMPTY_LANE, Entry::rank)
    }

    /// Finds the lane with the smallest front again, after the lanes changed
    /// wholesale or a pop found no runner-up. The smallest front so far is
    /// kept in a local: read back through the index of its lane, each
    /// comparison waited for the load the previous one chose. Out of line:
    /// few pops need it.
    #[inline(never)]
    fn find_lane_first(&mut self) {
        let (mut first, mut smallest) = (0, self.lane_front(0));
        for index in 1..LANES {
            let front = self.lane_front(index);
            if front < smallest {
                (first, smallest) = (index, front);
            }
        }
        (self.lane_first, self.lane_first_rank) = (first, smallest);
        self.lane_runner_up_rank = UNKNOWN_RANK;
    }

    /// Gives the pending entries the sequence numbers 1, 2, ... in their
    /// (time, seq) order, once the numbers ran out. Renumbering keeps every
    /// relative order, so the heap and the lanes stay valid; slots follow
    /// their owners, and handles name slot generations, which do not change.
    #[cold]
    fn renumber(&mut self) {
        self.compact();
        let mut heap = std::mem::replace(&mut self.heap, RankHeap::with_capacity(0)).into_vec();
        let mut ranks: Vec<u128> = heap.iter().chain(self.lanes.iter().flat_map(Ring::iter)).map(Entry::rank).collect();
        ranks.sort_unstable();
        let slots = &mut self.slots;
        let mut renumber = |entry: &mut Entry<E>| {
            let index = ranks.binary_search(&entry.rank()).expect("every entry was ranked");
            // At most 2^32 - 1 entries are held, so the new number fits.
            entry.seq = FREE + 1 + index as u32;
            if entry.slot != NO_SLOT {
                slots[entry.slot as usize].owner = entry.seq;
            }
        };
        heap.iter_mut().for_each(&mut renumber);
        self.lanes.iter_mut().flat_map(Ring::iter_mut).for_each(&mut renumber);
        for (index, lane) in self.lanes.iter().enumerate() {
            self.lane_used[index] = lane.back().map_or(FREE, |back| back.seq);
        }
        self.find_lane_first();
        self.heap = RankHeap::from_vec(heap);
        self.seq_next = FREE + 1 + ranks.len() as u32;
        assert!(self.seq_next < self.seq_limit, "more pending events than sequence numbers");
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
        let first = queue.schedule_cancellable(SimTime::from_secs(1), 'a');
        assert_eq!(queue.pop(), Some((SimTime::from_secs(1), 'a')));
        assert!(!queue.is_pending(first));
        let second = queue.schedule_cancellable(SimTime::from_secs(2), 'b');
        assert_eq!(second.slot, first.slot, "the slot is reused");
        assert!(!queue.cancel(first), "stale handle cancelled a new event");
        assert!(queue.is_pending(second));
        assert!(queue.cancel(second));
        assert!(!queue.cancel(second));
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
            let timeout = queue.schedule_cancellable(now + SimDuration::from_secs(30), i);
            queue.schedule(now + SimDuration::from_millis(1), i);
            assert!(queue.cancel(timeout));
            let (t, _) = queue.pop().expect("the reply is pending");
            now = t;
            held_max = held_max.max(queue.entries_held());
        }
        assert!(queue.is_empty());
        assert!(held_max <= 2 * TOMBSTONES_MIN_FOR_COMPACTION + 2, "heap grew to {held_max}");
        assert!(queue.slots_allocated() <= 1, "slots grew to {}", queue.slots_allocated());
    }

    /// Entries in the lanes (the rest are in the heap).
    fn lane_entries<E: Copy>(queue: &EventQueue<E>) -> usize {
        queue.lanes.iter().map(Ring::len).sum()
    }

    #[test]
    fn lanes_and_heap_pop_in_time_then_seq_order() {
        // A model's pattern: each step schedules three constant-delay
        // events (they take lanes) and one at a scrambled delay (the heap),
        // then pops one. Every pop is checked against a sorted list.
        let mut queue = EventQueue::new();
        let mut model: Vec<(SimTime, u64)> = Vec::new();
        let mut seq = 0u64;
        let mut both_used = false;
        let mut now = SimTime::ZERO;
        for i in 0..400u64 {
            for delay in [500, 5_000, 0, (i * 7919) % 3_001] {
                let time = now + SimDuration::from_nanos(delay);
                queue.schedule(time, seq);
                model.push((time, seq));
                seq += 1;
            }
            both_used |= lane_entries(&queue) > 0 && queue.heap.len() > 0;
            model.sort();
            let (time, expected) = model.remove(0);
            assert_eq!(queue.pop(), Some((time, expected)));
            now = time;
        }
        assert!(both_used, "lanes and heap both held events");
        model.sort();
        let rest: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(rest, model);
    }

    #[test]
    fn a_delay_that_comes_back_takes_a_lane_and_a_random_one_does_not() {
        let mut queue = EventQueue::new();
        queue.schedule(SimTime::from_nanos(10), 'a');
        assert_eq!(lane_entries(&queue), 0, "a delay seen once goes to the heap");
        queue.schedule(SimTime::from_nanos(10), 'b');
        assert_eq!(lane_entries(&queue), 1, "the same delay again takes a lane");
        for (i, t) in [17u64, 3, 29, 8, 41].into_iter().enumerate() {
            queue.schedule(SimTime::from_nanos(t), char::from(b'c' + i as u8));
        }
        assert_eq!(lane_entries(&queue), 1, "different delays stay in the heap");
        let order: String = std::iter::from_fn(|| queue.pop().map(|(_, c)| c)).collect();
        assert_eq!(order, "dfabceg");
    }

    #[test]
    fn a_random_delay_skips_the_lanes_and_keeps_the_order() {
        // The same events, once all through `schedule` and once with the
        // scrambled ones through `schedule_random`: the same pops.
        let (mut plain, mut hinted) = (EventQueue::new(), EventQueue::new());
        let mut popped = (Vec::new(), Vec::new());
        let mut now = SimTime::ZERO;
        for i in 0..300u64 {
            for (k, delay) in [500, 0, (i * 7919) % 3_001, 500].into_iter().enumerate() {
                let time = now + SimDuration::from_nanos(delay);
                plain.schedule(time, (i, k));
                if k == 2 { hinted.schedule_random(time, (i, k)) } else { hinted.schedule(time, (i, k)) }
            }
            popped.0.push(plain.pop().expect("pending"));
            popped.1.push(hinted.pop().expect("pending"));
            now = popped.0.last().expect("popped").0;
        }
        popped.0.extend(std::iter::from_fn(|| plain.pop()));
        popped.1.extend(std::iter::from_fn(|| hinted.pop()));
        assert_eq!(popped.0, popped.1);
        assert_eq!(popped.1.len(), 1_200);
    }

    #[test]
    fn an_event_cancelled_in_a_lane_never_runs() {
        // Ten events the same delay ahead: the first goes to the heap, the
        // rest to a lane, in scheduling order.
        let mut queue = EventQueue::new();
        let ids: Vec<_> = (0..10u64).map(|i| queue.schedule_cancellable(SimTime::from_secs(1), i)).collect();
        assert_eq!(lane_entries(&queue), 9, "a delay that comes back goes to a lane");
        assert!(queue.cancel(ids[1])); // at the lane's front
        assert!(queue.cancel(ids[5])); // inside the lane
        assert!(!queue.cancel(ids[5]));
        assert_eq!(queue.len(), 8);
        assert_eq!(queue.peek_time(), Some(SimTime::from_secs(1)));
        let order: Vec<u64> = std::iter::from_fn(|| queue.pop().map(|(_, i)| i)).collect();
        assert_eq!(order, [0, 2, 3, 4, 6, 7, 8, 9]);
        assert_eq!(queue.entries_held(), 0);
    }

    #[test]
    fn tombstones_in_lanes_are_compacted() {
        // Timeouts a constant 30 s ahead all sit in a lane and are all
        // cancelled: compaction must drop them from the lane.
        let mut queue = EventQueue::new();
        let (mut held_max, mut in_lanes_max) = (0, 0);
        let mut now = SimTime::ZERO;
        for i in 0..100_000u64 {
            let id = queue.schedule_cancellable(now + SimDuration::from_secs(30), i);
            queue.schedule(now + SimDuration::from_millis(1), i);
            assert!(queue.cancel(id));
            held_max = held_max.max(queue.entries_held());
            in_lanes_max = in_lanes_max.max(lane_entries(&queue));
            now = queue.pop().expect("the tick is pending").0;
        }
        assert!(queue.is_empty());
        assert!(in_lanes_max > TOMBSTONES_MIN_FOR_COMPACTION / 2, "the timeouts sat in a lane");
        assert!(held_max <= 2 * TOMBSTONES_MIN_FOR_COMPACTION + 2, "lanes grew to {held_max}");
    }

    #[test]
    fn renumbering_keeps_the_order_and_the_handles() {
        // Sequence numbers run out every few events: the queue renumbers its
        // entries many times while events at equal and different times, plain
        // and cancellable, in lanes and in the heap, are pending.
        let mut queue = EventQueue::with_seq_limit(64);
        let mut expect = Vec::new();
        let mut doomed = Vec::new();
        for i in 0..30u64 {
            let time = SimTime::from_nanos((i * 37) % 11);
            if i % 3 == 0 {
                doomed.push(queue.schedule_cancellable(time, i));
            } else {
                queue.schedule(time, i);
                expect.push((time, i));
            }
        }
        let kept = queue.schedule_cancellable(SimTime::from_nanos(5), 100);
        expect.push((SimTime::from_nanos(5), 100));
        // Each schedule takes a number: 200 of them renumber the queue about
        // six times.
        for _ in 0..200 {
            let id = queue.schedule_cancellable(SimTime::from_nanos(2_000), 0);
            assert!(queue.cancel(id));
        }
        assert!(queue.seq_next < 64, "the numbers were renumbered");
        for id in &doomed {
            assert!(queue.cancel(*id), "a handle stays valid across renumbering");
        }
        assert!(queue.is_pending(kept));
        expect.sort();
        let got: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(got, expect);
        assert!(!queue.is_pending(kept));
    }

    proptest::proptest! {
        /// Against a naive model: a list of (time, seq, payload) sorted
        /// before each pop, with plain, random-delay and cancellable events
        /// mixed, and sequence numbers that run out every `limit` events.
        #[test]
        fn matches_a_sorted_list(
            ops in proptest::collection::vec((0u64..50, 0u8..8), 1..600),
            limit in 60u32..200,
        ) {
            let mut queue = EventQueue::with_seq_limit(limit);
            let mut model: Vec<(u64, u64, usize)> = Vec::new();
            let mut ids = Vec::new();
            for (index, &(time, op)) in ops.iter().enumerate() {
                // Keep the pending events well below the limit: renumbering
                // needs spare numbers.
                let schedules = |op: u8| op <= 1 || op == 7;
                let op = if schedules(op) && model.len() + 10 >= limit as usize { 5 } else { op };
                match op {
                    0 => queue.schedule(SimTime::from_nanos(time), index),
                    1 => ids.push((queue.schedule_cancellable(SimTime::from_nanos(time), index), index)),
                    2 => {
                        // Cancel an earlier handle, possibly one that ran.
                        if let Some(&(id, payload)) = ids.get(time as usize % ids.len().max(1)) {
                            let position = model.iter().position(|&(_, _, p)| p == payload);
                            proptest::prop_assert_eq!(queue.is_pending(id), position.is_some());
                            proptest::prop_assert_eq!(queue.cancel(id), position.is_some());
                            if let Some(p) = position { model.remove(p); }
                        }
                    }
                    3 => {
                        model.sort();
                        let expect = model.first().map(|&(t, _, _)| t);
                        proptest::prop_assert_eq!(queue.peek_time().map(SimTime::as_nanos), expect);
                    }
                    4 => {
                        // Pops only what is due by `time`.
                        model.sort();
                        let expect = match model.first() {
                            Some(&(t, _, _)) if t <= time => Some(model.remove(0)),
                            _ => None,
                        };
                        let got = queue.pop_until(SimTime::from_nanos(time));
                        proptest::prop_assert_eq!(got.map(|(t, p)| (t.as_nanos(), p)), expect.map(|(t, _, p)| (t, p)));
                    }
                    7 => queue.schedule_random(SimTime::from_nanos(time), index),
                    _ => {
                        model.sort();
                        let expect = if model.is_empty() { None } else { Some(model.remove(0)) };
                        let got = queue.pop();
                        proptest::prop_assert_eq!(got.map(|(t, p)| (t.as_nanos(), p)), expect.map(|(t, _, p)| (t, p)));
                    }
                }
                if schedules(op) {
                    model.push((time, index as u64, index));
                }
                proptest::prop_assert_eq!(queue.len(), model.len());
            }
        }
    }
}
