//! Retry budgets and adaptive throttling: limits shared by all the calls of
//! a client, so that retries cannot multiply the load on a sick dependency.
//!
//! Three published designs, each its own type, and [`RetryBudget`] to pick
//! one from a config:
//!
//! - [`TokenBucketBudget`], gRPC retry throttling (proposal A6): a token
//!   count starts at `max_tokens`; each failed attempt with a retryable
//!   outcome costs one token, each success earns `token_ratio`; a retry is
//!   allowed only while the count is above `max_tokens / 2`, checked when
//!   the retry is decided, before its backoff. Tokens are kept in thousandths, as gRPC
//!   does, so the arithmetic is exact.
//! - [`RatioBudget`], Finagle's `RetryBudget` (also tower's and Linkerd's;
//!   not Envoy's, which caps concurrent retries): over a rolling window, retries may
//!   be at most `ratio` of the first attempts, plus a floor of
//!   `retries_per_sec_min` per second so that quiet clients can still retry.
//!   Convention: **ratio = retries / first attempts** in the window; 0.2
//!   means retries add at most 20% to the load.
//! - [`AdaptiveThrottle`], client-side throttling from the Google SRE book:
//!   every attempt, first or retry, is rejected locally with probability
//!   `max(0, (requests - K * accepts) / (requests + 1))` over the window.
//!   `requests` counts every attempt the application made, locally rejected
//!   ones included; `accepts` counts attempts the backend processed.
//!
//! All three answer through [`RetryBudget::try_acquire`] (before an attempt)
//! and [`RetryBudget::on_result`] (after it).
//!
//! ```
//! use stormglass_core::rng::SimRng;
//! use stormglass_core::time::SimTime;
//! use stormglass_patterns::budget::{BudgetConfig, RetryBudget, TokenBucketConfig};
//! use stormglass_patterns::AttemptOutcome;
//!
//! let mut budget = RetryBudget::new(BudgetConfig::TokenBucket(TokenBucketConfig {
//!     max_tokens: 10,
//!     token_ratio: 0.1,
//! }))
//! .unwrap();
//! let mut rng = SimRng::from_seed_u64(0);
//! let now = SimTime::ZERO;
//! for _ in 0..5 {
//!     budget.on_result(now, AttemptOutcome::Status(503), true);
//! }
//! // 10 - 5 = 5 tokens, not above 10 / 2: retries are throttled.
//! assert!(budget.try_acquire(now, true, &mut rng).is_err());
//! // First attempts never are.
//! assert!(budget.try_acquire(now, false, &mut rng).is_ok());
//! ```

use serde::{Deserialize, Serialize};
use stormglass_core::rng::uniform01;
use stormglass_core::time::{SimDuration, SimTime};

use crate::breaker::RollingCounts;
use crate::error::{ConfigError, ensure};
use crate::outcome::{AttemptOutcome, Rejection};

/// gRPC retry throttling. Defaults: `max_tokens` 10, `token_ratio` 0.1
/// (values from the A6 proposal's example).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenBucketConfig {
    /// Tokens when full, and at the start.
    pub max_tokens: u32,
    /// Tokens earned by one success (gRPC keeps three decimals).
    pub token_ratio: f64,
}

impl Default for TokenBucketConfig {
    fn default() -> Self {
        TokenBucketConfig { max_tokens: 10, token_ratio: 0.1 }
    }
}

impl TokenBucketConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure((1..=1000).contains(&self.max_tokens), "max_tokens", "must be between 1 and 1000")?;
        ensure(
            self.token_ratio.is_finite() && self.token_ratio >= 0.001 && self.token_ratio <= 1000.0,
            "token_ratio",
            "must be between 0.001 and 1000",
        )
    }
}

/// `token_ratio` in thousandths, as gRPC keeps it: A6 considers three
/// decimal places and ignores the rest, so `0.0015` earns one thousandth,
/// not two. grpc-core reads the digits of the config's text; here they are
/// the shortest decimal form of the float (the one it was written with), so
/// `4.35`, which binary holds as `4.3499999...`, still earns 4 350, and no
/// rounding brings a fourth decimal into the third.
///
/// ```
/// # use stormglass_patterns::budget::ratio_milli;
/// assert_eq!(ratio_milli(0.1), 100);
/// assert_eq!(ratio_milli(0.0015), 1);
/// assert_eq!(ratio_milli(4.35), 4350);
/// assert_eq!(ratio_milli(0.9999), 999);
/// assert_eq!(ratio_milli(0.0019996), 1);
/// assert_eq!(ratio_milli(1000.0), 1_000_000);
/// ```
pub fn ratio_milli(token_ratio: f64) -> u64 {
    // Display never uses an exponent and is the same on every platform.
    let text = token_ratio.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = fraction.bytes().chain(std::iter::repeat(b'0')).take(3);
    let milli = digits.fold(0, |milli, digit| milli * 10 + u64::from(digit - b'0'));
    whole.parse::<u64>().unwrap_or(0) * 1000 + milli
}

/// gRPC retry throttling, in thousandths of a token.
#[derive(Debug, Clone)]
pub struct TokenBucketBudget {
    max_milli: u64,
    ratio_milli: u64,
    tokens_milli: u64,
}

impl TokenBucketBudget {
    /// A full bucket, or the first rule the config breaks.
    pub fn new(config: &TokenBucketConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let max_milli = u64::from(config.max_tokens) * 1000;
        Ok(TokenBucketBudget { max_milli, ratio_milli: ratio_milli(config.token_ratio), tokens_milli: max_milli })
    }

    /// Tokens left, in thousandths.
    pub fn tokens_milli(&self) -> u64 {
        self.tokens_milli
    }

    /// Whether a retry may be sent now: tokens above half the maximum.
    pub fn allows_retry(&self) -> bool {
        self.tokens_milli > self.max_milli / 2
    }

    /// Counts a successful attempt.
    pub fn record_success(&mut self) {
        self.tokens_milli = (self.tokens_milli + self.ratio_milli).min(self.max_milli);
    }

    /// Counts a failed attempt.
    pub fn record_failure(&mut self) {
        self.tokens_milli = self.tokens_milli.saturating_sub(1000);
    }

    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            assert!(self.tokens_milli <= self.max_milli);
        }
    }
}

/// A ratio budget. Defaults (Finagle's `RetryBudget`): `ratio` 0.2,
/// `retries_per_sec_min` 10, `window` 10 s in 10 buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RatioConfig {
    /// Retries allowed per first attempt in the window.
    pub ratio: f64,
    /// Retries allowed per second regardless of traffic.
    pub retries_per_sec_min: u32,
    /// Span of the rolling window.
    pub window: SimDuration,
    /// Buckets the window is cut into.
    pub buckets: u32,
}

impl Default for RatioConfig {
    fn default() -> Self {
        RatioConfig { ratio: 0.2, retries_per_sec_min: 10, window: SimDuration::from_secs(10), buckets: 10 }
    }
}

fn validate_window(window: SimDuration, buckets: u32) -> Result<(), ConfigError> {
    ensure((1..=10_000).contains(&buckets), "buckets", "must be between 1 and 10000")?;
    ensure(window.as_nanos() >= u64::from(buckets), "window", "must be at least one nanosecond per bucket")
}

impl RatioConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.ratio.is_finite() && (0.0..=100.0).contains(&self.ratio), "ratio", "must be between 0 and 100")?;
        validate_window(self.window, self.buckets)
    }
}

/// Retries at most `ratio` of first attempts over a window, plus a floor.
#[derive(Debug, Clone)]
pub struct RatioBudget {
    config: RatioConfig,
    /// Counter 0: first attempts; counter 1: retries.
    counts: RollingCounts,
}

impl RatioBudget {
    /// An empty budget, or the first rule the config breaks.
    pub fn new(config: &RatioConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let width = config.window.checked_div(u64::from(config.buckets)).unwrap_or(config.window);
        Ok(RatioBudget { config: config.clone(), counts: RollingCounts::new(config.buckets, width) })
    }

    /// Retries the window allows in all at `now`, sent ones included.
    pub fn retries_allowed(&self, now: SimTime) -> f64 {
        let [firsts, _] = self.counts.totals(now);
        let floor = f64::from(self.config.retries_per_sec_min) * self.counts.span().as_secs_f64();
        self.config.ratio * firsts as f64 + floor
    }

    /// Retries sent in the window at `now`.
    pub fn retries_sent(&self, now: SimTime) -> u64 {
        self.counts.totals(now)[1]
    }

    /// Counts an attempt about to be sent; a retry is refused when one more
    /// would exceed the allowance.
    pub fn try_send(&mut self, now: SimTime, is_retry: bool) -> bool {
        if !is_retry {
            self.counts.add(now, 0, 1);
            return true;
        }
        let sent = self.retries_sent(now);
        if (sent + 1) as f64 > self.retries_allowed(now) {
            return false;
        }
        self.counts.add(now, 1, 1);
        true
    }
}

/// SRE adaptive throttling. Defaults (the SRE book's): `k` 2, `window`
/// 2 min in 120 buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    /// How many requests per accept the client tolerates before throttling.
    pub k: f64,
    /// Span of the rolling window.
    pub window: SimDuration,
    /// Buckets the window is cut into.
    pub buckets: u32,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig { k: 2.0, window: SimDuration::from_secs(120), buckets: 120 }
    }
}

impl AdaptiveConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.k.is_finite() && self.k >= 1.0 && self.k <= 100.0, "k", "must be between 1 and 100")?;
        validate_window(self.window, self.buckets)
    }
}

/// The SRE book's rejection probability: `max(0, (requests - k * accepts)
/// / (requests + 1))`.
///
/// ```
/// # use stormglass_patterns::budget::sre_reject_probability;
/// let p = sre_reject_probability(1000, 200, 2.0);
/// assert!((p - 0.599401).abs() < 1e-6);
/// assert_eq!(sre_reject_probability(100, 60, 2.0), 0.0);
/// ```
pub fn sre_reject_probability(requests: u64, accepts: u64, k: f64) -> f64 {
    let requests = requests as f64;
    ((requests - k * accepts as f64) / (requests + 1.0)).max(0.0)
}

/// Client-side adaptive throttling.
#[derive(Debug, Clone)]
pub struct AdaptiveThrottle {
    k: f64,
    /// Counter 0: requests; counter 1: accepts.
    counts: RollingCounts,
}

impl AdaptiveThrottle {
    /// An empty throttle, or the first rule the config breaks.
    pub fn new(config: &AdaptiveConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let width = config.window.checked_div(u64::from(config.buckets)).unwrap_or(config.window);
        Ok(AdaptiveThrottle { k: config.k, counts: RollingCounts::new(config.buckets, width) })
    }

    /// The rejection probability at `now`.
    pub fn reject_probability(&self, now: SimTime) -> f64 {
        let [requests, accepts] = self.counts.totals(now);
        sre_reject_probability(requests, accepts, self.k)
    }

    /// Counts a request and decides, with one draw, whether to send it.
    pub fn try_send<R: rand_core::Rng + ?Sized>(&mut self, now: SimTime, rng: &mut R) -> bool {
        let p = self.reject_probability(now);
        // The request counts whether or not it is sent: that is what makes
        // the probability climb while the backend refuses.
        self.counts.add(now, 0, 1);
        // Always draw, so the stream advances the same way whatever p is.
        uniform01(rng) >= p
    }

    /// Counts an attempt the backend accepted.
    pub fn record_accept(&mut self, now: SimTime) {
        self.counts.add(now, 1, 1);
    }
}

/// Which budget, as a config. Serialized as `token_bucket`, `ratio`,
/// `adaptive`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetConfig {
    /// gRPC retry throttling.
    TokenBucket(TokenBucketConfig),
    /// Finagle-style ratio budget.
    Ratio(RatioConfig),
    /// SRE adaptive throttling.
    Adaptive(AdaptiveConfig),
}

impl Default for BudgetConfig {
    /// gRPC retry throttling with its defaults.
    fn default() -> Self {
        BudgetConfig::TokenBucket(TokenBucketConfig::default())
    }
}

impl BudgetConfig {
    /// Checks every rule; the error names the offending field.
    ///
    /// ```
    /// # use stormglass_patterns::budget::{BudgetConfig, AdaptiveConfig};
    /// let c = BudgetConfig::Adaptive(AdaptiveConfig { k: 0.5, ..AdaptiveConfig::default() });
    /// assert_eq!(c.validate().unwrap_err().to_string(), "adaptive.k: must be between 1 and 100");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BudgetConfig::TokenBucket(c) => c.validate().map_err(|e| e.within("token_bucket")),
            BudgetConfig::Ratio(c) => c.validate().map_err(|e| e.within("ratio")),
            BudgetConfig::Adaptive(c) => c.validate().map_err(|e| e.within("adaptive")),
        }
    }
}

/// One of the three budgets behind one interface.
#[derive(Debug, Clone)]
pub enum RetryBudget {
    /// gRPC retry throttling.
    TokenBucket(TokenBucketBudget),
    /// Finagle-style ratio budget.
    Ratio(RatioBudget),
    /// SRE adaptive throttling.
    Adaptive(AdaptiveThrottle),
}

impl RetryBudget {
    /// Whether a refusal rejects the attempt itself, so that the call ends
    /// with a local rejection: adaptive throttling, which refuses first
    /// attempts and retries alike. The two retry budgets only decide
    /// whether a retry is sent; what they refuse ends with the failure that
    /// was being retried (gRPC commits the last attempt's status, Envoy and
    /// Finagle return the last response).
    pub fn rejects_attempts(&self) -> bool {
        matches!(self, RetryBudget::Adaptive(_))
    }

    /// A fresh budget, or the first rule the config breaks.
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(match &config {
            BudgetConfig::TokenBucket(c) => RetryBudget::TokenBucket(TokenBucketBudget::new(c)?),
            BudgetConfig::Ratio(c) => RetryBudget::Ratio(RatioBudget::new(c)?),
            BudgetConfig::Adaptive(c) => RetryBudget::Adaptive(AdaptiveThrottle::new(c)?),
        })
    }

    /// Asks before sending an attempt; `is_retry` is false for the first
    /// attempt of a call. The token bucket and the ratio budget never refuse
    /// a first attempt; the adaptive throttle may refuse any attempt. The
    /// RNG is drawn only by the adaptive throttle.
    pub fn try_acquire<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        is_retry: bool,
        rng: &mut R,
    ) -> Result<(), Rejection> {
        let allowed = match self {
            RetryBudget::TokenBucket(b) => !is_retry || b.allows_retry(),
            RetryBudget::Ratio(b) => b.try_send(now, is_retry),
            RetryBudget::Adaptive(t) => t.try_send(now, rng),
        };
        self.check_invariants();
        if allowed { Ok(()) } else { Err(Rejection::Throttled) }
    }

    /// Reports an attempt's outcome; `retryable` says whether the call's
    /// retry policy retries such an outcome ([`RetryOn::retryable`]).
    ///
    /// Token bucket: 2xx/3xx earn `token_ratio`; a failure costs one token
    /// only if it is retryable, as gRPC records only failures whose status
    /// is in the retry policy's `retryableStatusCodes`; other failures and
    /// local rejections change nothing. Adaptive: an accept is any status
    /// but 429 and 503. The ratio budget counts sends only, so it ignores
    /// outcomes.
    ///
    /// [`RetryOn::retryable`]: crate::retry::RetryOn::retryable
    pub fn on_result(&mut self, now: SimTime, outcome: AttemptOutcome, retryable: bool) {
        match self {
            RetryBudget::TokenBucket(b) => match outcome {
                AttemptOutcome::Status(s) if s < 400 => b.record_success(),
                // Never sent: tells nothing about the dependency.
                AttemptOutcome::Rejected(_) => {}
                _ if retryable => b.record_failure(),
                _ => {}
            },
            RetryBudget::Ratio(_) => {}
            RetryBudget::Adaptive(t) => {
                // Accepted: the backend answered and did not push back.
                let accepted = matches!(outcome, AttemptOutcome::Status(s) if s != 429 && s != 503);
                if accepted {
                    t.record_accept(now);
                }
            }
        }
        self.check_invariants();
    }

    /// The one place the budgets' invariants are checked (debug builds).
    fn check_invariants(&self) {
        if let RetryBudget::TokenBucket(b) = self {
            b.check_invariants();
        }
    }
}
