//! A bounded table of keyed state with intrusive recency lists: the storage
//! under the fallback cache and the idempotency store, where eviction must
//! follow an exact order (least recently used; oldest completion).
//!
//! Slots live in one `Vec`; each slot sits on one of two doubly linked lists
//! (by index, so no pointers and no per-entry allocation), newest at the head.
//! Eviction always takes a list's tail, so which entry goes depends only on
//! the order of calls, never on hash values or addresses.
//!
//! A hash index finds a key's slot. It is a `HashMap` with a fixed hasher and
//! it is only ever probed, never iterated: iteration order is the one thing a
//! hash map could leak into results, and nothing here does it.

#[allow(clippy::disallowed_types)] // see the module docs: probed, never iterated
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Marks the end of a list and an empty free list.
const NIL: u32 = u32::MAX;

/// Number of recency lists per table. The limiter and the cache use one; the
/// idempotency store keeps in-progress and completed records apart.
pub(crate) const LIST_COUNT: usize = 2;

/// The Fx hash (as used by rustc): one rotate, xor and multiply per word.
///
/// Fixed and seedless, so a table behaves the same in every run; speed
/// matters because every limiter decision at 10^6 keys probes the index.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

// Only probed (get/insert/remove), never iterated: the fixed hasher makes
// even its internal layout repeatable, and no result depends on that layout.
#[allow(clippy::disallowed_types)]
type Index<K> = HashMap<K, u32, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
}

impl Ends {
    const EMPTY: Ends = Ends { head: NIL, tail: NIL };
}

struct Slot<K, V> {
    key: K,
    value: V,
    prev: u32,
    next: u32,
    /// The list this slot is on, or `FREE`.
    list: u8,
}

const FREE: u8 = u8::MAX;

/// A table of at most `capacity` entries with two recency lists.
///
/// Removed slots go to a free list and keep their value, so a value that owns
/// a buffer (a sliding log) is reused by the next key instead of reallocated.
pub(crate) struct LruTable<K, V> {
    index: Index<K>,
    slots: Vec<Slot<K, V>>,
    free_head: u32,
    lists: [Ends; LIST_COUNT],
    list_len: [u32; LIST_COUNT],
    capacity: u32,
}

impl<K: Hash + Eq + Clone, V> LruTable<K, V> {
    /// An empty table that will hold at most `capacity` entries.
    pub(crate) fn new(capacity: u32) -> Self {
        debug_assert!((1..NIL).contains(&capacity));
        LruTable {
            index: Index::default(),
            slots: Vec::new(),
            free_head: NIL,
            lists: [Ends::EMPTY; LIST_COUNT],
            list_len: [0; LIST_COUNT],
            capacity,
        }
    }

    pub(crate) fn len(&self) -> u32 {
        self.list_len.iter().sum()
    }

    #[cfg(test)]
    pub(crate) fn list_len(&self, list: u8) -> u32 {
        self.list_len[usize::from(list)]
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// The slot holding `key`, if any.
    #[inline]
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        self.index.get(key).copied()
    }

    #[cfg(test)]
    pub(crate) fn key(&self, slot: u32) -> &K {
        &self.slots[slot as usize].key
    }

    pub(crate) fn value(&self, slot: u32) -> &V {
        &self.slots[slot as usize].value
    }

    #[inline]
    pub(crate) fn value_mut(&mut self, slot: u32) -> &mut V {
        &mut self.slots[slot as usize].value
    }

    /// The least recently moved slot of `list`.
    pub(crate) fn tail(&self, list: u8) -> Option<u32> {
        let tail = self.lists[usize::from(list)].tail;
        (tail != NIL).then_some(tail)
    }

    /// The slot just newer than `slot` on its list (towards the head).
    pub(crate) fn newer(&self, slot: u32) -> Option<u32> {
        let prev = self.slots[slot as usize].prev;
        (prev != NIL).then_some(prev)
    }

    /// Moves `slot` to the head of `list` (it may change lists).
    #[inline]
    pub(crate) fn touch(&mut self, slot: u32, list: u8) {
        let s = &self.slots[slot as usize];
        if s.list == list && s.prev == NIL {
            return; // already the newest: the common case at one hot key
        }
        self.unlink(slot);
        self.push_front(slot, list);
    }

    /// Inserts `key`, which must be absent, at the head of `list`, while the
    /// table is not full. A free slot is reused: `reuse` resets its old
    /// value in place; otherwise `make` builds a value.
    pub(crate) fn insert(&mut self, key: K, list: u8, make: impl FnOnce() -> V, reuse: impl FnOnce(&mut V)) -> u32 {
        debug_assert!(!self.is_full());
        debug_assert!(!self.index.contains_key(&key));
        let slot = if self.free_head != NIL {
            let slot = self.free_head;
            let s = &mut self.slots[slot as usize];
            self.free_head = s.next;
            s.key = key.clone();
            reuse(&mut s.value);
            slot
        } else {
            let slot = self.slots.len() as u32;
            self.slots.push(Slot { key: key.clone(), value: make(), prev: NIL, next: NIL, list: FREE });
            slot
        };
        self.index.insert(key, slot);
        self.push_front(slot, list);
        slot
    }

    /// Inserts `key`, which must be absent, with `value`, at the head of
    /// `list`, while the table is not full. A reused slot's old value is
    /// dropped.
    pub(crate) fn insert_value(&mut self, key: K, list: u8, value: V) -> u32 {
        let mut value = Some(value);
        let slot = self.insert(key, list, || value.take().expect("taken once"), |_| {});
        if let Some(v) = value {
            self.slots[slot as usize].value = v;
        }
        slot
    }

    /// Removes the entry in `slot`; its value stays for reuse.
    pub(crate) fn remove(&mut self, slot: u32) {
        self.unlink(slot);
        let s = &mut self.slots[slot as usize];
        self.index.remove(&s.key);
        s.list = FREE;
        s.prev = NIL;
        s.next = self.free_head;
        self.free_head = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next, list) = {
            let s = &self.slots[slot as usize];
            (s.prev, s.next, s.list)
        };
        if list == FREE {
            return;
        }
        let ends = &mut self.lists[usize::from(list)];
        if prev == NIL {
            ends.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            ends.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        self.list_len[usize::from(list)] -= 1;
        let s = &mut self.slots[slot as usize];
        s.prev = NIL;
        s.next = NIL;
        s.list = FREE;
    }

    fn push_front(&mut self, slot: u32, list: u8) {
        let ends = &mut self.lists[usize::from(list)];
        let old_head = ends.head;
        ends.head = slot;
        if old_head == NIL {
            ends.tail = slot;
        } else {
            self.slots[old_head as usize].prev = slot;
        }
        let s = &mut self.slots[slot as usize];
        s.prev = NIL;
        s.next = old_head;
        s.list = list;
        self.list_len[usize::from(list)] += 1;
    }

    /// Checks the table's invariants from two sides: walking each list
    /// forwards and backwards, and counting through the index.
    pub(crate) fn check_invariants(&self) {
        let mut seen = 0u32;
        for (list, ends) in self.lists.iter().enumerate() {
            let mut count = 0u32;
            let mut prev = NIL;
            let mut at = ends.head;
            while at != NIL {
                let s = &self.slots[at as usize];
                assert_eq!(usize::from(s.list), list, "slot on the wrong list");
                assert_eq!(s.prev, prev, "broken back link");
                assert_eq!(self.index.get(&s.key), Some(&at), "index disagrees");
                count += 1;
                assert!(count <= self.capacity, "cycle in a list");
                prev = at;
                at = s.next;
            }
            assert_eq!(ends.tail, prev, "tail is not the last slot");
            assert_eq!(count, self.list_len[list], "list length drifted");
            seen += count;
        }
        assert_eq!(seen as usize, self.index.len(), "index holds stray keys");
        assert!(seen <= self.capacity, "table over capacity");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_order_is_recency_and_slots_are_reused() {
        let mut t: LruTable<u64, u32> = LruTable::new(3);
        for k in 0..3 {
            t.insert(k, 0, || 0, |_| {});
        }
        let s0 = t.find(&0).unwrap();
        t.touch(s0, 0);
        // 1 is now the least recently touched.
        assert_eq!(t.key(t.tail(0).unwrap()), &1);
        let tail = t.tail(0).unwrap();
        t.remove(tail);
        t.check_invariants();
        let reused = t.insert(9, 0, || 7, |v| *v = 42);
        assert_eq!(reused, tail, "free slot is reused");
        assert_eq!(*t.value(reused), 42, "reuse resets in place");
        assert_eq!(t.find(&1), None);
        t.touch(reused, 1);
        assert_eq!((t.list_len(0), t.list_len(1)), (2, 1));
        t.check_invariants();
    }
}
