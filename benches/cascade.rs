//! The seed cascade (both variants) in simulated client requests per second
//! and events per second, beside the bare reference loop of the engine
//! benches, in the same groups; and the memory per in-flight request.
//!
//! Run (short):
//! `cargo bench --bench cascade -- --warm-up-time 1 --measurement-time 3`
//!
//! One iteration is one whole `run` of the scenario: building the world,
//! 300 s of arrivals at 200 req/s (about 60 000 client requests), the drain,
//! and the report. Both variants see the same arrivals (common random
//! numbers), so they have the same number of client requests; the protected
//! one handles more events (retries, fallbacks, breaker probes).
//!
//! - `seed_cascade_requests`: `Throughput::Elements` = client requests per
//!   run (for the bare loop: customers per iteration).
//! - `seed_cascade_events`: `Throughput::Elements` = events per run, read
//!   from `Report::events` (for the bare loop: its events per iteration).
//!
//! The bare loop is `support/bare_mm1.rs`, the same M/M/1 on a plain binary
//! heap that `engine.rs` measures; its events/s is the ceiling a loop with
//! no model at all reaches on this machine, so the cascade's ratio to it is
//! what the model costs per event.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stormglass_models::run::{in_flight_memory, run};
use stormglass_models::seed::{Variant, seed_cascade};

#[path = "support/bare_mm1.rs"]
mod bare;

/// Customers per iteration of the bare loop (two events each).
const BARE_CUSTOMERS: u64 = 100_000;

struct Case {
    name: &'static str,
    scenario: stormglass_models::Scenario,
    requests: u64,
    events: u64,
}

fn cases() -> Vec<Case> {
    [("unprotected", Variant::Unprotected), ("protected", Variant::Protected)]
        .into_iter()
        .map(|(name, variant)| {
            let scenario = seed_cascade(variant);
            let report = run(&scenario).expect("the seed cascade runs");
            Case { name, scenario, requests: report.summary.requests, events: report.events }
        })
        .collect()
}

fn print_memory(cases: &[Case]) {
    let memory = in_flight_memory();
    let limit = cases[0].scenario.limits.in_flight_max;
    println!();
    println!("memory per in-flight request or call (size_of the slab entries and queue entries):");
    println!("  call through a pipeline (OutboundCall + pipeline Call): {} B", memory.call_bytes);
    println!("  request at a replica (ServerRequest):                   {} B", memory.request_bytes);
    println!("  pending event (queue entry with payload, slot):         {} B", memory.event_bytes);
    println!(
        "  bound: limits.in_flight_max = {limit} requests and calls alive, i.e. at most {:.0} MB of slab entries",
        limit as f64 * memory.call_bytes.max(memory.request_bytes) as f64 / 1e6
    );
    for case in cases {
        println!(
            "  {}: {} client requests and {} events per run ({:.2} events per request)",
            case.name,
            case.requests,
            case.events,
            case.events as f64 / case.requests as f64
        );
    }
    println!();
}

fn cascade(c: &mut Criterion) {
    let cases = cases();
    print_memory(&cases);
    let (bare_events, _) = bare::bare_mm1(BARE_CUSTOMERS);

    let mut group = c.benchmark_group("seed_cascade_requests");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BARE_CUSTOMERS));
    group.bench_function("bare_mm1_customers", |b| b.iter(|| black_box(bare::bare_mm1(BARE_CUSTOMERS))));
    for case in &cases {
        group.throughput(Throughput::Elements(case.requests));
        group.bench_function(case.name, |b| b.iter(|| black_box(run(&case.scenario).expect("runs").events)));
    }
    group.finish();

    let mut group = c.benchmark_group("seed_cascade_events");
    group.sample_size(10);
    group.throughput(Throughput::Elements(bare_events));
    group.bench_function("bare_mm1", |b| b.iter(|| black_box(bare::bare_mm1(BARE_CUSTOMERS))));
    for case in &cases {
        group.throughput(Throughput::Elements(case.events));
        group.bench_function(case.name, |b| b.iter(|| black_box(run(&case.scenario).expect("runs").events)));
    }
    group.finish();
}

criterion_group!(benches, cascade);
criterion_main!(benches);
