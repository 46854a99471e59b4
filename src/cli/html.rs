//! `report.html`: one self-contained page with the summary table, the story
//! and every chart inlined as SVG, so it opens from disk in a browser with
//! no server and no network. The page is also well-formed XML (XHTML
//! syntax), which is how the tests check it.

use std::fmt::Write;

use stormglass_models::story;

use super::report_out::Labelled;
use super::svg::Chart;

/// The page for `runs`, with `charts` inlined.
pub fn page(runs: &[Labelled<'_>], charts: &[Chart]) -> String {
    let title = match runs {
        [one] => format!("stormglass: {}", one.report.scenario),
        _ => format!("stormglass: {}", runs.iter().map(|r| r.label.as_str()).collect::<Vec<_>>().join(" vs ")),
    };
    let mut out = String::new();
    let _ = writeln!(out, "<!DOCTYPE html>");
    let _ = writeln!(out, "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">");
    let _ = writeln!(out, "<head><meta charset=\"utf-8\"/><title>{}</title>", escape(&title));
    let _ = writeln!(out, "<style>{STYLE}</style></head>");
    let _ = writeln!(out, "<body><h1>{}</h1>", escape(&title));
    summary_table(&mut out, runs);
    let story_text = match runs {
        [a, b] => story::compare(&a.label, a.report, &b.label, b.report),
        _ => runs.iter().map(|r| story::single(&r.label, r.report)).collect::<Vec<_>>().join("\n"),
    };
    let _ = writeln!(out, "<h2>Story</h2><pre>{}</pre>", escape(&story_text));
    let _ = writeln!(out, "<h2>Charts</h2>");
    for chart in charts {
        let _ = writeln!(out, "<figure><figcaption>{}</figcaption>", escape(&chart.title));
        let _ = writeln!(out, "{}", strip_xml_declaration(&chart.svg));
        let _ = writeln!(out, "</figure>");
    }
    let _ = writeln!(out, "</body></html>");
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}\
td:first-child,td:nth-child(2),th{text-align:left}figure{margin:1.5em 0}\
figcaption{font-weight:bold;margin-bottom:.3em}pre{background:#f6f6f6;padding:1em}";

fn summary_table(out: &mut String, runs: &[Labelled<'_>]) {
    let _ = writeln!(out, "<h2>Summary</h2><table>");
    let _ = writeln!(
        out,
        "<tr><th>run</th><th>route</th><th>requests</th><th>availability</th><th>during faults</th>\
         <th>degraded</th><th>failed</th><th>p50</th><th>p99</th><th>time to recover</th></tr>"
    );
    for run in runs {
        for (name, route) in &run.report.routes {
            let failed: u64 = route.failed.values().sum();
            let during = route.availability_during_faults.map_or_else(|| "-".into(), |a| format!("{:.1}%", a * 100.0));
            let recover = route.time_to_recover.map_or_else(|| "-".into(), |d| d.to_string());
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&run.label),
                escape(name),
                route.arrivals,
                route.availability * 100.0,
                during,
                route.degraded,
                failed,
                story::millis(route.latency.p50),
                story::millis(route.latency.p99),
                recover
            );
        }
    }
    let _ = writeln!(out, "</table>");
}

/// Text as XML character data.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SVG document without its `<?xml ...?>` line, for inlining.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.find("?>").map_or(svg, |end| rest[end + 2..].trim_start()),
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_declarations() {
        assert_eq!(escape("order -> user & <x>"), "order -&gt; user &amp; &lt;x&gt;");
        assert_eq!(strip_xml_declaration("<?xml version=\"1.0\"?>\n<svg/>"), "<svg/>");
        assert_eq!(strip_xml_declaration("<svg/>"), "<svg/>");
    }
}
