//! The policy pipeline: every pattern composed around one call to a
//! dependency, still as a pure state machine.
//!
//! The order is fixed and follows common practice (resilience4j's decorator
//! order, Polly's recommended wrap):
//!
//! ```text
//! fallback( rate limiter -> total timeout -> retry( budget -> breaker -> bulkhead -> attempt timeout ) )
//! ```
//!
//! - the **rate limiter** admits the call once, before anything else;
//! - the **total timeout** (and a propagated deadline) bounds the call across
//!   all its attempts;
//! - the **retry** loop decides after each attempt. A retry **budget** (gRPC
//!   throttling, the ratio budget) is asked when a retry is decided, before
//!   its backoff, and its refusal ends the call at once with the failure
//!   being retried (gRPC and Finagle return the last answer); adaptive
//!   throttling is asked before every attempt, and its refusal ends the
//!   call with a local rejection;
//! - each attempt asks the **breaker**, then the **bulkhead** (waiting in its
//!   queue, if it has one, for at most `max_wait` and the call's deadline),
//!   and runs under the **attempt timeout** (and the connect / read phases),
//!   which starts when the attempt goes out;
//! - the **fallback** turns a final failure into a degraded answer, recorded
//!   with its reason.
//!
//! A caller (the simulator's models, or a real client) drives it in steps:
//! [`Policy::start_call`] gives the first [`Step`]; after a
//! [`Step::Send`] it reports the attempt's outcome with
//! [`Policy::on_outcome`]; after a [`Step::Wait`] it calls
//! [`Policy::resume`]; a [`Step::Finish`] ends the call.
//!
//! # The seed combination
//!
//! timeout (connect 2 s, read 5 s) + retry (3 attempts, exponential backoff
//! 1 s .. 10 s, only on timeouts and network errors) + breaker (5 consecutive
//! failures, 60 s recovery) + a semaphore bulkhead of 10 + fallback
//! `{"name": "Unknown"}`, the same as [`PolicyConfig::seed_combination`]:
//!
//! ```
//! use stormglass_core::rng::SimRng;
//! use stormglass_core::time::{SimDuration, SimTime};
//! use stormglass_patterns::pipeline::{Finish, Policy, PolicyConfig, Request, Step};
//! use stormglass_patterns::breaker::BreakerState;
//! use stormglass_patterns::AttemptOutcome;
//!
//! let config: PolicyConfig = ron::from_str(r#"(
//!     timeout: Some((connect: Some("2s"), read: Some("5s"), pool: None, write: None)),
//!     retry: Some((
//!         backoff: exponential(multiplier: "1s", base: 2.0, min: "1s", max: "10s"),
//!         stop: (attempts_max: Some(3)),
//!         retry_on: (server_errors: false, statuses: []),
//!     )),
//!     breaker: Some((kind: consecutive((failure_threshold: 5, recovery_timeout: "60s")))),
//!     bulkhead: Some((isolation: "semaphore", max_concurrent: 10)),
//!     fallback: (kind: "static", value: "{\"name\": \"Unknown\"}"),
//! )"#).unwrap();
//! assert_eq!(config, PolicyConfig::seed_combination());
//! let mut policy = Policy::new(config).unwrap();
//! let mut rng = SimRng::from_seed_u64(7);
//! let mut now = SimTime::ZERO;
//!
//! // The user service hangs: every attempt times out.
//! let (mut call, mut step) = policy.start_call(now, Request::idempotent(42), &mut rng);
//! let finish = loop {
//!     step = match step {
//!         Step::Send(attempt) => {
//!             now = attempt.timeout_at(now); // nothing answers before the read timeout
//!             policy.on_outcome(now, &mut call, AttemptOutcome::Timeout, None, &mut rng)
//!         }
//!         Step::Wait { until } => {
//!             now = until; // backoff: 1 s, then 2 s
//!             policy.resume(now, &mut call, &mut rng)
//!         }
//!         Step::Finish(finish) => break finish,
//!     };
//! };
//! assert_eq!(now, SimTime::from_secs(5 + 1 + 5 + 2 + 5));
//! match finish {
//!     Finish::Fallback { value, attempts, .. } => {
//!         assert_eq!(value.as_deref(), Some(r#"{"name": "Unknown"}"#));
//!         assert_eq!(attempts, 3);
//!     }
//!     other => panic!("expected the fallback, got {other:?}"),
//! }
//! assert_eq!(policy.breaker_state(), Some(BreakerState::Closed)); // 3 failures of 5
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stormglass_core::time::{SimDuration, SimTime};

use crate::breaker::{self, Breaker, BreakerConfig, BreakerKind, BreakerState, Transition};
use crate::budget::{BudgetConfig, RetryBudget};
use crate::bulkhead::{self, Bulkhead, BulkheadConfig};
use crate::error::ConfigError;
use crate::fallback::{Fallback, FallbackConfig, FallbackReason, FallbackRecord, Served};
use crate::limiter::{Decision, RateLimiter, RateLimiterConfig};
use crate::outcome::{AttemptOutcome, Rejection};
use crate::retry::{Idempotency, RetryConfig, RetryDecision, RetryPolicy, RetryState, StopConfig};
use crate::timeout::{CallTimer, Deadline, TimeoutConfig};

/// Every pattern of one caller -> dependency edge, as configuration. Each
/// part is optional; an empty config passes calls straight through with one
/// attempt and no timeout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Admits each call once, first of all.
    pub rate_limit: Option<RateLimiterConfig>,
    /// Phase, attempt and total timeouts; `None` waits forever.
    pub timeout: Option<TimeoutConfig>,
    /// Retries; `None` makes exactly one attempt.
    pub retry: Option<RetryConfig>,
    /// A retry budget (token bucket, ratio), told of each first attempt and
    /// asked for a retry when the retry is decided, before its backoff; or
    /// adaptive throttling, asked before every attempt.
    pub budget: Option<BudgetConfig>,
    /// A circuit breaker around each attempt.
    pub breaker: Option<BreakerConfig>,
    /// A bulkhead around each attempt. With a wait queue, an attempt that
    /// finds every slot taken waits for one ([`Step::Wait`], resumed early
    /// when [`Policy::pop_promoted`] names it); without one it is rejected
    /// at once.
    pub bulkhead: Option<BulkheadConfig>,
    /// What a call that finally fails serves instead.
    pub fallback: FallbackConfig,
}

impl PolicyConfig {
    /// Bytes a policy built from this config allocates up front beyond its
    /// own size: the breaker's window, the bulkhead's wait queue, a sliding
    /// log's timestamps. Each is bounded alone; a caller that builds many
    /// policies (a population of clients) bounds their sum with this.
    /// (Caches and budgets grow with use, within their own bounds.)
    ///
    /// ```
    /// use stormglass_patterns::breaker::{BreakerConfig, BreakerKind, HystrixConfig};
    /// use stormglass_patterns::pipeline::PolicyConfig;
    ///
    /// let breaker = BreakerConfig {
    ///     kind: BreakerKind::Hystrix(HystrixConfig { buckets: 1_000_000, ..Default::default() }),
    ///     ..Default::default()
    /// };
    /// let config = PolicyConfig { breaker: Some(breaker), ..Default::default() };
    /// assert!(config.preallocated_bytes() >= 1_000_000 * 24);
    /// assert_eq!(PolicyConfig::default().preallocated_bytes(), 0);
    /// ```
    pub fn preallocated_bytes(&self) -> u64 {
        self.breaker.as_ref().map_or(0, BreakerConfig::window_bytes)
            + self.bulkhead.as_ref().map_or(0, BulkheadConfig::queue_bytes)
            + self.rate_limit.as_ref().map_or(0, RateLimiterConfig::state_bytes)
    }

    /// The seed combination, the protected policy on the order -> user edge of the
    /// seed cascade: timeout (connect 2 s, read 5 s), retry (3 attempts,
    /// exponential backoff 1 s .. 10 s, only on timeouts and network
    /// errors), breaker (5 consecutive failures, 60 s recovery), a semaphore
    /// bulkhead of 10, and the fallback `{"name": "Unknown"}`.
    ///
    /// ```
    /// use stormglass_patterns::pipeline::PolicyConfig;
    ///
    /// let seed = PolicyConfig::seed_combination();
    /// assert!(seed.validate().is_ok());
    /// assert_eq!(seed.retry.unwrap().stop.attempts_max, Some(3));
    /// ```
    pub fn seed_combination() -> PolicyConfig {
        let secs = SimDuration::from_secs;
        PolicyConfig {
            timeout: Some(TimeoutConfig {
                pool: None,
                connect: Some(secs(2)),
                write: None,
                read: Some(secs(5)),
                attempt: None,
                total: None,
            }),
            retry: Some(RetryConfig {
                backoff: crate::retry::Backoff::Exponential {
                    multiplier: secs(1),
                    base: 2.0,
                    min: secs(1),
                    max: secs(10),
                },
                stop: StopConfig { attempts_max: Some(3), ..StopConfig::default() },
                retry_on: crate::retry::RetryOn { server_errors: false, statuses: vec![], ..Default::default() },
            }),
            breaker: Some(BreakerConfig::consecutive(5, secs(60))),
            bulkhead: Some(BulkheadConfig::Semaphore(bulkhead::SemaphoreConfig {
                max_concurrent: 10,
                queue_capacity: 0,
                max_wait: SimDuration::ZERO,
            })),
            fallback: FallbackConfig::Static { value: r#"{"name": "Unknown"}"#.into() },
            ..PolicyConfig::default()
        }
    }

    /// Checks every part and the combination; the error names the field.
    ///
    /// ```
    /// use stormglass_patterns::pipeline::PolicyConfig;
    ///
    /// let bad: PolicyConfig = ron::from_str(r#"(timeout: Some((attempt: Some("10s"), total: Some("5s"))))"#).unwrap();
    /// assert_eq!(bad.validate().unwrap_err().to_string(), "timeout.attempt: must not exceed total");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(limit) = &self.rate_limit {
            limit.validate().map_err(|e| e.within("rate_limit"))?;
        }
        if let Some(timeout) = &self.timeout {
            timeout.validate().map_err(|e| e.within("timeout"))?;
        }
        if let Some(retry) = &self.retry {
            retry.validate().map_err(|e| e.within("retry"))?;
        }
        if let Some(budget) = &self.budget {
            budget.validate().map_err(|e| e.within("budget"))?;
        }
        if let Some(breaker) = &self.breaker {
            breaker.validate().map_err(|e| e.within("breaker"))?;
        }
        if let Some(bulkhead) = &self.bulkhead {
            bulkhead.validate().map_err(|e| e.within("bulkhead"))?;
        }
        self.fallback.validate().map_err(|e| e.within("fallback"))
    }

    /// Combinations that are legal but probably not what was meant.
    ///
    /// ```
    /// use stormglass_patterns::pipeline::PolicyConfig;
    ///
    /// let config: PolicyConfig = ron::from_str(r#"(
    ///     timeout: Some((attempt: Some("8s"))),
    ///     breaker: Some((kind: hystrix((buckets: 10, bucket_width: "1s")))),
    /// )"#).unwrap();
    /// assert_eq!(config.warnings().len(), 1);
    /// assert!(config.warnings()[0].starts_with("breaker.kind.hystrix: rolling window 10s"));
    /// ```
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let (Some(attempt), Some(BreakerConfig { kind: BreakerKind::Hystrix(h), .. })) =
            (self.attempt_timeout(), &self.breaker)
        {
            let window = h.bucket_width.saturating_mul(u64::from(h.buckets));
            if window < attempt.saturating_mul(2) {
                warnings.push(format!(
                    "breaker.kind.hystrix: rolling window {window} is shorter than twice the attempt timeout \
                     {attempt}, so timed-out calls leave the window before they can add up"
                ));
            }
        }
        warnings
    }

    /// The longest a single attempt can last under the timeouts, if bounded.
    pub fn attempt_timeout(&self) -> Option<SimDuration> {
        let timeout = self.timeout.as_ref()?;
        let phases = match (timeout.connect, timeout.read) {
            (Some(connect), Some(read)) => Some(connect + read),
            _ => None,
        };
        [timeout.attempt, timeout.total, phases].into_iter().flatten().min()
    }
}

/// What the caller knows about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The key the fallback cache answers for (a user id, say).
    pub key: u64,
    /// Whether the call may be sent twice.
    pub idempotency: Idempotency,
    /// A deadline propagated from upstream, if any.
    pub deadline: Option<Deadline>,
}

impl Request {
    /// An idempotent request (a GET) for `key`, with no upstream deadline.
    pub fn idempotent(key: u64) -> Self {
        Request { key, idempotency: Idempotency::Idempotent, deadline: None }
    }
}

/// One attempt to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The attempt and total timeouts (and a propagated deadline) end it here.
    pub deadline: SimTime,
    /// Longest wait for the connection, if bounded.
    pub connect_timeout: Option<SimDuration>,
    /// Longest wait for the answer once connected, if bounded.
    pub read_timeout: Option<SimDuration>,
}

impl Attempt {
    /// When this attempt times out if the callee accepts at once and never
    /// answers (the hang case): the earlier of the deadline and the read
    /// timeout after connecting at `connected_at`.
    pub fn timeout_at(&self, connected_at: SimTime) -> SimTime {
        match self.read_timeout {
            Some(read) => self.deadline.min(connected_at + read),
            None => self.deadline,
        }
    }

    /// When this attempt times out if the connection is never accepted (a
    /// partition): the earlier of the deadline and the connect timeout.
    pub fn connect_timeout_at(&self, now: SimTime) -> SimTime {
        match self.connect_timeout {
            Some(connect) => self.deadline.min(now + connect),
            None => self.deadline,
        }
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send an attempt now, then report its outcome with [`Policy::on_outcome`].
    Send(Attempt),
    /// Wait (backoff, or a leaky-bucket delay), then call [`Policy::resume`].
    Wait {
        /// Until when.
        until: SimTime,
    },
    /// The call is over.
    Finish(Finish),
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// An attempt succeeded.
    Success {
        /// Attempts sent.
        attempts: u32,
    },
    /// Every attempt failed and there is no fallback (or a 4xx, which a
    /// fallback would hide rather than help).
    Failed {
        /// The last attempt's outcome.
        outcome: AttemptOutcome,
        /// Attempts sent.
        attempts: u32,
    },
    /// The call failed and a fallback answered.
    Fallback {
        /// Why, what was served, and how old it was.
        record: FallbackRecord,
        /// The value served; `None` for an alternate dependency. Shared, not
        /// copied: serving the static value allocates nothing (a cached
        /// value is copied out of the cache once).
        value: Option<Arc<str>>,
        /// The alternate dependency to call instead, if that is the fallback.
        alternate: Option<Arc<str>>,
        /// The last attempt's outcome.
        outcome: AttemptOutcome,
        /// Attempts sent.
        attempts: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallPhase {
    /// Waiting on a leaky-bucket delay before the first attempt.
    RateDelayed,
    /// An attempt is out.
    InAttempt,
    /// Waiting between attempts.
    BackingOff,
    /// Waiting in the bulkhead's queue for a slot.
    Queued(bulkhead::WaiterId),
    /// Finished.
    Done,
}

/// The per-call state; the caller keeps it between steps.
#[derive(Debug)]
pub struct Call {
    /// The request's key (for the fallback's cache). The rest of the
    /// request is read once, when the call starts: its idempotency goes to
    /// the retry state and its deadline to the timer, so a call in flight
    /// does not carry them a second time.
    key: u64,
    phase: CallPhase,
    retry: RetryState,
    timer: CallTimer,
    /// Attempts actually sent (local rejections are not attempts).
    attempts_sent: u32,
    attempt_started: SimTime,
    breaker_permit: Option<breaker::Permit>,
    bulkhead_permit: Option<bulkhead::Permit>,
    /// Holds a concurrency-limiter permit until the call ends.
    holds_rate_permit: bool,
}

impl Call {
    /// Attempts sent so far.
    pub fn attempts_sent(&self) -> u32 {
        self.attempts_sent
    }
    /// The key of the request this call serves.
    pub fn key(&self) -> u64 {
        self.key
    }
    /// Whether the call has finished.
    pub fn is_finished(&self) -> bool {
        self.phase == CallPhase::Done
    }
    /// The bulkhead waiter this call is, while it waits in the bulkhead's
    /// queue (its last step was a [`Step::Wait`] for a slot): the caller
    /// resumes it early when [`Policy::pop_promoted`] names it.
    pub fn queued_as(&self) -> Option<bulkhead::WaiterId> {
        match self.phase {
            CallPhase::Queued(waiter) => Some(waiter),
            _ => None,
        }
    }
}

/// Counters for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStats {
    /// Calls started.
    pub calls: u64,
    /// Attempts sent to the dependency.
    pub attempts: u64,
    /// Attempts after the first of their call.
    pub retries: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed with no fallback.
    pub failures: u64,
    /// Calls answered by a fallback.
    pub fallbacks: u64,
    /// Attempts refused by the breaker.
    pub rejected_circuit_open: u64,
    /// Attempts refused by the bulkhead.
    pub rejected_bulkhead_full: u64,
    /// Calls refused by the rate limiter.
    pub rejected_rate_limited: u64,
    /// Attempts refused by the retry budget.
    pub throttled: u64,
    /// Attempts not started because the deadline had passed.
    pub deadline_exceeded: u64,
    /// Calls given up without a result because their caller was gone
    /// ([`Policy::abandon_call`]).
    #[serde(default)]
    pub abandoned: u64,
}

/// What a policy counted between two readings of its counters (the later
/// one first), for a caller that books them by period.
impl std::ops::Sub for PolicyStats {
    type Output = PolicyStats;
    fn sub(self, earlier: Self) -> PolicyStats {
        PolicyStats {
            calls: self.calls - earlier.calls,
            attempts: self.attempts - earlier.attempts,
            retries: self.retries - earlier.retries,
            successes: self.successes - earlier.successes,
            failures: self.failures - earlier.failures,
            fallbacks: self.fallbacks - earlier.fallbacks,
            rejected_circuit_open: self.rejected_circuit_open - earlier.rejected_circuit_open,
            rejected_bulkhead_full: self.rejected_bulkhead_full - earlier.rejected_bulkhead_full,
            rejected_rate_limited: self.rejected_rate_limited - earlier.rejected_rate_limited,
            throttled: self.throttled - earlier.throttled,
            deadline_exceeded: self.deadline_exceeded - earlier.deadline_exceeded,
            abandoned: self.abandoned - earlier.abandoned,
        }
    }
}

/// Sums counters, for an edge that many policies share (a client's members).
impl std::ops::AddAssign for PolicyStats {
    fn add_assign(&mut self, other: Self) {
        self.calls += other.calls;
        self.attempts += other.attempts;
        self.retries += other.retries;
        self.successes += other.successes;
        self.failures += other.failures;
        self.fallbacks += other.fallbacks;
        self.rejected_circuit_open += other.rejected_circuit_open;
        self.rejected_bulkhead_full += other.rejected_bulkhead_full;
        self.rejected_rate_limited += other.rejected_rate_limited;
        self.throttled += other.throttled;
        self.deadline_exceeded += other.deadline_exceeded;
        self.abandoned += other.abandoned;
    }
}

/// The composed patterns of one edge, with their state.
pub struct Policy {
    config: PolicyConfig,
    limiter: Option<RateLimiter>,
    retry: RetryPolicy,
    budget: Option<RetryBudget>,
    breaker: Option<Breaker>,
    bulkhead: Option<Bulkhead>,
    fallback: Fallback<u64, String>,
    /// The fallback's static value (`static`, or `last_good`'s `otherwise`)
    /// and alternate dependency, shared so a fallback allocates nothing.
    static_value: Option<Arc<str>>,
    alternate: Option<Arc<str>>,
    /// The config's `timeout`, or none at all.
    timeout: TimeoutConfig,
    stats: PolicyStats,
    /// Slots handed to queued calls by a call leaving the bulkhead, until
    /// the queued call is resumed and takes its slot.
    promoted: Vec<(bulkhead::WaiterId, bulkhead::Permit)>,
    /// Of those, the ones the caller has not been told about yet.
    promoted_unreported: VecDeque<bulkhead::WaiterId>,
    /// No limiter, budget, breaker or bulkhead, and no retry: a call makes
    /// one attempt, and its success ends it with nothing to give back (see
    /// [`on_outcome`](Self::on_outcome)).
    single_attempt: bool,
}

/// No timeout of any kind: what `timeout: None` means.
const NO_TIMEOUTS: TimeoutConfig =
    TimeoutConfig { pool: None, connect: None, write: None, read: None, attempt: None, total: None };

impl Policy {
    /// A policy with fresh state, or the first rule the config breaks.
    pub fn new(config: PolicyConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let retry_config = config.retry.clone().unwrap_or(RetryConfig {
            stop: StopConfig { attempts_max: Some(1), ..StopConfig::default() },
            ..RetryConfig::default()
        });
        let single_attempt = config.rate_limit.is_none()
            && config.budget.is_none()
            && config.breaker.is_none()
            && config.bulkhead.is_none()
            && config.retry.is_none();
        Ok(Policy {
            limiter: config.rate_limit.clone().map(RateLimiter::new).transpose()?,
            retry: RetryPolicy::new(retry_config)?,
            budget: config.budget.clone().map(RetryBudget::new).transpose()?,
            breaker: config.breaker.clone().map(Breaker::new).transpose()?,
            bulkhead: config.bulkhead.clone().map(Bulkhead::new).transpose()?,
            fallback: Fallback::new(config.fallback.clone())?,
            static_value: match &config.fallback {
                FallbackConfig::Static { value } | FallbackConfig::LastGood { otherwise: Some(value), .. } => {
                    Some(Arc::from(value.as_str()))
                }
                _ => None,
            },
            alternate: match &config.fallback {
                FallbackConfig::Alternate { dependency } => Some(Arc::from(dependency.as_str())),
                _ => None,
            },
            timeout: config.timeout.clone().unwrap_or(NO_TIMEOUTS),
            stats: PolicyStats::default(),
            promoted: Vec::new(),
            promoted_unreported: VecDeque::new(),
            single_attempt,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> PolicyStats {
        self.stats
    }

    /// The breaker's state at `now`, if there is a breaker (an open breaker
    /// whose wait ended reads as half-open, as the next call would find it).
    pub fn breaker_state_at(&mut self, now: SimTime) -> Option<BreakerState> {
        let breaker = self.breaker.as_mut()?;
        breaker.poll(now);
        Some(breaker.state())
    }

    /// The breaker's state as of its last call, if there is a breaker.
    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(Breaker::state)
    }

    /// Whether a breaker transition waits to be taken: most steps make
    /// none, and callers look before draining.
    #[inline]
    pub fn has_transitions(&self) -> bool {
        self.breaker.as_ref().is_some_and(Breaker::has_transitions)
    }

    /// The oldest breaker transition not yet taken, for timelines.
    #[inline]
    pub fn pop_transition(&mut self) -> Option<Transition> {
        self.breaker.as_mut()?.pop_transition()
    }

    /// Remembers `value` as the good answer for `key` at `now`, for a
    /// `last_good` fallback to serve when a later call on the same key fails
    /// (a no-op for every other fallback). Call it after a
    /// [`Finish::Success`]: the pipeline sees outcomes, never answers, so
    /// only the caller knows what the dependency said.
    ///
    /// ```
    /// use stormglass_core::rng::SimRng;
    /// use stormglass_core::time::SimTime;
    /// use stormglass_patterns::fallback::{CacheConfig, FallbackConfig, ServedKind};
    /// use stormglass_patterns::pipeline::{Finish, Policy, PolicyConfig, Request, Step};
    /// use stormglass_patterns::AttemptOutcome;
    ///
    /// let config = PolicyConfig {
    ///     fallback: FallbackConfig::LastGood { cache: CacheConfig::default(), otherwise: None },
    ///     ..PolicyConfig::default()
    /// };
    /// let mut policy = Policy::new(config).unwrap();
    /// let mut rng = SimRng::from_seed_u64(1);
    /// let t = SimTime::from_secs(1);
    /// let (mut call, _) = policy.start_call(t, Request::idempotent(7), &mut rng);
    /// let step = policy.on_outcome(t, &mut call, AttemptOutcome::OK, None, &mut rng);
    /// assert_eq!(step, Step::Finish(Finish::Success { attempts: 1 }));
    /// policy.record_good_value(t, 7, r#"{"name": "Ada"}"#.to_string());
    ///
    /// let (mut call, _) = policy.start_call(t, Request::idempotent(7), &mut rng);
    /// let step = policy.on_outcome(t, &mut call, AttemptOutcome::Status(503), None, &mut rng);
    /// let Step::Finish(Finish::Fallback { value, record, .. }) = step else { panic!("{step:?}") };
    /// assert_eq!(value.as_deref(), Some(r#"{"name": "Ada"}"#));
    /// assert_eq!(record.served, ServedKind::CacheFresh);
    /// ```
    #[inline]
    pub fn record_good_value(&mut self, now: SimTime, key: u64, value: String) {
        self.fallback.record_success(now, key, value);
    }

    /// Fallbacks served so far, by reason and by what was served.
    pub fn fallback_stats(&self) -> crate::fallback::FallbackStats {
        self.fallback.stats()
    }

    /// Slots of the bulkhead in use, if there is one.
    pub fn bulkhead_in_use(&self) -> Option<u32> {
        self.bulkhead.as_ref().map(Bulkhead::in_use)
    }

    /// The bulkhead's counters (entered at once, queued, promoted, rejected,
    /// expired waiting, cancelled), if there is one.
    pub fn bulkhead_stats(&self) -> Option<bulkhead::BulkheadStats> {
        self.bulkhead.as_ref().map(Bulkhead::stats)
    }

    /// Starts a call at `now`: the first step.
    pub fn start_call<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        request: Request,
        rng: &mut R,
    ) -> (Call, Step) {
        let mut call = self.new_call(now, request);
        let step = self.begin_call(now, &mut call, rng);
        (call, step)
    }

    /// A call at `now` that has not taken its first step yet:
    /// [`begin_call`](Self::begin_call) takes it. [`start_call`](Self::start_call)
    /// does both; the two halves let a caller put the call (well over a hundred
    /// bytes) where it will live before the first step, instead of moving
    /// it there afterwards.
    pub fn new_call(&self, now: SimTime, request: Request) -> Call {
        let timer = CallTimer::start(&self.timeout, now, request.deadline);
        let deadline = Some(timer.call_deadline().0).filter(|&d| d != SimTime::MAX);
        Call {
            key: request.key,
            phase: CallPhase::InAttempt,
            retry: self.retry.start(now, request.idempotency, deadline),
            timer,
            attempts_sent: 0,
            attempt_started: now,
            breaker_permit: None,
            bulkhead_permit: None,
            holds_rate_permit: false,
        }
    }

    /// The first step of a call from [`new_call`](Self::new_call), at the
    /// same `now`.
    pub fn begin_call<R: rand_core::Rng + ?Sized>(&mut self, now: SimTime, call: &mut Call, rng: &mut R) -> Step {
        debug_assert!(call.attempts_sent == 0 && call.phase == CallPhase::InAttempt, "begin_call on a begun call");
        self.stats.calls += 1;
        if self.single_attempt {
            // No pattern to ask before the one attempt, only its timeouts:
            // `next_attempt` without the limiter, budget, breaker and
            // bulkhead (`new_call` has set the phase and start already).
            return match call.timer.start_attempt(now) {
                Ok(deadline) => self.send(call, deadline),
                Err(rejection) => {
                    self.stats.deadline_exceeded += 1;
                    self.finish_failed(now, call, AttemptOutcome::Rejected(rejection))
                }
            };
        }
        match self.limiter.as_mut().map(|l| l.try_acquire(now, 1)) {
            None | Some(Decision::Allowed { .. }) => {
                call.holds_rate_permit = self.limiter.is_some();
                self.next_attempt(now, call, rng)
            }
            Some(Decision::Delayed { delay, .. }) => {
                call.holds_rate_permit = true;
                let until = now + delay;
                if until >= call.timer.call_deadline().0 {
                    // The total timeout would end the call before the
                    // limiter lets it go, so it fails now rather than after
                    // waiting for nothing. Its place in the limiter's
                    // schedule stays taken, as a request that gave up in
                    // nginx's queue keeps it.
                    self.stats.deadline_exceeded += 1;
                    return self.finish_failed(now, call, AttemptOutcome::Rejected(Rejection::DeadlineExceeded));
                }
                call.phase = CallPhase::RateDelayed;
                Step::Wait { until }
            }
            Some(Decision::Denied { .. }) => {
                self.stats.rejected_rate_limited += 1;
                self.finish_failed(now, call, AttemptOutcome::Rejected(Rejection::RateLimited))
            }
        }
    }

    /// Continues a call after a [`Step::Wait`]: at its `until`, or earlier
    /// for a call waiting in the bulkhead's queue once [`pop_promoted`]
    /// names it (at `until` it has waited too long and is rejected).
    ///
    /// [`pop_promoted`]: Self::pop_promoted
    pub fn resume<R: rand_core::Rng + ?Sized>(&mut self, now: SimTime, call: &mut Call, rng: &mut R) -> Step {
        if let CallPhase::Queued(waiter) = call.phase {
            return self.resume_queued(now, call, waiter, rng);
        }
        debug_assert!(matches!(call.phase, CallPhase::RateDelayed | CallPhase::BackingOff), "resume without a wait");
        self.next_attempt(now, call, rng)
    }

    /// The next queued call that a call leaving the bulkhead gave its slot
    /// to: the caller resumes it now, with [`resume`](Self::resume). Call
    /// until `None` after every step that can end an attempt.
    pub fn pop_promoted(&mut self) -> Option<bulkhead::WaiterId> {
        self.promoted_unreported.pop_front()
    }

    /// Whether calls can wait in this policy's bulkhead (its queue is not
    /// zero), so that the caller has promotions to look for.
    pub fn queues_calls(&self) -> bool {
        self.bulkhead.as_ref().is_some_and(|b| b.config().queue_capacity() > 0)
    }

    /// Gives a bulkhead slot back; a queued call may take it. Waiters whose
    /// deadline is `now` have waited their `max_wait` out and leave the
    /// queue first, so the slot goes to one still in time (their own wake,
    /// at that same instant, rejects them).
    fn leave_bulkhead(&mut self, now: SimTime, permit: bulkhead::Permit) {
        let bulkhead = self.bulkhead.as_mut().expect("a permit comes from the bulkhead");
        while bulkhead.expire(now).is_some() {}
        if let Some(promoted) = bulkhead.exit(now, permit) {
            self.promoted.push((promoted.waiter, promoted.permit));
            self.promoted_unreported.push_back(promoted.waiter);
        }
    }

    /// A queued call resumed: with its slot if it was promoted, else it
    /// waited past its deadline.
    fn resume_queued<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        call: &mut Call,
        waiter: bulkhead::WaiterId,
        rng: &mut R,
    ) -> Step {
        call.phase = CallPhase::InAttempt;
        call.attempt_started = now;
        if let Some(at) = self.promoted.iter().position(|(w, _)| *w == waiter) {
            let (_, permit) = self.promoted.swap_remove(at);
            call.bulkhead_permit = Some(permit);
            // The attempt's own timeouts start now, when it goes out; the
            // total timeout has been running all along.
            return match call.timer.start_attempt(now) {
                Ok(deadline) => self.send(call, deadline),
                Err(rejection) => {
                    let permit = call.bulkhead_permit.take().expect("just given");
                    self.leave_bulkhead(now, permit);
                    self.stats.deadline_exceeded += 1;
                    self.refuse_attempt(now, call, AttemptOutcome::Rejected(rejection), rng)
                }
            };
        }
        // Still waiting, or already expired by a slot freed at its deadline.
        let bulkhead = self.bulkhead.as_mut().expect("a queued call has a bulkhead");
        bulkhead.cancel(now, waiter);
        if now >= call.timer.call_deadline().0 {
            self.stats.deadline_exceeded += 1;
            return self.refuse_attempt(now, call, AttemptOutcome::Rejected(Rejection::DeadlineExceeded), rng);
        }
        self.stats.rejected_bulkhead_full += 1;
        self.refuse_attempt(now, call, AttemptOutcome::Rejected(Rejection::BulkheadFull), rng)
    }

    /// An attempt that holds a breaker permit but is not sent: the breaker
    /// hears why (its classifier decides whether that counts against the
    /// dependency), and the retry policy decides what follows.
    fn refuse_attempt<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        call: &mut Call,
        outcome: AttemptOutcome,
        rng: &mut R,
    ) -> Step {
        if let (Some(breaker), Some(permit)) = (self.breaker.as_mut(), call.breaker_permit.take()) {
            breaker.on_result(now, permit, outcome, SimDuration::ZERO, rng);
        }
        if outcome == AttemptOutcome::Rejected(Rejection::DeadlineExceeded) {
            // No time is left for another attempt.
            return self.finish_failed(now, call, outcome);
        }
        self.decide(now, call, outcome, None, rng)
    }

    /// Reports the outcome of the attempt in flight; the next step.
    ///
    /// `retry_after` is the callee's hint (a 429 or 503 may carry one).
    ///
    /// Inlined for the one case that needs none of the patterns: a success
    /// through a policy with a single attempt and nothing that holds a
    /// permit (three of the seed cascade's four edges) finishes here in a
    /// few instructions, where the patterns' path cost about 70.
    #[inline(always)]
    pub fn on_outcome<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        call: &mut Call,
        outcome: AttemptOutcome,
        retry_after: Option<SimDuration>,
        rng: &mut R,
    ) -> Step {
        if self.single_attempt && outcome.is_success() {
            debug_assert_eq!(call.phase, CallPhase::InAttempt, "an outcome for a call with no attempt out");
            debug_assert!(!call.holds_rate_permit && call.breaker_permit.is_none() && call.bulkhead_permit.is_none());
            // What `decide` does for a success, less the retry state's
            // count, which no one reads once the call is done, and the rate
            // permit, which such a policy never holds.
            return self.finish_succeeded(call);
        }
        self.on_outcome_through_patterns(now, call, outcome, retry_after, rng)
    }

    /// `on_outcome` through every pattern the policy has. Cold: marked
    /// likely, this call made the simulator's answer handler, which inlines
    /// the fast path above, keep more in registers for it and spill around
    /// every event (3 M instructions more in the seed cascade).
    #[cold]
    #[inline(never)]
    fn on_outcome_through_patterns<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        call: &mut Call,
        outcome: AttemptOutcome,
        retry_after: Option<SimDuration>,
        rng: &mut R,
    ) -> Step {
        debug_assert_eq!(call.phase, CallPhase::InAttempt, "an outcome for a call with no attempt out");
        let latency = now - call.attempt_started;
        if let Some(permit) = call.bulkhead_permit.take() {
            self.leave_bulkhead(now, permit);
        }
        if let (Some(breaker), Some(permit)) = (self.breaker.as_mut(), call.breaker_permit.take()) {
            breaker.on_result(now, permit, outcome, latency, rng);
        }
        if let Some(budget) = self.budget.as_mut() {
            budget.on_result(now, outcome, self.retry.config().retry_on.retryable(outcome));
        }
        self.decide(now, call, outcome, retry_after, rng)
    }

    /// Asks the retry policy what follows `outcome`. Always inlined, as
    /// `next_attempt` is: both end almost every step, and called, each
    /// returned its 72-byte `Step` through memory for the caller to copy
    /// (0.7% of the seed cascade's instructions apiece).
    #[inline(always)]
    fn decide<R: rand_core::Rng + ?Sized>(
        &mut self,
        now: SimTime,
        call: &mut Call,
        outcome: AttemptOutcome,
        retry_after: Option<SimDuration>,
        rng: &mut R,
    ) -> Step {
        match self.retry.on_attempt(&mut call.retry, now, outcome, retry_after, rng) {
            RetryDecision::Done => {
                self.release_rate_permit(call);
                self.finish_succeeded(call)
            }
            RetryDecision::Retry { delay } => {
                if call.attempts_sent > 0
                    && let Some(budget) = self.budget.as_mut()
                    && !budget.rejects_attempts()
                    && budget.try_acquire(now, true, rng).is_err()
                {
                    // As gRPC (which checks its throttle as it decides to
                    // retry) and Finagle (which withdraws from its budget
                    // before scheduling the retry): the retry is not sent
                    // and the call ends now with the failure it would have
                    // retried, instead of after a backoff for nothing.
                    self.stats.throttled += 1;
                    return self.finish_failed(now, call, outcome);
                }
                call.phase = CallPhase::BackingOff;
                Step::Wait { until: now + delay }
            }
            // The last attempt's outcome is what the caller saw, whatever
            // the reason for stopping.
            RetryDecision::GiveUp { .. } => self.finish_failed(now, call, outcome),
        }
    }

    /// Starts the next attempt, or settles a local rejection as its outcome.
    /// Always inlined: see `decide`.
    #[inline(always)]
    fn next_attempt<R: rand_core::Rng + ?Sized>(&mut self, now: SimTime, call: &mut Call, rng: &mut R) -> Step {
        call.phase = CallPhase::InAttempt;
        call.attempt_started = now;
        let is_retry = call.attempts_sent > 0;
        // A retry budget granted this retry when it was decided (see
        // `decide`); a first attempt, and every attempt under adaptive
        // throttling, asks now.
        if let Some(budget) = self.budget.as_mut()
            && (budget.rejects_attempts() || !is_retry)
            && let Err(rejection) = budget.try_acquire(now, is_retry, rng)
        {
            // A throttled attempt ends the call: retrying it would spend the
            // budget it was refused.
            self.stats.throttled += 1;
            return self.finish_failed(now, call, AttemptOutcome::Rejected(rejection));
        }
        let deadline = match call.timer.start_attempt(now) {
            Ok(deadline) => deadline,
            Err(rejection) => {
                self.stats.deadline_exceeded += 1;
                return self.finish_failed(now, call, AttemptOutcome::Rejected(rejection));
            }
        };
        if let Some(breaker) = self.breaker.as_mut() {
            match breaker.try_acquire(now) {
                Ok(permit) => call.breaker_permit = Some(permit),
                Err(rejected) => {
                    self.stats.rejected_circuit_open += 1;
                    let outcome = AttemptOutcome::Rejected(Rejection::CircuitOpen);
                    return self.decide(now, call, outcome, Some(rejected.retry_after), rng);
                }
            }
        }
        if let Some(bulkhead) = self.bulkhead.as_mut() {
            match bulkhead.try_enter(now) {
                bulkhead::Entry::Entered(permit) => call.bulkhead_permit = Some(permit),
                bulkhead::Entry::Queued { waiter, deadline, .. } => {
                    // Wait for a slot, at most until the bulkhead's max_wait
                    // or the call's own deadline, whichever comes first.
                    call.phase = CallPhase::Queued(waiter);
                    return Step::Wait { until: deadline.min(call.timer.call_deadline().0) };
                }
                bulkhead::Entry::Rejected(_) => {
                    self.stats.rejected_bulkhead_full += 1;
                    return self.refuse_attempt(now, call, AttemptOutcome::Rejected(Rejection::BulkheadFull), rng);
                }
            }
        }
        self.send(call, deadline)
    }

    /// Sends the attempt the call holds every permit for.
    fn send(&mut self, call: &mut Call, deadline: SimTime) -> Step {
        let is_retry = call.attempts_sent > 0;
        call.attempts_sent += 1;
        self.stats.attempts += 1;
        if is_retry {
            self.stats.retries += 1;
        }
        Step::Send(Attempt {
            number: call.attempts_sent,
            deadline,
            connect_timeout: self.timeout.connect,
            read_timeout: self.timeout.read,
        })
    }

    /// Ends a call whose attempt succeeded, its permits given back.
    ///
    /// The pipeline never sees the answer itself, so it stores nothing
    /// here: a last-good cache filled with placeholders would serve them as
    /// if the dependency had said so. The caller hands the answer over with
    /// `record_good_value`.
    #[inline(always)]
    fn finish_succeeded(&mut self, call: &mut Call) -> Step {
        call.phase = CallPhase::Done;
        self.stats.successes += 1;
        Step::Finish(Finish::Success { attempts: call.attempts_sent })
    }

    /// Ends a failed call: the fallback's answer, or the failure.
    fn finish_failed(&mut self, now: SimTime, call: &mut Call, outcome: AttemptOutcome) -> Step {
        self.release_rate_permit(call);
        call.phase = CallPhase::Done;
        let attempts = call.attempts_sent;
        let Some(reason) = FallbackReason::from_outcome(outcome) else {
            self.stats.failures += 1;
            return Step::Finish(Finish::Failed { outcome, attempts });
        };
        let (record, served) = self.fallback.serve(now, &call.key, reason);
        let finish = match served {
            Served::Fail => {
                self.stats.failures += 1;
                Finish::Failed { outcome, attempts }
            }
            Served::Static(_) => {
                Finish::Fallback { record, value: self.static_value.clone(), alternate: None, outcome, attempts }
            }
            Served::Cached { value, .. } => {
                Finish::Fallback { record, value: Some(Arc::from(value.as_str())), alternate: None, outcome, attempts }
            }
            Served::Alternate(_) => {
                Finish::Fallback { record, value: None, alternate: self.alternate.clone(), outcome, attempts }
            }
        };
        if matches!(finish, Finish::Fallback { .. }) {
            self.stats.fallbacks += 1;
        }
        Step::Finish(finish)
    }

    /// Ends `call` at `now` without a result, because whoever made it is
    /// gone (its process crashed or hung): it gives back what it holds (its
    /// bulkhead slot or place in the bulkhead's queue, its breaker permit,
    /// its concurrency-limiter permit) and counts as abandoned. The caller
    /// forgets the call and its pending events; a call already finished is
    /// left alone.
    pub fn abandon_call(&mut self, now: SimTime, call: &mut Call) {
        if call.phase == CallPhase::Done {
            return;
        }
        if let (CallPhase::Queued(waiter), Some(bulkhead)) = (call.phase, self.bulkhead.as_mut())
            && !bulkhead.cancel(now, waiter)
        {
            // Promoted but not resumed yet: the slot it was given goes on.
            if let Some(at) = self.promoted.iter().position(|(w, _)| *w == waiter) {
                let (_, permit) = self.promoted.swap_remove(at);
                self.promoted_unreported.retain(|w| *w != waiter);
                self.leave_bulkhead(now, permit);
            }
        }
        if let Some(permit) = call.bulkhead_permit.take() {
            self.leave_bulkhead(now, permit);
        }
        if let (Some(breaker), Some(permit)) = (self.breaker.as_mut(), call.breaker_permit.take()) {
            breaker.release(permit);
        }
        self.release_rate_permit(call);
        call.phase = CallPhase::Done;
        self.stats.abandoned += 1;
    }

    fn release_rate_permit(&mut self, call: &mut Call) {
        if call.holds_rate_permit {
            call.holds_rate_permit = false;
            if let Some(limiter) = self.limiter.as_mut() {
                limiter.release(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stormglass_core::rng::SimRng;

    fn secs(n: u64) -> SimDuration {
        SimDuration::from_secs(n)
    }

    /// The seed combination on order -> user, without the bulkhead.
    fn seed_config() -> PolicyConfig {
        PolicyConfig { bulkhead: None, ..PolicyConfig::seed_combination() }
    }

    /// Drives one call where every attempt ends with `outcome` after `after`.
    fn drive(policy: &mut Policy, now: &mut SimTime, outcome: AttemptOutcome, rng: &mut SimRng) -> Finish {
        let (mut call, mut step) = policy.start_call(*now, Request::idempotent(1), rng);
        loop {
            step = match step {
                Step::Send(attempt) => {
                    *now = if outcome == AttemptOutcome::Timeout { attempt.timeout_at(*now) } else { *now };
                    policy.on_outcome(*now, &mut call, outcome, None, rng)
                }
                Step::Wait { until } => {
                    *now = until;
                    policy.resume(*now, &mut call, rng)
                }
                Step::Finish(finish) => {
                    assert!(call.is_finished());
                    return finish;
                }
            }
        }
    }

    #[test]
    fn the_seed_pipeline_opens_after_five_timeouts_then_serves_the_fallback_at_once() {
        let mut policy = Policy::new(seed_config()).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let mut now = SimTime::ZERO;
        // Call 1: 3 timeouts (failures 1-3). Call 2: 2 timeouts open the breaker,
        // the third attempt is refused by it and the fallback answers.
        let first = drive(&mut policy, &mut now, AttemptOutcome::Timeout, &mut rng);
        assert!(
            matches!(first, Finish::Fallback { attempts: 3, record, .. } if record.reason == FallbackReason::Timeout)
        );
        let second = drive(&mut policy, &mut now, AttemptOutcome::Timeout, &mut rng);
        assert_eq!(policy.breaker_state(), Some(BreakerState::Open));
        assert!(
            matches!(second, Finish::Fallback { attempts: 2, record, .. } if record.reason == FallbackReason::BreakerOpen),
            "{second:?}"
        );
        // While open, a call costs no time and sends nothing.
        let before = now;
        let third = drive(&mut policy, &mut now, AttemptOutcome::OK, &mut rng);
        assert_eq!(now, before);
        assert!(matches!(third, Finish::Fallback { attempts: 0, .. }));
        let stats = policy.stats();
        assert_eq!((stats.calls, stats.attempts, stats.retries, stats.fallbacks), (3, 5, 3, 3));
        assert_eq!(stats.rejected_circuit_open, 2);
        // After the recovery timeout, one probe succeeds and closes it.
        now += secs(60);
        let fourth = drive(&mut policy, &mut now, AttemptOutcome::OK, &mut rng);
        assert_eq!(fourth, Finish::Success { attempts: 1 });
        assert_eq!(policy.breaker_state(), Some(BreakerState::Closed));
        let transitions: Vec<_> = std::iter::from_fn(|| policy.pop_transition()).map(|t| t.to).collect();
        assert_eq!(transitions, [BreakerState::Open, BreakerState::HalfOpen, BreakerState::Closed]);
    }

    #[test]
    fn static_and_alternate_fallbacks_share_one_value_instead_of_allocating() {
        let mut policy = Policy::new(seed_config()).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let mut now = SimTime::ZERO;
        let value = |finish: Finish| match finish {
            Finish::Fallback { value: Some(v), .. } => v,
            other => panic!("expected a static fallback, got {other:?}"),
        };
        let first = value(drive(&mut policy, &mut now, AttemptOutcome::ConnectionRefused, &mut rng));
        let second = value(drive(&mut policy, &mut now, AttemptOutcome::ConnectionRefused, &mut rng));
        assert_eq!(&*first, r#"{"name": "Unknown"}"#);
        assert!(Arc::ptr_eq(&first, &second), "each fallback copied the value");

        let alternate =
            PolicyConfig { fallback: FallbackConfig::Alternate { dependency: "mirror".into() }, ..seed_config() };
        let mut policy = Policy::new(alternate).unwrap();
        let names: Vec<Arc<str>> = (0..2)
            .map(|_| match drive(&mut policy, &mut now, AttemptOutcome::ConnectionRefused, &mut rng) {
                Finish::Fallback { value: None, alternate: Some(name), .. } => name,
                other => panic!("expected the alternate, got {other:?}"),
            })
            .collect();
        assert_eq!(&*names[0], "mirror");
        assert!(Arc::ptr_eq(&names[0], &names[1]));
    }

    #[test]
    fn a_4xx_is_neither_retried_nor_hidden_by_the_fallback() {
        let mut policy = Policy::new(seed_config()).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let mut now = SimTime::ZERO;
        let finish = drive(&mut policy, &mut now, AttemptOutcome::Status(404), &mut rng);
        assert_eq!(finish, Finish::Failed { outcome: AttemptOutcome::Status(404), attempts: 1 });
    }

    #[test]
    fn a_non_idempotent_call_without_a_key_is_sent_once() {
        let mut policy = Policy::new(seed_config()).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let request = Request { idempotency: Idempotency::NonIdempotent, ..Request::idempotent(1) };
        let (mut call, step) = policy.start_call(SimTime::ZERO, request, &mut rng);
        assert!(matches!(step, Step::Send(Attempt { number: 1, .. })));
        let step = policy.on_outcome(SimTime::from_secs(5), &mut call, AttemptOutcome::Timeout, None, &mut rng);
        assert!(matches!(step, Step::Finish(Finish::Fallback { attempts: 1, .. })), "{step:?}");
    }

    #[test]
    fn a_full_bulkhead_rejects_the_attempt_and_frees_on_outcome() {
        let config = PolicyConfig {
            bulkhead: Some(BulkheadConfig::Semaphore(crate::bulkhead::SemaphoreConfig {
                max_concurrent: 1,
                queue_capacity: 0,
                max_wait: SimDuration::ZERO,
            })),
            ..PolicyConfig::default()
        };
        let mut policy = Policy::new(config).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let (mut first, step) = policy.start_call(SimTime::ZERO, Request::idempotent(1), &mut rng);
        assert!(matches!(step, Step::Send(_)));
        let (_, step) = policy.start_call(SimTime::ZERO, Request::idempotent(2), &mut rng);
        assert_eq!(
            step,
            Step::Finish(Finish::Failed { outcome: AttemptOutcome::Rejected(Rejection::BulkheadFull), attempts: 0 })
        );
        assert_eq!(policy.bulkhead_in_use(), Some(1));
        let step = policy.on_outcome(SimTime::from_secs(1), &mut first, AttemptOutcome::OK, None, &mut rng);
        assert_eq!(step, Step::Finish(Finish::Success { attempts: 1 }));
        assert_eq!(policy.bulkhead_in_use(), Some(0));
    }

    #[test]
    fn a_last_good_fallback_serves_only_values_the_caller_recorded() {
        let config = PolicyConfig {
            fallback: FallbackConfig::LastGood {
                cache: crate::fallback::CacheConfig::default(),
                otherwise: Some("unknown".into()),
            },
            ..PolicyConfig::default()
        };
        let mut policy = Policy::new(config).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let mut now = SimTime::ZERO;
        // A success the caller did not hand over leaves nothing to serve:
        // the fallback is `otherwise`, never an empty placeholder.
        assert_eq!(drive(&mut policy, &mut now, AttemptOutcome::OK, &mut rng), Finish::Success { attempts: 1 });
        let Finish::Fallback { value, record, .. } =
            drive(&mut policy, &mut now, AttemptOutcome::Status(503), &mut rng)
        else {
            panic!("expected a fallback")
        };
        assert_eq!((value.as_deref(), record.served), (Some("unknown"), crate::fallback::ServedKind::Static));
        // Once recorded, the answer itself is served.
        policy.record_good_value(now, 1, "ada".into());
        let Finish::Fallback { value, record, .. } =
            drive(&mut policy, &mut now, AttemptOutcome::Status(503), &mut rng)
        else {
            panic!("expected a fallback")
        };
        assert_eq!((value.as_deref(), record.served), (Some("ada"), crate::fallback::ServedKind::CacheFresh));
    }

    #[test]
    fn a_policy_without_patterns_counts_what_the_patterns_path_counts() {
        let mut policy = Policy::new(PolicyConfig::default()).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let mut now = SimTime::ZERO;
        assert_eq!(drive(&mut policy, &mut now, AttemptOutcome::OK, &mut rng), Finish::Success { attempts: 1 });
        let failed = drive(&mut policy, &mut now, AttemptOutcome::Status(503), &mut rng);
        assert_eq!(failed, Finish::Failed { outcome: AttemptOutcome::Status(503), attempts: 1 });
        let stats = policy.stats();
        assert_eq!((stats.calls, stats.attempts, stats.retries), (2, 2, 0));
        assert_eq!((stats.successes, stats.failures, stats.fallbacks), (1, 1, 0));
    }

    #[test]
    fn no_timeout_means_the_attempt_never_times_out() {
        let mut policy = Policy::new(PolicyConfig::default()).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let (_, step) = policy.start_call(SimTime::ZERO, Request::idempotent(1), &mut rng);
        let Step::Send(attempt) = step else { panic!("{step:?}") };
        assert_eq!(attempt.timeout_at(SimTime::ZERO), SimTime::MAX);
    }

    #[test]
    fn a_retry_the_budget_refuses_ends_the_call_with_the_failure_it_retried() {
        // gRPC throttling with 4 tokens: retries stop once 2 or fewer are
        // left. A first 503 leaves 3 (the retry goes out), a second leaves 2
        // (the next retry is refused).
        let text = |fallback: &str| {
            format!(
                r#"(
                    retry: Some((backoff: fixed(delay: "100ms"), stop: (attempts_max: Some(4)))),
                    budget: Some(token_bucket((max_tokens: 4, token_ratio: 0.1))),
                    fallback: {fallback},
                )"#
            )
        };
        let mut rng = SimRng::from_seed_u64(1);
        let mut now = SimTime::ZERO;
        let config: PolicyConfig = ron::from_str(&text(r#"(kind: "static", value: "{}")"#)).unwrap();
        let mut policy = Policy::new(config).unwrap();
        let finish = drive(&mut policy, &mut now, AttemptOutcome::Status(503), &mut rng);
        let Finish::Fallback { record, outcome, attempts, .. } = finish else { panic!("{finish:?}") };
        assert_eq!((record.reason, outcome, attempts), (FallbackReason::Error, AttemptOutcome::Status(503), 2));
        assert_eq!(policy.stats().throttled, 1);
        // The refused retry ends the call when it is decided, after one
        // backoff (before the second attempt), not after a second one.
        assert_eq!(now, SimTime::ZERO + SimDuration::from_millis(100));

        let config: PolicyConfig = ron::from_str(&text("(kind: \"fail\")")).unwrap();
        let mut policy = Policy::new(config).unwrap();
        let finish = drive(&mut policy, &mut now, AttemptOutcome::ConnectionRefused, &mut rng);
        assert_eq!(finish, Finish::Failed { outcome: AttemptOutcome::ConnectionRefused, attempts: 2 });
    }

    #[test]
    fn grpc_throttling_counts_only_the_failures_the_policy_retries() {
        // 503s are not retried here, so they cost no token (gRPC records only
        // failures with a retryable status): after two of them the bucket is
        // still full, and a refused connection (3 -> 2 tokens, above 3 / 2)
        // is retried.
        let config: PolicyConfig = ron::from_str(
            r#"(
                retry: Some((
                    backoff: fixed(delay: "100ms"),
                    stop: (attempts_max: Some(2)),
                    retry_on: (server_errors: false, statuses: []),
                )),
                budget: Some(token_bucket((max_tokens: 3, token_ratio: 0.1))),
            )"#,
        )
        .unwrap();
        let mut policy = Policy::new(config).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let mut now = SimTime::ZERO;
        for _ in 0..2 {
            let finish = drive(&mut policy, &mut now, AttemptOutcome::Status(503), &mut rng);
            assert_eq!(finish, Finish::Failed { outcome: AttemptOutcome::Status(503), attempts: 1 });
        }
        let refused = AttemptOutcome::ConnectionRefused;
        let finish = drive(&mut policy, &mut now, refused, &mut rng);
        assert_eq!(finish, Finish::Failed { outcome: refused, attempts: 2 });
        assert_eq!(policy.stats().throttled, 0);
    }

    /// One slot and one place in the queue, waiting at most 1 s
    /// (resilience4j's `maxConcurrentCalls` and `maxWaitDuration`).
    fn one_slot_one_waiter() -> Policy {
        Policy::new(PolicyConfig {
            bulkhead: Some(BulkheadConfig::Semaphore(crate::bulkhead::SemaphoreConfig {
                max_concurrent: 1,
                queue_capacity: 1,
                max_wait: secs(1),
            })),
            ..PolicyConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn a_queued_call_goes_out_when_a_slot_frees() {
        let mut policy = one_slot_one_waiter();
        assert!(policy.queues_calls());
        let mut rng = SimRng::from_seed_u64(1);
        let t0 = SimTime::ZERO;
        let (mut first, step) = policy.start_call(t0, Request::idempotent(1), &mut rng);
        assert!(matches!(step, Step::Send(_)), "{step:?}");
        let (mut second, step) = policy.start_call(t0, Request::idempotent(2), &mut rng);
        assert_eq!(step, Step::Wait { until: t0 + secs(1) });
        let waiter = second.queued_as().expect("waiting for the slot");
        // The queue is full too: a third call is refused at once.
        let (_, step) = policy.start_call(t0, Request::idempotent(3), &mut rng);
        let bulkhead_full = AttemptOutcome::Rejected(Rejection::BulkheadFull);
        assert_eq!(step, Step::Finish(Finish::Failed { outcome: bulkhead_full, attempts: 0 }));
        assert_eq!(policy.pop_promoted(), None);
        // The first call's answer frees the slot: the second takes it.
        let t1 = t0 + SimDuration::from_millis(200);
        let step = policy.on_outcome(t1, &mut first, AttemptOutcome::OK, None, &mut rng);
        assert_eq!(step, Step::Finish(Finish::Success { attempts: 1 }));
        assert_eq!(policy.pop_promoted(), Some(waiter));
        assert_eq!(policy.pop_promoted(), None);
        let Step::Send(attempt) = policy.resume(t1, &mut second, &mut rng) else { panic!("the queued call goes out") };
        assert_eq!(attempt.number, 1);
        assert_eq!(second.queued_as(), None);
        let step = policy.on_outcome(t1 + secs(1), &mut second, AttemptOutcome::OK, None, &mut rng);
        assert_eq!(step, Step::Finish(Finish::Success { attempts: 1 }));
        assert_eq!((policy.stats().attempts, policy.stats().rejected_bulkhead_full), (2, 1));
        assert_eq!(policy.bulkhead_in_use(), Some(0));
    }

    #[test]
    fn an_abandoned_call_gives_back_its_slot_and_its_probe() {
        let mut policy = one_slot_one_waiter();
        let mut rng = SimRng::from_seed_u64(1);
        let t0 = SimTime::ZERO;
        let (mut first, _) = policy.start_call(t0, Request::idempotent(1), &mut rng);
        let (mut second, _) = policy.start_call(t0, Request::idempotent(2), &mut rng);
        let waiter = second.queued_as().expect("waiting");
        // The first call's owner is gone: its slot goes to the waiter...
        policy.abandon_call(t0, &mut first);
        assert!(first.is_finished());
        assert_eq!(policy.pop_promoted(), Some(waiter));
        // ...whose owner goes too before it resumes: the slot is free.
        policy.abandon_call(t0, &mut second);
        assert_eq!(policy.bulkhead_in_use(), Some(0));
        assert_eq!(policy.stats().abandoned, 2);
        // Abandoning a finished call changes nothing.
        policy.abandon_call(t0, &mut second);
        assert_eq!(policy.stats().abandoned, 2);

        // A half-open probe whose owner is gone gives its place back.
        let mut breaker = BreakerConfig::consecutive(1, secs(1));
        if let crate::breaker::BreakerKind::Consecutive(c) = &mut breaker.kind {
            c.half_open_calls_max = Some(1);
        }
        let mut policy = Policy::new(PolicyConfig { breaker: Some(breaker), ..PolicyConfig::default() }).unwrap();
        let (mut failing, _) = policy.start_call(t0, Request::idempotent(1), &mut rng);
        policy.on_outcome(t0, &mut failing, AttemptOutcome::Status(500), None, &mut rng);
        assert_eq!(policy.breaker_state(), Some(BreakerState::Open));
        let (mut probe, step) = policy.start_call(t0 + secs(1), Request::idempotent(2), &mut rng);
        assert!(matches!(step, Step::Send(_)), "the probe goes out");
        let (_, step) = policy.start_call(t0 + secs(1), Request::idempotent(3), &mut rng);
        assert!(!matches!(step, Step::Send(_)), "one probe at a time");
        policy.abandon_call(t0 + secs(1), &mut probe);
        let (_, step) = policy.start_call(t0 + secs(1), Request::idempotent(4), &mut rng);
        assert!(matches!(step, Step::Send(_)), "the probe's place is free again");
    }

    #[test]
    fn a_queued_call_that_waits_past_max_wait_is_rejected() {
        let mut policy = one_slot_one_waiter();
        let mut rng = SimRng::from_seed_u64(1);
        let t0 = SimTime::ZERO;
        let (_first, _) = policy.start_call(t0, Request::idempotent(1), &mut rng);
        let (mut second, step) = policy.start_call(t0, Request::idempotent(2), &mut rng);
        let Step::Wait { until } = step else { panic!("{step:?}") };
        let step = policy.resume(until, &mut second, &mut rng);
        let bulkhead_full = AttemptOutcome::Rejected(Rejection::BulkheadFull);
        assert_eq!(step, Step::Finish(Finish::Failed { outcome: bulkhead_full, attempts: 0 }));
        // Its place is free again: the next call may wait in it.
        let (third, _) = policy.start_call(until, Request::idempotent(3), &mut rng);
        assert!(third.queued_as().is_some());
    }

    #[test]
    fn a_slot_freed_at_a_waiters_deadline_goes_to_the_next_waiter() {
        let mut policy = Policy::new(PolicyConfig {
            bulkhead: Some(BulkheadConfig::Semaphore(crate::bulkhead::SemaphoreConfig {
                max_concurrent: 1,
                queue_capacity: 2,
                max_wait: secs(1),
            })),
            ..PolicyConfig::default()
        })
        .unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let t0 = SimTime::ZERO;
        let (mut first, _) = policy.start_call(t0, Request::idempotent(1), &mut rng);
        let (mut late, step) = policy.start_call(t0, Request::idempotent(2), &mut rng);
        assert_eq!(step, Step::Wait { until: t0 + secs(1) });
        let half = t0 + SimDuration::from_millis(500);
        let (mut in_time, _) = policy.start_call(half, Request::idempotent(3), &mut rng);
        let in_time_waiter = in_time.queued_as().expect("waiting");
        // The slot frees at the exact end of the first waiter's max_wait:
        // that waiter has waited it out, so the slot goes to the second.
        let deadline = t0 + secs(1);
        policy.on_outcome(deadline, &mut first, AttemptOutcome::OK, None, &mut rng);
        assert_eq!(policy.pop_promoted(), Some(in_time_waiter));
        assert_eq!(policy.pop_promoted(), None);
        assert!(matches!(policy.resume(deadline, &mut in_time, &mut rng), Step::Send(_)));
        // The first waiter's own wake, at the same instant, rejects it.
        let bulkhead_full = AttemptOutcome::Rejected(Rejection::BulkheadFull);
        let step = policy.resume(deadline, &mut late, &mut rng);
        assert_eq!(step, Step::Finish(Finish::Failed { outcome: bulkhead_full, attempts: 0 }));
        let stats = policy.bulkhead_stats().expect("a bulkhead");
        assert_eq!((stats.promoted, stats.expired, stats.cancelled), (1, 1, 0));
        assert_eq!(policy.bulkhead_in_use(), Some(1));
    }

    #[test]
    fn validation_names_the_field() {
        let mut config = seed_config();
        config.breaker = Some(BreakerConfig::consecutive(0, secs(1)));
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "breaker.kind.consecutive.failure_threshold: must be at least 1"
        );
        let config: Result<PolicyConfig, _> = ron::from_str("(retries: 3)");
        assert!(config.unwrap_err().to_string().contains("retries"));
    }

    #[test]
    fn a_rate_limiter_delay_past_the_total_timeout_ends_the_call_at_once() {
        use crate::limiter::Limit;
        let config = PolicyConfig {
            rate_limit: Some(RateLimiterConfig::LeakyQueue { rate: Limit::new(1, secs(10)), burst: 5, nodelay: false }),
            timeout: Some(TimeoutConfig { total: Some(secs(1)), ..TimeoutConfig::default() }),
            ..PolicyConfig::default()
        };
        let mut policy = Policy::new(config).unwrap();
        let mut rng = SimRng::from_seed_u64(1);
        let (_first, step) = policy.start_call(SimTime::ZERO, Request::idempotent(1), &mut rng);
        assert!(matches!(step, Step::Send(_)));
        // The second would wait 10 s for the limiter; its total timeout is 1 s.
        let (second, step) = policy.start_call(SimTime::ZERO, Request::idempotent(2), &mut rng);
        assert!(
            matches!(
                step,
                Step::Finish(Finish::Failed { outcome: AttemptOutcome::Rejected(Rejection::DeadlineExceeded), .. })
            ),
            "{step:?}"
        );
        assert!(second.is_finished());
        assert_eq!(policy.stats().deadline_exceeded, 1);
    }
}
