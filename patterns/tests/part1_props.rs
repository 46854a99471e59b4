//! Property tests: every part-1 pattern against a naive reference model.
//!
//! The reference models keep every event in a `Vec` and recompute their
//! decisions from scratch, the slow obvious way; the patterns must agree
//! with them decision by decision.

use proptest::prelude::*;
use stormglass_core::rng::{SimRng, uniform01};
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::AttemptOutcome;
use stormglass_patterns::breaker::{
    Breaker, BreakerConfig, BreakerKind, BreakerState, Classifier, ConsecutiveConfig, CountWindowConfig, HystrixConfig,
    OpenGrowth, Permit,
};
use stormglass_patterns::budget::{
    AdaptiveConfig, AdaptiveThrottle, RatioBudget, RatioConfig, TokenBucketBudget, TokenBucketConfig,
};
use stormglass_patterns::retry::{
    Backoff, GiveUpReason, Idempotency, RetryConfig, RetryDecision, RetryOn, RetryPolicy, StopConfig,
};
use stormglass_patterns::timeout::{CallTimer, Deadline, Phase, TimeoutConfig};

fn ms(m: u64) -> SimDuration {
    SimDuration::from_millis(m)
}

// ---------------------------------------------------------------- breaker

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Acquire,
    Complete { index: usize, outcome: u8, latency_ms: u64 },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        2 => (0u64..1500).prop_map(Op::Advance),
        3 => Just(Op::Acquire),
        3 => (any::<usize>(), 0u8..4, 0u64..2000)
            .prop_map(|(index, outcome, latency_ms)| Op::Complete { index, outcome, latency_ms }),
    ];
    prop::collection::vec(op, 1..300)
}

fn kinds() -> impl Strategy<Value = BreakerKind> {
    prop_oneof![
        (1u32..5, 100u64..5000, prop::option::of(1u32..4)).prop_map(|(t, r, h)| {
            BreakerKind::Consecutive(ConsecutiveConfig {
                failure_threshold: t,
                recovery_timeout: ms(r),
                half_open_calls_max: h,
            })
        }),
        (1u32..8, 1u32..10, 10u32..=100, 10u32..=100, 1u32..4, 100u64..5000, any::<bool>()).prop_map(
            |(w, m, f, s, h, o, auto)| {
                BreakerKind::CountWindow(CountWindowConfig {
                    window_size: w,
                    calls_min: m,
                    failure_rate_threshold_pct: f64::from(f),
                    slow_call_rate_threshold_pct: f64::from(s),
                    half_open_calls_permitted: h,
                    open_duration: ms(o),
                    automatic_half_open: auto,
                })
            }
        ),
        (1u32..6, 0u32..=100, 100u64..5000, 1u32..5, 100u64..2000).prop_map(|(v, p, s, b, w)| {
            BreakerKind::Hystrix(HystrixConfig {
                request_volume_threshold: v,
                error_threshold_pct: p,
                sleep_window: ms(s),
                buckets: b,
                bucket_width: ms(w),
            })
        }),
    ]
}

fn outcome_of(code: u8) -> AttemptOutcome {
    match code {
        0 => AttemptOutcome::OK,
        1 => AttemptOutcome::Status(500),
        2 => AttemptOutcome::Timeout,
        _ => AttemptOutcome::Status(404), // ignored in these tests
    }
}

/// The naive breaker: every call of the closed period kept in a Vec.
#[derive(Debug)]
struct RefBreaker {
    kind: BreakerKind,
    state: BreakerState,
    generation: u64,
    open_until: SimTime,
    closed_calls: Vec<(SimTime, bool, bool)>,
    probes_admitted: u32,
    probe_results: Vec<(bool, bool)>,
    stale: u64,
}

impl RefBreaker {
    fn new(kind: BreakerKind) -> Self {
        RefBreaker {
            kind,
            state: BreakerState::Closed,
            generation: 0,
            open_until: SimTime::ZERO,
            closed_calls: Vec::new(),
            probes_admitted: 0,
            probe_results: Vec::new(),
            stale: 0,
        }
    }

    fn probes_max(&self) -> u32 {
        match &self.kind {
            BreakerKind::Consecutive(c) => c.half_open_calls_max.unwrap_or(u32::MAX),
            BreakerKind::CountWindow(c) => c.half_open_calls_permitted,
            BreakerKind::Hystrix(_) => 1,
        }
    }

    fn open_duration(&self) -> SimDuration {
        match &self.kind {
            BreakerKind::Consecutive(c) => c.recovery_timeout,
            BreakerKind::CountWindow(c) => c.open_duration,
            BreakerKind::Hystrix(c) => c.sleep_window,
        }
    }

    /// Whether the wait ends with its last instant: the `circuitbreaker`
    /// package and resilience4j's timer do; resilience4j's lazy check
    /// (`isAfter`) and Hystrix (`>`) move only strictly after it.
    fn wait_is_strict(&self) -> bool {
        match &self.kind {
            BreakerKind::Consecutive(_) => false,
            BreakerKind::CountWindow(c) => !c.automatic_half_open,
            BreakerKind::Hystrix(_) => true,
        }
    }

    fn acquire(&mut self, now: SimTime) -> Result<(u64, bool), SimDuration> {
        let strict = self.wait_is_strict();
        let wait_over = if strict { now > self.open_until } else { now >= self.open_until };
        if self.state == BreakerState::Open && wait_over {
            self.state = BreakerState::HalfOpen;
            self.generation += 1;
            self.probes_admitted = 0;
            self.probe_results.clear();
        }
        match self.state {
            BreakerState::Closed => Ok((self.generation, false)),
            BreakerState::Open => Err(self.open_until - now + SimDuration::from_nanos(u64::from(strict))),
            BreakerState::HalfOpen if self.probes_admitted < self.probes_max() => {
                self.probes_admitted += 1;
                Ok((self.generation, true))
            }
            _ => Err(SimDuration::ZERO),
        }
    }

    fn rates_over(failed: usize, slow: usize, calls: usize, f_pct: f64, s_pct: f64) -> bool {
        failed as f64 * 100.0 / calls as f64 >= f_pct || slow as f64 * 100.0 / calls as f64 >= s_pct
    }

    fn result(&mut self, now: SimTime, generation: u64, outcome: AttemptOutcome, latency: SimDuration) {
        if generation != self.generation {
            self.stale += 1;
            return;
        }
        let slow = latency > SimDuration::from_secs(1);
        let failure = match outcome {
            AttemptOutcome::Status(404) => {
                if self.state == BreakerState::HalfOpen {
                    self.probes_admitted -= 1;
                }
                return;
            }
            AttemptOutcome::Status(s) => s >= 500,
            _ => true,
        };
        match self.state {
            BreakerState::Closed => {
                self.closed_calls.push((now, failure, slow));
                let trip = match &self.kind {
                    BreakerKind::Consecutive(c) => {
                        let run = self.closed_calls.iter().rev().take_while(|c| c.1).count();
                        run >= c.failure_threshold as usize
                    }
                    BreakerKind::CountWindow(c) => {
                        let n = self.closed_calls.len().min(c.window_size as usize);
                        let last = &self.closed_calls[self.closed_calls.len() - n..];
                        n >= c.calls_min.min(c.window_size) as usize
                            && Self::rates_over(
                                last.iter().filter(|c| c.1).count(),
                                last.iter().filter(|c| c.2).count(),
                                n,
                                c.failure_rate_threshold_pct,
                                c.slow_call_rate_threshold_pct,
                            )
                    }
                    BreakerKind::Hystrix(c) => {
                        let width = c.bucket_width.as_nanos();
                        let current = now.as_nanos() / width;
                        let in_window: Vec<_> = self
                            .closed_calls
                            .iter()
                            .filter(|(t, ..)| current - t.as_nanos() / width < u64::from(c.buckets))
                            .collect();
                        let calls = in_window.len() as u64;
                        let errors = in_window.iter().filter(|c| c.1).count() as u64;
                        // Hystrix's HealthCounts: (int) ((double) errors / total * 100).
                        let pct = if calls == 0 { 0 } else { (errors as f64 / calls as f64 * 100.0) as u64 };
                        calls >= u64::from(c.request_volume_threshold) && pct >= u64::from(c.error_threshold_pct)
                    }
                };
                if trip {
                    self.open(now);
                }
            }
            BreakerState::HalfOpen => {
                self.probe_results.push((failure, slow));
                let decision = match &self.kind {
                    BreakerKind::Consecutive(_) | BreakerKind::Hystrix(_) => Some(failure),
                    BreakerKind::CountWindow(c) => (self.probe_results.len() >= c.half_open_calls_permitted as usize)
                        .then(|| {
                            Self::rates_over(
                                self.probe_results.iter().filter(|r| r.0).count(),
                                self.probe_results.iter().filter(|r| r.1).count(),
                                self.probe_results.len(),
                                c.failure_rate_threshold_pct,
                                c.slow_call_rate_threshold_pct,
                            )
                        }),
                };
                match decision {
                    Some(true) => self.open(now),
                    Some(false) => {
                        self.state = BreakerState::Closed;
                        self.generation += 1;
                        self.closed_calls.clear();
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn open(&mut self, now: SimTime) {
        self.state = BreakerState::Open;
        self.generation += 1;
        self.open_until = now + self.open_duration();
    }
}

fn breaker_config(kind: BreakerKind) -> BreakerConfig {
    BreakerConfig {
        kind,
        classify: Classifier {
            ignored_statuses: vec![404],
            slow_call_duration: SimDuration::from_secs(1),
            ..Classifier::default()
        },
        open_growth: OpenGrowth::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn breaker_agrees_with_the_naive_model(kind in kinds(), ops in ops()) {
        let mut real = Breaker::new(breaker_config(kind.clone())).unwrap();
        let mut model = RefBreaker::new(kind);
        let mut rng = SimRng::from_seed_u64(0);
        let mut now = SimTime::ZERO;
        let mut outstanding: Vec<(Permit, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Advance(d) => now += ms(d),
                Op::Acquire => {
                    let got = real.try_acquire(now);
                    let want = model.acquire(now);
                    match (got, want) {
                        (Ok(permit), Ok((generation, probe))) => {
                            prop_assert_eq!(permit.is_probe(), probe);
                            outstanding.push((permit, generation));
                        }
                        (Err(r), Err(retry_after)) => prop_assert_eq!(r.retry_after, retry_after),
                        (got, want) => prop_assert!(false, "at {}: real {:?}, model {:?}", now, got, want),
                    }
                }
                Op::Complete { index, outcome, latency_ms } => {
                    if outstanding.is_empty() {
                        continue;
                    }
                    let (permit, generation) = outstanding.swap_remove(index % outstanding.len());
                    let outcome = outcome_of(outcome);
                    real.on_result(now, permit, outcome, ms(latency_ms), &mut rng);
                    model.result(now, generation, outcome, ms(latency_ms));
                }
            }
            prop_assert_eq!(real.state(), model.state, "at {}", now);
            prop_assert_eq!(real.counters().stale_results, model.stale);
        }
    }

    #[test]
    fn breaker_never_admits_more_than_the_permitted_probes(kind in kinds(), ops in ops()) {
        // No ignored outcomes here, so a probe's place is never given back
        // and the count of probe permits per half-open period is the bound.
        let mut real = Breaker::new(BreakerConfig::of(kind)).unwrap();
        let max = match &real.config().kind {
            BreakerKind::Consecutive(c) => c.half_open_calls_max.unwrap_or(u32::MAX),
            BreakerKind::CountWindow(c) => c.half_open_calls_permitted,
            BreakerKind::Hystrix(_) => 1,
        };
        let mut rng = SimRng::from_seed_u64(0);
        let mut now = SimTime::ZERO;
        let mut outstanding = Vec::new();
        let mut probes_this_period = 0u32;
        for op in ops {
            match op {
                Op::Advance(d) => now += ms(d),
                Op::Acquire => {
                    if let Ok(p) = real.try_acquire(now) {
                        while let Some(t) = real.pop_transition() {
                            if t.to == BreakerState::HalfOpen { probes_this_period = 0; }
                        }
                        if p.is_probe() {
                            probes_this_period += 1;
                            prop_assert!(probes_this_period <= max);
                        }
                        outstanding.push(p);
                    }
                }
                Op::Complete { index, outcome, latency_ms } => {
                    if outstanding.is_empty() { continue; }
                    let p = outstanding.swap_remove(index % outstanding.len());
                    let outcome = outcome_of(outcome.min(2));
                    real.on_result(now, p, outcome, ms(latency_ms), &mut rng);
                }
            }
            while let Some(t) = real.pop_transition() {
                if t.to == BreakerState::HalfOpen { probes_this_period = 0; }
                prop_assert!(t.at <= now);
            }
        }
    }
}

// ------------------------------------------------------------------ retry

fn backoffs() -> impl Strategy<Value = Backoff> {
    let d = || (0u64..5_000).prop_map(ms);
    let base = || (100u32..400).prop_map(|b| f64::from(b) / 100.0);
    let leaf = prop_oneof![
        d().prop_map(|delay| Backoff::Fixed { delay }),
        (d(), d()).prop_map(|(a, b)| Backoff::Random { min: a.min(b), max: a.max(b) }),
        (d(), d(), d()).prop_map(|(start, increment, max)| Backoff::Incrementing { start, increment, max }),
        (d(), base(), d(), d()).prop_map(|(multiplier, base, min, max)| Backoff::Exponential {
            multiplier,
            base,
            min,
            max
        }),
        (d(), base(), d()).prop_map(|(multiplier, base, max)| Backoff::FullJitter { multiplier, base, max }),
        (d(), base(), d()).prop_map(|(multiplier, base, max)| Backoff::EqualJitter { multiplier, base, max }),
        (d(), base(), d(), 0u32..100).prop_map(|(initial, multiplier, max, j)| Backoff::Proportional {
            initial,
            multiplier,
            max,
            jitter_ratio: f64::from(j) / 100.0
        }),
    ];
    prop_oneof![
        4 => leaf.clone(),
        1 => (1u64..5_000, 1u64..5_000).prop_map(|(b, m)| Backoff::Decorrelated { base: ms(b), max: ms(b.max(m)) }),
        1 => prop::collection::vec(leaf, 1..4).prop_map(Backoff::Sum),
    ]
}

fn deterministic_backoffs() -> impl Strategy<Value = Backoff> {
    let d = || (0u64..5_000).prop_map(ms);
    let base = || (100u32..400).prop_map(|b| f64::from(b) / 100.0);
    prop_oneof![
        d().prop_map(|delay| Backoff::Fixed { delay }),
        (d(), d(), d()).prop_map(|(start, increment, max)| Backoff::Incrementing { start, increment, max }),
        (d(), base(), d(), d()).prop_map(|(multiplier, base, min, max)| Backoff::Exponential {
            multiplier,
            base,
            min,
            max
        }),
        (d(), base(), d()).prop_map(|(initial, multiplier, max)| Backoff::Proportional {
            initial,
            multiplier,
            max,
            jitter_ratio: 0.0
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn every_delay_lies_in_its_interval(backoff in backoffs(), seed in any::<u64>(), attempts in 1u32..40) {
        prop_assume!(backoff.validate().is_ok());
        let mut rng = SimRng::from_seed_u64(seed);
        let mut previous = SimDuration::ZERO;
        for attempt in 1..=attempts {
            let (lo, hi) = backoff.bounds(attempt, previous);
            let d = backoff.delay(attempt, previous, &mut rng);
            // One nanosecond of slack for rounding float seconds to nanos.
            prop_assert!(d + SimDuration::from_nanos(1) >= lo && d <= hi + SimDuration::from_nanos(1),
                "attempt {}: {} not in [{}, {}]", attempt, d, lo, hi);
            previous = d;
        }
    }

    #[test]
    fn non_jittered_delays_never_decrease_and_stay_capped(backoff in deterministic_backoffs(), attempts in 1u32..60) {
        prop_assert!(backoff.validate().is_ok() && !backoff.is_jittered());
        let mut rng = SimRng::from_seed_u64(0);
        let cap = match &backoff {
            Backoff::Incrementing { max, .. } => Some(*max),
            Backoff::Exponential { min, max, .. } => Some((*max).max(*min)),
            Backoff::Proportional { max, .. } => Some(*max),
            _ => None,
        };
        let mut previous = SimDuration::ZERO;
        for attempt in 1..=attempts {
            let d = backoff.delay(attempt, previous, &mut rng);
            prop_assert!(d >= previous, "attempt {}: {} < {}", attempt, d, previous);
            if let Some(cap) = cap { prop_assert!(d <= cap); }
            previous = d;
        }
    }

    #[test]
    fn retry_agrees_with_the_naive_model(
        attempts_max in prop::option::of(1u32..6),
        // Coarse times (multiples of 100 ms) so that boundaries are hit.
        elapsed_max_ms in prop::option::of((1u64..60).prop_map(|x| x * 100)),
        deadline_ms in prop::option::of((1u64..60).prop_map(|x| x * 100)),
        remaining_min_ms in prop_oneof![Just(0u64), (0u64..10).prop_map(|x| x * 100)],
        delay_ms in (0u64..10).prop_map(|x| x * 100),
        idempotency in prop_oneof![Just(Idempotency::Idempotent), Just(Idempotency::KeyedNonIdempotent), Just(Idempotency::NonIdempotent)],
        steps in prop::collection::vec(
            ((0u64..10).prop_map(|x| x * 100), 0u8..8, prop::option::of((0u64..320).prop_map(|x| x * 100))),
            1..12,
        ),
    ) {
        let config = RetryConfig {
            backoff: Backoff::Fixed { delay: ms(delay_ms) },
            stop: StopConfig {
                attempts_max,
                elapsed_max: elapsed_max_ms.map(ms),
                deadline_remaining_min: ms(remaining_min_ms),
            },
            retry_on: RetryOn::default(),
        };
        let policy = RetryPolicy::new(config).unwrap();
        let deadline = deadline_ms.map(SimTime::from_millis);
        let mut state = policy.start(SimTime::ZERO, idempotency, deadline);
        let mut rng = SimRng::from_seed_u64(0);
        let mut now = SimTime::ZERO;
        let mut retries = 0u32;
        for (attempt_index, (took_ms, code, retry_after_ms)) in steps.into_iter().enumerate() {
            now += ms(took_ms);
            let outcome = match code {
                0 => AttemptOutcome::OK,
                1 => AttemptOutcome::Status(404),
                2 => AttemptOutcome::Status(429),
                3 => AttemptOutcome::Status(503),
                4 => AttemptOutcome::Timeout,
                5 => AttemptOutcome::ConnectionRefused,
                6 => AttemptOutcome::Status(400),
                _ => AttemptOutcome::Status(500),
            };
            let retry_after = retry_after_ms.map(ms);
            let got = policy.on_attempt(&mut state, now, outcome, retry_after, &mut rng);
            // The naive model, rule by rule.
            let attempts = attempt_index as u32 + 1;
            let delay = ms(delay_ms).max(retry_after.unwrap_or_default());
            let next = now + delay;
            let want = if matches!(code, 0) {
                RetryDecision::Done
            } else if matches!(code, 1 | 6) {
                RetryDecision::GiveUp { reason: GiveUpReason::NotRetryable }
            } else if idempotency == Idempotency::NonIdempotent {
                RetryDecision::GiveUp { reason: GiveUpReason::NotIdempotent }
            } else if attempts_max.is_some_and(|m| attempts >= m) {
                RetryDecision::GiveUp { reason: GiveUpReason::AttemptsExhausted }
            } else if retry_after.is_some_and(|r| r > SimDuration::from_secs(30)) {
                RetryDecision::GiveUp { reason: GiveUpReason::RetryAfterTooLong }
            } else if elapsed_max_ms.is_some_and(|e| next.as_nanos() >= ms(e).as_nanos()) {
                RetryDecision::GiveUp { reason: GiveUpReason::ElapsedExceeded }
            } else if deadline.is_some_and(|d| next.as_nanos() + ms(remaining_min_ms).as_nanos() > d.as_nanos() || next >= d) {
                RetryDecision::GiveUp { reason: GiveUpReason::DeadlineExceeded }
            } else {
                RetryDecision::Retry { delay }
            };
            prop_assert_eq!(got, want, "attempt {} at {}", attempts, now);
            match got {
                RetryDecision::Retry { delay } => { retries += 1; now += delay; }
                _ => break,
            }
        }
        if let Some(max) = attempts_max { prop_assert!(retries < max); }
        if idempotency == Idempotency::NonIdempotent { prop_assert_eq!(retries, 0); }
    }
}

// ---------------------------------------------------------------- budgets

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn token_bucket_never_allows_a_retry_it_has_no_tokens_for(
        max_tokens in 1u32..20, ratio_milli in 1u32..3000, events in prop::collection::vec(any::<bool>(), 0..400)
    ) {
        let mut b = TokenBucketBudget::new(&TokenBucketConfig { max_tokens, token_ratio: f64::from(ratio_milli) / 1000.0 }).unwrap();
        let max = i64::from(max_tokens) * 1000;
        let mut tokens = max;
        for success in events {
            if success { tokens = (tokens + i64::from(ratio_milli)).min(max) } else { tokens = (tokens - 1000).max(0) }
            if success { b.record_success() } else { b.record_failure() }
            prop_assert_eq!(b.tokens_milli() as i64, tokens);
            prop_assert_eq!(b.allows_retry(), tokens * 2 > max);
        }
    }

    #[test]
    fn ratio_budget_agrees_with_the_naive_window(
        ratio_pct in 0u32..100, floor in 0u32..3, events in prop::collection::vec((0u64..700, any::<bool>()), 0..300)
    ) {
        let config = RatioConfig { ratio: f64::from(ratio_pct) / 100.0, retries_per_sec_min: floor, window: SimDuration::from_secs(5), buckets: 5 };
        let mut b = RatioBudget::new(&config).unwrap();
        let mut sent: Vec<(u64, bool)> = Vec::new(); // (bucket, is_retry)
        let mut now = SimTime::ZERO;
        for (advance_ms, is_retry) in events {
            now += ms(advance_ms);
            let bucket = now.as_nanos() / 1_000_000_000;
            let in_window = |&&(b, _): &&(u64, bool)| bucket - b < 5;
            let firsts = sent.iter().filter(in_window).filter(|s| !s.1).count() as f64;
            let retries = sent.iter().filter(in_window).filter(|s| s.1).count() as f64;
            let want = !is_retry || retries + 1.0 <= config.ratio * firsts + f64::from(floor) * 5.0;
            let got = b.try_send(now, is_retry);
            prop_assert_eq!(got, want);
            if got { sent.push((bucket, is_retry)); }
            if got && is_retry { prop_assert!(retries + 1.0 <= config.ratio * firsts + f64::from(floor) * 5.0); }
        }
    }

    #[test]
    fn adaptive_throttle_agrees_with_the_formula(
        seed in any::<u64>(), events in prop::collection::vec((0u64..500, any::<bool>()), 0..300)
    ) {
        let mut t = AdaptiveThrottle::new(&AdaptiveConfig { k: 2.0, window: SimDuration::from_secs(10), buckets: 10 }).unwrap();
        let mut rng = SimRng::from_seed_u64(seed);
        let mut requests: Vec<u64> = Vec::new();
        let mut accepts: Vec<u64> = Vec::new();
        let mut now = SimTime::ZERO;
        for (advance_ms, accept) in events {
            now += ms(advance_ms);
            let bucket = now.as_nanos() / 1_000_000_000;
            let count = |v: &Vec<u64>| v.iter().filter(|&&b| bucket - b < 10).count() as f64;
            let p = ((count(&requests) - 2.0 * count(&accepts)) / (count(&requests) + 1.0)).max(0.0);
            prop_assert!((t.reject_probability(now) - p).abs() < 1e-12);
            let u = uniform01(&mut rng.clone());
            let sent = t.try_send(now, &mut rng);
            prop_assert_eq!(sent, u >= p);
            requests.push(bucket);
            if sent && accept { t.record_accept(now); accepts.push(bucket); }
        }
    }
}

// --------------------------------------------------------------- timeouts

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deadline_propagation_subtracts_what_every_hop_spent(budget_ms in 0u64..60_000, spent in prop::collection::vec(0u64..10_000, 1..8)) {
        let mut received = ms(budget_ms);
        let mut clock = SimTime::from_secs(1000);
        let mut total_spent = 0;
        for s in spent {
            let hop = Deadline::start(clock, received);
            clock += ms(s);
            total_spent += s;
            received = hop.remaining(clock);
            prop_assert_eq!(received, ms(budget_ms.saturating_sub(total_spent)));
            prop_assert_eq!(hop.try_start(clock, SimDuration::ZERO).is_err(), total_spent >= budget_ms);
        }
    }

    #[test]
    fn the_phase_deadline_is_the_minimum_of_all_limits(
        limits in prop::collection::vec(prop::option::of(1u64..10_000), 6),
        upstream in prop::option::of(0u64..20_000),
        attempt_at in 0u64..5_000, phase_at in 0u64..5_000, phase in 0u8..4,
    ) {
        let [pool, connect, write, read, attempt, total] = [0, 1, 2, 3, 4, 5].map(|i| limits[i].map(ms));
        let config = TimeoutConfig { pool, connect, write, read, attempt, total };
        prop_assume!(config.validate().is_ok());
        let start = SimTime::ZERO;
        let upstream = upstream.map(|u| Deadline::start(start, ms(u)));
        let mut timer = CallTimer::start(&config, start, upstream);
        let attempt_start = start + ms(attempt_at);
        let phase_start = attempt_start + ms(phase_at);
        let phase = [Phase::Pool, Phase::Connect, Phase::Write, Phase::Read][phase as usize];
        let candidates = [
            config.phase(phase).map(|d| phase_start + d),
            attempt.map(|d| attempt_start + d),
            total.map(|d| start + d),
            upstream.map(|u| u.at()),
        ];
        let call_end = [candidates[2], candidates[3]].into_iter().flatten().min().unwrap_or(SimTime::MAX);
        match timer.start_attempt(attempt_start) {
            Err(_) => prop_assert!(attempt_start >= call_end),
            Ok(_) => {
                let want = candidates.into_iter().flatten().min().unwrap_or(SimTime::MAX);
                prop_assert_eq!(timer.phase_deadline(&config, phase, phase_start).0, want);
            }
        }
    }
}
