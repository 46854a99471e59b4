//! What each modelling feature does, on small scenarios: faults, execution
//! models, replicas, handlers, clients, and the validation of bad input.

use stormglass_core::time::SimDuration;
use stormglass_core::timeline::SeriesData;
use stormglass_models::report::{Cause, Report};
use stormglass_models::{Scenario, run};

/// A client `users` at `rps` on route "r" of service "api" (with `api` and
/// `extra` pasted into the services map and `faults` into the faults list).
fn scenario(rps: f64, api: &str, extra: &str, faults: &str, client_policy: &str) -> Scenario {
    let text = format!(
        r#"(
            name: "t", seed: 1, duration: "20s", drain: "40s",
            links: (default: (latency: Constant(value: "1ms"))),
            services: {{ "api": {api}, {extra} }},
            clients: [(name: "users", target: "api", rate: constant(rps: {rps:.1}), routes: [(route: "r")],
                       policy: {client_policy})],
            faults: [{faults}],
        )"#
    );
    let scenario = Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    scenario.validate().unwrap_or_else(|e| panic!("{e}"));
    scenario
}

const SIMPLE: &str = r#"(execution: thread_pool(workers: 4, queue_capacity: 100),
    routes: { "r": (steps: [compute(Constant(value: "10ms"))]) })"#;

fn failed(report: &Report, cause: Cause) -> u64 {
    report.routes["r"].failed.get(&cause).copied().unwrap_or(0)
}

#[test]
fn a_crash_refuses_connections_at_once_and_heals() {
    let s = scenario(100.0, SIMPLE, "", r#"(target: "api", from: "5s", until: "10s", kind: crash)"#, "()");
    let r = run(&s).unwrap();
    let refused = failed(&r, Cause::Refused);
    // ~500 arrivals in the 5 s window, all refused, none elsewhere.
    assert!((400..600).contains(&refused), "{refused}");
    assert_eq!(r.routes["r"].failed.len(), 1);
    // Refusals are fast: the p99 over the run stays at one service time + links.
    assert!(r.routes["r"].latency.max.as_millis() < 20);
    assert_eq!(r.services["api"].refused_by_crash, refused);
    assert_eq!(r.services["api"].lost_to_hang, 0);
}

#[test]
fn a_partition_ends_in_the_connect_timeout_not_the_read_timeout() {
    let policy = r#"(timeout: (connect: "2s", read: "7s", write: None, pool: None))"#;
    let partition = r#"(target: "api", from: "5s", until: "6s", kind: partition(from: "users"))"#;
    let r = run(&scenario(100.0, SIMPLE, "", partition, policy)).unwrap();
    let timeouts = failed(&r, Cause::Timeout);
    assert!((50..150).contains(&timeouts), "{timeouts}");
    // The slowest answer is a connect timeout: 2 s, not 7 s.
    let max = r.routes["r"].latency.max.as_secs_f64();
    assert!((1.99..2.01).contains(&max), "{max}");
}

#[test]
fn a_hang_holds_callers_until_their_read_timeout() {
    let policy = r#"(timeout: (connect: "2s", read: "7s", write: None, pool: None))"#;
    let hang = r#"(target: "api", from: "5s", until: "6s", kind: hang)"#;
    let r = run(&scenario(100.0, SIMPLE, "", hang, policy)).unwrap();
    let max = r.routes["r"].latency.max.as_secs_f64();
    assert!((7.0..7.01).contains(&max), "{max}");
    assert!((50..150).contains(&failed(&r, Cause::Timeout)));
}

#[test]
fn an_error_fault_fails_its_share() {
    let errors = r#"(target: "api", from: "0s", until: "20s", kind: errors((probability: 0.25, status: 503)))"#;
    let r = run(&scenario(200.0, SIMPLE, "", errors, "()")).unwrap();
    let share = failed(&r, Cause::ErrorStatus) as f64 / r.routes["r"].arrivals as f64;
    // 4000 arrivals: sd of the share is ~0.007.
    assert!((share - 0.25).abs() < 0.03, "{share}");
}

#[test]
fn capacity_loss_and_slowness_build_a_queue_then_heal() {
    // 4 workers x 10 ms serve 400/s; at 300/s losing 2 workers overloads it.
    let loss = r#"(target: "api", from: "5s", until: "10s", kind: capacity_loss(workers: 2))"#;
    let r = run(&scenario(300.0, SIMPLE, "", loss, "()")).unwrap();
    assert!(failed(&r, Cause::QueueFull) > 100, "{:?}", r.routes["r"].failed);
    let slow = r#"(target: "api", from: "5s", until: "10s", kind: slow(factor: 3.0))"#;
    let r = run(&scenario(100.0, SIMPLE, "", slow, "()")).unwrap();
    assert_eq!(r.routes["r"].failed.len(), 0);
    assert!(r.routes["r"].latency.max.as_millis() >= 30);
}

#[test]
fn replicas_share_the_load_by_balancer() {
    for balancer in ["round_robin", "random", "least_outstanding", "power_of_two"] {
        let api = format!(
            r#"(execution: thread_pool(workers: 1, queue_capacity: 1000), replicas: 4, balancer: {balancer},
                routes: {{ "r": (steps: [compute(Exponential(mean: "10ms"))]) }})"#
        );
        // 4 replicas x 1 worker x 10 ms serve 400/s; 200/s is fine only if
        // the load is spread (one replica alone would be at 200%).
        let r = run(&scenario(200.0, &api, "", "", "()")).unwrap();
        assert_eq!(r.routes["r"].availability, 1.0, "{balancer}");
        assert!(r.routes["r"].latency.p99.as_millis() < 500, "{balancer}: p99 {}", r.routes["r"].latency.p99);
    }
}

#[test]
fn parallel_calls_wait_for_the_slowest() {
    let api = r#"(execution: thread_pool(workers: 50, queue_capacity: 100),
        routes: { "r": (steps: [parallel([(dependency: "a", route: "x"), (dependency: "b", route: "x")])]) },
        dependencies: { "a": (service: "fast"), "b": (service: "slow") })"#;
    let extra = r#""fast": (execution: thread_pool(workers: 50), routes: { "x": (steps: [compute(Constant(value: "5ms"))]) }),
        "slow": (execution: thread_pool(workers: 50), routes: { "x": (steps: [compute(Constant(value: "30ms"))]) })"#;
    let r = run(&scenario(50.0, api, extra, "", "()")).unwrap();
    // 30 ms of work plus two link crossings each way (client and call).
    assert_eq!(r.routes["r"].latency.p50.as_millis(), 34);
}

#[test]
fn async_execution_keeps_no_thread_while_waiting() {
    // Both call a dependency that hangs for 10 s. With threads, 4 workers
    // are soon all waiting and the queue overflows; async keeps accepting.
    let extra =
        r#""dep": (execution: thread_pool(workers: 100), routes: { "x": (steps: [compute(Constant(value: "1ms"))]) })"#;
    let hang = r#"(target: "dep", from: "5s", until: "15s", kind: hang)"#;
    let policy = r#"(timeout: (connect: None, read: "1s", write: None, pool: None))"#;
    let make = |execution: &str| {
        format!(
            r#"(execution: {execution}, routes: {{ "r": (steps: [call((dependency: "d", route: "x", required: false))]) }},
                dependencies: {{ "d": (service: "dep", policy: {policy}) }})"#
        )
    };
    let threads =
        run(&scenario(100.0, &make("thread_pool(workers: 4, queue_capacity: 10)"), extra, hang, "()")).unwrap();
    let event_loop =
        run(&scenario(100.0, &make("async(concurrency_max: 4, queue_capacity: 10)"), extra, hang, "()")).unwrap();
    assert!(failed(&threads, Cause::QueueFull) > 500, "{:?}", threads.routes["r"].failed);
    assert_eq!(event_loop.routes["r"].failed.len(), 0, "{:?}", event_loop.routes["r"].failed);
    // The optional call failed: answered, but degraded.
    assert!(event_loop.routes["r"].degraded > 500);
}

#[test]
fn a_retry_after_hint_sets_the_floor_of_the_retry_delay() {
    // One worker, no queue, 100 ms per request at 5 req/s: about a third of
    // the attempts find the worker busy and get a 503. Users retry a 503
    // once, 10 ms later, unless the 503 says to wait longer.
    let api = |retry_after: &str| {
        format!(
            r#"(execution: thread_pool(workers: 1, queue_capacity: 0), {retry_after}
                routes: {{ "r": (steps: [compute(Constant(value: "100ms"))]) }})"#
        )
    };
    let policy = r#"(retry: (backoff: fixed(delay: "10ms"), stop: (attempts_max: 2)))"#;
    let run_with = |hint: &str| run(&scenario(5.0, &api(hint), "", "", policy)).unwrap();
    let plain = run_with("");
    let hinted = run_with(r#"retry_after: "2s","#);
    let (plain_r, hinted_r) = (&plain.routes["r"], &hinted.routes["r"]);
    // The same arrivals; without a hint every retry goes out at once.
    assert_eq!(plain_r.arrivals, hinted_r.arrivals);
    assert!(plain.services["api"].arrivals > plain_r.arrivals + 20, "retries reached api");
    assert!(plain_r.latency.max < SimDuration::from_millis(500), "{}", plain_r.latency.max);
    // With the hint, a retried request waited the 2 s it was asked to.
    assert!(hinted_r.latency.max >= SimDuration::from_secs(2), "{}", hinted_r.latency.max);
    assert!(hinted_r.latency.p50 < SimDuration::from_millis(200), "most requests never retry");
    // A hint beyond the policy's retry_after_max (30 s) is not honoured
    // with a shorter wait: the call gives up, and no retry reaches api.
    let refused = run_with(r#"retry_after: "60s","#);
    assert_eq!(refused.services["api"].arrivals, refused.routes["r"].arrivals);
    assert!(failed(&refused, Cause::QueueFull) > 20);
}

/// api calls `users` for the item each request asks for; `users` hangs
/// over [10 s, 15 s), and api's 100 ms read timeout falls back to the last
/// good answer for the same item, served while at most 4 s old (fresh for
/// 1 s, then stale for 3 s).
fn last_good_run(keys: &str) -> Report {
    let api = r#"(execution: thread_pool(workers: 50, queue_capacity: 100),
        routes: { "r": (steps: [call((dependency: "u", route: "x"))]) },
        dependencies: { "u": (service: "users", policy: (
            timeout: (connect: None, read: "100ms", write: None, pool: None),
            fallback: (kind: "last_good", cache: (ttl: "1s", max_staleness: "3s", capacity: 100)),
        )) })"#;
    let users = r#""users": (execution: thread_pool(workers: 50), routes: { "x": (steps: [compute(Constant(value: "5ms"))]) })"#;
    let hang = r#"(target: "users", from: "10s", until: "15s", kind: hang)"#;
    let text = format!(
        r#"(
            name: "t", seed: 1, duration: "20s", drain: "40s",
            links: (default: (latency: Constant(value: "1ms"))),
            services: {{ "api": {api}, {users} }},
            clients: [(name: "c", target: "api", rate: constant(rps: 50.0), routes: [(route: "r"{keys})])],
            faults: [{hang}],
        )"#
    );
    let scenario = Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    scenario.validate().unwrap_or_else(|e| panic!("{e}"));
    run(&scenario).unwrap()
}

#[test]
fn a_last_good_fallback_serves_each_item_s_last_answer_until_it_is_too_stale() {
    let counts = |r: &Report, series: &str| match r.routes["r"].timeline.series.get(series) {
        Some(SeriesData::Counts(c)) => c.clone(),
        _ => vec![0; r.routes["r"].timeline.buckets.count],
    };
    // 20 items at 50 req/s: each was answered a fraction of a second
    // before the hang, so its cached answer serves the first ~3.5 s of it.
    let items = last_good_run(", keys: 20");
    let (degraded, failed) = (counts(&items, "degraded"), counts(&items, "failed_timeout"));
    assert!(degraded[10..12].iter().all(|&n| n > 40), "served from the cache: {:?}", &degraded[9..16]);
    assert_eq!(failed[10..12].iter().sum::<u64>(), 0, "{:?}", &failed[9..16]);
    // Past max_staleness nothing is left to serve: the timeouts fail.
    assert_eq!(degraded[14], 0, "{:?}", &degraded[9..16]);
    assert!(failed[14] > 40, "{:?}", &failed[9..16]);
    let served = &items.edges["api -> u"].fallbacks_by_served;
    assert!(served["cache_fresh"] > 0 && served["cache_stale"] > served["cache_fresh"], "{served:?}");
    // Every request its own item: no answer to fall back on, ever.
    let unique = last_good_run("");
    assert_eq!(unique.routes["r"].degraded, 0);
    assert!(unique.edges["api -> u"].fallbacks_by_served.is_empty());
    assert!(counts(&unique, "failed_timeout")[10..15].iter().all(|&n| n > 40));
}

#[test]
fn an_alternate_fallback_calls_the_other_dependency_on_the_same_route() {
    // api reads from "primary" and, when it fails, from "backup"; primary
    // crashes over [5 s, 10 s).
    let api = r#"(execution: thread_pool(workers: 50, queue_capacity: 100),
        routes: { "r": (steps: [call((dependency: "main", route: "x"))]) },
        dependencies: {
            "main": (service: "primary", policy: (fallback: (kind: "alternate", dependency: "spare"))),
            "spare": (service: "backup"),
        })"#;
    let extra = r#""primary": (execution: thread_pool(workers: 50), routes: { "x": (steps: [compute(Constant(value: "5ms"))]) }),
        "backup": (execution: thread_pool(workers: 50), routes: { "x": (steps: [compute(Constant(value: "20ms"))]) })"#;
    let crash = r#"(target: "primary", from: "5s", until: "10s", kind: crash)"#;
    let r = run(&scenario(100.0, api, extra, crash, "()")).unwrap();
    let route = &r.routes["r"];
    // Nothing fails: the refused calls are answered by backup, degraded.
    assert!(route.failed.is_empty(), "{:?}", route.failed);
    let refused = r.services["primary"].refused_by_crash;
    assert!((400..600).contains(&refused), "{refused}");
    assert_eq!(route.degraded, refused);
    assert_eq!(r.services["backup"].arrivals, refused, "backup serves exactly the refused calls");
    let main = &r.edges["api -> main"];
    assert_eq!(main.fallbacks_by_served.get("alternate"), Some(&refused));
    assert_eq!(r.edges["api -> spare"].stats.calls, refused);
    // Backup's 20 ms shows in the slowest answers.
    assert!(route.latency.max >= SimDuration::from_millis(20), "{}", route.latency.max);
}

/// api calls a 100 ms dependency through a bulkhead of 2 slots at 30 req/s,
/// 1.5 times what 2 slots serve.
fn bulkhead_run(bulkhead: &str) -> Report {
    let api = format!(
        r#"(execution: thread_pool(workers: 100, queue_capacity: 100),
            routes: {{ "r": (steps: [call((dependency: "d", route: "x"))]) }},
            dependencies: {{ "d": (service: "dep", policy: (bulkhead: {bulkhead})) }})"#
    );
    let dep = r#""dep": (execution: thread_pool(workers: 100), routes: { "x": (steps: [compute(Constant(value: "100ms"))]) })"#;
    run(&scenario(30.0, &api, dep, "", "()")).unwrap()
}

#[test]
fn a_bulkhead_queue_makes_calls_wait_for_a_slot_up_to_max_wait() {
    let none = bulkhead_run(r#"(isolation: "semaphore", max_concurrent: 2)"#);
    let queued = bulkhead_run(r#"(isolation: "semaphore", max_concurrent: 2, queue_capacity: 50, max_wait: "1s")"#);
    let rejected = |r: &Report| r.edges["api -> d"].stats.rejected_bulkhead_full;
    // Without a queue, a third call at once is refused: a third of them.
    assert!(rejected(&none) > 150, "{}", rejected(&none));
    assert!(none.routes["r"].latency.max < SimDuration::from_millis(110), "{}", none.routes["r"].latency.max);
    // With one, calls wait for a slot: the queue grows by ~10 a second,
    // so waits grow until they pass max_wait and the oldest are refused.
    assert!(queued.routes["r"].latency.max > SimDuration::from_millis(900), "{}", queued.routes["r"].latency.max);
    assert!(queued.routes["r"].latency.max < SimDuration::from_millis(1110), "{}", queued.routes["r"].latency.max);
    assert!(
        rejected(&queued) > 0 && rejected(&queued) < rejected(&none),
        "{} vs {}",
        rejected(&queued),
        rejected(&none)
    );
    // The edge reports what the bulkhead did with each attempt: every one
    // sent got a slot at once or after waiting; every refusal was at once
    // (queue full) or a wait that reached max_wait; after the drain no
    // waiter is left.
    let books = |r: &Report| {
        let edge = &r.edges["api -> d"];
        let b = edge.bulkhead.expect("the edge has a bulkhead");
        assert_eq!(b.entered + b.promoted, edge.stats.attempts, "{b:?}");
        assert_eq!(b.rejected + b.expired, edge.stats.rejected_bulkhead_full, "{b:?}");
        assert_eq!(b.promoted + b.expired + b.cancelled, b.queued, "{b:?}");
        b
    };
    let (without, with) = (books(&none), books(&queued));
    assert_eq!((without.queued, without.expired), (0, 0));
    assert!(with.queued > 0 && with.promoted > 0 && with.expired > 0, "{with:?}");
    assert_eq!(with.rejected, 0, "a queue of 50 never fills at 10 waiters a second and 1 s waits");
    // The story tells of the waits, and only where there were some.
    let told = stormglass_models::story::single("queued", &queued);
    let line = format!(
        "bulkhead on api -> d: {} waited for a slot ({} got one, {} gave up); 0 refused at once",
        with.queued, with.promoted, with.expired
    );
    assert!(told.contains(&line), "{told}");
    assert!(!stormglass_models::story::single("none", &none).contains("bulkhead on"));
    // Every slot freed goes to a waiter at once: the dependency serves 20 a
    // second, its limit, while the queue is not empty.
    let served = queued.services["dep"].arrivals as f64 / 20.0;
    assert!(served > 19.0, "{served}/s");
    // A thread pool's queue never expires its tasks: only a full queue refuses.
    let pool = bulkhead_run(r#"(isolation: "thread_pool", workers: 2, queue_capacity: 4)"#);
    assert!(rejected(&pool) > 0);
    let slowest = pool.routes["r"].latency.max;
    // At most 4 waiting ahead, 2 served each 100 ms: 200 ms in the queue.
    assert!(slowest >= SimDuration::from_millis(250) && slowest < SimDuration::from_millis(320), "{slowest}");
}

#[test]
fn closed_loop_users_wait_then_think() {
    let text = r#"(
        name: "closed", duration: "20s", drain: "5s",
        links: (default: (latency: Constant(value: "0s"))),
        services: { "api": (execution: thread_pool(workers: 100), routes: { "r": (steps: [compute(Constant(value: "100ms"))]) }) },
        clients: [(name: "users", target: "api", closed_loop: (users: 10, think_time: Constant(value: "900ms")), routes: [(route: "r")])],
    )"#;
    let r = run(&Scenario::from_ron(text).unwrap()).unwrap();
    // Each user cycles every 1 s: ~10 users x 20 s.
    let arrivals = r.routes["r"].arrivals;
    assert!((190..=210).contains(&arrivals), "{arrivals}");
}

/// A closed loop of `users` against a route that always answers 503, each
/// request retried once if the client's budget allows.
fn budgeted_users(users: u32, population: &str) -> Scenario {
    let text = format!(
        r#"(
        name: "budgets", duration: "10s", drain: "5s",
        links: (default: (latency: Constant(value: "0s"))),
        services: {{ "api": (execution: thread_pool(workers: 100),
            routes: {{ "r": (steps: [compute(Constant(value: "10ms"))], errors: (probability: 1.0, status: 503)) }}) }},
        clients: [(name: "users", target: "api", closed_loop: (users: {users}, think_time: Constant(value: "90ms")),
            {population} routes: [(route: "r")],
            policy: (retry: (backoff: fixed(delay: "1ms"), stop: (attempts_max: 2)),
                     budget: token_bucket((max_tokens: 4, token_ratio: 0.001))))],
    )"#
    );
    Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn closed_loop_users_each_have_their_own_retry_budget() {
    // A bucket of 4 tokens allows a retry while it holds more than 2: the
    // first request's two failed attempts leave 2, and from then on the
    // user's retries are throttled. Ten users: ten retries, one each.
    for population in ["", "population: 10,"] {
        let r = run(&budgeted_users(10, population)).unwrap();
        let retries = r.services["api"].arrivals - r.routes["r"].arrivals;
        assert_eq!(retries, 10, "{population:?}");
        // Every user sent about 100 requests (a 100 ms cycle over 10 s).
        let arrivals = r.routes["r"].arrivals;
        assert!((990..=1010).contains(&arrivals), "{arrivals}");
    }
    // Users are their members: with one user there is one retry.
    let alone = run(&budgeted_users(1, "")).unwrap();
    assert_eq!(alone.services["api"].arrivals - alone.routes["r"].arrivals, 1);
    let err = budgeted_users(10, "population: 3,").validate().unwrap_err().to_string();
    assert_eq!(
        err,
        "clients[0].population: must be 1 or closed_loop.users (10): a closed loop gives each user a member of its own"
    );
}

#[test]
fn lifo_serves_the_newest_first_under_overload() {
    let make = |discipline: &str| {
        format!(
            r#"(execution: thread_pool(workers: 1, queue_capacity: 10000, discipline: {discipline}),
                routes: {{ "r": (steps: [compute(Constant(value: "12ms"))]) }})"#
        )
    };
    // 100/s of 12 ms on one worker: overloaded (120%), the queue grows.
    let fifo = run(&scenario(100.0, &make("fifo"), "", "", "()")).unwrap();
    let lifo = run(&scenario(100.0, &make("lifo"), "", "", "()")).unwrap();
    assert!(lifo.routes["r"].latency.p50 < fifo.routes["r"].latency.p50);
    assert!(lifo.routes["r"].latency.max > fifo.routes["r"].latency.max);
}

fn check_invalid(text: &str, expect: &str) {
    let scenario = Scenario::from_ron(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.validate().unwrap_err().to_string(), expect);
    assert!(run(&scenario).unwrap_err().to_string().ends_with(expect));
}

#[test]
fn bad_scenarios_name_the_field_and_the_rule() {
    let base = |services: &str, clients: &str| {
        format!(r#"(name: "bad", duration: "1s", services: {{ {services} }}, clients: [{clients}])"#)
    };
    let ok_service = r#""api": (execution: thread_pool(workers: 1), routes: { "r": (steps: []) })"#;
    let ok_client = r#"(name: "u", target: "api", rate: constant(rps: 1.0), routes: [(route: "r")])"#;
    check_invalid(
        &base(r#""api": (execution: thread_pool(workers: 0), routes: { "r": (steps: []) })"#, ok_client),
        "services.api.execution.thread_pool.workers: must be at least 1",
    );
    check_invalid(
        &base(
            r#""api": (execution: thread_pool(workers: 1), retry_after: "0s", routes: { "r": (steps: []) })"#,
            ok_client,
        ),
        "services.api.retry_after: must be positive",
    );
    let alternate = |fallback: &str, extra_dependency: &str| {
        base(
            &format!(
                r#""api": (execution: thread_pool(workers: 1), routes: {{ "r": (steps: [call((dependency: "a", route: "r"))]) }},
                    dependencies: {{ "a": (service: "api", policy: (fallback: {fallback})) {extra_dependency} }})"#
            ),
            ok_client,
        )
    };
    check_invalid(
        &alternate(r#"(kind: "alternate", dependency: "nope")"#, ""),
        "services.api.dependencies.a.policy.fallback.alternate.dependency: no dependency named \"nope\"",
    );
    check_invalid(
        &alternate(r#"(kind: "alternate", dependency: "a")"#, ""),
        "services.api.dependencies.a.policy.fallback.alternate.dependency: must name another dependency",
    );
    check_invalid(
        &alternate(
            r#"(kind: "alternate", dependency: "b")"#,
            r#", "b": (service: "api", policy: (fallback: (kind: "alternate", dependency: "a")))"#,
        ),
        "services.api.dependencies.a.policy.fallback.alternate.dependency: \"b\" has an alternate fallback itself",
    );
    check_invalid(
        &base(
            r#""api": (execution: thread_pool(workers: 1), routes: { "r": (steps: [call((dependency: "a", route: "r"))]) },
                dependencies: { "a": (service: "api", policy: (fallback: (kind: "alternate", dependency: "b"))), "b": (service: "db") }),
            "db": (execution: thread_pool(workers: 1), routes: { "q": (steps: []) })"#,
            ok_client,
        ),
        "services.api.routes.r.steps[0].call.route: the alternate \"b\" (service \"db\") has no route \"r\"",
    );
    check_invalid(
        &base(
            ok_service,
            r#"(name: "u", target: "api", rate: constant(rps: 1.0), routes: [(route: "r")],
                policy: (fallback: (kind: "alternate", dependency: "x")))"#,
        ),
        "clients[0].policy.fallback.kind: alternate is for a service's dependencies: a client calls its one target",
    );
    check_invalid(
        &base(
            r#""api": (execution: thread_pool(workers: 1),
                routes: { "r": (steps: [], errors: (probability: 0.5, status: 200)) })"#,
            ok_client,
        ),
        "services.api.routes.r.errors.status: must be between 400 and 599: a status below 400 is a success, not an error",
    );
    let error_fault = |status: u16| {
        format!(
            r#"(name: "bad", duration: "1s", services: {{ {ok_service} }}, clients: [{ok_client}],
                faults: [(target: "api", from: "0s", until: "1s", kind: errors((probability: 1.0, status: {status})))])"#
        )
    };
    for status in [302, 399, 600] {
        check_invalid(
            &error_fault(status),
            "faults[0].kind.errors.status: must be between 400 and 599: a status below 400 is a success, not an error",
        );
    }
    for status in [400, 599] {
        Scenario::from_ron(&error_fault(status)).unwrap().validate().unwrap();
    }
    check_invalid(
        &base(ok_service, r#"(name: "u", target: "api", rate: constant(rps: 1.0), routes: [(route: "nope")])"#),
        "clients[0].routes[0].route: service \"api\" has no route \"nope\"",
    );
    check_invalid(
        &base(
            r#""api": (execution: thread_pool(workers: 1), routes: { "r": (steps: [call((dependency: "db", route: "q"))]) })"#,
            ok_client,
        ),
        "services.api.routes.r.steps[0].call.dependency: no dependency named \"db\"",
    );
    check_invalid(
        &base(
            r#""api": (execution: thread_pool(workers: 1), routes: { "r": (steps: []) }, dependencies: { "me": (service: "api") })"#,
            ok_client,
        ),
        "services.api: dependencies form a cycle: api -> api",
    );
    let unknown = Scenario::from_ron(r#"(name: "x", duration: "1s", services: {}, clients: [], colour: "red")"#);
    assert!(unknown.unwrap_err().to_string().contains("colour"));
    let bad_duration = Scenario::from_ron(r#"(name: "x", duration: "1 fortnight", services: {}, clients: [])"#);
    assert!(bad_duration.unwrap_err().to_string().contains("\"1 fortnight\""));
}

#[test]
fn limits_that_hold_alone_must_hold_together() {
    // 20 services at 950000 buckets each: every count within its own limit,
    // 2.6 GB of timelines in all.
    let services: Vec<String> = (0..20)
        .map(|i| format!(r#""s{i}": (execution: thread_pool(workers: 1), routes: {{ "r": (steps: []) }})"#))
        .collect();
    let wide = |duration: &str| {
        format!(
            r#"(name: "wide", duration: "{duration}", drain: "0s", services: {{ {} }},
                clients: [(name: "u", target: "s0", rate: constant(rps: 1.0), routes: [(route: "r")])])"#,
            services.join(", ")
        )
    };
    check_invalid(
        &wide("950000s"),
        "bucket_width: timelines of 950000 buckets x 380 values (20 services x 18, 0 dependencies x 12, \
         1 client routes x 20) = 361000000 cells, more than the 50000000 allowed; widen bucket_width or shorten the run",
    );
    // 50000000 / 380 = 131578 buckets fit, one more does not.
    Scenario::from_ron(&wide("131578s")).unwrap().validate().unwrap();
    let over = Scenario::from_ron(&wide("131579s")).unwrap().validate().unwrap_err().to_string();
    assert!(over.contains("= 50000020 cells, more than the 50000000 allowed"), "{over}");
    // Dependencies and client routes count too.
    let edges = r#"(name: "edges", duration: "600000s", drain: "0s",
        services: { "api": (execution: thread_pool(workers: 1), routes: { "r": (steps: []) },
                             dependencies: { "a": (service: "db"), "b": (service: "db") }),
                    "db": (execution: thread_pool(workers: 1), routes: { "q": (steps: []) }) },
        clients: [(name: "u", target: "api", rate: constant(rps: 1.0), routes: [(route: "r"), (route: "r")])])"#;
    check_invalid(
        edges,
        "bucket_width: timelines of 600000 buckets x 100 values (2 services x 18, 2 dependencies x 12, \
         2 client routes x 20) = 60000000 cells, more than the 50000000 allowed; widen bucket_width or shorten the run",
    );
}

#[test]
fn members_are_bounded_over_all_clients() {
    let clients = |population: u32, users: u32| {
        format!(
            r#"(name: "crowd", duration: "1s",
                services: {{ "api": (execution: thread_pool(workers: 1), routes: {{ "r": (steps: []) }}) }},
                clients: [
                    (name: "open", target: "api", rate: constant(rps: 1.0), population: {population}, routes: [(route: "r")]),
                    (name: "closed", target: "api", closed_loop: (users: {users}, think_time: Constant(value: "1s")),
                     routes: [(route: "r")]),
                ])"#
        )
    };
    check_invalid(
        &clients(60_000, 50_000),
        "clients: 110000 members in all (population, or closed_loop.users, summed over 2 clients), \
         more than the 100000 allowed",
    );
    Scenario::from_ron(&clients(50_000, 50_000)).unwrap().validate().unwrap();
    check_invalid(&clients(100_001, 1), "clients[0].population: must be between 1 and 100000");
}

#[test]
fn the_in_flight_limit_ends_a_runaway_with_an_error_naming_it() {
    let mut s = scenario(1000.0, SIMPLE, "", r#"(target: "api", from: "1s", until: "20s", kind: hang)"#, "()");
    s.limits.in_flight_max = 500;
    let err = run(&s).unwrap_err().to_string();
    assert!(err.contains("limits.in_flight_max"), "{err}");
}
