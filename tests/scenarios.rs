//! The shipped scenarios: every file in `scenarios/` parses, validates and
//! runs; replays byte for byte from its seed and changes with another seed;
//! and the new example scenarios tell the story their headers promise.
//!
//! Files are discovered by listing the directory, so a new scenario is covered
//! by the first two checks without touching this file. The stories are
//! asserted on each file's own seed; the seed cascade's story lives in
//! `models/tests/cascade_story.rs`, on the Rust builder that
//! `models/tests/seed_ron.rs` keeps equal to the files.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use stormglass::core::time::{SimDuration, SimTime};
use stormglass::core::timeline::{SeriesData, Timeline};
use stormglass::models::report::{Cause, Report};
use stormglass::models::{Scenario, run};

/// Files that are variants of one another: the same system, the same random
/// streams, one policy changed; `stormglass compare A B` shows the change.
const VARIANTS: [(&str, &str); 4] = [
    ("seed-cascade-unprotected.ron", "seed-cascade-protected.ron"),
    ("retry-storm.ron", "retry-storm-budget.ron"),
    ("bulkheads-none.ron", "bulkheads.ron"),
    ("adaptive-throttling-off.ron", "adaptive-throttling-on.ron"),
];

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every `*.ron` file in `scenarios/`, by file name, sorted.
fn shipped() -> Vec<String> {
    let dir = scenarios_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".ron"))
        .collect();
    names.sort();
    names
}

fn text(name: &str) -> String {
    let path = scenarios_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The scenario in `scenarios/<name>`, parsed and validated.
fn load(name: &str) -> Scenario {
    let scenario = Scenario::from_ron(&text(name)).unwrap_or_else(|e| panic!("scenarios/{name}: {e}"));
    scenario.validate().unwrap_or_else(|e| panic!("scenarios/{name}: {e}"));
    scenario
}

fn run_or_panic(name: &str, scenario: &Scenario) -> Report {
    run(scenario).unwrap_or_else(|e| {
        panic!("scenarios/{name} with seed {}: {e} (rerun: cargo test --test scenarios)", scenario.seed)
    })
}

/// Runs `job` on every name at once, one thread each, and collects the results
/// by name.
fn on_every<T: Send>(names: &[String], job: impl Fn(&str) -> T + Sync) -> BTreeMap<String, T> {
    std::thread::scope(|scope| {
        let job = &job;
        let handles: Vec<_> = names.iter().map(|name| (name, scope.spawn(move || job(name)))).collect();
        handles
            .into_iter()
            .map(|(name, handle)| {
                let result = handle.join().unwrap_or_else(|_| panic!("scenarios/{name}: the check panicked"));
                (name.clone(), result)
            })
            .collect()
    })
}

/// Each shipped scenario's report at its own seed, run once and shared by the
/// tests.
fn reports() -> &'static BTreeMap<String, Report> {
    static REPORTS: OnceLock<BTreeMap<String, Report>> = OnceLock::new();
    REPORTS.get_or_init(|| on_every(&shipped(), |name| run_or_panic(name, &load(name))))
}

fn report(name: &str) -> &'static Report {
    reports().get(name).unwrap_or_else(|| panic!("scenarios/{name} is not shipped"))
}

fn bytes(report: &Report) -> String {
    ron::to_string(report).expect("a report serializes")
}

// ---- reading timelines ----------------------------------------------------

/// The buckets of `timeline` covering `[from_ms, until_ms)`.
fn span(timeline: &Timeline, from_ms: u64, until_ms: u64) -> Range<usize> {
    timeline.buckets.index(SimTime::from_millis(from_ms))..timeline.buckets.index(SimTime::from_millis(until_ms))
}

/// The count series `series`; an absent series (a cause that never happened)
/// reads as zeros.
fn counts(timeline: &Timeline, series: &str) -> Vec<u64> {
    match timeline.series.get(series) {
        Some(SeriesData::Counts(c)) => c.clone(),
        Some(_) => panic!("{series} is not a count series"),
        None => vec![0; timeline.buckets.count],
    }
}

fn gauge_max(timeline: &Timeline, series: &str) -> Vec<u64> {
    match timeline.series.get(series) {
        Some(SeriesData::Gauge { max, .. }) => max.clone(),
        _ => panic!("{series} is not a gauge series"),
    }
}

/// The mean per second of `series` over `[from_s, until_s)`.
fn rate(timeline: &Timeline, series: &str, from_s: u64, until_s: u64) -> f64 {
    let sum: u64 = counts(timeline, series)[span(timeline, from_s * 1000, until_s * 1000)].iter().sum();
    sum as f64 / (until_s - from_s) as f64
}

/// The most counted in any `window` consecutive buckets.
fn window_max(counts: &[u64], window: usize) -> u64 {
    counts.windows(window).map(|w| w.iter().sum()).max().unwrap_or(0)
}

fn route<'a>(report: &'a Report, name: &str) -> &'a Timeline {
    &report.routes.get(name).unwrap_or_else(|| panic!("no route {name}")).timeline
}

fn service<'a>(report: &'a Report, name: &str) -> &'a Timeline {
    &report.services.get(name).unwrap_or_else(|| panic!("no service {name}")).timeline
}

fn edge<'a>(report: &'a Report, name: &str) -> &'a Timeline {
    &report.edges.get(name).unwrap_or_else(|| panic!("no edge {name}")).timeline
}

// ---- every file ------------------------------------------------------------

#[test]
fn every_shipped_scenario_has_a_header_parses_validates_and_runs() {
    let names = shipped();
    assert!(names.len() >= 9, "scenarios/ holds only {names:?}");
    for name in &names {
        // Each file opens with a comment that says what it shows.
        let text = text(name);
        let header: Vec<&str> = text.lines().take_while(|line| line.starts_with("//")).collect();
        assert!(!header.is_empty(), "scenarios/{name} does not open with a // comment header");
        assert!(
            header.iter().any(|line| line.contains("What it shows")),
            "the header of scenarios/{name} does not say what it shows"
        );
        let scenario = load(name);
        let report = report(name);
        assert_eq!((report.scenario.as_str(), report.seed), (scenario.name.as_str(), scenario.seed), "{name}");
        assert!(report.summary.requests > 0, "scenarios/{name} sent no request");
        for (route, r) in &report.routes {
            assert!(r.arrivals > 0, "scenarios/{name}: route {route} saw no arrival");
        }
        // The drain lets everything finish: no request is left hanging.
        let in_flight: u64 = report.routes.values().map(|r| r.in_flight_at_end).sum();
        assert_eq!(in_flight, 0, "scenarios/{name}: requests still in flight at the end");
    }
    for (a, b) in VARIANTS {
        assert!(names.iter().any(|n| n == a) && names.iter().any(|n| n == b), "variant pair {a} / {b} not shipped");
    }
}

#[test]
fn every_shipped_scenario_replays_from_its_seed_and_changes_with_another() {
    let failures: Vec<String> = on_every(&shipped(), |name| {
        let mut scenario = load(name);
        let seed = scenario.seed;
        let first = bytes(report(name));
        let again = bytes(&run_or_panic(name, &scenario));
        scenario.seed = seed.wrapping_add(1);
        let mut other = run_or_panic(name, &scenario);
        // The report names its seed; compare everything else.
        other.seed = seed;
        let other = bytes(&other);
        let mut problems = Vec::new();
        if first != again {
            problems.push(format!("scenarios/{name}: seed {seed} gave different bytes on a second run"));
        }
        if first == other {
            problems.push(format!("scenarios/{name}: seeds {seed} and {} gave the same report", seed.wrapping_add(1)));
        }
        problems
    })
    .into_values()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}\n(rerun: cargo test --test scenarios)", failures.join("\n"));
}

#[test]
fn variants_see_the_same_arrivals() {
    // Common random numbers: a variant changes one policy, so its clients send
    // the same requests at the same instants.
    for (a, b) in VARIANTS {
        let (ra, rb) = (report(a), report(b));
        assert_eq!(ra.routes.keys().collect::<Vec<_>>(), rb.routes.keys().collect::<Vec<_>>(), "{a} / {b}");
        for name in ra.routes.keys() {
            assert_eq!(
                counts(route(ra, name), "arrivals"),
                counts(route(rb, name), "arrivals"),
                "{a} / {b}: arrivals of {name} differ"
            );
        }
    }
}

// ---- retry storm -------------------------------------------------------------

const ITEMS: &str = "GET /items";

#[test]
fn retry_storm_a_short_spike_leaves_goodput_collapsed() {
    let r = report("retry-storm.ron");
    let items = route(r, ITEMS);
    // Before the spike (20 s..25 s): everything offered is answered, no retry.
    let offered_before = rate(items, "arrivals", 5, 20);
    let goodput_before = rate(items, "ok", 5, 20);
    assert!(goodput_before > 0.98 * offered_before, "goodput {goodput_before}/s of {offered_before}/s offered");
    let api = service(r, "api");
    let api_before = rate(api, "arrivals", 5, 20);
    assert!(api_before < 1.02 * offered_before, "api saw {api_before}/s for {offered_before}/s offered");
    // Well after the spike, offered load is back to normal...
    let offered_after = rate(items, "arrivals", 30, 60);
    assert!((offered_after / offered_before - 1.0).abs() < 0.1, "offered {offered_after}/s, before {offered_before}/s");
    // ...but goodput stays collapsed until traffic stops,
    let goodput_after = rate(items, "ok", 30, 60);
    assert!(
        goodput_after < 0.02 * goodput_before,
        "goodput {goodput_after}/s after the spike, {goodput_before}/s before"
    );
    // because retries keep api at several times the offered load with a full queue.
    let api_after = rate(api, "arrivals", 30, 60);
    assert!(api_after > 3.0 * offered_after, "api saw {api_after}/s for {offered_after}/s offered");
    let queue = gauge_max(api, "queue_length");
    assert!(queue[span(api, 30_000, 60_000)].iter().all(|&q| q == 200), "api's queue drained after the spike");
    let failed = &r.routes[ITEMS].failed;
    assert!(failed.get(&Cause::Timeout).copied().unwrap_or(0) > 1000, "{failed:?}");
    // Once traffic stops, the queue empties and the last requests succeed.
    assert!(rate(items, "ok", 60, 62) > 0.0);
}

#[test]
fn retry_storm_with_a_budget_recovers_after_the_spike() {
    let storm = report("retry-storm.ron");
    let r = report("retry-storm-budget.ron");
    let items = route(r, ITEMS);
    // The same traffic, and the same answers before the spike.
    assert_eq!(counts(items, "ok")[..20], counts(route(storm, ITEMS), "ok")[..20]);
    // The spike still hurts while it lasts...
    assert!(rate(items, "ok", 22, 25) < 10.0);
    // ...but goodput is back within 5 s of its end, and retries have stopped.
    let offered_after = rate(items, "arrivals", 30, 60);
    let goodput_after = rate(items, "ok", 30, 60);
    assert!(goodput_after > 0.98 * offered_after, "goodput {goodput_after}/s of {offered_after}/s offered");
    let recovered_s = counts(items, "ok").iter().skip(25).position(|&ok| ok > 100).map(|i| 25 + i);
    assert!(recovered_s.is_some_and(|s| s <= 30), "goodput back only at {recovered_s:?} s");
    let api_after = rate(service(r, "api"), "arrivals", 30, 60);
    assert!(api_after < 1.02 * offered_after, "api saw {api_after}/s for {offered_after}/s offered");
    // The budget refused retries around the spike only...
    let throttled = counts(items, "throttled");
    assert!(throttled[20..28].iter().sum::<u64>() > 100);
    assert_eq!(throttled[30..].iter().sum::<u64>(), 0);
    // ...and a request whose retry it refused failed as its last attempt
    // did (gRPC returns that status), never as "throttled": in every bucket,
    // each refusal is one of the failures.
    assert!(!r.routes[ITEMS].failed.contains_key(&Cause::Throttled), "{:?}", r.routes[ITEMS].failed);
    let failed_series: Vec<Vec<u64>> =
        Cause::ALL.iter().map(|c| counts(items, &format!("failed_{}", c.name()))).collect();
    let failures = |bucket: usize| failed_series.iter().map(|series| series[bucket]).sum::<u64>();
    assert!((0..throttled.len()).all(|b| throttled[b] <= failures(b)), "{throttled:?}");
}

// ---- rate limiters -------------------------------------------------------------

const LIMITERS: [&str; 6] = ["fixed_window", "sliding_log", "sliding_window", "token_bucket", "gcra", "leaky_queue"];

/// Admitted calls (attempts, booked when let through) per 100 ms bucket.
fn admitted(r: &Report, limiter: &str) -> Vec<u64> {
    counts(edge(r, &format!("gateway -> {limiter}")), "attempts")
}

#[test]
fn rate_limiters_compared_on_the_same_burst() {
    let r = report("rate-limiters.ron");
    let gateway = |l: &str| edge(r, &format!("gateway -> {l}"));
    assert_eq!(gateway("fixed_window").buckets.width, SimDuration::from_millis(100));
    let calls = counts(gateway("fixed_window"), "calls");
    for limiter in LIMITERS {
        let edge = gateway(limiter);
        // Every limiter is offered exactly the same calls.
        assert_eq!(counts(edge, "calls"), calls, "{limiter}");
        // Below the limit (60 req/s, before the burst at 10.5 s) none refuses.
        let refused: u64 = counts(edge, "failed")[span(edge, 0, 10_500)].iter().sum();
        assert_eq!(refused, 0, "{limiter} refused calls below its limit");
        assert!(r.edges[&format!("gateway -> {limiter}")].stats.rejected_rate_limited > 500, "{limiter}");
    }
    let second = 10; // buckets per second

    // Fixed window: at most 100 in each aligned second, but a full window on
    // each side of the boundary at 11 s: far more than 100 in one second.
    let fixed = admitted(r, "fixed_window");
    assert!(fixed.chunks(second).all(|w| w.iter().sum::<u64>() <= 100));
    let fixed_max = window_max(&fixed, second);
    assert!(fixed_max > 150, "fixed window admitted at most {fixed_max} in a second");
    let straddle: u64 = fixed[span(gateway("fixed_window"), 10_500, 11_500)].iter().sum();
    assert!(straddle > 150, "fixed window admitted {straddle} over [10.5 s, 11.5 s)");

    // Sliding log: never more than 100 in any second.
    let log_max = window_max(&admitted(r, "sliding_log"), second);
    assert!(log_max <= 100, "sliding log admitted {log_max} in a second");
    assert!(log_max >= 95, "sliding log never reached its limit: {log_max}");

    // Sliding window counter: an estimate, between the two.
    let counter_max = window_max(&admitted(r, "sliding_window"), second);
    assert!(counter_max > 100 && counter_max < fixed_max, "sliding window: {counter_max}, fixed: {fixed_max}");

    // Token bucket and GCRA: the same decisions, call for call; at most
    // burst + rate x t in any span t.
    let bucket = admitted(r, "token_bucket");
    assert_eq!(bucket, admitted(r, "gcra"));
    assert_eq!(r.edges["gateway -> token_bucket"].stats, r.edges["gateway -> gcra"].stats);
    for n in 1..=second {
        let most = window_max(&bucket, n);
        assert!(most <= 20 + 10 * n as u64, "token bucket admitted {most} in {n} buckets");
    }
    assert!(window_max(&bucket, 1) > 20, "the token bucket's burst never showed");

    // Leaky queue: paced at exactly 10 per 100 ms, refuses the fewest, and
    // goes on admitting what it queued after the burst ends.
    let leaky = admitted(r, "leaky_queue");
    assert_eq!(leaky.iter().max(), Some(&10));
    let refused = |l: &str| r.edges[&format!("gateway -> {l}")].stats.rejected_rate_limited;
    for limiter in LIMITERS.iter().filter(|&&l| l != "leaky_queue") {
        assert!(refused("leaky_queue") < refused(limiter), "leaky queue refused more than {limiter}");
    }
    let after_burst = span(gateway("leaky_queue"), 11_500, 12_000);
    let (sent, offered): (u64, u64) = (leaky[after_burst.clone()].iter().sum(), calls[after_burst].iter().sum());
    assert!(sent == 50 && offered < 40, "after the burst: {sent} admitted of {offered} offered");

    // Under the 2x overload (20 s..25 s) the fixed window spends each second's
    // 100 in its first ~0.6 s and admits next to nothing after; the token
    // bucket is steady.
    let overload = span(gateway("fixed_window"), 20_000, 25_000);
    let late = |admitted: &[u64]| -> u64 {
        overload.clone().step_by(second).map(|start| admitted[start + 6..start + second].iter().sum::<u64>()).sum()
    };
    assert!(late(&fixed) < 10, "fixed window admitted {} in the last 0.4 s of the overload's seconds", late(&fixed));
    assert!(late(&bucket) > 150, "token bucket admitted {} in the last 0.4 s of the overload's seconds", late(&bucket));
    assert!(bucket[overload.start + 5..overload.end].iter().all(|&n| (7..=13).contains(&n)));
}

// ---- bulkheads ---------------------------------------------------------------

#[test]
fn bulkheads_keep_the_other_route_available() {
    let with = report("bulkheads.ron");
    let without = report("bulkheads-none.ron");
    let during = |r: &Report, route: &str| r.routes[route].availability_during_faults.expect("a fault window");
    // With the bulkheads, GET /cart never notices that recs and reviews are slow.
    assert!(during(with, "GET /cart") >= 0.999, "{}", during(with, "GET /cart"));
    assert!(with.routes["GET /cart"].failed.is_empty(), "{:?}", with.routes["GET /cart"].failed);
    assert!(with.routes["GET /cart"].latency.p99 < SimDuration::from_millis(100));
    // The slow routes are answered degraded, from the fallback.
    for route in ["GET /recommendations", "GET /reviews"] {
        assert!(during(with, route) >= 0.999, "{route}: {}", during(with, route));
        assert!(with.routes[route].degraded > 1000, "{route}");
    }
    // Without them, the slow calls take every storefront worker and GET /cart
    // fails although cart is healthy.
    assert!(during(without, "GET /cart") < 0.5, "{}", during(without, "GET /cart"));
    assert!(without.routes["GET /cart"].failed.get(&Cause::QueueFull).copied().unwrap_or(0) > 1000);
    let fault = |r: &Report| span(service(r, "storefront"), 21_000, 80_000);
    let busy_with = gauge_max(service(with, "storefront"), "busy");
    let busy_without = gauge_max(service(without, "storefront"), "busy");
    assert!(busy_with[fault(with)].iter().all(|&b| b <= 30), "storefront's pool filled with bulkheads");
    assert!(busy_without[fault(without)].iter().all(|&b| b == 40), "storefront's pool did not fill without");
}

#[test]
fn bulkheads_semaphore_holds_its_permits_thread_pool_times_out() {
    let r = report("bulkheads.ron");
    // The semaphore-isolated call has no timeout: its slowest answers take the
    // whole 2 s; the thread-pool-isolated call gives up at 300 ms.
    let recommendations = &r.routes["GET /recommendations"].latency;
    let reviews = &r.routes["GET /reviews"].latency;
    assert!(recommendations.p99 >= SimDuration::from_secs(2), "recommendations p99 {}", recommendations.p99);
    assert!(reviews.p99 < SimDuration::from_millis(400), "reviews p99 {}", reviews.p99);
    assert!(reviews.max < SimDuration::from_millis(400), "reviews max {}", reviews.max);
    // So the thread pool's 8 slots turn over far more often than the
    // semaphore's 8 permits while the dependencies are slow.
    let attempts = |e: &str| rate(edge(r, e), "attempts", 21, 80);
    let (recs, reviews) = (attempts("storefront -> recs"), attempts("storefront -> reviews"));
    assert!(recs < 5.0 && reviews > 20.0, "attempts/s while slow: recs {recs}, reviews {reviews}");
    let stats = |e: &str| r.edges[e].stats;
    assert!(stats("storefront -> recs").rejected_bulkhead_full > stats("storefront -> reviews").rejected_bulkhead_full);
    assert_eq!(stats("storefront -> recs").fallbacks, stats("storefront -> recs").rejected_bulkhead_full);
}

// ---- adaptive throttling -------------------------------------------------------

const QUERY: &str = "GET /query";

#[test]
fn adaptive_throttling_spares_the_backend_under_overload() {
    let off = report("adaptive-throttling-off.ron");
    let on = report("adaptive-throttling-on.ron");
    // The overload runs over [10 s, 40 s); skip its first seconds, while the
    // throttle's window fills.
    let (from, until) = (15, 40);
    let backend = |r: &Report| rate(service(r, "backend"), "arrivals", from, until);
    let offered = rate(route(off, QUERY), "arrivals", from, until);
    let goodput = |r: &Report| rate(route(r, QUERY), "ok", from, until);
    // Without throttling, retries of refused requests multiply the load.
    assert!(backend(off) > 2.0 * offered, "backend {}/s for {offered}/s offered", backend(off));
    // With it, the backend sees about K = 2 times what it accepts...
    assert!(backend(on) < 0.35 * backend(off), "backend {}/s with throttling, {}/s without", backend(on), backend(off));
    assert!(backend(on) < 2.5 * goodput(on), "backend {}/s for {}/s accepted", backend(on), goodput(on));
    // ...and answers just as many.
    assert!(goodput(on) > 0.95 * goodput(off), "goodput {}/s with throttling, {}/s without", goodput(on), goodput(off));
    // Requests that would fail are refused in the frontend, at once.
    let failed = |r: &Report, series: &str| rate(route(r, QUERY), series, from, until);
    assert!(failed(on, "failed_throttled") > 10.0 * failed(on, "failed_queue_full"));
    assert_eq!(failed(off, "failed_throttled"), 0.0);
    assert!(on.routes[QUERY].latency.p50.saturating_mul(3) < off.routes[QUERY].latency.p50);
    // The price: the window remembers the overload for a few seconds after it.
    let throttled_after = counts(route(on, QUERY), "failed_throttled");
    assert!(throttled_after[40..42].iter().sum::<u64>() > 0);
    assert_eq!(throttled_after[50..].iter().sum::<u64>(), 0);
}

// ---- fallbacks -------------------------------------------------------------

#[test]
fn fallbacks_a_default_lasts_a_cache_runs_out_a_mirror_answers() {
    let r = report("fallbacks.ron");
    let (hang_from, hang_until) = (30, 90);
    // Skip the first second of the hang: the breakers open within it.
    let during = |name: &str, series: &str| rate(route(r, name), series, hang_from + 1, hang_until);
    // The default answers throughout, degraded.
    assert!(r.routes["GET /static"].failed.is_empty(), "{:?}", r.routes["GET /static"].failed);
    assert!(during("GET /static", "degraded") > 45.0 && during("GET /static", "ok") == 0.0);
    // The cache answers while its answers are at most 30 s old (ttl 10 s
    // plus 20 s stale), then nothing is left.
    let cached = route(r, "GET /cached");
    let rate_cached = |series: &str, from: u64, until: u64| rate(cached, series, from, until);
    let failing = |from: u64, until: u64| {
        rate_cached("failed_circuit_open", from, until) + rate_cached("failed_timeout", from, until)
    };
    assert!(rate_cached("degraded", 31, 50) > 45.0, "served from the cache");
    assert_eq!(failing(31, 50), 0.0);
    assert_eq!(rate_cached("degraded", 61, hang_until), 0.0, "nothing younger than 30 s left");
    assert!(failing(61, hang_until) > 40.0);
    let served = |edge: &str| &r.edges[edge].fallbacks_by_served;
    let cache = served("storefront -> reviews_or_cache");
    assert!(cache["cache_fresh"] > 100 && cache["cache_stale"] > 100, "fresh, then stale: {cache:?}");
    // The mirror answers the whole hang, and only the hang.
    assert!(r.routes["GET /alternate"].failed.is_empty(), "{:?}", r.routes["GET /alternate"].failed);
    assert!(during("GET /alternate", "degraded") > 45.0);
    let mirror = service(r, "reviews-mirror");
    let alternate_route = route(r, "GET /alternate");
    let mirrored = rate(mirror, "arrivals", hang_from + 1, hang_until);
    let asked = rate(alternate_route, "arrivals", hang_from + 1, hang_until);
    assert!((mirrored - asked).abs() < 0.05 * asked, "mirror {mirrored}/s for {asked}/s asked");
    assert_eq!(rate(mirror, "arrivals", 0, hang_from) + rate(mirror, "arrivals", 95, 120), 0.0);
    assert_eq!(
        served("storefront -> reviews_or_mirror").get("alternate").copied(),
        Some(r.edges["storefront -> mirror"].stats.calls)
    );
    // After the hang every breaker closes and reviews answers again.
    for name in ["GET /static", "GET /cached", "GET /alternate"] {
        assert!(rate(route(r, name), "ok", 100, 120) > 45.0, "{name} back on reviews");
    }
}
