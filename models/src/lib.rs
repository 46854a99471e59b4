//! stormglass-models: clients, services, links and faults wired to the scheduler.
