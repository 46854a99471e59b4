//! The `stormglass` command. With no arguments it runs the seed cascade,
//! unprotected and protected, and tells what happened.

use stormglass_models::seed::{Variant, seed_cascade};
use stormglass_models::{run, story};

fn main() {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok());
    let mut reports = Vec::new();
    for variant in [Variant::Unprotected, Variant::Protected] {
        let mut scenario = seed_cascade(variant);
        if let Some(seed) = seed {
            scenario.seed = seed;
        }
        match run(&scenario) {
            Ok(report) => reports.push(report),
            Err(err) => {
                eprintln!("stormglass: {}: {err}", scenario.name);
                std::process::exit(1);
            }
        }
    }
    print!("{}", story::compare("unprotected", &reports[0], "protected", &reports[1]));
}
