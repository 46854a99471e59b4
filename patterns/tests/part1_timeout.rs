//! Timeouts and deadline propagation.

use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::Rejection;
use stormglass_patterns::timeout::{CallTimer, Deadline, Limit, Phase, TimeoutConfig};

fn secs(s: u64) -> SimDuration {
    SimDuration::from_secs(s)
}
fn t(s: u64) -> SimTime {
    SimTime::from_secs(s)
}

#[test]
fn deadline_30s_with_7s_spent_leaves_23s_and_4s_later_19s() {
    let edge = Deadline::start(t(100), secs(30));
    let forwarded = edge.remaining(t(107));
    assert_eq!(forwarded, secs(23));
    // The next hop's clock is its own; it receives the duration.
    let hop = Deadline::start(t(5), forwarded);
    assert_eq!(hop.remaining(t(9)), secs(19));
    assert_eq!(hop.try_start(t(9), secs(1)), Ok(secs(19)));
}

#[test]
fn a_hop_whose_budget_is_gone_refuses_to_start() {
    let hop = Deadline::start(t(0), secs(2));
    assert_eq!(hop.try_start(t(2), SimDuration::ZERO), Err(Rejection::DeadlineExceeded));
    assert_eq!(hop.try_start(t(1), secs(2)), Err(Rejection::DeadlineExceeded), "below the configured minimum");
    assert!(hop.is_expired(t(3)));
    assert_eq!(hop.remaining(t(3)), SimDuration::ZERO, "remaining saturates at zero");
    assert_eq!(Deadline::none(t(0)).remaining(t(1_000_000)), SimDuration::MAX - secs(1_000_000));
}

#[test]
fn the_earliest_limit_wins_and_is_named() {
    let config = TimeoutConfig {
        pool: Some(SimDuration::from_millis(100)),
        connect: Some(secs(1)),
        write: Some(secs(2)),
        read: Some(secs(5)),
        attempt: Some(secs(3)),
        total: Some(secs(10)),
    };
    config.validate().unwrap();
    let mut timer = CallTimer::start(&config, t(0), None);
    assert_eq!(timer.start_attempt(t(0)), Ok(t(3)));
    assert_eq!(timer.phase_deadline(&config, Phase::Pool, t(0)), (SimTime::from_millis(100), Limit::Phase));
    assert_eq!(timer.phase_deadline(&config, Phase::Connect, t(0)), (t(1), Limit::Phase));
    assert_eq!(timer.phase_deadline(&config, Phase::Read, t(1)), (t(3), Limit::Attempt));
    // A retry at 8 s: the attempt would end at 11 s, the total ends at 10 s.
    assert_eq!(timer.start_attempt(t(8)), Ok(t(10)));
    assert_eq!(timer.phase_deadline(&config, Phase::Read, t(8)), (t(10), Limit::Total));
    assert_eq!(timer.start_attempt(t(10)), Err(Rejection::DeadlineExceeded));
}

#[test]
fn a_propagated_deadline_caps_the_call() {
    let config = TimeoutConfig { total: Some(secs(10)), ..TimeoutConfig::default() };
    let upstream = Deadline::start(t(0), secs(4));
    let mut timer = CallTimer::start(&config, t(1), Some(upstream));
    assert_eq!(timer.call_deadline(), (t(4), Limit::Propagated));
    timer.start_attempt(t(1)).unwrap();
    // What this hop forwards downstream after 1 s of work.
    assert_eq!(timer.propagate(t(2)).remaining(t(2)), secs(2));
    let no_limits = TimeoutConfig { pool: None, connect: None, write: None, read: None, attempt: None, total: None };
    let mut free = CallTimer::start(&no_limits, t(0), None);
    assert_eq!(free.start_attempt(t(0)), Ok(SimTime::MAX));
    assert_eq!(free.phase_deadline(&no_limits, Phase::Read, t(0)), (SimTime::MAX, Limit::None));
}

#[test]
fn validation_refuses_attempt_above_total_and_zero_durations() {
    let c = TimeoutConfig { attempt: Some(secs(11)), total: Some(secs(10)), ..TimeoutConfig::default() };
    assert_eq!(c.validate().unwrap_err().to_string(), "attempt: must not exceed total");
    let c = TimeoutConfig { read: Some(SimDuration::ZERO), ..TimeoutConfig::default() };
    assert_eq!(c.validate().unwrap_err().to_string(), "read: must be more than zero");
    let d = TimeoutConfig::default();
    assert_eq!((d.pool, d.connect, d.write, d.read), (Some(secs(5)), Some(secs(5)), Some(secs(5)), Some(secs(5))));
    let c: TimeoutConfig = ron::from_str(r#"(read: Some("250ms"), total: Some("2s"))"#).unwrap();
    assert_eq!((c.read, c.total, c.connect), (Some(SimDuration::from_millis(250)), Some(secs(2)), Some(secs(5))));
    assert!(ron::from_str::<TimeoutConfig>(r#"(reed: Some("1s"))"#).is_err());
}
