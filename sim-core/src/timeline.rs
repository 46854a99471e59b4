//! Timelines: metrics in fixed-width time buckets, so a run can be drawn and
//! snapshot-tested as "what happened in each second".
//!
//! Three series kinds cover what a report shows: [`CountSeries`] (arrivals,
//! failures by cause), [`GaugeSeries`] (queue length, busy workers: mean and
//! max per bucket) and [`LatencySeries`] (percentiles per bucket). Memory is
//! one small record per bucket, whatever the number of samples: a latency
//! series keeps one live histogram and condenses it when its bucket closes.
//!
//! A series covers `[0, horizon)`; anything recorded at or after the horizon
//! lands in the last bucket, so a drain after the end of a run is still
//! counted and memory stays bounded.
//!
//! ```
//! use stormglass_core::timeline::{Buckets, CountSeries, Timeline};
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! let buckets = Buckets::new(SimDuration::from_secs(1), SimDuration::from_secs(3)).unwrap();
//! let mut arrivals = CountSeries::new(buckets);
//! arrivals.add(SimTime::from_millis(100), 1);
//! arrivals.add(SimTime::from_millis(2500), 2);
//! assert_eq!(arrivals.counts(), &[1, 0, 2]);
//!
//! let mut timeline = Timeline::new(buckets);
//! timeline.insert_counts("arrivals", &arrivals);
//! assert!(ron::to_string(&timeline).unwrap().contains("arrivals"));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, ensure};
use crate::metrics::{Histogram, LatencySummary};
use crate::time::{SimDuration, SimTime};

/// Most buckets a series may have (a day of 1 s buckets is 86 400).
pub const BUCKETS_MAX: usize = 1_000_000;

/// How time is cut into buckets: a width and how many.
///
/// Deserializing checks what [`Buckets::new`] guarantees (a width above
/// zero, 1 to [`BUCKETS_MAX`] buckets), so a timeline read from a file cannot
/// make [`Buckets::index`] divide by zero or index below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "BucketsData")]
pub struct Buckets {
    /// Width of one bucket.
    pub width: SimDuration,
    /// Number of buckets.
    pub count: usize,
}

/// The serialized form of [`Buckets`], checked on the way in.
#[derive(Deserialize)]
#[serde(rename = "Buckets", deny_unknown_fields)]
struct BucketsData {
    width: SimDuration,
    count: usize,
}

impl TryFrom<BucketsData> for Buckets {
    type Error = ConfigError;
    fn try_from(data: BucketsData) -> Result<Self, ConfigError> {
        ensure(!data.width.is_zero(), "buckets.width", "must be greater than 0")?;
        ensure((1..=BUCKETS_MAX).contains(&data.count), "buckets.count", "must be between 1 and 1000000")?;
        Ok(Buckets { width: data.width, count: data.count })
    }
}

impl Buckets {
    /// Buckets of `width` covering `[0, horizon)` (at least one bucket).
    pub fn new(width: SimDuration, horizon: SimDuration) -> Result<Self, ConfigError> {
        ensure(!width.is_zero(), "bucket_width", "must be greater than 0")?;
        let count = horizon.as_nanos().div_ceil(width.as_nanos()).max(1);
        ensure(count <= BUCKETS_MAX as u64, "bucket_width", "gives more than 1000000 buckets over the run; widen it")?;
        Ok(Buckets { width, count: count as usize })
    }

    /// The bucket holding `t` (the last one for anything past the horizon).
    #[inline]
    pub fn index(&self, t: SimTime) -> usize {
        ((t.as_nanos() / self.width.as_nanos()) as usize).min(self.count - 1)
    }

    /// When bucket `index` starts.
    pub fn start(&self, index: usize) -> SimTime {
        SimTime::from_nanos(self.width.as_nanos().saturating_mul(index as u64))
    }

    /// When bucket `index` ends (exclusive): never for the last one, which
    /// also takes anything past the horizon.
    ///
    /// ```
    /// use stormglass_core::timeline::Buckets;
    /// use stormglass_core::time::{SimDuration, SimTime};
    ///
    /// let buckets = Buckets::new(SimDuration::from_secs(1), SimDuration::from_secs(3)).unwrap();
    /// assert_eq!(buckets.end(0), SimTime::from_secs(1));
    /// assert_eq!(buckets.end(2), SimTime::MAX);
    /// ```
    pub fn end(&self, index: usize) -> SimTime {
        if index + 1 >= self.count { SimTime::MAX } else { self.start(index + 1) }
    }
}

/// The bucket a series last wrote to, so that a series updated at
/// non-decreasing times finds its bucket with two comparisons instead of a
/// 64-bit division: a model updates several series per event, and a
/// division costs tens of cycles.
///
/// A cache, not state: two cursors always compare equal, so a series'
/// equality does not depend on when it was last written.
#[derive(Debug, Clone, Copy)]
struct BucketCursor {
    index: usize,
    /// `[start, end)` of bucket `index`; empty until the first lookup, and
    /// open-ended for the last bucket, which also takes anything past the
    /// horizon.
    start: SimTime,
    end: SimTime,
}

impl PartialEq for BucketCursor {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for BucketCursor {}

impl BucketCursor {
    fn new() -> Self {
        BucketCursor { index: 0, start: SimTime::ZERO, end: SimTime::ZERO }
    }

    /// `buckets.index(t)`.
    #[inline]
    fn index(&mut self, buckets: &Buckets, t: SimTime) -> usize {
        if self.start <= t && t < self.end {
            return self.index;
        }
        self.seek(buckets, t)
    }

    #[cold]
    #[inline(never)]
    fn seek(&mut self, buckets: &Buckets, t: SimTime) -> usize {
        let index = buckets.index(t);
        self.index = index;
        self.start = buckets.start(index);
        self.end = buckets.end(index);
        index
    }
}

/// A count per bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountSeries {
    buckets: Buckets,
    cursor: BucketCursor,
    counts: Vec<u64>,
}

impl CountSeries {
    /// All-zero counts.
    pub fn new(buckets: Buckets) -> Self {
        CountSeries { buckets, cursor: BucketCursor::new(), counts: vec![0; buckets.count] }
    }

    /// Adds `n` to the bucket of `now`.
    #[inline]
    pub fn add(&mut self, now: SimTime, n: u64) {
        let index = self.cursor.index(&self.buckets, now);
        self.counts[index] += n;
    }

    /// Adds `n` to bucket `index` (the last one for an index past it), for
    /// a caller that already knows the bucket of `now`.
    #[inline]
    pub fn add_in(&mut self, index: usize, n: u64) {
        // One bounds check on the way in; an index past the last bucket,
        // which only a drain after the horizon gives, goes out of line.
        match self.counts.get_mut(index) {
            Some(count) => *count += n,
            None => self.add_in_last(n),
        }
    }

    #[cold]
    #[inline(never)]
    fn add_in_last(&mut self, n: u64) {
        let last = self.counts.len() - 1;
        self.counts[last] += n;
    }

    /// The counts, one per bucket.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The sum over all buckets.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A level over time, kept as its time-weighted mean and its max per bucket.
#[derive(Debug, Clone)]
pub struct GaugeSeries {
    buckets: Buckets,
    /// The bucket of the last change (empty before the first), so that a
    /// change in the same bucket, the common case, compares one time.
    cursor: BucketCursor,
    value: u64,
    last_change: SimTime,
    /// The area of the cursor's bucket not yet added to `area`, as an
    /// offset: up to a time `t` at or after the last change, that area is
    /// `value * t + pending` (modulo 2^128, in level x nanoseconds). A
    /// change by `d` at `now` takes `d * now` off it, which needs neither
    /// the time of the last change nor a product for a change by one.
    pending: u128,
    /// The max of the cursor's bucket not yet taken into `max`.
    current_max: u64,
    /// Level x nanoseconds accumulated in each bucket.
    area: Vec<u128>,
    max: Vec<u64>,
}

/// Equal when the levels over time are, whether or not the current
/// bucket's area has been added in yet.
impl PartialEq for GaugeSeries {
    fn eq(&self, other: &Self) -> bool {
        let (mut mine, mut theirs) = (self.clone(), other.clone());
        mine.flush();
        theirs.flush();
        (mine.buckets, mine.value, mine.last_change, mine.area, mine.max)
            == (theirs.buckets, theirs.value, theirs.last_change, theirs.area, theirs.max)
    }
}

impl GaugeSeries {
    /// A level of zero from time zero.
    pub fn new(buckets: Buckets) -> Self {
        GaugeSeries {
            buckets,
            cursor: BucketCursor::new(),
            value: 0,
            last_change: SimTime::ZERO,
            pending: 0,
            current_max: 0,
            area: vec![0; buckets.count],
            max: vec![0; buckets.count],
        }
    }

    /// Sets the level at `now`.
    #[inline(always)]
    pub fn set(&mut self, now: SimTime, value: u64) {
        let change = u128::from(value).wrapping_sub(u128::from(self.value));
        self.move_to(now, value, change.wrapping_mul(u128::from(now.as_nanos())), true);
    }

    /// Raises the level by one at `now`: `set(now, value + 1)` without a
    /// product.
    #[inline(always)]
    pub fn increment(&mut self, now: SimTime) {
        self.move_to(now, self.value + 1, u128::from(now.as_nanos()), true);
    }

    /// Lowers the level by one at `now`: `set(now, value - 1)` without a
    /// product, and without the max, which the level before already holds.
    #[inline(always)]
    pub fn decrement(&mut self, now: SimTime) {
        debug_assert!(self.value > 0, "gauge decremented below zero");
        self.move_to(now, self.value - 1, u128::from(now.as_nanos()).wrapping_neg(), false);
    }

    /// Moves the level to `value` at `now`; `area_change` is the change of
    /// level times `now` (modulo 2^128), which `pending` loses, and `rises`
    /// says whether the new level may be the bucket's max. The common case,
    /// a change in the bucket of the last one (the cursor's, which starts at
    /// or before the last change), is inlined into every caller.
    #[inline(always)]
    fn move_to(&mut self, now: SimTime, value: u64, area_change: u128, rises: bool) {
        debug_assert!(now >= self.last_change, "gauge set in the past");
        if now < self.cursor.end {
            self.pending = self.pending.wrapping_sub(area_change);
            self.last_change = now;
            self.value = value;
            if rises {
                self.current_max = self.current_max.max(value);
            }
            return;
        }
        self.set_in_later_bucket(now, value);
    }

    /// `set` when the last change was in an earlier bucket: out of line, so
    /// the common case above inlines into its callers.
    #[inline(never)]
    fn set_in_later_bucket(&mut self, now: SimTime, value: u64) {
        self.accumulate_until(now);
        let index = self.cursor.index(&self.buckets, now);
        debug_assert_eq!(self.current_max, 0, "the cursor's bucket was flushed");
        self.max[index] = self.max[index].max(value);
        let change = u128::from(value).wrapping_sub(u128::from(self.value));
        self.pending = self.pending.wrapping_sub(change.wrapping_mul(u128::from(now.as_nanos())));
        self.value = value;
    }

    /// The current level.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Adds the cursor bucket's area up to `at` (in that bucket, at or
    /// after the last change) and its pending max into the vectors.
    fn flush_at(&mut self, at: SimTime) {
        let index = self.cursor.index;
        let held = u128::from(self.value).wrapping_mul(u128::from(at.as_nanos()));
        self.area[index] += held.wrapping_add(self.pending);
        self.pending = held.wrapping_neg();
        self.max[index] = self.max[index].max(std::mem::take(&mut self.current_max));
    }

    /// Adds the cursor bucket's pending area and max into the vectors.
    fn flush(&mut self) {
        self.flush_at(self.last_change);
    }

    /// Spreads the current level's area over the buckets since the last
    /// change, up to `now`, and leaves the cursor in the last of them.
    #[inline(never)]
    fn accumulate_until(&mut self, now: SimTime) {
        // The cursor's bucket first, before the cursor moves.
        let mut from = self.cursor.end.min(now);
        self.flush_at(from);
        while from < now {
            let index = self.cursor.index(&self.buckets, from);
            // The cursor's end is the next bucket's start, or open for the last.
            let bucket_end = self.cursor.end.min(now);
            self.area[index] += u128::from(self.value) * u128::from((bucket_end - from).as_nanos());
            // The level holds through whole buckets in between; their max is it.
            self.max[index] = self.max[index].max(self.value);
            from = bucket_end;
        }
        // The area up to `now` is in the vectors.
        self.pending = u128::from(self.value).wrapping_mul(u128::from(now.as_nanos())).wrapping_neg();
        self.last_change = now;
    }

    /// Mean and max per bucket, with the level extended to `end`.
    pub fn finish(&self, end: SimTime) -> (Vec<f64>, Vec<u64>) {
        let mut closed = self.clone();
        closed.accumulate_until(end.max(self.last_change));
        let width = self.buckets.width.as_nanos() as f64;
        let last = self.buckets.count - 1;
        let means = closed
            .area
            .iter()
            .enumerate()
            .map(|(index, &area)| {
                // The last bucket also holds whatever ran past the horizon.
                let span = if index == last {
                    (end.max(self.buckets.start(last) + self.buckets.width) - self.buckets.start(last)).as_nanos()
                        as f64
                } else {
                    width
                };
                area as f64 / span
            })
            .collect();
        (means, closed.max)
    }
}

/// Latency percentiles per bucket, and over the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySeries {
    buckets: Buckets,
    cursor: BucketCursor,
    current_index: usize,
    current: Histogram,
    closed: Vec<LatencySummary>,
    /// Every closed bucket's samples: a bucket's histogram is merged in
    /// when it closes, which costs its occupied buckets once, where a
    /// second histogram recorded beside it cost every sample again.
    total: Histogram,
}

impl LatencySeries {
    /// An empty series.
    pub fn new(buckets: Buckets) -> Self {
        LatencySeries {
            buckets,
            cursor: BucketCursor::new(),
            current_index: 0,
            current: Histogram::new(),
            closed: Vec::with_capacity(buckets.count),
            total: Histogram::new(),
        }
    }

    /// Records a latency observed at `now` (times must not go backwards).
    #[inline]
    pub fn record(&mut self, now: SimTime, latency: SimDuration) {
        let index = self.cursor.index(&self.buckets, now);
        self.record_in(index, latency);
    }

    /// Records a latency observed in bucket `index` (the last one for an
    /// index past it), for a caller that already knows the bucket of `now`;
    /// buckets must not go backwards. Always inlined: a model records a few
    /// latencies per request, and the call cost as much as the recording.
    #[inline(always)]
    pub fn record_in(&mut self, index: usize, latency: SimDuration) {
        debug_assert!(index.min(self.buckets.count - 1) >= self.current_index, "latency recorded in the past");
        self.roll_to(index);
        self.record_current(latency);
    }

    /// Closes every bucket before `index` (the last one for an index past
    /// it), for a caller that rolls all its series when its bucket changes
    /// and then records with [`record_current`](Self::record_current). An
    /// index before the current bucket changes nothing.
    #[inline]
    pub fn roll_to(&mut self, index: usize) {
        let index = index.min(self.buckets.count - 1);
        if index > self.current_index {
            self.close_through(index);
        }
    }

    /// Records a latency in the bucket the series was last rolled to
    /// ([`roll_to`](Self::roll_to)): no bucket to compare, for a model
    /// that rolls every series once a bucket and records a few latencies
    /// per request.
    #[inline(always)]
    pub fn record_current(&mut self, latency: SimDuration) {
        self.current.record(latency);
    }

    /// Closes buckets up to (not including) `index`. Once a bucket per
    /// series: kept out of line so that `record`, which runs for every
    /// sample, stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn close_through(&mut self, index: usize) {
        while self.current_index < index {
            self.closed.push(self.current.drain_into(&mut self.total));
            self.current_index += 1;
        }
    }

    /// The summary of every sample recorded, whatever its bucket: the same
    /// as one histogram recording them all.
    pub fn total(&self) -> LatencySummary {
        let mut total = self.total.clone();
        total.merge(&self.current);
        total.summary()
    }

    /// The summary of every bucket.
    pub fn finish(&self) -> Vec<LatencySummary> {
        let mut summaries = self.closed.clone();
        summaries.push(self.current.summary());
        summaries.resize(self.buckets.count, LatencySummary::default());
        summaries
    }
}

/// One series in a [`Timeline`] report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SeriesData {
    /// A count per bucket.
    Counts(Vec<u64>),
    /// Time-weighted mean and max per bucket.
    Gauge {
        /// Mean level per bucket.
        mean: Vec<f64>,
        /// Highest level per bucket.
        max: Vec<u64>,
    },
    /// Latency summary per bucket.
    Latency(Vec<LatencySummary>),
}

/// Named series over the same buckets: the serializable form of timelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// The bucketing every series shares.
    pub buckets: Buckets,
    /// Series by name, in name order.
    pub series: BTreeMap<String, SeriesData>,
}

impl Timeline {
    /// An empty timeline.
    pub fn new(buckets: Buckets) -> Self {
        Timeline { buckets, series: BTreeMap::new() }
    }

    /// Adds a count series.
    pub fn insert_counts(&mut self, name: &str, series: &CountSeries) {
        self.series.insert(name.to_string(), SeriesData::Counts(series.counts().to_vec()));
    }

    /// Adds a gauge series, closed at `end`.
    pub fn insert_gauge(&mut self, name: &str, series: &GaugeSeries, end: SimTime) {
        let (mean, max) = series.finish(end);
        self.series.insert(name.to_string(), SeriesData::Gauge { mean, max });
    }

    /// Adds a latency series.
    pub fn insert_latency(&mut self, name: &str, series: &LatencySeries) {
        self.series.insert(name.to_string(), SeriesData::Latency(series.finish()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The cursor answers what the division does, for times in any
        /// order, including past the horizon.
        #[test]
        fn the_bucket_cursor_agrees_with_the_division(
            width in 1u64..5_000,
            count in 1usize..50,
            times in proptest::collection::vec(0u64..300_000, 1..200),
        ) {
            let buckets = Buckets { width: SimDuration::from_nanos(width), count };
            let mut cursor = BucketCursor::new();
            for t in times {
                let t = SimTime::from_nanos(t);
                proptest::prop_assert_eq!(cursor.index(&buckets, t), buckets.index(t), "t = {}", t);
            }
        }

        /// A gauge's area and max per bucket are what a walk over the
        /// segments of constant level gives, whatever buckets the changes
        /// fall in and however far past the horizon the run ends.
        #[test]
        fn the_gauge_agrees_with_a_walk_over_its_segments(
            width in 1u64..50,
            count in 1usize..20,
            steps in proptest::collection::vec((0u64..40, 0u64..100), 0..60),
            tail in 0u64..200,
        ) {
            let buckets = Buckets { width: SimDuration::from_nanos(width), count };
            let mut gauge = GaugeSeries::new(buckets);
            let (mut at, mut changes) = (0, Vec::new());
            for (gap, value) in steps {
                at += gap;
                gauge.set(SimTime::from_nanos(at), value);
                changes.push((at, value));
            }
            let end = at + tail;
            let mut closed = gauge.clone();
            closed.accumulate_until(SimTime::from_nanos(end));
            let (area, max) = gauge_by_segments(&buckets, &changes, end);
            proptest::prop_assert_eq!(&closed.area, &area);
            proptest::prop_assert_eq!(&closed.max, &max);
            // Adding in the pending bucket changes no level over time.
            let mut flushed = gauge.clone();
            flushed.flush();
            proptest::prop_assert_eq!(&flushed, &gauge);
        }

        /// Moving a gauge by one with `increment` and `decrement` gives the
        /// levels, means and maxima that `set` gives.
        #[test]
        fn moves_by_one_agree_with_set(
            width in 1u64..50,
            count in 1usize..20,
            steps in proptest::collection::vec((0u64..40, proptest::bool::ANY), 0..80),
            tail in 0u64..200,
        ) {
            let buckets = Buckets { width: SimDuration::from_nanos(width), count };
            let (mut moved, mut set) = (GaugeSeries::new(buckets), GaugeSeries::new(buckets));
            let mut at = 0;
            for (gap, up) in steps {
                at += gap;
                let now = SimTime::from_nanos(at);
                if up || moved.value() == 0 {
                    moved.increment(now);
                    set.set(now, set.value() + 1);
                } else {
                    moved.decrement(now);
                    set.set(now, set.value() - 1);
                }
                proptest::prop_assert_eq!(&moved, &set);
            }
            let end = SimTime::from_nanos(at + tail);
            proptest::prop_assert_eq!(moved.finish(end), set.finish(end));
        }

        /// The run's total, merged bucket by bucket, is what one histogram
        /// recording every sample says.
        #[test]
        fn the_merged_total_is_one_histogram_of_every_sample(
            samples in proptest::collection::vec((0u64..50, 0u64..10_000_000_000), 0..300),
        ) {
            let mut samples = samples;
            samples.sort_by_key(|&(at_ms, _)| at_ms); // times must not go backwards
            let mut series = LatencySeries::new(Buckets::new(SimDuration::from_millis(7), SimDuration::from_millis(40)).unwrap());
            let mut all = Histogram::new();
            for (at_ms, ns) in samples {
                series.record(SimTime::from_millis(at_ms), SimDuration::from_nanos(ns));
                all.record(SimDuration::from_nanos(ns));
            }
            proptest::prop_assert_eq!(series.total(), all.summary());
        }
    }

    /// Area and max per bucket of a level that starts at zero and changes
    /// to `value` at each `(at_ns, value)`, held until `end_ns`: every
    /// segment against every bucket. A bucket's max is the highest level
    /// set in it or held over part of it.
    fn gauge_by_segments(buckets: &Buckets, changes: &[(u64, u64)], end_ns: u64) -> (Vec<u128>, Vec<u64>) {
        let (mut area, mut max) = (vec![0u128; buckets.count], vec![0u64; buckets.count]);
        let mut segments = Vec::new();
        let (mut from, mut level) = (0, 0);
        for &(at, value) in changes {
            segments.push((from, at, level));
            let index = buckets.index(SimTime::from_nanos(at));
            max[index] = max[index].max(value);
            (from, level) = (at, value);
        }
        segments.push((from, end_ns, level));
        for (from, to, level) in segments {
            for index in 0..buckets.count {
                let start = buckets.start(index).as_nanos();
                let end = buckets.end(index).as_nanos();
                let overlap = to.min(end).saturating_sub(from.max(start));
                if overlap > 0 {
                    area[index] += u128::from(level) * u128::from(overlap);
                    max[index] = max[index].max(level);
                }
            }
        }
        (area, max)
    }

    fn buckets(width_s: u64, horizon_s: u64) -> Buckets {
        Buckets::new(SimDuration::from_secs(width_s), SimDuration::from_secs(horizon_s)).unwrap()
    }

    #[test]
    fn bucketing_rejects_zero_width_and_too_many_buckets() {
        let zero = Buckets::new(SimDuration::ZERO, SimDuration::from_secs(1)).unwrap_err();
        assert_eq!(zero.to_string(), "bucket_width: must be greater than 0");
        let many = Buckets::new(SimDuration::from_nanos(1), SimDuration::from_secs(1)).unwrap_err();
        assert!(many.rule.contains("more than 1000000 buckets"), "{many}");
        assert_eq!(buckets(1, 0).count, 1);
        assert_eq!(buckets(2, 5).count, 3);
    }

    #[test]
    fn deserialized_buckets_are_checked_like_new_ones() {
        let good = buckets(1, 3);
        let text = ron::to_string(&good).unwrap();
        assert_eq!(ron::from_str::<Buckets>(&text).unwrap(), good);
        let zero = serde_json::from_str::<Buckets>(r#"{"width": "0s", "count": 3}"#).unwrap_err();
        assert!(zero.to_string().contains("buckets.width: must be greater than 0"), "{zero}");
        let none = serde_json::from_str::<Buckets>(r#"{"width": "1s", "count": 0}"#).unwrap_err();
        assert!(none.to_string().contains("buckets.count: must be between 1 and 1000000"), "{none}");
        let timeline = r#"{"buckets": {"width": "1s", "count": 0}, "series": {}}"#;
        assert!(serde_json::from_str::<Timeline>(timeline).is_err());
    }

    #[test]
    fn counts_added_by_index_past_the_last_bucket_land_in_it() {
        let mut c = CountSeries::new(buckets(1, 3));
        c.add_in(0, 1);
        c.add_in(2, 2);
        c.add_in(3, 4); // past the horizon
        c.add_in(usize::MAX, 8);
        assert_eq!(c.counts(), &[1, 0, 14]);
    }

    #[test]
    fn gauge_mean_and_max_per_bucket() {
        let mut g = GaugeSeries::new(buckets(1, 3));
        g.set(SimTime::from_millis(500), 4); // 0 for 0.5 s, 4 for 0.5 s
        g.set(SimTime::from_millis(1250), 2); // 4 for 0.25 s, then 2
        g.set(SimTime::from_millis(2000), 0);
        let (mean, max) = g.finish(SimTime::from_secs(3));
        assert_eq!(mean, vec![2.0, 4.0 * 0.25 + 2.0 * 0.75, 0.0]);
        assert_eq!(max, vec![4, 4, 0]);
    }

    #[test]
    fn gauge_level_held_across_buckets_counts_in_each() {
        let mut g = GaugeSeries::new(buckets(1, 4));
        g.set(SimTime::from_millis(500), 3);
        let (mean, max) = g.finish(SimTime::from_secs(4));
        assert_eq!(mean, vec![1.5, 3.0, 3.0, 3.0]);
        assert_eq!(max, vec![3, 3, 3, 3]);
    }

    #[test]
    fn rolling_then_recording_current_is_recording_in_the_bucket() {
        let (mut rolled, mut indexed) = (LatencySeries::new(buckets(1, 4)), LatencySeries::new(buckets(1, 4)));
        for (bucket, ms) in [(0, 5), (0, 7), (2, 30), (2, 1), (3, 9), (6, 40)] {
            rolled.roll_to(bucket);
            rolled.record_current(SimDuration::from_millis(ms));
            indexed.record_in(bucket, SimDuration::from_millis(ms));
        }
        rolled.roll_to(3); // never backwards
        assert_eq!(rolled.finish(), indexed.finish());
        assert_eq!(rolled.total(), indexed.total());
        assert_eq!(rolled.finish()[3].count, 2, "the tail bucket takes an index past it");
    }

    #[test]
    fn latency_percentiles_per_bucket_and_the_tail_bucket() {
        let mut s = LatencySeries::new(buckets(1, 3));
        for ms in 1..=100 {
            s.record(SimTime::from_millis(10), SimDuration::from_millis(ms));
        }
        s.record(SimTime::from_secs(7), SimDuration::from_secs(9)); // past the horizon
        let summaries = s.finish();
        assert_eq!(summaries.len(), 3);
        assert_eq!(summaries[0].count, 100);
        assert!((summaries[0].p50.as_secs_f64() - 0.050).abs() < 0.0005);
        assert_eq!(summaries[1].count, 0);
        assert_eq!(summaries[2].max, SimDuration::from_secs(9));
    }
}
