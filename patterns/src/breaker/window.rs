//! Fixed-size windows of call statistics, shared by the breakers and the
//! retry budgets.
//!
//! Both windows allocate once, at construction, and never again: recording a
//! call and reading the totals touch a fixed number of slots.

use stormglass_core::time::{SimDuration, SimTime};

/// The last `size` recorded calls (resilience4j's count-based window): a
/// ring of per-call flags with running totals, so totals cost O(1).
#[derive(Debug, Clone)]
pub(crate) struct CountWindow {
    /// Per slot: bit 0 = failure, bit 1 = slow; `EMPTY` when never written.
    slots: Vec<u8>,
    next_index: usize,
    calls_count: u32,
    failures_count: u32,
    slow_count: u32,
}

const FAILURE: u8 = 1;
const SLOW: u8 = 2;
const EMPTY: u8 = 0xff;

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        CountWindow {
            slots: vec![EMPTY; size.max(1) as usize],
            next_index: 0,
            calls_count: 0,
            failures_count: 0,
            slow_count: 0,
        }
    }

    /// Records one call, evicting the oldest when the ring is full.
    pub(crate) fn record(&mut self, failure: bool, slow: bool) {
        let old = self.slots[self.next_index];
        if old == EMPTY {
            self.calls_count += 1;
        } else {
            self.failures_count -= u32::from(old & FAILURE != 0);
            self.slow_count -= u32::from(old & SLOW != 0);
        }
        let flags = if failure { FAILURE } else { 0 } | if slow { SLOW } else { 0 };
        self.slots[self.next_index] = flags;
        self.failures_count += u32::from(failure);
        self.slow_count += u32::from(slow);
        self.next_index = (self.next_index + 1) % self.slots.len();
    }

    pub(crate) fn reset(&mut self) {
        self.slots.fill(EMPTY);
        self.next_index = 0;
        self.calls_count = 0;
        self.failures_count = 0;
        self.slow_count = 0;
    }

    pub(crate) fn calls(&self) -> u32 {
        self.calls_count
    }
    pub(crate) fn failures(&self) -> u32 {
        self.failures_count
    }
    pub(crate) fn slow(&self) -> u32 {
        self.slow_count
    }

    /// Recounts from the slots: the second side of the running totals.
    pub(crate) fn check_invariants(&self) {
        let calls = self.slots.iter().filter(|&&s| s != EMPTY).count() as u32;
        let failures = self.slots.iter().filter(|&&s| s != EMPTY && s & FAILURE != 0).count() as u32;
        let slow = self.slots.iter().filter(|&&s| s != EMPTY && s & SLOW != 0).count() as u32;
        assert_eq!(calls, self.calls_count, "count window: calls");
        assert_eq!(failures, self.failures_count, "count window: failures");
        assert_eq!(slow, self.slow_count, "count window: slow");
        assert!(self.next_index < self.slots.len());
    }
}

/// Two counters per time bucket over the last `buckets` buckets of `width`
/// each (Hystrix's rolling number). The current, partly elapsed bucket is
/// part of the window, as in Hystrix.
///
/// Running sums make the common case O(1): reading the totals in the newest
/// bucket returns the sums, and moving to a new bucket subtracts the buckets
/// that leave (at most `buckets` of them, however long the gap). Reading at
/// any other instant falls back to a scan, which is also the cross-check of
/// the sums in debug builds.
#[derive(Debug, Clone)]
pub(crate) struct RollingCounts {
    slots: Vec<Slot>,
    width_ns: u64,
    /// The newest bucket seen, if any.
    current_epoch: Option<u64>,
    /// Sums over the buckets in the window ending at `current_epoch`.
    sums: [u64; 2],
    /// Where the current bucket starts and ends, in ns, and its slot: lets
    /// the common case (same bucket as the last call) skip the divisions.
    current_start_ns: u64,
    current_end_ns: u64,
    current_slot: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Which bucket (time / width) the counts belong to; a slot whose epoch
    /// is out of the window is stale and reads as zero.
    epoch: u64,
    counts: [u64; 2],
}

const NO_EPOCH: u64 = u64::MAX;

impl RollingCounts {
    pub(crate) fn new(buckets: u32, width: SimDuration) -> Self {
        RollingCounts {
            slots: vec![Slot { epoch: NO_EPOCH, counts: [0; 2] }; buckets.max(1) as usize],
            width_ns: width.as_nanos().max(1),
            current_epoch: None,
            sums: [0; 2],
            current_start_ns: u64::MAX,
            current_end_ns: 0,
            current_slot: 0,
        }
    }

    fn epoch(&self, now: SimTime) -> u64 {
        now.as_nanos() / self.width_ns
    }

    /// Whether `now` falls in the newest bucket (no division needed).
    #[inline]
    fn in_current(&self, now: SimTime) -> bool {
        let ns = now.as_nanos();
        ns >= self.current_start_ns && ns < self.current_end_ns
    }

    fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Moves the window forward to the bucket of `epoch`, evicting the
    /// buckets that leave it. Earlier epochs leave the window where it is.
    fn advance(&mut self, epoch: u64) {
        let len = self.len();
        match self.current_epoch {
            Some(current) if epoch <= current => return,
            Some(current) if epoch - current < len => {
                // Each bucket entering the window reuses the slot of the one
                // leaving it.
                for e in current + 1..=epoch {
                    let slot = &mut self.slots[(e % len) as usize];
                    if slot.epoch != NO_EPOCH {
                        self.sums[0] -= slot.counts[0];
                        self.sums[1] -= slot.counts[1];
                    }
                    *slot = Slot { epoch: e, counts: [0; 2] };
                }
            }
            _ => {
                // First bucket ever, or a gap longer than the window: nothing
                // in the window survives.
                for slot in &mut self.slots {
                    *slot = Slot { epoch: NO_EPOCH, counts: [0; 2] };
                }
                self.sums = [0; 2];
                self.slots[(epoch % len) as usize].epoch = epoch;
            }
        }
        self.current_epoch = Some(epoch);
        self.current_start_ns = epoch.saturating_mul(self.width_ns);
        self.current_end_ns = self.current_start_ns.saturating_add(self.width_ns);
        self.current_slot = (epoch % len) as usize;
    }

    /// Adds `amount` to counter `which` (0 or 1) in the bucket of `now`.
    /// A `now` older than the window is dropped: it has already expired.
    pub(crate) fn add(&mut self, now: SimTime, which: usize, amount: u64) {
        if self.in_current(now) {
            let slot = &mut self.slots[self.current_slot];
            slot.counts[which] = slot.counts[which].saturating_add(amount);
            self.sums[which] = self.sums[which].saturating_add(amount);
            self.check_invariants();
            return;
        }
        let epoch = self.epoch(now);
        self.advance(epoch);
        let len = self.len();
        let Some(current) = self.current_epoch else { return };
        if current - epoch >= len {
            return;
        }
        let slot = &mut self.slots[(epoch % len) as usize];
        if slot.epoch != epoch {
            // Only a bucket before the first one ever recorded can be unset.
            debug_assert_eq!(slot.epoch, NO_EPOCH);
            *slot = Slot { epoch, counts: [0; 2] };
        }
        slot.counts[which] = slot.counts[which].saturating_add(amount);
        self.sums[which] = self.sums[which].saturating_add(amount);
        self.check_invariants();
    }

    /// Both counters summed over the buckets still in the window at `now`.
    pub(crate) fn totals(&self, now: SimTime) -> [u64; 2] {
        if self.in_current(now) {
            return self.sums;
        }
        let epoch = self.epoch(now);
        if self.current_epoch == Some(epoch) { self.sums } else { self.scan(epoch) }
    }

    /// The totals the slow way: every slot whose bucket is in the window
    /// ending at `current` (current - len < epoch <= current).
    fn scan(&self, current: u64) -> [u64; 2] {
        let len = self.len();
        let mut sum = [0u64; 2];
        for slot in &self.slots {
            if slot.epoch != NO_EPOCH && slot.epoch <= current && current - slot.epoch < len {
                sum[0] = sum[0].saturating_add(slot.counts[0]);
                sum[1] = sum[1].saturating_add(slot.counts[1]);
            }
        }
        sum
    }

    pub(crate) fn reset(&mut self) {
        for slot in &mut self.slots {
            *slot = Slot { epoch: NO_EPOCH, counts: [0; 2] };
        }
        self.current_epoch = None;
        self.sums = [0; 2];
        self.current_start_ns = u64::MAX;
        self.current_end_ns = 0;
    }

    /// The span the window covers.
    pub(crate) fn span(&self) -> SimDuration {
        SimDuration::from_nanos(self.width_ns.saturating_mul(self.len()))
    }

    /// The running sums agree with a scan (debug builds).
    fn check_invariants(&self) {
        if cfg!(debug_assertions)
            && let Some(current) = self.current_epoch
        {
            assert_eq!(self.scan(current), self.sums, "rolling counts: running sums drifted");
            assert_eq!(self.slots[self.current_slot].epoch, current);
            assert!(self.current_start_ns < self.current_end_ns || self.current_start_ns == u64::MAX);
        }
    }
}

/// Bytes a count window of `size` calls allocates (one per slot).
pub(crate) fn count_window_bytes(size: u32) -> u64 {
    u64::from(size.max(1)) * std::mem::size_of::<u8>() as u64
}

/// Bytes rolling counts over `buckets` buckets allocate.
pub(crate) fn rolling_counts_bytes(buckets: u32) -> u64 {
    u64::from(buckets.max(1)) * std::mem::size_of::<Slot>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_evicts_the_oldest_call() {
        let mut w = CountWindow::new(3);
        w.record(true, false);
        w.record(false, true);
        w.record(false, false);
        assert_eq!((w.calls(), w.failures(), w.slow()), (3, 1, 1));
        w.record(false, false); // evicts the failure
        assert_eq!((w.calls(), w.failures(), w.slow()), (3, 0, 1));
        w.check_invariants();
    }

    #[test]
    fn rolling_counts_forget_buckets_that_left_the_window() {
        let mut r = RollingCounts::new(10, SimDuration::from_secs(1));
        r.add(SimTime::from_millis(500), 0, 3);
        r.add(SimTime::from_millis(9_900), 1, 2);
        assert_eq!(r.totals(SimTime::from_millis(9_999)), [3, 2]);
        // At 10 s the bucket [0 s, 1 s) is out of the 10-bucket window.
        assert_eq!(r.totals(SimTime::from_secs(10)), [0, 2]);
        assert_eq!(r.span(), SimDuration::from_secs(10));
    }

    #[test]
    fn rolling_counts_survive_gaps_longer_than_the_window_and_late_adds() {
        let mut r = RollingCounts::new(3, SimDuration::from_secs(1));
        r.add(SimTime::from_secs(5), 0, 1);
        r.add(SimTime::from_secs(4), 0, 2); // late, still in the window
        r.add(SimTime::from_secs(1), 0, 4); // too old: dropped
        assert_eq!(r.totals(SimTime::from_secs(5)), [3, 0]);
        assert_eq!(r.totals(SimTime::from_secs(7)), [1, 0], "read ahead: only 5 s is left");
        r.add(SimTime::from_secs(100), 1, 1);
        assert_eq!(r.totals(SimTime::from_secs(100)), [0, 1]);
        r.reset();
        assert_eq!(r.totals(SimTime::from_secs(100)), [0, 0]);
    }
}
