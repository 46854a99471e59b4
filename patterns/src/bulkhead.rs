//! Bulkheads: a cap on concurrent calls to one dependency, so a slow
//! dependency cannot take every thread of the caller with it.
//!
//! Two isolation styles share one state machine, [`Bulkhead`]:
//!
//! - **Semaphore** ([`SemaphoreConfig`], like resilience4j's `Bulkhead`): the
//!   call runs on the caller's thread once it holds one of `max_concurrent`
//!   permits. With a wait queue, a caller may wait up to `max_wait` in FIFO
//!   order; past that it is rejected.
//! - **Thread pool** ([`ThreadPoolConfig`], like Hystrix's thread isolation or
//!   resilience4j's `ThreadPoolBulkhead`): the call runs on one of `workers`,
//!   with a task queue of `queue_capacity`. The default queue is 0, Hystrix's
//!   default (`maxQueueSize = -1`, a hand-off with no buffer): when every
//!   worker is busy the next call is rejected at once. Queued tasks wait
//!   until a worker frees; only the caller's own timeout (via
//!   [`Bulkhead::cancel`]) takes them out.
//!
//! A rejection is the value [`Rejection::BulkheadFull`], which a breaker can
//! count like any other [`AttemptOutcome`](crate::AttemptOutcome).
//!
//! Expiry is explicit: the bulkhead never drops a waiter on its own, so every
//! waiter gets exactly one answer — admitted by [`Bulkhead::exit`], expired
//! by [`Bulkhead::expire`], or cancelled by [`Bulkhead::cancel`]. A simulator
//! schedules a timer at the waiter's `deadline` and cancels; code on a real
//! clock calls `expire(now)` until it returns `None` before each `exit`.
//!
//! ```
//! use stormglass_patterns::bulkhead::{Bulkhead, BulkheadConfig, Entry, SemaphoreConfig};
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! let config = BulkheadConfig::Semaphore(SemaphoreConfig {
//!     max_concurrent: 1,
//!     queue_capacity: 1,
//!     max_wait: SimDuration::from_millis(100),
//! });
//! let mut bulkhead = Bulkhead::new(config).unwrap();
//! let t0 = SimTime::ZERO;
//! let Entry::Entered(first) = bulkhead.try_enter(t0) else { panic!() };
//! let Entry::Queued { waiter, position: 0, .. } = bulkhead.try_enter(t0) else { panic!() };
//! assert!(matches!(bulkhead.try_enter(t0), Entry::Rejected(_))); // queue full
//!
//! let t1 = t0 + SimDuration::from_millis(40);
//! let promoted = bulkhead.exit(t1, first).unwrap();
//! assert_eq!(promoted.waiter, waiter);
//! assert_eq!(promoted.waited, SimDuration::from_millis(40));
//! ```

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use stormglass_core::time::{SimDuration, SimTime};

use crate::error::{ConfigError, ensure};
use crate::outcome::Rejection;

/// Largest `max_concurrent`, `workers` or `queue_capacity` accepted: far
/// above any real pool, low enough that a typo cannot ask for a queue that
/// exhausts memory.
pub const CAPACITY_LIMIT: u32 = 1 << 20;

/// Semaphore isolation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemaphoreConfig {
    /// Calls that may run at once.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
    /// Callers that may wait for a permit, in FIFO order; 0 rejects at once.
    #[serde(default)]
    pub queue_capacity: u32,
    /// Longest a caller waits before it is rejected.
    #[serde(default)]
    pub max_wait: SimDuration,
}

fn default_max_concurrent() -> u32 {
    25
}

impl Default for SemaphoreConfig {
    /// resilience4j's defaults: `max_concurrent: 25`, `max_wait: 0s`, and no
    /// queue (`queue_capacity: 0`).
    fn default() -> Self {
        SemaphoreConfig { max_concurrent: default_max_concurrent(), queue_capacity: 0, max_wait: SimDuration::ZERO }
    }
}

/// Thread-pool isolation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadPoolConfig {
    /// Worker threads.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// Tasks that may wait for a worker; 0 is a hand-off (Hystrix's default).
    #[serde(default)]
    pub queue_capacity: u32,
}

fn default_workers() -> u32 {
    10
}

impl Default for ThreadPoolConfig {
    /// Hystrix's defaults: `workers: 10` (`coreSize`) and `queue_capacity: 0`
    /// (`maxQueueSize: -1`).
    fn default() -> Self {
        ThreadPoolConfig { workers: default_workers(), queue_capacity: 0 }
    }
}

/// A bulkhead, by isolation style.
///
/// ```
/// use stormglass_patterns::bulkhead::BulkheadConfig;
///
/// let c: BulkheadConfig =
///     ron::from_str(r#"(isolation: "thread_pool", workers: 4, queue_capacity: 8)"#).unwrap();
/// assert!(c.validate().is_ok());
/// let bad: BulkheadConfig =
///     ron::from_str(r#"(isolation: "semaphore", max_concurrent: 2, queue_capacity: 3)"#).unwrap();
/// assert_eq!(
///     bad.validate().unwrap_err().to_string(),
///     "semaphore.max_wait: must be above 0s when queue_capacity is above 0"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "isolation", rename_all = "snake_case")]
pub enum BulkheadConfig {
    /// Permits on the caller's thread.
    Semaphore(SemaphoreConfig),
    /// A pool of workers with a task queue.
    ThreadPool(ThreadPoolConfig),
}

impl Default for BulkheadConfig {
    /// A semaphore with resilience4j's defaults (see [`SemaphoreConfig`]).
    fn default() -> Self {
        BulkheadConfig::Semaphore(SemaphoreConfig::default())
    }
}

impl BulkheadConfig {
    /// Bytes a bulkhead built from this config allocates for its wait
    /// queue, once.
    pub fn queue_bytes(&self) -> u64 {
        u64::from(self.queue_capacity()) * std::mem::size_of::<Waiter>() as u64
    }

    /// Callers (semaphore) or tasks (thread pool) that may wait for a slot.
    pub fn queue_capacity(&self) -> u32 {
        match self {
            BulkheadConfig::Semaphore(c) => c.queue_capacity,
            BulkheadConfig::ThreadPool(c) => c.queue_capacity,
        }
    }

    /// Checks every field; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            BulkheadConfig::Semaphore(c) => c.validate().map_err(|e| e.within("semaphore")),
            BulkheadConfig::ThreadPool(c) => c.validate().map_err(|e| e.within("thread_pool")),
        }
    }
}

impl SemaphoreConfig {
    /// Checks every field; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.max_concurrent >= 1, "max_concurrent", "must be at least 1")?;
        ensure(self.max_concurrent <= CAPACITY_LIMIT, "max_concurrent", "must be at most 1048576")?;
        ensure(self.queue_capacity <= CAPACITY_LIMIT, "queue_capacity", "must be at most 1048576")?;
        // A queue whose waiters expire the instant they join is a queue
        // nobody leaves through the front: almost certainly a missing field.
        ensure(
            self.queue_capacity == 0 || !self.max_wait.is_zero(),
            "max_wait",
            "must be above 0s when queue_capacity is above 0",
        )
    }
}

impl ThreadPoolConfig {
    /// Checks every field; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.workers >= 1, "workers", "must be at least 1")?;
        ensure(self.workers <= CAPACITY_LIMIT, "workers", "must be at most 1048576")?;
        ensure(self.queue_capacity <= CAPACITY_LIMIT, "queue_capacity", "must be at most 1048576")
    }
}

/// Proof of a held slot: hand it back to [`Bulkhead::exit`]. Deliberately
/// neither `Clone` nor `Copy`, so a slot cannot be released twice.
#[must_use = "a permit that is dropped without exit() leaks a slot"]
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    _private: (),
}

/// Names one waiter, from [`Entry::Queued`] to its single answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId(pub u64);

/// The answer to [`Bulkhead::try_enter`].
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A slot is yours; run the call.
    Entered(Permit),
    /// Every slot is busy; wait. `position` is the number of waiters ahead.
    Queued {
        /// The waiter, to match with a later promotion, expiry or cancel.
        waiter: WaiterId,
        /// Waiters ahead of this one.
        position: u32,
        /// When it expires if still waiting ([`SimTime::MAX`]: never).
        deadline: SimTime,
    },
    /// Full: the call fails now with this rejection.
    Rejected(Rejection),
}

/// A waiter admitted by [`Bulkhead::exit`].
#[derive(Debug, PartialEq, Eq)]
pub struct Promoted {
    /// Who.
    pub waiter: WaiterId,
    /// Its slot.
    pub permit: Permit,
    /// How long it waited.
    pub waited: SimDuration,
}

/// Counters for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkheadStats {
    /// Calls that got a slot at once.
    pub entered: u64,
    /// Calls that had to wait.
    pub queued: u64,
    /// Waiters that got a slot.
    pub promoted: u64,
    /// Calls rejected at once (no slot, queue full or absent).
    pub rejected: u64,
    /// Waiters that reached their deadline.
    pub expired: u64,
    /// Waiters withdrawn by their caller.
    pub cancelled: u64,
}

/// Sums counters, for a report over several bulkheads.
impl std::ops::AddAssign for BulkheadStats {
    fn add_assign(&mut self, other: Self) {
        self.entered += other.entered;
        self.queued += other.queued;
        self.promoted += other.promoted;
        self.rejected += other.rejected;
        self.expired += other.expired;
        self.cancelled += other.cancelled;
    }
}

#[derive(Debug, Clone, Copy)]
struct Waiter {
    id: WaiterId,
    since: SimTime,
    deadline: SimTime,
}

/// A semaphore or thread-pool bulkhead.
#[derive(Debug)]
pub struct Bulkhead {
    config: BulkheadConfig,
    slots_max: u32,
    queue_capacity: u32,
    /// `None`: waiters never expire (thread pool).
    max_wait: Option<SimDuration>,
    slots_used: u32,
    /// FIFO; deadlines are non-decreasing front to back, because every
    /// waiter gets the same `max_wait` and time does not go back.
    queue: VecDeque<Waiter>,
    next_waiter: u64,
    stats: BulkheadStats,
}

impl Bulkhead {
    /// A bulkhead for `config`, or the first rule it breaks.
    pub fn new(config: BulkheadConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let (slots_max, queue_capacity, max_wait) = match &config {
            BulkheadConfig::Semaphore(c) => (c.max_concurrent, c.queue_capacity, Some(c.max_wait)),
            BulkheadConfig::ThreadPool(c) => (c.workers, c.queue_capacity, None),
        };
        Ok(Bulkhead {
            config,
            slots_max,
            queue_capacity,
            max_wait,
            slots_used: 0,
            // Allocated once, so joining the queue never allocates.
            queue: VecDeque::with_capacity(queue_capacity as usize),
            next_waiter: 0,
            stats: BulkheadStats::default(),
        })
    }

    /// The config this bulkhead runs.
    pub fn config(&self) -> &BulkheadConfig {
        &self.config
    }

    /// Asks for a slot at `now`.
    pub fn try_enter(&mut self, now: SimTime) -> Entry {
        let entry = if self.slots_used < self.slots_max {
            self.slots_used += 1;
            self.stats.entered += 1;
            Entry::Entered(Permit { _private: () })
        } else if (self.queue.len() as u32) < self.queue_capacity {
            let id = WaiterId(self.next_waiter);
            self.next_waiter += 1;
            let deadline = match self.max_wait {
                Some(wait) => now.saturating_add(wait),
                None => SimTime::MAX,
            };
            let position = self.queue.len() as u32;
            self.queue.push_back(Waiter { id, since: now, deadline });
            self.stats.queued += 1;
            Entry::Queued { waiter: id, position, deadline }
        } else {
            self.stats.rejected += 1;
            Entry::Rejected(Rejection::BulkheadFull)
        };
        #[cfg(debug_assertions)]
        self.check_invariants();
        entry
    }

    /// Gives back a slot at `now`. If anyone waits, the oldest waiter takes
    /// the slot at once and is returned; it is the caller's job to have
    /// expired waiters whose deadline has passed (see the module docs).
    pub fn exit(&mut self, now: SimTime, permit: Permit) -> Option<Promoted> {
        let Permit { _private: () } = permit;
        debug_assert!(self.slots_used > 0, "exit without a slot held");
        let promoted = match self.queue.pop_front() {
            Some(w) => {
                // The slot passes straight to the waiter: slots_used stays.
                self.stats.promoted += 1;
                Some(Promoted {
                    waiter: w.id,
                    permit: Permit { _private: () },
                    waited: now.saturating_duration_since(w.since),
                })
            }
            None => {
                self.slots_used = self.slots_used.saturating_sub(1);
                None
            }
        };
        #[cfg(debug_assertions)]
        self.check_invariants();
        promoted
    }

    /// Removes and returns the oldest waiter if its deadline is at or before
    /// `now`; call until `None`. The caller rejects it with
    /// [`Rejection::BulkheadFull`].
    pub fn expire(&mut self, now: SimTime) -> Option<WaiterId> {
        let front = self.queue.front()?;
        if front.deadline > now {
            return None;
        }
        let id = front.id;
        self.queue.pop_front();
        self.stats.expired += 1;
        #[cfg(debug_assertions)]
        self.check_invariants();
        Some(id)
    }

    /// Withdraws `waiter` (its caller timed out or gave up, or its deadline
    /// timer fired). Returns `false` if it is no longer waiting: it was
    /// already promoted, expired or cancelled, and the caller must not
    /// treat it as rejected. O(queue length), bounded by the capacity.
    pub fn cancel(&mut self, now: SimTime, waiter: WaiterId) -> bool {
        let Some(at) = self.queue.iter().position(|w| w.id == waiter) else {
            return false;
        };
        let removed = self.queue.remove(at);
        debug_assert!(removed.is_some());
        if removed.is_some_and(|w| w.deadline <= now) {
            self.stats.expired += 1;
        } else {
            self.stats.cancelled += 1;
        }
        #[cfg(debug_assertions)]
        self.check_invariants();
        true
    }

    /// The earliest deadline among waiters, for a timer; `None` if nobody
    /// waits or waiters never expire.
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.queue.front().map(|w| w.deadline).filter(|&d| d != SimTime::MAX)
    }

    /// Slots held now (running calls, or busy workers).
    pub fn in_use(&self) -> u32 {
        self.slots_used
    }

    /// Callers waiting now.
    pub fn queue_len(&self) -> u32 {
        self.queue.len() as u32
    }

    /// Counters for reports.
    pub fn stats(&self) -> BulkheadStats {
        self.stats
    }

    /// Panics if the state breaks an invariant; called after every
    /// transition in debug builds.
    pub fn check_invariants(&self) {
        assert!(self.slots_used <= self.slots_max, "more slots held than exist");
        assert!(self.queue.len() as u32 <= self.queue_capacity, "queue above its capacity");
        // Work-conserving: nobody waits while a slot is free.
        assert!(self.queue.is_empty() || self.slots_used == self.slots_max, "a caller waits while a slot is free");
        for (a, b) in self.queue.iter().zip(self.queue.iter().skip(1)) {
            assert!(a.id < b.id, "queue out of FIFO order");
            assert!(a.deadline <= b.deadline, "deadlines out of order");
        }
        let s = &self.stats;
        assert_eq!(
            s.queued,
            s.promoted + s.expired + s.cancelled + self.queue.len() as u64,
            "a waiter got no answer or two"
        );
    }
}
