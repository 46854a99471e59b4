//! The idempotency store against a naive reference model, plus examples and
//! each validation error.

use proptest::prelude::*;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::idempotency::{Begin, IdempotencyConfig, IdempotencyStore};

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Begin(u8, u8),
    Complete(u8, u8, u32),
    Abandon(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u64..30).prop_map(Op::Advance),
        4 => (0u8..6, 0u8..2).prop_map(|(k, f)| Op::Begin(k, f)),
        3 => (0u8..6, 0u8..2, any::<u32>()).prop_map(|(k, f, r)| Op::Complete(k, f, r)),
        1 => (0u8..6).prop_map(Op::Abandon),
    ]
}

/// One record of the reference: the key, fingerprint, start or completion
/// time, result, and the sequence number of that start or completion.
#[derive(Debug, Clone)]
struct Rec {
    key: u8,
    fingerprint: u64,
    since: u64,
    result: Option<u32>,
    seq: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Proceed,
    Conflict,
    Replay(u32),
    Mismatch,
    Full,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn store_matches_the_model(
        ttl in 1u64..60,
        in_progress_ttl in 1u64..60,
        capacity in 1u32..5,
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let config = IdempotencyConfig {
            ttl: SimDuration::from_nanos(ttl),
            in_progress_ttl: SimDuration::from_nanos(in_progress_ttl),
            capacity,
        };
        let mut store: IdempotencyStore<u8, u32> = IdempotencyStore::new(config).unwrap();
        let mut model: Vec<Rec> = Vec::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        // The reference treats an expired record as absent, everywhere.
        let alive = |r: &Rec, now: u64| {
            now < r.since + if r.result.is_some() { ttl } else { in_progress_ttl }
        };
        for op in ops {
            seq += 1;
            let t = SimTime::from_nanos(now);
            model.retain(|r| alive(r, now));
            match op {
                Op::Advance(d) => now += d,
                Op::Begin(k, f) => {
                    let fingerprint = 100 + u64::from(f);
                    let got = match store.begin(t, k, fingerprint) {
                        Begin::Proceed => Answer::Proceed,
                        Begin::Conflict => Answer::Conflict,
                        Begin::Replay(r) => Answer::Replay(*r),
                        Begin::Mismatch => Answer::Mismatch,
                        Begin::Full => Answer::Full,
                    };
                    let expect = match model.iter().find(|r| r.key == k) {
                        Some(r) if r.fingerprint != fingerprint => Answer::Mismatch,
                        Some(Rec { result: None, .. }) => Answer::Conflict,
                        Some(Rec { result: Some(v), .. }) => Answer::Replay(*v),
                        None => {
                            if model.len() == capacity as usize {
                                // Evict the record completed longest ago.
                                let oldest = model
                                    .iter()
                                    .enumerate()
                                    .filter(|(_, r)| r.result.is_some())
                                    .min_by_key(|(_, r)| r.seq)
                                    .map(|(i, _)| i);
                                if let Some(i) = oldest {
                                    model.remove(i);
                                }
                            }
                            if model.len() < capacity as usize {
                                model.push(Rec { key: k, fingerprint, since: now, result: None, seq });
                                Answer::Proceed
                            } else {
                                Answer::Full
                            }
                        }
                    };
                    prop_assert_eq!(got, expect);
                }
                Op::Complete(k, f, v) => {
                    let fingerprint = 100 + u64::from(f);
                    let got = store.complete(t, k, fingerprint, v);
                    let expect = match model
                        .iter_mut()
                        .find(|r| r.key == k && r.result.is_none() && r.fingerprint == fingerprint)
                    {
                        Some(r) => {
                            r.result = Some(v);
                            r.since = now;
                            r.seq = seq;
                            true
                        }
                        None => false,
                    };
                    prop_assert_eq!(got, expect);
                }
                Op::Abandon(k) => {
                    let at = model.iter().position(|r| r.key == k && r.result.is_none());
                    prop_assert_eq!(store.abandon(t, k), at.is_some());
                    if let Some(i) = at {
                        model.remove(i);
                    }
                }
            }
            store.check_invariants();
            prop_assert!(store.len() <= capacity);
        }
    }
}

#[test]
fn in_progress_records_are_never_evicted() {
    let config = IdempotencyConfig { capacity: 2, ..IdempotencyConfig::default() };
    let mut store: IdempotencyStore<&str, u16> = IdempotencyStore::new(config).unwrap();
    let t = SimTime::ZERO;
    assert_eq!(store.begin(t, "a", 1), Begin::Proceed);
    assert_eq!(store.begin(t, "b", 1), Begin::Proceed);
    // Evicting "a" would let its duplicate run a second time.
    assert_eq!(store.begin(t, "c", 1), Begin::Full);
    assert!(store.complete(t, "a", 1, 200));
    // Now "a" is done and may go (its replay is lost, not its lock).
    assert_eq!(store.begin(t, "c", 1), Begin::Proceed);
    assert_eq!(store.stats().evicted, 1);
    assert_eq!(store.begin(t, "b", 1), Begin::Conflict);
    assert_eq!(store.begin(t, "a", 1), Begin::Full);
}

#[test]
fn a_crashed_request_releases_its_key_after_in_progress_ttl() {
    let config = IdempotencyConfig { in_progress_ttl: SimDuration::from_secs(30), ..IdempotencyConfig::default() };
    let mut store: IdempotencyStore<u64, u16> = IdempotencyStore::new(config).unwrap();
    assert_eq!(store.begin(SimTime::ZERO, 9, 1), Begin::Proceed);
    assert_eq!(store.begin(SimTime::from_secs(29), 9, 1), Begin::Conflict);
    assert_eq!(store.begin(SimTime::from_secs(30), 9, 1), Begin::Proceed);
    // Completion is by key and payload: a request with another payload
    // cannot complete this record; the same payload can.
    assert!(!store.complete(SimTime::from_secs(31), 9, 2, 999));
    assert!(store.complete(SimTime::from_secs(31), 9, 1, 500));
    assert_eq!(store.begin(SimTime::from_secs(32), 9, 1), Begin::Replay(&500));
    // Abandoning releases at once.
    assert_eq!(store.begin(SimTime::from_secs(33), 10, 1), Begin::Proceed);
    assert!(store.abandon(SimTime::from_secs(33), 10));
    assert_eq!(store.begin(SimTime::from_secs(33), 10, 1), Begin::Proceed);
    // Abandoning a lock that already expired releases nothing (found by the
    // property test: it used to answer true).
    assert!(!store.abandon(SimTime::from_secs(63), 10));
    assert!(!store.complete(SimTime::from_secs(63), 10, 1, 200));
}

#[test]
fn each_validation_error_names_its_field() {
    let d = IdempotencyConfig::default;
    let cases = [
        (IdempotencyConfig { ttl: SimDuration::ZERO, ..d() }, "ttl: must be above 0s"),
        (IdempotencyConfig { in_progress_ttl: SimDuration::ZERO, ..d() }, "in_progress_ttl: must be above 0s"),
        (IdempotencyConfig { capacity: 0, ..d() }, "capacity: must be at least 1"),
        (IdempotencyConfig { capacity: u32::MAX, ..d() }, "capacity: must be at most 2147483648"),
    ];
    for (config, message) in cases {
        assert_eq!(config.validate().unwrap_err().to_string(), message);
        assert_eq!(IdempotencyStore::<u8, u8>::new(config).err().unwrap().to_string(), message);
    }
    let c: IdempotencyConfig = ron::from_str(r#"(ttl: "1h")"#).unwrap();
    assert_eq!(c.ttl, SimDuration::from_secs(3600));
    assert_eq!(c.capacity, 100_000);
    assert!(ron::from_str::<IdempotencyConfig>(r#"(tll: "1h")"#).is_err());
}
