//! Retry budgets: gRPC throttling, the ratio budget and SRE adaptive
//! throttling, pinned to their published numbers.

use stormglass_core::rng::SimRng;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::budget::{
    AdaptiveConfig, AdaptiveThrottle, BudgetConfig, RatioBudget, RatioConfig, RetryBudget, TokenBucketBudget,
    TokenBucketConfig, sre_reject_probability,
};
use stormglass_patterns::retry::{Backoff, Idempotency, RetryConfig, RetryDecision, RetryOn, RetryPolicy, StopConfig};
use stormglass_patterns::{AttemptOutcome, Rejection};

fn grpc(max_tokens: u32, token_ratio: f64) -> RetryBudget {
    RetryBudget::new(BudgetConfig::TokenBucket(TokenBucketConfig { max_tokens, token_ratio })).unwrap()
}

#[test]
fn grpc_throttling_exactly_five_attempts_before_throttling() {
    // max_tokens 10, ratio 0.1, up to 4 attempts per call, every attempt fails.
    let mut budget = grpc(10, 0.1);
    let policy = RetryPolicy::new(RetryConfig {
        backoff: Backoff::Fixed { delay: SimDuration::ZERO },
        stop: StopConfig { attempts_max: Some(4), ..StopConfig::default() },
        ..RetryConfig::default()
    })
    .unwrap();
    let mut rng = SimRng::from_seed_u64(0);
    let now = SimTime::ZERO;
    let mut attempts = 0;
    let mut throttled_at = None;
    'calls: for _call in 0..10 {
        let mut state = policy.start(now, Idempotency::Idempotent, None);
        let mut is_retry = false;
        loop {
            if budget.try_acquire(now, is_retry, &mut rng) == Err(Rejection::Throttled) {
                throttled_at = Some(attempts);
                break 'calls;
            }
            attempts += 1;
            let outcome = AttemptOutcome::Status(503);
            budget.on_result(now, outcome, policy.config().retry_on.retryable(outcome));
            match policy.on_attempt(&mut state, now, outcome, None, &mut rng) {
                RetryDecision::Retry { .. } => is_retry = true,
                _ => break,
            }
        }
    }
    // Call 1: 4 attempts (10 -> 6 tokens). Call 2: its first attempt brings
    // the count to 5, which is not above 10 / 2, so its retry is throttled.
    assert_eq!(throttled_at, Some(5));
}

#[test]
fn grpc_throttling_needs_51_successes_to_recover_from_zero() {
    let mut b = TokenBucketBudget::new(&TokenBucketConfig { max_tokens: 10, token_ratio: 0.1 }).unwrap();
    for _ in 0..20 {
        b.record_failure();
    }
    assert_eq!(b.tokens_milli(), 0, "tokens stop at zero");
    let mut successes = 0;
    while !b.allows_retry() {
        b.record_success();
        successes += 1;
    }
    // 50 successes give exactly 5.0 tokens, which is not above 5.
    assert_eq!(successes, 51);
    for _ in 0..1000 {
        b.record_success();
    }
    assert_eq!(b.tokens_milli(), 10_000, "tokens stop at max_tokens");
}

#[test]
fn grpc_counts_only_failures_that_matter() {
    let mut b = grpc(2, 1.0);
    let mut rng = SimRng::from_seed_u64(0);
    // As gRPC records only failures with a retryable status: a 503 that the
    // retry policy does not retry, a 404 and a local rejection neither cost
    // nor earn.
    let retry_on = RetryOn { server_errors: false, statuses: vec![], ..RetryOn::default() };
    let outcomes =
        [AttemptOutcome::Status(503), AttemptOutcome::Status(404), AttemptOutcome::Rejected(Rejection::BulkheadFull)];
    for o in outcomes {
        b.on_result(SimTime::ZERO, o, retry_on.retryable(o));
    }
    assert!(b.try_acquire(SimTime::ZERO, true, &mut rng).is_ok());
    b.on_result(SimTime::ZERO, AttemptOutcome::Timeout, retry_on.retryable(AttemptOutcome::Timeout));
    assert!(b.try_acquire(SimTime::ZERO, true, &mut rng).is_err(), "1 token is not above 2 / 2");
}

#[test]
fn sre_formula_at_1000_requests_200_accepts() {
    let p = sre_reject_probability(1000, 200, 2.0);
    assert_eq!(format!("{p:.6}"), "0.599401");
    // And through the throttle itself.
    let mut t = AdaptiveThrottle::new(&AdaptiveConfig::default()).unwrap();
    let mut rng = SimRng::from_seed_u64(0);
    for i in 0..1000 {
        let now = SimTime::from_millis(i * 10);
        t.try_send(now, &mut rng);
        if i % 5 == 0 {
            t.record_accept(now);
        }
    }
    assert_eq!(format!("{:.6}", t.reject_probability(SimTime::from_secs(10))), "0.599401");
    // Two minutes later the window has forgotten all of it.
    assert_eq!(t.reject_probability(SimTime::from_secs(131)), 0.0);
}

#[test]
fn sre_throttle_rejects_about_the_formula_s_share() {
    let mut t =
        AdaptiveThrottle::new(&AdaptiveConfig { k: 2.0, window: SimDuration::from_secs(1000), buckets: 10 }).unwrap();
    let mut rng = SimRng::from_seed_u64(42);
    // Backend accepts nothing: p climbs towards 1 as requests pile up.
    let mut rejected = 0;
    for i in 0..10_000 {
        if !t.try_send(SimTime::from_millis(i), &mut rng) {
            rejected += 1;
        }
    }
    // p after n requests is n / (n + 1); nearly all are rejected.
    assert!(rejected > 9_900, "{rejected}");
}

#[test]
fn ratio_budget_allows_ratio_of_first_attempts_plus_the_floor() {
    let config = RatioConfig { ratio: 0.2, retries_per_sec_min: 0, window: SimDuration::from_secs(10), buckets: 10 };
    let mut b = RatioBudget::new(&config).unwrap();
    let t = SimTime::from_secs(1);
    for _ in 0..100 {
        assert!(b.try_send(t, false));
    }
    let allowed = (0..50).filter(|_| b.try_send(t, true)).count();
    assert_eq!(allowed, 20, "20% of 100 first attempts");
    // Once the first attempts leave the window, so does the allowance.
    assert!(!b.try_send(SimTime::from_secs(11), true));

    let floor = RatioConfig { ratio: 0.0, retries_per_sec_min: 2, ..config };
    let mut b = RatioBudget::new(&floor).unwrap();
    let allowed = (0..50).filter(|_| b.try_send(t, true)).count();
    assert_eq!(allowed, 20, "2 per second over a 10 s window, with no traffic");
}

#[test]
fn budget_configs_validate_and_round_trip() {
    for c in [
        BudgetConfig::TokenBucket(TokenBucketConfig::default()),
        BudgetConfig::Ratio(RatioConfig::default()),
        BudgetConfig::Adaptive(AdaptiveConfig::default()),
    ] {
        c.validate().unwrap();
        let text = ron::to_string(&c).unwrap();
        assert_eq!(ron::from_str::<BudgetConfig>(&text).unwrap(), c);
    }
    let bad = BudgetConfig::TokenBucket(TokenBucketConfig { max_tokens: 0, token_ratio: 0.1 });
    assert_eq!(bad.validate().unwrap_err().to_string(), "token_bucket.max_tokens: must be between 1 and 1000");
    assert!(ron::from_str::<BudgetConfig>("token_bucket((max_tokens: 3, ratio: 0.1))").is_err());
}
