//! Running a scenario and turning the world's series into a [`Report`].
//!
//! ```
//! use stormglass_models::config::Scenario;
//! use stormglass_models::run::run;
//!
//! let scenario = Scenario::from_ron(r#"(
//!     name: "one service",
//!     duration: "10s",
//!     services: {
//!         "api": (
//!             execution: thread_pool(workers: 4, queue_capacity: 10),
//!             routes: { "GET /": (steps: [compute(Exponential(mean: "10ms"))]) },
//!         ),
//!     },
//!     clients: [(name: "users", target: "api", rate: constant(rps: 100.0), routes: [(route: "GET /")])],
//! )"#).unwrap();
//! let report = run(&scenario).unwrap();
//! let route = &report.routes["GET /"];
//! assert!(route.arrivals > 900 && route.availability > 0.99);
//! ```

use std::collections::BTreeMap;

use stormglass_core::error::ConfigError;
use stormglass_core::sim::{Limits, SimError, Simulation, Stop};
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_core::timeline::{Buckets, CountSeries, Timeline};
use stormglass_patterns::breaker::BreakerState;
use stormglass_patterns::bulkhead::BulkheadStats;
use stormglass_patterns::fallback::{FallbackReason, FallbackStats, ServedKind};
use stormglass_patterns::pipeline::{Policy, PolicyStats};

use crate::config::{FaultKind, Scenario};
use crate::report::{
    Cause, EdgeReport, FaultWindow, Report, RouteReport, ServiceReport, Summary, round6, time_to_recover,
};
use crate::world::{EdgeBook, LimitHit, World, cause_index};
pub use crate::world::{InFlightMemory, in_flight_memory};

/// Why a run could not produce a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The scenario breaks a rule.
    #[error("invalid scenario: {0}")]
    Config(#[from] ConfigError),
    /// The engine stopped the run (event budget).
    #[error("run stopped: {0}")]
    Engine(#[from] SimError),
    /// Too many requests alive at once.
    #[error(
        "run stopped: in-flight limit reached: {in_flight_max} requests and calls alive at t={at} (limit limits.in_flight_max)"
    )]
    InFlightLimit {
        /// The limit.
        in_flight_max: u32,
        /// When it was reached.
        at: SimTime,
    },
}

/// Virtual time between progress reports and limit checks.
const CHUNK: SimDuration = SimDuration::from_secs(1);

/// Runs a scenario to its end (duration plus drain, or earlier when nothing
/// is left to do) and reports.
pub fn run(scenario: &Scenario) -> Result<Report, RunError> {
    run_with_progress(scenario, &mut |_, _| {})
}

/// Like [`run`], calling `progress(now, end)` after each second of virtual time.
pub fn run_with_progress(scenario: &Scenario, progress: &mut dyn FnMut(SimTime, SimTime)) -> Result<Report, RunError> {
    run_to_end(scenario, progress).map(|(report, _)| report)
}

/// What a run left in the engine when it stopped, which the report cannot
/// say: after a drain long enough for every request to end (and with every
/// fault over by then), both are zero. Conservation tests check it; a
/// request or a timer that leaks shows here first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    /// Server requests and outbound calls still alive: what counts towards
    /// `limits.in_flight_max`, at every hop, abandoned work included.
    pub in_flight: usize,
    /// Events still scheduled (a fault edge after the end counts too).
    pub events_pending: usize,
}

/// Like [`run`], and says what was left in the engine when the run stopped.
///
/// ```
/// use stormglass_models::run::run_with_leftovers;
/// use stormglass_models::seed::{Variant, seed_cascade};
///
/// let mut scenario = seed_cascade(Variant::Protected);
/// scenario.duration = "5s".parse().unwrap();
/// scenario.faults.clear(); // the hang would start after the end
/// let (report, leftovers) = run_with_leftovers(&scenario).unwrap();
/// assert_eq!((leftovers.in_flight, leftovers.events_pending), (0, 0));
/// assert!(report.routes.values().all(|r| r.in_flight_at_end == 0));
/// ```
pub fn run_with_leftovers(scenario: &Scenario) -> Result<(Report, Leftovers), RunError> {
    run_to_end(scenario, &mut |_, _| {})
}

fn run_to_end(
    scenario: &Scenario,
    progress: &mut dyn FnMut(SimTime, SimTime),
) -> Result<(Report, Leftovers), RunError> {
    scenario.validate()?;
    let limits = Limits { events_max: scenario.limits.events_max, time_max: SimTime::MAX };
    let mut sim = Simulation::new(World::new(scenario)).with_limits(limits);
    sim.with_context(|world, ctx| world.start(ctx, scenario));
    let end = SimTime::ZERO + scenario.duration + scenario.drain;
    let mut t = SimTime::ZERO;
    while t < end {
        t = (t + CHUNK).min(end);
        let stop = sim.run_until(t)?;
        if let Some(LimitHit::InFlight { in_flight_max, at }) = sim.model().limit_hit {
            return Err(RunError::InFlightLimit { in_flight_max, at });
        }
        progress(t, end);
        if stop == Stop::Idle && t >= SimTime::ZERO + scenario.duration {
            break;
        }
    }
    let events = sim.events_handled();
    let now = sim.now();
    let events_pending = sim.pending();
    let mut world = sim.into_model();
    let leftovers = Leftovers { in_flight: world.in_flight(), events_pending };
    Ok((build_report(scenario, &mut world, now, events), leftovers))
}

fn fault_word(kind: &FaultKind) -> &'static str {
    match kind {
        FaultKind::Crash => "crash",
        FaultKind::Hang => "hang",
        FaultKind::Slow { .. } => "slow",
        FaultKind::Errors(_) => "errors",
        FaultKind::CapacityLoss { .. } => "capacity_loss",
        FaultKind::Partition { .. } => "partition",
    }
}

fn reason_name(reason: FallbackReason) -> &'static str {
    match reason {
        FallbackReason::BreakerOpen => "breaker_open",
        FallbackReason::Timeout => "timeout",
        FallbackReason::Rejected => "rejected",
        FallbackReason::Error => "error",
    }
}

fn served_name(served: ServedKind) -> &'static str {
    match served {
        ServedKind::Static => "static",
        ServedKind::CacheFresh => "cache_fresh",
        ServedKind::CacheStale => "cache_stale",
        ServedKind::Alternate => "alternate",
        ServedKind::Failed => "failed",
    }
}

/// Failures by cause, from series indexed by `cause_index`: the causes that
/// happened, each also a `failed_<cause>` series of `timeline`.
fn failed_by_cause(series: &[CountSeries], timeline: &mut Timeline) -> BTreeMap<Cause, u64> {
    let mut failed = BTreeMap::new();
    for cause in Cause::ALL {
        let counts = &series[cause_index(cause)];
        if counts.total() > 0 {
            failed.insert(cause, counts.total());
            timeline.insert_counts(&format!("failed_{}", cause.name()), counts);
        }
    }
    failed
}

/// The report of one edge, from its book and the policies behind it: one
/// for a dependency, every member's for a client (their counters summed).
fn edge_report<'a>(
    book: &EdgeBook,
    policies: impl Iterator<Item = &'a Policy>,
    buckets: Buckets,
    end: SimTime,
) -> EdgeReport {
    let (mut stats, mut fallback_stats, mut bulkhead, mut has_breaker) =
        (PolicyStats::default(), FallbackStats::default(), None::<BulkheadStats>, false);
    for policy in policies {
        stats += policy.stats();
        fallback_stats += policy.fallback_stats();
        if let Some(b) = policy.bulkhead_stats() {
            *bulkhead.get_or_insert_with(Default::default) += b;
        }
        has_breaker |= policy.breaker_state().is_some();
    }
    let s = &book.series;
    let mut timeline = Timeline::new(buckets);
    timeline.insert_counts("calls", &s.calls);
    timeline.insert_counts("attempts", &s.attempts);
    timeline.insert_counts("retries", &s.retries);
    timeline.insert_counts("ok", &s.ok);
    timeline.insert_counts("fallbacks", &s.fallbacks);
    timeline.insert_counts("failed", &s.failed);
    timeline.insert_counts("rejected_circuit_open", &s.rejected_circuit_open);
    timeline.insert_counts("rejected_bulkhead_full", &s.rejected_bulkhead_full);
    let failed = failed_by_cause(&s.failed_by_cause, &mut timeline);
    if s.throttled.total() > 0 {
        timeline.insert_counts("throttled", &s.throttled);
    }
    timeline.insert_latency("latency", &s.latency);
    if has_breaker {
        timeline.insert_gauge("breaker_state", &s.breaker_state, end);
    }
    let fallbacks_by_reason = FallbackReason::ALL
        .into_iter()
        .filter(|&reason| fallback_stats.served_for(reason) > 0)
        .map(|reason| (reason_name(reason).to_string(), fallback_stats.served_for(reason)))
        .collect();
    // A fallback with nothing to serve is a failure, not a fallback.
    let fallbacks_by_served = ServedKind::ALL
        .into_iter()
        .filter(|&kind| kind != ServedKind::Failed && fallback_stats.by_served(kind) > 0)
        .map(|kind| (served_name(kind).to_string(), fallback_stats.by_served(kind)))
        .collect();
    EdgeReport {
        stats,
        failed,
        latency: s.latency.total(),
        attempts_per_call: round6(if stats.calls == 0 { 0.0 } else { stats.attempts as f64 / stats.calls as f64 }),
        fallbacks_by_reason,
        fallbacks_by_served,
        bulkhead,
        transitions: book.transitions.clone(),
        transitions_dropped: book.transitions_dropped,
        timeline,
    }
}

/// Which buckets some fault window `[from, until)` touches: the healthy
/// time between two faults is not "during faults".
fn fault_buckets(faults: &[FaultWindow], buckets: Buckets) -> Vec<bool> {
    let mut in_faults = vec![false; buckets.count];
    for fault in faults.iter().filter(|f| f.from < f.until) {
        let last = buckets.index(fault.until.saturating_sub(SimDuration::from_nanos(1)));
        for flag in &mut in_faults[buckets.index(fault.from)..=last] {
            *flag = true;
        }
    }
    in_faults
}

fn build_report(scenario: &Scenario, world: &mut World, end: SimTime, events: u64) -> Report {
    // What the policies counted in the last bucket is not booked yet.
    world.book_policy_counts();
    let buckets = world.buckets;
    let faults: Vec<FaultWindow> = scenario
        .faults
        .iter()
        .map(|f| FaultWindow {
            target: f.target.clone(),
            kind: fault_word(&f.kind).into(),
            from: f.from,
            until: f.until,
        })
        .collect();
    let fault_span = faults.iter().map(|f| f.from).min().zip(faults.iter().map(|f| f.until).max());
    let in_faults = fault_buckets(&faults, buckets);
    let duration_secs = scenario.duration.as_secs_f64();

    let mut routes = BTreeMap::new();
    for client in &world.clients {
        for series in &client.route_series {
            let mut timeline = Timeline::new(buckets);
            timeline.insert_counts("arrivals", &series.arrivals);
            timeline.insert_counts("ok", &series.ok);
            timeline.insert_counts("degraded", &series.degraded);
            let failed = failed_by_cause(&series.failed, &mut timeline);
            // Only with a budget that refused something, as failed_*.
            if series.throttled.total() > 0 {
                timeline.insert_counts("throttled", &series.throttled);
            }
            timeline.insert_latency("latency", &series.latency);
            let arrivals = series.arrivals.total();
            let good = series.ok.total() + series.degraded.total();
            let goodput: Vec<u64> =
                series.ok.counts().iter().zip(series.degraded.counts()).map(|(a, b)| a + b).collect();
            // Over the requests that ended in a fault window: good / ended.
            let availability_during_faults = fault_span.map(|_| {
                let within = |counts: &[u64]| -> u64 {
                    counts.iter().zip(&in_faults).filter(|&(_, &f)| f).map(|(c, _)| c).sum()
                };
                let good = within(&goodput);
                let failed: u64 = series.failed.iter().map(|f| within(f.counts())).sum();
                round6(if good + failed == 0 { 1.0 } else { good as f64 / (good + failed) as f64 })
            });
            routes.insert(
                series.name.clone(),
                RouteReport {
                    arrivals,
                    ok: series.ok.total(),
                    degraded: series.degraded.total(),
                    failed,
                    in_flight_at_end: series.in_flight,
                    availability: round6(if arrivals == 0 { 1.0 } else { good as f64 / arrivals as f64 }),
                    availability_during_faults,
                    goodput_rps: round6(good as f64 / duration_secs),
                    latency: series.latency.total(),
                    time_to_recover: fault_span.and_then(|(from, until)| {
                        time_to_recover(&goodput, buckets.width, from, until, scenario.duration)
                    }),
                    timeline,
                },
            );
        }
    }

    let mut services = BTreeMap::new();
    let mut edges = BTreeMap::new();
    let mut fallbacks_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_open: Option<SimTime> = None;
    let mut breaker_transitions = 0;
    for service in &mut world.services {
        let series = &service.series;
        let mut timeline = Timeline::new(buckets);
        timeline.insert_counts("arrivals", &series.arrivals);
        timeline.insert_counts("answered", &series.answered);
        timeline.insert_counts("ok", &series.ok);
        let failed = failed_by_cause(&series.failed, &mut timeline);
        timeline.insert_counts("rejected_queue_full", &series.rejected_queue_full);
        timeline.insert_counts("refused_by_crash", &series.refused_by_crash);
        timeline.insert_counts("lost_to_hang", &series.lost_to_hang);
        // Only where callers' timeouts abandon work, as throttled.
        if series.abandoned.total() > 0 {
            timeline.insert_counts("abandoned", &series.abandoned);
        }
        timeline.insert_gauge("queue_length", &series.queue_length, end);
        timeline.insert_gauge("busy", &series.busy, end);
        timeline.insert_latency("latency", &series.latency);
        services.insert(
            service.name.clone(),
            ServiceReport {
                arrivals: series.arrivals.total(),
                answered: series.answered.total(),
                ok: series.ok.total(),
                failed,
                rejected_queue_full: series.rejected_queue_full.total(),
                refused_by_crash: series.refused_by_crash.total(),
                lost_to_hang: series.lost_to_hang.total(),
                abandoned: series.abandoned.total(),
                latency: series.latency.total(),
                timeline,
            },
        );
        for dependency in &service.dependencies {
            let edge = edge_report(&dependency.edge, std::iter::once(&dependency.policy), buckets, end);
            edges.insert(format!("{} -> {}", service.name, dependency.name), edge);
        }
    }
    // A client's edge sums its members' policies: a client with retries
    // shows its load amplification, a client with a breaker its transitions.
    for (client, config) in world.clients.iter().zip(&scenario.clients) {
        let edge = edge_report(&client.edge, client.policies(), buckets, end);
        edges.insert(format!("{} -> {}", config.name, config.target), edge);
    }
    for edge in edges.values() {
        for (reason, n) in &edge.fallbacks_by_reason {
            *fallbacks_by_reason.entry(reason.clone()).or_default() += n;
        }
        if let Some((from, _)) = fault_span {
            let opened = edge.transitions.iter().find(|t| t.at >= from && t.to == BreakerState::Open);
            if let Some(t) = opened {
                first_open = Some(first_open.map_or(t.at, |f: SimTime| f.min(t.at)));
            }
        }
        breaker_transitions += edge.transitions.len() as u64 + edge.transitions_dropped;
    }

    let requests: u64 = routes.values().map(|r| r.arrivals).sum();
    let ok: u64 = routes.values().map(|r| r.ok).sum();
    let degraded: u64 = routes.values().map(|r| r.degraded).sum();
    let mut failed: BTreeMap<Cause, u64> = BTreeMap::new();
    for route in routes.values() {
        for (cause, n) in &route.failed {
            *failed.entry(*cause).or_default() += n;
        }
    }
    let time_to_recover = if fault_span.is_some() {
        // The slowest route decides; a route that never recovered makes it none.
        routes.values().map(|r| r.time_to_recover).collect::<Option<Vec<_>>>().and_then(|v| v.into_iter().max())
    } else {
        None
    };
    let fallbacks: u64 = fallbacks_by_reason.values().sum();
    let fallback_share_by_reason =
        fallbacks_by_reason.iter().map(|(reason, &n)| (reason.clone(), round6(n as f64 / fallbacks as f64))).collect();
    let summary = Summary {
        requests,
        ok,
        degraded,
        failed,
        availability: round6(if requests == 0 { 1.0 } else { (ok + degraded) as f64 / requests as f64 }),
        fallbacks_by_reason,
        fallback_share_by_reason,
        time_to_detect: fault_span.and_then(|(from, _)| first_open.map(|t| t - from)),
        time_to_recover,
        breaker_transitions,
    };
    Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        duration: scenario.duration,
        end,
        events,
        faults,
        routes,
        services,
        edges,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request fans out 100 ways at `a` and again at `b`: about 20 000
    /// requests and calls at once, over 10 ms of virtual time.
    fn fan_out(in_flight_max: u32) -> Scenario {
        let calls = |to: &str| vec![format!(r#"(dependency: "{to}", route: "x")"#); 100].join(", ");
        let text = format!(
            r#"(
                name: "fan-out", duration: "1s", drain: "5s",
                services: {{
                    "a": (execution: async(concurrency_max: 1000), routes: {{ "x": (steps: [parallel([{a}])]) }},
                          dependencies: {{ "b": (service: "b") }}),
                    "b": (execution: async(concurrency_max: 1000), routes: {{ "x": (steps: [parallel([{b}])]) }},
                          dependencies: {{ "c": (service: "c") }}),
                    "c": (execution: async(concurrency_max: 100000), routes: {{ "x": (steps: [compute(Constant(value: "1s"))]) }}),
                }},
                // One user, one request: the next would start after the end.
                clients: [(name: "one", target: "a", closed_loop: (users: 1, think_time: Constant(value: "1ms")),
                           routes: [(route: "x")])],
                limits: (in_flight_max: {in_flight_max}),
            )"#,
            a = calls("b"),
            b = calls("c"),
        );
        Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn the_in_flight_limit_stops_a_fan_out_before_it_is_passed() {
        let scenario = fan_out(1000);
        scenario.validate().unwrap();
        let mut sim = Simulation::new(World::new(&scenario));
        sim.with_context(|world, ctx| world.start(ctx, &scenario));
        sim.run_until(SimTime::ZERO + CHUNK).unwrap();
        let world = sim.model();
        assert!(matches!(world.limit_hit, Some(LimitHit::InFlight { in_flight_max: 1000, .. })));
        // Never past the limit, though the chunk went on after it was hit.
        assert!(world.in_flight() <= 1000, "{} in flight", world.in_flight());
        assert!(matches!(run(&scenario), Err(RunError::InFlightLimit { in_flight_max: 1000, .. })));
    }

    #[test]
    fn a_fan_out_under_the_in_flight_limit_runs() {
        let report = run(&fan_out(30_000)).unwrap();
        assert_eq!(report.services["c"].arrivals, 10_000);
    }
}
