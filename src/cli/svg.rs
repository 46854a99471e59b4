//! SVG charts of one or more runs (plotters): per route, goodput and
//! failures by cause; per service, throughput, p50/p99 latency, queue length
//! and busy workers. Fault windows are shaded grey and breaker-open spans
//! red on every chart; with several runs, the runs are overlaid (the first
//! solid, the others dashed).

use std::collections::BTreeSet;

use plotters::prelude::*;
use stormglass_core::timeline::{SeriesData, Timeline};
use stormglass_models::report::Cause;
use stormglass_patterns::breaker::{BreakerState, Transition};

use super::Failure;
use super::report_out::{Labelled, file_safe};

/// One chart, ready to write.
pub struct Chart {
    /// `route-GET_products.svg`, `service-order.svg`.
    pub file_name: String,
    /// What the chart shows, for the HTML page.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// A line to draw.
struct Line {
    label: String,
    color: RGBColor,
    dashed: bool,
    /// Drawn as a filled area under the line (behind the other lines).
    filled: bool,
    points: Vec<(f64, f64)>,
}

/// A shaded time span `[from_s, until_s)`.
struct Span {
    label: String,
    color: RGBColor,
    from_s: f64,
    until_s: f64,
}

const GOOD: RGBColor = RGBColor(0, 140, 60);
const DEGRADED: RGBColor = RGBColor(230, 150, 0);
const BLUE: RGBColor = RGBColor(30, 90, 200);
const PURPLE: RGBColor = RGBColor(130, 50, 170);
const FAULT: RGBColor = RGBColor(90, 90, 90);
const OPEN: RGBColor = RGBColor(220, 30, 30);
/// One colour per failure cause, in [`Cause::ALL`] order.
const CAUSE_COLORS: [RGBColor; 9] = [
    RGBColor(200, 0, 0),
    RGBColor(120, 0, 0),
    RGBColor(255, 90, 0),
    RGBColor(180, 0, 140),
    RGBColor(110, 60, 20),
    RGBColor(0, 150, 170),
    RGBColor(90, 90, 220),
    RGBColor(150, 150, 0),
    RGBColor(60, 60, 60),
];

const WIDTH_PX: u32 = 960;
const PANEL_HEIGHT_PX: u32 = 300;

/// Every chart of the runs: one per route and one per service, in name order.
pub fn charts(runs: &[Labelled<'_>]) -> Result<Vec<Chart>, Failure> {
    let spans = shaded_spans(runs);
    let mut charts = Vec::new();
    let routes: BTreeSet<&String> = runs.iter().flat_map(|r| r.report.routes.keys()).collect();
    for route in routes {
        let lines = route_lines(runs, route);
        let title = format!("route {route}: answers and failures per second");
        let svg = draw(&[Panel { title: &title, y_desc: "per second", lines }], &spans, x_max_s(runs))?;
        charts.push(Chart { file_name: format!("route-{}.svg", file_safe(route)), title, svg });
    }
    let services: BTreeSet<&String> = runs.iter().flat_map(|r| r.report.services.keys()).collect();
    for service in services {
        let panels = service_panels(runs, service);
        let svg = draw(&panels, &spans, x_max_s(runs))?;
        let title = format!("service {service}: throughput, latency, queue and busy workers");
        charts.push(Chart { file_name: format!("service-{}.svg", file_safe(service)), title, svg });
    }
    Ok(charts)
}

struct Panel<'a> {
    title: &'a str,
    y_desc: &'a str,
    lines: Vec<Line>,
}

fn x_max_s(runs: &[Labelled<'_>]) -> f64 {
    runs.iter().map(|r| r.report.end.as_nanos() as f64 / 1e9).fold(1.0, f64::max)
}

/// A series' label: prefixed by the run when several are overlaid.
fn label(runs: &[Labelled<'_>], run: &Labelled<'_>, what: &str) -> String {
    if runs.len() > 1 { format!("{}: {what}", run.label) } else { what.to_string() }
}

fn counts<'t>(timeline: &'t Timeline, name: &str) -> Option<&'t [u64]> {
    match timeline.series.get(name) {
        Some(SeriesData::Counts(c)) => Some(c),
        _ => None,
    }
}

/// Per-bucket counts as points (bucket start in seconds, count per second).
fn rate_points(timeline: &Timeline, values: impl Iterator<Item = u64>) -> Vec<(f64, f64)> {
    let width_s = timeline.buckets.width.as_secs_f64();
    values.enumerate().map(|(i, v)| (i as f64 * width_s, v as f64 / width_s)).collect()
}

fn route_lines(runs: &[Labelled<'_>], route: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let Some(report) = run.report.routes.get(route) else { continue };
        let t = &report.timeline;
        let dashed = index > 0;
        let (Some(ok), Some(degraded)) = (counts(t, "ok"), counts(t, "degraded")) else { continue };
        let good = ok.iter().zip(degraded).map(|(a, b)| a + b);
        lines.push(Line {
            label: label(runs, run, "goodput"),
            color: GOOD,
            dashed,
            filled: false,
            points: rate_points(t, good),
        });
        if degraded.iter().any(|&d| d > 0) {
            let points = rate_points(t, degraded.iter().copied());
            lines.push(Line {
                label: label(runs, run, "degraded (fallback)"),
                color: DEGRADED,
                dashed,
                filled: true,
                points,
            });
        }
        for (cause, color) in Cause::ALL.iter().zip(CAUSE_COLORS) {
            let Some(failed) = counts(t, &format!("failed_{}", cause.name())) else { continue };
            if failed.iter().any(|&f| f > 0) {
                let what = format!("failed: {}", cause.name());
                let points = rate_points(t, failed.iter().copied());
                lines.push(Line { label: label(runs, run, &what), color, dashed, filled: false, points });
            }
        }
    }
    lines
}

fn service_panels<'a>(runs: &[Labelled<'_>], service: &str) -> [Panel<'a>; 3] {
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    let mut occupancy = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let Some(report) = run.report.services.get(service) else { continue };
        let t = &report.timeline;
        let dashed = index > 0;
        for (series, what, color) in
            [("answered", "answered", GOOD), ("rejected_queue_full", "rejected: queue full", OPEN)]
        {
            if let Some(c) = counts(t, series) {
                let points = rate_points(t, c.iter().copied());
                throughput.push(Line { label: label(runs, run, what), color, dashed, filled: false, points });
            }
        }
        if let Some(SeriesData::Latency(summaries)) = t.series.get("latency") {
            let width_s = t.buckets.width.as_secs_f64();
            for (what, color, pick) in [
                ("p50 latency", BLUE, (|l| l.p50) as fn(&stormglass_core::metrics::LatencySummary) -> _),
                ("p99 latency", PURPLE, |l| l.p99),
            ] {
                let points = summaries
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.count > 0)
                    .map(|(i, l)| (i as f64 * width_s, pick(l).as_secs_f64() * 1e3))
                    .collect();
                latency.push(Line { label: label(runs, run, what), color, dashed, filled: false, points });
            }
        }
        for (series, what, color) in
            [("queue_length", "queue length (mean)", DEGRADED), ("busy", "busy workers (mean)", BLUE)]
        {
            if let Some(SeriesData::Gauge { mean, .. }) = t.series.get(series) {
                let width_s = t.buckets.width.as_secs_f64();
                let points = mean.iter().enumerate().map(|(i, m)| (i as f64 * width_s, *m)).collect();
                occupancy.push(Line { label: label(runs, run, what), color, dashed, filled: false, points });
            }
        }
    }
    [
        Panel { title: "throughput", y_desc: "per second", lines: throughput },
        Panel { title: "latency", y_desc: "ms", lines: latency },
        Panel { title: "queue and workers", y_desc: "count", lines: occupancy },
    ]
}

/// Fault windows of the first run, and every run's breaker-open spans.
fn shaded_spans(runs: &[Labelled<'_>]) -> Vec<Span> {
    let mut spans = Vec::new();
    if let Some(first) = runs.first() {
        for f in &first.report.faults {
            spans.push(Span {
                label: format!("fault: {} {}", f.target, f.kind),
                color: FAULT,
                from_s: f.from.as_nanos() as f64 / 1e9,
                until_s: f.until.as_nanos() as f64 / 1e9,
            });
        }
    }
    for run in runs {
        let end_s = run.report.end.as_nanos() as f64 / 1e9;
        for (edge, report) in &run.report.edges {
            for (from_s, until_s) in open_spans(&report.transitions, end_s) {
                spans.push(Span {
                    label: label(runs, run, &format!("breaker open: {edge}")),
                    color: OPEN,
                    from_s,
                    until_s,
                });
            }
        }
    }
    spans
}

/// The spans, in seconds, during which the breaker was open (or forced
/// open), from its exact transitions; a span still open at `end_s` ends there.
fn open_spans(transitions: &[Transition], end_s: f64) -> Vec<(f64, f64)> {
    let mut spans = Vec::new();
    let mut opened_s = None;
    for t in transitions {
        let at_s = t.at.as_nanos() as f64 / 1e9;
        let open = matches!(t.to, BreakerState::Open | BreakerState::ForcedOpen);
        match (open, opened_s) {
            (true, None) => opened_s = Some(at_s),
            (false, Some(from_s)) => {
                spans.push((from_s, at_s));
                opened_s = None;
            }
            _ => {}
        }
    }
    if let Some(from_s) = opened_s {
        spans.push((from_s, end_s));
    }
    spans
}

/// Draws the panels stacked vertically into one SVG document.
fn draw(panels: &[Panel<'_>], spans: &[Span], x_max: f64) -> Result<String, Failure> {
    let failed = |e: &dyn std::fmt::Display| Failure::BadInput(format!("cannot draw a chart: {e}"));
    let mut svg = String::new();
    {
        let height = PANEL_HEIGHT_PX * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(&e))?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_panel(area, panel, spans, x_max).map_err(|e| failed(&e))?;
        }
        root.present().map_err(|e| failed(&e))?;
    }
    Ok(svg)
}

type Area<'b> = DrawingArea<SVGBackend<'b>, plotters::coord::Shift>;

fn draw_panel(
    area: &Area<'_>,
    panel: &Panel<'_>,
    spans: &[Span],
    x_max: f64,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let y_top = panel.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let y_max = if y_top > 0.0 { y_top * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("time (s)").y_desc(panel.y_desc).light_line_style(WHITE.mix(0.0)).draw()?;
    let mut labelled = BTreeSet::new();
    for span in spans {
        let shade = span.color.mix(0.12).filled();
        let rect = Rectangle::new([(span.from_s, 0.0), (span.until_s, y_max)], shade);
        let drawn = chart.draw_series(std::iter::once(rect))?;
        // One legend entry per kind of span, not one per occurrence.
        if labelled.insert(span.label.clone()) {
            let color = span.color;
            drawn
                .label(span.label.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.mix(0.3).filled()));
        }
    }
    // Filled areas first, so every line stays visible on top of them.
    for line in panel.lines.iter().filter(|l| l.filled) {
        let color = line.color;
        let area = AreaSeries::new(line.points.iter().copied(), 0.0, color.mix(0.35).filled());
        chart
            .draw_series(area)?
            .label(line.label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.mix(0.35).filled()));
    }
    for line in panel.lines.iter().filter(|l| !l.filled) {
        let color = line.color;
        let style = color.stroke_width(2);
        let drawn = if line.dashed {
            chart.draw_series(DashedLineSeries::new(line.points.iter().copied(), 6, 4, style))?
        } else {
            chart.draw_series(LineSeries::new(line.points.iter().copied(), style))?
        };
        drawn.label(line.label.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stormglass_patterns::breaker::TransitionCause;

    fn at(s: u64, to: BreakerState) -> Transition {
        let from = BreakerState::Closed;
        Transition { at: stormglass_core::time::SimTime::from_secs(s), from, to, cause: TransitionCause::Forced }
    }

    #[test]
    fn open_spans_run_from_opening_to_the_next_state() {
        let log = [at(5, BreakerState::Open), at(65, BreakerState::HalfOpen), at(66, BreakerState::Open)];
        assert_eq!(open_spans(&log, 100.0), vec![(5.0, 65.0), (66.0, 100.0)]);
        assert_eq!(open_spans(&[at(1, BreakerState::HalfOpen)], 10.0), vec![]);
        assert_eq!(open_spans(&[], 10.0), vec![]);
    }
}
