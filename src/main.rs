//! The `stormglass` command.
//!
//! Until the models crate lands, the main job is the engine's own showcase:
//! M/M/c queues simulated on stormglass-core beside their closed forms
//! (Erlang C), so a newcomer sees the engine agree with theory.

#[path = "../tests/support/mmc.rs"]
#[allow(dead_code)]
mod mmc;

fn main() {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(42);
    println!("stormglass: M/M/c queues on the virtual-time engine (seed {seed})");
    println!("mean service 10 ms; 1,000,000 customers per row after a 10,000 warm-up\n");
    println!(
        "{:>3} {:>5} {:>14} {:>14} {:>8} {:>10} {:>10}",
        "c", "rho", "W sim (ms)", "W Erlang C", "error", "p99 (ms)", "events"
    );
    for servers in [1usize, 2, 10] {
        for rho in [0.5, 0.8] {
            let mu = 100.0;
            let config = mmc::MmcConfig {
                lambda: rho * mu * servers as f64,
                mu,
                servers,
                customers: 1_010_000,
                warmup_customers: 10_000,
                batches: 20,
                seed,
            };
            let report = mmc::run_mmc(config);
            let (_, theory) = mmc::mmc_theory(config.lambda, mu, servers);
            println!(
                "{servers:>3} {rho:>5.1} {:>14.3} {:>14.3} {:>7.2}% {:>10.3} {:>10}",
                report.mean_time_in_system_s * 1e3,
                theory * 1e3,
                (report.mean_time_in_system_s - theory) / theory * 100.0,
                report.time_in_system.p99.as_secs_f64() * 1e3,
                report.events
            );
        }
    }
    println!("\nThe seed cascade (client -> gateway -> order -> user) arrives with the models crate.");
}
