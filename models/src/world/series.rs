//! The per-bucket series a service, an edge and a client route keep, and
//! what happens to them when a bucket ends: every policy's counters booked
//! into its edge (`World::book_policy_counts`), every latency series rolled
//! to the new bucket (`World::roll_latency_series`).

use stormglass_core::time::SimTime;
use stormglass_core::timeline::{Buckets, CountSeries, GaugeSeries, LatencySeries};
use stormglass_patterns::pipeline::PolicyStats;

use super::{EdgeBook, EdgeSeries, RouteSeries, ServiceSeries, World};
use crate::report::Cause;

impl ServiceSeries {
    pub(super) fn new(buckets: Buckets) -> Self {
        ServiceSeries {
            arrivals: CountSeries::new(buckets),
            answered: CountSeries::new(buckets),
            ok: CountSeries::new(buckets),
            failed: Cause::ALL.iter().map(|_| CountSeries::new(buckets)).collect(),
            rejected_queue_full: CountSeries::new(buckets),
            refused_by_crash: CountSeries::new(buckets),
            lost_to_hang: CountSeries::new(buckets),
            abandoned: CountSeries::new(buckets),
            queue_length: GaugeSeries::new(buckets),
            busy: GaugeSeries::new(buckets),
            latency: LatencySeries::new(buckets),
        }
    }
}

impl World {
    /// Books every policy's counters, as changed since they were last
    /// booked, into the current bucket of its edge's timeline. The runner
    /// calls it once more at the end, before reading the timelines.
    pub(crate) fn book_policy_counts(&mut self) {
        let at = self.buckets.start(self.bucket);
        for service in &mut self.services {
            for dependency in &mut service.dependencies {
                let stats = dependency.policy.stats();
                dependency.edge.book_counts(at, &(stats - dependency.booked));
                dependency.booked = stats;
            }
        }
        for client in &mut self.clients {
            for member in client.dirty_members.drain(..) {
                let member = &mut client.members[member as usize];
                let stats = member.policy.stats();
                client.edge.book_counts(at, &(stats - member.booked));
                member.booked = stats;
                member.dirty = false;
            }
        }
    }

    /// Closes every latency series' buckets before the current one, so
    /// that the handlers record with `record_current` and compare no
    /// bucket per sample.
    pub(super) fn roll_latency_series(&mut self) {
        let bucket = self.bucket;
        for service in &mut self.services {
            service.series.latency.roll_to(bucket);
            for dependency in &mut service.dependencies {
                dependency.edge.series.latency.roll_to(bucket);
            }
        }
        for client in &mut self.clients {
            client.edge.series.latency.roll_to(bucket);
            for route in &mut client.route_series {
                route.latency.roll_to(bucket);
            }
        }
    }
}

impl EdgeBook {
    /// Books counts a policy made during the bucket that starts at `at`.
    pub(super) fn book_counts(&mut self, at: SimTime, counted: &PolicyStats) {
        let series = &mut self.series;
        let book = |counts: &mut CountSeries, n: u64| {
            if n > 0 {
                counts.add(at, n);
            }
        };
        book(&mut series.calls, counted.calls);
        book(&mut series.attempts, counted.attempts);
        book(&mut series.retries, counted.retries);
        book(&mut series.ok, counted.successes);
        book(&mut series.fallbacks, counted.fallbacks);
        book(&mut series.failed, counted.failures);
        book(&mut series.rejected_circuit_open, counted.rejected_circuit_open);
        book(&mut series.rejected_bulkhead_full, counted.rejected_bulkhead_full);
        book(&mut series.throttled, counted.throttled);
    }

    pub(super) fn new(buckets: Buckets) -> Self {
        EdgeBook {
            series: EdgeSeries::new(buckets),
            transitions: Vec::new(),
            transitions_dropped: 0,
            breaker_levels: Vec::new(),
        }
    }
}

impl EdgeSeries {
    fn new(buckets: Buckets) -> Self {
        EdgeSeries {
            calls: CountSeries::new(buckets),
            attempts: CountSeries::new(buckets),
            retries: CountSeries::new(buckets),
            ok: CountSeries::new(buckets),
            fallbacks: CountSeries::new(buckets),
            failed: CountSeries::new(buckets),
            rejected_circuit_open: CountSeries::new(buckets),
            rejected_bulkhead_full: CountSeries::new(buckets),
            throttled: CountSeries::new(buckets),
            breaker_state: GaugeSeries::new(buckets),
            failed_by_cause: Cause::ALL.iter().map(|_| CountSeries::new(buckets)).collect(),
            latency: LatencySeries::new(buckets),
        }
    }
}

impl RouteSeries {
    pub(super) fn new(name: String, buckets: Buckets) -> Self {
        RouteSeries {
            name,
            arrivals: CountSeries::new(buckets),
            ok: CountSeries::new(buckets),
            degraded: CountSeries::new(buckets),
            failed: Cause::ALL.iter().map(|_| CountSeries::new(buckets)).collect(),
            throttled: CountSeries::new(buckets),
            latency: LatencySeries::new(buckets),
            in_flight: 0,
        }
    }
}
