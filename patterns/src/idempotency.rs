//! Idempotency keys: run a non-idempotent request once, however often the
//! client retries it.
//!
//! The store follows the IETF `Idempotency-Key` draft and Stripe's API:
//!
//! - the first request with a key proceeds and holds the key while it runs;
//! - a duplicate while the first is in progress gets [`Begin::Conflict`]
//!   (HTTP 409 in the draft);
//! - a duplicate after completion gets the stored result ([`Begin::Replay`]);
//! - the same key with a different payload fingerprint gets
//!   [`Begin::Mismatch`] (HTTP 422), whether in progress or completed;
//! - completed results are kept for `ttl` (Stripe: 24 hours) after
//!   completion; an in-progress key whose request never completes is
//!   released after `in_progress_ttl`, so a crashed attempt cannot lock its
//!   key forever. [`IdempotencyStore::abandon`] releases it at once (the
//!   request failed before doing anything, as Stripe does for validation
//!   errors).
//!
//! Memory is bounded by `capacity`: when full, expired records go first,
//! then the record completed longest ago. In-progress records are never
//! evicted (that would let a duplicate run twice); a store full of them
//! answers [`Begin::Full`], which a caller turns into a retryable refusal.
//!
//! ```
//! use stormglass_patterns::idempotency::{Begin, IdempotencyConfig, IdempotencyStore};
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! let mut store: IdempotencyStore<&str, u16> = IdempotencyStore::new(IdempotencyConfig::default()).unwrap();
//! let t = SimTime::ZERO;
//! assert_eq!(store.begin(t, "order-1", 0xfeed), Begin::Proceed);
//! assert_eq!(store.begin(t, "order-1", 0xfeed), Begin::Conflict);
//! assert_eq!(store.begin(t, "order-1", 0xbeef), Begin::Mismatch);
//! assert!(store.complete(t + SimDuration::from_millis(30), "order-1", 0xfeed, 201));
//! assert_eq!(store.begin(t + SimDuration::from_secs(60), "order-1", 0xfeed), Begin::Replay(&201));
//! // A day later the key is forgotten and the request runs again.
//! assert_eq!(store.begin(t + SimDuration::from_secs(86_401), "order-1", 0xfeed), Begin::Proceed);
//! ```

use std::hash::Hash;

use serde::{Deserialize, Serialize};
use stormglass_core::time::{SimDuration, SimTime};

use crate::error::{ConfigError, ensure};
use crate::limiter::table::LruTable;

/// Largest `capacity` (slot indices are `u32`).
pub const STORE_CAPACITY_LIMIT: u32 = 1 << 31;

/// The store's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a completed result is replayed after completion.
    #[serde(default = "default_ttl")]
    pub ttl: SimDuration,
    /// How long a key stays locked by a request that has not completed.
    #[serde(default = "default_in_progress_ttl")]
    pub in_progress_ttl: SimDuration,
    /// Most records kept.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
}

fn default_ttl() -> SimDuration {
    SimDuration::from_secs(24 * 3600)
}
fn default_in_progress_ttl() -> SimDuration {
    SimDuration::from_secs(60)
}
fn default_capacity() -> u32 {
    100_000
}

impl Default for IdempotencyConfig {
    /// `ttl: 24h` (Stripe's retention), `in_progress_ttl: 1m`,
    /// `capacity: 100000`.
    fn default() -> Self {
        IdempotencyConfig {
            ttl: default_ttl(),
            in_progress_ttl: default_in_progress_ttl(),
            capacity: default_capacity(),
        }
    }
}

impl IdempotencyConfig {
    /// Checks every field; the error names the field and the rule.
    ///
    /// ```
    /// use stormglass_patterns::idempotency::IdempotencyConfig;
    ///
    /// let c = IdempotencyConfig { capacity: 0, ..Default::default() };
    /// assert_eq!(c.validate().unwrap_err().to_string(), "capacity: must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(!self.ttl.is_zero(), "ttl", "must be above 0s")?;
        ensure(!self.in_progress_ttl.is_zero(), "in_progress_ttl", "must be above 0s")?;
        ensure(self.capacity >= 1, "capacity", "must be at least 1")?;
        ensure(self.capacity <= STORE_CAPACITY_LIMIT, "capacity", "must be at most 2147483648")
    }
}

/// The answer to [`IdempotencyStore::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin<'a, R> {
    /// New key: run the request, then [`complete`](IdempotencyStore::complete)
    /// or [`abandon`](IdempotencyStore::abandon) it.
    Proceed,
    /// The same request is still running: try again later (HTTP 409).
    Conflict,
    /// Already done: answer with this stored result, do not run again.
    Replay(&'a R),
    /// The key was used with a different payload (HTTP 422).
    Mismatch,
    /// Every record is an in-progress request: refuse for now (HTTP 503).
    Full,
}

/// Counters for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyStats {
    /// Requests that ran.
    pub proceeded: u64,
    /// Duplicates refused while the first ran.
    pub conflicts: u64,
    /// Duplicates answered from the store.
    pub replays: u64,
    /// Keys reused with another payload.
    pub mismatches: u64,
    /// Requests refused because the store was full of running requests.
    pub full: u64,
    /// Unexpired completed records evicted for room.
    pub evicted: u64,
}

struct Record<R> {
    fingerprint: u64,
    /// Start while in progress; completion time once done.
    since: SimTime,
    result: Option<R>,
}

const IN_PROGRESS: u8 = 0;
const DONE: u8 = 1;

/// A bounded idempotency-key store.
pub struct IdempotencyStore<K, R> {
    config: IdempotencyConfig,
    /// Two lists, each in the order its records will expire (same TTL for
    /// all, and time does not go back), so expired records are always at
    /// the tails.
    table: LruTable<K, Record<R>>,
    stats: IdempotencyStats,
}

impl<K: Hash + Eq + Clone, R> IdempotencyStore<K, R> {
    /// A store for `config`, or the first rule it breaks.
    pub fn new(config: IdempotencyConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(IdempotencyStore { table: LruTable::new(config.capacity), config, stats: IdempotencyStats::default() })
    }

    /// The config this store runs.
    pub fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    fn expires_at(&self, record: &Record<R>) -> SimTime {
        let ttl = match record.result {
            Some(_) => self.config.ttl,
            None => self.config.in_progress_ttl,
        };
        record.since.saturating_add(ttl)
    }

    /// Starts a request with `key` and a fingerprint of its payload.
    pub fn begin(&mut self, now: SimTime, key: K, fingerprint: u64) -> Begin<'_, R> {
        if let Some(slot) = self.table.find(&key) {
            let record = self.table.value(slot);
            if self.expires_at(record) > now {
                return if record.fingerprint != fingerprint {
                    self.stats.mismatches += 1;
                    Begin::Mismatch
                } else if record.result.is_none() {
                    self.stats.conflicts += 1;
                    Begin::Conflict
                } else {
                    self.stats.replays += 1;
                    match &self.table.value(slot).result {
                        Some(result) => Begin::Replay(result),
                        None => unreachable!("checked above"),
                    }
                };
            }
            self.table.remove(slot);
        }
        if self.table.is_full() && !self.make_room(now) {
            self.stats.full += 1;
            return Begin::Full;
        }
        self.table.insert_value(key, IN_PROGRESS, Record { fingerprint, since: now, result: None });
        self.stats.proceeded += 1;
        #[cfg(debug_assertions)]
        self.check_shallow();
        Begin::Proceed
    }

    /// Stores the result of the request that holds `key` with this payload
    /// `fingerprint`. Returns `false` (and stores nothing) if no such request
    /// is in progress: never begun, already completed, abandoned, begun with
    /// another payload, or its lock expired — a duplicate may have run since,
    /// so this result is not the one to replay.
    ///
    /// Completion is by key and payload, not by attempt: if a lock expired
    /// and a second request with the same key and payload began, whichever
    /// completes first stores its result. Both ran the same payload, so
    /// either is a faithful replay; keep `in_progress_ttl` above the longest
    /// request to make this rare.
    pub fn complete(&mut self, now: SimTime, key: K, fingerprint: u64, result: R) -> bool {
        let Some(slot) = self.table.find(&key) else {
            return false;
        };
        let record = self.table.value(slot);
        if record.result.is_some() || record.fingerprint != fingerprint {
            return false;
        }
        if self.expires_at(record) <= now {
            self.table.remove(slot);
            return false;
        }
        let record = self.table.value_mut(slot);
        record.result = Some(result);
        record.since = now;
        self.table.touch(slot, DONE);
        #[cfg(debug_assertions)]
        self.check_shallow();
        true
    }

    /// Releases `key` without a result so the next request with it runs.
    /// Returns `false` if it was not in progress (or its lock had expired).
    pub fn abandon(&mut self, now: SimTime, key: K) -> bool {
        let Some(slot) = self.table.find(&key) else {
            return false;
        };
        let record = self.table.value(slot);
        if record.result.is_some() {
            return false;
        }
        // An expired lock is gone either way; only a live one was released.
        let live = self.expires_at(record) > now;
        self.table.remove(slot);
        live
    }

    /// Frees one record at a full store: every expired record first (they
    /// sit at the list tails), then the completed record with the oldest
    /// completion. Never an unexpired in-progress one.
    fn make_room(&mut self, now: SimTime) -> bool {
        for list in [IN_PROGRESS, DONE] {
            while let Some(tail) = self.table.tail(list) {
                if self.expires_at(self.table.value(tail)) > now {
                    break;
                }
                self.table.remove(tail);
            }
        }
        if !self.table.is_full() {
            return true;
        }
        match self.table.tail(DONE) {
            Some(tail) => {
                self.table.remove(tail);
                self.stats.evicted += 1;
                true
            }
            None => false,
        }
    }

    /// Records held (expired ones linger until a full store needs room or
    /// their key is seen again).
    pub fn len(&self) -> u32 {
        self.table.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Counters for reports.
    pub fn stats(&self) -> IdempotencyStats {
        self.stats
    }

    #[cfg(debug_assertions)]
    fn check_shallow(&self) {
        assert!(self.table.len() <= self.config.capacity, "store over capacity");
    }

    /// Panics if the store breaks an invariant. O(records): for tests.
    pub fn check_invariants(&self) {
        self.table.check_invariants();
        for list in [IN_PROGRESS, DONE] {
            let mut at = self.table.tail(list);
            let mut later_than = SimTime::ZERO;
            while let Some(slot) = at {
                let record = self.table.value(slot);
                assert_eq!(record.result.is_some(), list == DONE, "record on the wrong list");
                assert!(record.since >= later_than, "list not in expiry order");
                later_than = record.since;
                at = self.table.newer(slot);
            }
        }
    }
}
