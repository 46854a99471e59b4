//! Servers: the balancer's choice of a replica (`choose_replica`), delivery
//! to it, admission to a worker or the queue, the handler's steps, and the
//! answer.

use stormglass_core::sim::Context;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_patterns::{AttemptOutcome, Rejection};

use super::{
    Answer, CompiledCall, CompiledStep, Event, Key, Owner, PolicyRef, Replica, RequestState, Route, ServerRequest,
    Service, World, cause_index,
};
use crate::config::{Balancer, Discipline, Execution};
use crate::report::Cause;

impl World {
    /// A request reached its replica: faults, then admission.
    pub(super) fn deliver(&mut self, ctx: &mut Context<'_, Event>, request_key: Key) {
        let now = ctx.now();
        // The request, its service and its replica are looked up once here
        // (not through `request_mut` and `run`, which would look them up
        // again): a delivery is one of the model's commonest events.
        let Some(request) =
            self.requests.get_mut(request_key.index as usize).filter(|r| r.generation == request_key.generation)
        else {
            return;
        };
        let (s, r) = (request.service as usize, request.replica as usize);
        let service = &mut self.services[s];
        let replica = &mut service.replicas[r];
        if replica.cut_off_from(request.reply_node) {
            // A partition began while it crossed: the replica never sees
            // it, and the caller's read timeout (or deadline) ends the
            // attempt (`FaultKind::Partition`).
            self.requests.remove(request_key.index as usize);
            return;
        }
        service.series.arrivals.add_in(self.bucket, 1);
        if replica.crashed > 0 {
            service.series.refused_by_crash.add(now, 1);
            let refused =
                Answer { outcome: AttemptOutcome::ConnectionRefused, degraded: false, cause: Some(Cause::Refused) };
            return self.answer(ctx, request_key, refused);
        }
        if replica.hung > 0 {
            // Accepted and never answered: the caller learns nothing.
            service.series.lost_to_hang.add(now, 1);
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
            request.state = RequestState::Running;
            replica.busy += 1;
            service.busy_up(now);
            self.advance(ctx, request_key);
        } else if (replica.queue.len() as u32) < service.queue_capacity {
            request.state = RequestState::Queued;
            replica.queue.push_back(request_key);
            service.record_queue_length(now);
        } else {
            service.series.rejected_queue_full.add(now, 1);
            let full = Answer { outcome: AttemptOutcome::Status(503), degraded: false, cause: Some(Cause::QueueFull) };
            self.answer(ctx, request_key, full);
        }
    }

    /// Gives a waiting request a worker (or a compute slot) and runs it.
    /// Always inlined, as `release` is: each runs once per request served
    /// and is small beside the call's register saves and restores.
    #[inline(always)]
    fn run(&mut self, ctx: &mut Context<'_, Event>, request_key: Key) {
        let now = ctx.now();
        let Some(request) = self.request_mut(request_key) else { return };
        request.state = RequestState::Running;
        let (s, r) = (request.service as usize, request.replica as usize);
        let service = &mut self.services[s];
        service.replicas[r].busy += 1;
        service.busy_up(now);
        self.advance(ctx, request_key);
    }

    /// Frees the request's worker and hands it to the next waiting request
    /// (always inlined: see `run`).
    #[inline(always)]
    fn release(&mut self, ctx: &mut Context<'_, Event>, service: usize, replica: usize) {
        if self.services[service].free_worker(ctx.now(), replica) {
            self.drain_queue(ctx, service, replica);
        }
    }

    /// Starts queued requests while workers are free.
    ///
    /// Inlined up to the drain: most workers free up with nobody waiting,
    /// and a call that found so cost 1.3% of the seed cascade's
    /// instructions.
    #[inline(always)]
    pub(super) fn start_waiting(&mut self, ctx: &mut Context<'_, Event>, service: usize, replica: usize) {
        if self.services[service].replicas[replica].has_waiting() {
            self.drain_queue(ctx, service, replica);
        }
    }

    /// Drains the replica's queue while workers are free.
    ///
    /// Not re-entrant: a request started here may finish at once (its call
    /// refused by an open breaker, say) and free its worker, which calls
    /// back here. That nested call returns at once (`has_waiting`) and this
    /// loop, which looks at the free workers again, starts the next
    /// request, so draining a long queue takes a loop, not a stack frame
    /// per request.
    #[inline(never)]
    fn drain_queue(&mut self, ctx: &mut Context<'_, Event>, service: usize, replica: usize) {
        let now = ctx.now();
        self.services[service].replicas[replica].draining = true;
        loop {
            let s = &mut self.services[service];
            let rep = &mut s.replicas[replica];
            if rep.busy >= s.slots.saturating_sub(rep.capacity_lost) {
                break;
            }
            let next = match (s.execution, rep.queue.is_empty()) {
                (_, true) => break,
                (Execution::ThreadPool { discipline: Discipline::Lifo, .. }, false) => rep.queue.pop_back(),
                _ => rep.queue.pop_front(),
            };
            s.record_queue_length(now);
            let abandon = s.abandon_on_caller_timeout;
            let Some(next) = next else { break };
            let Some(request) = self.request_mut(next) else { continue };
            if abandon && request.caller_gone && request.step == 0 {
                // Nobody waits for it: drop it unstarted.
                self.requests.remove(next.index as usize);
                self.services[service].series.abandoned.add(now, 1);
                continue;
            }
            self.run(ctx, next);
        }
        self.services[service].replicas[replica].draining = false;
    }

    /// Runs handler steps until one has to wait.
    pub(super) fn advance(&mut self, ctx: &mut Context<'_, Event>, request_key: Key) {
        loop {
            // A compute step's end finds nothing if a crash or a hang took
            // the request meanwhile (or a newer one in its slot).
            let Some(request) =
                self.requests.get_mut(request_key.index as usize).filter(|r| r.generation == request_key.generation)
            else {
                return;
            };
            let (s, r, route, step) =
                (request.service as usize, request.replica as usize, request.route as usize, request.step as usize);
            let service = &mut self.services[s];
            if request.caller_gone && service.abandon_on_caller_timeout {
                self.requests.remove(request_key.index as usize);
                service.series.abandoned.add(ctx.now(), 1);
                self.release(ctx, s, r);
                return;
            }
            let Route { steps, compute, compute_rng, .. } = &mut service.routes[route];
            let Some(compiled) = steps.get(step) else {
                return self.complete(ctx, request_key);
            };
            request.step += 1;
            let (first, count) = match compiled {
                &CompiledStep::Compute { sampler, random } => {
                    let base = compute.draw(sampler, compute_rng);
                    let took = if service.computes_as_drawn {
                        base
                    } else {
                        let replica = &service.replicas[r];
                        let factor = replica.slow_factor * (1.0 + service.contention * f64::from(replica.busy));
                        let stretched = if factor == 1.0 { base } else { base.mul_f64(factor) };
                        stretched + replica.slow_added
                    };
                    let done = Event::ComputeDone { request: request_key };
                    if random {
                        ctx.schedule_random_at(ctx.now() + took, done)
                    } else {
                        ctx.schedule_in(took, done)
                    }
                    return;
                }
                // Validation makes sure a step holds at least one call.
                CompiledStep::Calls(calls) => (calls[0], calls.len()),
            };
            request.pending = count as u32;
            request.starting_calls = true;
            let key = request.key;
            self.start_handler_call(ctx, request_key, s, first, key);
            // The other calls of a parallel step, found again for each
            // one: starting a call borrows the whole world.
            for i in 1..count {
                let CompiledStep::Calls(calls) = &self.services[s].routes[route].steps[step] else {
                    unreachable!("the step was a call step a moment ago")
                };
                self.start_handler_call(ctx, request_key, s, calls[i], key);
            }
            let Some(request) = self.requests.get_mut(request_key.index as usize) else { return };
            // The key was made or checked earlier in this event: its generation
            // is checked in tests only (the hot path spares the compare).
            debug_assert_eq!(
                request.generation, request_key.generation,
                "a request left its slot while starting calls"
            );
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

    /// Starts one call of a request's handler step, through the policy of
    /// the service's edge to the call's dependency.
    #[inline(always)]
    fn start_handler_call(
        &mut self,
        ctx: &mut Context<'_, Event>,
        request_key: Key,
        service: usize,
        call: CompiledCall,
        key: u64,
    ) {
        let policy = PolicyRef::Edge { service: service as u32, dependency: call.dependency };
        self.start_call(
            ctx,
            Owner::Request(request_key),
            policy,
            service as u32,
            call.target,
            call.route,
            call.required,
            key,
            false,
        );
    }

    /// A call of a request's current step finished.
    pub(super) fn on_call_result(
        &mut self,
        ctx: &mut Context<'_, Event>,
        request_key: Key,
        result: Answer,
        required: bool,
    ) {
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
        let now = ctx.now();
        let Some(request) = self.requests.get_mut(request_key.index as usize) else { return };
        // The key was made or checked earlier in this event: its generation
        // is checked in tests only (the hot path spares the compare).
        debug_assert_eq!(request.generation, request_key.generation, "a handler completes a request not in its slot");
        let (s, r) = (request.service as usize, request.replica as usize);
        // The service is found once for the answer's status, its worker and
        // its counts.
        let service = &mut self.services[s];
        let answer = match request.failure {
            Some(failure) => Answer {
                outcome: AttemptOutcome::Status(failure_status(failure.outcome)),
                degraded: false,
                cause: failure.cause,
            },
            None => {
                let route = &mut service.routes[request.route as usize];
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
        // The worker is free from now, but a waiting request starts after
        // the answer is on its way, as its events come after the answer's.
        let waiting = service.free_worker(now, r);
        service.count_answer(self.bucket, now - request.arrived, answer);
        let request = self.requests.remove(request_key.index as usize);
        self.send_answer(ctx, &request, answer);
        if waiting {
            self.drain_queue(ctx, s, r);
        }
    }

    /// Answers a request that its handler did not finish (a refusal, an
    /// error fault, a full queue, a crash) and forgets it. Out of line
    /// beside the delivery, which mostly has none of these.
    #[inline(never)]
    pub(super) fn answer(&mut self, ctx: &mut Context<'_, Event>, request_key: Key, answer: Answer) {
        let request = self.requests.remove(request_key.index as usize);
        let latency = ctx.now() - request.arrived;
        self.services[request.service as usize].count_answer(self.bucket, latency, answer);
        self.send_answer(ctx, &request, answer);
    }

    /// Sends the answer to a request, already forgotten, back across the
    /// link. Always inlined: when `complete`, the end of every handler,
    /// called the whole answer, the call's register saves and restores and
    /// the lookups of the service before and after it cost about 45
    /// instructions an answer.
    #[inline(always)]
    fn send_answer(&mut self, ctx: &mut Context<'_, Event>, request: &ServerRequest, answer: Answer) {
        let link = &mut self.links[request.reply_node as usize * self.services.len() + request.service as usize];
        let latency = link.latency.sample(&mut link.rng);
        // The answer waits in the call for its event. A call that is gone,
        // or has given up on this attempt, ignores the event when it
        // arrives (attempt numbers never come back), so the answer is
        // dropped here.
        let (call, attempt) = (request.reply_call, request.reply_attempt);
        if let Some(waiting) = self.call_mut(call).filter(|c| c.attempt == attempt) {
            waiting.answer_in_transit = Some(answer);
        }
        ctx.schedule_in(latency, Event::Answer { call, attempt });
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

/// Picks a replica by the service's balancer, for each attempt: a retry may
/// go to another replica than the attempt it follows.
pub(super) fn choose_replica(service: &mut Service) -> u32 {
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
            // Ties are broken at random, as Envoy's full-scan least-request
            // does: below saturation every replica has nothing outstanding,
            // and the lowest index would take all the traffic.
            let least = service.replicas.iter().map(|r| r.outstanding).min().unwrap_or(0);
            let tied = service.replicas.iter().filter(|r| r.outstanding == least).count() as u64;
            let pick = if tied > 1 { service.balancer_rng.below(tied) as usize } else { 0 };
            service.replicas.iter().enumerate().filter(|(_, r)| r.outstanding == least).nth(pick).map_or(0, |(i, _)| i)
                as u32
        }
        Balancer::PowerOfTwo => {
            let a = service.balancer_rng.below(n) as usize;
            let b = service.balancer_rng.below(n) as usize;
            if service.replicas[b].outstanding < service.replicas[a].outstanding { b as u32 } else { a as u32 }
        }
    }
}

impl Replica {
    /// Whether a partition cuts the replica off from `node`: an attempt
    /// `node` sends is not accepted, and a request or an answer crossing
    /// between them is lost, as packets on a cut link are. Most replicas
    /// are partitioned from no node, so only the length is looked at
    /// inline: `contains`'s vectorised search, inlined into the delivery
    /// and the answer, made the event dispatch too big to inline into the
    /// run loop (+6.6% instructions).
    #[inline(always)]
    pub(super) fn cut_off_from(&self, node: u32) -> bool {
        !self.partitioned_from.is_empty() && self.partitioned_from_holds(node)
    }

    #[cold]
    #[inline(never)]
    fn partitioned_from_holds(&self, node: u32) -> bool {
        self.partitioned_from.contains(&node)
    }

    /// Requests wait in the queue and no drain of it is under way.
    fn has_waiting(&self) -> bool {
        !self.draining && !self.queue.is_empty()
    }
}

impl Service {
    /// Frees a worker of the replica; says whether requests wait for it.
    #[inline(always)]
    fn free_worker(&mut self, now: SimTime, replica: usize) -> bool {
        let rep = &mut self.replicas[replica];
        rep.busy -= 1;
        // Read before the gauge moves: after its stores the replica would
        // be looked up again.
        let waiting = rep.has_waiting();
        self.busy_down(now);
        waiting
    }

    /// Counts an answer in the current bucket `bucket`, with the request's
    /// time at the service.
    #[inline(always)]
    fn count_answer(&mut self, bucket: usize, latency: SimDuration, answer: Answer) {
        self.series.answered.add_in(bucket, 1);
        if answer.outcome.is_success() {
            self.series.ok.add_in(bucket, 1);
        } else {
            self.series.failed[cause_index(answer.cause.unwrap_or(Cause::ErrorStatus))].add_in(bucket, 1);
        }
        self.series.latency.record_current(latency);
    }

    /// Requests waiting in all the replicas' queues.
    pub(super) fn queued(&self) -> u64 {
        self.replicas.iter().map(|r| r.queue.len() as u64).sum()
    }

    /// Raises the busy-workers gauge by one after a replica's `busy` rose
    /// by one: the gauge is the sum over the replicas, kept without summing
    /// them at every start and end of work.
    #[inline]
    fn busy_up(&mut self, now: SimTime) {
        self.series.busy.increment(now);
        self.debug_check_busy();
    }

    /// Lowers the busy-workers gauge by one after a replica's `busy` fell
    /// by one (see `busy_up`).
    #[inline]
    fn busy_down(&mut self, now: SimTime) {
        self.series.busy.decrement(now);
        self.debug_check_busy();
    }

    fn debug_check_busy(&self) {
        debug_assert_eq!(
            self.series.busy.value(),
            self.replicas.iter().map(|r| u64::from(r.busy)).sum::<u64>(),
            "busy gauge off"
        );
    }

    /// Sets the busy-workers gauge after a replica's `busy` changed.
    pub(super) fn record_busy(&mut self, now: SimTime) {
        let busy: u32 = self.replicas.iter().map(|r| r.busy).sum();
        self.series.busy.set(now, u64::from(busy));
    }

    /// Sets the queue-length gauge after a queue changed.
    pub(super) fn record_queue_length(&mut self, now: SimTime) {
        let queued = self.queued();
        self.series.queue_length.set(now, queued);
    }
}
