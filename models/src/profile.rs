//! Open-loop arrivals from a rate profile.
//!
//! A time-varying Poisson process is drawn by thinning (Lewis and Shedler):
//! candidates come at the profile's peak rate and each is kept with
//! probability `rate(t) / peak`. For a constant rate every candidate is kept
//! and this is a plain Poisson process.
//!
//! ```
//! use stormglass_models::config::RateProfile;
//! use stormglass_models::profile::Arrivals;
//! use stormglass_core::rng::SimRng;
//! use stormglass_core::time::SimTime;
//!
//! let spike = RateProfile::Spike { base: 10.0, peak: 100.0, at: SimTime::from_secs(5), width: "1s".parse().unwrap() };
//! let arrivals = Arrivals::new(&spike);
//! assert_eq!(arrivals.rate_at(SimTime::from_millis(5500)), 100.0);
//! let mut rng = SimRng::from_seed_u64(1);
//! let next = arrivals.next_after(SimTime::ZERO, SimTime::from_secs(60), &mut rng);
//! assert!(next.is_some());
//! ```

use stormglass_core::rng::{SimRng, uniform01};
use stormglass_core::time::{SimDuration, SimTime};

use crate::config::{RatePoint, RateProfile};

/// Draws arrival times from a [`RateProfile`].
#[derive(Debug, Clone)]
pub struct Arrivals {
    profile: RateProfile,
    peak_rps: f64,
}

/// Most candidates drawn for one arrival before giving up: with a profile
/// that is zero for a long stretch, thinning would otherwise spin.
const CANDIDATES_MAX: u32 = 1_000_000;

impl Arrivals {
    /// Arrivals for a validated profile.
    pub fn new(profile: &RateProfile) -> Self {
        let peak_rps = match profile {
            RateProfile::Constant { rps } => *rps,
            RateProfile::Spike { base, peak, .. } => base.max(*peak),
            RateProfile::Ramp { from_rps, to_rps, .. } => from_rps.max(*to_rps),
            RateProfile::Steps(points) | RateProfile::Table(points) => points.iter().map(|p| p.rps).fold(0.0, f64::max),
        };
        Arrivals { profile: profile.clone(), peak_rps }
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

    /// The first arrival after `now` and before `end`, if any.
    pub fn next_after(&self, now: SimTime, end: SimTime, rng: &mut SimRng) -> Option<SimTime> {
        if self.peak_rps <= 0.0 {
            return None;
        }
        let mut t = now;
        for _ in 0..CANDIDATES_MAX {
            // libm, not f64::ln: the same bytes on every platform (DESIGN.md rule 5).
            let gap = -libm::log(1.0 - uniform01(rng)) / self.peak_rps;
            t += SimDuration::from_secs_f64(gap).max(SimDuration::from_nanos(1));
            if t >= end {
                return None;
            }
            // Constant profiles keep every candidate without drawing.
            if matches!(self.profile, RateProfile::Constant { .. }) || uniform01(rng) * self.peak_rps < self.rate_at(t)
            {
                return Some(t);
            }
        }
        None
    }
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
        let arrivals = Arrivals::new(&profile);
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
        let arrivals = Arrivals::new(&RateProfile::Constant { rps: 0.0 });
        let mut rng = SimRng::from_seed_u64(1);
        assert_eq!(arrivals.next_after(SimTime::ZERO, SimTime::MAX, &mut rng), None);
    }
}
