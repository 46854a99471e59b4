//! Faults: a fault window opening or closing recomputes the state of the
//! replicas it hits.
//!
//! This module keeps that state (and loses a crashed or hung replica's
//! requests); the requests meet it elsewhere. In `servers.rs`, `deliver`
//! applies a crash, a hang and an error rate to each arriving request;
//! it, `drain_queue` and `on_call_result` count lost capacity out of the
//! free workers; `advance` stretches a compute step of a slow replica. A
//! partition holds back an attempt in `calls.rs`'s `send_attempt`, and
//! loses a request arriving across it in `deliver` and an answer in
//! `on_answer`.

use stormglass_core::sim::Context;
use stormglass_core::time::SimDuration;
use stormglass_patterns::AttemptOutcome;

use super::{Answer, Event, Key, RequestState, World, key};
use crate::config::FaultKind;
use crate::report::Cause;

/// What becomes of the requests a replica holds when it crashes or hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// The process died: each connection is reset and the caller hears of
    /// it one link crossing later.
    Reset,
    /// The process stopped answering: the requests are never answered and
    /// their callers wait for their timeouts.
    Swallowed,
}

impl World {
    /// A fault starts or ends: recompute the state of the replicas it hits.
    pub(super) fn on_fault(&mut self, ctx: &mut Context<'_, Event>, fault: u32, starts: bool) {
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
            // Rebuilt from every fault still active rather than undone by
            // the one that ended: overlapping faults combine (two slow
            // faults multiply, two crashes need both to heal), and the
            // sum of all of them is the only state that is always right.
            let active = active.clone();
            let contention = self.services[service].contention;
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
            let s = &mut self.services[service];
            s.computes_as_drawn =
                contention == 0.0 && s.replicas.iter().all(|rep| rep.slow_factor == 1.0 && rep.slow_added.is_zero());
            if starts {
                match self.faults[fault as usize].2 {
                    FaultKind::Crash => self.lose_held_requests(ctx, service, r, Loss::Reset),
                    FaultKind::Hang => self.lose_held_requests(ctx, service, r, Loss::Swallowed),
                    _ => {}
                }
            }
            // Capacity may have come back.
            self.start_waiting(ctx, service, r);
        }
    }

    /// A crash or a hang takes every request the replica holds, queued,
    /// running or waiting on its calls (those still crossing the link meet
    /// the fault when they arrive). Their workers are free again for when
    /// the fault heals; their calls end at once (see `abandon_calls_of`).
    fn lose_held_requests(&mut self, ctx: &mut Context<'_, Event>, service: usize, replica: usize, loss: Loss) {
        let now = ctx.now();
        let held: Vec<Key> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                r.service as usize == service && r.replica as usize == replica && r.state != RequestState::InTransit
            })
            .map(|(index, r)| key(index, r.generation))
            .collect();
        self.abandon_calls_of(ctx, &held);
        let s = &mut self.services[service];
        s.replicas[replica].queue.clear();
        s.replicas[replica].busy = 0;
        s.record_busy(now);
        s.record_queue_length(now);
        for request in held {
            match loss {
                Loss::Reset => {
                    self.services[service].series.refused_by_crash.add(now, 1);
                    let reset = Answer {
                        outcome: AttemptOutcome::ConnectionReset,
                        degraded: false,
                        cause: Some(Cause::Refused),
                    };
                    self.answer(ctx, request, reset);
                }
                Loss::Swallowed => {
                    self.services[service].series.lost_to_hang.add(now, 1);
                    self.requests.remove(request.index as usize);
                }
            }
        }
    }
}
