//! Metrics whose memory does not grow with the number of samples: counters,
//! time-weighted gauges and a log-linear latency histogram.
//!
//! ```
//! use stormglass_core::metrics::{Histogram, TimeWeightedGauge};
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! let mut latency = Histogram::new();
//! for ms in 1..=100 {
//!     latency.record(SimDuration::from_millis(ms));
//! }
//! let p99 = latency.percentile(0.99).as_secs_f64();
//! assert!((p99 - 0.099).abs() / 0.099 < 0.01); // within 1%
//!
//! // Queue length 0 for 3 s, then 4 for 1 s: mean 1.
//! let mut queue = TimeWeightedGauge::new(SimTime::ZERO);
//! queue.set(SimTime::from_secs(3), 4);
//! assert_eq!(queue.mean(SimTime::from_secs(4)), 1.0);
//! assert_eq!(queue.max(), 4);
//! ```

use serde::{Deserialize, Serialize};

use crate::time::{SimDuration, SimTime};

/// A monotone count of things that happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counter(u64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn increment(&mut self) {
        self.0 += 1;
    }
    /// Adds `n`.
    #[inline]
    pub fn add(&mut self, n: u64) {
        self.0 += n;
    }
    /// The count.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A level that changes over time (queue length, busy workers); its mean is
/// weighted by how long each level lasted.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWeightedGauge {
    value: u64,
    max: u64,
    start: SimTime,
    last_change: SimTime,
    /// Integral of the level over time, in level x nanoseconds.
    area: u128,
}

impl TimeWeightedGauge {
    /// A gauge at level 0 from `start`.
    pub fn new(start: SimTime) -> Self {
        TimeWeightedGauge { value: 0, max: 0, start, last_change: start, area: 0 }
    }

    /// Sets the level at `now`.
    #[inline]
    pub fn set(&mut self, now: SimTime, value: u64) {
        debug_assert!(now >= self.last_change, "gauge set in the past");
        self.area += u128::from(self.value) * u128::from((now - self.last_change).as_nanos());
        self.last_change = now;
        self.value = value;
        self.max = self.max.max(value);
    }

    /// Raises the level by one at `now`.
    #[inline]
    pub fn increment(&mut self, now: SimTime) {
        self.set(now, self.value + 1);
    }

    /// Lowers the level by one at `now` (not below zero).
    #[inline]
    pub fn decrement(&mut self, now: SimTime) {
        debug_assert!(self.value > 0, "gauge decremented below zero");
        self.set(now, self.value.saturating_sub(1));
    }

    /// The current level.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The highest level seen.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The time-weighted mean level from the start to `now`.
    pub fn mean(&self, now: SimTime) -> f64 {
        let span = (now - self.start).as_nanos();
        if span == 0 {
            return self.value as f64;
        }
        (self.area_until(now) as f64) / span as f64
    }

    /// Integral of the level from the start to `now` (level x ns).
    pub fn area_until(&self, now: SimTime) -> u128 {
        self.area + u128::from(self.value) * u128::from((now - self.last_change).as_nanos())
    }
}

/// Sub-buckets per power of two: 2^7 = 128, so a bucket spans at most 1/128
/// of its values and the midpoint is within 0.4% of any value in it.
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Highest bucket index for a `u64` value.
const BUCKETS_MAX: usize = ((64 - SUB_BUCKET_BITS as usize) + 1) * SUB_BUCKETS as usize;

/// A latency histogram in nanoseconds with relative error below 0.4%
/// (log-linear buckets, as HdrHistogram). Memory is bounded by the range of
/// values seen (at most 7424 counters), never by their number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Counts by bucket index, grown to the highest index seen.
    counts: Vec<u64>,
    /// One bit per bucket, set when its count is not zero. A per-second
    /// timeline bucket holds a few hundred samples spread over up to ~2000
    /// buckets: percentiles and `clear` visit only the set bits. Kept
    /// whole and inline (1 KiB), so that `record` sets a bit without a
    /// bounds check or a pointer to load; only the words of `counts` are
    /// read.
    occupied: [u64; OCCUPIED_WORDS],
    count: u64,
    /// Wide enough for 2^64 samples of the largest latency, so that
    /// `record` adds without a saturation check; read (and serialized)
    /// saturated to a `u64` (see `sum_ns_saturated`), as 584 years of
    /// summed latency is beyond any run here and a `u64` serializes in every
    /// format (JSON has no `u128`).
    sum_ns: u128,
    /// [`MIN_NONE`] while empty, so that `record` keeps the smallest sample
    /// with one `min` and no test of the count; the accessors and the
    /// serialized form say zero, as before.
    min_ns: u64,
    max_ns: u64,
}

/// `min_ns` of an empty histogram: above every sample.
const MIN_NONE: u64 = u64::MAX;

/// Words of the occupancy bitmap: a power of two at or above the words
/// that the highest bucket index needs (116), so that a word index taken
/// modulo it is one mask, and in bounds without a check.
const OCCUPIED_WORDS: usize = BUCKETS_MAX.div_ceil(64).next_power_of_two();

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Vec::new(),
            occupied: [0; OCCUPIED_WORDS],
            count: 0,
            sum_ns: 0,
            min_ns: MIN_NONE,
            max_ns: 0,
        }
    }
}

/// Bucket index of a value: exact below 128, then 128 buckets per octave.
#[inline]
fn bucket_index(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BUCKET_BITS
    let shift = exponent - SUB_BUCKET_BITS;
    let sub = (value >> shift) & (SUB_BUCKETS - 1);
    ((shift as usize + 1) << SUB_BUCKET_BITS) + sub as usize
}

/// The midpoint of bucket `index`, clamped to `[min_ns, max_ns]`.
fn midpoint_within(index: usize, min_ns: u64, max_ns: u64) -> SimDuration {
    let (low, width) = bucket_bounds(index);
    SimDuration::from_nanos((low + (width - 1) / 2).clamp(min_ns, max_ns))
}

/// Lowest value and width of a bucket.
fn bucket_bounds(index: usize) -> (u64, u64) {
    let sub_buckets = SUB_BUCKETS as usize;
    if index < sub_buckets {
        return (index as u64, 1);
    }
    let shift = (index >> SUB_BUCKET_BITS) - 1;
    let sub = (index & (sub_buckets - 1)) as u64;
    ((SUB_BUCKETS + sub) << shift, 1 << shift)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for bucket `index` in the counts and the bitmap.
    #[inline]
    fn grow_to(&mut self, index: usize) {
        if index >= self.counts.len() {
            self.grow(index);
        }
    }

    /// Grows by whole bitmap words, so that every word of `occupied` in use
    /// has its 64 counters and a walk over a word's bits indexes them
    /// unchecked.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, index: usize) {
        let words = index / 64 + 1;
        self.counts.resize(words * 64, 0);
    }

    /// The words of `occupied` that have counters.
    fn occupied_words(&self) -> &[u64] {
        &self.occupied[..self.counts.len() / 64]
    }

    /// The 64 counters of bitmap word `word`.
    #[inline]
    fn word_counts(counts: &mut [u64], word: usize) -> &mut [u64; 64] {
        (&mut counts[word * 64..(word + 1) * 64]).try_into().expect("a word has 64 counters")
    }

    /// The non-empty buckets from the smallest sample's up, in index order,
    /// with their counts.
    fn occupied_buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let words = self.occupied_words();
        let first = if self.count == 0 { words.len() } else { bucket_index(self.min_ns) / 64 };
        words.iter().enumerate().skip(first).flat_map(move |(word, &bits)| {
            let mut bits = bits;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let index = word * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    (index, self.counts[index])
                })
            })
        })
    }

    /// Records one latency. Always inlined (its growth is out of line): a
    /// model records a few latencies per request.
    #[inline(always)]
    pub fn record(&mut self, latency: SimDuration) {
        let value = latency.as_nanos();
        let index = bucket_index(value);
        if !self.try_count(index) {
            self.grow_and_count(index);
        }
        self.min_ns = self.min_ns.min(value);
        self.max_ns = self.max_ns.max(value);
        self.count += 1;
        self.sum_ns += u128::from(value);
    }

    /// Counts one sample in bucket `index` if the histogram has grown to it.
    /// One bounds check, where growing first and then indexing took two:
    /// LLVM cannot see that the out-of-line growth made room. (The word
    /// index is below `OCCUPIED_WORDS`, so the modulo changes nothing but
    /// what LLVM can prove.)
    #[inline(always)]
    fn try_count(&mut self, index: usize) -> bool {
        let Some(count) = self.counts.get_mut(index) else {
            return false;
        };
        *count += 1;
        self.occupied[index / 64 % OCCUPIED_WORDS] |= 1 << (index % 64);
        true
    }

    #[cold]
    #[inline(never)]
    fn grow_and_count(&mut self, index: usize) {
        self.grow(index);
        let counted = self.try_count(index);
        debug_assert!(counted, "grown to bucket {index}");
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        self.grow_to(other.counts.len() - 1);
        for (index, count) in other.occupied_buckets() {
            self.counts[index] += count;
        }
        for (mine, theirs) in self.occupied.iter_mut().zip(other.occupied_words()) {
            *mine |= theirs;
        }
        self.add_moments(other);
    }

    /// Takes in `other`'s count, sum, smallest and largest sample (its
    /// buckets are the caller's to add).
    fn add_moments(&mut self, other: &Histogram) {
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }

    /// The nearest rank of quantile `q` (clamped to `[0, 1]`, NaN as 1)
    /// among the samples; the histogram is not empty.
    fn rank(&self, q: f64) -> u64 {
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        ((q * self.count as f64).ceil() as u64).clamp(1, self.count)
    }

    /// The value a quantile that falls in bucket `index` reads: the
    /// bucket's midpoint, clamped to the observed range.
    fn quantile_value(&self, index: usize) -> SimDuration {
        midpoint_within(index, self.min_ns, self.max_ns)
    }

    /// Forgets every sample, keeping the allocation.
    pub fn clear(&mut self) {
        if self.count > 0 {
            // Only the occupied buckets are non-zero, and only the bitmap
            // words from the smallest to the largest sample have bits set.
            let (first, last) = (bucket_index(self.min_ns) / 64, bucket_index(self.max_ns) / 64);
            for word in first..=last {
                let mut bits = std::mem::take(&mut self.occupied[word]);
                while bits != 0 {
                    self.counts[word * 64 + bits.trailing_zeros() as usize] = 0;
                    bits &= bits - 1;
                }
            }
            debug_assert!(self.counts.iter().all(|&c| c == 0), "a sample outside [min, max]");
            debug_assert!(self.occupied_words().iter().all(|&w| w == 0), "an occupied bit outside [min, max]");
        }
        self.count = 0;
        self.sum_ns = 0;
        self.min_ns = MIN_NONE;
        self.max_ns = 0;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest sample (zero when empty).
    pub fn min(&self) -> SimDuration {
        SimDuration::from_nanos(self.min_ns_or_zero())
    }

    /// `min_ns` with the empty histogram's sentinel read as zero.
    fn min_ns_or_zero(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min_ns }
    }

    /// The sum of the samples, saturated to a `u64`: what summing them with
    /// `u64::saturating_add` gives, as every sample is non-negative.
    fn sum_ns_saturated(&self) -> u64 {
        u64::try_from(self.sum_ns).unwrap_or(u64::MAX)
    }

    /// Largest sample (zero when empty).
    pub fn max(&self) -> SimDuration {
        SimDuration::from_nanos(self.max_ns)
    }

    /// Exact mean of the samples (zero when empty).
    pub fn mean(&self) -> SimDuration {
        if self.count == 0 {
            return SimDuration::ZERO;
        }
        SimDuration::from_nanos(self.sum_ns_saturated() / self.count)
    }

    /// The `q`-quantile (nearest rank), `q` in `[0, 1]`; zero when empty.
    /// The value is the midpoint of its bucket, clamped to the observed range.
    pub fn percentile(&self, q: f64) -> SimDuration {
        let mut out = [SimDuration::ZERO];
        self.percentiles(&[q], &mut out);
        out[0]
    }

    /// Several quantiles in one pass over the buckets; `qs` must be
    /// non-decreasing. Writes one value per quantile into `out`.
    pub fn percentiles(&self, qs: &[f64], out: &mut [SimDuration]) {
        debug_assert_eq!(qs.len(), out.len());
        debug_assert!(qs.windows(2).all(|w| w[0] <= w[1]), "quantiles must be sorted");
        if self.count == 0 {
            out.iter_mut().for_each(|o| *o = SimDuration::ZERO);
            return;
        }
        let mut next = 0;
        // The rank the next quantile waits for, computed once per quantile
        // rather than once per bucket.
        let Some(&first) = qs.first() else { return };
        let mut wanted = self.rank(first);
        let mut seen = 0;
        for (index, count) in self.occupied_buckets() {
            seen += count;
            while seen >= wanted {
                out[next] = self.quantile_value(index);
                next += 1;
                match qs.get(next) {
                    Some(&q) => wanted = self.rank(q),
                    None => return,
                }
            }
        }
        out[next..].iter_mut().for_each(|o| *o = self.max());
    }

    /// The usual percentiles, for reports.
    pub fn summary(&self) -> LatencySummary {
        let mut p = [SimDuration::ZERO; 4];
        self.percentiles(&SUMMARY_QUANTILES, &mut p);
        LatencySummary {
            count: self.count,
            mean: self.mean(),
            p50: p[0],
            p90: p[1],
            p99: p[2],
            p999: p[3],
            max: self.max(),
        }
    }
}

impl Histogram {
    /// [`summary`](Self::summary), then [`merge`](Self::merge) into `total`,
    /// then [`clear`](Self::clear), in one pass over the occupied buckets
    /// instead of three: a timeline closes every bucket of every latency
    /// series this way, and each pass touched the same cold lines again.
    ///
    /// ```
    /// use stormglass_core::metrics::Histogram;
    /// use stormglass_core::time::SimDuration;
    ///
    /// let (mut bucket, mut total) = (Histogram::new(), Histogram::new());
    /// for ms in 1..=100 {
    ///     bucket.record(SimDuration::from_millis(ms));
    /// }
    /// let summary = bucket.summary();
    /// assert_eq!(bucket.drain_into(&mut total), summary);
    /// assert_eq!((bucket.count(), total.count()), (0, 100));
    /// ```
    pub fn drain_into(&mut self, total: &mut Histogram) -> LatencySummary {
        if self.count == 0 {
            return self.summary();
        }
        let wanted = SUMMARY_QUANTILES.map(|q| self.rank(q));
        let mut found = [SimDuration::ZERO; 4];
        let (mut next, mut seen) = (0, 0);
        // The rank the next quantile waits for; past the last, none.
        let mut next_rank = wanted[0];
        total.grow_to(self.counts.len() - 1);
        let (first, last) = (bucket_index(self.min_ns) / 64, bucket_index(self.max_ns) / 64);
        for word in first..=last {
            let mut bits = std::mem::take(&mut self.occupied[word]);
            total.occupied[word] |= bits;
            let (mine, theirs) =
                (Self::word_counts(&mut self.counts, word), Self::word_counts(&mut total.counts, word));
            while let Some(set) = std::num::NonZeroU64::new(bits) {
                let bit = set.trailing_zeros() as usize;
                bits &= bits - 1;
                let count = std::mem::take(&mut mine[bit]);
                theirs[bit] += count;
                seen += count;
                if seen >= next_rank {
                    // At most four times a drain: the rest of the walk
                    // compares one rank per bucket, not a quantile index too.
                    let index = word * 64 + bit;
                    next_rank =
                        reach_quantiles(index, seen, (self.min_ns, self.max_ns), &wanted, &mut found, &mut next);
                }
            }
        }
        debug_assert_eq!(next, wanted.len(), "every quantile lies within the samples");
        let summary = LatencySummary {
            count: self.count,
            mean: self.mean(),
            p50: found[0],
            p90: found[1],
            p99: found[2],
            p999: found[3],
            max: self.max(),
        };
        total.add_moments(self);
        (self.count, self.sum_ns, self.min_ns, self.max_ns) = (0, 0, MIN_NONE, 0);
        summary
    }
}

/// `drain_into`'s walk reached rank `seen` in bucket `index`: the
/// quantiles from `next` whose ranks it reached read the bucket (clamped
/// to `range`, the smallest and largest sample). Returns the rank the next
/// quantile waits for (none past the last). Out of line: the walk's loop
/// over the buckets kept registers for it.
#[cold]
#[inline(never)]
fn reach_quantiles(
    index: usize,
    seen: u64,
    range: (u64, u64),
    wanted: &[u64; 4],
    found: &mut [SimDuration; 4],
    next: &mut usize,
) -> u64 {
    while *next < wanted.len() && seen >= wanted[*next] {
        found[*next] = midpoint_within(index, range.0, range.1);
        *next += 1;
    }
    wanted.get(*next).copied().unwrap_or(u64::MAX)
}

/// The quantiles of a [`LatencySummary`], in its field order.
const SUMMARY_QUANTILES: [f64; 4] = [0.50, 0.90, 0.99, 0.999];

/// Serialized as a sparse list of `(bucket, count)` so a histogram with a
/// narrow range stays small on disk, and merges after a round trip.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Histogram", deny_unknown_fields)]
struct HistogramData {
    count: u64,
    sum_ns: u64,
    min_ns: u64,
    max_ns: u64,
    buckets: Vec<(u32, u64)>,
}

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buckets = self.occupied_buckets().map(|(i, c)| (i as u32, c)).collect();
        let min_ns = self.min_ns_or_zero();
        let sum_ns = self.sum_ns_saturated();
        HistogramData { count: self.count, sum_ns, min_ns, max_ns: self.max_ns, buckets }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let data = HistogramData::deserialize(d)?;
        let mut histogram = Histogram {
            count: data.count,
            sum_ns: u128::from(data.sum_ns),
            min_ns: if data.count == 0 { MIN_NONE } else { data.min_ns },
            max_ns: data.max_ns,
            counts: Vec::new(),
            occupied: [0; OCCUPIED_WORDS],
        };
        let mut total = 0u64;
        for (index, count) in data.buckets {
            let index = index as usize;
            if index >= BUCKETS_MAX {
                return Err(D::Error::custom(format!("histogram bucket {index} out of range (max {BUCKETS_MAX})")));
            }
            // `clear` and `percentiles` only visit the buckets from min to
            // max, so a bucket outside them would be a sample they miss.
            if count > 0 && (index < bucket_index(data.min_ns) || index > bucket_index(data.max_ns)) {
                return Err(D::Error::custom(format!("histogram bucket {index} lies outside min_ns..=max_ns")));
            }
            if count > 0 {
                histogram.grow_to(index);
                histogram.counts[index] += count;
                histogram.occupied[index / 64] |= 1 << (index % 64);
            }
            total = total.saturating_add(count);
        }
        if total != histogram.count {
            return Err(D::Error::custom("histogram buckets do not add up to its count"));
        }
        Ok(histogram)
    }
}

/// Count, mean and percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Exact mean.
    pub mean: SimDuration,
    /// Median.
    pub p50: SimDuration,
    /// 90th percentile.
    pub p90: SimDuration,
    /// 99th percentile.
    pub p99: SimDuration,
    /// 99.9th percentile.
    pub p999: SimDuration,
    /// Largest sample.
    pub max: SimDuration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngStreams;

    #[test]
    fn bucket_bounds_invert_bucket_index() {
        for value in (0..5000u64).chain([u64::MAX, u64::MAX / 3, 1 << 40, (1 << 40) - 1]) {
            let index = bucket_index(value);
            assert!(index < BUCKETS_MAX);
            let (low, width) = bucket_bounds(index);
            assert!(low <= value && value - low < width, "{value} in [{low}, +{width})");
            assert!(width == 1 || (width as f64) / (low as f64) <= 1.0 / 128.0);
        }
    }

    #[test]
    fn percentiles_are_within_one_percent_of_the_exact_ones() {
        let mut rng = RngStreams::new(11).stream("histogram");
        let mut exact = Vec::new();
        let mut histogram = Histogram::new();
        for _ in 0..100_000 {
            // Log-uniform from 1 us to 100 s: every octave is exercised.
            let ns = (10f64.powf(3.0 + 8.0 * rng.uniform01())) as u64;
            exact.push(ns);
            histogram.record(SimDuration::from_nanos(ns));
        }
        exact.sort_unstable();
        for q in [0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let rank = ((q * exact.len() as f64).ceil() as usize).clamp(1, exact.len());
            let truth = exact[rank - 1] as f64;
            let got = histogram.percentile(q).as_nanos() as f64;
            assert!((got - truth).abs() / truth <= 0.01, "q={q}: {got} vs {truth}");
        }
        assert_eq!(histogram.max().as_nanos(), *exact.last().unwrap());
        assert_eq!(histogram.min().as_nanos(), exact[0]);
        let mean = exact.iter().map(|&x| u128::from(x)).sum::<u128>() / exact.len() as u128;
        assert_eq!(u128::from(histogram.mean().as_nanos()), mean);
        assert!(histogram.counts.len() <= BUCKETS_MAX);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut both = Histogram::new();
        for i in 0..1000u64 {
            let d = SimDuration::from_micros(i * i + 1);
            if i % 3 == 0 {
                a.record(d)
            } else {
                b.record(d)
            }
            both.record(d);
        }
        a.merge(&b);
        assert_eq!(a, both);
        let mut empty = Histogram::new();
        empty.merge(&both);
        assert_eq!(empty, both);
    }

    /// Nearest-rank quantile by scanning every counter, as the histogram
    /// did before it kept a bitmap of occupied buckets.
    fn percentile_by_full_scan(h: &Histogram, q: f64) -> SimDuration {
        let rank = ((q * h.count as f64).ceil() as u64).clamp(1, h.count);
        let mut seen = 0;
        for (index, &count) in h.counts.iter().enumerate() {
            seen += count;
            if count > 0 && seen >= rank {
                let (low, width) = bucket_bounds(index);
                return SimDuration::from_nanos((low + (width - 1) / 2).clamp(h.min_ns, h.max_ns));
            }
        }
        h.max()
    }

    #[test]
    fn occupied_bitmap_tracks_the_counts_through_clear_and_merge() {
        let mut rng = RngStreams::new(5).stream("bitmap");
        let mut timeline_bucket = Histogram::new();
        let mut total = Histogram::new();
        for round in 0..50 {
            // Rounds of different spreads, as a per-second bucket sees
            // before, during and after a fault (1 us .. 100 s).
            let octaves = 1.0 + (round % 8) as f64;
            for _ in 0..(round * 7) % 300 {
                let ns = 10f64.powf(3.0 + octaves * rng.uniform01()) as u64;
                timeline_bucket.record(SimDuration::from_nanos(ns));
            }
            assert_eq!(timeline_bucket.counts.len() % 64, 0, "whole words of counters");
            assert!(timeline_bucket.occupied[timeline_bucket.counts.len() / 64..].iter().all(|&w| w == 0));
            for (word, &bits) in timeline_bucket.occupied_words().iter().enumerate() {
                for bit in 0..64 {
                    let index = word * 64 + bit;
                    let count = timeline_bucket.counts.get(index).copied().unwrap_or(0);
                    assert_eq!(bits >> bit & 1 == 1, count > 0, "round {round}, bucket {index}");
                }
            }
            if timeline_bucket.count() > 0 {
                for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
                    let expected = percentile_by_full_scan(&timeline_bucket, q);
                    assert_eq!(timeline_bucket.percentile(q), expected, "round {round}, q={q}");
                }
            }
            total.merge(&timeline_bucket);
            timeline_bucket.clear();
            assert!(timeline_bucket.occupied.iter().all(|&w| w == 0), "clear leaves no bit set");
        }
        for q in [0.5, 0.99] {
            assert_eq!(total.percentile(q), percentile_by_full_scan(&total, q));
        }
    }

    proptest::proptest! {
        /// Draining into a total is a summary, a merge and a clear: the same
        /// summary, the same total, and an empty histogram, bucket after
        /// bucket of different spreads. A new histogram per round checks
        /// that a cleared or drained one forgets its smallest sample.
        #[test]
        fn draining_is_summary_merge_and_clear(
            rounds in proptest::collection::vec(proptest::collection::vec(0u64..40_000_000_000, 0..120), 1..12),
        ) {
            let (mut drained, mut drained_total) = (Histogram::new(), Histogram::new());
            let (mut kept, mut kept_total) = (Histogram::new(), Histogram::new());
            for samples in rounds {
                let mut fresh = Histogram::new();
                for ns in samples {
                    drained.record(SimDuration::from_nanos(ns));
                    kept.record(SimDuration::from_nanos(ns));
                    fresh.record(SimDuration::from_nanos(ns));
                }
                proptest::prop_assert_eq!((kept.min(), kept.summary()), (fresh.min(), fresh.summary()));
                let summary = kept.summary();
                kept_total.merge(&kept);
                kept.clear();
                proptest::prop_assert_eq!(drained.drain_into(&mut drained_total), summary);
                proptest::prop_assert_eq!(&drained, &kept);
                proptest::prop_assert_eq!(&drained_total, &kept_total);
                proptest::prop_assert_eq!(drained.min(), SimDuration::ZERO);
            }
        }
    }

    /// An empty histogram keeps a sentinel as its smallest sample; a new,
    /// a cleared and a drained one must all read and serialize it as zero,
    /// and forget it when a sample comes.
    #[test]
    fn empty_histograms_say_zero_for_their_smallest_sample() {
        let mut cleared = Histogram::new();
        cleared.record(SimDuration::from_millis(3));
        cleared.clear();
        let mut drained = Histogram::new();
        drained.record(SimDuration::from_millis(3));
        drained.drain_into(&mut Histogram::new());
        for empty in [Histogram::new(), cleared, drained] {
            assert_eq!(
                (empty.min(), empty.max(), empty.summary()),
                (SimDuration::ZERO, SimDuration::ZERO, LatencySummary::default())
            );
            let text = ron::to_string(&empty).unwrap();
            assert_eq!(text, "(count:0,sum_ns:0,min_ns:0,max_ns:0,buckets:[])");
            assert_eq!(ron::from_str::<Histogram>(&text).unwrap(), Histogram::new());
            let mut again = empty.clone();
            again.record(SimDuration::from_millis(7));
            assert_eq!((again.min(), again.max()), (SimDuration::from_millis(7), SimDuration::from_millis(7)));
        }
    }

    /// The sum is kept wide and read saturated: what a saturating `u64`
    /// sum gave, for the mean and the serialized form.
    #[test]
    fn the_sum_reads_saturated() {
        let mut h = Histogram::new();
        h.record(SimDuration::from_nanos(u64::MAX - 1));
        h.record(SimDuration::from_nanos(u64::MAX - 1));
        assert_eq!(h.mean(), SimDuration::from_nanos(u64::MAX / 2));
        assert!(ron::to_string(&h).unwrap().contains(&format!("sum_ns:{}", u64::MAX)));
    }

    #[test]
    fn histogram_round_trips_through_ron_and_json() {
        let mut h = Histogram::new();
        for ms in [1, 5, 5, 200, 3000] {
            h.record(SimDuration::from_millis(ms));
        }
        let text = ron::to_string(&h).unwrap();
        assert_eq!(ron::from_str::<Histogram>(&text).unwrap(), h);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), h);
        let lying = r#"(count: 9, sum_ns: 1, min_ns: 1, max_ns: 1, buckets: [(1, 1)])"#;
        assert!(ron::from_str::<Histogram>(lying).is_err());
        let outside = r#"(count: 1, sum_ns: 1, min_ns: 5, max_ns: 5, buckets: [(1, 1)])"#;
        assert!(ron::from_str::<Histogram>(outside).unwrap_err().to_string().contains("outside min_ns..=max_ns"));
    }

    #[test]
    fn gauge_mean_is_weighted_by_time() {
        let mut g = TimeWeightedGauge::new(SimTime::from_secs(10));
        g.set(SimTime::from_secs(10), 2); // 2 for 5 s
        g.increment(SimTime::from_secs(15)); // 3 for 5 s
        g.set(SimTime::from_secs(20), 0); // 0 for 10 s
        assert_eq!(g.mean(SimTime::from_secs(30)), (10.0 + 15.0) / 20.0);
        assert_eq!(g.max(), 3);
        assert_eq!(g.value(), 0);
    }
}
