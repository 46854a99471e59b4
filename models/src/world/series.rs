//! The per-bucket series a service, an edge and a client route keep.

use stormglass_core::timeline::{Buckets, CountSeries, GaugeSeries, LatencySeries};

use super::{EdgeBook, EdgeSeries, RouteSeries, ServiceSeries};
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

impl EdgeBook {
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
