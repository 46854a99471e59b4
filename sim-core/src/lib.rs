//! stormglass-core: the deterministic virtual-time engine.
pub mod rng;
pub mod time;

pub use rng::{RngStreams, SimRng};
pub use time::{SimDuration, SimTime};
