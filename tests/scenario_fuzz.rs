//! A fuzz target for the scenario parser, run as a proptest so CI runs it
//! for a bounded number of cases: no input text may panic the parser, the
//! validator or a run of whatever validates.
//!
//! Inputs are the shipped scenarios mutated by random edits (deletions,
//! duplications, inserted tokens, extreme numbers and durations) plus text
//! from a RON-ish alphabet, so most cases reach deep into the grammar and
//! the validation rules rather than failing on the first byte. A run of a
//! mutated scenario that validates gets small event and in-flight limits, so
//! each case ends quickly whatever the mutation asked for.
//!
//! `STORMGLASS_FUZZ_CASES=100000 cargo test --test scenario_fuzz` fuzzes longer.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRunner};
use stormglass::models::{Scenario, run};

/// Tokens that stress the grammar and the rules.
const TOKENS: &[&str] = &[
    ",",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    "\"",
    "//",
    "/*",
    "\\",
    "-1",
    "0",
    "1e309",
    "-0.0",
    "NaN",
    "inf",
    "18446744073709551616",
    "4294967296",
    "\"0s\"",
    "\"0ns\"",
    "\"999999h\"",
    "\"1.5\"",
    "\"-1s\"",
    "Some(",
    "None",
    "true",
    "é",
    "\u{0}",
    "\n",
    "workers: 0",
    "queue_capacity: 4294967295",
    "rps: 1e12",
    "weight: 0.0",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: f64, len: usize },
    Insert { at: f64, token: usize },
    Duplicate { at: f64, len: usize },
    Truncate { at: f64 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0, 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (0.0..1.0, 0..TOKENS.len()).prop_map(|(at, token)| Edit::Insert { at, token }),
        (0.0..1.0, 1usize..200).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        (0.0..1.0).prop_map(|at| Edit::Truncate { at }),
    ]
}

/// The char boundary nearest below `fraction` of the text.
fn boundary(text: &str, fraction: f64) -> usize {
    let mut i = ((text.len() as f64) * fraction) as usize;
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i.min(text.len())
}

fn apply(mut text: String, edits: &[Edit]) -> String {
    for e in edits {
        match *e {
            Edit::Delete { at, len } => {
                let start = boundary(&text, at);
                let end = boundary(&text, ((start + len) as f64 / text.len().max(1) as f64).min(1.0));
                if end > start {
                    text.replace_range(start..end, "");
                }
            }
            Edit::Insert { at, token } => {
                let i = boundary(&text, at);
                text.insert_str(i, TOKENS[token]);
            }
            Edit::Duplicate { at, len } => {
                let start = boundary(&text, at);
                let end = boundary(&text, ((start + len) as f64 / text.len().max(1) as f64).min(1.0));
                let slice = text[start..end].to_string();
                text.insert_str(end, &slice);
            }
            Edit::Truncate { at } => {
                let i = boundary(&text, at);
                text.truncate(i);
            }
        }
    }
    text
}

fn shipped() -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir("scenarios")
        .expect("scenarios/ is beside the tests")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).expect("readable scenario")).collect()
}

/// Parse, validate and (if valid) run under small limits; panics are the bug.
fn exercise(text: &str) {
    let Ok(mut scenario) = Scenario::from_ron(text) else { return };
    if scenario.validate().is_err() {
        return;
    }
    scenario.limits.events_max = scenario.limits.events_max.min(200_000);
    scenario.limits.in_flight_max = scenario.limits.in_flight_max.min(5_000);
    // Timeline memory is bounded by the bucket count; keep cases quick too.
    scenario.bucket_width = scenario.bucket_width.max(scenario.duration.mul_f64(0.01));
    let _ = run(&scenario);
}

fn cases() -> u32 {
    std::env::var("STORMGLASS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

fn runner() -> TestRunner {
    // A fixed RNG seed: the same cases every run, so CI cannot flake; set
    // STORMGLASS_FUZZ_CASES to go further.
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, proptest::test_runner::TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

#[test]
fn mutated_scenarios_never_panic() {
    let bases = shipped();
    assert!(bases.len() >= 2, "the shipped scenarios are the corpus");
    let strategy = (0..bases.len(), prop::collection::vec(edit(), 1..6));
    runner()
        .run(&strategy, |(base, edits)| {
            exercise(&apply(bases[base].clone(), &edits));
            Ok(())
        })
        .unwrap();
}

#[test]
fn ron_ish_text_never_panics() {
    let strategy = "[ -~\n()\\[\\]{}:,\"é]{0,300}";
    runner()
        .run(&strategy, |text| {
            exercise(&text);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_mutations_reach_validation_and_runs() {
    // Teeth: a fuzzer whose inputs all fail at the first byte proves nothing.
    // Single small edits keep a good share of the corpus parseable.
    let bases = shipped();
    let mut runner = runner();
    let strategy = (0..bases.len(), prop::collection::vec(edit(), 1..2));
    let (mut parsed, mut valid) = (0, 0);
    for _ in 0..200 {
        let (base, edits) = strategy.new_tree(&mut runner).unwrap().current();
        if let Ok(s) = Scenario::from_ron(&apply(bases[base].clone(), &edits)) {
            parsed += 1;
            valid += usize::from(s.validate().is_ok());
        }
    }
    assert!(parsed >= 40 && valid >= 20, "parsed {parsed}, valid {valid} of 200");
}
