//! What `run` and `compare` print and write: the stdout formats, and the
//! `--out DIR` bundle (reports, CSV timelines, SVG charts, report.html).
//!
//! Several labelled reports (the two variants of the seed cascade, A and B of
//! a compare) go into one bundle, so the charts overlay them.

use std::path::Path;

use stormglass_models::report::csv_field;
use stormglass_models::{Report, story};

use super::{Failure, create_dir, html, svg, write_file};

/// The stdout format of `run`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table of the routes and the story in a few lines.
    #[default]
    Table,
    /// The whole report as JSON (with several runs, an array of `{label, report}`).
    Json,
    /// One summary row per run and route.
    Csv,
    /// The whole report as RON (with several runs, a list of `(label, report)`).
    Ron,
}

/// A report and the name it is shown under.
pub struct Labelled<'a> {
    /// `unprotected`, `protected`, a file stem.
    pub label: String,
    /// The run.
    pub report: &'a Report,
}

#[derive(serde::Serialize)]
struct LabelledRef<'a> {
    label: &'a str,
    report: &'a Report,
}

/// Renders the runs in `format`.
pub fn render(format: Format, runs: &[Labelled<'_>]) -> Result<String, Failure> {
    let as_refs: Vec<LabelledRef<'_>> =
        runs.iter().map(|r| LabelledRef { label: &r.label, report: r.report }).collect();
    let serialize_error = |e: &dyn std::fmt::Display| Failure::BadInput(format!("cannot serialize the report: {e}"));
    Ok(match (format, runs) {
        (Format::Table, [one]) => story::single(&one.label, one.report),
        (Format::Table, [a, b]) => story::compare(&a.label, a.report, &b.label, b.report),
        (Format::Table, _) => runs.iter().map(|r| story::single(&r.label, r.report)).collect::<Vec<_>>().join("\n"),
        (Format::Json, [one]) => to_json(one.report).map_err(|e| serialize_error(&e))?,
        (Format::Json, _) => to_json(&as_refs).map_err(|e| serialize_error(&e))?,
        (Format::Ron, [one]) => to_ron(one.report).map_err(|e| serialize_error(&e))?,
        (Format::Ron, _) => to_ron(&as_refs).map_err(|e| serialize_error(&e))?,
        (Format::Csv, _) => summary_csv(runs),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value).map(|mut s| {
        s.push('\n');
        s
    })
}

fn to_ron<T: serde::Serialize>(value: &T) -> Result<String, ron::Error> {
    ron::ser::to_string_pretty(value, ron::ser::PrettyConfig::default()).map(|mut s| {
        s.push('\n');
        s
    })
}

/// The columns of [`summary_csv`].
pub const SUMMARY_HEADER: &str = "run,route,requests,ok,degraded,failed,in_flight_at_end,availability,\
availability_during_faults,goodput_rps,latency_p50_ms,latency_p99_ms,time_to_recover_s";

/// One row per run and route: the headline numbers, in a fixed order.
pub fn summary_csv(runs: &[Labelled<'_>]) -> String {
    let mut out = String::from(SUMMARY_HEADER);
    out.push('\n');
    for run in runs {
        for (name, route) in &run.report.routes {
            let failed: u64 = route.failed.values().sum();
            let cells = [
                csv_field(&run.label),
                csv_field(name),
                route.arrivals.to_string(),
                route.ok.to_string(),
                route.degraded.to_string(),
                failed.to_string(),
                route.in_flight_at_end.to_string(),
                decimal(route.availability),
                route.availability_during_faults.map_or_else(String::new, decimal),
                decimal(route.goodput_rps),
                ms(route.latency.p50),
                ms(route.latency.p99),
                route.time_to_recover.map_or_else(String::new, |d| decimal(d.as_secs_f64())),
            ];
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    out
}

fn ms(d: stormglass_core::time::SimDuration) -> String {
    decimal(d.as_secs_f64() * 1e3)
}

/// A number for CSV: rounded to six decimals, so no summation noise shows
/// (`36.306943`, not `36.306943000000004`).
pub fn decimal(x: f64) -> String {
    ((x * 1e6).round() / 1e6).to_string()
}

/// Writes the bundle into `dir`: per run `<label>.json` and
/// `<label>.timelines.csv`; `summary.csv`; one SVG chart per route and per
/// service with every run overlaid; and `report.html`, which inlines the
/// charts and the summary so it opens from disk with no server.
pub fn write_bundle(dir: &Path, runs: &[Labelled<'_>]) -> Result<Vec<String>, Failure> {
    create_dir(dir)?;
    let mut written = Vec::new();
    let mut put = |name: String, contents: &[u8]| -> Result<(), Failure> {
        write_file(&dir.join(&name), contents)?;
        written.push(name);
        Ok(())
    };
    for run in runs {
        let json = to_json(run.report).map_err(|e| Failure::BadInput(format!("cannot serialize the report: {e}")))?;
        put(format!("{}.json", file_safe(&run.label)), json.as_bytes())?;
        put(format!("{}.timelines.csv", file_safe(&run.label)), run.report.timelines_csv().as_bytes())?;
    }
    put("summary.csv".into(), summary_csv(runs).as_bytes())?;
    let charts = svg::charts(runs)?;
    for chart in &charts {
        put(chart.file_name.clone(), chart.svg.as_bytes())?;
    }
    put("report.html".into(), html::page(runs, &charts).as_bytes())?;
    Ok(written)
}

/// A name usable as a file name on every platform: letters, digits, `-`, `_`, `.`.
pub fn file_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let keep = c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
        let c = if keep { c } else { '_' };
        // Collapse runs of separators so "GET /orders/{id}" reads GET_orders_id.
        if c != '_' || !out.ends_with('_') {
            out.push(c);
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() { "unnamed".to_string() } else { trimmed.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_the_readable_part() {
        assert_eq!(file_safe("GET /orders/{id}/status"), "GET_orders_id_status");
        assert_eq!(file_safe("order -> user"), "order_-_user");
        assert_eq!(file_safe("///"), "unnamed");
    }
}
