//! An M/M/c queue written directly on stormglass-core: Poisson arrivals,
//! exponential service, `c` servers, unbounded FIFO queue.
//!
//! It is the engine's own validation model (tests/analytic_queues.rs checks
//! it against Erlang C and Little's law) and the engine benchmark's workload;
//! it deliberately uses nothing from the models crate.

use std::collections::VecDeque;

use serde::Serialize;
use stormglass_core::dist::{Distribution, Sampler};
use stormglass_core::metrics::{Histogram, LatencySummary, TimeWeightedGauge};
use stormglass_core::rng::{RngStreams, SimRng};
use stormglass_core::sim::{Context, Model, Simulation};
use stormglass_core::time::{SimDuration, SimTime};

/// Parameters of one M/M/c run.
#[derive(Debug, Clone, Copy)]
pub struct MmcConfig {
    /// Arrival rate per second.
    pub lambda: f64,
    /// Service rate per second per server.
    pub mu: f64,
    /// Number of servers.
    pub servers: usize,
    /// Customers to serve before stopping.
    pub customers: u64,
    /// Customers to discard at the start (warm-up).
    pub warmup_customers: u64,
    /// Number of batches for the batch-means confidence interval.
    pub batches: usize,
    /// Master seed.
    pub seed: u64,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct MmcReport {
    pub customers: u64,
    pub mean_time_in_system_s: f64,
    pub mean_wait_s: f64,
    /// Batch means of the time in system, for a confidence interval.
    pub batch_means_time_in_system_s: Vec<f64>,
    /// Batch means of the wait.
    pub batch_means_wait_s: Vec<f64>,
    /// Time-average number in system over the measured span.
    pub mean_in_system: f64,
    /// Observed arrival rate over the measured span.
    pub arrival_rate: f64,
    pub time_in_system: LatencySummary,
    pub events: u64,
    pub end: SimTime,
}

#[derive(Clone, Copy)]
pub enum MmcEvent {
    Arrival,
    Departure,
}

/// The queue's state.
pub struct Mmc {
    config: MmcConfig,
    interarrival: Sampler,
    service: Sampler,
    arrivals_rng: SimRng,
    service_rng: SimRng,
    /// Arrival times of customers waiting for a server.
    queue: VecDeque<SimTime>,
    /// Arrival times of customers in service, departures in FIFO order are
    /// not guaranteed with c > 1, so each departure carries its own arrival.
    busy: usize,
    in_service: VecDeque<(SimTime, SimTime)>,
    served: u64,
    in_system: TimeWeightedGauge,
    measure_from: Option<SimTime>,
    /// Integral of the number in system when measurement began.
    area_at_measure_start: u128,
    arrivals_measured: u64,
    sum_time_in_system: f64,
    sum_wait: f64,
    batch_sums: Vec<(f64, f64)>,
    histogram: Histogram,
}

impl Mmc {
    pub fn new(config: MmcConfig) -> Self {
        let streams = RngStreams::new(config.seed);
        let exp = |rate: f64| {
            Distribution::Exponential { mean: SimDuration::from_secs_f64(1.0 / rate) }.sampler().expect("valid rate")
        };
        Mmc {
            config,
            interarrival: exp(config.lambda),
            service: exp(config.mu),
            arrivals_rng: streams.stream("mmc.arrivals"),
            service_rng: streams.stream("mmc.service"),
            queue: VecDeque::new(),
            busy: 0,
            in_service: VecDeque::new(),
            served: 0,
            in_system: TimeWeightedGauge::new(SimTime::ZERO),
            measure_from: None,
            area_at_measure_start: 0,
            arrivals_measured: 0,
            sum_time_in_system: 0.0,
            sum_wait: 0.0,
            batch_sums: vec![(0.0, 0.0); config.batches],
            histogram: Histogram::new(),
        }
    }

    fn start_service(&mut self, arrived: SimTime, ctx: &mut Context<'_, MmcEvent>) {
        self.busy += 1;
        let service = self.service.sample(&mut self.service_rng);
        // Departure order with c > 1 differs from arrival order; the event
        // queue pops departures in time order, so keep (departure, arrival)
        // sorted by departure time.
        let departs = ctx.now() + service;
        let position = self.in_service.partition_point(|&(d, _)| d <= departs);
        self.in_service.insert(position, (departs, arrived));
        ctx.schedule_at(departs, MmcEvent::Departure);
        let wait = (ctx.now() - arrived).as_secs_f64();
        if self.measuring() {
            self.sum_wait += wait;
            let batch = self.batch_of_next_departure();
            self.batch_sums[batch].1 += wait;
        }
    }

    fn measuring(&self) -> bool {
        self.served >= self.config.warmup_customers
    }

    fn batch_of_next_departure(&self) -> usize {
        let measured = self.served.saturating_sub(self.config.warmup_customers);
        let per_batch = (self.config.customers - self.config.warmup_customers).div_ceil(self.config.batches as u64);
        ((measured / per_batch) as usize).min(self.config.batches - 1)
    }

    pub fn report(&self, events: u64, end: SimTime) -> MmcReport {
        let measured = (self.config.customers - self.config.warmup_customers) as f64;
        let per_batch = measured / self.config.batches as f64;
        let from = self.measure_from.unwrap_or(SimTime::ZERO);
        let span = (end - from).as_secs_f64();
        let area_measured = self.in_system.area_until(end) - self.area_at_measure_start;
        MmcReport {
            customers: self.served,
            mean_time_in_system_s: self.sum_time_in_system / measured,
            mean_wait_s: self.sum_wait / measured,
            batch_means_time_in_system_s: self.batch_sums.iter().map(|b| b.0 / per_batch).collect(),
            batch_means_wait_s: self.batch_sums.iter().map(|b| b.1 / per_batch).collect(),
            mean_in_system: area_measured as f64 / 1e9 / span,
            arrival_rate: self.arrivals_measured as f64 / span,
            time_in_system: self.histogram.summary(),
            events,
            end,
        }
    }
}

impl Model for Mmc {
    type Event = MmcEvent;

    fn handle(&mut self, event: MmcEvent, ctx: &mut Context<'_, MmcEvent>) {
        let now = ctx.now();
        match event {
            MmcEvent::Arrival => {
                self.in_system.increment(now);
                if self.measure_from.is_some() {
                    self.arrivals_measured += 1;
                }
                if self.busy < self.config.servers {
                    self.start_service(now, ctx);
                } else {
                    self.queue.push_back(now);
                }
                ctx.schedule_in(self.interarrival.sample(&mut self.arrivals_rng), MmcEvent::Arrival);
            }
            MmcEvent::Departure => {
                let (departs, arrived) = self.in_service.pop_front().expect("a departure has a customer");
                debug_assert_eq!(departs, now);
                self.busy -= 1;
                self.in_system.decrement(now);
                if self.measuring() {
                    let time_in_system = now - arrived;
                    self.sum_time_in_system += time_in_system.as_secs_f64();
                    let batch = self.batch_of_next_departure();
                    self.batch_sums[batch].0 += time_in_system.as_secs_f64();
                    self.histogram.record(time_in_system);
                }
                self.served += 1;
                if self.served == self.config.warmup_customers {
                    self.measure_from = Some(now);
                    self.area_at_measure_start = self.in_system.area_until(now);
                }
                if let Some(arrived) = self.queue.pop_front() {
                    self.start_service(arrived, ctx);
                }
            }
        }
    }
}

/// Runs one M/M/c configuration to `customers` departures.
pub fn run_mmc(config: MmcConfig) -> MmcReport {
    let mut sim = Simulation::new(Mmc::new(config));
    sim.schedule_at(SimTime::ZERO, MmcEvent::Arrival);
    while sim.model().served < config.customers {
        sim.step().expect("default limits are far away").expect("arrivals never stop");
    }
    let end = sim.now();
    sim.model().report(sim.events_handled(), end)
}

/// Erlang C: the probability that an arrival waits in M/M/c, with offered
/// load `a = lambda / mu` Erlangs.
pub fn erlang_c(servers: usize, a: f64) -> f64 {
    // Iterative Erlang B, then C from B; stable for large c.
    let mut b = 1.0;
    for k in 1..=servers {
        b = a * b / (k as f64 + a * b);
    }
    let rho = a / servers as f64;
    b / (1.0 - rho * (1.0 - b))
}

/// Closed forms of M/M/c: (mean wait, mean time in system) in seconds.
pub fn mmc_theory(lambda: f64, mu: f64, servers: usize) -> (f64, f64) {
    let wait = erlang_c(servers, lambda / mu) / (servers as f64 * mu - lambda);
    (wait, wait + 1.0 / mu)
}
