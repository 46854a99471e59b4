//! Rate limiters against naive reference models.
//!
//! Each reference keeps the full log of admissions and applies the
//! algorithm's definition directly (counts over windows, a min-plus formula
//! for the token bucket), with none of the implementation's incremental
//! state. Every decision must match, every `retry_after` must be exact (one
//! nanosecond earlier is still denied), and the admissions must respect the
//! limit in every window of the algorithm's own kind.

use proptest::prelude::*;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::limiter::{Decision, KeyedLimiter, KeyedLimiterConfig, Limit, RateLimiter, RateLimiterConfig};

/// One request: time since the previous one, permits asked.
#[derive(Debug, Clone, Copy)]
struct Op {
    gap_kind: u8,
    gap_raw: u64,
    permits: u32,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (0u8..3, 0u64..1_000_000, prop_oneof![4 => Just(1u32), 1 => 0u32..6])
            .prop_map(|(gap_kind, gap_raw, permits)| Op { gap_kind, gap_raw, permits }),
        1..60,
    )
}

/// Times that cluster: many requests at the same instant, many within a
/// fraction of the period, some several periods apart.
fn times(ops: &[Op], period_ns: u64) -> Vec<SimTime> {
    let mut now = 0u64;
    ops.iter()
        .map(|op| {
            now += match op.gap_kind {
                0 => 0,
                1 => op.gap_raw % (period_ns / 3 + 1),
                _ => op.gap_raw % (3 * period_ns),
            };
            SimTime::from_nanos(now)
        })
        .collect()
}

const PERIODS_NS: [u64; 3] = [1_000, 7_000, 9_999];

/// The same request a nanosecond before `retry_after` is denied, and at
/// `retry_after` accepted, if nothing else happens in between.
fn check_retry_after(limiter: &RateLimiter, now: SimTime, permits: u32, decision: Decision) {
    let Decision::Denied { retry_after, .. } = decision else {
        return;
    };
    if retry_after == SimDuration::MAX {
        return;
    }
    let at = now + retry_after;
    assert!(
        limiter.clone().try_acquire(at, permits).is_allowed(),
        "not allowed at retry_after {retry_after} after {now}"
    );
    if !retry_after.is_zero() {
        let before = at - SimDuration::from_nanos(1);
        assert!(
            !limiter.clone().try_acquire(before, permits).is_allowed(),
            "already allowed 1ns before retry_after {retry_after}"
        );
    }
}

/// Drives `limiter` and `reference` with the same requests; the reference
/// returns its decision given the admissions so far.
fn check(
    config: RateLimiterConfig,
    times: &[SimTime],
    ops: &[Op],
    mut reference: impl FnMut(&[(SimTime, u32)], SimTime, u32) -> Decision,
) -> Vec<(SimTime, u32, Decision)> {
    let mut limiter = RateLimiter::new(config).expect("valid config");
    let mut admitted: Vec<(SimTime, u32)> = Vec::new();
    let mut trace = Vec::new();
    for (&now, op) in times.iter().zip(ops) {
        let before = limiter.clone();
        let expected = reference(&admitted, now, op.permits);
        let got = limiter.try_acquire(now, op.permits);
        limiter.check_invariants();
        match (got, expected) {
            // A reference may leave `retry_after` as zero: the exactness
            // check below then stands in for it.
            (Decision::Denied { remaining, .. }, Decision::Denied { retry_after: SimDuration::ZERO, remaining: r }) => {
                assert_eq!(remaining, r, "at {now} asking {}", op.permits)
            }
            _ => assert_eq!(got, expected, "at {now} asking {}", op.permits),
        }
        check_retry_after(&before, now, op.permits, got);
        if got.is_allowed() {
            admitted.push((now, op.permits));
        }
        trace.push((now, op.permits, got));
    }
    trace
}

fn sum(admitted: &[(SimTime, u32)], mut keep: impl FnMut(SimTime) -> bool) -> u32 {
    admitted.iter().filter(|(t, _)| keep(*t)).map(|&(_, p)| p).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fixed_window_matches_its_definition(count in 1u32..8, p in 0usize..3, ops in ops()) {
        let w = PERIODS_NS[p];
        let ts = times(&ops, w);
        let config = RateLimiterConfig::FixedWindow { limit: Limit::new(count, SimDuration::from_nanos(w)) };
        let trace = check(config, &ts, &ops, |admitted, now, permits| {
            let window = now.as_nanos() / w;
            let used = sum(admitted, |t| t.as_nanos() / w == window);
            if used + permits <= count {
                Decision::Allowed { remaining: count - used - permits }
            } else {
                let retry_after = if permits > count {
                    SimDuration::MAX
                } else {
                    SimDuration::from_nanos((window + 1) * w - now.as_nanos())
                };
                Decision::Denied { retry_after, remaining: count - used }
            }
        });
        // Its own kind of window: every aligned window holds at most `count`.
        let admitted: Vec<_> = trace.iter().filter(|x| x.2.is_allowed()).map(|x| (x.0, x.1)).collect();
        for &(t, _) in &admitted {
            prop_assert!(sum(&admitted, |s| s.as_nanos() / w == t.as_nanos() / w) <= count);
        }
    }

    #[test]
    fn sliding_log_is_exact(count in 1u32..8, p in 0usize..3, ops in ops()) {
        let w = PERIODS_NS[p];
        let ts = times(&ops, w);
        let config = RateLimiterConfig::SlidingLog { limit: Limit::new(count, SimDuration::from_nanos(w)) };
        let trace = check(config, &ts, &ops, |admitted, now, permits| {
            // A permit admitted at t counts while now <= t + w (`limits`'
            // moving window keeps entries with atime >= now - expiry).
            let live = |at: SimTime| sum(admitted, |t| t.as_nanos() + w >= at.as_nanos());
            let used = live(now);
            if used + permits <= count {
                return Decision::Allowed { remaining: count - used - permits };
            }
            if permits > count {
                return Decision::Denied { retry_after: SimDuration::MAX, remaining: count - used };
            }
            // The first instant, just after an expiry, at which the request fits.
            let at = admitted
                .iter()
                .map(|&(t, _)| t.as_nanos() + w + 1)
                .filter(|&e| e > now.as_nanos())
                .filter(|&e| live(SimTime::from_nanos(e)) + permits <= count)
                .min()
                .expect("everything expires eventually");
            Decision::Denied { retry_after: SimDuration::from_nanos(at - now.as_nanos()), remaining: count - used }
        });
        // Exact: every closed sliding window [t - w, t] holds at most `count`.
        let admitted: Vec<_> = trace.iter().filter(|x| x.2.is_allowed()).map(|x| (x.0, x.1)).collect();
        for &(t, _) in &admitted {
            prop_assert!(sum(&admitted, |s| s <= t && s.as_nanos() + w >= t.as_nanos()) <= count);
        }
    }

    #[test]
    fn sliding_window_counter_matches_its_formula(count in 1u32..8, p in 0usize..3, ops in ops()) {
        let w = PERIODS_NS[p];
        let ts = times(&ops, w);
        let config = RateLimiterConfig::SlidingWindow { limit: Limit::new(count, SimDuration::from_nanos(w)) };
        let trace = check(config, &ts, &ops, |admitted, now, permits| {
            let window = now.as_nanos() / w;
            let curr = u128::from(sum(admitted, |t| t.as_nanos() / w == window));
            let prev = u128::from(sum(admitted, |t| t.as_nanos() / w + 1 == window));
            let elapsed = u128::from(now.as_nanos() % w);
            let w = u128::from(w);
            // prev × (w − elapsed) / w + curr, compared without rounding.
            let used = prev * (w - elapsed) + curr * w;
            let budget = u128::from(count) * w;
            let remaining = (budget.saturating_sub(used) / w) as u32;
            if used + u128::from(permits) * w <= budget {
                Decision::Allowed { remaining: ((budget - used - u128::from(permits) * w) / w) as u32 }
            } else {
                // retry_after is checked for exactness by the harness.
                Decision::Denied { retry_after: SimDuration::ZERO, remaining }
            }
        });
        // Every aligned window holds at most `count` (the estimate never
        // undercounts the current window).
        let admitted: Vec<_> = trace.iter().filter(|x| x.2.is_allowed()).map(|x| (x.0, x.1)).collect();
        for &(t, _) in &admitted {
            prop_assert!(sum(&admitted, |s| s.as_nanos() / w == t.as_nanos() / w) <= count);
        }
    }

    #[test]
    fn token_bucket_matches_the_min_plus_envelope(
        count in 1u32..5, burst in 1u32..6, p in 0usize..3, ops in ops(),
    ) {
        let w = PERIODS_NS[p];
        let ts = times(&ops, w);
        let rate = Limit::new(count, SimDuration::from_nanos(w));
        let config = RateLimiterConfig::TokenBucket { rate, burst };
        let cost = u128::from(w);
        let cap = u128::from(burst) * cost;
        let c = u128::from(count);
        // Tokens at `now` (scaled by the period): the bucket starts full and
        // its level is the tightest of `cap + refill since s − spent since s`
        // over every admission time s.
        let level = |admitted: &[(SimTime, u32)], now: SimTime| -> u128 {
            let mut level = cap;
            for &(s, _) in admitted {
                let spent = u128::from(sum(admitted, |t| t >= s)) * cost;
                let refill = u128::from(now.as_nanos() - s.as_nanos()) * c;
                level = level.min((cap + refill).saturating_sub(spent));
            }
            level
        };
        let trace = check(config, &ts, &ops, |admitted, now, permits| {
            let have = level(admitted, now);
            let need = u128::from(permits) * cost;
            if need <= have {
                Decision::Allowed { remaining: ((have - need) / cost) as u32 }
            } else {
                let retry_after = if permits > burst {
                    SimDuration::MAX
                } else {
                    SimDuration::from_nanos((need - have).div_ceil(c) as u64)
                };
                Decision::Denied { retry_after, remaining: (have / cost) as u32 }
            }
        });
        // Any span [s, t] admits at most burst + rate × (t − s).
        let admitted: Vec<_> = trace.iter().filter(|x| x.2.is_allowed()).map(|x| (x.0, x.1)).collect();
        for &(s, _) in &admitted {
            for &(t, _) in admitted.iter().filter(|(t, _)| *t >= s) {
                let n = u128::from(sum(&admitted, |x| x >= s && x <= t));
                prop_assert!(n * cost <= cap + u128::from(t.as_nanos() - s.as_nanos()) * c);
            }
        }
    }

    #[test]
    fn gcra_decides_exactly_like_the_token_bucket(
        count in 1u32..5, burst in 1u32..6, p in 0usize..3, ops in ops(),
    ) {
        let w = PERIODS_NS[p];
        let ts = times(&ops, w);
        let rate = Limit::new(count, SimDuration::from_nanos(w));
        let mut bucket = RateLimiter::new(RateLimiterConfig::TokenBucket { rate, burst }).unwrap();
        let mut gcra = RateLimiter::new(RateLimiterConfig::Gcra { rate, burst }).unwrap();
        for (&now, op) in ts.iter().zip(&ops) {
            let before = gcra.clone();
            let g = gcra.try_acquire(now, op.permits);
            prop_assert_eq!(g, bucket.try_acquire(now, op.permits), "at {}", now);
            check_retry_after(&before, now, op.permits, g);
        }
    }

    #[test]
    fn leaky_queue_spaces_departures_at_the_rate(
        count in 1u32..5, burst in 0u32..6, p in 0usize..3, ops in ops(),
    ) {
        let w = PERIODS_NS[p];
        let ts = times(&ops, w);
        let rate = Limit::new(count, SimDuration::from_nanos(w));
        let cost = u128::from(w);
        let c = u128::from(count);
        let mut queue = RateLimiter::new(RateLimiterConfig::LeakyQueue { rate, burst, nodelay: false }).unwrap();
        // Reference: the list of scheduled departures (scaled time). A
        // request departs one interval after the previous departure, or
        // now if the queue has drained; it is refused if that is more than
        // `burst` intervals away.
        let mut departures: Vec<u128> = Vec::new();
        let ones: Vec<Op> = ops.iter().map(|o| Op { permits: 1, ..*o }).collect();
        for (&now, _) in ts.iter().zip(&ones) {
            let now_s = u128::from(now.as_nanos()) * c;
            let start = departures.last().map_or(now_s, |&d| (d + cost).max(now_s));
            let wait = start - now_s;
            let before = queue.clone();
            let got = queue.try_acquire(now, 1);
            check_retry_after(&before, now, 1, got);
            if wait > u128::from(burst) * cost {
                prop_assert!(matches!(got, Decision::Denied { .. }), "{:?}", got);
                continue;
            }
            departures.push(start);
            let delay = SimDuration::from_nanos(wait.div_ceil(c) as u64);
            match got {
                Decision::Allowed { .. } => prop_assert!(delay.is_zero()),
                Decision::Delayed { delay: d, .. } => prop_assert_eq!(d, delay),
                Decision::Denied { .. } => prop_assert!(false, "refused with room at {}", now),
            }
            // Nobody is delayed more than `burst` intervals.
            prop_assert!(wait <= u128::from(burst) * cost);
        }
        // Departures are at least one interval apart: the drain rate.
        for pair in departures.windows(2) {
            prop_assert!(pair[1] - pair[0] >= cost);
        }
    }

    #[test]
    fn leaky_queue_with_nodelay_is_gcra_with_one_more_burst(
        count in 1u32..5, burst in 0u32..6, p in 0usize..3, ops in ops(),
    ) {
        let w = PERIODS_NS[p];
        let ts = times(&ops, w);
        let rate = Limit::new(count, SimDuration::from_nanos(w));
        let mut queue = RateLimiter::new(RateLimiterConfig::LeakyQueue { rate, burst, nodelay: true }).unwrap();
        let mut gcra = RateLimiter::new(RateLimiterConfig::Gcra { rate, burst: burst + 1 }).unwrap();
        for &now in &ts {
            let q = queue.try_acquire(now, 1);
            prop_assert!(!matches!(q, Decision::Delayed { .. }), "nodelay never delays");
            prop_assert_eq!(q.is_allowed(), gcra.try_acquire(now, 1).is_allowed(), "at {}", now);
        }
    }

    #[test]
    fn concurrency_never_exceeds_its_maximum(
        max in 1u32..6,
        steps in prop::collection::vec((any::<bool>(), 0u32..4, any::<prop::sample::Index>()), 1..80),
    ) {
        let mut limiter = RateLimiter::new(RateLimiterConfig::Concurrency { max_in_flight: max }).unwrap();
        let mut held: Vec<u32> = Vec::new();
        for (i, (acquire, permits, pick)) in steps.into_iter().enumerate() {
            let now = SimTime::from_nanos(i as u64);
            let in_flight: u32 = held.iter().sum();
            if acquire || held.is_empty() {
                let got = limiter.try_acquire(now, permits);
                if in_flight + permits <= max {
                    prop_assert_eq!(got, Decision::Allowed { remaining: max - in_flight - permits });
                    held.push(permits);
                } else {
                    prop_assert_eq!(got, Decision::Denied { retry_after: SimDuration::MAX, remaining: max - in_flight });
                }
            } else {
                let released = held.swap_remove(pick.index(held.len()));
                limiter.release(released);
            }
            limiter.check_invariants();
            prop_assert!(held.iter().sum::<u32>() <= max);
        }
    }

    #[test]
    fn keyed_table_is_one_limiter_per_key_while_it_fits(
        algorithm in 0usize..7,
        keys_max in 1u32..6,
        ops in ops(),
        keys in prop::collection::vec(0u8..5, 60),
    ) {
        let limit = Limit::new(3, SimDuration::from_nanos(1_000));
        let config = [
            RateLimiterConfig::FixedWindow { limit },
            RateLimiterConfig::SlidingLog { limit },
            RateLimiterConfig::SlidingWindow { limit },
            RateLimiterConfig::TokenBucket { rate: limit, burst: 3 },
            RateLimiterConfig::Gcra { rate: limit, burst: 3 },
            RateLimiterConfig::LeakyQueue { rate: limit, burst: 2, nodelay: false },
            RateLimiterConfig::Concurrency { max_in_flight: 3 },
        ][algorithm]
            .clone();
        let mut keyed: KeyedLimiter<u8> =
            KeyedLimiter::new(KeyedLimiterConfig { limiter: config.clone(), keys_max }).unwrap();
        // Reference: a separate limiter per key, never forgotten.
        let mut separate: Vec<Option<RateLimiter>> = vec![None; 5];
        let ts = times(&ops, 1_000);
        for ((&now, op), &key) in ts.iter().zip(&ops).zip(&keys) {
            let got = keyed.try_acquire(&key, now, op.permits);
            let reference = separate[key as usize]
                .get_or_insert_with(|| RateLimiter::new(config.clone()).unwrap());
            let expect = reference.try_acquire(now, op.permits);
            if keyed.stats().evicted_active == 0 {
                // Every key forgotten so far was idle: forgetting it changed
                // no decision.
                prop_assert_eq!(got, expect, "after idle evictions only");
            }
            if keys_max >= 5 {
                prop_assert_eq!(got, expect, "table never full: exactly per-key");
            }
            prop_assert!(keyed.len() <= keys_max);
            keyed.check_invariants();
            // A concurrency key releases right away, so keys stay evictable.
            if algorithm == 6 && got.is_allowed() {
                keyed.release(&key, op.permits);
                reference.release(op.permits);
            }
        }
    }
}
