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
//!
//! This file holds the world's data (every type below) and dispatches each
//! event; the behaviour lives beside it, one concern per file:
//! - `build.rs`: the world from a validated scenario;
//! - `clients.rs`: arrivals and users, and the end of a client request;
//! - `calls.rs`: a call through its pipeline, its attempts, answers,
//!   timeouts and fallbacks;
//! - `servers.rs`: the balancer, delivery, admission, handler steps and the
//!   answer;
//! - `faults.rs`: fault windows opening and closing;
//! - `series.rs`: the per-bucket series behind the report's timelines, and
//!   their booking when a bucket ends.

use std::collections::{BTreeMap, VecDeque};

use slab::Slab;
use stormglass_core::ahead::DrawsAhead;
use stormglass_core::dist::Sampler;
use stormglass_core::queue::EventId;
use stormglass_core::rng::SimRng;
use stormglass_core::sim::{Context, Model};
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_core::timeline::{Buckets, CountSeries, GaugeSeries, LatencySeries};
use stormglass_patterns::AttemptOutcome;
use stormglass_patterns::breaker::Transition;
use stormglass_patterns::pipeline::{Call, Policy, PolicyStats};

use crate::config::{Balancer, Execution, FaultKind, Scenario};
use crate::profile::Arrivals;
use crate::report::Cause;

mod build;
mod calls;
mod clients;
mod faults;
mod series;
mod servers;

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
    /// An answer reaches the caller of `call`'s attempt `attempt`. What it
    /// says waits in the call (`OutboundCall::answer_in_transit`): an event
    /// of 16 bytes keeps the queue's entries at 32.
    Answer { call: Key, attempt: u32 },
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PolicyRef {
    Edge { service: u32, dependency: u32 },
    Client { client: u32, member: u32 },
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
    /// The target's replica the attempt out went to: it counts as
    /// outstanding there until the attempt ends here.
    attempt_replica: u32,
    timeout: Option<EventId>,
    /// The server request of the attempt out, to mark it abandoned.
    attempt_request: Option<Key>,
    last_answer: Option<Answer>,
    /// The answer to the attempt out, sent and not yet arrived (see
    /// `Event::Answer`).
    answer_in_transit: Option<Answer>,
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
    /// The route's compute times, one sampler per distinct distribution of
    /// its steps, drawn from its own stream in batches ahead of use.
    compute: DrawsAhead,
    compute_rng: SimRng,
    errors_rng: SimRng,
}

enum CompiledStep {
    /// Compute for a time from the route's sampler of this index; `random`
    /// unless the sampler is a constant. A constant's ends come in time
    /// order, each the latest pending: a lane takes them in O(1), where the
    /// heap's sorted array would move every entry to insert one, so only
    /// random ones go to the heap directly (`Context::schedule_random_at`).
    Compute {
        sampler: usize,
        random: bool,
    },
    Calls(Vec<CompiledCall>),
}

#[derive(Clone, Copy)]
struct CompiledCall {
    dependency: u32,
    /// The dependency's service, copied here so starting a call reads one
    /// place.
    target: u32,
    route: u32,
    required: bool,
}

pub(crate) struct Dependency {
    pub(crate) name: String,
    target: u32,
    pub(crate) policy: Policy,
    /// The policy's counters already booked into the edge's timeline.
    booked: PolicyStats,
    rng: SimRng,
    pub(crate) edge: EdgeBook,
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
    /// `drain_queue` is under way for this replica (see there).
    draining: bool,
    /// Attempts sent to this replica that have not ended at their caller
    /// (answered or timed out), for balancers. Counted on the caller's side,
    /// as Envoy's least-request counts active requests per host: a replica
    /// that swallows requests (a hang, a partition) looks busy, not idle.
    outstanding: u32,
    crashed: u32,
    hung: u32,
    capacity_lost: u32,
    slow_factor: f64,
    slow_added: SimDuration,
    /// Active error faults: (probability, status, fault index). The index
    /// picks the fault's own random stream (`fault_rngs`).
    errors: Vec<(f64, u16, u32)>,
    /// Nodes a partition cuts the replica off from (see `cut_off_from`).
    partitioned_from: Vec<u32>,
}

pub(crate) struct Service {
    pub(crate) name: String,
    execution: Execution,
    slots: u32,
    queue_capacity: u32,
    contention: f64,
    /// No contention and no slow fault on any replica: a compute step takes
    /// its drawn time, without looking at its replica or the
    /// floating-point work of stretching the time.
    computes_as_drawn: bool,
    abandon_on_caller_timeout: bool,
    /// Sent with its 429s and 503s.
    retry_after: Option<SimDuration>,
    routes: Vec<Route>,
    pub(crate) dependencies: Vec<Dependency>,
    replicas: Vec<Replica>,
    balancer: Balancer,
    /// The replica round robin gave last; one counter for every caller.
    round_robin: u32,
    balancer_rng: SimRng,
    pub(crate) series: ServiceSeries,
}

/// Timeline cells (8-byte values per bucket) a service's series keep: seven
/// counts and one per failure cause, two gauges at three each (a `u128` area and a `u64` max), and a
/// latency summary of seven. Validation multiplies these by the bucket
/// count to bound timeline memory before a world is built
/// ([`crate::config::TIMELINE_CELLS_MAX`]): a series added here is counted
/// there too.
pub(crate) const SERVICE_CELLS: u64 = 7 + Cause::ALL.len() as u64 + 2 * 3 + LATENCY_CELLS;
/// Timeline cells an edge's series keep: nine counts, one gauge, a failure
/// count per cause and a latency summary.
pub(crate) const EDGE_CELLS: u64 = 9 + 3 + Cause::ALL.len() as u64 + LATENCY_CELLS;
/// Timeline cells a client route's series keep: arrivals, ok, degraded, a
/// failure count per cause, throttled, and a latency summary. As for
/// `SERVICE_CELLS`, a series added to `RouteSeries` is counted here too.
pub(crate) const ROUTE_CELLS: u64 = 4 + Cause::ALL.len() as u64 + LATENCY_CELLS;
/// Cells of one bucket's latency summary (a count and six durations).
const LATENCY_CELLS: u64 = 7;
const _: () = assert!(size_of::<stormglass_core::metrics::LatencySummary>() as u64 == LATENCY_CELLS * 8);

pub(crate) struct ServiceSeries {
    pub(crate) arrivals: CountSeries,
    pub(crate) answered: CountSeries,
    /// Answered with a success status.
    pub(crate) ok: CountSeries,
    /// Answered with a failure, by cause (see `cause_index`).
    pub(crate) failed: Vec<CountSeries>,
    pub(crate) rejected_queue_full: CountSeries,
    /// Refused at once by a crashed replica (connection refused), or held by
    /// a replica when it crashed (connection reset).
    pub(crate) refused_by_crash: CountSeries,
    /// Accepted by a hung replica and never answered.
    pub(crate) lost_to_hang: CountSeries,
    /// Dropped because the caller had given up (`abandon_on_caller_timeout`).
    pub(crate) abandoned: CountSeries,
    pub(crate) queue_length: GaugeSeries,
    pub(crate) busy: GaugeSeries,
    pub(crate) latency: LatencySeries,
}

/// What an edge's report is made of besides its policies' counters: the
/// timeline and the breaker transitions. A dependency edge has one policy;
/// a client's edge (`client -> target`) has one per member, booked together.
pub(crate) struct EdgeBook {
    pub(crate) series: EdgeSeries,
    pub(crate) transitions: Vec<Transition>,
    pub(crate) transitions_dropped: u64,
    /// Each policy's breaker level (see `breaker_level`), by member: the
    /// edge's `breaker_state` gauge is the worst of them.
    breaker_levels: Vec<u64>,
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
    /// Calls that failed, by cause (see `cause_index`).
    pub(crate) failed_by_cause: Vec<CountSeries>,
    /// Call latency, from its start to its end, retries and backoffs
    /// included.
    pub(crate) latency: LatencySeries,
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
    /// The route's client requests still waiting for their answer (the
    /// report's `in_flight_at_end`); not the slab entries that
    /// `limits.in_flight_max` counts.
    pub(crate) in_flight: u64,
}

struct Member {
    policy: Policy,
    /// The policy's counters already booked into the client's edge.
    booked: PolicyStats,
    /// Listed in the client's `dirty_members`: it took a step since its
    /// counters were last booked.
    dirty: bool,
}

pub(crate) struct Client {
    node: u32,
    target: u32,
    arrivals: Option<Arrivals>,
    think: Option<Sampler>,
    members: Vec<Member>,
    /// Members whose counters changed since they were last booked: a large
    /// population books only the members that did something.
    dirty_members: Vec<u32>,
    member_rngs: Vec<SimRng>,
    /// Cumulative route weights (normalised) and the target's route index.
    routes: Vec<(f64, u32)>,
    /// Per route slot: how many items its requests ask for (None: each its own).
    route_keys: Vec<Option<u64>>,
    keys_rng: SimRng,
    arrivals_rng: SimRng,
    routes_rng: SimRng,
    /// Which member an open-loop arrival is: drawn only for a population
    /// of more than one.
    members_rng: SimRng,
    think_rng: SimRng,
    pub(crate) route_series: Vec<RouteSeries>,
    /// The edge to `target`, over every member's policy.
    pub(crate) edge: EdgeBook,
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
/// is an entry of the engine's queue (in its heap or a lane, the event
/// inline), and a cancellable one (an attempt timeout, a bulkhead wait) also
/// a slot: `event_bytes` counts both. Nothing else
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
    /// The timeline bucket of the event being handled.
    bucket: usize,
    /// When the next event must look up before it runs (`may_run`): at the
    /// end of the current bucket (never, for the last one), or at once after
    /// a limit ended the run.
    look_up_at: SimTime,
    /// The policies whose bulkhead has a queue, where a call leaving it can
    /// promote a waiting one.
    queueing_policies: Vec<PolicyRef>,
    /// Calls waiting in a bulkhead's queue, by policy and waiter.
    queued_calls: BTreeMap<(PolicyRef, u64), Key>,
}

impl Client {
    /// Every member's policy, in member order.
    pub(crate) fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.members.iter().map(|m| &m.policy)
    }
}

/// The keys of requests that ask for an item of their own have this bit set,
/// so they never meet an item id (`0..keys`).
const UNIQUE_KEYS: u64 = 1 << 63;

fn key(index: usize, generation: u32) -> Key {
    Key { index: index as u32, generation }
}

impl World {
    /// The first events: arrivals, users, fault edges.
    pub(crate) fn start(&mut self, ctx: &mut Context<'_, Event>, scenario: &Scenario) {
        for (index, client) in self.clients.iter_mut().enumerate() {
            let client_index = index as u32;
            if let Some(arrivals) = &mut client.arrivals {
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

    /// Whether no request or call may be added: the slabs hold
    /// `in_flight_max` entries between them. The first time, the limit hit
    /// is recorded, which stops the model at once (see `handle`).
    fn over_limit(&mut self, now: SimTime) -> bool {
        if self.in_flight() >= self.in_flight_max as usize {
            self.limit_hit.get_or_insert(LimitHit::InFlight { in_flight_max: self.in_flight_max, at: now });
            self.look_up_at = SimTime::ZERO;
            return true;
        }
        false
    }
}

pub(crate) fn cause_index(cause: Cause) -> usize {
    Cause::ALL.iter().position(|&c| c == cause).unwrap_or(0)
}

impl Model for World {
    type Event = Event;

    fn handle(&mut self, event: Event, ctx: &mut Context<'_, Event>) {
        // One comparison per event for two rare cases: a later bucket, and a
        // run that a limit ended.
        if ctx.now() >= self.look_up_at && !self.may_run(ctx.now()) {
            return;
        }
        self.dispatch(event, ctx);
        if !self.queueing_policies.is_empty() {
            self.resume_promoted(ctx);
        }
        debug_assert!(
            self.services.iter().all(|s| s.series.queue_length.value() == s.queued()),
            "a queue changed without its queue-length gauge"
        );
    }
}

impl World {
    /// Whether an event at `now`, past `look_up_at`, may run. Not once a
    /// limit ended the run with an error: the events left only drain, so
    /// nothing more is allocated before the runner sees it. Otherwise the
    /// event is the first of a later timeline bucket, and what the policies
    /// counted during the bucket that ended is booked into it. Booking once
    /// a bucket, rather than diffing every policy's counters at every step,
    /// is what keeps the edges' count series cheap; a count lands in the
    /// same bucket either way, since every step of a bucket comes before its
    /// end.
    #[cold]
    #[inline(never)]
    fn may_run(&mut self, now: SimTime) -> bool {
        if self.limit_hit.is_some() {
            return false;
        }
        self.book_policy_counts();
        self.bucket = self.buckets.index(now);
        self.look_up_at = self.buckets.end(self.bucket);
        self.roll_latency_series();
        true
    }

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
            Event::Answer { call, attempt } => self.on_answer(ctx, call, attempt),
            Event::AttemptTimeout { call, attempt } => self.on_timeout(ctx, call, attempt),
            Event::PolicyWake { call } => self.on_wake(ctx, call),
            Event::Fault { fault, starts } => self.on_fault(ctx, fault, starts),
        }
    }
}
