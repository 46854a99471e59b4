//! The `stormglass` command from the outside: every subcommand, every exit
//! code (0 success, 1 a run stopped at a limit, 2 bad input), the error
//! messages a user sees for a syntax error, an unknown field, a bad duration
//! and an undefined reference, and the report bundle (SVG charts and
//! report.html are well-formed XML and hold the expected series).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A one-service scenario that runs in milliseconds; `{extra}` goes inside
/// the scenario's parentheses.
fn small_scenario(extra: &str) -> String {
    format!(
        r#"(
    name: "small",
    seed: 3,
    duration: "10s",
    drain: "1s",
    services: {{
        "api": (
            execution: thread_pool(workers: 4, queue_capacity: 10),
            routes: {{ "GET /": (steps: [compute(Exponential(mean: "10ms"))]) }},
        ),
    }},
    clients: [(name: "users", target: "api", rate: constant(rps: 100.0), routes: [(route: "GET /")])],
    {extra}
)"#
    )
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test input");
    path
}

fn stormglass(args: &[&str]) -> Output {
    Command::cargo_bin("stormglass").expect("the binary is built").args(args).output().expect("the binary runs")
}

/// Runs the command and checks its exit code and what stdout and stderr
/// contain; returns stdout. No run may end in a panic trace.
fn check(args: &[&str], code: i32, stdout_has: &[&str], stderr_has: &[&str]) -> String {
    let out = stormglass(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!("stormglass {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", args.join(" "));
    assert_eq!(out.status.code(), Some(code), "{context}");
    assert!(!stderr.contains("panicked"), "{context}");
    for want in stdout_has {
        assert!(stdout.contains(want), "stdout lacks {want:?}: {context}");
    }
    for want in stderr_has {
        assert!(stderr.contains(want), "stderr lacks {want:?}: {context}");
    }
    stdout
}

#[test]
fn no_arguments_tells_the_seed_cascade_story() {
    let stdout = check(
        &[],
        0,
        &[
            "unprotected vs protected (seed 42",
            "fault: user hang from 60.000s to 180.000s",
            "GET /products first failed at",
            "breaker order -> user opened at",
            "breaker order -> user closed at",
            // The fallback user, served while the breaker is open or the
            // bulkhead is full.
            "fallbacks on order -> user: breaker_open 11915, rejected 951; served static 12866",
            "time to detect",
        ],
        &[],
    );
    // The same as `run` with no file, byte for byte: the README's main command.
    assert_eq!(stdout, check(&["run"], 0, &[], &[]));
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    // `stormglass run --format json | head -1`: the JSON of both variants
    // (megabytes) is far more than a pipe holds, so the command is still
    // writing when the reader goes away.
    let program = assert_cmd::cargo::cargo_bin("stormglass");
    let mut child = std::process::Command::new(program)
        .args(["run", "--format", "json", "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stdout.as_mut().expect("piped"), &mut first).expect("some output");
    assert_eq!(&first, b"[");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("the binary ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn run_prints_each_format_and_replaces_the_seed() {
    let dir = scratch("formats");
    let file = write(&dir, "small.ron", &small_scenario(""));
    let file = file.to_str().unwrap();
    check(&["run", file], 0, &["small (seed 3", "GET /", "requests", "small:"], &[]);
    let json = check(&["run", file, "--format", "json", "--seed", "7"], 0, &[], &[]);
    let report: serde_json::Value = serde_json::from_str(&json).expect("json report");
    assert_eq!(report["seed"], 7);
    assert!(report["routes"]["GET /"]["arrivals"].as_u64().unwrap() > 900);
    let ron_text = check(&["run", file, "--format", "ron"], 0, &[], &[]);
    let back: stormglass::models::Report = ron::from_str(&ron_text).expect("ron report");
    assert_eq!(back.seed, 3);
    let csv = check(&["run", file, "--format", "csv"], 0, &[], &[]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("run,route,requests,ok,degraded,failed,"));
    assert!(lines.next().unwrap().starts_with("small,GET /,"));
    // Same seed, same bytes through the command too.
    assert_eq!(json, check(&["run", file, "--format", "json", "--seed", "7"], 0, &[], &[]));
}

#[test]
fn bad_scenarios_exit_2_with_the_place_and_the_rule() {
    let dir = scratch("bad");
    let cases = [
        (
            "syntax.ron",
            "(name: \"x\",\n duration: \"1s\" services: {})",
            "syntax.ron: line 2, column 17: Expected comma",
        ),
        (
            "unknown.ron",
            &small_scenario("wrokers: 3,"),
            "unknown.ron: line 13, column 5: Unexpected field named `wrokers` in `Scenario`",
        ),
        ("duration.ron", &small_scenario("bucket_width: \"1 fortnight\","), "invalid duration \"1 fortnight\""),
        (
            "reference.ron",
            &small_scenario("").replace("target: \"api\"", "target: \"apy\""),
            "reference.ron: clients[0].target: no service named \"apy\"",
        ),
        (
            "rule.ron",
            &small_scenario("").replace("workers: 4", "workers: 0"),
            "rule.ron: services.api.execution.thread_pool.workers: must be at least 1",
        ),
    ];
    for (name, text, message) in cases {
        let path = write(&dir, name, text);
        for command in ["run", "check"] {
            check(&[command, path.to_str().unwrap()], 2, &[], &[message]);
        }
    }
    check(&["run", "no/such/file.ron"], 2, &[], &["no/such/file.ron: cannot read the file"]);
    // A usage error is bad input too.
    check(&["run", "--format", "yaml"], 2, &[], &["invalid value 'yaml'"]);
    check(&["frobnicate"], 2, &[], &["unrecognized subcommand"]);
}

#[test]
fn a_run_that_hits_a_limit_exits_1_naming_the_limit() {
    let dir = scratch("limit");
    let events = write(&dir, "events.ron", &small_scenario("limits: (events_max: 1000),"));
    check(
        &["run", events.to_str().unwrap()],
        1,
        &[],
        &["events.ron: run stopped: event budget exhausted", "events_max"],
    );
    // compare and sweep stop at the same limit with the same exit code.
    let events = events.to_str().unwrap();
    check(
        &["compare", events, events, "--seeds", "2", "-q"],
        1,
        &[],
        &["(seed 3): run stopped: event budget exhausted"],
    );
    check(&["sweep", events, "--set", "seed=1,2", "-q"], 1, &[], &["job 0 (seed=1 seed 3): run stopped: event budget"]);
    let hang = small_scenario(
        r#"limits: (in_flight_max: 50), faults: [(target: "api", from: "1s", until: "9s", kind: hang)],"#,
    );
    let in_flight = write(&dir, "in-flight.ron", &hang);
    check(&["run", in_flight.to_str().unwrap()], 1, &[], &["in-flight limit reached", "limits.in_flight_max"]);
}

#[test]
fn check_prints_a_normalized_scenario_that_parses_back_to_itself() {
    let normalized =
        check(&["check", "scenarios/seed-cascade-protected.ron"], 0, &["name: \"seed cascade (protected)\""], &[]);
    let original = std::fs::read_to_string("scenarios/seed-cascade-protected.ron").unwrap();
    let a = stormglass::models::Scenario::from_ron(&original).unwrap();
    let b = stormglass::models::Scenario::from_ron(&normalized).unwrap();
    assert_eq!(a, b);
    // Defaults are spelled out.
    assert!(normalized.contains("drain: \"1m\"") && normalized.contains("in_flight_max: 1000000"), "{normalized}");
}

#[test]
fn compare_pairs_seeds_and_gives_intervals() {
    let stdout = check(
        &[
            "compare",
            "scenarios/seed-cascade-unprotected.ron",
            "scenarios/seed-cascade-protected.ron",
            "--seeds",
            "3",
            "--quiet",
        ],
        0,
        &["seed-cascade-unprotected (A) vs seed-cascade-protected (B): 3 paired seeds from 42", "B - A"],
        &[],
    );
    // Protection raises /products availability during the hang, significantly.
    let line = stdout.lines().find(|l| l.starts_with("GET /products: availability in faults")).expect("metric row");
    assert!(line.ends_with('*'), "{line}");
    check(&["compare", "scenarios/seed-cascade-unprotected.ron", "x.ron"], 2, &[], &["x.ron: cannot read the file"]);
    let a = "scenarios/seed-cascade-protected.ron";
    check(&["compare", a, a, "--seeds", "0"], 2, &[], &["--seeds: must be between 1 and"]);
}

#[test]
fn sweep_shards_merge_into_the_whole_sweep() {
    let dir = scratch("sweep");
    let file = write(&dir, "small.ron", &small_scenario(""));
    let file = file.to_str().unwrap();
    let common =
        [file, "--set", "services.api.execution.workers=1,2,4", "--set", "duration=2s,4s", "--seeds", "2", "-q"];
    let whole = check(
        &[&["sweep"][..], &common].concat(),
        0,
        &["job,jobs_total,services.api.execution.workers,duration,seed"],
        &[],
    );
    assert_eq!(whole.lines().count(), 1 + 3 * 2 * 2, "{whole}");
    // Fewer workers, lower availability: the setting reaches the model.
    let availability = |line: &str| line.split(',').nth(6).unwrap().parse::<f64>().unwrap();
    let rows: Vec<&str> = whole.lines().skip(1).collect();
    assert!(availability(rows[0]) < availability(rows[11]), "{whole}");
    let mut shards = Vec::new();
    for i in 0..3 {
        let out = dir.join(format!("shard{i}.csv"));
        let shard = format!("{i}/3");
        check(&[&["sweep"][..], &common, &["--shard", &shard, "--out", out.to_str().unwrap()]].concat(), 0, &[], &[]);
        shards.push(out.to_str().unwrap().to_string());
    }
    let merged = check(&["merge", &shards[2], &shards[0], &shards[1]], 0, &[], &[]);
    assert_eq!(merged, whole);
    check(&["merge", &shards[0], &shards[1]], 2, &[], &["4 of 12 jobs are missing (jobs 2, 5, 8, 11)"]);
    check(&["merge", &shards[0], &shards[0]], 2, &[], &["job 0 is also in"]);
    let json_out = dir.join("sweep.json");
    check(&[&["sweep"][..], &common, &["--jobs", "1", "--out", json_out.to_str().unwrap()]].concat(), 0, &[], &[]);
    let rows: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json_out).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 12);
    assert_eq!(rows[11]["settings"]["services.api.execution.workers"], "4");
    check(
        &["sweep", file, "--set", "services.api.execution.workers=0"],
        2,
        &[],
        &["services.api.execution.thread_pool.workers: must be at least 1"],
    );
    check(
        &["sweep", file, "--set", "services.db.execution.workers=2"],
        2,
        &[],
        &["`services` has no field or index `db`"],
    );
    check(&["sweep", file, "--shard", "3/3"], 2, &[], &["--shard \"3/3\": expected I/N with 0 <= I < N"]);
}

#[test]
fn replay_prints_decisions_and_transitions_of_a_breaker() {
    let dir = scratch("replay");
    let pattern =
        write(&dir, "breaker.ron", r#"breaker((kind: consecutive((failure_threshold: 2, recovery_timeout: "10s"))))"#);
    let calls = write(
        &dir,
        "calls.csv",
        "time,outcome,latency\n0s,503,10ms\n1s,timeout,2s\n2s,200,10ms\n4s,200,10ms\n20s,200,10ms\n",
    );
    let stdout =
        check(&["replay", "--pattern", pattern.to_str().unwrap(), "--calls", calls.to_str().unwrap()], 0, &[], &[]);
    let expected = "\
time,call,key,event,detail,state
0.000s,0,,admitted,admitted,closed
0.010s,0,,result,503,closed
1.000s,1,,admitted,admitted,closed
2.000s,2,,admitted,admitted,closed
2.010s,2,,result,200,closed
3.000s,1,,result,timeout,closed
4.000s,3,,admitted,admitted,closed
4.010s,3,,result,200,closed
20.000s,4,,admitted,admitted,closed
20.010s,4,,result,200,closed
";
    // The success at 2.01 s ends the run of failures before the timeout
    // lands at 3 s: results reach the breaker when calls end, not when they start.
    assert_eq!(stdout, expected);
    let calls = write(&dir, "failing.csv", "time,outcome,latency\n0s,503,1ms\n1s,503,1ms\n2s,200,1ms\n12s,200,1ms\n");
    check(
        &["replay", "--pattern", pattern.to_str().unwrap(), "--calls", calls.to_str().unwrap()],
        0,
        &[
            "1.001s,1,,transition,closed -> open (consecutive_failures),open",
            "2.000s,2,,rejected,\"circuit open, retry_after 9.001s\",open",
            "12.000s,3,,transition,open -> half_open (open_elapsed),half_open",
            "12.000s,3,,admitted,admitted as a probe,half_open",
            "12.001s,3,,transition,half_open -> closed (probes_succeeded),closed",
        ],
        &[],
    );
}

#[test]
fn replay_runs_limiters_per_key_and_budgets() {
    let dir = scratch("replay-limits");
    let keyed = write(
        &dir,
        "keyed.ron",
        r#"keyed_limiter((limiter: (algorithm: "fixed_window", limit: "1/second"), keys_max: 10))"#,
    );
    let calls = write(
        &dir,
        "calls.csv",
        "time,outcome,latency,key\n0s,200,1ms,alice\n0.5s,200,1ms,bob\n0.6s,200,1ms,alice\n1s,200,1ms,alice\n",
    );
    check(
        &["replay", "--pattern", keyed.to_str().unwrap(), "--calls", calls.to_str().unwrap()],
        0,
        &[
            "0.500s,1,bob,allowed,remaining 0,",
            "0.600s,2,alice,denied,\"retry_after 400ms, remaining 0\",",
            "1.000s,3,alice,allowed,",
        ],
        &[],
    );
    let budget = write(&dir, "budget.ron", "budget(token_bucket((max_tokens: 2, token_ratio: 0.5)))");
    let calls = write(&dir, "retries.csv", "time,outcome,latency,attempt\n0s,503,1ms,1\n1s,503,1ms,2\n2s,503,1ms,2\n");
    check(
        &["replay", "--pattern", budget.to_str().unwrap(), "--calls", calls.to_str().unwrap()],
        0,
        &["0.001s,0,,result,503,tokens 1.000", "1.000s,1,,throttled,retry,tokens 1.000"],
        &[],
    );
}

#[test]
fn replay_errors_name_the_file_the_line_and_the_column() {
    let dir = scratch("replay-bad");
    let good = write(&dir, "limiter.ron", r#"limiter((algorithm: "token_bucket", rate: "10/second", burst: 5))"#);
    let good = good.to_str().unwrap();
    let cases = [
        ("time,outcome,latency\n1s,200,10\n", "line 2, column 8: latency: invalid duration \"10\""),
        ("time,outcome,latency\n1s,maybe,10ms\n", "line 2, column 4: outcome: \"maybe\" is not a status code"),
        (
            "time,outcome,latency\n2s,200,1ms\n1s,200,1ms\n",
            "line 3, column 1: time: 1.000s is before the previous call's 2.000s",
        ),
        ("time,latency\n", "line 1: the header must name time, outcome and latency"),
        ("time,outcome,latency,colour\n", "line 1: unknown column \"colour\""),
        ("time,outcome,latency\n1s,200\n", "line 2: 2 cells, the header has 3"),
    ];
    for (text, message) in cases {
        let calls = write(&dir, "calls.csv", text);
        check(&["replay", "--pattern", good, "--calls", calls.to_str().unwrap()], 2, &[], &[message]);
    }
    let calls = write(&dir, "ok.csv", "time,outcome,latency\n");
    let bad_limit =
        write(&dir, "bad-limit.ron", r#"limiter((algorithm: "token_bucket", rate: "10/fortnight", burst: 5))"#);
    check(
        &["replay", "--pattern", bad_limit.to_str().unwrap(), "--calls", calls.to_str().unwrap()],
        2,
        &[],
        &["bad-limit.ron: line 1, column", "10/fortnight"],
    );
    let bad_rule = write(&dir, "bad-rule.ron", r#"limiter((algorithm: "token_bucket", rate: "10/second", burst: 0))"#);
    check(
        &["replay", "--pattern", bad_rule.to_str().unwrap(), "--calls", calls.to_str().unwrap()],
        2,
        &[],
        &["bad-rule.ron: limiter.burst: must be at least 1"],
    );
}

/// Every chart and the page parse as XML; returns the page's text.
fn well_formed_bundle(dir: &Path, expected_files: &[&str]) -> String {
    for name in expected_files {
        assert!(dir.join(name).is_file(), "{name} missing in {}", dir.display());
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "svg") {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(doc.root_element().tag_name().name(), "svg", "{}", path.display());
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    // The doctype is HTML's, not XML's; the rest must be well-formed XHTML.
    let body = html.strip_prefix("<!DOCTYPE html>\n").expect("doctype first");
    let doc = roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("report.html: {e}"));
    let svgs = doc.descendants().filter(|n| n.tag_name().name() == "svg").count();
    let charts = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg"))
        .count();
    assert_eq!(svgs, charts, "every chart is inlined once");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "no network needed");
    html
}

/// The text of every `<text>` element of an SVG: the chart's labels and legend.
fn svg_texts(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    doc.descendants().filter(|n| n.tag_name().name() == "text").filter_map(|n| n.text()).collect::<Vec<_>>().join("\n")
}

#[test]
fn out_writes_reports_charts_and_a_self_contained_page() {
    let dir = scratch("bundle-one");
    let out = dir.join("out");
    check(&["run", "scenarios/seed-cascade-protected.ron", "--out", out.to_str().unwrap(), "-q"], 0, &[], &[]);
    let html = well_formed_bundle(
        &out,
        &[
            "seed-cascade-protected.json",
            "seed-cascade-protected.timelines.csv",
            "summary.csv",
            "route-GET_products.svg",
            "route-GET_orders_id.svg",
            "service-order.svg",
            "service-user.svg",
            "report.html",
        ],
    );
    assert!(
        html.contains("<td>GET /orders/{id}</td>") && html.contains("breaker order -&gt; user opened at"),
        "{html}"
    );
    let orders = svg_texts(&out.join("route-GET_orders_id.svg"));
    for series in ["goodput", "degraded (fallback)", "fault: user hang", "breaker open: order -> user"] {
        assert!(orders.contains(series), "route chart lacks {series:?}:\n{orders}");
    }
    let order = svg_texts(&out.join("service-order.svg"));
    for series in
        ["answered", "rejected: queue full", "p50 latency", "p99 latency", "queue length (mean)", "busy workers (mean)"]
    {
        assert!(order.contains(series), "service chart lacks {series:?}:\n{order}");
    }
    let report: stormglass::models::Report =
        serde_json::from_str(&std::fs::read_to_string(out.join("seed-cascade-protected.json")).unwrap()).unwrap();
    assert_eq!(report.seed, 42);
    let timelines = std::fs::read_to_string(out.join("seed-cascade-protected.timelines.csv")).unwrap();
    assert_eq!(timelines, report.timelines_csv());
}

#[test]
fn compare_and_the_default_run_overlay_both_variants() {
    let dir = scratch("bundle-two");
    let out = dir.join("out");
    check(&["run", "--out", out.to_str().unwrap(), "-q"], 0, &[], &[]);
    well_formed_bundle(&out, &["unprotected.json", "protected.json", "report.html"]);
    let products = svg_texts(&out.join("route-GET_products.svg"));
    for series in [
        "unprotected: goodput",
        "protected: goodput",
        "unprotected: failed: queue_full",
        "protected: breaker open: order -> user",
    ] {
        assert!(products.contains(series), "overlay lacks {series:?}:\n{products}");
    }
    let out = dir.join("compare");
    let a = "scenarios/seed-cascade-unprotected.ron";
    let b = "scenarios/seed-cascade-protected.ron";
    check(&["compare", a, b, "--seeds", "1", "--out", out.to_str().unwrap(), "-q"], 0, &["(one seed)"], &[]);
    well_formed_bundle(&out, &["seed-cascade-unprotected.json", "seed-cascade-protected.json", "report.html"]);
    let order = svg_texts(&out.join("service-order.svg"));
    assert!(
        order.contains("seed-cascade-unprotected: busy workers (mean)")
            && order.contains("seed-cascade-protected: busy workers (mean)")
    );
}
