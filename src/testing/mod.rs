//! A testing kit for people who test their own resilience settings with
//! stormglass: property tests over seeds, proptest strategies over faults,
//! rate profiles and policy parameters, stable snapshot renderings, incident
//! reproduction from CSV, and swarm mode.
//!
//! Every run made through the kit honours [`SEED_ENV`] (`STORMGLASS_SEED`):
//! when it is set, that seed and only that seed is run, so the replay command
//! a failure prints reruns exactly the failing run.
//!
//! ```
//! use stormglass::models::seed::{ROUTE_PRODUCTS, Variant, seed_cascade};
//! use stormglass::testing::check_seeds;
//!
//! let mut scenario = seed_cascade(Variant::Protected);
//! scenario.duration = "5s".parse().unwrap();
//! scenario.drain = "1s".parse().unwrap();
//! scenario.faults.clear();
//! let passed = check_seeds(&scenario, 0..2, |report| report.routes[ROUTE_PRODUCTS].availability > 0.99).unwrap();
//! assert!(passed.count >= 1);
//! ```
//!
//! Determinism: the kit draws nothing from the wall clock or the OS; swarm
//! mode derives its choices from the seed through
//! [`RngStreams`](stormglass_core::rng::RngStreams), so a seed names one
//! scenario, one run and one report, byte for byte.

mod incident;
mod seeds;
mod snapshot;
mod strategies;
mod swarm;

pub use incident::{Incident, faults_from_csv, rate_from_csv, with_policy};
pub use seeds::{
    FailureReason, Passed, Replay, SEED_ENV, ScenarioSource, SeedCheck, SeedFailure, Verdict, assert_seeds,
    check_seeds, pinned_seed, run_pinned,
};
pub use snapshot::Snapshot;
pub use strategies::{FaultBounds, PolicyBounds, PolicyParams, RateBounds, fault_schedule};
pub use swarm::{Swarm, Worst, find_worst};

use stormglass_core::error::ConfigError;
use stormglass_models::RunError;

/// Why a kit call could not do its work.
///
/// ```
/// use stormglass::testing::rate_from_csv;
///
/// let err = rate_from_csv("time,rps\n10s,abc\n").unwrap_err();
/// assert_eq!(err.to_string(), "rate csv: line 2, column 5: rps must be a number, got \"abc\"");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KitError {
    /// A CSV input that does not parse, with where.
    #[error("{input}: line {line}, column {column}: {message}")]
    Csv {
        /// Which input (`rate csv`, `faults csv`).
        input: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based character column of the offending field.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// An environment variable with a value the kit cannot use.
    #[error("{var}: {rule}, got {value:?}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Bounds or a scenario edit that breaks a rule, with the field path.
    #[error("invalid input: {0}")]
    Config(#[from] ConfigError),
    /// A run that could not produce a report.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A seed that failed a property.
    #[error("{0}")]
    SeedFailed(Box<SeedFailure>),
}

impl KitError {
    /// The failing seed, when that is what went wrong.
    ///
    /// ```
    /// use stormglass::testing::KitError;
    ///
    /// let err = KitError::Config(stormglass::core::error::ConfigError::new("x", "must be 1"));
    /// assert!(err.seed_failure().is_none());
    /// ```
    pub fn seed_failure(&self) -> Option<&SeedFailure> {
        match self {
            KitError::SeedFailed(failure) => Some(failure),
            _ => None,
        }
    }
}
