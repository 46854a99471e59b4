//! Queueing theory through the models: one-service scenarios written in RON
//! and run by [`stormglass_models::run`] must agree with the closed forms.
//! Unlike `tests/analytic_queues.rs` (an M/M/c written directly on the
//! engine), these go through everything a user's scenario goes through:
//! clients, the policy pipeline, links, the thread pool, its queue and the
//! report's timelines.
//!
//! - Erlang C (M/M/c, unbounded queue): time in system, queue length and busy
//!   workers;
//! - Erlang B (M/G/c/c, `queue_capacity: 0`): the queue-full fraction, for
//!   exponential and for non-exponential service (Erlang B depends on the
//!   service time through its mean only);
//! - M/M/c/K (`queue_capacity: K - c`): blocking and number in system;
//! - Pollaczek–Khinchine (M/G/1): the mean wait of M/D/1, rho / (2 mu (1 - rho)),
//!   and of M/E2/1;
//! - Little's law, L = lambda W, in every run: L from the report's
//!   time-weighted `busy` and `queue_length` gauges, lambda from its arrival
//!   counts, W from its latency histograms, three independent instruments.
//!
//! How a scenario is measured. Links add no latency (`Constant(value: "0s")`,
//! where the default is 500 us each way), so the service's latency is the
//! time in system. The run lasts `BATCHES + 1` timeline buckets of equal
//! width: the first is the warm-up (the run starts empty) and is dropped,
//! each other bucket is one batch. The report's per-bucket latency mean is
//! the exact sum over count (the histogram keeps the sum; only its
//! percentiles have bucket resolution), truncated to whole nanoseconds: an
//! error below 1e-7 of a 10 ms service time, ignored.
//!
//! Tolerance. Each estimate is the mean of its `BATCHES` batch means, and its
//! standard error is their standard deviation over sqrt(BATCHES). A batch
//! holds at least 10 000 customers and lasts at least 13 s, over ten times
//! the queue's relaxation time (about 0.9 s for M/M/1 at rho = 0.8 with a
//! 10 ms service, the slowest case here; that case's batches last 417 s), so
//! batch means are close to independent and the warm-up bucket, as long as
//! a batch, is far longer than the start-up transient. A check
//! passes when the estimate lies within `Z` standard errors of the closed
//! form; with 29 degrees of freedom a correct model fails one such check with
//! probability about 4e-4. Every check also requires the standard error to
//! be small against the value (`se_max`), so a passing check has teeth.
//! Seeds are fixed, so the outcome is reproducible; a failure prints the case
//! and its seed.

use stormglass_core::metrics::LatencySummary;
use stormglass_core::timeline::{SeriesData, Timeline};
use stormglass_models::config::CAPACITY_MAX;
use stormglass_models::report::ServiceReport;
use stormglass_models::{Scenario, run};

/// Batches (timeline buckets after the warm-up bucket) per run.
const BATCHES: usize = 30;
/// Standard errors an estimate may stray from its closed form.
const Z: f64 = 4.0;
/// Mean service time of every case, 10 ms; mu = 100 per second per worker.
const SERVICE_MEAN_S: f64 = 0.010;

/// One service with `workers` workers and a queue of `queue_capacity`,
/// Poisson arrivals at `lambda_rps`, service times drawn from `service` (a
/// RON distribution with mean [`SERVICE_MEAN_S`]), and enough time to serve
/// about `customers` customers after the warm-up.
#[derive(Debug, Clone, Copy)]
struct Station {
    workers: u32,
    queue_capacity: u32,
    service: &'static str,
    lambda_rps: f64,
    customers: u64,
    seed: u64,
}

/// Batch means of one run, by instrument.
#[derive(Debug)]
struct Measured {
    /// Mean latency of the service's answers per batch (a rejection is an
    /// answer at once, so it counts as zero).
    time_in_system_s: Vec<f64>,
    /// Rejected (queue full) over arrivals per batch.
    blocked: Vec<f64>,
    /// Time-weighted mean busy workers per batch.
    busy: Vec<f64>,
    /// Time-weighted mean queue length per batch.
    queue: Vec<f64>,
    /// Arrivals per second per batch.
    arrival_rps: Vec<f64>,
    /// Answers per batch (the weights of `time_in_system_s`).
    answered: Vec<u64>,
}

/// An estimate and its batch-means standard error.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    mean: f64,
    se: f64,
}

fn estimate(batch_means: &[f64]) -> Estimate {
    let n = batch_means.len() as f64;
    let mean = batch_means.iter().sum::<f64>() / n;
    let variance = batch_means.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Estimate { mean, se: (variance / n).sqrt() }
}

impl Station {
    fn scenario(&self) -> Scenario {
        // Whole seconds, and never under 10 s: many relaxation times.
        let batch_s = (self.customers as f64 / (BATCHES as f64 * self.lambda_rps)).ceil().max(10.0) as u64;
        let duration_s = batch_s * (BATCHES as u64 + 1);
        let text = format!(
            r#"(
                name: "station", seed: {seed}, duration: "{duration_s}s", drain: "0s", bucket_width: "{batch_s}s",
                links: (default: (latency: Constant(value: "0s"))),
                services: {{ "station": (
                    execution: thread_pool(workers: {workers}, queue_capacity: {queue_capacity}),
                    routes: {{ "r": (steps: [compute({service})]) }},
                ) }},
                clients: [(name: "arrivals", target: "station", rate: constant(rps: {lambda}), routes: [(route: "r")])],
            )"#,
            seed = self.seed,
            workers = self.workers,
            queue_capacity = self.queue_capacity,
            service = self.service,
            lambda = self.lambda_rps,
        );
        let scenario = Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        scenario.validate().unwrap_or_else(|e| panic!("{e}\n{text}"));
        scenario
    }

    fn measure(&self) -> Measured {
        let scenario = self.scenario();
        let report = run(&scenario).unwrap_or_else(|e| panic!("{self:?}: {e}"));
        let service = &report.services["station"];
        let timeline = &service.timeline;
        assert_eq!(timeline.buckets.count, BATCHES + 1, "{self:?}: one warm-up bucket and one per batch");
        let width_s = timeline.buckets.width.as_secs_f64();
        let batches = 1..=BATCHES;
        let latency = latencies(timeline, "latency");
        let arrivals = counts(timeline, "arrivals");
        let rejected = counts(timeline, "rejected_queue_full");
        let busy = gauge(timeline, "busy");
        let queue = gauge(timeline, "queue_length");
        assert_routes_agree(self, service, &report.routes["r"].latency);
        Measured {
            time_in_system_s: batches.clone().map(|i| latency[i].mean.as_secs_f64()).collect(),
            blocked: batches.clone().map(|i| rejected[i] as f64 / arrivals[i] as f64).collect(),
            busy: busy[batches.clone()].to_vec(),
            queue: queue[batches.clone()].to_vec(),
            arrival_rps: batches.clone().map(|i| arrivals[i] as f64 / width_s).collect(),
            answered: batches.map(|i| latency[i].count).collect(),
        }
    }
}

/// With links of zero latency the client sees exactly what the service
/// does: the route's latency and the service's are the same samples.
fn assert_routes_agree(station: &Station, service: &ServiceReport, route: &LatencySummary) {
    assert_eq!(route.count, service.latency.count, "{station:?}");
    assert_eq!(route.mean, service.latency.mean, "{station:?}");
    assert_eq!(route.max, service.latency.max, "{station:?}");
}

fn counts<'a>(timeline: &'a Timeline, name: &str) -> &'a [u64] {
    match &timeline.series[name] {
        SeriesData::Counts(counts) => counts,
        other => panic!("{name} is not a count series: {other:?}"),
    }
}

fn gauge<'a>(timeline: &'a Timeline, name: &str) -> &'a [f64] {
    match &timeline.series[name] {
        SeriesData::Gauge { mean, .. } => mean,
        other => panic!("{name} is not a gauge series: {other:?}"),
    }
}

fn latencies<'a>(timeline: &'a Timeline, name: &str) -> &'a [LatencySummary] {
    match &timeline.series[name] {
        SeriesData::Latency(summaries) => summaries,
        other => panic!("{name} is not a latency series: {other:?}"),
    }
}

/// The estimate from `batch_means` lies within [`Z`] standard errors of
/// `theory`, and its standard error is at most `se_max` of `theory`.
fn agree(what: &str, batch_means: &[f64], theory: f64, se_max: f64) {
    let Estimate { mean, se } = estimate(batch_means);
    eprintln!("{what}: measured {mean:.6} theory {theory:.6} (se {se:.2e}, {:+.2} se)", (mean - theory) / se);
    assert!(se <= se_max * theory, "{what}: standard error {se:.3e} above {se_max} of {theory:.6}: too few customers");
    assert!(
        (mean - theory).abs() <= Z * se,
        "{what}: measured {mean:.6} vs theory {theory:.6} ({Z} se = {:.3e})",
        Z * se
    );
}

/// Little's law over the whole measured window, from three instruments: L
/// from the gauges, lambda from the arrival counts, W from the latency
/// histograms (customer-weighted, as lambda W counts customers).
///
/// The two sides differ only by the customers that straddle the window's
/// ends: at most about L W of area at each end against L T in all, a
/// relative 2 W / T below 3e-4 here (W at most 0.05 s, T at least 390 s),
/// and the two ends mostly cancel (measured: 1e-6 to 2e-5). The tolerance,
/// 1e-3, holds a correct model with room, and still catches a gauge that
/// drifts (a level left one too high for a hundredth of the time moves L by
/// more than that).
fn little(what: &str, m: &Measured) {
    let l = m.busy.iter().zip(&m.queue).map(|(b, q)| b + q).sum::<f64>() / BATCHES as f64;
    let lambda = m.arrival_rps.iter().sum::<f64>() / BATCHES as f64;
    let answered: u64 = m.answered.iter().sum();
    let w = m.time_in_system_s.iter().zip(&m.answered).map(|(w, n)| w * *n as f64).sum::<f64>() / answered as f64;
    let relative = (l - lambda * w).abs() / l;
    eprintln!("{what} Little: L {l:.6} lambda W {:.6} (relative {relative:.1e})", lambda * w);
    assert!(relative < 1e-3, "{what}: L = {l:.6} from the gauges but lambda W = {:.6}", lambda * w);
}

// ---- closed forms ---------------------------------------------------------

/// Erlang B: the blocking probability of `c` servers offered `a` erlangs
/// with no waiting room, by the stable recursion B(k) = a B(k-1) / (k + a B(k-1)).
fn erlang_b(c: u32, a: f64) -> f64 {
    (1..=c).fold(1.0, |b, k| a * b / (f64::from(k) + a * b))
}

/// Erlang C: the probability that an arrival waits, for `c` servers offered
/// `a < c` erlangs, from Erlang B.
fn erlang_c(c: u32, a: f64) -> f64 {
    let b = erlang_b(c, a);
    let c = f64::from(c);
    c * b / (c - a * (1.0 - b))
}

/// The stationary distribution of M/M/c/K (`k` in the system at most),
/// offered `a` erlangs: p(n) for n in 0..=k.
fn mmck_distribution(c: u32, k: u32, a: f64) -> Vec<f64> {
    let rho = a / f64::from(c);
    let mut p = vec![1.0];
    for n in 1..=k {
        let step = if n <= c { a / f64::from(n) } else { rho };
        p.push(p[p.len() - 1] * step);
    }
    let total: f64 = p.iter().sum();
    p.iter().map(|x| x / total).collect()
}

#[test]
fn the_closed_forms_agree_with_each_other() {
    // M/M/1: Erlang B is a / (1 + a), Erlang C is rho.
    assert!((erlang_b(1, 0.5) - 1.0 / 3.0).abs() < 1e-15);
    assert!((erlang_c(1, 0.8) - 0.8).abs() < 1e-15);
    // Textbook values: B(4, 2) = 2/21, C(2, 1) = 1/3.
    assert!((erlang_b(4, 2.0) - 2.0 / 21.0).abs() < 1e-15);
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-15);
    // M/M/c/c blocking is Erlang B, and a deep M/M/c/K waits like M/M/c.
    let loss = mmck_distribution(4, 4, 3.0);
    assert!((loss[4] - erlang_b(4, 3.0)).abs() < 1e-15);
    let deep = mmck_distribution(2, 2000, 1.6);
    let waiting: f64 = deep[2..].iter().sum();
    assert!((waiting - erlang_c(2, 1.6)).abs() < 1e-12, "{waiting}");
}

// ---- suites ---------------------------------------------------------------

fn exponential() -> &'static str {
    r#"Exponential(mean: "10ms")"#
}

/// M/M/c with an unbounded queue at `rho` per worker against Erlang C.
fn check_erlang_c(workers: u32, rho: f64, customers: u64, seed: u64) {
    let mu = 1.0 / SERVICE_MEAN_S;
    let lambda = rho * f64::from(workers) * mu;
    let station =
        Station { workers, queue_capacity: CAPACITY_MAX, service: exponential(), lambda_rps: lambda, customers, seed };
    let what = format!("M/M/{workers} rho {rho} seed {}", station.seed);
    let m = station.measure();
    assert!(m.blocked.iter().all(|&b| b == 0.0), "{what}: the queue is unbounded yet someone was refused");
    let a = lambda / mu;
    let wait_s = erlang_c(workers, a) / (f64::from(workers) * mu - lambda);
    agree(&format!("{what} time in system (s)"), &m.time_in_system_s, wait_s + SERVICE_MEAN_S, 0.015);
    // The mean wait, read from the queue gauge (Wq = Lq / lambda, per batch):
    // an instrument independent of the latency histograms. At rho = 0.5 with
    // 4 workers only 17% of customers wait, so this estimate is noisier.
    let waits: Vec<f64> = m.queue.iter().zip(&m.arrival_rps).map(|(q, l)| q / l).collect();
    agree(&format!("{what} wait (s)"), &waits, wait_s, 0.03);
    // Busy workers: the offered load a, whatever the queue does.
    agree(&format!("{what} busy workers"), &m.busy, a, 0.01);
    little(&what, &m);
}

#[test]
fn an_unbounded_queue_at_half_load_waits_as_erlang_c() {
    for (workers, seed) in [(1, 1015), (2, 1025), (4, 1045)] {
        check_erlang_c(workers, 0.5, 300_000, seed);
    }
}

#[test]
fn an_unbounded_queue_at_high_load_waits_as_erlang_c() {
    // At rho = 0.8 waits are correlated over many more customers: three
    // times as many customers for a standard error near 1%.
    for (workers, seed) in [(1, 1018), (2, 1028), (4, 1048)] {
        check_erlang_c(workers, 0.8, 1_000_000, seed);
    }
}

/// No waiting room, `workers` workers offered `a` erlangs of `service`
/// against Erlang B.
fn check_erlang_b(workers: u32, a: f64, service: &'static str, seed: u64) {
    let station =
        Station { workers, queue_capacity: 0, service, lambda_rps: a / SERVICE_MEAN_S, customers: 300_000, seed };
    let what = format!("M/G/{workers}/{workers} a {a} {service} seed {}", station.seed);
    let m = station.measure();
    assert!(m.queue.iter().all(|&q| q == 0.0), "{what}: a queue of capacity 0 held someone");
    let blocking = erlang_b(workers, a);
    // A batch holds 10 000 arrivals: the blocked fraction's standard error
    // is near sqrt(B (1 - B) / 300 000), below 1% of B for every case here.
    agree(&format!("{what} queue-full fraction"), &m.blocked, blocking, 0.02);
    // The carried load a (1 - B) is insensitive too.
    agree(&format!("{what} busy workers"), &m.busy, a * (1.0 - blocking), 0.01);
    little(&what, &m);
}

#[test]
fn no_queue_refuses_as_erlang_b_whatever_the_service_distribution() {
    // A log-normal with mean 10 ms and p99 60 ms has sigma ~0.98 and a
    // coefficient of variation ~1.26, more variable than the exponential;
    // the constant has none. Erlang B must not see the difference.
    let constant = r#"Constant(value: "10ms")"#;
    let lognormal = r#"LogNormal(mean: "10ms", p99: "60ms")"#;
    for (workers, a, service, seed) in [
        (1, 0.5, exponential(), 2035),
        (4, 3.0, exponential(), 2065),
        (4, 3.0, constant, 2063),
        (4, 3.0, lognormal, 2076),
        (10, 8.0, exponential(), 2125),
        (10, 8.0, constant, 2123),
        (10, 8.0, lognormal, 2136),
    ] {
        check_erlang_b(workers, a, service, seed);
    }
}

/// M/M/c/K: `workers` workers and room for `k` in the system.
fn check_mmck(workers: u32, k: u32, rho: f64, seed: u64) {
    let mu = 1.0 / SERVICE_MEAN_S;
    let lambda = rho * f64::from(workers) * mu;
    let station = Station {
        workers,
        queue_capacity: k - workers,
        service: exponential(),
        lambda_rps: lambda,
        customers: 300_000,
        seed,
    };
    let what = format!("M/M/{workers}/{k} rho {rho} seed {}", station.seed);
    let m = station.measure();
    let p = mmck_distribution(workers, k, lambda / mu);
    agree(&format!("{what} blocking"), &m.blocked, p[k as usize], 0.02);
    let in_system: Vec<f64> = m.busy.iter().zip(&m.queue).map(|(b, q)| b + q).collect();
    let l: f64 = p.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
    agree(&format!("{what} number in system"), &in_system, l, 0.01);
    // With rejections answered at zero, the mean over every answer is L / lambda.
    agree(&format!("{what} time in system over all answers (s)"), &m.time_in_system_s, l / lambda, 0.01);
    little(&what, &m);
}

#[test]
fn a_finite_queue_blocks_as_mmck() {
    // Light, near-critical and overloaded: a finite queue is stable at any load.
    for (workers, k, rho, seed) in [(1, 5, 0.8, 3105), (2, 6, 0.95, 3206), (3, 8, 1.2, 3308)] {
        check_mmck(workers, k, rho, seed);
    }
}

/// M/G/1 with `service` of mean [`SERVICE_MEAN_S`] and second moment
/// `second_moment_s2`, against Pollaczek–Khinchine:
/// Wq = lambda E[S^2] / (2 (1 - rho)).
fn check_pollaczek_khinchine(service: &'static str, second_moment_s2: f64, rho: f64, customers: u64, seed: u64) {
    let lambda = rho / SERVICE_MEAN_S;
    let station = Station { workers: 1, queue_capacity: CAPACITY_MAX, service, lambda_rps: lambda, customers, seed };
    let what = format!("M/G/1 {service} rho {rho} seed {}", station.seed);
    let m = station.measure();
    let wait_s = lambda * second_moment_s2 / (2.0 * (1.0 - rho));
    // The wait from the latency histograms: W - E[S] per batch (exactly each
    // customer's wait when the service time is constant).
    let waits: Vec<f64> = m.time_in_system_s.iter().map(|w| w - SERVICE_MEAN_S).collect();
    agree(&format!("{what} wait from latency (s)"), &waits, wait_s, 0.015);
    // And from the queue gauge, Wq = Lq / lambda.
    let waits: Vec<f64> = m.queue.iter().zip(&m.arrival_rps).map(|(q, l)| q / l).collect();
    agree(&format!("{what} wait from queue length (s)"), &waits, wait_s, 0.015);
    agree(&format!("{what} busy workers"), &m.busy, rho, 0.01);
    little(&what, &m);
}

#[test]
fn one_worker_waits_as_pollaczek_khinchine() {
    let d = SERVICE_MEAN_S;
    // M/D/1: E[S^2] = D^2, so Wq = rho / (2 mu (1 - rho)).
    check_pollaczek_khinchine(r#"Constant(value: "10ms")"#, d * d, 0.5, 300_000, 4028);
    check_pollaczek_khinchine(r#"Constant(value: "10ms")"#, d * d, 0.8, 500_000, 4031);
    // M/E2/1: E[S^2] = (1 + 1/2) m^2, between M/D/1 and M/M/1.
    check_pollaczek_khinchine(r#"Erlang(k: 2, mean: "10ms")"#, 1.5 * d * d, 0.8, 500_000, 4034);
}
