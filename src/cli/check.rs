//! `stormglass check FILE`: validate a scenario and print it normalized —
//! every default filled in, fields in their declared order — so a reader
//! sees exactly what would run.

use std::path::PathBuf;

use super::{Failure, load_scenario, print_stdout};

/// `stormglass check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file (RON).
    pub file: PathBuf,
}

/// Prints the normalized scenario on stdout, or the first problem.
pub fn main(args: Args) -> Result<(), Failure> {
    let scenario = load_scenario(&args.file)?;
    print_stdout(&normalized(&scenario)?)
}

/// The scenario as pretty RON that parses back to the same scenario.
pub fn normalized(scenario: &stormglass_models::Scenario) -> Result<String, Failure> {
    let config = ron::ser::PrettyConfig::default().struct_names(false);
    let mut text = ron::ser::to_string_pretty(scenario, config)
        .map_err(|e| Failure::BadInput(format!("cannot write the scenario as RON: {e}")))?;
    text.push('\n');
    Ok(text)
}
