//! Fallback: what a call returns when its dependency cannot answer, and why.
//!
//! A [`FallbackConfig`] per dependency picks the degraded answer: a static
//! default value, the last good value from a bounded cache, an alternate
//! dependency, or failing outright. [`Fallback`] applies it and counts every
//! fallback by its [`FallbackReason`] (breaker open, timeout, rejected,
//! error) and by what was served, so reports can say "40% of orders were
//! served with stale user data because the breaker was open".
//!
//! The cache follows HTTP's vocabulary (`max-age` plus `stale-if-error`): an
//! entry is *fresh* while its age is below `ttl`; after that it is *stale*
//! by `age − ttl`, and it is served as a fallback only while its staleness is
//! at most `max_staleness`. Values are plain data; a `String` holding JSON
//! text (`{"name": "Unknown"}`) is the usual choice.
//!
//! ```
//! use stormglass_patterns::fallback::{CacheConfig, Fallback, FallbackConfig, FallbackReason, Served};
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! let config = FallbackConfig::LastGood {
//!     cache: CacheConfig { ttl: SimDuration::from_secs(60), max_staleness: SimDuration::from_secs(300), capacity: 1000 },
//!     otherwise: Some(r#"{"name": "Unknown"}"#.to_string()),
//! };
//! let mut fallback: Fallback<u64> = Fallback::new(config).unwrap();
//! let t0 = SimTime::ZERO;
//! fallback.record_success(t0, 7, r#"{"name": "Ada"}"#.to_string());
//!
//! let later = t0 + SimDuration::from_secs(90);
//! let (record, served) = fallback.serve(later, &7, FallbackReason::BreakerOpen);
//! assert_eq!(served, Served::Cached { value: &r#"{"name": "Ada"}"#.to_string(), age: SimDuration::from_secs(90), fresh: false });
//! assert_eq!(record.reason, FallbackReason::BreakerOpen);
//!
//! // Unknown key: the static default.
//! let (_, served) = fallback.serve(later, &8, FallbackReason::Timeout);
//! assert_eq!(served, Served::Static(r#"{"name": "Unknown"}"#));
//! assert_eq!(fallback.stats().by_reason(FallbackReason::BreakerOpen), 1);
//! ```

use std::hash::Hash;

use serde::{Deserialize, Serialize};
use stormglass_core::time::{SimDuration, SimTime};

use crate::error::{ConfigError, ensure};
use crate::limiter::table::LruTable;
use crate::outcome::{AttemptOutcome, Rejection};

/// Largest cache `capacity` (slot indices are `u32`).
pub const CACHE_CAPACITY_LIMIT: u32 = 1 << 31;

/// The last-good-value cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// How long a stored value counts as fresh.
    #[serde(default = "default_ttl")]
    pub ttl: SimDuration,
    /// How long past `ttl` a value may still be served as a fallback.
    #[serde(default = "default_max_staleness")]
    pub max_staleness: SimDuration,
    /// Most entries kept; the least recently used goes first.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
}

fn default_ttl() -> SimDuration {
    SimDuration::from_secs(60)
}
fn default_max_staleness() -> SimDuration {
    SimDuration::from_secs(600)
}
fn default_capacity() -> u32 {
    10_000
}

impl Default for CacheConfig {
    /// `ttl: 1m`, `max_staleness: 10m`, `capacity: 10000`.
    fn default() -> Self {
        CacheConfig { ttl: default_ttl(), max_staleness: default_max_staleness(), capacity: default_capacity() }
    }
}

impl CacheConfig {
    /// Checks every field; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.capacity >= 1, "capacity", "must be at least 1")?;
        ensure(self.capacity <= CACHE_CAPACITY_LIMIT, "capacity", "must be at most 2147483648")
    }
}

/// What a dependency's callers get when it fails.
///
/// ```
/// use stormglass_patterns::fallback::FallbackConfig;
///
/// let c: FallbackConfig = ron::from_str(r#"(kind: "static", value: "{\"name\": \"Unknown\"}")"#).unwrap();
/// assert_eq!(c, FallbackConfig::Static { value: r#"{"name": "Unknown"}"#.into() });
/// let bad: FallbackConfig = ron::from_str(r#"(kind: "alternate", dependency: "")"#).unwrap();
/// assert_eq!(bad.validate().unwrap_err().to_string(), "dependency: must not be empty");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FallbackConfig {
    /// No fallback: the failure goes to the caller. The default.
    #[default]
    Fail,
    /// Always the same value.
    Static {
        /// The value served (e.g. JSON text).
        value: String,
    },
    /// The last good value for the same key, from a bounded cache; when
    /// there is none (or it is too stale), `otherwise` if given, else fail.
    LastGood {
        /// The cache of good values.
        #[serde(default)]
        cache: CacheConfig,
        /// A static value for keys the cache cannot answer.
        #[serde(default)]
        otherwise: Option<String>,
    },
    /// Call another dependency instead (a replica, a degraded service).
    Alternate {
        /// The dependency's name in the topology.
        dependency: String,
    },
}

impl FallbackConfig {
    /// Checks every field; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            FallbackConfig::Fail | FallbackConfig::Static { .. } => Ok(()),
            FallbackConfig::LastGood { cache, .. } => cache.validate().map_err(|e| e.within("cache")),
            FallbackConfig::Alternate { dependency } => {
                ensure(!dependency.trim().is_empty(), "dependency", "must not be empty")
            }
        }
    }
}

/// Why a fallback was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// A circuit breaker refused the call.
    BreakerOpen,
    /// The call (or its deadline budget) ran out of time.
    Timeout,
    /// A local limit refused it: rate limiter, bulkhead, queue, throttle.
    Rejected,
    /// The dependency answered with an error or the connection failed.
    Error,
}

impl FallbackReason {
    /// Every reason, in report order.
    pub const ALL: [FallbackReason; 4] =
        [FallbackReason::BreakerOpen, FallbackReason::Timeout, FallbackReason::Rejected, FallbackReason::Error];

    /// The reason a failed outcome calls for a fallback; `None` for a
    /// success, and for a 4xx, which is the caller's fault and would be
    /// hidden, not helped, by a default value.
    ///
    /// ```
    /// use stormglass_patterns::fallback::FallbackReason;
    /// use stormglass_patterns::{AttemptOutcome, Rejection};
    ///
    /// assert_eq!(FallbackReason::from_outcome(AttemptOutcome::Rejected(Rejection::CircuitOpen)), Some(FallbackReason::BreakerOpen));
    /// assert_eq!(FallbackReason::from_outcome(AttemptOutcome::Status(503)), Some(FallbackReason::Error));
    /// assert_eq!(FallbackReason::from_outcome(AttemptOutcome::Status(404)), None);
    /// ```
    pub fn from_outcome(outcome: AttemptOutcome) -> Option<FallbackReason> {
        match outcome {
            AttemptOutcome::Status(s) if s < 500 => None,
            AttemptOutcome::Status(_) | AttemptOutcome::ConnectionRefused | AttemptOutcome::ConnectionReset => {
                Some(FallbackReason::Error)
            }
            AttemptOutcome::Timeout | AttemptOutcome::Rejected(Rejection::DeadlineExceeded) => {
                Some(FallbackReason::Timeout)
            }
            AttemptOutcome::Rejected(Rejection::CircuitOpen) => Some(FallbackReason::BreakerOpen),
            AttemptOutcome::Rejected(_) => Some(FallbackReason::Rejected),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a fallback served, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServedKind {
    /// The static value.
    Static,
    /// A cached value still within its `ttl`.
    CacheFresh,
    /// A cached value past its `ttl`, within `max_staleness`.
    CacheStale,
    /// A call to the alternate dependency.
    Alternate,
    /// Nothing: the failure went to the caller.
    Failed,
}

impl ServedKind {
    /// Every kind, in report order.
    pub const ALL: [ServedKind; 5] =
        [ServedKind::Static, ServedKind::CacheFresh, ServedKind::CacheStale, ServedKind::Alternate, ServedKind::Failed];
}

/// One fallback, as data for a report or a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackRecord {
    /// When it happened.
    pub at: SimTime,
    /// Why.
    pub reason: FallbackReason,
    /// What was served.
    pub served: ServedKind,
    /// The age of a cached value served.
    pub age: Option<SimDuration>,
}

/// The fallback value itself, borrowed from the policy or the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served<'a, V> {
    /// The static value.
    Static(&'a str),
    /// A value from the cache.
    Cached {
        /// The value.
        value: &'a V,
        /// How old it is.
        age: SimDuration,
        /// Whether it is within its `ttl`.
        fresh: bool,
    },
    /// Call this dependency instead.
    Alternate(&'a str),
    /// No fallback: fail the call.
    Fail,
}

/// Fallback counts by reason and by what was served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackStats {
    /// `counts[reason][served]`, in the order of [`FallbackReason::ALL`] and
    /// [`ServedKind::ALL`].
    pub counts: [[u64; 5]; 4],
}

impl FallbackStats {
    /// Fallbacks for `reason`, whatever was served.
    pub fn by_reason(&self, reason: FallbackReason) -> u64 {
        self.counts[reason.index()].iter().sum()
    }

    /// Count of fallbacks for `reason` that served `served`.
    pub fn count(&self, reason: FallbackReason, served: ServedKind) -> u64 {
        self.counts[reason.index()][served as usize]
    }

    /// Fallbacks that served something (a value or an alternate), for `reason`:
    /// every record except those that had nothing to serve and failed.
    pub fn served_for(&self, reason: FallbackReason) -> u64 {
        self.by_reason(reason) - self.count(reason, ServedKind::Failed)
    }

    /// Count of fallbacks that served `kind`, whatever the reason.
    pub fn by_served(&self, kind: ServedKind) -> u64 {
        self.counts.iter().map(|row| row[kind as usize]).sum()
    }

    /// Every fallback.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    fn add(&mut self, record: &FallbackRecord) {
        self.counts[record.reason.index()][record.served as usize] += 1;
    }
}

/// Sums counts, for a report over several fallbacks.
impl std::ops::AddAssign for FallbackStats {
    fn add_assign(&mut self, other: Self) {
        for (mine, theirs) in self.counts.iter_mut().flatten().zip(other.counts.iter().flatten()) {
            *mine += theirs;
        }
    }
}

/// A value found in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHit<'a, V> {
    /// The value.
    pub value: &'a V,
    /// Time since it was stored.
    pub age: SimDuration,
    /// Whether `age < ttl`.
    pub fresh: bool,
}

struct CacheEntry<V> {
    stored_at: SimTime,
    value: V,
}

/// A bounded cache of last good values with freshness and staleness limits.
pub struct FallbackCache<K, V> {
    config: CacheConfig,
    table: LruTable<K, CacheEntry<V>>,
}

const LIST: u8 = 0;

impl<K: Hash + Eq + Clone, V> FallbackCache<K, V> {
    /// A cache for `config`, or the first rule it breaks.
    pub fn new(config: CacheConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(FallbackCache { table: LruTable::new(config.capacity), config })
    }

    /// The config this cache runs.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Stores a good `value` for `key` at `now`, replacing an older one; a
    /// full cache forgets its least recently used entry first.
    pub fn store(&mut self, now: SimTime, key: K, value: V) {
        match self.table.find(&key) {
            Some(slot) => {
                *self.table.value_mut(slot) = CacheEntry { stored_at: now, value };
                self.table.touch(slot, LIST);
            }
            None => {
                if self.table.is_full()
                    && let Some(tail) = self.table.tail(LIST)
                {
                    self.table.remove(tail);
                }
                self.table.insert_value(key, LIST, CacheEntry { stored_at: now, value });
            }
        }
        #[cfg(debug_assertions)]
        self.check_shallow();
    }

    /// The value for `key` if one is stored and its staleness is at most
    /// `max_staleness`; a value past that is dropped, never served.
    pub fn lookup(&mut self, now: SimTime, key: &K) -> Option<CacheHit<'_, V>> {
        let slot = self.table.find(key)?;
        let age = now.saturating_duration_since(self.table.value(slot).stored_at);
        let servable_for = self.config.ttl.saturating_add(self.config.max_staleness);
        if age > servable_for {
            self.table.remove(slot);
            return None;
        }
        self.table.touch(slot, LIST);
        Some(CacheHit { value: &self.table.value(slot).value, age, fresh: age < self.config.ttl })
    }

    /// Entries held (some may be too stale to serve until looked up).
    pub fn len(&self) -> u32 {
        self.table.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    #[cfg(debug_assertions)]
    fn check_shallow(&self) {
        assert!(self.table.len() <= self.config.capacity, "cache over capacity");
    }

    /// Panics if the cache breaks an invariant. O(entries): for tests.
    pub fn check_invariants(&self) {
        self.table.check_invariants();
    }
}

/// A fallback policy with its cache and counters.
pub struct Fallback<K, V = String> {
    config: FallbackConfig,
    cache: Option<FallbackCache<K, V>>,
    stats: FallbackStats,
}

impl<K: Hash + Eq + Clone, V> Fallback<K, V> {
    /// A fallback for `config`, or the first rule it breaks.
    pub fn new(config: FallbackConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let cache = match &config {
            FallbackConfig::LastGood { cache, .. } => Some(FallbackCache::new(cache.clone())?),
            _ => None,
        };
        Ok(Fallback { config, cache, stats: FallbackStats::default() })
    }

    /// The config this fallback runs.
    pub fn config(&self) -> &FallbackConfig {
        &self.config
    }

    /// Remembers a good answer for `key` (a no-op unless the policy caches).
    #[inline]
    pub fn record_success(&mut self, now: SimTime, key: K, value: V) {
        if let Some(cache) = &mut self.cache {
            cache.store(now, key, value);
        }
    }

    /// The fallback for a call on `key` that failed for `reason`, and its
    /// record (already counted in [`stats`](Self::stats)).
    pub fn serve(&mut self, now: SimTime, key: &K, reason: FallbackReason) -> (FallbackRecord, Served<'_, V>) {
        let mut record = FallbackRecord { at: now, reason, served: ServedKind::Failed, age: None };
        let served = match &self.config {
            FallbackConfig::Fail => Served::Fail,
            FallbackConfig::Static { value } => {
                record.served = ServedKind::Static;
                Served::Static(value)
            }
            FallbackConfig::Alternate { dependency } => {
                record.served = ServedKind::Alternate;
                Served::Alternate(dependency)
            }
            FallbackConfig::LastGood { otherwise, .. } => {
                let hit = self.cache.as_mut().and_then(|c| c.lookup(now, key));
                match (hit, otherwise) {
                    (Some(hit), _) => {
                        record.served = if hit.fresh { ServedKind::CacheFresh } else { ServedKind::CacheStale };
                        record.age = Some(hit.age);
                        Served::Cached { value: hit.value, age: hit.age, fresh: hit.fresh }
                    }
                    (None, Some(value)) => {
                        record.served = ServedKind::Static;
                        Served::Static(value)
                    }
                    (None, None) => Served::Fail,
                }
            }
        };
        self.stats.add(&record);
        (record, served)
    }

    /// Counts by reason and by what was served.
    pub fn stats(&self) -> FallbackStats {
        self.stats
    }

    /// The cache, if the policy has one.
    pub fn cache(&self) -> Option<&FallbackCache<K, V>> {
        self.cache.as_ref()
    }
}
