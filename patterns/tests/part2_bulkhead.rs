//! Bulkheads against a naive reference model, plus examples and each
//! validation error.

use proptest::prelude::*;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::bulkhead::{
    Bulkhead, BulkheadConfig, Entry, Permit, SemaphoreConfig, ThreadPoolConfig, WaiterId,
};
use stormglass_patterns::{AttemptOutcome, Rejection};

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Enter,
    /// Exit the call held at this index among running calls.
    Exit(prop::sample::Index),
    /// Cancel the waiter at this index among waiters (or an unknown id).
    Cancel(prop::sample::Index, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u64..50).prop_map(Op::Advance),
        4 => Just(Op::Enter),
        3 => any::<prop::sample::Index>().prop_map(Op::Exit),
        1 => (any::<prop::sample::Index>(), any::<bool>()).prop_map(|(i, b)| Op::Cancel(i, b)),
    ]
}

/// The reference: a count of slots and a plain vector of waiters.
struct Model {
    slots_max: u32,
    queue_capacity: usize,
    max_wait: Option<u64>,
    running: u32,
    waiting: Vec<(u64, u64, u64)>, // (id, since, deadline)
    next_id: u64,
}

fn run(config: BulkheadConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (slots_max, queue_capacity, max_wait) = match &config {
        BulkheadConfig::Semaphore(c) => (c.max_concurrent, c.queue_capacity, Some(c.max_wait.as_nanos())),
        BulkheadConfig::ThreadPool(c) => (c.workers, c.queue_capacity, None),
    };
    let mut model = Model {
        slots_max,
        queue_capacity: queue_capacity as usize,
        max_wait,
        running: 0,
        waiting: Vec::new(),
        next_id: 0,
    };
    let mut bulkhead = Bulkhead::new(config).unwrap();
    let mut permits: Vec<Permit> = Vec::new();
    let mut now = 0u64;
    let mut last_promoted: Option<WaiterId> = None;
    for op in ops {
        let t = SimTime::from_nanos(now);
        // Expire first, as a caller on a real clock does: expiries come out
        // oldest first and match the model's overdue waiters exactly.
        while let Some(id) = bulkhead.expire(t) {
            let (mid, _, deadline) = model.waiting.remove(0);
            prop_assert_eq!(id, WaiterId(mid));
            prop_assert!(deadline <= now);
        }
        prop_assert!(model.waiting.first().is_none_or(|w| w.2 > now));
        match op {
            Op::Advance(d) => now += d,
            Op::Enter => match bulkhead.try_enter(t) {
                Entry::Entered(p) => {
                    prop_assert!(model.running < model.slots_max);
                    model.running += 1;
                    permits.push(p);
                }
                Entry::Queued { waiter, position, deadline } => {
                    prop_assert_eq!(model.running, model.slots_max);
                    prop_assert!(model.waiting.len() < model.queue_capacity);
                    prop_assert_eq!(position as usize, model.waiting.len());
                    prop_assert_eq!(waiter, WaiterId(model.next_id));
                    let expect = model.max_wait.map_or(u64::MAX, |w| now + w);
                    prop_assert_eq!(deadline, SimTime::from_nanos(expect));
                    model.waiting.push((model.next_id, now, expect));
                    model.next_id += 1;
                }
                Entry::Rejected(r) => {
                    prop_assert_eq!(r, Rejection::BulkheadFull);
                    prop_assert_eq!(model.running, model.slots_max);
                    prop_assert_eq!(model.waiting.len(), model.queue_capacity);
                }
            },
            Op::Exit(i) => {
                if permits.is_empty() {
                    continue;
                }
                let permit = permits.swap_remove(i.index(permits.len()));
                match bulkhead.exit(t, permit) {
                    Some(promoted) => {
                        // FIFO: the oldest waiter, never one past its deadline.
                        let (id, since, deadline) = model.waiting.remove(0);
                        prop_assert_eq!(promoted.waiter, WaiterId(id));
                        prop_assert_eq!(promoted.waited, SimDuration::from_nanos(now - since));
                        prop_assert!(now < deadline, "admitted after its deadline");
                        prop_assert!(last_promoted < Some(promoted.waiter));
                        last_promoted = Some(promoted.waiter);
                        permits.push(promoted.permit);
                    }
                    None => {
                        prop_assert!(model.waiting.is_empty());
                        model.running -= 1;
                    }
                }
            }
            Op::Cancel(i, unknown) => {
                if unknown || model.waiting.is_empty() {
                    prop_assert!(!bulkhead.cancel(t, WaiterId(model.next_id + 7)));
                } else {
                    let (id, ..) = model.waiting.remove(i.index(model.waiting.len()));
                    prop_assert!(bulkhead.cancel(t, WaiterId(id)));
                    prop_assert!(!bulkhead.cancel(t, WaiterId(id)), "answered twice");
                }
            }
        }
        bulkhead.check_invariants();
        prop_assert!(bulkhead.in_use() <= model.slots_max, "over the maximum");
        prop_assert_eq!(bulkhead.in_use(), model.running);
        prop_assert_eq!(bulkhead.queue_len() as usize, model.waiting.len());
        prop_assert_eq!(permits.len() as u32, model.running);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn semaphore_matches_the_model(
        max_concurrent in 1u32..4,
        queue_capacity in 0u32..4,
        max_wait in 1u64..120,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let config = BulkheadConfig::Semaphore(SemaphoreConfig {
            max_concurrent,
            queue_capacity,
            max_wait: SimDuration::from_nanos(max_wait),
        });
        run(config, ops)?;
    }

    #[test]
    fn thread_pool_matches_the_model(
        workers in 1u32..4,
        queue_capacity in 0u32..4,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(BulkheadConfig::ThreadPool(ThreadPoolConfig { workers, queue_capacity }), ops)?;
    }
}

#[test]
fn thread_pool_default_rejects_the_call_after_the_last_free_worker() {
    let mut pool =
        Bulkhead::new(BulkheadConfig::ThreadPool(ThreadPoolConfig { workers: 2, ..ThreadPoolConfig::default() }))
            .unwrap();
    let t = SimTime::ZERO;
    let Entry::Entered(a) = pool.try_enter(t) else { panic!("first worker") };
    let Entry::Entered(_b) = pool.try_enter(t) else { panic!("second worker") };
    let rejected = pool.try_enter(t);
    assert_eq!(rejected, Entry::Rejected(Rejection::BulkheadFull));
    // The rejection is an outcome a breaker counts like any other.
    let outcome = AttemptOutcome::Rejected(Rejection::BulkheadFull);
    assert!(outcome.is_local_rejection() && !outcome.is_success());
    // Once a worker frees, the next call gets it.
    assert_eq!(pool.exit(t, a), None);
    assert!(matches!(pool.try_enter(t), Entry::Entered(_)));
    assert_eq!(pool.stats().rejected, 1);
}

#[test]
fn semaphore_waiters_expire_at_max_wait() {
    let mut sem = Bulkhead::new(BulkheadConfig::Semaphore(SemaphoreConfig {
        max_concurrent: 1,
        queue_capacity: 2,
        max_wait: SimDuration::from_millis(100),
    }))
    .unwrap();
    let t0 = SimTime::ZERO;
    let Entry::Entered(p) = sem.try_enter(t0) else { panic!() };
    let Entry::Queued { waiter: w1, .. } = sem.try_enter(t0) else { panic!() };
    let t50 = SimTime::from_millis(50);
    let Entry::Queued { waiter: w2, position: 1, deadline } = sem.try_enter(t50) else { panic!() };
    assert_eq!(deadline, SimTime::from_millis(150));
    assert_eq!(sem.next_deadline(), Some(SimTime::from_millis(100)));
    assert_eq!(sem.expire(SimTime::from_millis(99)), None);
    assert_eq!(sem.expire(SimTime::from_millis(100)), Some(w1));
    assert_eq!(sem.expire(SimTime::from_millis(100)), None);
    let promoted = sem.exit(SimTime::from_millis(120), p).unwrap();
    assert_eq!(promoted.waiter, w2);
    assert_eq!(promoted.waited, SimDuration::from_millis(70));
    assert!(!sem.cancel(SimTime::from_millis(150), w2), "already admitted");
    assert_eq!(sem.stats().expired, 1);
    assert_eq!(sem.stats().promoted, 1);
}

#[test]
fn configs_parse_with_defaults_and_refuse_unknown_fields() {
    let c: BulkheadConfig = ron::from_str(r#"(isolation: "thread_pool")"#).unwrap();
    assert_eq!(c, BulkheadConfig::ThreadPool(ThreadPoolConfig::default()));
    assert_eq!(ThreadPoolConfig::default().workers, 10);
    assert_eq!(ThreadPoolConfig::default().queue_capacity, 0);
    assert_eq!(SemaphoreConfig::default().max_concurrent, 25);
    let c: BulkheadConfig = serde_json::from_str(
        r#"{"isolation": "semaphore", "max_concurrent": 3, "max_wait": "250ms", "queue_capacity": 4}"#,
    )
    .unwrap();
    assert_eq!(
        c,
        BulkheadConfig::Semaphore(SemaphoreConfig {
            max_concurrent: 3,
            queue_capacity: 4,
            max_wait: SimDuration::from_millis(250)
        })
    );
    let err = serde_json::from_str::<BulkheadConfig>(r#"{"isolation": "semaphore", "max_concurent": 3}"#).unwrap_err();
    assert!(err.to_string().contains("max_concurent"), "{err}");
}

#[test]
fn each_validation_error_names_its_field() {
    let sem = |max_concurrent, queue_capacity, max_wait_ms| {
        BulkheadConfig::Semaphore(SemaphoreConfig {
            max_concurrent,
            queue_capacity,
            max_wait: SimDuration::from_millis(max_wait_ms),
        })
    };
    let pool = |workers, queue_capacity| BulkheadConfig::ThreadPool(ThreadPoolConfig { workers, queue_capacity });
    let cases = [
        (sem(0, 0, 0), "semaphore.max_concurrent: must be at least 1"),
        (sem(2_000_000, 0, 0), "semaphore.max_concurrent: must be at most 1048576"),
        (sem(1, 2_000_000, 5), "semaphore.queue_capacity: must be at most 1048576"),
        (sem(1, 1, 0), "semaphore.max_wait: must be above 0s when queue_capacity is above 0"),
        (pool(0, 0), "thread_pool.workers: must be at least 1"),
        (pool(2_000_000, 0), "thread_pool.workers: must be at most 1048576"),
        (pool(1, 2_000_000), "thread_pool.queue_capacity: must be at most 1048576"),
    ];
    for (config, message) in cases {
        assert_eq!(config.validate().unwrap_err().to_string(), message);
        assert_eq!(Bulkhead::new(config).unwrap_err().to_string(), message);
    }
    assert!(BulkheadConfig::default().validate().is_ok());
}
