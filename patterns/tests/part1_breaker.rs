//! Circuit breakers: the published semantics of the three designs, pinned.

use stormglass_core::rng::SimRng;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::breaker::{
    Breaker, BreakerConfig, BreakerKind, BreakerState, Classifier, ConsecutiveConfig, CountWindowConfig, HystrixConfig,
    OpenGrowth, Transition, TransitionCause,
};
use stormglass_patterns::{AttemptOutcome, Rejection};

const OK: AttemptOutcome = AttemptOutcome::OK;
const FAIL: AttemptOutcome = AttemptOutcome::Status(500);

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}
fn at_ms(ms: u64) -> SimTime {
    SimTime::from_millis(ms)
}

/// Admits one call at `now` and reports `outcome` at once.
fn call(b: &mut Breaker, now: SimTime, outcome: AttemptOutcome) -> bool {
    call_slow(b, now, outcome, SimDuration::ZERO)
}

fn call_slow(b: &mut Breaker, now: SimTime, outcome: AttemptOutcome, latency: SimDuration) -> bool {
    let mut rng = SimRng::from_seed_u64(0);
    match b.try_acquire(now) {
        Ok(permit) => {
            b.on_result(now, permit, outcome, latency, &mut rng);
            true
        }
        Err(_) => false,
    }
}

fn drain(b: &mut Breaker) -> Vec<Transition> {
    std::iter::from_fn(|| b.pop_transition()).collect()
}

// --- consecutive failures (Python `circuitbreaker`) ---

#[test]
fn consecutive_opens_on_the_threshold_th_failure_in_a_row_only() {
    let mut b = Breaker::new(BreakerConfig::consecutive(5, secs(30))).unwrap();
    for _ in 0..4 {
        call(&mut b, SimTime::ZERO, FAIL);
    }
    // A success resets the count, as `__call_succeeded` does.
    call(&mut b, SimTime::ZERO, OK);
    for _ in 0..4 {
        call(&mut b, SimTime::ZERO, FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, at_ms(10), FAIL);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.open_until(), Some(at_ms(10) + secs(30)));
}

#[test]
fn consecutive_classification_404_is_not_a_failure_and_ignored_statuses_do_not_reset() {
    let mut config = BreakerConfig::consecutive(2, secs(30));
    config.classify.ignored_statuses = vec![409];
    let mut b = Breaker::new(config).unwrap();
    call(&mut b, SimTime::ZERO, AttemptOutcome::Timeout);
    call(&mut b, SimTime::ZERO, AttemptOutcome::Status(404)); // success: resets
    call(&mut b, SimTime::ZERO, AttemptOutcome::ConnectionRefused);
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, SimTime::ZERO, AttemptOutcome::Status(409)); // ignored: no reset
    call(&mut b, SimTime::ZERO, AttemptOutcome::Rejected(Rejection::BulkheadFull)); // ignored
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, SimTime::ZERO, AttemptOutcome::ConnectionReset);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn local_rejections_count_as_failures_when_configured() {
    let mut config = BreakerConfig::consecutive(2, secs(30));
    config.classify = Classifier { local_rejections_are_failures: true, ..Classifier::default() };
    let mut b = Breaker::new(config).unwrap();
    call(&mut b, SimTime::ZERO, AttemptOutcome::Rejected(Rejection::BulkheadFull));
    call(&mut b, SimTime::ZERO, AttemptOutcome::Rejected(Rejection::QueueFull));
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn consecutive_half_open_admits_everyone_and_the_first_result_decides() {
    let mut b = Breaker::new(BreakerConfig::consecutive(1, secs(30))).unwrap();
    let mut rng = SimRng::from_seed_u64(0);
    call(&mut b, SimTime::ZERO, FAIL);
    assert_eq!(b.try_acquire(at_ms(29_999)).unwrap_err().retry_after, SimDuration::from_millis(1));
    // At exactly the recovery timeout the breaker is half-open.
    let p1 = b.try_acquire(secs(30).into_time()).unwrap();
    let p2 = b.try_acquire(secs(30).into_time()).unwrap();
    let p3 = b.try_acquire(secs(30).into_time()).unwrap();
    assert!(p1.is_probe() && p2.is_probe() && p3.is_probe());
    b.on_result(at_ms(30_100), p2, FAIL, SimDuration::ZERO, &mut rng);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.open_until(), Some(at_ms(60_100)));
    // The other probes' results are stale now.
    b.on_result(at_ms(30_200), p1, OK, SimDuration::ZERO, &mut rng);
    b.on_result(at_ms(30_200), p3, OK, SimDuration::ZERO, &mut rng);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.counters().stale_results, 2);
    // Next half-open: a success closes.
    assert!(call(&mut b, at_ms(60_100), OK));
    assert_eq!(b.state(), BreakerState::Closed);
    let causes: Vec<_> = drain(&mut b).iter().map(|t| (t.to, t.cause)).collect();
    assert_eq!(
        causes,
        [
            (BreakerState::Open, TransitionCause::ConsecutiveFailures),
            (BreakerState::HalfOpen, TransitionCause::OpenElapsed),
            (BreakerState::Open, TransitionCause::ProbesFailed),
            (BreakerState::HalfOpen, TransitionCause::OpenElapsed),
            (BreakerState::Closed, TransitionCause::ProbesSucceeded),
        ]
    );
}

#[test]
fn consecutive_half_open_probes_can_be_bounded() {
    let config = BreakerConfig::of(BreakerKind::Consecutive(ConsecutiveConfig {
        failure_threshold: 1,
        recovery_timeout: secs(1),
        half_open_calls_max: Some(2),
    }));
    let mut b = Breaker::new(config).unwrap();
    call(&mut b, SimTime::ZERO, FAIL);
    let _p1 = b.try_acquire(at_ms(1000)).unwrap();
    let _p2 = b.try_acquire(at_ms(1000)).unwrap();
    let rejected = b.try_acquire(at_ms(1000)).unwrap_err();
    assert_eq!(rejected.retry_after, SimDuration::ZERO);
}

// --- count-based sliding window (resilience4j) ---

fn count_window(window_size: u32, calls_min: u32, half_open: u32) -> CountWindowConfig {
    CountWindowConfig {
        window_size,
        calls_min,
        failure_rate_threshold_pct: 50.0,
        slow_call_rate_threshold_pct: 100.0,
        half_open_calls_permitted: half_open,
        open_duration: secs(60),
        automatic_half_open: false,
    }
}

#[test]
fn count_window_waits_for_calls_min_then_opens_at_the_rate() {
    let mut b = Breaker::new(BreakerConfig::of(BreakerKind::CountWindow(count_window(10, 5, 3)))).unwrap();
    for _ in 0..4 {
        call(&mut b, SimTime::ZERO, FAIL);
    }
    // 100% failures but only 4 calls of the 5 needed.
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, SimTime::ZERO, OK);
    // 4 of 5 = 80% >= 50%.
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn count_window_evicts_old_calls_and_uses_greater_or_equal() {
    let mut b = Breaker::new(BreakerConfig::of(BreakerKind::CountWindow(count_window(4, 4, 3)))).unwrap();
    for o in [OK, OK, OK, FAIL, OK] {
        call(&mut b, SimTime::ZERO, o);
    }
    // Window: OK OK FAIL OK = 25%.
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, SimTime::ZERO, FAIL);
    // Window: OK FAIL OK FAIL = 50%, and 50 >= 50 opens.
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn count_window_calls_min_above_window_size_acts_as_window_size() {
    let mut b = Breaker::new(BreakerConfig::of(BreakerKind::CountWindow(count_window(2, 100, 1)))).unwrap();
    call(&mut b, SimTime::ZERO, FAIL);
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, SimTime::ZERO, FAIL);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn count_window_opens_on_slow_successes() {
    let mut config = count_window(4, 4, 2);
    config.slow_call_rate_threshold_pct = 50.0;
    let mut config = BreakerConfig::of(BreakerKind::CountWindow(config));
    config.classify.slow_call_duration = secs(1);
    let mut b = Breaker::new(config).unwrap();
    call_slow(&mut b, SimTime::ZERO, OK, secs(1)); // not above: not slow
    call_slow(&mut b, SimTime::ZERO, OK, SimDuration::from_millis(1001));
    call_slow(&mut b, SimTime::ZERO, OK, SimDuration::ZERO);
    assert_eq!(b.state(), BreakerState::Closed);
    call_slow(&mut b, SimTime::ZERO, OK, secs(5));
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(drain(&mut b)[0].cause, TransitionCause::SlowCallRate);
}

#[test]
fn count_window_half_open_decides_after_all_permitted_calls() {
    let mut b = Breaker::new(BreakerConfig::of(BreakerKind::CountWindow(count_window(2, 2, 3)))).unwrap();
    let mut rng = SimRng::from_seed_u64(0);
    call(&mut b, SimTime::ZERO, FAIL);
    call(&mut b, SimTime::ZERO, FAIL);
    // resilience4j moves on only strictly after the wait (`isAfter`).
    let rejected = b.try_acquire(SimTime::ZERO + secs(60)).unwrap_err();
    assert_eq!(rejected.retry_after, SimDuration::from_nanos(1));
    assert_eq!(b.state(), BreakerState::Open);
    let t = SimTime::ZERO + secs(60) + SimDuration::from_nanos(1);
    let [first, second, third] = [(); 3].map(|_| b.try_acquire(t).unwrap());
    assert!(b.try_acquire(t).is_err(), "a fourth probe is not permitted");
    b.on_result(t, first, FAIL, SimDuration::ZERO, &mut rng);
    b.on_result(t, second, OK, SimDuration::ZERO, &mut rng);
    assert_eq!(b.state(), BreakerState::HalfOpen, "undecided until all three complete");
    b.on_result(t, third, OK, SimDuration::ZERO, &mut rng);
    // 1 of 3 = 33% < 50%.
    assert_eq!(b.state(), BreakerState::Closed);

    // And 2 of 3 reopens.
    call(&mut b, t, FAIL);
    call(&mut b, t, FAIL);
    let t = t + secs(60) + SimDuration::from_nanos(1);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire(t).unwrap()).collect();
    for (p, o) in probes.into_iter().zip([FAIL, OK, FAIL]) {
        b.on_result(t, p, o, SimDuration::ZERO, &mut rng);
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn count_window_ignored_probe_gives_its_place_back() {
    let mut config = BreakerConfig::of(BreakerKind::CountWindow(count_window(1, 1, 1)));
    config.classify.ignored_statuses = vec![404];
    let mut b = Breaker::new(config).unwrap();
    let mut rng = SimRng::from_seed_u64(0);
    call(&mut b, SimTime::ZERO, FAIL);
    let t = SimTime::ZERO + secs(60) + SimDuration::from_nanos(1);
    let p = b.try_acquire(t).unwrap();
    assert!(b.try_acquire(t).is_err());
    b.on_result(t, p, AttemptOutcome::Status(404), SimDuration::ZERO, &mut rng);
    assert!(b.try_acquire(t).is_ok(), "the ignored probe freed its permit");
}

#[test]
fn count_window_automatic_half_open_is_stamped_when_the_wait_ends() {
    let mut manual = count_window(1, 1, 1);
    let mut auto = manual.clone();
    auto.automatic_half_open = true;
    manual.automatic_half_open = false;
    for (config, expected_at) in [(manual, SimTime::ZERO + secs(75)), (auto, SimTime::ZERO + secs(60))] {
        let mut b = Breaker::new(BreakerConfig::of(BreakerKind::CountWindow(config))).unwrap();
        call(&mut b, SimTime::ZERO, FAIL);
        b.poll(SimTime::ZERO + secs(75));
        let ts = drain(&mut b);
        assert_eq!(ts[1].to, BreakerState::HalfOpen);
        assert_eq!(ts[1].at, expected_at);
    }
}

// --- Hystrix ---

fn hystrix() -> Breaker {
    Breaker::new(BreakerConfig::of(BreakerKind::Hystrix(HystrixConfig::default()))).unwrap()
}

#[test]
fn hystrix_19_failures_in_the_window_stay_closed() {
    let mut b = hystrix();
    for i in 0..19 {
        call(&mut b, at_ms(i * 500), FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed, "19 < request volume threshold 20");
}

#[test]
fn hystrix_10_errors_out_of_20_open() {
    let mut b = hystrix();
    for i in 0..10 {
        call(&mut b, at_ms(i * 100), OK);
    }
    for i in 10..19 {
        call(&mut b, at_ms(i * 100), FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, at_ms(1900), FAIL);
    assert_eq!(b.state(), BreakerState::Open, "20 calls, 50% >= 50%");
}

#[test]
fn hystrix_19_errors_out_of_39_do_not_open() {
    let mut b = hystrix();
    // Successes first, so that no prefix crosses the threshold either.
    for i in 0..20 {
        call(&mut b, at_ms(i * 100), OK);
    }
    for i in 20..39 {
        call(&mut b, at_ms(i * 100), FAIL);
    }
    // 19 * 100 / 39 = 48.7, truncated to 48 < 50.
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, at_ms(3900), FAIL);
    assert_eq!(b.state(), BreakerState::Open, "20 of 40 = 50%");
}

#[test]
fn hystrix_truncates_the_error_percentage_in_floating_point_as_hystrix_does() {
    // Hystrix computes (int) ((double) 29 / 50 * 100) = (int) 57.99999999999999 = 57,
    // so with a threshold of 58 it stays closed where the integer formula
    // 29 * 100 / 50 = 58 would open.
    let config = HystrixConfig { error_threshold_pct: 58, ..HystrixConfig::default() };
    let mut b = Breaker::new(BreakerConfig::of(BreakerKind::Hystrix(config))).unwrap();
    for i in 0..21 {
        call(&mut b, at_ms(i * 100), OK);
    }
    for i in 21..50 {
        call(&mut b, at_ms(i * 100), FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed, "29 of 50 is 57% to Hystrix");
    call(&mut b, at_ms(5_000), FAIL);
    assert_eq!(b.state(), BreakerState::Open, "30 of 51 = 58.8%, truncated to 58");
}

#[test]
fn hystrix_window_forgets_buckets_older_than_ten_seconds() {
    let mut b = hystrix();
    for _ in 0..19 {
        call(&mut b, at_ms(0), FAIL);
    }
    // At 10 s the bucket [0, 1 s) has left the window: 1 call, not 20.
    call(&mut b, at_ms(10_000), FAIL);
    assert_eq!(b.state(), BreakerState::Closed);
    for _ in 0..18 {
        call(&mut b, at_ms(10_500), FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut b, at_ms(10_900), FAIL);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn hystrix_one_probe_after_the_sleep_window_success_closes_and_resets() {
    let mut b = hystrix();
    let mut rng = SimRng::from_seed_u64(0);
    for _ in 0..20 {
        call(&mut b, at_ms(0), FAIL);
    }
    // Hystrix lets the probe through strictly after the sleep window.
    let one_ns = SimDuration::from_nanos(1);
    assert_eq!(b.try_acquire(at_ms(4_999)).unwrap_err().retry_after, SimDuration::from_millis(1) + one_ns);
    assert_eq!(b.try_acquire(at_ms(5_000)).unwrap_err().retry_after, one_ns);
    let probe = b.try_acquire(at_ms(5_000) + one_ns).unwrap();
    assert!(b.try_acquire(at_ms(5_001)).is_err(), "later callers rejected while the probe runs");
    b.on_result(at_ms(5_200), probe, OK, SimDuration::ZERO, &mut rng);
    assert_eq!(b.state(), BreakerState::Closed);
    // The statistics were reset: the 20 old failures (still inside 10 s)
    // no longer count, so 19 new failures stay under the volume threshold.
    for _ in 0..19 {
        call(&mut b, at_ms(5_300), FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn hystrix_probe_failure_reopens_with_a_new_sleep_window() {
    let mut b = hystrix();
    let mut rng = SimRng::from_seed_u64(0);
    for _ in 0..20 {
        call(&mut b, at_ms(0), FAIL);
    }
    let probe = b.try_acquire(at_ms(6_000)).unwrap();
    b.on_result(at_ms(7_000), probe, AttemptOutcome::Timeout, SimDuration::ZERO, &mut rng);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.try_acquire(at_ms(7_000)).unwrap_err().retry_after, secs(5) + SimDuration::from_nanos(1));
}

// --- common behaviour ---

#[test]
fn open_duration_grows_on_repeated_trips_up_to_the_cap_and_resets_on_close() {
    let mut config = BreakerConfig::consecutive(1, secs(5));
    config.open_growth = OpenGrowth { multiplier: 2.0, open_duration_max: secs(15), jitter_ratio: 0.0 };
    let mut b = Breaker::new(config).unwrap();
    let mut t = SimTime::ZERO;
    let mut opens = Vec::new();
    for _ in 0..4 {
        call(&mut b, t, FAIL);
        let until = b.open_until().unwrap();
        opens.push((until - t).as_secs_f64());
        t = until;
    }
    assert_eq!(opens, [5.0, 10.0, 15.0, 15.0]);
    call(&mut b, t, OK); // probe succeeds: closed
    call(&mut b, t, FAIL);
    assert_eq!(b.open_until().unwrap() - t, secs(5));
}

#[test]
fn open_duration_jitter_stays_in_its_band() {
    let mut config = BreakerConfig::consecutive(1, secs(10));
    config.open_growth = OpenGrowth { multiplier: 1.0, open_duration_max: secs(60), jitter_ratio: 0.5 };
    let mut b = Breaker::new(config).unwrap();
    let mut rng = SimRng::from_seed_u64(9);
    let mut t = SimTime::ZERO;
    let mut seen = Vec::new();
    for _ in 0..50 {
        let p = b.try_acquire(t).unwrap();
        b.on_result(t, p, FAIL, SimDuration::ZERO, &mut rng);
        let d = b.open_until().unwrap() - t;
        assert!(d >= secs(5) && d <= secs(15), "{d}");
        seen.push(d);
        t = b.open_until().unwrap();
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 40, "jitter should vary the duration");
}

#[test]
fn forced_open_disabled_and_reset() {
    let mut b = Breaker::new(BreakerConfig::consecutive(1, secs(5))).unwrap();
    b.force_open(at_ms(1));
    assert_eq!(b.try_acquire(SimTime::ZERO + secs(3600)).unwrap_err().retry_after, SimDuration::MAX);
    b.disable(at_ms(2));
    for _ in 0..10 {
        assert!(call(&mut b, at_ms(3), FAIL));
    }
    assert_eq!(b.state(), BreakerState::Disabled, "disabled counts nothing");
    b.reset(at_ms(4));
    assert_eq!(b.state(), BreakerState::Closed);
    let ts: Vec<_> = drain(&mut b).iter().map(|t| (t.at, t.to)).collect();
    assert_eq!(
        ts,
        [(at_ms(1), BreakerState::ForcedOpen), (at_ms(2), BreakerState::Disabled), (at_ms(4), BreakerState::Closed)]
    );
}

#[test]
fn a_result_from_before_a_reset_is_stale() {
    let mut b = Breaker::new(BreakerConfig::consecutive(1, secs(5))).unwrap();
    let mut rng = SimRng::from_seed_u64(0);
    let early = b.try_acquire(SimTime::ZERO).unwrap();
    b.reset(at_ms(1));
    b.on_result(at_ms(2), early, FAIL, SimDuration::ZERO, &mut rng);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.counters().stale_results, 1);
}

#[test]
fn the_transition_log_is_bounded_and_counts_what_it_dropped() {
    let mut b = Breaker::new(BreakerConfig::consecutive(1, secs(1))).unwrap();
    for i in 0..20 {
        b.force_open(at_ms(2 * i));
        b.reset(at_ms(2 * i + 1));
    }
    let kept = drain(&mut b);
    assert_eq!(kept.len(), stormglass_patterns::breaker::TRANSITION_LOG_CAPACITY);
    assert_eq!(b.counters().transitions_dropped, 40 - kept.len() as u64);
    assert_eq!(kept.last().unwrap().at, at_ms(39), "the newest are kept");
}

#[test]
fn configs_round_trip_through_ron_and_json_and_refuse_unknown_fields() {
    let configs = [
        BreakerConfig::consecutive(5, secs(60)),
        BreakerConfig::of(BreakerKind::CountWindow(CountWindowConfig::default())),
        BreakerConfig::of(BreakerKind::Hystrix(HystrixConfig::default())),
    ];
    for c in configs {
        let ron_text = ron::to_string(&c).unwrap();
        assert_eq!(ron::from_str::<BreakerConfig>(&ron_text).unwrap(), c);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<BreakerConfig>(&json).unwrap(), c);
    }
    let text = r#"(kind: hystrix((sleep_window: "2s", error_threshold_pct: 30)))"#;
    let c: BreakerConfig = ron::from_str(text).unwrap();
    let BreakerKind::Hystrix(h) = &c.kind else { panic!("{c:?}") };
    assert_eq!((h.sleep_window, h.error_threshold_pct, h.request_volume_threshold), (secs(2), 30, 20));
    assert!(ron::from_str::<BreakerConfig>(r#"(kind: hystrix((sleep_windw: "2s")))"#).is_err());
    let bad = BreakerConfig::of(BreakerKind::CountWindow(CountWindowConfig {
        failure_rate_threshold_pct: 0.0,
        ..CountWindowConfig::default()
    }));
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "kind.count_window.failure_rate_threshold_pct: must be in (0, 100]"
    );
}

trait IntoTime {
    fn into_time(self) -> SimTime;
}
impl IntoTime for SimDuration {
    fn into_time(self) -> SimTime {
        SimTime::ZERO + self
    }
}
