//! A stable, readable text rendering of reports and timelines for insta.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;
use stormglass_core::time::SimDuration;
use stormglass_core::timeline::{SeriesData, Timeline};
use stormglass_models::Report;

/// How to render: float precision, timeline step, redacted paths.
///
/// Keys come out in name order, floats with a fixed number of decimals,
/// times as integer milliseconds (`61500ms`), and a timeline as a table of
/// rows of `step` buckets each (counts summed, gauge maxima and latency
/// p99 as the largest, latency counts summed).
///
/// ```
/// use stormglass::models::seed::{Variant, seed_cascade};
/// use stormglass::testing::Snapshot;
///
/// let mut scenario = seed_cascade(Variant::Protected);
/// scenario.duration = "4s".parse().unwrap();
/// scenario.drain = "1s".parse().unwrap();
/// let report = stormglass::models::run(&scenario).unwrap();
/// let text = Snapshot::new().step(2).redact("services").redact("edges").redact("routes.*.latency").render_report(&report);
/// assert!(text.contains("duration: 4000ms"));
/// assert!(text.contains("services: [redacted]"));
/// assert!(text.contains("latency: [redacted]"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    precision: usize,
    step: usize,
    redactions: Vec<String>,
}

impl Default for Snapshot {
    /// Three decimals, one bucket per row, nothing redacted.
    fn default() -> Self {
        Snapshot { precision: 3, step: 1, redactions: Vec::new() }
    }
}

impl Snapshot {
    /// The default rendering.
    pub fn new() -> Self {
        Snapshot::default()
    }

    /// Decimals of every float (at most 9).
    pub fn precision(mut self, decimals: usize) -> Self {
        self.precision = decimals.min(9);
        self
    }

    /// Buckets per timeline row (at least 1).
    pub fn step(mut self, buckets: usize) -> Self {
        self.step = buckets.max(1);
        self
    }

    /// Replaces the field at a dotted `path` by `[redacted]`; `*` matches
    /// any one key (`routes.*.latency`).
    pub fn redact(mut self, path: &str) -> Self {
        self.redactions.push(path.to_string());
        self
    }

    /// A report, rendered.
    pub fn render_report(&self, report: &Report) -> String {
        self.render(report)
    }

    /// A timeline alone, as a table.
    ///
    /// ```
    /// use stormglass::core::time::{SimDuration, SimTime};
    /// use stormglass::core::timeline::{Buckets, CountSeries, Timeline};
    /// use stormglass::testing::Snapshot;
    ///
    /// let buckets = Buckets::new(SimDuration::from_secs(1), SimDuration::from_secs(4)).unwrap();
    /// let mut ok = CountSeries::new(buckets);
    /// ok.add(SimTime::from_secs(1), 5);
    /// let mut timeline = Timeline::new(buckets);
    /// timeline.insert_counts("ok", &ok);
    /// assert_eq!(Snapshot::new().step(2).render_timeline(&timeline), "t_ms ok\n0 5\n2000 0\n");
    /// ```
    pub fn render_timeline(&self, timeline: &Timeline) -> String {
        let mut out = String::new();
        for row in self.timeline_rows(timeline) {
            out.push_str(&row);
            out.push('\n');
        }
        out
    }

    /// Any serde value, rendered the same way (timelines inside become tables).
    pub fn render<T: Serialize + ?Sized>(&self, value: &T) -> String {
        let mut value = serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("[unserializable: {e}]")));
        self.transform(&mut value, &mut Vec::new());
        let mut out = String::new();
        write_value(&mut out, &value, 0, self.precision);
        out
    }

    fn redacted(&self, path: &[String]) -> bool {
        self.redactions.iter().any(|pattern| {
            let parts: Vec<&str> = pattern.split('.').collect();
            parts.len() == path.len() && parts.iter().zip(path).all(|(p, k)| *p == "*" || p == k)
        })
    }

    fn transform(&self, value: &mut Value, path: &mut Vec<String>) {
        if self.redacted(path) {
            *value = Value::String("[redacted]".into());
            return;
        }
        match value {
            Value::Object(map) => {
                let is_timeline = map.len() == 2 && map.contains_key("buckets") && map.contains_key("series");
                if is_timeline && let Ok(timeline) = serde_json::from_value::<Timeline>(Value::Object(map.clone())) {
                    *value = Value::Array(self.timeline_rows(&timeline).into_iter().map(Value::String).collect());
                    return;
                }
                for (key, child) in map.iter_mut() {
                    path.push(key.clone());
                    self.transform(child, path);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter_mut().enumerate() {
                    path.push(index.to_string());
                    self.transform(child, path);
                    path.pop();
                }
            }
            Value::String(text) => {
                // Times and durations serialize as exact strings ("61.500s"); show integers.
                if text.starts_with(|c: char| c.is_ascii_digit())
                    && let Ok(d) = text.parse::<SimDuration>()
                {
                    *text = integer_time(d);
                }
            }
            _ => {}
        }
    }

    fn timeline_rows(&self, timeline: &Timeline) -> Vec<String> {
        let mut header = vec!["t_ms".to_string()];
        let mut columns: Vec<Vec<String>> = Vec::new();
        let rows = timeline.buckets.count.div_ceil(self.step);
        let chunks = |len: usize| (0..rows).map(move |r| r * self.step..((r + 1) * self.step).min(len));
        for (name, data) in &timeline.series {
            match data {
                SeriesData::Counts(counts) => {
                    header.push(name.clone());
                    columns.push(chunks(counts.len()).map(|c| counts[c].iter().sum::<u64>().to_string()).collect());
                }
                SeriesData::Gauge { max, .. } => {
                    header.push(format!("{name}.max"));
                    columns.push(
                        chunks(max.len()).map(|c| max[c].iter().max().copied().unwrap_or(0).to_string()).collect(),
                    );
                }
                SeriesData::Latency(summaries) => {
                    header.push(format!("{name}.count"));
                    columns.push(
                        chunks(summaries.len())
                            .map(|c| summaries[c].iter().map(|l| l.count).sum::<u64>().to_string())
                            .collect(),
                    );
                    header.push(format!("{name}.p99_ms"));
                    columns.push(
                        chunks(summaries.len())
                            .map(|c| {
                                let p99 = summaries[c].iter().map(|l| l.p99).max().unwrap_or(SimDuration::ZERO);
                                (p99.as_nanos() / 1_000_000).to_string()
                            })
                            .collect(),
                    );
                }
            }
        }
        let mut out = vec![header.join(" ")];
        for row in 0..rows {
            let start_ms = timeline.buckets.start(row * self.step).as_nanos() / 1_000_000;
            let mut line = start_ms.to_string();
            for column in &columns {
                line.push(' ');
                line.push_str(column.get(row).map_or("-", String::as_str));
            }
            out.push(line);
        }
        out
    }
}

fn integer_time(d: SimDuration) -> String {
    let nanos = d.as_nanos();
    if nanos == u64::MAX {
        "forever".into()
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else {
        format!("{nanos}ns")
    }
}

fn scalar(value: &Value, precision: usize) -> Option<String> {
    Some(match value {
        Value::Null => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => format!("{:.precision$}", n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "[]".into(),
        Value::Object(map) if map.is_empty() => "{}".into(),
        _ => return None,
    })
}

fn write_value(out: &mut String, value: &Value, indent: usize, precision: usize) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Object(map) => {
            // Sorted here rather than trusted to the map: serde_json keeps
            // insertion order when any crate in the build enables its
            // `preserve_order` feature, which would reorder every snapshot.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (key, child) in entries {
                match scalar(child, precision) {
                    Some(text) => {
                        let _ = writeln!(out, "{pad}{key}: {text}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{key}:");
                        write_value(out, child, indent + 1, precision);
                    }
                }
            }
        }
        Value::Array(items) => {
            for child in items {
                match scalar(child, precision) {
                    Some(text) => {
                        let _ = writeln!(out, "{pad}- {text}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}-");
                        write_value(out, child, indent + 1, precision);
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other, precision).unwrap_or_default());
        }
    }
}
