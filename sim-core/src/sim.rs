//! The run loop: a [`Simulation`] owns a user [`Model`] and the event queue,
//! advances virtual time from one event to the next, and stops at a time, when
//! idle, or when a limit says the model ran away.
//!
//! ```
//! use stormglass_core::sim::{Context, Model, Simulation};
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! /// A clock that ticks every second and counts its ticks.
//! struct Ticker { ticks: u32 }
//!
//! impl Model for Ticker {
//!     type Event = ();
//!     fn handle(&mut self, _event: (), ctx: &mut Context<'_, ()>) {
//!         self.ticks += 1;
//!         ctx.schedule_in(SimDuration::from_secs(1), ());
//!     }
//! }
//!
//! let mut sim = Simulation::new(Ticker { ticks: 0 });
//! sim.schedule_at(SimTime::ZERO, ());
//! sim.run_until(SimTime::from_secs(10)).unwrap();
//! assert_eq!(sim.model().ticks, 11); // t = 0, 1, ..., 10
//! assert_eq!(sim.now(), SimTime::from_secs(10));
//! ```
//!
//! Ordering guarantees:
//! 1. Events run in time order; events at the same instant run in the order
//!    they were scheduled.
//! 2. `now` never goes backwards; an event scheduled in the past runs at `now`.
//! 3. A cancelled event never runs.

use crate::queue::{EventId, EventQueue};
use crate::time::{SimDuration, SimTime};

/// A model the simulation drives: it receives its own events.
pub trait Model {
    /// The events this model schedules for itself: plain values (`Copy`),
    /// which the queue moves whole. A few words each, such as an enum of
    /// indices into the model's state, keep the queue small and fast.
    type Event: Copy;

    /// Handles one event at `ctx.now()`; may schedule and cancel events.
    fn handle(&mut self, event: Self::Event, ctx: &mut Context<'_, Self::Event>);
}

/// What a handler can do: read the time, schedule and cancel events.
pub struct Context<'a, E> {
    now: SimTime,
    queue: &'a mut EventQueue<E>,
}

impl<'a, E: Copy> Context<'a, E> {
    /// The current virtual time.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` at `time`; a time in the past means now.
    #[inline(always)] // see `EventQueue::push`
    pub fn schedule_at(&mut self, time: SimTime, event: E) {
        self.queue.schedule(time.max(self.now), event);
    }

    /// Schedules `event` after `delay`.
    #[inline(always)] // see `EventQueue::push`
    pub fn schedule_in(&mut self, delay: SimDuration, event: E) {
        self.queue.schedule(self.now + delay, event);
    }

    /// Schedules `event` at `time` (a time in the past means now), which a
    /// delay drawn at random put there (a compute time, an arrival gap): the
    /// same order as [`Context::schedule_at`], minus the queue's search for
    /// a lane of events the same delay ahead, which a random delay never
    /// finds (see [`EventQueue::schedule_random`]).
    #[inline(always)] // see `EventQueue::push`
    pub fn schedule_random_at(&mut self, time: SimTime, event: E) {
        self.queue.schedule_random(time.max(self.now), event);
    }

    /// Schedules `event` at `time` (a time in the past means now) and
    /// returns a handle to cancel it, as a timeout needs.
    #[inline(always)] // see `EventQueue::push`
    pub fn schedule_cancellable_at(&mut self, time: SimTime, event: E) -> EventId {
        self.queue.schedule_cancellable(time.max(self.now), event)
    }

    /// Schedules `event` after `delay` and returns a handle to cancel it.
    #[inline(always)] // see `EventQueue::push`
    pub fn schedule_cancellable_in(&mut self, delay: SimDuration, event: E) -> EventId {
        self.queue.schedule_cancellable(self.now + delay, event)
    }

    /// Cancels a pending event; `false` if it already ran or was cancelled.
    #[inline]
    pub fn cancel(&mut self, id: EventId) -> bool {
        self.queue.cancel(id)
    }

    /// Number of pending events.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

/// Limits that end a runaway model with [`SimError`] instead of a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events a simulation may handle in its whole life.
    pub events_max: u64,
    /// Latest virtual time an event may run at.
    pub time_max: SimTime,
}

impl Default for Limits {
    /// No limit on time; a billion events, far beyond any sane run here
    /// (the seed cascade handles about half a million) and small enough
    /// that a model rescheduling itself forever stops within seconds.
    fn default() -> Self {
        Limits { events_max: 1_000_000_000, time_max: SimTime::MAX }
    }
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The model handled `events_max` events.
    #[error("event budget exhausted: handled {events_max} events (limit events_max) at t={at}")]
    EventBudgetExhausted {
        /// The limit that was reached.
        events_max: u64,
        /// Virtual time when it was reached.
        at: SimTime,
    },
    /// An event was due after `time_max`.
    #[error("time limit exceeded: next event at t={next} is after time_max={time_max}")]
    TimeLimitExceeded {
        /// The limit that was reached.
        time_max: SimTime,
        /// When the next event was due.
        next: SimTime,
    },
}

/// Why a run returned normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The requested time was reached and events remain after it.
    ReachedTime,
    /// No event is pending (the clock still moved to the requested time).
    Idle,
}

/// A model, its pending events and the clock.
pub struct Simulation<M: Model> {
    model: M,
    queue: EventQueue<M::Event>,
    now: SimTime,
    events_handled: u64,
    limits: Limits,
}

impl<M: Model> Simulation<M> {
    /// A simulation of `model` at time zero with default limits.
    pub fn new(model: M) -> Self {
        Simulation { model, queue: EventQueue::new(), now: SimTime::ZERO, events_handled: 0, limits: Limits::default() }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The current virtual time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events handled so far.
    pub fn events_handled(&self) -> u64 {
        self.events_handled
    }

    /// Events pending.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, mutably (to inject state between runs).
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// The model, ending the simulation.
    pub fn into_model(self) -> M {
        self.model
    }

    /// Schedules an event from outside the model (initial events); a time in
    /// the past means now.
    pub fn schedule_at(&mut self, time: SimTime, event: M::Event) {
        self.queue.schedule(time.max(self.now), event);
    }

    /// Schedules a cancellable event from outside the model and returns a
    /// handle to cancel it.
    pub fn schedule_cancellable_at(&mut self, time: SimTime, event: M::Event) -> EventId {
        self.queue.schedule_cancellable(time.max(self.now), event)
    }

    /// Cancels a pending event from outside the model; `false` if it already
    /// ran or was cancelled.
    pub fn cancel(&mut self, id: EventId) -> bool {
        self.queue.cancel(id)
    }

    /// Runs with `f` given a context at the current time, for setup code that
    /// wants the same API as handlers.
    pub fn with_context<T>(&mut self, f: impl FnOnce(&mut M, &mut Context<'_, M::Event>) -> T) -> T {
        let mut ctx = Context { now: self.now, queue: &mut self.queue };
        f(&mut self.model, &mut ctx)
    }

    /// Handles the next event, if there is one. Returns its time.
    pub fn step(&mut self) -> Result<Option<SimTime>, SimError> {
        self.step_before(SimTime::MAX)
    }

    /// Runs every event at or before `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: SimTime) -> Result<Stop, SimError> {
        // The limits cannot change while the loop runs: read once, they are
        // not loaded again around every event's handler.
        let (due_by, events_max) = (end.min(self.limits.time_max), self.limits.events_max);
        while self.events_handled < events_max {
            let Some((time, event)) = self.queue.pop_until(due_by) else { break };
            self.handle(time, event);
        }
        // Nothing is due by `end` any more, or a limit stopped the loop:
        // the first is fine, the second an error.
        self.limit_reached(end)?;
        self.now = self.now.max(end);
        Ok(if self.queue.is_empty() { Stop::Idle } else { Stop::ReachedTime })
    }

    /// Runs for `span` of virtual time from now.
    pub fn run_for(&mut self, span: SimDuration) -> Result<Stop, SimError> {
        self.run_until(self.now + span)
    }

    /// Runs until no event is pending.
    pub fn run_until_idle(&mut self) -> Result<Stop, SimError> {
        while self.step()?.is_some() {}
        Ok(Stop::Idle)
    }

    /// Handles the next event if it is due at or before `end`.
    #[inline]
    fn step_before(&mut self, end: SimTime) -> Result<Option<SimTime>, SimError> {
        if self.events_handled >= self.limits.events_max {
            return self.limit_reached(end);
        }
        // One look at the queue for the common case: an event due by `end`
        // and within the time limit. Anything else is sorted out below.
        let Some((time, event)) = self.queue.pop_until(end.min(self.limits.time_max)) else {
            return self.limit_reached(end);
        };
        self.handle(time, event);
        Ok(Some(time))
    }

    /// Runs the handler of an event just popped.
    #[inline(always)]
    fn handle(&mut self, time: SimTime, event: M::Event) {
        debug_assert!(time >= self.now, "time went backwards: {time} < {}", self.now);
        self.now = time;
        self.events_handled += 1;
        let mut ctx = Context { now: time, queue: &mut self.queue };
        self.model.handle(event, &mut ctx);
    }

    /// Why no event runs now: none is due by `end` (`Ok(None)`), or the
    /// next one is past the time limit, or the event budget is spent.
    #[cold]
    fn limit_reached(&mut self, end: SimTime) -> Result<Option<SimTime>, SimError> {
        let Some(next) = self.queue.peek_time() else { return Ok(None) };
        if next > end {
            return Ok(None);
        }
        if next > self.limits.time_max {
            return Err(SimError::TimeLimitExceeded { time_max: self.limits.time_max, next });
        }
        debug_assert!(self.events_handled >= self.limits.events_max, "an event was due and the budget allowed it");
        Err(SimError::EventBudgetExhausted { events_max: self.limits.events_max, at: self.now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reschedules itself forever: the runaway the limits exist for.
    struct Runaway;
    impl Model for Runaway {
        type Event = ();
        fn handle(&mut self, _: (), ctx: &mut Context<'_, ()>) {
            ctx.schedule_in(SimDuration::from_millis(1), ());
        }
    }

    #[test]
    fn the_event_budget_stops_a_runaway_with_a_typed_error() {
        let mut sim = Simulation::new(Runaway).with_limits(Limits { events_max: 1000, time_max: SimTime::MAX });
        sim.schedule_at(SimTime::ZERO, ());
        let err = sim.run_until_idle().unwrap_err();
        assert_eq!(err, SimError::EventBudgetExhausted { events_max: 1000, at: SimTime::from_millis(999) });
        assert!(err.to_string().contains("events_max"), "{err}");
        assert_eq!(sim.events_handled(), 1000);
    }

    #[test]
    fn the_time_limit_stops_a_runaway_with_a_typed_error() {
        let limits = Limits { events_max: u64::MAX, time_max: SimTime::from_secs(2) };
        let mut sim = Simulation::new(Runaway).with_limits(limits);
        sim.schedule_at(SimTime::ZERO, ());
        let err = sim.run_until_idle().unwrap_err();
        assert!(matches!(err, SimError::TimeLimitExceeded { next, .. } if next == SimTime::from_millis(2001)));
        assert!(err.to_string().contains("time_max"), "{err}");
    }

    /// Records the order events run in and schedules follow-ups.
    struct Recorder {
        seen: Vec<(SimTime, u32)>,
    }
    impl Model for Recorder {
        type Event = u32;
        fn handle(&mut self, event: u32, ctx: &mut Context<'_, u32>) {
            self.seen.push((ctx.now(), event));
            if event == 1 {
                // Same instant: runs after everything already scheduled for now.
                ctx.schedule_in(SimDuration::ZERO, 10);
                let doomed = ctx.schedule_cancellable_in(SimDuration::from_secs(1), 99);
                assert!(ctx.cancel(doomed));
            }
        }
    }

    #[test]
    fn run_until_step_and_idle_agree_on_order_and_time() {
        let mut sim = Simulation::new(Recorder { seen: Vec::new() });
        sim.schedule_at(SimTime::from_secs(1), 1);
        sim.schedule_at(SimTime::from_secs(1), 2);
        sim.schedule_at(SimTime::from_secs(3), 3);
        assert_eq!(sim.run_until(SimTime::from_secs(2)), Ok(Stop::ReachedTime));
        assert_eq!(sim.now(), SimTime::from_secs(2));
        let at1 = SimTime::from_secs(1);
        assert_eq!(sim.model().seen, vec![(at1, 1), (at1, 2), (at1, 10)]);
        assert_eq!(sim.step(), Ok(Some(SimTime::from_secs(3))));
        assert_eq!(sim.step(), Ok(None));
        assert_eq!(sim.run_for(SimDuration::from_secs(5)), Ok(Stop::Idle));
        assert_eq!(sim.now(), SimTime::from_secs(8));
        assert_eq!(sim.run_until_idle(), Ok(Stop::Idle));
        assert_eq!(sim.events_handled(), 4);
    }
}
