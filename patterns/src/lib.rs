//! stormglass-patterns: fault-tolerance patterns as pure state machines.
//!
//! Every pattern is a plain struct: a config (serde, validated, documented
//! defaults) and its state. Methods take `now: SimTime` (and an RNG where they
//! draw) and return a decision as data. Nothing here sleeps, schedules events
//! or reads a clock, so the same structs run inside the simulator and in a
//! real service driven by a monotonic clock.

pub mod error;
pub mod outcome;

// Part 1: breakers, retries, budgets, timeouts.
pub mod breaker;
pub mod budget;
pub mod retry;
pub mod timeout;

// Part 2: limiters, bulkheads, fallback, idempotency, the pipeline.
pub mod bulkhead;
pub mod fallback;
pub mod idempotency;
pub mod limiter;
pub mod pipeline;

pub use error::ConfigError;
pub use outcome::{AttemptOutcome, Rejection};
