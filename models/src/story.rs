//! The story of two runs side by side, in a few lines a person reads: a
//! table of availability per route, then what failed and when, when the
//! breakers moved, and how long recovery took.
//!
//! ```
//! use stormglass_models::seed::{Variant, seed_cascade};
//! use stormglass_models::{run, story};
//!
//! let mut short = seed_cascade(Variant::Unprotected);
//! short.duration = "20s".parse().unwrap();
//! short.faults.clear();
//! let a = run(&short).unwrap();
//! let text = story::compare("unprotected", &a, "unprotected again", &a);
//! assert!(text.contains("GET /products"));
//! ```

use std::fmt::Write;

use stormglass_core::time::SimTime;
use stormglass_core::timeline::SeriesData;
use stormglass_patterns::breaker::BreakerState;

use crate::report::{Report, RouteReport};

/// When a route first failed after `from`, if it did.
fn first_failure(route: &RouteReport, from: SimTime) -> Option<SimTime> {
    let buckets = route.timeline.buckets;
    let start = buckets.index(from);
    route
        .timeline
        .series
        .iter()
        .filter(|(name, _)| name.starts_with("failed_"))
        .filter_map(|(_, data)| match data {
            SeriesData::Counts(counts) => {
                counts.iter().skip(start).position(|&n| n > 0).map(|i| buckets.start(start + i))
            }
            _ => None,
        })
        .min()
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// A latency as milliseconds with one decimal (`12.3ms`), as tables show it.
pub fn millis(d: stormglass_core::time::SimDuration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1e3)
}

fn optional_percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), percent)
}

/// A side-by-side table and the story of two runs of the same routes.
pub fn compare(label_a: &str, a: &Report, label_b: &str, b: &Report) -> String {
    let mut out = String::new();
    let fault_from = a.faults.iter().map(|f| f.from).min();
    let _ = writeln!(out, "{} vs {} (seed {}, {} of traffic)", label_a, label_b, a.seed, a.duration);
    for fault in &a.faults {
        let _ = writeln!(out, "fault: {} {} from {} to {}", fault.target, fault.kind, fault.from, fault.until);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<28} {:>22} {:>32}", "", label_a, label_b);
    let _ = writeln!(
        out,
        "{:<28} {:>10} {:>11} {:>10} {:>11} {:>9}",
        "route", "avail", "in fault", "avail", "in fault", "degraded"
    );
    for (name, route_a) in &a.routes {
        let Some(route_b) = b.routes.get(name) else { continue };
        let _ = writeln!(
            out,
            "{:<28} {:>10} {:>11} {:>10} {:>11} {:>9}",
            name,
            percent(route_a.availability),
            optional_percent(route_a.availability_during_faults),
            percent(route_b.availability),
            optional_percent(route_b.availability_during_faults),
            route_b.degraded
        );
    }
    let _ = writeln!(out);
    for (label, report) in [(label_a, a), (label_b, b)] {
        tell(&mut out, label, report, fault_from);
    }
    out
}

/// A table of one run's routes and its story: what failed and when, how the
/// breakers moved, how long detection and recovery took.
///
/// ```
/// use stormglass_models::seed::{Variant, seed_cascade};
/// use stormglass_models::{run, story};
///
/// let mut short = seed_cascade(Variant::Protected);
/// short.duration = "20s".parse().unwrap();
/// let text = story::single("protected", &run(&short).unwrap());
/// assert!(text.contains("GET /products") && text.contains("protected:"));
/// ```
pub fn single(label: &str, report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} (seed {}, {} of traffic)", report.scenario, report.seed, report.duration);
    for fault in &report.faults {
        let _ = writeln!(out, "fault: {} {} from {} to {}", fault.target, fault.kind, fault.from, fault.until);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<28} {:>9} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "route", "requests", "avail", "in fault", "degraded", "failed", "p50", "p99"
    );
    for (name, route) in &report.routes {
        let failed: u64 = route.failed.values().sum();
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10}",
            name,
            route.arrivals,
            percent(route.availability),
            optional_percent(route.availability_during_faults),
            route.degraded,
            failed,
            millis(route.latency.p50),
            millis(route.latency.p99)
        );
    }
    let _ = writeln!(out);
    tell(&mut out, label, report, report.faults.iter().map(|f| f.from).min());
    out
}

/// The story lines of one run, under its label.
fn tell(out: &mut String, label: &str, report: &Report, fault_from: Option<SimTime>) {
    let _ = writeln!(out, "{label}:");
    if let Some(from) = fault_from {
        let mut firsts: Vec<(SimTime, &str)> = report
            .routes
            .iter()
            .filter_map(|(name, route)| first_failure(route, from).map(|t| (t, name.as_str())))
            .collect();
        firsts.sort();
        if firsts.is_empty() {
            let _ = writeln!(out, "  no route failed after the fault began");
        }
        for (t, name) in firsts {
            let route = &report.routes[name];
            let causes: Vec<String> = route.failed.iter().map(|(c, n)| format!("{} {n}", c.name())).collect();
            let _ = writeln!(out, "  {name} first failed at {t} ({})", causes.join(", "));
        }
    }
    for (edge, edge_report) in &report.edges {
        for transition in &edge_report.transitions {
            let word = match transition.to {
                BreakerState::Open => "opened",
                BreakerState::HalfOpen => "went half-open",
                BreakerState::Closed => "closed",
                BreakerState::ForcedOpen => "was forced open",
                BreakerState::Disabled => "was disabled",
            };
            let _ = writeln!(out, "  breaker {edge} {word} at {}", transition.at);
        }
        if !edge_report.fallbacks_by_reason.is_empty() {
            let reasons: Vec<String> =
                edge_report.fallbacks_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
            let served: Vec<String> =
                edge_report.fallbacks_by_served.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
            let _ = writeln!(out, "  fallbacks on {edge}: {}; served {}", reasons.join(", "), served.join(", "));
        }
        // Retries multiply the load the edge's target sees.
        let stats = &edge_report.stats;
        if stats.retries > 0 {
            let throttled = if stats.throttled > 0 {
                format!(", {} refused by the budget", stats.throttled)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  load on {edge}: {:.2} attempts per call ({} retries{throttled})",
                edge_report.attempts_per_call, stats.retries
            );
        }
        // Only a bulkhead with a wait queue has waits to tell of.
        if let Some(b) = edge_report.bulkhead.filter(|b| b.queued > 0) {
            let _ = writeln!(
                out,
                "  bulkhead on {edge}: {} waited for a slot ({} got one, {} gave up); {} refused at once",
                b.queued,
                b.promoted,
                b.expired + b.cancelled,
                b.rejected
            );
        }
    }
    if let Some(detect) = report.summary.time_to_detect {
        let _ = writeln!(out, "  time to detect (fault start -> first breaker open): {detect}");
    }
    match (report.faults.is_empty(), report.summary.time_to_recover) {
        (true, _) => {}
        (false, Some(recover)) => {
            let _ = writeln!(out, "  time to recover (fault end -> goodput within 5%): {recover}");
        }
        (false, None) => {
            let _ = writeln!(out, "  goodput did not come back within 5% before the end of the run");
        }
    }
}
