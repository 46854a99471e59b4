//! `stormglass sweep FILE --set path=v1,v2 ... [--seeds K] [--shard i/n]`:
//! the cross product of the settings times K seeds, one independent
//! simulation per job, run in parallel on rayon. Results are one row per job
//! in job order, whatever the thread count, so a sweep's output is as
//! deterministic as a single run.
//!
//! Jobs are numbered `point * seeds + seed offset`, the first setting
//! varying slowest. `--shard i/n` runs the jobs whose number is `i` modulo
//! `n`: a batch scheduler (a Slurm array, a Kubernetes indexed Job) runs the
//! shards on many machines and `stormglass merge` joins their outputs.

use std::fmt::Write;
use std::path::PathBuf;

use rayon::prelude::*;
use serde_json::Value;
use stormglass_models::report::csv_field;
use stormglass_models::{Report, Scenario, run};

use super::report_out::decimal;
use super::setting::{Setting, apply};
use super::{Failure, load_scenario, print_stdout, progress, thread_pool, write_file};

/// Most jobs (points times seeds) one sweep may hold.
pub const SWEEP_JOBS_MAX: u64 = 10_000_000;

/// `stormglass sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file (RON) the settings apply to.
    pub file: PathBuf,
    /// A setting and its values, `path=v1,v2,...`; repeat for a cross
    /// product. The path names fields with dots
    /// (`services.user.execution.workers`, `clients.0.rate.rps`,
    /// `faults.0.until`); an enum's variant name may be left out.
    #[arg(long = "set", value_name = "PATH=V1,V2,...")]
    pub settings: Vec<String>,
    /// Seeds per point, from --seed upwards.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// The first seed (default: the scenario's own).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Runs in parallel (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (0-based, 0/4 .. 3/4): job j belongs to shard j mod N.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Write the results to FILE (`.csv` or `.json`) instead of CSV on stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// No progress bar on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// One job of the sweep.
struct Job {
    index: u64,
    point: Vec<usize>,
    seed: u64,
}

/// Runs the sweep; see the module docs.
pub fn main(args: Args) -> Result<(), Failure> {
    let base = load_scenario(&args.file)?;
    let settings: Vec<Setting> = args.settings.iter().map(|s| Setting::parse(s)).collect::<Result<_, _>>()?;
    let (shard, shards) = parse_shard(args.shard.as_deref())?;
    let first_seed = args.seed.unwrap_or(base.seed);
    if args.seeds == 0 {
        return Err(Failure::BadInput("--seeds: must be at least 1".into()));
    }
    first_seed.checked_add(args.seeds - 1).ok_or_else(|| {
        Failure::BadInput(format!("--seed {first_seed} with --seeds {}: the seeds overflow a u64", args.seeds))
    })?;
    let points = cross_product(&settings);
    let jobs_total = (points.len() as u64).saturating_mul(args.seeds);
    if jobs_total > SWEEP_JOBS_MAX {
        return Err(Failure::BadInput(format!(
            "the sweep has {jobs_total} jobs; at most {SWEEP_JOBS_MAX} (fewer values or seeds)"
        )));
    }
    // Every point is applied and validated before anything runs, so a bad
    // value is reported at once rather than after hours of other points.
    let scenarios: Vec<Scenario> =
        points.iter().map(|point| apply(&base, &assignments(&settings, point))).collect::<Result<_, _>>()?;
    let jobs: Vec<Job> = (0..jobs_total)
        .filter(|j| j % shards == shard)
        .map(|index| Job {
            index,
            point: points[(index / args.seeds) as usize].clone(),
            seed: first_seed + index % args.seeds,
        })
        .collect();
    let bar = progress::bar(jobs.len() as u64, args.quiet, "runs");
    let rows: Vec<Row> = thread_pool(args.jobs)?
        .install(|| {
            jobs.par_iter()
                .map(|job| {
                    let mut scenario = scenarios[(job.index / args.seeds) as usize].clone();
                    scenario.seed = job.seed;
                    let report = run(&scenario).map_err(|e| {
                        Failure::from_run(
                            &format!("job {} ({} seed {})", job.index, describe(&settings, &job.point), job.seed),
                            e,
                        )
                    })?;
                    bar.inc(1);
                    Ok(Row::of(job, jobs_total, &settings, &report))
                })
                .collect::<Vec<Result<_, Failure>>>()
        })
        .into_iter()
        // The failure of the first job, not whichever thread failed first: the
        // same command gives the same message.
        .collect::<Result<_, Failure>>()?;
    bar.finish_and_clear();
    let routes = route_names(&rows);
    match &args.out {
        Some(path) if path.extension().is_some_and(|e| e == "json") => {
            let json = rows_json(&rows, &settings, &routes);
            write_file(path, json.as_bytes())
        }
        Some(path) => write_file(path, rows_csv(&rows, &settings, &routes).as_bytes()),
        None => print_stdout(&rows_csv(&rows, &settings, &routes)),
    }
}

/// `i/n` with `i < n`, or the whole sweep (`0/1`).
fn parse_shard(text: Option<&str>) -> Result<(u64, u64), Failure> {
    let Some(text) = text else { return Ok((0, 1)) };
    let bad = || Failure::BadInput(format!("--shard {text:?}: expected I/N with 0 <= I < N, e.g. 0/4"));
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Every combination of value indices, the first setting varying slowest.
fn cross_product(settings: &[Setting]) -> Vec<Vec<usize>> {
    let mut points = vec![Vec::new()];
    for setting in settings {
        points = points
            .into_iter()
            .flat_map(|p| {
                (0..setting.values.len()).map(move |i| {
                    let mut next = p.clone();
                    next.push(i);
                    next
                })
            })
            .collect();
    }
    points
}

fn assignments<'s>(settings: &'s [Setting], point: &[usize]) -> Vec<(&'s str, &'s Value)> {
    settings.iter().zip(point).map(|(s, &i)| (s.path.as_str(), &s.values[i])).collect()
}

fn describe(settings: &[Setting], point: &[usize]) -> String {
    settings.iter().zip(point).map(|(s, &i)| format!("{}={}", s.path, s.texts[i])).collect::<Vec<_>>().join(" ")
}

/// The numbers one job reports.
struct Row {
    job: u64,
    jobs_total: u64,
    values: Vec<String>,
    seed: u64,
    report: RowReport,
}

struct RowReport {
    requests: u64,
    availability: f64,
    degraded: u64,
    failed: u64,
    time_to_detect_s: Option<f64>,
    time_to_recover_s: Option<f64>,
    routes: Vec<(String, f64, f64)>,
}

impl Row {
    fn of(job: &Job, jobs_total: u64, settings: &[Setting], report: &Report) -> Row {
        let s = &report.summary;
        Row {
            job: job.index,
            jobs_total,
            values: settings.iter().zip(&job.point).map(|(st, &i)| st.texts[i].clone()).collect(),
            seed: job.seed,
            report: RowReport {
                requests: s.requests,
                availability: s.availability,
                degraded: s.degraded,
                failed: s.failed.values().sum(),
                time_to_detect_s: s.time_to_detect.map(|d| d.as_secs_f64()),
                time_to_recover_s: s.time_to_recover.map(|d| d.as_secs_f64()),
                routes: report
                    .routes
                    .iter()
                    .map(|(n, r)| (n.clone(), r.availability, r.latency.p99.as_secs_f64() * 1e3))
                    .collect(),
            },
        }
    }
}

fn route_names(rows: &[Row]) -> Vec<String> {
    let mut names: Vec<String> = rows.iter().flat_map(|r| r.report.routes.iter().map(|x| x.0.clone())).collect();
    names.sort();
    names.dedup();
    names
}

fn optional(x: Option<f64>) -> String {
    x.map_or_else(String::new, decimal)
}

/// The header, then one row per job: `job,jobs_total,<settings...>,seed,...`.
fn rows_csv(rows: &[Row], settings: &[Setting], routes: &[String]) -> String {
    let mut header = vec!["job".to_string(), "jobs_total".into()];
    header.extend(settings.iter().map(|s| csv_field(&s.path)));
    header.extend(
        ["seed", "requests", "availability", "degraded", "failed", "time_to_detect_s", "time_to_recover_s"]
            .map(String::from),
    );
    for route in routes {
        header.push(csv_field(&format!("{route} availability")));
        header.push(csv_field(&format!("{route} p99_ms")));
    }
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        let r = &row.report;
        let mut cells = vec![row.job.to_string(), row.jobs_total.to_string()];
        cells.extend(row.values.iter().map(|v| csv_field(v)));
        cells.extend([
            row.seed.to_string(),
            r.requests.to_string(),
            decimal(r.availability),
            r.degraded.to_string(),
            r.failed.to_string(),
            optional(r.time_to_detect_s),
            optional(r.time_to_recover_s),
        ]);
        for route in routes {
            match r.routes.iter().find(|x| &x.0 == route) {
                Some((_, availability, p99)) => cells.extend([decimal(*availability), decimal(*p99)]),
                None => cells.extend([String::new(), String::new()]),
            }
        }
        let _ = writeln!(out, "{}", cells.join(","));
    }
    out
}

/// The same rows as a JSON array of objects.
fn rows_json(rows: &[Row], settings: &[Setting], routes: &[String]) -> String {
    let list: Vec<Value> = rows
        .iter()
        .map(|row| {
            let r = &row.report;
            let set: serde_json::Map<String, Value> =
                settings.iter().zip(&row.values).map(|(s, v)| (s.path.clone(), Value::String(v.clone()))).collect();
            let per_route: serde_json::Map<String, Value> = routes
                .iter()
                .filter_map(|name| r.routes.iter().find(|x| &x.0 == name))
                .map(|(n, a, p)| (n.clone(), serde_json::json!({ "availability": a, "p99_ms": p })))
                .collect();
            serde_json::json!({
                "job": row.job, "jobs_total": row.jobs_total, "settings": set, "seed": row.seed,
                "requests": r.requests, "availability": r.availability, "degraded": r.degraded,
                "failed": r.failed, "time_to_detect_s": r.time_to_detect_s,
                "time_to_recover_s": r.time_to_recover_s, "routes": per_route,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&list).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_say_the_rule() {
        assert_eq!(parse_shard(None).unwrap(), (0, 1));
        assert_eq!(parse_shard(Some("2/4")).unwrap(), (2, 4));
        for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
            let e = parse_shard(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("expected I/N with 0 <= I < N"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_cross_product_varies_the_first_setting_slowest() {
        let a = Setting::parse("seed=1,2").unwrap();
        let b = Setting::parse("duration=1s,2s,3s").unwrap();
        let points = cross_product(&[a, b]);
        assert_eq!(points, vec![vec![0, 0], vec![0, 1], vec![0, 2], vec![1, 0], vec![1, 1], vec![1, 2]]);
        assert_eq!(cross_product(&[]), vec![Vec::<usize>::new()]);
    }
}
