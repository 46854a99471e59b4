//! The seed cascade of the README's story, built in Rust. The same scenario ships as
//! RON in `scenarios/seed-cascade-*.ron`; a test keeps the two identical.
//!
//! ```text
//! client (Poisson, 200 req/s) -> gateway (64 workers) -> order (32 workers, queue 100) -> user (16 workers, ~10 ms)
//!                                                     -> product (16 workers)
//! routes 50/25/25: GET /orders/{id} (order calls user), GET /orders/{id}/status (order only),
//!                  GET /products (product only)
//! user hangs over [60 s, 180 s); the run lasts 300 s.
//! ```
//!
//! The two variants differ only in the policy on order -> user, so they share
//! every random stream:
//! - unprotected: a 30 s read timeout (a common HTTP client default) and
//!   nothing else;
//! - protected: timeout (connect 2 s, read 5 s), retry (3 attempts,
//!   exponential backoff 1 s .. 10 s, only on timeouts and network errors),
//!   circuit breaker (5 consecutive failures, 60 s recovery), a semaphore
//!   bulkhead of 10 and the fallback user `{"name": "Unknown"}`.
//!
//! Choices beyond the numbers above, made so the story reads clearly:
//! users give up after 10 s (the client's own timeout, the same in both
//! variants); the gateway queues up to 200 requests, user and product 100.
//!
//! ```
//! use stormglass_models::seed::{Variant, seed_cascade};
//!
//! let scenario = seed_cascade(Variant::Protected);
//! assert!(scenario.validate().is_ok());
//! assert_eq!(scenario.services["order"].dependencies["user"].service, "user");
//! ```

use std::collections::BTreeMap;

use stormglass_core::dist::Distribution;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::pipeline::PolicyConfig;
use stormglass_patterns::timeout::TimeoutConfig;

use crate::config::{
    CallConfig, ClientConfig, DependencyConfig, Discipline, Execution, FaultConfig, FaultKind, HandlerStep,
    LinksConfig, RateProfile, RouteConfig, RunLimits, Scenario, ServiceConfig, WeightedRoute,
};

/// Which side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Only a 30 s client default timeout on order -> user.
    Unprotected,
    /// The seed's combination on order -> user.
    Protected,
}

/// The route names, as the report keys them.
pub const ROUTE_ORDER: &str = "GET /orders/{id}";
/// Served by order alone.
pub const ROUTE_STATUS: &str = "GET /orders/{id}/status";
/// Served by product alone.
pub const ROUTE_PRODUCTS: &str = "GET /products";

fn ms(n: u64) -> SimDuration {
    SimDuration::from_millis(n)
}

fn secs(n: u64) -> SimDuration {
    SimDuration::from_secs(n)
}

fn thread_pool(workers: u32, queue_capacity: u32) -> Execution {
    Execution::ThreadPool { workers, queue_capacity, discipline: Discipline::Fifo }
}

fn compute(mean: SimDuration, p99: SimDuration) -> HandlerStep {
    HandlerStep::Compute(Distribution::LogNormal { mean, p99 })
}

fn call(dependency: &str, route: &str) -> HandlerStep {
    HandlerStep::Call(CallConfig { dependency: dependency.into(), route: route.into(), required: true })
}

fn route(steps: Vec<HandlerStep>) -> RouteConfig {
    RouteConfig { steps, errors: None }
}

fn service(
    execution: Execution,
    routes: Vec<(&str, RouteConfig)>,
    dependencies: Vec<(&str, DependencyConfig)>,
) -> ServiceConfig {
    ServiceConfig {
        execution,
        replicas: 1,
        balancer: Default::default(),
        routes: routes.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        dependencies: dependencies.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        contention: 0.0,
        abandon_on_caller_timeout: false,
        retry_after: None,
    }
}

fn depends_on(service: &str, policy: PolicyConfig) -> DependencyConfig {
    DependencyConfig { service: service.into(), policy }
}

/// A read timeout alone, as a plain HTTP client has.
fn read_timeout(read: SimDuration) -> PolicyConfig {
    PolicyConfig {
        timeout: Some(TimeoutConfig {
            pool: None,
            connect: None,
            write: None,
            read: Some(read),
            attempt: None,
            total: None,
        }),
        ..PolicyConfig::default()
    }
}

/// The seed's combination on order -> user
/// ([`PolicyConfig::seed_combination`]).
pub fn seed_policy() -> PolicyConfig {
    PolicyConfig::seed_combination()
}

/// The seed cascade, either variant.
pub fn seed_cascade(variant: Variant) -> Scenario {
    let user_policy = match variant {
        Variant::Unprotected => read_timeout(secs(30)),
        Variant::Protected => seed_policy(),
    };
    let mut services = BTreeMap::new();
    services.insert(
        "gateway".to_string(),
        service(
            thread_pool(64, 200),
            vec![
                (ROUTE_ORDER, route(vec![compute(ms(1), ms(3)), call("order", ROUTE_ORDER)])),
                (ROUTE_STATUS, route(vec![compute(ms(1), ms(3)), call("order", ROUTE_STATUS)])),
                (ROUTE_PRODUCTS, route(vec![compute(ms(1), ms(3)), call("product", ROUTE_PRODUCTS)])),
            ],
            vec![
                ("order", depends_on("order", PolicyConfig::default())),
                ("product", depends_on("product", PolicyConfig::default())),
            ],
        ),
    );
    services.insert(
        "order".to_string(),
        service(
            thread_pool(32, 100),
            vec![
                (
                    ROUTE_ORDER,
                    route(vec![compute(ms(2), ms(6)), call("user", "GET /users/{id}"), compute(ms(1), ms(3))]),
                ),
                (ROUTE_STATUS, route(vec![compute(ms(3), ms(9))])),
            ],
            vec![("user", depends_on("user", user_policy))],
        ),
    );
    services.insert(
        "user".to_string(),
        service(thread_pool(16, 100), vec![("GET /users/{id}", route(vec![compute(ms(10), ms(30))]))], vec![]),
    );
    services.insert(
        "product".to_string(),
        service(thread_pool(16, 100), vec![(ROUTE_PRODUCTS, route(vec![compute(ms(10), ms(30))]))], vec![]),
    );
    let name = match variant {
        Variant::Unprotected => "seed cascade (unprotected)",
        Variant::Protected => "seed cascade (protected)",
    };
    Scenario {
        name: name.into(),
        seed: 42,
        duration: secs(300),
        drain: secs(60),
        bucket_width: secs(1),
        limits: RunLimits::default(),
        services,
        clients: vec![ClientConfig {
            name: "users".into(),
            target: "gateway".into(),
            rate: Some(RateProfile::Constant { rps: 200.0 }),
            closed_loop: None,
            population: 1,
            routes: vec![
                WeightedRoute { route: ROUTE_ORDER.into(), weight: 50.0, keys: None },
                WeightedRoute { route: ROUTE_STATUS.into(), weight: 25.0, keys: None },
                WeightedRoute { route: ROUTE_PRODUCTS.into(), weight: 25.0, keys: None },
            ],
            policy: read_timeout(secs(10)),
        }],
        links: LinksConfig::default(),
        faults: vec![FaultConfig {
            target: "user".into(),
            replica: None,
            from: SimTime::from_secs(60),
            until: SimTime::from_secs(180),
            kind: FaultKind::Hang,
        }],
    }
}
