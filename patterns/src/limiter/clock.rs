//! A bounded table with CLOCK (second-chance) eviction: the storage under
//! [`KeyedLimiter`](super::KeyedLimiter).
//!
//! At 10^6 keys a decision's cost is its cache misses. An LRU list moves the
//! entry to the front on every hit, which touches its two neighbours: two
//! extra misses per decision. CLOCK only sets a bit in the entry it already
//! reads, and finds a victim by sweeping a hand over the slots, clearing the
//! bits it passes, so recently used keys get a second chance. The hand moves
//! only on evictions, so the victim depends only on the order of calls:
//! eviction is deterministic, with no hash value or address involved.

use std::hash::Hash;

use super::table::{Index, index_bytes};

struct Slot<K, V> {
    key: K,
    value: V,
    /// Used since the hand last passed.
    referenced: bool,
}

/// What an eviction sweep does with the slot under the hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Take this one.
    Evict,
    /// Take this one if the sweep finds nothing better.
    Fallback,
    /// Never take this one.
    Skip,
}

/// At most `capacity` entries; slots are never freed, only reused by
/// [`ClockTable::replace`], so a full table never allocates again.
pub(crate) struct ClockTable<K, V> {
    index: Index<K>,
    slots: Vec<Slot<K, V>>,
    hand: u32,
    capacity: u32,
}

impl<K: Hash + Eq + Clone, V> ClockTable<K, V> {
    pub(crate) fn new(capacity: u32) -> Self {
        debug_assert!((1..u32::MAX).contains(&capacity));
        ClockTable { index: Index::default(), slots: Vec::new(), hand: 0, capacity }
    }

    pub(crate) fn len(&self) -> u32 {
        self.slots.len() as u32
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    #[inline]
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        self.index.get(key).copied()
    }

    pub(crate) fn value(&self, slot: u32) -> &V {
        &self.slots[slot as usize].value
    }

    /// The value in `slot`, without marking it used.
    #[inline]
    pub(crate) fn value_mut(&mut self, slot: u32) -> &mut V {
        &mut self.slots[slot as usize].value
    }

    /// The value in `slot`, marked as used.
    #[inline]
    pub(crate) fn use_value(&mut self, slot: u32) -> &mut V {
        let s = &mut self.slots[slot as usize];
        s.referenced = true;
        &mut s.value
    }

    /// Adds `key` (absent) in a new slot while the table is not full.
    pub(crate) fn push(&mut self, key: K, value: V) -> u32 {
        debug_assert!(!self.is_full() && !self.index.contains_key(&key));
        let slot = self.len();
        self.index.insert(key.clone(), slot);
        // New keys start unreferenced: a key seen once is the first to go,
        // which keeps a scan of one-off keys from flushing the regulars.
        self.slots.push(Slot { key, value, referenced: false });
        slot
    }

    /// Puts `key` (absent) in `slot` in place of its entry; `reuse` resets
    /// the old value in place.
    pub(crate) fn replace(&mut self, slot: u32, key: K, reuse: impl FnOnce(&mut V)) {
        debug_assert!(!self.index.contains_key(&key));
        let s = &mut self.slots[slot as usize];
        self.index.remove(&s.key);
        self.index.insert(key.clone(), slot);
        s.key = key;
        s.referenced = false;
        reuse(&mut s.value);
    }

    /// Sweeps at most `steps_max` slots from the hand, clearing their
    /// reference bits, for a slot `choose` wants evicted; failing that, the
    /// first it would accept as a fallback. The hand stops just past the
    /// slot returned (or where the sweep ended).
    pub(crate) fn sweep(&mut self, steps_max: u32, mut choose: impl FnMut(&V, bool) -> Choice) -> Option<u32> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let mut fallback = None;
        for _ in 0..steps_max.min(len) {
            let at = self.hand;
            self.hand = if at + 1 == len { 0 } else { at + 1 };
            let s = &mut self.slots[at as usize];
            let referenced = std::mem::replace(&mut s.referenced, false);
            match choose(&s.value, referenced) {
                Choice::Evict => return Some(at),
                Choice::Fallback if fallback.is_none() => fallback = Some(at),
                Choice::Fallback | Choice::Skip => {}
            }
        }
        if let Some(at) = fallback {
            self.hand = if at + 1 == len { 0 } else { at + 1 };
        }
        fallback
    }

    /// Slots in creation order, for whole-table checks.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().map(|s| &s.value)
    }

    /// Bytes owned by the table, slots and index, by capacity.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<K, V>>() + index_bytes(&self.index)
    }

    /// The index and the slots agree, from both sides.
    pub(crate) fn check_invariants(&self) {
        assert!(self.len() <= self.capacity, "table over capacity");
        assert!(self.hand < self.len().max(1), "hand out of range");
        assert_eq!(self.index.len(), self.slots.len(), "index and slots differ in size");
        for (at, s) in self.slots.iter().enumerate() {
            assert_eq!(self.index.get(&s.key), Some(&(at as u32)), "index disagrees");
        }
    }
}
