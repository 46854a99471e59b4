//! Example tests: limit strings, each validation error, the fixed window's
//! boundary weakness, nginx `limit_req` behaviour, and the keyed table.

use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::limiter::{Decision, KeyedLimiter, KeyedLimiterConfig, Limit, RateLimiter, RateLimiterConfig};

fn ms(n: u64) -> SimTime {
    SimTime::from_millis(n)
}

/// Parses `text` and compares with `expect`: `Ok((count, period))` or the
/// full error message.
fn check_limit(text: &str, expect: Result<(u32, SimDuration), &str>) {
    let got = text.parse::<Limit>();
    match expect {
        Ok((count, period)) => {
            let limit = got.unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
            assert_eq!((limit.count, limit.period), (count, period), "{text:?}");
            // Printing gives a string that parses back to the same limit.
            assert_eq!(limit.to_string().parse::<Limit>().unwrap(), limit);
        }
        Err(message) => assert_eq!(got.unwrap_err().to_string(), message, "{text:?}"),
    }
}

#[test]
fn limit_strings() {
    let s = SimDuration::from_secs;
    check_limit("100/minute", Ok((100, s(60))));
    check_limit("10/second", Ok((10, s(1))));
    check_limit("1000/hour", Ok((1000, s(3600))));
    check_limit("5/30s", Ok((5, s(30))));
    check_limit("5/1.5m", Ok((5, s(90))));
    check_limit("2/day", Ok((2, s(86_400))));
    check_limit(" 7 / minutes ", Ok((7, s(60))));
    check_limit("10 per second", Ok((10, s(1))));
    check_limit("3/s", Ok((3, s(1))));
    check_limit("3/ms", Ok((3, SimDuration::from_millis(1))));
    check_limit("3/hr", Ok((3, s(3600))));

    check_limit("100", Err(r#"invalid limit "100": expected <count>/<period>, e.g. "100/minute" or "5/30s""#));
    check_limit("/minute", Err(r#"invalid limit "/minute": missing count before the period"#));
    check_limit("ten/minute", Err(r#"invalid limit "ten/minute": count must be a whole number from 1 to 4294967295"#));
    check_limit("-1/minute", Err(r#"invalid limit "-1/minute": count must be a whole number from 1 to 4294967295"#));
    check_limit("0/minute", Err(r#"invalid limit "0/minute": count must be at least 1"#));
    check_limit(
        "100/fortnight",
        Err(r#"invalid limit "100/fortnight": period must be second, minute, hour, day or a duration like 30s"#),
    );
    check_limit("5/0s", Err(r#"invalid limit "5/0s": period must be above 0s"#));
    check_limit("5/forever", Err(r#"invalid limit "5/forever": period must be finite"#));
}

#[test]
fn limits_deserialize_from_strings_and_quote_bad_ones() {
    let c: RateLimiterConfig = serde_json::from_str(r#"{"algorithm": "fixed_window", "limit": "100/minute"}"#).unwrap();
    assert_eq!(c, RateLimiterConfig::FixedWindow { limit: Limit::new(100, SimDuration::from_secs(60)) });
    let err = serde_json::from_str::<RateLimiterConfig>(r#"{"algorithm": "fixed_window", "limit": "100/fortnight"}"#)
        .unwrap_err();
    assert!(err.to_string().contains(r#""100/fortnight""#), "{err}");
    // Round trip through RON.
    let text = ron::to_string(&c).unwrap();
    assert_eq!(ron::from_str::<RateLimiterConfig>(&text).unwrap(), c);
}

#[test]
fn unknown_fields_are_refused() {
    let err = serde_json::from_str::<RateLimiterConfig>(
        r#"{"algorithm": "token_bucket", "rate": "1/second", "burst": 1, "brust": 2}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("brust"), "{err}");
    let err = serde_json::from_str::<KeyedLimiterConfig>(r#"{"keys_maximum": 3}"#).unwrap_err();
    assert!(err.to_string().contains("keys_maximum"), "{err}");
}

fn check_invalid(config: RateLimiterConfig, message: &str) {
    assert_eq!(config.validate().unwrap_err().to_string(), message);
    assert_eq!(RateLimiter::new(config).unwrap_err().to_string(), message);
}

#[test]
fn each_validation_error_names_its_field() {
    let zero_count = Limit::new(0, SimDuration::from_secs(1));
    let zero_period = Limit::new(1, SimDuration::ZERO);
    let ok = Limit::per_second(10);
    check_invalid(RateLimiterConfig::FixedWindow { limit: zero_count }, "limit.count: must be at least 1");
    check_invalid(RateLimiterConfig::SlidingWindow { limit: zero_period }, "limit.period: must be above 0s");
    check_invalid(
        RateLimiterConfig::FixedWindow { limit: Limit::new(1, SimDuration::MAX) },
        "limit.period: must be finite",
    );
    check_invalid(
        RateLimiterConfig::SlidingLog { limit: Limit::new(100_000, SimDuration::from_secs(1)) },
        "limit.count: must be at most 65536 for a sliding log (it keeps one timestamp per permit)",
    );
    check_invalid(RateLimiterConfig::TokenBucket { rate: zero_count, burst: 1 }, "rate.count: must be at least 1");
    check_invalid(RateLimiterConfig::TokenBucket { rate: ok, burst: 0 }, "burst: must be at least 1");
    check_invalid(RateLimiterConfig::Gcra { rate: ok, burst: 0 }, "burst: must be at least 1");
    check_invalid(
        RateLimiterConfig::LeakyQueue { rate: zero_period, burst: 3, nodelay: false },
        "rate.period: must be above 0s",
    );
    check_invalid(RateLimiterConfig::Concurrency { max_in_flight: 0 }, "max_in_flight: must be at least 1");
    let keyed = |keys_max| KeyedLimiterConfig { limiter: RateLimiterConfig::default(), keys_max };
    assert_eq!(keyed(0).validate().unwrap_err().to_string(), "keys_max: must be at least 1");
    assert_eq!(keyed(u32::MAX).validate().unwrap_err().to_string(), "keys_max: must be at most 2147483648");
    let nested = KeyedLimiterConfig { limiter: RateLimiterConfig::Gcra { rate: ok, burst: 0 }, keys_max: 10 };
    assert_eq!(KeyedLimiter::<u64>::new(nested).err().unwrap().to_string(), "limiter.burst: must be at least 1");
    assert!(RateLimiterConfig::default().validate().is_ok());
    assert!(KeyedLimiterConfig::default().validate().is_ok());
}

/// Requests at `at` until one is denied; returns how many went.
fn burst_at(limiter: &mut RateLimiter, at: SimTime, tries: u32) -> u32 {
    (0..tries).take_while(|_| limiter.try_acquire(at, 1).is_allowed()).count() as u32
}

#[test]
fn fixed_window_admits_twice_the_limit_across_a_boundary() {
    let limit: Limit = "10/second".parse().unwrap();
    let mut fixed = RateLimiter::new(RateLimiterConfig::FixedWindow { limit }).unwrap();
    let mut log = RateLimiter::new(RateLimiterConfig::SlidingLog { limit }).unwrap();
    let mut counter = RateLimiter::new(RateLimiterConfig::SlidingWindow { limit }).unwrap();
    // A full window's worth just before the boundary at 1s...
    for limiter in [&mut fixed, &mut log, &mut counter] {
        assert_eq!(burst_at(limiter, ms(999), 20), 10);
    }
    // ...and again 2ms later, just after it.
    let fixed_after = burst_at(&mut fixed, ms(1_001), 20);
    let log_after = burst_at(&mut log, ms(1_001), 20);
    let counter_after = burst_at(&mut counter, ms(1_001), 20);
    // The fixed window has reset: 20 requests within 2ms against a limit
    // of 10 per second.
    assert_eq!(fixed_after, 10);
    // The sliding log counts the last second exactly and admits nothing.
    assert_eq!(log_after, 0);
    // The counter weighs the previous window by 999/1000 of it: 9.99 of 10
    // used, so nothing fits either.
    assert_eq!(counter_after, 0);
    // The log frees a slot one nanosecond after a second has passed since
    // each admission: as in `limits`' moving window, an admission exactly
    // one window ago still counts.
    let one_ns = SimDuration::from_nanos(1);
    assert_eq!(
        log.try_acquire(ms(1_001), 1),
        Decision::Denied { retry_after: SimDuration::from_millis(998) + one_ns, remaining: 0 }
    );
    assert!(!log.try_acquire(ms(1_999), 1).is_allowed());
    assert_eq!(burst_at(&mut log, ms(1_999) + one_ns, 20), 10);
}

#[test]
fn sliding_window_counter_weighs_the_previous_window() {
    let limit: Limit = "10/second".parse().unwrap();
    let mut counter = RateLimiter::new(RateLimiterConfig::SlidingWindow { limit }).unwrap();
    assert_eq!(burst_at(&mut counter, ms(100), 20), 10);
    // At 1.5s half of the previous window still weighs: 5 of 10.
    assert_eq!(burst_at(&mut counter, ms(1_500), 20), 5);
    // The next request fits when 10·(1 − e) + 5 ≤ 9, e ≥ 0.6: at 1.6s.
    assert_eq!(
        counter.try_acquire(ms(1_500), 1),
        Decision::Denied { retry_after: SimDuration::from_millis(100), remaining: 0 }
    );
}

#[test]
fn leaky_queue_follows_nginx_limit_req() {
    let rate: Limit = "1/second".parse().unwrap();
    let queue = |burst, nodelay| RateLimiter::new(RateLimiterConfig::LeakyQueue { rate, burst, nodelay }).unwrap();
    let t0 = ms(0);
    // No burst: anything faster than the rate is refused, even 10ms early.
    let mut strict = queue(0, false);
    assert!(strict.try_acquire(t0, 1).is_allowed());
    assert_eq!(
        strict.try_acquire(ms(990), 1),
        Decision::Denied { retry_after: SimDuration::from_millis(10), remaining: 0 }
    );
    assert!(strict.try_acquire(ms(1_000), 1).is_allowed());

    // burst=5: six simultaneous requests pass, five of them delayed by
    // 1..5 seconds; the seventh is refused.
    let mut delayed = queue(5, false);
    let decisions: Vec<Decision> = (0..7).map(|_| delayed.try_acquire(t0, 1)).collect();
    assert_eq!(decisions[0], Decision::Allowed { remaining: 5 });
    for (k, d) in decisions.iter().enumerate().take(6).skip(1) {
        assert_eq!(*d, Decision::Delayed { delay: SimDuration::from_secs(k as u64), remaining: 5 - k as u32 });
    }
    assert!(matches!(decisions[6], Decision::Denied { retry_after, .. } if retry_after == SimDuration::from_secs(1)));

    // burst=5 nodelay: the same six pass at once; the queue still fills,
    // so only one more is accepted per second afterwards.
    let mut nodelay = queue(5, true);
    for k in 0..6 {
        assert_eq!(nodelay.try_acquire(t0, 1), Decision::Allowed { remaining: 5 - k });
    }
    assert!(!nodelay.try_acquire(t0, 1).is_allowed());
    assert!(!nodelay.try_acquire(ms(999), 1).is_allowed());
    assert!(nodelay.try_acquire(ms(1_000), 1).is_allowed());
    assert!(!nodelay.try_acquire(ms(1_000), 1).is_allowed());
}

#[test]
fn permits_above_the_limit_are_never_allowed() {
    let limit: Limit = "3/second".parse().unwrap();
    for config in [
        RateLimiterConfig::FixedWindow { limit },
        RateLimiterConfig::SlidingLog { limit },
        RateLimiterConfig::SlidingWindow { limit },
        RateLimiterConfig::TokenBucket { rate: limit, burst: 3 },
        RateLimiterConfig::Gcra { rate: limit, burst: 3 },
        RateLimiterConfig::Concurrency { max_in_flight: 3 },
    ] {
        let mut limiter = RateLimiter::new(config.clone()).unwrap();
        assert_eq!(
            limiter.try_acquire(ms(0), 4),
            Decision::Denied { retry_after: SimDuration::MAX, remaining: 3 },
            "{config:?}"
        );
        assert!(limiter.try_acquire(ms(0), 3).is_allowed(), "{config:?}");
    }
}

#[test]
fn three_per_second_does_not_round_its_interval() {
    // 333_333_333.3ns per token: after exactly one second three tokens are
    // back, not two and 0.9999.
    let rate: Limit = "3/second".parse().unwrap();
    let mut bucket = RateLimiter::new(RateLimiterConfig::TokenBucket { rate, burst: 3 }).unwrap();
    assert_eq!(burst_at(&mut bucket, ms(0), 10), 3);
    assert_eq!(burst_at(&mut bucket, ms(1_000), 10), 3);
    // One token takes 333_333_334ns (rounded up, so it is really there).
    assert_eq!(
        bucket.try_acquire(ms(1_000), 1),
        Decision::Denied { retry_after: SimDuration::from_nanos(333_333_334), remaining: 0 }
    );
}

#[test]
fn keyed_limits_are_per_key_and_evict_unused_keys_first() {
    let config = KeyedLimiterConfig {
        limiter: RateLimiterConfig::TokenBucket { rate: "1/second".parse().unwrap(), burst: 2 },
        keys_max: 3,
    };
    let mut keyed: KeyedLimiter<String> = KeyedLimiter::new(config).unwrap();
    let key = |s: &str| s.to_string();
    for user in ["a", "b", "c"] {
        assert_eq!(keyed.try_acquire(&key(user), ms(0), 1), Decision::Allowed { remaining: 1 });
    }
    // "a" and "b" are used again; "c" has not been since it came.
    assert_eq!(keyed.try_acquire(&key("a"), ms(0), 1), Decision::Allowed { remaining: 0 });
    assert_eq!(keyed.try_acquire(&key("b"), ms(0), 1), Decision::Allowed { remaining: 0 });
    // The sweep gives "a" and "b" a second chance and takes "c", wherever
    // the keys sit in the table.
    assert!(keyed.try_acquire(&key("d"), ms(0), 1).is_allowed());
    assert_eq!(keyed.len(), 3);
    assert_eq!(keyed.stats().evicted_active, 1);
    assert_eq!(burst_at_keyed(&mut keyed, &key("a"), ms(0)), 0, "a was kept");
    assert_eq!(burst_at_keyed(&mut keyed, &key("b"), ms(0)), 0, "b was kept");
    // "c" comes back with a full bucket.
    assert_eq!(burst_at_keyed(&mut keyed, &key("c"), ms(0)), 2);
    assert_eq!(keyed.stats().evicted_active, 2);
    keyed.check_invariants();

    // Much later every bucket is full again: evicting is now harmless and
    // is counted as such.
    assert!(keyed.try_acquire(&key("e"), ms(10_000), 1).is_allowed());
    assert_eq!(keyed.stats().evicted_idle, 1);
}

fn burst_at_keyed(keyed: &mut KeyedLimiter<String>, key: &String, at: SimTime) -> u32 {
    (0..10).take_while(|_| keyed.try_acquire(key, at, 1).is_allowed()).count() as u32
}

#[test]
fn keyed_concurrency_never_evicts_a_key_holding_permits() {
    let config = KeyedLimiterConfig { limiter: RateLimiterConfig::Concurrency { max_in_flight: 1 }, keys_max: 2 };
    let mut keyed: KeyedLimiter<u32> = KeyedLimiter::new(config).unwrap();
    assert!(keyed.try_acquire(&1, ms(0), 1).is_allowed());
    assert!(keyed.try_acquire(&2, ms(0), 1).is_allowed());
    // Both keys hold their permit: a third key is refused rather than
    // evicting one and losing its release.
    assert_eq!(keyed.try_acquire(&3, ms(1), 1), Decision::Denied { retry_after: SimDuration::MAX, remaining: 0 });
    assert_eq!(keyed.stats().denied_table_full, 1);
    assert!(keyed.release(&1, 1));
    assert!(keyed.try_acquire(&3, ms(2), 1).is_allowed());
    assert_eq!(keyed.stats().evicted_idle, 1);
    assert!(!keyed.release(&1, 1), "key 1 was evicted once idle");
    assert!(!keyed.try_acquire(&2, ms(3), 1).is_allowed());
    keyed.check_invariants();
}

#[test]
fn keyed_sliding_log_reuses_buffers_of_evicted_keys() {
    let config = KeyedLimiterConfig {
        limiter: RateLimiterConfig::SlidingLog { limit: "4/second".parse().unwrap() },
        keys_max: 100,
    };
    let mut keyed: KeyedLimiter<u64> = KeyedLimiter::new(config).unwrap();
    for k in 0..100 {
        keyed.try_acquire(&k, ms(k), 1);
    }
    let full = keyed.memory_bytes();
    for k in 100..10_000 {
        assert!(keyed.try_acquire(&k, ms(k), 1).is_allowed());
    }
    // 9 900 more keys went through a table of 100 without growing it.
    assert_eq!(keyed.memory_bytes(), full);
    assert_eq!(keyed.len(), 100);
    keyed.check_invariants();
}
