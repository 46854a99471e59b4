//! `stormglass run [FILE]`: run one scenario, or with no FILE the embedded
//! seed cascade in both variants, and print a table and the story (or the
//! whole report as JSON, CSV or RON); `--out DIR` also writes the bundle of
//! report files, charts and report.html.

use std::path::PathBuf;

use stormglass_models::Scenario;
use stormglass_models::run::run_with_progress;
use stormglass_models::seed::{Variant, seed_cascade};

use super::report_out::{Format, Labelled, render, write_bundle};
use super::{Failure, label_of, load_scenario, print_stdout, progress};

/// `stormglass run`.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// The scenario file (RON). Without it: the embedded seed cascade,
    /// unprotected and protected, side by side.
    pub file: Option<PathBuf>,
    /// Replace the scenario's seed (every random stream derives from it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the report (JSON, CSV timelines), SVG charts and report.html into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout: a table and the story, or the full report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// No progress bar on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs and prints; see the module docs.
pub fn main(args: Args) -> Result<(), Failure> {
    // (label in reports, what an error names, scenario)
    let mut runs: Vec<(String, String, Scenario)> = match &args.file {
        Some(path) => vec![(label_of(path), path.display().to_string(), load_scenario(path)?)],
        None => [Variant::Unprotected, Variant::Protected]
            .into_iter()
            .map(|v| {
                let scenario = seed_cascade(v);
                (variant_label(v).to_string(), scenario.name.clone(), scenario)
            })
            .collect(),
    };
    if let Some(seed) = args.seed {
        runs.iter_mut().for_each(|(_, _, scenario)| scenario.seed = seed);
    }
    let reports = run_all(&runs, args.quiet)?;
    let labelled: Vec<Labelled<'_>> =
        runs.iter().zip(&reports).map(|((label, _, _), report)| Labelled { label: label.clone(), report }).collect();
    print_stdout(&render(args.format, &labelled)?)?;
    if let Some(dir) = &args.out {
        let written = write_bundle(dir, &labelled)?;
        if !args.quiet {
            eprintln!("wrote {} files to {} (open report.html)", written.len(), dir.display());
        }
    }
    Ok(())
}

/// Runs the scenarios one after the other, with one progress bar over their
/// virtual time.
fn run_all(runs: &[(String, String, Scenario)], quiet: bool) -> Result<Vec<stormglass_models::Report>, Failure> {
    let total_s: u64 = runs.iter().map(|(_, _, s)| (s.duration + s.drain).as_nanos().div_ceil(1_000_000_000)).sum();
    let bar = progress::bar(total_s, quiet, "simulated s");
    let mut reports = Vec::with_capacity(runs.len());
    let mut done_s = 0;
    for (label, context, scenario) in runs {
        bar.set_message(label.clone());
        let report =
            run_with_progress(scenario, &mut |now, _| bar.set_position(done_s + now.as_nanos() / 1_000_000_000))
                .map_err(|e| Failure::from_run(context, e))?;
        done_s += (scenario.duration + scenario.drain).as_nanos().div_ceil(1_000_000_000);
        reports.push(report);
    }
    bar.finish_and_clear();
    Ok(reports)
}

fn variant_label(variant: Variant) -> &'static str {
    match variant {
        Variant::Unprotected => "unprotected",
        Variant::Protected => "protected",
    }
}
