//! The testing kit (`stormglass::testing`) used as a user would: a property
//! over 200 seeds that holds for the protected cascade and fails for the
//! unprotected one with a replayable seed, a reviewed snapshot, a proptest
//! that shrinks to a minimal breaking hang, incident CSVs and swarm mode.
//!
//! The 200-seed properties run a SHORTENED cascade (60 s of traffic, user
//! hangs over [10 s, 40 s), 10 s of drain) so 200 runs take seconds; the
//! story is the same as the 300 s seed cascade's.

use std::sync::OnceLock;

use proptest::prelude::{ProptestConfig, prop_assert, proptest};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestError, TestRng, TestRunner};
use stormglass::core::time::{SimDuration, SimTime};
use stormglass::models::config::{FaultConfig, FaultKind, Scenario};
use stormglass::models::seed::{ROUTE_ORDER, ROUTE_PRODUCTS, Variant, seed_cascade, seed_policy};
use stormglass::models::{Report, run};
use stormglass::testing::{
    FailureReason, FaultBounds, Incident, KitError, PolicyBounds, RateBounds, SEED_ENV, ScenarioSource, SeedCheck,
    Snapshot, Swarm, check_seeds, find_worst,
};

const PROPERTY_SEEDS: std::ops::Range<u64> = 0..200;

fn s(text: &str) -> SimDuration {
    text.parse().expect("a duration")
}

fn t(text: &str) -> SimTime {
    text.parse().expect("a time")
}

/// The seed cascade, shortened: 60 s of traffic, the hang over [10 s, 40 s).
fn short_cascade(variant: Variant) -> Scenario {
    let mut scenario = seed_cascade(variant);
    scenario.duration = s("60s");
    scenario.drain = s("10s");
    scenario.faults = vec![hang(t("10s"), t("40s"))];
    scenario
}

fn hang(from: SimTime, until: SimTime) -> FaultConfig {
    FaultConfig { target: "user".into(), replica: None, from, until, kind: FaultKind::Hang }
}

/// The property of the issue: GET /products stays above 99% while user hangs.
fn products_stay_up_during_the_hang(report: &Report) -> Result<(), String> {
    let during = report.routes[ROUTE_PRODUCTS].availability_during_faults.ok_or("the run had no fault")?;
    if during > 0.99 {
        Ok(())
    } else {
        Err(format!("{ROUTE_PRODUCTS} availability during the hang is {during:.4}, not above 0.99"))
    }
}

/// The check every test of the unprotected property makes, so the replay
/// command names a test that really reproduces the failure.
fn unprotected_check() -> Result<stormglass::testing::Passed, KitError> {
    SeedCheck::new()
        .test("unprotected_cascade_fails_the_property_at_a_replayable_seed")
        .save_failing_scenario_in(env!("CARGO_TARGET_TMPDIR"))
        .run(&short_cascade(Variant::Unprotected), PROPERTY_SEEDS, products_stay_up_during_the_hang)
}

fn unprotected_failure() -> &'static KitError {
    static FAILURE: OnceLock<KitError> = OnceLock::new();
    FAILURE.get_or_init(|| unprotected_check().expect_err("the unprotected cascade must fail the property"))
}

#[test]
fn protected_cascade_keeps_products_up_for_200_seeds() {
    let passed = check_seeds(&short_cascade(Variant::Protected), PROPERTY_SEEDS, products_stay_up_during_the_hang)
        .unwrap_or_else(|e| panic!("{e}"));
    match passed.pinned {
        Some(seed) => assert_eq!(passed.count, 1, "pinned to {seed}"),
        None => assert_eq!(passed.count, 200),
    }
}

#[test]
fn unprotected_cascade_fails_the_property_at_a_replayable_seed() {
    let error = unprotected_failure();
    // Printed so the child run of `the_replay_command_reruns_exactly_the_failing_seed` can be read.
    println!("{error}");
    let failure = error.seed_failure().expect("a seed failure, not a setup error");
    let FailureReason::Predicate(why) = &failure.reason else { panic!("the run itself failed: {failure}") };
    assert!(why.starts_with("GET /products availability during the hang is 0."), "{why}");
    match std::env::var(SEED_ENV) {
        // Pinned: only that seed ran.
        Ok(pin) => assert_eq!(failure.seed.to_string(), pin),
        // The kit stops at the first failing seed: nothing before it passed.
        Err(_) => assert_eq!((failure.seed, failure.passed_count), (PROPERTY_SEEDS.start, 0)),
    }
}

#[test]
fn the_failure_message_names_the_seed_and_both_replay_commands() {
    let error = unprotected_failure();
    let seed = error.seed_failure().expect("a seed failure").seed;
    let text = error.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(&format!("seed {seed} failed: GET /products availability during the hang is ")));
    assert!(
        lines.contains(&&*format!(
            "  replay the test: STORMGLASS_SEED={seed} cargo test unprotected_cascade_fails_the_property_at_a_replayable_seed"
        )),
        "{text}"
    );
    // The CLI command names the failing scenario itself, saved as RON.
    let file = format!(
        "{}/unprotected_cascade_fails_the_property_at_a_replayable_seed-seed-{seed}.ron",
        env!("CARGO_TARGET_TMPDIR")
    );
    assert!(lines.contains(&&*format!("  replay the run:  stormglass run {file} --seed {seed}")), "{text}");
    let saved = Scenario::from_ron(&std::fs::read_to_string(&file).expect("the saved scenario")).expect("it parses");
    assert_eq!(saved, short_cascade(Variant::Unprotected).scenario(seed));
}

#[test]
fn rerunning_the_failing_seed_reproduces_the_report_byte_for_byte() {
    let failure = unprotected_failure().seed_failure().expect("a seed failure");
    let recorded = failure.report.as_deref().expect("the failing report");
    let rerun = run(&short_cascade(Variant::Unprotected).scenario(failure.seed)).expect("the rerun");
    assert_eq!(rerun.seed, failure.seed);
    assert_eq!(ron::to_string(&rerun).unwrap(), ron::to_string(recorded).unwrap());
    assert_eq!(serde_json::to_string(&rerun).unwrap(), serde_json::to_string(recorded).unwrap());
}

/// Runs this test binary's unprotected property as a child with the seed
/// pinned, as the printed command does, and reads what it printed.
#[test]
fn the_replay_command_reruns_exactly_the_failing_seed() {
    if std::env::var(SEED_ENV).is_ok() {
        return; // already a replay; do not recurse
    }
    let seed = 137; // any seed fails; a pinned one must be the only one run
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["unprotected_cascade_fails_the_property_at_a_replayable_seed", "--exact", "--nocapture"])
        .env(SEED_ENV, seed.to_string())
        .output()
        .expect("the child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("seed {seed} failed: ")), "{stdout}");
    assert!(stdout.contains("seed pinned by STORMGLASS_SEED"), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
fn a_bad_seed_pin_is_an_error_naming_the_variable() {
    if std::env::var(SEED_ENV).is_ok() {
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["protected_cascade_keeps_products_up_for_200_seeds", "--exact"])
        .env(SEED_ENV, "forty-two")
        .output()
        .expect("the child test runs");
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success());
    assert!(all.contains("STORMGLASS_SEED: must be an unsigned 64-bit integer, got \"forty-two\""), "{all}");
}

#[test]
fn snapshot_protected_short_cascade() {
    // 100 s rather than 60 s, so the breaker (open 60 s from ~15 s) is seen
    // going half-open and closing after user heals at 40 s.
    let mut scenario = short_cascade(Variant::Protected);
    scenario.duration = s("100s");
    let report = run(&scenario).expect("the run");
    // The event count moves with any engine change that keeps the story; it
    // is not what this snapshot pins.
    let text = Snapshot::new().step(5).redact("events").render_report(&report);
    insta::assert_snapshot!("testing_kit_protected_short_cascade", text);
}

/// The first input the runner finds failing, shrunk.
fn minimal_failure<S: Strategy>(strategy: S, cases: u32, test: impl Fn(&S::Value) -> bool) -> S::Value {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&strategy, |value| {
        proptest::prop_assert!(test(&value));
        Ok(())
    }) {
        Err(TestError::Fail(_, value)) => value,
        other => panic!("expected a shrunk failure, got {other:?}"),
    }
}

/// GET /products over the whole short run, with one user hang.
fn products_availability_with(fault: &FaultConfig) -> f64 {
    let mut scenario = short_cascade(Variant::Unprotected);
    scenario.faults = vec![fault.clone()];
    run(&scenario).expect("the run").routes[ROUTE_PRODUCTS].availability
}

#[test]
fn proptest_shrinks_to_a_minimal_hang_that_breaks_products() {
    let bounds = FaultBounds::new(&["user"], vec![FaultKind::Hang], t("10s")..=t("20s"), s("1ms")..=s("30s"));
    let minimal = minimal_failure(bounds.strategy().unwrap(), 16, |fault| products_availability_with(fault) >= 0.99);
    let length = minimal.until - minimal.from;
    eprintln!("minimal breaking hang: {} from {} ({length})", minimal.target, minimal.from);
    // Shrinking moves the start to its lower bound...
    assert_eq!(minimal.from, t("10s"));
    // ...and the length down to a boundary: this hang breaks /products, one
    // millisecond less does not.
    assert!(products_availability_with(&minimal) < 0.99);
    let shorter = FaultConfig { until: minimal.until - SimDuration::from_millis(1), ..minimal.clone() };
    assert!(products_availability_with(&shorter) >= 0.99, "{length} is not minimal");
    // A fraction of a second is enough: user calls reach order at ~100/s and
    // each one a hang swallows holds an order worker for the 30 s read
    // timeout, so ~0.3 s of hang pins ~30 of order's 32 workers; the two
    // left cannot carry the load, order's queue and then the gateway's
    // workers fill, and /products fails for the next 30 s. (Found: 309 ms.)
    assert!(length < s("1s"), "{length}");
}

#[test]
fn an_incident_from_csv_runs_against_candidate_policies() {
    let incident = Incident::from_csv(
        Some("time,rps\n0s,150\n20s,250\n60s,200\n"),
        "target,kind,from,until\n# the night of the outage\nuser,hang,10s,40s\n",
    )
    .expect("the incident parses");
    let base = short_cascade(Variant::Unprotected);
    let results = incident
        .compare(&base, "order", "user", &[("as deployed", None), ("seed policy", Some(seed_policy()))], 7)
        .expect("both candidates run");
    let availability = |i: usize| results[i].1.routes[ROUTE_PRODUCTS].availability_during_faults.unwrap();
    assert!(availability(0) < 0.5, "as deployed: {}", availability(0));
    assert!(availability(1) > 0.99, "seed policy: {}", availability(1));
    // Orders are served degraded under the seed policy.
    assert!(results[1].1.routes[ROUTE_ORDER].degraded > 0);
}

#[test]
fn incident_csv_errors_name_line_and_column() {
    let check = |result: Result<Incident, KitError>, expected: &str| {
        assert_eq!(result.unwrap_err().to_string(), expected);
    };
    check(
        Incident::from_csv(Some("0s,10\n5s, -3\n"), ""),
        "rate csv: line 2, column 5: rps must be between 0 and 10000000",
    );
    check(
        Incident::from_csv(Some("0s,10\n5q,3\n"), ""),
        "rate csv: line 2, column 1: time must be a time such as 90s or 1.5m, got \"5q\"",
    );
    check(
        Incident::from_csv(None, "user,hang,10s\n"),
        "faults csv: line 1, column 1: expected 4 fields (target,kind,from,until), found 3",
    );
    check(Incident::from_csv(None, "user,hang,10s,5s\n"), "faults csv: line 1, column 15: until must be after from");
    check(
        Incident::from_csv(None, "\nuser,errors:x:503,1s,5s\n"),
        "faults csv: line 2, column 6: errors: probability must be a number, got \"x\"",
    );
}

#[test]
fn swarm_finds_the_worst_schedule_of_the_protected_cascade_deterministically() {
    let mut base = short_cascade(Variant::Protected);
    base.faults.clear();
    let bounds = FaultBounds::new(
        &["user", "product", "order"],
        vec![FaultKind::Hang, FaultKind::Crash],
        t("5s")..=t("40s"),
        s("1s")..=s("15s"),
    );
    let swarm = Swarm::new(base, bounds, 1..=2).unwrap().with_policy("order", "user", PolicyBounds::default()).unwrap();
    let worst = find_worst(&swarm, 0..12, |r| r.summary.availability).expect("the swarm runs");
    let again = find_worst(&swarm, 0..12, |r| r.summary.availability).expect("the swarm runs");
    assert_eq!((worst.seed, &worst.scenario), (again.seed, &again.scenario));
    assert_eq!(worst.runs, if std::env::var(SEED_ENV).is_ok() { 1 } else { 12 });
    assert_eq!(worst.scenario, swarm.scenario(worst.seed));
    assert!(worst.metric < 1.0, "some fault hurt availability");
    eprintln!("worst seed {} availability {}: {:?}", worst.seed, worst.metric, worst.scenario.faults);
}

#[test]
fn a_check_stops_at_the_first_failing_seed_and_counts_those_before() {
    let mut tiny = short_cascade(Variant::Protected);
    tiny.duration = s("2s");
    tiny.drain = s("1s");
    let error = SeedCheck::new()
        .ignore_seed_env()
        .run(&tiny, 100..110, |report: &Report| if report.seed == 104 { Err("seed 104 is cursed") } else { Ok(()) })
        .unwrap_err();
    let failure = error.seed_failure().expect("a seed failure");
    assert_eq!((failure.seed, failure.passed_count, failure.seeds.clone()), (104, 4, 100..110));
    // Run in parallel chunks, the same seed is named, with the same message.
    let parallel = SeedCheck::new()
        .ignore_seed_env()
        .run_parallel(&tiny, 100..110, 3, |report: &Report| {
            if report.seed == 104 || report.seed == 105 { Err("seed 104 is cursed") } else { Ok(()) }
        })
        .unwrap_err();
    assert_eq!(parallel.to_string(), error.to_string());
    assert!(error.to_string().contains("seed 104 failed: seed 104 is cursed\n  4 seeds of 100..110 passed before it"));
}

#[test]
fn invalid_bounds_are_errors_naming_the_field() {
    let empty_start = FaultBounds::new(&["user"], vec![FaultKind::Hang], t("20s")..=t("10s"), s("1s")..=s("2s"));
    assert_eq!(
        empty_start.strategy().map(|_| ()).unwrap_err().to_string(),
        "invalid input: fault_bounds.start: must not be an empty range"
    );
    let unknown = FaultBounds::new(&["usr"], vec![FaultKind::Hang], t("1s")..=t("2s"), s("1s")..=s("2s"));
    assert_eq!(
        Swarm::new(short_cascade(Variant::Protected), unknown, 1..=1).unwrap_err().to_string(),
        "invalid input: fault_bounds.targets[0]: names no service"
    );
    let zero_attempts = PolicyBounds { attempts_max: 0..=3, ..PolicyBounds::default() };
    assert_eq!(
        zero_attempts.strategy().map(|_| ()).unwrap_err().to_string(),
        "invalid input: policy_bounds.attempts_max: must start at 1 or more"
    );
}

#[test]
fn widened_bulkhead_bounds_draw_queued_and_queue_less_bulkheads_that_all_validate() {
    use stormglass::patterns::bulkhead::BulkheadConfig;
    let bounds = PolicyBounds {
        bulkhead_queue_capacity: 0..=4,
        bulkhead_max_wait: s("0s")..=s("3ms"),
        ..PolicyBounds::default()
    };
    let mut rng = stormglass::core::rng::SimRng::from_seed_u64(11);
    let mut queued = 0;
    for _ in 0..200 {
        let params = bounds.sample(&mut rng).unwrap();
        let policy = params.apply_to(&seed_policy());
        assert!(policy.validate().is_ok(), "{params:?}: {:?}", policy.validate());
        let Some(BulkheadConfig::Semaphore(semaphore)) = policy.bulkhead else { panic!("a semaphore bulkhead") };
        // A queue only with both a place and a wait: 0 of either means none.
        let expect_queue = params.bulkhead_queue_capacity > 0 && params.bulkhead_max_wait > SimDuration::ZERO;
        assert_eq!(semaphore.queue_capacity > 0, expect_queue, "{params:?}");
        queued += usize::from(expect_queue);
    }
    // 4 of 5 capacities and 3 of 4 waits are above zero: ~60% queued.
    assert!((80..=160).contains(&queued), "{queued} of 200 queued");
    let default = PolicyBounds::default().sample(&mut rng).unwrap();
    assert_eq!((default.bulkhead_queue_capacity, default.bulkhead_max_wait), (0, SimDuration::ZERO));
    // Parameters and bounds saved before the queue knobs existed still load,
    // as queue-less.
    let saved_without_queue_knobs = |value: serde_json::Value| {
        let mut value = value;
        value
            .as_object_mut()
            .unwrap()
            .retain(|field, _| !field.starts_with("bulkhead_") || field.ends_with("concurrent"));
        value
    };
    let saved = saved_without_queue_knobs(serde_json::to_value(bounds.sample(&mut rng).unwrap()).unwrap());
    let old: stormglass::testing::PolicyParams = serde_json::from_value(saved).unwrap();
    assert_eq!((old.bulkhead_queue_capacity, old.bulkhead_max_wait), (0, SimDuration::ZERO));
    let saved = saved_without_queue_knobs(serde_json::to_value(&bounds).unwrap());
    let old: PolicyBounds = serde_json::from_value(saved).unwrap();
    assert_eq!(
        old,
        PolicyBounds { bulkhead_max_concurrent: bounds.bulkhead_max_concurrent, ..PolicyBounds::default() }
    );
}

fn fixed_config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(fixed_config(64))]

    /// Every generated rate profile and fault schedule makes a valid scenario.
    #[test]
    fn generated_profiles_and_schedules_are_valid(
        rate in RateBounds { rps: 1..=400, horizon: s("60s") }.strategy().unwrap(),
        faults in stormglass::testing::fault_schedule(
            &FaultBounds::new(&["user", "product"], vec![FaultKind::Hang, FaultKind::Crash], t("0s")..=t("50s"), s("1ms")..=s("10s")),
            0..=3,
        ).unwrap(),
        params in PolicyBounds {
            bulkhead_queue_capacity: 0..=32,
            bulkhead_max_wait: s("0s")..=s("500ms"),
            ..PolicyBounds::default()
        }.strategy().unwrap(),
    ) {
        let mut scenario = short_cascade(Variant::Protected);
        scenario.clients[0].rate = Some(rate);
        scenario.faults = faults;
        let scenario = stormglass::testing::with_policy(&scenario, "order", "user", params.apply_to(&seed_policy())).unwrap();
        prop_assert!(scenario.validate().is_ok(), "{:?}", scenario.validate());
    }
}

proptest! {
    #![proptest_config(fixed_config(8))]

    /// A property over policy parameters: with any breaker threshold and read
    /// timeout in these bounds (and the seed's bulkhead of 10, with or
    /// without a short wait queue), the protected cascade keeps GET
    /// /products up while user hangs.
    #[test]
    fn products_stay_up_for_any_breaker_threshold_and_timeout_in_bounds(
        params in PolicyBounds {
            read_timeout: s("100ms")..=s("5s"),
            attempts_max: 1..=3,
            breaker_failure_threshold: 1..=20,
            breaker_recovery: s("5s")..=s("60s"),
            bulkhead_max_concurrent: 10..=10,
            bulkhead_queue_capacity: 0..=10,
            bulkhead_max_wait: s("0s")..=s("200ms"),
        }.strategy().unwrap()
    ) {
        let scenario = short_cascade(Variant::Protected);
        let scenario = stormglass::testing::with_policy(&scenario, "order", "user", params.apply_to(&seed_policy())).unwrap();
        let report = run(&scenario).unwrap();
        prop_assert!(products_stay_up_during_the_hang(&report).is_ok(), "{params:?}: {:?}", products_stay_up_during_the_hang(&report));
    }
}
