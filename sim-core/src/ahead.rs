//! Draws taken ahead of their use, in batches of [`BATCH`]: [`Batch`] for
//! values of one kind, [`DrawsAhead`] for samplers that share a stream.
//!
//! A sampled duration is usually needed at once: it is the time of an event
//! about to be scheduled. A log-normal draw is a chain of about a hundred
//! cycles of dependent work (the normal deviate, `e^x`, the rounding to
//! nanoseconds) reading tables that are cold by the next event, and the
//! queue push that needs its result waits for all of it. [`DrawsAhead`]
//! draws values in batches, ahead of their use, in one loop whose draws
//! overlap, and hands them out one by one.
//!
//! The values, and the order they come off the stream, are exactly those of
//! drawing at use, as long as the stream serves these samplers and nothing
//! else: a value is drawn ahead only when it does not depend on which
//! sampler takes it. That holds for a single sampler, and for log-normal
//! samplers, which all turn the same standard normal deviate into their
//! value (the deviate is drawn ahead, and its value for each sampler); any
//! other mix is drawn at use.
//!
//! ```
//! use stormglass_core::ahead::DrawsAhead;
//! use stormglass_core::dist::Distribution;
//! use stormglass_core::rng::RngStreams;
//! use stormglass_core::time::SimDuration;
//!
//! let log_normal = |mean_ms, p99_ms| {
//!     let (mean, p99) = (SimDuration::from_millis(mean_ms), SimDuration::from_millis(p99_ms));
//!     Distribution::LogNormal { mean, p99 }.sampler().unwrap()
//! };
//! let samplers = vec![log_normal(2, 6), log_normal(1, 3)];
//! let streams = RngStreams::new(7);
//!
//! // Drawn at use, one stream for both samplers.
//! let mut rng = streams.stream("route.compute");
//! let at_use: Vec<_> = [0, 1, 1, 0].iter().map(|&i| samplers[i].sample(&mut rng)).collect();
//!
//! // Drawn ahead: the same values in the same order.
//! let mut rng = streams.stream("route.compute");
//! let mut ahead = DrawsAhead::new(samplers.clone());
//! let drawn: Vec<_> = [0, 1, 1, 0].iter().map(|&i| ahead.draw(i, &mut rng)).collect();
//! assert_eq!(drawn, at_use);
//! ```

use crate::dist::{Sampler, log_normal, standard_normal};
use crate::rng::SimRng;
use crate::time::SimDuration;

/// Samplers sharing one stream, with their next values drawn ahead in
/// batches when the values do not depend on which sampler takes them (see
/// the module documentation).
#[derive(Debug, Clone)]
pub struct DrawsAhead {
    samplers: Vec<Sampler>,
    ahead: Ahead,
}

/// Values drawn at a time. A batch is drawn in one tight loop: its draws do
/// not depend on each other, so their chains of work overlap, and the tables
/// they read (the normal deviate's, `e^x`'s) stay in the cache for all of
/// them, where draws one at a time between events found them cold.
pub const BATCH: usize = 32;

/// Values of one kind drawn [`BATCH`] at a time and handed out in order: for
/// a stream that serves one sampler (or one formula) alone, the same values
/// in the same order as drawing each at use.
///
/// ```
/// use stormglass_core::ahead::Batch;
/// use stormglass_core::rng::RngStreams;
/// use stormglass_core::time::SimDuration;
///
/// let streams = RngStreams::new(3);
/// let draw = |rng: &mut stormglass_core::rng::SimRng| SimDuration::from_nanos(rng.below(1_000));
/// let mut at_use = streams.stream("gaps");
/// let (mut rng, mut batch) = (streams.stream("gaps"), Batch::default());
/// for _ in 0..100 {
///     assert_eq!(batch.next(|| draw(&mut rng)), draw(&mut at_use));
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    values: [SimDuration; BATCH],
    /// The next value to hand out; `BATCH` when a new batch is due.
    next: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch { values: [SimDuration::ZERO; BATCH], next: BATCH }
    }
}

impl Batch {
    /// The next value; when the batch is used up, `draw` fills a new one
    /// first.
    #[inline]
    pub fn next(&mut self, draw: impl FnMut() -> SimDuration) -> SimDuration {
        if self.next == BATCH {
            self.refill(draw);
        }
        self.next += 1;
        self.values[self.next - 1]
    }

    /// A new batch. Out of line: once every `BATCH` values, and inlined it
    /// put the whole loop into every caller of `next`.
    #[inline(never)]
    fn refill(&mut self, mut draw: impl FnMut() -> SimDuration) {
        self.values.iter_mut().for_each(|value| *value = draw());
        self.next = 0;
    }
}

#[derive(Debug, Clone)]
enum Ahead {
    /// Log-normal samplers, as (mu, sigma), one or several:
    /// `values[i * samplers + which]` is the `i`-th deviate's value for
    /// sampler `which`; `next` is the next `i` to hand out.
    LogNormals { parameters: Vec<(f64, f64)>, values: Vec<SimDuration>, next: usize },
    /// One sampler of another kind: its next values.
    One(Box<Batch>),
    /// Drawn at use.
    AtUse,
}

impl DrawsAhead {
    /// The samplers; their values are drawn from the `rng` given to
    /// [`DrawsAhead::draw`], which must serve these samplers alone.
    pub fn new(samplers: Vec<Sampler>) -> Self {
        let parameters: Option<Vec<(f64, f64)>> = samplers
            .iter()
            .map(|s| match s {
                Sampler::LogNormal { mu, sigma } => Some((*mu, *sigma)),
                _ => None,
            })
            .collect();
        let ahead = match (samplers.as_slice(), parameters) {
            (_, Some(parameters)) if !parameters.is_empty() => {
                Ahead::LogNormals { values: vec![SimDuration::ZERO; BATCH * parameters.len()], parameters, next: BATCH }
            }
            ([_], _) => Ahead::One(Box::default()),
            _ => Ahead::AtUse,
        };
        DrawsAhead { samplers, ahead }
    }

    /// The next value for sampler `which` (an index into the samplers given
    /// to [`DrawsAhead::new`]), drawn from `rng` (always the same stream).
    ///
    /// # Panics
    ///
    /// If `which` names no sampler.
    #[inline]
    pub fn draw(&mut self, which: usize, rng: &mut SimRng) -> SimDuration {
        match &mut self.ahead {
            Ahead::LogNormals { parameters, values, next } => {
                if *next == BATCH {
                    draw_log_normals(parameters, values, rng);
                    *next = 0;
                }
                let value = values[*next * parameters.len() + which];
                *next += 1;
                value
            }
            Ahead::One(batch) => {
                debug_assert_eq!(which, 0, "a single sampler is sampler 0");
                let sampler = &self.samplers[0];
                batch.next(|| sampler.sample(rng))
            }
            Ahead::AtUse => self.samplers[which].sample(rng),
        }
    }
}

/// A batch of deviates, and each one's value for every sampler.
#[inline(never)]
fn draw_log_normals(parameters: &[(f64, f64)], values: &mut [SimDuration], rng: &mut SimRng) {
    let mut deviates = [0.0; BATCH];
    deviates.iter_mut().for_each(|z| *z = standard_normal(rng));
    for (values, &z) in values.chunks_exact_mut(parameters.len()).zip(&deviates) {
        for (value, &(mu, sigma)) in values.iter_mut().zip(parameters) {
            *value = log_normal(mu, sigma, z);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Distribution;
    use crate::rng::RngStreams;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    fn sampler(distribution: Distribution) -> Sampler {
        distribution.sampler().expect("valid")
    }

    /// Drawing ahead gives what drawing at use gives, for every kind of
    /// mix, over a long pseudo-random sequence of which sampler draws.
    fn check(samplers: Vec<Sampler>) {
        let streams = RngStreams::new(11);
        let order: Vec<usize> = (0..5_000u64).map(|i| ((i * 2_654_435_761) >> 7) as usize % samplers.len()).collect();
        let mut rng = streams.stream("ahead");
        let at_use: Vec<_> = order.iter().map(|&i| samplers[i].sample(&mut rng)).collect();
        let mut rng = streams.stream("ahead");
        let mut ahead = DrawsAhead::new(samplers);
        let drawn: Vec<_> = order.iter().map(|&i| ahead.draw(i, &mut rng)).collect();
        assert_eq!(drawn, at_use);
    }

    #[test]
    fn a_single_sampler_of_any_kind_draws_as_at_use() {
        check(vec![sampler(Distribution::Exponential { mean: ms(10) })]);
        check(vec![sampler(Distribution::Normal { mean: ms(10), std_dev: ms(30) })]);
        check(vec![sampler(Distribution::Constant { value: ms(3) })]);
    }

    #[test]
    fn log_normals_share_the_deviate_and_draw_as_at_use() {
        check(vec![
            sampler(Distribution::LogNormal { mean: ms(2), p99: ms(6) }),
            sampler(Distribution::LogNormal { mean: ms(1), p99: ms(3) }),
            sampler(Distribution::LogNormal { mean: ms(40), p99: ms(500) }),
        ]);
    }

    #[test]
    fn any_other_mix_draws_at_use() {
        check(vec![
            sampler(Distribution::LogNormal { mean: ms(2), p99: ms(6) }),
            sampler(Distribution::Exponential { mean: ms(10) }),
        ]);
        let mix = DrawsAhead::new(vec![
            sampler(Distribution::Exponential { mean: ms(1) }),
            sampler(Distribution::Constant { value: ms(1) }),
        ]);
        assert!(matches!(mix.ahead, Ahead::AtUse));
    }
}
