//! The fallback cache against a naive reference model; fallback policies,
//! reasons and validation errors by example.

use proptest::prelude::*;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::fallback::{
    CacheConfig, Fallback, FallbackCache, FallbackConfig, FallbackReason, Served, ServedKind,
};
use stormglass_patterns::{AttemptOutcome, Rejection};

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Store(u8, u32),
    Lookup(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u64..40).prop_map(Op::Advance),
        3 => (0u8..8, any::<u32>()).prop_map(|(k, v)| Op::Store(k, v)),
        3 => (0u8..8).prop_map(Op::Lookup),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn cache_matches_the_model_and_never_serves_past_max_staleness(
        ttl in 0u64..30,
        max_staleness in 0u64..30,
        capacity in 1u32..5,
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let config = CacheConfig {
            ttl: SimDuration::from_nanos(ttl),
            max_staleness: SimDuration::from_nanos(max_staleness),
            capacity,
        };
        let mut cache: FallbackCache<u8, u32> = FallbackCache::new(config).unwrap();
        // (key, value, stored_at, last_used): a vector scanned in full, with
        // the least recently used entry evicted when over capacity.
        let mut model: Vec<(u8, u32, u64, u64)> = Vec::new();
        let mut now = 0u64;
        let mut clock = 0u64; // recency order
        for op in ops {
            clock += 1;
            let t = SimTime::from_nanos(now);
            match op {
                Op::Advance(d) => now += d,
                Op::Store(k, v) => {
                    cache.store(t, k, v);
                    if let Some(e) = model.iter_mut().find(|e| e.0 == k) {
                        *e = (k, v, now, clock);
                    } else {
                        if model.len() == capacity as usize {
                            let lru = (0..model.len()).min_by_key(|&i| model[i].3).unwrap();
                            model.remove(lru);
                        }
                        model.push((k, v, now, clock));
                    }
                }
                Op::Lookup(k) => {
                    let got = cache.lookup(t, &k).map(|h| (*h.value, h.age, h.fresh));
                    let at = model.iter().position(|e| e.0 == k);
                    let expect = match at {
                        Some(i) if now - model[i].2 > ttl + max_staleness => {
                            model.remove(i); // too stale: dropped, not served
                            None
                        }
                        Some(i) => {
                            model[i].3 = clock;
                            let age = now - model[i].2;
                            Some((model[i].1, SimDuration::from_nanos(age), age < ttl))
                        }
                        None => None,
                    };
                    prop_assert_eq!(got, expect);
                    if let Some((_, age, _)) = got {
                        // Staleness = age beyond the ttl.
                        prop_assert!(age.saturating_sub(SimDuration::from_nanos(ttl)).as_nanos() <= max_staleness);
                    }
                }
            }
            cache.check_invariants();
            prop_assert_eq!(cache.len() as usize, model.len());
        }
    }
}

fn s(n: u64) -> SimTime {
    SimTime::from_secs(n)
}

#[test]
fn each_policy_serves_its_kind_and_counts_reasons() {
    let mut fail: Fallback<u32> = Fallback::new(FallbackConfig::Fail).unwrap();
    assert_eq!(fail.serve(s(0), &1, FallbackReason::Error).1, Served::Fail);

    let mut fixed: Fallback<u32> =
        Fallback::new(FallbackConfig::Static { value: r#"{"name": "Unknown"}"#.into() }).unwrap();
    fixed.record_success(s(0), 1, "ignored: static policies keep no cache".into());
    assert!(fixed.cache().is_none());
    let (record, served) = fixed.serve(s(1), &1, FallbackReason::BreakerOpen);
    assert_eq!(served, Served::Static(r#"{"name": "Unknown"}"#));
    assert_eq!((record.served, record.at), (ServedKind::Static, s(1)));

    let mut alt: Fallback<u32> =
        Fallback::new(FallbackConfig::Alternate { dependency: "user-replica".into() }).unwrap();
    assert_eq!(alt.serve(s(0), &1, FallbackReason::Timeout).1, Served::Alternate("user-replica"));

    let mut last_good: Fallback<u32> = Fallback::new(FallbackConfig::LastGood {
        cache: CacheConfig { ttl: SimDuration::from_secs(10), max_staleness: SimDuration::from_secs(20), capacity: 10 },
        otherwise: None,
    })
    .unwrap();
    last_good.record_success(s(100), 1, "ada".into());
    let value = "ada".to_string();
    let (r, served) = last_good.serve(s(105), &1, FallbackReason::Timeout);
    assert_eq!(served, Served::Cached { value: &value, age: SimDuration::from_secs(5), fresh: true });
    assert_eq!((r.served, r.age), (ServedKind::CacheFresh, Some(SimDuration::from_secs(5))));
    let (r, _) = last_good.serve(s(130), &1, FallbackReason::Rejected);
    assert_eq!(r.served, ServedKind::CacheStale, "30s old: 20s stale, the maximum");
    let (r, served) = last_good.serve(s(131), &1, FallbackReason::Rejected);
    assert_eq!((r.served, served), (ServedKind::Failed, Served::Fail), "21s stale: never served");

    let stats = last_good.stats();
    assert_eq!(stats.by_reason(FallbackReason::Timeout), 1);
    assert_eq!(stats.by_reason(FallbackReason::Rejected), 2);
    assert_eq!(stats.by_reason(FallbackReason::BreakerOpen), 0);
    assert_eq!(stats.by_served(ServedKind::Failed), 1);
    assert_eq!(stats.total(), 3);
}

#[test]
fn last_good_falls_back_to_otherwise_for_unknown_keys() {
    let config: FallbackConfig = ron::from_str(
        r#"(kind: "last_good", cache: (ttl: "1m", max_staleness: "5m", capacity: 2), otherwise: Some("{\"name\": \"Unknown\"}"))"#,
    )
    .unwrap();
    let mut f: Fallback<u32> = Fallback::new(config).unwrap();
    f.record_success(s(0), 1, "one".into());
    f.record_success(s(0), 2, "two".into());
    f.record_success(s(0), 3, "three".into()); // evicts 1, the least recent
    assert!(matches!(f.serve(s(1), &2, FallbackReason::Error).1, Served::Cached { .. }));
    assert_eq!(f.serve(s(1), &1, FallbackReason::Error).1, Served::Static(r#"{"name": "Unknown"}"#));
}

#[test]
fn reasons_come_from_outcomes() {
    let cases = [
        (AttemptOutcome::Status(200), None),
        (AttemptOutcome::Status(429), None),
        (AttemptOutcome::Status(500), Some(FallbackReason::Error)),
        (AttemptOutcome::ConnectionRefused, Some(FallbackReason::Error)),
        (AttemptOutcome::ConnectionReset, Some(FallbackReason::Error)),
        (AttemptOutcome::Timeout, Some(FallbackReason::Timeout)),
        (AttemptOutcome::Rejected(Rejection::DeadlineExceeded), Some(FallbackReason::Timeout)),
        (AttemptOutcome::Rejected(Rejection::CircuitOpen), Some(FallbackReason::BreakerOpen)),
        (AttemptOutcome::Rejected(Rejection::BulkheadFull), Some(FallbackReason::Rejected)),
        (AttemptOutcome::Rejected(Rejection::RateLimited), Some(FallbackReason::Rejected)),
        (AttemptOutcome::Rejected(Rejection::QueueFull), Some(FallbackReason::Rejected)),
        (AttemptOutcome::Rejected(Rejection::Throttled), Some(FallbackReason::Rejected)),
    ];
    for (outcome, reason) in cases {
        assert_eq!(FallbackReason::from_outcome(outcome), reason, "{outcome:?}");
    }
    // Reasons are data: they serialise by name for reports.
    assert_eq!(serde_json::to_string(&FallbackReason::BreakerOpen).unwrap(), r#""breaker_open""#);
}

#[test]
fn each_validation_error_names_its_field() {
    let cache = |capacity| FallbackConfig::LastGood {
        cache: CacheConfig { capacity, ..CacheConfig::default() },
        otherwise: None,
    };
    let cases = [
        (cache(0), "cache.capacity: must be at least 1"),
        (cache(u32::MAX), "cache.capacity: must be at most 2147483648"),
        (FallbackConfig::Alternate { dependency: " ".into() }, "dependency: must not be empty"),
    ];
    for (config, message) in cases {
        assert_eq!(config.validate().unwrap_err().to_string(), message);
        assert_eq!(Fallback::<u32>::new(config).err().unwrap().to_string(), message);
    }
    let err = serde_json::from_str::<FallbackConfig>(r#"{"kind": "static", "value": "x", "valu": "y"}"#).unwrap_err();
    assert!(err.to_string().contains("valu"), "{err}");
    assert!(FallbackConfig::default().validate().is_ok());
}
