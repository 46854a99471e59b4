//! ns per decision of every rate limiter, at one key and at 10^6 keys, next
//! to a no-op baseline in the same group; and the bytes per key of the keyed
//! table at 10^6 keys, counted by a wrapping global allocator.
//!
//! Run (short):
//! `cargo bench -p stormglass-patterns --bench limiters -- --warm-up-time 1 --measurement-time 2`
//!
//! Every limiter runs `50 per 100us` (burst 50): at one request per
//! simulated microsecond about half the single-key decisions are denials,
//! so both paths are measured. At 10^6 keys the keys come in a fixed
//! pseudo-random order (an LCG, no RNG state), so each decision probes a
//! cold part of the table: that is the cost being measured.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::limiter::{Decision, KeyedLimiter, KeyedLimiterConfig, Limit, RateLimiter, RateLimiterConfig};

/// Counts live heap bytes so the table's footprint is measured, not
/// estimated. Only this bench binary uses it.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to the system allocator with the same
// arguments; the counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEYS: u64 = 1_000_000;
const STEP: SimDuration = SimDuration::from_micros(1);

fn configs() -> Vec<(&'static str, RateLimiterConfig)> {
    let limit = Limit::new(50, SimDuration::from_micros(100));
    vec![
        ("fixed_window", RateLimiterConfig::FixedWindow { limit }),
        ("sliding_log", RateLimiterConfig::SlidingLog { limit }),
        ("sliding_window", RateLimiterConfig::SlidingWindow { limit }),
        ("token_bucket", RateLimiterConfig::TokenBucket { rate: limit, burst: 50 }),
        ("gcra", RateLimiterConfig::Gcra { rate: limit, burst: 50 }),
        ("leaky_queue", RateLimiterConfig::LeakyQueue { rate: limit, burst: 50, nodelay: false }),
        ("concurrency", RateLimiterConfig::Concurrency { max_in_flight: 50 }),
    ]
}

/// The key of the k-th decision: the top 20 bits of a multiplicative hash
/// of `k`, folded into [0, KEYS). A fixed, repeatable order that defeats the
/// cache (about 5% of keys come up twice as often, which does not matter).
#[inline]
fn key_at(k: u64) -> u64 {
    let x = (k.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(3_037_000_493)) >> 44;
    x % KEYS
}

/// The no-op: same loop, same inputs, a decision built without state.
#[inline(never)]
fn noop(now: SimTime, permits: u32) -> Decision {
    Decision::Allowed { remaining: (now.as_nanos() as u32) ^ permits }
}

fn single_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter_1_key");
    group.throughput(Throughput::Elements(1));
    group.bench_function("noop_baseline", |b| {
        let mut now = SimTime::ZERO;
        b.iter(|| {
            now += STEP;
            black_box(noop(black_box(now), black_box(1)))
        })
    });
    for (name, config) in configs() {
        let concurrency = matches!(config, RateLimiterConfig::Concurrency { .. });
        let mut limiter = RateLimiter::new(config).unwrap();
        let mut now = SimTime::ZERO;
        let mut odd = false;
        group.bench_function(name, |b| {
            b.iter(|| {
                now += STEP;
                let d = limiter.try_acquire(black_box(now), black_box(1));
                // Concurrency: release every other call so the limiter
                // neither saturates nor stays empty.
                odd = !odd;
                if concurrency && odd && d.is_allowed() {
                    limiter.release(1);
                }
                black_box(d)
            })
        });
    }
    group.finish();
}

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter_1m_keys");
    group.throughput(Throughput::Elements(1));
    group.bench_function("noop_baseline", |b| {
        let mut now = SimTime::ZERO;
        let mut k = 0u64;
        b.iter(|| {
            now += STEP;
            k += 1;
            black_box(noop(black_box(now), key_at(k) as u32))
        })
    });
    let mut report = Vec::new();
    for (name, config) in configs() {
        let concurrency = matches!(config, RateLimiterConfig::Concurrency { .. });
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let mut limiter: KeyedLimiter<u64> =
            KeyedLimiter::new(KeyedLimiterConfig { limiter: config, keys_max: KEYS as u32 }).unwrap();
        let mut now = SimTime::ZERO;
        for key in 0..KEYS {
            now += STEP;
            limiter.try_acquire(&key, now, 1);
            if concurrency {
                limiter.release(&key, 1);
            }
        }
        let counted = LIVE_BYTES.load(Ordering::Relaxed) - before;
        assert_eq!(u64::from(limiter.len()), KEYS);
        report.push((name, counted, limiter.memory_bytes()));
        let mut k = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                now += STEP;
                k += 1;
                let key = key_at(k);
                let d = limiter.try_acquire(&key, black_box(now), 1);
                if concurrency && d.is_allowed() {
                    limiter.release(&key, 1);
                }
                black_box(d)
            })
        });
    }
    group.finish();
    println!("\nbytes per key of KeyedLimiter<u64> at {KEYS} keys (keys_max = {KEYS}):");
    println!("{:<16} {:>14} {:>14}", "algorithm", "counted", "from capacity");
    for (name, counted, estimate) in report {
        println!("{:<16} {:>14.1} {:>14.1}", name, counted as f64 / KEYS as f64, estimate as f64 / KEYS as f64);
    }
}

criterion_group!(benches, single_key, keyed);
criterion_main!(benches);
