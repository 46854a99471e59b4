//! Retry with backoff: whether a failed attempt is worth another one, and
//! how long to wait before it.
//!
//! A [`RetryPolicy`] (validated [`RetryConfig`]) is shared by many calls;
//! each call keeps a small [`RetryState`]. After every attempt the caller
//! reports the outcome and gets a [`RetryDecision`]: `Done`, `Retry { delay }`
//! or `GiveUp { reason }`. The policy never sleeps and never schedules; the
//! caller waits `delay` on its own clock. Retry budgets, which are shared
//! across calls, live in [`crate::budget`] and are asked separately.
//!
//! Backoff delays follow the published formulas; the attempt number `n` is
//! that of the attempt that just failed, starting at 1:
//!
//! | variant | delay before attempt `n + 1` |
//! |---|---|
//! | `fixed` | `delay` |
//! | `random` | `uniform(min, max)` (tenacity `wait_random`) |
//! | `incrementing` | `min(max, start + increment * (n - 1))` |
//! | `exponential` | `max(min, min(max, multiplier * base^(n-1)))` (tenacity `wait_exponential`) |
//! | `full_jitter` | `uniform(0, min(max, multiplier * base^(n-1)))` (tenacity `wait_random_exponential`) |
//! | `equal_jitter` | `v/2 + uniform(0, v/2)` with `v` as in full jitter |
//! | `decorrelated` | `min(max, uniform(base, 3 * previous))`, `previous` starting at `base` |
//! | `proportional` | `min(max, initial * multiplier^(n-1)) * uniform(1 - jitter, 1 + jitter)` (gRPC connection backoff) |
//! | `sum` | the sum of its parts (tenacity `wait_fixed(3) + wait_random(0, 2)`) |
//!
//! ```
//! use stormglass_core::rng::SimRng;
//! use stormglass_core::time::{SimDuration, SimTime};
//! use stormglass_patterns::retry::{Backoff, Idempotency, RetryConfig, RetryDecision, RetryPolicy};
//! use stormglass_patterns::AttemptOutcome;
//!
//! let policy = RetryPolicy::new(RetryConfig {
//!     backoff: Backoff::Exponential {
//!         multiplier: SimDuration::from_secs(1),
//!         base: 2.0,
//!         min: SimDuration::from_secs(1),
//!         max: SimDuration::from_secs(10),
//!     },
//!     ..RetryConfig::default()
//! })
//! .unwrap();
//! let mut rng = SimRng::from_seed_u64(1);
//! let mut call = policy.start(SimTime::ZERO, Idempotency::Idempotent, None);
//! let d = policy.on_attempt(&mut call, SimTime::ZERO, AttemptOutcome::Status(503), None, &mut rng);
//! assert_eq!(d, RetryDecision::Retry { delay: SimDuration::from_secs(1) });
//! let d = policy.on_attempt(&mut call, SimTime::from_secs(1), AttemptOutcome::OK, None, &mut rng);
//! assert_eq!(d, RetryDecision::Done);
//! ```

use serde::{Deserialize, Serialize};
use stormglass_core::rng::uniform01;
use stormglass_core::time::{SimDuration, SimTime};

use crate::error::{ConfigError, ensure};
use crate::outcome::AttemptOutcome;

/// Most parts a `sum` backoff may have.
pub const SUM_PARTS_MAX: usize = 8;

/// `base^exp` by repeated squaring: a fixed sequence of IEEE multiplications,
/// so the result is the same on every platform (`powf` is not).
pub(crate) fn pow_u32(base: f64, mut exp: u32) -> f64 {
    let mut result = 1.0;
    let mut factor = base;
    while exp > 0 {
        if exp & 1 == 1 {
            result *= factor;
        }
        factor *= factor;
        exp >>= 1;
    }
    result
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Backoff {
    /// Always the same delay.
    Fixed {
        /// The delay.
        delay: SimDuration,
    },
    /// Uniform in `[min, max)` (tenacity `wait_random`).
    Random {
        /// Lower bound.
        min: SimDuration,
        /// Upper bound.
        max: SimDuration,
    },
    /// `start + increment * (n - 1)`, capped at `max` (tenacity
    /// `wait_incrementing`).
    Incrementing {
        /// First delay.
        start: SimDuration,
        /// Added per attempt.
        increment: SimDuration,
        /// Cap.
        max: SimDuration,
    },
    /// `multiplier * base^(n-1)` clamped to `[min, max]`, with `min` winning
    /// if the two cross, exactly as tenacity's `wait_exponential`.
    Exponential {
        /// The first delay before clamping.
        multiplier: SimDuration,
        /// Growth per attempt.
        base: f64,
        /// Floor.
        min: SimDuration,
        /// Cap.
        max: SimDuration,
    },
    /// Full jitter: `uniform(0, min(max, multiplier * base^(n-1)))`.
    FullJitter {
        /// The first ceiling.
        multiplier: SimDuration,
        /// Growth per attempt.
        base: f64,
        /// Cap on the ceiling.
        max: SimDuration,
    },
    /// Equal jitter: half the exponential value fixed, half uniform.
    EqualJitter {
        /// The first value.
        multiplier: SimDuration,
        /// Growth per attempt.
        base: f64,
        /// Cap.
        max: SimDuration,
    },
    /// Decorrelated jitter: `min(max, uniform(base, 3 * previous))`.
    Decorrelated {
        /// Floor and first `previous`.
        base: SimDuration,
        /// Cap.
        max: SimDuration,
    },
    /// Proportional jitter, as gRPC's connection backoff
    /// (`connection-backoff.md`): exponential capped at `max`, times
    /// `uniform(1 - jitter_ratio, 1 + jitter_ratio)`. (gRPC's *call* retry
    /// policy, proposal A6, uses full jitter instead.)
    Proportional {
        /// First delay before jitter.
        initial: SimDuration,
        /// Growth per attempt.
        multiplier: f64,
        /// Cap before jitter.
        max: SimDuration,
        /// Relative jitter, gRPC uses 0.2.
        jitter_ratio: f64,
    },
    /// The sum of several waits, each drawn independently, in order.
    Sum(Vec<Backoff>),
}

impl Default for Backoff {
    /// Full jitter from 100 ms doubling up to 10 s: the usual advice.
    fn default() -> Self {
        Backoff::FullJitter { multiplier: SimDuration::from_millis(100), base: 2.0, max: SimDuration::from_secs(10) }
    }
}

impl Backoff {
    /// Checks every rule; the error names the offending field.
    ///
    /// ```
    /// # use stormglass_core::time::SimDuration;
    /// # use stormglass_patterns::retry::Backoff;
    /// let b = Backoff::Random { min: SimDuration::from_secs(2), max: SimDuration::from_secs(1) };
    /// assert_eq!(b.validate().unwrap_err().to_string(), "random.max: must not be below min");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let growth = |base: f64, field: &str, name: &str| {
            ensure(base.is_finite() && (1.0..=100.0).contains(&base), field, "must be between 1 and 100")
                .map_err(|e| e.within(name))
        };
        match self {
            Backoff::Fixed { .. } => Ok(()),
            Backoff::Random { min, max } => {
                ensure(max >= min, "max", "must not be below min").map_err(|e| e.within("random"))
            }
            Backoff::Incrementing { .. } => Ok(()),
            Backoff::Exponential { base, .. } => growth(*base, "base", "exponential"),
            Backoff::FullJitter { base, .. } => growth(*base, "base", "full_jitter"),
            Backoff::EqualJitter { base, .. } => growth(*base, "base", "equal_jitter"),
            Backoff::Decorrelated { base, max } => ensure(!base.is_zero(), "base", "must be more than zero")
                .and_then(|()| ensure(max >= base, "max", "must not be below base"))
                .map_err(|e| e.within("decorrelated")),
            Backoff::Proportional { multiplier, jitter_ratio, .. } => growth(*multiplier, "multiplier", "proportional")
                .and_then(|()| {
                    ensure(
                        jitter_ratio.is_finite() && (0.0..1.0).contains(jitter_ratio),
                        "jitter_ratio",
                        "must be in [0, 1)",
                    )
                    .map_err(|e| e.within("proportional"))
                }),
            Backoff::Sum(parts) => {
                ensure((1..=SUM_PARTS_MAX).contains(&parts.len()), "", "must have between 1 and 8 parts")
                    .map_err(|e| e.within("sum"))?;
                for (i, part) in parts.iter().enumerate() {
                    // Decorrelated jitter keeps the previous delay as state;
                    // inside a sum that state would be ambiguous.
                    let rule = match part {
                        Backoff::Sum(_) => Some("must not nest a sum"),
                        Backoff::Decorrelated { .. } => Some("decorrelated jitter cannot be part of a sum"),
                        _ => None,
                    };
                    if let Some(rule) = rule {
                        return Err(ConfigError::new(i.to_string(), rule).within("sum"));
                    }
                    part.validate().map_err(|e| e.within(&i.to_string()).within("sum"))?;
                }
                Ok(())
            }
        }
    }

    /// Whether the delay is drawn at random.
    pub fn is_jittered(&self) -> bool {
        match self {
            Backoff::Fixed { .. } | Backoff::Incrementing { .. } | Backoff::Exponential { .. } => false,
            Backoff::Proportional { jitter_ratio, .. } => *jitter_ratio > 0.0,
            Backoff::Random { min, max } => min != max,
            Backoff::FullJitter { .. } | Backoff::EqualJitter { .. } | Backoff::Decorrelated { .. } => true,
            Backoff::Sum(parts) => parts.iter().any(Backoff::is_jittered),
        }
    }

    /// The delay after failed attempt `attempt` (1-based), given the
    /// previous delay (for decorrelated jitter).
    ///
    /// ```
    /// # use stormglass_core::rng::SimRng;
    /// # use stormglass_core::time::SimDuration;
    /// # use stormglass_patterns::retry::Backoff;
    /// let b = Backoff::Incrementing {
    ///     start: SimDuration::from_secs(1),
    ///     increment: SimDuration::from_secs(2),
    ///     max: SimDuration::from_secs(4),
    /// };
    /// let mut rng = SimRng::from_seed_u64(0);
    /// let delays: Vec<_> = (1..=4).map(|n| b.delay(n, SimDuration::ZERO, &mut rng).as_secs_f64()).collect();
    /// assert_eq!(delays, [1.0, 3.0, 4.0, 4.0]);
    /// ```
    pub fn delay<R: rand_core::Rng + ?Sized>(&self, attempt: u32, previous: SimDuration, rng: &mut R) -> SimDuration {
        let n = attempt.max(1);
        let exponential = |multiplier: SimDuration, base: f64, max: SimDuration| {
            // Clamp in float seconds first: base^(n-1) may be infinite.
            let secs = multiplier.as_secs_f64() * pow_u32(base, n - 1);
            if secs >= max.as_secs_f64() { max } else { SimDuration::from_secs_f64(secs).min(max) }
        };
        match self {
            Backoff::Fixed { delay } => *delay,
            Backoff::Random { min, max } => between(*min, *max, rng),
            Backoff::Incrementing { start, increment, max } => {
                start.saturating_add(increment.saturating_mul(u64::from(n - 1))).min(*max)
            }
            Backoff::Exponential { multiplier, base, min, max } => exponential(*multiplier, *base, *max).max(*min),
            Backoff::FullJitter { multiplier, base, max } => {
                between(SimDuration::ZERO, exponential(*multiplier, *base, *max), rng)
            }
            Backoff::EqualJitter { multiplier, base, max } => {
                let v = exponential(*multiplier, *base, *max);
                let half = SimDuration::from_nanos(v.as_nanos() / 2);
                // The upper half is v - half, so odd nanoseconds are not lost.
                half + between(SimDuration::ZERO, v - half, rng)
            }
            Backoff::Decorrelated { base, max } => {
                let previous = previous.max(*base);
                between(*base, previous.saturating_mul(3), rng).min(*max)
            }
            Backoff::Proportional { initial, multiplier, max, jitter_ratio } => {
                let v = exponential(*initial, *multiplier, *max);
                if *jitter_ratio == 0.0 {
                    v
                } else {
                    v.mul_f64(1.0 - jitter_ratio + 2.0 * jitter_ratio * uniform01(rng))
                }
            }
            Backoff::Sum(parts) => {
                parts.iter().fold(SimDuration::ZERO, |acc, part| acc + part.delay(attempt, previous, rng))
            }
        }
    }

    /// The interval every delay after attempt `attempt` lies in, given the
    /// previous delay. Property tests use it; it is also a useful report.
    ///
    /// ```
    /// # use stormglass_core::time::SimDuration;
    /// # use stormglass_patterns::retry::Backoff;
    /// let b = Backoff::FullJitter { multiplier: SimDuration::from_secs(1), base: 2.0, max: SimDuration::from_secs(5) };
    /// assert_eq!(b.bounds(4, SimDuration::ZERO), (SimDuration::ZERO, SimDuration::from_secs(5)));
    /// ```
    pub fn bounds(&self, attempt: u32, previous: SimDuration) -> (SimDuration, SimDuration) {
        let n = attempt.max(1);
        let exponential = |multiplier: SimDuration, base: f64, max: SimDuration| {
            let secs = multiplier.as_secs_f64() * pow_u32(base, n - 1);
            if secs >= max.as_secs_f64() { max } else { SimDuration::from_secs_f64(secs).min(max) }
        };
        match self {
            Backoff::Random { min, max } => (*min, *max),
            Backoff::FullJitter { multiplier, base, max } => (SimDuration::ZERO, exponential(*multiplier, *base, *max)),
            Backoff::EqualJitter { multiplier, base, max } => {
                let v = exponential(*multiplier, *base, *max);
                (SimDuration::from_nanos(v.as_nanos() / 2), v)
            }
            Backoff::Decorrelated { base, max } => {
                let previous = previous.max(*base);
                (*base, previous.saturating_mul(3).min(*max))
            }
            Backoff::Proportional { initial, multiplier, max, jitter_ratio } => {
                let v = exponential(*initial, *multiplier, *max);
                (v.mul_f64(1.0 - jitter_ratio), v.mul_f64(1.0 + jitter_ratio))
            }
            Backoff::Sum(parts) => parts.iter().fold((SimDuration::ZERO, SimDuration::ZERO), |(lo, hi), part| {
                let (a, b) = part.bounds(attempt, previous);
                (lo + a, hi + b)
            }),
            Backoff::Fixed { .. } | Backoff::Incrementing { .. } | Backoff::Exponential { .. } => {
                let mut never_drawn = NoRng;
                let d = self.delay(attempt, previous, &mut never_drawn);
                (d, d)
            }
        }
    }
}

/// Uniform in `[lo, hi)` at nanosecond resolution, as tenacity's
/// `min + random() * (max - min)`, drawn from the 53-bit float so one draw
/// is used per call whatever the interval (float rounding may reach `hi`
/// itself on spans beyond 2^53 ns, hence the clamp).
fn between<R: rand_core::Rng + ?Sized>(lo: SimDuration, hi: SimDuration, rng: &mut R) -> SimDuration {
    let span = hi.saturating_sub(lo);
    let u = uniform01(rng);
    if span.is_zero() {
        return lo;
    }
    lo + SimDuration::from_nanos(((span.as_nanos() as f64) * u) as u64).min(span)
}

/// An RNG for the deterministic variants, which never draw.
struct NoRng;

impl rand_core::TryRng for NoRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}

/// When to stop retrying. Each limit is optional; all that are set apply.
///
/// Defaults: `attempts_max` 3 (the first attempt and two retries),
/// `elapsed_max` none, `deadline_remaining_min` 0 (with a deadline, no
/// attempt starts at or after it). With everything unset, retries never stop
/// on their own; the call's deadline, a budget or the simulator's limits
/// still end them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StopConfig {
    /// Attempts in all, the first one included.
    pub attempts_max: Option<u32>,
    /// No attempt starts this long or more after the first one started.
    pub elapsed_max: Option<SimDuration>,
    /// With a deadline, no attempt starts with less than this remaining.
    pub deadline_remaining_min: SimDuration,
}

impl Default for StopConfig {
    fn default() -> Self {
        StopConfig { attempts_max: Some(3), elapsed_max: None, deadline_remaining_min: SimDuration::ZERO }
    }
}

/// What is worth retrying.
///
/// Defaults: timeouts, refused and reset connections and every 5xx are
/// retried; among 4xx only the statuses in `statuses` (429); local
/// rejections are not. A `retry_after` hint (429 and 503 carry one) is
/// honoured as a floor on the delay, up to `retry_after_max` (30 s); a
/// longer hint ends the retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryOn {
    /// Retry after a timeout.
    pub timeout: bool,
    /// Retry after a refused connection.
    pub connection_refused: bool,
    /// Retry after a reset connection.
    pub connection_reset: bool,
    /// Retry every 5xx status.
    pub server_errors: bool,
    /// Other statuses to retry (e.g. 429); any other 4xx never is.
    pub statuses: Vec<u16>,
    /// Retry when a local pattern (a breaker, a bulkhead) refused.
    pub local_rejections: bool,
    /// Longest `retry_after` hint to honour.
    pub retry_after_max: SimDuration,
}

impl Default for RetryOn {
    fn default() -> Self {
        RetryOn {
            timeout: true,
            connection_refused: true,
            connection_reset: true,
            server_errors: true,
            statuses: vec![429],
            local_rejections: false,
            retry_after_max: SimDuration::from_secs(30),
        }
    }
}

impl RetryOn {
    /// Whether `outcome` is worth another attempt, idempotency aside.
    ///
    /// ```
    /// # use stormglass_patterns::retry::RetryOn;
    /// # use stormglass_patterns::AttemptOutcome;
    /// let on = RetryOn::default();
    /// assert!(on.retryable(AttemptOutcome::Status(502)));
    /// assert!(on.retryable(AttemptOutcome::Status(429)));
    /// assert!(!on.retryable(AttemptOutcome::Status(404)));
    /// ```
    pub fn retryable(&self, outcome: AttemptOutcome) -> bool {
        match outcome {
            AttemptOutcome::Status(s) if s < 400 => false,
            AttemptOutcome::Status(s) => (self.server_errors && (500..600).contains(&s)) || self.statuses.contains(&s),
            AttemptOutcome::Timeout => self.timeout,
            AttemptOutcome::ConnectionRefused => self.connection_refused,
            AttemptOutcome::ConnectionReset => self.connection_reset,
            AttemptOutcome::Rejected(_) => self.local_rejections,
        }
    }
}

/// A retry policy's configuration.
///
/// Defaults: `backoff` [`Backoff::default`] (full jitter, 100 ms doubling to
/// 10 s), `stop` [`StopConfig::default`] (3 attempts), `retry_on`
/// [`RetryOn::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// How long to wait between attempts.
    pub backoff: Backoff,
    /// When to stop.
    pub stop: StopConfig,
    /// What to retry.
    pub retry_on: RetryOn,
}

impl RetryConfig {
    /// Checks every rule; the error names the offending field.
    ///
    /// ```
    /// # use stormglass_patterns::retry::{RetryConfig, StopConfig};
    /// let mut c = RetryConfig::default();
    /// c.stop.attempts_max = Some(0);
    /// assert_eq!(c.validate().unwrap_err().to_string(), "stop.attempts_max: must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.backoff.validate().map_err(|e| e.within("backoff"))?;
        ensure(self.stop.attempts_max != Some(0), "attempts_max", "must be at least 1")
            .map_err(|e| e.within("stop"))?;
        ensure(self.stop.elapsed_max != Some(SimDuration::ZERO), "elapsed_max", "must be more than zero")
            .map_err(|e| e.within("stop"))?;
        ensure(
            self.retry_on.statuses.iter().all(|s| (400..600).contains(s)),
            "statuses",
            "must list statuses between 400 and 599",
        )
        .map_err(|e| e.within("retry_on"))?;
        ensure(self.retry_on.statuses.len() <= 64, "statuses", "must list at most 64 statuses")
            .map_err(|e| e.within("retry_on"))
    }
}

/// Whether a request may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Idempotency {
    /// GET, PUT, DELETE...: safe to repeat.
    Idempotent,
    /// A POST that carries an idempotency key: the server deduplicates.
    KeyedNonIdempotent,
    /// A POST without a key: never retried.
    NonIdempotent,
}

/// What the policy says after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// The attempt succeeded; nothing more to do.
    Done,
    /// Try again after `delay`.
    Retry {
        /// How long to wait before the next attempt.
        delay: SimDuration,
    },
    /// Stop and report the last failure.
    GiveUp {
        /// Why.
        reason: GiveUpReason,
    },
}

/// Why a policy stopped retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GiveUpReason {
    /// The outcome is not worth retrying (a 4xx, say).
    NotRetryable,
    /// The request is not idempotent and has no idempotency key.
    NotIdempotent,
    /// `attempts_max` reached.
    AttemptsExhausted,
    /// The next attempt would start past `elapsed_max`.
    ElapsedExceeded,
    /// The next attempt would start with too little of the deadline left.
    DeadlineExceeded,
    /// The server asked to wait longer than `retry_after_max`.
    RetryAfterTooLong,
}

/// The per-call state of a retry loop. Create it with [`RetryPolicy::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryState {
    started_at: SimTime,
    /// [`SimTime::MAX`] when the call has no deadline: kept without an
    /// `Option`, which would double its size in every call in flight.
    deadline: SimTime,
    idempotency: Idempotency,
    /// Attempts whose outcome has been reported.
    attempts_count: u32,
    /// The last backoff drawn (before a `retry_after` hint raised it), for
    /// decorrelated jitter.
    previous_delay: SimDuration,
    /// Sum of the delays handed out so far.
    waited_total: SimDuration,
    finished: bool,
}

impl RetryState {
    /// Attempts reported so far.
    pub fn attempts(&self) -> u32 {
        self.attempts_count
    }
    /// The total of the delays handed out so far.
    pub fn waited_total(&self) -> SimDuration {
        self.waited_total
    }
    /// Whether the policy has answered `Done` or `GiveUp`.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// A validated retry configuration, shared by every call that uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    config: RetryConfig,
}

impl RetryPolicy {
    /// A policy, or the first rule the config breaks.
    pub fn new(config: RetryConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(RetryPolicy { config })
    }

    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The state of a new call whose first attempt starts at `now`.
    pub fn start(&self, now: SimTime, idempotency: Idempotency, deadline: Option<SimTime>) -> RetryState {
        RetryState {
            started_at: now,
            deadline: deadline.unwrap_or(SimTime::MAX),
            idempotency,
            attempts_count: 0,
            previous_delay: SimDuration::ZERO,
            waited_total: SimDuration::ZERO,
            finished: false,
        }
    }

    /// Reports the outcome of the latest attempt, which ended at `now`, and
    /// decides what comes next. `retry_after` is the server's (or a local
    /// breaker's) hint, if it gave one.
    ///
    /// Order of the checks: success, retryable, idempotent, attempts, the
    /// `retry_after` cap, then the next start time against `elapsed_max` and
    /// the deadline. The backoff is drawn only when a retry is possible, so a
    /// call that gives up consumes no randomness for it.
    pub fn on_attempt<R: rand_core::Rng + ?Sized>(
        &self,
        state: &mut RetryState,
        now: SimTime,
        outcome: AttemptOutcome,
        retry_after: Option<SimDuration>,
        rng: &mut R,
    ) -> RetryDecision {
        debug_assert!(!state.finished, "on_attempt after the call finished");
        state.attempts_count = state.attempts_count.saturating_add(1);
        let (decision, backoff) = self.decide(state, now, outcome, retry_after, rng);
        match decision {
            RetryDecision::Retry { delay } => {
                // Decorrelated jitter goes on from its own draw, not from a
                // server's `retry_after` that outlasted it.
                state.previous_delay = backoff;
                state.waited_total += delay;
            }
            RetryDecision::Done | RetryDecision::GiveUp { .. } => state.finished = true,
        }
        self.check_invariants(state, decision);
        decision
    }

    /// The decision, and the backoff drawn for a retry (before a
    /// `retry_after` hint raised it).
    fn decide<R: rand_core::Rng + ?Sized>(
        &self,
        state: &RetryState,
        now: SimTime,
        outcome: AttemptOutcome,
        retry_after: Option<SimDuration>,
        rng: &mut R,
    ) -> (RetryDecision, SimDuration) {
        let give_up = |reason| (RetryDecision::GiveUp { reason }, SimDuration::ZERO);
        if outcome.is_success() {
            return (RetryDecision::Done, SimDuration::ZERO);
        }
        if !self.config.retry_on.retryable(outcome) {
            return give_up(GiveUpReason::NotRetryable);
        }
        if state.idempotency == Idempotency::NonIdempotent {
            return give_up(GiveUpReason::NotIdempotent);
        }
        let stop = &self.config.stop;
        if stop.attempts_max.is_some_and(|max| state.attempts_count >= max) {
            return give_up(GiveUpReason::AttemptsExhausted);
        }
        let hint = retry_after.unwrap_or(SimDuration::ZERO);
        if hint > self.config.retry_on.retry_after_max {
            return give_up(GiveUpReason::RetryAfterTooLong);
        }
        let backoff = self.config.backoff.delay(state.attempts_count, state.previous_delay, rng);
        let delay = backoff.max(hint);
        let next_start = now + delay;
        if let Some(max) = stop.elapsed_max
            && next_start - state.started_at >= max
        {
            return give_up(GiveUpReason::ElapsedExceeded);
        }
        let deadline = state.deadline;
        if deadline != SimTime::MAX && (next_start >= deadline || deadline - next_start < stop.deadline_remaining_min) {
            return give_up(GiveUpReason::DeadlineExceeded);
        }
        (RetryDecision::Retry { delay }, backoff)
    }

    /// The one place the retry invariants are checked (debug builds).
    fn check_invariants(&self, state: &RetryState, decision: RetryDecision) {
        if !cfg!(debug_assertions) {
            return;
        }
        if let RetryDecision::Retry { delay } = decision {
            assert!(!state.finished);
            if let Some(max) = self.config.stop.attempts_max {
                assert!(state.attempts_count < max, "retry past attempts_max");
            }
            assert!(state.waited_total >= delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow_by_squaring_matches_small_powers() {
        assert_eq!(pow_u32(2.0, 0), 1.0);
        assert_eq!(pow_u32(2.0, 10), 1024.0);
        assert_eq!(pow_u32(3.0, 5), 243.0);
        assert!(pow_u32(2.0, 5000).is_infinite());
    }
}
