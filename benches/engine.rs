//! Engine overhead against a bare reference loop, in the same run.
//!
//! The reference is what anyone would write by hand: a
//! `BinaryHeap<Reverse<(time, seq)>>` and the same RNG stream and
//! exponential sampler. The engine adds cancellable handles (a slot per
//! cancellable event), the FIFO lanes beside its heap, the limits and the
//! model/context indirection; the ratio of the two per-event times is the
//! engine's cost (target: within 1.3x).
//!
//! Run: `cargo bench --bench engine` (BENCHMARKS.md records the figures).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use stormglass_core::dist::Sampler;
use stormglass_core::rng::{RngStreams, SimRng};
use stormglass_core::sim::{Context, Model, Simulation};
use stormglass_core::time::{SimDuration, SimTime};

#[path = "support/bare_mm1.rs"]
mod bare;

#[path = "../tests/support/mmc.rs"]
#[allow(dead_code)]
mod mmc;

use bare::{bare_mm1, exponential};

/// Events handled per benchmark iteration of the hold model.
const HOLD_STEPS: u64 = 10_000;

/// The classic hold model: pop the earliest event, schedule one at now + Exp(1).
struct Hold {
    gap: Sampler,
    rng: SimRng,
}

impl Model for Hold {
    type Event = ();
    #[inline]
    fn handle(&mut self, _: (), ctx: &mut Context<'_, ()>) {
        let gap = self.gap.sample(&mut self.rng);
        ctx.schedule_in(gap, ());
    }
}

fn engine_hold(pending: usize) -> Simulation<Hold> {
    let gap = exponential(SimDuration::from_secs(1));
    let mut rng = RngStreams::new(1).stream("hold");
    let mut initial = Vec::with_capacity(pending);
    for _ in 0..pending {
        initial.push(gap.sample(&mut rng));
    }
    let mut sim = Simulation::new(Hold { gap, rng });
    for delay in initial {
        sim.schedule_at(SimTime::ZERO + delay, ());
    }
    sim
}

/// The bare reference for the hold model.
struct BareHold {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    seq: u64,
    gap: Sampler,
    rng: SimRng,
}

impl BareHold {
    fn new(pending: usize) -> Self {
        let gap = exponential(SimDuration::from_secs(1));
        let mut rng = RngStreams::new(1).stream("hold");
        let mut heap = BinaryHeap::with_capacity(pending);
        for seq in 0..pending as u64 {
            heap.push(Reverse((gap.sample(&mut rng).as_nanos(), seq)));
        }
        BareHold { heap, seq: pending as u64, gap, rng }
    }

    #[inline]
    fn step(&mut self) {
        let Reverse((now, _)) = self.heap.pop().expect("hold keeps n events");
        let at = now.saturating_add(self.gap.sample(&mut self.rng).as_nanos());
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
    }
}

fn hold(c: &mut Criterion) {
    let mut group = c.benchmark_group("hold");
    group.throughput(Throughput::Elements(HOLD_STEPS));
    for pending in [1_000usize, 100_000] {
        let mut bare = BareHold::new(pending);
        group.bench_function(BenchmarkId::new("bare_binary_heap", pending), |b| {
            b.iter(|| {
                for _ in 0..HOLD_STEPS {
                    bare.step();
                }
                black_box(bare.heap.len())
            })
        });
        let mut sim = engine_hold(pending);
        group.bench_function(BenchmarkId::new("engine", pending), |b| {
            b.iter(|| {
                for _ in 0..HOLD_STEPS {
                    sim.step().expect("within limits");
                }
                black_box(sim.now())
            })
        });
    }
    group.finish();
}

/// Customers per M/M/1 benchmark iteration.
const MM1_CUSTOMERS: u64 = 100_000;

/// The same M/M/1 on the engine, with the same bookkeeping as the bare loop
/// (the `mmc` support model also keeps histograms and batch means, which
/// would blur the engine's own cost).
struct EngineMm1 {
    interarrival: Sampler,
    service: Sampler,
    arrivals_rng: SimRng,
    service_rng: SimRng,
    queue: VecDeque<SimTime>,
    served: u64,
    total_ns: u64,
}

#[derive(Clone, Copy)]
enum Mm1Event {
    Arrival,
    Departure,
}

impl Model for EngineMm1 {
    type Event = Mm1Event;
    #[inline]
    fn handle(&mut self, event: Mm1Event, ctx: &mut Context<'_, Mm1Event>) {
        let now = ctx.now();
        match event {
            Mm1Event::Departure => {
                let arrived = self.queue.pop_front().expect("a departure has a customer");
                self.total_ns = self.total_ns.wrapping_add((now - arrived).as_nanos());
                self.served += 1;
                if !self.queue.is_empty() {
                    ctx.schedule_in(self.service.sample(&mut self.service_rng), Mm1Event::Departure);
                }
            }
            Mm1Event::Arrival => {
                self.queue.push_back(now);
                if self.queue.len() == 1 {
                    ctx.schedule_in(self.service.sample(&mut self.service_rng), Mm1Event::Departure);
                }
                ctx.schedule_in(self.interarrival.sample(&mut self.arrivals_rng), Mm1Event::Arrival);
            }
        }
    }
}

fn engine_mm1(customers: u64) -> (u64, u64) {
    let streams = RngStreams::new(3);
    let model = EngineMm1 {
        interarrival: exponential(SimDuration::from_secs_f64(1.0 / 80.0)),
        service: exponential(SimDuration::from_secs_f64(1.0 / 100.0)),
        arrivals_rng: streams.stream("mmc.arrivals"),
        service_rng: streams.stream("mmc.service"),
        queue: VecDeque::new(),
        served: 0,
        total_ns: 0,
    };
    let mut sim = Simulation::new(model);
    sim.schedule_at(SimTime::ZERO, Mm1Event::Arrival);
    while sim.model().served < customers {
        sim.step().expect("within limits");
    }
    (sim.events_handled(), sim.model().total_ns)
}

fn mm1(c: &mut Criterion) {
    // Both loops draw the same numbers in the same order, so they simulate
    // the same customers; checked here so the comparison stays honest.
    assert_eq!(bare_mm1(1000), engine_mm1(1000), "bare and engine M/M/1 diverged");
    let mut group = c.benchmark_group("mm1");
    group.throughput(Throughput::Elements(MM1_CUSTOMERS));
    group.sample_size(20);
    group.bench_function("bare_binary_heap", |b| b.iter(|| black_box(bare_mm1(MM1_CUSTOMERS))));
    let config = mmc::MmcConfig {
        lambda: 80.0,
        mu: 100.0,
        servers: 1,
        customers: MM1_CUSTOMERS,
        warmup_customers: 0,
        batches: 1,
        seed: 3,
    };
    group.bench_function("engine", |b| b.iter(|| black_box(engine_mm1(MM1_CUSTOMERS))));
    // The validation model of tests/analytic_queues.rs, with its histogram,
    // gauge and batch means: what a measured model costs on top.
    group.bench_function("engine_instrumented", |b| b.iter(|| black_box(mmc::run_mmc(config).events)));
    group.finish();
}

criterion_group!(benches, hold, mm1);
criterion_main!(benches);
