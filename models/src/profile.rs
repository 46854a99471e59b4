//! Open-loop arrivals from a rate profile.
//!
//! A time-varying Poisson process is drawn by thinning (Lewis and Shedler)
//! against a piecewise majorant: the profile is cut into segments (between
//! steps, around a spike, before, during and after a ramp, between table
//! points), candidates come at the highest rate of what is left of the
//! current segment (recomputed at each candidate), and
//! each is kept with probability `rate(t) / majorant`. A candidate past the
//! segment's end is discarded and the draw restarts at the boundary with the
//! next segment's majorant: the exponential gap is memoryless, so this is
//! exact. A segment at rate 0 is skipped whole. For steps, spikes and constant
//! rates the majorant is the rate itself, so every candidate is kept; for a
//! constant rate this is a plain Poisson process.
//!
//! ```
//! use stormglass_models::config::RateProfile;
//! use stormglass_models::profile::Arrivals;
//! use stormglass_core::rng::SimRng;
//! use stormglass_core::time::SimTime;
//!
//! let spike = RateProfile::Spike { base: 10.0, peak: 100.0, at: SimTime::from_secs(5), width: "1s".parse().unwrap() };
//! let mut arrivals = Arrivals::new(&spike);
//! assert_eq!(arrivals.rate_at(SimTime::from_millis(5500)), 100.0);
//! let mut rng = SimRng::from_seed_u64(1);
//! let next = arrivals.next_after(SimTime::ZERO, SimTime::from_secs(60), &mut rng);
//! assert!(next.is_some());
//! ```

use stormglass_core::ahead::Batch;
use stormglass_core::rng::{SimRng, uniform01};
use stormglass_core::time::{SimDuration, SimTime};

use crate::config::{RatePoint, RateProfile};

/// Draws arrival times from a [`RateProfile`].
///
/// Give every call of [`Arrivals::next_after`] the same stream: a constant
/// rate draws its gaps ahead, in batches.
#[derive(Debug, Clone)]
pub struct Arrivals {
    profile: RateProfile,
    /// A constant rate's next gaps, drawn in a batch: a gap is a logarithm
    /// and a division, a long chain of dependent work, and a batch's chains
    /// overlap where one drawn at each arrival held up the arrival's queue
    /// push. The gaps and their order on the stream are the same as drawing
    /// at use.
    gaps: Batch,
}

impl Arrivals {
    /// Arrivals for a validated profile.
    pub fn new(profile: &RateProfile) -> Self {
        Arrivals { profile: profile.clone(), gaps: Batch::default() }
    }

    /// Requests per second at `t`.
    pub fn rate_at(&self, t: SimTime) -> f64 {
        match &self.profile {
            RateProfile::Constant { rps } => *rps,
            RateProfile::Spike { base, peak, at, width } => {
                if t >= *at && t < *at + *width {
                    *peak
                } else {
                    *base
                }
            }
            RateProfile::Ramp { from_rps, to_rps, start, end } => {
                if t <= *start {
                    *from_rps
                } else if t >= *end {
                    *to_rps
                } else {
                    let f = (t - *start).as_secs_f64() / (*end - *start).as_secs_f64();
                    from_rps + (to_rps - from_rps) * f
                }
            }
            RateProfile::Steps(points) => step_rate(points, t),
            RateProfile::Table(points) => table_rate(points, t),
        }
    }

    /// The first arrival after `now` and before `end`, if any. Always
    /// inlined for a constant rate, the common case: one gap from the batch
    /// costs less than the call (and its saved registers) did; other
    /// profiles go through `next_after_thinned`.
    #[inline(always)]
    pub fn next_after(&mut self, now: SimTime, end: SimTime, rng: &mut SimRng) -> Option<SimTime> {
        if let RateProfile::Constant { rps } = self.profile {
            // One draw per arrival: what the thinning loop does for a
            // constant rate, without its segment lookups.
            if rps <= 0.0 || now >= end {
                return None;
            }
            let arrival = now + self.gaps.next(|| exponential_gap(rng, rps));
            return (arrival < end).then_some(arrival);
        }
        self.next_after_thinned(now, end, rng)
    }

    /// `next_after` for a profile that is not constant, by thinning.
    #[inline(never)]
    fn next_after_thinned(&mut self, now: SimTime, end: SimTime, rng: &mut SimRng) -> Option<SimTime> {
        // Every pass either returns, or moves `t` forward: to a segment end
        // (always after `t`) or by a gap of at least 1 ns. So the loop ends
        // within the span to `end` without a cap on candidates, and `None`
        // means no arrival before `end`, never "gave up".
        let mut t = now;
        while t < end {
            let (majorant, segment_end) = self.segment(t);
            debug_assert!(segment_end > t, "a segment ends after it starts");
            let stop = segment_end.min(end);
            if majorant <= 0.0 {
                // Nothing can arrive in this segment: skip it without drawing.
                t = stop;
                continue;
            }
            let candidate = t + exponential_gap(rng, majorant);
            if candidate >= stop {
                // Past this segment: restart at its end with the next
                // majorant (exact, the gap is memoryless), or stop at `end`.
                t = stop;
                continue;
            }
            t = candidate;
            // Where the majorant is the rate itself (constant, steps, spike)
            // every candidate is kept without drawing the acceptance
            // uniform, so a constant profile draws exactly as a plain
            // Poisson process (and as this code did before it had segments).
            let rate = self.rate_at(t);
            if rate >= majorant || uniform01(rng) * majorant < rate {
                return Some(t);
            }
        }
        None
    }

    /// The segment of the profile that holds `t`: the highest rate over the
    /// rest of it, from `t`, and its end ([`SimTime::MAX`] for the last).
    /// The rate is exact for constant, steps and spike; for ramp and table,
    /// linear on the segment, the higher of the rate at `t` and at the end
    /// bounds it. Taking it from `t` rather than from the segment's start
    /// keeps a falling slope from rejecting ever more candidates; a bound
    /// recomputed at each candidate from the past alone is still a valid
    /// majorant for thinning (Ogata's modified thinning).
    fn segment(&self, t: SimTime) -> (f64, SimTime) {
        match &self.profile {
            RateProfile::Constant { rps } => (*rps, SimTime::MAX),
            RateProfile::Spike { base, peak, at, width } => {
                if t < *at {
                    (*base, *at)
                } else if t < *at + *width {
                    (*peak, *at + *width)
                } else {
                    (*base, SimTime::MAX)
                }
            }
            RateProfile::Ramp { from_rps, to_rps, start, end } => {
                if t < *start {
                    (*from_rps, *start)
                } else if t < *end {
                    (self.rate_at(t).max(*to_rps), *end)
                } else {
                    (*to_rps, SimTime::MAX)
                }
            }
            RateProfile::Steps(points) => match points.partition_point(|p| p.at <= t) {
                // Before the first point the rate is zero.
                0 => (0.0, points.first().map_or(SimTime::MAX, |p| p.at)),
                i => (points[i - 1].rps, points.get(i).map_or(SimTime::MAX, |p| p.at)),
            },
            RateProfile::Table(points) => match points.partition_point(|p| p.at <= t) {
                // Flat at the first point's rate before it, at the last's after it.
                0 => (points[0].rps, points[0].at),
                i if i == points.len() => (points[i - 1].rps, SimTime::MAX),
                i => (self.rate_at(t).max(points[i].rps), points[i].at),
            },
        }
    }
}

/// The gap to the next event of a Poisson process at `rate` per second, at
/// least 1 ns so that time always moves.
fn exponential_gap(rng: &mut SimRng, rate: f64) -> SimDuration {
    // libm, not f64::ln: the same bytes on every platform (ARCHITECTURE.md, invariant 9).
    let gap = -libm::log(1.0 - uniform01(rng)) / rate;
    SimDuration::from_secs_f64(gap).max(SimDuration::from_nanos(1))
}

fn step_rate(points: &[RatePoint], t: SimTime) -> f64 {
    // The last point at or before t; before the first point, zero.
    match points.partition_point(|p| p.at <= t) {
        0 => 0.0,
        i => points[i - 1].rps,
    }
}

fn table_rate(points: &[RatePoint], t: SimTime) -> f64 {
    let i = points.partition_point(|p| p.at <= t);
    if i == 0 {
        return points[0].rps;
    }
    if i == points.len() {
        return points[i - 1].rps;
    }
    let (a, b) = (points[i - 1], points[i]);
    let f = (t - a.at).as_secs_f64() / (b.at - a.at).as_secs_f64();
    a.rps + (b.rps - a.rps) * f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(profile: RateProfile, from: u64, to: u64, seed: u64) -> u64 {
        let mut arrivals = Arrivals::new(&profile);
        let mut rng = SimRng::from_seed_u64(seed);
        let mut t = SimTime::ZERO;
        let mut n = 0;
        while let Some(next) = arrivals.next_after(t, SimTime::from_secs(to), &mut rng) {
            if next >= SimTime::from_secs(from) {
                n += 1;
            }
            t = next;
        }
        n
    }

    #[test]
    fn thinning_follows_the_profile() {
        // Expected counts are rate x time; Poisson sd is the square root, so
        // 4 sd bounds hold for every seed we pin.
        let spike = RateProfile::Spike {
            base: 100.0,
            peak: 1000.0,
            at: SimTime::from_secs(10),
            width: SimDuration::from_secs(10),
        };
        let during = count(spike.clone(), 10, 20, 3);
        assert!((10_000i64 - during as i64).abs() < 400, "{during}");
        let constant = count(RateProfile::Constant { rps: 200.0 }, 0, 100, 4);
        assert!((20_000i64 - constant as i64).abs() < 566, "{constant}");
        let ramp =
            RateProfile::Ramp { from_rps: 0.0, to_rps: 200.0, start: SimTime::ZERO, end: SimTime::from_secs(100) };
        let ramped = count(ramp, 0, 100, 5); // expect 10_000
        assert!((10_000i64 - ramped as i64).abs() < 400, "{ramped}");
    }

    /// Draws `profile` from 0 to `end_ms` with `seed` and checks the count
    /// in each window `(from_ms, to_ms, expected)`, where `expected` is the
    /// integral of the rate over the window. A window's count is Poisson, sd
    /// the square root of the mean, so 5 sd (a false alarm under 1e-6 per
    /// window) bounds it; where the rate is zero the count must be zero.
    fn check(profile: RateProfile, end_ms: u64, seed: u64, windows: &[(u64, u64, f64)]) {
        let mut arrivals = Arrivals::new(&profile);
        let mut rng = SimRng::from_seed_u64(seed);
        let (mut t, mut times) = (SimTime::ZERO, Vec::new());
        while let Some(next) = arrivals.next_after(t, SimTime::from_millis(end_ms), &mut rng) {
            assert!(next > t && next < SimTime::from_millis(end_ms));
            times.push(next);
            t = next;
        }
        for &(from_ms, to_ms, expected) in windows {
            let (from, to) = (SimTime::from_millis(from_ms), SimTime::from_millis(to_ms));
            let n = times.iter().filter(|&&t| t >= from && t < to).count() as f64;
            let tolerance = 5.0 * expected.sqrt();
            assert!(
                (n - expected).abs() <= tolerance,
                "{profile:?} seed {seed}: {n} in [{from}, {to}), expected {expected} +- {tolerance}"
            );
        }
    }

    fn point(at_ms: u64, rps: f64) -> RatePoint {
        RatePoint { at: SimTime::from_millis(at_ms), rps }
    }

    #[test]
    fn a_step_up_from_zero_arrives_after_it() {
        // Thinning at the global peak drew 1.5 x 10^6 candidates in the
        // first 30 s, all rejected: it gave up after 10^6 and returned None,
        // which ended the client's arrivals for the rest of the run.
        let steps = RateProfile::Steps(vec![point(0, 0.0), point(30_000, 50_000.0)]);
        check(steps, 40_000, 1, &[(0, 30_000, 0.0), (30_000, 31_000, 50_000.0), (30_000, 40_000, 500_000.0)]);
    }

    #[test]
    fn a_narrow_spike_happens() {
        // 2e6 rps for 10 ms over a base of 2 rps: at the global peak each
        // base-rate arrival took ~10^6 candidates, so the cap of 10^6 was
        // hit within the first few arrivals and the spike never came.
        let spike = RateProfile::Spike {
            base: 2.0,
            peak: 2e6,
            at: SimTime::from_secs(50),
            width: SimDuration::from_millis(10),
        };
        check(spike, 100_000, 1, &[(0, 50_000, 100.0), (50_000, 50_010, 20_000.0), (50_010, 100_000, 99.98)]);
    }

    #[test]
    fn ramps_and_tables_follow_the_integral_of_the_rate() {
        // Down from 1000 to 0 between 10 s and 30 s, flat outside: on the
        // slope the majorant is the rate at the last candidate, so each
        // candidate is kept with the ratio of the rate now to the rate then,
        // and the counts show the thinning keeps them in proportion.
        let ramp = RateProfile::Ramp {
            from_rps: 1000.0,
            to_rps: 0.0,
            start: SimTime::from_secs(10),
            end: SimTime::from_secs(30),
        };
        let windows =
            [(0, 10_000, 10_000.0), (10_000, 20_000, 7_500.0), (20_000, 30_000, 2_500.0), (30_000, 40_000, 0.0)];
        check(ramp, 40_000, 2, &windows);
        // Flat at 400 before 5 s, up, down to a zero stretch, up, flat at 1000.
        let table = RateProfile::Table(vec![
            point(5_000, 400.0),
            point(10_000, 2_000.0),
            point(20_000, 0.0),
            point(30_000, 0.0),
            point(35_000, 1_000.0),
        ]);
        let windows = [
            (0, 5_000, 2_000.0),
            (5_000, 10_000, 6_000.0),
            (10_000, 15_000, 7_500.0),
            (15_000, 20_000, 2_500.0),
            (20_000, 30_000, 0.0),
            (30_000, 35_000, 2_500.0),
            (35_000, 40_000, 5_000.0),
        ];
        check(table, 40_000, 3, &windows);
    }

    #[test]
    fn a_constant_rate_draws_its_gaps_in_order_across_batches() {
        let mut arrivals = Arrivals::new(&RateProfile::Constant { rps: 50.0 });
        let (mut rng, mut at_use) = (SimRng::from_seed_u64(3), SimRng::from_seed_u64(3));
        let mut t = SimTime::ZERO;
        for _ in 0..3 * stormglass_core::ahead::BATCH + 5 {
            let next = arrivals.next_after(t, SimTime::MAX, &mut rng).expect("a constant rate keeps arriving");
            assert_eq!(next, t + exponential_gap(&mut at_use, 50.0));
            t = next;
        }
    }

    #[test]
    fn constant_profiles_draw_as_before_segments() {
        // These times were printed by the code before this change (thinning
        // at the global peak, commit 09f6aff), run on the same seeds: a
        // constant profile's draws, and every snapshot built on them, hold.
        let first_ns = |rps: f64, seed: u64| {
            let mut arrivals = Arrivals::new(&RateProfile::Constant { rps });
            let mut rng = SimRng::from_seed_u64(seed);
            let mut t = SimTime::ZERO;
            (0..6)
                .map(|_| {
                    t = arrivals.next_after(t, SimTime::MAX, &mut rng).expect("a constant rate keeps arriving");
                    t.as_nanos()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(first_ns(200.0, 7), [3010699, 4042553, 4413822, 5323076, 11679816, 22195811]);
        assert_eq!(first_ns(1e6, 11), [190, 643, 1177, 2230, 2526, 7381]);
    }

    #[test]
    fn steps_and_tables_interpolate_as_documented() {
        let points = vec![
            RatePoint { at: SimTime::from_secs(10), rps: 100.0 },
            RatePoint { at: SimTime::from_secs(20), rps: 300.0 },
        ];
        let steps = Arrivals::new(&RateProfile::Steps(points.clone()));
        assert_eq!(steps.rate_at(SimTime::from_secs(5)), 0.0);
        assert_eq!(steps.rate_at(SimTime::from_secs(15)), 100.0);
        assert_eq!(steps.rate_at(SimTime::from_secs(25)), 300.0);
        let table = Arrivals::new(&RateProfile::Table(points));
        assert_eq!(table.rate_at(SimTime::from_secs(5)), 100.0);
        assert_eq!(table.rate_at(SimTime::from_secs(15)), 200.0);
        assert_eq!(table.rate_at(SimTime::from_secs(25)), 300.0);
    }

    #[test]
    fn a_zero_profile_never_arrives_and_never_spins() {
        let mut arrivals = Arrivals::new(&RateProfile::Constant { rps: 0.0 });
        let mut rng = SimRng::from_seed_u64(1);
        assert_eq!(arrivals.next_after(SimTime::ZERO, SimTime::MAX, &mut rng), None);
        // A profile whose rest is zero ends at once, even with no end in
        // sight: the zero segments are skipped, not drawn through.
        for zero_from_1s in [
            RateProfile::Steps(vec![point(0, 1e7), point(1_000, 0.0)]),
            RateProfile::Table(vec![point(0, 1e7), point(1_000, 0.0)]),
            RateProfile::Ramp { from_rps: 1e7, to_rps: 0.0, start: SimTime::ZERO, end: SimTime::from_secs(1) },
        ] {
            let mut arrivals = Arrivals::new(&zero_from_1s);
            assert_eq!(arrivals.next_after(SimTime::from_secs(1), SimTime::MAX, &mut rng), None, "{zero_from_1s:?}");
        }
        // Nor does a long zero stretch at the start end the arrivals.
        let mut late = Arrivals::new(&RateProfile::Steps(vec![point(0, 0.0), point(1_000_000_000, 1.0)]));
        let first = late.next_after(SimTime::ZERO, SimTime::MAX, &mut rng).expect("arrivals after the stretch");
        assert!(first > SimTime::from_secs(1_000_000), "{first}");
    }
}
