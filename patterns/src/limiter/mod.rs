//! Rate limiters: how many calls may go now, and when to come back.
//!
//! One config enum, [`RateLimiterConfig`], names the algorithm and its
//! parameters; [`RateLimiter`] runs one limit, [`KeyedLimiter`] one limit per
//! key (user, client IP, route) in a bounded table. Every decision is a
//! [`Decision`] value: allowed, delayed (the leaky queue) or denied with
//! `retry_after`, always with the `remaining` permits.
//!
//! | algorithm | guarantees |
//! |---|---|
//! | `fixed_window` | at most `count` per aligned window; up to 2× across a boundary |
//! | `sliding_log` | exactly at most `count` in any window of `period` |
//! | `sliding_window` | weighted estimate of the previous window (approximate) |
//! | `token_bucket` | at most `burst + rate × t` in any span `t` |
//! | `gcra` | the same decisions as `token_bucket`, from one number of state |
//! | `leaky_queue` | nginx `limit_req`: delay to the rate, refuse past `burst` |
//! | `concurrency` | at most `max_in_flight` permits held |
//!
//! Every key's state is one 32-byte value; the sliding log adds 8 bytes per
//! permit of `count` on the heap, allocated when a key is first stored and
//! handed on to the key that replaces an evicted one. A [`KeyedLimiter<u64>`]
//! holds each key in a 48-byte entry (key, state, reference bit) of an array
//! kept at most 3/4 full: 64 bytes per key at 10^6 keys, which
//! `benches/limiters.rs` confirms by counting allocations.
//!
//! ```
//! use stormglass_patterns::limiter::{Decision, RateLimiter, RateLimiterConfig};
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! let config = RateLimiterConfig::TokenBucket { rate: "2/second".parse().unwrap(), burst: 2 };
//! let mut limiter = RateLimiter::new(config).unwrap();
//! let t0 = SimTime::ZERO;
//! assert_eq!(limiter.try_acquire(t0, 1), Decision::Allowed { remaining: 1 });
//! assert_eq!(limiter.try_acquire(t0, 1), Decision::Allowed { remaining: 0 });
//! assert_eq!(
//!     limiter.try_acquire(t0, 1),
//!     Decision::Denied { retry_after: SimDuration::from_millis(500), remaining: 0 }
//! );
//! assert!(limiter.try_acquire(t0 + SimDuration::from_millis(500), 1).is_allowed());
//! ```
//!
//! Semantics were pinned against the usual implementations: windows are
//! aligned to multiples of the period (as the sliding-window-counter
//! strategies of the Python `limits` library and Cloudflare are); the sliding
//! log is `limits`' "moving window"; the leaky queue follows nginx
//! `limit_req`, where `burst` counts requests that may wait beyond the one
//! being served (with `burst=5`, six simultaneous requests pass, the sixth
//! after five intervals) and `nodelay` passes them at once while keeping the
//! same account.

mod algo;
mod clock;
mod keyed;
mod limit;
pub(crate) mod table;

use serde::{Deserialize, Serialize};
use stormglass_core::time::{SimDuration, SimTime};

use crate::error::{ConfigError, ensure};
use crate::outcome::Rejection;

pub use keyed::{KeyedLimiter, KeyedLimiterConfig, KeyedStats};
pub use limit::{Limit, ParseLimitError};

use algo::{Algo, State};

/// Largest `count` a sliding log accepts: it keeps one timestamp per permit.
pub const SLIDING_LOG_COUNT_MAX: u32 = 1 << 16;

/// Which algorithm, with its parameters.
///
/// Serialised with an `algorithm` tag:
///
/// ```
/// use stormglass_patterns::limiter::RateLimiterConfig;
///
/// let c: RateLimiterConfig =
///     ron::from_str(r#"(algorithm: "leaky_queue", rate: "10/second", burst: 5, nodelay: true)"#)
///         .unwrap();
/// assert!(matches!(c, RateLimiterConfig::LeakyQueue { burst: 5, nodelay: true, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case", deny_unknown_fields)]
pub enum RateLimiterConfig {
    /// At most `limit.count` permits in each window `[k × period, (k+1) × period)`.
    /// Cheap, but a client can spend a full window just before a boundary
    /// and another just after: twice the limit within one period.
    FixedWindow {
        /// Permits per window.
        limit: Limit,
    },
    /// At most `limit.count` permits in every closed interval
    /// `[now − period, now]`, exactly, as the `limits` package's moving
    /// window counts. Keeps one timestamp per permit, so `count` is capped
    /// at [`SLIDING_LOG_COUNT_MAX`].
    SlidingLog {
        /// Permits per sliding window.
        limit: Limit,
    },
    /// Aligned windows, but the previous window's count still weighs on the
    /// current one in proportion to how much of it the sliding window covers.
    SlidingWindow {
        /// Permits per (estimated) sliding window.
        limit: Limit,
    },
    /// A bucket of `burst` tokens refilled at `rate`; starts full.
    TokenBucket {
        /// Refill rate.
        rate: Limit,
        /// Bucket size: the most permits that can go at once.
        burst: u32,
    },
    /// The leaky bucket as a meter (GCRA): the token bucket's decisions from
    /// one theoretical arrival time.
    Gcra {
        /// Emission rate.
        rate: Limit,
        /// Permits that may go at once after a quiet spell.
        burst: u32,
    },
    /// The leaky bucket as a queue drained at `rate` (nginx `limit_req`).
    /// Requests beyond the rate wait in the queue (a [`Decision::Delayed`])
    /// up to `burst` deep; past that they are refused.
    LeakyQueue {
        /// Drain rate.
        rate: Limit,
        /// Requests that may wait; 0 refuses anything faster than the rate.
        #[serde(default)]
        burst: u32,
        /// Let queued requests go at once (they still fill the queue).
        #[serde(default)]
        nodelay: bool,
    },
    /// At most `max_in_flight` permits held at once; [`RateLimiter::release`]
    /// returns them.
    Concurrency {
        /// Permits that may be held at once.
        max_in_flight: u32,
    },
}

impl Default for RateLimiterConfig {
    /// A token bucket of `100/second` with `burst: 100`: one second of
    /// traffic may arrive at once.
    fn default() -> Self {
        RateLimiterConfig::TokenBucket { rate: Limit::per_second(100), burst: 100 }
    }
}

impl RateLimiterConfig {
    /// Bytes an unkeyed limiter built from this config allocates up front:
    /// a sliding log's timestamps (a keyed one allocates that per key, as
    /// keys come).
    pub fn state_bytes(&self) -> u64 {
        match self {
            RateLimiterConfig::SlidingLog { limit } => u64::from(limit.count) * std::mem::size_of::<SimTime>() as u64,
            _ => 0,
        }
    }

    /// Checks every field; the error names the field and the rule.
    ///
    /// ```
    /// use stormglass_patterns::limiter::{Limit, RateLimiterConfig};
    ///
    /// let c = RateLimiterConfig::TokenBucket { rate: Limit::per_second(10), burst: 0 };
    /// assert_eq!(c.validate().unwrap_err().to_string(), "burst: must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            RateLimiterConfig::FixedWindow { limit } | RateLimiterConfig::SlidingWindow { limit } => {
                limit.validate().map_err(|e| e.within("limit"))
            }
            RateLimiterConfig::SlidingLog { limit } => {
                limit.validate().map_err(|e| e.within("limit"))?;
                ensure(
                    limit.count <= SLIDING_LOG_COUNT_MAX,
                    "limit.count",
                    "must be at most 65536 for a sliding log (it keeps one timestamp per permit)",
                )
            }
            RateLimiterConfig::TokenBucket { rate, burst } | RateLimiterConfig::Gcra { rate, burst } => {
                rate.validate().map_err(|e| e.within("rate"))?;
                ensure(*burst >= 1, "burst", "must be at least 1")
            }
            RateLimiterConfig::LeakyQueue { rate, .. } => rate.validate().map_err(|e| e.within("rate")),
            RateLimiterConfig::Concurrency { max_in_flight } => {
                ensure(*max_in_flight >= 1, "max_in_flight", "must be at least 1")
            }
        }
    }
}

/// A limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go now. `remaining`: permits that would still be allowed now.
    Allowed {
        /// Permits still available at this instant.
        remaining: u32,
    },
    /// Accepted, but go only after `delay` (the leaky queue).
    Delayed {
        /// How long the request waits in the queue.
        delay: SimDuration,
        /// Requests the queue would still accept at this instant.
        remaining: u32,
    },
    /// Not now. `retry_after` is the exact wait after which the same request
    /// would be allowed if nothing else arrives; [`SimDuration::MAX`] when
    /// time alone will never admit it (more permits than the limit, or a
    /// concurrency limiter waiting for a release).
    Denied {
        /// Exact wait until the same request fits.
        retry_after: SimDuration,
        /// Permits available at this instant (fewer than asked).
        remaining: u32,
    },
}

impl Decision {
    /// Whether the request was accepted (now or after a delay).
    pub fn is_allowed(self) -> bool {
        !matches!(self, Decision::Denied { .. })
    }

    /// The rejection to report for a denial: [`Rejection::RateLimited`].
    pub fn rejection(self) -> Option<Rejection> {
        match self {
            Decision::Denied { .. } => Some(Rejection::RateLimited),
            _ => None,
        }
    }

    /// The permits still available at the decision's instant.
    pub fn remaining(self) -> u32 {
        match self {
            Decision::Allowed { remaining }
            | Decision::Delayed { remaining, .. }
            | Decision::Denied { remaining, .. } => remaining,
        }
    }
}

/// One rate limit (one key): a validated config and its state.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    config: RateLimiterConfig,
    algo: Algo,
    state: State,
}

impl RateLimiter {
    /// A limiter for `config`, or the first rule it breaks.
    pub fn new(config: RateLimiterConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let algo = Algo::from_config(&config);
        let state = algo.fresh();
        Ok(RateLimiter { config, algo, state })
    }

    /// The config this limiter runs.
    pub fn config(&self) -> &RateLimiterConfig {
        &self.config
    }

    /// Asks for `permits` at `now` and takes them if allowed. Denials change
    /// nothing, so a denied caller may ask again at `now + retry_after`.
    ///
    /// `now` must not decrease from one call to the next (a simulated or a
    /// monotonic clock never does); the window algorithms would otherwise
    /// start a fresh window.
    #[inline]
    pub fn try_acquire(&mut self, now: SimTime, permits: u32) -> Decision {
        self.algo.acquire(&mut self.state, now, permits)
    }

    /// Returns `permits` taken from a `concurrency` limiter when the call
    /// ends; a no-op for rate algorithms.
    pub fn release(&mut self, permits: u32) {
        self.algo.release(&mut self.state, permits);
    }

    /// Whether this limiter is in its initial state as far as any future
    /// decision at or after `now` can tell.
    pub fn is_idle(&self, now: SimTime) -> bool {
        self.algo.is_idle(&self.state, now)
    }

    /// Panics if the state breaks an invariant (tests call it; debug builds
    /// call it after every transition).
    pub fn check_invariants(&self) {
        self.algo.check_invariants(&self.state);
    }
}
