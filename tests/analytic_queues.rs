//! The engine against queueing theory: an M/M/c model written directly on
//! stormglass-core must agree with the closed forms (Erlang C for the mean
//! wait, 1/(mu - lambda) for M/M/1) and with Little's law.
//!
//! Tolerance: each run serves 10^6 customers after a 10^4 warm-up; the
//! estimate's standard error comes from 20 batch means (batches of 50 000
//! customers are much longer than the queue's relaxation time, ~18 service
//! times at rho = 0.8 with c = 1, so batch means are close to independent).
//! A run passes when its estimate lies within 4 standard errors of the
//! closed form (a false alarm rate below 1e-4 per check), and the standard
//! error is itself below 2.5% of the value, so the check has teeth.

#[path = "support/mmc.rs"]
#[allow(dead_code)] // each test binary uses a different part of the support module
mod mmc;

use mmc::{MmcConfig, MmcReport, mmc_theory, run_mmc};

fn standard_error(batch_means: &[f64]) -> f64 {
    let n = batch_means.len() as f64;
    let mean = batch_means.iter().sum::<f64>() / n;
    let variance = batch_means.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (variance / n).sqrt()
}

fn check_against(name: &str, estimate: f64, batch_means: &[f64], theory: f64) {
    let se = standard_error(batch_means);
    eprintln!("{name}: estimate {estimate:.6} theory {theory:.6} se {se:.6}");
    assert!(se / theory < 0.025, "{name}: standard error {se} too large for {theory}");
    assert!((estimate - theory).abs() <= 4.0 * se, "{name}: {estimate} vs theory {theory} (4 se = {})", 4.0 * se);
}

fn run(rho: f64, servers: usize, seed: u64) -> (MmcConfig, MmcReport) {
    let mu = 100.0; // 10 ms mean service
    let config = MmcConfig {
        lambda: rho * mu * servers as f64,
        mu,
        servers,
        customers: 1_010_000,
        warmup_customers: 10_000,
        batches: 20,
        seed,
    };
    (config, run_mmc(config))
}

fn check(rho: f64, servers: usize) {
    // A seed per configuration, so the checks are independent of each other.
    let (config, report) = run(rho, servers, 2026 + servers as u64 * 100 + (rho * 10.0) as u64);
    let (wait, time_in_system) = mmc_theory(config.lambda, config.mu, servers);
    let name = format!("M/M/{servers} at rho={rho}");
    check_against(
        &format!("{name} time in system"),
        report.mean_time_in_system_s,
        &report.batch_means_time_in_system_s,
        time_in_system,
    );
    if servers == 1 {
        // The textbook form for M/M/1, as a second, independent closed form.
        let textbook = 1.0 / (config.mu - config.lambda);
        assert!((time_in_system - textbook).abs() < 1e-12, "{name}: Erlang C disagrees with 1/(mu-lambda)");
    }
    // With many servers at rho = 0.5 almost nobody waits (Erlang C ~ 0.0001),
    // so the relative error of the wait is meaningless; check it absolutely.
    if wait > 1e-3 {
        check_against(&format!("{name} wait"), report.mean_wait_s, &report.batch_means_wait_s, wait);
    } else {
        assert!((report.mean_wait_s - wait).abs() < 1e-4, "{name} wait {} vs {wait}", report.mean_wait_s);
    }
    // Little's law: L = lambda W, with the observed rate, from two sides of
    // the same run (a time average of the count against customer averages).
    let little = report.arrival_rate * report.mean_time_in_system_s;
    let relative = (report.mean_in_system - little).abs() / little;
    assert!(relative < 0.01, "{name}: L={} but lambda*W={little}", report.mean_in_system);
    assert!(report.customers >= 1_000_000);
}

#[test]
fn mm1_rho_half() {
    check(0.5, 1);
}

#[test]
fn mm1_rho_0_8() {
    check(0.8, 1);
}

#[test]
fn mm2_rho_half() {
    check(0.5, 2);
}

#[test]
fn mm2_rho_0_8() {
    check(0.8, 2);
}

#[test]
fn mm10_rho_half() {
    check(0.5, 10);
}

#[test]
fn mm10_rho_0_8() {
    check(0.8, 10);
}

#[test]
fn erlang_c_matches_known_values() {
    // Published table values: c = 2, a = 1 Erlang -> 1/3; c = 10, a = 8 -> 0.4092.
    assert!((mmc::erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
    assert!((mmc::erlang_c(10, 8.0) - 0.409_2).abs() < 1e-4);
    assert!((mmc::erlang_c(1, 0.8) - 0.8).abs() < 1e-12);
}
