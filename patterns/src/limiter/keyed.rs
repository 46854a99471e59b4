//! One limit per key in a bounded table.

use std::hash::Hash;

use serde::{Deserialize, Serialize};
use stormglass_core::time::{SimDuration, SimTime};

use super::algo::{Algo, State};
use super::clock::{Choice, ClockTable};
use super::{Decision, RateLimiterConfig};
use crate::error::{ConfigError, ensure};

/// Largest `keys_max`: slot indices are `u32` with one value reserved.
pub const KEYS_MAX_LIMIT: u32 = 1 << 31;

/// How many slots a full table's CLOCK hand sweeps for a key to evict.
/// Bounded so a decision stays O(1).
const EVICT_SCAN: u32 = 8;

/// A rate limit applied per key (user, client IP, service, route).
///
/// ```
/// use stormglass_patterns::limiter::KeyedLimiterConfig;
///
/// let c: KeyedLimiterConfig = ron::from_str(
///     r#"(limiter: (algorithm: "sliding_log", limit: "100/minute"), keys_max: 10000)"#,
/// ).unwrap();
/// assert_eq!(c.keys_max, 10_000);
/// assert!(c.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyedLimiterConfig {
    /// The limit every key gets.
    #[serde(default)]
    pub limiter: RateLimiterConfig,
    /// Most keys tracked at once. When a new key arrives at a full table an
    /// idle or not recently used key is forgotten (it restarts fresh if it
    /// comes back), so memory is bounded whatever the key space.
    #[serde(default = "default_keys_max")]
    pub keys_max: u32,
}

fn default_keys_max() -> u32 {
    100_000
}

impl Default for KeyedLimiterConfig {
    /// The default limiter (token bucket, `100/second`, burst 100) per key,
    /// with `keys_max: 100000`.
    fn default() -> Self {
        KeyedLimiterConfig { limiter: RateLimiterConfig::default(), keys_max: default_keys_max() }
    }
}

impl KeyedLimiterConfig {
    /// Checks every field; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limiter.validate().map_err(|e| e.within("limiter"))?;
        ensure(self.keys_max >= 1, "keys_max", "must be at least 1")?;
        ensure(self.keys_max <= KEYS_MAX_LIMIT, "keys_max", "must be at most 2147483648")
    }
}

/// Counters of a keyed table, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedStats {
    /// Keys tracked now.
    pub keys_len: u32,
    /// Keys evicted whose state was already idle: forgetting them changed
    /// no decision.
    pub evicted_idle: u64,
    /// Keys evicted while their limit still counted something: they come
    /// back fresh, so the table was too small for the key space.
    pub evicted_active: u64,
    /// New keys refused because every key the sweep looked at held
    /// concurrency permits.
    pub denied_table_full: u64,
}

/// One [`RateLimiter`](super::RateLimiter)'s worth of state per key, at most
/// `keys_max` keys.
///
/// Keys and states sit inline in one open-addressed array. A full table
/// makes room with a CLOCK sweep (see `clock.rs` for why not an exact LRU
/// list): the hand passes at most 8 keys, takes the first that
/// is idle (forgetting it changes no decision) or unused since the hand last
/// passed, else the first it passed. A concurrency key holding permits is
/// never taken; if the sweep finds nothing else the new key is denied.
/// Eviction depends only on the order of calls, so it is deterministic.
///
/// ```
/// use stormglass_patterns::limiter::{KeyedLimiter, KeyedLimiterConfig, RateLimiterConfig};
/// use stormglass_core::time::SimTime;
///
/// let config = KeyedLimiterConfig {
///     limiter: RateLimiterConfig::FixedWindow { limit: "1/second".parse().unwrap() },
///     keys_max: 2,
/// };
/// let mut limiter = KeyedLimiter::new(config).unwrap();
/// let t = SimTime::ZERO;
/// assert!(limiter.try_acquire(&"alice", t, 1).is_allowed());
/// assert!(limiter.try_acquire(&"bob", t, 1).is_allowed()); // own limit
/// assert!(!limiter.try_acquire(&"alice", t, 1).is_allowed()); // alice is used again
/// limiter.try_acquire(&"carol", t, 1); // evicts bob, unused since he came
/// assert!(limiter.try_acquire(&"bob", t, 1).is_allowed()); // back, fresh
/// assert_eq!(limiter.stats().evicted_active, 2);
/// ```
pub struct KeyedLimiter<K> {
    config: KeyedLimiterConfig,
    algo: Algo,
    table: ClockTable<K, State>,
    stats: KeyedStats,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A keyed limiter for `config`, or the first rule it breaks.
    pub fn new(config: KeyedLimiterConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let algo = Algo::from_config(&config.limiter);
        Ok(KeyedLimiter { table: ClockTable::new(config.keys_max), config, algo, stats: KeyedStats::default() })
    }

    /// The config this limiter runs.
    pub fn config(&self) -> &KeyedLimiterConfig {
        &self.config
    }

    /// Asks for `permits` for `key` at `now`. A key not in the table starts
    /// fresh; if the table is full the CLOCK sweep picks the key that makes
    /// room (an idle key, else one unused since the hand last passed; see
    /// the type's docs), which approximates least recently used.
    #[inline]
    pub fn try_acquire(&mut self, key: &K, now: SimTime, permits: u32) -> Decision {
        let state = match self.table.find(key) {
            Some(slot) => self.table.use_value(slot),
            // A new key's first request does not count as a reuse: a key
            // seen once is the first to go.
            None if !self.table.is_full() => {
                let at = self.table.insert(key.clone(), self.algo.fresh());
                self.table.value_mut(at)
            }
            None => match self.evict(now) {
                Some(victim) => {
                    // The victim's state becomes the new key's, reset in
                    // place: a sliding log keeps its buffer, nothing allocates.
                    let mut state = self.table.remove(victim);
                    self.algo.reset(&mut state);
                    let at = self.table.insert(key.clone(), state);
                    self.table.value_mut(at)
                }
                None => {
                    self.stats.denied_table_full += 1;
                    return Decision::Denied { retry_after: SimDuration::MAX, remaining: 0 };
                }
            },
        };
        self.algo.acquire(state, now, permits)
    }

    /// Returns `permits` of `key` to a concurrency limit. Returns whether the
    /// key was known (a key holding permits is never evicted).
    pub fn release(&mut self, key: &K, permits: u32) -> bool {
        match self.table.find(key) {
            Some(slot) => {
                self.algo.release(self.table.use_value(slot), permits);
                true
            }
            None => false,
        }
    }

    /// Table counters.
    pub fn stats(&self) -> KeyedStats {
        KeyedStats { keys_len: self.table.len(), ..self.stats }
    }

    /// Keys tracked now.
    pub fn len(&self) -> u32 {
        self.table.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Bytes owned by the table: slots, index and sliding-log buffers,
    /// computed from capacities (`benches/limiters.rs` checks it against
    /// counted allocations). Heap owned by keys (a `String`) is not included.
    pub fn memory_bytes(&self) -> usize {
        let logs = match self.algo {
            Algo::SlidingLog { limit, .. } => {
                // Evicted keys hand their buffers on, so one per key held.
                self.table.len() as usize * limit as usize * std::mem::size_of::<SimTime>()
            }
            _ => 0,
        };
        self.table.memory_bytes() + logs
    }

    /// Picks the key a new key replaces, if any may go.
    fn evict(&mut self, now: SimTime) -> Option<u32> {
        let algo = &self.algo;
        let slot = self.table.sweep(EVICT_SCAN, |state, referenced| {
            if !algo.is_evictable(state) {
                Choice::Skip
            } else if !referenced || algo.is_idle(state, now) {
                Choice::Evict
            } else {
                Choice::Fallback
            }
        })?;
        if self.algo.is_idle(self.table.value(slot), now) {
            self.stats.evicted_idle += 1;
        } else {
            self.stats.evicted_active += 1;
        }
        Some(slot)
    }

    /// Panics if the table or any key's state breaks an invariant. O(keys):
    /// for tests; each decision already checks the state it touched.
    pub fn check_invariants(&self) {
        self.table.check_invariants();
        for state in self.table.values() {
            self.algo.check_invariants(state);
        }
    }
}
