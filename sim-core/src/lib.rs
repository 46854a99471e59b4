//! stormglass-core: the deterministic virtual-time engine of stormglass.
//!
//! It knows nothing about services or patterns: it offers virtual time, an
//! event queue, a run loop over a user model, named random streams,
//! distributions of durations, and metrics whose memory does not grow with the
//! number of samples.
//!
//! # Example: an M/M/1 queue
//!
//! ```
//! use stormglass_core::dist::Distribution;
//! use stormglass_core::metrics::Histogram;
//! use stormglass_core::rng::{RngStreams, SimRng};
//! use stormglass_core::sim::{Context, Model, Simulation};
//! use stormglass_core::time::{SimDuration, SimTime};
//! use stormglass_core::dist::Sampler;
//!
//! #[derive(Clone, Copy)]
//! enum Event { Arrival, Departure }
//!
//! struct MM1 {
//!     gaps: Sampler, service: Sampler,
//!     arrivals_rng: SimRng, service_rng: SimRng,
//!     waiting: std::collections::VecDeque<SimTime>, busy_since: Option<SimTime>,
//!     time_in_system: Histogram,
//! }
//!
//! impl Model for MM1 {
//!     type Event = Event;
//!     fn handle(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
//!         match event {
//!             Event::Arrival => {
//!                 self.waiting.push_back(ctx.now());
//!                 if self.waiting.len() == 1 {
//!                     ctx.schedule_in(self.service.sample(&mut self.service_rng), Event::Departure);
//!                 }
//!                 ctx.schedule_in(self.gaps.sample(&mut self.arrivals_rng), Event::Arrival);
//!             }
//!             Event::Departure => {
//!                 let arrived = self.waiting.pop_front().unwrap();
//!                 self.time_in_system.record(ctx.now() - arrived);
//!                 if !self.waiting.is_empty() {
//!                     ctx.schedule_in(self.service.sample(&mut self.service_rng), Event::Departure);
//!                 }
//!             }
//!         }
//!     }
//! }
//!
//! let streams = RngStreams::new(42);
//! let exp = |ms| Distribution::Exponential { mean: SimDuration::from_millis(ms) }.sampler().unwrap();
//! let model = MM1 {
//!     gaps: exp(10), service: exp(5),
//!     arrivals_rng: streams.stream("arrivals"), service_rng: streams.stream("service"),
//!     waiting: Default::default(), busy_since: None, time_in_system: Histogram::new(),
//! };
//! let mut sim = Simulation::new(model);
//! sim.schedule_at(SimTime::ZERO, Event::Arrival);
//! sim.run_until(SimTime::from_secs(1000)).unwrap();
//! // rho = 0.5: mean time in system 1/(mu - lambda) = 10 ms.
//! let mean = sim.model().time_in_system.mean().as_secs_f64();
//! assert!((mean - 0.010).abs() < 0.001, "{mean}");
//! ```
//!
//! # Guarantees
//!
//! 1. Time is integer nanoseconds ([`SimTime`], [`SimDuration`]); arithmetic
//!    saturates instead of wrapping.
//! 2. Events run in time order; events at the same instant run in the order
//!    they were scheduled; a cancelled event never runs.
//! 3. A run is a function of its model and its master seed: every random draw
//!    comes from a named stream ([`RngStreams`]), and a stream's draws do not
//!    depend on which other streams exist.
//! 4. Sampling is portable (`rand_distr` without `std_math`, so `libm`) and
//!    the RNG and distribution crates are pinned to exact versions.
//! 5. Nothing grows without bound: cancelled events are compacted, the event
//!    budget and time limit stop a runaway model with a [`sim::SimError`],
//!    histograms and timelines have a fixed maximum size.

pub mod ahead;
pub mod dist;
pub mod error;
mod heap;
pub mod metrics;
pub mod queue;
mod ring;
pub mod rng;
pub mod sim;
pub mod time;
pub mod timeline;

pub use error::ConfigError;
pub use rng::{RngStreams, SimRng};
pub use sim::{Context, Model, SimError, Simulation};
pub use time::{SimDuration, SimTime};
