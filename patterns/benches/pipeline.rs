//! ns per decision of the whole policy pipeline on the happy path, next to a
//! no-op baseline in the same group.
//!
//! Run (short):
//! `cargo bench -p stormglass-patterns --bench pipeline -- --warm-up-time 1 --measurement-time 2`
//!
//! One "decision" is one call through the pipeline as a caller drives it on
//! the happy path: `start_call` gives `Send`, the attempt succeeds, and
//! `on_outcome` gives `Finish::Success`. 4096 calls per iteration, simulated
//! time advancing 1 ms per call. Four rows:
//! - the no-op baseline: the same loop, a trivial decision;
//! - pass-through: an empty `PolicyConfig` (one attempt, no timeout), the
//!   cost of the pipeline's own plumbing;
//! - the seed policy of order -> user (timeout, retry, consecutive breaker,
//!   semaphore bulkhead, static fallback);
//! - every pattern at once: a token-bucket rate limiter, a total timeout, a
//!   gRPC retry budget, a Hystrix breaker and all of the seed policy.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stormglass_core::rng::SimRng;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::AttemptOutcome;
use stormglass_patterns::breaker::{BreakerConfig, BreakerKind, HystrixConfig};
use stormglass_patterns::budget::{BudgetConfig, TokenBucketConfig};
use stormglass_patterns::limiter::{Limit, RateLimiterConfig};
use stormglass_patterns::pipeline::{Finish, Policy, PolicyConfig, Request, Step};

/// Calls per measured iteration.
const BATCH: u64 = 4096;
const STEP: SimDuration = SimDuration::from_millis(1);

fn secs(n: u64) -> SimDuration {
    SimDuration::from_secs(n)
}

/// Every pattern of the pipeline, each on its happy path: the limiter
/// admits 2000 calls/s against 1000 offered.
fn everything() -> PolicyConfig {
    let mut config = PolicyConfig::seed_combination();
    config.rate_limit =
        Some(RateLimiterConfig::TokenBucket { rate: Limit::new(2000, SimDuration::from_secs(1)), burst: 100 });
    if let Some(timeout) = config.timeout.as_mut() {
        timeout.total = Some(secs(20));
    }
    config.budget = Some(BudgetConfig::TokenBucket(TokenBucketConfig::default()));
    config.breaker = Some(BreakerConfig::of(BreakerKind::Hystrix(HystrixConfig::default())));
    config
}

/// One happy-path call: send, succeed, finish.
#[inline]
fn call(policy: &mut Policy, now: SimTime, key: u64, rng: &mut SimRng) -> Step {
    let (mut call, step) = policy.start_call(now, Request::idempotent(key), rng);
    debug_assert!(matches!(step, Step::Send(_)), "{step:?}");
    policy.on_outcome(now + SimDuration::from_micros(500), &mut call, AttemptOutcome::OK, None, rng)
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_happy_path");
    group.throughput(Throughput::Elements(BATCH));

    group.bench_function("noop_baseline", |b| {
        let mut now = SimTime::ZERO;
        b.iter(|| {
            for key in 0..BATCH {
                now += STEP;
                black_box(Step::Finish(Finish::Success { attempts: (now.as_nanos() ^ key) as u32 }));
            }
        })
    });

    for (name, config) in [
        ("passthrough", PolicyConfig::default()),
        ("seed_policy", PolicyConfig::seed_combination()),
        ("every_pattern", everything()),
    ] {
        let mut policy = Policy::new(config).expect("valid bench config");
        let mut rng = SimRng::from_seed_u64(5);
        let mut now = SimTime::ZERO;
        // Checked once outside the timing: the happy path really is taken.
        let check = call(&mut policy, now, 0, &mut rng);
        assert_eq!(check, Step::Finish(Finish::Success { attempts: 1 }), "{name}: not the happy path");
        group.bench_function(name, |b| {
            b.iter(|| {
                for key in 0..BATCH {
                    now += STEP;
                    black_box(call(&mut policy, black_box(now), key, &mut rng));
                }
            })
        });
        let stats = policy.stats();
        assert_eq!(stats.calls, stats.successes, "{name}: a call left the happy path");
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
