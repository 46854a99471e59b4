//! Paired differences and their 95% confidence interval (Student's t).
//!
//! `compare` runs A and B with the same seeds (common random numbers), so
//! the per-seed differences remove the noise both share; the interval is
//! over those differences, not over A and B separately.

/// Mean and 95% half-width of a sample; no half-width for fewer than two values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Sample mean.
    pub mean: f64,
    /// Half-width of the 95% interval, `None` with one value.
    pub half_width: Option<f64>,
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
pub fn t_975(df: usize) -> f64 {
    // Exact to three decimals up to 30; past that the Cornish-Fisher
    // expansion around the normal quantile is within 1e-4.
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let z = 1.959_964_f64;
            let n = df as f64;
            z + (z.powi(3) + z) / (4.0 * n) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
        }
    }
}

/// Mean and 95% t-interval of `values`.
pub fn interval(values: &[f64]) -> Interval {
    let n = values.len();
    if n == 0 {
        return Interval { mean: f64::NAN, half_width: None };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Interval { mean, half_width: None };
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Interval { mean, half_width: Some(t_975(n - 1) * (variance / n as f64).sqrt()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_the_table_and_approach_the_normal() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        assert!((t_975(40) - 2.021).abs() < 1e-3, "{}", t_975(40));
        assert!((t_975(120) - 1.980).abs() < 1e-3, "{}", t_975(120));
        assert!(t_975(100_000) > 1.959 && t_975(100_000) < 1.961);
    }

    #[test]
    fn interval_of_a_known_sample() {
        // mean 2, sd 1, n 4: half-width 3.182 * 1 / 2.
        let i = interval(&[1.0, 2.0, 3.0, 2.0]);
        assert_eq!(i.mean, 2.0);
        let sd = (2.0f64 / 3.0).sqrt();
        assert!((i.half_width.unwrap() - 3.182 * sd / 2.0).abs() < 1e-12);
        assert_eq!(interval(&[5.0]).half_width, None);
        assert_eq!(interval(&[5.0, 5.0]).half_width, Some(0.0));
    }
}
