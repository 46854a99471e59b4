//! What a scenario can say: services, their execution models and handlers,
//! the policies on their dependencies, clients and their rate profiles,
//! links and faults. Every type is serde (RON in `scenarios/`), rejects
//! unknown fields, and [`Scenario::validate`] names the field path and the
//! rule of the first problem, references to undefined services, routes and
//! dependencies included.
//!
//! ```
//! use stormglass_models::config::Scenario;
//!
//! let scenario = Scenario::from_ron(r#"(
//!     name: "one service",
//!     duration: "10s",
//!     services: {
//!         "api": (
//!             execution: thread_pool(workers: 4, queue_capacity: 10),
//!             routes: { "GET /": (steps: [compute(Exponential(mean: "10ms"))]) },
//!         ),
//!     },
//!     clients: [(name: "users", target: "api", rate: constant(rps: 100.0), routes: [(route: "GET /")])],
//! )"#).unwrap();
//! assert!(scenario.validate().is_ok());
//!
//! let typo = Scenario::from_ron("(name: \"x\", duraton: \"1s\")").unwrap_err();
//! assert!(typo.to_string().starts_with("line 1, column 13: "), "{typo}");
//!
//! let mut broken = scenario.clone();
//! broken.clients[0].target = "apy".into();
//! assert_eq!(
//!     broken.validate().unwrap_err().to_string(),
//!     "clients[0].target: no service named \"apy\""
//! );
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stormglass_core::dist::Distribution;
use stormglass_core::error::{ConfigError, ensure};
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::fallback::FallbackConfig;
use stormglass_patterns::pipeline::PolicyConfig;

/// Most services, routes per service, steps per route, clients, faults: far
/// above any scenario a person writes, low enough to bound memory.
pub const ITEMS_MAX: usize = 1024;
/// Most members in one client population, and most users in one closed
/// loop.
pub const POPULATION_MAX: u32 = 100_000;
/// Most members over all clients: populations and closed-loop users
/// together. Each member holds a policy of its own (about 2.4 KB with
/// small windows), so this keeps them under about 250 MB.
pub const MEMBERS_MAX: u64 = 100_000;
/// Most timeline cells (8-byte values, one per series per bucket) the
/// services, dependencies and client routes keep over the run: 400 MB at
/// most (20 services at this limit peak at 390 MB, report included). Each
/// count is checked alone too, but 20 services at 950000 buckets each
/// would otherwise take 2.6 GB before the first event.
pub const TIMELINE_CELLS_MAX: u64 = 50_000_000;
/// Most bytes all the policies of a scenario allocate up front for their
/// breaker windows, bulkhead queues and sliding logs (1 GiB): one policy per
/// dependency, one per client member. Each window is bounded alone, but a
/// 10^6-bucket breaker on every member of a large population is not.
pub const POLICY_WINDOWS_BYTES_MAX: u64 = 1 << 30;
/// Most replicas of one service.
pub const REPLICAS_MAX: u32 = 1024;
/// Most workers or queue slots of one service.
pub const CAPACITY_MAX: u32 = 1 << 20;

/// A whole simulation: topology, load, faults, and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name for reports.
    pub name: String,
    /// Master seed; every random stream derives from it.
    #[serde(default)]
    pub seed: u64,
    /// How long clients send requests.
    pub duration: SimDuration,
    /// After `duration`, how long requests in flight may take to finish
    /// before the run stops (what is still in flight is reported as such).
    #[serde(default = "default_drain")]
    pub drain: SimDuration,
    /// Width of the timeline buckets.
    #[serde(default = "default_bucket_width")]
    pub bucket_width: SimDuration,
    /// Limits that end a runaway scenario with an error naming the limit.
    #[serde(default)]
    pub limits: RunLimits,
    /// Services by name.
    pub services: BTreeMap<String, ServiceConfig>,
    /// Sources of requests.
    pub clients: Vec<ClientConfig>,
    /// Network between callers and services.
    #[serde(default)]
    pub links: LinksConfig,
    /// Scheduled faults.
    #[serde(default)]
    pub faults: Vec<FaultConfig>,
}

/// A scenario text that does not parse, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was wrong, as the RON parser says it.
    pub message: String,
}

impl Scenario {
    /// Parses a RON scenario. `Option` fields may be written bare (RON's
    /// `implicit_some`), so `rate: constant(rps: 10.0)` needs no `Some(...)`.
    /// Parsing does not validate: call [`Scenario::validate`] next.
    pub fn from_ron(text: &str) -> Result<Scenario, ParseError> {
        let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        options.from_str(text).map_err(|e| ParseError {
            line: e.span.start.line,
            column: e.span.start.col,
            message: e.code.to_string(),
        })
    }
}

fn default_drain() -> SimDuration {
    SimDuration::from_secs(60)
}

fn default_bucket_width() -> SimDuration {
    SimDuration::from_secs(1)
}

/// Limits on a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunLimits {
    /// Most events the run may handle.
    pub events_max: u64,
    /// Most requests and calls alive at once (bounds memory).
    pub in_flight_max: u32,
}

impl Default for RunLimits {
    /// 200 million events (a 300 s cascade at 200 req/s handles about half
    /// a million) and a million requests in flight.
    fn default() -> Self {
        RunLimits { events_max: 200_000_000, in_flight_max: 1_000_000 }
    }
}

/// One service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// How requests get a worker.
    pub execution: Execution,
    /// Identical replicas behind a balancer.
    #[serde(default = "one")]
    pub replicas: u32,
    /// How callers pick a replica.
    #[serde(default)]
    pub balancer: Balancer,
    /// Handlers by route name.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Services this one calls, by dependency name, each with its policy.
    #[serde(default)]
    pub dependencies: BTreeMap<String, DependencyConfig>,
    /// Contention: compute times are multiplied by `1 + contention * busy`,
    /// where `busy` is the number of requests holding a worker.
    #[serde(default)]
    pub contention: f64,
    /// Whether a request whose caller gave up is dropped (from the queue, or
    /// at its next step). By default work goes on: abandoned work is real.
    #[serde(default)]
    pub abandon_on_caller_timeout: bool,
    /// A Retry-After hint sent with every 429 and 503 the service answers
    /// (a full queue, an error fault or status, a failed handler). A
    /// caller's retry waits at least this long, up to its retry policy's
    /// `retry_after_max` (RFC 9110; gRPC's retry pushback). None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<SimDuration>,
}

fn one() -> u32 {
    1
}

/// Execution model of a service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Execution {
    /// Thread per request: a worker stays busy for the whole request,
    /// including while it waits on a dependency and sleeps between retries.
    ThreadPool {
        /// Workers per replica.
        workers: u32,
        /// Requests that may wait for a worker; beyond that a 503.
        #[serde(default)]
        queue_capacity: u32,
        /// Which waiting request a free worker takes.
        #[serde(default)]
        discipline: Discipline,
    },
    /// Event loop: at most `concurrency_max` requests run a compute step at
    /// once (the event loop's cores); a request waiting on a dependency gives
    /// its slot back and holds nothing, so a hanging dependency does not
    /// exhaust the service (only `limits.in_flight_max` bounds the waiters).
    Async {
        /// Requests computing at once per replica.
        concurrency_max: u32,
        /// Requests that may wait for a slot; beyond that a 503.
        #[serde(default)]
        queue_capacity: u32,
    },
}

impl Execution {
    /// Slots (workers or concurrency) and queue capacity.
    pub fn capacity(&self) -> (u32, u32) {
        match *self {
            Execution::ThreadPool { workers, queue_capacity, .. } => (workers, queue_capacity),
            Execution::Async { concurrency_max, queue_capacity } => (concurrency_max, queue_capacity),
        }
    }
}

/// Order in which a free worker takes waiting requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discipline {
    /// Oldest first.
    #[default]
    Fifo,
    /// Newest first (keeps latency low for some under overload).
    Lifo,
}

/// How a caller picks a replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancer {
    /// In turn.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The replica with the fewest outstanding attempts (sent and not yet
    /// answered or timed out), ties broken at random (Envoy's least-request
    /// with a full scan).
    LeastOutstanding,
    /// Two at random, the one with fewer outstanding attempts.
    PowerOfTwo,
}

/// A route's handler: a short program, and its own error rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Steps run in order.
    pub steps: Vec<HandlerStep>,
    /// Each request fails with this probability and status when it
    /// finishes (a bug, an overloaded database...).
    #[serde(default)]
    pub errors: Option<ErrorRate>,
}

/// One step of a handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlerStep {
    /// Work for a sampled time.
    Compute(Distribution),
    /// Call a dependency through its policy and wait for the answer.
    Call(CallConfig),
    /// Call several dependencies at once and wait for all.
    Parallel(Vec<CallConfig>),
}

/// A call to one route of a dependency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// A key of the service's `dependencies`.
    pub dependency: String,
    /// A route of the dependency's service.
    pub route: String,
    /// Whether a failure of this call (with no fallback) fails the request;
    /// if false the request goes on, marked degraded.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// A dependency of a service: the service it calls and the policy in front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyConfig {
    /// The service called.
    pub service: String,
    /// Timeouts, retries, breaker, bulkhead, fallback...
    #[serde(default)]
    pub policy: PolicyConfig,
}

/// A failure probability and the status it answers with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRate {
    /// Probability per request, in `[0, 1]`.
    pub probability: f64,
    /// Status answered (e.g. 503), between 400 and 599: an answer below
    /// 400 counts as a success, so it would not be an error.
    pub status: u16,
}

/// A source of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// A name for reports.
    pub name: String,
    /// The service the client calls.
    pub target: String,
    /// Open loop: arrivals at this rate whatever happens to them.
    #[serde(default)]
    pub rate: Option<RateProfile>,
    /// Closed loop: users that wait for an answer, think, and send again.
    /// Each user is a member of its own, with its own policy state.
    #[serde(default)]
    pub closed_loop: Option<ClosedLoop>,
    /// Members of the population, each with its own policy state (per-client
    /// retry budgets, breakers, limiters). Open-loop arrivals pick a member
    /// at random. A closed loop has one member per user, and user `u` always
    /// sends through member `u`: there `population` must be left at its
    /// default (1) or equal `closed_loop.users`, any other value is refused.
    #[serde(default = "one")]
    pub population: u32,
    /// Routes of the target, by weight.
    pub routes: Vec<WeightedRoute>,
    /// The client's own timeout, retries, budget...
    #[serde(default)]
    pub policy: PolicyConfig,
}

/// Closed-loop users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoop {
    /// Number of users.
    pub users: u32,
    /// Time between an answer and the next request.
    pub think_time: Distribution,
}

/// A route and its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedRoute {
    /// A route of the target service.
    pub route: String,
    /// Relative weight (default 1).
    #[serde(default = "weight_one")]
    pub weight: f64,
    /// How many items (user ids, product ids) the route's requests ask
    /// for, each drawn uniformly: requests for the same item share its key
    /// all the way down, so a `last_good` fallback can serve an item's last
    /// good answer. None (the default): every request asks for an item of
    /// its own, and no cache ever hits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
}

fn weight_one() -> f64 {
    1.0
}

/// Requests per second over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RateProfile {
    /// The same rate throughout.
    Constant {
        /// Requests per second.
        rps: f64,
    },
    /// Piecewise constant: `rps` from each `at` until the next.
    Steps(Vec<RatePoint>),
    /// `base`, with `peak` during `[at, at + width)`.
    Spike {
        /// Rate outside the spike.
        base: f64,
        /// Rate during the spike.
        peak: f64,
        /// Start of the spike.
        at: SimTime,
        /// Length of the spike.
        width: SimDuration,
    },
    /// Linear from `from_rps` at `start` to `to_rps` at `end`, flat outside.
    Ramp {
        /// Rate up to `start`.
        from_rps: f64,
        /// Rate from `end`.
        to_rps: f64,
        /// Start of the ramp.
        start: SimTime,
        /// End of the ramp.
        end: SimTime,
    },
    /// Linear interpolation between points (a recorded traffic curve).
    Table(Vec<RatePoint>),
}

/// A rate at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatePoint {
    /// When.
    pub at: SimTime,
    /// Requests per second.
    pub rps: f64,
}

/// Links: a default for every edge, overridable per caller -> service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// Every edge without an override.
    #[serde(default)]
    pub default: LinkConfig,
    /// Overrides; `from` is a service or a client name.
    #[serde(default)]
    pub edges: Vec<EdgeLink>,
}

/// One-way latency and loss of a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// One-way latency.
    pub latency: Distribution,
    /// Probability that a request is lost (its caller times out).
    #[serde(default)]
    pub loss: f64,
}

impl Default for LinkConfig {
    /// 500 us one way, no loss: a data-centre hop.
    fn default() -> Self {
        LinkConfig { latency: Distribution::Constant { value: SimDuration::from_micros(500) }, loss: 0.0 }
    }
}

/// A link override for one caller -> service edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeLink {
    /// The caller: a service or a client name.
    pub from: String,
    /// The service called.
    pub to: String,
    /// The link.
    pub link: LinkConfig,
}

/// A fault active over `[from, until)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// The service it hits.
    pub target: String,
    /// One replica only (by index), or all.
    #[serde(default)]
    pub replica: Option<u32>,
    /// Start.
    pub from: SimTime,
    /// End (the service heals then).
    pub until: SimTime,
    /// What goes wrong.
    pub kind: FaultKind,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Connections are refused at once; the requests the replica holds
    /// when it crashes (queued, running or waiting on calls) are reset.
    Crash,
    /// Requests are accepted and never answered.
    Hang,
    /// Compute steps take `factor` times longer plus `added`.
    Slow {
        /// Added to every compute step.
        #[serde(default)]
        added: SimDuration,
        /// Multiplies every compute step (default 1).
        #[serde(default = "factor_one")]
        factor: f64,
    },
    /// Requests fail at once with this probability and status.
    Errors(ErrorRate),
    /// `workers` workers (or concurrency slots) are gone.
    CapacityLoss {
        /// How many.
        workers: u32,
    },
    /// The link between `from` (a service or client) and the target is
    /// cut: an attempt `from` sends while it lasts is never accepted, so
    /// only a connect timeout (or the attempt's deadline) ends it; a
    /// request or an answer that arrives across the link while it lasts
    /// is lost (for a lost answer, the target did the work all the same),
    /// so the caller waits for its read timeout, or its deadline: with
    /// neither it waits for ever, as under a hang.
    Partition {
        /// The caller cut off.
        from: String,
    },
}

fn factor_one() -> f64 {
    1.0
}

fn probability(p: f64, field: &str) -> Result<(), ConfigError> {
    ensure(p.is_finite() && (0.0..=1.0).contains(&p), field, "must be between 0 and 1")
}

fn rate(rps: f64, field: &str) -> Result<(), ConfigError> {
    ensure(rps.is_finite() && (0.0..=10_000_000.0).contains(&rps), field, "must be between 0 and 10000000 per second")
}

fn count_at_most(len: usize, field: &str) -> Result<(), ConfigError> {
    ensure(len <= ITEMS_MAX, field, "must hold at most 1024 items")
}

impl Scenario {
    /// Checks every field and every reference; the first problem, with its
    /// field path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(!self.duration.is_zero(), "duration", "must be greater than 0")?;
        ensure(self.duration <= SimDuration::from_secs(30 * 24 * 3600), "duration", "must be at most 30 days")?;
        ensure(self.drain <= SimDuration::from_secs(24 * 3600), "drain", "must be at most 1 day")?;
        stormglass_core::timeline::Buckets::new(self.bucket_width, self.duration + self.drain)?;
        ensure(self.limits.events_max > 0, "limits.events_max", "must be at least 1")?;
        ensure(self.limits.in_flight_max > 0, "limits.in_flight_max", "must be at least 1")?;
        ensure(!self.services.is_empty(), "services", "must define at least one service")?;
        count_at_most(self.services.len(), "services")?;
        for (name, service) in &self.services {
            service.validate(self).map_err(|e| e.within(&format!("services.{name}")))?;
        }
        ensure(!self.clients.is_empty(), "clients", "must define at least one client")?;
        count_at_most(self.clients.len(), "clients")?;
        for (index, client) in self.clients.iter().enumerate() {
            client.validate(self).map_err(|e| e.within(&format!("clients[{index}]")))?;
        }
        self.links.default.validate().map_err(|e| e.within("links.default"))?;
        count_at_most(self.links.edges.len(), "links.edges")?;
        for (index, edge) in self.links.edges.iter().enumerate() {
            let at = format!("links.edges[{index}]");
            ensure(self.is_caller(&edge.from), "from", "is neither a service nor a client")
                .map_err(|e| e.within(&at))?;
            self.service_ref(&edge.to, "to").map_err(|e| e.within(&at))?;
            edge.link.validate().map_err(|e| e.within(&format!("{at}.link")))?;
        }
        count_at_most(self.faults.len(), "faults")?;
        for (index, fault) in self.faults.iter().enumerate() {
            fault.validate(self).map_err(|e| e.within(&format!("faults[{index}]")))?;
        }
        self.check_acyclic()?;
        self.check_memory()
    }

    /// Each limit above holds alone; their products must too, or a valid
    /// scenario could allocate gigabytes before its first event.
    fn check_memory(&self) -> Result<(), ConfigError> {
        use crate::world::{EDGE_CELLS, ROUTE_CELLS, SERVICE_CELLS};
        let buckets = stormglass_core::timeline::Buckets::new(self.bucket_width, self.duration + self.drain)?.count;
        let services = self.services.len() as u64;
        // A dependency is an edge, and so is each client's own policy.
        let dependencies: u64 = self.services.values().map(|s| s.dependencies.len() as u64).sum();
        let edges = dependencies + self.clients.len() as u64;
        let routes: u64 = self.clients.iter().map(|c| c.routes.len() as u64).sum();
        let per_bucket = services * SERVICE_CELLS + edges * EDGE_CELLS + routes * ROUTE_CELLS;
        let cells = buckets as u64 * per_bucket;
        ensure(
            cells <= TIMELINE_CELLS_MAX,
            "bucket_width",
            &format!(
                "timelines of {buckets} buckets x {per_bucket} values ({services} services x {SERVICE_CELLS}, \
                 {edges} edges x {EDGE_CELLS}, {routes} client routes x {ROUTE_CELLS}) = {cells} cells, \
                 more than the {TIMELINE_CELLS_MAX} allowed; widen bucket_width or shorten the run"
            ),
        )?;
        // A closed loop has a member per user, an open loop `population`.
        let members: u64 = self.clients.iter().map(|c| u64::from(c.members())).sum();
        ensure(
            members <= MEMBERS_MAX,
            "clients",
            &format!(
                "{members} members in all (population, or closed_loop.users, summed over {} clients), \
                 more than the {MEMBERS_MAX} allowed",
                self.clients.len()
            ),
        )?;
        let dependencies: u64 =
            self.services.values().flat_map(|s| s.dependencies.values()).map(|d| d.policy.preallocated_bytes()).sum();
        let clients: u64 = self.clients.iter().map(|c| u64::from(c.members()) * c.policy.preallocated_bytes()).sum();
        let bytes = dependencies + clients;
        ensure(
            bytes <= POLICY_WINDOWS_BYTES_MAX,
            "policies",
            &format!(
                "breaker windows, bulkhead queues and sliding logs take {bytes} bytes up front \
                 ({dependencies} on dependencies, {clients} on client members), more than the \
                 {POLICY_WINDOWS_BYTES_MAX} allowed; use smaller windows or queues, or fewer members"
            ),
        )
    }

    fn service_ref(&self, name: &str, field: &str) -> Result<&ServiceConfig, ConfigError> {
        self.services.get(name).ok_or_else(|| ConfigError::new(field, format!("no service named {name:?}")))
    }

    fn is_caller(&self, name: &str) -> bool {
        self.services.contains_key(name) || self.clients.iter().any(|c| c.name == name)
    }

    /// A call graph with a cycle would recurse without end under load.
    fn check_acyclic(&self) -> Result<(), ConfigError> {
        // Depth-first search over services; 0 unvisited, 1 on the stack, 2 done.
        fn visit(
            scenario: &Scenario,
            name: &str,
            marks: &mut BTreeMap<String, u8>,
            path: &mut Vec<String>,
        ) -> Result<(), ConfigError> {
            match marks.get(name) {
                Some(2) => return Ok(()),
                Some(1) => {
                    path.push(name.to_string());
                    return Err(ConfigError::new(
                        format!("services.{}", path[0]),
                        format!("dependencies form a cycle: {}", path.join(" -> ")),
                    ));
                }
                _ => {}
            }
            marks.insert(name.to_string(), 1);
            path.push(name.to_string());
            if let Some(service) = scenario.services.get(name) {
                for dependency in service.dependencies.values() {
                    visit(scenario, &dependency.service, marks, path)?;
                }
            }
            path.pop();
            marks.insert(name.to_string(), 2);
            Ok(())
        }
        let mut marks = BTreeMap::new();
        for name in self.services.keys() {
            visit(self, name, &mut marks, &mut Vec::new())?;
        }
        Ok(())
    }
}

impl ServiceConfig {
    fn validate(&self, scenario: &Scenario) -> Result<(), ConfigError> {
        let (slots, queue) = self.execution.capacity();
        let kind = match self.execution {
            Execution::ThreadPool { .. } => "execution.thread_pool",
            Execution::Async { .. } => "execution.async",
        };
        let slots_field = match self.execution {
            Execution::ThreadPool { .. } => "workers",
            Execution::Async { .. } => "concurrency_max",
        };
        ensure(slots >= 1, slots_field, "must be at least 1").map_err(|e| e.within(kind))?;
        ensure(slots <= CAPACITY_MAX, slots_field, "must be at most 1048576").map_err(|e| e.within(kind))?;
        ensure(queue <= CAPACITY_MAX, "queue_capacity", "must be at most 1048576").map_err(|e| e.within(kind))?;
        ensure((1..=REPLICAS_MAX).contains(&self.replicas), "replicas", "must be between 1 and 1024")?;
        ensure(
            self.contention.is_finite() && (0.0..=100.0).contains(&self.contention),
            "contention",
            "must be between 0 and 100",
        )?;
        ensure(self.retry_after.is_none_or(|d| d > SimDuration::ZERO), "retry_after", "must be positive")?;
        ensure(!self.routes.is_empty(), "routes", "must define at least one route")?;
        count_at_most(self.routes.len(), "routes")?;
        count_at_most(self.dependencies.len(), "dependencies")?;
        for (name, dependency) in &self.dependencies {
            let at = format!("dependencies.{name}");
            scenario.service_ref(&dependency.service, "service").map_err(|e| e.within(&at))?;
            dependency.policy.validate().map_err(|e| e.within(&format!("{at}.policy")))?;
            if let Some(alternate) = alternate_of(dependency) {
                let alternate_at = format!("{at}.policy.fallback.alternate");
                let other = self.dependencies.get(alternate).ok_or_else(|| {
                    ConfigError::new("dependency", format!("no dependency named {alternate:?}")).within(&alternate_at)
                })?;
                ensure(alternate != name, "dependency", "must name another dependency")
                    .map_err(|e| e.within(&alternate_at))?;
                // One hop only: two dependencies falling back on each other
                // could call each other forever while both refuse at once.
                ensure(
                    alternate_of(other).is_none(),
                    "dependency",
                    &format!("{alternate:?} has an alternate fallback itself"),
                )
                .map_err(|e| e.within(&alternate_at))?;
            }
        }
        for (name, route) in &self.routes {
            route.validate(self, scenario).map_err(|e| e.within(&format!("routes.{name}")))?;
        }
        Ok(())
    }
}

impl RouteConfig {
    fn validate(&self, service: &ServiceConfig, scenario: &Scenario) -> Result<(), ConfigError> {
        count_at_most(self.steps.len(), "steps")?;
        for (index, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{index}]");
            match step {
                HandlerStep::Compute(dist) => dist.validate().map_err(|e| e.within(&format!("{at}.compute")))?,
                HandlerStep::Call(call) => {
                    call.validate(service, scenario).map_err(|e| e.within(&format!("{at}.call")))?
                }
                HandlerStep::Parallel(calls) => {
                    ensure(!calls.is_empty(), "parallel", "must hold at least one call").map_err(|e| e.within(&at))?;
                    count_at_most(calls.len(), "parallel").map_err(|e| e.within(&at))?;
                    for (i, call) in calls.iter().enumerate() {
                        call.validate(service, scenario).map_err(|e| e.within(&format!("{at}.parallel[{i}]")))?;
                    }
                }
            }
        }
        if let Some(errors) = &self.errors {
            errors.validate().map_err(|e| e.within("errors"))?;
        }
        Ok(())
    }
}

impl CallConfig {
    fn validate(&self, service: &ServiceConfig, scenario: &Scenario) -> Result<(), ConfigError> {
        let dependency = service
            .dependencies
            .get(&self.dependency)
            .ok_or_else(|| ConfigError::new("dependency", format!("no dependency named {:?}", self.dependency)))?;
        let target = scenario.service_ref(&dependency.service, "dependency")?;
        ensure(
            target.routes.contains_key(&self.route),
            "route",
            &format!("service {:?} has no route {:?}", dependency.service, self.route),
        )?;
        // The alternate is called on the same route.
        if let Some(alternate) = alternate_of(dependency)
            && let Some(other) = service.dependencies.get(alternate)
        {
            let other_service = scenario.service_ref(&other.service, "dependency")?;
            ensure(
                other_service.routes.contains_key(&self.route),
                "route",
                &format!("the alternate {alternate:?} (service {:?}) has no route {:?}", other.service, self.route),
            )?;
        }
        Ok(())
    }
}

/// The dependency a dependency's fallback calls instead, if any.
pub(crate) fn alternate_of(dependency: &DependencyConfig) -> Option<&str> {
    match &dependency.policy.fallback {
        FallbackConfig::Alternate { dependency } => Some(dependency),
        _ => None,
    }
}

impl ErrorRate {
    fn validate(&self) -> Result<(), ConfigError> {
        probability(self.probability, "probability")?;
        // Callers count any status below 400 as a success.
        ensure(
            (400..=599).contains(&self.status),
            "status",
            "must be between 400 and 599: a status below 400 is a success, not an error",
        )
    }
}

impl LinkConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.latency.validate().map_err(|e| e.within("latency"))?;
        probability(self.loss, "loss")
    }
}

impl ClientConfig {
    /// Members with a policy of their own: one per user in a closed loop,
    /// `population` in an open one.
    pub fn members(&self) -> u32 {
        self.closed_loop.as_ref().map_or(self.population, |closed| closed.users)
    }

    fn validate(&self, scenario: &Scenario) -> Result<(), ConfigError> {
        ensure(!self.name.is_empty(), "name", "must not be empty")?;
        // A client's name keys its random streams, its routes and its edge
        // in the report, and names it as a caller in links and partitions.
        ensure(!scenario.services.contains_key(&self.name), "name", "must not be a service's name")?;
        ensure(
            scenario.clients.iter().filter(|c| c.name == self.name).count() == 1,
            "name",
            "must not be another client's name",
        )?;
        let target = scenario.service_ref(&self.target, "target")?;
        ensure(
            self.rate.is_some() != self.closed_loop.is_some(),
            "rate",
            "exactly one of rate (open loop) and closed_loop must be given",
        )?;
        if let Some(profile) = &self.rate {
            profile.validate().map_err(|e| e.within("rate"))?;
        }
        if let Some(closed) = &self.closed_loop {
            ensure((1..=POPULATION_MAX).contains(&closed.users), "closed_loop.users", "must be between 1 and 100000")?;
            closed.think_time.validate().map_err(|e| e.within("closed_loop.think_time"))?;
        }
        ensure((1..=POPULATION_MAX).contains(&self.population), "population", "must be between 1 and 100000")?;
        if let Some(closed) = &self.closed_loop {
            ensure(
                self.population == 1 || self.population == closed.users,
                "population",
                &format!(
                    "must be 1 or closed_loop.users ({}): a closed loop gives each user a member of its own",
                    closed.users
                ),
            )?;
        }
        ensure(!self.routes.is_empty(), "routes", "must name at least one route")?;
        count_at_most(self.routes.len(), "routes")?;
        for (index, weighted) in self.routes.iter().enumerate() {
            let at = format!("routes[{index}]");
            ensure(
                target.routes.contains_key(&weighted.route),
                "route",
                &format!("service {:?} has no route {:?}", self.target, weighted.route),
            )
            .map_err(|e| e.within(&at))?;
            ensure(weighted.weight.is_finite() && weighted.weight > 0.0, "weight", "must be greater than 0")
                .map_err(|e| e.within(&at))?;
            ensure(weighted.keys.is_none_or(|k| k >= 1), "keys", "must be at least 1").map_err(|e| e.within(&at))?;
        }
        self.policy.validate().map_err(|e| e.within("policy"))?;
        ensure(
            !matches!(self.policy.fallback, FallbackConfig::Alternate { .. }),
            "kind",
            "alternate is for a service's dependencies: a client calls its one target",
        )
        .map_err(|e| e.within("policy.fallback"))
    }
}

impl RateProfile {
    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            RateProfile::Constant { rps } => rate(*rps, "constant.rps"),
            RateProfile::Spike { base, peak, width, .. } => {
                rate(*base, "spike.base")?;
                rate(*peak, "spike.peak")?;
                ensure(!width.is_zero(), "spike.width", "must be greater than 0")
            }
            RateProfile::Ramp { from_rps, to_rps, start, end } => {
                rate(*from_rps, "ramp.from_rps")?;
                rate(*to_rps, "ramp.to_rps")?;
                ensure(end > start, "ramp.end", "must be after start")
            }
            RateProfile::Steps(points) | RateProfile::Table(points) => {
                let kind = if matches!(self, RateProfile::Steps(_)) { "steps" } else { "table" };
                ensure(!points.is_empty(), kind, "must hold at least one point")?;
                ensure(points.len() <= 100_000, kind, "must hold at most 100000 points")?;
                for (index, point) in points.iter().enumerate() {
                    rate(point.rps, "rps").map_err(|e| e.within(&format!("{kind}[{index}]")))?;
                    if index > 0 {
                        ensure(point.at > points[index - 1].at, "at", "must be after the previous point")
                            .map_err(|e| e.within(&format!("{kind}[{index}]")))?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl FaultConfig {
    fn validate(&self, scenario: &Scenario) -> Result<(), ConfigError> {
        let target = scenario.service_ref(&self.target, "target")?;
        if let Some(replica) = self.replica {
            ensure(
                replica < target.replicas,
                "replica",
                &format!("must be below the target's {} replicas", target.replicas),
            )?;
        }
        ensure(self.until > self.from, "until", "must be after from")?;
        match &self.kind {
            FaultKind::Slow { factor, .. } => ensure(
                factor.is_finite() && (0.0..=1_000_000.0).contains(factor),
                "kind.slow.factor",
                "must be between 0 and 1000000",
            ),
            FaultKind::Errors(errors) => errors.validate().map_err(|e| e.within("kind.errors")),
            FaultKind::Partition { from } => {
                ensure(scenario.is_caller(from), "kind.partition.from", "is neither a service nor a client")
            }
            FaultKind::Crash | FaultKind::Hang | FaultKind::CapacityLoss { .. } => Ok(()),
        }
    }
}
