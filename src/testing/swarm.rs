//! Swarm mode: the seed chooses the fault schedule and the policy
//! parameters within bounds, as deterministic simulation testing does, so a
//! range of seeds explores configurations and the worst one is named by its
//! seed.

use std::cell::Cell;
use std::ops::{Range, RangeInclusive};

use stormglass_core::error::{ConfigError, ensure};
use stormglass_core::rng::RngStreams;
use stormglass_models::{Report, Scenario};

use super::KitError;
use super::incident::with_policy;
use super::seeds::{ScenarioSource, SeedCheck};
use super::strategies::{FaultBounds, PolicyBounds, PolicyParams};

/// A base scenario whose faults (and optionally one edge's policy knobs)
/// each seed draws anew. It is a [`ScenarioSource`], so it works with
/// [`check_seeds`](super::check_seeds) and [`find_worst`].
///
/// ```
/// use stormglass::models::config::FaultKind;
/// use stormglass::models::seed::{Variant, seed_cascade};
/// use stormglass::testing::{FaultBounds, PolicyBounds, ScenarioSource, Swarm};
///
/// let bounds = FaultBounds::new(&["user", "product"], vec![FaultKind::Hang, FaultKind::Crash],
///     "10s".parse().unwrap()..="40s".parse().unwrap(), "1s".parse().unwrap()..="20s".parse().unwrap());
/// let swarm = Swarm::new(seed_cascade(Variant::Protected), bounds, 1..=2)
///     .unwrap()
///     .with_policy("order", "user", PolicyBounds::default())
///     .unwrap();
/// // The same seed always draws the same scenario.
/// assert_eq!(swarm.scenario(7), swarm.scenario(7));
/// assert!(swarm.scenario(7).validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Swarm {
    base: Scenario,
    faults: FaultBounds,
    fault_count: RangeInclusive<usize>,
    policy: Option<(String, String, PolicyBounds)>,
}

impl Swarm {
    /// A swarm over `fault_count` faults within `faults`; checks the bounds
    /// and that every target names a service of `base`.
    pub fn new(base: Scenario, faults: FaultBounds, fault_count: RangeInclusive<usize>) -> Result<Swarm, KitError> {
        faults.validate().map_err(|e| e.within("fault_bounds"))?;
        ensure(fault_count.start() <= fault_count.end(), "fault_count", "must not be an empty range")?;
        ensure(*fault_count.end() <= stormglass_models::config::ITEMS_MAX, "fault_count", "must be at most 1024")?;
        for (index, target) in faults.targets.iter().enumerate() {
            ensure(base.services.contains_key(target), &format!("fault_bounds.targets[{index}]"), "names no service")?;
        }
        Ok(Swarm { base, faults, fault_count, policy: None })
    }

    /// Lets each seed also draw the knobs of the `service -> dependency` policy.
    pub fn with_policy(mut self, service: &str, dependency: &str, bounds: PolicyBounds) -> Result<Swarm, KitError> {
        bounds.validate().map_err(|e| e.within("policy_bounds"))?;
        with_policy(&self.base, service, dependency, Default::default())?;
        self.policy = Some((service.to_string(), dependency.to_string(), bounds));
        Ok(self)
    }

    /// The policy knobs `seed` draws, if the swarm varies a policy.
    pub fn params(&self, seed: u64) -> Option<PolicyParams> {
        let (_, _, bounds) = self.policy.as_ref()?;
        bounds.sample(&mut RngStreams::new(seed).stream("testing.swarm.policy")).ok()
    }
}

impl ScenarioSource for Swarm {
    fn scenario(&self, seed: u64) -> Scenario {
        let streams = RngStreams::new(seed);
        let mut rng = streams.stream("testing.swarm.faults");
        let (lo, hi) = (*self.fault_count.start() as u64, *self.fault_count.end() as u64);
        let count = lo + rng.below(hi - lo + 1);
        let mut scenario = self.base.clone();
        scenario.seed = seed;
        // Bounds were checked in `new`, so sampling cannot fail.
        scenario.faults = (0..count).filter_map(|_| self.faults.sample(&mut rng).ok()).collect();
        if let (Some((service, dependency, _)), Some(params)) = (&self.policy, self.params(seed)) {
            let edge = &mut scenario.services.get_mut(service).expect("checked in with_policy").dependencies;
            let policy = &mut edge.get_mut(dependency).expect("checked in with_policy").policy;
            *policy = params.apply_to(policy);
        }
        scenario
    }
}

/// The worst seed of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Worst {
    /// The seed.
    pub seed: u64,
    /// Its metric (the lowest seen).
    pub metric: f64,
    /// The scenario it ran.
    pub scenario: Scenario,
    /// Its report.
    pub report: Report,
    /// How many seeds ran.
    pub runs: u64,
}

/// Runs every seed of `seeds` (or the pinned one) and returns the one with
/// the lowest `metric` (the first on ties).
///
/// ```
/// use stormglass::models::config::FaultKind;
/// use stormglass::models::seed::{ROUTE_PRODUCTS, Variant, seed_cascade};
/// use stormglass::testing::{FaultBounds, Swarm, find_worst};
///
/// let mut base = seed_cascade(Variant::Protected);
/// base.duration = "6s".parse().unwrap();
/// base.drain = "1s".parse().unwrap();
/// let bounds = FaultBounds::new(&["product"], vec![FaultKind::Crash],
///     "1s".parse().unwrap()..="3s".parse().unwrap(), "1s".parse().unwrap()..="2s".parse().unwrap());
/// let swarm = Swarm::new(base, bounds, 1..=1).unwrap();
/// let worst = find_worst(&swarm, 0..3, |r| r.routes[ROUTE_PRODUCTS].availability).unwrap();
/// assert!(worst.metric < 1.0);
/// ```
pub fn find_worst<S, M>(source: &S, seeds: Range<u64>, metric: M) -> Result<Worst, KitError>
where
    S: ScenarioSource + ?Sized,
    M: Fn(&Report) -> f64,
{
    // The predicate is `Fn`, so the running worst lives in a cell.
    let worst: Cell<Option<(u64, f64)>> = Cell::new(None);
    // Reuse the seed loop (pin, bounds, run errors with replay commands).
    let passed = SeedCheck::new().run(source, seeds, |report: &Report| {
        let value = metric(report);
        if worst.get().is_none_or(|(_, w)| value < w || w.is_nan()) {
            worst.set(Some((report.seed, value)));
        }
        true
    })?;
    let runs = passed.count;
    let (seed, value) = worst.get().ok_or_else(|| ConfigError::new("seeds", "must hold at least one seed"))?;
    let scenario = source.scenario(seed);
    let report = stormglass_models::run(&scenario)?;
    Ok(Worst { seed, metric: value, scenario, report, runs })
}
