//! Clients: open-loop arrivals, closed-loop users, and the end of a
//! client request.

use stormglass_core::dist::cumulative_pick;
use stormglass_core::sim::Context;
use stormglass_core::time::SimTime;

use super::{Answer, Event, Owner, PolicyRef, UNIQUE_KEYS, World, cause_index};
use crate::report::Cause;

impl World {
    pub(super) fn client_arrival(&mut self, ctx: &mut Context<'_, Event>, client: u32, user: Option<u32>) {
        let now = ctx.now();
        let c = &mut self.clients[client as usize];
        let next_arrival = match (&mut c.arrivals, user) {
            (Some(arrivals), None) => arrivals.next_after(now, self.end_of_arrivals, &mut c.arrivals_rng),
            _ => None,
        };
        let slot = cumulative_pick(&c.routes, c.routes_rng.uniform01()).expect("validated: a client has a route");
        let route = c.routes[slot].1;
        // A user keeps its own member (its own budget, breaker, limiter);
        // an open-loop arrival is any member of the population. The member
        // has a stream of its own, so the population's size never moves the
        // route choices, and a population of one draws nothing.
        let member = match user {
            Some(user) => user,
            None if c.members.len() == 1 => 0,
            None => c.members_rng.below(c.members.len() as u64) as u32,
        };
        debug_assert!((member as usize) < c.members.len(), "a user without a member");
        let key = match c.route_keys[slot] {
            Some(items) => c.keys_rng.below(items),
            None => {
                // Above every item id: a key no other request shares.
                self.unique_keys_next += 1;
                UNIQUE_KEYS | self.unique_keys_next
            }
        };
        let series = &mut c.route_series[slot];
        series.arrivals.add_in(self.bucket, 1);
        series.in_flight += 1;
        let (node, target) = (c.node, c.target);
        // start_call refuses it past limits.in_flight_max.
        let owner = Owner::Client { client, route: slot as u32, user };
        let policy = PolicyRef::Client { client, member };
        self.start_call(ctx, owner, policy, node, target, route, true, key, false);
        if let Some(t) = next_arrival {
            // Poisson gaps: a lane never holds them.
            ctx.schedule_random_at(t, Event::ClientArrival { client });
        }
    }

    pub(super) fn client_finished(
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
        let bucket = self.bucket;
        if result.outcome.is_success() {
            if result.degraded { &mut series.degraded } else { &mut series.ok }.add_in(bucket, 1);
        } else {
            let cause = result.cause.unwrap_or(Cause::ErrorStatus);
            series.failed[cause_index(cause)].add_in(bucket, 1);
        }
        series.latency.record_current(now - started);
        if let (Some(user), Some(think)) = (user, &c.think)
            && now < self.end_of_arrivals
        {
            let delay = think.sample(&mut c.think_rng);
            ctx.schedule_in(delay, Event::UserWake { client, user });
        }
    }
}
