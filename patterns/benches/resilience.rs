//! ns per decision of the part-1 patterns (breakers, retry, budgets,
//! timeouts), next to a no-op baseline in the same group.
//!
//! Run (short):
//! `cargo bench -p stormglass-patterns --bench resilience -- --warm-up-time 1 --measurement-time 2`
//!
//! One "decision" is one call through the pattern: for a breaker, a
//! `try_acquire` and the matching `on_result`; for retry, one `on_attempt`
//! (with its backoff draw); for a budget, one `try_acquire` and one
//! `on_result`; for timeouts, starting an attempt and computing a phase
//! deadline. Outcomes come from a fixed seed, 10% failures, and simulated
//! time advances 1 ms per call, so the windows rotate as they would in a run.
//! The baseline does the same loop over the same outcomes with a trivial
//! decision, so the difference is the pattern's own cost.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stormglass_core::rng::SimRng;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::AttemptOutcome;
use stormglass_patterns::breaker::{Breaker, BreakerConfig, BreakerKind, CountWindowConfig, HystrixConfig};
use stormglass_patterns::budget::{AdaptiveConfig, BudgetConfig, RatioConfig, RetryBudget, TokenBucketConfig};
use stormglass_patterns::retry::{Backoff, Idempotency, RetryConfig, RetryPolicy};
use stormglass_patterns::timeout::{CallTimer, Phase, TimeoutConfig};

/// Decisions per measured iteration.
const BATCH: usize = 4096;

fn outcomes() -> Vec<AttemptOutcome> {
    let mut rng = SimRng::from_seed_u64(42);
    (0..BATCH)
        .map(|_| match rng.below(20) {
            0 => AttemptOutcome::Status(503),
            1 => AttemptOutcome::Timeout,
            _ => AttemptOutcome::OK,
        })
        .collect()
}

fn bench_breaker(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    kind: BreakerKind,
    outcomes: &[AttemptOutcome],
) {
    let mut breaker = Breaker::new(BreakerConfig::of(kind)).expect("valid bench config");
    let mut rng = SimRng::from_seed_u64(1);
    let mut now = SimTime::ZERO;
    group.bench_function(name, |b| {
        b.iter(|| {
            for &outcome in outcomes {
                now += SimDuration::from_millis(1);
                if let Ok(permit) = breaker.try_acquire(now) {
                    breaker.on_result(now, permit, outcome, SimDuration::from_millis(3), &mut rng);
                }
                while let Some(t) = breaker.pop_transition() {
                    black_box(t);
                }
            }
        })
    });
}

fn bench_budget(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    config: BudgetConfig,
    outcomes: &[AttemptOutcome],
) {
    let mut budget = RetryBudget::new(config).expect("valid bench config");
    let mut rng = SimRng::from_seed_u64(2);
    let mut now = SimTime::ZERO;
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut is_retry = false;
            for &outcome in outcomes {
                now += SimDuration::from_millis(1);
                if budget.try_acquire(now, is_retry, &mut rng).is_ok() {
                    budget.on_result(now, outcome, !outcome.is_success());
                }
                is_retry = !outcome.is_success();
            }
        })
    });
}

fn resilience(c: &mut Criterion) {
    let outcomes = outcomes();
    let mut group = c.benchmark_group("resilience");
    group.throughput(Throughput::Elements(BATCH as u64));

    group.bench_function("noop_baseline", |b| {
        let mut now = SimTime::ZERO;
        b.iter(|| {
            for &outcome in &outcomes {
                now += SimDuration::from_millis(1);
                black_box((now, outcome.is_success()));
            }
        })
    });

    bench_breaker(&mut group, "breaker_consecutive", BreakerKind::default(), &outcomes);
    bench_breaker(
        &mut group,
        "breaker_count_window",
        BreakerKind::CountWindow(CountWindowConfig::default()),
        &outcomes,
    );
    bench_breaker(&mut group, "breaker_hystrix", BreakerKind::Hystrix(HystrixConfig::default()), &outcomes);

    for (name, backoff) in [
        (
            "retry_exponential",
            Backoff::Exponential {
                multiplier: SimDuration::from_secs(1),
                base: 2.0,
                min: SimDuration::ZERO,
                max: SimDuration::from_secs(10),
            },
        ),
        ("retry_full_jitter", Backoff::default()),
        (
            "retry_decorrelated",
            Backoff::Decorrelated { base: SimDuration::from_millis(100), max: SimDuration::from_secs(10) },
        ),
    ] {
        let policy = RetryPolicy::new(RetryConfig { backoff, ..RetryConfig::default() }).expect("valid bench config");
        let mut rng = SimRng::from_seed_u64(3);
        let mut now = SimTime::ZERO;
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut state = policy.start(now, Idempotency::Idempotent, None);
                for &outcome in &outcomes {
                    now += SimDuration::from_millis(1);
                    if state.is_finished() {
                        state = policy.start(now, Idempotency::Idempotent, None);
                    }
                    black_box(policy.on_attempt(&mut state, now, outcome, None, &mut rng));
                }
            })
        });
    }

    bench_budget(&mut group, "budget_token_bucket", BudgetConfig::TokenBucket(TokenBucketConfig::default()), &outcomes);
    bench_budget(&mut group, "budget_ratio", BudgetConfig::Ratio(RatioConfig::default()), &outcomes);
    bench_budget(&mut group, "budget_adaptive", BudgetConfig::Adaptive(AdaptiveConfig::default()), &outcomes);

    let config = TimeoutConfig {
        attempt: Some(SimDuration::from_secs(2)),
        total: Some(SimDuration::from_secs(10)),
        ..TimeoutConfig::default()
    };
    group.bench_function("timeout_attempt_and_phase", |b| {
        let mut now = SimTime::ZERO;
        b.iter(|| {
            for _ in &outcomes {
                now += SimDuration::from_millis(1);
                let mut timer = CallTimer::start(&config, now, None);
                if timer.start_attempt(now).is_ok() {
                    black_box(timer.phase_deadline(&config, Phase::Read, now));
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, resilience);
criterion_main!(benches);
