//! Property tests over seeds, and the seed pin.

use std::fmt;
use std::ops::Range;

use stormglass_models::{Report, RunError, Scenario};

use super::KitError;

/// The environment variable that pins the seed of every run made through
/// the kit: `STORMGLASS_SEED=17 cargo test my_property` reruns seed 17 only.
pub const SEED_ENV: &str = "STORMGLASS_SEED";

/// Most seeds one check may run: a bound, so a typo in a range cannot run for hours.
pub const SEEDS_MAX: u64 = 1_000_000;

/// The seed pinned by [`SEED_ENV`], if set; an error naming the variable if
/// its value is not an unsigned 64-bit integer.
///
/// ```
/// // Unset in doctests, so nothing is pinned.
/// assert_eq!(stormglass::testing::pinned_seed().unwrap(), None);
/// ```
pub fn pinned_seed() -> Result<Option<u64>, KitError> {
    match std::env::var(SEED_ENV) {
        Ok(value) => value.trim().parse::<u64>().map(Some).map_err(|_| KitError::Env {
            var: SEED_ENV,
            value,
            rule: "must be an unsigned 64-bit integer",
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => Err(KitError::Env {
            var: SEED_ENV,
            value: value.to_string_lossy().into_owned(),
            rule: "must be an unsigned 64-bit integer",
        }),
    }
}

/// Something that gives a scenario for a seed: a [`Scenario`] (its seed is
/// replaced), a closure `Fn(u64) -> Scenario`, or a [`Swarm`](super::Swarm).
///
/// ```
/// use stormglass::models::seed::{Variant, seed_cascade};
/// use stormglass::testing::ScenarioSource;
///
/// let scenario = seed_cascade(Variant::Protected);
/// assert_eq!(scenario.scenario(7).seed, 7);
/// let builder = |seed: u64| { let mut s = seed_cascade(Variant::Unprotected); s.seed = seed; s };
/// assert_eq!(builder.scenario(9).seed, 9);
/// ```
pub trait ScenarioSource {
    /// The scenario to run for `seed`.
    fn scenario(&self, seed: u64) -> Scenario;
}

impl ScenarioSource for Scenario {
    fn scenario(&self, seed: u64) -> Scenario {
        let mut scenario = self.clone();
        scenario.seed = seed;
        scenario
    }
}

impl<F: Fn(u64) -> Scenario> ScenarioSource for F {
    fn scenario(&self, seed: u64) -> Scenario {
        self(seed)
    }
}

/// What a predicate answers: `bool`, or `Result<(), E>` whose error says why.
///
/// ```
/// use stormglass::testing::Verdict;
///
/// assert_eq!(true.into_result(), Ok(()));
/// assert_eq!(Err::<(), _>("too slow").into_result(), Err("too slow".to_string()));
/// ```
pub trait Verdict {
    /// `Ok` for a pass, `Err(why)` for a failure.
    fn into_result(self) -> Result<(), String>;
}

impl Verdict for bool {
    fn into_result(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("the predicate returned false".into()) }
    }
}

impl<E: fmt::Display> Verdict for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// How to replay one seed: the test command and the CLI command.
///
/// ```
/// use stormglass::testing::Replay;
///
/// let replay = Replay { seed: 3, test: Some("my_property".into()), scenario_file: None };
/// assert_eq!(replay.cargo_test(), "STORMGLASS_SEED=3 cargo test my_property");
/// assert_eq!(replay.cli(), "stormglass run <scenario.ron> --seed 3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The seed.
    pub seed: u64,
    /// The test's name, as `cargo test` filters it.
    pub test: Option<String>,
    /// The scenario file the CLI would run.
    pub scenario_file: Option<String>,
}

impl Replay {
    /// `STORMGLASS_SEED=<seed> cargo test <test>`.
    pub fn cargo_test(&self) -> String {
        format!("{SEED_ENV}={} cargo test {}", self.seed, self.test.as_deref().unwrap_or("<test name>"))
    }

    /// `stormglass run <file> --seed <seed>`.
    pub fn cli(&self) -> String {
        format!("stormglass run {} --seed {}", self.scenario_file.as_deref().unwrap_or("<scenario.ron>"), self.seed)
    }
}

/// Why a seed failed.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureReason {
    /// The predicate said no, and why.
    Predicate(String),
    /// The run itself stopped with an error.
    Run(RunError),
}

/// The first seed that failed a property, with its replay commands.
///
/// Its `Display` is the message a test prints:
///
/// ```text
/// seed 0 failed: GET /products availability 0.42 is below 0.99
///   0 seeds of 0..200 passed before it
///   replay the test: STORMGLASS_SEED=0 cargo test my_property
///   replay the run:  stormglass run scenarios/x.ron --seed 0
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SeedFailure {
    /// The failing seed.
    pub seed: u64,
    /// Why it failed.
    pub reason: FailureReason,
    /// The seeds asked for.
    pub seeds: Range<u64>,
    /// Seeds that passed before this one.
    pub passed_count: u64,
    /// Whether [`SEED_ENV`] pinned the seed.
    pub pinned: bool,
    /// How to replay it.
    pub replay: Replay,
    /// The failing run's report (none when the run stopped with an error).
    pub report: Option<Box<Report>>,
}

impl fmt::Display for SeedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            FailureReason::Predicate(why) => writeln!(f, "seed {} failed: {why}", self.seed)?,
            FailureReason::Run(error) => writeln!(f, "seed {} failed: {error}", self.seed)?,
        }
        if self.pinned {
            writeln!(f, "  seed pinned by {SEED_ENV}")?;
        } else {
            writeln!(f, "  {} seeds of {:?} passed before it", self.passed_count, self.seeds)?;
        }
        writeln!(f, "  replay the test: {}", self.replay.cargo_test())?;
        write!(f, "  replay the run:  {}", self.replay.cli())
    }
}

/// Seeds that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passed {
    /// How many seeds ran and passed.
    pub count: u64,
    /// The seed [`SEED_ENV`] pinned, if it did.
    pub pinned: Option<u64>,
}

/// A property check over seeds, with what its failure message names.
///
/// ```
/// use stormglass::models::seed::{ROUTE_PRODUCTS, Variant, seed_cascade};
/// use stormglass::testing::SeedCheck;
///
/// let mut scenario = seed_cascade(Variant::Protected);
/// scenario.duration = "3s".parse().unwrap();
/// scenario.drain = "1s".parse().unwrap();
/// let check = SeedCheck::new().test("products_stay_up").scenario_file("scenarios/seed-cascade-protected.ron");
/// let err = check.run(&scenario, 0..5, |_| Err::<(), _>("always fails")).unwrap_err();
/// let failure = err.seed_failure().unwrap();
/// assert_eq!(failure.seed, 0);
/// assert!(err.to_string().contains("STORMGLASS_SEED=0 cargo test products_stay_up"));
/// assert!(err.to_string().contains("stormglass run scenarios/seed-cascade-protected.ron --seed 0"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedCheck {
    test: Option<String>,
    scenario_file: Option<String>,
    save_dir: Option<std::path::PathBuf>,
    ignore_env: bool,
}

impl SeedCheck {
    /// A check named after the current test thread (libtest names it after
    /// the test), with no scenario file.
    pub fn new() -> Self {
        let test = std::thread::current().name().filter(|n| *n != "main").map(str::to_string);
        SeedCheck { test, scenario_file: None, save_dir: None, ignore_env: false }
    }

    /// The test name the replay command filters on.
    pub fn test(mut self, name: &str) -> Self {
        self.test = Some(name.to_string());
        self
    }

    /// The scenario file the CLI replay command runs.
    pub fn scenario_file(mut self, path: &str) -> Self {
        self.scenario_file = Some(path.to_string());
        self
    }

    /// On a failure, writes the failing seed's scenario as RON into `dir`
    /// (`<test>-seed-<seed>.ron`) and names that file in the CLI replay
    /// command, so `stormglass run` replays the very scenario that failed.
    /// In an integration test, `env!("CARGO_TARGET_TMPDIR")` is a good `dir`.
    pub fn save_failing_scenario_in(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.save_dir = Some(dir.into());
        self
    }

    /// The failure of `seed`, its scenario saved if asked.
    #[allow(clippy::too_many_arguments)]
    fn failure<S: ScenarioSource + ?Sized>(
        &self,
        source: &S,
        seed: u64,
        reason: FailureReason,
        report: Option<Box<Report>>,
        seeds: &Range<u64>,
        passed_count: u64,
        pinned: bool,
    ) -> KitError {
        let mut replay = self.replay(seed);
        if let Some(dir) = &self.save_dir {
            let name: String = self
                .test
                .as_deref()
                .unwrap_or("check")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
                .collect();
            let path = dir.join(format!("{name}-seed-{seed}.ron"));
            let text = ron::ser::to_string_pretty(&source.scenario(seed), ron::ser::PrettyConfig::default());
            // A file that cannot be written leaves the command with the file the caller named.
            if let Ok(text) = text
                && std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, text)).is_ok()
            {
                replay.scenario_file = Some(path.display().to_string());
            }
        }
        KitError::SeedFailed(Box::new(SeedFailure {
            seed,
            reason,
            seeds: seeds.clone(),
            passed_count,
            pinned,
            replay,
            report,
        }))
    }

    /// Runs the given seeds even when [`SEED_ENV`] is set (for a test that
    /// must see a whole range, such as one checking the kit itself).
    pub fn ignore_seed_env(mut self) -> Self {
        self.ignore_env = true;
        self
    }

    /// The replay commands for `seed`.
    pub fn replay(&self, seed: u64) -> Replay {
        Replay { seed, test: self.test.clone(), scenario_file: self.scenario_file.clone() }
    }

    /// Runs `source` for each seed of `seeds` in order (or only the pinned
    /// seed) and checks `predicate` on each report; stops at the first
    /// failure.
    pub fn run<S, P, V>(&self, source: &S, seeds: Range<u64>, predicate: P) -> Result<Passed, KitError>
    where
        S: ScenarioSource + ?Sized,
        P: Fn(&Report) -> V,
        V: Verdict,
    {
        let pinned = if self.ignore_env { None } else { pinned_seed()? };
        let count = seeds.end.saturating_sub(seeds.start);
        if pinned.is_none() && count > SEEDS_MAX {
            return Err(stormglass_core::error::ConfigError::new("seeds", "must hold at most 1000000 seeds").into());
        }
        let order: Box<dyn Iterator<Item = u64>> = match pinned {
            Some(seed) => Box::new(std::iter::once(seed)),
            None => Box::new(seeds.clone()),
        };
        let mut passed_count = 0;
        for seed in order {
            let failure =
                |reason, report| self.failure(source, seed, reason, report, &seeds, passed_count, pinned.is_some());
            let report = match stormglass_models::run(&source.scenario(seed)) {
                Ok(report) => report,
                Err(error) => return Err(failure(FailureReason::Run(error), None)),
            };
            if let Err(why) = predicate(&report).into_result() {
                return Err(failure(FailureReason::Predicate(why), Some(Box::new(report))));
            }
            passed_count += 1;
        }
        Ok(Passed { count: passed_count, pinned })
    }
}

/// A seed's outcome in a parallel chunk: a pass, or why it failed and its report.
type Outcome = Result<(), (FailureReason, Option<Box<Report>>)>;

impl SeedCheck {
    /// Like [`SeedCheck::run`], with seeds run on rayon's threads in chunks
    /// of `chunk_size`; the result is the same as `run`'s: the lowest failing
    /// seed of the first chunk that fails, with the count of seeds before it.
    /// Each seed is still one single-threaded, deterministic run.
    ///
    /// ```
    /// use stormglass::models::seed::{Variant, seed_cascade};
    /// use stormglass::testing::SeedCheck;
    ///
    /// let mut scenario = seed_cascade(Variant::Protected);
    /// scenario.duration = "2s".parse().unwrap();
    /// scenario.drain = "1s".parse().unwrap();
    /// let check = SeedCheck::new().ignore_seed_env();
    /// let err = check.run_parallel(&scenario, 0..20, 8, |r| r.seed != 11 && r.seed != 13).unwrap_err();
    /// assert_eq!(err.seed_failure().unwrap().seed, 11);
    /// assert_eq!(err.seed_failure().unwrap().passed_count, 11);
    /// ```
    pub fn run_parallel<S, P, V>(
        &self,
        source: &S,
        seeds: Range<u64>,
        chunk_size: usize,
        predicate: P,
    ) -> Result<Passed, KitError>
    where
        S: ScenarioSource + Sync + ?Sized,
        P: Fn(&Report) -> V + Sync,
        V: Verdict,
    {
        use rayon::prelude::*;
        let pinned = if self.ignore_env { None } else { pinned_seed()? };
        if pinned.is_some() {
            return self.run(source, seeds, predicate);
        }
        let count = seeds.end.saturating_sub(seeds.start);
        if count > SEEDS_MAX {
            return Err(stormglass_core::error::ConfigError::new("seeds", "must hold at most 1000000 seeds").into());
        }
        let chunk_size = chunk_size.max(1) as u64;
        let mut start = seeds.start;
        while start < seeds.end {
            let end = start.saturating_add(chunk_size).min(seeds.end);
            // Results come back in seed order, so the first error is the lowest seed.
            let outcomes: Vec<(u64, Outcome)> = (start..end)
                .into_par_iter()
                .map(|seed| {
                    let outcome = match stormglass_models::run(&source.scenario(seed)) {
                        Err(error) => Err((FailureReason::Run(error), None)),
                        Ok(report) => match predicate(&report).into_result() {
                            Ok(()) => Ok(()),
                            Err(why) => Err((FailureReason::Predicate(why), Some(Box::new(report)))),
                        },
                    };
                    (seed, outcome)
                })
                .collect();
            for (seed, outcome) in outcomes {
                if let Err((reason, report)) = outcome {
                    return Err(self.failure(source, seed, reason, report, &seeds, seed - seeds.start, false));
                }
            }
            start = end;
        }
        Ok(Passed { count, pinned: None })
    }
}

/// [`SeedCheck::new`]`.run(...)`: checks `predicate` on the report of every
/// seed of `seeds` (or the pinned one), stopping at the first failure.
///
/// ```
/// use stormglass::models::seed::{Variant, seed_cascade};
/// use stormglass::testing::check_seeds;
///
/// let mut scenario = seed_cascade(Variant::Protected);
/// scenario.duration = "2s".parse().unwrap();
/// scenario.drain = "1s".parse().unwrap();
/// assert_eq!(check_seeds(&scenario, 10..12, |r| r.summary.requests > 0).unwrap().count, 2);
/// ```
pub fn check_seeds<S, P, V>(source: &S, seeds: Range<u64>, predicate: P) -> Result<Passed, KitError>
where
    S: ScenarioSource + ?Sized,
    P: Fn(&Report) -> V,
    V: Verdict,
{
    SeedCheck::new().run(source, seeds, predicate)
}

/// Like [`check_seeds`], panicking with the failure message (seed and
/// replay commands) on the first failing seed.
///
/// ```should_panic
/// use stormglass::models::seed::{Variant, seed_cascade};
/// use stormglass::testing::assert_seeds;
///
/// let mut scenario = seed_cascade(Variant::Protected);
/// scenario.duration = "2s".parse().unwrap();
/// assert_seeds(&scenario, 0..3, |r| r.summary.requests == 0);
/// ```
pub fn assert_seeds<S, P, V>(source: &S, seeds: Range<u64>, predicate: P) -> Passed
where
    S: ScenarioSource + ?Sized,
    P: Fn(&Report) -> V,
    V: Verdict,
{
    match check_seeds(source, seeds, predicate) {
        Ok(passed) => passed,
        Err(error) => panic!("{error}"),
    }
}

/// Runs `source` once, with the pinned seed if [`SEED_ENV`] is set and
/// `seed` otherwise.
///
/// ```
/// use stormglass::models::seed::{Variant, seed_cascade};
///
/// let mut scenario = seed_cascade(Variant::Protected);
/// scenario.duration = "2s".parse().unwrap();
/// let report = stormglass::testing::run_pinned(&scenario, 5).unwrap();
/// assert_eq!(report.seed, 5);
/// ```
pub fn run_pinned<S: ScenarioSource + ?Sized>(source: &S, seed: u64) -> Result<Report, KitError> {
    let seed = pinned_seed()?.unwrap_or(seed);
    Ok(stormglass_models::run(&source.scenario(seed))?)
}
