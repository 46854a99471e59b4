//! Retry: the published backoff formulas and the stop and retry-on rules.

use stormglass_core::rng::SimRng;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::AttemptOutcome;
use stormglass_patterns::retry::{
    Backoff, GiveUpReason, Idempotency, RetryConfig, RetryDecision, RetryOn, RetryPolicy, StopConfig,
};

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}
fn ms(m: u64) -> SimDuration {
    SimDuration::from_millis(m)
}

fn delays(b: &Backoff, n: u32, seed: u64) -> Vec<SimDuration> {
    let mut rng = SimRng::from_seed_u64(seed);
    let mut previous = SimDuration::ZERO;
    (1..=n)
        .map(|a| {
            previous = b.delay(a, previous, &mut rng);
            previous
        })
        .collect()
}

#[test]
fn tenacity_wait_exponential_multiplier_1_min_1_max_10() {
    let b = Backoff::Exponential { multiplier: secs(1), base: 2.0, min: secs(1), max: secs(10) };
    assert_eq!(delays(&b, 6, 0), [secs(1), secs(2), secs(4), secs(8), secs(10), secs(10)]);
}

#[test]
fn tenacity_wait_exponential_min_wins_below_and_huge_attempts_saturate_at_max() {
    let b = Backoff::Exponential { multiplier: secs(1), base: 2.0, min: secs(4), max: secs(10) };
    assert_eq!(delays(&b, 5, 0), [secs(4), secs(4), secs(4), secs(8), secs(10)]);
    let mut rng = SimRng::from_seed_u64(0);
    assert_eq!(b.delay(u32::MAX, SimDuration::ZERO, &mut rng), secs(10));
    let half = Backoff::Exponential { multiplier: ms(500), base: 3.0, min: SimDuration::ZERO, max: secs(60) };
    assert_eq!(delays(&half, 4, 0), [ms(500), ms(1500), ms(4500), ms(13_500)]);
}

#[test]
fn incrementing_and_fixed() {
    let b = Backoff::Incrementing { start: ms(100), increment: ms(250), max: secs(1) };
    assert_eq!(delays(&b, 5, 0), [ms(100), ms(350), ms(600), ms(850), secs(1)]);
    assert_eq!(delays(&Backoff::Fixed { delay: ms(7) }, 3, 0), [ms(7); 3]);
}

#[test]
fn full_jitter_lies_under_the_exponential_ceiling_and_spreads() {
    let b = Backoff::FullJitter { multiplier: secs(1), base: 2.0, max: secs(20) };
    let mut rng = SimRng::from_seed_u64(3);
    let mut sum_nanos = 0u128;
    for _ in 0..10_000 {
        let d = b.delay(4, SimDuration::ZERO, &mut rng);
        assert!(d <= secs(8));
        sum_nanos += u128::from(d.as_nanos());
    }
    // Mean of uniform(0, 8 s) is 4 s; 10 000 draws put it within ~0.05 s.
    let mean = sum_nanos as f64 / 10_000.0 / 1e9;
    assert!((mean - 4.0).abs() < 0.1, "{mean}");
}

#[test]
fn equal_jitter_keeps_half_fixed() {
    let b = Backoff::EqualJitter { multiplier: secs(1), base: 2.0, max: secs(20) };
    let mut rng = SimRng::from_seed_u64(4);
    for _ in 0..1000 {
        let d = b.delay(3, SimDuration::ZERO, &mut rng);
        assert!(d >= secs(2) && d <= secs(4), "{d}");
    }
}

#[test]
fn decorrelated_jitter_feeds_on_the_previous_delay() {
    let b = Backoff::Decorrelated { base: ms(100), max: secs(5) };
    let mut rng = SimRng::from_seed_u64(5);
    let mut previous = SimDuration::ZERO;
    let mut grew = false;
    for attempt in 1..200 {
        let d = b.delay(attempt, previous, &mut rng);
        let hi = previous.max(ms(100)).saturating_mul(3).min(secs(5));
        assert!(d >= ms(100) && d <= hi, "attempt {attempt}: {d} not in [100ms, {hi}]");
        grew |= d > secs(1);
        previous = d;
    }
    assert!(grew, "decorrelated jitter should wander up to the cap");
}

#[test]
fn decorrelated_jitter_goes_on_from_its_own_draw_after_a_retry_after_hint() {
    // AWS's `sleep = min(cap, uniform(base, 3 * sleep))` carries the jitter's
    // own last draw: a server's 20 s `retry_after` floors that one delay but
    // must not become the next draw's base.
    let p = policy(
        Backoff::Decorrelated { base: ms(100), max: secs(60) },
        StopConfig { attempts_max: Some(10), ..StopConfig::default() },
    );
    for seed in 0..20 {
        let mut rng = SimRng::from_seed_u64(seed);
        let mut s = p.start(SimTime::ZERO, Idempotency::Idempotent, None);
        let first = p.on_attempt(&mut s, SimTime::ZERO, AttemptOutcome::Status(503), Some(secs(20)), &mut rng);
        assert_eq!(first, RetryDecision::Retry { delay: secs(20) });
        // The first draw is at most 3 x 100 ms, so the second at most 900 ms.
        let RetryDecision::Retry { delay } =
            p.on_attempt(&mut s, SimTime::ZERO + secs(20), AttemptOutcome::Status(503), None, &mut rng)
        else {
            panic!("seed {seed}: a second retry")
        };
        assert!(delay >= ms(100) && delay <= ms(900), "seed {seed}: {delay}");
    }
}

#[test]
fn proportional_jitter_is_grpc_plus_minus_20_percent() {
    let b = Backoff::Proportional { initial: secs(1), multiplier: 1.6, max: secs(120), jitter_ratio: 0.2 };
    let mut rng = SimRng::from_seed_u64(6);
    for _ in 0..1000 {
        let d = b.delay(2, SimDuration::ZERO, &mut rng);
        assert!(d >= ms(1280) && d <= ms(1920), "{d}");
    }
}

#[test]
fn tenacity_wait_fixed_3_plus_wait_random_0_2() {
    let b =
        Backoff::Sum(vec![Backoff::Fixed { delay: secs(3) }, Backoff::Random { min: SimDuration::ZERO, max: secs(2) }]);
    b.validate().unwrap();
    let mut rng = SimRng::from_seed_u64(7);
    let mut lo = SimDuration::MAX;
    let mut hi = SimDuration::ZERO;
    for _ in 0..2000 {
        let d = b.delay(1, SimDuration::ZERO, &mut rng);
        assert!(d >= secs(3) && d <= secs(5), "{d}");
        lo = lo.min(d);
        hi = hi.max(d);
    }
    assert!(lo < ms(3010) && hi > ms(4990), "the random part covers its range: {lo}..{hi}");
    assert_eq!(b.bounds(1, SimDuration::ZERO), (secs(3), secs(5)));
}

#[test]
fn backoff_validation_names_the_field() {
    let sum = Backoff::Sum(vec![Backoff::Decorrelated { base: secs(1), max: secs(2) }]);
    assert_eq!(sum.validate().unwrap_err().to_string(), "sum.0: decorrelated jitter cannot be part of a sum");
    let nested = Backoff::Sum(vec![Backoff::Fixed { delay: secs(1) }, Backoff::Random { min: secs(3), max: secs(1) }]);
    assert_eq!(nested.validate().unwrap_err().to_string(), "sum.1.random.max: must not be below min");
    let c = RetryConfig {
        backoff: Backoff::Exponential { multiplier: secs(1), base: 0.5, min: secs(0), max: secs(1) },
        ..RetryConfig::default()
    };
    assert_eq!(c.validate().unwrap_err().to_string(), "backoff.exponential.base: must be between 1 and 100");
}

fn policy(backoff: Backoff, stop: StopConfig) -> RetryPolicy {
    RetryPolicy::new(RetryConfig { backoff, stop, retry_on: RetryOn::default() }).unwrap()
}

fn fixed(d: SimDuration) -> Backoff {
    Backoff::Fixed { delay: d }
}

#[test]
fn stops_after_attempts_max_and_sums_the_waits() {
    let p = policy(fixed(secs(1)), StopConfig::default());
    let mut rng = SimRng::from_seed_u64(0);
    let mut s = p.start(SimTime::ZERO, Idempotency::Idempotent, None);
    let fail = AttemptOutcome::Timeout;
    let mut t = SimTime::ZERO;
    let mut decisions = Vec::new();
    for _ in 0..3 {
        let d = p.on_attempt(&mut s, t, fail, None, &mut rng);
        if let RetryDecision::Retry { delay } = d {
            t += delay;
        }
        decisions.push(d);
    }
    assert_eq!(
        decisions,
        [
            RetryDecision::Retry { delay: secs(1) },
            RetryDecision::Retry { delay: secs(1) },
            RetryDecision::GiveUp { reason: GiveUpReason::AttemptsExhausted }
        ]
    );
    assert_eq!(s.attempts(), 3);
    assert_eq!(s.waited_total(), secs(2));
    assert!(s.is_finished());
}

#[test]
fn what_is_retried() {
    let p = policy(fixed(secs(1)), StopConfig { attempts_max: Some(10), ..StopConfig::default() });
    let mut rng = SimRng::from_seed_u64(0);
    let decide = |outcome, idem, retry_after, rng: &mut SimRng| {
        let mut s = p.start(SimTime::ZERO, idem, None);
        p.on_attempt(&mut s, SimTime::ZERO, outcome, retry_after, rng)
    };
    use AttemptOutcome::*;
    use Idempotency::*;
    let retry = |d| RetryDecision::Retry { delay: d };
    let give_up = |reason| RetryDecision::GiveUp { reason };
    assert_eq!(decide(AttemptOutcome::OK, Idempotent, None, &mut rng), RetryDecision::Done);
    assert_eq!(decide(Status(302), Idempotent, None, &mut rng), RetryDecision::Done);
    for o in [Timeout, ConnectionRefused, ConnectionReset, Status(500), Status(502), Status(599)] {
        assert_eq!(decide(o, Idempotent, None, &mut rng), retry(secs(1)), "{o:?}");
    }
    for o in [Status(400), Status(404), Status(409), Rejected(stormglass_patterns::Rejection::CircuitOpen)] {
        assert_eq!(decide(o, Idempotent, None, &mut rng), give_up(GiveUpReason::NotRetryable), "{o:?}");
    }
    // 429 and 503 honour retry_after as a floor, up to the cap (30 s).
    assert_eq!(decide(Status(429), Idempotent, Some(secs(5)), &mut rng), retry(secs(5)));
    assert_eq!(decide(Status(503), Idempotent, Some(ms(200)), &mut rng), retry(secs(1)));
    assert_eq!(decide(Status(503), Idempotent, Some(secs(31)), &mut rng), give_up(GiveUpReason::RetryAfterTooLong));
    // A POST is retried only with an idempotency key.
    assert_eq!(decide(Status(503), NonIdempotent, None, &mut rng), give_up(GiveUpReason::NotIdempotent));
    assert_eq!(decide(Timeout, NonIdempotent, None, &mut rng), give_up(GiveUpReason::NotIdempotent));
    assert_eq!(decide(Timeout, KeyedNonIdempotent, None, &mut rng), retry(secs(1)));
}

#[test]
fn no_attempt_starts_past_elapsed_max() {
    let stop = StopConfig { attempts_max: None, elapsed_max: Some(secs(10)), ..StopConfig::default() };
    let p = policy(fixed(secs(4)), stop);
    let mut rng = SimRng::from_seed_u64(0);
    let mut s = p.start(SimTime::ZERO, Idempotency::Idempotent, None);
    let fail = AttemptOutcome::Status(500);
    // Fails at 1 s: next start 5 s < 10 s.
    assert_eq!(
        p.on_attempt(&mut s, SimTime::from_secs(1), fail, None, &mut rng),
        RetryDecision::Retry { delay: secs(4) }
    );
    // Fails at 6 s: next start 10 s, not before the limit.
    assert_eq!(
        p.on_attempt(&mut s, SimTime::from_secs(6), fail, None, &mut rng),
        RetryDecision::GiveUp { reason: GiveUpReason::ElapsedExceeded }
    );
}

#[test]
fn no_attempt_starts_with_less_than_the_minimum_of_the_deadline_left() {
    let stop = StopConfig { attempts_max: None, elapsed_max: None, deadline_remaining_min: secs(2) };
    let p = policy(fixed(secs(1)), stop);
    let mut rng = SimRng::from_seed_u64(0);
    let deadline = Some(SimTime::from_secs(10));
    let mut s = p.start(SimTime::ZERO, Idempotency::Idempotent, deadline);
    let fail = AttemptOutcome::ConnectionReset;
    // Next start 8 s leaves exactly 2 s: allowed.
    assert_eq!(
        p.on_attempt(&mut s, SimTime::from_secs(7), fail, None, &mut rng),
        RetryDecision::Retry { delay: secs(1) }
    );
    // Next start 8.5 s leaves 1.5 s: refused.
    assert_eq!(
        p.on_attempt(&mut s, SimTime::from_millis(7_500), fail, None, &mut rng),
        RetryDecision::GiveUp { reason: GiveUpReason::DeadlineExceeded }
    );
}

#[test]
fn same_seed_same_delays() {
    let b = Backoff::default();
    assert_eq!(delays(&b, 20, 11), delays(&b, 20, 11));
    assert_ne!(delays(&b, 20, 11), delays(&b, 20, 12));
}

#[test]
fn retry_config_reads_from_ron_with_defaults_and_refuses_unknown_fields() {
    let text = r#"(
        backoff: sum([fixed(delay: "3s"), random(min: "0s", max: "2s")]),
        stop: (attempts_max: Some(5), elapsed_max: Some("1m")),
        retry_on: (statuses: [429, 408]),
    )"#;
    let c: RetryConfig = ron::from_str(text).unwrap();
    c.validate().unwrap();
    assert_eq!(c.stop.attempts_max, Some(5));
    assert_eq!(c.stop.elapsed_max, Some(secs(60)));
    assert!(c.retry_on.server_errors, "unset fields keep their defaults");
    assert_eq!(c.retry_on.retry_after_max, secs(30));
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<RetryConfig>(&json).unwrap(), c);
    assert!(ron::from_str::<RetryConfig>("(stop: (attempts: Some(5)))").is_err());
    assert!(ron::from_str::<RetryConfig>(r#"(backoff: fixed(delay: "1s", jitter: 0.1))"#).is_err());
}

#[test]
fn giving_up_draws_no_randomness() {
    // Documented: the backoff is drawn only when a retry is possible, so a
    // stream's later draws do not depend on how many calls gave up.
    let p = policy(Backoff::default(), StopConfig::default());
    let mut rng = SimRng::from_seed_u64(21);
    let mut untouched = rng.clone();
    let mut s = p.start(SimTime::ZERO, Idempotency::Idempotent, None);
    let d = p.on_attempt(&mut s, SimTime::ZERO, AttemptOutcome::Status(404), None, &mut rng);
    assert_eq!(d, RetryDecision::GiveUp { reason: GiveUpReason::NotRetryable });
    assert_eq!(rng.next_u64(), untouched.next_u64());
}

#[test]
fn a_breaker_and_retry_timeline_replays_bit_for_bit_from_its_seed() {
    use stormglass_patterns::breaker::{Breaker, BreakerConfig, OpenGrowth};
    fn run(seed: u64) -> Vec<String> {
        let mut rng = SimRng::from_seed_u64(seed);
        let mut config = BreakerConfig::consecutive(3, secs(2));
        config.open_growth = OpenGrowth { multiplier: 2.0, open_duration_max: secs(30), jitter_ratio: 0.3 };
        let mut breaker = Breaker::new(config).unwrap();
        let policy = RetryPolicy::new(RetryConfig::default()).unwrap();
        let mut log = Vec::new();
        let mut now = SimTime::ZERO;
        for call in 0..200u64 {
            now += ms(50 + call % 7 * 30);
            let mut state = policy.start(now, Idempotency::Idempotent, None);
            loop {
                let outcome = match breaker.try_acquire(now) {
                    Ok(permit) => {
                        // A dependency that is down between 2 s and 6 s.
                        let down = (2..6).contains(&(now.as_nanos() / 1_000_000_000));
                        let o = if down { AttemptOutcome::Status(503) } else { AttemptOutcome::OK };
                        breaker.on_result(now, permit, o, ms(5), &mut rng);
                        o
                    }
                    Err(r) => r.outcome(),
                };
                match policy.on_attempt(&mut state, now, outcome, None, &mut rng) {
                    RetryDecision::Retry { delay } => now += delay,
                    _ => break,
                }
            }
            while let Some(t) = breaker.pop_transition() {
                log.push(format!("{} {:?}->{:?} {:?}", t.at, t.from, t.to, t.cause));
            }
        }
        log
    }
    let first = run(5);
    assert!(first.len() >= 3, "the outage should trip the breaker: {first:?}");
    assert_eq!(first, run(5));
    assert_ne!(first, run(6), "jittered open durations differ by seed");
}
