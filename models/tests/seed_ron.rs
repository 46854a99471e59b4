//! The seed cascade ships twice, as a Rust builder and as RON in scenarios/;
//! they must describe the same scenario.

use stormglass_models::Scenario;
use stormglass_models::seed::{Variant, seed_cascade};

fn check(file: &str, variant: Variant) {
    let path = format!("{}/../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let parsed = Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    parsed.validate().unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(parsed, seed_cascade(variant), "{file} and seed_cascade({variant:?}) differ");
}

#[test]
fn unprotected_file_matches_the_builder() {
    check("seed-cascade-unprotected.ron", Variant::Unprotected);
}

#[test]
fn protected_file_matches_the_builder() {
    check("seed-cascade-protected.ron", Variant::Protected);
}
