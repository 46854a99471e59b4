//! Building the world from a validated scenario: indices for names,
//! compiled handlers, random streams, links and fault targets.

use std::collections::{BTreeMap, VecDeque};

use slab::Slab;
use stormglass_core::ahead::DrawsAhead;
use stormglass_core::dist::Distribution;
use stormglass_core::rng::RngStreams;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_core::timeline::Buckets;
use stormglass_patterns::pipeline::{Policy, PolicyStats};

use super::{
    Alternate, Client, CompiledCall, CompiledStep, Dependency, EdgeBook, Link, Member, PolicyRef, Replica, Route,
    RouteSeries, Service, ServiceSeries, World,
};
use crate::config::{FaultKind, HandlerStep, Scenario, alternate_of};
use crate::profile::Arrivals;

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
                    // One sampler per distinct compute distribution, in the
                    // order the steps first use them.
                    let mut distributions: Vec<&stormglass_core::dist::Distribution> = Vec::new();
                    let steps = route
                        .steps
                        .iter()
                        .map(|step| {
                            let compile = |call: &crate::config::CallConfig| {
                                let dependency =
                                    dependency_names.iter().position(|d| **d == call.dependency).expect("validated");
                                let target_name = &config.dependencies[&call.dependency].service;
                                let target = &scenario.services[target_name];
                                let route = target.routes.keys().position(|r| *r == call.route).expect("validated");
                                CompiledCall {
                                    dependency: dependency as u32,
                                    target: service_index(target_name),
                                    route: route as u32,
                                    required: call.required,
                                }
                            };
                            match step {
                                HandlerStep::Compute(d) => {
                                    let index =
                                        distributions.iter().position(|known| *known == d).unwrap_or_else(|| {
                                            distributions.push(d);
                                            distributions.len() - 1
                                        });
                                    let random = !matches!(d, Distribution::Constant { .. });
                                    CompiledStep::Compute { sampler: index, random }
                                }
                                HandlerStep::Call(call) => CompiledStep::Calls(vec![compile(call)]),
                                HandlerStep::Parallel(calls) => {
                                    CompiledStep::Calls(calls.iter().map(compile).collect())
                                }
                            }
                        })
                        .collect();
                    let compute_rng = streams.stream(&format!("service.{name}.route.{route_name}.compute"));
                    let samplers = distributions.into_iter().map(sampler).collect();
                    Route {
                        steps,
                        errors: route.errors.map(|e| (e.probability, e.status)),
                        compute: DrawsAhead::new(samplers),
                        compute_rng,
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
                    booked: PolicyStats::default(),
                    rng: streams.stream(&format!("edge.{name}.{dep_name}.policy")),
                    edge: EdgeBook::new(buckets),
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
                computes_as_drawn: config.contention == 0.0,
                abandon_on_caller_timeout: config.abandon_on_caller_timeout,
                retry_after: config.retry_after,
                routes,
                dependencies,
                replicas: (0..config.replicas)
                    .map(|_| Replica {
                        busy: 0,
                        queue: VecDeque::new(),
                        draining: false,
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
                // User u of a closed loop sends through member u.
                let members = config.members();
                Client {
                    node: (service_names.len() + index) as u32,
                    target,
                    arrivals: config.rate.as_ref().map(Arrivals::new),
                    think: config.closed_loop.as_ref().map(|c| sampler(&c.think_time)),
                    members: (0..members)
                        .map(|_| Member {
                            policy: Policy::new(config.policy.clone()).expect("validated"),
                            booked: PolicyStats::default(),
                            dirty: false,
                        })
                        .collect(),
                    dirty_members: Vec::new(),
                    member_rngs: (0..members)
                        .map(|m| streams.stream_indexed(&format!("client.{name}.policy"), u64::from(m)))
                        .collect(),
                    routes,
                    route_keys: config.routes.iter().map(|r| r.keys).collect(),
                    keys_rng: streams.stream(&format!("client.{name}.keys")),
                    arrivals_rng: streams.stream(&format!("client.{name}.arrivals")),
                    routes_rng: streams.stream(&format!("client.{name}.routes")),
                    members_rng: streams.stream(&format!("client.{name}.members")),
                    think_rng: streams.stream(&format!("client.{name}.think")),
                    route_series,
                    edge: EdgeBook::new(buckets),
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
        // A fault's stream is named by what it is (target, replica, window),
        // not by its place in the list, so adding a fault leaves the draws
        // of the others alone (ARCHITECTURE.md, invariant 4). Identical faults are told
        // apart by their order among themselves.
        // Only an error fault draws from its stream; every fault gets one,
        // named `fault.errors.*` whatever its kind, and renaming it would
        // change the draws of every error fault in every scenario. So a
        // fault of another kind with the same target, replica and window,
        // listed before an error fault, moves that fault's index among
        // identical names, and with it its draws.
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        let fault_rngs = scenario
            .faults
            .iter()
            .map(|f| {
                let replica = f.replica.map_or("all".to_string(), |r| r.to_string());
                let name = format!("fault.errors.{}.{replica}.{}.{}", f.target, f.from.as_nanos(), f.until.as_nanos());
                let nth = seen.entry(name.clone()).or_default();
                *nth += 1;
                streams.stream_indexed(&name, *nth - 1)
            })
            .collect();

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
            bucket: 0,
            look_up_at: buckets.end(0),
            queueing_policies: Vec::new(),
            queued_calls: BTreeMap::new(),
        }
        .with_queueing_policies()
    }

    /// Notes the policies whose bulkhead has a queue.
    fn with_queueing_policies(mut self) -> World {
        for (s, service) in self.services.iter().enumerate() {
            for (d, dependency) in service.dependencies.iter().enumerate() {
                if dependency.policy.queues_calls() {
                    self.queueing_policies.push(PolicyRef::Edge { service: s as u32, dependency: d as u32 });
                }
            }
        }
        for (c, client) in self.clients.iter().enumerate() {
            for (m, member) in client.members.iter().enumerate() {
                if member.policy.queues_calls() {
                    self.queueing_policies.push(PolicyRef::Client { client: c as u32, member: m as u32 });
                }
            }
        }
        self
    }
}
