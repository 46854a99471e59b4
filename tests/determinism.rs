//! Same seed, same bytes: the engine's report for a fixed seed is identical
//! run after run, and another seed gives another report.

#[path = "support/mmc.rs"]
#[allow(dead_code)] // each test binary uses a different part of the support module
mod mmc;

use mmc::{MmcConfig, run_mmc};

fn report_bytes(seed: u64) -> String {
    let config =
        MmcConfig { lambda: 180.0, mu: 100.0, servers: 2, customers: 50_000, warmup_customers: 0, batches: 5, seed };
    let report = run_mmc(config);
    ron::ser::to_string_pretty(&report, ron::ser::PrettyConfig::default()).expect("report serializes")
}

#[test]
fn same_seed_gives_identical_bytes() {
    let first = report_bytes(7);
    let second = report_bytes(7);
    assert_eq!(first, second);
    assert!(first.contains("mean_time_in_system_s"));
}

#[test]
fn another_seed_gives_another_report() {
    assert_ne!(report_bytes(7), report_bytes(8));
}
