//! What each modelling feature does, on small scenarios: faults, execution
//! models, replicas, handlers, clients, and the validation of bad input.

use stormglass_core::dist::Distribution;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_core::timeline::SeriesData;
use stormglass_models::config::{EdgeLink, LinkConfig, RateProfile};
use stormglass_models::report::{Cause, Report};
use stormglass_models::{Scenario, run};
use stormglass_patterns::breaker::BreakerState;

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
fn a_partition_ends_new_attempts_in_the_connect_timeout_not_the_read_timeout() {
    let policy = r#"(timeout: (connect: "2s", read: "7s", write: None, pool: None))"#;
    let partition = r#"(target: "api", from: "5s", until: "6s", kind: partition(from: "users"))"#;
    let r = run(&scenario(100.0, SIMPLE, "", partition, policy)).unwrap();
    let timeouts = failed(&r, Cause::Timeout);
    assert!((50..150).contains(&timeouts), "{timeouts}");
    // The ~100 attempts sent in the partition's second (5% of the run)
    // wait for the connect timeout, 2 s: the p99 is one of them. About one
    // request waits for the read timeout instead: one whose answer (a
    // 10 ms compute and 1 ms links away) or whose request arrives in the
    // partition, i.e. sent in the 12 ms before it began.
    let p99 = r.routes["r"].latency.p99.as_secs_f64();
    assert!((1.98..2.02).contains(&p99), "{p99}");
}

#[test]
fn a_partition_loses_the_answers_crossing_it_and_their_callers_wait_for_the_read_timeout() {
    // A request takes 1 s: those accepted in the second before the
    // partition are still running when it begins, and their answers come
    // back across it.
    let slow = r#"(execution: thread_pool(workers: 100, queue_capacity: 100),
        routes: { "r": (steps: [compute(Constant(value: "1s"))]) })"#;
    let policy = r#"(timeout: (connect: "2s", read: "7s", write: None, pool: None))"#;
    let partition = r#"(target: "api", from: "5s", until: "6s", kind: partition(from: "users"))"#;
    let r = run(&scenario(20.0, slow, "", partition, policy)).unwrap();
    let (route, api) = (&r.routes["r"], &r.services["api"]);
    assert_eq!(api.answered, api.arrivals, "api answers every request it sees");
    assert_eq!(route.ok + failed(&r, Cause::Timeout), route.arrivals, "only timeouts fail");
    // About 20 requests a second: those sent in [5 s, 6 s) never reach api,
    // and api's answers to those sent in [4 s, 5 s) never reach the users.
    let never_arrived = route.arrivals - api.arrivals;
    let answers_lost = api.answered - route.ok;
    assert!((5..=40).contains(&never_arrived), "{never_arrived}");
    assert!((5..=40).contains(&answers_lost), "{answers_lost}");
    // A lost answer's caller waits out the read timeout, counted from its
    // request's arrival one 1 ms hop after it was sent.
    let max = route.latency.max.as_secs_f64();
    assert!((7.0..7.01).contains(&max), "{max}");
}

#[test]
fn a_partition_loses_the_requests_crossing_it_when_it_begins() {
    // An 800 ms link between the users and api (both ways), and 200 ms
    // buckets to count requests by when they were sent.
    let policy = r#"(timeout: (connect: "2s", read: "7s", write: None, pool: None))"#;
    let partition = r#"(target: "api", from: "5s", until: "6s", kind: partition(from: "users"))"#;
    let mut s = scenario(20.0, SIMPLE, "", partition, policy);
    s.links.edges.push(EdgeLink {
        from: "users".into(),
        to: "api".into(),
        link: LinkConfig { latency: Distribution::Constant { value: SimDuration::from_millis(800) }, loss: 0.0 },
    });
    s.bucket_width = SimDuration::from_millis(200);
    s.validate().unwrap();
    let r = run(&s).unwrap();
    let sent = route_counts(&r, "arrivals");
    let never_arrived = r.routes["r"].arrivals - r.services["api"].arrivals;
    // Requests sent in [5 s, 6 s) are not accepted; those sent in the
    // 0.8 s before, [4.2 s, 5 s), are on the link when the partition
    // begins, arrive in it and are lost: buckets 21 to 29 exactly. (The
    // answers to those sent in about [3.4 s, 4.4 s) are lost on the way
    // back, but their requests arrived.)
    assert!(sent[21..25].iter().sum::<u64>() > 0, "no request sent in [4.2 s, 5 s)");
    assert_eq!(never_arrived, sent[21..30].iter().sum::<u64>(), "requests sent in [4.2 s, 6 s)");
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

/// One worker, 1 s per request, a queue of 10, 5 req/s: the worker and the
/// queue are full when the fault starts at 5 s.
fn backlogged_through(fault: &str) -> Report {
    let api = r#"(execution: thread_pool(workers: 1, queue_capacity: 10),
        routes: { "r": (steps: [compute(Constant(value: "1s"))]) })"#;
    let fault = format!(r#"(target: "api", from: "5s", until: "15s", kind: {fault})"#);
    let policy = r#"(timeout: (connect: None, read: "30s", write: None, pool: None))"#;
    run(&scenario(5.0, api, "", &fault, policy)).unwrap()
}

/// A route series by bucket (1 s buckets).
fn route_counts(report: &Report, series: &str) -> Vec<u64> {
    match report.routes["r"].timeline.series.get(series) {
        Some(SeriesData::Counts(c)) => c.clone(),
        _ => vec![0; report.routes["r"].timeline.buckets.count],
    }
}

#[test]
fn a_crash_resets_the_requests_it_holds_and_a_hang_swallows_them() {
    for fault in ["crash", "hang"] {
        let r = backlogged_through(fault);
        // Nothing is served from the moment the fault starts until it heals.
        let ok = route_counts(&r, "ok");
        assert!(ok[5..15].iter().all(|&n| n == 0), "{fault}: ok by second {ok:?}");
        assert!(ok[16..20].iter().all(|&n| n > 0), "{fault}: ok by second {ok:?}");
        let api = &r.services["api"];
        match fault {
            // The 11 held (1 running, 10 queued) fail in the first second,
            // as connection resets, beside the ~50 refused arrivals.
            "crash" => {
                let refused = route_counts(&r, "failed_refused");
                assert!(refused[5] >= 11, "refused by second {refused:?}");
                assert_eq!(api.refused_by_crash, failed(&r, Cause::Refused));
                assert_eq!(api.lost_to_hang, 0);
            }
            // The held ones are never answered: their callers time out 30 s
            // after sending, like the ~50 swallowed on arrival.
            _ => {
                assert!(api.lost_to_hang >= 11 + 30, "{}", api.lost_to_hang);
                assert_eq!(api.lost_to_hang, failed(&r, Cause::Timeout));
                assert_eq!(api.refused_by_crash, 0);
            }
        }
    }
}

#[test]
fn a_lost_request_ends_in_the_read_timeout() {
    // Only a read timeout, as most HTTP clients have: a request lost on the
    // link is waited for like a hung one, then fails; none is left over.
    let mut s = scenario(100.0, SIMPLE, "", "", r#"(timeout: (connect: None, read: "1s", write: None, pool: None))"#);
    s.links.default.loss = 0.1;
    let r = run(&s).unwrap();
    let route = &r.routes["r"];
    assert_eq!(route.in_flight_at_end, 0);
    // ~2000 arrivals, 10% lost: sd of the lost count is ~13.
    let timeouts = failed(&r, Cause::Timeout);
    assert!((140..260).contains(&timeouts), "{timeouts}");
    assert_eq!(route.ok + timeouts, route.arrivals);
    // Sent, 1 ms on the link, then the 1 s read timeout.
    let max = route.latency.max.as_secs_f64();
    assert!((1.0..1.0011).contains(&max), "{max}");
}

#[test]
fn an_error_fault_fails_its_share() {
    let errors = r#"(target: "api", from: "0s", until: "20s", kind: errors((probability: 0.25, status: 503)))"#;
    let r = run(&scenario(200.0, SIMPLE, "", errors, "()")).unwrap();
    let share = failed(&r, Cause::ErrorStatus) as f64 / r.routes["r"].arrivals as f64;
    // 4000 arrivals: sd of the share is ~0.007.
    assert!((share - 0.25).abs() < 0.03, "{share}");
    // A fault added before it, on a service nobody calls, changes none of
    // its draws (ARCHITECTURE.md, invariant 4): the same requests fail.
    let idle = r#""idle": (execution: thread_pool(workers: 1), routes: { "x": (steps: []) })"#;
    let first = format!(r#"(target: "idle", from: "0s", until: "20s", kind: crash), {errors}"#);
    let with_other = run(&scenario(200.0, SIMPLE, idle, &first, "()")).unwrap();
    let alone = run(&scenario(200.0, SIMPLE, idle, errors, "()")).unwrap();
    assert_eq!(with_other.routes["r"], alone.routes["r"]);
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
fn load_aware_balancers_steer_away_from_a_hung_replica() {
    // One of four replicas hangs for 10 s (~2000 arrivals). Its swallowed
    // requests stay outstanding at the caller until their 2 s timeout, so
    // least-outstanding and power-of-two see it as busy, as Envoy's
    // least-request does; round robin keeps sending it a quarter.
    let lost = |balancer: &str| {
        let api = format!(
            r#"(execution: thread_pool(workers: 8, queue_capacity: 100), replicas: 4, balancer: {balancer},
                routes: {{ "r": (steps: [compute(Exponential(mean: "10ms"))]) }})"#
        );
        let hang = r#"(target: "api", replica: 0, from: "5s", until: "15s", kind: hang)"#;
        let policy = r#"(timeout: (connect: None, read: "2s", write: None, pool: None))"#;
        let r = run(&scenario(200.0, &api, "", hang, policy)).unwrap();
        assert_eq!(failed(&r, Cause::Timeout), r.services["api"].lost_to_hang, "{balancer}");
        r.services["api"].lost_to_hang
    };
    let round_robin = lost("round_robin");
    // A quarter of ~2000, give or take the Poisson noise.
    assert!((400..600).contains(&round_robin), "round robin lost {round_robin}");
    let least = lost("least_outstanding");
    let two = lost("power_of_two");
    assert!(least * 10 < round_robin, "least outstanding lost {least}, round robin {round_robin}");
    assert!(two * 3 < round_robin, "power of two lost {two}, round robin {round_robin}");
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
fn a_thread_pool_worker_stays_busy_through_the_backoff_between_retries() {
    // Each request calls a dependency that always answers 503, three times
    // with 1 s between attempts: its worker waits ~2 s, like a thread that
    // sleeps between retries, so one worker at 1 req/s is always busy.
    let extra = r#""dep": (execution: thread_pool(workers: 10),
        routes: { "x": (steps: [compute(Constant(value: "1ms"))], errors: (probability: 1.0, status: 503)) })"#;
    let retry = r#"(retry: (backoff: fixed(delay: "1s"), stop: (attempts_max: 3), retry_on: (server_errors: true)))"#;
    let make = |execution: &str| {
        format!(
            r#"(execution: {execution}, routes: {{ "r": (steps: [call((dependency: "d", route: "x", required: false))]) }},
                dependencies: {{ "d": (service: "dep", policy: {retry}) }})"#
        )
    };
    let busy_mean = |r: &Report| match r.services["api"].timeline.series.get("busy") {
        Some(SeriesData::Gauge { mean, .. }) => mean.clone(),
        other => panic!("busy: {other:?}"),
    };
    let threads = run(&scenario(1.0, &make("thread_pool(workers: 1, queue_capacity: 100)"), extra, "", "()")).unwrap();
    let route = &threads.routes["r"];
    // Every request is answered (degraded: the optional call failed), none
    // faster than its two backoffs, and later ones wait for the worker.
    assert_eq!(route.degraded, route.arrivals);
    assert!(route.latency.p50 > SimDuration::from_secs(2), "p50 {}", route.latency.p50);
    assert!(route.latency.max > SimDuration::from_secs(4), "max {}", route.latency.max);
    // The worker is held all the time, backoffs included (the calls
    // themselves take ~5 ms of each 2 s).
    assert!(busy_mean(&threads)[2..20].iter().all(|&b| b > 0.99), "{:?}", busy_mean(&threads));
    // An event loop sleeps without a slot: nothing queues behind a backoff.
    let event_loop = run(&scenario(1.0, &make("async(concurrency_max: 1)"), extra, "", "()")).unwrap();
    let route = &event_loop.routes["r"];
    assert!(route.latency.max < SimDuration::from_millis(2100), "max {}", route.latency.max);
}

#[test]
fn a_client_s_own_policy_shows_as_its_edge() {
    // Users retry every 503 twice: while api fails them all, each request
    // costs three attempts, and the report's `users -> api` edge says so;
    // with a breaker, its transitions count in the summary too.
    let errors = r#"(target: "api", from: "5s", until: "10s", kind: errors((probability: 1.0, status: 503)))"#;
    let retry = r#"retry: (backoff: fixed(delay: "10ms"), stop: (attempts_max: 3), retry_on: (server_errors: true))"#;
    let r = run(&scenario(100.0, SIMPLE, "", errors, &format!("({retry})"))).unwrap();
    let edge = &r.edges["users -> api"];
    let calls = r.routes["r"].arrivals;
    assert_eq!(edge.stats.calls, calls);
    // ~500 requests meet the fault: 2 retries each; the others none.
    let retried = edge.stats.retries;
    assert!((800..1200).contains(&retried), "{retried} retries");
    assert_eq!(edge.stats.attempts, calls + retried);
    assert_eq!(r.services["api"].arrivals, edge.stats.attempts);
    assert!(edge.attempts_per_call > 1.4 && edge.attempts_per_call < 1.6, "{}", edge.attempts_per_call);
    let told = stormglass_models::story::single("retrying", &r);
    let line = format!("load on users -> api: {:.2} attempts per call ({retried} retries)", edge.attempts_per_call);
    assert!(told.contains(&line), "{told}");

    let breaker = r#"breaker: (kind: consecutive((failure_threshold: 5, recovery_timeout: "1s")))"#;
    let r = run(&scenario(100.0, SIMPLE, "", errors, &format!("({retry}, {breaker})"))).unwrap();
    let edge = &r.edges["users -> api"];
    assert!(edge.stats.rejected_circuit_open > 0);
    let opened = edge.transitions.iter().find(|t| t.to == BreakerState::Open).expect("the breaker opened");
    assert!(opened.at >= SimTime::from_secs(5) && opened.at < SimTime::from_millis(5100), "opened at {}", opened.at);
    assert_eq!(r.summary.breaker_transitions, edge.transitions.len() as u64);
    assert_eq!(r.summary.time_to_detect, Some(opened.at - SimTime::from_secs(5)));
}

#[test]
fn contention_stretches_service_time_with_the_busy_workers() {
    // 10 ms of work times 1 + contention * busy, busy counting the request
    // itself; two 1 ms link crossings on top.
    let api = |contention: f64| {
        format!(
            r#"(execution: thread_pool(workers: 8, queue_capacity: 1000), contention: {contention:.1},
                routes: {{ "r": (steps: [compute(Constant(value: "10ms"))]) }})"#
        )
    };
    // At 1 req/s requests never overlap: busy is always 1.
    let alone = run(&scenario(1.0, &api(0.5), "", "", "()")).unwrap();
    let latency = &alone.routes["r"].latency;
    assert_eq!((latency.mean, latency.max), (SimDuration::from_millis(17), SimDuration::from_millis(17)));
    // At 400 req/s on 8 workers about 4 are busy at once: with 0.1 each
    // request takes ~1.4x as long (utilisation 0.5 -> ~0.7, still stable).
    let loaded = |contention| run(&scenario(400.0, &api(contention), "", "", "()")).unwrap().routes["r"].latency.mean;
    let (flat, contended) = (loaded(0.0), loaded(0.1));
    assert!(flat < SimDuration::from_millis(13), "mean {flat}");
    assert!(contended > SimDuration::from_millis(15), "mean {contended}");
}

#[test]
fn abandoning_the_work_of_callers_who_left_ends_an_overload_with_it() {
    // One worker, 10 ms per request: 100 req/s. A 2 s burst at 400 req/s
    // leaves ~600 requests queued whose users (500 ms timeout) are gone.
    // Keeping that work (the default) makes the users who come after the
    // burst wait behind it and give up too, for seconds: the overload
    // outlives its cause. Dropping it unstarted ends the outage with the
    // burst.
    let api = |abandon: bool| {
        format!(
            r#"(execution: thread_pool(workers: 1, queue_capacity: 1000), abandon_on_caller_timeout: {abandon},
                routes: {{ "r": (steps: [compute(Constant(value: "10ms"))]) }})"#
        )
    };
    let policy = r#"(timeout: (connect: None, read: "500ms", write: None, pool: None))"#;
    let burst = |abandon| {
        let mut s = scenario(50.0, &api(abandon), "", "", policy);
        s.clients[0].rate = Some(RateProfile::Spike {
            base: 50.0,
            peak: 400.0,
            at: SimTime::from_secs(5),
            width: SimDuration::from_secs(2),
        });
        run(&s).unwrap()
    };
    let (kept_run, dropped_run) = (burst(false), burst(true));
    let (kept, dropped) = (route_counts(&kept_run, "ok"), route_counts(&dropped_run, "ok"));
    // The dropped work is counted: every arrival is answered or abandoned.
    let api_report = &dropped_run.services["api"];
    assert!((300..800).contains(&api_report.abandoned), "abandoned {}", api_report.abandoned);
    assert_eq!(api_report.arrivals, api_report.answered + api_report.abandoned);
    assert_eq!(kept_run.services["api"].abandoned, 0);
    // From 1 s after the burst: ~50 answered a second when dropped, ~none
    // while the kept backlog (~6 s of work) drains.
    let after: fn(&[u64]) -> u64 = |ok| ok[8..12].iter().sum();
    assert!(after(&dropped) > 150, "dropped: ok by second {dropped:?}");
    assert!(after(&kept) < 20, "kept: ok by second {kept:?}");
    // Both serve everyone once it is over.
    assert!(kept[18] > 30 && dropped[18] > 30, "kept {kept:?}, dropped {dropped:?}");
}

#[test]
fn overlapping_faults_compose_and_heal_one_by_one() {
    // slow x2 over [4 s, 10 s) and slow x3 over [7 s, 14 s): 10 ms of work
    // takes 20, 60, 30 then 10 ms again; plus two 1 ms link crossings.
    let faults = r#"(target: "api", from: "4s", until: "10s", kind: slow(factor: 2.0)),
                    (target: "api", from: "7s", until: "14s", kind: slow(factor: 3.0))"#;
    let r = run(&scenario(5.0, SIMPLE, "", faults, "()")).unwrap();
    let by_second = match r.routes["r"].timeline.series.get("latency") {
        Some(SeriesData::Latency(summaries)) => summaries.clone(),
        other => panic!("latency: {other:?}"),
    };
    // 4 workers at 5 req/s: nobody waits, so every answer in a second takes
    // the same time and the mean is exact.
    for (second, want) in [(2, 12), (5, 22), (8, 62), (12, 32), (16, 12)] {
        let got = by_second[second].mean;
        assert_eq!(got, SimDuration::from_millis(want), "second {second}");
    }
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
    // 20 items at 50 req/s: each was answered a fraction of a second
    // before the hang, so its cached answer serves the first ~3.5 s of it.
    let items = last_good_run(", keys: 20");
    let (degraded, failed) = (route_counts(&items, "degraded"), route_counts(&items, "failed_timeout"));
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
    assert!(route_counts(&unique, "failed_timeout")[10..15].iter().all(|&n| n > 40));
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

/// Arrivals per 1 s bucket of a run whose one client draws from `rate`.
fn arrivals_per_second(rate: &str, duration: &str) -> Vec<u64> {
    let text = format!(
        r#"(
            name: "rates", seed: 1, duration: "{duration}", drain: "1s",
            links: (default: (latency: Constant(value: "0s"))),
            services: {{ "api": (execution: thread_pool(workers: 1000, queue_capacity: 100000),
                                 routes: {{ "r": (steps: [compute(Constant(value: "1ms"))]) }}) }},
            clients: [(name: "users", target: "api", rate: {rate}, routes: [(route: "r")])],
        )"#
    );
    let scenario = Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    scenario.validate().unwrap_or_else(|e| panic!("{e}"));
    let r = run(&scenario).unwrap();
    let arrivals = match r.routes["r"].timeline.series.get("arrivals") {
        Some(SeriesData::Counts(c)) => c.clone(),
        other => panic!("no arrivals series: {other:?}"),
    };
    assert_eq!(arrivals.iter().sum::<u64>(), r.routes["r"].arrivals);
    arrivals
}

#[test]
fn time_varying_rates_reach_their_late_and_narrow_peaks() {
    // Counts are Poisson, sd the square root of the mean: 5 sd bounds them.
    let within = |n: u64, mean: f64| (n as f64 - mean).abs() <= 5.0 * mean.sqrt();
    // Zero for 30 s, then 50000/s: thinning at the peak rate used to give up
    // in the zero stretch and end the client's arrivals for good.
    let steps = arrivals_per_second(r#"steps([(at: "0s", rps: 0.0), (at: "30s", rps: 50000.0)])"#, "40s");
    assert!(steps[..30].iter().all(|&n| n == 0), "{steps:?}");
    let late: u64 = steps[30..].iter().sum();
    assert!(within(late, 500_000.0), "{late}");
    assert!(steps[30..40].iter().all(|&n| within(n, 50_000.0)), "{steps:?}");
    // 2 req/s with a 10 ms spike at 2e6 req/s: 20000 arrivals in that one
    // second (plus ~2 at the base rate), ~2 in each other second.
    let spike = arrivals_per_second(r#"spike(base: 2.0, peak: 2000000.0, at: "50s", width: "10ms")"#, "100s");
    assert!(within(spike[50], 20_002.0), "{}", spike[50]);
    let others: u64 = spike.iter().sum::<u64>() - spike[50];
    assert!(within(others, 198.0), "{others}");
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
fn an_open_loop_population_moves_no_route_choice() {
    // Which member an arrival is comes from a stream of its own, drawn only
    // for a population of more than one: the routes chosen are the same
    // arrival for arrival whatever the population, so a sweep over it keeps
    // its common random numbers.
    let run_with = |population: u32| {
        let text = format!(
            r#"(
            name: "members", seed: 5, duration: "10s", drain: "5s",
            services: {{ "api": (execution: thread_pool(workers: 100), routes: {{
                "a": (steps: [compute(Constant(value: "1ms"))]), "b": (steps: [compute(Constant(value: "1ms"))]) }}) }},
            clients: [(name: "users", target: "api", rate: constant(rps: 200.0), population: {population},
                       routes: [(route: "a", weight: 1.0), (route: "b", weight: 2.0)])],
        )"#
        );
        run(&Scenario::from_ron(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))).unwrap()
    };
    let arrivals = |r: &Report, route: &str| match r.routes[route].timeline.series.get("arrivals") {
        Some(SeriesData::Counts(c)) => c.clone(),
        other => panic!("no arrivals series: {other:?}"),
    };
    let alone = run_with(1);
    let (a, b) = (arrivals(&alone, "a"), arrivals(&alone, "b"));
    // About 2 000 arrivals, a third of them on "a".
    let share = a.iter().sum::<u64>() as f64 / (a.iter().sum::<u64>() + b.iter().sum::<u64>()) as f64;
    assert!((0.30..0.37).contains(&share), "{share}");
    for population in [2, 7, 1000] {
        let many = run_with(population);
        assert_eq!(arrivals(&many, "a"), a, "population {population}");
        assert_eq!(arrivals(&many, "b"), b, "population {population}");
    }
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
        &base(ok_service, &format!("{ok_client}, {ok_client}")),
        "clients[0].name: must not be another client's name",
    );
    check_invalid(
        &base(ok_service, r#"(name: "api", target: "api", rate: constant(rps: 1.0), routes: [(route: "r")])"#),
        "clients[0].name: must not be a service's name",
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
        "bucket_width: timelines of 950000 buckets x 628 values (20 services x 29, 1 edges x 28, \
         1 client routes x 20) = 596600000 cells, more than the 50000000 allowed; widen bucket_width or shorten the run",
    );
    // 50000000 / 628 = 79617 buckets fit, one more does not.
    Scenario::from_ron(&wide("79617s")).unwrap().validate().unwrap();
    let over = Scenario::from_ron(&wide("79618s")).unwrap().validate().unwrap_err().to_string();
    assert!(over.contains("= 50000104 cells, more than the 50000000 allowed"), "{over}");
    // Dependencies (edges, as the client is) and client routes count too.
    let edges = r#"(name: "edges", duration: "600000s", drain: "0s",
        services: { "api": (execution: thread_pool(workers: 1), routes: { "r": (steps: []) },
                             dependencies: { "a": (service: "db"), "b": (service: "db") }),
                    "db": (execution: thread_pool(workers: 1), routes: { "q": (steps: []) }) },
        clients: [(name: "u", target: "api", rate: constant(rps: 1.0), routes: [(route: "r"), (route: "r")])])"#;
    check_invalid(
        edges,
        "bucket_width: timelines of 600000 buckets x 182 values (2 services x 29, 3 edges x 28, \
         2 client routes x 20) = 109200000 cells, more than the 50000000 allowed; widen bucket_width or shorten the run",
    );
    // Every member has its own breaker: 100 000 members x 1000 buckets x
    // 24 B is 2.4 GB of windows, though each window alone is allowed.
    let windows = |buckets: u32| {
        format!(
            r#"(name: "windows", duration: "1s",
                services: {{ "api": (execution: thread_pool(workers: 1), routes: {{ "r": (steps: []) }}) }},
                clients: [(name: "u", target: "api", rate: constant(rps: 1.0), routes: [(route: "r")], population: 100000,
                           policy: (breaker: (kind: hystrix((request_volume_threshold: 20, error_threshold_pct: 50,
                                                             sleep_window: "5s", buckets: {buckets}, bucket_width: "1s")))))])"#
        )
    };
    check_invalid(
        &windows(1000),
        "policies: breaker windows, bulkhead queues and sliding logs take 2400000000 bytes up front \
         (0 on dependencies, 2400000000 on client members), more than the 1073741824 allowed; \
         use smaller windows or queues, or fewer members",
    );
    Scenario::from_ron(&windows(100)).unwrap().validate().unwrap();
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

#[test]
fn a_long_queue_of_requests_that_fail_at_once_drains_without_deep_recursion() {
    // One worker holds the first request for the 1 s read timeout of a hung
    // dependency while 100 000 more queue up; the timeout opens the breaker,
    // and every queued request then fails at once (circuit open) as it gets
    // the worker. Each such finish frees the worker again: draining the
    // queue must loop, not nest a call per request (which overflowed the
    // stack, aborting the process, from a valid scenario).
    let text = r#"(
        name: "drain", seed: 1, duration: "1500ms", drain: "5s",
        links: (default: (latency: Constant(value: "0s"))),
        services: {
            "api": (execution: thread_pool(workers: 1, queue_capacity: 200000),
                    routes: { "r": (steps: [call((dependency: "d", route: "x"))]) },
                    dependencies: { "d": (service: "db", policy: (
                        timeout: (connect: None, read: "1s", write: None, pool: None),
                        breaker: (kind: consecutive((failure_threshold: 1, recovery_timeout: "60s"))),
                    )) }),
            "db": (execution: thread_pool(workers: 10), routes: { "x": (steps: [compute(Constant(value: "1ms"))]) }),
        },
        clients: [(name: "users", target: "api", rate: constant(rps: 100000.0), routes: [(route: "r")])],
        faults: [(target: "db", from: "0s", until: "10s", kind: hang)],
    )"#;
    let scenario = Scenario::from_ron(text).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&scenario).unwrap();
    let route = &r.routes["r"];
    assert!(route.arrivals > 140_000, "{}", route.arrivals);
    // All but the first end in the open breaker; nothing is lost.
    let open = route.failed.get(&Cause::CircuitOpen).copied().unwrap_or(0);
    assert!(open >= 99_000, "{:?}", route.failed);
    assert_eq!(route.ok + route.failed.values().sum::<u64>(), route.arrivals);
}

#[test]
fn least_outstanding_breaks_ties_at_random_so_a_fault_on_any_replica_shows_alike() {
    // At 10 req/s and 1 ms of work every replica is idle at each arrival:
    // all are tied. A crash of replica 0 or of replica 1 must then refuse
    // about a third of the window's ~100 arrivals either way (with ties to
    // the lowest index, replica 0 took everything: 126 refused against 2).
    let refused = |replica: u32| {
        let api = r#"(execution: thread_pool(workers: 1, queue_capacity: 10), replicas: 3,
            balancer: least_outstanding, routes: { "r": (steps: [compute(Constant(value: "1ms"))]) })"#;
        let crash = format!(r#"(target: "api", replica: {replica}, from: "5s", until: "15s", kind: crash)"#);
        let r = run(&scenario(10.0, api, "", &crash, "()")).unwrap();
        r.services["api"].refused_by_crash
    };
    let (first, second) = (refused(0), refused(1));
    // A third of ~100, with binomial noise (sd ~5 per run).
    for n in [first, second] {
        assert!((15..55).contains(&n), "refused {first} (replica 0) and {second} (replica 1)");
    }
}

#[test]
fn availability_during_faults_counts_only_the_fault_windows() {
    // Two crashes with 9 healthy seconds between them: during the faults
    // nearly everything is refused. (Averaged over the whole span from the
    // first start to the last end, the healthy gap made it read 0.70.)
    let crashes = r#"(target: "api", from: "3s", until: "5s", kind: crash),
                     (target: "api", from: "14s", until: "16s", kind: crash)"#;
    let r = run(&scenario(100.0, SIMPLE, "", crashes, "()")).unwrap();
    let during = r.routes["r"].availability_during_faults.expect("faults ran");
    assert!(during < 0.1, "{during}");
    assert!(failed(&r, Cause::Refused) > 300);
}

#[test]
fn a_crashed_service_sends_no_more_retries() {
    // gw calls db, which always answers 503, up to 3 attempts 1 s apart, so
    // each gw request waits through two backoffs. gw crashes over
    // [5 s, 10 s): its requests die with it, and so do their calls, as a
    // dead process sends no retries (before, the backoffs begun before the
    // crash still sent their retries at 5-7 s). db hears nothing from 6 s
    // until gw is back (an attempt sent just before 5 s still lands in the 5 s bucket).
    let extra = r#""db": (execution: thread_pool(workers: 100),
        routes: { "x": (steps: [compute(Constant(value: "1ms"))], errors: (probability: 1.0, status: 503)) })"#;
    let gw = r#"(execution: thread_pool(workers: 100, queue_capacity: 100),
        routes: { "r": (steps: [call((dependency: "d", route: "x"))]) },
        dependencies: { "d": (service: "db", policy: (
            retry: (backoff: fixed(delay: "1s"), stop: (attempts_max: 3), retry_on: (server_errors: true))
        )) })"#;
    let crash = r#"(target: "api", from: "5s", until: "10s", kind: crash)"#;
    let r = run(&scenario(20.0, gw, extra, crash, "()")).unwrap();
    let SeriesData::Counts(db) = &r.services["db"].timeline.series["arrivals"] else { panic!("a count series") };
    assert!(db[3] > 30, "db busy before the crash: {db:?}");
    assert_eq!(db[6..10].iter().sum::<u64>(), 0, "no attempt from a crashed gw: {db:?}");
    assert!(db[11] > 30, "db busy again after: {db:?}");
    let edge = &r.edges["api -> d"].stats;
    assert!(edge.abandoned > 20, "{edge:?}");
}
