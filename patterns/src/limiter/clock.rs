//! The storage under [`KeyedLimiter`](super::KeyedLimiter): an open-addressed
//! table with each key's state inline, and CLOCK (second-chance) eviction.
//!
//! At 10^6 keys a decision costs what its cache and TLB misses cost, so the
//! layout aims at one: the key, its state and its reference bit sit together
//! in one entry, found by linear probing from the key's home position (a
//! separate hash index plus a slot array would be two or three misses, and
//! an LRU list would add its neighbours' on every hit). The array is sized
//! for at most 3/4 occupancy, without rounding to a power of two, so memory
//! stays near `keys_max × entry size × 4/3`.
//!
//! Eviction sweeps a hand over the array, clearing the reference bits it
//! passes, so recently used keys get a second chance. Deletion shifts the
//! following entries back (no tombstones). Positions depend only on the keys
//! (a fixed hash) and the order of calls, so eviction is deterministic; no
//! address or random seed is involved.

use std::hash::{BuildHasher, BuildHasherDefault, Hash};

use super::table::FxHasher;

struct Entry<K, V> {
    key: K,
    value: V,
    /// Used since the hand last passed.
    referenced: bool,
}

/// What an eviction sweep does with the entry under the hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Take this one.
    Evict,
    /// Take this one if the sweep finds nothing better.
    Fallback,
    /// Never take this one.
    Skip,
}

/// Smallest array allocated; it doubles up to the size `capacity` needs.
const BUCKETS_MIN: usize = 16;

/// At most `capacity` entries.
pub(crate) struct ClockTable<K, V> {
    /// `None` is empty. `Option<Entry>` costs nothing extra: the `bool`
    /// gives the compiler a niche for `None`.
    entries: Vec<Option<Entry<K, V>>>,
    len: u32,
    capacity: u32,
    /// Array length once the table may hold `capacity` entries.
    buckets_max: usize,
    hand: usize,
}

/// Array length that keeps `keys` entries at most 3/4 full.
fn buckets_for(keys: u64) -> usize {
    (keys * 4).div_ceil(3).max(1) as usize + 1
}

impl<K: Hash + Eq, V> ClockTable<K, V> {
    pub(crate) fn new(capacity: u32) -> Self {
        debug_assert!(capacity >= 1);
        ClockTable { entries: Vec::new(), len: 0, capacity, buckets_max: buckets_for(u64::from(capacity)), hand: 0 }
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// Where probing for `key` starts: the hash scaled onto the array
    /// (multiply-shift, so the length need not be a power of two).
    #[inline]
    fn home(&self, key: &K) -> usize {
        let hash = BuildHasherDefault::<FxHasher>::default().hash_one(key);
        ((u128::from(hash) * self.entries.len() as u128) >> 64) as usize
    }

    #[inline]
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.entries.len() { 0 } else { at + 1 }
    }

    /// The position holding `key`, if any.
    #[inline]
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mut at = self.home(key);
        loop {
            match &self.entries[at] {
                None => return None,
                Some(e) if e.key == *key => return Some(at as u32),
                Some(_) => at = self.next(at),
            }
        }
    }

    fn entry(&self, at: u32) -> &Entry<K, V> {
        match &self.entries[at as usize] {
            Some(e) => e,
            None => unreachable!("position {at} is empty"),
        }
    }

    fn entry_mut(&mut self, at: u32) -> &mut Entry<K, V> {
        match &mut self.entries[at as usize] {
            Some(e) => e,
            None => unreachable!("position {at} is empty"),
        }
    }

    pub(crate) fn value(&self, at: u32) -> &V {
        &self.entry(at).value
    }

    /// The value at `at`, without marking it used.
    #[inline]
    pub(crate) fn value_mut(&mut self, at: u32) -> &mut V {
        &mut self.entry_mut(at).value
    }

    /// The value at `at`, marked as used.
    #[inline]
    pub(crate) fn use_value(&mut self, at: u32) -> &mut V {
        let e = self.entry_mut(at);
        e.referenced = true;
        &mut e.value
    }

    /// Adds `key` (absent) while the table is not full; returns its
    /// position. New keys start unreferenced: a key seen once is the first
    /// to go, which keeps a scan of one-off keys from flushing the regulars.
    pub(crate) fn insert(&mut self, key: K, value: V) -> u32 {
        debug_assert!(!self.is_full() && self.find(&key).is_none());
        if (u64::from(self.len) + 1) * 4 > self.entries.len() as u64 * 3 {
            self.grow();
        }
        let mut at = self.home(&key);
        while self.entries[at].is_some() {
            at = self.next(at);
        }
        self.entries[at] = Some(Entry { key, value, referenced: false });
        self.len += 1;
        at as u32
    }

    /// Doubles the array (up to what `capacity` needs) and reinserts every
    /// entry in array order. Only while the table fills: a full table never
    /// allocates.
    #[cold]
    fn grow(&mut self) {
        let buckets = (self.entries.len() * 2).max(BUCKETS_MIN).min(self.buckets_max);
        let old = std::mem::replace(&mut self.entries, Vec::with_capacity(buckets));
        self.entries.resize_with(buckets, || None);
        for e in old.into_iter().flatten() {
            let mut at = self.home(&e.key);
            while self.entries[at].is_some() {
                at = self.next(at);
            }
            self.entries[at] = Some(e);
        }
        self.hand = 0;
    }

    /// Removes the entry at `at` and returns its value; later entries of the
    /// same probe run shift back so lookups never meet a gap.
    pub(crate) fn remove(&mut self, at: u32) -> V {
        let Some(removed) = self.entries[at as usize].take() else { unreachable!("position {at} is empty") };
        self.len -= 1;
        let n = self.entries.len();
        let mut hole = at as usize;
        let mut j = self.next(hole);
        while let Some(e) = &self.entries[j] {
            // The entry at j may fill the hole if the hole lies on its probe
            // path, i.e. between its home and j (cyclically).
            let home = self.home(&e.key);
            if (j + n - home) % n >= (j + n - hole) % n {
                self.entries[hole] = self.entries[j].take();
                hole = j;
            }
            j = self.next(j);
        }
        removed.value
    }

    /// Sweeps at most `steps_max` entries from the hand, clearing their
    /// reference bits, for one `choose` wants evicted; failing that, the
    /// first it would accept as a fallback.
    pub(crate) fn sweep(&mut self, steps_max: u32, mut choose: impl FnMut(&V, bool) -> Choice) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mut fallback = None;
        let mut steps = 0;
        while steps < steps_max.min(self.len) {
            let at = self.hand;
            self.hand = self.next(at);
            let Some(e) = &mut self.entries[at] else { continue };
            steps += 1;
            let referenced = std::mem::replace(&mut e.referenced, false);
            match choose(&e.value, referenced) {
                Choice::Evict => return Some(at as u32),
                Choice::Fallback if fallback.is_none() => fallback = Some(at as u32),
                Choice::Fallback | Choice::Skip => {}
            }
        }
        fallback
    }

    /// Every value, for whole-table checks.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().flatten().map(|e| &e.value)
    }

    /// Bytes owned by the table (the entry array, by capacity).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Option<Entry<K, V>>>()
    }

    /// Every entry is reachable from its home without crossing a gap, and
    /// the count agrees with the array.
    pub(crate) fn check_invariants(&self) {
        let n = self.entries.len();
        let mut count = 0u32;
        for (j, e) in self.entries.iter().enumerate() {
            let Some(e) = e else { continue };
            count += 1;
            let mut at = self.home(&e.key);
            while at != j {
                assert!(self.entries[at].is_some(), "gap on a probe path");
                at = (at + 1) % n;
            }
        }
        assert_eq!(count, self.len, "length drifted");
        assert!(self.len <= self.capacity, "table over capacity");
        assert!(n <= self.buckets_max, "array above its bound");
        assert!(u64::from(self.len) * 4 <= n as u64 * 3, "table over 3/4 full");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Inserts and removals (backward shifts included) against a `BTreeMap`,
    /// through growth, with keys chosen to collide often.
    #[test]
    fn agrees_with_a_btreemap_through_growth_and_removal() {
        let mut table: ClockTable<u64, u64> = ClockTable::new(300);
        let mut model = BTreeMap::new();
        let mut x = 12_345u64;
        for step in 0..20_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let key = (x >> 33) % 500;
            match (table.find(&key), model.contains_key(&key)) {
                (Some(at), true) => {
                    assert_eq!(table.value(at), &model[&key]);
                    if x & 1 == 0 {
                        assert_eq!(table.remove(at), model.remove(&key).unwrap());
                    } else {
                        *table.use_value(at) = step;
                        model.insert(key, step);
                    }
                }
                (None, false) if !table.is_full() => {
                    table.insert(key, step);
                    model.insert(key, step);
                }
                (None, false) => {
                    let victim =
                        table.sweep(8, |_, referenced| if referenced { Choice::Fallback } else { Choice::Evict });
                    let victim = victim.expect("something to evict");
                    let old = *table.value(victim);
                    let gone = *model.iter().find(|(_, v)| **v == old).expect("victim is in the model").0;
                    table.remove(victim);
                    model.remove(&gone);
                }
                (found, present) => panic!("table says {found:?}, model says {present}"),
            }
            assert_eq!(table.len() as usize, model.len());
            if step % 97 == 0 {
                table.check_invariants();
            }
        }
        table.check_invariants();
        assert_eq!(table.values().count(), model.len());
    }
}
