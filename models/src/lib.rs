//! stormglass-models: clients, services, thread pools, queues, links and
//! faults, wired to the engine. This is the only crate where the patterns
//! meet the scheduler.
pub mod config;
pub mod profile;
pub mod report;
pub mod run;
pub mod seed;
pub mod story;
mod world;

pub use config::Scenario;
pub use report::Report;
pub use run::{RunError, run};
