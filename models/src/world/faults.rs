//! Faults: a fault window opening or closing recomputes the state of the
//! replicas it hits.

use stormglass_core::sim::Context;
use stormglass_core::time::SimDuration;

use super::{Event, World};
use crate::config::FaultKind;

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
