//! The running system: services, clients, links and faults as one
//! [`Model`] of the engine. This is the only place where patterns meet the
//! scheduler: every call a client or a handler makes goes through a policy
//! pipeline, and its `Send` / `Wait` / `Finish` steps become events.
//!
//! A request's life: a caller's pipeline says `Send`; the request crosses the
//! link (latency, loss, partitions) and is delivered to a replica; it waits
//! for a worker (or is refused with a 503 when the queue is full), runs its
//! handler's steps (compute, call, parallel calls) and answers across the
//! link. The caller's attempt timeout races the answer; whichever comes
//! second is recognised by its attempt number and ignored.

use std::collections::VecDeque;

use slab::Slab;
use stormglass_core::dist::Sampler;
use stormglass_core::queue::EventId;
use stormglass_core::rng::{RngStreams, SimRng};
use stormglass_core::sim::{Context, Model};
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_core::timeline::{Buckets, CountSeries, GaugeSeries, LatencySeries};
use stormglass_patterns::breaker::{BreakerState, Transition};
use stormglass_patterns::pipeline::{Attempt, Call, Finish, Policy, PolicyStats, Request, Step};
use stormglass_patterns::{AttemptOutcome, Rejection};

use crate::config::{Balancer, Discipline, Execution, FaultKind, HandlerStep, Scenario, alternate_of};
use crate::profile::Arrivals;
use crate::report::Cause;

/// A slab index with the generation it was created in, so an event for an
/// entry that finished (and whose slot was reused) is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

/// Events of the model.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// The next open-loop arrival of a client.
    ClientArrival { client: u32 },
    /// A closed-loop user finished thinking.
    UserWake { client: u32, user: u32 },
    /// A request reaches its replica.
    Deliver { request: Key },
    /// A compute step of a request ended.
    ComputeDone { request: Key },
    /// An answer reaches the caller of `call`'s attempt `attempt`.
    Answer { call: Key, attempt: u32, answer: Answer },
    /// The attempt's timeout fired.
    AttemptTimeout { call: Key, attempt: u32 },
    /// A pipeline wait (backoff, leaky-bucket delay) ended.
    PolicyWake { call: Key },
    /// A fault starts or ends.
    Fault { fault: u32, starts: bool },
}

/// What comes back to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    outcome: AttemptOutcome,
    /// Some step on the path served a fallback.
    degraded: bool,
    /// Where a failure started, for failures-by-cause.
    cause: Option<Cause>,
}

/// Who waits for a call's result.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Request(Key),
    Client { client: u32, route: u32, user: Option<u32> },
}

/// Which policy a call runs through.
#[derive(Debug, Clone, Copy)]
enum PolicyRef {
    Edge {
        service: u32,
        dependency: u32,
    },
    /// `route` is the client's route slot, where its throttled retries are
    /// booked.
    Client {
        client: u32,
        member: u32,
        route: u32,
    },
}

/// A call in progress through a pipeline.
struct OutboundCall {
    generation: u32,
    owner: Owner,
    policy: PolicyRef,
    /// The calling node (service or client), for links and partitions.
    from_node: u32,
    target: u32,
    route: u32,
    required: bool,
    pipeline: Call,
    /// The attempt out, if any.
    attempt: u32,
    timeout: Option<EventId>,
    /// The server request of the attempt out, to mark it abandoned.
    attempt_request: Option<Key>,
    last_answer: Option<Answer>,
    started: SimTime,
    /// Sent by another call's `alternate` fallback: a success is degraded.
    via_alternate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestState {
    /// Crossing the link.
    InTransit,
    /// Waiting for a worker (or, async, for a compute slot).
    Queued,
    /// Holding a worker: computing or waiting on calls.
    Running,
    /// Async only: waiting on calls without a slot.
    Suspended,
}

/// A request being served by a replica.
struct ServerRequest {
    generation: u32,
    service: u32,
    replica: u32,
    route: u32,
    /// Next handler step.
    step: u32,
    state: RequestState,
    arrived: SimTime,
    /// The call and attempt to answer.
    reply_call: Key,
    reply_attempt: u32,
    reply_node: u32,
    /// Calls of the current step not finished yet.
    pending: u32,
    degraded: bool,
    failure: Option<Answer>,
    caller_gone: bool,
    /// `advance` is starting this request's calls: a call that finishes at
    /// once must not re-enter `advance`.
    starting_calls: bool,
    /// The item asked for (see `WeightedRoute::keys`), passed to its calls.
    key: u64,
}

struct Route {
    steps: Vec<CompiledStep>,
    errors: Option<(f64, u16)>,
    compute_rng: SimRng,
    errors_rng: SimRng,
}

enum CompiledStep {
    Compute(Sampler),
    Calls(Vec<CompiledCall>),
}

#[derive(Clone, Copy)]
struct CompiledCall {
    dependency: u32,
    route: u32,
    required: bool,
}

pub(crate) struct Dependency {
    pub(crate) name: String,
    target: u32,
    pub(crate) policy: Policy,
    rng: SimRng,
    pub(crate) series: EdgeSeries,
    pub(crate) transitions: Vec<Transition>,
    pub(crate) transitions_dropped: u64,
    /// Where an `alternate` fallback sends the call instead.
    alternate: Option<Alternate>,
}

/// The other dependency an `alternate` fallback calls, on the same route.
struct Alternate {
    dependency: u32,
    /// By route index of this dependency's service: the same-named route's
    /// index at the alternate's service (`u32::MAX` for a route it lacks,
    /// which validation makes sure is never called).
    routes: Vec<u32>,
}

/// Most transitions listed per edge in a report.
const TRANSITIONS_MAX: usize = 10_000;

struct Replica {
    busy: u32,
    queue: VecDeque<Key>,
    /// Requests delivered and not yet answered (for balancers).
    outstanding: u32,
    crashed: u32,
    hung: u32,
    capacity_lost: u32,
    slow_factor: f64,
    slow_added: SimDuration,
    /// Active error faults: (probability, status, fault index).
    errors: Vec<(f64, u16, u32)>,
    /// Nodes whose requests never arrive.
    partitioned_from: Vec<u32>,
}

pub(crate) struct Service {
    pub(crate) name: String,
    execution: Execution,
    slots: u32,
    queue_capacity: u32,
    contention: f64,
    abandon_on_caller_timeout: bool,
    /// Sent with its 429s and 503s.
    retry_after: Option<SimDuration>,
    routes: Vec<Route>,
    pub(crate) dependencies: Vec<Dependency>,
    replicas: Vec<Replica>,
    balancer: Balancer,
    round_robin: u32,
    balancer_rng: SimRng,
    pub(crate) series: ServiceSeries,
}

pub(crate) struct ServiceSeries {
    pub(crate) arrivals: CountSeries,
    pub(crate) answered: CountSeries,
    pub(crate) rejected_queue_full: CountSeries,
    /// Refused at once by a crashed replica (answered: connection refused).
    pub(crate) refused_by_crash: CountSeries,
    /// Accepted by a hung replica and never answered.
    pub(crate) lost_to_hang: CountSeries,
    pub(crate) queue_length: GaugeSeries,
    pub(crate) busy: GaugeSeries,
    pub(crate) latency: LatencySeries,
    pub(crate) latency_total: stormglass_core::metrics::Histogram,
}

pub(crate) struct EdgeSeries {
    pub(crate) calls: CountSeries,
    pub(crate) attempts: CountSeries,
    pub(crate) retries: CountSeries,
    pub(crate) ok: CountSeries,
    pub(crate) fallbacks: CountSeries,
    pub(crate) failed: CountSeries,
    pub(crate) rejected_circuit_open: CountSeries,
    pub(crate) rejected_bulkhead_full: CountSeries,
    /// Attempts the retry budget refused.
    pub(crate) throttled: CountSeries,
    pub(crate) breaker_state: GaugeSeries,
}

pub(crate) struct RouteSeries {
    pub(crate) name: String,
    pub(crate) arrivals: CountSeries,
    pub(crate) ok: CountSeries,
    pub(crate) degraded: CountSeries,
    pub(crate) failed: Vec<CountSeries>,
    /// Attempts the client's retry budget refused.
    pub(crate) throttled: CountSeries,
    pub(crate) latency: LatencySeries,
    pub(crate) latency_total: stormglass_core::metrics::Histogram,
    pub(crate) in_flight: u64,
}

struct Member {
    policy: Policy,
}

pub(crate) struct Client {
    node: u32,
    target: u32,
    arrivals: Option<Arrivals>,
    think: Option<Sampler>,
    members: Vec<Member>,
    member_rngs: Vec<SimRng>,
    /// Cumulative route weights (normalised) and the target's route index.
    routes: Vec<(f64, u32)>,
    /// Per route slot: how many items its requests ask for (None: each its own).
    route_keys: Vec<Option<u64>>,
    keys_rng: SimRng,
    arrivals_rng: SimRng,
    routes_rng: SimRng,
    think_rng: SimRng,
    pub(crate) route_series: Vec<RouteSeries>,
}

struct Link {
    latency: Sampler,
    loss: f64,
    rng: SimRng,
}

/// What one request or call alive costs in memory, in bytes, from the
/// sizes of the types that hold it (not from an allocator count).
///
/// A call through a pipeline is one slab entry holding an `OutboundCall`
/// (with the pipeline's per-call `Call` state inline); a request at a
/// replica is one slab entry holding a `ServerRequest`; each pending event
/// is a payload slot and a heap entry in the engine's queue. Nothing else
/// grows with the number of requests (timelines are fixed-size buckets, and
/// a replica's wait queue holds 8-byte keys bounded by `queue_capacity`).
/// The slabs never hold more than `limits.in_flight_max` entries between
/// them: reaching it ends the run with `RunError::InFlightLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightMemory {
    /// One call through a pipeline (client -> service or service -> service).
    pub call_bytes: usize,
    /// One request being served by a replica.
    pub request_bytes: usize,
    /// One pending event (timeout, delivery, answer, compute end).
    pub event_bytes: usize,
}

/// The layout `slab` stores each value in (`slab::Entry` is private; this
/// is its definition).
#[allow(dead_code)] // only measured
enum SlabEntry<T> {
    Vacant(usize),
    Occupied(T),
}

/// The bytes per request and call alive in a run; see [`InFlightMemory`].
pub fn in_flight_memory() -> InFlightMemory {
    use std::mem::size_of;
    InFlightMemory {
        call_bytes: size_of::<SlabEntry<OutboundCall>>(),
        request_bytes: size_of::<SlabEntry<ServerRequest>>(),
        event_bytes: stormglass_core::queue::EventQueue::<Event>::BYTES_PER_EVENT,
    }
}

/// A run ended by one of the scenario's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    InFlight { in_flight_max: u32, at: SimTime },
}

/// The whole simulated system.
pub(crate) struct World {
    pub(crate) services: Vec<Service>,
    pub(crate) clients: Vec<Client>,
    /// `links[from_node * services + to_service]`.
    links: Vec<Link>,
    /// (target service, replica, kind, partitioned node) per fault.
    faults: Vec<(u32, Option<u32>, FaultKind, u32)>,
    fault_rngs: Vec<SimRng>,
    /// Fault indices active on each service's replicas.
    active_faults: Vec<Vec<Vec<u32>>>,
    requests: Slab<ServerRequest>,
    calls: Slab<OutboundCall>,
    generation_next: u32,
    /// Keys handed to requests without an item space so far.
    unique_keys_next: u64,
    end_of_arrivals: SimTime,
    in_flight_max: u32,
    pub(crate) limit_hit: Option<LimitHit>,
    pub(crate) buckets: Buckets,
}

/// The keys of requests that ask for an item of their own have this bit set,
/// so they never meet an item id (`0..keys`).
const UNIQUE_KEYS: u64 = 1 << 63;

fn key(index: usize, generation: u32) -> Key {
    Key { index: index as u32, generation }
}

impl World {
    /// Builds the world of a validated scenario.
    pub(crate) fn new(scenario: &Scenario) -> World {
        let streams = RngStreams::new(scenario.seed);
        let buckets = Buckets::new(scenario.bucket_width, scenario.duration + scenario.drain)
            .expect("validated: bucket count within bounds");
        let service_names: Vec<&String> = scenario.services.keys().collect();
        let service_index = |name: &str| service_names.iter().position(|n| *n == name).expect("validated") as u32;
        let node_index = |name: &str| -> u32 {
            match service_names.iter().position(|n| *n == name) {
                Some(i) => i as u32,
                None => {
                    let c = scenario.clients.iter().position(|c| c.name == name).expect("validated");
                    (service_names.len() + c) as u32
                }
            }
        };
        let sampler = |d: &stormglass_core::dist::Distribution| d.sampler().expect("validated");

        let mut services = Vec::with_capacity(scenario.services.len());
        for (name, config) in &scenario.services {
            let dependency_names: Vec<&String> = config.dependencies.keys().collect();
            let routes = config
                .routes
                .iter()
                .map(|(route_name, route)| {
                    let steps = route
                        .steps
                        .iter()
                        .map(|step| {
                            let compile = |call: &crate::config::CallConfig| {
                                let dependency =
                                    dependency_names.iter().position(|d| **d == call.dependency).expect("validated");
                                let target = &scenario.services[&config.dependencies[&call.dependency].service];
                                let route = target.routes.keys().position(|r| *r == call.route).expect("validated");
                                CompiledCall {
                                    dependency: dependency as u32,
                                    route: route as u32,
                                    required: call.required,
                                }
                            };
                            match step {
                                HandlerStep::Compute(d) => CompiledStep::Compute(sampler(d)),
                                HandlerStep::Call(call) => CompiledStep::Calls(vec![compile(call)]),
                                HandlerStep::Parallel(calls) => {
                                    CompiledStep::Calls(calls.iter().map(compile).collect())
                                }
                            }
                        })
                        .collect();
                    Route {
                        steps,
                        errors: route.errors.map(|e| (e.probability, e.status)),
                        compute_rng: streams.stream(&format!("service.{name}.route.{route_name}.compute")),
                        errors_rng: streams.stream(&format!("service.{name}.route.{route_name}.errors")),
                    }
                })
                .collect();
            let dependencies = config
                .dependencies
                .iter()
                .map(|(dep_name, dep)| Dependency {
                    name: dep_name.clone(),
                    target: service_index(&dep.service),
                    policy: Policy::new(dep.policy.clone()).expect("validated"),
                    rng: streams.stream(&format!("edge.{name}.{dep_name}.policy")),
                    series: EdgeSeries::new(buckets),
                    transitions: Vec::new(),
                    transitions_dropped: 0,
                    alternate: alternate_of(dep).map(|other| {
                        let other_routes = &scenario.services[&config.dependencies[other].service].routes;
                        Alternate {
                            dependency: dependency_names.iter().position(|d| *d == other).expect("validated") as u32,
                            routes: scenario.services[&dep.service]
                                .routes
                                .keys()
                                .map(|r| other_routes.keys().position(|o| o == r).map_or(u32::MAX, |i| i as u32))
                                .collect(),
                        }
                    }),
                })
                .collect();
            let (slots, queue_capacity) = config.execution.capacity();
            services.push(Service {
                name: name.clone(),
                execution: config.execution,
                slots,
                queue_capacity,
                contention: config.contention,
                abandon_on_caller_timeout: config.abandon_on_caller_timeout,
                retry_after: config.retry_after,
                routes,
                dependencies,
                replicas: (0..config.replicas)
                    .map(|_| Replica {
                        busy: 0,
                        queue: VecDeque::new(),
                        outstanding: 0,
                        crashed: 0,
                        hung: 0,
                        capacity_lost: 0,
                        slow_factor: 1.0,
                        slow_added: SimDuration::ZERO,
                        errors: Vec::new(),
                        partitioned_from: Vec::new(),
                    })
                    .collect(),
                balancer: config.balancer,
                round_robin: 0,
                balancer_rng: streams.stream(&format!("service.{name}.balancer")),
                series: ServiceSeries::new(buckets),
            });
        }

        let several_clients = scenario.clients.len() > 1;
        let clients = scenario
            .clients
            .iter()
            .enumerate()
            .map(|(index, config)| {
                let target = service_index(&config.target);
                let target_routes = &scenario.services[&config.target].routes;
                let total: f64 = config.routes.iter().map(|r| r.weight).sum();
                let mut cumulative = 0.0;
                let routes = config
                    .routes
                    .iter()
                    .map(|r| {
                        cumulative += r.weight / total;
                        (cumulative, target_routes.keys().position(|k| *k == r.route).expect("validated") as u32)
                    })
                    .collect();
                let route_series = config
                    .routes
                    .iter()
                    .map(|r| {
                        let name =
                            if several_clients { format!("{}/{}", config.name, r.route) } else { r.route.clone() };
                        RouteSeries::new(name, buckets)
                    })
                    .collect();
                let name = &config.name;
                Client {
                    node: (service_names.len() + index) as u32,
                    target,
                    arrivals: config.rate.as_ref().map(Arrivals::new),
                    think: config.closed_loop.as_ref().map(|c| sampler(&c.think_time)),
                    members: (0..config.population)
                        .map(|_| Member { policy: Policy::new(config.policy.clone()).expect("validated") })
                        .collect(),
                    member_rngs: (0..config.population)
                        .map(|m| streams.stream_indexed(&format!("client.{name}.policy"), u64::from(m)))
                        .collect(),
                    routes,
                    route_keys: config.routes.iter().map(|r| r.keys).collect(),
                    keys_rng: streams.stream(&format!("client.{name}.keys")),
                    arrivals_rng: streams.stream(&format!("client.{name}.arrivals")),
                    routes_rng: streams.stream(&format!("client.{name}.routes")),
                    think_rng: streams.stream(&format!("client.{name}.think")),
                    route_series,
                }
            })
            .collect();

        let nodes = service_names.len() + scenario.clients.len();
        let mut links = Vec::with_capacity(nodes * service_names.len());
        for from in 0..nodes {
            let from_name: &str = if from < service_names.len() {
                service_names[from]
            } else {
                &scenario.clients[from - service_names.len()].name
            };
            for to in &service_names {
                let config = scenario
                    .links
                    .edges
                    .iter()
                    .find(|e| e.from == from_name && e.to == **to)
                    .map(|e| &e.link)
                    .unwrap_or(&scenario.links.default);
                links.push(Link {
                    latency: sampler(&config.latency),
                    loss: config.loss,
                    rng: streams.stream(&format!("link.{from_name}->{to}")),
                });
            }
        }

        let faults = scenario
            .faults
            .iter()
            .map(|f| {
                let partition_node = match &f.kind {
                    FaultKind::Partition { from } => node_index(from),
                    _ => u32::MAX,
                };
                (service_index(&f.target), f.replica, f.kind.clone(), partition_node)
            })
            .collect();
        let fault_rngs = (0..scenario.faults.len()).map(|i| streams.stream_indexed("fault.errors", i as u64)).collect();

        let active_faults = services.iter().map(|s| vec![Vec::new(); s.replicas.len()]).collect();
        World {
            services,
            clients,
            links,
            faults,
            fault_rngs,
            active_faults,
            requests: Slab::new(),
            calls: Slab::new(),
            generation_next: 0,
            unique_keys_next: 0,
            end_of_arrivals: SimTime::ZERO + scenario.duration,
            in_flight_max: scenario.limits.in_flight_max,
            limit_hit: None,
            buckets,
        }
    }

    /// The first events: arrivals, users, fault edges.
    pub(crate) fn start(&mut self, ctx: &mut Context<'_, Event>, scenario: &Scenario) {
        for (index, client) in self.clients.iter_mut().enumerate() {
            let client_index = index as u32;
            if let Some(arrivals) = &client.arrivals {
                if let Some(t) = arrivals.next_after(SimTime::ZERO, self.end_of_arrivals, &mut client.arrivals_rng) {
                    ctx.schedule_at(t, Event::ClientArrival { client: client_index });
                }
            } else if let Some(closed) = &scenario.clients[index].closed_loop {
                for user in 0..closed.users {
                    let think = client.think.as_ref().expect("closed loop has a think time");
                    let delay = think.sample(&mut client.think_rng);
                    ctx.schedule_in(delay, Event::UserWake { client: client_index, user });
                }
            }
        }
        for (index, fault) in scenario.faults.iter().enumerate() {
            ctx.schedule_at(fault.from, Event::Fault { fault: index as u32, starts: true });
            ctx.schedule_at(fault.until, Event::Fault { fault: index as u32, starts: false });
        }
    }

    /// Requests and calls alive now.
    pub(crate) fn in_flight(&self) -> usize {
        self.requests.len() + self.calls.len()
    }

    fn next_generation(&mut self) -> u32 {
        self.generation_next = self.generation_next.wrapping_add(1);
        self.generation_next
    }

    fn call_mut(&mut self, call: Key) -> Option<&mut OutboundCall> {
        self.calls.get_mut(call.index as usize).filter(|c| c.generation == call.generation)
    }

    fn request_mut(&mut self, request: Key) -> Option<&mut ServerRequest> {
        self.requests.get_mut(request.index as usize).filter(|r| r.generation == request.generation)
    }

    fn over_limit(&mut self, now: SimTime) -> bool {
        if self.in_flight() >= self.in_flight_max as usize {
            self.limit_hit.get_or_insert(LimitHit::InFlight { in_flight_max: self.in_flight_max, at: now });
            return true;
        }
        false
    }

    // ---- clients ---------------------------------------------------------

    fn client_arrival(&mut self, ctx: &mut Context<'_, Event>, client: u32, user: Option<u32>) {
        let now = ctx.now();
        let c = &mut self.clients[client as usize];
        if user.is_none()
            && let Some(arrivals) = &c.arrivals
            && let Some(t) = arrivals.next_after(now, self.end_of_arrivals, &mut c.arrivals_rng)
        {
            ctx.schedule_at(t, Event::ClientArrival { client });
        }
        let u = c.routes_rng.uniform01();
        let slot = c.routes.iter().position(|(cumulative, _)| u < *cumulative).unwrap_or(c.routes.len() - 1);
        let route = c.routes[slot].1;
        let member = c.routes_rng.below(c.members.len() as u64) as u32;
        let key = match c.route_keys[slot] {
            Some(items) => c.keys_rng.below(items),
            None => {
                // Above every item id: a key no other request shares.
                self.unique_keys_next += 1;
                UNIQUE_KEYS | self.unique_keys_next
            }
        };
        c.route_series[slot].arrivals.add(now, 1);
        c.route_series[slot].in_flight += 1;
        let (node, target) = (c.node, c.target);
        if self.over_limit(now) {
            return;
        }
        let owner = Owner::Client { client, route: slot as u32, user };
        let policy = PolicyRef::Client { client, member, route: slot as u32 };
        self.start_call(ctx, owner, policy, node, target, route, true, Request::idempotent(key));
    }

    fn client_finished(
        &mut self,
        ctx: &mut Context<'_, Event>,
        client: u32,
        slot: u32,
        user: Option<u32>,
        started: SimTime,
        result: Answer,
    ) {
        let now = ctx.now();
        let c = &mut self.clients[client as usize];
        let series = &mut c.route_series[slot as usize];
        series.in_flight -= 1;
        if result.outcome.is_success() {
            if result.degraded { &mut series.degraded } else { &mut series.ok }.add(now, 1);
        } else {
            let cause = result.cause.unwrap_or(Cause::ErrorStatus);
            series.failed[cause_index(cause)].add(now, 1);
        }
        series.latency.record(now, now - started);
        series.latency_total.record(now - started);
        if let (Some(user), Some(think)) = (user, &c.think)
            && now < self.end_of_arrivals
        {
            let delay = think.sample(&mut c.think_rng);
            ctx.schedule_in(delay, Event::UserWake { client, user });
        }
    }

    // ---- calls through a pipeline ----------------------------------------

    /// The pipeline behind `policy`.
    fn policy_mut(&mut self, policy: PolicyRef) -> &mut Policy {
        match policy {
            PolicyRef::Client { client, member, .. } => {
                &mut self.clients[client as usize].members[member as usize].policy
            }
            PolicyRef::Edge { service, dependency } => {
                &mut self.services[service as usize].dependencies[dependency as usize].policy
            }
        }
    }

    /// Starts a call through `policy` and follows its first step.
    #[allow(clippy::too_many_arguments)] // one call's identity; a struct would only rename them
    fn start_call(
        &mut self,
        ctx: &mut Context<'_, Event>,
        owner: Owner,
        policy: PolicyRef,
        from_node: u32,
        target: u32,
        route: u32,
        required: bool,
        request: Request,
    ) {
        self.start_call_via(ctx, owner, policy, from_node, target, route, required, request, false);
    }

    /// [`start_call`](Self::start_call), for an alternate fallback's call
    /// when `via_alternate`.
    #[allow(clippy::too_many_arguments)]
    fn start_call_via(
        &mut self,
        ctx: &mut Context<'_, Event>,
        owner: Owner,
        policy: PolicyRef,
        from_node: u32,
        target: u32,
        route: u32,
        required: bool,
        request: Request,
        via_alternate: bool,
    ) {
        let now = ctx.now();
        let generation = self.next_generation();
        let (pipeline, step) =
            drive_policy(&mut self.services, &mut self.clients, policy, now, |p, rng| p.start_call(now, request, rng));
        let index = self.calls.insert(OutboundCall {
            generation,
            owner,
            policy,
            from_node,
            target,
            route,
            required,
            pipeline,
            attempt: 0,
            timeout: None,
            attempt_request: None,
            last_answer: None,
            started: now,
            via_alternate,
        });
        self.follow(ctx, key(index, generation), step);
    }

    /// Carries out a pipeline step.
    fn follow(&mut self, ctx: &mut Context<'_, Event>, call: Key, step: Step) {
        match step {
            Step::Send(attempt) => self.send_attempt(ctx, call, attempt),
            Step::Wait { until } => {
                ctx.schedule_at(until, Event::PolicyWake { call });
            }
            Step::Finish(finish) => self.finish_call(ctx, call, finish),
        }
    }

    /// Sends one attempt across the link to a replica of the target.
    fn send_attempt(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, attempt: Attempt) {
        let now = ctx.now();
        let services_count = self.services.len();
        let Some(call) = self.calls.get_mut(call_key.index as usize) else { return };
        call.attempt = attempt.number;
        let (from_node, target, route) = (call.from_node, call.target, call.route);
        let item = call.pipeline.request().key;
        let service = &mut self.services[target as usize];
        let replica = choose_replica(service);
        let link = &mut self.links[from_node as usize * services_count + target as usize];
        let latency = link.latency.sample(&mut link.rng);
        let lost = link.loss > 0.0 && link.rng.bernoulli(link.loss);
        let partitioned = service.replicas[replica as usize].partitioned_from.contains(&from_node);
        if lost || partitioned {
            // The connection is never accepted: only the connect timeout
            // (or the attempt deadline) ends the attempt.
            let at = attempt.connect_timeout_at(now);
            call.attempt_request = None;
            call.timeout = (at != SimTime::MAX).then(|| {
                ctx.schedule_cancellable_at(at, Event::AttemptTimeout { call: call_key, attempt: attempt.number })
            });
            return;
        }
        let arrives = now + latency;
        let at = attempt.timeout_at(arrives);
        call.timeout = (at != SimTime::MAX).then(|| {
            ctx.schedule_cancellable_at(at, Event::AttemptTimeout { call: call_key, attempt: attempt.number })
        });
        service.replicas[replica as usize].outstanding += 1;
        let generation = self.generation_next.wrapping_add(1);
        self.generation_next = generation;
        let index = self.requests.insert(ServerRequest {
            generation,
            service: target,
            replica,
            route,
            step: 0,
            state: RequestState::InTransit,
            arrived: arrives,
            reply_call: call_key,
            reply_attempt: attempt.number,
            reply_node: from_node,
            pending: 0,
            degraded: false,
            failure: None,
            caller_gone: false,
            starting_calls: false,
            key: item,
        });
        let request = key(index, generation);
        if let Some(call) = self.calls.get_mut(call_key.index as usize) {
            call.attempt_request = Some(request);
        }
        ctx.schedule_at(arrives, Event::Deliver { request });
        self.over_limit(now);
    }

    /// An answer reached the caller.
    fn on_answer(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, attempt: u32, answer: Answer) {
        let now = ctx.now();
        let Some(call) = self.calls.get_mut(call_key.index as usize).filter(|c| c.generation == call_key.generation)
        else {
            return;
        };
        if call.attempt != attempt {
            return; // the attempt already timed out: a late answer
        }
        if let Some(timeout) = call.timeout.take() {
            ctx.cancel(timeout);
        }
        call.attempt = 0;
        call.attempt_request = None;
        call.last_answer = Some(answer);
        let retry_after = match answer.outcome {
            AttemptOutcome::Status(429 | 503) => self.services[call.target as usize].retry_after,
            _ => None,
        };
        let pipeline = &mut call.pipeline;
        let step = drive_policy(&mut self.services, &mut self.clients, call.policy, now, |p, rng| {
            p.on_outcome(now, pipeline, answer.outcome, retry_after, rng)
        });
        self.follow(ctx, call_key, step);
    }

    /// An attempt's timeout fired before its answer.
    fn on_timeout(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, attempt: u32) {
        let now = ctx.now();
        let Some(call) = self.calls.get_mut(call_key.index as usize).filter(|c| c.generation == call_key.generation)
        else {
            return;
        };
        if call.attempt != attempt {
            return;
        }
        call.timeout = None;
        call.attempt = 0;
        let abandoned = call.attempt_request.take();
        call.last_answer =
            Some(Answer { outcome: AttemptOutcome::Timeout, degraded: false, cause: Some(Cause::Timeout) });
        let pipeline = &mut call.pipeline;
        let step = drive_policy(&mut self.services, &mut self.clients, call.policy, now, |p, rng| {
            p.on_outcome(now, pipeline, AttemptOutcome::Timeout, None, rng)
        });
        if let Some(request) = abandoned.and_then(|r| self.request_mut(r)) {
            request.caller_gone = true;
        }
        self.follow(ctx, call_key, step);
    }

    /// A backoff or delay ended.
    fn on_wake(&mut self, ctx: &mut Context<'_, Event>, call_key: Key) {
        let now = ctx.now();
        let Some(call) = self.calls.get_mut(call_key.index as usize).filter(|c| c.generation == call_key.generation)
        else {
            return;
        };
        let pipeline = &mut call.pipeline;
        let step = drive_policy(&mut self.services, &mut self.clients, call.policy, now, |p, rng| {
            p.resume(now, pipeline, rng)
        });
        self.follow(ctx, call_key, step);
    }

    /// A call is over: its result goes to whoever waits for it.
    fn finish_call(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, finish: Finish) {
        if self.call_mut(call_key).is_none() {
            return;
        }
        let call = self.calls.remove(call_key.index as usize);
        debug_assert!(call.timeout.is_none(), "a finished call still has a timeout pending");
        if let (Finish::Fallback { alternate: Some(_), .. }, PolicyRef::Edge { service, dependency }) =
            (&finish, call.policy)
        {
            // The other dependency answers instead, through its own policy,
            // on the same route; its result goes to this call's owner.
            let s = &self.services[service as usize];
            let alternate = s.dependencies[dependency as usize].alternate.as_ref().expect("validated: an alternate");
            let other = alternate.dependency;
            let (target, route) = (s.dependencies[other as usize].target, alternate.routes[call.route as usize]);
            let policy = PolicyRef::Edge { service, dependency: other };
            let request = call.pipeline.request();
            return self.start_call_via(
                ctx,
                call.owner,
                policy,
                call.from_node,
                target,
                route,
                call.required,
                request,
                true,
            );
        }
        if matches!(finish, Finish::Success { .. }) {
            let policy = self.policy_mut(call.policy);
            if policy.caches_good_values() {
                // What the dependency said does not matter to the model, only
                // when it said it: the cache serves ages, so store nothing.
                policy.record_good_value(ctx.now(), call.pipeline.request().key, String::new());
            }
        }
        let last = call.last_answer;
        let result = match finish {
            Finish::Success { .. } => Answer {
                outcome: last.map_or(AttemptOutcome::OK, |a| a.outcome),
                degraded: call.via_alternate || last.is_some_and(|a| a.degraded),
                cause: None,
            },
            // A fallback answers for the dependency: the caller goes on,
            // degraded.
            Finish::Fallback { .. } => Answer { outcome: AttemptOutcome::OK, degraded: true, cause: None },
            Finish::Failed { outcome, .. } => Answer { outcome, degraded: false, cause: Some(cause_of(outcome, last)) },
        };
        match call.owner {
            Owner::Request(request) => self.on_call_result(ctx, request, result, call.required),
            Owner::Client { client, route, user, .. } => {
                self.client_finished(ctx, client, route, user, call.started, result)
            }
        }
    }

    // ---- servers -----------------------------------------------------------

    /// A request reached its replica: faults, then admission.
    fn deliver(&mut self, ctx: &mut Context<'_, Event>, request_key: Key) {
        let now = ctx.now();
        let Some(request) = self.request_mut(request_key) else { return };
        request.state = RequestState::Queued;
        let (s, r) = (request.service as usize, request.replica as usize);
        let service = &mut self.services[s];
        service.series.arrivals.add(now, 1);
        let replica = &mut service.replicas[r];
        if replica.crashed > 0 {
            service.series.refused_by_crash.add(now, 1);
            let refused =
                Answer { outcome: AttemptOutcome::ConnectionRefused, degraded: false, cause: Some(Cause::Refused) };
            return self.answer(ctx, request_key, refused);
        }
        if replica.hung > 0 {
            // Accepted and never answered: the caller learns nothing.
            service.series.lost_to_hang.add(now, 1);
            replica.outstanding -= 1;
            self.requests.remove(request_key.index as usize);
            return;
        }
        for &(probability, status, fault) in &replica.errors {
            if self.fault_rngs[fault as usize].bernoulli(probability) {
                let failed = Answer {
                    outcome: AttemptOutcome::Status(status),
                    degraded: false,
                    cause: Some(Cause::ErrorStatus),
                };
                return self.answer(ctx, request_key, failed);
            }
        }
        let slots = service.slots.saturating_sub(replica.capacity_lost);
        if replica.busy < slots {
            self.run(ctx, request_key);
        } else if (replica.queue.len() as u32) < service.queue_capacity {
            replica.queue.push_back(request_key);
            service.record_queue_length(now);
        } else {
            service.series.rejected_queue_full.add(now, 1);
            let full = Answer { outcome: AttemptOutcome::Status(503), degraded: false, cause: Some(Cause::QueueFull) };
            self.answer(ctx, request_key, full);
        }
    }

    /// Gives the request a worker (or a compute slot) and runs it.
    fn run(&mut self, ctx: &mut Context<'_, Event>, request_key: Key) {
        let now = ctx.now();
        let Some(request) = self.request_mut(request_key) else { return };
        request.state = RequestState::Running;
        let (s, r) = (request.service as usize, request.replica as usize);
        let service = &mut self.services[s];
        service.replicas[r].busy += 1;
        let busy: u32 = service.replicas.iter().map(|r| r.busy).sum();
        service.series.busy.set(now, u64::from(busy));
        self.advance(ctx, request_key);
    }

    /// Frees the request's worker and hands it to the next waiting request.
    fn release(&mut self, ctx: &mut Context<'_, Event>, service: usize, replica: usize) {
        let now = ctx.now();
        let s = &mut self.services[service];
        s.replicas[replica].busy -= 1;
        let busy: u32 = s.replicas.iter().map(|r| r.busy).sum();
        s.series.busy.set(now, u64::from(busy));
        self.start_waiting(ctx, service, replica);
    }

    /// Starts queued requests while workers are free.
    fn start_waiting(&mut self, ctx: &mut Context<'_, Event>, service: usize, replica: usize) {
        let now = ctx.now();
        loop {
            let s = &mut self.services[service];
            let rep = &mut s.replicas[replica];
            if rep.busy >= s.slots.saturating_sub(rep.capacity_lost) {
                return;
            }
            let next = match (s.execution, rep.queue.is_empty()) {
                (_, true) => return,
                (Execution::ThreadPool { discipline: Discipline::Lifo, .. }, false) => rep.queue.pop_back(),
                _ => rep.queue.pop_front(),
            };
            s.record_queue_length(now);
            let abandon = s.abandon_on_caller_timeout;
            let Some(next) = next else { return };
            let Some(request) = self.request_mut(next) else { continue };
            if abandon && request.caller_gone && request.step == 0 {
                // Nobody waits for it: drop it unstarted.
                let replica_index = request.replica as usize;
                self.requests.remove(next.index as usize);
                self.services[service].replicas[replica_index].outstanding -= 1;
                continue;
            }
            self.run(ctx, next);
        }
    }

    /// Runs handler steps until one has to wait.
    fn advance(&mut self, ctx: &mut Context<'_, Event>, request_key: Key) {
        loop {
            let Some(request) = self.requests.get_mut(request_key.index as usize) else { return };
            let (s, r, route, step) =
                (request.service as usize, request.replica as usize, request.route as usize, request.step as usize);
            let service = &mut self.services[s];
            if request.caller_gone && service.abandon_on_caller_timeout {
                self.requests.remove(request_key.index as usize);
                self.services[s].replicas[r].outstanding -= 1;
                self.release(ctx, s, r);
                return;
            }
            let Route { steps, compute_rng, .. } = &mut service.routes[route];
            let Some(compiled) = steps.get(step) else {
                return self.complete(ctx, request_key);
            };
            request.step += 1;
            let count = match compiled {
                CompiledStep::Compute(sampler) => {
                    let base = sampler.sample(compute_rng);
                    let replica = &service.replicas[r];
                    let factor = replica.slow_factor * (1.0 + service.contention * f64::from(replica.busy));
                    let took = if factor == 1.0 { base } else { base.mul_f64(factor) } + replica.slow_added;
                    ctx.schedule_in(took, Event::ComputeDone { request: request_key });
                    return;
                }
                CompiledStep::Calls(calls) => calls.len(),
            };
            request.pending = count as u32;
            request.starting_calls = true;
            let key = request.key;
            for i in 0..count {
                let CompiledStep::Calls(calls) = &self.services[s].routes[route].steps[step] else {
                    unreachable!("the step was a call step a moment ago")
                };
                let call = calls[i];
                let target = self.services[s].dependencies[call.dependency as usize].target;
                let policy = PolicyRef::Edge { service: s as u32, dependency: call.dependency };
                self.start_call(
                    ctx,
                    Owner::Request(request_key),
                    policy,
                    s as u32,
                    target,
                    call.route,
                    call.required,
                    Request::idempotent(key),
                );
            }
            let Some(request) = self.requests.get_mut(request_key.index as usize) else { return };
            request.starting_calls = false;
            if request.pending > 0 {
                if matches!(self.services[s].execution, Execution::Async { .. }) {
                    // Waiting holds no compute slot in an event loop.
                    request.state = RequestState::Suspended;
                    self.release(ctx, s, r);
                }
                return;
            }
            // Every call finished at once (an open breaker, a full
            // bulkhead): go on to the next step.
        }
    }

    /// A call of a request's current step finished.
    fn on_call_result(&mut self, ctx: &mut Context<'_, Event>, request_key: Key, result: Answer, required: bool) {
        let Some(request) = self.request_mut(request_key) else { return };
        if result.outcome.is_success() {
            request.degraded |= result.degraded;
        } else if required {
            request.failure.get_or_insert(result);
        } else {
            request.degraded = true;
        }
        request.pending -= 1;
        if request.pending > 0 {
            return;
        }
        match request.state {
            // Still inside `advance`'s call loop (a synchronous finish), or
            // running and now free to go on.
            RequestState::Running => {
                if !request.starting_calls {
                    self.advance(ctx, request_key);
                }
            }
            RequestState::Suspended => {
                // Needs a compute slot again; it goes ahead of new arrivals.
                let (s, r) = (request.service as usize, request.replica as usize);
                request.state = RequestState::Queued;
                let service = &mut self.services[s];
                let replica = &mut service.replicas[r];
                if replica.busy < service.slots.saturating_sub(replica.capacity_lost) {
                    self.run(ctx, request_key);
                } else {
                    replica.queue.push_front(request_key);
                    service.record_queue_length(ctx.now());
                }
            }
            RequestState::InTransit | RequestState::Queued => {}
        }
    }

    /// The handler finished: answer with its status.
    fn complete(&mut self, ctx: &mut Context<'_, Event>, request_key: Key) {
        let Some(request) = self.requests.get_mut(request_key.index as usize) else { return };
        let (s, r, route) = (request.service as usize, request.replica as usize, request.route as usize);
        let answer = match request.failure {
            Some(failure) => Answer {
                outcome: AttemptOutcome::Status(failure_status(failure.outcome)),
                degraded: false,
                cause: failure.cause,
            },
            None => {
                let route = &mut self.services[s].routes[route];
                match route.errors {
                    Some((probability, status)) if route.errors_rng.bernoulli(probability) => Answer {
                        outcome: AttemptOutcome::Status(status),
                        degraded: false,
                        cause: Some(Cause::ErrorStatus),
                    },
                    _ => Answer { outcome: AttemptOutcome::OK, degraded: request.degraded, cause: None },
                }
            }
        };
        self.answer(ctx, request_key, answer);
        self.release(ctx, s, r);
    }

    /// Sends the answer back across the link and forgets the request.
    fn answer(&mut self, ctx: &mut Context<'_, Event>, request_key: Key, answer: Answer) {
        let now = ctx.now();
        let services_count = self.services.len();
        let request = self.requests.remove(request_key.index as usize);
        let service = &mut self.services[request.service as usize];
        service.replicas[request.replica as usize].outstanding -= 1;
        service.series.answered.add(now, 1);
        service.series.latency.record(now, now - request.arrived);
        service.series.latency_total.record(now - request.arrived);
        let link = &mut self.links[request.reply_node as usize * services_count + request.service as usize];
        let latency = link.latency.sample(&mut link.rng);
        ctx.schedule_in(latency, Event::Answer { call: request.reply_call, attempt: request.reply_attempt, answer });
    }

    /// A fault starts or ends: recompute the state of the replicas it hits.
    fn on_fault(&mut self, ctx: &mut Context<'_, Event>, fault: u32, starts: bool) {
        let (service, replica, _, _) = &self.faults[fault as usize];
        let (service, replica) = (*service as usize, *replica);
        let replicas: Vec<usize> = match replica {
            Some(r) => vec![r as usize],
            None => (0..self.services[service].replicas.len()).collect(),
        };
        for r in replicas {
            let active = &mut self.active_faults[service][r];
            if starts {
                active.push(fault);
            } else {
                active.retain(|&f| f != fault);
            }
            let active = active.clone();
            let rep = &mut self.services[service].replicas[r];
            rep.crashed = 0;
            rep.hung = 0;
            rep.capacity_lost = 0;
            rep.slow_factor = 1.0;
            rep.slow_added = SimDuration::ZERO;
            rep.errors.clear();
            rep.partitioned_from.clear();
            for f in active {
                match &self.faults[f as usize].2 {
                    FaultKind::Crash => rep.crashed += 1,
                    FaultKind::Hang => rep.hung += 1,
                    FaultKind::Slow { added, factor } => {
                        rep.slow_factor *= factor;
                        rep.slow_added += *added;
                    }
                    FaultKind::Errors(e) => rep.errors.push((e.probability, e.status, f)),
                    FaultKind::CapacityLoss { workers } => rep.capacity_lost += workers,
                    FaultKind::Partition { .. } => rep.partitioned_from.push(self.faults[f as usize].3),
                }
            }
            // Capacity may have come back.
            self.start_waiting(ctx, service, r);
        }
    }
}

/// The HTTP-like status a handler answers with when a required call failed.
fn failure_status(outcome: AttemptOutcome) -> u16 {
    match outcome {
        AttemptOutcome::Timeout | AttemptOutcome::Rejected(Rejection::DeadlineExceeded) => 504,
        AttemptOutcome::Rejected(_) => 503,
        _ => 502,
    }
}

/// Where a failed call's failure started.
fn cause_of(outcome: AttemptOutcome, last: Option<Answer>) -> Cause {
    match outcome {
        AttemptOutcome::Status(_) => last.and_then(|a| a.cause).unwrap_or(Cause::ErrorStatus),
        AttemptOutcome::Timeout => Cause::Timeout,
        AttemptOutcome::ConnectionRefused | AttemptOutcome::ConnectionReset => Cause::Refused,
        AttemptOutcome::Rejected(rejection) => match rejection {
            Rejection::CircuitOpen => Cause::CircuitOpen,
            Rejection::RateLimited => Cause::RateLimited,
            Rejection::BulkheadFull => Cause::BulkheadFull,
            Rejection::QueueFull => Cause::QueueFull,
            Rejection::DeadlineExceeded => Cause::DeadlineExceeded,
            Rejection::Throttled => Cause::Throttled,
        },
    }
}

pub(crate) fn cause_index(cause: Cause) -> usize {
    Cause::ALL.iter().position(|&c| c == cause).unwrap_or(0)
}

/// Picks a replica by the service's balancer.
fn choose_replica(service: &mut Service) -> u32 {
    let n = service.replicas.len() as u64;
    if n == 1 {
        return 0;
    }
    match service.balancer {
        Balancer::RoundRobin => {
            service.round_robin = (service.round_robin + 1) % n as u32;
            service.round_robin
        }
        Balancer::Random => service.balancer_rng.below(n) as u32,
        Balancer::LeastOutstanding => {
            (0..n as usize).min_by_key(|&i| (service.replicas[i].outstanding, i)).unwrap_or(0) as u32
        }
        Balancer::PowerOfTwo => {
            let a = service.balancer_rng.below(n) as usize;
            let b = service.balancer_rng.below(n) as usize;
            if service.replicas[b].outstanding < service.replicas[a].outstanding { b as u32 } else { a as u32 }
        }
    }
}

/// Runs `f` on a policy and its RNG; for a service edge, books what changed
/// in the policy's counters and breaker into the edge's timeline.
fn drive_policy<T>(
    services: &mut [Service],
    clients: &mut [Client],
    policy: PolicyRef,
    now: SimTime,
    f: impl FnOnce(&mut Policy, &mut SimRng) -> T,
) -> T {
    match policy {
        PolicyRef::Client { client, member, route } => {
            let c = &mut clients[client as usize];
            let policy = &mut c.members[member as usize].policy;
            let throttled_before = policy.stats().throttled;
            let result = f(policy, &mut c.member_rngs[member as usize]);
            let throttled = policy.stats().throttled - throttled_before;
            if throttled > 0 {
                c.route_series[route as usize].throttled.add(now, throttled);
            }
            result
        }
        PolicyRef::Edge { service, dependency } => {
            let d = &mut services[service as usize].dependencies[dependency as usize];
            let before = d.policy.stats();
            let result = f(&mut d.policy, &mut d.rng);
            d.book(now, before);
            result
        }
    }
}

/// 0 closed (or disabled), 1 half-open, 2 open (or forced open).
fn breaker_level(state: BreakerState) -> u64 {
    match state {
        BreakerState::Closed | BreakerState::Disabled => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open | BreakerState::ForcedOpen => 2,
    }
}

impl Dependency {
    fn book(&mut self, now: SimTime, before: PolicyStats) {
        let after = self.policy.stats();
        let series = &mut self.series;
        // A step changes one or two counters: skip the others (adding zero
        // would still cost a bucket index, a division, each).
        let book = |counts: &mut CountSeries, a: u64, b: u64| {
            if a != b {
                counts.add(now, a - b);
            }
        };
        book(&mut series.calls, after.calls, before.calls);
        book(&mut series.attempts, after.attempts, before.attempts);
        book(&mut series.retries, after.retries, before.retries);
        book(&mut series.ok, after.successes, before.successes);
        book(&mut series.fallbacks, after.fallbacks, before.fallbacks);
        book(&mut series.failed, after.failures, before.failures);
        book(&mut series.rejected_circuit_open, after.rejected_circuit_open, before.rejected_circuit_open);
        book(&mut series.rejected_bulkhead_full, after.rejected_bulkhead_full, before.rejected_bulkhead_full);
        book(&mut series.throttled, after.throttled, before.throttled);
        while let Some(transition) = self.policy.pop_transition() {
            series.breaker_state.set(now.max(transition.at), breaker_level(transition.to));
            if self.transitions.len() < TRANSITIONS_MAX {
                self.transitions.push(transition);
            } else {
                self.transitions_dropped += 1;
            }
        }
    }
}

impl Service {
    /// Requests waiting in all the replicas' queues.
    fn queued(&self) -> u64 {
        self.replicas.iter().map(|r| r.queue.len() as u64).sum()
    }

    /// Sets the queue-length gauge after a queue changed.
    fn record_queue_length(&mut self, now: SimTime) {
        let queued = self.queued();
        self.series.queue_length.set(now, queued);
    }
}

impl ServiceSeries {
    fn new(buckets: Buckets) -> Self {
        ServiceSeries {
            arrivals: CountSeries::new(buckets),
            answered: CountSeries::new(buckets),
            rejected_queue_full: CountSeries::new(buckets),
            refused_by_crash: CountSeries::new(buckets),
            lost_to_hang: CountSeries::new(buckets),
            queue_length: GaugeSeries::new(buckets),
            busy: GaugeSeries::new(buckets),
            latency: LatencySeries::new(buckets),
            latency_total: Default::default(),
        }
    }
}

impl EdgeSeries {
    fn new(buckets: Buckets) -> Self {
        EdgeSeries {
            calls: CountSeries::new(buckets),
            attempts: CountSeries::new(buckets),
            retries: CountSeries::new(buckets),
            ok: CountSeries::new(buckets),
            fallbacks: CountSeries::new(buckets),
            failed: CountSeries::new(buckets),
            rejected_circuit_open: CountSeries::new(buckets),
            rejected_bulkhead_full: CountSeries::new(buckets),
            throttled: CountSeries::new(buckets),
            breaker_state: GaugeSeries::new(buckets),
        }
    }
}

impl RouteSeries {
    fn new(name: String, buckets: Buckets) -> Self {
        RouteSeries {
            name,
            arrivals: CountSeries::new(buckets),
            ok: CountSeries::new(buckets),
            degraded: CountSeries::new(buckets),
            failed: Cause::ALL.iter().map(|_| CountSeries::new(buckets)).collect(),
            throttled: CountSeries::new(buckets),
            latency: LatencySeries::new(buckets),
            latency_total: Default::default(),
            in_flight: 0,
        }
    }
}

impl Model for World {
    type Event = Event;

    fn handle(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
        self.dispatch(event, ctx);
        debug_assert!(
            self.services.iter().all(|s| s.series.queue_length.value() == s.queued()),
            "a queue changed without its queue-length gauge"
        );
    }
}

impl World {
    fn dispatch(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
        match event {
            Event::ClientArrival { client } => self.client_arrival(ctx, client, None),
            Event::UserWake { client, user } => {
                if ctx.now() < self.end_of_arrivals {
                    self.client_arrival(ctx, client, Some(user));
                }
            }
            Event::Deliver { request } => self.deliver(ctx, request),
            Event::ComputeDone { request } => self.advance(ctx, request),
            Event::Answer { call, attempt, answer } => self.on_answer(ctx, call, attempt, answer),
            Event::AttemptTimeout { call, attempt } => self.on_timeout(ctx, call, attempt),
            Event::PolicyWake { call } => self.on_wake(ctx, call),
            Event::Fault { fault, starts } => self.on_fault(ctx, fault, starts),
        }
    }
}
