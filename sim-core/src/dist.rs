//! Duration distributions: service times, latencies, think times, gaps.
//!
//! A [`Distribution`] is configuration (serde, validated, parameters as human
//! durations); [`Distribution::sampler`] checks it and builds a [`Sampler`]
//! that draws [`SimDuration`]s. Sampling goes through `rand_distr` without
//! `std_math`, so it uses `libm` and gives the same bytes on every platform
//! (ARCHITECTURE.md, invariant 9). The transcendental functions this module
//! calls itself (`exp`, `log`, `pow`) come from `libm` too: `f64::exp` and
//! friends call the platform's math library, whose last bits differ between
//! systems, and those bits decide where a sample rounds to a nanosecond.
//!
//! ```
//! use stormglass_core::dist::Distribution;
//! use stormglass_core::rng::RngStreams;
//! use stormglass_core::time::SimDuration;
//!
//! let config: Distribution = ron::from_str(r#"LogNormal(mean: "10ms", p99: "50ms")"#).unwrap();
//! let sampler = config.sampler().unwrap();
//! let mut rng = RngStreams::new(1).stream("user.service_time");
//! let d: SimDuration = sampler.sample(&mut rng);
//! assert!(d > SimDuration::ZERO);
//! assert!((config.mean_secs() - 0.010).abs() < 1e-12);
//!
//! let bad: Distribution = ron::from_str(r#"Exponential(mean: "0s")"#).unwrap();
//! assert_eq!(bad.validate().unwrap_err().to_string(), "exponential.mean: must be greater than 0");
//! ```

use rand_distr::Distribution as _;
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, ensure};
use crate::rng::{SimRng, below, uniform01};
use crate::time::SimDuration;

/// The 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_840_8;

/// Most samples an empirical distribution may hold (bounded memory).
pub const EMPIRICAL_SAMPLES_MAX: usize = 1_000_000;
/// Most components a mixture may hold, counted through nesting.
pub const MIXTURE_COMPONENTS_MAX: usize = 64;

/// A distribution of durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Distribution {
    /// Always `value`.
    Constant {
        /// The one value.
        value: SimDuration,
    },
    /// Uniform on `[low, high]`.
    Uniform {
        /// Lower bound.
        low: SimDuration,
        /// Upper bound, at least `low`.
        high: SimDuration,
    },
    /// Exponential with the given mean (memoryless; M in M/M/c).
    Exponential {
        /// Mean, greater than zero.
        mean: SimDuration,
    },
    /// Normal with `mean` and `std_dev`, truncated at zero by resampling
    /// (so no mass piles up at zero).
    Normal {
        /// Mean of the untruncated normal.
        mean: SimDuration,
        /// Standard deviation of the untruncated normal, greater than zero.
        std_dev: SimDuration,
    },
    /// Log-normal given by its mean and 99th percentile, the two numbers a
    /// latency dashboard shows.
    LogNormal {
        /// Mean, greater than zero.
        mean: SimDuration,
        /// 99th percentile: above the mean and at most ~14.97 times it
        /// (beyond that no log-normal has this mean and p99).
        p99: SimDuration,
    },
    /// Log-normal with `ln(X / 1 s) ~ Normal(mu, sigma)`.
    LogNormalMuSigma {
        /// Mean of the log of the value in seconds.
        mu: f64,
        /// Standard deviation of that log, greater than zero.
        sigma: f64,
    },
    /// Pareto (heavy tail): `P(X > x) = (scale / x)^shape` for `x >= scale`.
    Pareto {
        /// Minimum value, greater than zero.
        scale: SimDuration,
        /// Tail index, greater than zero (mean finite above 1, variance above 2).
        shape: f64,
    },
    /// Weibull: `P(X > x) = exp(-(x / scale)^shape)`.
    Weibull {
        /// Scale, greater than zero.
        scale: SimDuration,
        /// Shape, greater than zero (1 is exponential).
        shape: f64,
    },
    /// Gamma with `shape` and `scale` (mean `shape * scale`).
    Gamma {
        /// Shape, greater than zero.
        shape: f64,
        /// Scale, greater than zero.
        scale: SimDuration,
    },
    /// Erlang: the sum of `k` exponential phases, with total mean `mean`.
    Erlang {
        /// Number of phases, at least 1.
        k: u32,
        /// Mean of the sum, greater than zero.
        mean: SimDuration,
    },
    /// A mixture: draws a component by weight, then from it (bimodal
    /// latencies: a cache hit or a miss).
    Mixture {
        /// The components, at least one, weights positive.
        components: Vec<Component>,
    },
    /// Draws uniformly from recorded samples.
    Empirical {
        /// The samples, at least one.
        samples: Vec<SimDuration>,
    },
}

/// One weighted part of a [`Distribution::Mixture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Relative weight, positive; weights need not sum to one.
    pub weight: f64,
    /// The component distribution.
    pub dist: Distribution,
}

fn positive(d: SimDuration, field: &str) -> Result<(), ConfigError> {
    ensure(!d.is_zero(), field, "must be greater than 0")
}

fn positive_finite(x: f64, field: &str) -> Result<(), ConfigError> {
    ensure(x.is_finite() && x > 0.0, field, "must be a finite number greater than 0")
}

impl Distribution {
    /// The variant's name as the error paths use it.
    fn name(&self) -> &'static str {
        match self {
            Distribution::Constant { .. } => "constant",
            Distribution::Uniform { .. } => "uniform",
            Distribution::Exponential { .. } => "exponential",
            Distribution::Normal { .. } => "normal",
            Distribution::LogNormal { .. } => "log_normal",
            Distribution::LogNormalMuSigma { .. } => "log_normal_mu_sigma",
            Distribution::Pareto { .. } => "pareto",
            Distribution::Weibull { .. } => "weibull",
            Distribution::Gamma { .. } => "gamma",
            Distribution::Erlang { .. } => "erlang",
            Distribution::Mixture { .. } => "mixture",
            Distribution::Empirical { .. } => "empirical",
        }
    }

    /// Checks every parameter; the error names the field (`normal.std_dev`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_inner(&mut 0).map_err(|e| e.within(self.name()))
    }

    fn validate_inner(&self, components_seen: &mut usize) -> Result<(), ConfigError> {
        match self {
            Distribution::Constant { .. } => Ok(()),
            Distribution::Uniform { low, high } => ensure(high >= low, "high", "must be at least low"),
            Distribution::Exponential { mean } => positive(*mean, "mean"),
            Distribution::Normal { std_dev, .. } => positive(*std_dev, "std_dev"),
            Distribution::LogNormal { mean, p99 } => {
                positive(*mean, "mean")?;
                ensure(p99 > mean, "p99", "must be greater than mean")?;
                let ratio = p99.as_secs_f64() / mean.as_secs_f64();
                ensure(
                    libm::log(ratio) <= Z_P99 * Z_P99 / 2.0,
                    "p99",
                    "must be at most 14.97 times mean (no log-normal has a larger p99/mean ratio)",
                )
            }
            Distribution::LogNormalMuSigma { mu, sigma } => {
                ensure(mu.is_finite(), "mu", "must be a finite number")?;
                positive_finite(*sigma, "sigma")
            }
            Distribution::Pareto { scale, shape } | Distribution::Weibull { scale, shape } => {
                positive(*scale, "scale")?;
                positive_finite(*shape, "shape")
            }
            Distribution::Gamma { shape, scale } => {
                positive_finite(*shape, "shape")?;
                positive(*scale, "scale")
            }
            Distribution::Erlang { k, mean } => {
                ensure(*k >= 1, "k", "must be at least 1")?;
                positive(*mean, "mean")
            }
            Distribution::Mixture { components } => {
                ensure(!components.is_empty(), "components", "must hold at least one component")?;
                for (index, component) in components.iter().enumerate() {
                    *components_seen += 1;
                    ensure(
                        *components_seen <= MIXTURE_COMPONENTS_MAX,
                        "components",
                        "must hold at most 64 components in all, nesting included",
                    )?;
                    let at = format!("components[{index}]");
                    positive_finite(component.weight, "weight").map_err(|e| e.within(&at))?;
                    component
                        .dist
                        .validate_inner(components_seen)
                        .map_err(|e| e.within(component.dist.name()).within(&format!("{at}.dist")))?;
                }
                Ok(())
            }
            Distribution::Empirical { samples } => {
                ensure(!samples.is_empty(), "samples", "must hold at least one sample")?;
                ensure(samples.len() <= EMPIRICAL_SAMPLES_MAX, "samples", "must hold at most 1000000 samples")
            }
        }
    }

    /// Validates and builds the sampler.
    pub fn sampler(&self) -> Result<Sampler, ConfigError> {
        self.validate()?;
        Ok(self.build())
    }

    /// Builds the sampler of a validated config.
    fn build(&self) -> Sampler {
        let secs = SimDuration::as_secs_f64;
        // The constructors below cannot fail on validated parameters; the
        // fallbacks keep that a contract rather than a panic.
        match self {
            Distribution::Constant { value } => Sampler::Constant(*value),
            Distribution::Uniform { low, high } => {
                Sampler::Uniform { low: *low, span_ns: high.as_nanos() - low.as_nanos() }
            }
            Distribution::Exponential { mean } => Sampler::Exponential { mean_secs: secs(*mean) },
            Distribution::Normal { mean, std_dev } => {
                Sampler::Normal { mean_secs: secs(*mean), std_dev_secs: secs(*std_dev) }
            }
            Distribution::LogNormal { .. } | Distribution::LogNormalMuSigma { .. } => {
                let (mu, sigma) = self.log_normal_mu_sigma();
                Sampler::LogNormal { mu, sigma }
            }
            Distribution::Pareto { scale, shape } => {
                Sampler::Pareto { scale_secs: secs(*scale), inverse_shape: 1.0 / shape }
            }
            Distribution::Weibull { scale, shape } => {
                Sampler::Weibull { scale_secs: secs(*scale), inverse_shape: 1.0 / shape }
            }
            Distribution::Gamma { shape, scale } => gamma_sampler(*shape, secs(*scale)),
            Distribution::Erlang { k, mean } => gamma_sampler(f64::from(*k), secs(*mean) / f64::from(*k)),
            Distribution::Mixture { components } => {
                let total: f64 = components.iter().map(|c| c.weight).sum();
                let mut cumulative = 0.0;
                let parts = components
                    .iter()
                    .map(|c| {
                        cumulative += c.weight / total;
                        (cumulative, c.dist.build())
                    })
                    .collect();
                Sampler::Mixture(parts)
            }
            Distribution::Empirical { samples } => Sampler::Empirical(samples.clone()),
        }
    }

    /// `(mu, sigma)` of the log of the value in seconds, for the log-normals.
    fn log_normal_mu_sigma(&self) -> (f64, f64) {
        match self {
            Distribution::LogNormal { mean, p99 } => {
                // mean = exp(mu + s^2/2) and p99 = exp(mu + z s) give
                // s^2/2 - z s + ln(p99/mean) = 0; the smaller root is the one
                // whose p99 lies above the mean for every ratio.
                let log_ratio = libm::log(p99.as_secs_f64() / mean.as_secs_f64());
                let sigma = Z_P99 - (Z_P99 * Z_P99 - 2.0 * log_ratio).max(0.0).sqrt();
                (libm::log(mean.as_secs_f64()) - sigma * sigma / 2.0, sigma)
            }
            Distribution::LogNormalMuSigma { mu, sigma } => (*mu, *sigma),
            _ => (f64::NAN, f64::NAN),
        }
    }

    /// The analytic mean in seconds (infinite where it does not exist).
    pub fn mean_secs(&self) -> f64 {
        let secs = SimDuration::as_secs_f64;
        match self {
            Distribution::Constant { value } => secs(*value),
            Distribution::Uniform { low, high } => (secs(*low) + secs(*high)) / 2.0,
            Distribution::Exponential { mean } | Distribution::Erlang { mean, .. } => secs(*mean),
            Distribution::Normal { mean, std_dev } => truncated_normal_moments(secs(*mean), secs(*std_dev)).0,
            Distribution::LogNormal { .. } | Distribution::LogNormalMuSigma { .. } => {
                let (mu, sigma) = self.log_normal_mu_sigma();
                libm::exp(mu + sigma * sigma / 2.0)
            }
            Distribution::Pareto { scale, shape } => {
                if *shape > 1.0 {
                    shape * secs(*scale) / (shape - 1.0)
                } else {
                    f64::INFINITY
                }
            }
            Distribution::Weibull { scale, shape } => secs(*scale) * libm::tgamma(1.0 + 1.0 / shape),
            Distribution::Gamma { shape, scale } => shape * secs(*scale),
            Distribution::Mixture { components } => {
                let total: f64 = components.iter().map(|c| c.weight).sum();
                components.iter().map(|c| c.weight / total * c.dist.mean_secs()).sum()
            }
            Distribution::Empirical { samples } => samples.iter().map(|s| secs(*s)).sum::<f64>() / samples.len() as f64,
        }
    }

    /// The analytic variance in seconds squared (infinite where it does not exist).
    pub fn variance_secs2(&self) -> f64 {
        let secs = SimDuration::as_secs_f64;
        match self {
            Distribution::Constant { .. } => 0.0,
            Distribution::Uniform { low, high } => (secs(*high) - secs(*low)).powi(2) / 12.0,
            Distribution::Exponential { mean } => secs(*mean).powi(2),
            Distribution::Normal { mean, std_dev } => truncated_normal_moments(secs(*mean), secs(*std_dev)).1,
            Distribution::LogNormal { .. } | Distribution::LogNormalMuSigma { .. } => {
                let (mu, sigma) = self.log_normal_mu_sigma();
                (libm::exp(sigma * sigma) - 1.0) * libm::exp(2.0 * mu + sigma * sigma)
            }
            Distribution::Pareto { scale, shape } => {
                if *shape > 2.0 {
                    secs(*scale).powi(2) * shape / ((shape - 1.0).powi(2) * (shape - 2.0))
                } else {
                    f64::INFINITY
                }
            }
            Distribution::Weibull { scale, shape } => {
                let g1 = libm::tgamma(1.0 + 1.0 / shape);
                let g2 = libm::tgamma(1.0 + 2.0 / shape);
                secs(*scale).powi(2) * (g2 - g1 * g1)
            }
            Distribution::Gamma { shape, scale } => shape * secs(*scale).powi(2),
            Distribution::Erlang { k, mean } => secs(*mean).powi(2) / f64::from(*k),
            Distribution::Mixture { components } => {
                // Law of total variance: E[Var] + Var[E].
                let total: f64 = components.iter().map(|c| c.weight).sum();
                let mean = self.mean_secs();
                components
                    .iter()
                    .map(|c| {
                        let m = c.dist.mean_secs();
                        c.weight / total * (c.dist.variance_secs2() + m * m)
                    })
                    .sum::<f64>()
                    - mean * mean
            }
            Distribution::Empirical { samples } => {
                let mean = self.mean_secs();
                samples.iter().map(|s| (secs(*s) - mean).powi(2)).sum::<f64>() / samples.len() as f64
            }
        }
    }
}

/// Mean and variance of a normal truncated to `[0, inf)`.
/// The index of the part that a uniform draw `u` in [0, 1) picks, where
/// each part comes with the cumulative weight up to and including it
/// (normalised weights, so the cumulative weights never fall): the first
/// part whose cumulative weight is above `u`, or the last if rounding left
/// `u` past them all; `None` if there are no parts.
///
/// Counted rather than searched for: `u` is random, so a search's exit
/// branch is mispredicted about every other draw, where the count's loop
/// runs the same number of times each time (BENCHMARKS.md, fourteenth
/// pass). The parts at or below `u` are exactly those before the pick; the
/// last one is never looked at, as nothing comes after it.
///
/// ```
/// use stormglass_core::dist::cumulative_pick;
///
/// let parts = [(0.5, 'a'), (0.75, 'b'), (1.0, 'c')];
/// assert_eq!(cumulative_pick(&parts, 0.6), Some(1));
/// assert_eq!(cumulative_pick(&parts, 0.999_999_9), Some(2));
/// assert_eq!(cumulative_pick::<char>(&[], 0.3), None);
/// ```
#[inline(always)]
pub fn cumulative_pick<T>(parts: &[(f64, T)], u: f64) -> Option<usize> {
    let (_, before_last) = parts.split_last()?;
    Some(before_last.iter().map(|&(cumulative, _)| usize::from(u >= cumulative)).sum())
}

fn truncated_normal_moments(mu: f64, sigma: f64) -> (f64, f64) {
    let alpha = -mu / sigma;
    let pdf = libm::exp(-alpha * alpha / 2.0) / (2.0 * std::f64::consts::PI).sqrt();
    let survival = 0.5 * libm::erfc(alpha / std::f64::consts::SQRT_2);
    let lambda = pdf / survival;
    let mean = mu + sigma * lambda;
    let variance = sigma * sigma * (1.0 + alpha * lambda - lambda * lambda);
    (mean, variance)
}

fn gamma_sampler(shape: f64, scale_secs: f64) -> Sampler {
    match rand_distr::Gamma::new(shape, scale_secs) {
        Ok(gamma) => Sampler::Gamma(gamma),
        Err(_) => Sampler::Constant(SimDuration::from_secs_f64(shape * scale_secs)),
    }
}

/// A validated distribution, ready to draw.
#[derive(Debug, Clone)]
pub enum Sampler {
    /// See [`Distribution::Constant`].
    Constant(SimDuration),
    /// See [`Distribution::Uniform`].
    Uniform {
        /// Lower bound.
        low: SimDuration,
        /// `high - low` in nanoseconds.
        span_ns: u64,
    },
    /// See [`Distribution::Exponential`].
    Exponential {
        /// Mean in seconds.
        mean_secs: f64,
    },
    /// See [`Distribution::Normal`].
    Normal {
        /// Mean in seconds.
        mean_secs: f64,
        /// Standard deviation in seconds.
        std_dev_secs: f64,
    },
    /// Both log-normal forms.
    LogNormal {
        /// Mean of the log.
        mu: f64,
        /// Standard deviation of the log.
        sigma: f64,
    },
    /// See [`Distribution::Pareto`] (by inversion).
    Pareto {
        /// Scale in seconds.
        scale_secs: f64,
        /// `1 / shape`.
        inverse_shape: f64,
    },
    /// See [`Distribution::Weibull`] (by inversion).
    Weibull {
        /// Scale in seconds.
        scale_secs: f64,
        /// `1 / shape`.
        inverse_shape: f64,
    },
    /// Gamma and Erlang.
    Gamma(rand_distr::Gamma<f64>),
    /// Cumulative weight and component. [`Distribution`] never builds an
    /// empty one; one built by hand with no part draws zero.
    Mixture(Vec<(f64, Sampler)>),
    /// See [`Distribution::Empirical`]. [`Distribution`] never builds an
    /// empty one; one built by hand with no sample draws zero.
    Empirical(Vec<SimDuration>),
}

/// A standard normal deviate, as every normal and log-normal draw takes it.
#[inline]
pub(crate) fn standard_normal(rng: &mut SimRng) -> f64 {
    rand_distr::StandardNormal.sample(rng)
}

/// The log-normal value of the deviate `z` for the log's mean `mu` and
/// standard deviation `sigma`.
#[inline]
pub(crate) fn log_normal(mu: f64, sigma: f64, z: f64) -> SimDuration {
    // e^x as 2^(x log2 e): libm's exp2 is table-driven and about twice as
    // fast as its exp, which divides; the seed cascade draws three of these
    // per request. The two differ by a few ulps, which moves a sampled time
    // by a whole nanosecond about 3 times in a million draws (fewer at
    // millisecond scale).
    SimDuration::from_secs_f64(libm::exp2((mu + sigma * z) * std::f64::consts::LOG2_E))
}

/// Resampling bound for the truncated normal. With a non-negative mean each
/// draw is kept with probability at least 1/2, so 64 misses in a row has
/// probability 2^-64; the bound only guarantees termination.
const NORMAL_TRIES_MAX: u32 = 64;

impl Sampler {
    /// Draws one duration.
    ///
    /// A constant is answered inline: links are constant by default, so
    /// most calls here are one, and the call into the drawing code (which
    /// saves and restores a dozen registers) cost more than the answer.
    #[inline(always)]
    pub fn sample(&self, rng: &mut SimRng) -> SimDuration {
        match self {
            Sampler::Constant(value) => *value,
            _ => self.draw(rng),
        }
    }

    /// Draws one duration from a distribution that is not a constant.
    #[inline(never)]
    fn draw(&self, rng: &mut SimRng) -> SimDuration {
        match self {
            Sampler::Constant(value) => *value,
            Sampler::Uniform { low, span_ns } => {
                SimDuration::from_nanos(low.as_nanos() + below(rng, span_ns.saturating_add(1)))
            }
            Sampler::Exponential { mean_secs } => {
                let unit: f64 = rand_distr::Exp1.sample(rng);
                SimDuration::from_secs_f64(unit * mean_secs)
            }
            Sampler::Normal { mean_secs, std_dev_secs } => {
                for _ in 0..NORMAL_TRIES_MAX {
                    let z: f64 = rand_distr::StandardNormal.sample(rng);
                    let x = mean_secs + std_dev_secs * z;
                    if x >= 0.0 {
                        return SimDuration::from_secs_f64(x);
                    }
                }
                SimDuration::ZERO
            }
            Sampler::LogNormal { mu, sigma } => log_normal(*mu, *sigma, standard_normal(rng)),
            Sampler::Pareto { scale_secs, inverse_shape } => {
                // 1 - U lies in (0, 1], so the power is finite.
                let u = 1.0 - uniform01(rng);
                SimDuration::from_secs_f64(scale_secs * libm::pow(u, -inverse_shape))
            }
            Sampler::Weibull { scale_secs, inverse_shape } => {
                let u = 1.0 - uniform01(rng);
                SimDuration::from_secs_f64(scale_secs * libm::pow(-libm::log(u), *inverse_shape))
            }
            Sampler::Gamma(gamma) => SimDuration::from_secs_f64(gamma.sample(rng)),
            Sampler::Mixture(parts) => {
                // No part at all (a sampler built by hand) means zero.
                cumulative_pick(parts, uniform01(rng)).map_or(SimDuration::ZERO, |index| parts[index].1.sample(rng))
            }
            Sampler::Empirical(samples) => {
                // `below(0)` is 0, so an empty list built by hand gives zero.
                samples.get(below(rng, samples.len() as u64) as usize).copied().unwrap_or(SimDuration::ZERO)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngStreams;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    #[test]
    fn a_hand_built_empty_sampler_draws_zero_instead_of_panicking() {
        let mut rng = RngStreams::new(1).stream("dist.empty");
        assert_eq!(Sampler::Empirical(Vec::new()).sample(&mut rng), SimDuration::ZERO);
        assert_eq!(Sampler::Mixture(Vec::new()).sample(&mut rng), SimDuration::ZERO);
        // A cumulative weight that rounds below 1 still picks the last part.
        let rounded = Sampler::Mixture(vec![(0.0, Sampler::Constant(ms(1))), (0.0, Sampler::Constant(ms(7)))]);
        assert_eq!(rounded.sample(&mut rng), ms(7));
    }

    /// Draws `n` samples and checks mean and variance against the analytic
    /// values. With n = 400_000 the standard error of the mean is
    /// sd/632, so a 1% relative bound on the mean is more than 5 standard
    /// errors for every distribution below whose cv is at most 1.2; the
    /// variance bound is looser (4%) because its estimator also depends on
    /// the fourth moment, which is large for the heavy-tailed ones.
    fn check_moments(dist: Distribution, n: usize, mean_tol: f64, var_tol: f64) {
        let sampler = dist.sampler().unwrap();
        let mut rng = RngStreams::new(2024).stream("dist.test");
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for _ in 0..n {
            let x = sampler.sample(&mut rng).as_secs_f64();
            sum += x;
            sum_sq += x * x;
        }
        let mean = sum / n as f64;
        let variance = sum_sq / n as f64 - mean * mean;
        let (mean_expect, var_expect) = (dist.mean_secs(), dist.variance_secs2());
        assert!((mean - mean_expect).abs() <= mean_tol * mean_expect, "{dist:?}: mean {mean} vs {mean_expect}");
        assert!(
            (variance - var_expect).abs() <= var_tol * var_expect + 1e-15,
            "{dist:?}: variance {variance} vs {var_expect}"
        );
    }

    const N: usize = 400_000;

    #[test]
    fn moments_match_the_closed_forms() {
        use Distribution::*;
        check_moments(Constant { value: ms(7) }, 1000, 1e-9, 1e-9);
        check_moments(Uniform { low: ms(5), high: ms(15) }, N, 0.01, 0.04);
        check_moments(Exponential { mean: ms(10) }, N, 0.01, 0.04);
        check_moments(Normal { mean: ms(50), std_dev: ms(10) }, N, 0.01, 0.04);
        // Half-normal: truncation at zero matters here.
        check_moments(Normal { mean: ms(0), std_dev: ms(10) }, N, 0.01, 0.04);
        check_moments(LogNormal { mean: ms(10), p99: ms(40) }, N, 0.01, 0.06);
        check_moments(LogNormalMuSigma { mu: -4.0, sigma: 0.5 }, N, 0.01, 0.04);
        // shape 4.5: finite fourth moment, so the variance estimate settles.
        check_moments(Pareto { scale: ms(10), shape: 4.5 }, N, 0.01, 0.08);
        check_moments(Weibull { scale: ms(10), shape: 1.5 }, N, 0.01, 0.04);
        check_moments(Gamma { shape: 2.5, scale: ms(4) }, N, 0.01, 0.04);
        check_moments(Erlang { k: 3, mean: ms(9) }, N, 0.01, 0.04);
        check_moments(
            Mixture {
                components: vec![
                    Component { weight: 9.0, dist: Exponential { mean: ms(2) } },
                    Component { weight: 1.0, dist: Constant { value: ms(40) } },
                ],
            },
            N,
            0.01,
            0.04,
        );
        check_moments(Empirical { samples: vec![ms(1), ms(2), ms(3), ms(10)] }, N, 0.01, 0.04);
    }

    #[test]
    fn log_normal_from_mean_and_p99_hits_both() {
        let dist = Distribution::LogNormal { mean: ms(10), p99: ms(40) };
        let sampler = dist.sampler().unwrap();
        let mut rng = RngStreams::new(5).stream("x");
        let mut draws: Vec<u64> = (0..200_000).map(|_| sampler.sample(&mut rng).as_nanos()).collect();
        draws.sort_unstable();
        let p99 = draws[draws.len() * 99 / 100] as f64 / 1e6;
        assert!((p99 - 40.0).abs() < 0.8, "p99 {p99}ms");
        assert!((dist.mean_secs() - 0.010).abs() < 1e-12);
    }

    #[test]
    fn samples_stay_in_their_support() {
        let mut rng = RngStreams::new(9).stream("x");
        let uniform = Distribution::Uniform { low: ms(5), high: ms(6) }.sampler().unwrap();
        let pareto = Distribution::Pareto { scale: ms(3), shape: 1.1 }.sampler().unwrap();
        for _ in 0..10_000 {
            let u = uniform.sample(&mut rng);
            assert!(u >= ms(5) && u <= ms(6));
            assert!(pareto.sample(&mut rng) >= ms(3));
        }
    }

    fn check_error(ron_text: &str, expect: &str) {
        let dist: Distribution = ron::from_str(ron_text).unwrap();
        assert_eq!(dist.sampler().unwrap_err().to_string(), expect, "{ron_text}");
    }

    #[test]
    fn validation_names_the_field_and_the_rule() {
        check_error(r#"Uniform(low: "5ms", high: "1ms")"#, "uniform.high: must be at least low");
        check_error(r#"Normal(mean: "5ms", std_dev: "0s")"#, "normal.std_dev: must be greater than 0");
        check_error(r#"LogNormal(mean: "10ms", p99: "5ms")"#, "log_normal.p99: must be greater than mean");
        check_error(
            r#"LogNormal(mean: "10ms", p99: "1s")"#,
            "log_normal.p99: must be at most 14.97 times mean (no log-normal has a larger p99/mean ratio)",
        );
        check_error(r#"Pareto(scale: "1ms", shape: -2.0)"#, "pareto.shape: must be a finite number greater than 0");
        check_error(r#"Erlang(k: 0, mean: "1ms")"#, "erlang.k: must be at least 1");
        check_error(r#"Mixture(components: [])"#, "mixture.components: must hold at least one component");
        check_error(
            r#"Mixture(components: [(weight: 1.0, dist: Constant(value: "1ms")), (weight: 1.0, dist: Exponential(mean: "0s"))])"#,
            "mixture.components[1].dist.exponential.mean: must be greater than 0",
        );
        check_error(r#"Empirical(samples: [])"#, "empirical.samples: must hold at least one sample");
        let unknown = ron::from_str::<Distribution>(r#"Exponential(mean: "1ms", rate: 3.0)"#).unwrap_err();
        assert!(unknown.to_string().contains("rate"), "{unknown}");
    }

    proptest::proptest! {
        /// The count picks what a search for the first cumulative weight
        /// above the draw picks (the last part when there is none), for
        /// normalised weights, zero weights (equal cumulative weights)
        /// included.
        #[test]
        fn cumulative_pick_agrees_with_a_search(
            weights in proptest::collection::vec(0u32..5, 1..8),
            u in 0.0f64..1.0,
        ) {
            let total: u32 = weights.iter().sum::<u32>().max(1);
            let mut cumulative = 0.0;
            let parts: Vec<(f64, ())> = weights
                .iter()
                .map(|&w| {
                    cumulative += f64::from(w) / f64::from(total);
                    (cumulative, ())
                })
                .collect();
            let searched = parts.iter().position(|(c, _)| u < *c).unwrap_or(parts.len() - 1);
            proptest::prop_assert_eq!(cumulative_pick(&parts, u), Some(searched));
        }
    }
}
