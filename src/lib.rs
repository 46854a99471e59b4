//! stormglass: a deterministic discrete-event simulator for fault-tolerance patterns.
pub use stormglass_core as core;
pub use stormglass_models as models;
pub use stormglass_patterns as patterns;

pub mod testing;
