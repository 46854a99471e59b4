//! `stormglass compare A B`: paired runs with common random numbers. Both
//! scenarios run with the same K seeds; every random stream is named, so for
//! one seed A and B see the same arrivals, service times and faults, and a
//! per-seed difference B - A is the effect of the configuration alone. The
//! table gives each metric's mean under A and B and the mean difference with
//! its 95% confidence interval (Student's t over the K paired differences).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::PathBuf;

use rayon::prelude::*;
use stormglass_models::{Report, Scenario, run};

use super::report_out::{Labelled, write_bundle};
use super::stats::{Interval, interval};
use super::{Failure, label_of, load_scenario, print_stdout, progress, thread_pool};

/// Most seeds one compare may run: a bound, so a typo cannot run for hours.
pub const SEEDS_MAX: u64 = 100_000;

/// `stormglass compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first scenario (the baseline).
    pub a: PathBuf,
    /// The second scenario (the candidate); differences are B - A.
    pub b: PathBuf,
    /// How many seeds to pair, from --seed upwards.
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// The first seed (default: A's own seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write both reports of the first seed, overlaid charts and report.html into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Runs in parallel (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// No progress bar on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the pairs and prints the table; see the module docs.
pub fn main(args: Args) -> Result<(), Failure> {
    if args.seeds == 0 || args.seeds > SEEDS_MAX {
        return Err(Failure::BadInput(format!("--seeds: must be between 1 and {SEEDS_MAX}, got {}", args.seeds)));
    }
    let a = load_scenario(&args.a)?;
    let b = load_scenario(&args.b)?;
    let (label_a, label_b) = labels(&args.a, &args.b);
    let first = args.seed.unwrap_or(a.seed);
    let last = first.checked_add(args.seeds - 1).ok_or_else(|| {
        Failure::BadInput(format!("--seed {first} with --seeds {}: the seeds overflow a u64", args.seeds))
    })?;
    let bar = progress::bar(args.seeds, args.quiet, "seed pairs");
    let pairs: Vec<(Report, Report)> = thread_pool(args.jobs)?
        .install(|| {
            (first..=last)
                .into_par_iter()
                .map(|seed| {
                    let pair = (run_seed(&a, seed, &label_a)?, run_seed(&b, seed, &label_b)?);
                    bar.inc(1);
                    Ok(pair)
                })
                .collect::<Vec<Result<_, Failure>>>()
        })
        .into_iter()
        // The failure of the lowest seed, not whichever thread failed first:
        // the same command gives the same message.
        .collect::<Result<_, Failure>>()?;
    bar.finish_and_clear();
    print_stdout(&table(&label_a, &label_b, first, &pairs))?;
    if let (Some(dir), Some((ra, rb))) = (&args.out, pairs.first()) {
        let runs = [Labelled { label: label_a, report: ra }, Labelled { label: label_b, report: rb }];
        let written = write_bundle(dir, &runs)?;
        if !args.quiet {
            eprintln!("wrote {} files to {} (seed {first}; open report.html)", written.len(), dir.display());
        }
    }
    Ok(())
}

/// File stems, or `A` and `B` when the stems are the same.
fn labels(a: &std::path::Path, b: &std::path::Path) -> (String, String) {
    let (la, lb) = (label_of(a), label_of(b));
    if la == lb { ("A".into(), "B".into()) } else { (la, lb) }
}

fn run_seed(scenario: &Scenario, seed: u64, label: &str) -> Result<Report, Failure> {
    let mut scenario = scenario.clone();
    scenario.seed = seed;
    run(&scenario).map_err(|e| Failure::from_run(&format!("{label} (seed {seed})"), e))
}

/// Reads one metric from a report.
type Metric = Box<dyn Fn(&Report) -> Option<f64>>;

/// The metrics compared, each a name and how to read it from a report
/// (`None` when the report has no value for it, e.g. no fault window).
fn metrics(pairs: &[(Report, Report)]) -> Vec<(String, Metric)> {
    let mut list: Vec<(String, Metric)> = vec![
        ("availability (all routes)".into(), Box::new(|r: &Report| Some(r.summary.availability))),
        ("time to recover (s)".into(), Box::new(|r: &Report| r.summary.time_to_recover.map(|d| d.as_secs_f64()))),
    ];
    let routes: BTreeSet<String> =
        pairs.iter().flat_map(|(a, b)| a.routes.keys().chain(b.routes.keys())).cloned().collect();
    for route in routes {
        let r = route.clone();
        list.push((
            format!("{route}: availability"),
            Box::new(move |x: &Report| x.routes.get(&r).map(|v| v.availability)),
        ));
        let r = route.clone();
        list.push((
            format!("{route}: availability in faults"),
            Box::new(move |x: &Report| x.routes.get(&r).and_then(|v| v.availability_during_faults)),
        ));
        let r = route.clone();
        list.push((
            format!("{route}: goodput (req/s)"),
            Box::new(move |x: &Report| x.routes.get(&r).map(|v| v.goodput_rps)),
        ));
        let r = route;
        list.push((
            format!("{r}: p99 latency (ms)"),
            Box::new(move |x: &Report| x.routes.get(&r).map(|v| v.latency.p99.as_secs_f64() * 1e3)),
        ));
    }
    list
}

/// The comparison table.
pub fn table(label_a: &str, label_b: &str, first_seed: u64, pairs: &[(Report, Report)]) -> String {
    let mut out = String::new();
    let seeds = pairs.len() as u64;
    let _ =
        writeln!(out, "{label_a} (A) vs {label_b} (B): {seeds} paired seeds from {first_seed}, common random numbers");
    let _ = writeln!(out, "difference is B - A, mean and 95% confidence interval; * marks an interval that excludes 0");
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<48} {:>12} {:>12} {:>26}", "metric", "A", "B", "B - A");
    for (name, read) in metrics(pairs) {
        let mut values_a = Vec::new();
        let mut values_b = Vec::new();
        let mut diffs = Vec::new();
        for (ra, rb) in pairs {
            if let (Some(x), Some(y)) = (read(ra), read(rb)) {
                values_a.push(x);
                values_b.push(y);
                diffs.push(y - x);
            }
        }
        if diffs.is_empty() {
            continue;
        }
        let (ma, mb) = (interval(&values_a).mean, interval(&values_b).mean);
        let _ = writeln!(out, "{name:<48} {:>12} {:>12} {:>26}", number(ma), number(mb), difference(interval(&diffs)));
    }
    out
}

fn number(x: f64) -> String {
    if x.abs() >= 100.0 { format!("{x:.1}") } else { format!("{x:.4}") }
}

fn difference(d: Interval) -> String {
    match d.half_width {
        Some(h) => {
            let significant = if d.mean.abs() > h { " *" } else { "  " };
            format!("{} ± {}{significant}", number(d.mean), number(h))
        }
        None => format!("{}  (one seed)", number(d.mean)),
    }
}
