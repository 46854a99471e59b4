//! Calls through a policy pipeline: starting one, sending its attempts
//! across a link, their answers and timeouts, backoff wakes, and the
//! result handed to whoever waits (a fallback's alternate call included).

use stormglass_core::rng::SimRng;
use stormglass_core::sim::Context;
use stormglass_core::time::SimTime;
use stormglass_patterns::breaker::BreakerState;
use stormglass_patterns::pipeline::{Attempt, Finish, Policy, Request, Step};
use stormglass_patterns::{AttemptOutcome, Rejection};

use super::servers::choose_replica;
use super::{
    Answer, Client, Dependency, EdgeBook, Event, Key, OutboundCall, Owner, PolicyRef, RequestState, ServerRequest,
    Service, TRANSITIONS_MAX, World, cause_index, key,
};
use crate::report::Cause;

impl World {
    /// Starts a call through `policy` for the item `item` and follows its
    /// first step; `via_alternate` for the call an alternate fallback makes
    /// instead. Every call the model makes is an idempotent request (a GET)
    /// with no upstream deadline. The item alone is passed, not a `Request`:
    /// built by the caller field by field and read here whole, the request
    /// waited for its stores (a failed store-to-load forward).
    #[allow(clippy::too_many_arguments)] // one call's identity; a struct would only rename them
    pub(super) fn start_call(
        &mut self,
        ctx: &mut Context<'_, Event>,
        owner: Owner,
        policy: PolicyRef,
        from_node: u32,
        target: u32,
        route: u32,
        required: bool,
        item: u64,
        via_alternate: bool,
    ) {
        let now = ctx.now();
        if self.over_limit(now) {
            return;
        }
        let generation = self.next_generation();
        let mut home = PolicyHome::of(&mut self.services, &mut self.clients, policy);
        let (p, rng, throttled) = home.for_step();
        // The call goes into the slab before its first step, which then
        // works on it in place: moving it in afterwards copied it twice.
        let pipeline = p.new_call(now, Request::idempotent(item));
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
            attempt_replica: 0,
            timeout: None,
            attempt_request: None,
            last_answer: None,
            answer_in_transit: None,
            started: now,
            via_alternate,
        });
        let call = &mut self.calls[index].pipeline;
        let step = p.begin_call(now, call, rng);
        home.book_step(owner, now, throttled);
        // A call's first step is almost always its attempt: sent from here
        // rather than through `follow`, whose frame (it holds every kind of
        // step) cost more than the step's dispatch.
        match &step {
            Step::Send(attempt) => self.send_attempt(ctx, key(index, generation), attempt),
            _ => self.follow(ctx, key(index, generation), &step),
        }
    }

    /// Carries out a pipeline step. By reference: a step is 72 bytes, and
    /// moved in it was copied whole once more.
    fn follow(&mut self, ctx: &mut Context<'_, Event>, call: Key, step: &Step) {
        match step {
            Step::Send(attempt) => self.send_attempt(ctx, call, attempt),
            &Step::Wait { until } => {
                let Some(outbound) = self.calls.get_mut(call.index as usize) else { return };
                // The key was made or checked earlier in this event: its generation
                // is checked in tests only (the hot path spares the compare).
                debug_assert_eq!(outbound.generation, call.generation, "a call waits in a slot it no longer holds");
                match outbound.pipeline.queued_as() {
                    // Waiting for a bulkhead slot: woken early when a call
                    // leaving the bulkhead promotes it, else at `until`.
                    Some(waiter) => {
                        outbound.timeout = Some(ctx.schedule_cancellable_at(until, Event::PolicyWake { call }));
                        self.queued_calls.insert((outbound.policy, waiter.0), call);
                    }
                    None => ctx.schedule_at(until, Event::PolicyWake { call }),
                }
            }
            Step::Finish(finish) => self.finish_call(ctx, call, finish),
        }
    }

    /// Sends one attempt across the link to a replica of the target.
    fn send_attempt(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, attempt: &Attempt) {
        let now = ctx.now();
        if self.over_limit(now) {
            return;
        }
        let services_count = self.services.len();
        let Some(call) = self.calls.get_mut(call_key.index as usize) else { return };
        // The key was made or checked earlier in this event: its generation
        // is checked in tests only (the hot path spares the compare).
        debug_assert_eq!(call.generation, call_key.generation, "an attempt of a call that no longer holds its slot");
        call.attempt = attempt.number;
        let (from_node, target, route) = (call.from_node, call.target, call.route);
        let item = call.pipeline.key();
        let service = &mut self.services[target as usize];
        let replica = choose_replica(service);
        let chosen = &mut service.replicas[replica as usize];
        chosen.outstanding += 1;
        call.attempt_replica = replica;
        let link = &mut self.links[from_node as usize * services_count + target as usize];
        let latency = link.latency.sample(&mut link.rng);
        let lost = link.loss > 0.0 && link.rng.bernoulli(link.loss);
        let partitioned = chosen.cut_off_from(from_node);
        if lost || partitioned {
            // Partitioned, the connection is never accepted: only the
            // connect timeout (or the attempt deadline) ends the attempt.
            // Lost, the request went out on a connection and vanished: the
            // caller waits for its answer, so the read timeout ends it.
            let at = if partitioned { attempt.connect_timeout_at(now) } else { attempt.timeout_at(now + latency) };
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
        call.attempt_request = Some(request);
        ctx.schedule_at(arrives, Event::Deliver { request });
    }

    /// An answer reached the caller.
    pub(super) fn on_answer(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, attempt: u32) {
        let now = ctx.now();
        let Some(call) = self.calls.get_mut(call_key.index as usize).filter(|c| c.generation == call_key.generation)
        else {
            return;
        };
        if call.attempt != attempt {
            return; // the attempt already timed out: a late answer
        }
        let answer = call.answer_in_transit.take().expect("the attempt out was answered");
        let replica = &mut self.services[call.target as usize].replicas[call.attempt_replica as usize];
        if replica.cut_off_from(call.from_node) {
            // A partition cut the way back: the caller never hears the
            // answer, and its read timeout (or deadline) ends the attempt
            // (`FaultKind::Partition`).
            return;
        }
        replica.outstanding -= 1;
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
        let mut home = PolicyHome::of(&mut self.services, &mut self.clients, call.policy);
        let (p, rng, throttled) = home.for_step();
        let step = p.on_outcome(now, &mut call.pipeline, answer.outcome, retry_after, rng);
        home.book_step(call.owner, now, throttled);
        // An answer almost always ends its call: finished from here, as
        // `start_call` sends, rather than through `follow`.
        match &step {
            Step::Finish(finish) => self.finish_call(ctx, call_key, finish),
            _ => self.follow(ctx, call_key, &step),
        }
    }

    /// An attempt's timeout fired before its answer.
    pub(super) fn on_timeout(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, attempt: u32) {
        let now = ctx.now();
        let Some(call) = self.calls.get_mut(call_key.index as usize).filter(|c| c.generation == call_key.generation)
        else {
            return;
        };
        if call.attempt != attempt {
            return;
        }
        self.services[call.target as usize].replicas[call.attempt_replica as usize].outstanding -= 1;
        call.timeout = None;
        call.attempt = 0;
        let abandoned = call.attempt_request.take();
        call.last_answer =
            Some(Answer { outcome: AttemptOutcome::Timeout, degraded: false, cause: Some(Cause::Timeout) });
        let mut home = PolicyHome::of(&mut self.services, &mut self.clients, call.policy);
        let (p, rng, throttled) = home.for_step();
        let step = p.on_outcome(now, &mut call.pipeline, AttemptOutcome::Timeout, None, rng);
        home.book_step(call.owner, now, throttled);
        if let Some(request) = abandoned.and_then(|r| self.request_mut(r)) {
            request.caller_gone = true;
        }
        self.follow(ctx, call_key, &step);
    }

    /// The requests in `lost` (in slab order) are gone, their replica
    /// crashed or hung: the calls they made end here without a result, as a
    /// dead process sends no more retries. A pending attempt timeout or
    /// bulkhead wake is cancelled (a backoff wake finds nothing), an attempt
    /// out stops counting as outstanding at its replica, and the request it
    /// reached learns that its caller is gone.
    pub(super) fn abandon_calls_of(&mut self, ctx: &mut Context<'_, Event>, lost: &[Key]) {
        let now = ctx.now();
        let is_lost = |owner: Owner| match owner {
            Owner::Request(r) => lost.binary_search_by_key(&r.index, |k| k.index).is_ok_and(|at| lost[at] == r),
            Owner::Client { .. } => false,
        };
        let owned: Vec<Key> =
            self.calls.iter().filter(|(_, c)| is_lost(c.owner)).map(|(index, c)| key(index, c.generation)).collect();
        for call_key in owned {
            let mut call = self.calls.remove(call_key.index as usize);
            if let Some(event) = call.timeout.take() {
                ctx.cancel(event);
            }
            if call.attempt != 0 {
                self.services[call.target as usize].replicas[call.attempt_replica as usize].outstanding -= 1;
            }
            if let Some(waiter) = call.pipeline.queued_as() {
                self.queued_calls.remove(&(call.policy, waiter.0));
            }
            if let Some(request) = call.attempt_request.and_then(|r| self.request_mut(r)) {
                request.caller_gone = true;
            }
            let mut home = PolicyHome::of(&mut self.services, &mut self.clients, call.policy);
            let (p, _, throttled) = home.for_step();
            p.abandon_call(now, &mut call.pipeline);
            home.book_step(call.owner, now, throttled);
        }
    }

    /// A backoff or delay ended.
    pub(super) fn on_wake(&mut self, ctx: &mut Context<'_, Event>, call_key: Key) {
        let now = ctx.now();
        let Some(call) = self.calls.get_mut(call_key.index as usize).filter(|c| c.generation == call_key.generation)
        else {
            return;
        };
        if call.timeout.take().is_some() {
            // A bulkhead wait ran out: the pipeline rejects the call.
            let waiter = call.pipeline.queued_as().expect("a bulkhead wait").0;
            self.queued_calls.remove(&(call.policy, waiter));
        }
        let mut home = PolicyHome::of(&mut self.services, &mut self.clients, call.policy);
        let (p, rng, throttled) = home.for_step();
        let step = p.resume(now, &mut call.pipeline, rng);
        home.book_step(call.owner, now, throttled);
        self.follow(ctx, call_key, &step);
    }

    /// Resumes the calls that a call leaving a bulkhead gave its slot to,
    /// at the time it left; their deadline wakes are cancelled.
    pub(super) fn resume_promoted(&mut self, ctx: &mut Context<'_, Event>) {
        let mut index = 0;
        while index < self.queueing_policies.len() {
            let policy = self.queueing_policies[index];
            let Some(waiter) = PolicyHome::of(&mut self.services, &mut self.clients, policy).policy().pop_promoted()
            else {
                index += 1;
                continue;
            };
            let call_key = self.queued_calls.remove(&(policy, waiter.0)).expect("a promoted call is waiting");
            let call = &mut self.calls[call_key.index as usize];
            if let Some(wake) = call.timeout.take() {
                ctx.cancel(wake);
            }
            let now = ctx.now();
            let mut home = PolicyHome::of(&mut self.services, &mut self.clients, call.policy);
            let (p, rng, throttled) = home.for_step();
            let step = p.resume(now, &mut call.pipeline, rng);
            home.book_step(call.owner, now, throttled);
            self.follow(ctx, call_key, &step);
            // Following the step may free slots in any policy: look again.
            index = 0;
        }
    }

    /// A call is over: its result goes to whoever waits for it.
    fn finish_call(&mut self, ctx: &mut Context<'_, Event>, call_key: Key, finish: &Finish) {
        let Some(call) = self.call_mut(call_key) else { return };
        debug_assert!(call.timeout.is_none(), "a finished call still has a timeout pending");
        let call = FinishedCall::of(call);
        self.calls.remove(call_key.index as usize);
        let (now, bucket) = (ctx.now(), self.bucket);
        let mut home = PolicyHome::of(&mut self.services, &mut self.clients, call.policy);
        let (edge, policy) = home.edge_and_policy();
        let edge = &mut edge.series;
        edge.latency.record_current(now - call.started);
        if let &Finish::Failed { outcome, .. } = finish {
            edge.failed_by_cause[cause_index(cause_of(outcome, call.last_answer))].add_in(bucket, 1);
        }
        if matches!(finish, Finish::Success { .. }) {
            // For a last_good fallback (a no-op for the others). What the
            // dependency said does not matter to the model, only when it
            // said it: the cache serves ages, so store nothing (an empty
            // String allocates nothing).
            policy.record_good_value(now, call.item, String::new());
        }
        if let (Finish::Fallback { alternate: Some(_), .. }, PolicyRef::Edge { service, dependency }) =
            (finish, call.policy)
        {
            // The other dependency answers instead, through its own policy,
            // on the same route; its result goes to this call's owner.
            let s = &self.services[service as usize];
            let alternate = s.dependencies[dependency as usize].alternate.as_ref().expect("validated: an alternate");
            let other = alternate.dependency;
            let (target, route) = (s.dependencies[other as usize].target, alternate.routes[call.route as usize]);
            let policy = PolicyRef::Edge { service, dependency: other };
            return self.start_call(
                ctx,
                call.owner,
                policy,
                call.from_node,
                target,
                route,
                call.required,
                call.item,
                true,
            );
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
            &Finish::Failed { outcome, .. } => {
                Answer { outcome, degraded: false, cause: Some(cause_of(outcome, last)) }
            }
        };
        match call.owner {
            Owner::Request(request) => self.on_call_result(ctx, request, result, call.required),
            Owner::Client { client, route, user, .. } => {
                self.client_finished(ctx, client, route, user, call.started, result)
            }
        }
    }
}

/// What `finish_call` reads of the call it removes, copied out field by
/// field: moved out of the slab, the whole call (240 bytes) was copied.
struct FinishedCall {
    owner: Owner,
    policy: PolicyRef,
    from_node: u32,
    route: u32,
    required: bool,
    item: u64,
    last_answer: Option<Answer>,
    started: SimTime,
    via_alternate: bool,
}

impl FinishedCall {
    #[inline(always)]
    fn of(call: &OutboundCall) -> Self {
        FinishedCall {
            owner: call.owner,
            policy: call.policy,
            from_node: call.from_node,
            route: call.route,
            required: call.required,
            item: call.pipeline.key(),
            last_answer: call.last_answer,
            started: call.started,
            via_alternate: call.via_alternate,
        }
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

/// Where a call's policy lives, with its random stream and the edge that
/// books it: a dependency of a service, or a member of a client. An event
/// looks it up once (a match and two bounds-checked indexings) for
/// everything it does with the policy; a call's events used to look it up
/// seven times.
///
/// A step is taken between `for_step` and `book_step` by the caller itself,
/// not in a closure handed to one helper: the pipeline's 72-byte `Step`
/// then lands where the caller keeps it, where a closure's result was
/// copied once more, reading back bytes the pipeline had just written field
/// by field (a failed store-to-load forward, 4% of a run).
enum PolicyHome<'w> {
    Edge(&'w mut Dependency),
    Member { client: &'w mut Client, member: u32 },
}

impl<'w> PolicyHome<'w> {
    #[inline(always)]
    fn of(services: &'w mut [Service], clients: &'w mut [Client], policy: PolicyRef) -> Self {
        match policy {
            PolicyRef::Edge { service, dependency } => {
                PolicyHome::Edge(&mut services[service as usize].dependencies[dependency as usize])
            }
            PolicyRef::Client { client, member } => {
                PolicyHome::Member { client: &mut clients[client as usize], member }
            }
        }
    }

    #[inline(always)]
    fn policy(&mut self) -> &mut Policy {
        match self {
            PolicyHome::Edge(d) => &mut d.policy,
            PolicyHome::Member { client, member } => &mut client.members[*member as usize].policy,
        }
    }

    /// Where the calls through the policy are booked, and the policy: a
    /// finished call needs both, and one lookup serves the two.
    #[inline(always)]
    fn edge_and_policy(&mut self) -> (&mut EdgeBook, &mut Policy) {
        match self {
            PolicyHome::Edge(d) => (&mut d.edge, &mut d.policy),
            PolicyHome::Member { client, member } => (&mut client.edge, &mut client.members[*member as usize].policy),
        }
    }

    /// The policy and its random stream, for one step of a call, and its
    /// throttled count so far (for `book_step`).
    #[inline(always)]
    fn for_step(&mut self) -> (&mut Policy, &mut SimRng, u64) {
        match self {
            PolicyHome::Edge(d) => (&mut d.policy, &mut d.rng, 0),
            PolicyHome::Member { client, member } => {
                let m = &mut client.members[*member as usize];
                let throttled = m.policy.stats().throttled;
                (&mut m.policy, &mut client.member_rngs[*member as usize], throttled)
            }
        }
    }

    /// Books what a policy's step for a call of `owner` did at once: the
    /// breaker's transitions into the edge's timeline, and the throttled
    /// attempts of a client's policy into the owner's route. The policy's
    /// other counters are booked once per timeline bucket
    /// (`World::book_policy_counts`); a client member that took a step is
    /// listed for it.
    #[inline(always)]
    fn book_step(&mut self, owner: Owner, now: SimTime, throttled_before: u64) {
        match self {
            PolicyHome::Member { client: c, member } => {
                let member = *member;
                let m = &mut c.members[member as usize];
                let throttled = m.policy.stats().throttled - throttled_before;
                if let (true, Owner::Client { route, .. }) = (throttled > 0, owner) {
                    c.route_series[route as usize].throttled.add(now, throttled);
                }
                if !m.dirty {
                    m.dirty = true;
                    c.dirty_members.push(member);
                }
                if m.policy.has_transitions() {
                    c.edge.book_transitions(now, member as usize, &mut m.policy);
                }
            }
            PolicyHome::Edge(d) => {
                if d.policy.has_transitions() {
                    d.edge.book_transitions(now, 0, &mut d.policy);
                }
            }
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

impl EdgeBook {
    /// Books the breaker transitions a step of `member`'s policy made.
    /// Out of line: few steps make one, and callers look first with
    /// `Policy::has_transitions`.
    #[cold]
    #[inline(never)]
    fn book_transitions(&mut self, now: SimTime, member: usize, policy: &mut Policy) {
        let series = &mut self.series;
        while let Some(transition) = policy.pop_transition() {
            if self.breaker_levels.len() <= member {
                self.breaker_levels.resize(member + 1, 0);
            }
            self.breaker_levels[member] = breaker_level(transition.to);
            let worst = self.breaker_levels.iter().copied().max().unwrap_or(0);
            series.breaker_state.set(now.max(transition.at), worst);
            if self.transitions.len() < TRANSITIONS_MAX {
                self.transitions.push(transition);
            } else {
                self.transitions_dropped += 1;
            }
        }
    }
}
