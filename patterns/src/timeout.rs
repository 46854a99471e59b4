//! Timeouts and deadlines: how long each phase of an attempt, each attempt,
//! and the whole call may take, and how the remaining budget travels from
//! hop to hop.
//!
//! [`TimeoutConfig`] has the phases httpx distinguishes (pool acquire,
//! connect, write, read) plus a per-attempt and a total (across retries)
//! limit. [`CallTimer`] applies it to one call: it turns the limits into
//! absolute deadlines, the earliest of which wins. [`Deadline`] is the budget
//! that travels with a call: each hop starts its own clock when the call
//! arrives and forwards what is left.
//!
//! ```
//! use stormglass_core::time::{SimDuration, SimTime};
//! use stormglass_patterns::timeout::Deadline;
//!
//! // The edge gives the call 30 s; the first hop spends 7 s.
//! let edge = Deadline::start(SimTime::ZERO, SimDuration::from_secs(30));
//! let forwarded = edge.remaining(SimTime::from_secs(7));
//! assert_eq!(forwarded, SimDuration::from_secs(23));
//! // The next hop receives 23 s and spends 4 s.
//! let hop = Deadline::start(SimTime::from_secs(7), forwarded);
//! assert_eq!(hop.remaining(SimTime::from_secs(11)), SimDuration::from_secs(19));
//! ```

use serde::{Deserialize, Serialize};
use stormglass_core::time::{SimDuration, SimTime};

use crate::error::{ConfigError, ensure};
use crate::outcome::Rejection;

/// A call's time limits. `None` means no limit of that kind.
///
/// Defaults (httpx's): `pool`, `connect`, `write` and `read` 5 s each;
/// `attempt` and `total` none. Validation refuses an `attempt` above
/// `total`, and zero durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    /// Waiting for a connection from the pool.
    pub pool: Option<SimDuration>,
    /// Establishing a connection.
    pub connect: Option<SimDuration>,
    /// Sending the request (httpx: between two chunks written).
    pub write: Option<SimDuration>,
    /// Waiting for the response (httpx: between two chunks read).
    pub read: Option<SimDuration>,
    /// One attempt, all phases included.
    pub attempt: Option<SimDuration>,
    /// The whole call, every attempt and backoff included.
    pub total: Option<SimDuration>,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        let five = Some(SimDuration::from_secs(5));
        TimeoutConfig { pool: five, connect: five, write: five, read: five, attempt: None, total: None }
    }
}

impl TimeoutConfig {
    /// Checks every rule; the error names the offending field.
    ///
    /// ```
    /// # use stormglass_core::time::SimDuration;
    /// # use stormglass_patterns::timeout::TimeoutConfig;
    /// let c = TimeoutConfig {
    ///     attempt: Some(SimDuration::from_secs(10)),
    ///     total: Some(SimDuration::from_secs(5)),
    ///     ..TimeoutConfig::default()
    /// };
    /// assert_eq!(c.validate().unwrap_err().to_string(), "attempt: must not exceed total");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("pool", self.pool),
            ("connect", self.connect),
            ("write", self.write),
            ("read", self.read),
            ("attempt", self.attempt),
            ("total", self.total),
        ] {
            ensure(value != Some(SimDuration::ZERO), field, "must be more than zero")?;
        }
        if let (Some(attempt), Some(total)) = (self.attempt, self.total) {
            ensure(attempt <= total, "attempt", "must not exceed total")?;
        }
        Ok(())
    }

    /// The limit of one phase.
    pub fn phase(&self, phase: Phase) -> Option<SimDuration> {
        match phase {
            Phase::Pool => self.pool,
            Phase::Connect => self.connect,
            Phase::Write => self.write,
            Phase::Read => self.read,
        }
    }
}

/// The phases of an attempt, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Acquiring a pooled connection.
    Pool,
    /// Connecting.
    Connect,
    /// Writing the request.
    Write,
    /// Reading the response.
    Read,
}

/// Which limit ends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The phase's own timeout.
    Phase,
    /// The per-attempt timeout.
    Attempt,
    /// The call's total timeout.
    Total,
    /// The deadline propagated from upstream.
    Propagated,
    /// No limit at all.
    None,
}

/// A remaining time budget that travels with a call.
///
/// It holds a duration, not an instant, because hops do not share clocks
/// (gRPC sends `grpc-timeout` the same way). The receiver starts its clock
/// when the call arrives, so time in transit is not charged: the budget is a
/// slight overestimate, as in gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    received_at: SimTime,
    budget: SimDuration,
}

impl Deadline {
    /// A budget of `budget` starting at `now`.
    pub fn start(now: SimTime, budget: SimDuration) -> Self {
        Deadline { received_at: now, budget }
    }

    /// No deadline: an infinite budget.
    pub fn none(now: SimTime) -> Self {
        Deadline::start(now, SimDuration::MAX)
    }

    /// The instant the budget runs out on this hop's clock.
    pub fn at(&self) -> SimTime {
        self.received_at + self.budget
    }

    /// What is left at `now`: the value to forward to the next hop.
    pub fn remaining(&self, now: SimTime) -> SimDuration {
        self.at() - now
    }

    /// Whether the budget is gone.
    pub fn is_expired(&self, now: SimTime) -> bool {
        now >= self.at()
    }

    /// Refuses to start work with less than `remaining_min` left; otherwise
    /// returns what is left.
    ///
    /// ```
    /// # use stormglass_core::time::{SimDuration, SimTime};
    /// # use stormglass_patterns::timeout::Deadline;
    /// # use stormglass_patterns::Rejection;
    /// let d = Deadline::start(SimTime::ZERO, SimDuration::from_secs(1));
    /// assert_eq!(d.try_start(SimTime::from_secs(1), SimDuration::ZERO), Err(Rejection::DeadlineExceeded));
    /// ```
    pub fn try_start(&self, now: SimTime, remaining_min: SimDuration) -> Result<SimDuration, Rejection> {
        let left = self.remaining(now);
        if left.is_zero() || left < remaining_min { Err(Rejection::DeadlineExceeded) } else { Ok(left) }
    }
}

/// The timeouts of one call: the total and the propagated deadline fixed at
/// the start, the attempt limit restarted at every attempt.
///
/// ```
/// # use stormglass_core::time::{SimDuration, SimTime};
/// # use stormglass_patterns::timeout::{CallTimer, Limit, Phase, TimeoutConfig};
/// let config = TimeoutConfig {
///     attempt: Some(SimDuration::from_secs(2)),
///     total: Some(SimDuration::from_secs(5)),
///     ..TimeoutConfig::default()
/// };
/// config.validate().unwrap();
/// let mut timer = CallTimer::start(&config, SimTime::ZERO, None);
/// timer.start_attempt(SimTime::from_secs(4)).unwrap();
/// // The read timeout (5 s) and the attempt (2 s) lose to the total (5 s from 0).
/// assert_eq!(timer.phase_deadline(&config, Phase::Read, SimTime::from_secs(4)), (SimTime::from_secs(5), Limit::Total));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimer {
    /// The config's attempt limit, restarted at every attempt. The phase
    /// limits stay in the config (see [`CallTimer::phase_deadline`]): a
    /// timer lives in every call in flight, so it keeps only what the call
    /// itself changes. The deadlines and their limits are separate fields,
    /// not `(SimTime, Limit)` pairs, which pad to twice their payload.
    attempt: Option<SimDuration>,
    /// The earlier of the total and the propagated deadline.
    call_deadline: SimTime,
    attempt_deadline: SimTime,
    /// Which limit sets `call_deadline`.
    call_limit: Limit,
    /// Which limit sets `attempt_deadline`.
    attempt_limit: Limit,
}

impl CallTimer {
    /// A timer for a call that starts at `now`, with an optional deadline
    /// propagated from upstream. `config` should be validated.
    pub fn start(config: &TimeoutConfig, now: SimTime, upstream: Option<Deadline>) -> Self {
        let mut call_deadline = (SimTime::MAX, Limit::None);
        if let Some(total) = config.total {
            call_deadline = (now + total, Limit::Total);
        }
        if let Some(d) = upstream
            && d.at() < call_deadline.0
        {
            call_deadline = (d.at(), Limit::Propagated);
        }
        let (deadline, limit) = call_deadline;
        CallTimer {
            attempt: config.attempt,
            call_deadline: deadline,
            attempt_deadline: deadline,
            call_limit: limit,
            attempt_limit: limit,
        }
    }

    /// Starts an attempt at `now`: refuses when the call's time is gone,
    /// otherwise returns the attempt's deadline.
    pub fn start_attempt(&mut self, now: SimTime) -> Result<SimTime, Rejection> {
        if now >= self.call_deadline {
            return Err(Rejection::DeadlineExceeded);
        }
        (self.attempt_deadline, self.attempt_limit) = (self.call_deadline, self.call_limit);
        if let Some(attempt) = self.attempt
            && now + attempt < self.attempt_deadline
        {
            (self.attempt_deadline, self.attempt_limit) = (now + attempt, Limit::Attempt);
        }
        self.check_invariants();
        Ok(self.attempt_deadline)
    }

    /// The deadline of the whole call and the limit that sets it.
    pub fn call_deadline(&self) -> (SimTime, Limit) {
        (self.call_deadline, self.call_limit)
    }

    /// The deadline of a phase that starts at `now` in the current attempt,
    /// and the limit that sets it; `config` is the one the timer started
    /// with.
    pub fn phase_deadline(&self, config: &TimeoutConfig, phase: Phase, now: SimTime) -> (SimTime, Limit) {
        match config.phase(phase) {
            Some(d) if now + d < self.attempt_deadline => (now + d, Limit::Phase),
            _ => (self.attempt_deadline, self.attempt_limit),
        }
    }

    /// The budget to propagate downstream from `now`.
    pub fn propagate(&self, now: SimTime) -> Deadline {
        Deadline::start(now, self.attempt_deadline - now)
    }

    /// The one place the timer's invariants are checked (debug builds).
    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            assert!(self.attempt_deadline <= self.call_deadline);
        }
    }
}
