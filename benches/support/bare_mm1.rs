//! The bare reference loop of the benches: an M/M/1 queue on a plain
//! `BinaryHeap<Reverse<(time, seq, is_departure)>>`, with the engine's RNG
//! streams and exponential sampler but no engine. Included with `#[path]`
//! by `engine.rs` and `cascade.rs`, so every bench compares against the
//! same loop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use stormglass_core::dist::{Distribution, Sampler};
use stormglass_core::rng::RngStreams;
use stormglass_core::time::SimDuration;

/// An exponential sampler with the given mean.
pub fn exponential(mean: SimDuration) -> Sampler {
    Distribution::Exponential { mean }.sampler().expect("valid mean")
}

/// Serves `customers` customers (rho = 0.8, seed 3) and returns the events
/// handled (two per customer, give or take the ones pending at the end) and
/// the summed time in system in nanoseconds.
pub fn bare_mm1(customers: u64) -> (u64, u64) {
    let streams = RngStreams::new(3);
    let mut arrivals_rng = streams.stream("mmc.arrivals");
    let mut service_rng = streams.stream("mmc.service");
    let interarrival = exponential(SimDuration::from_secs_f64(1.0 / 80.0));
    let service = exponential(SimDuration::from_secs_f64(1.0 / 100.0));
    // (time, seq, is_departure)
    let mut heap: BinaryHeap<Reverse<(u64, u64, bool)>> = BinaryHeap::new();
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut seq = 0;
    let mut served = 0;
    let mut total_ns = 0u64;
    let mut events = 0;
    heap.push(Reverse((0, seq, false)));
    while served < customers {
        let Reverse((now, _, departure)) = heap.pop().expect("arrivals never stop");
        events += 1;
        if departure {
            let arrived = queue.pop_front().expect("a departure has a customer");
            total_ns = total_ns.wrapping_add(now - arrived);
            served += 1;
            if !queue.is_empty() {
                seq += 1;
                heap.push(Reverse((now + service.sample(&mut service_rng).as_nanos(), seq, true)));
            }
        } else {
            queue.push_back(now);
            if queue.len() == 1 {
                seq += 1;
                heap.push(Reverse((now + service.sample(&mut service_rng).as_nanos(), seq, true)));
            }
            seq += 1;
            heap.push(Reverse((now + interarrival.sample(&mut arrivals_rng).as_nanos(), seq, false)));
        }
    }
    (events, total_ns)
}
