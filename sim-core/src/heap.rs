//! A min-priority queue of plain values ordered by a `u128` rank: the event
//! queue's heap, for the events that take no lane.
//!
//! Small, it is a sorted array; larger, a binary heap. A model's random
//! delays (compute times, arrivals) keep few events pending at once: the
//! seed cascade's heap holds 3.6 on average. There a binary heap's sifting
//! cost about a hundred instructions a push and pop; an array sorted by
//! descending rank pops its last element and pushes by moving the few
//! elements ranked below the new one up by a place. Past [`SORTED_MAX`]
//! elements the array becomes a heap (sorted ascending, it already is one),
//! and a heap that shrinks to [`SORTED_AGAIN`] is sorted again; the gap
//! between the two keeps a queue whose size hovers at one threshold from
//! switching back and forth.
//!
//! std's `BinaryHeap` writes the element it sifts into a slot and then reads
//! it back whole: `push` writes it at the end and `pop` swaps the last
//! element into the root before sifting. The element was just written field
//! by field, with narrow stores, and the wide loads that read it back wait
//! for those stores to reach the cache (a failed store-to-load forward).
//! That was a tenth of the event loop's time. This heap keeps the element it
//! sifts (or inserts) in a local and writes it once, where it ends; only
//! elements already in place move, whole. Holding an element in a local
//! while its slot is reused needs `Copy` values, which queue entries are.
//!
//! Ranks are unique in the queue (time, then sequence number), so any
//! correct priority queue pops the same order: which form holds the events
//! changes nothing but the cost.

/// A value with its place in the order: smaller ranks come out first.
pub(crate) trait Ranked: Copy {
    fn rank(&self) -> u128;
}

/// Most elements kept as a sorted array: inserting moves half of them on
/// average, which past a few dozen costs more than a heap's sifting.
const SORTED_MAX: usize = 32;

/// A heap this small (after a pop) is sorted again.
const SORTED_AGAIN: usize = 8;

/// A min-priority queue by rank (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct RankHeap<T> {
    /// Sorted by descending rank, the smallest last, while `sorted`; else
    /// heap-ordered: no element ranks below its parent, `(index - 1) / 2`.
    data: Vec<T>,
    sorted: bool,
}

impl<T: Ranked> RankHeap<T> {
    /// An empty heap with room for `capacity` elements.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        RankHeap { data: Vec::with_capacity(capacity), sorted: true }
    }

    /// A heap of `data`, in any order, in O(n) (O(n log n) for at most
    /// [`SORTED_MAX`] elements, which are sorted).
    pub(crate) fn from_vec(data: Vec<T>) -> Self {
        let mut heap = RankHeap { data, sorted: false };
        if heap.data.len() <= SORTED_MAX {
            heap.sort();
        } else {
            heap.rebuild();
        }
        heap
    }

    /// The elements, in no particular order.
    pub(crate) fn into_vec(self) -> Vec<T> {
        self.data
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// The smallest element.
    #[inline]
    pub(crate) fn peek(&self) -> Option<&T> {
        if self.sorted { self.data.last() } else { self.data.first() }
    }

    /// Adds `item`.
    #[inline(always)] // the caller builds `item` in place; see the module doc
    pub(crate) fn push(&mut self, item: T) {
        if self.sorted && self.data.len() < SORTED_MAX {
            return self.insert_in_order(item);
        }
        if self.sorted {
            self.become_heap();
        }
        self.insert_in_heap(item);
    }

    /// Inserts `item` into the sorted array. Written once: when it ranks
    /// above the last (smallest) element, as it usually does, that element
    /// moves onto the new slot at the end, the others ranked below `item`
    /// follow it up by a place, and `item` goes where the last one moved
    /// from. Appended first and moved after, it was written twice.
    #[inline(always)]
    fn insert_in_order(&mut self, item: T) {
        let rank = item.rank();
        match self.data.last() {
            Some(&last) if last.rank() < rank => {
                self.data.push(last);
                // A slice keeps its pointer and length in registers: through
                // the Vec, every store into the elements could have changed
                // them.
                let data = self.data.as_mut_slice();
                let pos = make_room_in_order(data, data.len() - 2, rank);
                data[pos] = item;
            }
            _ => self.data.push(item),
        }
    }

    /// Inserts `item` into the binary heap, written once as in
    /// `insert_in_order`: a parent of the new slot ranked above `item` moves
    /// down into it, and the parents above follow while they rank above it.
    #[inline(always)]
    fn insert_in_heap(&mut self, item: T) {
        let rank = item.rank();
        // The new slot's parent; none for the first element (the index
        // wraps past the end).
        let parent = self.data.len().wrapping_sub(1) / 2;
        match self.data.get(parent) {
            Some(&above) if above.rank() > rank => {
                self.data.push(above);
                let data = self.data.as_mut_slice();
                let pos = make_room_above(data, parent, rank);
                data[pos] = item;
            }
            _ => self.data.push(item),
        }
    }

    /// Removes the smallest element. Always inlined: called, it returned
    /// the element through memory, written narrow and read back wide, the
    /// stall this heap exists to avoid.
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.sorted {
            return self.data.pop();
        }
        let top = self.pop_heap();
        if self.data.len() <= SORTED_AGAIN {
            self.sort();
        }
        top
    }

    /// Removes the binary heap's smallest element. The last element fills
    /// the root's place: the smaller child moves up level by level to the
    /// bottom, then the last element goes up from there to where it belongs
    /// (as std's `BinaryHeap::pop`: since it usually belongs near the
    /// bottom, this compares less than stopping on the way down).
    #[inline(always)]
    fn pop_heap(&mut self) -> Option<T> {
        let last = self.data.pop()?;
        let data = self.data.as_mut_slice();
        let Some(&top) = data.first() else {
            return Some(last);
        };
        let end = data.len();
        let (mut pos, mut child) = (0, 1);
        while child + 1 < end {
            // Branch-free: which child is smaller is a coin toss that no
            // predictor guesses.
            child += usize::from(data[child + 1].rank() < data[child].rank());
            data[pos] = data[child];
            pos = child;
            child = 2 * pos + 1;
        }
        if child + 1 == end {
            data[pos] = data[child];
            pos = child;
        }
        let pos = make_room_above(data, pos, last.rank());
        data[pos] = last;
        Some(top)
    }

    /// Keeps the elements `keep` accepts, in O(n) (a sorted array stays
    /// sorted).
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let before = self.data.len();
        self.data.retain(keep);
        if self.data.len() < before && !self.sorted {
            self.rebuild();
        }
    }

    /// The sorted array as a heap: reversed, it is sorted ascending, which
    /// heap-orders it.
    #[cold]
    fn become_heap(&mut self) {
        self.data.reverse();
        self.sorted = false;
    }

    /// Sorts the elements by descending rank.
    #[cold]
    fn sort(&mut self) {
        self.data.sort_unstable_by_key(|item| std::cmp::Reverse(item.rank()));
        self.sorted = true;
    }

    /// Restores the heap order over the whole vector (Floyd's method).
    fn rebuild(&mut self) {
        for start in (0..self.data.len() / 2).rev() {
            self.sift_down(start);
        }
    }

    /// Moves the element at `pos` down to where it belongs below it.
    fn sift_down(&mut self, mut pos: usize) {
        let item = self.data[pos];
        let rank = item.rank();
        let end = self.data.len();
        loop {
            let mut child = 2 * pos + 1;
            if child >= end {
                break;
            }
            if child + 1 < end {
                child += usize::from(self.data[child + 1].rank() < self.data[child].rank());
            }
            if self.data[child].rank() >= rank {
                break;
            }
            self.data[pos] = self.data[child];
            pos = child;
        }
        self.data[pos] = item;
    }
}

/// For an element of `rank` headed for the free slot `pos` of an array
/// sorted by descending rank: moves each element ranked below it up by one
/// place and returns the slot it belongs in, which the caller writes.
#[inline(always)]
fn make_room_in_order<T: Ranked>(data: &mut [T], mut pos: usize, rank: u128) -> usize {
    while pos > 0 && data[pos - 1].rank() < rank {
        data[pos] = data[pos - 1];
        pos -= 1;
    }
    pos
}

/// For an element of `rank` headed for the free slot `pos` of a binary
/// heap: moves each parent ranked above it down a level, into the slot
/// below, and returns the slot it belongs in, which the caller writes.
#[inline(always)]
fn make_room_above<T: Ranked>(data: &mut [T], mut pos: usize, rank: u128) -> usize {
    while pos > 0 {
        let parent = (pos - 1) / 2;
        if data[parent].rank() <= rank {
            break;
        }
        data[pos] = data[parent];
        pos = parent;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl Ranked for (u64, u32) {
        fn rank(&self) -> u128 {
            (u128::from(self.0) << 64) | u128::from(self.1)
        }
    }

    /// An operation on a heap: push a time (its sequence number is the
    /// operation's index, so ranks are unique as in the queue), pop, or
    /// retain by a rule.
    #[derive(Debug, Clone)]
    enum Op {
        Push(u64),
        Pop,
        RetainEvenSeq,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![8 => (0u64..50).prop_map(Op::Push), 6 => Just(Op::Pop), 1 => Just(Op::RetainEvenSeq)]
    }

    proptest! {
        /// Against a sorted list: every pop gives the smallest rank left,
        /// through pushes, pops, retains and a rebuild from a vector.
        #[test]
        fn pops_in_rank_order_like_a_sorted_list(ops in proptest::collection::vec(op(), 0..400)) {
            let mut heap = RankHeap::with_capacity(0);
            let mut sorted: Vec<(u64, u32)> = Vec::new();
            for (seq, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(time) => {
                        heap.push((time, seq as u32));
                        sorted.push((time, seq as u32));
                        sorted.sort();
                    }
                    Op::Pop => {
                        let expected = (!sorted.is_empty()).then(|| sorted.remove(0));
                        prop_assert_eq!(heap.pop(), expected);
                    }
                    Op::RetainEvenSeq => {
                        heap.retain(|e| e.1 % 2 == 0);
                        sorted.retain(|e| e.1 % 2 == 0);
                        heap = RankHeap::from_vec(heap.into_vec());
                    }
                }
                prop_assert_eq!(heap.len(), sorted.len());
                prop_assert_eq!(heap.peek().copied(), sorted.first().copied());
            }
        }
    }

    /// Sizes that rise past `SORTED_MAX` and fall below `SORTED_AGAIN`
    /// again and again: the order holds through every switch of form.
    #[test]
    fn growing_and_shrinking_across_both_forms_keeps_the_order() {
        let mut heap = RankHeap::with_capacity(0);
        let mut reference: Vec<(u64, u32)> = Vec::new();
        let (mut seq, mut switches, mut was_sorted) = (0u32, 0, true);
        for round in 0..6u64 {
            let peak = SORTED_MAX + 5 + round as usize * 7;
            while heap.len() < peak {
                seq += 1;
                let item = (u64::from(seq).wrapping_mul(2_654_435_761) % 97, seq);
                heap.push(item);
                reference.push(item);
            }
            let floor = round as usize % SORTED_AGAIN;
            while heap.len() > floor {
                reference.sort_unstable_by(|a, b| b.cmp(a));
                assert_eq!(heap.pop(), reference.pop());
                assert_eq!(heap.peek().copied(), reference.iter().min().copied());
                switches += usize::from(heap.sorted != was_sorted);
                was_sorted = heap.sorted;
            }
        }
        assert!(switches >= 6, "the heap changed form {switches} times");
    }

    #[test]
    fn a_rebuilt_heap_pops_in_order() {
        let scrambled: Vec<(u64, u32)> = (0..1000u32).map(|i| (u64::from(i * 7919 % 1000), i)).collect();
        let mut heap = RankHeap::from_vec(scrambled.clone());
        let mut expected = scrambled;
        expected.sort();
        let popped: Vec<_> = std::iter::from_fn(|| heap.pop()).collect();
        assert_eq!(popped, expected);
        assert_eq!(heap.len(), 0);
    }
}
