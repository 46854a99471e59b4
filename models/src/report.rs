//! What a run produces: per-route, per-service and per-edge timelines, and a
//! summary (availability, goodput, fallbacks, rejections by cause, latency,
//! load amplification, breaker transitions, time to detect and recover).
//!
//! Everything is serde and deterministic: maps are `BTreeMap`, times are
//! integer nanoseconds written as human strings, floats are rounded to six
//! decimals so a report's bytes do not depend on summation noise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stormglass_core::metrics::LatencySummary;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_core::timeline::{SeriesData, Timeline};
use stormglass_patterns::breaker::Transition;
use stormglass_patterns::bulkhead::BulkheadStats;
use stormglass_patterns::pipeline::PolicyStats;

/// Why a request failed, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// No answer in time.
    Timeout,
    /// Connection refused or reset (a crashed service).
    Refused,
    /// An error status from a handler or an error fault.
    ErrorStatus,
    /// A circuit breaker refused.
    CircuitOpen,
    /// A bulkhead was full.
    BulkheadFull,
    /// A rate limiter refused.
    RateLimited,
    /// A service's queue was full.
    QueueFull,
    /// A retry budget or adaptive throttle refused.
    Throttled,
    /// The deadline had passed before an attempt could start.
    DeadlineExceeded,
}

impl Cause {
    /// Every cause, in report order.
    pub const ALL: [Cause; 9] = [
        Cause::Timeout,
        Cause::Refused,
        Cause::ErrorStatus,
        Cause::CircuitOpen,
        Cause::BulkheadFull,
        Cause::RateLimited,
        Cause::QueueFull,
        Cause::Throttled,
        Cause::DeadlineExceeded,
    ];

    /// The name used for timeline series (`failed_timeout`...).
    pub fn name(self) -> &'static str {
        match self {
            Cause::Timeout => "timeout",
            Cause::Refused => "refused",
            Cause::ErrorStatus => "error_status",
            Cause::CircuitOpen => "circuit_open",
            Cause::BulkheadFull => "bulkhead_full",
            Cause::RateLimited => "rate_limited",
            Cause::QueueFull => "queue_full",
            Cause::Throttled => "throttled",
            Cause::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

/// The whole result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The master seed.
    pub seed: u64,
    /// How long clients sent requests.
    pub duration: SimDuration,
    /// When the run stopped (duration plus drain, or earlier when idle).
    pub end: SimTime,
    /// Events handled.
    pub events: u64,
    /// Fault windows, for charts and for time to detect / recover.
    pub faults: Vec<FaultWindow>,
    /// Client routes, by `route` (or `client/route` with several clients).
    pub routes: BTreeMap<String, RouteReport>,
    /// Services by name.
    pub services: BTreeMap<String, ServiceReport>,
    /// Edges by `service -> dependency`, and each client's by
    /// `client -> target` (its members' policies summed).
    pub edges: BTreeMap<String, EdgeReport>,
    /// Headline numbers.
    pub summary: Summary,
}

/// A fault as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultWindow {
    /// The service hit.
    pub target: String,
    /// The kind, as a word (`hang`, `crash`...).
    pub kind: String,
    /// Start.
    pub from: SimTime,
    /// End.
    pub until: SimTime,
}

/// One client route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteReport {
    /// Requests sent.
    pub arrivals: u64,
    /// Answered successfully with full data.
    pub ok: u64,
    /// Answered successfully from a fallback somewhere on the path.
    pub degraded: u64,
    /// Failed, by cause.
    pub failed: BTreeMap<Cause, u64>,
    /// Still without an answer when the run stopped.
    pub in_flight_at_end: u64,
    /// (ok + degraded) / arrivals.
    pub availability: f64,
    /// Over requests that ended in the fault windows (the buckets some fault
    /// touches, not the healthy time between faults): good / (good + failed).
    pub availability_during_faults: Option<f64>,
    /// Answers (ok + degraded) per second over the duration.
    pub goodput_rps: f64,
    /// Latency of answered requests, successful or not.
    pub latency: LatencySummary,
    /// Time from the end of the last fault until goodput is back to at
    /// least 95% of its level before the first fault (over a 5-bucket
    /// window); `None` when there was no fault or it never came back.
    pub time_to_recover: Option<SimDuration>,
    /// Per-bucket series: arrivals, ok, degraded, latency; failed_<cause>
    /// for each cause that failed a request; and throttled, the attempts
    /// the client's retry budget refused, when there were any. A refused
    /// retry ends its request with the failure it was retrying, so it is
    /// counted under that cause, not `throttled`.
    pub timeline: Timeline,
}

/// One service (all replicas together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceReport {
    /// Requests that reached it.
    pub arrivals: u64,
    /// Requests it answered (any status).
    pub answered: u64,
    /// Answered with a success status (`answered = ok + failed`).
    #[serde(default)]
    pub ok: u64,
    /// Answered with a failure, by cause: an error status, a full queue, a
    /// refused or reset connection, or the cause of a required call's
    /// failure that the handler passed on.
    #[serde(default)]
    pub failed: BTreeMap<Cause, u64>,
    /// Requests refused because the queue was full.
    pub rejected_queue_full: u64,
    /// Requests a crashed replica refused at once (these are answered too,
    /// with a refused connection).
    pub refused_by_crash: u64,
    /// Requests a hung replica accepted and never answered.
    pub lost_to_hang: u64,
    /// Requests dropped unanswered because their caller had timed out
    /// (with `abandon_on_caller_timeout`): with the answered and the lost
    /// to a hang, every arrival has exactly one end.
    #[serde(default)]
    pub abandoned: u64,
    /// Time from arrival to answer.
    pub latency: LatencySummary,
    /// Per-bucket series: arrivals, answered, ok, failed_<cause> (for each
    /// cause that happened), rejected_queue_full, refused_by_crash,
    /// lost_to_hang, abandoned (only if any), queue_length, busy, latency.
    pub timeline: Timeline,
}

/// One caller -> dependency edge and its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeReport {
    /// The policy's counters.
    pub stats: PolicyStats,
    /// Calls that failed (`stats.failures`), by cause.
    #[serde(default)]
    pub failed: BTreeMap<Cause, u64>,
    /// Call latency, from the call's start to its end, retries, backoffs
    /// and fallbacks included.
    #[serde(default)]
    pub latency: LatencySummary,
    /// Attempts per call (load amplification); 0 with no calls.
    pub attempts_per_call: f64,
    /// Fallbacks by reason.
    pub fallbacks_by_reason: BTreeMap<String, u64>,
    /// Fallbacks by what they served: static, cache_fresh, cache_stale
    /// (a `last_good` value within or past its ttl), alternate.
    #[serde(default)]
    pub fallbacks_by_served: BTreeMap<String, u64>,
    /// The bulkhead's counters, with a bulkhead: how many attempts got a
    /// slot at once, waited in its queue (and then got one, gave up at
    /// `max_wait` or the call's deadline, or were withdrawn), or were
    /// rejected at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulkhead: Option<BulkheadStats>,
    /// Every breaker transition (up to a bound; see `transitions_dropped`).
    pub transitions: Vec<Transition>,
    /// Transitions beyond the bound, not listed.
    pub transitions_dropped: u64,
    /// Per-bucket series: calls, attempts, retries, ok, fallbacks, failed,
    /// rejected_circuit_open, rejected_bulkhead_full, breaker_state
    /// (0 closed, 1 half-open, 2 open), latency; failed_<cause> for each
    /// cause that happened; and throttled, the attempts the retry budget
    /// refused, when there were any.
    pub timeline: Timeline,
}

/// Headline numbers of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Client requests sent.
    pub requests: u64,
    /// Answered with full data.
    pub ok: u64,
    /// Answered from a fallback.
    pub degraded: u64,
    /// Failed, by cause.
    pub failed: BTreeMap<Cause, u64>,
    /// (ok + degraded) / requests.
    pub availability: f64,
    /// Fallbacks served on every edge, by reason.
    pub fallbacks_by_reason: BTreeMap<String, u64>,
    /// Each reason's share of those fallbacks (they sum to 1; empty with
    /// no fallback).
    #[serde(default)]
    pub fallback_share_by_reason: BTreeMap<String, f64>,
    /// First fault start -> first breaker opening after it.
    pub time_to_detect: Option<SimDuration>,
    /// Last fault end -> the slowest route back to its level.
    pub time_to_recover: Option<SimDuration>,
    /// Breaker transitions on every edge.
    pub breaker_transitions: u64,
}

impl Report {
    /// Every timeline in long CSV form, one row per (scope, name, series,
    /// bucket): `scope,name,series,bucket_start_ms,value`. Gauges give
    /// `<series>.mean` and `<series>.max` rows, latencies `<series>.count`,
    /// `.p50_ns` and `.p99_ns` rows. Rows are in a fixed order.
    ///
    /// ```
    /// use stormglass_models::seed::{Variant, seed_cascade};
    ///
    /// let mut scenario = seed_cascade(Variant::Protected);
    /// scenario.duration = "5s".parse().unwrap();
    /// let csv = stormglass_models::run(&scenario).unwrap().timelines_csv();
    /// assert!(csv.starts_with("scope,name,series,bucket_start_ms,value\n"));
    /// assert!(csv.contains("route,GET /products,arrivals,0,"));
    /// ```
    pub fn timelines_csv(&self) -> String {
        let mut out = String::from("scope,name,series,bucket_start_ms,value\n");
        let scopes = self
            .routes
            .iter()
            .map(|(n, r)| ("route", n, &r.timeline))
            .chain(self.services.iter().map(|(n, s)| ("service", n, &s.timeline)))
            .chain(self.edges.iter().map(|(n, e)| ("edge", n, &e.timeline)));
        for (scope, name, timeline) in scopes {
            let name = csv_field(name);
            let start_ms = |i: usize| timeline.buckets.start(i).as_nanos() / 1_000_000;
            for (series, data) in &timeline.series {
                let mut row = |suffix: &str, i: usize, value: String| {
                    out.push_str(&format!("{scope},{name},{}{suffix},{},{value}\n", csv_field(series), start_ms(i)));
                };
                match data {
                    SeriesData::Counts(counts) => {
                        counts.iter().enumerate().for_each(|(i, c)| row("", i, c.to_string()));
                    }
                    SeriesData::Gauge { mean, max } => {
                        mean.iter().enumerate().for_each(|(i, m)| row(".mean", i, round6(*m).to_string()));
                        max.iter().enumerate().for_each(|(i, m)| row(".max", i, m.to_string()));
                    }
                    SeriesData::Latency(summaries) => {
                        for (i, l) in summaries.iter().enumerate() {
                            row(".count", i, l.count.to_string());
                            row(".p50_ns", i, l.p50.as_nanos().to_string());
                            row(".p99_ns", i, l.p99.as_nanos().to_string());
                        }
                    }
                }
            }
        }
        out
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break
/// (RFC 4180); the CLI's summary, sweep and replay CSVs use it too.
///
/// ```
/// assert_eq!(stormglass_models::report::csv_field("a,b"), "\"a,b\"");
/// ```
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// Rounds for stable bytes in reports.
pub(crate) fn round6(x: f64) -> f64 {
    if x.is_finite() { (x * 1e6).round() / 1e6 } else { 0.0 }
}

/// Buckets needed to say "recovered": a 5-bucket mean smooths Poisson noise.
const RECOVERY_WINDOW: usize = 5;

/// Time from `fault_end` until the mean goodput over the next
/// [`RECOVERY_WINDOW`] buckets is within 5% of its mean before `fault_start`.
///
/// "Within" is one-sided, at least 95% of the old level: a backlog draining
/// above it counts as back. A band both ways would be narrower than the
/// Poisson noise at the rates scenarios run (at 50 answers/s a 5-bucket mean
/// varies by about 3.2/s against a 2.5/s band), so a route that never dipped
/// (fallbacks.ron's GET /alternate) would read 11 s instead of 0 s.
pub(crate) fn time_to_recover(
    goodput: &[u64],
    width: SimDuration,
    fault_start: SimTime,
    fault_end: SimTime,
    duration: SimDuration,
) -> Option<SimDuration> {
    let bucket = |t: SimTime| (t.as_nanos() / width.as_nanos()) as usize;
    // Skip the first bucket (a run starts empty) unless nothing else precedes the fault.
    let before_end = bucket(fault_start).min(goodput.len());
    let before = &goodput[1.min(before_end)..before_end];
    if before.is_empty() {
        return None;
    }
    let baseline = before.iter().sum::<u64>() as f64 / before.len() as f64;
    let last = bucket(SimTime::ZERO + duration).min(goodput.len());
    let first = bucket(fault_end);
    (first..last.saturating_sub(RECOVERY_WINDOW - 1)).find_map(|i| {
        let window = &goodput[i..i + RECOVERY_WINDOW];
        let mean = window.iter().sum::<u64>() as f64 / RECOVERY_WINDOW as f64;
        (mean >= 0.95 * baseline).then(|| {
            SimTime::from_nanos(width.as_nanos().saturating_mul(i as u64)).saturating_duration_since(fault_end)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("GET /products"), "GET /products");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn recovery_is_measured_from_the_fault_end_to_the_smoothed_return() {
        let s = SimDuration::from_secs(1);
        let mut goodput = vec![100u64; 30];
        for g in goodput.iter_mut().take(20).skip(10) {
            *g = 0; // fault over [10, 15), slow return until 20
        }
        let recovered =
            time_to_recover(&goodput, s, SimTime::from_secs(10), SimTime::from_secs(15), s.saturating_mul(30));
        assert_eq!(recovered, Some(SimDuration::from_secs(5)));
        // Never back: none.
        let flat = [100, 100, 100, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(time_to_recover(&flat, s, SimTime::from_secs(3), SimTime::from_secs(4), s.saturating_mul(10)), None);
        // A fault from time zero has no level before it to return to.
        assert_eq!(time_to_recover(&flat, s, SimTime::ZERO, SimTime::from_secs(4), s.saturating_mul(10)), None);
        assert_eq!(time_to_recover(&[], s, SimTime::ZERO, SimTime::from_secs(4), s.saturating_mul(10)), None);
    }
}
