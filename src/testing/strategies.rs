//! proptest strategies over faults, rate profiles and policy parameters,
//! within bounds a test author gives. Every value is drawn as whole ticks of
//! a granularity, so shrinking moves toward the lower bounds in exact steps.

use std::ops::RangeInclusive;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use stormglass_core::error::{ConfigError, ensure};
use stormglass_core::rng::SimRng;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_models::config::{FaultConfig, FaultKind, RateProfile};
use stormglass_patterns::breaker::BreakerConfig;
use stormglass_patterns::bulkhead::{BulkheadConfig, SemaphoreConfig};
use stormglass_patterns::pipeline::PolicyConfig;
use stormglass_patterns::retry::RetryConfig;
use stormglass_patterns::timeout::TimeoutConfig;

use super::KitError;

/// An inclusive range of ticks.
type Span = (u64, u64);

/// Most ticks in one bound: keeps draws exact and bounded.
const TICKS_MAX: u64 = 1 << 40;

fn ticks(range: (u64, u64), granularity: u64, field: &str) -> Result<(u64, u64), ConfigError> {
    ensure(granularity > 0, "granularity", "must be greater than 0")?;
    ensure(range.0 <= range.1, field, "must not be an empty range")?;
    let (lo, hi) = (range.0.div_ceil(granularity), range.1 / granularity);
    ensure(lo <= hi, field, "must hold at least one multiple of the granularity")?;
    ensure(hi - lo <= TICKS_MAX, field, "must span at most 2^40 granularity steps")?;
    Ok((lo, hi))
}

fn draw(rng: &mut SimRng, (lo, hi): (u64, u64)) -> u64 {
    lo + rng.below(hi - lo + 1)
}

/// Where, what and when faults may strike.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use stormglass::models::config::FaultKind;
/// use stormglass::testing::FaultBounds;
///
/// let bounds = FaultBounds::new(&["user"], vec![FaultKind::Hang], "10s".parse().unwrap()..="20s".parse().unwrap(),
///     "1s".parse().unwrap()..="30s".parse().unwrap());
/// let fault = bounds.strategy().unwrap().new_tree(&mut TestRunner::deterministic()).unwrap().current();
/// assert_eq!(fault.target, "user");
/// assert!(fault.until > fault.from);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultBounds {
    /// Services a fault may hit (shrinks toward the first).
    pub targets: Vec<String>,
    /// Kinds a fault may be (shrinks toward the first).
    pub kinds: Vec<FaultKind>,
    /// When a fault may start.
    pub start: RangeInclusive<SimTime>,
    /// How long a fault may last.
    pub length: RangeInclusive<SimDuration>,
    /// Step of start and length (default 1 ms).
    pub granularity: SimDuration,
}

impl FaultBounds {
    /// Bounds with a 1 ms granularity.
    pub fn new(
        targets: &[&str],
        kinds: Vec<FaultKind>,
        start: RangeInclusive<SimTime>,
        length: RangeInclusive<SimDuration>,
    ) -> Self {
        FaultBounds {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            kinds,
            start,
            length,
            granularity: SimDuration::from_millis(1),
        }
    }

    /// Ticks of start and length; an error naming the bound otherwise.
    fn ticks(&self) -> Result<[Span; 2], ConfigError> {
        ensure(!self.targets.is_empty(), "targets", "must name at least one service")?;
        ensure(!self.kinds.is_empty(), "kinds", "must hold at least one kind")?;
        let g = self.granularity.as_nanos();
        let start = ticks((self.start.start().as_nanos(), self.start.end().as_nanos()), g, "start")?;
        let length = ticks((self.length.start().as_nanos(), self.length.end().as_nanos()), g, "length")?;
        ensure(length.0 >= 1, "length", "must be greater than 0")?;
        Ok([start, length])
    }

    /// Checks the bounds; the error names the field.
    ///
    /// ```
    /// use stormglass::testing::FaultBounds;
    ///
    /// let empty = FaultBounds::new(&[], vec![], "1s".parse().unwrap()..="2s".parse().unwrap(),
    ///     "1s".parse().unwrap()..="2s".parse().unwrap());
    /// assert_eq!(empty.validate().unwrap_err().to_string(), "targets: must name at least one service");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ticks().map(|_| ())
    }

    fn build(&self, target: usize, kind: usize, start: u64, length: u64) -> FaultConfig {
        let g = self.granularity.as_nanos();
        let from = SimTime::from_nanos(start * g);
        FaultConfig {
            target: self.targets[target].clone(),
            replica: None,
            from,
            until: from + SimDuration::from_nanos(length * g),
            kind: self.kinds[kind].clone(),
        }
    }

    /// A strategy of one fault; shrinks toward the first target and kind,
    /// the earliest start and the shortest length.
    pub fn strategy(&self) -> Result<BoxedStrategy<FaultConfig>, KitError> {
        let [start, length] = self.ticks().map_err(|e| e.within("fault_bounds"))?;
        let bounds = self.clone();
        Ok((0..self.targets.len(), 0..self.kinds.len(), start.0..=start.1, length.0..=length.1)
            .prop_map(move |(t, k, s, l)| bounds.build(t, k, s, l))
            .boxed())
    }

    /// One fault drawn from `rng` (swarm mode).
    pub fn sample(&self, rng: &mut SimRng) -> Result<FaultConfig, KitError> {
        let [start, length] = self.ticks().map_err(|e| e.within("fault_bounds"))?;
        let target = rng.below(self.targets.len() as u64) as usize;
        let kind = rng.below(self.kinds.len() as u64) as usize;
        Ok(self.build(target, kind, draw(rng, start), draw(rng, length)))
    }
}

/// A strategy of fault schedules: `count` faults within `bounds`; shrinks
/// toward fewer, earlier, shorter faults.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use stormglass::models::config::FaultKind;
/// use stormglass::testing::{FaultBounds, fault_schedule};
///
/// let bounds = FaultBounds::new(&["user", "product"], vec![FaultKind::Hang, FaultKind::Crash],
///     "0s".parse().unwrap()..="60s".parse().unwrap(), "1s".parse().unwrap()..="10s".parse().unwrap());
/// let schedule = fault_schedule(&bounds, 1..=3).unwrap().new_tree(&mut TestRunner::deterministic()).unwrap().current();
/// assert!((1..=3).contains(&schedule.len()));
/// ```
pub fn fault_schedule(
    bounds: &FaultBounds,
    count: RangeInclusive<usize>,
) -> Result<BoxedStrategy<Vec<FaultConfig>>, KitError> {
    ensure(*count.end() <= stormglass_models::config::ITEMS_MAX, "count", "must be at most 1024")?;
    ensure(count.start() <= count.end(), "count", "must not be an empty range")?;
    Ok(proptest::collection::vec(bounds.strategy()?, count).boxed())
}

/// Bounds of generated rate profiles.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use stormglass::testing::RateBounds;
///
/// let bounds = RateBounds { rps: 10..=500, horizon: "60s".parse().unwrap() };
/// let profile = bounds.strategy().unwrap().new_tree(&mut TestRunner::deterministic()).unwrap().current();
/// let _ = profile; // Constant, Spike, Ramp or Steps, every rate within 10..=500
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBounds {
    /// Requests per second, whole numbers.
    pub rps: RangeInclusive<u32>,
    /// Spikes and ramps start, and steps change, at whole seconds in
    /// `[0, horizon - 1s)`; a spike's width and a ramp's length are whole
    /// seconds in `[1s, horizon)`, so either may run past the horizon.
    pub horizon: SimDuration,
}

impl RateBounds {
    /// A strategy of rate profiles: constant, spike, ramp or three steps;
    /// shrinks toward a constant profile at the lowest rate.
    pub fn strategy(&self) -> Result<BoxedStrategy<RateProfile>, KitError> {
        ensure(self.rps.start() <= self.rps.end(), "rate_bounds.rps", "must not be an empty range")?;
        ensure(*self.rps.end() <= 10_000_000, "rate_bounds.rps", "must be at most 10000000")?;
        let horizon_s = self.horizon.as_nanos() / 1_000_000_000;
        ensure(horizon_s >= 2, "rate_bounds.horizon", "must be at least 2s")?;
        let rps = self.rps.clone().prop_map(f64::from);
        let at = (0..horizon_s - 1).prop_map(SimTime::from_secs);
        let constant = rps.clone().prop_map(|rps| RateProfile::Constant { rps });
        let spike = (rps.clone(), rps.clone(), 0..horizon_s - 1, 1..horizon_s).prop_map(|(base, peak, at, width)| {
            RateProfile::Spike { base, peak, at: SimTime::from_secs(at), width: SimDuration::from_secs(width) }
        });
        let ramp = (rps.clone(), rps.clone(), 0..horizon_s - 1, 1..horizon_s).prop_map(|(from_rps, to_rps, s, w)| {
            RateProfile::Ramp { from_rps, to_rps, start: SimTime::from_secs(s), end: SimTime::from_secs(s + w) }
        });
        let steps = proptest::collection::btree_map(at, rps, 1..=3).prop_map(|points| {
            RateProfile::Steps(
                points.into_iter().map(|(at, rps)| stormglass_models::config::RatePoint { at, rps }).collect(),
            )
        });
        Ok(prop_oneof![constant, spike, ramp, steps].boxed())
    }
}

/// The policy knobs a test ranges over; [`PolicyParams::apply_to`] writes
/// them into a policy.
///
/// ```
/// use stormglass::models::seed::seed_policy;
/// use stormglass::testing::PolicyParams;
///
/// let params = PolicyParams {
///     read_timeout: "2s".parse().unwrap(),
///     attempts_max: 2,
///     breaker_failure_threshold: 10,
///     breaker_recovery: "30s".parse().unwrap(),
///     bulkhead_max_concurrent: 8,
///     bulkhead_queue_capacity: 0,
///     bulkhead_max_wait: "0s".parse().unwrap(),
/// };
/// let policy = params.apply_to(&seed_policy());
/// assert!(policy.validate().is_ok());
/// assert_eq!(policy.retry.unwrap().stop.attempts_max, Some(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyParams {
    /// Read timeout of each attempt.
    pub read_timeout: SimDuration,
    /// Attempts in all (1: no retry).
    pub attempts_max: u32,
    /// Consecutive failures that open the breaker.
    pub breaker_failure_threshold: u32,
    /// How long the breaker stays open.
    pub breaker_recovery: SimDuration,
    /// Calls the bulkhead lets run at once.
    pub bulkhead_max_concurrent: u32,
    /// Calls that may wait for a bulkhead permit (0: a full bulkhead
    /// refuses at once, resilience4j's default).
    #[serde(default)]
    pub bulkhead_queue_capacity: u32,
    /// Longest wait for a permit.
    #[serde(default)]
    pub bulkhead_max_wait: SimDuration,
}

impl PolicyParams {
    /// `base` with these knobs: the read timeout, the attempt count (a
    /// default retry when `base` has none), a consecutive-failures breaker
    /// and a semaphore bulkhead (with a wait queue when both its capacity
    /// and its max wait are above zero); everything else (fallback...) as in
    /// `base`.
    pub fn apply_to(&self, base: &PolicyConfig) -> PolicyConfig {
        let mut policy = base.clone();
        let timeout = policy.timeout.get_or_insert(TimeoutConfig {
            pool: None,
            connect: None,
            write: None,
            read: None,
            attempt: None,
            total: None,
        });
        timeout.read = Some(self.read_timeout);
        if self.attempts_max <= 1 {
            policy.retry = None;
        } else {
            policy.retry.get_or_insert_with(RetryConfig::default).stop.attempts_max = Some(self.attempts_max);
        }
        policy.breaker = Some(BreakerConfig::consecutive(self.breaker_failure_threshold, self.breaker_recovery));
        // A queue without a wait (or a wait without a queue) is no queue:
        // the semaphore would refuse the pair as invalid.
        let queued = self.bulkhead_queue_capacity > 0 && self.bulkhead_max_wait > SimDuration::ZERO;
        policy.bulkhead = Some(BulkheadConfig::Semaphore(SemaphoreConfig {
            max_concurrent: self.bulkhead_max_concurrent,
            queue_capacity: if queued { self.bulkhead_queue_capacity } else { 0 },
            max_wait: if queued { self.bulkhead_max_wait } else { SimDuration::ZERO },
        }));
        policy
    }
}

/// Bounds of [`PolicyParams`]; durations are drawn in whole milliseconds.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use stormglass::testing::PolicyBounds;
///
/// let bounds = PolicyBounds::default();
/// let params = bounds.strategy().unwrap().new_tree(&mut TestRunner::deterministic()).unwrap().current();
/// assert!(bounds.attempts_max.contains(&params.attempts_max));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyBounds {
    /// Read timeout.
    pub read_timeout: RangeInclusive<SimDuration>,
    /// Attempts in all.
    pub attempts_max: RangeInclusive<u32>,
    /// Breaker threshold.
    pub breaker_failure_threshold: RangeInclusive<u32>,
    /// Breaker open time.
    pub breaker_recovery: RangeInclusive<SimDuration>,
    /// Bulkhead permits.
    pub bulkhead_max_concurrent: RangeInclusive<u32>,
    /// Bulkhead wait-queue places; may start at 0 (no queue).
    #[serde(default = "no_queue")]
    pub bulkhead_queue_capacity: RangeInclusive<u32>,
    /// Bulkhead max wait; may start at 0.
    #[serde(default = "no_wait")]
    pub bulkhead_max_wait: RangeInclusive<SimDuration>,
}

fn no_queue() -> RangeInclusive<u32> {
    0..=0
}

fn no_wait() -> RangeInclusive<SimDuration> {
    SimDuration::ZERO..=SimDuration::ZERO
}

impl Default for PolicyBounds {
    /// Read timeout 100 ms ..= 30 s, 1 ..= 5 attempts, breaker threshold
    /// 1 ..= 50, recovery 1 s ..= 120 s, bulkhead 1 ..= 64 with no wait
    /// queue (the seed's shape). Widen `bulkhead_queue_capacity` and
    /// `bulkhead_max_wait` to range over queued bulkheads too:
    ///
    /// ```
    /// use stormglass::testing::PolicyBounds;
    ///
    /// let queued = PolicyBounds {
    ///     bulkhead_queue_capacity: 0..=32,
    ///     bulkhead_max_wait: "0s".parse().unwrap()..="500ms".parse().unwrap(),
    ///     ..PolicyBounds::default()
    /// };
    /// assert!(queued.validate().is_ok());
    /// ```
    fn default() -> Self {
        PolicyBounds {
            read_timeout: SimDuration::from_millis(100)..=SimDuration::from_secs(30),
            attempts_max: 1..=5,
            breaker_failure_threshold: 1..=50,
            breaker_recovery: SimDuration::from_secs(1)..=SimDuration::from_secs(120),
            bulkhead_max_concurrent: 1..=64,
            bulkhead_queue_capacity: no_queue(),
            bulkhead_max_wait: no_wait(),
        }
    }
}

type Ticks = [Span; 7];

impl PolicyBounds {
    fn ticks(&self) -> Result<Ticks, ConfigError> {
        let ms = 1_000_000;
        let whole_from_zero =
            |r: &RangeInclusive<u32>, field: &str| ticks((u64::from(*r.start()), u64::from(*r.end())), 1, field);
        let whole = |r: &RangeInclusive<u32>, field: &str| {
            ensure(*r.start() >= 1, field, "must start at 1 or more")?;
            whole_from_zero(r, field)
        };
        let millis_from_zero =
            |r: &RangeInclusive<SimDuration>, field: &str| ticks((r.start().as_nanos(), r.end().as_nanos()), ms, field);
        let millis = |r: &RangeInclusive<SimDuration>, field: &str| {
            let t = millis_from_zero(r, field)?;
            ensure(t.0 >= 1, field, "must start at 1ms or more")?;
            Ok::<_, ConfigError>(t)
        };
        Ok([
            millis(&self.read_timeout, "read_timeout")?,
            whole(&self.attempts_max, "attempts_max")?,
            whole(&self.breaker_failure_threshold, "breaker_failure_threshold")?,
            millis(&self.breaker_recovery, "breaker_recovery")?,
            whole(&self.bulkhead_max_concurrent, "bulkhead_max_concurrent")?,
            whole_from_zero(&self.bulkhead_queue_capacity, "bulkhead_queue_capacity")?,
            millis_from_zero(&self.bulkhead_max_wait, "bulkhead_max_wait")?,
        ])
    }

    /// Checks the bounds; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ticks().map(|_| ())
    }

    fn build(t: [u64; 7]) -> PolicyParams {
        PolicyParams {
            read_timeout: SimDuration::from_millis(t[0]),
            attempts_max: t[1] as u32,
            breaker_failure_threshold: t[2] as u32,
            breaker_recovery: SimDuration::from_millis(t[3]),
            bulkhead_max_concurrent: t[4] as u32,
            bulkhead_queue_capacity: t[5] as u32,
            bulkhead_max_wait: SimDuration::from_millis(t[6]),
        }
    }

    /// A strategy of parameters; shrinks each knob toward its lower bound.
    pub fn strategy(&self) -> Result<BoxedStrategy<PolicyParams>, KitError> {
        let t = self.ticks().map_err(|e| e.within("policy_bounds"))?;
        let [a, b, c, d, e, f, g] = t.map(|(lo, hi)| lo..=hi);
        Ok((a, b, c, d, e, f, g).prop_map(|(a, b, c, d, e, f, g)| PolicyBounds::build([a, b, c, d, e, f, g])).boxed())
    }

    /// Parameters drawn from `rng` (swarm mode).
    pub fn sample(&self, rng: &mut SimRng) -> Result<PolicyParams, KitError> {
        let t = self.ticks().map_err(|e| e.within("policy_bounds"))?;
        Ok(PolicyBounds::build(t.map(|range| draw(rng, range))))
    }
}
