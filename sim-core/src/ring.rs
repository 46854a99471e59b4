//! A FIFO ring buffer of plain values: the event queue's lanes.
//!
//! std's `VecDeque::push_back` is not inlined into the queue's `push`: the
//! entry, built field by field, went through memory into its out-of-line
//! body, which read it back whole and waited for those narrow stores (a
//! failed store-to-load forward, 4% of the seed cascade's time). Here a push
//! is a few instructions, inlined, and the entry is written straight into
//! its slot. Every slot always holds a value (the buffer is filled with
//! copies when it grows), so values are `Copy`, as queue entries are.

/// A FIFO queue in a buffer whose length is zero or a power of two.
#[derive(Debug, Clone)]
pub(crate) struct Ring<T> {
    /// Every slot holds a value; the live ones are `len` slots from `head`,
    /// wrapping around.
    buffer: Vec<T>,
    head: usize,
    len: usize,
}

/// The first buffer's length.
const FIRST_CAPACITY: usize = 8;

impl<T: Copy> Ring<T> {
    /// An empty ring; its buffer comes with the first value.
    pub(crate) const fn new() -> Self {
        Ring { buffer: Vec::new(), head: 0, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// The oldest value.
    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        (self.len > 0).then(|| &self.buffer[self.head])
    }

    /// The newest value.
    pub(crate) fn back(&self) -> Option<&T> {
        (self.len > 0).then(|| &self.buffer[(self.head + self.len - 1) & (self.buffer.len() - 1)])
    }

    /// Adds `value` at the back.
    #[inline(always)]
    pub(crate) fn push_back(&mut self, value: T) {
        if self.len == self.buffer.len() {
            self.grow(value);
        }
        let slot = (self.head + self.len) & (self.buffer.len() - 1);
        self.buffer[slot] = value;
        self.len += 1;
    }

    /// Removes the oldest value.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.buffer[self.head];
        self.head = (self.head + 1) & (self.buffer.len() - 1);
        self.len -= 1;
        Some(value)
    }

    /// The values, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        let (wrapped, from_head) = self.buffer.split_at(self.head);
        from_head.iter().chain(wrapped).take(self.len)
    }

    /// The values, oldest first, to change in place.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let (wrapped, from_head) = self.buffer.split_at_mut(self.head);
        from_head.iter_mut().chain(wrapped).take(self.len)
    }

    /// Keeps the values `keep` accepts, in their order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let kept: Vec<T> = self.iter().copied().filter(|value| keep(value)).collect();
        self.refill(&kept, self.buffer.len());
    }

    /// Doubles the buffer, filling the new slots with copies of `filler`.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, filler: T) {
        let live: Vec<T> = self.iter().copied().collect();
        self.buffer.resize((2 * self.buffer.len()).max(FIRST_CAPACITY), filler);
        let capacity = self.buffer.len();
        self.refill(&live, capacity);
    }

    /// Holds exactly `values`, from the start of a buffer of `capacity`.
    fn refill(&mut self, values: &[T], capacity: usize) {
        debug_assert!(values.len() <= capacity, "more values than room");
        self.buffer[..values.len()].copy_from_slice(values);
        self.buffer.truncate(capacity);
        self.head = 0;
        self.len = values.len();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Pop,
        RetainOdd,
        Increment,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => any::<u32>().prop_map(Op::Push),
            6 => Just(Op::Pop),
            1 => Just(Op::RetainOdd),
            1 => Just(Op::Increment),
        ]
    }

    proptest! {
        /// Against std's `VecDeque`, through growth, wrap-around, retains
        /// and changes in place.
        #[test]
        fn behaves_as_a_vec_deque(ops in proptest::collection::vec(op(), 0..600)) {
            let mut ring = Ring::new();
            let mut deque = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(value) => {
                        ring.push_back(value);
                        deque.push_back(value);
                    }
                    Op::Pop => prop_assert_eq!(ring.pop_front(), deque.pop_front()),
                    Op::RetainOdd => {
                        ring.retain(|v| v % 2 == 1);
                        deque.retain(|v| v % 2 == 1);
                    }
                    Op::Increment => {
                        ring.iter_mut().for_each(|v| *v = v.wrapping_add(1));
                        deque.iter_mut().for_each(|v| *v = v.wrapping_add(1));
                    }
                }
                prop_assert_eq!(ring.len(), deque.len());
                prop_assert_eq!(ring.front(), deque.front());
                prop_assert_eq!(ring.back(), deque.back());
                prop_assert!(ring.iter().eq(deque.iter()));
                prop_assert!(ring.capacity() == 0 || ring.capacity().is_power_of_two());
            }
        }
    }
}
