//! Circuit breakers: stop calling a dependency that keeps failing, give it
//! time to recover, then probe it.
//!
//! One [`Breaker`] type covers three well-known designs, chosen by
//! [`BreakerKind`]:
//!
//! 1. [`ConsecutiveConfig`]: opens after `failure_threshold` failures in a
//!    row, as the Python `circuitbreaker` package does.
//! 2. [`CountWindowConfig`]: a failure rate and a slow-call rate over the
//!    last N calls, as resilience4j's count-based sliding window.
//! 3. [`HystrixConfig`]: an error percentage over a rolling window of time
//!    buckets, as Netflix Hystrix.
//!
//! The caller asks [`Breaker::try_acquire`] before each call and reports the
//! result with [`Breaker::on_result`], giving back the [`Permit`]. A permit
//! carries the breaker's generation: results of calls admitted before a state
//! change are counted as stale and never move the current state. Every state
//! change is kept, with its time and cause, in a small fixed ring that the
//! caller drains with [`Breaker::pop_transition`].
//!
//! ```
//! use stormglass_core::rng::SimRng;
//! use stormglass_core::time::{SimDuration, SimTime};
//! use stormglass_patterns::breaker::{Breaker, BreakerConfig, BreakerState};
//! use stormglass_patterns::AttemptOutcome;
//!
//! let mut rng = SimRng::from_seed_u64(1);
//! let mut breaker = Breaker::new(BreakerConfig::consecutive(2, SimDuration::from_secs(30))).unwrap();
//! let t0 = SimTime::ZERO;
//! for _ in 0..2 {
//!     let permit = breaker.try_acquire(t0).unwrap();
//!     breaker.on_result(t0, permit, AttemptOutcome::Status(503), SimDuration::ZERO, &mut rng);
//! }
//! assert_eq!(breaker.state(), BreakerState::Open);
//! let rejected = breaker.try_acquire(t0 + SimDuration::from_secs(10)).unwrap_err();
//! assert_eq!(rejected.retry_after, SimDuration::from_secs(20));
//! let transition = breaker.pop_transition().unwrap();
//! assert_eq!((transition.from, transition.to), (BreakerState::Closed, BreakerState::Open));
//! ```
//!
//! The same breaker runs with a real monotonic clock: convert the time
//! since a start instant into a [`SimTime`].
//!
//! ```
//! use std::time::Instant;
//! use stormglass_core::rng::SimRng;
//! use stormglass_core::time::{SimDuration, SimTime};
//! use stormglass_patterns::breaker::{Breaker, BreakerConfig};
//! use stormglass_patterns::AttemptOutcome;
//!
//! let start = Instant::now();
//! let now = || SimTime::ZERO + SimDuration::from(start.elapsed());
//! let mut rng = SimRng::from_seed_u64(7);
//! let mut breaker = Breaker::new(BreakerConfig::default()).unwrap();
//!
//! let permit = breaker.try_acquire(now()).expect("a new breaker is closed");
//! let sent = now();
//! let outcome = AttemptOutcome::OK; // the real call would go here
//! breaker.on_result(now(), permit, outcome, now() - sent, &mut rng);
//! assert!(breaker.try_acquire(now()).is_ok());
//! ```

mod window;

pub(crate) use window::RollingCounts;

use serde::{Deserialize, Serialize};
use stormglass_core::rng::uniform01;
use stormglass_core::time::{SimDuration, SimTime};

use crate::error::{ConfigError, ensure};
use crate::outcome::{AttemptOutcome, Rejection};
use window::CountWindow;

/// Largest count window and bucket count a config may ask for: the breaker
/// allocates them up front, so they are bounded like everything else.
pub const WINDOW_SIZE_MAX: u32 = 1_000_000;

/// How many transitions the breaker keeps until the caller drains them.
pub const TRANSITION_LOG_CAPACITY: usize = 16;

/// A breaker's configuration.
///
/// Defaults: `kind` is [`BreakerKind::default`] (consecutive failures, 5,
/// 30 s), `classify` is [`Classifier::default`], `open_growth` is
/// [`OpenGrowth::default`] (no growth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Which design decides when to open and close.
    #[serde(default)]
    pub kind: BreakerKind,
    /// Which outcomes count as success, failure, slow or ignored.
    #[serde(default)]
    pub classify: Classifier,
    /// Growth of the open duration on repeated trips.
    #[serde(default)]
    pub open_growth: OpenGrowth,
}

impl BreakerConfig {
    /// Bytes a breaker built from this config allocates for its window, once.
    pub fn window_bytes(&self) -> u64 {
        match &self.kind {
            BreakerKind::Consecutive(_) => 0,
            BreakerKind::CountWindow(c) => window::count_window_bytes(c.window_size),
            BreakerKind::Hystrix(c) => window::rolling_counts_bytes(c.buckets),
        }
    }

    /// A consecutive-failures breaker with the default classification.
    ///
    /// ```
    /// # use stormglass_core::time::SimDuration;
    /// # use stormglass_patterns::breaker::BreakerConfig;
    /// let config = BreakerConfig::consecutive(5, SimDuration::from_secs(60));
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn consecutive(failure_threshold: u32, recovery_timeout: SimDuration) -> Self {
        BreakerConfig {
            kind: BreakerKind::Consecutive(ConsecutiveConfig {
                failure_threshold,
                recovery_timeout,
                half_open_calls_max: None,
            }),
            ..BreakerConfig::default()
        }
    }

    /// A breaker of the given kind with default classification and growth.
    ///
    /// ```
    /// # use stormglass_patterns::breaker::{BreakerConfig, BreakerKind, HystrixConfig};
    /// let config = BreakerConfig::of(BreakerKind::Hystrix(HystrixConfig::default()));
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn of(kind: BreakerKind) -> Self {
        BreakerConfig { kind, ..BreakerConfig::default() }
    }

    /// Checks every rule; the error names the offending field.
    ///
    /// ```
    /// # use stormglass_core::time::SimDuration;
    /// # use stormglass_patterns::breaker::BreakerConfig;
    /// let err = BreakerConfig::consecutive(0, SimDuration::from_secs(1)).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "kind.consecutive.failure_threshold: must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kind.validate().map_err(|e| e.within("kind"))?;
        self.classify.validate().map_err(|e| e.within("classify"))?;
        self.open_growth.validate().map_err(|e| e.within("open_growth"))
    }
}

/// The three designs. Serialized as `consecutive`, `count_window`, `hystrix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerKind {
    /// Consecutive failures (Python `circuitbreaker`).
    Consecutive(ConsecutiveConfig),
    /// Count-based sliding window (resilience4j).
    CountWindow(CountWindowConfig),
    /// Time-based rolling window in buckets (Hystrix).
    Hystrix(HystrixConfig),
}

impl Default for BreakerKind {
    /// Consecutive failures with the `circuitbreaker` package defaults.
    fn default() -> Self {
        BreakerKind::Consecutive(ConsecutiveConfig::default())
    }
}

impl BreakerKind {
    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BreakerKind::Consecutive(c) => c.validate().map_err(|e| e.within("consecutive")),
            BreakerKind::CountWindow(c) => c.validate().map_err(|e| e.within("count_window")),
            BreakerKind::Hystrix(c) => c.validate().map_err(|e| e.within("hystrix")),
        }
    }

    /// The base open duration before any growth.
    fn open_duration(&self) -> SimDuration {
        match self {
            BreakerKind::Consecutive(c) => c.recovery_timeout,
            BreakerKind::CountWindow(c) => c.open_duration,
            BreakerKind::Hystrix(c) => c.sleep_window,
        }
    }

    /// The first instant at which an open breaker that opened for
    /// `open_until` lets a call through: `open_until` itself for the
    /// `circuitbreaker` package (`open_remaining <= 0`) and for resilience4j's
    /// automatic transition (a timer fires at the end of the wait); one
    /// nanosecond later for resilience4j's lazy transition
    /// (`clock.instant().isAfter(retryAfterWaitDuration)`) and for Hystrix
    /// (`currentTime > circuitOpenTime + sleepWindowTime`), which both test
    /// strictly after the end of the wait.
    fn half_open_from(&self, open_until: SimTime) -> SimTime {
        match self {
            BreakerKind::Consecutive(_) => open_until,
            BreakerKind::CountWindow(c) if c.automatic_half_open => open_until,
            BreakerKind::CountWindow(_) | BreakerKind::Hystrix(_) => open_until + SimDuration::from_nanos(1),
        }
    }
}

/// Consecutive failures, as the Python `circuitbreaker` package.
///
/// Closed: every failure adds one to a counter, every success resets it, and
/// the breaker opens when the counter reaches `failure_threshold`. Open: calls
/// are rejected until `recovery_timeout` has passed. Half-open: the first
/// result decides: a success closes the breaker, a failure reopens it.
///
/// The package lets every caller through while half-open (its `opened`
/// check is false then); `half_open_calls_max: None` keeps that, a number
/// bounds the probes.
///
/// Defaults (the package's): `failure_threshold` 5, `recovery_timeout` 30 s,
/// `half_open_calls_max` none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsecutiveConfig {
    /// Failures in a row that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before it lets probes through.
    pub recovery_timeout: SimDuration,
    /// Probes admitted while half-open; `None` admits every caller.
    pub half_open_calls_max: Option<u32>,
}

impl Default for ConsecutiveConfig {
    fn default() -> Self {
        ConsecutiveConfig {
            failure_threshold: 5,
            recovery_timeout: SimDuration::from_secs(30),
            half_open_calls_max: None,
        }
    }
}

impl ConsecutiveConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.failure_threshold >= 1, "failure_threshold", "must be at least 1")?;
        ensure(self.half_open_calls_max != Some(0), "half_open_calls_max", "must be at least 1 when set")
    }
}

/// A count-based sliding window, as resilience4j.
///
/// Closed: the last `window_size` calls are kept; once at least `calls_min`
/// are recorded, the breaker opens when the failure rate reaches
/// `failure_rate_threshold_pct` or the slow-call rate reaches
/// `slow_call_rate_threshold_pct` (both `>=`, in percent of the calls in the
/// window). Open: rejected for `open_duration`, then half-open, either at the
/// next call strictly after the duration (resilience4j's default, which
/// tests `isAfter`) or, with `automatic_half_open`, at the exact instant the
/// duration ends. Half-open: `half_open_calls_permitted`
/// probes; when all of them have completed, the same rates over the probes
/// decide between closed and open. As in resilience4j, `calls_min` above
/// `window_size` acts as `window_size`.
///
/// Defaults (resilience4j's): `window_size` 100, `calls_min` 100,
/// `failure_rate_threshold_pct` 50, `slow_call_rate_threshold_pct` 100,
/// `half_open_calls_permitted` 10, `open_duration` 60 s,
/// `automatic_half_open` false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountWindowConfig {
    /// Calls kept in the window.
    pub window_size: u32,
    /// Calls needed before the rates are taken seriously.
    pub calls_min: u32,
    /// Failure rate, in percent, that opens the breaker.
    pub failure_rate_threshold_pct: f64,
    /// Slow-call rate, in percent, that opens the breaker.
    pub slow_call_rate_threshold_pct: f64,
    /// Probes admitted while half-open.
    pub half_open_calls_permitted: u32,
    /// How long the breaker stays open.
    pub open_duration: SimDuration,
    /// Move to half-open when the open duration ends, without waiting for a
    /// call.
    pub automatic_half_open: bool,
}

impl Default for CountWindowConfig {
    fn default() -> Self {
        CountWindowConfig {
            window_size: 100,
            calls_min: 100,
            failure_rate_threshold_pct: 50.0,
            slow_call_rate_threshold_pct: 100.0,
            half_open_calls_permitted: 10,
            open_duration: SimDuration::from_secs(60),
            automatic_half_open: false,
        }
    }
}

impl CountWindowConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure((1..=WINDOW_SIZE_MAX).contains(&self.window_size), "window_size", "must be between 1 and 1000000")?;
        ensure(self.calls_min >= 1, "calls_min", "must be at least 1")?;
        let pct = |v: f64| v > 0.0 && v <= 100.0;
        ensure(pct(self.failure_rate_threshold_pct), "failure_rate_threshold_pct", "must be in (0, 100]")?;
        ensure(pct(self.slow_call_rate_threshold_pct), "slow_call_rate_threshold_pct", "must be in (0, 100]")?;
        ensure(
            (1..=WINDOW_SIZE_MAX).contains(&self.half_open_calls_permitted),
            "half_open_calls_permitted",
            "must be between 1 and 1000000",
        )
    }

    fn calls_min_effective(&self) -> u32 {
        self.calls_min.min(self.window_size)
    }

    /// Whether `failures` and `slow` out of `calls` reach a threshold.
    fn over_threshold(&self, calls: u32, failures: u32, slow: u32) -> Option<TransitionCause> {
        let rate = |n: u32| f64::from(n) * 100.0 / f64::from(calls);
        if rate(failures) >= self.failure_rate_threshold_pct {
            Some(TransitionCause::FailureRate)
        } else if rate(slow) >= self.slow_call_rate_threshold_pct {
            Some(TransitionCause::SlowCallRate)
        } else {
            None
        }
    }
}

/// A time-based rolling window in buckets, as Hystrix.
///
/// Closed: errors and calls are counted in `buckets` buckets of
/// `bucket_width` (the window is their product, 10 s by default). The
/// breaker opens when the window holds at least `request_volume_threshold`
/// calls and the error percentage, truncated to an integer as Hystrix
/// computes it (see [`hystrix_error_pct`]), is at least `error_threshold_pct`.
/// Hystrix evaluates a health snapshot every 500 ms; this breaker evaluates
/// after every result, which is the same rule without the lag. Open: rejected
/// for `sleep_window` and let through strictly after it, as Hystrix tests
/// `now > opened + sleep` (here in nanoseconds, there in milliseconds).
/// Then exactly one probe is let through and later
/// callers are rejected while it runs; its success closes the breaker and
/// clears the window, its failure reopens it with a new sleep window.
///
/// Defaults (Hystrix's): `request_volume_threshold` 20,
/// `error_threshold_pct` 50, `sleep_window` 5 s, `buckets` 10,
/// `bucket_width` 1 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HystrixConfig {
    /// Calls the window must hold before the error percentage counts.
    pub request_volume_threshold: u32,
    /// Error percentage (integer, truncated) that opens the breaker.
    pub error_threshold_pct: u32,
    /// How long the breaker stays open before the single probe.
    pub sleep_window: SimDuration,
    /// Number of buckets in the rolling window.
    pub buckets: u32,
    /// Width of one bucket.
    pub bucket_width: SimDuration,
}

impl Default for HystrixConfig {
    fn default() -> Self {
        HystrixConfig {
            request_volume_threshold: 20,
            error_threshold_pct: 50,
            sleep_window: SimDuration::from_secs(5),
            buckets: 10,
            bucket_width: SimDuration::from_secs(1),
        }
    }
}

impl HystrixConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.error_threshold_pct <= 100, "error_threshold_pct", "must be at most 100")?;
        ensure((1..=WINDOW_SIZE_MAX).contains(&self.buckets), "buckets", "must be between 1 and 1000000")?;
        ensure(!self.bucket_width.is_zero(), "bucket_width", "must be more than zero")
    }
}

/// The error percentage exactly as Hystrix's `HealthCounts` computes it:
/// `(int) ((double) errorCount / totalCount * 100)`, 0 with no calls.
///
/// The division happens in floating point before the scaling, so a ratio
/// that is not exact in binary can land just under an integer and truncate
/// one lower than the integer formula `errors * 100 / calls`: 29 errors of
/// 50 calls is 57% to Hystrix, not 58%. The comparison with
/// `error_threshold_pct` must use Hystrix's number to open when Hystrix would.
///
/// ```
/// # use stormglass_patterns::breaker::hystrix_error_pct;
/// assert_eq!(hystrix_error_pct(20, 10), 50);
/// assert_eq!(hystrix_error_pct(39, 19), 48);
/// assert_eq!(hystrix_error_pct(50, 29), 57); // 29 * 100 / 50 would say 58
/// assert_eq!(hystrix_error_pct(0, 0), 0);
/// ```
pub fn hystrix_error_pct(calls: u64, errors: u64) -> u64 {
    if calls == 0 {
        return 0;
    }
    // Both casts are exact below 2^53 calls; `as u64` truncates like Java's `(int)`.
    (errors as f64 / calls as f64 * 100.0) as u64
}

/// What an outcome means to a breaker.
///
/// Defaults: a status at or above `failure_status_min` (500) is a failure,
/// timeouts and refused or reset connections are failures, any other status
/// (a 404 included: the dependency answered) is a success, statuses in
/// `ignored_statuses` (none) are ignored, local rejections by other patterns
/// are ignored (`local_rejections_are_failures` false; Hystrix counts its
/// own thread-pool and semaphore rejections, set it to true for that), and
/// a call is slow when its latency is above `slow_call_duration` (60 s,
/// resilience4j's default; only the count-window breaker uses slowness).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Classifier {
    /// Statuses at or above this are failures.
    pub failure_status_min: u16,
    /// Statuses that count neither way.
    pub ignored_statuses: Vec<u16>,
    /// Whether a rejection by another local pattern counts as a failure.
    pub local_rejections_are_failures: bool,
    /// Latency above which a call is slow.
    pub slow_call_duration: SimDuration,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier {
            failure_status_min: 500,
            ignored_statuses: Vec::new(),
            local_rejections_are_failures: false,
            slow_call_duration: SimDuration::from_secs(60),
        }
    }
}

/// How a breaker counts one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counts as a success; `slow` when its latency passed the threshold.
    Success {
        /// Latency above the slow-call duration.
        slow: bool,
    },
    /// Counts as a failure.
    Failure {
        /// Latency above the slow-call duration.
        slow: bool,
    },
    /// Not counted at all.
    Ignored,
}

impl Classifier {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure((100..=600).contains(&self.failure_status_min), "failure_status_min", "must be between 100 and 600")?;
        ensure(self.ignored_statuses.len() <= 64, "ignored_statuses", "must list at most 64 statuses")
    }

    /// Classifies one outcome with its latency.
    ///
    /// ```
    /// # use stormglass_core::time::SimDuration;
    /// # use stormglass_patterns::breaker::{Classifier, Verdict};
    /// # use stormglass_patterns::AttemptOutcome;
    /// let c = Classifier::default();
    /// assert_eq!(c.classify(AttemptOutcome::Status(404), SimDuration::ZERO), Verdict::Success { slow: false });
    /// assert_eq!(c.classify(AttemptOutcome::Timeout, SimDuration::ZERO), Verdict::Failure { slow: false });
    /// ```
    pub fn classify(&self, outcome: AttemptOutcome, latency: SimDuration) -> Verdict {
        let slow = latency > self.slow_call_duration;
        match outcome {
            AttemptOutcome::Status(s) if self.ignored_statuses.contains(&s) => Verdict::Ignored,
            AttemptOutcome::Status(s) if s >= self.failure_status_min => Verdict::Failure { slow },
            AttemptOutcome::Status(_) => Verdict::Success { slow },
            AttemptOutcome::Timeout | AttemptOutcome::ConnectionRefused | AttemptOutcome::ConnectionReset => {
                Verdict::Failure { slow }
            }
            AttemptOutcome::Rejected(_) if self.local_rejections_are_failures => Verdict::Failure { slow: false },
            AttemptOutcome::Rejected(_) => Verdict::Ignored,
        }
    }
}

/// Growth of the open duration when the breaker trips again without having
/// closed in between (open -> half-open -> open).
///
/// The n-th trip in a row stays open `base * multiplier^(n-1)` (base is the
/// kind's open duration), capped at `open_duration_max`, then multiplied by
/// a factor uniform in `[1 - jitter_ratio, 1 + jitter_ratio]` and capped
/// again. Defaults: `multiplier` 1 (no growth), `open_duration_max` 10 min,
/// `jitter_ratio` 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenGrowth {
    /// Factor applied per repeated trip.
    pub multiplier: f64,
    /// Cap on the grown duration.
    pub open_duration_max: SimDuration,
    /// Relative jitter of the duration, in `[0, 1)`.
    pub jitter_ratio: f64,
}

impl Default for OpenGrowth {
    fn default() -> Self {
        OpenGrowth { multiplier: 1.0, open_duration_max: SimDuration::from_secs(600), jitter_ratio: 0.0 }
    }
}

impl OpenGrowth {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            self.multiplier.is_finite() && (1.0..=100.0).contains(&self.multiplier),
            "multiplier",
            "must be between 1 and 100",
        )?;
        ensure(
            self.jitter_ratio.is_finite() && (0.0..1.0).contains(&self.jitter_ratio),
            "jitter_ratio",
            "must be in [0, 1)",
        )
    }

    fn duration<R: rand_core::Rng + ?Sized>(&self, base: SimDuration, trips: u32, rng: &mut R) -> SimDuration {
        let grown = base
            .mul_f64(crate::retry::pow_u32(self.multiplier, trips.saturating_sub(1)))
            .min(self.open_duration_max.max(base));
        if self.jitter_ratio == 0.0 {
            return grown;
        }
        let factor = 1.0 - self.jitter_ratio + 2.0 * self.jitter_ratio * uniform01(rng);
        grown.mul_f64(factor).min(self.open_duration_max.max(base))
    }
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; results are counted.
    Closed,
    /// Calls are rejected until the open duration ends.
    Open,
    /// A limited number of probes decide between closed and open.
    HalfOpen,
    /// Rejects everything until an operator resets it.
    ForcedOpen,
    /// Lets everything through and counts nothing.
    Disabled,
}

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionCause {
    /// Consecutive failures reached the threshold.
    ConsecutiveFailures,
    /// The failure rate (or Hystrix error percentage) reached its threshold.
    FailureRate,
    /// The slow-call rate reached its threshold.
    SlowCallRate,
    /// The open duration ended.
    OpenElapsed,
    /// The half-open probes succeeded.
    ProbesSucceeded,
    /// The half-open probes failed.
    ProbesFailed,
    /// An operator forced the breaker open.
    Forced,
    /// An operator disabled the breaker.
    Disabled,
    /// An operator reset the breaker to closed.
    Reset,
}

/// One state change, for timelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// When it happened.
    pub at: SimTime,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why.
    pub cause: TransitionCause,
}

/// Leave to make one call, to be given back to [`Breaker::on_result`].
///
/// It remembers the breaker generation it was issued in, so a result from
/// before a state change is recognised as stale. Deliberately neither
/// `Clone` nor `Copy`: a result is reported once per permit, so a half-open
/// probe cannot be counted twice.
///
/// ```compile_fail
/// # use stormglass_patterns::breaker::{Breaker, BreakerConfig};
/// # use stormglass_patterns::AttemptOutcome;
/// # use stormglass_core::time::{SimDuration, SimTime};
/// # use stormglass_core::rng::SimRng;
/// let mut b = Breaker::new(BreakerConfig::default()).unwrap();
/// let mut rng = SimRng::from_seed_u64(0);
/// let permit = b.try_acquire(SimTime::ZERO).unwrap();
/// b.on_result(SimTime::ZERO, permit, AttemptOutcome::OK, SimDuration::ZERO, &mut rng);
/// b.on_result(SimTime::ZERO, permit, AttemptOutcome::OK, SimDuration::ZERO, &mut rng); // moved
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a permit must be given back with on_result"]
pub struct Permit {
    generation: u64,
    probe: bool,
}

impl Permit {
    /// Whether this permit is one of the half-open probes.
    ///
    /// ```
    /// # use stormglass_patterns::breaker::{Breaker, BreakerConfig};
    /// # use stormglass_core::time::SimTime;
    /// let mut b = Breaker::new(BreakerConfig::default()).unwrap();
    /// assert!(!b.try_acquire(SimTime::ZERO).unwrap().is_probe());
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// The breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRejected {
    /// How long until the breaker may admit a call again: the rest of the
    /// open duration; zero when half-open with all probes in flight (the
    /// state may change at any moment); [`SimDuration::MAX`] when forced
    /// open.
    pub retry_after: SimDuration,
}

impl BreakerRejected {
    /// The rejection as the outcome vocabulary names it, for a fallback or a
    /// retry policy (which retries it only with `retry_on.local_rejections`,
    /// passing `retry_after` as the hint).
    ///
    /// ```
    /// # use stormglass_core::time::SimTime;
    /// # use stormglass_patterns::breaker::{Breaker, BreakerConfig};
    /// # use stormglass_patterns::{AttemptOutcome, Rejection};
    /// let mut b = Breaker::new(BreakerConfig::default()).unwrap();
    /// b.force_open(SimTime::ZERO);
    /// let rejected = b.try_acquire(SimTime::ZERO).unwrap_err();
    /// assert_eq!(rejected.outcome(), AttemptOutcome::Rejected(Rejection::CircuitOpen));
    /// ```
    pub fn outcome(&self) -> AttemptOutcome {
        AttemptOutcome::Rejected(Rejection::CircuitOpen)
    }
}

/// Counters over the life of a breaker, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BreakerCounters {
    /// Calls admitted.
    pub admitted: u64,
    /// Calls rejected.
    pub rejected: u64,
    /// Results that came from an older generation and were not counted.
    pub stale_results: u64,
    /// Transitions dropped because the caller did not drain the log.
    pub transitions_dropped: u64,
}

/// A circuit breaker: configuration plus state. See the module docs.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    /// Bumped on every transition; permits from another generation are stale.
    generation: u64,
    /// When the current open period ends (meaningful while open).
    open_until: SimTime,
    /// Trips since the breaker last closed, for open-duration growth.
    trips_in_row: u32,
    consecutive_failures: u32,
    count_window: CountWindow,
    rolling: RollingCounts,
    probes_admitted: u32,
    probes_completed: u32,
    probes_failed: u32,
    probes_slow: u32,
    log: [Transition; TRANSITION_LOG_CAPACITY],
    log_start: usize,
    log_len: usize,
    counters: BreakerCounters,
}

impl Breaker {
    /// A closed breaker, or the first rule the config breaks.
    ///
    /// ```
    /// # use stormglass_patterns::breaker::{Breaker, BreakerConfig, BreakerState};
    /// let b = Breaker::new(BreakerConfig::default()).unwrap();
    /// assert_eq!(b.state(), BreakerState::Closed);
    /// ```
    pub fn new(config: BreakerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let window_size = match &config.kind {
            BreakerKind::CountWindow(c) => c.window_size,
            _ => 1,
        };
        let rolling = match &config.kind {
            BreakerKind::Hystrix(c) => RollingCounts::new(c.buckets, c.bucket_width),
            _ => RollingCounts::new(1, SimDuration::from_secs(1)),
        };
        let breaker = Breaker {
            config,
            state: BreakerState::Closed,
            generation: 0,
            open_until: SimTime::ZERO,
            trips_in_row: 0,
            consecutive_failures: 0,
            count_window: CountWindow::new(window_size),
            rolling,
            probes_admitted: 0,
            probes_completed: 0,
            probes_failed: 0,
            probes_slow: 0,
            log: [Transition {
                at: SimTime::ZERO,
                from: BreakerState::Closed,
                to: BreakerState::Closed,
                cause: TransitionCause::Reset,
            }; TRANSITION_LOG_CAPACITY],
            log_start: 0,
            log_len: 0,
            counters: BreakerCounters::default(),
        };
        breaker.check_invariants();
        Ok(breaker)
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state, as of the last call (see [`Breaker::poll`]).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Lifetime counters.
    pub fn counters(&self) -> BreakerCounters {
        self.counters
    }

    /// When the current open period ends, if the breaker is open.
    pub fn open_until(&self) -> Option<SimTime> {
        (self.state == BreakerState::Open).then_some(self.open_until)
    }

    /// Applies the time-driven transition (open -> half-open) due at `now`.
    ///
    /// [`Breaker::try_acquire`] does it too; call `poll` to see the state
    /// change without making a call (a timeline sampler, a health check).
    /// With `automatic_half_open` the transition is stamped at the instant
    /// the open duration ended; otherwise at `now`, as resilience4j only
    /// moves on the next call.
    pub fn poll(&mut self, now: SimTime) {
        if self.state == BreakerState::Open && now >= self.config.kind.half_open_from(self.open_until) {
            let at = match &self.config.kind {
                BreakerKind::CountWindow(c) if c.automatic_half_open => self.open_until,
                _ => now,
            };
            self.probes_admitted = 0;
            self.probes_completed = 0;
            self.probes_failed = 0;
            self.probes_slow = 0;
            self.transition(at, BreakerState::HalfOpen, TransitionCause::OpenElapsed);
        }
    }

    /// Asks leave for one call at `now`.
    ///
    /// ```
    /// # use stormglass_patterns::breaker::{Breaker, BreakerConfig};
    /// # use stormglass_core::time::SimTime;
    /// let mut b = Breaker::new(BreakerConfig::default()).unwrap();
    /// b.force_open(SimTime::ZERO);
    /// assert!(b.try_acquire(SimTime::from_secs(1)).is_err());
    /// ```
    pub fn try_acquire(&mut self, now: SimTime) -> Result<Permit, BreakerRejected> {
        self.poll(now);
        let result = match self.state {
            BreakerState::Closed | BreakerState::Disabled => Ok(Permit { generation: self.generation, probe: false }),
            BreakerState::Open => {
                Err(BreakerRejected { retry_after: self.config.kind.half_open_from(self.open_until) - now })
            }
            BreakerState::ForcedOpen => Err(BreakerRejected { retry_after: SimDuration::MAX }),
            BreakerState::HalfOpen => {
                if self.probes_admitted < self.probes_max() {
                    self.probes_admitted += 1;
                    Ok(Permit { generation: self.generation, probe: true })
                } else {
                    Err(BreakerRejected { retry_after: SimDuration::ZERO })
                }
            }
        };
        match result {
            Ok(_) => self.counters.admitted += 1,
            Err(_) => self.counters.rejected += 1,
        }
        self.check_invariants();
        result
    }

    /// Reports the result of a call admitted with `permit`.
    ///
    /// `latency` is how long the call took (for slow-call detection); `rng`
    /// draws the jitter of the open duration when the result trips the
    /// breaker. A permit from an older generation changes nothing.
    ///
    /// ```
    /// # use stormglass_core::rng::SimRng;
    /// # use stormglass_core::time::{SimDuration, SimTime};
    /// # use stormglass_patterns::breaker::{Breaker, BreakerConfig, BreakerState};
    /// # use stormglass_patterns::AttemptOutcome;
    /// let mut rng = SimRng::from_seed_u64(1);
    /// let mut b = Breaker::new(BreakerConfig::consecutive(1, SimDuration::from_secs(5))).unwrap();
    /// let early = b.try_acquire(SimTime::ZERO).unwrap();
    /// let late = b.try_acquire(SimTime::ZERO).unwrap();
    /// b.on_result(SimTime::ZERO, early, AttemptOutcome::Timeout, SimDuration::ZERO, &mut rng);
    /// assert_eq!(b.state(), BreakerState::Open);
    /// // The second call was admitted before the breaker opened: its result is stale.
    /// b.on_result(SimTime::from_secs(6), late, AttemptOutcome::OK, SimDuration::ZERO, &mut rng);
    /// assert_eq!(b.state(), BreakerState::Open);
    /// assert_eq!(b.counters().stale_results, 1);
    /// ```
    pub fn on_result<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        permit: Permit,
        outcome: AttemptOutcome,
        latency: SimDuration,
        rng: &mut R,
    ) {
        if permit.generation != self.generation {
            self.counters.stale_results += 1;
            return;
        }
        let verdict = self.config.classify.classify(outcome, latency);
        match self.state {
            BreakerState::Closed => self.on_closed_result(now, verdict, rng),
            BreakerState::HalfOpen => self.on_probe_result(now, verdict, rng),
            // Open and forced-open admit nothing, so a same-generation permit
            // cannot exist; disabled counts nothing.
            BreakerState::Open | BreakerState::ForcedOpen | BreakerState::Disabled => {}
        }
        self.check_invariants();
    }

    /// Gives back a permit whose call was abandoned before it had a result
    /// (its caller is gone): it counts for nothing, and a probe's place goes
    /// to another caller, as resilience4j's `releasePermission`.
    pub fn release(&mut self, permit: Permit) {
        if permit.probe && permit.generation == self.generation && self.state == BreakerState::HalfOpen {
            self.probes_admitted -= 1;
        }
        self.check_invariants();
    }

    fn on_closed_result<R: rand_core::Rng + ?Sized>(&mut self, now: SimTime, verdict: Verdict, rng: &mut R) {
        let (failure, slow) = match verdict {
            Verdict::Ignored => return,
            Verdict::Success { slow } => (false, slow),
            Verdict::Failure { slow } => (true, slow),
        };
        let cause = match &self.config.kind {
            BreakerKind::Consecutive(c) => {
                if failure {
                    self.consecutive_failures += 1;
                } else {
                    self.consecutive_failures = 0;
                }
                (self.consecutive_failures >= c.failure_threshold).then_some(TransitionCause::ConsecutiveFailures)
            }
            BreakerKind::CountWindow(c) => {
                self.count_window.record(failure, slow);
                let calls = self.count_window.calls();
                if calls >= c.calls_min_effective() {
                    c.over_threshold(calls, self.count_window.failures(), self.count_window.slow())
                } else {
                    None
                }
            }
            BreakerKind::Hystrix(c) => {
                self.rolling.add(now, 0, 1);
                if failure {
                    self.rolling.add(now, 1, 1);
                }
                let [calls, errors] = self.rolling.totals(now);
                let pct = hystrix_error_pct(calls, errors);
                (calls >= u64::from(c.request_volume_threshold) && pct >= u64::from(c.error_threshold_pct))
                    .then_some(TransitionCause::FailureRate)
            }
        };
        if let Some(cause) = cause {
            self.trip(now, cause, rng);
        }
    }

    fn on_probe_result<R: rand_core::Rng + ?Sized>(&mut self, now: SimTime, verdict: Verdict, rng: &mut R) {
        let (failure, slow) = match verdict {
            Verdict::Ignored => {
                // An ignored probe proves nothing: give its place back so
                // another caller can probe (resilience4j releases the permit).
                self.probes_admitted -= 1;
                return;
            }
            Verdict::Success { slow } => (false, slow),
            Verdict::Failure { slow } => (true, slow),
        };
        self.probes_completed += 1;
        self.probes_failed += u32::from(failure);
        self.probes_slow += u32::from(slow);
        let decision = match &self.config.kind {
            BreakerKind::Consecutive(_) | BreakerKind::Hystrix(_) => Some(failure),
            BreakerKind::CountWindow(c) => {
                if self.probes_completed >= c.half_open_calls_permitted {
                    let over = c.over_threshold(self.probes_completed, self.probes_failed, self.probes_slow);
                    Some(over.is_some())
                } else {
                    None
                }
            }
        };
        match decision {
            Some(true) => self.trip(now, TransitionCause::ProbesFailed, rng),
            Some(false) => self.close(now, TransitionCause::ProbesSucceeded),
            None => {}
        }
    }

    fn probes_max(&self) -> u32 {
        match &self.config.kind {
            BreakerKind::Consecutive(c) => c.half_open_calls_max.unwrap_or(u32::MAX),
            BreakerKind::CountWindow(c) => c.half_open_calls_permitted,
            BreakerKind::Hystrix(_) => 1,
        }
    }

    fn trip<R: rand_core::Rng + ?Sized>(&mut self, now: SimTime, cause: TransitionCause, rng: &mut R) {
        self.trips_in_row = self.trips_in_row.saturating_add(1);
        let base = self.config.kind.open_duration();
        let open_for = self.config.open_growth.duration(base, self.trips_in_row, rng);
        self.open_until = now + open_for;
        self.transition(now, BreakerState::Open, cause);
    }

    fn close(&mut self, now: SimTime, cause: TransitionCause) {
        self.clear_statistics();
        self.trips_in_row = 0;
        self.transition(now, BreakerState::Closed, cause);
    }

    /// A new closed period starts from empty statistics, as in all three
    /// designs (resilience4j builds a new window, Hystrix resets its streams,
    /// the package resets its counter).
    fn clear_statistics(&mut self) {
        self.consecutive_failures = 0;
        self.count_window.reset();
        self.rolling.reset();
    }

    fn transition(&mut self, at: SimTime, to: BreakerState, cause: TransitionCause) {
        let t = Transition { at, from: self.state, to, cause };
        self.state = to;
        self.generation += 1;
        if self.log_len == TRANSITION_LOG_CAPACITY {
            // Full: keep the newest, drop the oldest, and say so.
            self.log_start = (self.log_start + 1) % TRANSITION_LOG_CAPACITY;
            self.log_len -= 1;
            self.counters.transitions_dropped += 1;
        }
        self.log[(self.log_start + self.log_len) % TRANSITION_LOG_CAPACITY] = t;
        self.log_len += 1;
    }

    /// Whether a transition waits to be taken by [`Breaker::pop_transition`]:
    /// a cheap look for callers that drain after every call.
    #[inline]
    pub fn has_transitions(&self) -> bool {
        self.log_len > 0
    }

    /// The oldest transition not yet drained, if any.
    ///
    /// ```
    /// # use stormglass_patterns::breaker::{Breaker, BreakerConfig, BreakerState, TransitionCause};
    /// # use stormglass_core::time::SimTime;
    /// let mut b = Breaker::new(BreakerConfig::default()).unwrap();
    /// b.disable(SimTime::from_secs(3));
    /// assert!(b.has_transitions());
    /// let t = b.pop_transition().unwrap();
    /// assert_eq!((t.at, t.to, t.cause), (SimTime::from_secs(3), BreakerState::Disabled, TransitionCause::Disabled));
    /// assert!(b.pop_transition().is_none());
    /// assert!(!b.has_transitions());
    /// ```
    #[inline]
    pub fn pop_transition(&mut self) -> Option<Transition> {
        if self.log_len == 0 {
            return None;
        }
        let t = self.log[self.log_start];
        self.log_start = (self.log_start + 1) % TRANSITION_LOG_CAPACITY;
        self.log_len -= 1;
        Some(t)
    }

    /// Rejects every call until [`Breaker::reset`].
    pub fn force_open(&mut self, now: SimTime) {
        if self.state != BreakerState::ForcedOpen {
            self.transition(now, BreakerState::ForcedOpen, TransitionCause::Forced);
        }
        self.check_invariants();
    }

    /// Admits every call and counts nothing until [`Breaker::reset`].
    pub fn disable(&mut self, now: SimTime) {
        if self.state != BreakerState::Disabled {
            self.transition(now, BreakerState::Disabled, TransitionCause::Disabled);
        }
        self.check_invariants();
    }

    /// Back to closed with empty statistics.
    pub fn reset(&mut self, now: SimTime) {
        self.clear_statistics();
        self.trips_in_row = 0;
        self.transition(now, BreakerState::Closed, TransitionCause::Reset);
        self.check_invariants();
    }

    /// The one place the breaker's invariants are checked (debug builds).
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        assert!(self.log_len <= TRANSITION_LOG_CAPACITY);
        assert!(self.log_start < TRANSITION_LOG_CAPACITY);
        if self.state == BreakerState::HalfOpen {
            assert!(self.probes_admitted <= self.probes_max(), "probes over limit");
            assert!(self.probes_completed <= self.probes_admitted);
            assert!(self.probes_failed + self.probes_slow <= 2 * self.probes_completed);
        }
        if self.log_len > 0 {
            let last = self.log[(self.log_start + self.log_len - 1) % TRANSITION_LOG_CAPACITY];
            assert_eq!(last.to, self.state, "log and state disagree");
        }
        match &self.config.kind {
            BreakerKind::Consecutive(c) => {
                // Closed means the counter has not reached the threshold yet.
                if self.state == BreakerState::Closed {
                    assert!(self.consecutive_failures < c.failure_threshold);
                }
            }
            BreakerKind::CountWindow(c) => {
                self.count_window.check_invariants();
                assert!(self.count_window.calls() <= c.window_size);
            }
            BreakerKind::Hystrix(_) => {}
        }
    }
}
