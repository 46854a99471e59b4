//! Named random streams derived from one master seed.
//!
//! Every component that draws (a client's arrivals, a service's service
//! times, a retry policy's jitter) asks [`RngStreams`] for its own stream by
//! name, and an index when there are many of a kind. A stream depends only on
//! the master seed and its own name and index (ARCHITECTURE.md, invariant 4):
//! adding a component, or changing how much one component draws, never moves
//! another component's draws. That gives common random numbers: two variants
//! of a scenario see the same arrivals and the same faults, and differ only by
//! policy.
//!
//! Streams are ChaCha8 keystreams: the key comes from the master seed, the
//! 64-bit stream number from a stable hash of the name (FNV-1a, written here
//! so that no library upgrade can change it).
//!
//! ```
//! use stormglass_core::rng::RngStreams;
//!
//! let streams = RngStreams::new(42);
//! let mut arrivals = streams.stream("client.arrivals");
//! let mut user = streams.stream_indexed("service.service_time", 3);
//! let first = arrivals.next_u64();
//! // The same name and seed always give the same draws.
//! assert_eq!(RngStreams::new(42).stream("client.arrivals").next_u64(), first);
//! let _ = user.uniform01();
//! ```

use std::convert::Infallible;

use rand_chacha::ChaCha8Rng;
use rand_core::{SeedableRng, TryRng};

/// The source of every random stream of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngStreams {
    seed: u64,
    key: [u8; 32],
}

impl RngStreams {
    /// Streams for the master seed `seed`.
    pub fn new(seed: u64) -> Self {
        let mut key = [0u8; 32];
        let mut state = seed;
        for chunk in key.chunks_exact_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        RngStreams { seed, key }
    }

    /// The master seed these streams derive from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The stream called `name`.
    pub fn stream(&self, name: &str) -> SimRng {
        self.stream_indexed(name, 0)
    }

    /// The `index`-th stream called `name` (one per client, per replica...).
    pub fn stream_indexed(&self, name: &str, index: u64) -> SimRng {
        let mut rng = ChaCha8Rng::from_seed(self.key);
        rng.set_stream(stream_number(name, index));
        SimRng { inner: Box::new(rng) }
    }
}

/// One random stream. Implements [`rand_core::Rng`], so `rand_distr`
/// distributions sample from it, and offers the few draws patterns need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    inner: Box<ChaCha8Rng>,
}

impl SimRng {
    /// A stream seeded directly, for code that runs outside a simulation
    /// (a pattern used with a real clock, a unit test).
    pub fn from_seed_u64(seed: u64) -> Self {
        RngStreams::new(seed).stream("default")
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        rand_core::Rng::next_u64(&mut self.inner)
    }

    /// A float uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn uniform01(&mut self) -> f64 {
        uniform01(self)
    }

    /// An integer uniform in `[0, n)`; `n == 0` gives 0.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        below(self, n)
    }

    /// `true` with probability `p` (clamped to `[0, 1]`).
    #[inline]
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform01() < p
    }
}

/// A float uniform in `[0, 1)` from any RNG, with 53 random bits.
///
/// Patterns take `&mut impl rand_core::Rng` so they run with any generator;
/// this is the one conversion they all use, so it is defined once.
#[inline]
pub fn uniform01<R: rand_core::Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// An integer uniform in `[0, n)` from any RNG (Lemire's multiply-shift with
/// rejection, so unbiased); `n == 0` gives 0.
///
/// A draw is rejected when the product's low half is below `2^64 mod n`,
/// which is below `n`: that remainder (a 64-bit division, slower than the
/// draw itself) is only worked out for a low half below `n`, which almost
/// never happens. The values and the draws taken are the same as always
/// dividing.
#[inline]
pub fn below<R: rand_core::Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut product = u128::from(rng.next_u64()) * u128::from(n);
    if (product as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (product >> 64) as u64
}

impl TryRng for SimRng {
    type Error = Infallible;
    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.inner.try_next_u32()
    }
    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.inner.try_next_u64()
    }
    #[inline]
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.try_fill_bytes(dst)
    }
}

/// SplitMix64: expands one `u64` seed into well-mixed key words.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over the name, a separator and the index, finished with SplitMix64
/// so that similar names land on unrelated stream numbers.
fn stream_number(name: &str, index: u64) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in name.bytes().chain([0xff]).chain(index.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    splitmix64(&mut hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(rng: &mut SimRng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn golden_first_draws_of_a_stream() {
        // Pinned on purpose: if this fails, seeding changed, and every
        // snapshot and every recorded seed in the wild now means something
        // else. Change it only with a note in the changelog.
        let mut rng = RngStreams::new(42).stream("client.arrivals");
        assert_eq!(
            draws(&mut rng, 4),
            [0x605d1d50d8595551, 0xa08fef0b0c5e5f4b, 0x2527554f7cc67a96, 0x1f0f5d3b9510f695],
            "seeding of named streams changed"
        );
    }

    #[test]
    fn adding_a_stream_does_not_change_the_others() {
        let streams = RngStreams::new(7);
        let alone = draws(&mut streams.stream("user.service_time"), 1000);

        // Same seed, but now other components exist and draw heavily first.
        let streams = RngStreams::new(7);
        let mut newcomer = streams.stream("new.component");
        let mut indexed = streams.stream_indexed("client", 12);
        let _ = draws(&mut newcomer, 5000);
        let _ = draws(&mut indexed, 5000);
        let beside_others = draws(&mut streams.stream("user.service_time"), 1000);
        assert_eq!(alone, beside_others);
    }

    #[test]
    fn streams_differ_by_name_index_and_seed() {
        let a = draws(&mut RngStreams::new(1).stream("a"), 8);
        assert_ne!(a, draws(&mut RngStreams::new(1).stream("b"), 8));
        assert_ne!(a, draws(&mut RngStreams::new(2).stream("a"), 8));
        assert_ne!(a, draws(&mut RngStreams::new(1).stream_indexed("a", 1), 8));
        assert_eq!(a, draws(&mut RngStreams::new(1).stream_indexed("a", 0), 8));
    }

    #[test]
    fn below_and_uniform_stay_in_range() {
        let mut rng = SimRng::from_seed_u64(3);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            let u = rng.uniform01();
            assert!((0.0..1.0).contains(&u));
            counts[rng.below(6) as usize] += 1;
        }
        // Each face expects 10_000 with sd ~91; 5 sd is a loose, stable bound.
        for c in counts {
            assert!((9_545..=10_455).contains(&c), "{counts:?}");
        }
        assert_eq!(rng.below(0), 0);
    }

    /// Lemire's method as first written: the remainder worked out at every
    /// call.
    fn below_always_dividing(rng: &mut SimRng, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(rng.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    proptest::proptest! {
        /// Same values, and the same draws taken from the stream: bounds
        /// just above 2^63 reject almost half the draws, so the rejection
        /// loop is exercised as well as the shortcut.
        #[test]
        fn below_matches_dividing_at_every_call(
            seed: u64,
            small in 1u64..1000,
            large in (1u64 << 63)..=((1u64 << 63) + 1000),
            any in 1u64..,
        ) {
            let (mut fast, mut reference) = (SimRng::from_seed_u64(seed), SimRng::from_seed_u64(seed));
            for n in [small, large, any, 1, u64::MAX].into_iter().cycle().take(200) {
                proptest::prop_assert_eq!(below(&mut fast, n), below_always_dividing(&mut reference, n));
            }
            proptest::prop_assert_eq!(fast.next_u64(), reference.next_u64());
        }
    }
}
